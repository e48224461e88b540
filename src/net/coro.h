/*
 * coro.h - stackful coroutines (internal).
 *
 * Each coroutine has its own mmap'd stack with a PROT_NONE guard page below
 * it.  The context switch is a few lines of assembly on x86-64 and aarch64;
 * other targets (or -Dcoro=ucontext) use ucontext.  Switches are annotated
 * for AddressSanitizer (__sanitizer_start/finish_switch_fiber) and stacks are
 * registered with valgrind, so both tools work across switches.
 *
 * Coroutines are created and resumed by one thread (a worker); a pool per
 * worker keeps finished coroutines' stacks for reuse.  Not thread-safe.
 */
#ifndef TERN_CORO_H
#define TERN_CORO_H

#include <stddef.h>

typedef struct coro coro;
typedef struct coro_pool coro_pool;
typedef void (*coro_fn)(void *arg);

/*
 * A pool handing out coroutines with stack_size bytes of usable stack (rounded
 * up to pages; a guard page is added), keeping up to max_idle finished ones.
 * NULL on OOM.
 */
coro_pool *coro_pool_new(size_t stack_size, unsigned max_idle);
/* Frees the pool and its idle coroutines; every coroutine must be back. */
void coro_pool_free(coro_pool *p);

/*
 * A coroutine that will run fn(arg) when first resumed; from the pool's idle
 * list when possible (no allocation), else newly mapped.  NULL on OOM.
 */
coro *coro_get(coro_pool *p, coro_fn fn, void *arg);
/* Returns a finished coroutine to its pool (or unmaps it if the pool is full). */
void coro_put(coro *c);

/*
 * Switches from the caller (the scheduler, not a coroutine) into c, until c
 * yields or its function returns.  Returns 1 if c finished (it must then be
 * given back with coro_put), 0 if it yielded.
 */
int coro_resume(coro *c);
/* From inside a coroutine: switches back to whoever resumed it. */
void coro_yield(void);
/* The running coroutine on this thread, or NULL in scheduler context. */
coro *coro_current(void);

/* A user pointer slot on the coroutine (cleared by coro_get). */
void coro_set_data(coro *c, void *data);
void *coro_get_data(const coro *c);

/* Number of coroutines currently mapped by the pool (live + idle). */
size_t coro_pool_mapped(const coro_pool *p);

#endif /* TERN_CORO_H */
