/*
 * app.c - configuration, the app object, route and middleware registration.
 *
 * Registration happens on one thread before the app runs.  Errors (a bad
 * pattern, a conflict, OOM) are logged and remembered; tern_app_listen()
 * refuses to start with a broken route table, so a typo in a route is found
 * at start-up rather than by a user's 404.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "app/internal.h"
#include "body/json_alloc.h"

void tern_config_init(tern_config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    memset(cfg, 0, sizeof *cfg);
    cfg->host = "0.0.0.0";
    cfg->port = 8080;
    cfg->workers = n > 0 ? (unsigned)n : 1;
    cfg->max_conns = 16384;
    cfg->max_request_line = 8192;
    cfg->max_header_bytes = 16384;
    cfg->max_headers = 100;
    cfg->max_body = 1024 * 1024;
    cfg->json_max_depth = 64;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 30000;
    cfg->keepalive_timeout_ms = 60000;
    cfg->write_timeout_ms = 30000;
    cfg->shutdown_timeout_ms = 10000;
    cfg->max_keepalive_requests = 0;
    cfg->stack_size = 256 * 1024;
    cfg->offload_threads = 4;
    cfg->server_header = NULL;
    cfg->install_signals = 1;
}

tern_app *tern_app_new(const tern_config *cfg)
{
    tern_app *app = tern_calloc(1, sizeof *app);

    if (app == NULL)
        return NULL;
    tern__json_alloc_install();
    if (cfg)
        app->cfg = *cfg;
    else
        tern_config_init(&app->cfg);
    app->router = router_new();
    app->stop_pipe[0] = app->stop_pipe[1] = -1;
    if (app->router == NULL || pipe2(app->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        tern_app_free(app);
        return NULL;
    }
    return app;
}

void tern_app_free(tern_app *app)
{
    if (app == NULL)
        return;
    while (app->routes != NULL) {
        tern_route *r = app->routes;
        app->routes = r->next_alloc;
        tern_free(r->method);
        tern_free(r->pattern);
        tern_free(r->mws.v);
        tern_free(r->chain);
        tern_free(r->body_media);
        tern_free(r);
    }
    while (app->groups != NULL) {
        tern_group *g = app->groups;
        app->groups = g->next_alloc;
        tern_free(g->prefix);
        tern_free(g->mws.v);
        tern_free(g);
    }
    if (app->listen_fds != NULL) {
        for (unsigned i = 0; i < app->nworkers; i++)
            if (app->listen_fds[i] >= 0)
                close(app->listen_fds[i]);
        tern_free(app->listen_fds);
    }
    router_free(app->router);
    tern_free(app->fallback.chain);
    tern_free(app->mws.v);
    if (app->stop_pipe[0] >= 0)
        close(app->stop_pipe[0]);
    if (app->stop_pipe[1] >= 0)
        close(app->stop_pipe[1]);
    tern_free(app);
    tern__json_alloc_drain(); /* the worker threads released theirs on exit */
}

tern_config *tern_app_config(tern_app *app)
{
    return &app->cfg;
}

static int mw_push(mw_list *l, tern_middleware fn, void *data)
{
    mw_entry *v;

    if (fn == NULL)
        return TERN_EINVAL;
    v = tern_realloc(l->v, (l->n + 1) * sizeof *v);
    if (v == NULL)
        return TERN_ENOMEM;
    v[l->n].fn = fn;
    v[l->n].data = data;
    l->v = v;
    l->n++;
    return 0;
}

static void reg_fail(tern_app *app, int rc)
{
    if (app->reg_error == 0)
        app->reg_error = rc;
}

int tern_use(tern_app *app, tern_middleware mw, void *data)
{
    int rc = app->listening ? TERN_ESTATE : mw_push(&app->mws, mw, data);

    if (rc != 0)
        reg_fail(app, rc);
    return rc;
}

/* Joins a prefix and a pattern: "/api" + "/users" -> "/api/users". */
static char *join(const char *prefix, const char *pattern)
{
    size_t a = strlen(prefix), b = strlen(pattern);
    char *s = tern_malloc(a + b + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, prefix, a);
    memcpy(s + a, pattern, b + 1);
    return s;
}

static tern_route *route_add(tern_app *app, tern_group *g, const char *method, const char *pattern,
                             tern_handler handler)
{
    char err[256];
    tern_route *r;
    int rc;

    if (app->listening) {
        reg_fail(app, TERN_ESTATE);
        return NULL;
    }
    if (method == NULL || pattern == NULL || handler == NULL) {
        reg_fail(app, TERN_EINVAL);
        return NULL;
    }
    r = tern_calloc(1, sizeof *r);
    if (r == NULL)
        goto oom;
    r->app = app;
    r->group = g;
    r->handler = handler;
    r->method = tern_strdup(method);
    r->pattern = join(g ? g->prefix : "", pattern);
    if (r->method == NULL || r->pattern == NULL)
        goto oom;
    err[0] = '\0';
    rc = router_add(app->router, method, r->pattern, r, err, sizeof err);
    if (rc != 0) {
        tern_log(TERN_LOG_ERROR, "route %s %s: %s", method, r->pattern,
                 err[0] ? err : tern_strerror(rc));
        reg_fail(app, rc);
        tern_free(r->method);
        tern_free(r->pattern);
        tern_free(r);
        return NULL;
    }
    r->next_alloc = app->routes;
    app->routes = r;
    return r;
oom:
    if (r) {
        tern_free(r->method);
        tern_free(r->pattern);
        tern_free(r);
    }
    reg_fail(app, TERN_ENOMEM);
    return NULL;
}

tern_route *tern_route_add(tern_app *app, const char *method, const char *pattern,
                           tern_handler handler)
{
    return route_add(app, NULL, method, pattern, handler);
}

tern_route *tern_get(tern_app *app, const char *p, tern_handler h)
{
    return route_add(app, NULL, "GET", p, h);
}
tern_route *tern_post(tern_app *app, const char *p, tern_handler h)
{
    return route_add(app, NULL, "POST", p, h);
}
tern_route *tern_put(tern_app *app, const char *p, tern_handler h)
{
    return route_add(app, NULL, "PUT", p, h);
}
tern_route *tern_patch(tern_app *app, const char *p, tern_handler h)
{
    return route_add(app, NULL, "PATCH", p, h);
}
tern_route *tern_delete(tern_app *app, const char *p, tern_handler h)
{
    return route_add(app, NULL, "DELETE", p, h);
}

static tern_group *group_new(tern_app *app, tern_group *parent, const char *prefix)
{
    tern_group *g;
    size_t n;

    if (prefix == NULL || prefix[0] != '/') {
        tern_log(TERN_LOG_ERROR, "group prefix '%s' must start with '/'", prefix ? prefix : "");
        reg_fail(app, TERN_EINVAL);
        return NULL;
    }
    g = tern_calloc(1, sizeof *g);
    if (g == NULL || (g->prefix = join(parent ? parent->prefix : "", prefix)) == NULL) {
        tern_free(g);
        reg_fail(app, TERN_ENOMEM);
        return NULL;
    }
    n = strlen(g->prefix);
    while (n > 0 && g->prefix[n - 1] == '/')
        g->prefix[--n] = '\0'; /* "/api/" + "/users" must not give "//" */
    g->app = app;
    g->parent = parent;
    g->next_alloc = app->groups;
    app->groups = g;
    return g;
}

tern_group *tern_group_new(tern_app *app, const char *prefix)
{
    return group_new(app, NULL, prefix);
}
tern_group *tern_group_sub(tern_group *parent, const char *prefix)
{
    return group_new(parent->app, parent, prefix);
}

int tern_group_use(tern_group *g, tern_middleware mw, void *data)
{
    int rc = g->app->listening ? TERN_ESTATE : mw_push(&g->mws, mw, data);

    if (rc != 0)
        reg_fail(g->app, rc);
    return rc;
}

tern_route *tern_group_route(tern_group *g, const char *method, const char *pattern,
                             tern_handler handler)
{
    return route_add(g->app, g, method, pattern, handler);
}

int tern_route_use(tern_route *r, tern_middleware mw, void *data)
{
    int rc = r->app->listening ? TERN_ESTATE : mw_push(&r->mws, mw, data);

    if (rc != 0)
        reg_fail(r->app, rc);
    return rc;
}

void tern_route_body_limit(tern_route *r, size_t max)
{
    r->body_limit = max;
}
void tern_route_data(tern_route *r, void *data)
{
    r->data = data;
}

/* Flattens app -> groups (outermost first) -> route middleware. */
static int build_chain(tern_app *app, tern_route *r)
{
    tern_group *stack[32];
    unsigned depth = 0, n = app->mws.n + r->mws.n, k = 0;

    for (tern_group *g = r->group; g != NULL; g = g->parent) {
        if (depth == 32)
            return TERN_ETOOBIG;
        stack[depth++] = g;
        n += g->mws.n;
    }
    if (n > MW_MAX)
        return TERN_ETOOBIG;
    r->chain = tern_calloc(n ? n : 1, sizeof *r->chain);
    if (r->chain == NULL)
        return TERN_ENOMEM;
    for (unsigned i = 0; i < app->mws.n; i++)
        r->chain[k++] = &app->mws.v[i];
    while (depth > 0) {
        tern_group *g = stack[--depth];
        for (unsigned i = 0; i < g->mws.n; i++)
            r->chain[k++] = &g->mws.v[i];
    }
    for (unsigned i = 0; i < r->mws.n; i++)
        r->chain[k++] = &r->mws.v[i];
    r->nchain = k;
    return 0;
}

int tern_app_listen(tern_app *app)
{
    int rc;

    if (app->listening)
        return app->port;
    if (app->reg_error != 0) {
        tern_log(TERN_LOG_ERROR, "not starting: the route table has errors (%s)",
                 tern_strerror(app->reg_error));
        return app->reg_error;
    }
    if (app->cfg.workers == 0 || app->cfg.max_headers == 0 || app->cfg.max_conns == 0 ||
        app->cfg.stack_size < 16 * 1024 || app->cfg.host == NULL)
        return TERN_EINVAL;
    for (tern_route *r = app->routes; r != NULL; r = r->next_alloc) {
        if (r->body_limit == 0)
            r->body_limit = app->cfg.max_body;
        rc = build_chain(app, r);
        if (rc != 0) {
            tern_log(TERN_LOG_ERROR, "route %s %s: more than %d middleware", r->method, r->pattern,
                     MW_MAX);
            return rc;
        }
    }
    for (unsigned i = 0; i < app->mws.n; i++)
        if (app->mws.v[i].fn == tern_mw_request_id)
            app->uses_request_id = 1;
    app->fallback.app = app;
    app->fallback.handler = tern__fallback_handler;
    app->fallback.method = "";
    app->fallback.body_limit = app->cfg.max_body;
    rc = build_chain(app, &app->fallback);
    if (rc != 0)
        return rc;
    app->nworkers = app->cfg.workers;
    rc = tern__server_listen(app);
    if (rc < 0)
        return rc;
    app->listening = 1;
    return rc;
}

int tern_app_run(tern_app *app)
{
    int rc = tern_app_listen(app);

    if (rc < 0)
        return rc;
    return tern__server_run(app);
}

void tern_app_stop(tern_app *app)
{
    char c = 1;
    ssize_t n = write(app->stop_pipe[1], &c, 1);

    (void)n;
}

/* Parses a non-negative integer option value. */
static int parse_num(const char *s, long long max, long long *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

int tern_app_args(tern_app *app, int argc, char **argv)
{
    static const struct {
        const char *flag;
        long long max;
        size_t off;
        int kind; /* 0 int, 1 unsigned, 2 size_t */
    } opts[] = {
        { "--port", 65535, offsetof(tern_config, port), 0 },
        { "--workers", 1024, offsetof(tern_config, workers), 1 },
        { "--max-conns", 1 << 24, offsetof(tern_config, max_conns), 1 },
        { "--max-body", 1LL << 40, offsetof(tern_config, max_body), 2 },
        { "--header-timeout", 1 << 30, offsetof(tern_config, header_timeout_ms), 0 },
        { "--body-timeout", 1 << 30, offsetof(tern_config, body_timeout_ms), 0 },
        { "--keepalive-timeout", 1 << 30, offsetof(tern_config, keepalive_timeout_ms), 0 },
        { "--write-timeout", 1 << 30, offsetof(tern_config, write_timeout_ms), 0 },
        { "--shutdown-timeout", 1 << 30, offsetof(tern_config, shutdown_timeout_ms), 0 },
    };
    const char *port_env = getenv("PORT");
    long long v;
    int port_set = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t k;

        if (strcmp(a, "--host") == 0 && i + 1 < argc) {
            app->cfg.host = argv[++i];
            continue;
        }
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strcmp(a, opts[k].flag) == 0)
                break;
        if (k == sizeof opts / sizeof opts[0] || i + 1 >= argc ||
            parse_num(argv[i + 1], opts[k].max, &v) != 0)
            goto usage;
        i++;
        if (k == 0)
            port_set = 1;
        if (opts[k].kind == 0)
            *(int *)((char *)&app->cfg + opts[k].off) = (int)v;
        else if (opts[k].kind == 1)
            *(unsigned *)((char *)&app->cfg + opts[k].off) = (unsigned)v;
        else
            *(size_t *)((char *)&app->cfg + opts[k].off) = (size_t)v;
    }
    if (!port_set && port_env != NULL) {
        if (parse_num(port_env, 65535, &v) != 0) {
            fprintf(stderr, "PORT must be a number from 0 to 65535\n");
            return TERN_EINVAL;
        }
        app->cfg.port = (int)v;
    }
    if (app->cfg.workers == 0)
        goto usage;
    return 0;
usage:
    fprintf(stderr,
            "usage: %s [--port N] [--host ADDR] [--workers N] [--max-conns N] [--max-body BYTES]\n"
            "       [--header-timeout MS] [--body-timeout MS] [--keepalive-timeout MS]\n"
            "       [--write-timeout MS] [--shutdown-timeout MS]\n",
            argc > 0 ? argv[0] : "tern-app");
    return TERN_EINVAL;
}
