/*
 * json.c - the strict JSON checker and the checked jansson parse
 * (tern_json_check, tern_json_parse; tern/body.h).
 *
 * tern_json_check is a hand-written scanner for RFC 8259 JSON-text that runs
 * on every JSON request body before jansson sees it.  Invariants:
 *   - no recursion and no allocation: nesting is an explicit stack of one bit
 *     per level (object or array) in a fixed 128-byte array, so the scanner's
 *     stack use does not depend on the input; max_depth is at most
 *     JSON_DEPTH_CAP (1024), which also keeps jansson (recursive, with its
 *     own limit of 2048) well inside a coroutine's 256 KiB stack;
 *   - linear time, one pass, every byte looked at once (a second pass over
 *     the prefix happens only on failure, to compute line and column);
 *   - strict: UTF-8 is validated everywhere (no overlongs, no surrogates, no
 *     code point above U+10FFFF, no truncated sequence), escapes are the
 *     RFC's eight plus \uXXXX with surrogates paired high-then-low, NUL is
 *     rejected raw and as \u0000, raw control characters in strings are
 *     rejected, numbers follow the RFC grammar exactly, and whitespace is
 *     SP, HTAB, LF and CR only;
 *   - an error names the first byte at which the text cannot be valid JSON,
 *     with a short static English reason.  Line and column are 1-based;
 *     lines split on LF; the column counts code points.  For an invalid
 *     number, an invalid literal and an unterminated string the position is
 *     the start of the token, since that is what the reader must look at.
 *
 * Speed: one table lookup classifies a byte; plain string bytes (printable
 * ASCII other than '"' and '\') are skipped 16 at a time with SSE2, else
 * eight at a time with a SWAR test (core/strscan.h), so a string costs about
 * one load per 16 or 8 bytes.
 *
 * tern_json_parse builds jansson values from the text itself: jansson's own
 * lexer would check everything a second time, a byte at a time.  Valid text
 * is read once (jf_value, "The one-pass parse" below: the checker's scanners
 * and the builder's decoders in one recursive descent).  On any failure the
 * partial value is dropped and the two-pass path runs: the checker, then the
 * builder of checked text (see "Building jansson values" below), so errors
 * and their precedence are the checker's.  Only three failures can remain
 * after a successful check: a duplicate key, an integer outside int64 or a
 * real beyond double (both "number out of range", as jansson reports them),
 * and allocation; the first two are positioned at the start of their token.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/strscan.h"
#include "tern/body.h"

#define JSON_DEPTH_CAP 1024

/* Character classes (one table lookup per byte). */
enum {
    J_WS = 0x01,    /* insignificant whitespace: SP HTAB LF CR */
    J_PLAIN = 0x02, /* a string byte needing no attention: 0x20-0x7f but '"' and '\' */
    J_DIGIT = 0x04,
    J_WORD = 0x08, /* may not directly follow a number or literal: [0-9A-Za-z.+_-] */
};

/* clang-format off */
static const uint8_t jtab[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, /* 00-0f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10-1f */
    0x03, 0x02, 0x00, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0a, 0x02, 0x0a, 0x0a, 0x02, /* 20-2f */
    0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 30-3f */
    0x02, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, /* 40-4f */
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x02, 0x00, 0x02, 0x02, 0x0a, /* 50-5f */
    0x02, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, /* 60-6f */
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x02, 0x02, 0x02, 0x02, 0x02, /* 70-7f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 80-8f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 90-9f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* a0-af */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* b0-bf */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* c0-cf */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* d0-df */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* e0-ef */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* f0-ff */
};
/* clang-format on */

#define JIS(c, cls) (jtab[(uint8_t)(c)] & (cls))

/* The reasons, one place (docs/json.md lists them). */
static const char R_JSON_VALUE[] = "expected a JSON value";
static const char R_VALUE[] = "expected a value";
static const char R_VALUE_OR_CLOSE[] = "expected a value or ']'";
static const char R_KEY[] = "expected a string key";
static const char R_KEY_OR_CLOSE[] = "expected a string key or '}'";
static const char R_COLON[] = "expected ':' after an object key";
static const char R_AFTER_MEMBER[] = "expected ',' or '}' after an object member";
static const char R_AFTER_ELEMENT[] = "expected ',' or ']' after an array element";
static const char R_TRAILING[] = "unexpected data after the JSON value";
static const char R_LITERAL[] = "invalid literal (expected true, false or null)";
static const char R_NUMBER[] = "invalid number";
static const char R_UNTERMINATED[] = "unterminated string";
static const char R_CONTROL[] = "control character in a string (must be escaped)";
static const char R_ESCAPE[] = "invalid escape in a string";
static const char R_SURROGATE[] = "unpaired surrogate in a \\u escape";
static const char R_NUL[] = "NUL characters are not allowed";
static const char R_UTF8[] = "invalid UTF-8";
static const char R_DEPTH[] = "nesting deeper than the limit";
static const char R_DEPTH_ARG[] = "max_depth above 1024";
static const char R_DUPLICATE[] = "duplicate object key";
static const char R_RANGE[] = "number out of range";
static const char R_NOMEM[] = "out of memory";

#define FAIL SIZE_MAX /* "error" return of the scan helpers */

/* ------------------------------------------------------------------------ */
/* Positions                                                                  */

/* Fills *err for the byte offset `at` of s (only called on failure). */
static void set_error(tern_json_error *err, const uint8_t *s, size_t n, size_t at,
                      const char *reason)
{
    size_t line_start = 0;
    unsigned line = 1, column = 1;

    if (err == NULL)
        return;
    if (at > n)
        at = n;
    for (size_t i = 0; i < at; i++) {
        if (s[i] == '\n') {
            if (line < UINT_MAX)
                line++;
            line_start = i + 1;
        }
    }
    /* Code points: count every byte that does not continue a sequence. */
    for (size_t i = line_start; i < at; i++)
        if ((s[i] & 0xC0) != 0x80 && column < UINT_MAX)
            column++;
    err->line = line;
    err->column = column;
    err->offset = at;
    err->reason = reason;
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                    */

/* Value of a hex digit, or -1. */
static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads 4 hex digits at s[i..): 1 with *cp set, 0 if one is not hex, -1 if
 * the input ends first. */
static int hex4(const uint8_t *s, size_t i, size_t n, unsigned *cp)
{
    unsigned v = 0;

    for (size_t k = 0; k < 4; k++) {
        int h;

        if (i + k >= n)
            return -1;
        h = hexval(s[i + k]);
        if (h < 0)
            return 0;
        v = v << 4 | (unsigned)h;
    }
    *cp = v;
    return 1;
}

/*
 * Length of the well-formed UTF-8 sequence at s[i..n) whose first byte is
 * >= 0x80, or 0.  The second byte's range excludes overlongs (E0 80-9F,
 * F0 80-8F), surrogates (ED A0-BF) and code points above U+10FFFF (F4 90+).
 */
static inline size_t utf8_seq(const uint8_t *s, size_t i, size_t n)
{
    uint8_t c = s[i], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0xC2) /* a continuation byte, or C0/C1 (always overlong) */
        return 0;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/*
 * Scans a string whose opening quote is at s[q].  Returns the offset just
 * past the closing quote, or FAIL with *at and *reason set.  *escaped is set
 * to 1 when the string holds a backslash escape (left alone otherwise).
 */
static inline size_t scan_string(const uint8_t *s, size_t q, size_t n, size_t *at,
                                 const char **reason, int *escaped)
{
    size_t i = q + 1;

    for (;;) {
        unsigned cp, lo;
        int r;

        i = tern__str_special(s, i, n); /* skip plain bytes */
        if (i == n)
            goto unterminated;

        if (s[i] == '"')
            return i + 1;
        if (s[i] < 0x20) {
            *at = i;
            *reason = s[i] == 0 ? R_NUL : R_CONTROL;
            return FAIL;
        }
        if (s[i] >= 0x80) {
            size_t len = utf8_seq(s, i, n);

            if (len == 0) {
                *at = i;
                *reason = R_UTF8;
                return FAIL;
            }
            i += len;
            continue;
        }

        /* A backslash at s[i]. */
        *escaped = 1;
        if (i + 1 == n)
            goto unterminated;
        switch (s[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': i += 2; continue;
        case 'u': break;
        default: goto bad_escape;
        }
        r = hex4(s, i + 2, n, &cp);
        if (r < 0)
            goto unterminated;
        if (r == 0)
            goto bad_escape;
        if (cp == 0) {
            *at = i;
            *reason = R_NUL;
            return FAIL;
        }
        if ((cp & 0xFC00) == 0xDC00) /* a low surrogate first */
            goto unpaired;
        if ((cp & 0xFC00) != 0xD800) {
            i += 6;
            continue;
        }
        /* A high surrogate: a \u escape of a low one must follow. */
        if (i + 6 == n)
            goto unterminated;
        if (s[i + 6] != '\\')
            goto unpaired;
        if (i + 7 == n)
            goto unterminated;
        if (s[i + 7] != 'u')
            goto unpaired;
        r = hex4(s, i + 8, n, &lo);
        if (r < 0)
            goto unterminated;
        if (r == 0) {
            i += 6; /* the second escape is the bad one */
            goto bad_escape;
        }
        if ((lo & 0xFC00) != 0xDC00)
            goto unpaired;
        i += 12;
    }

unterminated:
    *at = q;
    *reason = R_UNTERMINATED;
    return FAIL;
bad_escape:
    *at = i;
    *reason = R_ESCAPE;
    return FAIL;
unpaired:
    *at = i;
    *reason = R_SURROGATE;
    return FAIL;
}

/* ------------------------------------------------------------------------ */
/* Numbers and literals                                                       */

/*
 * Scans `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` at s[i]
 * (a '-' or a digit).  Returns the offset past it, or FAIL.  A number may not
 * run into a letter, digit, '.', '+', '-' or '_' ("01", "1.2.3", "0x1f",
 * "1e5e5"): the whole token is reported as an invalid number.
 */
static size_t scan_number(const uint8_t *s, size_t i, size_t n)
{
    if (s[i] == '-')
        i++;
    if (i == n || !JIS(s[i], J_DIGIT))
        return FAIL;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && JIS(s[i], J_DIGIT))
            i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i == n || !JIS(s[i], J_DIGIT))
            return FAIL;
        while (i < n && JIS(s[i], J_DIGIT))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i == n || !JIS(s[i], J_DIGIT))
            return FAIL;
        while (i < n && JIS(s[i], J_DIGIT))
            i++;
    }
    if (i < n && JIS(s[i], J_WORD))
        return FAIL;
    return i;
}

/* Scans the literal `lit` (true, false, null) at s[i]: offset past it or FAIL. */
static size_t scan_literal(const uint8_t *s, size_t i, size_t n, const char *lit, size_t len)
{
    if (n - i < len || memcmp(s + i, lit, len) != 0)
        return FAIL;
    i += len;
    if (i < n && JIS(s[i], J_WORD))
        return FAIL;
    return i;
}

/* ------------------------------------------------------------------------ */
/* The checker                                                                */

/*
 * A state machine with three states, written as labels:
 *   value:       a value must start at s[i] (value_reason says what to report
 *                if it does not);
 *   key:         an object key must start at s[i] (key_reason likewise);
 *   after_value: a value just ended at s[i]; what may follow depends on the
 *                innermost open container (bit `depth - 1` of `objects`).
 * Whitespace is skipped before entering a state, except for after_value,
 * which skips it itself.
 */
int tern_json_check(tern_str text, unsigned max_depth, tern_json_error *err)
{
    const uint8_t *s = (const uint8_t *)text.p;
    size_t n = text.n, i = 0, at = 0;
    uint64_t objects[JSON_DEPTH_CAP / 64] = { 0 }; /* bit d: level d+1 is an object */
    unsigned depth = 0;
    int escaped = 0; /* not needed here */
    const char *reason = R_JSON_VALUE, *value_reason = R_JSON_VALUE, *key_reason = R_KEY;

    if (max_depth > JSON_DEPTH_CAP) {
        if (err != NULL)
            *err = (tern_json_error){ 0, 0, 0, R_DEPTH_ARG };
        return TERN_EINVAL;
    }
    if (s == NULL)
        n = 0;
    while (i < n && JIS(s[i], J_WS))
        i++;

value:
    if (i == n) {
        at = i;
        reason = value_reason;
        goto fail;
    }
    switch (s[i]) {
    case '{':
    case '[': {
        int is_object = s[i] == '{';

        if (depth == max_depth) {
            at = i;
            reason = R_DEPTH;
            goto too_deep;
        }
        if (is_object)
            objects[depth >> 6] |= 1ull << (depth & 63);
        else
            objects[depth >> 6] &= ~(1ull << (depth & 63));
        depth++;
        i++;
        while (i < n && JIS(s[i], J_WS))
            i++;
        if (i < n && s[i] == (is_object ? '}' : ']')) { /* empty container */
            i++;
            depth--;
            goto after_value;
        }
        if (is_object) {
            key_reason = R_KEY_OR_CLOSE;
            goto key;
        }
        value_reason = R_VALUE_OR_CLOSE;
        goto value;
    }
    case '"':
        i = scan_string(s, i, n, &at, &reason, &escaped);
        if (i == FAIL)
            goto fail;
        goto after_value;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        at = i;
        i = scan_number(s, i, n);
        if (i == FAIL) {
            reason = R_NUMBER;
            goto fail;
        }
        goto after_value;
    case 't':
    case 'f':
    case 'n':
        at = i;
        if (s[i] == 't')
            i = scan_literal(s, i, n, "true", 4);
        else if (s[i] == 'f')
            i = scan_literal(s, i, n, "false", 5);
        else
            i = scan_literal(s, i, n, "null", 4);
        if (i == FAIL) {
            reason = R_LITERAL;
            goto fail;
        }
        goto after_value;
    default:
        at = i;
        reason = value_reason;
        goto fail;
    }

key:
    if (i == n || s[i] != '"') {
        at = i;
        reason = key_reason;
        goto fail;
    }
    i = scan_string(s, i, n, &at, &reason, &escaped);
    if (i == FAIL)
        goto fail;
    while (i < n && JIS(s[i], J_WS))
        i++;
    if (i == n || s[i] != ':') {
        at = i;
        reason = R_COLON;
        goto fail;
    }
    i++;
    while (i < n && JIS(s[i], J_WS))
        i++;
    value_reason = R_VALUE;
    goto value;

after_value:
    while (i < n && JIS(s[i], J_WS))
        i++;
    if (depth == 0) {
        if (i == n)
            return 0;
        at = i;
        reason = R_TRAILING;
        goto fail;
    }
    if (objects[(depth - 1) >> 6] >> ((depth - 1) & 63) & 1) {
        if (i < n && s[i] == ',') {
            i++;
            while (i < n && JIS(s[i], J_WS))
                i++;
            key_reason = R_KEY;
            goto key;
        }
        if (i < n && s[i] == '}') {
            i++;
            depth--;
            goto after_value;
        }
        reason = R_AFTER_MEMBER;
    } else {
        if (i < n && s[i] == ',') {
            i++;
            while (i < n && JIS(s[i], J_WS))
                i++;
            value_reason = R_VALUE;
            goto value;
        }
        if (i < n && s[i] == ']') {
            i++;
            depth--;
            goto after_value;
        }
        reason = R_AFTER_ELEMENT;
    }
    at = i;

fail:
    set_error(err, s, n, at, reason);
    return TERN_EINVAL;
too_deep:
    set_error(err, s, n, at, reason);
    return TERN_ETOOBIG;
}

/* ------------------------------------------------------------------------ */
/* The parse                                                                  */

/* ------------------------------------------------------------------------ */
/* Building jansson values from checked text                                  */

/*
 * After a successful check the text is known to be valid JSON within the
 * depth limit, so building the values needs no error handling for syntax:
 * only a duplicate key, a number that does not fit, and allocation can
 * fail.  Strings are decoded here (escapes to UTF-8) and handed to jansson
 * with its _nocheck constructors: the checker has validated the UTF-8
 * already, so jansson's own lexer (a byte-at-a-time stream reader that
 * checks everything a second time) is not needed.  Recursion depth is the
 * nesting depth, bounded by max_depth (at most JSON_DEPTH_CAP), with a small
 * frame.
 */
typedef struct jb {
    const uint8_t *s;
    size_t n, i;
    size_t bad_at;   /* where a duplicate or range error starts */
    const char *bad; /* R_DUPLICATE, R_RANGE, R_NOMEM */
    char *scratch;   /* decoded strings */
    size_t cap;
} jb;

static void jb_ws(jb *b)
{
    while (b->i < b->n && JIS(b->s[b->i], J_WS))
        b->i++;
}

static unsigned hex4_checked(const uint8_t *p)
{
    unsigned v = 0;

    for (int k = 0; k < 4; k++) {
        unsigned c = p[k];

        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/*
 * Decodes the string at b->i (on its quote); *out points at the bytes:
 * into the text itself when the string has no escape, else into scratch.
 */
static int jb_string(jb *b, const char **out, size_t *len)
{
    size_t start = ++b->i, end = tern__str_qb(b->s, start, b->n), o;

    if (b->s[end] == '"') {
        *out = (const char *)b->s + start;
        *len = end - start;
        b->i = end + 1;
        return 0;
    }
    /* An escape at end: find the closing quote, stepping over escapes
     * (checked: well formed, and hex digits are neither '"' nor '\\'). */
    do
        end = tern__str_qb(b->s, end + 2, b->n);
    while (b->s[end] == '\\');
    if (end - start > b->cap) { /* decoding never grows a string */
        char *p = tern_realloc(b->scratch, end - start);

        if (p == NULL)
            return TERN_ENOMEM;
        b->scratch = p;
        b->cap = end - start;
    }
    o = 0;
    for (size_t i = start; i < end;) {
        size_t run = tern__str_qb(b->s, i, end + 1) - i; /* plain bytes up to the next '\\' */
        unsigned c;

        memcpy(b->scratch + o, b->s + i, run);
        o += run;
        i += run;
        if (i == end)
            break;
        c = b->s[i + 1];
        i += 2;
        switch (c) {
        case 'b': b->scratch[o++] = '\b'; break;
        case 'f': b->scratch[o++] = '\f'; break;
        case 'n': b->scratch[o++] = '\n'; break;
        case 'r': b->scratch[o++] = '\r'; break;
        case 't': b->scratch[o++] = '\t'; break;
        case 'u': {
            unsigned cp = hex4_checked(b->s + i);

            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* checked: a low surrogate follows */
                cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4_checked(b->s + i + 2) - 0xdc00);
                i += 6;
            }
            if (cp < 0x80) {
                b->scratch[o++] = (char)cp;
            } else if (cp < 0x800) {
                b->scratch[o++] = (char)(0xc0 | cp >> 6);
                b->scratch[o++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                b->scratch[o++] = (char)(0xe0 | cp >> 12);
                b->scratch[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                b->scratch[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                b->scratch[o++] = (char)(0xf0 | cp >> 18);
                b->scratch[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                b->scratch[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                b->scratch[o++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default: b->scratch[o++] = (char)c; /* " \ / */
        }
    }
    *out = b->scratch;
    *len = o;
    b->i = end + 1;
    return 0;
}

/*
 * The value of the checked number s[start..end); `real` says whether it has
 * a fraction or an exponent.  NULL with b->bad set if it does not fit, NULL
 * with b->bad unchanged (NULL) when out of memory.
 */
static json_t *jb_number_span(jb *b, size_t start, size_t end, int real)
{
    char buf[400], *txt;
    double real_value;

    if (!real) {
        const uint8_t *p = b->s + start;
        int neg = *p == '-';
        uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

        for (p += neg; p < b->s + end; p++) {
            unsigned d = *p - '0';

            if (v > (lim - d) / 10) {
                b->bad = R_RANGE;
                b->bad_at = start;
                return NULL;
            }
            v = v * 10 + d;
        }
        return json_integer(neg ? (json_int_t)(0 - v) : (json_int_t)v);
    }
    /* strtod wants a terminated copy; a very long real goes to the heap. */
    txt = end - start < sizeof buf ? buf : tern_malloc(end - start + 1);
    if (txt == NULL)
        return NULL;
    memcpy(txt, b->s + start, end - start);
    txt[end - start] = '\0';
    real_value = strtod(txt, NULL);
    if (txt != buf)
        tern_free(txt);
    if (isinf(real_value)) {
        b->bad = R_RANGE;
        b->bad_at = start;
        return NULL;
    }
    return json_real(real_value);
}

static json_t *jb_number(jb *b)
{
    size_t start = b->i, end = start;
    int real = 0;

    while (end < b->n && (JIS(b->s[end], J_DIGIT) || b->s[end] == '-' || b->s[end] == '+' ||
                          b->s[end] == '.' || b->s[end] == 'e' || b->s[end] == 'E')) {
        real |= b->s[end] == '.' || b->s[end] == 'e' || b->s[end] == 'E';
        end++;
    }
    b->i = end;
    return jb_number_span(b, start, end, real);
}

static json_t *jb_value(jb *b)
{
    const char *str;
    size_t len;
    json_t *v;

    jb_ws(b);
    switch (b->s[b->i]) {
    case '{':
        v = json_object();
        b->i++;
        jb_ws(b);
        if (b->s[b->i] == '}') {
            b->i++;
            return v;
        }
        while (v != NULL) {
            size_t key_at, size;
            char small[64], *key;
            json_t *item;
            int dup;

            jb_ws(b);
            key_at = b->i;
            if (jb_string(b, &str, &len) != 0)
                break;
            /* A key decoded into scratch is copied: the value's strings
             * reuse scratch.  A key in the text stays valid. */
            key = (char *)str;
            if (str == b->scratch) {
                key = len < sizeof small ? small : tern_malloc(len + 1);
                if (key == NULL)
                    break;
                memcpy(key, str, len);
            }
            jb_ws(b);
            b->i++; /* ':' */
            item = jb_value(b);
            /*
             * A duplicate is told by the size not growing (one hash lookup
             * instead of a lookup before the insert).  When the value failed
             * it is looked up: a duplicate key is reported before anything
             * in its value, as it comes first in the text.
             */
            size = json_object_size(v);
            if (item == NULL) {
                dup = json_object_getn(v, key, len) != NULL;
            } else if (json_object_setn_new_nocheck(v, key, len, item) != 0) {
                dup = 0;
                b->bad = NULL; /* out of memory */
                item = NULL;
            } else {
                dup = json_object_size(v) == size;
            }
            if (key != str && key != small)
                tern_free(key);
            if (dup) {
                b->bad = R_DUPLICATE;
                b->bad_at = key_at;
                break;
            }
            if (item == NULL)
                break;
            jb_ws(b);
            if (b->s[b->i++] == '}')
                return v;
            /* ',' */
        }
        json_decref(v);
        return NULL;
    case '[':
        v = json_array();
        b->i++;
        jb_ws(b);
        if (b->s[b->i] == ']') {
            b->i++;
            return v;
        }
        while (v != NULL) {
            json_t *item = jb_value(b);

            if (item == NULL || json_array_append_new(v, item) != 0)
                break;
            jb_ws(b);
            if (b->s[b->i++] == ']')
                return v;
        }
        json_decref(v);
        return NULL;
    case '"':
        if (jb_string(b, &str, &len) != 0)
            return NULL;
        return json_stringn_nocheck(str, len);
    case 't': b->i += 4; return json_true();
    case 'f': b->i += 5; return json_false();
    case 'n': b->i += 4; return json_null();
    default: return jb_number(b);
    }
}

/* ------------------------------------------------------------------------ */
/* The one-pass parse                                                         */

static inline size_t skip_ws(const uint8_t *s, size_t i, size_t n)
{
    while (i < n && JIS(s[i], J_WS))
        i++;
    return i;
}

/*
 * After a member or element: a ',' (returns 1, b->i at the next one, past
 * whitespace) or the closing byte (returns 0, b->i just past it); anything
 * else is invalid (-1).
 */
static inline int jf_after(jb *b, uint8_t close)
{
    size_t i = skip_ws(b->s, b->i, b->n);

    if (i < b->n && b->s[i] == ',') {
        b->i = skip_ws(b->s, i + 1, b->n);
        return 1;
    }
    if (i < b->n && b->s[i] == close) {
        b->i = i + 1;
        return 0;
    }
    return -1;
}

/*
 * Checks and builds in one pass over the text, with the checker's scanners
 * (scan_string, scan_number, scan_literal) and the builder's decoders
 * (jb_string, jb_number_span).  The value starts at b->i (no whitespace
 * before it); on success b->i is just past it.  Recursion depth is the
 * nesting depth, at most max_depth (depth_left counts down), with a frame
 * no larger than jb_value's.
 *
 * Returns NULL on any failure (invalid text, too deep, a duplicate key, a
 * number out of range, no memory) without saying which: tern_json_parse
 * then drops what was built and runs the check and the build of checked
 * text, which report every error exactly as they always have (a syntax
 * error anywhere wins over a duplicate key or a range error before it).
 * Valid text, the common case, is read once.
 */
static json_t *jf_value(jb *b, unsigned depth_left)
{
    const uint8_t *s = b->s;
    size_t n = b->n, i = b->i, end, at;
    const char *reason, *str;
    size_t len;
    int esc = 0, more;
    json_t *v;

    if (i == n)
        return NULL;
    switch (s[i]) {
    case '{':
        if (depth_left == 0 || (v = json_object()) == NULL)
            return NULL;
        i = skip_ws(s, i + 1, n);
        if (i < n && s[i] == '}') {
            b->i = i + 1;
            return v;
        }
        for (;;) {
            char *key = NULL; /* a copy of an escaped key (the value reuses scratch) */
            json_t *item;
            size_t size;

            if (i == n || s[i] != '"')
                break;
            esc = 0;
            end = scan_string(s, i, n, &at, &reason, &esc);
            if (end == FAIL)
                break;
            if (!esc) {
                str = (const char *)s + i + 1;
                len = end - i - 2;
            } else {
                b->i = i;
                if (jb_string(b, &str, &len) != 0 || (key = tern_malloc(len + 1)) == NULL)
                    break;
                memcpy(key, str, len);
                str = key;
            }
            i = skip_ws(s, end, n);
            if (i == n || s[i] != ':') {
                tern_free(key);
                break;
            }
            b->i = skip_ws(s, i + 1, n);
            item = jf_value(b, depth_left - 1);
            size = json_object_size(v);
            /* A duplicate is told by the size not growing. */
            if (item == NULL || json_object_setn_new_nocheck(v, str, len, item) != 0 ||
                json_object_size(v) == size) {
                tern_free(key);
                break;
            }
            tern_free(key);
            more = jf_after(b, '}');
            if (more == 0)
                return v;
            if (more < 0)
                break;
            i = b->i;
        }
        json_decref(v);
        return NULL;
    case '[':
        if (depth_left == 0 || (v = json_array()) == NULL)
            return NULL;
        i = skip_ws(s, i + 1, n);
        if (i < n && s[i] == ']') {
            b->i = i + 1;
            return v;
        }
        b->i = i;
        for (;;) {
            json_t *item = jf_value(b, depth_left - 1);

            if (item == NULL || json_array_append_new(v, item) != 0)
                break;
            more = jf_after(b, ']');
            if (more == 0)
                return v;
            if (more < 0)
                break;
        }
        json_decref(v);
        return NULL;
    case '"':
        end = scan_string(s, i, n, &at, &reason, &esc);
        if (end == FAIL)
            return NULL;
        if (!esc) {
            b->i = end;
            return json_stringn_nocheck((const char *)s + i + 1, end - i - 2);
        }
        b->i = i;
        if (jb_string(b, &str, &len) != 0)
            return NULL;
        return json_stringn_nocheck(str, len);
    case 't':
    case 'f':
    case 'n':
        if (s[i] == 't') {
            end = scan_literal(s, i, n, "true", 4);
            v = json_true();
        } else if (s[i] == 'f') {
            end = scan_literal(s, i, n, "false", 5);
            v = json_false();
        } else {
            end = scan_literal(s, i, n, "null", 4);
            v = json_null();
        }
        if (end == FAIL)
            return NULL;
        b->i = end;
        return v;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        end = scan_number(s, i, n);
        if (end == FAIL)
            return NULL;
        b->i = end;
        for (size_t k = i; k < end; k++)
            if (s[k] == '.' || s[k] == 'e' || s[k] == 'E')
                return jb_number_span(b, i, end, 1);
        return jb_number_span(b, i, end, 0);
    default: return NULL;
    }
}

int tern_json_parse(tern_str text, unsigned max_depth, json_t **out, tern_json_error *err)
{
    jb b = { (const uint8_t *)text.p, text.n, 0, 0, NULL, NULL, 0 };
    json_t *v;
    int rc;

    *out = NULL;
    if (b.s != NULL && max_depth <= JSON_DEPTH_CAP) {
        b.i = skip_ws(b.s, 0, b.n);
        v = jf_value(&b, max_depth);
        if (v != NULL && skip_ws(b.s, b.i, b.n) == b.n) {
            tern_free(b.scratch);
            *out = v;
            return 0;
        }
        json_decref(v); /* NULL-safe */
        b.i = 0;
        b.bad = NULL;
        b.bad_at = 0;
    }
    /* Invalid, or failed to build: the two passes give the exact error. */
    rc = tern_json_check(text, max_depth, err);
    if (rc != 0) {
        tern_free(b.scratch);
        return rc;
    }
    v = jb_value(&b);
    tern_free(b.scratch);
    if (v != NULL) {
        *out = v;
        return 0;
    }
    if (b.bad == NULL) {
        set_error(err, b.s, text.n, b.i, R_NOMEM);
        return TERN_ENOMEM;
    }
    set_error(err, b.s, text.n, b.bad_at, b.bad);
    return TERN_EINVAL;
}
