/*
 * router.c - the radix-tree router over path segments.
 *
 * A pattern is split on '/' after its leading slash, so "/" is the one empty
 * segment, "/users/" is ["users", ""] and "//x" is ["", "x"].  Each tree node
 * stands for one prefix shape (a sequence of literal / :param / *wildcard
 * segments) and holds:
 *
 *   - its literal children, as an array of edges sorted by (length, bytes);
 *     the edge carries the key inline so a lookup binary-searches one
 *     contiguous array and compares lengths before touching any bytes;
 *   - at most one :param child and at most one *wildcard child (a wildcard
 *     node is always a leaf);
 *   - the routes registered on exactly this shape: a bitmask plus a fixed
 *     slot array for the seven standard methods, and a sorted array for any
 *     other token;
 *   - the Allow string for 405/OPTIONS, rebuilt on every add so that
 *     router_find never allocates or formats anything.
 *
 * Invariants:
 *   - The root stands for the empty prefix and never holds routes (every
 *     pattern has at least one segment).
 *   - All param children at the same position share one name (a second name
 *     is refused with TERN_EEXIST), so a node's pattern text is unique and
 *     the captures on the way from the root to any node number at most
 *     ROUTER_MAX_PARAMS (each node was first created by one valid pattern).
 *   - allow != NULL exactly when the node holds at least one route.
 *   - router_add is all-or-nothing: every allocation it needs is made before
 *     the tree is touched, so on TERN_ENOMEM the router is unchanged (a
 *     child or method array may have grown its capacity; that is not a leak,
 *     the node owns it).
 *
 * Lookup walks the path once, segment by segment, choosing literal, then
 * param (non-empty segment only), then wildcard, with no backtracking; it is
 * linear in the path length and allocation-free.
 *
 * Memory: nodes, edge arrays, custom method names and Allow strings come
 * from tern_malloc/tern_realloc.  The tree is freed recursively; its depth is
 * bounded by the pattern length cap (ROUTER_MAX_PATTERN), so is the stack.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "app/router.h"

/* Longest pattern router_add accepts; also bounds the tree depth. */
#define ROUTER_MAX_PATTERN 2048

/* The standard methods get fixed slots.  The numbering is internal. */
enum { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE, M_OPTIONS, M_NSTD };

#define BIT(i) (1u << (i))

/* The standard names in byte order, as they appear in an Allow string. */
static const struct {
    const char *name;
    unsigned char len;
    unsigned char idx;
} std_sorted[M_NSTD] = {
    { "DELETE", 6, M_DELETE },   { "GET", 3, M_GET },     { "HEAD", 4, M_HEAD },
    { "OPTIONS", 7, M_OPTIONS }, { "PATCH", 5, M_PATCH }, { "POST", 4, M_POST },
    { "PUT", 3, M_PUT },
};

enum seg_kind { SEG_LIT, SEG_PARAM, SEG_WILD };

typedef struct rnode rnode;

/* A literal child: the key (pointing into the child's text) and the child. */
typedef struct edge {
    const char *p;
    uint32_t n;
    rnode *child;
} edge;

/* A route under a method token that has no fixed slot. */
typedef struct custom_route {
    char *name; /* owned, NUL-terminated */
    uint32_t n;
    void *data;
} custom_route;

struct rnode {
    edge *lit; /* literal children, sorted by (n, bytes) */
    uint32_t nlit;
    uint32_t caplit;
    rnode *param;  /* the :name child, or NULL */
    rnode *wild;   /* the *name child (a leaf), or NULL */
    unsigned mask; /* BIT(M_*) for each standard method routed here */
    uint32_t ncustom;
    void *std[M_NSTD];    /* data per standard method (valid where mask says) */
    custom_route *custom; /* sorted by name (byte order), ncustom entries */
    char *allow;          /* "DELETE, GET, HEAD, OPTIONS", or NULL if no routes */
    uint32_t allowlen;
    uint32_t textlen;
    char text[]; /* literal segment, or the param/wildcard name */
};

struct router {
    rnode *root;
};

/* One segment of a pattern, as cut by next_seg(). */
typedef struct seg {
    const char *p; /* whole segment text, including a leading ':' or '*' */
    size_t n;
    int kind;
    tern_str name; /* for SEG_PARAM / SEG_WILD */
    int last;      /* 1 for the final segment */
} seg;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                              */

TERN_PRINTF(4, 5)
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Byte-order comparison of two strings of possibly different lengths. */
static int lexcmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c != 0)
        return c;
    return (an > bn) - (an < bn);
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * The fixed slot of a method, or -1 for any other token.  Methods are case
 * sensitive (RFC 9110 9.1): "get" is a custom token, not GET.
 */
static inline int std_method(const char *p, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(p, "GET", 3) == 0)
            return M_GET;
        if (memcmp(p, "PUT", 3) == 0)
            return M_PUT;
        break;
    case 4:
        if (memcmp(p, "POST", 4) == 0)
            return M_POST;
        if (memcmp(p, "HEAD", 4) == 0)
            return M_HEAD;
        break;
    case 5:
        if (memcmp(p, "PATCH", 5) == 0)
            return M_PATCH;
        break;
    case 6:
        if (memcmp(p, "DELETE", 6) == 0)
            return M_DELETE;
        break;
    case 7:
        if (memcmp(p, "OPTIONS", 7) == 0)
            return M_OPTIONS;
        break;
    }
    return -1;
}

/* The methods an Allow string lists: the routed ones, HEAD with GET, OPTIONS. */
static unsigned allow_mask(unsigned mask)
{
    if (mask & BIT(M_GET))
        mask |= BIT(M_HEAD);
    return mask | BIT(M_OPTIONS);
}

/*
 * The binary search over a node's literal children.  Returns the child whose
 * key equals s[0..n), or NULL; *pos (if not NULL) receives the index where
 * such a key would be inserted.  Keys are ordered by length first, so most
 * probes are decided by one integer compare.
 */
static inline rnode *find_lit(const rnode *node, const char *s, size_t n, uint32_t *pos)
{
    uint32_t lo = 0, hi = node->nlit;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const edge *e = &node->lit[mid];
        int c;

        if (e->n != n)
            c = e->n < n ? -1 : 1;
        else if ((c = memcmp(e->p, s, n)) == 0)
            return e->child;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos != NULL)
        *pos = lo;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Nodes                                                                      */

static rnode *node_new(const char *text, size_t n)
{
    rnode *node = tern_malloc(sizeof *node + n + 1);

    if (node == NULL)
        return NULL;
    memset(node, 0, sizeof *node);
    memcpy(node->text, text, n);
    node->text[n] = '\0';
    node->textlen = (uint32_t)n;
    return node;
}

/* Frees a subtree.  Recursion depth is bounded by ROUTER_MAX_PATTERN. */
static void node_free(rnode *node)
{
    if (node == NULL)
        return;
    for (uint32_t i = 0; i < node->nlit; i++)
        node_free(node->lit[i].child);
    node_free(node->param);
    node_free(node->wild);
    for (uint32_t i = 0; i < node->ncustom; i++)
        tern_free(node->custom[i].name);
    tern_free(node->custom);
    tern_free(node->lit);
    tern_free(node->allow);
    tern_free(node);
}

/* Makes room for one more literal child.  0 or TERN_ENOMEM (node unchanged). */
static int lit_reserve(rnode *node)
{
    edge *lit;
    uint32_t cap;

    if (node->nlit < node->caplit)
        return 0;
    cap = node->caplit ? node->caplit * 2 : 1;
    lit = tern_realloc(node->lit, cap * sizeof *lit);
    if (lit == NULL)
        return TERN_ENOMEM;
    node->lit = lit;
    node->caplit = cap;
    return 0;
}

/* Inserts child at pos; lit_reserve() must have succeeded.  Cannot fail. */
static void lit_insert(rnode *node, uint32_t pos, rnode *child)
{
    assert(node->nlit < node->caplit && pos <= node->nlit);
    memmove(&node->lit[pos + 1], &node->lit[pos], (node->nlit - pos) * sizeof *node->lit);
    node->lit[pos].p = child->text;
    node->lit[pos].n = child->textlen;
    node->lit[pos].child = child;
    node->nlit++;
}

/*
 * Links a fresh child below a fresh parent (both still detached from the
 * tree).  0 or TERN_ENOMEM; on failure the caller frees the child.
 */
static int link_child(rnode *parent, int kind, rnode *child)
{
    switch (kind) {
    case SEG_LIT:
        if (lit_reserve(parent) != 0)
            return TERN_ENOMEM;
        lit_insert(parent, 0, child);
        break;
    case SEG_PARAM: parent->param = child; break;
    default: parent->wild = child; break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The Allow string                                                           */

/* Length of the Allow string for std methods `amask` plus the given tokens. */
static size_t allow_len(unsigned amask, const custom_route *c, uint32_t nc, size_t extra)
{
    size_t len = 0, count = 0;

    for (int i = 0; i < M_NSTD; i++) {
        if (amask & BIT(std_sorted[i].idx)) {
            len += std_sorted[i].len;
            count++;
        }
    }
    for (uint32_t i = 0; i < nc; i++) {
        len += c[i].n;
        count++;
    }
    if (extra != 0) {
        len += extra;
        count++;
    }
    return len + 2 * (count - 1); /* count >= 1: OPTIONS is always there */
}

/*
 * Writes the node's Allow string into buf: the standard and the custom
 * tokens merged in byte order, ", " between them.  Returns the length.
 */
static size_t allow_write(const rnode *node, char *buf)
{
    unsigned amask = allow_mask(node->mask);
    size_t len = 0;
    int i = 0;
    uint32_t j = 0;

    for (;;) {
        const char *p;
        size_t n;

        while (i < M_NSTD && !(amask & BIT(std_sorted[i].idx)))
            i++;
        if (i == M_NSTD && j == node->ncustom)
            break;
        if (j == node->ncustom ||
            (i < M_NSTD && lexcmp(std_sorted[i].name, std_sorted[i].len, node->custom[j].name,
                                  node->custom[j].n) < 0)) {
            p = std_sorted[i].name;
            n = std_sorted[i].len;
            i++;
        } else {
            p = node->custom[j].name;
            n = node->custom[j].n;
            j++;
        }
        if (len != 0) {
            memcpy(buf + len, ", ", 2);
            len += 2;
        }
        memcpy(buf + len, p, n);
        len += n;
    }
    buf[len] = '\0';
    return len;
}

/* ------------------------------------------------------------------------ */
/* Patterns                                                                   */

/*
 * Cuts the segment starting at *s (just after a '/') and classifies it.
 * Advances *s past the segment and its trailing '/'.
 */
static void next_seg(const char **s, const char *end, seg *out)
{
    const char *p = *s, *q = p;

    while (q < end && *q != '/')
        q++;
    out->p = p;
    out->n = (size_t)(q - p);
    out->last = q == end;
    out->kind = SEG_LIT;
    out->name = TERN_STR_NULL;
    if (out->n > 0 && (*p == ':' || *p == '*')) {
        out->kind = *p == ':' ? SEG_PARAM : SEG_WILD;
        out->name.p = p + 1;
        out->name.n = out->n - 1;
    }
    *s = q < end ? q + 1 : q;
}

/* Checks one segment's syntax.  0 or TERN_EINVAL with a message. */
static int check_seg(const seg *sg, const char *method, const char *pattern, char *err,
                     size_t errlen)
{
    if (sg->kind == SEG_LIT) {
        for (size_t i = 0; i < sg->n; i++) {
            unsigned char c = (unsigned char)sg->p[i];

            if (c == ':' || c == '*')
                return fail(err, errlen, TERN_EINVAL,
                            "%s %s: segment '%.*s' mixes literal text with a parameter "
                            "(a :param or *wildcard takes a whole segment)",
                            method, pattern, (int)sg->n, sg->p);
            if (c <= 0x20 || c == 0x7f || c == '?' || c == '#')
                return fail(err, errlen, TERN_EINVAL,
                            "%s %s: byte 0x%02x cannot appear in a request path", method, pattern,
                            c);
        }
        return 0;
    }
    if (sg->name.n == 0)
        return fail(err, errlen, TERN_EINVAL, "%s %s: '%c' with an empty name", method, pattern,
                    sg->p[0]);
    if (memchr(sg->name.p, ':', sg->name.n) != NULL || memchr(sg->name.p, '*', sg->name.n))
        return fail(err, errlen, TERN_EINVAL,
                    "%s %s: segment '%.*s' holds more than one parameter "
                    "(a parameter takes a whole segment)",
                    method, pattern, (int)sg->n, sg->p);
    for (size_t i = 0; i < sg->name.n; i++) {
        if (!is_name_char((unsigned char)sg->name.p[i]))
            return fail(err, errlen, TERN_EINVAL,
                        "%s %s: parameter name '%.*s' may only use [A-Za-z0-9_]", method, pattern,
                        (int)sg->name.n, sg->name.p);
    }
    if (sg->kind == SEG_WILD && !sg->last)
        return fail(err, errlen, TERN_EINVAL, "%s %s: wildcard '%.*s' must be the last segment",
                    method, pattern, (int)sg->n, sg->p);
    return 0;
}

/* Validates method and pattern fully, before the tree is looked at. */
static int check_pattern(const char *method, const char *pattern, char *err, size_t errlen)
{
    size_t mlen = strlen(method), plen = strlen(pattern);
    tern_str names[ROUTER_MAX_PARAMS];
    unsigned nnames = 0;
    const char *s, *end;
    seg sg;

    if (mlen == 0)
        return fail(err, errlen, TERN_EINVAL, "empty method");
    for (size_t i = 0; i < mlen; i++) {
        if (!is_tchar((unsigned char)method[i]))
            return fail(err, errlen, TERN_EINVAL, "method '%s' is not an HTTP token", method);
    }
    if (pattern[0] != '/')
        return fail(err, errlen, TERN_EINVAL, "%s %s: a pattern must start with '/'", method,
                    pattern);
    if (plen > ROUTER_MAX_PATTERN)
        return fail(err, errlen, TERN_EINVAL, "%s %.40s...: pattern longer than %d bytes", method,
                    pattern, ROUTER_MAX_PATTERN);
    s = pattern + 1;
    end = pattern + plen;
    do {
        int rc;

        next_seg(&s, end, &sg);
        rc = check_seg(&sg, method, pattern, err, errlen);
        if (rc != 0)
            return rc;
        if (sg.kind == SEG_LIT)
            continue;
        if (nnames == ROUTER_MAX_PARAMS)
            return fail(err, errlen, TERN_EINVAL, "%s %s: more than %d parameters", method, pattern,
                        ROUTER_MAX_PARAMS);
        for (unsigned i = 0; i < nnames; i++) {
            if (tern_str_eq(names[i], sg.name))
                return fail(err, errlen, TERN_EINVAL, "%s %s: parameter '%.*s' appears twice",
                            method, pattern, (int)sg.name.n, sg.name.p);
        }
        names[nnames++] = sg.name;
    } while (!sg.last);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                 */

router *router_new(void)
{
    router *r = tern_malloc(sizeof *r);

    if (r == NULL)
        return NULL;
    r->root = node_new("", 0);
    if (r->root == NULL) {
        tern_free(r);
        return NULL;
    }
    return r;
}

void router_free(router *r)
{
    if (r == NULL)
        return;
    node_free(r->root);
    tern_free(r);
}

/*
 * Three phases.  (1) Validate the method and pattern.  (2) Walk the existing
 * tree along the pattern, checking name conflicts, until a segment has no
 * node yet (the attach point).  (3) Allocate everything the add needs: the
 * detached chain of new nodes, the new Allow string, the custom method entry
 * and room in the attach point's child array.  Only then is the tree
 * modified, by steps that cannot fail.
 */
int router_add(router *r, const char *method, const char *pattern, void *data, char *err,
               size_t errlen)
{
    rnode *node, *chain = NULL, *last;
    const char *s, *end, *rest = NULL;
    int attach = -1, midx, rc;
    uint32_t pos = 0;
    char *allow = NULL, *cname = NULL;
    size_t mlen, alen;
    unsigned newmask;
    seg sg;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (r == NULL || method == NULL || pattern == NULL)
        return fail(err, errlen, TERN_EINVAL, "NULL argument");
    rc = check_pattern(method, pattern, err, errlen);
    if (rc != 0)
        return rc;
    mlen = strlen(method);

    /* (2) Walk what exists. */
    node = r->root;
    s = pattern + 1;
    end = pattern + strlen(pattern);
    do {
        const char *here = s;
        rnode *next;

        next_seg(&s, end, &sg);
        if (sg.kind == SEG_LIT) {
            next = find_lit(node, sg.p, sg.n, &pos);
        } else {
            next = sg.kind == SEG_PARAM ? node->param : node->wild;
            if (next != NULL && !tern_str_eq(sg.name, (tern_str){ next->text, next->textlen }))
                return fail(err, errlen, TERN_EEXIST,
                            "%s %s: parameter '%c%.*s' conflicts with '%c%s' already "
                            "registered at the same position",
                            method, pattern, sg.p[0], (int)sg.name.n, sg.name.p, sg.p[0],
                            next->text);
        }
        if (next == NULL) {
            attach = sg.kind;
            rest = here;
            break;
        }
        node = next;
    } while (!sg.last);

    midx = std_method(method, mlen);
    if (attach < 0) {
        /* Every segment exists: this shape may already have the method. */
        int taken = 0;

        if (midx >= 0) {
            taken = (node->mask & BIT(midx)) != 0;
        } else {
            for (uint32_t i = 0; i < node->ncustom; i++)
                taken |= lexcmp(node->custom[i].name, node->custom[i].n, method, mlen) == 0;
        }
        if (taken)
            return fail(err, errlen, TERN_EEXIST, "%s %s conflicts with %s %s", method, pattern,
                        method, pattern);
    }

    /* (3) Allocate.  The chain hangs off `node` once committed. */
    rc = TERN_ENOMEM;
    last = NULL;
    if (attach >= 0) {
        s = rest;
        do {
            rnode *fresh;

            next_seg(&s, end, &sg);
            fresh = sg.kind == SEG_LIT ? node_new(sg.p, sg.n) : node_new(sg.name.p, sg.name.n);
            if (fresh == NULL)
                goto fail_nomem;
            if (last == NULL) {
                chain = fresh;
            } else if (link_child(last, sg.kind, fresh) != 0) {
                node_free(fresh);
                goto fail_nomem;
            }
            last = fresh;
        } while (!sg.last);
    } else {
        last = node;
    }

    newmask = last->mask;
    if (midx >= 0)
        newmask |= BIT(midx);
    alen = allow_len(allow_mask(newmask), last->custom, last->ncustom, midx >= 0 ? 0 : mlen);
    allow = tern_malloc(alen + 1);
    if (allow == NULL)
        goto fail_nomem;
    if (midx < 0) {
        custom_route *c;

        cname = tern_malloc(mlen + 1);
        if (cname == NULL)
            goto fail_nomem;
        memcpy(cname, method, mlen + 1);
        c = tern_realloc(last->custom, (last->ncustom + 1) * sizeof *c);
        if (c == NULL)
            goto fail_nomem;
        last->custom = c; /* one spare slot until the commit; harmless */
    }
    if (attach == SEG_LIT && lit_reserve(node) != 0)
        goto fail_nomem;

    /* Commit: nothing below can fail. */
    if (attach == SEG_LIT)
        lit_insert(node, pos, chain);
    else if (attach == SEG_PARAM)
        node->param = chain;
    else if (attach == SEG_WILD)
        node->wild = chain;
    if (midx >= 0) {
        last->std[midx] = data;
        last->mask = newmask;
    } else {
        uint32_t i = last->ncustom;

        /* Insertion into the sorted array; the name is known to be new. */
        while (i > 0 && lexcmp(last->custom[i - 1].name, last->custom[i - 1].n, method, mlen) > 0) {
            last->custom[i] = last->custom[i - 1];
            i--;
        }
        last->custom[i].name = cname;
        last->custom[i].n = (uint32_t)mlen;
        last->custom[i].data = data;
        last->ncustom++;
    }
    tern_free(last->allow);
    last->allow = allow;
    last->allowlen = (uint32_t)allow_write(last, allow);
    assert(last->allowlen == alen);
    return 0;

fail_nomem:
    node_free(chain);
    tern_free(allow);
    tern_free(cname);
    return fail(err, errlen, TERN_ENOMEM, "%s %s: out of memory", method, pattern);
}

int router_find(const router *r, tern_str method, tern_str path, router_match *m)
{
    const rnode *node = r->root;
    const char *s, *end;
    unsigned np = 0;
    int midx;

    m->data = NULL;
    m->nparams = 0;
    m->allow = TERN_STR_NULL;
    if (path.n == 0 || path.p[0] != '/')
        return ROUTER_NOT_FOUND;
    s = path.p + 1;
    end = path.p + path.n;
    for (;;) {
        const char *q = s;
        const rnode *next;

        while (q < end && *q != '/')
            q++;
        next = find_lit(node, s, (size_t)(q - s), NULL);
        if (next == NULL) {
            if (node->param != NULL && q != s) {
                next = node->param;
                m->values[np].p = s;
                m->values[np].n = (size_t)(q - s);
            } else if (node->wild != NULL) {
                /* The rest of the path, this segment on, slashes included. */
                next = node->wild;
                m->values[np].p = s;
                m->values[np].n = (size_t)(end - s);
                q = end;
            } else {
                return ROUTER_NOT_FOUND;
            }
            assert(np < ROUTER_MAX_PARAMS);
            m->names[np].p = next->text;
            m->names[np].n = next->textlen;
            np++;
        }
        node = next;
        if (q == end)
            break;
        s = q + 1;
    }
    if (node->allow == NULL)
        return ROUTER_NOT_FOUND;
    m->nparams = np;
    m->allow.p = node->allow;
    m->allow.n = node->allowlen;

    midx = std_method(method.p, method.n);
    if (midx >= 0) {
        if (node->mask & BIT(midx)) {
            m->data = node->std[midx];
            return ROUTER_FOUND;
        }
        if (midx == M_HEAD && (node->mask & BIT(M_GET))) {
            m->data = node->std[M_GET];
            return ROUTER_FOUND;
        }
        return midx == M_OPTIONS ? ROUTER_OPTIONS : ROUTER_NOT_ALLOWED;
    }
    for (uint32_t i = 0; i < node->ncustom; i++) {
        const custom_route *c = &node->custom[i];

        if (c->n == method.n && memcmp(c->name, method.p, method.n) == 0) {
            m->data = c->data;
            return ROUTER_FOUND;
        }
    }
    return ROUTER_NOT_ALLOWED;
}
