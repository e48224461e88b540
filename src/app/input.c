/*
 * input.c - request inputs for handlers: JSON and form bodies, the query
 * string, cookies, multipart uploads, and the inputs a route declares.
 *
 * Every helper here records why it failed (tern__req_fail), so a handler
 * can write `if ((rc = tern_req_json(req, &v)) != 0) return rc;` and the
 * client still gets the precise problem: 415 for a media type the route
 * does not take, 400 naming line and column of malformed JSON, 413 over the
 * limit, 422 listing every invalid field.
 *
 * Content types are compared only after a strict parse
 * (tern_media_type_parse), never by prefix or substring, so casing,
 * whitespace or a tab cannot make a body skip validation (the class of
 * Fastify's CVE-2025-32442 and CVE-2026-25223).
 *
 * Decoded values (jansson trees, parsed forms, spooled files) belong to the
 * request and are released by tern__inputs_release when it ends.
 */
#include <stdio.h>
#include <unistd.h>

#include "app/internal.h"
#include "body/multipart.h"

/* ------------------------------------------------------------------------ */
/* Media type checks                                                          */

/*
 * application/json or any application/<x>+json (RFC 6839 suffix): what
 * tern_media_type_is says for those two patterns, without parsing them.
 */
static int is_json(const tern_media_type *mt)
{
    const tern_str suffix = TERN_STR("+json");
    tern_str sub = mt->subtype;

    if (!tern_str_ieq(mt->type, TERN_STR("application")))
        return 0;
    if (tern_str_ieq(sub, TERN_STR("json")))
        return 1;
    return sub.n > suffix.n &&
           tern_str_ieq((tern_str){ sub.p + sub.n - suffix.n, suffix.n }, suffix);
}

/*
 * Checks the request's Content-Type against `want` (a media type;
 * "application/json" stands for the whole JSON family).  JSON bodies accept no
 * charset or utf-8 only.  Returns 0, or records 415 and returns TERN_EINVAL.
 */
static int require_media(tern_req *req, const char *want, tern_media_type *mt)
{
    tern_str ct = tern_req_header(req, "Content-Type");
    int json = strcmp(want, "application/json") == 0;
    const char *detail;

    if (ct.p == NULL || tern_media_type_parse(ct, mt) != 0 ||
        !(json ? is_json(mt) : tern_media_type_is(mt, want))) {
        detail = tern_arena_printf(&req->arena, "this resource takes %s", want);
        tern__req_fail(req, 415, detail ? detail : "unsupported media type");
        return TERN_EINVAL;
    }
    if (json) {
        tern_str cs = tern_media_type_param(mt, "charset");
        if (cs.p != NULL && !tern_str_ieq(cs, TERN_STR("utf-8"))) {
            tern__req_fail(req, 415, "JSON bodies must be UTF-8 (charset=utf-8)");
            return TERN_EINVAL;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                       */

static int parse_json_body(tern_req *req, json_t **out)
{
    tern_json_error err;
    tern_str body;
    int rc;

    rc = tern_req_body(req, &body);
    if (rc != 0)
        return rc;
    rc = tern_json_parse(body, req->app->cfg.json_max_depth, out, &err);
    if (rc == TERN_ENOMEM) {
        tern__req_fail(req, 503, NULL);
        return rc;
    }
    if (rc != 0) {
        const char *d =
            tern_arena_printf(&req->arena, "invalid JSON at line %u, column %u: %s", err.line,
                              err.column, err.reason ? err.reason : "malformed");
        tern__req_fail(req, 400, d ? d : "invalid JSON");
        return rc;
    }
    return 0;
}

int tern_req_json(tern_req *req, json_t **out)
{
    tern_media_type mt;
    int rc;

    *out = NULL;
    if (req->json_body != NULL) {
        *out = req->json_body;
        return 0;
    }
    rc = require_media(req, "application/json", &mt);
    if (rc != 0)
        return rc;
    rc = parse_json_body(req, &req->json_body);
    *out = req->json_body;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Query string and urlencoded bodies                                         */

static int parse_form(tern_req *req, tern_str text, const char *what, const tern_form **out)
{
    tern_form *f = tern_arena_alloc(&req->arena, sizeof *f);
    size_t bad = 0;
    int rc;

    if (f == NULL) {
        tern__req_fail(req, 503, NULL);
        return TERN_ENOMEM;
    }
    rc = tern_form_parse(&req->arena, text, 1, TERN_FORM_MAX_FIELDS, f, &bad);
    if (rc == TERN_EINVAL) {
        const char *d = tern_arena_printf(
            &req->arena, "the %s has an invalid percent-escape at byte %zu", what, bad);
        tern__req_fail(req, 400, d);
    } else if (rc == TERN_ETOOBIG) {
        const char *d = tern_arena_printf(&req->arena, "the %s has more than %d fields", what,
                                          TERN_FORM_MAX_FIELDS);
        tern__req_fail(req, 400, d);
    } else if (rc != 0) {
        tern__req_fail(req, 503, NULL);
    }
    if (rc == 0)
        *out = f;
    return rc;
}

int tern_req_query_form(tern_req *req, const tern_form **out)
{
    int rc = 0;

    if (req->query_form == NULL)
        rc = parse_form(req, req->h.query, "query string", &req->query_form);
    *out = req->query_form;
    return rc;
}

int tern_req_form(tern_req *req, const tern_form **out)
{
    tern_media_type mt;
    tern_str body;
    int rc;

    *out = req->body_form;
    if (req->body_form != NULL)
        return 0;
    rc = require_media(req, "application/x-www-form-urlencoded", &mt);
    if (rc == 0)
        rc = tern_req_body(req, &body);
    if (rc == 0)
        rc = parse_form(req, body, "form body", &req->body_form);
    *out = req->body_form;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Cookies                                                                    */

tern_str tern_req_cookie(tern_req *req, const char *name)
{
    /* Several Cookie field lines are allowed in HTTP/1.1; look in each. */
    for (unsigned i = 0; i < req->h.nheaders; i++) {
        tern_form f;
        tern_str v;

        if (!tern_str_ieq(req->h.headers[i].name, TERN_STR("Cookie")))
            continue;
        if (tern_cookie_parse(&req->arena, req->h.headers[i].value, TERN_FORM_MAX_FIELDS, &f) ==
            TERN_ENOMEM)
            return TERN_STR_NULL;
        v = tern_form_get(&f, name);
        if (v.p != NULL)
            return v;
    }
    return TERN_STR_NULL;
}

int tern_set_cookie(tern_req *req, const tern_cookie *c)
{
    tern_buf b;
    int rc;

    tern_buf_init(&b, 8192);
    rc = tern_cookie_format(&b, c);
    if (rc == 0)
        rc = tern_header_str(req, TERN_STR("Set-Cookie"), (tern_str){ b.p, b.len });
    tern_buf_deinit(&b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Multipart                                                                  */

static long multipart_read(void *ctx, char *buf, size_t cap)
{
    return tern_req_read(ctx, buf, cap);
}

int tern_req_multipart(tern_req *req, const tern_multipart_limits *lim, const tern_part **parts,
                       unsigned *nparts)
{
    tern_multipart_limits l;
    tern_media_type mt;
    tern_str boundary;
    tern_part *v = NULL;
    unsigned n = 0;
    int status = 0, rc;
    const char *detail = NULL;

    *parts = req->parts;
    *nparts = req->nparts;
    if (req->parts != NULL)
        return 0;
    rc = require_media(req, "multipart/form-data", &mt);
    if (rc != 0)
        return rc;
    boundary = tern_media_type_param(&mt, "boundary");
    if (boundary.p == NULL || boundary.n == 0) {
        tern__req_fail(req, 400, "multipart/form-data needs a boundary parameter");
        return TERN_EINVAL;
    }
    if (lim != NULL)
        l = *lim;
    else
        tern_multipart_limits_init(&l);
    if (l.max_total == 0)
        l.max_total = req->route ? req->route->body_limit : req->app->cfg.max_body;
    rc = tern__multipart_collect(&req->arena, boundary, &l, multipart_read, req, &v, &n, &status,
                                 &detail);
    if (rc != 0) {
        if (req->fail_status == 0) /* a read error already recorded its own */
            tern__req_fail(req, status ? status : 400, detail);
        return rc;
    }
    req->parts = v;
    req->nparts = n;
    *parts = v;
    *nparts = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Declared inputs                                                            */

static int check_schema(tern_route *r, const tern_schema *s, const char *what)
{
    char err[256];

    if (s == NULL)
        return 0;
    if (tern_schema_check(s, err, sizeof err) != 0) {
        tern_log(TERN_LOG_ERROR, "route %s %s: %s schema: %s", r->method, r->pattern, what, err);
        return TERN_EINVAL;
    }
    return 0;
}

int tern_route_body(tern_route *r, const char *media_type, const tern_schema *schema)
{
    tern_media_type mt;
    int rc = TERN_EINVAL;

    if (r == NULL)
        return TERN_EINVAL;
    if (media_type == NULL || tern_media_type_parse(tern_str_c(media_type), &mt) != 0 ||
        (!is_json(&mt) && !tern_media_type_is(&mt, "application/x-www-form-urlencoded"))) {
        tern_log(TERN_LOG_ERROR, "route %s %s: declared bodies are JSON or urlencoded forms",
                 r->method, r->pattern);
    } else if ((rc = check_schema(r, schema, "body")) == 0) {
        tern_free(r->body_media);
        r->body_media = tern_strdup(media_type);
        r->body_form = !is_json(&mt); /* urlencoded, parsed once here */
        rc = r->body_media ? 0 : TERN_ENOMEM;
        r->body_schema = schema;
    }
    if (rc != 0 && r->app->reg_error == 0)
        r->app->reg_error = rc;
    return rc;
}

static int declare_form_schema(tern_route *r, const tern_schema **slot, const tern_schema *s,
                               const char *what)
{
    int rc = check_schema(r, s, what);

    if (rc == 0 && s != NULL && s->type != TERN_OBJECT) {
        tern_log(TERN_LOG_ERROR, "route %s %s: the %s schema must be an object", r->method,
                 r->pattern, what);
        rc = TERN_EINVAL;
    }
    if (rc != 0) {
        if (r->app->reg_error == 0)
            r->app->reg_error = rc;
        return rc;
    }
    *slot = s;
    return 0;
}

int tern_route_query(tern_route *r, const tern_schema *schema)
{
    return r ? declare_form_schema(r, &r->query_schema, schema, "query") : TERN_EINVAL;
}

int tern_route_params(tern_route *r, const tern_schema *schema)
{
    return r ? declare_form_schema(r, &r->params_schema, schema, "params") : TERN_EINVAL;
}

static int add_defs(tern_app *app, tern_group *g, const tern_route_def *defs)
{
    int first = 0;

    for (const tern_route_def *d = defs; d && d->method; d++) {
        tern_route *r = g ? tern_group_route(g, d->method, d->pattern, d->handler)
                          : tern_route_add(app, d->method, d->pattern, d->handler);
        int rc = r ? 0 : TERN_EINVAL;

        if (rc == 0 && d->params)
            rc = tern_route_params(r, d->params);
        if (rc == 0 && d->query)
            rc = tern_route_query(r, d->query);
        if (rc == 0 && d->body)
            rc = tern_route_body(r, d->body_type ? d->body_type : "application/json", d->body);
        if (rc != 0 && first == 0)
            first = rc;
    }
    return first;
}

int tern_group_routes(tern_group *g, const tern_route_def *defs)
{
    return g ? add_defs(NULL, g, defs) : TERN_EINVAL;
}

int tern_routes(tern_app *app, const tern_route_def *defs)
{
    return app ? add_defs(app, NULL, defs) : TERN_EINVAL;
}

json_t *tern_req_valid_body(tern_req *req)
{
    return req->valid_body;
}
json_t *tern_req_valid_query(tern_req *req)
{
    return req->valid_query;
}
json_t *tern_req_valid_params(tern_req *req)
{
    return req->valid_params;
}

/* Records a 422 with the field errors. */
static int invalid(tern_req *req, tern_errors *errs, const char *in)
{
    const char *d = tern_arena_printf(&req->arena, "the request %s has %u invalid field%s", in,
                                      errs->n, errs->n == 1 ? "" : "s");
    tern_errors *keep = tern_arena_alloc(&req->arena, sizeof *keep);

    if (keep == NULL) {
        tern__req_fail(req, 503, NULL);
        return TERN_ENOMEM;
    }
    *keep = *errs;
    tern__req_fail(req, 422, d);
    req->fail_in = in;
    req->fail_errs = keep;
    return TERN_EINVAL;
}

static int validate_form(tern_req *req, const tern_schema *s, const tern_form *f, const char *in,
                         json_t **slot)
{
    tern_errors errs;
    int rc;

    tern_errors_init(&errs, &req->arena);
    rc = tern_validate_form(s, f, slot, &errs);
    if (rc == TERN_EINVAL)
        return invalid(req, &errs, in);
    if (rc != 0)
        tern__req_fail(req, 503, NULL);
    return rc;
}

int tern__prepare_inputs(tern_req *req)
{
    tern_route *r = req->route;
    int rc;

    if (r == NULL)
        return 0;
    if (r->params_schema != NULL) {
        tern_form f;
        tern_kv *kv = tern_arena_alloc(&req->arena, (req->m.nparams + 1) * sizeof *kv);

        if (kv == NULL) {
            tern__req_fail(req, 503, NULL);
            return TERN_ENOMEM;
        }
        for (unsigned i = 0; i < req->m.nparams; i++) {
            kv[i].key = req->m.names[i];
            kv[i].value = req->params[i];
        }
        f.fields = kv;
        f.n = req->m.nparams;
        rc = validate_form(req, r->params_schema, &f, "path", &req->valid_params);
        if (rc != 0)
            return rc;
    }
    if (r->query_schema != NULL) {
        const tern_form *q;

        rc = tern_req_query_form(req, &q);
        if (rc == 0)
            rc = validate_form(req, r->query_schema, q, "query", &req->valid_query);
        if (rc != 0)
            return rc;
    }
    if (r->body_media != NULL) {
        tern_media_type mt;

        if (r->body_form) {
            const tern_form *f;

            rc = tern_req_form(req, &f);
            if (rc == 0 && r->body_schema != NULL)
                rc = validate_form(req, r->body_schema, f, "body", &req->valid_body);
            return rc;
        }
        /* Not a form, so JSON (tern_route_body takes nothing else). */
        rc = require_media(req, "application/json", &mt);
        if (rc == 0 && req->json_body == NULL)
            rc = parse_json_body(req, &req->json_body);
        if (rc != 0)
            return rc;
        if (r->body_schema != NULL) {
            tern_errors errs;

            tern_errors_init(&errs, &req->arena);
            rc = tern_validate(r->body_schema, req->json_body, &errs);
            if (rc == TERN_EINVAL)
                return invalid(req, &errs, "body");
            if (rc != 0) {
                tern__req_fail(req, 503, NULL);
                return rc;
            }
        }
        req->valid_body = json_incref(req->json_body);
    }
    return 0;
}

void tern__inputs_release(tern_req *req)
{
    json_decref(req->json_body);
    json_decref(req->valid_body);
    json_decref(req->valid_query);
    json_decref(req->valid_params);
    req->json_body = req->valid_body = req->valid_query = req->valid_params = NULL;
    if (req->parts != NULL)
        tern__multipart_release(req->parts, req->nparts);
    req->parts = NULL;
    req->nparts = 0;
}
