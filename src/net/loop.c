/*
 * loop.c - the per-worker epoll loop and the waits that yield to it.
 *
 * A coroutine that waits (tern_wait_fd, tern_sleep, tern_offload) parks a
 * `waiter` on its own stack, registers what it waits for, and yields.  The
 * loop resumes it when the fd is ready, the timer fires, the offload job is
 * done, or shutdown cancels the wait.  Exactly one of those wins: the first
 * sets `w->done` and resumes; the others find it done and do nothing, and
 * the resumed coroutine unregisters the rest before returning.
 *
 * Outside a coroutine the same calls block the thread (poll / nanosleep /
 * direct call), so library code needs no second code path.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "net/loop.h"

#define MAX_EVENTS 256

typedef struct waiter waiter;
struct waiter {
    loop_io io; /* must be first: epoll data points here */
    tern_timer timer;
    coro *co;
    tern_loop *loop;
    waiter *prev, *next;
    int result;
    int done;
};

struct tern_loop {
    int epfd;
    loop_io wake_io; /* eventfd */
    timer_heap timers;
    int64_t now;
    coro_pool *coros;
    loop_coro_done on_done;
    void (*wake_cb)(void *);
    void *wake_arg;
    waiter *parked; /* doubly linked list of parked waiters */
    unsigned nparked;
    int canceled;
    pthread_mutex_t done_mu; /* guards done_jobs (offload threads push) */
    offload_job *done_jobs;
    offload_job *local_jobs; /* posted from this loop's own thread: no eventfd */
    offload_job *local_tail;
};

static _Thread_local tern_loop *t_loop;

tern_loop *loop_current(void)
{
    return t_loop;
}
void loop_set_current(tern_loop *l)
{
    t_loop = l;
}
timer_heap *loop_timers(tern_loop *l)
{
    return &l->timers;
}
int64_t loop_now(const tern_loop *l)
{
    return l->now;
}
unsigned loop_parked(const tern_loop *l)
{
    return l->nparked;
}

int64_t loop_update_time(tern_loop *l)
{
    l->now = tern_now_ms();
    return l->now;
}

static void wake_io_cb(loop_io *io, uint32_t events);

tern_loop *loop_new(coro_pool *coros, loop_coro_done on_done)
{
    tern_loop *l = tern_calloc(1, sizeof *l);

    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->wake_io.cb = wake_io_cb;
    timer_heap_init(&l->timers);
    pthread_mutex_init(&l->done_mu, NULL);
    l->coros = coros;
    l->on_done = on_done;
    l->now = tern_now_ms();
    if (l->epfd < 0 || l->wake_io.fd < 0 || loop_add(l, &l->wake_io, EPOLLIN) != 0) {
        loop_free(l);
        return NULL;
    }
    return l;
}

void loop_free(tern_loop *l)
{
    if (l == NULL)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wake_io.fd >= 0)
        close(l->wake_io.fd);
    timer_heap_deinit(&l->timers);
    pthread_mutex_destroy(&l->done_mu);
    tern_free(l);
}

int loop_add(tern_loop *l, loop_io *io, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = io };

    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0 ? 0 : TERN_ESYS;
}

int loop_mod(tern_loop *l, loop_io *io, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = io };

    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0 ? 0 : TERN_ESYS;
}

void loop_del(tern_loop *l, loop_io *io)
{
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

void loop_resume(tern_loop *l, coro *c)
{
    if (coro_resume(c))
        l->on_done(c);
}

void loop_wake(tern_loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wake_io.fd, &one, sizeof one);

    (void)n; /* EAGAIN means a wake-up is already pending */
}

void loop_on_wake(tern_loop *l, void (*cb)(void *), void *arg)
{
    l->wake_cb = cb;
    l->wake_arg = arg;
}

void loop_post_done(tern_loop *l, offload_job *job)
{
    pthread_mutex_lock(&l->done_mu);
    job->next = l->done_jobs;
    l->done_jobs = job;
    pthread_mutex_unlock(&l->done_mu);
    loop_wake(l);
}

void loop_post_local(tern_loop *l, offload_job *job)
{
    job->next = NULL;
    if (l->local_tail)
        l->local_tail->next = job;
    else
        l->local_jobs = job;
    l->local_tail = job;
}

/* Resumes the coroutines posted from this thread, in order. */
static void run_local_jobs(tern_loop *l)
{
    while (l->local_jobs != NULL) {
        offload_job *job = l->local_jobs;

        l->local_jobs = job->next;
        if (l->local_jobs == NULL)
            l->local_tail = NULL;
        loop_resume(l, job->co);
    }
}

static void run_done_jobs(tern_loop *l)
{
    offload_job *list;

    pthread_mutex_lock(&l->done_mu);
    list = l->done_jobs;
    l->done_jobs = NULL;
    pthread_mutex_unlock(&l->done_mu);
    while (list != NULL) {
        offload_job *next = list->next;
        loop_resume(l, list->co);
        list = next;
    }
}

static void wake_io_cb(loop_io *io, uint32_t events)
{
    tern_loop *l = (tern_loop *)((char *)io - offsetof(tern_loop, wake_io));
    uint64_t v;
    ssize_t n = read(io->fd, &v, sizeof v);

    (void)n;
    (void)events;
    run_done_jobs(l);
    if (l->wake_cb != NULL)
        l->wake_cb(l->wake_arg);
}

int loop_run_once(tern_loop *l, int max_wait_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int64_t next = timer_next_deadline(&l->timers);
    int timeout = -1, n;

    if (next != INT64_MAX) {
        int64_t d = next - loop_update_time(l);
        timeout = d <= 0 ? 0 : (d > 60000 ? 60000 : (int)d);
    }
    if (max_wait_ms >= 0 && (timeout < 0 || max_wait_ms < timeout))
        timeout = max_wait_ms;
    if (l->local_jobs != NULL)
        timeout = 0; /* coroutines are ready to run: do not sleep */
    n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
    if (n < 0) {
        if (errno != EINTR)
            return TERN_ESYS;
        n = 0;
    }
    loop_update_time(l);
    for (int i = 0; i < n; i++) {
        loop_io *io = evs[i].data.ptr;
        io->cb(io, evs[i].events);
    }
    timer_run_expired(&l->timers, l->now);
    run_local_jobs(l);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Parking a coroutine                                                        */

static void park(tern_loop *l, waiter *w)
{
    w->loop = l;
    w->prev = NULL;
    w->next = l->parked;
    if (l->parked)
        l->parked->prev = w;
    l->parked = w;
    l->nparked++;
}

static void unpark(tern_loop *l, waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->parked = w->next;
    if (w->next)
        w->next->prev = w->prev;
    l->nparked--;
}

/* Finishes the wait with result r (first caller wins) and resumes it. */
static void waiter_fire(waiter *w, int r)
{
    if (w->done)
        return;
    w->done = 1;
    w->result = r;
    loop_resume(w->loop, w->co);
}

static void waiter_io_cb(loop_io *io, uint32_t events)
{
    waiter *w = (waiter *)io;
    int r = 0;

    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        r |= TERN_READ;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        r |= TERN_WRITE;
    waiter_fire(w, r ? r : TERN_READ);
}

static void waiter_timer_cb(tern_timer *t)
{
    waiter *w = (waiter *)((char *)t - offsetof(waiter, timer));

    waiter_fire(w, TERN_ETIMEDOUT);
}

void loop_cancel_waits(tern_loop *l)
{
    l->canceled = 1;
    /* Firing resumes coroutines that unpark themselves; restart each time. */
    for (;;) {
        waiter *w = l->parked;
        while (w != NULL && (w->done || w->co == NULL))
            w = w->next;
        if (w == NULL)
            break;
        waiter_fire(w, TERN_ECANCELED);
    }
}

int loop_is_canceled(const tern_loop *l)
{
    return l->canceled;
}

int tern_in_coroutine(void)
{
    return coro_current() != NULL && t_loop != NULL;
}

int tern_wait_fd(int fd, unsigned events, int64_t timeout_ms)
{
    tern_loop *l = t_loop;
    coro *co = coro_current();
    waiter w = { 0 };
    uint32_t ev = 0;

    if (fd < 0 || (events & (TERN_READ | TERN_WRITE)) == 0)
        return TERN_EINVAL;
    if (co == NULL || l == NULL) {
        struct pollfd p = { .fd = fd, .events = 0 };
        int rc;

        if (events & TERN_READ)
            p.events |= POLLIN;
        if (events & TERN_WRITE)
            p.events |= POLLOUT;
        do
            rc = poll(&p, 1,
                      timeout_ms < 0 ? -1
                                     : (int)(timeout_ms > 0x7fffffff ? 0x7fffffff : timeout_ms));
        while (rc < 0 && errno == EINTR);
        if (rc < 0)
            return TERN_ESYS;
        if (rc == 0)
            return TERN_ETIMEDOUT;
        rc = 0;
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
            rc |= TERN_READ;
        if (p.revents & (POLLOUT | POLLERR))
            rc |= TERN_WRITE;
        return rc ? rc : TERN_READ;
    }
    if (l->canceled)
        return TERN_ECANCELED;
    if (events & TERN_READ)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (events & TERN_WRITE)
        ev |= EPOLLOUT;
    w.io.fd = fd;
    w.io.cb = waiter_io_cb;
    w.co = co;
    timer_init(&w.timer, waiter_timer_cb);
    if (loop_add(l, &w.io, ev | EPOLLONESHOT) != 0)
        return TERN_ESYS;
    if (timeout_ms >= 0 && timer_arm(&l->timers, &w.timer, loop_update_time(l) + timeout_ms) != 0) {
        loop_del(l, &w.io);
        return TERN_ENOMEM;
    }
    park(l, &w);
    coro_yield();
    unpark(l, &w);
    loop_del(l, &w.io);
    timer_disarm(&l->timers, &w.timer);
    return w.result;
}

int tern_sleep(int64_t ms)
{
    tern_loop *l = t_loop;
    coro *co = coro_current();
    waiter w = { 0 };

    if (ms < 0)
        ms = 0;
    if (co == NULL || l == NULL) {
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return 0;
    }
    if (l->canceled)
        return TERN_ECANCELED;
    w.co = co;
    w.io.fd = -1;
    timer_init(&w.timer, waiter_timer_cb);
    /* Fresh time: the cached one may lag, and a sleep must last at least ms. */
    if (timer_arm(&l->timers, &w.timer, loop_update_time(l) + ms) != 0)
        return TERN_ENOMEM;
    park(l, &w);
    coro_yield();
    unpark(l, &w);
    timer_disarm(&l->timers, &w.timer);
    return w.result == TERN_ETIMEDOUT ? 0 : w.result;
}

int tern_offload(void (*fn)(void *arg), void *arg)
{
    tern_loop *l = t_loop;
    coro *co = coro_current();
    offload_pool *p = offload_default();
    offload_job job = { fn, arg, l, co, NULL };

    if (fn == NULL)
        return TERN_EINVAL;
    if (co == NULL || l == NULL || p == NULL) {
        fn(arg);
        return 0;
    }
    if (offload_submit(p, &job) != 0)
        return TERN_ENOMEM;
    /*
     * Not parked as a waiter: the job runs to completion whatever happens
     * (we cannot cancel a blocking call), so cancellation just lets it end.
     */
    coro_yield();
    return 0;
}
