/*
 * fuzz_h1.c - libFuzzer target for the HTTP/1.1 request parser and the
 * chunked decoder (src/http/parser.c, src/http/chunked.c).
 *
 * For each input and for three sets of limits (the defaults, and two small
 * sets derived from the input so the limit paths are hit):
 *   - h1_parse_request on the whole input, one shot;
 *   - the same input fed incrementally, growing in 2 and 3 pieces with
 *     *scanned carried along; the first nonzero answer must equal the
 *     one-shot answer (status, head_len, flags and every field as an offset),
 *     and a one-shot parse of any prefix must be 0 or that same answer.
 * Then the chunked decoder runs over the body when the head is complete and
 * chunked (or over the whole input when the head is invalid, to reach the
 * decoder directly), one shot and in pieces with small output buffers; the
 * results must agree.  Any disagreement calls abort().
 *
 * Every call gets an exact-size heap copy of its input so AddressSanitizer
 * reports any read past the end.  Nothing is kept between runs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

#define MAXH 64

typedef struct digest {
    int rc;
    unsigned flags, minor, nheaders;
    uint64_t cl;
    size_t head_len;
    long off[5], len[5];
    long hdr[MAXH][4];
} digest;

static long offset_of(tern_str s, const char *buf, size_t n)
{
    if (s.p == NULL)
        return -1;
    if (s.p < buf || s.p > buf + n || s.n > (size_t)(buf + n - s.p)) {
        /* only the static "/" of an absolute-form target may be outside */
        if (!(s.n == 1 && s.p[0] == '/'))
            abort();
        return -2;
    }
    return (long)(s.p - buf);
}

/* Parses p[0..n) from an exact-size copy and digests the result. */
static void parse_copy(digest *d, const uint8_t *p, size_t n, const h1_limits *lim, size_t *scanned)
{
    char *buf = malloc(n ? n : 1);
    h1_header hdrs[MAXH];
    h1_request r;
    const tern_str *s[5] = { &r.method, &r.target, &r.path, &r.query, &r.host };

    if (buf == NULL)
        abort();
    if (n > 0)
        memcpy(buf, p, n);
    memset(&r, 0, sizeof r);
    r.headers = hdrs;
    memset(d, 0, sizeof *d);
    d->rc = h1_parse_request(&r, buf, n, lim, scanned);
    if (d->rc > 0) {
        if ((size_t)d->rc != r.head_len || r.head_len > n || r.nheaders > lim->max_headers)
            abort();
        d->flags = r.flags;
        d->minor = r.minor;
        d->nheaders = r.nheaders;
        d->cl = r.content_length;
        d->head_len = r.head_len;
        for (int i = 0; i < 5; i++) {
            d->off[i] = offset_of(*s[i], buf, n);
            d->len[i] = (long)s[i]->n;
        }
        for (unsigned i = 0; i < r.nheaders; i++) {
            d->hdr[i][0] = offset_of(hdrs[i].name, buf, n);
            d->hdr[i][1] = (long)hdrs[i].name.n;
            d->hdr[i][2] = offset_of(hdrs[i].value, buf, n);
            d->hdr[i][3] = (long)hdrs[i].value.n;
        }
    } else if (d->rc != 0 && d->rc != -400 && d->rc != -414 && d->rc != -417 && d->rc != -431 &&
               d->rc != -501 && d->rc != -505) {
        abort();
    }
    free(buf);
}

/* Feeds prefixes ending at cuts[0..nc) then n; checks against one. */
static void check_pieces(const uint8_t *p, size_t n, const h1_limits *lim, const size_t *cuts,
                         size_t nc, const digest *one)
{
    size_t scanned = 0;
    digest d, fresh;

    for (size_t i = 0; i <= nc; i++) {
        size_t k = i < nc ? cuts[i] : n;

        parse_copy(&d, p, k, lim, &scanned);
        if (d.rc != 0) {
            if (memcmp(&d, one, sizeof d) != 0)
                abort(); /* incremental and one-shot disagree */
            return;
        }
        size_t s0 = 0;
        parse_copy(&fresh, p, k, lim, &s0);
        if (fresh.rc != 0 && memcmp(&fresh, one, sizeof fresh) != 0)
            abort(); /* a prefix gave an answer the whole input does not */
    }
    if (one->rc != 0)
        abort(); /* incomplete all the way, but the one-shot parse finished */
}

/* ------------------------------------------------------------------------ */
/* Chunked                                                                    */

typedef struct dresult {
    int rc;
    size_t consumed, out_len;
} dresult;

/*
 * Decodes b[0..n) arriving in pieces ending at cuts[0..nc) then n, with an
 * output buffer of out_cap; decoded bytes are appended to all[].
 */
static void decode(dresult *res, const uint8_t *b, size_t n, const size_t *cuts, size_t nc,
                   size_t out_cap, char *all)
{
    h1_chunked d;
    size_t pos = 0, ci = 0;
    char *out = malloc(out_cap ? out_cap : 1);

    if (out == NULL)
        abort();
    h1_chunked_init(&d);
    memset(res, 0, sizeof *res);
    for (;;) {
        size_t avail = ci < nc ? cuts[ci] : n;
        size_t len = avail - pos, consumed = 0, produced = 0;
        char *in = malloc(len ? len : 1);

        if (in == NULL)
            abort();
        if (len > 0)
            memcpy(in, b + pos, len);
        res->rc = h1_chunked_feed(&d, in, len, &consumed, out, out_cap, &produced);
        free(in);
        if (consumed > len || produced > out_cap || res->out_len + produced > n)
            abort();
        if (res->rc != 0 && res->rc != 1 && res->rc != -400 && res->rc != -431)
            abort();
        if (produced > 0)
            memcpy(all + res->out_len, out, produced);
        res->out_len += produced;
        pos += consumed;
        if (res->rc != 0)
            break;
        if (pos < avail) {
            if (produced != out_cap)
                abort(); /* input left over although the output had room */
            continue;
        }
        if (ci >= nc)
            break;
        ci++;
    }
    res->consumed = pos;
    free(out);
}

static void check_chunked(const uint8_t *b, size_t n, uint32_t h)
{
    char *one_out = malloc(n + 1), *out = malloc(n + 1);
    dresult one, r;
    size_t cuts[3];
    static const size_t caps[] = { 1, 3, 64 };

    if (one_out == NULL || out == NULL)
        abort();
    decode(&one, b, n, NULL, 0, n, one_out);
    cuts[0] = n ? h % (n + 1) : 0;
    cuts[1] = cuts[0] + (n - cuts[0]) / 2;
    cuts[2] = n ? (h >> 7) % (n + 1) : 0;
    if (cuts[2] < cuts[1])
        cuts[2] = cuts[1];
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        decode(&r, b, n, cuts, 3, caps[i], out);
        if (r.rc != one.rc)
            abort();
        if (r.rc >= 0 && (r.consumed != one.consumed || r.out_len != one.out_len ||
                          memcmp(out, one_out, r.out_len) != 0))
            abort();
    }
    free(one_out);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: split points and limits follow the input */
    h1_limits lims[3];
    digest one;
    size_t cuts[2], s;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    lims[0] = (h1_limits){ 8192, 8192, MAXH };
    lims[1] = (h1_limits){ 8 + h % 48, 4 + (h >> 6) % 96, (h >> 13) % 6 };
    lims[2] = (h1_limits){ 1 + (h >> 16) % 24, (h >> 20) % 40, 1 + (h >> 26) % 3 };

    for (int li = 0; li < 3; li++) {
        const h1_limits *lim = &lims[li];

        s = 0;
        parse_copy(&one, p, n, lim, &s);
        /* two pieces: at a hashed point; three pieces: at thirds */
        cuts[0] = n ? (h >> (li * 5)) % (n + 1) : 0;
        check_pieces(p, n, lim, cuts, 1, &one);
        cuts[0] = n / 3;
        cuts[1] = 2 * n / 3;
        check_pieces(p, n, lim, cuts, 2, &one);
        if (li == 0) {
            if (one.rc > 0 && (one.flags & H1_CHUNKED))
                check_chunked(p + one.rc, n - (size_t)one.rc, h);
            else if (one.rc < 0)
                check_chunked(p, n, h);
        }
    }
    return 0;
}
