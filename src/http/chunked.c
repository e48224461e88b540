/*
 * chunked.c - the chunked transfer coding decoder (RFC 9112 section 7.1).
 *
 * A byte-at-a-time state machine for the framing (size lines, the CRLF after
 * each chunk, trailers) with a memcpy fast path for chunk data, so input may
 * be split at any byte and the result is the same as for one call with all
 * of it.  It never reads past in[n) or writes past out[out_cap).
 *
 * Strictness (where the RFC lets a recipient choose, it rejects):
 *   - chunk-size = 1*HEXDIG: no sign, "0x", spaces or empty size; more than
 *     16 digits or a value above 2^62 -> 400.
 *   - chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 *     is parsed and ignored; whitespace is allowed only where BWS is (so not
 *     before the CRLF); the line, extensions included and CRLF excluded, may
 *     be at most H1_CHUNK_LINE_MAX bytes -> 400.
 *   - every line ends in CRLF; CR followed by anything but LF, or a bare LF,
 *     -> 400; the CRLF after the chunk data is mandatory.
 *   - trailer fields are checked like header fields (token name, no space
 *     before ':', no obs-fold, value bytes VCHAR / obs-text / SP / HTAB) and
 *     dropped; their total size (CRLFs included) over H1_TRAILER_MAX -> 431.
 * Errors are sticky: after one, every call returns it again.
 *
 * Field use: `remaining` holds the size being accumulated while a size line
 * is read, then the chunk bytes left; `line_len` and `size_digits` belong to
 * the current size line; `trailer_bytes` counts the trailer section.
 */
#include <stdint.h>
#include <string.h>

#include "http/h1.h"

#define CHUNK_SIZE_MAX   ((uint64_t)1 << 62)
#define CHUNK_DIGITS_MAX 16

enum {
    ST_SIZE0,        /* first hex digit of a chunk-size */
    ST_SIZE,         /* further hex digits */
    ST_SIZE_WS,      /* BWS after the size: only ';' may follow */
    ST_EXT_PRE_NAME, /* after ';' */
    ST_EXT_NAME,
    ST_EXT_NAME_WS, /* BWS after a name: '=' or ';' */
    ST_EXT_PRE_VAL, /* after '=' */
    ST_EXT_TOKVAL,
    ST_EXT_QSTR,
    ST_EXT_QESC,   /* after a backslash in a quoted-string */
    ST_EXT_QEND,   /* right after the closing quote */
    ST_EXT_VAL_WS, /* BWS after a value: only ';' may follow */
    ST_SIZE_LF,    /* CR of the size line seen */
    ST_DATA,
    ST_DATA_CR,
    ST_DATA_LF,
    ST_TR_START, /* start of a trailer line, or of the final CRLF */
    ST_TR_NAME,
    ST_TR_VALUE,
    ST_TR_LF,
    ST_END_LF, /* CR of the final empty line seen */
    ST_DONE,
    ST_ERR400,
    ST_ERR431,
};

/* Character classes. */
enum {
    C_TCHAR = 0x01,  /* token */
    C_VALUE = 0x02,  /* field-value byte: VCHAR, obs-text, SP, HTAB */
    C_QDTEXT = 0x04, /* quoted-string text: HTAB, SP, VCHAR except '"' '\', obs-text */
    C_HEX = 0x08,
};

static const uint8_t ctab[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00-0f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10-1f */
    0x06, 0x07, 0x02, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x06, 0x06, 0x07, 0x07, 0x06, 0x07, 0x07, 0x06, /* 20-2f */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
    0x0f, 0x0f, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 30-3f */
    0x06, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 40-4f */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x06, 0x02, 0x06, 0x07, 0x07, /* 50-5f */
    0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 60-6f */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x06, 0x07, 0x06, 0x07, 0x00, /* 70-7f */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 80-8f */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 90-9f */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* a0-af */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* b0-bf */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* c0-cf */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* d0-df */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* e0-ef */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* f0-ff */
};

#define IS(c, cls) (ctab[(uint8_t)(c)] & (cls))
#define IS_WS(c)   ((c) == ' ' || (c) == '\t')

void h1_chunked_init(h1_chunked *d)
{
    memset(d, 0, sizeof *d);
    d->state = ST_SIZE0;
}

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/*
 * One framing byte: the next state, or ST_ERR400 / ST_ERR431.  Never called
 * in ST_DATA, ST_DONE or the error states.
 */
static int step(h1_chunked *d, char c)
{
    int s = d->state;

    if (s <= ST_EXT_VAL_WS && c != '\r' && ++d->line_len > H1_CHUNK_LINE_MAX)
        return ST_ERR400;
    switch (s) {
    case ST_SIZE0:
    case ST_SIZE:
        if (IS(c, C_HEX)) {
            unsigned h = hexval(c);

            if (++d->size_digits > CHUNK_DIGITS_MAX || d->remaining > (CHUNK_SIZE_MAX - h) / 16)
                return ST_ERR400;
            d->remaining = d->remaining * 16 + h;
            return ST_SIZE;
        }
        if (s == ST_SIZE0)
            return ST_ERR400; /* empty size, sign, space, ... */
        if (c == '\r')
            return ST_SIZE_LF;
        if (c == ';')
            return ST_EXT_PRE_NAME;
        return IS_WS(c) ? ST_SIZE_WS : ST_ERR400;
    case ST_SIZE_WS:
    case ST_EXT_NAME_WS:
    case ST_EXT_VAL_WS:
        if (IS_WS(c))
            return s;
        if (c == ';')
            return ST_EXT_PRE_NAME;
        return s == ST_EXT_NAME_WS && c == '=' ? ST_EXT_PRE_VAL : ST_ERR400;
    case ST_EXT_PRE_NAME:
        if (IS_WS(c))
            return s;
        return IS(c, C_TCHAR) ? ST_EXT_NAME : ST_ERR400;
    case ST_EXT_NAME:
    case ST_EXT_TOKVAL:
    case ST_EXT_QEND:
        if (s != ST_EXT_QEND && IS(c, C_TCHAR))
            return s;
        if (s == ST_EXT_NAME && c == '=')
            return ST_EXT_PRE_VAL;
        if (c == ';')
            return ST_EXT_PRE_NAME;
        if (c == '\r')
            return ST_SIZE_LF;
        if (IS_WS(c))
            return s == ST_EXT_NAME ? ST_EXT_NAME_WS : ST_EXT_VAL_WS;
        return ST_ERR400;
    case ST_EXT_PRE_VAL:
        if (IS_WS(c))
            return s;
        if (c == '"')
            return ST_EXT_QSTR;
        return IS(c, C_TCHAR) ? ST_EXT_TOKVAL : ST_ERR400;
    case ST_EXT_QSTR:
        if (c == '"')
            return ST_EXT_QEND;
        if (c == '\\')
            return ST_EXT_QESC;
        return IS(c, C_QDTEXT) ? s : ST_ERR400;
    case ST_EXT_QESC:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return IS(c, C_VALUE) ? ST_EXT_QSTR : ST_ERR400;
    case ST_SIZE_LF:
        if (c != '\n')
            return ST_ERR400;
        if (d->remaining == 0) {
            d->trailer_bytes = 0;
            return ST_TR_START; /* last-chunk */
        }
        return ST_DATA;
    case ST_DATA_CR: return c == '\r' ? ST_DATA_LF : ST_ERR400;
    case ST_DATA_LF:
        if (c != '\n')
            return ST_ERR400;
        d->line_len = 0;
        d->size_digits = 0;
        return ST_SIZE0;
    case ST_TR_START:
        if (c == '\r')
            return ST_END_LF;
        /* whitespace here is obs-fold, ':' an empty name */
        if (++d->trailer_bytes > H1_TRAILER_MAX)
            return ST_ERR431;
        return IS(c, C_TCHAR) ? ST_TR_NAME : ST_ERR400;
    case ST_TR_NAME:
    case ST_TR_VALUE:
    case ST_TR_LF:
        if (++d->trailer_bytes > H1_TRAILER_MAX)
            return ST_ERR431;
        if (s == ST_TR_LF)
            return c == '\n' ? ST_TR_START : ST_ERR400;
        if (s == ST_TR_NAME) {
            if (IS(c, C_TCHAR))
                return s;
            return c == ':' ? ST_TR_VALUE : ST_ERR400; /* incl. space before ':' */
        }
        if (IS(c, C_VALUE))
            return s;
        return c == '\r' ? ST_TR_LF : ST_ERR400;
    case ST_END_LF: return c == '\n' ? ST_DONE : ST_ERR400;
    default: return ST_ERR400;
    }
}

int h1_chunked_feed(h1_chunked *d, const char *in, size_t n, size_t *consumed, char *out,
                    size_t out_cap, size_t *out_n)
{
    size_t i = 0, o = 0;

    while (i < n && d->state < ST_DONE) {
        if (d->state == ST_DATA) {
            size_t k = n - i;

            if ((uint64_t)k > d->remaining)
                k = (size_t)d->remaining;
            if (k > out_cap - o)
                k = out_cap - o;
            if (k == 0)
                break; /* out is full: the caller decides */
            memcpy(out + o, in + i, k);
            i += k;
            o += k;
            d->remaining -= k;
            if (d->remaining == 0)
                d->state = ST_DATA_CR;
            continue;
        }
        d->state = step(d, in[i++]);
    }
    *consumed = i;
    *out_n = o;
    switch (d->state) {
    case ST_DONE: return 1;
    case ST_ERR400: return -400;
    case ST_ERR431: return -431;
    default: return 0;
    }
}
