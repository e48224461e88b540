/*
 * test_chunked.c - the chunked transfer coding decoder (src/http/chunked.c).
 *
 * A table of bodies with the expected result and decoded bytes; every row is
 * also decoded from one-byte feeds, from two pieces split at every position
 * and with tiny output buffers, and must give the one-shot result.  Input
 * pieces are copied into buffers of exactly their size so AddressSanitizer
 * sees any over-read.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

#define RAW(s) .raw = (s), .len = sizeof(s) - 1

typedef struct ccase {
    const char *name;
    const char *raw;
    size_t len;
    int rc;          /* 1, 0 or -status */
    const char *out; /* decoded bytes when rc >= 0 (NULL: not checked) */
    size_t tail;     /* bytes left unconsumed after a complete body */
} ccase;

static const ccase cases[] = {
    /* --- valid --- */
    { "one chunk", RAW("5\r\nhello\r\n0\r\n\r\n"), 1, "hello" },
    { "two chunks", RAW("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), 1, "abcde" },
    { "empty body", RAW("0\r\n\r\n"), 1, "" },
    { "hex upper and lower", RAW("A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n"), 1,
      "0123456789abcdefghijk" },
    { "leading zeros", RAW("0005\r\nhello\r\n000\r\n\r\n"), 1, "hello" },
    { "16 digits", RAW("0000000000000003\r\nabc\r\n0\r\n\r\n"), 1, "abc" },
    { "data with crlf inside", RAW("4\r\n\r\n\r\n\r\n0\r\n\r\n"), 1, "\r\n\r\n" },
    { "binary data", RAW("4\r\n\0\xff\n\r\r\n0\r\n\r\n"), 1, NULL },
    { "extension", RAW("5;name=value\r\nhello\r\n0\r\n\r\n"), 1, "hello" },
    { "extension no value", RAW("5;name\r\nhello\r\n0\r\n\r\n"), 1, "hello" },
    { "extensions with bws", RAW("5 ; a = b ;\tc ;d=e\r\nhello\r\n0\r\n\r\n"), 1, "hello" },
    { "extension quoted", RAW("5;a=\"x y\\\"z;\"\r\nhello\r\n0\r\n\r\n"), 1, "hello" },
    { "extension quoted then more", RAW("5;a=\"\";b\r\nhello\r\n0\r\n\r\n"), 1, "hello" },
    { "extension on last chunk", RAW("0;x=1\r\n\r\n"), 1, "" },
    { "trailers", RAW("1\r\na\r\n0\r\nX-T: v\r\nY:\r\nZ: \xa0 x\t\r\n\r\n"), 1, "a" },
    { "bytes after the body", RAW("1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 1, "a", 16 },
    { "pipelined body after body", RAW("0\r\n\r\n0\r\n\r\n"), 1, "", 5 },

    /* --- incomplete --- */
    { "nothing", RAW(""), 0, "" },
    { "size only", RAW("5"), 0, "" },
    { "partial data", RAW("5\r\nhel"), 0, "hel" },
    { "data without crlf yet", RAW("5\r\nhello"), 0, "hello" },
    { "no final crlf", RAW("0\r\n"), 0, "" },
    { "in trailer", RAW("0\r\nX: y"), 0, "" },
    { "size 2^62", RAW("4000000000000000\r\nab"), 0, "ab" },

    /* --- chunk-size --- */
    { "size 0x1", RAW("0x1\r\na\r\n0\r\n\r\n"), -400 },
    { "size +1", RAW("+1\r\na\r\n0\r\n\r\n"), -400 },
    { "size -1", RAW("-1\r\na\r\n0\r\n\r\n"), -400 },
    { "size empty", RAW("\r\na\r\n0\r\n\r\n"), -400 },
    { "size leading space", RAW(" 1\r\na\r\n0\r\n\r\n"), -400 },
    { "size trailing space", RAW("1 \r\na\r\n0\r\n\r\n"), -400 },
    { "size trailing tab", RAW("1\t\r\na\r\n0\r\n\r\n"), -400 },
    { "size underscore", RAW("1_0\r\n"), -400 },
    { "size g", RAW("g\r\n"), -400 },
    { "size 17 digits", RAW("00000000000000001\r\na\r\n0\r\n\r\n"), -400 },
    { "size over 2^62", RAW("4000000000000001\r\n"), -400 },
    { "size all f", RAW("FFFFFFFFFFFFFFFF\r\n"), -400 },
    { "size overflow", RAW("10000000000000000\r\n"), -400 },
    { "only extension", RAW(";a\r\n"), -400 },

    /* --- line endings --- */
    { "size bare lf", RAW("1\na\r\n0\r\n\r\n"), -400 },
    { "size cr x", RAW("1\rXa\r\n0\r\n\r\n"), -400 },
    { "data bare lf", RAW("1\r\na\n0\r\n\r\n"), -400 },
    { "data cr x", RAW("1\r\na\rX0\r\n\r\n"), -400 },
    { "data no crlf", RAW("5\r\nhello0\r\n\r\n"), -400 },
    { "data too long", RAW("1\r\nab\r\n0\r\n\r\n"), -400 },
    { "lf only framing", RAW("1\na\n0\n\n"), -400 },
    { "last chunk bare lf", RAW("0\n\r\n"), -400 },
    { "end bare lf", RAW("0\r\n\n"), -400 },
    { "end cr x", RAW("0\r\n\rX"), -400 },

    /* --- extensions --- */
    { "ext empty name", RAW("1;\r\na\r\n0\r\n\r\n"), -400 },
    { "ext empty value", RAW("1;a=\r\na\r\n0\r\n\r\n"), -400 },
    { "ext space in name", RAW("1;a b\r\na\r\n0\r\n\r\n"), -400 },
    { "ext trailing space", RAW("1;a=b \r\na\r\n0\r\n\r\n"), -400 },
    { "ext trailing space after name", RAW("1;a \r\na\r\n0\r\n\r\n"), -400 },
    { "ext unterminated quote", RAW("1;a=\"x\r\na\r\n0\r\n\r\n"), -400 },
    { "ext ctl in value", RAW("1;a=\x01\r\na\r\n0\r\n\r\n"), -400 },
    { "ext ctl in quoted", RAW("1;a=\"\x01\"\r\na\r\n0\r\n\r\n"), -400 },
    { "ext bare lf", RAW("1;a=b\na\r\n0\r\n\r\n"), -400 },
    { "ext smuggled crlf in quote", RAW("1;a=\"\r\n0\r\n\r\n\"\r\na\r\n0\r\n\r\n"), -400 },
    { "ext double equals", RAW("1;a==b\r\na\r\n0\r\n\r\n"), -400 },

    /* --- trailers --- */
    { "trailer space before colon", RAW("0\r\nX : v\r\n\r\n"), -400 },
    { "trailer obs-fold", RAW("0\r\nX: v\r\n w\r\n\r\n"), -400 },
    { "trailer leading space", RAW("0\r\n X: v\r\n\r\n"), -400 },
    { "trailer empty name", RAW("0\r\n: v\r\n\r\n"), -400 },
    { "trailer no colon", RAW("0\r\nX\r\n\r\n"), -400 },
    { "trailer nul", RAW("0\r\nX: a\0\r\n\r\n"), -400 },
    { "trailer bare cr", RAW("0\r\nX: a\rb\r\n\r\n"), -400 },
    { "trailer bare lf", RAW("0\r\nX: v\n\r\n"), -400 },
    { "trailer del", RAW("0\r\nX: \x7f\r\n\r\n"), -400 },
    { "trailer bad name", RAW("0\r\nX(: v\r\n\r\n"), -400 },
};

typedef struct result {
    int rc;
    size_t consumed;
    size_t out_len;
    char out[256];
} result;

/*
 * Decodes raw[0..n) arriving in pieces that end at cuts[0..ncuts) (then at n),
 * with an output buffer of out_cap bytes, as a server would: the input left
 * over when the output fills is fed again.
 */
static void decode(result *res, const char *raw, size_t n, const size_t *cuts, size_t ncuts,
                   size_t out_cap)
{
    h1_chunked d;
    size_t pos = 0, ci = 0;
    char *out = malloc(out_cap ? out_cap : 1);

    h1_chunked_init(&d);
    memset(res, 0, sizeof *res);
    for (;;) {
        size_t avail = ci < ncuts ? cuts[ci] : n;
        size_t len = avail - pos, consumed = 7777, produced = 7777;
        char *in = malloc(len ? len : 1);

        memcpy(in, raw + pos, len);
        res->rc = h1_chunked_feed(&d, in, len, &consumed, out, out_cap, &produced);
        free(in);
        cr_assert_leq(consumed, len);
        cr_assert_leq(produced, out_cap);
        cr_assert_lt(res->out_len + produced, sizeof res->out);
        memcpy(res->out + res->out_len, out, produced);
        res->out_len += produced;
        pos += consumed;
        if (res->rc != 0)
            break;
        if (pos < avail) {
            /* only a full output may leave input behind */
            cr_assert_eq(produced, out_cap, "input left with room in the output");
            continue;
        }
        if (ci >= ncuts)
            break;
        ci++;
    }
    res->consumed = pos;
    free(out);
}

static int result_eq(const result *a, const result *b)
{
    if (a->rc != b->rc)
        return 0;
    if (a->rc < 0)
        return 1; /* where an error stops is not part of the contract */
    return a->consumed == b->consumed && a->out_len == b->out_len &&
           memcmp(a->out, b->out, a->out_len) == 0;
}

static void check_splits(const char *name, const char *raw, size_t n)
{
    result one, r;
    size_t cuts[512];

    decode(&one, raw, n, NULL, 0, 256);
    /* two pieces, every split point, with a roomy and a tiny output */
    for (size_t k = 0; k <= n; k++) {
        cuts[0] = k;
        decode(&r, raw, n, cuts, 1, 256);
        cr_assert(result_eq(&r, &one), "%s: split at %zu gives %d, one-shot %d", name, k, r.rc, one.rc);
        decode(&r, raw, n, cuts, 1, 2);
        cr_assert(result_eq(&r, &one), "%s: split at %zu, out 2 gives %d", name, k, r.rc);
    }
    /* one byte at a time, output of 1 */
    cr_assert_lt(n, sizeof cuts / sizeof cuts[0]);
    for (size_t k = 0; k < n; k++)
        cuts[k] = k + 1;
    decode(&r, raw, n, cuts, n, 1);
    cr_assert(result_eq(&r, &one), "%s: byte by byte gives %d, one-shot %d", name, r.rc, one.rc);
    /* three pieces */
    for (size_t a = 0; a <= n; a += 3) {
        for (size_t b = a; b <= n; b += 2) {
            cuts[0] = a;
            cuts[1] = b;
            decode(&r, raw, n, cuts, 2, 3);
            cr_assert(result_eq(&r, &one), "%s: cuts %zu,%zu gives %d", name, a, b, r.rc);
        }
    }
}

Test(chunked, table)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ccase *c = &cases[i];
        result r;

        decode(&r, c->raw, c->len, NULL, 0, 256);
        cr_expect_eq(r.rc, c->rc, "%s: got %d, want %d", c->name, r.rc, c->rc);
        if (c->rc >= 0 && c->out != NULL) {
            cr_expect_eq(r.out_len, strlen(c->out), "%s: decoded %zu bytes", c->name, r.out_len);
            cr_expect(r.out_len == strlen(c->out) && memcmp(r.out, c->out, r.out_len) == 0,
                      "%s: decoded bytes differ", c->name);
        }
        if (c->rc == 1)
            cr_expect_eq(r.consumed, c->len - c->tail, "%s: consumed %zu", c->name, r.consumed);
        if (c->rc == 0)
            cr_expect_eq(r.consumed, c->len, "%s: incomplete must consume all", c->name);
        check_splits(c->name, c->raw, c->len);
    }
}

Test(chunked, binary_data_roundtrip)
{
    static const char body[] = "4\r\n\0\xff\n\r\r\n0\r\n\r\n";
    result r;

    decode(&r, body, sizeof body - 1, NULL, 0, 64);
    cr_assert_eq(r.rc, 1);
    cr_assert_eq(r.out_len, 4);
    cr_assert(memcmp(r.out, "\0\xff\n\r", 4) == 0);
}

Test(chunked, full_output_still_finishes_framing)
{
    /* out_cap equals the body: the decoder still reads the last chunk */
    static const char body[] = "3\r\nabc\r\n0\r\n\r\n";
    h1_chunked d;
    char out[3];
    size_t consumed, produced;

    h1_chunked_init(&d);
    cr_assert_eq(h1_chunked_feed(&d, body, sizeof body - 1, &consumed, out, sizeof out, &produced), 1);
    cr_assert_eq(consumed, sizeof body - 1);
    cr_assert_eq(produced, 3);
}

Test(chunked, full_output_stops_in_data)
{
    static const char body[] = "5\r\nhello\r\n0\r\n\r\n";
    h1_chunked d;
    char out[8];
    size_t consumed, produced;

    h1_chunked_init(&d);
    cr_assert_eq(h1_chunked_feed(&d, body, sizeof body - 1, &consumed, out, 2, &produced), 0);
    cr_assert_eq(produced, 2);
    cr_assert_eq(consumed, 5);
    /* out_cap 0: nothing more in data, nothing consumed */
    cr_assert_eq(h1_chunked_feed(&d, body + 5, sizeof body - 6, &consumed, out, 0, &produced), 0);
    cr_assert_eq(consumed, 0);
    cr_assert_eq(produced, 0);
    cr_assert_eq(h1_chunked_feed(&d, body + 5, sizeof body - 6, &consumed, out, sizeof out, &produced), 1);
    cr_assert_eq(produced, 3);
    cr_assert(memcmp(out, "llo", 3) == 0);
}

Test(chunked, done_is_sticky)
{
    h1_chunked d;
    char out[8];
    size_t consumed, produced;

    h1_chunked_init(&d);
    cr_assert_eq(h1_chunked_feed(&d, "0\r\n\r\n", 5, &consumed, out, sizeof out, &produced), 1);
    cr_assert_eq(h1_chunked_feed(&d, "1\r\na", 4, &consumed, out, sizeof out, &produced), 1);
    cr_assert_eq(consumed, 0);
    cr_assert_eq(produced, 0);
}

Test(chunked, error_is_sticky)
{
    h1_chunked d;
    char out[8];
    size_t consumed, produced;

    h1_chunked_init(&d);
    cr_assert_eq(h1_chunked_feed(&d, "x", 1, &consumed, out, sizeof out, &produced), -400);
    cr_assert_eq(h1_chunked_feed(&d, "0\r\n\r\n", 5, &consumed, out, sizeof out, &produced), -400);
    cr_assert_eq(consumed, 0);
}

/* A size line of exactly n bytes (CRLF excluded): "1;" + "a" * (n - 2). */
static char *size_line(size_t n, size_t *len)
{
    char *s = malloc(n + 16);

    memcpy(s, "1;", 2);
    memset(s + 2, 'a', n - 2);
    memcpy(s + n, "\r\nx\r\n0\r\n\r\n", 10);
    *len = n + 10;
    return s;
}

Test(chunked, size_line_limit)
{
    size_t n;
    char *at = size_line(H1_CHUNK_LINE_MAX, &n);
    result r;

    decode(&r, at, n, NULL, 0, 16);
    cr_assert_eq(r.rc, 1, "a size line of exactly H1_CHUNK_LINE_MAX bytes is fine");
    free(at);
    at = size_line(H1_CHUNK_LINE_MAX + 1, &n);
    decode(&r, at, n, NULL, 0, 16);
    cr_assert_eq(r.rc, -400, "one byte more is 400");
    /* also when the CRLF has not arrived */
    decode(&r, at, H1_CHUNK_LINE_MAX + 1, NULL, 0, 16);
    cr_assert_eq(r.rc, -400);
    decode(&r, at, H1_CHUNK_LINE_MAX, NULL, 0, 16);
    cr_assert_eq(r.rc, 0);
    free(at);
}

/* "0\r\n" + trailer lines totalling exactly n bytes + "\r\n". */
static char *trailers(size_t n, size_t *len)
{
    char *s = malloc(n + 8);
    size_t p = 3;

    memcpy(s, "0\r\n", 3);
    while (n - (p - 3) > 0) {
        size_t left = n - (p - 3);
        size_t line = left > 1000 ? 1000 : left;

        if (left - line > 0 && left - line < 5)
            line -= 5; /* keep the last line at least "X:\r\n" + 1 long */
        cr_assert_geq(line, 4);
        s[p] = 'X';
        s[p + 1] = ':';
        memset(s + p + 2, 'v', line - 4);
        s[p + line - 2] = '\r';
        s[p + line - 1] = '\n';
        p += line;
    }
    memcpy(s + p, "\r\n", 2);
    *len = p + 2;
    return s;
}

Test(chunked, trailer_limit)
{
    size_t n;
    char *t = trailers(H1_TRAILER_MAX, &n);
    result r;

    decode(&r, t, n, NULL, 0, 16);
    cr_assert_eq(r.rc, 1, "trailers of exactly H1_TRAILER_MAX bytes are fine");
    free(t);
    t = trailers(H1_TRAILER_MAX + 1, &n);
    decode(&r, t, n, NULL, 0, 16);
    cr_assert_eq(r.rc, -431);
    free(t);
}

Test(chunked, large_chunk_streams)
{
    /* a 64 KiB chunk through a 1000-byte output, in 777-byte reads */
    size_t dn = 65536, n = 0;
    char *body = malloc(dn + 32);
    h1_chunked d;
    size_t pos = 0, total = 0;
    char out[1000];

    memcpy(body, "10000\r\n", 7);
    n = 7;
    for (size_t i = 0; i < dn; i++)
        body[n + i] = (char)('a' + i % 26);
    n += dn;
    memcpy(body + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    h1_chunked_init(&d);
    for (;;) {
        size_t len = n - pos > 777 ? 777 : n - pos, consumed, produced;
        int rc = h1_chunked_feed(&d, body + pos, len, &consumed, out, sizeof out, &produced);

        for (size_t i = 0; i < produced; i++)
            cr_assert_eq(out[i], (char)('a' + (total + i) % 26));
        total += produced;
        pos += consumed;
        if (rc != 0) {
            cr_assert_eq(rc, 1);
            break;
        }
    }
    cr_assert_eq(total, dn);
    cr_assert_eq(pos, n);
    free(body);
}
