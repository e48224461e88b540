/*
 * loop.h - the per-worker event loop (internal).
 *
 * One loop per worker thread: an epoll instance, a timer heap, an eventfd for
 * wake-ups from other threads (offload completions, shutdown), and the list
 * of coroutines parked in tern_wait_fd / tern_sleep so shutdown can cancel
 * them.  The loop knows nothing of HTTP; the server layer registers its
 * listener and connections as loop_io entries.
 *
 * Everything here runs on the loop's own thread except loop_wake() and
 * loop_post_done(), which any thread may call.
 */
#ifndef TERN_LOOP_INTERNAL_H
#define TERN_LOOP_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "net/coro.h"
#include "net/timer.h"
#include "tern/loop.h"

typedef struct tern_loop tern_loop;
typedef struct loop_io loop_io;

/* Called on the loop thread with the epoll events that fired. */
typedef void (*loop_io_cb)(loop_io *io, uint32_t events);

struct loop_io {
    int fd;
    loop_io_cb cb;
};

typedef struct offload_job offload_job;
typedef struct offload_pool offload_pool;

/* Hook run when a coroutine resumed by the loop finishes. */
typedef void (*loop_coro_done)(coro *c);

tern_loop *loop_new(coro_pool *coros, loop_coro_done on_done);
void loop_free(tern_loop *l);

/* Registers io->fd for events (EPOLLIN etc. | EPOLLET as the caller wants). */
int loop_add(tern_loop *l, loop_io *io, uint32_t events);
int loop_mod(tern_loop *l, loop_io *io, uint32_t events);
/* Unregisters (a closed fd is removed by the kernel; calling this is harmless). */
void loop_del(tern_loop *l, loop_io *io);

timer_heap *loop_timers(tern_loop *l);
/* The loop's cached monotonic time in ms, refreshed each iteration. */
int64_t loop_now(const tern_loop *l);
/* Refreshes the cached time (call after long work). */
int64_t loop_update_time(tern_loop *l);

/*
 * Runs one iteration: waits for events (at most until the next timer, or
 * max_wait_ms when >= 0), dispatches them, runs expired timers and offload
 * completions.  Returns the number of events dispatched, or TERN_ESYS.
 */
int loop_run_once(tern_loop *l, int max_wait_ms);

/* Resumes a coroutine from loop context; on finish, calls the done hook. */
void loop_resume(tern_loop *l, coro *c);

/* Wakes the loop from any thread (async-signal-safe). */
void loop_wake(tern_loop *l);
/* Sets the callback run on the loop thread after loop_wake(). */
void loop_on_wake(tern_loop *l, void (*cb)(void *), void *arg);

/*
 * Cancels every coroutine parked in tern_wait_fd / tern_sleep / offload on
 * this loop: they return TERN_ECANCELED (offload jobs still finish first).
 * Later waits on this loop fail at once with TERN_ECANCELED.
 */
void loop_cancel_waits(tern_loop *l);
/* 1 once loop_cancel_waits ran (shutdown deadline): waits should end now. */
int loop_is_canceled(const tern_loop *l);
/* Number of coroutines currently parked in waits on this loop. */
unsigned loop_parked(const tern_loop *l);

/* The loop of the calling thread (set by loop_set_current), or NULL. */
tern_loop *loop_current(void);
void loop_set_current(tern_loop *l);

/* Offload pool (offload.c): threads that run blocking calls. */
offload_pool *offload_pool_new(unsigned nthreads);
/* Stops the threads after the queued jobs ran. NULL is a no-op. */
void offload_pool_free(offload_pool *p);
/* The pool tern_offload uses (process-wide; set by the app). */
void offload_set_default(offload_pool *p);
offload_pool *offload_default(void);

struct offload_job {
    void (*fn)(void *);
    void *arg;
    tern_loop *loop; /* where to report completion */
    coro *co;        /* the waiting coroutine */
    offload_job *next;
};
/* Queues a job; on completion the pool calls loop_post_done(job->loop, job). */
int offload_submit(offload_pool *p, offload_job *job);
/* From any thread: hands a finished job back to its loop. */
void loop_post_done(tern_loop *l, offload_job *job);
/*
 * From l's own thread: queues job->co to be resumed later in this loop
 * iteration (after the events and timers), without the eventfd round trip.
 */
void loop_post_local(tern_loop *l, offload_job *job);

#endif /* TERN_LOOP_INTERNAL_H */
