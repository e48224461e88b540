/*
 * router.h - the radix-tree router (internal).
 *
 * Patterns are split into segments.  A segment is a literal, `:name` (matches
 * one non-empty segment) or, as the last segment only, `*name` (matches the
 * rest of the path, possibly empty, slashes included).  Matching walks the
 * tree once, segment by segment: at each node a literal child that equals the
 * segment wins, otherwise the param child, otherwise the wildcard child.
 * There is no backtracking, so lookup is linear in the path length.
 *
 * Trailing slash: "/users" and "/users/" are different paths; only what is
 * registered matches (no redirect).  The empty segment of "/users/" can only
 * be matched by a literal route ending in '/' or by a wildcard.
 */
#ifndef TERN_ROUTER_H
#define TERN_ROUTER_H

#include "tern/core.h"

#define ROUTER_MAX_PARAMS 16

typedef struct router router;

typedef struct router_match {
    void *data; /* the route's data pointer (ROUTER_FOUND) */
    unsigned nparams;
    tern_str names[ROUTER_MAX_PARAMS];  /* parameter names (point into the router) */
    tern_str values[ROUTER_MAX_PARAMS]; /* raw values (point into the path), not decoded */
    tern_str allow;                     /* for 405 and OPTIONS: e.g. "GET, HEAD, OPTIONS, POST" */
} router_match;

enum router_result {
    ROUTER_FOUND = 0,       /* data/params filled */
    ROUTER_NOT_FOUND = 1,   /* no route for this path: 404 */
    ROUTER_NOT_ALLOWED = 2, /* path exists, not with this method: 405 + allow */
    ROUTER_OPTIONS = 3,     /* OPTIONS on a path with no OPTIONS route: 204 + allow */
};

/** A new empty router, or NULL on OOM. */
router *router_new(void);
/** Frees the router (not the data pointers). NULL is a no-op. */
void router_free(router *r);

/*
 * Adds method + pattern -> data.  Method is any HTTP token.  Returns 0, or
 * TERN_EINVAL (bad pattern: not starting with '/', empty param name, '*' not
 * last, more than ROUTER_MAX_PARAMS params, bad method token), TERN_EEXIST (the
 * same method is already registered on an equivalent pattern, or a param at the
 * same position has another name, e.g. /u/:id vs /u/:name), or TERN_ENOMEM.
 * On error, err (if not NULL) receives a one-line English reason.
 */
int router_add(router *r, const char *method, const char *pattern, void *data, char *err,
               size_t errlen);

/*
 * Looks up method + path (raw path, no query).  HEAD falls back to GET when no
 * HEAD route exists (the caller then sends no body).  Returns a router_result.
 * m is filled as documented on router_match.  Never allocates.
 */
int router_find(const router *r, tern_str method, tern_str path, router_match *m);

/*
 * Percent-decodes in[0..n) into out (which must hold n bytes; in-place with
 * out == in is allowed).  When plus_is_space, '+' becomes ' '.  Returns the
 * decoded length, or -1 on an invalid escape (% not followed by two hex
 * digits).  A decoded NUL byte is also rejected (-1).
 */
long tern__url_decode(char *out, const char *in, size_t n, int plus_is_space);

#endif /* TERN_ROUTER_H */
