/*
 * coro.c - stackful coroutines: mmap'd stacks, a per-worker pool, and the
 * switch (assembly on x86-64/aarch64, ucontext otherwise).
 *
 * Memory layout of one coroutine (one mapping, low addresses first):
 *
 *     [ guard page, PROT_NONE ][ stack ............... ][ struct coro ]
 *     map                      lo                    hi = (char *)c
 *
 * The stack grows down from hi toward the guard page, so an overflow faults
 * (SIGSEGV) instead of silently overwriting memory.  The struct lives at the
 * top of the mapping, so a coroutine costs exactly one mmap and no heap.
 *
 * Invariants:
 * - t_current is the coroutine running on this thread, NULL in the scheduler.
 *   Only the scheduler resumes (one level: a coroutine never resumes another).
 * - A coroutine is NEW (coro_get'd, never resumed), SUSPENDED (yielded),
 *   RUNNING, or DONE (its function returned).  Only DONE or NEW ones are given
 *   back with coro_put; SUSPENDED ones may be too (at shutdown), their frames
 *   are abandoned without unwinding.
 * - The pool's idle list holds at most max_idle coroutines; mapped counts
 *   live + idle.  coro_get from the idle list makes no syscall and does not
 *   allocate.
 * - A coroutine is only ever resumed by the thread that created it (compilers
 *   cache thread-local addresses across calls, so a coroutine must not move).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tern/core.h"
#include "net/coro.h"

/* The switch: CORO_ASM (coro_switch_<arch>.S) or CORO_UCTX (ucontext).  The
 * build passes TERN_CORO_ASM=1 or TERN_CORO_UCONTEXT=1; without either, the
 * assembly is used where it exists. */
#if defined(TERN_CORO_UCONTEXT) && TERN_CORO_UCONTEXT
#define CORO_UCTX 1
#elif defined(TERN_CORO_ASM) && TERN_CORO_ASM
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "TERN_CORO_ASM: no context switch for this architecture; use -Dcoro=ucontext"
#endif
#define CORO_ASM 1
#elif defined(__x86_64__) || defined(__aarch64__)
#define CORO_ASM 1
#else
#define CORO_UCTX 1
#endif

#ifdef CORO_UCTX
#include <ucontext.h>
#endif

/* AddressSanitizer: annotate every switch so it knows which stack is live. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TERN_ASAN 1
#endif
#ifdef TERN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* Valgrind: register each stack, or it takes a switch for a huge frame. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TERN_VALGRIND 1
#endif
#endif

#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

enum { CORO_NEW, CORO_RUNNING, CORO_SUSPENDED, CORO_DONE };

struct coro {
    void *sp;        /* saved stack pointer while not running (asm) */
    void *caller_sp; /* the scheduler's saved stack pointer (asm) */
    coro_fn fn;
    void *arg;
    void *data;
    coro_pool *pool;
    coro *next_idle;   /* link in pool->idle */
    unsigned char *lo; /* lowest usable stack byte (just above the guard) */
    size_t stack_size; /* usable bytes, lo .. (char *)this */
    int state;
#ifdef TERN_VALGRIND
    unsigned vg_id;
#endif
#ifdef TERN_ASAN
    const void *caller_bottom; /* the scheduler's stack, learned on each entry */
    size_t caller_size;
#endif
#ifdef CORO_UCTX
    ucontext_t ctx;
    ucontext_t caller_ctx;
#endif
};

struct coro_pool {
    size_t page;
    size_t map_size; /* whole mapping: guard + stack + struct */
    unsigned max_idle;
    unsigned n_idle;
    size_t mapped; /* live + idle */
    coro *idle;
};

static _Thread_local coro *t_current;

/* Bytes reserved at the top of the mapping for the struct (cache-line sized). */
#define CORO_HDR ((sizeof(coro) + 63) & ~(size_t)63)

#ifdef CORO_ASM
/* In coro_switch_<arch>.S: saves callee-saved state on the current stack,
 * stores the stack pointer in *save_sp, loads load_sp and restores from it. */
void tern__coro_switch(void **save_sp, void *load_sp);
/* In coro_switch_<arch>.S: first entry; calls entry(c) with c and entry taken
 * from two callee-saved registers the initial frame sets. */
void tern__coro_start(void);
#endif

static void coro_entry(coro *c) __attribute__((noreturn));
#ifdef CORO_UCTX
static void coro_uctx_entry(void);
#endif

/* ------------------------------------------------------------------------ */
/* The initial frame                                                          */

/*
 * Lays out c's stack so that the first switch into it "returns" into
 * tern__coro_start with c and coro_entry in callee-saved registers; with
 * ucontext, makecontext does the same job.
 */
static void coro_prepare(coro *c)
{
#if defined(CORO_ASM) && defined(__x86_64__)
    /* top is 16-byte aligned; see coro_switch_x86_64.S for the frame. */
    uint64_t *top = (uint64_t *)((uintptr_t)c & ~(uintptr_t)15);
    uint64_t *f = top - 9;
    f[0] = 0x1f80u | ((uint64_t)0x037fu << 32);   /* MXCSR (low), x87 CW (high) */
    f[1] = 0;                                     /* r15 */
    f[2] = 0;                                     /* r14 */
    f[3] = 0;                                     /* r13 */
    f[4] = (uint64_t)(uintptr_t)coro_entry;       /* r12: the C entry */
    f[5] = (uint64_t)(uintptr_t)c;                /* rbx: its argument */
    f[6] = 0;                                     /* rbp: ends the frame chain */
    f[7] = (uint64_t)(uintptr_t)tern__coro_start; /* return address */
    f[8] = 0;                                     /* fake return of start */
    c->sp = f;
#elif defined(CORO_ASM) && defined(__aarch64__)
    /* 160-byte frame; see coro_switch_aarch64.S for the offsets. */
    uint64_t *top = (uint64_t *)((uintptr_t)c & ~(uintptr_t)15);
    uint64_t *f = top - 20;
    memset(f, 0, 20 * sizeof *f);
    f[0] = (uint64_t)(uintptr_t)c;                 /* x19: the argument */
    f[1] = (uint64_t)(uintptr_t)coro_entry;        /* x20: the C entry */
    f[10] = 0;                                     /* x29: ends the frame chain */
    f[11] = (uint64_t)(uintptr_t)tern__coro_start; /* x30: where ret goes */
    c->sp = f;
#elif defined(CORO_UCTX)
    c->ctx.uc_stack.ss_sp = c->lo;
    c->ctx.uc_stack.ss_size = c->stack_size;
    c->ctx.uc_stack.ss_flags = 0;
    c->ctx.uc_link = NULL;
    /* makecontext passes ints only: the entry finds c in t_current. */
    makecontext(&c->ctx, (void (*)(void))coro_uctx_entry, 0);
#endif
}

#ifdef CORO_UCTX
static void coro_uctx_entry(void)
{
    coro_entry(t_current);
}
#endif

/* ------------------------------------------------------------------------ */
/* Switching                                                                  */

/*
 * First (and only) C frame at the bottom of every coroutine: runs the body,
 * then switches back for good.  A finished coroutine is never resumed again
 * until coro_get re-prepares it.
 */
static void coro_entry(coro *c)
{
    /* Arrived from the scheduler: learn its stack bounds (to switch back);
     * there is no fake stack of ours to restore on first entry. */
#ifdef TERN_ASAN
    __sanitizer_finish_switch_fiber(NULL, &c->caller_bottom, &c->caller_size);
#endif
    c->fn(c->arg);
    c->state = CORO_DONE;
    /* NULL: this fiber is finished, ASan may destroy its fake stack. */
#ifdef TERN_ASAN
    __sanitizer_start_switch_fiber(NULL, c->caller_bottom, c->caller_size);
#endif
#ifdef CORO_UCTX
    setcontext(&c->caller_ctx);
#else
    tern__coro_switch(&c->sp, c->caller_sp);
#endif
    __builtin_unreachable();
}

int coro_resume(coro *c)
{
#ifdef TERN_ASAN
    void *fake = NULL; /* the scheduler's fake stack while we are away */
#endif

    assert(t_current == NULL && "coro_resume from inside a coroutine");
    assert(c->state == CORO_NEW || c->state == CORO_SUSPENDED);
    c->state = CORO_RUNNING;
    t_current = c;
#ifdef TERN_ASAN
    __sanitizer_start_switch_fiber(&fake, c->lo, c->stack_size);
#endif
#ifdef CORO_UCTX
    swapcontext(&c->caller_ctx, &c->ctx);
#else
    tern__coro_switch(&c->caller_sp, c->sp);
#endif
#ifdef TERN_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    t_current = NULL;
    return c->state == CORO_DONE;
}

void coro_yield(void)
{
    coro *c = t_current;
#ifdef TERN_ASAN
    void *fake = NULL;
#endif

    assert(c != NULL && "coro_yield outside a coroutine");
    c->state = CORO_SUSPENDED;
#ifdef TERN_ASAN
    __sanitizer_start_switch_fiber(&fake, c->caller_bottom, c->caller_size);
#endif
#ifdef CORO_UCTX
    swapcontext(&c->ctx, &c->caller_ctx);
#else
    tern__coro_switch(&c->sp, c->caller_sp);
#endif
#ifdef TERN_ASAN
    /* The scheduler resuming us may be at a different depth: relearn. */
    __sanitizer_finish_switch_fiber(fake, &c->caller_bottom, &c->caller_size);
#endif
}

coro *coro_current(void)
{
    return t_current;
}

void coro_set_data(coro *c, void *data)
{
    c->data = data;
}

void *coro_get_data(const coro *c)
{
    return c->data;
}

/* ------------------------------------------------------------------------ */
/* Stacks and the pool                                                        */

#ifdef CORO_UCTX
/* getcontext "returns twice" as far as the compiler knows; keeping it in a
 * frame of its own spares coro_map's locals (the saved context is never
 * resumed: makecontext rewrites it before any switch). */
__attribute__((noinline)) static int coro_uctx_init(coro *c)
{
    return getcontext(&c->ctx);
}
#endif

static coro *coro_map(coro_pool *p)
{
    unsigned char *map = mmap(NULL, p->map_size, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    coro *c;

    if (map == MAP_FAILED)
        return NULL;
    if (mprotect(map, p->page, PROT_NONE) != 0) {
        munmap(map, p->map_size);
        return NULL;
    }
    c = (coro *)(map + p->map_size - CORO_HDR);
    memset(c, 0, sizeof *c);
    c->pool = p;
    c->lo = map + p->page;
    c->stack_size = (size_t)((unsigned char *)c - c->lo);
#ifdef TERN_VALGRIND
    c->vg_id = VALGRIND_STACK_REGISTER(c->lo, (unsigned char *)c);
#endif
#ifdef CORO_UCTX
    /* Once per mapping: coro_get on a pooled coroutine only re-runs
     * makecontext, which makes no syscall. */
    if (coro_uctx_init(c) != 0) {
#ifdef TERN_VALGRIND
        VALGRIND_STACK_DEREGISTER(c->vg_id);
#endif
        munmap(map, p->map_size);
        return NULL;
    }
#endif
    p->mapped++;
    return c;
}

static void coro_unmap(coro *c)
{
    coro_pool *p = c->pool;
    unsigned char *map = c->lo - p->page;

#ifdef TERN_VALGRIND
    VALGRIND_STACK_DEREGISTER(c->vg_id);
#endif
#ifdef TERN_ASAN
    /* Frames left on the stack may have left poisoned shadow behind; do not
     * let it outlive the mapping. */
    ASAN_UNPOISON_MEMORY_REGION(c->lo, c->stack_size);
#endif
    p->mapped--;
    munmap(map, p->map_size);
}

coro_pool *coro_pool_new(size_t stack_size, unsigned max_idle)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    coro_pool *p;
    size_t body;

    if (stack_size == 0)
        stack_size = 256 * 1024;
    /* Usable stack + the struct, rounded up to pages, plus the guard. */
    if (stack_size > SIZE_MAX / 2)
        return NULL;
    body = (stack_size + CORO_HDR + page - 1) & ~(page - 1);
    p = tern_malloc(sizeof *p);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    p->page = page;
    p->map_size = body + page;
    p->max_idle = max_idle;
    return p;
}

void coro_pool_free(coro_pool *p)
{
    if (p == NULL)
        return;
    assert(p->mapped == p->n_idle && "coro_pool_free with coroutines still out");
    while (p->idle != NULL) {
        coro *c = p->idle;
        p->idle = c->next_idle;
        coro_unmap(c);
    }
    tern_free(p);
}

coro *coro_get(coro_pool *p, coro_fn fn, void *arg)
{
    coro *c = p->idle;

    if (c != NULL) {
        p->idle = c->next_idle;
        p->n_idle--;
#ifdef TERN_ASAN
        /* A coroutine put back while suspended left its frames' redzones
         * poisoned; uninstrumented code reusing that memory would trip. */
        ASAN_UNPOISON_MEMORY_REGION(c->lo, c->stack_size);
#endif
    } else {
        c = coro_map(p);
        if (c == NULL)
            return NULL;
    }
    c->next_idle = NULL;
    c->fn = fn;
    c->arg = arg;
    c->data = NULL;
    c->state = CORO_NEW;
    coro_prepare(c);
    return c;
}

void coro_put(coro *c)
{
    coro_pool *p;

    if (c == NULL)
        return;
    assert(c != t_current && c->state != CORO_RUNNING && "coro_put on a running coroutine");
    p = c->pool;
    if (p->n_idle < p->max_idle) {
        c->state = CORO_DONE;
        c->next_idle = p->idle;
        p->idle = c;
        p->n_idle++;
    } else {
        coro_unmap(c);
    }
}

size_t coro_pool_mapped(const coro_pool *p)
{
    return p->mapped;
}
