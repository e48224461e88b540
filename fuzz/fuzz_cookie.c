/*
 * fuzz_cookie.c - libFuzzer target for tern_cookie_parse and
 * tern_cookie_format.
 *
 * Input format: byte 0 is flags, byte 1 is max (parse) and max_age (format),
 * the rest is used twice:
 *   - parse: the whole rest is a Cookie header;
 *   - format: the rest split at NUL bytes gives name, value, path, domain
 *     and same_site (missing parts are NULL; flags may also force a NULL).
 * flags bit 0: max is UINT_MAX instead of byte 1
 * flags bit 1: value NULL       bit 2: path NULL       bit 3: domain NULL
 * flags bit 4: same_site NULL   bit 5: secure          bit 6: allow_script
 * flags bit 7: max_age is INT64_MIN/INT64_MAX (by byte 1's sign) instead of
 *              byte 1 as a signed number times 1000
 *
 * Parse checks: rc is 0, TERN_ETOOBIG or (with a limit) TERN_ENOMEM; n <=
 * max; every name is a token and every value *cookie-octet; each string is
 * NUL-terminated and inside memory the arena got (a tracking allocator
 * records live blocks), not in the header; the number of pairs and the
 * ETOOBIG decision agree with an independent count.
 *
 * Format checks: rc == 0 exactly when an independent validator accepts the
 * fields; the output never holds CR, LF, NUL or any other control byte or
 * non-ASCII byte; it starts with name=value and ends with the SameSite
 * attribute; parsing it back as a Cookie header gives (name, value) first;
 * a failure leaves the buffer as it was.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tern/body.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* ---- allocation tracking (see fuzz_form.c) --------------------------------- */

#define MAX_BLOCKS 4096

static struct block {
    const char *p;
    size_t n;
} blocks[MAX_BLOCKS];
static size_t nblocks;
static int untracked;

static void track_add(void *p, size_t n)
{
    if (nblocks < MAX_BLOCKS)
        blocks[nblocks++] = (struct block){ p, n };
    else
        untracked = 1;
}

/* Forgets block p; returns its size (0 if unknown). */
static size_t track_del(void *p)
{
    for (size_t i = 0; i < nblocks; i++) {
        if (blocks[i].p == p) {
            size_t n = blocks[i].n;

            blocks[i] = blocks[--nblocks];
            return n;
        }
    }
    return 0;
}

static void *track_malloc(size_t n)
{
    void *p = malloc(n);

    if (p != NULL)
        track_add(p, n);
    return p;
}

static void *track_realloc(void *old, size_t n)
{
    size_t oldn = old != NULL ? track_del(old) : 0;
    void *p = realloc(old, n);

    if (p != NULL)
        track_add(p, n);
    else if (old != NULL)
        track_add(old, oldn); /* realloc failed: old is still live */
    return p;
}

static void track_free(void *p)
{
    track_del(p);
    free(p);
}

static int in_blocks(const char *p, size_t n)
{
    if (untracked)
        return 1;
    for (size_t i = 0; i < nblocks; i++) {
        uintptr_t b = (uintptr_t)blocks[i].p, q = (uintptr_t)p;

        if (q >= b && q - b < blocks[i].n && n < blocks[i].n - (q - b))
            return 1;
    }
    return 0;
}

/* ---- an independent grammar (written from RFC 6265, not from cookie.c) ---- */

static int ref_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (c >= '0' && c <= '9')
        return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    for (size_t i = 0; i < sizeof extra - 1; i++)
        if (c == (unsigned char)extra[i])
            return 1;
    return 0;
}

static int ref_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static int ref_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    while (n--)
        if (!ref_tchar((unsigned char)*p++))
            return 0;
    return 1;
}

static int ref_value(const char *p, size_t n)
{
    while (n--)
        if (!ref_octet((unsigned char)*p++))
            return 0;
    return 1;
}

/* Counts the pairs of a Cookie header the grammar accepts. */
static size_t ref_count(const char *h, size_t n)
{
    size_t count = 0, i = 0;

    while (i <= n) {
        size_t s = i, e, eq, ns, ne, vs, ve;

        while (i < n && h[i] != ';')
            i++;
        e = i++;
        for (eq = s; eq < e && h[eq] != '='; eq++)
            ;
        if (eq == e)
            continue;
        for (ns = s; ns < eq && (h[ns] == ' ' || h[ns] == '\t'); ns++)
            ;
        for (ne = eq; ne > ns && (h[ne - 1] == ' ' || h[ne - 1] == '\t'); ne--)
            ;
        for (vs = eq + 1; vs < e && (h[vs] == ' ' || h[vs] == '\t'); vs++)
            ;
        for (ve = e; ve > vs && (h[ve - 1] == ' ' || h[ve - 1] == '\t'); ve--)
            ;
        if (ve - vs >= 2 && h[vs] == '"' && h[ve - 1] == '"') {
            vs++;
            ve--;
        }
        if (ref_token(h + ns, ne - ns) && ref_value(h + vs, ve - vs))
            count++;
    }
    return count;
}

static int ieq_prefix(const char *s, const char *pre)
{
    size_t n = strlen(pre);

    if (strlen(s) < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char a = s[i], b = pre[i];

        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static int ref_format_ok(const tern_cookie *c)
{
    const char *v = c->value ? c->value : "";
    const char *path = c->path ? c->path : "/";
    const char *ss = c->same_site ? c->same_site : "Lax";

    if (c->name == NULL || !ref_token(c->name, strlen(c->name)))
        return 0;
    if (!ref_value(v, strlen(v)) || strlen(c->name) + strlen(v) > 4096)
        return 0;
    if (path[0] != '/' || strlen(path) > 1024)
        return 0;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == ';')
            return 0;
    if (c->domain != NULL) {
        const char *d = c->domain[0] == '.' ? c->domain + 1 : c->domain;
        size_t n = strlen(d);

        if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || strstr(d, "..") != NULL)
            return 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)d[i];

            if (!(ch == '.' || ch == '-' || (ch >= '0' && ch <= '9') ||
                  ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')))
                return 0;
        }
    }
    if (strcmp(ss, "Strict") != 0 && strcmp(ss, "Lax") != 0 && strcmp(ss, "None") != 0)
        return 0;
    if (strcmp(ss, "None") == 0 && !c->secure)
        return 0;
    if (ieq_prefix(c->name, "__secure-") && !c->secure)
        return 0;
    if (ieq_prefix(c->name, "__host-") &&
        (!c->secure || c->domain != NULL || strcmp(path, "/") != 0))
        return 0;
    return 1;
}

/* ---- the two halves ---------------------------------------------------------- */

static void fuzz_parse(const char *h, size_t n, unsigned max, int limited)
{
    tern_arena a;
    tern_form f;
    size_t want;
    int rc;

    tern_arena_init(&a, 128);
    if (limited)
        a.limit = 200;
    rc = tern_cookie_parse(&a, (tern_str){ h, n }, max, &f);
    want = ref_count(h, n);
    CHECK(rc == 0 || rc == TERN_ETOOBIG || (rc == TERN_ENOMEM && limited));
    if (rc == TERN_ETOOBIG)
        CHECK(want > max);
    if (rc != 0) {
        CHECK(f.n == 0 && f.fields == NULL);
    } else {
        CHECK(want <= max && f.n == want);
        for (unsigned i = 0; i < f.n; i++) {
            tern_str k = f.fields[i].key, v = f.fields[i].value;
            uintptr_t t = (uintptr_t)h;

            CHECK(ref_token(k.p, k.n) && ref_value(v.p, v.n));
            CHECK(k.p[k.n] == '\0' && v.p[v.n] == '\0');
            CHECK(in_blocks(k.p, k.n) && in_blocks(v.p, v.n));
            CHECK((uintptr_t)k.p + k.n < t || (uintptr_t)k.p >= t + n);
            CHECK((uintptr_t)v.p + v.n < t || (uintptr_t)v.p >= t + n);
        }
        /* get returns the first occurrence */
        if (f.n > 0) {
            tern_str g = tern_form_get(&f, f.fields[0].key.p);

            CHECK(g.p == f.fields[0].value.p);
        }
    }
    tern_arena_deinit(&a);
}

static void fuzz_format(const char *rest, size_t n, unsigned flags, unsigned char b1)
{
    const char *part[5] = { NULL, NULL, NULL, NULL, NULL };
    char *copy = malloc(n + 1); /* NUL-terminated, so parts are C strings */
    size_t o = 0;
    tern_cookie c;
    tern_buf b;
    int rc, ok;

    CHECK(copy != NULL);
    if (n)
        memcpy(copy, rest, n);
    copy[n] = '\0';
    for (int i = 0; i < 5 && o <= n; i++) {
        part[i] = copy + o;
        o += strlen(copy + o) + 1;
    }
    memset(&c, 0, sizeof c);
    c.name = part[0];
    c.value = flags & 2 ? NULL : part[1];
    c.path = flags & 4 ? NULL : part[2];
    c.domain = flags & 8 ? NULL : part[3];
    c.same_site = flags & 16 ? NULL : part[4];
    c.secure = (flags >> 5) & 1;
    c.allow_script = (flags >> 6) & 1;
    if (flags & 128)
        c.max_age = (signed char)b1 < 0 ? INT64_MIN : INT64_MAX;
    else
        c.max_age = (int64_t)(signed char)b1 * 1000;

    tern_buf_init(&b, 0);
    tern_buf_append(&b, "Set-Cookie: ", 12); /* a failure must leave this alone */
    rc = tern_cookie_format(&b, &c);
    ok = ref_format_ok(&c);
    CHECK(rc == 0 || rc == TERN_EINVAL);
    CHECK((rc == 0) == ok);
    if (rc != 0) {
        CHECK(b.len == 12);
    } else {
        const char *out = b.p + 12;
        size_t len = b.len - 12, nn = strlen(c.name);
        const char *v = c.value ? c.value : "";
        const char *ss = c.same_site ? c.same_site : "Lax";
        tern_arena a;
        tern_form f;

        for (size_t i = 0; i < len; i++)
            CHECK((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] < 0x7f);
        CHECK(len > nn && memcmp(out, c.name, nn) == 0 && out[nn] == '=');
        CHECK(memcmp(out + nn + 1, v, strlen(v)) == 0);
        CHECK(len >= strlen(ss) && memcmp(out + len - strlen(ss), ss, strlen(ss)) == 0);
        CHECK((memmem(out, len, "; HttpOnly", 10) != NULL) == !c.allow_script);
        tern_arena_init(&a, 0);
        CHECK(tern_cookie_parse(&a, (tern_str){ out, len }, UINT_MAX, &f) == 0);
        CHECK(f.n >= 1);
        CHECK(tern_str_eq(f.fields[0].key, tern_str_c(c.name)));
        CHECK(tern_str_eq(f.fields[0].value, tern_str_c(v)));
        tern_arena_deinit(&a);
    }
    tern_buf_deinit(&b);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int installed;
    unsigned flags, max;
    char *rest;
    size_t n;

    if (size < 2)
        return 0;
    if (!installed) {
        tern_set_allocator(track_malloc, track_realloc, track_free);
        installed = 1;
    }
    flags = data[0];
    max = flags & 1 ? UINT_MAX : data[1];
    n = size - 2;
    rest = malloc(n ? n : 1); /* exactly n bytes: overreads are caught */
    CHECK(rest != NULL);
    if (n)
        memcpy(rest, data + 2, n);
    fuzz_parse(rest, n, max, (flags & 6) == 6);
    fuzz_format(rest, n, flags, data[1]);
    free(rest);
    return 0;
}
