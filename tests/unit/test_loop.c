/*
 * test_loop.c - the loop's waits: tern_sleep, tern_wait_fd and tern_offload
 * from coroutines on one loop, their blocking fallbacks outside coroutines,
 * and cancellation at shutdown.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <unistd.h>

#include "net/loop.h"

static tern_loop *L;
static coro_pool *P;
static int finished;

static void on_done(coro *c)
{
    coro_put(c);
    finished++;
}

static void setup(void)
{
    P = coro_pool_new(64 * 1024, 16);
    L = loop_new(P, on_done);
    cr_assert_not_null(L);
    loop_set_current(L);
    finished = 0;
}

static void teardown(void)
{
    loop_set_current(NULL);
    loop_free(L);
    coro_pool_free(P);
}

static void start(coro_fn fn, void *arg)
{
    coro *c = coro_get(P, fn, arg);
    cr_assert_not_null(c);
    loop_resume(L, c);
}

static void run_until(int n, int max_ms)
{
    int64_t end = tern_now_ms() + max_ms;
    while (finished < n && tern_now_ms() < end)
        loop_run_once(L, 50);
}

static int64_t woke_at[4];
static void sleeper(void *arg)
{
    intptr_t i = (intptr_t)arg;
    cr_assert(tern_in_coroutine());
    cr_assert_eq(tern_sleep(i == 0 ? 200 : 20), 0);
    woke_at[i] = tern_now_ms();
}

Test(loop, sleeping_coroutine_does_not_block_others, .init = setup, .fini = teardown)
{
    int64_t t0 = tern_now_ms();
    start(sleeper, (void *)0);
    start(sleeper, (void *)1);
    run_until(2, 2000);
    cr_assert_eq(finished, 2);
    cr_assert_lt(woke_at[1] - t0, 150, "the short sleep ended after %lld ms",
                 (long long)(woke_at[1] - t0));
    cr_assert_geq(woke_at[0] - t0, 200);
}

static int pipefd[2];
static int wait_result;
static void reader(void *arg)
{
    (void)arg;
    wait_result = tern_wait_fd(pipefd[0], TERN_READ, 2000);
}
static void writer(void *arg)
{
    (void)arg;
    tern_sleep(30);
    cr_assert_eq(write(pipefd[1], "x", 1), 1);
}

Test(loop, wait_fd_wakes_on_data, .init = setup, .fini = teardown)
{
    cr_assert_eq(pipe(pipefd), 0);
    start(reader, NULL);
    start(writer, NULL);
    run_until(2, 3000);
    cr_assert_eq(wait_result, TERN_READ);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void timed_reader(void *arg)
{
    (void)arg;
    wait_result = tern_wait_fd(pipefd[0], TERN_READ, 50);
}

Test(loop, wait_fd_times_out, .init = setup, .fini = teardown)
{
    cr_assert_eq(pipe(pipefd), 0);
    int64_t t0 = tern_now_ms();
    start(timed_reader, NULL);
    run_until(1, 2000);
    cr_assert_eq(wait_result, TERN_ETIMEDOUT);
    cr_assert_geq(tern_now_ms() - t0, 50);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void blocking_job(void *arg)
{
    usleep(100 * 1000);
    *(int *)arg = 7;
}
static int job_value;
static void offloader(void *arg)
{
    (void)arg;
    cr_assert_eq(tern_offload(blocking_job, &job_value), 0);
}

Test(loop, offload_runs_elsewhere_while_loop_serves, .init = setup, .fini = teardown)
{
    offload_pool *op = offload_pool_new(2);
    offload_set_default(op);
    int64_t t0 = tern_now_ms();
    start(offloader, NULL);
    start(sleeper, (void *)1); /* 20 ms: must finish while the job blocks */
    run_until(1, 2000);
    cr_assert_lt(woke_at[1] - t0, 90, "loop stalled by the offloaded job");
    run_until(2, 2000);
    cr_assert_eq(job_value, 7);
    offload_set_default(NULL);
    offload_pool_free(op);
}

static int cancel_rc;
static void long_sleeper(void *arg)
{
    (void)arg;
    cancel_rc = tern_sleep(10000);
}

Test(loop, cancel_wakes_parked_waits, .init = setup, .fini = teardown)
{
    start(long_sleeper, NULL);
    cr_assert_eq(loop_parked(L), 1);
    loop_cancel_waits(L);
    cr_assert_eq(finished, 1);
    cr_assert_eq(cancel_rc, TERN_ECANCELED);
    cr_assert_eq(loop_parked(L), 0);
}

Test(loop, waits_block_outside_coroutines)
{
    int fds[2];
    int64_t t0 = tern_now_ms();

    cr_assert_not(tern_in_coroutine());
    cr_assert_eq(tern_sleep(20), 0);
    cr_assert_geq(tern_now_ms() - t0, 20);
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(tern_wait_fd(fds[0], TERN_READ, 10), TERN_ETIMEDOUT);
    cr_assert_eq(write(fds[1], "x", 1), 1);
    cr_assert_eq(tern_wait_fd(fds[0], TERN_READ, 10), TERN_READ);
    cr_assert_eq(tern_wait_fd(fds[1], TERN_WRITE, 10), TERN_WRITE);
    cr_assert_eq(tern_wait_fd(-1, TERN_READ, 10), TERN_EINVAL);
    job_value = 0;
    cr_assert_eq(tern_offload(blocking_job, &job_value), 0);
    cr_assert_eq(job_value, 7);
    close(fds[0]);
    close(fds[1]);
}

static void *wake_thread(void *arg)
{
    usleep(30 * 1000);
    loop_wake(arg);
    return NULL;
}
static int woke;
static void on_wake(void *arg)
{
    (void)arg;
    woke = 1;
}

Test(loop, wake_from_another_thread, .init = setup, .fini = teardown)
{
    pthread_t t;
    loop_on_wake(L, on_wake, NULL);
    pthread_create(&t, NULL, wake_thread, L);
    int64_t end = tern_now_ms() + 2000;
    while (!woke && tern_now_ms() < end)
        loop_run_once(L, 500);
    pthread_join(t, NULL);
    cr_assert(woke);
}
