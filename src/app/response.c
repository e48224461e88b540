/*
 * response.c - serializing responses into the connection's write buffer.
 *
 * A response is written once: the status line, the framework's headers
 * (Date, Server when configured, Content-Type, Content-Length or
 * Transfer-Encoding, Connection when it is not the version's default), the
 * handler's headers, and the body, all appended to the connection's write
 * buffer.  Pipelined responses accumulate there in order and leave in one
 * send when the batch is done.  Nothing here allocates once the buffers have
 * grown to their working size.
 */
#include <stdio.h>

#include "app/internal.h"

/* Headers the framework owns: a handler may not set them. */
static int reserved(tern_str name)
{
    return tern_str_ieq(name, TERN_STR("Content-Length")) ||
           tern_str_ieq(name, TERN_STR("Transfer-Encoding")) ||
           tern_str_ieq(name, TERN_STR("Date")) || tern_str_ieq(name, TERN_STR("Connection"));
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

void tern__res_reset(tern_req *r)
{
    r->status = 0;
    r->responded = 0;
    r->head_only = 0;
    r->streaming = 0;
    r->stream_done = 0;
    r->rh = NULL;
    r->nrh = r->caprh = 0;
    r->bytes = 0;
}

int tern_header_str(tern_req *req, tern_str name, tern_str value)
{
    char *copy;

    if (req->responded)
        return TERN_EALREADY;
    if (name.n == 0 || reserved(name))
        return TERN_EINVAL;
    for (size_t i = 0; i < name.n; i++)
        if (!is_tchar((unsigned char)name.p[i]))
            return TERN_EINVAL;
    for (size_t i = 0; i < value.n; i++) {
        unsigned char ch = (unsigned char)value.p[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return TERN_EINVAL;
    }
    if (req->nrh == req->caprh) {
        unsigned cap = req->caprh ? req->caprh * 2 : 8;
        res_header *v = tern_arena_alloc(&req->arena, cap * sizeof *v);
        if (v == NULL)
            return TERN_ENOMEM;
        if (req->nrh)
            memcpy(v, req->rh, req->nrh * sizeof *v);
        req->rh = v;
        req->caprh = cap;
    }
    copy = tern_arena_alloc(&req->arena, name.n + value.n + 1);
    if (copy == NULL)
        return TERN_ENOMEM;
    memcpy(copy, name.p, name.n);
    if (value.n)
        memcpy(copy + name.n, value.p, value.n);
    req->rh[req->nrh].name = (tern_str){ copy, name.n };
    req->rh[req->nrh].value = (tern_str){ copy + name.n, value.n };
    req->nrh++;
    return 0;
}

int tern_header(tern_req *req, const char *name, const char *value)
{
    return tern_header_str(req, tern_str_c(name), tern_str_c(value));
}

#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        memcpy(p, (s), (n));                                                                       \
        p += (n);                                                                                  \
    } while (0)
#define PUTLIT(lit) PUT(lit, sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    PUT(tmp + i, sizeof tmp - i);
    return p;
}

int tern__write_head(tern_req *req, int status, const char *ctype, int64_t cl)
{
    conn *c = req->c;
    const tern_config *cfg = &req->app->cfg;
    const char *reason = tern_status_reason(status);
    size_t rlen = strlen(reason), tlen = ctype ? strlen(ctype) : 0;
    size_t slen = cfg->server_header ? strlen(cfg->server_header) : 0;
    size_t need = 64 + rlen + 40 + (slen + 10) + (tlen + 16) + 40 + 32;
    int keepalive_10 = 0, rc;
    char *p;

    if (status < 100 || status > 999)
        return TERN_EINVAL;
    /* A client waiting for "100 Continue" that it will not get cannot reuse the connection. */
    if (req->body_state == BODY_PENDING && (req->h.flags & H1_EXPECT_CONTINUE) &&
        !req->continue_sent)
        c->closing = 1;
    if (req->streaming == 2)
        c->closing = 1;
    if (!c->closing && req->h.minor == 0)
        keepalive_10 = 1;
    for (unsigned i = 0; i < req->nrh; i++)
        need += req->rh[i].name.n + req->rh[i].value.n + 4;
    rc = tern_buf_reserve(&c->wbuf, need);
    if (rc != 0)
        return rc;
    p = c->wbuf.p + c->wbuf.len;
    PUTLIT("HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    PUT(reason, rlen);
    PUTLIT("\r\nDate: ");
    PUT(tern__worker_date(req->w), 29);
    if (slen) {
        PUTLIT("\r\nServer: ");
        PUT(cfg->server_header, slen);
    }
    if (tlen) {
        PUTLIT("\r\nContent-Type: ");
        PUT(ctype, tlen);
    }
    if (req->streaming == 1) {
        PUTLIT("\r\nTransfer-Encoding: chunked");
    } else if (cl >= 0 && status >= 200 && status != 204) {
        PUTLIT("\r\nContent-Length: ");
        p = put_u64(p, (uint64_t)cl);
    }
    if (c->closing)
        PUTLIT("\r\nConnection: close");
    else if (keepalive_10)
        PUTLIT("\r\nConnection: keep-alive");
    for (unsigned i = 0; i < req->nrh; i++) {
        PUTLIT("\r\n");
        PUT(req->rh[i].name.p, req->rh[i].name.n);
        PUTLIT(": ");
        PUT(req->rh[i].value.p, req->rh[i].value.n);
    }
    PUTLIT("\r\n\r\n");
    c->wbuf.len = (size_t)(p - c->wbuf.p);
    req->status = status;
    req->responded = 1;
    return 0;
}

int tern_send(tern_req *req, int status, const char *content_type, const void *body, size_t len)
{
    int rc;
    int no_body = req->head_only || status == 204 || status == 304 || status < 200;

    if (req->responded)
        return TERN_EALREADY;
    if (req->c == NULL)
        return TERN_ESTATE;
    rc = tern__write_head(req, status, content_type, (int64_t)len);
    if (rc != 0)
        return rc;
    if (!no_body && len > 0) {
        rc = tern_buf_append(&req->c->wbuf, body, len);
        if (rc != 0)
            return rc;
        req->bytes = len;
    }
    return 0;
}

int tern_text(tern_req *req, int status, const char *text)
{
    return tern_send(req, status, "text/plain; charset=utf-8", text, text ? strlen(text) : 0);
}

int tern_json_send(tern_req *req, int status, tern_str json)
{
    return tern_send(req, status, "application/json", json.p, json.n);
}

tern_jw *tern_json_begin(tern_req *req, int status)
{
    req->out.len = 0;
    tern_jw_init(&req->jw, &req->out);
    req->status = status;
    return &req->jw;
}

int tern_json_end(tern_req *req)
{
    int rc = tern_jw_finish(&req->jw);

    if (rc != 0) {
        tern_log(TERN_LOG_ERROR, "request %s: invalid JSON response: %s", req->id,
                 tern_strerror(rc));
        return tern__respond_error(req, 500, NULL);
    }
    return tern_send(req, req->status, "application/json", req->out.p, req->out.len);
}

static const char *default_detail(int status)
{
    switch (status) {
    case 400: return "the request is malformed";
    case 404: return "no resource at this path";
    case 405: return "the method is not allowed on this resource";
    case 408: return "the request was not received in time";
    case 413: return "the request body is too large";
    case 414: return "the request target is too long";
    case 417: return "the expectation is not supported";
    case 431: return "the request header section is too large";
    case 501: return "the request uses a feature this server does not implement";
    case 503: return "the service is temporarily unavailable";
    case 505: return "the HTTP version is not supported";
    }
    return status >= 500 ? "the server could not complete the request" : "the request failed";
}

/*
 * The one writer of problem+json (RFC 9457): type, title, status, detail,
 * request_id, and for validation failures `errors` (one object per field).
 */
static int send_problem(tern_req *req, int status, const char *detail, const char *in,
                        const tern_errors *errs)
{
    tern_jw w;
    int rc;

    if (req->responded)
        return TERN_EALREADY;
    if (detail == NULL)
        detail = default_detail(status);
    req->out.len = 0;
    tern_jw_init(&w, &req->out);
    tern_jw_obj_begin(&w);
    tern_jw_key(&w, TERN_STR("type"));
    tern_jw_str(&w, TERN_STR("about:blank"));
    tern_jw_key(&w, TERN_STR("title"));
    tern_jw_cstr(&w, tern_status_reason(status));
    tern_jw_key(&w, TERN_STR("status"));
    tern_jw_int(&w, status);
    tern_jw_key(&w, TERN_STR("detail"));
    if (tern_jw_cstr(&w, detail) == TERN_EINVAL)
        return tern__respond_error(req, status, "(the detail was not valid UTF-8)");
    if (req->id[0]) {
        tern_jw_key(&w, TERN_STR("request_id"));
        tern_jw_cstr(&w, req->id);
    }
    if (errs != NULL) {
        tern_jw_key(&w, TERN_STR("errors"));
        tern_jw_arr_begin(&w);
        for (unsigned i = 0; i < errs->n; i++) {
            tern_jw_obj_begin(&w);
            if (in != NULL) {
                tern_jw_key(&w, TERN_STR("in"));
                tern_jw_cstr(&w, in);
            }
            tern_jw_key(&w, TERN_STR("field"));
            tern_jw_cstr(&w, errs->v[i].field);
            tern_jw_key(&w, TERN_STR("code"));
            tern_jw_cstr(&w, errs->v[i].code);
            tern_jw_key(&w, TERN_STR("message"));
            tern_jw_cstr(&w, errs->v[i].message);
            tern_jw_obj_end(&w);
        }
        tern_jw_arr_end(&w);
    }
    tern_jw_obj_end(&w);
    rc = tern_jw_finish(&w);
    if (rc != 0) /* a field name from the client that is not UTF-8, say */
        return errs ? send_problem(req, status, detail, NULL, NULL) : rc;
    return tern_send(req, status, "application/problem+json", req->out.p, req->out.len);
}

int tern__respond_error(tern_req *req, int status, const char *detail)
{
    return send_problem(req, status, detail, NULL, NULL);
}

int tern__respond_failure(tern_req *req)
{
    int status = req->fail_status ? req->fail_status : 500;

    if (req->fail_retry_after > 0 && !req->responded) {
        char v[16];

        snprintf(v, sizeof v, "%d", req->fail_retry_after);
        tern_header(req, "Retry-After", v);
    }
    return send_problem(req, status, status >= 500 ? NULL : req->fail_detail, req->fail_in,
                        req->fail_errs);
}

int tern_problem_errors(tern_req *req, int status, const char *detail, const char *in,
                        const tern_errors *errs)
{
    if (status < 400 || status > 499)
        return TERN_EINVAL;
    return send_problem(req, status, detail, in, errs);
}

int tern_problem(tern_req *req, int status, const char *detail)
{
    if (status < 400 || status > 599)
        return TERN_EINVAL;
    if (status >= 500) {
        if (detail != NULL)
            tern_log(TERN_LOG_ERROR, "request %s: %d: %s", req->id, status, detail);
        detail = NULL;
    }
    return tern__respond_error(req, status, detail);
}

int tern_stream_begin(tern_req *req, int status, const char *content_type)
{
    int rc;

    if (req->responded)
        return TERN_EALREADY;
    req->streaming = req->h.minor >= 1 ? 1 : 2;
    rc = tern__write_head(req, status, content_type, -1);
    if (rc != 0)
        return rc;
    return tern__conn_flush(req->c);
}

int tern_stream_write(tern_req *req, const void *p, size_t n)
{
    conn *c = req->c;
    char line[24];
    int rc, k;

    if (!req->streaming || req->stream_done)
        return TERN_ESTATE;
    if (n == 0 || req->head_only)
        return 0;
    if (req->streaming == 1) {
        k = snprintf(line, sizeof line, "%zx\r\n", n);
        rc = tern_buf_append(&c->wbuf, line, (size_t)k);
        if (rc == 0)
            rc = tern_buf_append(&c->wbuf, p, n);
        if (rc == 0)
            rc = tern_buf_append(&c->wbuf, "\r\n", 2);
    } else {
        rc = tern_buf_append(&c->wbuf, p, n);
    }
    if (rc != 0)
        return rc;
    req->bytes += n;
    return tern__conn_flush(c);
}

int tern_stream_end(tern_req *req)
{
    int rc = 0;

    if (!req->streaming || req->stream_done)
        return TERN_ESTATE;
    req->stream_done = 1;
    if (req->streaming == 1 && !req->head_only)
        rc = tern_buf_append(&req->c->wbuf, "0\r\n\r\n", 5);
    return rc ? rc : tern__conn_flush(req->c);
}

int tern_responded(const tern_req *req)
{
    return req->responded;
}
int tern_res_status(const tern_req *req)
{
    return req->responded ? req->status : 0;
}
uint64_t tern_res_bytes(const tern_req *req)
{
    return req->bytes;
}
