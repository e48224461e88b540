/*
 * request.c - the request a handler sees: accessors and the body.
 *
 * Strings handed out point into the connection's read buffer (method, path,
 * headers) or into the request's arena (decoded params, large bodies); all of
 * them stay valid until the request ends.
 *
 * The body is read lazily: a handler that never calls tern_req_body() never
 * makes a client that sent `Expect: 100-continue` transmit it.  A
 * Content-Length body that fits the read buffer is read there (zero-copy);
 * a larger one goes straight into an arena block of the exact size.  A
 * chunked body is decoded into a growable buffer capped at the route limit.
 */
#include <strings.h>

#include "app/internal.h"

void tern__req_fail(tern_req *req, int status, const char *detail)
{
    if (req->fail_status == 0 && status != 0) {
        req->fail_status = status;
        req->fail_detail = detail;
    }
}

void tern__req_retry_after(tern_req *req, int seconds)
{
    if (req->fail_status == 0 && seconds > 0)
        req->fail_retry_after = seconds;
}

void tern__req_reset(tern_req *r)
{
    tern__inputs_release(r); /* first: the part list lives in the arena */
    tern_arena_reset(&r->arena);
    r->scanned = 0;
    r->parse_rc = 0;
    r->route = NULL;
    r->early_status = 0;
    r->early_detail = NULL;
    r->m.nparams = 0;
    r->chain_pos = 0;
    r->body_state = BODY_NONE;
    r->body = TERN_STR_NULL;
    r->body_left = 0;
    r->continue_sent = 0;
    r->fail_status = 0;
    r->fail_detail = NULL;
    r->fail_retry_after = 0;
    r->fail_in = NULL;
    r->fail_errs = NULL;
    r->query_form = r->body_form = NULL;
    r->reading = 0;
    if (r->body_buf.cap > 64 * 1024)
        tern_buf_deinit(&r->body_buf);
    r->body_buf.len = 0;
    if (r->out.cap > 64 * 1024)
        tern_buf_deinit(&r->out);
    r->out.len = 0;
    tern__res_reset(r);
    r->id[0] = '\0';
    memset(r->locals, 0, sizeof r->locals);
}

tern_str tern_req_method(const tern_req *req)
{
    return req->h.method;
}
tern_str tern_req_path(const tern_req *req)
{
    return req->h.path;
}
tern_str tern_req_query(const tern_req *req)
{
    return req->h.query;
}
unsigned tern_req_header_count(const tern_req *req)
{
    return req->h.nheaders;
}
const char *tern_req_id(const tern_req *req)
{
    return req->id;
}
void *tern_req_route_data(const tern_req *req)
{
    return req->route ? req->route->data : NULL;
}
tern_arena *tern_req_arena(tern_req *req)
{
    return &req->arena;
}

tern_str tern_req_header(const tern_req *req, const char *name)
{
    tern_str n = tern_str_c(name);

    for (unsigned i = 0; i < req->h.nheaders; i++)
        if (tern_str_ieq(req->h.headers[i].name, n))
            return req->h.headers[i].value;
    return TERN_STR_NULL;
}

int tern_req_header_at(const tern_req *req, unsigned i, tern_str *name, tern_str *value)
{
    if (i >= req->h.nheaders)
        return TERN_ENOTFOUND;
    *name = req->h.headers[i].name;
    *value = req->h.headers[i].value;
    return 0;
}

/* Path parameters were percent-decoded into the arena before the chain ran. */
tern_str tern_param(const tern_req *req, const char *name)
{
    tern_str n = tern_str_c(name);

    for (unsigned i = 0; i < req->m.nparams; i++)
        if (tern_str_eq(req->m.names[i], n))
            return req->params[i];
    return TERN_STR_NULL;
}

void tern_req_set(tern_req *req, const char *key, void *value)
{
    for (unsigned i = 0; i < REQ_LOCALS; i++) {
        if (req->locals[i].key == NULL || strcmp(req->locals[i].key, key) == 0) {
            req->locals[i].key = key;
            req->locals[i].value = value;
            return;
        }
    }
    tern_log(TERN_LOG_WARN, "tern_req_set: more than %d keys; '%s' dropped", REQ_LOCALS, key);
}

void *tern_req_get(const tern_req *req, const char *key)
{
    for (unsigned i = 0; i < REQ_LOCALS && req->locals[i].key != NULL; i++)
        if (strcmp(req->locals[i].key, key) == 0)
            return req->locals[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Body                                                                       */

static size_t body_limit(const tern_req *r)
{
    return r->route ? r->route->body_limit : r->app->cfg.max_body;
}

static int send_continue(tern_req *r)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    conn *c = r->c;
    int rc;

    if (!(r->h.flags & H1_EXPECT_CONTINUE) || r->continue_sent || r->responded)
        return 0;
    r->continue_sent = 1;
    rc = tern_buf_append(&c->wbuf, cont, sizeof cont - 1);
    return rc ? rc : tern__conn_flush(c);
}

static int map_read_error(int rc)
{
    return rc == TERN_ETOOBIG || rc == TERN_ETIMEDOUT || rc == TERN_EPROTO ? rc : TERN_ECLOSED;
}

/* Content-Length body: into rbuf when it fits there, else an arena block. */
static int read_cl_body(tern_req *r, int discard)
{
    conn *c = r->c;
    int timeout = r->app->cfg.body_timeout_ms;
    uint64_t cl = r->h.content_length;
    size_t in_buf = c->rlen - c->rpos;
    size_t cap = r->app->cfg.max_request_line + r->app->cfg.max_header_bytes + 4096;

    if (discard) {
        while (r->body_left > 0) {
            size_t take = in_buf < r->body_left ? in_buf : (size_t)r->body_left;
            int rc;

            c->rpos += take;
            r->body_left -= take;
            if (r->body_left == 0)
                break;
            c->rlen = c->rpos = 0; /* everything buffered was body */
            rc = tern__conn_read_more(c, timeout);
            if (rc != 0)
                return map_read_error(rc);
            in_buf = c->rlen;
        }
        return 0;
    }
    if (cl <= cap) {
        /* Fits in the read buffer: compact so the whole body lands there. */
        if (c->rpos > 0 && cap - c->rpos < cl) {
            memmove(c->rbuf, c->rbuf + c->rpos, in_buf);
            c->rlen = in_buf;
            c->rpos = 0;
        }
        while (c->rlen - c->rpos < cl) {
            int rc = tern__conn_read_more(c, timeout);
            if (rc != 0)
                return map_read_error(rc);
        }
        r->body.p = c->rbuf + c->rpos;
        r->body.n = (size_t)cl;
        c->rpos += (size_t)cl;
    } else {
        char *dst = tern_arena_alloc(&r->arena, (size_t)cl);
        size_t have = in_buf < cl ? in_buf : (size_t)cl;

        if (dst == NULL)
            return TERN_ENOMEM;
        memcpy(dst, c->rbuf + c->rpos, have);
        c->rpos += have;
        while (have < cl) {
            long n = tern__conn_recv(c, dst + have, (size_t)cl - have, timeout);
            if (n < 0)
                return map_read_error((int)n);
            have += (size_t)n;
        }
        r->body.p = dst;
        r->body.n = (size_t)cl;
    }
    r->body_left = 0;
    return 0;
}

/* Chunked body: decode into body_buf (or nowhere when discarding). */
static int read_chunked_body(tern_req *r, int discard)
{
    conn *c = r->c;
    size_t limit = body_limit(r);
    char sink[4096];

    for (;;) {
        size_t consumed = 0, produced = 0, room;
        char *out;
        int rc;

        if (discard) {
            out = sink;
            room = sizeof sink;
        } else {
            room = limit - r->body_buf.len;
            if (room > 65536)
                room = 65536;
            if (room == 0) {
                room = 1; /* one more byte proves the limit is exceeded */
            }
            rc = tern_buf_reserve(&r->body_buf, room);
            if (rc != 0)
                return rc == TERN_ETOOBIG ? TERN_ETOOBIG : TERN_ENOMEM;
            out = r->body_buf.p + r->body_buf.len;
        }
        rc = h1_chunked_feed(&r->chunked, c->rbuf + c->rpos, c->rlen - c->rpos, &consumed, out,
                             room, &produced);
        c->rpos += consumed;
        if (!discard) {
            r->body_buf.len += produced;
            if (r->body_buf.len > limit)
                return TERN_ETOOBIG;
        } else if (r->body_buf.len + produced > limit) {
            return TERN_ETOOBIG;
        } else {
            r->body_buf.len += produced; /* count discarded bytes against the limit */
        }
        if (rc < 0) {
            tern__req_fail(r, rc == -431 ? 431 : 400,
                           rc == -431 ? "the chunked trailer section is too large"
                                      : "the chunked body framing is malformed");
            return TERN_EPROTO;
        }
        if (rc == 1)
            break;
        if (c->rpos < c->rlen && (consumed > 0 || produced > 0))
            continue; /* output was full: go round with the input left */
        if (c->rpos == c->rlen)
            c->rpos = c->rlen = 0;
        rc = tern__conn_read_more(c, r->app->cfg.body_timeout_ms);
        if (rc != 0)
            return map_read_error(rc);
    }
    if (!discard) {
        r->body.p = r->body_buf.p;
        r->body.n = r->body_buf.len;
    }
    return 0;
}

static int read_body(tern_req *r, int discard)
{
    int rc;

    if (!discard) {
        rc = send_continue(r);
        if (rc != 0)
            return rc;
    }
    rc = (r->h.flags & H1_CHUNKED) ? read_chunked_body(r, discard) : read_cl_body(r, discard);
    r->body_state = rc == 0 ? BODY_READ : BODY_FAILED;
    if (rc != 0) {
        r->c->closing = 1;
        tern__req_fail(r,
                       rc == TERN_ETOOBIG     ? 413
                       : rc == TERN_ETIMEDOUT ? 408
                       : rc == TERN_EPROTO    ? 400
                       : rc == TERN_ENOMEM    ? 503
                                              : 0, /* connection gone: nobody to answer */
                       rc == TERN_ETOOBIG ? "the request body is larger than this route accepts"
                                          : NULL);
    }
    return rc;
}

int tern_req_body(tern_req *req, tern_str *body)
{
    int rc;

    *body = TERN_STR("");
    switch (req->body_state) {
    case BODY_NONE: return 0;
    case BODY_READ: *body = req->body.p ? req->body : TERN_STR(""); return 0;
    case BODY_FAILED: return TERN_EPROTO;
    }
    rc = read_body(req, 0);
    if (rc == 0 && req->body.p != NULL)
        *body = req->body;
    return rc;
}

int tern__req_discard_body(tern_req *r)
{
    if (r->body_state != BODY_PENDING)
        return 0;
    if ((r->h.flags & H1_EXPECT_CONTINUE) && !r->continue_sent) {
        /* The client waits for a 100 we will not send: do not read. */
        r->c->closing = 1;
        return TERN_ECANCELED;
    }
    r->body_buf.len = 0;
    return read_body(r, 1);
}

/* Records why a streaming read failed, closes after the response, returns rc. */
static long read_failed(tern_req *r, int rc)
{
    r->body_state = BODY_FAILED;
    r->c->closing = 1;
    tern__req_fail(r,
                   rc == TERN_ETOOBIG     ? 413
                   : rc == TERN_ETIMEDOUT ? 408
                   : rc == TERN_EPROTO    ? 400
                                          : 0,
                   rc == TERN_ETOOBIG ? "the request body is larger than this route accepts"
                                      : NULL);
    return rc;
}

/*
 * Streaming reads share the machinery of tern_req_body: bytes already in the
 * read buffer first, then the socket.  For chunked bodies, body_buf.len
 * counts the decoded bytes against the route's limit.
 */
long tern_req_read(tern_req *r, void *buf, size_t cap)
{
    conn *c = r->c;
    int timeout = r->app->cfg.body_timeout_ms;

    if (r->body_state == BODY_FAILED)
        return TERN_EPROTO;
    if (r->body_state != BODY_PENDING || cap == 0)
        return 0;
    if (!r->reading) {
        int rc = send_continue(r);
        if (rc != 0)
            return read_failed(r, rc);
        r->reading = 1;
        r->body_buf.len = 0;
    }
    if (!(r->h.flags & H1_CHUNKED)) {
        size_t in_buf = c->rlen - c->rpos, want = cap;
        long n;

        if (r->body_left == 0) {
            r->body_state = BODY_READ;
            return 0;
        }
        if (want > r->body_left)
            want = (size_t)r->body_left;
        if (in_buf > 0) {
            n = (long)(in_buf < want ? in_buf : want);
            memcpy(buf, c->rbuf + c->rpos, (size_t)n);
            c->rpos += (size_t)n;
        } else {
            c->rpos = c->rlen = 0;
            n = tern__conn_recv(c, buf, want, timeout);
            if (n < 0)
                return read_failed(r, (int)n);
        }
        r->body_left -= (uint64_t)n;
        return n;
    }
    for (;;) {
        size_t consumed = 0, produced = 0, limit = body_limit(r);
        size_t room = cap;
        int rc;

        if (r->body_buf.len >= limit)
            room = 1; /* one more byte proves the limit is exceeded */
        else if (room > limit - r->body_buf.len + 1)
            room = limit - r->body_buf.len + 1;
        rc = h1_chunked_feed(&r->chunked, c->rbuf + c->rpos, c->rlen - c->rpos, &consumed, buf,
                             room, &produced);
        c->rpos += consumed;
        r->body_buf.len += produced;
        if (r->body_buf.len > limit)
            return read_failed(r, TERN_ETOOBIG);
        if (rc < 0) {
            tern__req_fail(r, rc == -431 ? 431 : 400,
                           rc == -431 ? "the chunked trailer section is too large"
                                      : "the chunked body framing is malformed");
            return read_failed(r, TERN_EPROTO);
        }
        if (produced > 0)
            return (long)produced;
        if (rc == 1) {
            r->body_state = BODY_READ;
            return 0;
        }
        if (c->rpos == c->rlen)
            c->rpos = c->rlen = 0;
        rc = tern__conn_read_more(c, timeout);
        if (rc != 0)
            return read_failed(r, rc == TERN_ECLOSED ? TERN_ECLOSED : rc);
    }
}
