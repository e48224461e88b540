/*
 * parser.c - the HTTP/1.1 request head parser (RFC 9112 sections 2-3 and 5-6).
 *
 * h1_parse_request() turns the bytes of a request head into an h1_request
 * whose strings all point into the caller's buffer (the only exceptions are
 * the static "/" used as the path of an absolute-form target without one).
 * It allocates nothing and never writes to the buffer.  It is strict: where
 * RFC 9112 allows a server to reject or to repair, it rejects.
 * docs/http-parser.md lists every rule with the status it produces.
 *
 * Result invariant (what makes incremental parsing safe).  The result for a
 * prefix of a byte stream is either 0 or the final result for every longer
 * stream that starts with it, so feeding the head in pieces gives exactly the
 * answer a one-shot call would give.  Three tiers of checks make this hold:
 *
 *   1. The request line is checked byte by byte in order: the first byte that
 *      makes every completion invalid decides the status, even before the CRLF
 *      has arrived (so a TLS handshake sent to a plain port is answered at
 *      once).  The length limit acts as an error at byte max_request_line + 1.
 *   2. Framing of the header section: each field line must end in CRLF (bare
 *      LF -> 400) and the section must stay within max_header_bytes (-> 431,
 *      counted as bytes arrive).  These are checked line by line in order and
 *      are the only checks run on new bytes of an incomplete head.
 *   3. Everything else (field syntax, the field count, Host, Content-Length,
 *      Transfer-Encoding, Connection, Expect) is decided only once the head is
 *      complete; the first such error in byte order wins, then the checks that
 *      need the whole head (missing Host, CL with TE, unknown codings, 417).
 *
 * *scanned: 0 means "parse from the start".  Once the request line is known
 * to be valid and the head is still incomplete, it packs two offsets: where
 * the incomplete field line starts and where the header section starts.  A
 * later call only looks at field lines from there for tier 2; when the final
 * empty line arrives the whole head is parsed once more, in one pass, to fill
 * in the outputs.  The common case (the whole head in one read) is one pass.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "http/h1.h"

#define METHOD_MAX       32                  /* longer methods -> 501 */
#define LEADING_CRLF_MAX 4                   /* empty lines skipped before the request line */
#define CL_MAX           1000000000000000ull /* 1e15: larger Content-Length -> 400 */

/* Character classes (one table lookup per byte). */
enum {
    C_TCHAR = 0x01,  /* token (RFC 9110 5.6.2) */
    C_VALUE = 0x02,  /* field-value byte: VCHAR, obs-text, SP, HTAB */
    C_TARGET = 0x04, /* request-target byte: VCHAR except '#' */
    C_HOST = 0x08,   /* reg-name: unreserved, sub-delims, '%' (RFC 3986 3.2.2) */
    C_DIGIT = 0x10,
    C_HEX = 0x20,
};

static const uint8_t ctab[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00-0f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10-1f */
    0x02, 0x0f, 0x06, 0x03, 0x0f, 0x0f, 0x0f, 0x0f,
    0x0e, 0x0e, 0x0f, 0x0f, 0x0e, 0x0f, 0x0f, 0x06, /* 20-2f */
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
    0x3f, 0x3f, 0x06, 0x0e, 0x06, 0x0e, 0x06, 0x06, /* 30-3f */
    0x06, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x0f,
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 40-4f */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
    0x0f, 0x0f, 0x0f, 0x06, 0x06, 0x06, 0x07, 0x0f, /* 50-5f */
    0x07, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x0f,
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 60-6f */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
    0x0f, 0x0f, 0x0f, 0x06, 0x07, 0x06, 0x0f, 0x00, /* 70-7f */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 80-8f */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 90-9f */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* a0-af */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* b0-bf */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* c0-cf */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* d0-df */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* e0-ef */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* f0-ff */
};

#define IS(c, cls) (ctab[(uint8_t)(c)] & (cls))
#define IS_WS(c)   ((c) == ' ' || (c) == '\t')

/* Path of an absolute-form target with an empty path (RFC 9112 3.2.2). */
static const char slash[] = "/";

/* ------------------------------------------------------------------------ */
/* Byte-class scans, eight bytes at a time                                   */

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Nonzero iff some byte of w is below n (n <= 128; bytes >= 0x80 never count). */
#define HAS_LESS(w, n) (((w)-ONES * (n)) & ~(w)&HIGHS)
/* Nonzero iff some byte of w equals b. */
#define HAS_BYTE(w, b) HAS_LESS((w) ^ (ONES * (b)), 1)

static inline uint64_t load64(const char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof w);
    return w;
}

/*
 * The two scans below check 16 bytes per step with SSE2 (baseline on x86-64)
 * and 8 bytes per step elsewhere (SWAR); the byte loop handles the tail and,
 * for field values, blocks holding an HTAB.
 */
/* 1 if s[0..n) are all request-target bytes (0x21-0x7e except '#'). */
static int target_ok(const char *s, size_t n)
{
    size_t i = 0;

#ifdef __SSE2__
    const __m128i c20 = _mm_set1_epi8(0x20), c7f = _mm_set1_epi8(0x7f);
    const __m128i hash = _mm_set1_epi8('#'), zero = _mm_setzero_si128();

    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i bad = _mm_cmpeq_epi8(_mm_subs_epu8(x, c20), zero); /* x <= 0x20 */

        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_max_epu8(x, c7f), x)); /* x >= 0x7f */
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, hash));
        if (_mm_movemask_epi8(bad) != 0)
            return 0;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w = load64(s + i);

        if ((w & HIGHS) | HAS_LESS(w, 0x21) | HAS_BYTE(w, 0x7f) | HAS_BYTE(w, '#'))
            return 0;
    }
    for (; i < n; i++)
        if (!IS(s[i], C_TARGET))
            return 0;
    return 1;
}

/* 1 if s[0..n) are all field-value bytes (VCHAR, obs-text, SP, HTAB). */
static int value_ok(const char *s, size_t n)
{
    size_t i = 0;

#ifdef __SSE2__
    const __m128i c1f = _mm_set1_epi8(0x1f), c7f = _mm_set1_epi8(0x7f);
    const __m128i zero = _mm_setzero_si128();

    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i bad = _mm_cmpeq_epi8(_mm_subs_epu8(x, c1f), zero); /* x < 0x20 */

        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, c7f));
        if (_mm_movemask_epi8(bad) != 0) {
            for (size_t k = i; k < i + 16; k++)
                if (!IS(s[k], C_VALUE))
                    return 0;
        }
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w = load64(s + i);

        /* No control byte and no DEL; an HTAB takes the byte loop. */
        if (HAS_LESS(w, 0x20) | HAS_BYTE(w, 0x7f)) {
            for (size_t k = i; k < i + 8; k++)
                if (!IS(s[k], C_VALUE))
                    return 0;
        }
    }
    for (; i < n; i++)
        if (!IS(s[i], C_VALUE))
            return 0;
    return 1;
}

/* 1 if s[0..n) are all token bytes. */
static int token_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!IS(s[i], C_TCHAR))
            return 0;
    return 1;
}

/*
 * Case-insensitive compare of s[0..n) with a lowercase literal made of
 * letters, digits and '-'.  Only called on bytes already known to be tchars,
 * where OR-ing 0x20 maps exactly the upper-case letters onto the lower-case
 * ones among the bytes the literal can hold.
 */
static int ieq_lit(const char *s, size_t n, const char *lit, size_t litn)
{
    if (n != litn)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (((uint8_t)s[i] | 0x20) != (uint8_t)lit[i])
            return 0;
    return 1;
}
#define IEQ(s, n, lit) ieq_lit((s), (n), "" lit, sizeof(lit) - 1)

/* s[0..n) with leading and trailing SP/HTAB removed. */
static void trim_ows(const char **s, size_t *n)
{
    const char *p = *s, *e = *s + *n;

    while (p < e && IS_WS(*p))
        p++;
    while (e > p && IS_WS(e[-1]))
        e--;
    *s = p;
    *n = (size_t)(e - p);
}

/* ------------------------------------------------------------------------ */
/* Host                                                                       */

/*
 * 1 if s[0..n) is a valid Host value / authority: uri-host [ ":" port ]
 * (RFC 9110 7.2, RFC 3986 3.2.2-3.2.3) where uri-host is a reg-name (which
 * covers IPv4 addresses) or a bracketed IPv6 address.  Choices: no userinfo
 * ('@' is not allowed), no IPvFuture or zone ids, port = *DIGIT, and an empty
 * host with a port (":80") is rejected.  An empty value is valid only when
 * allow_empty is set (origin-form and asterisk-form requests).
 */
static int host_ok(const char *s, size_t n, int allow_empty)
{
    size_t i = 0;

    if (n == 0)
        return allow_empty;
    if (s[0] == '[') {
        const char *e = memchr(s, ']', n);
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        size_t an;

        if (e == NULL)
            return 0;
        an = (size_t)(e - s) - 1;
        if (an == 0 || an >= sizeof tmp)
            return 0;
        memcpy(tmp, s + 1, an);
        tmp[an] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return 0;
        i = an + 2;
    } else {
        while (i < n && IS(s[i], C_HOST)) {
            if (s[i] == '%') {
                if (n - i < 3 || !IS(s[i + 1], C_HEX) || !IS(s[i + 2], C_HEX))
                    return 0;
                i += 3;
            } else {
                i++;
            }
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return 1;
    if (s[i] != ':')
        return 0;
    for (i++; i < n; i++)
        if (!IS(s[i], C_DIGIT))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Request line (tier 1)                                                      */

/* Sets path and query from an origin-form path-and-query p[0..n). */
static void split_path_query(h1_request *r, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);

    if (q == NULL) {
        r->path = (tern_str){ p, n };
    } else {
        r->path = (tern_str){ p, (size_t)(q - p) };
        r->query = (tern_str){ q + 1, n - (size_t)(q - p) - 1 };
    }
}

/*
 * Classifies a complete request-target t[0..n) (n > 0, bytes already checked)
 * and sets target, path, query and, for absolute-form, host.  0 or -400.
 */
static int parse_target(h1_request *r, const char *t, size_t n)
{
    size_t k, an;

    r->target = (tern_str){ t, n };
    if (t[0] == '/') {
        split_path_query(r, t, n);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        /* asterisk-form is only defined for OPTIONS (RFC 9112 3.2.4). */
        if (!tern_str_eq(r->method, TERN_STR("OPTIONS")))
            return -400;
        r->flags |= H1_ASTERISK;
        r->path = (tern_str){ t, 1 };
        return 0;
    }
    /* absolute-form: "http" / "https" (any case) "://" authority [path] [?query] */
    if (n > 7 && IEQ(t, 7, "http://"))
        k = 7;
    else if (n > 8 && IEQ(t, 8, "https://"))
        k = 8;
    else
        return -400; /* authority-form (CONNECT only) or another scheme */
    for (an = 0; k + an < n && t[k + an] != '/' && t[k + an] != '?'; an++)
        ;
    /* An http(s) URI with an empty host is invalid (RFC 9110 4.2.1). */
    if (!host_ok(t + k, an, 0))
        return -400;
    r->host = (tern_str){ t + k, an };
    r->flags |= H1_ABSOLUTE;
    k += an;
    if (k == n || t[k] == '?') {
        r->path = (tern_str){ slash, 1 };
        if (k < n)
            r->query = (tern_str){ t + k + 1, n - k - 1 };
    } else {
        split_path_query(r, t + k, n - k);
    }
    return 0;
}

/*
 * Parses the request line s[0..n), CRLF excluded.  With complete == 0,
 * s[0..n) is only a prefix of the line: running out of bytes gives 0 where a
 * complete line would be malformed, and every error returned is one that all
 * completions share (checks run strictly left to right).  Returns 1 (complete
 * and valid), 0 (prefix and no error yet) or a negated status.
 */
static int parse_request_line(h1_request *r, const char *s, size_t n, int complete)
{
    size_t i = 0, t0, m;
    const char *sp, *v;

    /* method = token, at most METHOD_MAX bytes */
    while (i < n && IS(s[i], C_TCHAR)) {
        if (++i > METHOD_MAX)
            return -501;
    }
    if (i == n)
        return complete ? -400 : 0;
    if (i == 0 || s[i] != ' ')
        return -400;
    r->method = (tern_str){ s, i };
    /* authority-form exists only for CONNECT, which tern does not implement. */
    if (i == 7 && memcmp(s, "CONNECT", 7) == 0)
        return -501;

    /* request-target: visible ASCII up to the next SP */
    t0 = ++i;
    sp = memchr(s + t0, ' ', n - t0);
    m = (sp ? (size_t)(sp - s) : n) - t0;
    if (!target_ok(s + t0, m))
        return -400;
    if (sp == NULL)
        return complete ? -400 : 0;
    if (m == 0)
        return -400; /* two SPs in a row */
    if (parse_target(r, s + t0, m) != 0)
        return -400;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, and nothing after it */
    v = sp + 1;
    m = n - (size_t)(v - s);
    for (size_t k = 0; k < m && k < 8; k++) {
        int ok;

        if (k < 5)
            ok = v[k] == "HTTP/"[k];
        else if (k == 6)
            ok = v[k] == '.';
        else
            ok = IS(v[k], C_DIGIT) != 0;
        if (!ok)
            return -400;
    }
    if (m > 8)
        return -400;
    if (m < 8)
        return complete ? -400 : 0;
    if (!complete)
        return 0;
    if (v[5] != '1' || v[7] > '1')
        return -505;
    r->minor = (unsigned)(v[7] - '0');
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Field lines (tier 3)                                                       */

/* What the field lines have said so far, decided once the head is complete. */
typedef struct fields {
    int err; /* first error (negated status) in byte order; 0 = none */
    unsigned nhost;
    unsigned ncl;
    uint64_t cl;
    unsigned te_seen : 1;    /* a Transfer-Encoding line was present */
    unsigned te_chunked : 1; /* "chunked" seen (it must be the last coding) */
    unsigned te_bad : 1;     /* malformed list, or a coding after chunked -> 400 */
    unsigned te_unknown : 1; /* a coding we do not implement -> 501 */
    unsigned conn_close : 1;
    unsigned conn_keepalive : 1;
    unsigned expect_bad : 1; /* an expectation other than 100-continue -> 417 */
} fields;

/* Content-Length = 1*DIGIT, or a list of identical values (RFC 9112 6.3). */
static int parse_cl(fields *f, const char *v, size_t n)
{
    size_t i = 0;

    for (;;) {
        uint64_t x = 0;
        size_t d0 = i;

        while (i < n && IS(v[i], C_DIGIT)) {
            x = x * 10 + (uint64_t)(v[i] - '0'); /* x <= CL_MAX, so no overflow */
            if (x > CL_MAX)
                return -400;
            i++;
        }
        if (i == d0)
            return -400; /* empty element, sign, or a non-digit */
        if (f->ncl++ > 0 && x != f->cl)
            return -400;
        f->cl = x;
        while (i < n && IS_WS(v[i]))
            i++;
        if (i == n)
            return 0;
        if (v[i] != ',')
            return -400;
        i++;
        while (i < n && IS_WS(v[i]))
            i++;
    }
}

/*
 * Steps through the comma-separated list that *p points into (ending at end):
 * sets *e, *en to the next element with OWS trimmed (possibly empty) and
 * returns 1, or returns 0 when the list is exhausted (*p is then NULL).
 */
static int next_element(const char **p, const char *end, const char **e, size_t *en)
{
    const char *c;

    if (*p == NULL)
        return 0;
    c = memchr(*p, ',', (size_t)(end - *p));
    *e = *p;
    *en = (size_t)((c ? c : end) - *p);
    trim_ows(e, en);
    *p = c ? c + 1 : NULL;
    return 1;
}

/* Transfer-Encoding: one line of a list that may span several lines. */
static void parse_te(fields *f, const char *v, size_t n)
{
    const char *it = v, *e;
    size_t en;

    f->te_seen = 1;
    while (next_element(&it, v + n, &e, &en)) {
        if (en == 0 || !token_ok(e, en) || f->te_chunked)
            f->te_bad = 1; /* empty element, parameters, or anything after chunked */
        else if (IEQ(e, en, "chunked"))
            f->te_chunked = 1;
        else
            f->te_unknown = 1; /* gzip, deflate, compress, identity, ... */
    }
}

/* Connection = #token; empty elements are ignored (RFC 9110 5.6.1.2). */
static int parse_connection(fields *f, const char *v, size_t n)
{
    const char *it = v, *e;
    size_t en;

    while (next_element(&it, v + n, &e, &en)) {
        if (en == 0)
            continue;
        if (!token_ok(e, en))
            return -400;
        if (IEQ(e, en, "close"))
            f->conn_close = 1;
        else if (IEQ(e, en, "keep-alive"))
            f->conn_keepalive = 1;
    }
    return 0;
}

/*
 * Parses one field line s[0..n) (CRLF excluded, n > 0), stores it and applies
 * the framing headers.  0 or a negated status.
 */
static int parse_field(h1_request *r, fields *f, const char *s, size_t n, const h1_limits *lim)
{
    size_t i = 0;
    const char *v;
    size_t vn;

    /* A line starting with whitespace is obs-fold, or whitespace before the
     * first field: both rejected (RFC 9112 5.2, 2.2). */
    while (i < n && IS(s[i], C_TCHAR))
        i++;
    if (i == 0 || i == n || s[i] != ':')
        return -400; /* empty name, space before ':', no colon, bad name byte */
    v = s + i + 1;
    vn = n - i - 1;
    trim_ows(&v, &vn);
    if (!value_ok(v, vn))
        return -400;
    if (r->nheaders >= lim->max_headers)
        return -431;
    r->headers[r->nheaders].name = (tern_str){ s, i };
    r->headers[r->nheaders].value = (tern_str){ v, vn };
    r->nheaders++;

    switch (i) {
    case 4:
        if (IEQ(s, i, "host")) {
            if (f->nhost++ > 0 || !host_ok(v, vn, !(r->flags & H1_ABSOLUTE)))
                return -400;
            if (!(r->flags & H1_ABSOLUTE))
                r->host = (tern_str){ v, vn };
        }
        break;
    case 6:
        if (IEQ(s, i, "expect")) {
            /* token compare is safe: a non-token value cannot match */
            if (vn == 12 && token_ok(v, vn) && IEQ(v, vn, "100-continue")) {
                /* A 1.0 client cannot expect 100 (RFC 9110 10.1.1). */
                if (r->minor == 1)
                    r->flags |= H1_EXPECT_CONTINUE;
            } else {
                f->expect_bad = 1;
            }
        }
        break;
    case 10:
        if (IEQ(s, i, "connection"))
            return parse_connection(f, v, vn);
        break;
    case 14:
        if (IEQ(s, i, "content-length"))
            return parse_cl(f, v, vn);
        break;
    case 17:
        if (IEQ(s, i, "transfer-encoding"))
            parse_te(f, v, vn);
        break;
    default: break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Header section framing (tier 2) and the driver                             */

/* *scanned packs two offsets, each in half a size_t; 0 if they do not fit. */
#define HALF_BITS (sizeof(size_t) * CHAR_BIT / 2)
#define HALF_MAX  (((size_t)1 << HALF_BITS) - 1)

static size_t state_pack(size_t pos, size_t hdr_start)
{
    if (pos > HALF_MAX || hdr_start > HALF_MAX)
        return 0; /* correct, just slower: the next call starts over */
    return pos | (hdr_start << HALF_BITS);
}

/*
 * Walks the field lines from *pos (the start of a line) on, checking tier 2.
 * With f != NULL it also parses each line (tier 3), remembering the first
 * error in f->err and skipping field parsing after it.  Returns 1 with *pos at
 * the end of the head, 0 with *pos at the start of the incomplete last line,
 * or a tier-2 status.
 */
static int scan_fields(h1_request *r, fields *f, const char *buf, size_t len, size_t hdr_start,
                       size_t *pos, const h1_limits *lim)
{
    size_t p = *pos;
    /* A line whose LF is at or after `stop` makes the section too large. */
    size_t stop =
        lim->max_header_bytes > SIZE_MAX - hdr_start ? SIZE_MAX : hdr_start + lim->max_header_bytes;
    size_t end = len < stop ? len : stop;

    for (;;) {
        const char *lf = p < end ? memchr(buf + p, '\n', end - p) : NULL;
        size_t e;

        if (lf == NULL) {
            *pos = p;
            return len > stop ? -431 : 0;
        }
        e = (size_t)(lf - buf);
        if (e == p || buf[e - 1] != '\r')
            return -400; /* bare LF */
        if (e - 1 == p) {
            *pos = e + 1; /* the empty line: end of the head */
            return 1;
        }
        if (f != NULL && f->err == 0)
            f->err = parse_field(r, f, buf + p, e - 1 - p, lim);
        p = e + 1;
    }
}

/* Parses the head from the start of buf (see the file comment). */
static int parse_head(h1_request *r, const char *buf, size_t len, const h1_limits *lim,
                      size_t *scanned)
{
    size_t rs = 0, bound, n, e = 0, hs, pos;
    const char *lf;
    fields f;
    int rc, crlf;

    r->method = r->target = r->path = TERN_STR_NULL;
    r->query = r->host = TERN_STR_NULL;
    r->minor = 0;
    r->flags = 0;
    r->content_length = 0;
    r->nheaders = 0;
    r->head_len = 0;
    *scanned = 0;

    /* Skip up to LEADING_CRLF_MAX empty lines (RFC 9112 2.2). */
    while (rs < 2 * LEADING_CRLF_MAX && len - rs >= 2 && buf[rs] == '\r' && buf[rs + 1] == '\n')
        rs += 2;

    /* Find the LF ending the request line, looking no further than the
     * longest allowed line plus its CRLF. */
    bound = lim->max_request_line > SIZE_MAX - rs - 2 ? len : rs + lim->max_request_line + 2;
    if (bound > len)
        bound = len;
    lf = memchr(buf + rs, '\n', bound - rs);
    if (lf == NULL) {
        /* Incomplete: a trailing CR may be the start of the CRLF. */
        n = bound - rs;
        if (n > 0 && buf[bound - 1] == '\r')
            n--;
        crlf = -1;
    } else {
        e = (size_t)(lf - buf);
        crlf = e > rs && buf[e - 1] == '\r';
        n = e - rs - (size_t)crlf;
    }
    if (n > lim->max_request_line) {
        /* Too long: errors in the first max_request_line bytes still win. */
        rc = parse_request_line(r, buf + rs, lim->max_request_line, 0);
        return rc < 0 ? rc : -414;
    }
    rc = parse_request_line(r, buf + rs, n, crlf == 1);
    if (rc < 0)
        return rc;
    if (crlf == -1)
        return 0;
    if (crlf == 0)
        return -400; /* bare LF ends the request line */

    /* Field lines. */
    memset(&f, 0, sizeof f);
    hs = pos = e + 1;
    rc = scan_fields(r, &f, buf, len, hs, &pos, lim);
    if (rc <= 0) {
        if (rc == 0)
            *scanned = state_pack(pos, hs);
        return rc;
    }
    if (f.err != 0)
        return f.err;

    /* Whole-head rules, 400s first. */
    if (r->minor == 1 && f.nhost == 0)
        return -400; /* RFC 9112 3.2 */
    if (f.te_seen) {
        /* TE with CL, or in 1.0: framing cannot be trusted (RFC 9112 6.1). */
        if (f.ncl > 0 || r->minor == 0 || f.te_bad)
            return -400;
        if (f.te_unknown)
            return -501;
        r->flags |= H1_CHUNKED; /* te_seen && !te_bad && !te_unknown => chunked */
    }
    if (f.ncl > 0) {
        r->flags |= H1_HAS_CL;
        r->content_length = f.cl;
    }
    if (f.expect_bad)
        return -417;
    if (!f.conn_close && (r->minor == 1 || f.conn_keepalive))
        r->flags |= H1_KEEPALIVE;
    if (pos > INT_MAX)
        return -431; /* only reachable with limits above 2 GiB */
    r->head_len = pos;
    return (int)pos;
}

int h1_parse_request(h1_request *r, const char *buf, size_t len, const h1_limits *lim,
                     size_t *scanned)
{
    size_t st = *scanned;

    if (st != 0) {
        size_t pos = st & HALF_MAX, hs = st >> HALF_BITS;

        /* Only tier 2 needs checking on the new bytes; a state that does not
         * fit this buffer (caller misuse) just means starting over. */
        if (hs > 0 && hs <= pos && pos <= len) {
            int rc = scan_fields(r, NULL, buf, len, hs, &pos, lim);

            if (rc <= 0) {
                if (rc == 0)
                    *scanned = state_pack(pos, hs);
                return rc;
            }
        }
    }
    return parse_head(r, buf, len, lim, scanned);
}
