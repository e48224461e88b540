/*
 * server.c - workers, listeners, connections and the request lifecycle.
 *
 * Each worker thread runs its own loop with its own SO_REUSEPORT listener, so
 * no lock is taken on the request path.  A connection is registered once
 * with epoll, edge-triggered for both directions; `readable` / `writable`
 * remember readiness that has not been used up yet.
 *
 * A connection's life:
 *
 *   idle         no buffer, no request context, no coroutine; keep-alive
 *                timer armed.  10,000 of these cost a few hundred KiB.
 *   reading head bytes arrive in a pooled read buffer and are parsed in loop
 *                context; header timer armed.
 *   serving      a complete head (or a parse error) starts a coroutine that
 *                serves every complete request in the buffer (pipelining),
 *                appends each response to the write buffer in order, then
 *                flushes with one send.  Handlers may wait; the loop goes on.
 *   closing      after a framing error, `Connection: close`, an HTTP/1.0
 *                request without keep-alive, or shutdown: flush, shut down
 *                the write side, drain briefly (so the peer gets the
 *                response instead of a reset), close.
 *
 * Timeouts (config): the head must arrive within header_timeout (408), a
 * body may idle body_timeout (408), a keep-alive connection may idle
 * keepalive_timeout (closed silently), a blocked write may idle
 * write_timeout (closed).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app/internal.h"

#define CONN_EVENTS     (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define FLUSH_THRESHOLD (64 * 1024) /* flush mid-batch past this much output */
#define FREE_BUFS_MAX   1024
#define LINGER_MS       500
#define LINGER_BYTES    (256 * 1024)

static void conn_io_cb(loop_io *io, uint32_t events);
static void conn_timer_cb(tern_timer *t);
static void conn_read_requests(conn *c);
static void conn_serve(void *arg);
static void worker_check_done(worker *w);

static size_t rbuf_size(const tern_app *app)
{
    return app->cfg.max_request_line + app->cfg.max_header_bytes + 4096;
}

/* ------------------------------------------------------------------------ */
/* Pools                                                                      */

static char *rbuf_get(worker *w)
{
    if (w->nfree_bufs > 0)
        return w->free_bufs[--w->nfree_bufs];
    return tern_malloc(rbuf_size(w->app));
}

static void rbuf_put(worker *w, char *p)
{
    if (p == NULL)
        return;
    if (w->nfree_bufs == w->capfree_bufs && w->capfree_bufs < FREE_BUFS_MAX) {
        unsigned cap = w->capfree_bufs ? w->capfree_bufs * 2 : 16;
        char **v = tern_realloc(w->free_bufs, cap * sizeof *v);
        if (v != NULL) {
            w->free_bufs = v;
            w->capfree_bufs = cap;
        }
    }
    if (w->nfree_bufs < w->capfree_bufs)
        w->free_bufs[w->nfree_bufs++] = p;
    else
        tern_free(p);
}

static tern_req *req_get(worker *w)
{
    tern_req *r = w->free_reqs;

    if (r != NULL) {
        w->free_reqs = r->next_free;
        return r;
    }
    r = tern_calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->hdrs = tern_calloc(w->app->cfg.max_headers, sizeof *r->hdrs);
    if (r->hdrs == NULL) {
        tern_free(r);
        return NULL;
    }
    r->w = w;
    r->app = w->app;
    tern_arena_init(&r->arena, 8192);
    tern_buf_init(&r->out, 0);
    tern_buf_init(&r->body_buf, 0);
    tern__req_reset(r);
    return r;
}

static void req_free(tern_req *r)
{
    tern_arena_deinit(&r->arena);
    tern_buf_deinit(&r->out);
    tern_buf_deinit(&r->body_buf);
    tern_free(r->hdrs);
    tern_free(r);
}

static void req_put(worker *w, tern_req *r)
{
    if (r == NULL)
        return;
    tern__req_reset(r);
    r->c = NULL;
    r->next_free = w->free_reqs;
    w->free_reqs = r;
}

/* ------------------------------------------------------------------------ */
/* Date and ids                                                               */

const char *tern__worker_date(worker *w)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != w->date_sec) {
        w->date_sec = ts.tv_sec;
        tern_http_date(ts.tv_sec, w->date);
    }
    return w->date;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                                */

static void conn_arm(conn *c, int ms)
{
    tern_loop *l = c->w->loop;

    (void)timer_arm(loop_timers(l), &c->timer, loop_now(l) + ms);
}

static void conn_release_idle(conn *c)
{
    /* Give back what an idle connection does not need. */
    if (c->rpos == c->rlen) {
        rbuf_put(c->w, c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rpos = 0;
        req_put(c->w, c->req);
        c->req = NULL;
    }
    if (c->wbuf.len == 0 && c->wbuf.cap > FLUSH_THRESHOLD)
        tern_buf_deinit(&c->wbuf);
}

/* Unlinks c from the worker's live list and releases what it holds. */
static void conn_unlink(conn *c)
{
    worker *w = c->w;

    timer_disarm(loop_timers(w->loop), &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    rbuf_put(w, c->rbuf);
    c->rbuf = NULL;
    req_put(w, c->req);
    c->req = NULL;
    tern_buf_deinit(&c->wbuf);
}

/*
 * Retires a closed connection.  The struct itself is freed at the end of the
 * loop iteration (worker_reap): the epoll batch being dispatched may still
 * hold events for it, and those must find a dead connection, not freed
 * memory.
 */
static void conn_free(conn *c)
{
    worker *w = c->w;

    conn_unlink(c);
    c->next = w->zombies;
    w->zombies = c;
    worker_check_done(w);
}

static void worker_reap(worker *w)
{
    while (w->zombies != NULL) {
        conn *c = w->zombies;
        w->zombies = c->next;
        tern_free(c);
    }
}

/* Closes the socket; frees now, or when the running coroutine finishes. */
static void conn_close(conn *c)
{
    if (!c->dead) {
        c->dead = 1;
        loop_del(c->w->loop, &c->io);
        close(c->io.fd);
        c->io.fd = -1;
    }
    if (c->co == NULL && !c->freed) {
        c->freed = 1;
        conn_free(c);
    }
}

static void conn_start(worker *w, int fd)
{
    conn *c = tern_calloc(1, sizeof *c);
    int one = 1;

    if (c == NULL) {
        close(fd);
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->io.fd = fd;
    c->io.cb = conn_io_cb;
    c->w = w;
    tern_buf_init(&c->wbuf, 0);
    timer_init(&c->timer, conn_timer_cb);
    if (loop_add(w->loop, &c->io, CONN_EVENTS) != 0) {
        close(fd);
        tern_free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    conn_arm(c, w->app->cfg.header_timeout_ms);
}

static void conn_io_cb(loop_io *io, uint32_t events)
{
    conn *c = (conn *)io;

    if (c->dead)
        return; /* closed earlier in this epoll batch */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->readable = 1;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->writable = 1;
    if (c->co != NULL) {
        if ((c->wait == WAIT_READ && c->readable) || (c->wait == WAIT_WRITE && c->writable)) {
            c->wait = WAIT_NONE;
            loop_resume(c->w->loop, c->co);
        }
        return;
    }
    if (c->readable)
        conn_read_requests(c);
}

static void conn_timer_cb(tern_timer *t)
{
    conn *c = (conn *)((char *)t - offsetof(conn, timer));

    if (c->co != NULL) {
        if (c->wait != WAIT_NONE) {
            c->wait = WAIT_NONE;
            c->timed_out = 1;
            loop_resume(c->w->loop, c->co);
        }
        return;
    }
    if (c->rlen > c->rpos && c->req != NULL) {
        /* A partial head outlived header_timeout: answer 408 and close. */
        c->req->parse_rc = -408;
        c->co = coro_get(c->w->coros, conn_serve, c);
        if (c->co == NULL) {
            conn_close(c);
            return;
        }
        coro_set_data(c->co, c);
        loop_resume(c->w->loop, c->co);
        return;
    }
    conn_close(c); /* idle keep-alive connection */
}

/* Starts the coroutine that serves the request(s) at c->rpos. */
static void conn_dispatch(conn *c)
{
    c->co = coro_get(c->w->coros, conn_serve, c);
    if (c->co == NULL) {
        tern_log(TERN_LOG_ERROR, "out of memory starting a request coroutine");
        conn_close(c);
        return;
    }
    coro_set_data(c->co, c);
    /*
     * The head/keep-alive timer stays armed: if it fires while the handler
     * runs (not waiting on the socket) it does nothing, and the next wait or
     * the end of the request re-arms it.  Saves a heap operation per request.
     */
    loop_resume(c->w->loop, c->co);
}

static void parse_head(conn *c)
{
    const tern_config *cfg = &c->w->app->cfg;
    h1_limits lim = { cfg->max_request_line, cfg->max_header_bytes, cfg->max_headers };
    tern_req *r = c->req;

    r->h.headers = r->hdrs;
    r->parse_rc = h1_parse_request(&r->h, c->rbuf + c->rpos, c->rlen - c->rpos, &lim, &r->scanned);
}

/*
 * Loop context: reads what the socket has, and starts serving once a head is
 * complete (or broken).  Called when the socket turned readable and no
 * coroutine owns the connection.
 */
static void conn_read_requests(conn *c)
{
    worker *w = c->w;
    size_t cap = rbuf_size(w->app);

    for (;;) {
        if (c->rbuf == NULL) {
            c->rbuf = rbuf_get(w);
            if (c->rbuf == NULL) {
                conn_close(c);
                return;
            }
            c->rlen = c->rpos = 0;
        }
        if (c->req == NULL) {
            c->req = req_get(w);
            if (c->req == NULL) {
                conn_close(c);
                return;
            }
        }
        if (c->rlen == cap && c->rpos > 0) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
            c->req->scanned = 0;
        }
        if (c->readable && c->rlen < cap) {
            size_t space = cap - c->rlen;
            ssize_t n = recv(c->io.fd, c->rbuf + c->rlen, space, 0);

            if (n > 0) {
                int was_idle = c->rlen == c->rpos;
                c->rlen += (size_t)n;
                if ((size_t)n < space)
                    c->readable = 0;
                if (was_idle && c->nrequests > 0)
                    conn_arm(c, w->app->cfg.header_timeout_ms);
            } else if (n == 0) {
                c->eof = 1;
                c->readable = 0;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->readable = 0;
            } else if (errno != EINTR) {
                conn_close(c);
                return;
            }
        }
        if (c->rlen > c->rpos) {
            parse_head(c);
            if (c->req->parse_rc != 0) {
                conn_dispatch(c);
                return;
            }
        }
        if (c->eof) {
            conn_close(c); /* peer gone before a complete request */
            return;
        }
        if (!c->readable) {
            if (c->rlen == c->rpos)
                conn_release_idle(c);
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Coroutine side: waiting on the connection's own socket                     */

/* Parks the request coroutine until the socket is ready or the timer fires. */
static int conn_wait(conn *c, int what, int timeout_ms)
{
    if (c->dead)
        return TERN_ECLOSED;
    if (c->w->app->stopping && c->w->shutdown_deadline != 0 &&
        loop_now(c->w->loop) >= c->w->shutdown_deadline)
        return TERN_ECANCELED;
    c->timed_out = 0;
    c->wait = (unsigned char)what;
    conn_arm(c, timeout_ms);
    coro_yield();
    c->wait = WAIT_NONE;
    timer_disarm(loop_timers(c->w->loop), &c->timer);
    if (c->dead)
        return TERN_ECLOSED;
    if (c->timed_out)
        return TERN_ETIMEDOUT;
    return 0;
}

/*
 * Receives into dst (cap > 0) from inside the coroutine, waiting up to
 * timeout_ms of idleness.  Returns bytes (> 0), TERN_ECLOSED at EOF or on
 * error, TERN_ETIMEDOUT, or TERN_ECANCELED.
 */
static long conn_recv(conn *c, char *dst, size_t cap, int timeout_ms)
{
    for (;;) {
        ssize_t n;
        int rc;

        if (c->eof || c->dead)
            return TERN_ECLOSED;
        n = recv(c->io.fd, dst, cap, 0);
        if (n > 0) {
            if ((size_t)n < cap)
                c->readable = 0;
            return (long)n;
        }
        if (n == 0) {
            c->eof = 1;
            return TERN_ECLOSED;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return TERN_ECLOSED;
        c->readable = 0;
        rc = conn_wait(c, WAIT_READ, timeout_ms);
        if (rc != 0)
            return rc;
    }
}

int tern__conn_read_more(conn *c, int timeout_ms)
{
    size_t cap = rbuf_size(c->w->app);
    long n;

    if (c->rlen == cap) {
        if (c->rpos == 0)
            return TERN_ETOOBIG;
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    n = conn_recv(c, c->rbuf + c->rlen, cap - c->rlen, timeout_ms);
    if (n < 0)
        return (int)n;
    c->rlen += (size_t)n;
    return 0;
}

long tern__conn_recv(conn *c, char *dst, size_t cap, int timeout_ms)
{
    return conn_recv(c, dst, cap, timeout_ms);
}

int tern__conn_flush(conn *c)
{
    size_t off = 0;
    int rc = 0;

    while (off < c->wbuf.len) {
        ssize_t n;

        if (c->dead) {
            rc = TERN_ECLOSED;
            break;
        }
        n = send(c->io.fd, c->wbuf.p + off, c->wbuf.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->writable = 0;
            rc = conn_wait(c, WAIT_WRITE, c->w->app->cfg.write_timeout_ms);
            if (rc != 0)
                break;
            continue;
        }
        rc = TERN_ECLOSED;
        break;
    }
    if (rc != 0) {
        c->closing = 1;
        c->wbuf.len = 0;
        return rc;
    }
    c->wbuf.len = 0;
    return 0;
}

/*
 * Closing politely: shut down our side, then read and drop what the peer
 * still sends for a moment, so it receives our response rather than a reset
 * caused by unread data (nginx calls this lingering close).
 */
static void conn_linger(conn *c)
{
    char sink[4096];
    size_t total = 0;
    int64_t until = loop_now(c->w->loop) + LINGER_MS;

    if (c->dead)
        return;
    (void)shutdown(c->io.fd, SHUT_WR);
    while (!c->eof && total < LINGER_BYTES) {
        int64_t left = until - loop_update_time(c->w->loop);
        long n;

        if (left <= 0)
            break;
        n = conn_recv(c, sink, sizeof sink, (int)left);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* ------------------------------------------------------------------------ */
/* Serving                                                                    */

static int parse_next(conn *c)
{
    tern_req *r = c->req;

    tern__req_reset(r);
    if (c->rlen == c->rpos)
        return 0;
    parse_head(c);
    return r->parse_rc;
}

/* Serves one request whose head is parsed (or failed) in c->req. */
static void serve_one(conn *c)
{
    tern_req *r = c->req;
    tern_app *app = c->w->app;
    const tern_config *cfg = &app->cfg;
    int rr;

    c->nrequests++;
    r->c = c;
    r->start_ms = loop_now(c->w->loop);
    clock_gettime(CLOCK_MONOTONIC, &r->start_ts);
    if (r->parse_rc < 0) {
        c->closing = 1;
        c->rpos = c->rlen; /* framing can no longer be trusted */
        r->h.nheaders = 0; /* nor the headers: no middleware runs */
        if (app->uses_request_id)
            tern__request_id_generate(r);
        tern__respond_error(r, -r->parse_rc, NULL);
        return;
    }
    c->rpos += r->h.head_len;
    if (!(r->h.flags & H1_KEEPALIVE) || c->w->shutting_down ||
        (cfg->max_keepalive_requests && c->nrequests >= cfg->max_keepalive_requests))
        c->closing = 1;
    if (r->h.flags & H1_CHUNKED) {
        r->body_state = BODY_PENDING;
        h1_chunked_init(&r->chunked);
    } else if ((r->h.flags & H1_HAS_CL) && r->h.content_length > 0) {
        r->body_state = BODY_PENDING;
        r->body_left = r->h.content_length;
    }

    /* A response to HEAD never has a body, whatever answers it. */
    r->head_only = tern_str_eq(r->h.method, TERN_STR("HEAD"));
    if (r->h.flags & H1_ASTERISK) {
        if (tern_str_eq(r->h.method, TERN_STR("OPTIONS"))) {
            tern_header(r, "Allow", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
            tern_send(r, 204, NULL, NULL, 0);
        } else {
            tern__respond_error(r, 400, "the asterisk target is only allowed with OPTIONS");
        }
    } else {
        rr = router_find(app->router, r->h.method, r->h.path, &r->m);
        r->route_result = rr;
        if (rr == ROUTER_FOUND) {
            r->route = r->m.data;
            if ((r->h.flags & H1_HAS_CL) && r->h.content_length > r->route->body_limit) {
                c->closing = 1;
                r->body_state = BODY_FAILED; /* never read it */
                tern__run_early(r, 413, "the request body is larger than this route accepts");
            } else {
                tern__run_chain(r);
            }
        } else {
            /* No route: app-wide middleware still runs (ids, logs), then 404/405/204. */
            r->m.nparams = 0;
            r->route = &app->fallback;
            tern__run_chain(r);
        }
    }
    if (r->body_state == BODY_PENDING && !c->closing && tern__req_discard_body(r) != 0)
        c->closing = 1;
    if (r->body_state == BODY_FAILED || r->body_state == BODY_PENDING)
        c->closing = 1;
}

/* The request coroutine: serves every complete request in the buffer. */
static void conn_serve(void *arg)
{
    conn *c = arg;

    for (;;) {
        serve_one(c);
        if (c->closing || c->dead)
            break;
        if (c->wbuf.len >= FLUSH_THRESHOLD && tern__conn_flush(c) != 0)
            break;
        if (parse_next(c) == 0)
            break;
    }
    if (!c->dead && c->wbuf.len > 0)
        (void)tern__conn_flush(c);
    if (c->closing && !c->dead)
        conn_linger(c);
}

/* Loop context: the request coroutine finished. */
static void on_coro_done(coro *co)
{
    conn *c = coro_get_data(co);
    worker *w = c->w;

    coro_put(co);
    c->co = NULL;
    if (c->dead || c->closing || w->shutting_down) {
        conn_close(c);
        return;
    }
    if (c->rlen == c->rpos) {
        conn_release_idle(c);
        conn_arm(c, w->app->cfg.keepalive_timeout_ms);
    } else {
        tern__req_reset(c->req); /* partial next head: keep parsing */
        conn_arm(c, w->app->cfg.header_timeout_ms);
    }
    if (c->readable || c->eof)
        conn_read_requests(c);
}

/* ------------------------------------------------------------------------ */
/* Listener                                                                   */

/* At max_conns: answer 503 without reading anything, and close. */
static void refuse(worker *w, int fd)
{
    char head[320], body[256], id[21], idh[48] = "";
    struct iovec iov[2];
    struct msghdr msg = { 0 };
    int bn, hn;

    id[0] = '\0';
    if (w->app->uses_request_id) {
        tern__gen_id(w, id);
        snprintf(idh, sizeof idh, "X-Request-Id: %s\r\n", id);
    }
    bn = snprintf(body, sizeof body,
                  "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
                  "\"detail\":\"the server has too many open connections\"%s%s%s}",
                  id[0] ? ",\"request_id\":\"" : "", id, id[0] ? "\"" : "");
    hn = snprintf(head, sizeof head,
                  "HTTP/1.1 503 Service Unavailable\r\nDate: %.29s\r\n"
                  "Content-Type: application/problem+json\r\nContent-Length: %d\r\n"
                  "Retry-After: 1\r\nConnection: close\r\n%s\r\n",
                  tern__worker_date(w), bn, idh);
    iov[0].iov_base = head;
    iov[0].iov_len = (size_t)hn;
    iov[1].iov_base = body;
    iov[1].iov_len = (size_t)bn;
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    (void)sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)shutdown(fd, SHUT_WR);
    close(fd);
}

static void listen_cb(loop_io *io, uint32_t events)
{
    worker *w = (worker *)((char *)io - offsetof(worker, listen_io));

    (void)events;
    for (int i = 0; i < 64 && !w->shutting_down; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                tern_log(TERN_LOG_WARN, "accept: out of file descriptors");
            break;
        }
        if (w->nconns >= w->app->cfg.max_conns) {
            refuse(w, fd);
            continue;
        }
        conn_start(w, fd);
    }
}

/* ------------------------------------------------------------------------ */
/* Workers and shutdown                                                       */

static void worker_check_done(worker *w)
{
    if (w->shutting_down && w->nconns == 0)
        w->done = 1;
}

static void shutdown_timer_cb(tern_timer *t)
{
    worker *w = (worker *)((char *)t - offsetof(worker, shutdown_timer));

    if (w->shutdown_deadline == 0)
        return;
    if (loop_now(w->loop) >= w->shutdown_deadline + 1000) {
        /* Handlers ignored cancellation: give up on them. */
        tern_log(TERN_LOG_WARN, "worker %u: %u connection(s) still busy at shutdown", w->index,
                 w->nconns);
        w->done = 1;
        return;
    }
    /* Deadline: cancel parked waits and socket waits so handlers unwind. */
    loop_cancel_waits(w->loop);
    for (conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->co != NULL && c->wait != WAIT_NONE) {
            c->wait = WAIT_NONE;
            c->timed_out = 1;
            loop_resume(w->loop, c->co);
        }
    }
    timer_arm(loop_timers(w->loop), &w->shutdown_timer, w->shutdown_deadline + 1000);
}

static void worker_begin_shutdown(worker *w)
{
    if (w->shutting_down)
        return;
    w->shutting_down = 1;
    loop_del(w->loop, &w->listen_io);
    close(w->listen_io.fd);
    w->listen_io.fd = -1;
    /* Idle and half-read connections go now; busy ones close when done. */
    for (conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->co == NULL)
            conn_close(c);
        else
            c->closing = 1;
    }
    w->shutdown_deadline = loop_now(w->loop) + w->app->cfg.shutdown_timeout_ms;
    timer_init(&w->shutdown_timer, shutdown_timer_cb);
    timer_arm(loop_timers(w->loop), &w->shutdown_timer, w->shutdown_deadline);
    worker_check_done(w);
}

static void worker_wake_cb(void *arg)
{
    worker *w = arg;

    if (atomic_load(&w->app->stopping))
        worker_begin_shutdown(w);
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    loop_set_current(w->loop);
    while (!w->done) {
        if (loop_run_once(w->loop, -1) < 0 && errno != EINTR)
            break;
        worker_reap(w);
    }
    loop_set_current(NULL);
    return NULL;
}

static void worker_deinit(worker *w)
{
    while (w->conns != NULL) {
        conn *c = w->conns;
        if (c->co != NULL) { /* a handler that never returned: abandon it */
            w->conns = c->next;
            continue;
        }
        if (!c->dead) {
            close(c->io.fd);
            c->dead = 1;
        }
        c->freed = 1;
        conn_free(c);
    }
    worker_reap(w);
    if (w->listen_io.fd >= 0)
        close(w->listen_io.fd);
    while (w->free_reqs != NULL) {
        tern_req *r = w->free_reqs;
        w->free_reqs = r->next_free;
        req_free(r);
    }
    while (w->nfree_bufs > 0)
        tern_free(w->free_bufs[--w->nfree_bufs]);
    tern_free(w->free_bufs);
    timer_disarm(loop_timers(w->loop), &w->shutdown_timer);
    loop_free(w->loop);
    coro_pool_free(w->coros);
}

static int worker_init(tern_app *app, worker *w, unsigned index, int fd)
{
    memset(w, 0, sizeof *w);
    w->app = app;
    w->index = index;
    w->listen_io.fd = fd;
    w->listen_io.cb = listen_cb;
    timer_init(&w->shutdown_timer, shutdown_timer_cb);
    if (getrandom(&w->id_seed, sizeof w->id_seed, 0) != sizeof w->id_seed)
        w->id_seed = (uint64_t)tern_now_ms() * 0x9E3779B97F4A7C15ull + index;
    w->coros = coro_pool_new(app->cfg.stack_size, 256);
    if (w->coros == NULL)
        return TERN_ENOMEM;
    w->loop = loop_new(w->coros, on_coro_done);
    if (w->loop == NULL) {
        coro_pool_free(w->coros);
        return TERN_ENOMEM;
    }
    loop_on_wake(w->loop, worker_wake_cb, w);
    if (loop_add(w->loop, &w->listen_io, EPOLLIN) != 0) {
        loop_free(w->loop);
        coro_pool_free(w->coros);
        return TERN_ESYS;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Listening sockets                                                          */

static int open_listener(const char *host, int port, int *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    memset(&ss, 0, sizeof ss);
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return TERN_EINVAL;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
            return TERN_EINVAL;
        len = sizeof *a;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return TERN_ESYS;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
        tern_log(TERN_LOG_ERROR, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return TERN_ESYS;
    }
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int tern__server_listen(tern_app *app)
{
    int port = app->cfg.port;

    app->listen_fds = tern_calloc(app->nworkers, sizeof(int));
    if (app->listen_fds == NULL)
        return TERN_ENOMEM;
    for (unsigned i = 0; i < app->nworkers; i++)
        app->listen_fds[i] = -1;
    for (unsigned i = 0; i < app->nworkers; i++) {
        int bound = port;
        int fd = open_listener(app->cfg.host, port, &bound);

        if (fd < 0) {
            for (unsigned j = 0; j < i; j++)
                close(app->listen_fds[j]);
            tern_free(app->listen_fds);
            app->listen_fds = NULL;
            return fd;
        }
        app->listen_fds[i] = fd;
        port = bound; /* port 0: the first socket picks, the others follow */
    }
    app->port = port;
    return port;
}

/* A server wants as many descriptors as it may: soft limit up to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int tern__server_run(tern_app *app)
{
    sigset_t mask, old;
    int sfd = -1, rc = 0;
    unsigned started = 0;
    struct sigaction ign = { 0 };

    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
    raise_fd_limit();
    sigemptyset(&mask);
    if (app->cfg.install_signals) {
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
    }
    /* Workers inherit the mask: signals are taken by this thread only. */
    pthread_sigmask(SIG_BLOCK, &mask, &old);
    if (app->cfg.install_signals)
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

    app->offload = offload_pool_new(app->cfg.offload_threads);
    if (app->offload == NULL) {
        rc = TERN_ENOMEM;
        goto out;
    }
    offload_set_default(app->offload);
    app->workers = tern_calloc(app->nworkers, sizeof(worker));
    if (app->workers == NULL) {
        rc = TERN_ENOMEM;
        goto out;
    }
    for (; started < app->nworkers; started++) {
        worker *w = &app->workers[started];
        rc = worker_init(app, w, started, app->listen_fds[started]);
        if (rc != 0)
            break;
        app->listen_fds[started] = -1; /* the worker owns it now */
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            worker_deinit(w);
            rc = TERN_ESYS;
            break;
        }
    }
    if (rc == 0) {
        printf("tern: listening on http://%s:%d (%u workers)\n", app->cfg.host, app->port,
               app->nworkers);
        fflush(stdout);
        for (;;) {
            struct pollfd p[2] = { { app->stop_pipe[0], POLLIN, 0 }, { sfd, POLLIN, 0 } };
            int n = poll(p, sfd >= 0 ? 2 : 1, -1);

            if (n < 0 && errno == EINTR)
                continue;
            if (sfd >= 0 && (p[1].revents & POLLIN)) {
                struct signalfd_siginfo si;
                /* Consume it, or it fires when the mask is restored below. */
                if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                    tern_log(TERN_LOG_INFO, "received %s", strsignal((int)si.ssi_signo));
                break;
            }
            if (n < 0 || (p[0].revents & POLLIN))
                break;
        }
        tern_log(TERN_LOG_INFO, "shutting down (deadline %d ms)", app->cfg.shutdown_timeout_ms);
    }
    atomic_store(&app->stopping, 1);
    for (unsigned i = 0; i < started; i++)
        loop_wake(app->workers[i].loop);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(app->workers[i].thread, NULL);
        worker_deinit(&app->workers[i]);
    }
out:
    offload_set_default(NULL);
    offload_pool_free(app->offload);
    app->offload = NULL;
    tern_free(app->workers);
    app->workers = NULL;
    if (sfd >= 0)
        close(sfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
