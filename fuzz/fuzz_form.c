/*
 * fuzz_form.c - libFuzzer target for tern_form_parse and the form accessors.
 *
 * Input format: byte 0 is flags, byte 1 is max_fields, the rest is the text.
 *   flags bit 0: plus_is_space
 *   flags bit 1: max_fields is UINT_MAX instead of byte 1
 *   flags bit 2: the arena gets a small limit (exercises TERN_ENOMEM)
 *   flags bits 4-7: arena chunk size (64 + 64 * n), so parses cross chunks
 *
 * Every allocation goes through a tracking allocator that records the live
 * blocks, so the target can check that each key and value (with its NUL)
 * lies inside memory the arena obtained, never in the input.  Other checks:
 *   - rc is 0, TERN_EINVAL, TERN_ETOOBIG, or TERN_ENOMEM with a limit set;
 *   - on success, n <= max_fields and the fields equal an independent
 *     split of the text (non-empty '&' pairs, first '=') decoded pair by
 *     pair with tern__url_decode; no NUL inside a key or value;
 *   - TERN_ETOOBIG iff there are more non-empty pairs than max_fields;
 *   - on TERN_EINVAL, *bad_at is the start of the first pair that does not
 *     decode, and the output is empty;
 *   - get_all's total equals a direct count; get returns the first value;
 *   - accessors agree with the value: an accepted integer prints back to
 *     the same text (except "-0"), an accepted double is finite and equal
 *     to strtod's, an integer is also a double, booleans are the four words.
 * The text is copied into a buffer of exactly its size, so ASan catches any
 * read past its end.  The arena is freed per input: leaks are findings.
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/router.h"
#include "tern/body.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* ---- allocation tracking ------------------------------------------------ */

#define MAX_BLOCKS 4096

static struct block {
    const char *p;
    size_t n;
} blocks[MAX_BLOCKS];
static size_t nblocks;
static int untracked; /* the table overflowed: skip the "inside" check */

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

/* 1 when [p, p + n] (the NUL included) lies inside one live block. */
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

/* ---- checks -------------------------------------------------------------- */

static void check_str(tern_str s, const char *text, size_t n)
{
    uintptr_t q = (uintptr_t)s.p, t = (uintptr_t)text;

    CHECK(s.p != NULL);
    CHECK(in_blocks(s.p, s.n));
    CHECK(q + s.n < t || q >= t + n); /* a copy, not a slice of the input */
    CHECK(s.p[s.n] == '\0');
    CHECK(memchr(s.p, '\0', s.n) == NULL);
}

/* Decodes [p, p + n) into a scratch buffer; returns the length or -1. */
static long decode(char *scratch, const char *p, size_t n, int plus)
{
    return tern__url_decode(scratch, p, n, plus);
}

/* Walks the text independently and compares with the parse result. */
static void check_against_split(const char *text, size_t n, int plus, unsigned max, int rc,
                                const tern_form *f, size_t bad_at)
{
    char *scratch = malloc(n + 1);
    size_t start = 0, npairs = 0;
    int first_bad = 0;
    size_t first_bad_at = 0;

    CHECK(scratch != NULL);
    while (start <= n) {
        const char *amp = memchr(text + start, '&', n - start);
        size_t end = amp != NULL ? (size_t)(amp - text) : n;

        if (end > start) {
            const char *eq = memchr(text + start, '=', end - start);
            size_t kend = eq != NULL ? (size_t)(eq - text) : end;
            long kn = decode(scratch, text + start, kend - start, plus);
            long vn = 0;

            if (kn >= 0 && rc == 0) {
                CHECK(npairs < f->n);
                CHECK(f->fields[npairs].key.n == (size_t)kn);
                CHECK(memcmp(f->fields[npairs].key.p, scratch, (size_t)kn) == 0);
            }
            if (kn >= 0 && eq != NULL)
                vn = decode(scratch, eq + 1, end - kend - 1, plus);
            if (kn >= 0 && vn >= 0 && rc == 0) {
                CHECK(f->fields[npairs].value.n == (size_t)vn);
                CHECK(vn == 0 || memcmp(f->fields[npairs].value.p, scratch, (size_t)vn) == 0);
            }
            if ((kn < 0 || vn < 0) && !first_bad) {
                first_bad = 1;
                first_bad_at = start;
            }
            npairs++;
        }
        start = end + 1;
    }
    free(scratch);

    if (rc == TERN_ETOOBIG) {
        CHECK(npairs > max);
    } else if (npairs > max) {
        CHECK(0); /* only ETOOBIG may answer an over-long form */
    } else if (rc == TERN_EINVAL) {
        CHECK(first_bad && bad_at == first_bad_at);
    } else if (rc == 0) {
        CHECK(!first_bad);
        CHECK(f->n == npairs);
    }
}

static void check_accessors(const tern_form *f)
{
    const char *key = f->fields[0].key.p; /* NUL-terminated, no inner NUL */
    tern_str v = f->fields[0].value;
    tern_str all[4];
    unsigned count = 0, total;
    int64_t i;
    double d;
    int b, irc, drc, brc;

    /* get_all and get */
    for (unsigned k = 0; k < f->n; k++)
        count += tern_str_eq(f->fields[k].key, f->fields[0].key);
    total = tern_form_get_all(f, key, all, 4);
    CHECK(total == count && total >= 1);
    CHECK(all[0].p == v.p && all[0].n == v.n);
    CHECK(tern_form_get(f, key).p == v.p);

    /* int: canonical text round-trips */
    irc = tern_form_int(f, key, &i);
    CHECK(irc == 0 || irc == TERN_EINVAL);
    if (irc == 0) {
        char buf[32];
        int w = snprintf(buf, sizeof buf, "%" PRId64, i);

        CHECK(w > 0);
        CHECK(tern_str_eq(v, TERN_STR("-0")) || tern_str_eq(v, (tern_str){ buf, (size_t)w }));
    }
    /* double: finite, strtod's value; every integer is a number */
    drc = tern_form_double(f, key, &d);
    CHECK(drc == 0 || drc == TERN_EINVAL);
    if (drc == 0) {
        CHECK(isfinite(d));
        CHECK(d == strtod(v.p, NULL)); /* v is NUL-terminated here */
    }
    if (irc == 0) {
        CHECK(drc == 0);
        if (i > -(INT64_C(1) << 53) && i < (INT64_C(1) << 53))
            CHECK(d == (double)i);
    }
    /* bool: exactly four words */
    brc = tern_form_bool(f, key, &b);
    if (tern_str_eq(v, TERN_STR("true")) || tern_str_eq(v, TERN_STR("1")))
        CHECK(brc == 0 && b == 1);
    else if (tern_str_eq(v, TERN_STR("false")) || tern_str_eq(v, TERN_STR("0")))
        CHECK(brc == 0 && b == 0);
    else
        CHECK(brc == TERN_EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int installed;
    unsigned flags, max;
    int plus, rc;
    char *text;
    size_t n, bad_at = (size_t)-1;
    tern_arena a;
    tern_form f;

    if (size < 2)
        return 0;
    if (!installed) {
        tern_set_allocator(track_malloc, track_realloc, track_free);
        installed = 1;
    }
    flags = data[0];
    plus = flags & 1;
    max = flags & 2 ? UINT_MAX : data[1];
    n = size - 2;
    text = malloc(n ? n : 1); /* exactly n bytes: overreads are caught */
    CHECK(text != NULL);
    if (n)
        memcpy(text, data + 2, n);

    tern_arena_init(&a, 64 + 64 * (flags >> 4));
    if (flags & 4)
        a.limit = 256;
    rc = tern_form_parse(&a, (tern_str){ text, n }, plus, max, &f, &bad_at);
    CHECK(rc == 0 || rc == TERN_EINVAL || rc == TERN_ETOOBIG || (rc == TERN_ENOMEM && (flags & 4)));
    if (rc != 0) {
        CHECK(f.n == 0 && f.fields == NULL);
    } else {
        CHECK(f.n <= max);
        CHECK(bad_at == (size_t)-1);
        for (unsigned k = 0; k < f.n; k++) {
            check_str(f.fields[k].key, text, n);
            check_str(f.fields[k].value, text, n);
        }
    }
    if (rc == TERN_EINVAL)
        CHECK(bad_at < n && (bad_at == 0 || text[bad_at - 1] == '&'));
    if (rc != TERN_ENOMEM)
        check_against_split(text, n, plus, max, rc, &f, bad_at);
    if (rc == 0 && f.n > 0)
        check_accessors(&f);

    tern_arena_deinit(&a);
    free(text);
    return 0;
}
