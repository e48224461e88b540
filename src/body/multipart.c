/*
 * multipart.c - multipart/form-data (RFC 7578, framing per RFC 2046 5.1.1):
 * the push parser, the collector with limits and spooling, and the file
 * name sanitizer.  The contracts and the list of what the parser rejects are
 * in multipart.h.
 *
 * Parser.  Between parts the parser is a byte-at-a-time state machine (the
 * delimiter line, the header lines).  In a part's body (and in the preamble)
 * it searches for the delimiter CRLF "--" boundary with memchr on '\r'.
 * Because no boundary character is CR or LF, '\r' occurs in the delimiter
 * only at its first byte, so no proper suffix of a partial match can begin a
 * new match: on a mismatch the bytes matched so far are plain data and the
 * search goes on at the mismatching byte.  That keeps the search linear and
 * means the only state kept across inputs is the match length; the held
 * back bytes are delim[0..match) and are emitted from there when the match
 * fails.  The preamble starts with a match of 2 (a virtual CRLF), so a body
 * may open with "--boundary" directly.
 *
 * Collector.  Parts are gathered in a heap array (copied to the arena at the
 * end) so that on failure every descriptor opened so far is known and
 * closed.  The current part's bytes collect in one reused heap buffer and
 * are copied to the arena when the part ends; a file that grows past the
 * spool threshold moves to a temporary file that is unlinked right after
 * mkostemp, so no name is left behind whatever happens later.
 *
 * Invariants: a tern_part in the array has fd -1 or an fd this collector
 * opened; every failure path goes through `out:` in tern__multipart_collect,
 * which closes them all.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "body/multipart.h"

/* ------------------------------------------------------------------------ */
/* Character classes                                                          */

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 bcharsnospace. */
static int is_bchar_nospace(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("'()+_,-./:=?", c) != NULL;
}

#define IS_WS(c) ((c) == ' ' || (c) == '\t')

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Case-insensitive comparison of s[0..n) with a lowercase literal. */
static int ieq(const char *s, size_t n, const char *lit)
{
    return tern_str_ieq((tern_str){ s, n }, tern_str_c(lit));
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                     */

enum {
    ST_PREAMBLE,   /* searching for the first delimiter; bytes ignored */
    ST_BODY,       /* a part's content; searching for the delimiter */
    ST_DELIM_END,  /* right after a delimiter: "--", padding or CR */
    ST_DELIM_DASH, /* one '-' of the close delimiter seen */
    ST_PAD,        /* transport padding */
    ST_DELIM_LF,   /* CR of the delimiter line seen */
    ST_HDR_START,  /* start of a header line, or of the empty line */
    ST_HDR_LINE,   /* in a header line */
    ST_HDR_LF,     /* CR of a header line seen */
    ST_HDR_END_LF, /* CR of the empty line seen */
    ST_DONE,       /* close delimiter seen: result 1 */
    ST_ERR,        /* failed: result < 0 */
};

int mp_boundary_valid(tern_str b)
{
    if (b.n < 1 || b.n > MP_BOUNDARY_MAX || b.p[b.n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < b.n; i++)
        if (b.p[i] != ' ' && !is_bchar_nospace((unsigned char)b.p[i]))
            return 0;
    return 1;
}

int mp_parser_init(mp_parser *p, tern_str boundary, char *hdr_buf, size_t max_header_bytes,
                   const mp_callbacks *cb, void *ctx)
{
    memset(p, 0, sizeof *p);
    if (!mp_boundary_valid(boundary)) {
        p->state = ST_ERR;
        p->result = -400;
        p->reason = "the multipart boundary is not valid";
        return TERN_EINVAL;
    }
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary.p, boundary.n);
    p->dlen = 4 + boundary.n;
    p->hdr = hdr_buf;
    p->hdr_cap = max_header_bytes;
    p->cb = cb;
    p->ctx = ctx;
    p->state = ST_PREAMBLE;
    p->match = 2; /* the virtual CRLF before a delimiter that opens the body */
    return 0;
}

/* Fails the parser with a 400 and a reason; returns -400. */
static int bad(mp_parser *p, const char *reason)
{
    p->state = ST_ERR;
    p->result = -400;
    p->reason = reason;
    return -400;
}

/* Records a callback's failure; returns it. */
static int stop(mp_parser *p, int rc)
{
    p->state = ST_ERR;
    p->result = rc;
    return rc;
}

static int emit(mp_parser *p, const char *d, size_t n)
{
    if (n == 0 || p->cb == NULL || p->cb->on_data == NULL)
        return 0;
    return p->cb->on_data(p->ctx, d, n);
}

/* A whole delimiter was matched. */
static int delimiter_found(mp_parser *p)
{
    int rc = 0;

    if (p->state == ST_BODY && p->cb != NULL && p->cb->on_part_end != NULL)
        rc = p->cb->on_part_end(p->ctx);
    p->state = ST_DELIM_END;
    return rc;
}

/*
 * Preamble or body: consumes in[*ip..n) up to and including a delimiter (the
 * state becomes ST_DELIM_END) or all of it.  Body bytes go to on_data (only
 * in ST_BODY).  Returns 0 or a callback's negative value.
 */
static int scan(mp_parser *p, const char *in, size_t n, size_t *ip)
{
    int body = p->state == ST_BODY;
    size_t i = *ip, start, m;
    int rc;

    if (p->match > 0) {
        /* Go on with the match left at the end of the previous input. */
        m = p->match;
        while (i < n && m < p->dlen && in[i] == p->delim[m]) {
            i++;
            m++;
        }
        *ip = i;
        if (m == p->dlen) {
            p->match = 0;
            return delimiter_found(p);
        }
        if (i == n) {
            p->match = m;
            return 0;
        }
        /* Mismatch at in[i]: the held bytes were data (in the preamble the
         * first two may be the virtual CRLF: nothing is emitted there). */
        p->match = 0;
        if (body) {
            rc = emit(p, p->delim, m);
            if (rc != 0)
                return rc;
        }
    }
    start = i;
    while (i < n) {
        /* The byte after a failed match is often the next CR (CR runs in
         * binary data): test it before paying for a memchr call. */
        const char *cr = in[i] == '\r' ? in + i : memchr(in + i, '\r', n - i);
        size_t j;

        if (cr == NULL) {
            i = n;
            break;
        }
        j = (size_t)(cr - in);
        m = 1;
        while (j + m < n && m < p->dlen && in[j + m] == p->delim[m])
            m++;
        if (m == p->dlen || j + m == n) {
            if (body) {
                rc = emit(p, in + start, j - start);
                if (rc != 0)
                    return rc;
            }
            *ip = j + m;
            if (m == p->dlen)
                return delimiter_found(p);
            p->match = m; /* a prefix of the delimiter ends the input */
            return 0;
        }
        /* in[j+1..j+m) matched delim[1..m), which holds no '\r'. */
        i = j + m;
    }
    *ip = n;
    return body ? emit(p, in + start, n - start) : 0;
}

/* Length of the token at v[i..n) (0 if none). */
static size_t token_len(const char *v, size_t n, size_t i)
{
    size_t k = i;

    while (k < n && is_tchar((unsigned char)v[k]))
        k++;
    return k - i;
}

static size_t skip_ows(const char *v, size_t n, size_t i)
{
    while (i < n && IS_WS(v[i]))
        i++;
    return i;
}

/*
 * Decodes an RFC 8187 ext-value (charset "'" [language] "'" value-chars) in
 * place.  Returns 1 with *out set when the charset is UTF-8, 0 for another
 * charset (the value is then ignored), -1 when malformed.
 */
static int decode_ext_value(char *v, size_t n, tern_str *out)
{
    char *q1 = memchr(v, '\'', n), *q2;
    size_t i, o = 0, start;

    if (q1 == NULL)
        return -1;
    q2 = memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - v));
    if (q2 == NULL)
        return -1;
    start = (size_t)(q2 + 1 - v);
    /* Check the value-chars even when the charset is not ours. */
    for (i = start; i < n; i++) {
        unsigned char c = (unsigned char)v[i];

        if (c == '%') {
            if (n - i < 3)
                return -1;
            if (hexval((unsigned char)v[i + 1]) < 0 || hexval((unsigned char)v[i + 2]) < 0)
                return -1;
            i += 2;
        } else if (c == '\'' || c == '*' || !is_tchar(c)) {
            return -1; /* attr-char is tchar without "'", "*" and "%" */
        }
    }
    if (!ieq(v, (size_t)(q1 - v), "utf-8"))
        return 0;
    for (i = start; i < n; i++) {
        if (v[i] == '%') {
            v[start + o++] =
                (char)(hexval((unsigned char)v[i + 1]) * 16 + hexval((unsigned char)v[i + 2]));
            i += 2;
        } else {
            v[start + o++] = v[i];
        }
    }
    out->p = v + start;
    out->n = o;
    return 1;
}

/*
 * Content-Disposition: form-data *( OWS ";" OWS token OWS "=" OWS value ).
 * Works in place on v (quoted-strings and filename* are decoded over
 * themselves; a decoded value is never longer than its source).
 */
static int parse_disposition(mp_parser *p, char *v, size_t n, mp_part_head *h)
{
    static const char malformed[] = "a part's Content-Disposition is malformed";
    tern_str name = TERN_STR_NULL, fname = TERN_STR_NULL, fext = TERN_STR_NULL;
    int has_name = 0, has_fname = 0, has_fext = 0;
    size_t i, t;

    t = token_len(v, n, 0);
    if (t == 0)
        return bad(p, malformed);
    if (!ieq(v, t, "form-data"))
        return bad(p, "a part's Content-Disposition is not form-data");
    i = t;
    for (;;) {
        size_t ns, nl;
        tern_str val;
        int quoted = 0;

        i = skip_ows(v, n, i);
        if (i == n)
            break;
        if (v[i] != ';')
            return bad(p, malformed);
        i = skip_ows(v, n, i + 1);
        ns = i;
        nl = token_len(v, n, i);
        if (nl == 0)
            return bad(p, malformed);
        i = skip_ows(v, n, i + nl);
        if (i == n || v[i] != '=')
            return bad(p, malformed);
        i = skip_ows(v, n, i + 1);
        if (i < n && v[i] == '"') {
            /* quoted-string; a backslash escapes only '"' and '\\' and is
             * kept before anything else: browsers do not escape the
             * backslashes of Windows paths. */
            size_t r = i + 1, w = i + 1;

            quoted = 1;
            for (;;) {
                if (r == n)
                    return bad(p, malformed);
                if (v[r] == '"')
                    break;
                if (v[r] == '\\' && r + 1 < n && (v[r + 1] == '"' || v[r + 1] == '\\'))
                    r++;
                v[w++] = v[r++];
            }
            val.p = v + i + 1;
            val.n = w - (i + 1);
            i = r + 1;
        } else {
            t = token_len(v, n, i);
            if (t == 0)
                return bad(p, malformed);
            val.p = v + i;
            val.n = t;
            i += t;
        }
        if (ieq(v + ns, nl, "name")) {
            if (has_name++)
                return bad(p, "a part's Content-Disposition repeats a parameter");
            name = val;
        } else if (ieq(v + ns, nl, "filename")) {
            if (has_fname++)
                return bad(p, "a part's Content-Disposition repeats a parameter");
            fname = val;
        } else if (ieq(v + ns, nl, "filename*")) {
            int rc;

            if (has_fext++)
                return bad(p, "a part's Content-Disposition repeats a parameter");
            rc = quoted ? -1 : decode_ext_value(v + (val.p - v), val.n, &fext);
            if (rc < 0)
                return bad(p, "a part's filename* is malformed");
        }
        /* Other parameters are ignored. */
    }
    if (!has_name)
        return bad(p, "a part's Content-Disposition has no name parameter");
    h->name = name;
    if (fext.p != NULL)
        h->filename = fext;
    else if (has_fname)
        h->filename = fname;
    else if (has_fext)
        h->filename = (tern_str){ v, 0 }; /* filename* in another charset only */
    return 0;
}

/* `type "/" subtype` then nothing or OWS ";" (parameters are not checked). */
static int content_type_ok(const char *v, size_t n)
{
    size_t t = token_len(v, n, 0), i;

    if (t == 0 || t == n || v[t] != '/')
        return 0;
    i = t + 1;
    t = token_len(v, n, i);
    if (t == 0)
        return 0;
    i = skip_ows(v, n, i + t);
    return i == n || v[i] == ';';
}

/*
 * The header section p->hdr[0..hdr_len) is complete: lines ending in CRLF
 * (guaranteed by the state machine), none starting with whitespace.
 */
static int parse_head(mp_parser *p, mp_part_head *h)
{
    char *s = p->hdr, *end = p->hdr + p->hdr_len;
    int seen_cd = 0, seen_ct = 0;

    memset(h, 0, sizeof *h);
    while (s < end) {
        char *eol = memchr(s, '\r', (size_t)(end - s)); /* the CR of this line's CRLF */
        size_t len = (size_t)(eol - s), nl = token_len(s, len, 0), vs, ve;

        if (nl == 0 || nl == len || s[nl] != ':')
            return bad(p, "a part header is not `name: value`");
        for (size_t k = nl + 1; k < len; k++) {
            unsigned char c = (unsigned char)s[k];

            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(p, "a part header value contains a control character");
        }
        vs = skip_ows(s, len, nl + 1);
        ve = len;
        while (ve > vs && IS_WS(s[ve - 1]))
            ve--;
        if (ieq(s, nl, "content-disposition")) {
            int rc;

            if (seen_cd++)
                return bad(p, "a part has more than one Content-Disposition");
            rc = parse_disposition(p, s + vs, ve - vs, h);
            if (rc != 0)
                return rc;
        } else if (ieq(s, nl, "content-type")) {
            if (seen_ct++)
                return bad(p, "a part has more than one Content-Type");
            if (!content_type_ok(s + vs, ve - vs))
                return bad(p, "a part's Content-Type is not a media type");
            h->content_type.p = s + vs;
            h->content_type.n = ve - vs;
        }
        s = eol + 2;
    }
    if (!seen_cd)
        return bad(p, "a part has no Content-Disposition header");
    return 0;
}

static int hdr_put(mp_parser *p, char c)
{
    if (p->hdr_len == p->hdr_cap) {
        p->hdr_overflow = 1;
        return bad(p, "a part's header section is too large");
    }
    p->hdr[p->hdr_len++] = c;
    return 0;
}

/* One byte outside the preamble and bodies.  Returns 0 or < 0 (stopped). */
static int step(mp_parser *p, char c)
{
    static const char no_crlf[] = "a part's header line does not end in CRLF";

    switch (p->state) {
    case ST_DELIM_END:
        if (c == '-') {
            p->state = ST_DELIM_DASH;
            return 0;
        }
        /* fallthrough */
    case ST_PAD:
        if (IS_WS(c)) {
            p->state = ST_PAD;
            return 0;
        }
        if (c == '\r') {
            p->state = ST_DELIM_LF;
            return 0;
        }
        if (c == '\n')
            return bad(p, "a delimiter line does not end in CRLF");
        return bad(p, "a delimiter line has characters after the boundary");
    case ST_DELIM_DASH:
        if (c != '-')
            return bad(p, "a delimiter line has characters after the boundary");
        p->state = ST_DONE;
        p->result = 1;
        return 0;
    case ST_DELIM_LF:
        if (c != '\n')
            return bad(p, "a delimiter line does not end in CRLF");
        p->hdr_len = 0;
        p->state = ST_HDR_START;
        return 0;
    case ST_HDR_START:
        if (c == '\r') {
            p->state = ST_HDR_END_LF;
            return 0;
        }
        if (c == '\n')
            return bad(p, no_crlf);
        if (IS_WS(c))
            return bad(p, "a part header line starts with whitespace (obs-fold)");
        p->state = ST_HDR_LINE;
        return hdr_put(p, c);
    case ST_HDR_LINE:
        if (c == '\n')
            return bad(p, no_crlf);
        if (c == '\r')
            p->state = ST_HDR_LF;
        return hdr_put(p, c);
    case ST_HDR_LF:
        if (c != '\n')
            return bad(p, no_crlf);
        p->state = ST_HDR_START;
        return hdr_put(p, c);
    case ST_HDR_END_LF: {
        mp_part_head h;
        int rc;

        if (c != '\n')
            return bad(p, no_crlf);
        rc = parse_head(p, &h);
        if (rc != 0)
            return rc;
        p->state = ST_BODY;
        if (p->cb != NULL && p->cb->on_part_begin != NULL) {
            rc = p->cb->on_part_begin(p->ctx, &h);
            if (rc != 0)
                return stop(p, rc);
        }
        return 0;
    }
    default: return bad(p, "internal parser state"); /* not reached */
    }
}

int mp_feed(mp_parser *p, const char *in, size_t n)
{
    size_t i = 0;

    while (i < n && p->state < ST_DONE) {
        int rc;

        if (p->state == ST_PREAMBLE || p->state == ST_BODY) {
            rc = scan(p, in, n, &i);
            if (rc != 0)
                return stop(p, rc);
        } else if (p->state == ST_HDR_LINE && in[i] != '\r' && in[i] != '\n') {
            /* a header line byte: no need to go through step() */
            if (hdr_put(p, in[i++]) != 0)
                return p->result;
        } else {
            rc = step(p, in[i++]);
            if (rc != 0)
                return p->result;
        }
    }
    return p->state >= ST_DONE ? p->result : 0;
}

/* ------------------------------------------------------------------------ */
/* File names                                                                 */

/*
 * Length of the valid UTF-8 sequence at s[0..n) with its code point in *cp,
 * or 0 when it is not valid (overlong, surrogate, > U+10FFFF, truncated).
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Control characters and the bidirectional formatting characters. */
static int dropped_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t tern__sanitize_filename(tern_str in, char out[MP_FILENAME_MAX + 1])
{
    const unsigned char *s = (const unsigned char *)in.p;
    size_t n = in.n, i = 0, o = 0;

    /* The last path component.  '/' and '\\' are ASCII, so they are never
     * inside a UTF-8 sequence and splitting before decoding is exact. */
    for (size_t k = n; k > 0; k--) {
        if (s[k - 1] == '/' || s[k - 1] == '\\') {
            i = k;
            break;
        }
    }
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_seq(s + i, n - i, &cp);
        const unsigned char *src = s + i;

        if (len == 0) {
            src = (const unsigned char *)"_"; /* one '_' per invalid byte */
            len = 1;
            cp = '_';
            i++;
        } else {
            i += len;
            if (dropped_cp(cp))
                continue;
        }
        if (o == 0 && (cp == '.' || cp == ' '))
            continue; /* leading dots and spaces */
        if (o + len > MP_FILENAME_MAX)
            break; /* cut on a character boundary */
        memcpy(out + o, src, len);
        o += len;
    }
    while (o > 0 && (out[o - 1] == '.' || out[o - 1] == ' '))
        o--;
    if (o == 0) {
        memcpy(out, "file", 4);
        o = 4;
    }
    out[o] = '\0';
    return o;
}

/* ------------------------------------------------------------------------ */
/* Collector                                                                  */

void tern_multipart_limits_init(tern_multipart_limits *lim)
{
    lim->max_parts = 64;
    lim->max_field_size = 64 * 1024;
    lim->max_file_size = 10 * 1024 * 1024;
    lim->max_total = 0;
    lim->max_header_bytes = 8 * 1024;
    lim->spool_threshold = 64 * 1024;
    lim->tmp_dir = NULL;
}

#define READ_CHUNK 16384

typedef struct collector {
    tern_arena *a;
    const tern_multipart_limits *lim;
    tern_part *v; /* parts so far (heap); v[n-1] is the current one */
    unsigned n, cap;
    tern_buf mem; /* the current part's content while it is in memory */
    /* the failure a callback recorded (rc 0: none) */
    int rc, status;
    const char *detail;
} collector;

static int fail(collector *c, int rc, int status, const char *detail)
{
    c->rc = rc;
    c->status = status;
    c->detail = detail;
    return rc;
}

static int fail_oom(collector *c)
{
    return fail(c, TERN_ENOMEM, 503, "out of memory");
}

/* A 413; d is the detail naming the limit (NULL if out of memory). */
static int fail_limit(collector *c, const char *d)
{
    return fail(c, TERN_ETOOBIG, 413, d != NULL ? d : "a multipart limit was exceeded");
}

/* An arena copy of s as a tern_str (NUL-terminated, .p never NULL). */
static int dup_str(collector *c, tern_str s, tern_str *out)
{
    char *d = tern_arena_strndup(c->a, s.n ? s.p : "", s.n);

    if (d == NULL)
        return fail_oom(c);
    out->p = d;
    out->n = s.n;
    return 0;
}

static int on_part_begin(void *ctx, const mp_part_head *h)
{
    collector *c = ctx;
    tern_part *pt;
    int rc;

    if (c->n >= c->lim->max_parts)
        return fail_limit(c, tern_arena_printf(c->a, "more than %u parts", c->lim->max_parts));
    if (c->n == c->cap) {
        unsigned ncap = c->cap ? c->cap * 2 : 8;
        tern_part *nv = tern_realloc(c->v, (size_t)ncap * sizeof *nv);

        if (nv == NULL)
            return fail_oom(c);
        c->v = nv;
        c->cap = ncap;
    }
    pt = &c->v[c->n++];
    memset(pt, 0, sizeof *pt);
    pt->fd = -1;
    c->mem.len = 0;
    rc = dup_str(c, h->name, &pt->name);
    if (rc == 0 && h->filename.p != NULL) {
        char safe[MP_FILENAME_MAX + 1];
        size_t k = tern__sanitize_filename(h->filename, safe);

        rc = dup_str(c, (tern_str){ safe, k }, &pt->filename);
    }
    if (rc == 0) {
        if (h->content_type.p != NULL)
            rc = dup_str(c, h->content_type, &pt->content_type);
        else
            pt->content_type = TERN_STR("text/plain");
    }
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) { /* not expected for a regular file */
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fail_store(collector *c, const char *what, const char *dir)
{
    int e = errno;

    tern_log(TERN_LOG_ERROR, "multipart: cannot %s%s%s: %s", what, dir ? " in " : "",
             dir ? dir : "", strerror(e));
    errno = e;
    return fail(c, TERN_ESYS, 500, "an uploaded file could not be stored");
}

/* Moves the current file part to a new unlinked temporary file. */
static int spool_open(collector *c, tern_part *pt)
{
    const char *dir = c->lim->tmp_dir;
    char *path;

    if (dir == NULL || dir[0] == '\0')
        dir = secure_getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    path = tern_arena_printf(c->a, "%s/tern-upload-XXXXXX", dir);
    if (path == NULL)
        return fail_oom(c);
    /* mkostemp creates the file with mode 0600 (O_EXCL), here close-on-exec. */
    pt->fd = mkostemp(path, O_CLOEXEC);
    if (pt->fd < 0)
        return fail_store(c, "create a temporary file", dir);
    /* The fd is already in the part, so any failure from here closes it. */
    if (unlink(path) != 0)
        return fail_store(c, "unlink a temporary file", dir);
    if (write_all(pt->fd, c->mem.p, c->mem.len) != 0)
        return fail_store(c, "write a temporary file", dir);
    c->mem.len = 0;
    return 0;
}

static int on_data(void *ctx, const char *d, size_t n)
{
    collector *c = ctx;
    tern_part *pt = &c->v[c->n - 1];
    int rc;

    if (pt->filename.p != NULL) {
        if (n > c->lim->max_file_size - pt->size)
            return fail_limit(c, tern_arena_printf(c->a, "a file is larger than %llu bytes",
                                                   (unsigned long long)c->lim->max_file_size));
        if (pt->fd < 0 && n > c->lim->spool_threshold - c->mem.len) {
            rc = spool_open(c, pt);
            if (rc != 0)
                return rc;
        }
    } else if (n > c->lim->max_field_size - pt->size) {
        return fail_limit(c, tern_arena_printf(c->a, "a form field is larger than %zu bytes",
                                               c->lim->max_field_size));
    }
    if (pt->fd >= 0) {
        if (write_all(pt->fd, d, n) != 0)
            return fail_store(c, "write a temporary file", NULL);
    } else {
        rc = tern_buf_append(&c->mem, d, n);
        if (rc != 0)
            return fail_oom(c);
    }
    pt->size += n;
    return 0;
}

static int on_part_end(void *ctx)
{
    collector *c = ctx;
    tern_part *pt = &c->v[c->n - 1];

    if (pt->fd >= 0) {
        char *path;

        if (lseek(pt->fd, 0, SEEK_SET) != 0)
            return fail_store(c, "rewind a temporary file", NULL);
        path = tern_arena_printf(c->a, "/proc/self/fd/%d", pt->fd);
        if (path == NULL)
            return fail_oom(c);
        pt->path = path;
        pt->data = TERN_STR("");
        return 0;
    }
    return dup_str(c, (tern_str){ c->mem.p, c->mem.len }, &pt->data);
}

static const mp_callbacks collector_cb = { on_part_begin, on_data, on_part_end };

void tern__multipart_release(tern_part *parts, unsigned n)
{
    for (unsigned i = 0; parts != NULL && i < n; i++) {
        if (parts[i].fd >= 0) {
            close(parts[i].fd);
            parts[i].fd = -1;
        }
    }
}

int tern__multipart_collect(tern_arena *a, tern_str boundary, const tern_multipart_limits *lim,
                            long (*read_fn)(void *ctx, char *buf, size_t cap), void *read_ctx,
                            tern_part **parts, unsigned *nparts, int *status, const char **detail)
{
    tern_multipart_limits defaults;
    collector c;
    mp_parser p;
    char *buf = NULL, *hdr = NULL;
    uint64_t total = 0;
    int rc = 0, done = 0;

    *parts = NULL;
    *nparts = 0;
    *status = 0;
    *detail = NULL;
    if (lim == NULL) {
        tern_multipart_limits_init(&defaults);
        lim = &defaults;
    }
    memset(&c, 0, sizeof c);
    c.a = a;
    c.lim = lim;
    tern_buf_init(&c.mem, 0);
    if (!mp_boundary_valid(boundary)) {
        rc = fail(&c, TERN_EINVAL, 415, "the multipart boundary is not valid");
        goto out;
    }
    buf = tern_malloc(READ_CHUNK);
    hdr = tern_malloc(lim->max_header_bytes ? lim->max_header_bytes : 1);
    if (buf == NULL || hdr == NULL) {
        rc = fail_oom(&c);
        goto out;
    }
    (void)mp_parser_init(&p, boundary, hdr, lim->max_header_bytes, &collector_cb, &c);
    for (;;) {
        long r = read_fn(read_ctx, buf, READ_CHUNK);
        size_t k, take;

        if (r < 0 || r > READ_CHUNK) {
            rc = r < 0 ? (int)r : TERN_EIO;
            c.status = 0;
            c.detail = NULL;
            goto out;
        }
        if (r == 0) {
            if (!done)
                rc = fail(&c, TERN_EINVAL, 400,
                          "the multipart body ended before its closing boundary");
            break;
        }
        /* Only the bytes within max_total are parsed, so the outcome (a 400
         * found before the limit, else the 413) does not depend on how the
         * body was split into reads. */
        k = (size_t)r;
        take = k;
        if (lim->max_total != 0 && k > lim->max_total - total)
            take = (size_t)(lim->max_total - total);
        total += take;
        if (!done && take > 0) {
            int f = mp_feed(&p, buf, take);

            if (f < 0) {
                if (c.rc != 0) {
                    rc = c.rc;
                } else if (p.hdr_overflow) {
                    const char *d =
                        tern_arena_printf(a, "a part's header section is larger than %zu bytes",
                                          lim->max_header_bytes);

                    rc = fail(&c, TERN_EINVAL, 400, d != NULL ? d : p.reason);
                } else {
                    rc = fail(&c, TERN_EINVAL, 400, p.reason);
                }
                goto out;
            }
            done = f == 1;
        }
        if (take < k) {
            rc = fail_limit(&c, tern_arena_printf(a, "the multipart body is larger than %llu bytes",
                                                  (unsigned long long)lim->max_total));
            goto out;
        }
    }
    if (rc == 0 && c.n > 0) {
        *parts = tern_arena_alloc(a, (size_t)c.n * sizeof **parts);
        if (*parts == NULL) {
            rc = fail_oom(&c);
            goto out;
        }
        memcpy(*parts, c.v, (size_t)c.n * sizeof **parts);
        *nparts = c.n;
    }
out:
    if (rc != 0) {
        tern__multipart_release(c.v, c.n);
        *parts = NULL;
        *nparts = 0;
        *status = c.status;
        *detail = c.detail;
    }
    tern_free(c.v);
    tern_buf_deinit(&c.mem);
    tern_free(buf);
    tern_free(hdr);
    return rc;
}
