/*
 * pool.c - the bounded connection pool shared by the workers.
 *
 * One mutex guards the pool; it is never held across a wait or a driver
 * call, so a worker thread only ever blocks on it for a few instructions.
 *
 * Acquiring: an idle connection (newest first, so the warm ones stay warm
 * and the cold ones age out), else a new connection while the pool is below
 * its maximum, else a place in a bounded FIFO of waiters.  A waiter is a
 * coroutine parked on its own worker's loop, or (outside a request) a
 * thread on a condition variable.  Whoever releases a connection hands it
 * straight to the first waiter: under the mutex it marks the waiter granted,
 * then posts the waiter to its loop, which resumes the coroutine.  The
 * waiter's timeout runs on its own loop and takes the mutex too, so exactly
 * one of "granted" and "timed out" wins, and a granted waiter is resumed by
 * the post alone (its stack frame stays alive until then).
 *
 * A database that is down must not collect a pile of waiting requests: a
 * failed connect fails every waiter at once, and until the backoff delay
 * (doubling from backoff_min_ms to backoff_max_ms, with jitter so a fleet
 * of instances does not reconnect in step) has passed, acquirers that would
 * need a new connection get TERN_EUNAVAIL immediately.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "db/internal.h"
#include "net/coro.h"
#include "net/loop.h"
#include "net/timer.h"

enum { W_WAITING, W_GRANTED, W_TIMEDOUT };

#define WAIT_SLICE_MS 250 /* how often a waiting coroutine checks for shutdown */
enum { GRANT_CONN, GRANT_SLOT, GRANT_FAIL };

struct db_waiter {
    db_waiter *next;
    db_pool *pool;
    int state;
    int grant;     /* GRANT_* once granted */
    db_conn *conn; /* GRANT_CONN */
    /* A coroutine waiter: */
    tern_loop *loop;
    offload_job job; /* the post that resumes it */
    tern_timer timer;
    int64_t deadline; /* monotonic ms */
    /* A thread waiter: */
    pthread_cond_t cond;
    int is_thread;
};

int db_pool_init(db_pool *p, tern_db *db, const char *name, unsigned min, unsigned max)
{
    memset(p, 0, sizeof *p);
    p->db = db;
    p->name = name;
    p->min = min;
    p->max = max;
    return pthread_mutex_init(&p->mu, NULL) == 0 ? 0 : TERN_ESYS;
}

void db_pool_deinit(db_pool *p)
{
    db_conn *c = p->idle;

    while (c != NULL) {
        db_conn *next = c->next;
        p->db->drv->disconnect(c);
        c = next;
    }
    p->idle = NULL;
    p->nidle = p->open = 0;
    pthread_mutex_destroy(&p->mu);
}

void db_pool_stats_add(db_pool *p, tern_db_stats *s)
{
    pthread_mutex_lock(&p->mu);
    s->in_use += p->in_use;
    s->idle += p->nidle;
    s->waiting += p->nwaiting;
    s->acquired += p->acquired;
    s->timeouts += p->timeouts;
    s->rejected += p->rejected;
    s->connects += p->connects;
    s->connect_failures += p->connect_failures;
    if (p->down)
        s->ready = 0;
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------------ */
/* Waiters                                                                    */

static void enqueue(db_pool *p, db_waiter *w)
{
    w->next = NULL;
    if (p->wait_tail)
        p->wait_tail->next = w;
    else
        p->wait_head = w;
    p->wait_tail = w;
    p->nwaiting++;
}

static db_waiter *dequeue(db_pool *p)
{
    db_waiter *w = p->wait_head;

    if (w != NULL) {
        p->wait_head = w->next;
        if (p->wait_head == NULL)
            p->wait_tail = NULL;
        p->nwaiting--;
    }
    return w;
}

/* Removes w from the queue (a timeout); the queue is bounded by max_waiters. */
static void unlink_waiter(db_pool *p, db_waiter *w)
{
    db_waiter **pp = &p->wait_head, *prev = NULL;

    while (*pp != NULL && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return;
    *pp = w->next;
    if (p->wait_tail == w)
        p->wait_tail = prev;
    p->nwaiting--;
}

/*
 * Marks w granted (mutex held).  A thread waiter is signalled here; a
 * coroutine waiter must be posted to its loop after the mutex is released
 * (returned through *post).
 */
static void grant(db_waiter *w, int how, db_conn *c, db_waiter **post)
{
    w->state = W_GRANTED;
    w->grant = how;
    w->conn = c;
    if (w->is_thread) {
        pthread_cond_signal(&w->cond);
    } else {
        w->next = *post;
        *post = w;
    }
}

static void post_all(db_waiter *list)
{
    tern_loop *here = loop_current();

    while (list != NULL) {
        db_waiter *next = list->next;

        /* A waiter on this very loop is resumed without waking it up. */
        if (list->loop == here)
            loop_post_local(here, &list->job);
        else
            loop_post_done(list->loop, &list->job);
        list = next;
    }
}

static void waiter_timeout(tern_timer *t)
{
    db_waiter *w = (db_waiter *)((char *)t - offsetof(db_waiter, timer));
    db_pool *p = w->pool;
    int64_t now = loop_update_time(w->loop);
    int resume = 0;

    pthread_mutex_lock(&p->mu);
    if (w->state == W_WAITING) {
        if (now >= w->deadline || loop_is_canceled(w->loop)) {
            unlink_waiter(p, w);
            w->state = W_TIMEDOUT;
            resume = 1;
        } else {
            /* Not yet: look again soon (see wait_grant). */
            int64_t next = now + WAIT_SLICE_MS;

            if (timer_arm(loop_timers(w->loop), &w->timer,
                          next < w->deadline ? next : w->deadline) != 0) {
                unlink_waiter(p, w); /* cannot keep watching: give up now */
                w->state = W_TIMEDOUT;
                resume = 1;
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (resume)
        loop_resume(w->loop, w->job.co);
    /* else: still waiting, or granted and the post that resumes it is on its way */
}

/* Waits for a grant (mutex held on entry, released on return). */
static void wait_grant(db_pool *p, db_waiter *w, int timeout_ms)
{
    tern_loop *l = loop_current();
    coro *co = coro_current();

    w->pool = p;
    w->state = W_WAITING;
    enqueue(p, w);
    if (co != NULL && l != NULL) {
        w->loop = l;
        w->job.loop = l;
        w->job.co = co;
        /*
         * The timer fires every WAIT_SLICE_MS until the deadline, so a
         * shutdown that cancels the loop's waits ends this one too (pool
         * waiters are not parked in the loop's list: the grant comes from
         * other threads, through the pool's mutex).
         */
        w->deadline = loop_update_time(l) + timeout_ms;
        timer_init(&w->timer, waiter_timeout);
        if (timer_arm(loop_timers(l), &w->timer,
                      timeout_ms > WAIT_SLICE_MS ? loop_now(l) + WAIT_SLICE_MS : w->deadline) !=
            0) {
            unlink_waiter(p, w);
            w->state = W_TIMEDOUT;
            pthread_mutex_unlock(&p->mu);
            return;
        }
        pthread_mutex_unlock(&p->mu);
        coro_yield();
        timer_disarm(loop_timers(l), &w->timer);
        return;
    }
    /* A plain thread (main, a test, an offload job): a condition variable. */
    {
        pthread_condattr_t ca;
        struct timespec ts;

        w->is_thread = 1;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &ca);
        pthread_condattr_destroy(&ca);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (w->state == W_WAITING) {
            if (pthread_cond_timedwait(&w->cond, &p->mu, &ts) == ETIMEDOUT &&
                w->state == W_WAITING) {
                unlink_waiter(p, w);
                w->state = W_TIMEDOUT;
            }
        }
        pthread_mutex_unlock(&p->mu);
        pthread_cond_destroy(&w->cond);
    }
}

/* ------------------------------------------------------------------------ */
/* Connecting                                                                 */

/* Sets the next reconnect time after a failure: doubling, jittered, capped. */
static void backoff(db_pool *p, int64_t now)
{
    const tern_db_config *cfg = &p->db->cfg;
    int b = p->backoff_ms ? p->backoff_ms * 2 : cfg->backoff_min_ms;

    if (b > cfg->backoff_max_ms)
        b = cfg->backoff_max_ms;
    if (b < 1)
        b = 1;
    p->backoff_ms = b;
    /* Full delay in [b/2, b): spread out, never zero. */
    p->next_connect_ms = now + b / 2 + (int64_t)((unsigned)rand() % (unsigned)(b / 2 + 1));
}

int db_pool_run(db_pool *p, void (*fn)(void *), void *arg)
{
    if (p->offload)
        return tern_offload(fn, arg);
    fn(arg);
    return 0;
}

typedef struct connect_job {
    db_pool *p;
    db_conn *c;
    db_err *e;
    int rc;
} connect_job;

static void connect_fn(void *arg)
{
    connect_job *j = arg;

    j->rc = j->p->db->drv->connect(j->p->db, j->p, &j->c, j->e);
}

/*
 * Opens a connection for a slot already counted in p->open and p->in_use.
 * On failure the slot is given back and every waiter fails with it: the
 * database is down, and they should hear it now, not at their timeout.
 */
static int connect_slot(db_pool *p, db_conn **out, db_err *e)
{
    connect_job j = { p, NULL, e, 0 };
    db_waiter *post = NULL, *w;
    int64_t now;

    if (db_pool_run(p, connect_fn, &j) != 0)
        j.rc = db_err_set(e, TERN_ENOMEM, "cannot queue the connect");
    now = tern_now_ms();
    pthread_mutex_lock(&p->mu);
    if (j.rc != 0) {
        p->open--;
        p->in_use--;
        p->connect_failures++;
        if (!p->down)
            tern_log(TERN_LOG_WARN, "db: %s: cannot connect: %s", p->name, e->msg);
        p->down = 1;
        backoff(p, now);
        while ((w = dequeue(p)) != NULL)
            grant(w, GRANT_FAIL, NULL, &post);
        pthread_mutex_unlock(&p->mu);
        post_all(post);
        if (j.rc != TERN_ENOMEM)
            j.rc = e->code = TERN_EUNAVAIL;
        return j.rc;
    }
    if (p->down)
        tern_log(TERN_LOG_INFO, "db: %s: connected again", p->name);
    p->down = 0;
    p->backoff_ms = 0;
    p->connects++;
    p->acquired++;
    pthread_mutex_unlock(&p->mu);
    j.c->db = p->db;
    j.c->pool = p;
    j.c->created_ms = j.c->last_used_ms = now;
    *out = j.c;
    return 0;
}

/* Closes c, whose slot was already given back. */
static void close_conn(db_pool *p, db_conn *c)
{
    p->db->drv->disconnect(c);
}

/* 1 when an idle connection should be closed instead of reused (mutex held). */
static int stale(db_pool *p, const db_conn *c, int64_t now)
{
    const tern_db_config *cfg = &p->db->cfg;

    if (cfg->max_lifetime_ms > 0 && now - c->created_ms >= cfg->max_lifetime_ms)
        return 1;
    return cfg->idle_timeout_ms > 0 && now - c->last_used_ms >= cfg->idle_timeout_ms &&
           p->open > p->min;
}

int db_pool_acquire(db_pool *p, db_conn **out, db_err *e)
{
    const tern_db_config *cfg = &p->db->cfg;
    db_waiter w;
    db_conn *c;
    int64_t now = tern_now_ms();

    *out = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->idle != NULL) {
            c = p->idle;
            p->idle = c->next;
            p->nidle--;
            if (stale(p, c, now)) {
                p->open--;
                pthread_mutex_unlock(&p->mu);
                close_conn(p, c);
                pthread_mutex_lock(&p->mu);
                continue;
            }
            p->in_use++;
            p->acquired++;
            pthread_mutex_unlock(&p->mu);
            if (c->suspect) {
                db_err pe;

                if (p->db->drv->ping(c, &pe) != 0) {
                    pthread_mutex_lock(&p->mu);
                    p->in_use--;
                    p->open--;
                    pthread_mutex_unlock(&p->mu);
                    close_conn(p, c);
                    pthread_mutex_lock(&p->mu);
                    continue;
                }
                c->suspect = 0;
            }
            *out = c;
            return 0;
        }
        if (p->open < p->max) {
            if (p->down && now < p->next_connect_ms) {
                p->rejected++;
                pthread_mutex_unlock(&p->mu);
                return db_err_set(e, TERN_EUNAVAIL, "database down; next connect attempt in %d ms",
                                  (int)(p->next_connect_ms - now));
            }
            p->open++;
            p->in_use++;
            pthread_mutex_unlock(&p->mu);
            return connect_slot(p, out, e);
        }
        if (p->max == 0 || p->nwaiting >= cfg->max_waiters) {
            p->rejected++;
            pthread_mutex_unlock(&p->mu);
            return db_err_set(e, TERN_EUNAVAIL, "%s: %u connections busy and %u waiting", p->name,
                              p->in_use, p->nwaiting);
        }
        memset(&w, 0, sizeof w);
        wait_grant(p, &w, cfg->acquire_timeout_ms > 0 ? cfg->acquire_timeout_ms : 1);
        if (w.state == W_TIMEDOUT) {
            pthread_mutex_lock(&p->mu);
            p->timeouts++;
            pthread_mutex_unlock(&p->mu);
            return db_err_set(e, TERN_EUNAVAIL, "%s: no connection free within %d ms", p->name,
                              cfg->acquire_timeout_ms);
        }
        switch (w.grant) {
        case GRANT_CONN:
            /* The releaser counted it as in use for us. */
            *out = w.conn;
            pthread_mutex_lock(&p->mu);
            p->acquired++;
            pthread_mutex_unlock(&p->mu);
            return 0;
        case GRANT_SLOT: return connect_slot(p, out, e);
        default: return db_err_set(e, TERN_EUNAVAIL, "%s: database down", p->name);
        }
    }
}

void db_pool_release(db_pool *p, db_conn *c)
{
    const tern_db_config *cfg = &p->db->cfg;
    int64_t now = tern_now_ms();
    db_waiter *w, *post = NULL;
    int drop;

    c->last_used_ms = now;
    drop = c->broken || (cfg->max_lifetime_ms > 0 && now - c->created_ms >= cfg->max_lifetime_ms);
    pthread_mutex_lock(&p->mu);
    w = dequeue(p);
    if (drop) {
        if (w != NULL) {
            /* Its slot passes to the waiter, who opens a fresh connection. */
            grant(w, GRANT_SLOT, NULL, &post);
        } else {
            p->open--;
            p->in_use--;
        }
    } else if (w != NULL) {
        grant(w, GRANT_CONN, c, &post);
    } else {
        c->next = p->idle;
        p->idle = c;
        p->nidle++;
        p->in_use--;
    }
    pthread_mutex_unlock(&p->mu);
    post_all(post);
    if (drop)
        close_conn(p, c);
}
