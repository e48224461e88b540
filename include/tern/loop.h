/*
 * tern/loop.h - waiting without blocking the worker.
 *
 * Every request handler runs in a coroutine on its worker's event loop.  The
 * calls below suspend the calling coroutine and let the loop serve other
 * connections until the wait is over.  Called outside a coroutine (from
 * main(), a test, an offload thread) they block the calling thread instead,
 * with the same results, so library code can use them anywhere.
 */
#ifndef TERN_LOOP_H
#define TERN_LOOP_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TERN_READ  0x1 /* fd readable (or hung up / error) */
#define TERN_WRITE 0x2 /* fd writable (or error) */

/**
 * Waits until fd is ready for any of `events` (TERN_READ | TERN_WRITE).
 * timeout_ms < 0 waits without limit.  Returns the ready events (> 0), or
 * TERN_ETIMEDOUT, or TERN_ECANCELED when the server is shutting down and the
 * wait was interrupted, or TERN_ESYS.  The fd must not be registered with
 * the loop by anyone else while waited on (tern registers it for the wait and
 * removes it after).
 */
TERN_API int tern_wait_fd(int fd, unsigned events, int64_t timeout_ms);

/**
 * Sleeps ms milliseconds (0 just yields to the loop once).  Returns 0, or
 * TERN_ECANCELED if the server's shutdown deadline passed while sleeping.
 */
TERN_API int tern_sleep(int64_t ms);

/**
 * Runs fn(arg) on the offload thread pool and waits (the coroutine yields)
 * until it returns.  For blocking calls: a third-party blocking library, a
 * large SQLite write, a password hash.  fn must not call tern_wait_fd or
 * tern_sleep's coroutine features (it runs on another thread, so those block
 * that thread).  Returns 0, or TERN_ENOMEM if the job could not be queued.
 * Outside a coroutine, fn runs inline on the calling thread.
 */
TERN_API int tern_offload(void (*fn)(void *arg), void *arg);

/** 1 when called from a request coroutine, else 0. */
TERN_API int tern_in_coroutine(void);

#ifdef __cplusplus
}
#endif
#endif /* TERN_LOOP_H */
