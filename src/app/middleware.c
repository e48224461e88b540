/*
 * middleware.c - the onion chain and the built-in middleware.
 *
 * A route's chain is flattened when the app starts listening: app-wide
 * middleware, then each enclosing group's from the outermost in, then the
 * route's own, then the handler.  tern_next() advances one step, so a
 * middleware runs code before and after the rest of the chain, or answers
 * itself and never calls it.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "app/internal.h"

int tern_next(tern_req *req)
{
    tern_route *rt = req->route;
    unsigned pos = req->chain_pos++;

    if (rt == NULL)
        return TERN_ESTATE;
    if (pos < rt->nchain)
        return rt->chain[pos]->fn(req, rt->chain[pos]->data);
    if (pos == rt->nchain) {
        /* Declared inputs are read last, so middleware (auth) can refuse first. */
        if (tern__prepare_inputs(req) != 0)
            return tern__respond_failure(req);
        return rt->handler(req);
    }
    return TERN_ESTATE; /* tern_next called again after the handler ran */
}

/* Decodes all path parameters up front; 0, or -1 on a bad escape. */
static int decode_params(tern_req *r)
{
    for (unsigned i = 0; i < r->m.nparams; i++) {
        char *d = tern_arena_alloc(&r->arena, r->m.values[i].n + 1);
        long n;

        if (d == NULL)
            return -2;
        n = tern__url_decode(d, r->m.values[i].p, r->m.values[i].n, 0);
        if (n < 0)
            return -1;
        d[n] = '\0';
        r->params[i].p = d;
        r->params[i].n = (size_t)n;
    }
    return 0;
}

int tern__fallback_handler(tern_req *req)
{
    if (req->early_status != 0)
        return tern__respond_error(req, req->early_status, req->early_detail);
    switch (req->route_result) {
    case ROUTER_NOT_ALLOWED:
        tern_header_str(req, TERN_STR("Allow"), req->m.allow);
        return tern__respond_error(req, 405, "the method is not allowed on this resource");
    case ROUTER_OPTIONS:
        tern_header_str(req, TERN_STR("Allow"), req->m.allow);
        return tern_send(req, 204, NULL, NULL, 0);
    default: return tern__respond_error(req, 404, "no resource at this path");
    }
}

/* Called when the chain returns without an answer, or with a failure. */
static void fallback(tern_req *req, int rc)
{
    if (req->responded) {
        if (rc != 0)
            tern_log(TERN_LOG_ERROR, "request %s: %.*s %.*s: handler failed after responding: %s",
                     req->id, (int)req->h.method.n, req->h.method.p, (int)req->h.path.n,
                     req->h.path.p, tern_strerror(rc));
        return;
    }
    if (req->fail_status != 0 || req->body_state == BODY_FAILED) {
        if (req->fail_status != 0)
            tern__respond_failure(req);
        return;
    }
    tern_log(TERN_LOG_ERROR, "request %s: %.*s %.*s: %s", req->id, (int)req->h.method.n,
             req->h.method.p, (int)req->h.path.n, req->h.path.p,
             rc != 0 ? tern_strerror(rc) : "handler returned without responding");
    tern__respond_error(req, 500, NULL);
}

void tern__run_early(tern_req *req, int status, const char *detail)
{
    req->early_status = status;
    req->early_detail = detail;
    req->m.nparams = 0;
    req->route = &req->app->fallback;
    tern__run_chain(req);
}

int tern__run_chain(tern_req *req)
{
    int rc;

    if (req->route != &req->app->fallback) {
        rc = decode_params(req);
        if (rc != 0) {
            tern__run_early(req, rc == -1 ? 400 : 503,
                            rc == -1 ? "a path parameter has an invalid percent-escape" : NULL);
            return 0;
        }
    }
    req->chain_pos = 0;
    rc = tern_next(req);
    if (!req->responded || rc != 0)
        fallback(req, rc);
    if (req->streaming && !req->stream_done)
        tern_stream_end(req);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Request id                                                                 */

static int valid_id(tern_str s)
{
    if (s.n == 0 || s.n > REQ_ID_MAX)
        return 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* splitmix64: a bijection, so distinct counters give distinct ids. */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void tern__gen_id(worker *w, char out[21])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = mix(w->id_seed + (w->id_counter++) * 0x9E3779B97F4A7C15ull);
    uint32_t hi = (uint32_t)(w->id_seed >> 32) ^ w->index;

    for (int i = 0; i < 16; i++)
        out[i] = hex[(v >> (60 - 4 * i)) & 15];
    for (int i = 0; i < 4; i++)
        out[16 + i] = hex[(hi >> (12 - 4 * i)) & 15];
    out[20] = '\0';
}

void tern__request_id_generate(tern_req *req)
{
    tern__gen_id(req->w, req->id);
    tern_header(req, "X-Request-Id", req->id);
}

int tern_mw_request_id(tern_req *req, void *data)
{
    tern_str in = tern_req_header(req, "X-Request-Id");

    (void)data;
    if (valid_id(in)) {
        memcpy(req->id, in.p, in.n);
        req->id[in.n] = '\0';
        tern_header(req, "X-Request-Id", req->id);
    } else {
        tern__request_id_generate(req);
    }
    return tern_next(req);
}

/* ------------------------------------------------------------------------ */
/* Access log                                                                 */

int tern_mw_access_log(tern_req *req, void *data)
{
    struct timespec end, wall;
    struct tm tm;
    char line[1024];
    int rc, n;
    long long us;

    (void)data;
    rc = tern_next(req);
    clock_gettime(CLOCK_MONOTONIC, &end);
    clock_gettime(CLOCK_REALTIME, &wall);
    gmtime_r(&wall.tv_sec, &tm);
    us = (long long)(end.tv_sec - req->start_ts.tv_sec) * 1000000 +
         (end.tv_nsec - req->start_ts.tv_nsec) / 1000;
    n = snprintf(line, sizeof line,
                 "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ id=%s method=%.*s path=%.*s "
                 "status=%d bytes=%llu dur_us=%lld\n",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 wall.tv_nsec / 1000000, req->id[0] ? req->id : "-", (int)req->h.method.n,
                 req->h.method.p, (int)(req->h.path.n > 512 ? 512 : req->h.path.n), req->h.path.p,
                 req->responded ? req->status : (rc != 0 ? 500 : 0), (unsigned long long)req->bytes,
                 us);
    if (n > 0) {
        ssize_t wr = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)wr;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Recover                                                                    */

int tern_mw_recover(tern_req *req, void *data)
{
    int rc;

    (void)data;
    rc = tern_next(req);
    if (!req->responded || rc != 0)
        fallback(req, rc);
    return 0;
}
