/*
 * fuzz_router.c - libFuzzer target for the router and the URL decoder.
 *
 * Input format: route lines, an empty line, then the request path (every
 * remaining byte, newlines included).  A route line is "METHOD PATTERN", or
 * just "PATTERN" for GET.  At most MAX_ROUTES lines are used; without an
 * empty line the whole input is routes and the path is empty.
 *
 * The target builds a router from the lines (rejections are expected), looks
 * the path up under several methods, and checks:
 *   - a rejected add reports a known error code and a message;
 *   - a found route's data is one that was registered successfully;
 *   - nparams <= ROUTER_MAX_PARAMS, every value lies inside the path, every
 *     name is non-empty;
 *   - 405 and OPTIONS results carry an Allow string that lists OPTIONS;
 *   - a pattern without :param or *wildcard routes to itself (literal
 *     segments are always taken first, so no other route can shadow it);
 *   - tern__url_decode never grows the output nor emits a NUL byte, and
 *     decoding in place gives the same bytes as decoding into a copy.
 * The path is copied into a buffer of exactly its size so reading past its
 * end is caught by ASan.  Everything is freed: leaks are findings too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/router.h"

#define MAX_ROUTES 64

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static int slots[MAX_ROUTES];

static void check_match(int rc, const router_match *m, const char *path, size_t n,
                        const unsigned char *ok)
{
    CHECK(rc >= ROUTER_FOUND && rc <= ROUTER_OPTIONS);
    CHECK(m->nparams <= ROUTER_MAX_PARAMS);
    if (rc == ROUTER_NOT_FOUND) {
        CHECK(m->nparams == 0 && m->data == NULL && m->allow.n == 0);
        return;
    }
    for (unsigned i = 0; i < m->nparams; i++) {
        CHECK(m->names[i].n > 0 && m->names[i].p != NULL);
        CHECK(m->values[i].p >= path && m->values[i].p <= path + n);
        CHECK(m->values[i].n <= (size_t)(path + n - m->values[i].p));
    }
    CHECK(m->allow.n >= 7 && memmem(m->allow.p, m->allow.n, "OPTIONS", 7) != NULL);
    if (rc == ROUTER_FOUND) {
        const int *d = m->data;

        CHECK(d >= slots && d < slots + MAX_ROUTES && ok[d - slots]);
    } else {
        CHECK(m->data == NULL);
    }
}

static void check_decode(const char *path, size_t n)
{
    char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
    long la, lb;

    if (a == NULL || b == NULL)
        goto out;
    memcpy(b, path, n);
    la = tern__url_decode(a, path, n, 0);
    lb = tern__url_decode(b, b, n, 0);
    CHECK(la == lb && la >= -1 && la <= (long)n);
    if (la >= 0) {
        CHECK(memcmp(a, b, (size_t)la) == 0);
        CHECK(memchr(a, '\0', (size_t)la) == NULL);
    }
    memcpy(b, path, n);
    lb = tern__url_decode(b, b, n, 1);
    CHECK(lb == la); /* '+' -> ' ' keeps the length */
    if (lb >= 0)
        CHECK(memchr(b, '+', (size_t)lb) == NULL || memchr(path, '%', n) != NULL);
out:
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    unsigned char ok[MAX_ROUTES] = { 0 };
    char *lines[MAX_ROUTES] = { 0 }, *methods[MAX_ROUTES] = { 0 };
    unsigned nroutes = 0;
    char *path = NULL;
    size_t pathlen = 0;
    router *r = router_new();

    if (r == NULL)
        return 0;
    /* Route lines, up to the first empty line. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *sp;
        char err[128];
        int rc;

        if (le == p) { /* the empty line: the path follows */
            p++;
            break;
        }
        if (nroutes < MAX_ROUTES) {
            char *line = malloc((size_t)(le - p) + 1);

            if (line == NULL)
                break;
            memcpy(line, p, (size_t)(le - p));
            line[le - p] = '\0';
            lines[nroutes] = line;
            sp = strchr(line, ' ');
            if (sp != NULL) {
                line[sp - line] = '\0';
                methods[nroutes] = line;
                rc = router_add(r, line, sp + 1, &slots[nroutes], err, sizeof err);
            } else {
                methods[nroutes] = NULL;
                rc = router_add(r, "GET", line, &slots[nroutes], err, sizeof err);
            }
            CHECK(rc == 0 || rc == TERN_EINVAL || rc == TERN_EEXIST);
            CHECK(rc == 0 || (err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL));
            ok[nroutes] = rc == 0;
            nroutes++;
        }
        p = nl ? nl + 1 : end;
    }
    if (p < end) {
        pathlen = (size_t)(end - p);
        path = malloc(pathlen);
        if (path == NULL)
            goto out;
        memcpy(path, p, pathlen);
    }

    /* Look the path up under the standard methods and every route's method. */
    {
        static const char *const std[] = { "GET", "HEAD", "OPTIONS", "POST", "DELETE", "X" };
        tern_str ps = { path, pathlen };
        router_match m;

        for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
            check_match(router_find(r, tern_str_c(std[i]), ps, &m), &m, path, pathlen, ok);
        for (unsigned i = 0; i < nroutes; i++) {
            if (methods[i] != NULL)
                check_match(router_find(r, tern_str_c(methods[i]), ps, &m), &m, path, pathlen, ok);
        }
    }

    /* A purely literal route always routes to itself. */
    for (unsigned i = 0; i < nroutes; i++) {
        const char *pat = methods[i] ? lines[i] + strlen(lines[i]) + 1 : lines[i];
        const char *meth = methods[i] ? methods[i] : "GET";
        router_match m;
        int rc;

        if (!ok[i] || strpbrk(pat, ":*") != NULL)
            continue;
        rc = router_find(r, tern_str_c(meth), tern_str_c(pat), &m);
        CHECK(rc == ROUTER_FOUND && m.data == &slots[i] && m.nparams == 0);
    }

    check_decode(path != NULL ? path : "", pathlen);
out:
    router_free(r);
    free(path);
    for (unsigned i = 0; i < nroutes; i++)
        free(lines[i]);
    return 0;
}
