/*
 * test_router.c - unit tests for the router (src/app/router.c) and the URL
 * decoder (src/app/url.c).
 *
 * Most tests are tables: one route set, then (method, path) -> expected
 * result, data, params and Allow string.  Besides those: add errors and
 * conflicts, an allocation-failure loop (every allocation of router_new and
 * router_add failed in turn, with a counting allocator proving nothing
 * leaks and the router still routing), and a property test that checks the
 * tree against a naive reference matcher over random route sets.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/router.h"

#define ID(n) ((void *)(uintptr_t)(n))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int str_is(tern_str s, const char *c)
{
    return tern_str_eq(s, tern_str_c(c));
}

typedef struct route_def {
    const char *method;
    const char *pattern;
    int id;
} route_def;

static router *build(const route_def *defs, size_t n)
{
    router *r = router_new();
    char err[256];

    cr_assert_not_null(r);
    for (size_t i = 0; i < n; i++) {
        int rc = router_add(r, defs[i].method, defs[i].pattern, ID(defs[i].id), err, sizeof err);

        cr_assert_eq(rc, 0, "add %s %s: %d %s", defs[i].method, defs[i].pattern, rc, err);
    }
    return r;
}

static int find(const router *r, const char *method, const char *path, router_match *m)
{
    return router_find(r, tern_str_c(method), tern_str_c(path), m);
}

/* ------------------------------------------------------------------------ */
/* Lookup table                                                               */

static const route_def main_routes[] = {
    { "GET", "/", 1 },
    { "GET", "/users", 2 },
    { "POST", "/users", 3 },
    { "GET", "/users/", 4 },
    { "GET", "/users/:id", 5 },
    { "PUT", "/users/:id", 6 },
    { "DELETE", "/users/:id", 7 },
    { "GET", "/users/me", 8 },
    { "GET", "/users/:id/posts/:post", 9 },
    { "GET", "/files/*path", 10 },
    { "GET", "/static/*rest", 11 },
    { "GET", "/static/favicon.ico", 12 },
    { "GET", "/a/b/c", 13 },
    { "GET", "/a/:x/d", 14 },
    { "HEAD", "/h", 15 },
    { "GET", "/h", 16 },
    { "GET", "/g", 17 },
    { "OPTIONS", "/o", 18 },
    { "GET", "/o", 19 },
    { "PURGE", "/cache/:key", 20 },
    { "get", "/lower", 21 },
    { "GET", "//double", 22 },
    { "LINK", "/l", 23 },
    { "POST", "/l", 24 },
    { "GET", "/d/:a/:b/:c/:d/:e/x", 25 },
    { "GET", "/mix/:p", 26 },
    { "GET", "/mix/*w", 27 },
    { "HEAD", "/headonly", 28 },
    { "GET", "/*catchall", 29 },
    { "GET", "/v1/a%20b", 30 },
    { "M-SEARCH", "/l", 31 },
    { "GET", "/e//x", 32 },
};

typedef struct lookup_case {
    const char *method;
    const char *path;
    int rc;
    int id;              /* expected data (ROUTER_FOUND) */
    const char *allow;   /* expected Allow (NULL: not checked, "" : empty) */
    const char *params[12]; /* name, value, ..., NULL */
} lookup_case;

#define F ROUTER_FOUND
#define NF ROUTER_NOT_FOUND
#define NA ROUTER_NOT_ALLOWED
#define OPT ROUTER_OPTIONS

static const lookup_case main_cases[] = {
    /* literal routes, HEAD fallback, methods */
    { "GET", "/", F, 1, "GET, HEAD, OPTIONS", { NULL } },
    { "GET", "/users", F, 2, "GET, HEAD, OPTIONS, POST", { NULL } },
    { "POST", "/users", F, 3, NULL, { NULL } },
    { "HEAD", "/users", F, 2, NULL, { NULL } },
    { "DELETE", "/users", NA, 0, "GET, HEAD, OPTIONS, POST", { NULL } },
    { "OPTIONS", "/users", OPT, 0, "GET, HEAD, OPTIONS, POST", { NULL } },
    /* trailing slash: a different route */
    { "GET", "/users/", F, 4, "GET, HEAD, OPTIONS", { NULL } },
    { "POST", "/users/", NA, 0, "GET, HEAD, OPTIONS", { NULL } },
    /* literal beats param; params are raw */
    { "GET", "/users/me", F, 8, NULL, { NULL } },
    { "GET", "/users/42", F, 5, NULL, { "id", "42", NULL } },
    { "GET", "/users/%41b", F, 5, NULL, { "id", "%41b", NULL } },
    { "PUT", "/users/42", F, 6, NULL, { "id", "42", NULL } },
    { "DELETE", "/users/42", F, 7, NULL, { "id", "42", NULL } },
    { "HEAD", "/users/42", F, 5, NULL, { "id", "42", NULL } },
    { "PATCH", "/users/42", NA, 0, "DELETE, GET, HEAD, OPTIONS, PUT", { "id", "42", NULL } },
    { "OPTIONS", "/users/42", OPT, 0, "DELETE, GET, HEAD, OPTIONS, PUT", { NULL } },
    /* the literal wins even when only the param has the method */
    { "PUT", "/users/me", NA, 0, "GET, HEAD, OPTIONS", { NULL } },
    /* empty segment: a param needs a non-empty one */
    { "GET", "/users//1", NF, 0, "", { NULL } },
    { "GET", "/users/42/posts/7", F, 9, NULL, { "id", "42", "post", "7", NULL } },
    { "GET", "/users/me/posts/7", NF, 0, "", { NULL } },
    { "GET", "/users/42/posts", NF, 0, "", { NULL } },
    { "GET", "/users/42/posts/", NF, 0, "", { NULL } },
    { "GET", "/users/42/", NF, 0, "", { NULL } },
    /* wildcard */
    { "GET", "/files/", F, 10, NULL, { "path", "", NULL } },
    { "GET", "/files/a", F, 10, NULL, { "path", "a", NULL } },
    { "GET", "/files/a/b/c.txt", F, 10, NULL, { "path", "a/b/c.txt", NULL } },
    { "GET", "/files//x/", F, 10, NULL, { "path", "/x/", NULL } },
    { "GET", "/files/:id", F, 10, NULL, { "path", ":id", NULL } },
    /* "/files" has no segment for the wildcard, and the root catch-all is
     * not revisited once the literal "files" was taken */
    { "GET", "/files", NF, 0, "", { NULL } },
    { "GET", "/static/favicon.ico", F, 12, NULL, { NULL } },
    { "GET", "/static/css/site.css", F, 11, NULL, { "rest", "css/site.css", NULL } },
    /* no backtracking: the literal was taken, the wildcard is not revisited */
    { "GET", "/static/favicon.ico/x", NF, 0, "", { NULL } },
    { "GET", "/a/b/c", F, 13, NULL, { NULL } },
    { "GET", "/a/z/d", F, 14, NULL, { "x", "z", NULL } },
    { "GET", "/a/b/d", NF, 0, "", { NULL } },
    /* explicit HEAD and OPTIONS routes win */
    { "HEAD", "/h", F, 15, "GET, HEAD, OPTIONS", { NULL } },
    { "GET", "/h", F, 16, NULL, { NULL } },
    { "HEAD", "/g", F, 17, NULL, { NULL } },
    { "OPTIONS", "/g", OPT, 0, "GET, HEAD, OPTIONS", { NULL } },
    { "POST", "/g", NA, 0, "GET, HEAD, OPTIONS", { NULL } },
    { "OPTIONS", "/o", F, 18, "GET, HEAD, OPTIONS", { NULL } },
    { "GET", "/headonly", NA, 0, "HEAD, OPTIONS", { NULL } },
    { "HEAD", "/headonly", F, 28, NULL, { NULL } },
    /* custom tokens: exact, case-sensitive, sorted bytewise in Allow */
    { "PURGE", "/cache/k1", F, 20, "OPTIONS, PURGE", { "key", "k1", NULL } },
    { "GET", "/cache/k1", NA, 0, "OPTIONS, PURGE", { "key", "k1", NULL } },
    { "purge", "/cache/k1", NA, 0, "OPTIONS, PURGE", { NULL } },
    { "get", "/lower", F, 21, "OPTIONS, get", { NULL } },
    { "GET", "/lower", NA, 0, "OPTIONS, get", { NULL } },
    { "HEAD", "/lower", NA, 0, "OPTIONS, get", { NULL } },
    { "LINK", "/l", F, 23, "LINK, M-SEARCH, OPTIONS, POST", { NULL } },
    { "M-SEARCH", "/l", F, 31, NULL, { NULL } },
    { "POST", "/l", F, 24, NULL, { NULL } },
    { "HEAD", "/l", NA, 0, "LINK, M-SEARCH, OPTIONS, POST", { NULL } },
    { "", "/l", NA, 0, NULL, { NULL } },
    { "UNLINK", "/l", NA, 0, NULL, { NULL } },
    /* empty segments are literal */
    { "GET", "//double", F, 22, NULL, { NULL } },
    { "GET", "/e//x", F, 32, NULL, { NULL } },
    { "GET", "/e/x", NF, 0, "", { NULL } },
    /* deep params */
    { "GET", "/d/1/2/3/4/5/x", F, 25, NULL,
      { "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", NULL } },
    { "GET", "/d/1/2/3/4/5/y", NF, 0, "", { NULL } },
    { "GET", "/d/1/2//4/5/x", NF, 0, "", { NULL } },
    /* param vs wildcard at the same position */
    { "GET", "/mix/abc", F, 26, NULL, { "p", "abc", NULL } },
    { "GET", "/mix/", F, 27, NULL, { "w", "", NULL } },
    { "GET", "/mix//a", F, 27, NULL, { "w", "/a", NULL } },
    { "GET", "/mix/a/b", NF, 0, "", { NULL } },
    /* literals match the raw path */
    { "GET", "/v1/a%20b", F, 30, NULL, { NULL } },
    /* root catch-all and malformed paths */
    { "GET", "/nope/deeper", F, 29, NULL, { "catchall", "nope/deeper", NULL } },
    { "GET", "", NF, 0, "", { NULL } },
    { "GET", "users", NF, 0, "", { NULL } },
    { "GET", "*", NF, 0, "", { NULL } },
};

static void check_case(const router *r, const lookup_case *c)
{
    router_match m;
    int rc = find(r, c->method, c->path, &m);
    unsigned np = 0;

    cr_assert_eq(rc, c->rc, "%s %s: rc %d, want %d", c->method, c->path, rc, c->rc);
    if (rc == ROUTER_FOUND)
        cr_assert_eq(m.data, ID(c->id), "%s %s: data %p, want %d", c->method, c->path, m.data,
                     c->id);
    else
        cr_assert_null(m.data, "%s %s: data set on rc %d", c->method, c->path, rc);
    if (c->allow != NULL)
        cr_assert(str_is(m.allow, c->allow), "%s %s: allow '%.*s', want '%s'", c->method,
                  c->path, (int)m.allow.n, m.allow.p ? m.allow.p : "", c->allow);
    if (rc == ROUTER_NOT_FOUND) {
        cr_assert_eq(m.nparams, 0);
        return;
    }
    if (c->params[0] == NULL && c->rc != ROUTER_FOUND)
        return; /* params of 405/OPTIONS results not listed: not checked */
    while (c->params[2 * np] != NULL)
        np++;
    cr_assert_eq(m.nparams, np, "%s %s: %u params, want %u", c->method, c->path, m.nparams, np);
    for (unsigned i = 0; i < np; i++) {
        cr_assert(str_is(m.names[i], c->params[2 * i]), "%s %s: param %u name '%.*s'",
                  c->method, c->path, i, (int)m.names[i].n, m.names[i].p);
        cr_assert(str_is(m.values[i], c->params[2 * i + 1]), "%s %s: param %u value '%.*s'",
                  c->method, c->path, i, (int)m.values[i].n, m.values[i].p);
        /* values point into the path */
        cr_assert(m.values[i].p >= c->path && m.values[i].p + m.values[i].n <= c->path +
                                                  strlen(c->path));
    }
}

Test(router, lookup_table)
{
    router *r = build(main_routes, NELEM(main_routes));

    for (size_t i = 0; i < NELEM(main_cases); i++)
        check_case(r, &main_cases[i]);
    router_free(r);
}

/* Insertion order must not matter: add the same routes in reverse. */
Test(router, lookup_table_reverse_order)
{
    router *r = router_new();
    char err[256];

    for (size_t i = NELEM(main_routes); i-- > 0;)
        cr_assert_eq(router_add(r, main_routes[i].method, main_routes[i].pattern,
                                ID(main_routes[i].id), err, sizeof err),
                     0, "%s", err);
    for (size_t i = 0; i < NELEM(main_cases); i++)
        check_case(r, &main_cases[i]);
    router_free(r);
}

Test(router, path_not_nul_terminated)
{
    static const route_def defs[] = { { "GET", "/users/:id", 1 }, { "GET", "/f/*p", 2 } };
    router *r = build(defs, 2);
    const char buf[] = "/users/12345/morebytes";
    router_match m;

    /* Only the first 12 bytes are the path. */
    cr_assert_eq(router_find(r, TERN_STR("GET"), (tern_str){ buf, 12 }, &m), ROUTER_FOUND);
    cr_assert(str_is(m.values[0], "12345"));
    cr_assert_eq(router_find(r, (tern_str){ "GETX", 3 }, (tern_str){ "/f/abc", 4 }, &m),
                 ROUTER_FOUND);
    cr_assert(str_is(m.values[0], "a"));
    cr_assert_eq(router_find(r, TERN_STR("GET"), TERN_STR_NULL, &m), ROUTER_NOT_FOUND);
    router_free(r);
}

Test(router, trailing_slash_policy)
{
    static const route_def defs[] = {
        { "GET", "/a", 1 }, { "GET", "/b/", 2 }, { "GET", "/c/:x", 3 }, { "GET", "/w/*r", 4 },
    };
    router *r = build(defs, NELEM(defs));
    router_match m;

    cr_assert_eq(find(r, "GET", "/a", &m), ROUTER_FOUND);
    cr_assert_eq(find(r, "GET", "/a/", &m), ROUTER_NOT_FOUND);
    cr_assert_eq(find(r, "GET", "/b/", &m), ROUTER_FOUND);
    cr_assert_eq(find(r, "GET", "/b", &m), ROUTER_NOT_FOUND);
    cr_assert_eq(find(r, "GET", "/c/1", &m), ROUTER_FOUND);
    cr_assert_eq(find(r, "GET", "/c/1/", &m), ROUTER_NOT_FOUND);
    cr_assert_eq(find(r, "GET", "/c/", &m), ROUTER_NOT_FOUND);
    /* the wildcard needs its segment, which may be empty */
    cr_assert_eq(find(r, "GET", "/w/", &m), ROUTER_FOUND);
    cr_assert(str_is(m.values[0], ""));
    cr_assert_eq(find(r, "GET", "/w", &m), ROUTER_NOT_FOUND);
    router_free(r);
}

Test(router, root_and_root_wildcard)
{
    static const route_def defs[] = { { "GET", "/*all", 1 } };
    router *r = build(defs, 1);
    router_match m;

    cr_assert_eq(find(r, "GET", "/", &m), ROUTER_FOUND);
    cr_assert(str_is(m.names[0], "all") && str_is(m.values[0], ""));
    cr_assert_eq(find(r, "GET", "/x/y/", &m), ROUTER_FOUND);
    cr_assert(str_is(m.values[0], "x/y/"));
    cr_assert_eq(router_add(r, "GET", "/", ID(2), NULL, 0), 0);
    cr_assert_eq(find(r, "GET", "/", &m), ROUTER_FOUND);
    cr_assert_eq(m.data, ID(2));
    cr_assert_eq(m.nparams, 0);
    router_free(r);
}

Test(router, many_siblings)
{
    enum { N = 1000 };
    router *r = router_new();
    char pat[64], path[64];
    router_match m;

    /* Insert in a scrambled order (7 is coprime with N). */
    for (unsigned k = 0; k < N; k++) {
        unsigned i = (k * 7u) % N;

        snprintf(pat, sizeof pat, "/s/%s%u", i % 3 ? "k" : "longer-key-", i);
        cr_assert_eq(router_add(r, "GET", pat, ID(i + 1), NULL, 0), 0);
    }
    cr_assert_eq(router_add(r, "GET", "/s/:other", ID(N + 1), NULL, 0), 0);
    for (unsigned i = 0; i < N; i++) {
        snprintf(path, sizeof path, "/s/%s%u", i % 3 ? "k" : "longer-key-", i);
        cr_assert_eq(find(r, "GET", path, &m), ROUTER_FOUND, "%s", path);
        cr_assert_eq(m.data, ID(i + 1), "%s", path);
        cr_assert_eq(m.nparams, 0);
    }
    cr_assert_eq(find(r, "GET", "/s/k1000", &m), ROUTER_FOUND);
    cr_assert_eq(m.data, ID(N + 1));
    cr_assert(str_is(m.values[0], "k1000"));
    cr_assert_eq(find(r, "GET", "/s/k", &m), ROUTER_FOUND);
    cr_assert_eq(m.data, ID(N + 1));
    router_free(r);
}

Test(router, deep_path)
{
    enum { DEPTH = 300 };
    char pat[DEPTH * 4 + 8], path[DEPTH * 4 + 8];
    size_t pn = 0, qn = 0;
    router *r = router_new();
    router_match m;

    for (int i = 0; i < DEPTH; i++) {
        int param = i % 50 == 7; /* 6 params in all */

        pn += (size_t)snprintf(pat + pn, sizeof pat - pn, param ? "/:p%d" : "/%d", i);
        qn += (size_t)snprintf(path + qn, sizeof path - qn, param ? "/v%d" : "/%d", i);
    }
    cr_assert_eq(router_add(r, "GET", pat, ID(1), NULL, 0), 0);
    cr_assert_eq(find(r, "GET", path, &m), ROUTER_FOUND);
    cr_assert_eq(m.nparams, 6);
    cr_assert(str_is(m.names[0], "p7") && str_is(m.values[0], "v7"));
    cr_assert(str_is(m.names[5], "p257") && str_is(m.values[5], "v257"));
    path[qn - 1] = 'x';
    cr_assert_eq(find(r, "GET", path, &m), ROUTER_NOT_FOUND);
    router_free(r);
}

Test(router, max_params)
{
    char pat[256];
    size_t n = 0;
    router *r = router_new();
    char err[256];
    router_match m;

    for (int i = 0; i < ROUTER_MAX_PARAMS - 1; i++)
        n += (size_t)snprintf(pat + n, sizeof pat - n, "/:p%d", i);
    snprintf(pat + n, sizeof pat - n, "/*rest");
    cr_assert_eq(router_add(r, "GET", pat, ID(1), err, sizeof err), 0, "%s", err);
    cr_assert_eq(find(r, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/a/b", &m), ROUTER_FOUND);
    cr_assert_eq(m.nparams, ROUTER_MAX_PARAMS);
    cr_assert(str_is(m.values[ROUTER_MAX_PARAMS - 1], "a/b"));
    /* one more is too many */
    snprintf(pat + n, sizeof pat - n, "/:x/*rest");
    cr_assert_eq(router_add(r, "GET", pat, ID(2), err, sizeof err), TERN_EINVAL);
    cr_assert(strstr(err, "more than 16 parameters") != NULL, "%s", err);
    router_free(r);
}

/* ------------------------------------------------------------------------ */
/* Add errors and conflicts                                                   */

typedef struct add_error_case {
    const char *method;
    const char *pattern;
    int rc;
    const char *msg; /* a substring of the message */
} add_error_case;

Test(router, add_errors)
{
    static const add_error_case cases[] = {
        { "GET", "users", TERN_EINVAL, "must start with '/'" },
        { "GET", "", TERN_EINVAL, "must start with '/'" },
        { "GET", "*", TERN_EINVAL, "must start with '/'" },
        { "GET", "/:", TERN_EINVAL, "':' with an empty name" },
        { "GET", "/a/:/b", TERN_EINVAL, "':' with an empty name" },
        { "GET", "/*", TERN_EINVAL, "'*' with an empty name" },
        { "GET", "/:a-b", TERN_EINVAL, "may only use [A-Za-z0-9_]" },
        { "GET", "/:a.b", TERN_EINVAL, "may only use [A-Za-z0-9_]" },
        { "GET", "/*a%20", TERN_EINVAL, "may only use [A-Za-z0-9_]" },
        { "GET", "/:\xc3\xa9", TERN_EINVAL, "may only use [A-Za-z0-9_]" },
        { "GET", "/*a/b", TERN_EINVAL, "must be the last segment" },
        { "GET", "/*a/", TERN_EINVAL, "must be the last segment" },
        { "GET", "/*a/:b", TERN_EINVAL, "must be the last segment" },
        { "GET", "/a:b", TERN_EINVAL, "mixes literal text with a parameter" },
        { "GET", "/a*", TERN_EINVAL, "mixes literal text with a parameter" },
        { "GET", "/x/v1:batch", TERN_EINVAL, "mixes literal text with a parameter" },
        { "GET", "/:a-:b", TERN_EINVAL, "more than one parameter" },
        { "GET", "/:a:b", TERN_EINVAL, "more than one parameter" },
        { "GET", "/*a*b", TERN_EINVAL, "more than one parameter" },
        { "GET", "/:id/:id", TERN_EINVAL, "appears twice" },
        { "GET", "/:id/*id", TERN_EINVAL, "appears twice" },
        { "GET", "/a b", TERN_EINVAL, "cannot appear in a request path" },
        { "GET", "/a?b", TERN_EINVAL, "cannot appear in a request path" },
        { "GET", "/a#b", TERN_EINVAL, "cannot appear in a request path" },
        { "GET", "/a\tb", TERN_EINVAL, "cannot appear in a request path" },
        { "GET", "/a\x7f", TERN_EINVAL, "cannot appear in a request path" },
        { "", "/a", TERN_EINVAL, "empty method" },
        { "G T", "/a", TERN_EINVAL, "not an HTTP token" },
        { "GET\r\n", "/a", TERN_EINVAL, "not an HTTP token" },
        { "(GET)", "/a", TERN_EINVAL, "not an HTTP token" },
        { "G\xc3\x89T", "/a", TERN_EINVAL, "not an HTTP token" },
        { "GET/", "/a", TERN_EINVAL, "not an HTTP token" },
        { "GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p/:q", TERN_EINVAL,
          "more than 16 parameters" },
        { "GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p/*q", TERN_EINVAL,
          "more than 16 parameters" },
    };
    router *r = router_new();
    char err[256];
    router_match m;

    cr_assert_eq(router_add(r, "GET", "/ok", ID(1), NULL, 0), 0);
    for (size_t i = 0; i < NELEM(cases); i++) {
        const add_error_case *c = &cases[i];
        int rc;

        memset(err, 'x', sizeof err);
        rc = router_add(r, c->method, c->pattern, ID(2), err, sizeof err);
        cr_assert_eq(rc, c->rc, "%s %s: rc %d", c->method, c->pattern, rc);
        cr_assert(strstr(err, c->msg) != NULL, "%s %s: message '%s'", c->method, c->pattern,
                  err);
    }
    /* nothing was added by the failed calls */
    cr_assert_eq(find(r, "GET", "/ok", &m), ROUTER_FOUND);
    cr_assert(str_is(m.allow, "GET, HEAD, OPTIONS"));
    cr_assert_eq(find(r, "GET", "/a", &m), ROUTER_NOT_FOUND);
    /* NULL arguments, NULL err buffer, tiny err buffer */
    cr_assert_eq(router_add(NULL, "GET", "/x", NULL, NULL, 0), TERN_EINVAL);
    cr_assert_eq(router_add(r, NULL, "/x", NULL, NULL, 0), TERN_EINVAL);
    cr_assert_eq(router_add(r, "GET", NULL, NULL, err, sizeof err), TERN_EINVAL);
    cr_assert_eq(router_add(r, "GET", "x", NULL, err, 4), TERN_EINVAL);
    cr_assert_str_eq(err, "GET");
    router_free(r);
}

Test(router, pattern_length_limit)
{
    char pat[3000];
    router *r = router_new();
    char err[256];

    memset(pat, 'a', sizeof pat);
    pat[0] = '/';
    pat[2048] = '\0';
    cr_assert_eq(router_add(r, "GET", pat, ID(1), err, sizeof err), 0, "%s", err);
    pat[2048] = 'a';
    pat[2049] = '\0';
    cr_assert_eq(router_add(r, "GET", pat, ID(1), err, sizeof err), TERN_EINVAL);
    cr_assert(strstr(err, "longer than 2048") != NULL, "%s", err);
    /* the deepest possible tree: 2048 empty segments */
    memset(pat, '/', 2048);
    pat[2048] = '\0';
    cr_assert_eq(router_add(r, "GET", pat, ID(2), err, sizeof err), 0, "%s", err);
    router_free(r);
}

typedef struct conflict_case {
    const char *first_method, *first;
    const char *method, *pattern;
    int rc;
    const char *msg; /* exact message, or NULL */
    const char *needle1, *needle2; /* substrings, or NULL */
} conflict_case;

Test(router, conflicts)
{
    static const conflict_case cases[] = {
        { "GET", "/users/:id", "GET", "/users/:id", TERN_EEXIST,
          "GET /users/:id conflicts with GET /users/:id", NULL, NULL },
        { "GET", "/x", "GET", "/x", TERN_EEXIST, "GET /x conflicts with GET /x", NULL, NULL },
        { "PURGE", "/x", "PURGE", "/x", TERN_EEXIST, "PURGE /x conflicts with PURGE /x", NULL,
          NULL },
        { "GET", "/f/*p", "GET", "/f/*p", TERN_EEXIST, NULL, "conflicts", NULL },
        { "GET", "/", "GET", "/", TERN_EEXIST, NULL, "conflicts", NULL },
        { "GET", "/users/:id", "GET", "/users/:name", TERN_EEXIST, NULL, ":name", ":id" },
        { "GET", "/users/:id", "POST", "/users/:name", TERN_EEXIST, NULL, ":name", ":id" },
        { "GET", "/u/:id", "GET", "/u/:name/x", TERN_EEXIST, NULL, ":name", ":id" },
        { "GET", "/u/:id/x", "GET", "/u/:name", TERN_EEXIST, NULL, ":name", ":id" },
        { "GET", "/f/*a", "GET", "/f/*b", TERN_EEXIST, NULL, "*b", "*a" },
        /* not conflicts */
        { "GET", "/users/:id", "POST", "/users/:id", 0, NULL, NULL, NULL },
        { "GET", "/users/:id", "GET", "/users/me", 0, NULL, NULL, NULL },
        { "GET", "/users/:id", "GET", "/users/:id/", 0, NULL, NULL, NULL },
        { "GET", "/f/:a", "GET", "/f/*b", 0, NULL, NULL, NULL },
        { "GET", "/x", "get", "/x", 0, NULL, NULL, NULL },
        { "GET", "/x", "HEAD", "/x", 0, NULL, NULL, NULL },
        { "GET", "/x", "OPTIONS", "/x", 0, NULL, NULL, NULL },
        { "GET", "/x", "GET", "/x/", 0, NULL, NULL, NULL },
        { "GET", "/x", "GET", "//x", 0, NULL, NULL, NULL },
    };
    char err[256];

    for (size_t i = 0; i < NELEM(cases); i++) {
        const conflict_case *c = &cases[i];
        router *r = router_new();
        router_match m;
        int rc;

        cr_assert_eq(router_add(r, c->first_method, c->first, ID(1), NULL, 0), 0);
        rc = router_add(r, c->method, c->pattern, ID(2), err, sizeof err);
        cr_assert_eq(rc, c->rc, "%s %s after %s %s: rc %d (%s)", c->method, c->pattern,
                     c->first_method, c->first, rc, err);
        if (c->msg != NULL)
            cr_assert_str_eq(err, c->msg);
        if (c->needle1 != NULL)
            cr_assert(strstr(err, c->needle1) != NULL, "%s", err);
        if (c->needle2 != NULL)
            cr_assert(strstr(err, c->needle2) != NULL, "%s", err);
        /* the first route is untouched either way */
        cr_assert_eq(find(r, c->first_method, c->first, &m), ROUTER_FOUND, "%s %s",
                     c->first_method, c->first);
        cr_assert_eq(m.data, ID(1));
        router_free(r);
    }
}

/* ------------------------------------------------------------------------ */
/* Allocation failures                                                        */

static unsigned long g_calls, g_fail_at;
static long g_live;

static void *t_malloc(size_t n)
{
    void *p;

    if (++g_calls == g_fail_at)
        return NULL;
    p = malloc(n);
    if (p != NULL)
        g_live++;
    return p;
}

static void *t_realloc(void *p, size_t n)
{
    void *q;

    if (++g_calls == g_fail_at)
        return NULL;
    q = realloc(p, n);
    if (q != NULL && p == NULL)
        g_live++;
    return q;
}

static void t_free(void *p)
{
    if (p != NULL)
        g_live--;
    free(p);
}

static void check_base(const router *r)
{
    router_match m;

    cr_assert_eq(find(r, "GET", "/users/7", &m), ROUTER_FOUND);
    cr_assert_eq(m.data, ID(1));
    cr_assert_eq(find(r, "GET", "/users", &m), ROUTER_FOUND);
    cr_assert_eq(m.data, ID(2));
    cr_assert_eq(find(r, "PURGE", "/c", &m), ROUTER_FOUND);
    cr_assert_eq(m.data, ID(3));
    cr_assert(str_is(m.allow, "OPTIONS, PURGE"));
}

Test(router, oom_loop)
{
    static const struct {
        const char *method, *pattern, *path;
        int id;
    } adds[] = {
        { "GET", "/brand/new/:x/deep/*rest", "/brand/new/1/deep/z", 10 }, /* new chain */
        { "POST", "/users/:id", "/users/1", 11 },      /* std method, existing node */
        { "PURGE", "/users/:id", "/users/1", 12 },     /* custom method, existing node */
        { "GET", "/users/:id/a", "/users/1/a", 13 },   /* first literal child */
        { "GET", "/users/:id/b", "/users/1/b", 14 },   /* edge array growth */
        { "GET", "/users/:id/c", "/users/1/c", 15 },
        { "GET", "/users/:id/d", "/users/1/d", 16 },
        { "LINK", "/new/custom", "/new/custom", 17 },  /* custom method, new node */
        { "BIND", "/users/:id", "/users/1", 18 },      /* custom array growth */
        { "GET", "/", "/", 19 },                       /* root's first literal child */
    };
    router *r = NULL;
    router_match m;
    unsigned long failures = 0;

    tern_set_allocator(t_malloc, t_realloc, t_free);

    for (unsigned long nth = 1;; nth++) {
        g_calls = 0;
        g_fail_at = nth;
        r = router_new();
        if (r != NULL)
            break;
        cr_assert_eq(g_live, 0, "router_new leaked after failing alloc %lu", nth);
    }
    g_fail_at = 0;
    cr_assert_eq(router_add(r, "GET", "/users/:id", ID(1), NULL, 0), 0);
    cr_assert_eq(router_add(r, "GET", "/users", ID(2), NULL, 0), 0);
    cr_assert_eq(router_add(r, "PURGE", "/c", ID(3), NULL, 0), 0);

    for (size_t i = 0; i < NELEM(adds); i++) {
        for (unsigned long nth = 1;; nth++) {
            char err[128];
            int rc;

            g_calls = 0;
            g_fail_at = nth;
            rc = router_add(r, adds[i].method, adds[i].pattern, ID(adds[i].id), err, sizeof err);
            g_fail_at = 0;
            if (rc == 0)
                break;
            failures++;
            cr_assert_eq(rc, TERN_ENOMEM, "%s %s at %lu: %d", adds[i].method, adds[i].pattern,
                         nth, rc);
            cr_assert(strstr(err, "out of memory") != NULL);
            /* still valid, and the failed route is not there */
            check_base(r);
            rc = find(r, adds[i].method, adds[i].path, &m);
            cr_assert(rc != ROUTER_FOUND || m.data != ID(adds[i].id), "%s %s at %lu",
                      adds[i].method, adds[i].pattern, nth);
        }
        check_base(r);
        cr_assert_eq(find(r, adds[i].method, adds[i].path, &m), ROUTER_FOUND);
        cr_assert_eq(m.data, ID(adds[i].id));
    }
    cr_assert_gt(failures, 10);

    /* everything landed, and lookups never allocate */
    g_calls = 0;
    for (size_t i = 0; i < NELEM(adds); i++) {
        cr_assert_eq(find(r, adds[i].method, adds[i].path, &m), ROUTER_FOUND);
        cr_assert_eq(m.data, ID(adds[i].id));
    }
    cr_assert_eq(find(r, "BIND", "/users/5", &m), ROUTER_FOUND);
    cr_assert(str_is(m.allow, "BIND, GET, HEAD, OPTIONS, POST, PURGE"));
    cr_assert_eq(find(r, "NOPE", "/users/5", &m), ROUTER_NOT_ALLOWED);
    cr_assert_eq(g_calls, 0, "router_find allocated");

    router_free(r);
    cr_assert_eq(g_live, 0, "%ld blocks leaked", g_live);
    tern_set_allocator(NULL, NULL, NULL);
}

/* A failed add may only be retried: the conflicting state must not change. */
Test(router, oom_then_conflict)
{
    router *r;
    char err[128];

    tern_set_allocator(t_malloc, t_realloc, t_free);
    g_fail_at = 0;
    r = router_new();
    cr_assert_eq(router_add(r, "GET", "/a/:id", ID(1), NULL, 0), 0);
    g_calls = 0;
    g_fail_at = 1;
    cr_assert_eq(router_add(r, "GET", "/a/:id/x", ID(2), err, sizeof err), TERN_ENOMEM);
    g_fail_at = 0;
    cr_assert_eq(router_add(r, "GET", "/a/:name/x", ID(2), err, sizeof err), TERN_EEXIST);
    cr_assert_eq(router_add(r, "GET", "/a/:id/x", ID(2), err, sizeof err), 0);
    router_free(r);
    cr_assert_eq(g_live, 0);
    tern_set_allocator(NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* Property test: the tree against a reference matcher                        */

#define P_MAXSEG 4
#define P_ROUTES 40

typedef struct ref_route {
    int nseg;
    int kind[P_MAXSEG]; /* 0 literal, 1 param, 2 wildcard */
    char text[P_MAXSEG][16];
    const char *method;
    int id;
} ref_route;

static uint64_t g_rng;

static unsigned rnd(unsigned n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (unsigned)(g_rng % n);
}

static const char *const p_lits[] = { "a", "b", "ab", "" };
static const char *const p_methods[] = { "GET", "POST", "HEAD", "OPTIONS", "PURGE" };

static void gen_route(ref_route *rt, char *pat, size_t cap)
{
    size_t n = 0;

    rt->nseg = 1 + (int)rnd(P_MAXSEG);
    for (int i = 0; i < rt->nseg; i++) {
        unsigned k = rnd(10);

        if (k < 6 || (k >= 8 && i != rt->nseg - 1)) {
            rt->kind[i] = 0;
            snprintf(rt->text[i], sizeof rt->text[i], "%s", p_lits[rnd(NELEM(p_lits))]);
            n += (size_t)snprintf(pat + n, cap - n, "/%s", rt->text[i]);
        } else if (k < 8) {
            /* names mostly agree per position; sometimes not (-> EEXIST) */
            rt->kind[i] = 1;
            snprintf(rt->text[i], sizeof rt->text[i], "%c%d", rnd(8) ? 'p' : 'q', i);
            n += (size_t)snprintf(pat + n, cap - n, "/:%s", rt->text[i]);
        } else {
            rt->kind[i] = 2;
            snprintf(rt->text[i], sizeof rt->text[i], "%s", rnd(8) ? "w" : "z");
            n += (size_t)snprintf(pat + n, cap - n, "/*%s", rt->text[i]);
        }
    }
    rt->method = p_methods[rnd(NELEM(p_methods))];
}

/* A concrete path, usually built to match rt. */
static void gen_path(const ref_route *rt, char *path, size_t cap)
{
    static const char *const vals[] = { "a", "b", "7", "xyz", "" };
    static const char *const rests[] = { "", "a", "a/b", "7/", "/", "ab//c" };
    size_t n = 0;
    int nseg = rt->nseg;

    if (rnd(10) == 0) /* a random shape */
        nseg = 1 + (int)rnd(P_MAXSEG + 1);
    for (int i = 0; i < nseg; i++) {
        const char *s;

        if (i >= rt->nseg || rnd(12) == 0)
            s = vals[rnd(NELEM(vals))];
        else if (rt->kind[i] == 0)
            s = rt->text[i];
        else if (rt->kind[i] == 1)
            s = vals[rnd(NELEM(vals) - (rnd(4) ? 1 : 0))]; /* mostly non-empty */
        else
            s = rests[rnd(NELEM(rests))];
        n += (size_t)snprintf(path + n, cap - n, "/%s", s);
    }
}

/*
 * The reference: keep the set of routes consistent with the path so far,
 * narrowing by literal, else param (non-empty segment), else wildcard.
 */
static int ref_find(const ref_route *rts, int nrts, const char *method, const char *path,
                    int *id, unsigned *np, tern_str *names, tern_str *values)
{
    int cand[P_ROUTES], ncand = 0, wild = 0, d = 0;
    const char *s = path + 1, *end = path + strlen(path);
    int have[NELEM(p_methods)] = { 0 }, ids[NELEM(p_methods)] = { 0 }, mi = -1;

    *np = 0;
    for (int i = 0; i < nrts; i++)
        cand[ncand++] = i;
    for (;; d++) {
        const char *q = s;
        size_t len;
        int next[P_ROUTES], nnext = 0, kind;

        while (q < end && *q != '/')
            q++;
        len = (size_t)(q - s);
        for (kind = 0; kind < 3 && nnext == 0; kind++) {
            if (kind == 1 && len == 0)
                continue;
            for (int i = 0; i < ncand; i++) {
                const ref_route *rt = &rts[cand[i]];

                if (d >= rt->nseg || rt->kind[d] != kind)
                    continue;
                if (kind == 0 && (strlen(rt->text[d]) != len || memcmp(rt->text[d], s, len)))
                    continue;
                next[nnext++] = cand[i];
            }
        }
        if (nnext == 0)
            return ROUTER_NOT_FOUND;
        kind--;
        memcpy(cand, next, sizeof next[0] * (size_t)nnext);
        ncand = nnext;
        if (kind != 0) {
            names[*np] = tern_str_c(rts[cand[0]].text[d]);
            values[*np].p = s;
            values[*np].n = kind == 2 ? (size_t)(end - s) : len;
            (*np)++;
        }
        if (kind == 2) {
            wild = 1;
            break;
        }
        if (q == end)
            break;
        s = q + 1;
    }
    for (int i = 0; i < ncand; i++) {
        const ref_route *rt = &rts[cand[i]];

        if (!wild && rt->nseg != d + 1)
            continue;
        for (size_t k = 0; k < NELEM(p_methods); k++) {
            if (strcmp(rt->method, p_methods[k]) == 0) {
                have[k] = 1;
                ids[k] = rt->id;
            }
        }
    }
    for (size_t k = 0; k < NELEM(p_methods); k++) {
        if (strcmp(method, p_methods[k]) == 0)
            mi = (int)k;
    }
    if (!have[0] && !have[1] && !have[2] && !have[3] && !have[4]) {
        *np = 0;
        return ROUTER_NOT_FOUND;
    }
    if (mi >= 0 && have[mi]) {
        *id = ids[mi];
        return ROUTER_FOUND;
    }
    if (mi == 2 && have[0]) { /* HEAD -> GET */
        *id = ids[0];
        return ROUTER_FOUND;
    }
    return mi == 3 ? ROUTER_OPTIONS : ROUTER_NOT_ALLOWED;
}

Test(router, property_vs_reference)
{
    unsigned long found = 0, total = 0;

    for (uint64_t seed = 1; seed <= 300; seed++) {
        ref_route rts[P_ROUTES];
        int nrts = 0;
        router *r = router_new();

        g_rng = seed * 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < P_ROUTES; i++) {
            char pat[64], err[128];
            ref_route rt;
            int rc;

            gen_route(&rt, pat, sizeof pat);
            rt.id = i + 1;
            rc = router_add(r, rt.method, pat, ID(rt.id), err, sizeof err);
            cr_assert(rc == 0 || rc == TERN_EEXIST, "%s %s: %d %s", rt.method, pat, rc, err);
            if (rc == 0)
                rts[nrts++] = rt;
        }
        for (int i = 0; i < 200 && nrts > 0; i++) {
            char path[96];
            const ref_route *target = &rts[rnd((unsigned)nrts)];
            const char *method = rnd(3) ? target->method : p_methods[rnd(NELEM(p_methods))];
            tern_str names[ROUTER_MAX_PARAMS], values[ROUTER_MAX_PARAMS];
            unsigned np;
            int id = 0, want, got;
            router_match m;

            gen_path(target, path, sizeof path);
            want = ref_find(rts, nrts, method, path, &id, &np, names, values);
            got = find(r, method, path, &m);
            total++;
            cr_assert_eq(got, want, "seed %lu: %s %s: rc %d, want %d", (unsigned long)seed,
                         method, path, got, want);
            if (got == ROUTER_NOT_FOUND)
                continue;
            found += got == ROUTER_FOUND;
            if (got == ROUTER_FOUND)
                cr_assert_eq(m.data, ID(id), "seed %lu: %s %s", (unsigned long)seed, method,
                             path);
            cr_assert_eq(m.nparams, np, "seed %lu: %s %s", (unsigned long)seed, method, path);
            for (unsigned k = 0; k < np; k++) {
                cr_assert(tern_str_eq(m.names[k], names[k]));
                cr_assert(m.values[k].p == values[k].p && m.values[k].n == values[k].n,
                          "seed %lu: %s %s: param %u", (unsigned long)seed, method, path, k);
            }
        }
        router_free(r);
    }
    /* the generator must mostly produce routable paths to mean anything */
    cr_assert_gt(found * 3, total, "only %lu of %lu found", found, total);
    cr_log_info("property: %lu lookups, %lu found", total, found);
}

/* ------------------------------------------------------------------------ */
/* tern__url_decode                                                           */

typedef struct decode_case {
    const char *in;
    size_t n;
    int plus;
    const char *out; /* NULL: expect -1 */
    long outn;
} decode_case;

#define DEC(in, plus, out) { in, sizeof(in) - 1, plus, out, (long)sizeof(out) - 1 }
#define DEC_ERR(in, plus) { in, sizeof(in) - 1, plus, NULL, -1 }

Test(url, decode_table)
{
    static const decode_case cases[] = {
        DEC("", 0, ""),
        DEC("abc", 0, "abc"),
        DEC("a%20b", 0, "a b"),
        DEC("%41%42", 0, "AB"),
        DEC("%4a%4A%4f%4F", 0, "JJOO"),
        DEC("%e2%82%AC", 0, "\xe2\x82\xac"),
        DEC("%ff", 0, "\xff"),
        DEC("%25", 0, "%"),
        DEC("%2525", 0, "%25"),
        DEC("%2F", 0, "/"),
        DEC("a+b", 0, "a+b"),
        DEC("a+b", 1, "a b"),
        DEC("++", 1, "  "),
        DEC("%2B", 1, "+"),
        DEC("%2b+", 1, "+ "),
        DEC("%01", 0, "\x01"),
        DEC_ERR("%zz", 0),
        DEC_ERR("%4", 0),
        DEC_ERR("%", 0),
        DEC_ERR("a%", 1),
        DEC_ERR("ab%4", 0),
        DEC_ERR("%g0", 0),
        DEC_ERR("%0g", 0),
        DEC_ERR("%:0", 0),
        DEC_ERR("%@0", 0),
        DEC_ERR("%`0", 0),
        DEC_ERR("% 1", 0),
        DEC_ERR("%-1", 0),
        DEC_ERR("%00", 0),
        DEC_ERR("a%00b", 1),
        DEC_ERR("a\0b", 0),
    };

    for (size_t i = 0; i < NELEM(cases); i++) {
        const decode_case *c = &cases[i];
        char out[64];
        long n;

        memset(out, '#', sizeof out);
        n = tern__url_decode(out, c->in, c->n, c->plus);
        cr_assert_eq(n, c->outn, "case %zu '%s': %ld, want %ld", i, c->in, n, c->outn);
        if (c->out != NULL)
            cr_assert(memcmp(out, c->out, (size_t)n) == 0, "case %zu '%s'", i, c->in);
    }
}

Test(url, decode_every_byte_pair)
{
    /* All 256*256 two-digit escapes: valid exactly when both are hex. */
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            char in[3] = { '%', (char)a, (char)b }, out[3];
            int ha = (a >= '0' && a <= '9') || (a >= 'a' && a <= 'f') || (a >= 'A' && a <= 'F');
            int hb = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
            long n = tern__url_decode(out, in, 3, 0);

            if (ha && hb && !(a == '0' && b == '0')) {
                unsigned v = (unsigned)strtoul((char[]){ (char)a, (char)b, 0 }, NULL, 16);

                cr_assert_eq(n, 1);
                cr_assert_eq((unsigned char)out[0], v);
            } else {
                cr_assert_eq(n, -1, "%%%c%c", a, b);
            }
        }
    }
}

Test(url, decode_in_place)
{
    char buf[] = "a%20b%2fc+d%7E";
    long n = tern__url_decode(buf, buf, strlen(buf), 1);

    cr_assert_eq(n, 8);
    cr_assert(memcmp(buf, "a b/c d~", 8) == 0);

    char buf2[] = "%41%42%43";
    n = tern__url_decode(buf2, buf2, 9, 0);
    cr_assert_eq(n, 3);
    cr_assert(memcmp(buf2, "ABC", 3) == 0);
}

/* A route param decoded as an app would: in place, in the request's buffer. */
Test(url, decode_route_param)
{
    static const route_def defs[] = { { "GET", "/files/:name", 1 } };
    router *r = build(defs, 1);
    char path[] = "/files/r%C3%A9sum%C3%A9.pdf", *v;
    router_match m;
    long n;

    cr_assert_eq(find(r, "GET", path, &m), ROUTER_FOUND);
    /* the value points into our own buffer: decode it there */
    v = path + (m.values[0].p - path);
    n = tern__url_decode(v, v, m.values[0].n, 0);
    cr_assert_eq(n, 12);
    cr_assert(memcmp(v, "r\xc3\xa9sum\xc3\xa9.pdf", 12) == 0);
    router_free(r);
}
