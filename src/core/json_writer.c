/*
 * json_writer.c - the streaming JSON writer (tern/json.h).
 *
 * Commas and nesting are tracked in fixed arrays inside tern_jw, so writing a
 * value allocates nothing beyond the output buffer's growth.  The first error
 * sticks: later calls return it and write nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tern/json.h"

void tern_jw_init(tern_jw *w, tern_buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

static int fail(tern_jw *w, int err)
{
    if (w->err == 0)
        w->err = err;
    return w->err;
}

/* Emits the separator before a value (or key) at the current level. */
static int before_value(tern_jw *w, int is_key)
{
    if (w->err)
        return w->err;
    if (w->depth > 0 && w->in_object[w->depth]) {
        if (is_key == w->after_key) /* key expected but value given, or vice versa */
            return fail(w, TERN_ESTATE);
        if (!is_key) {
            w->after_key = 0;
            return 0;
        }
    } else if (is_key) {
        return fail(w, TERN_ESTATE);
    } else if (w->depth == 0 && w->need_comma[0]) {
        return fail(w, TERN_ESTATE); /* a second top-level value */
    }
    if (w->need_comma[w->depth]) {
        int rc = tern_buf_append(w->out, ",", 1);
        if (rc)
            return fail(w, rc);
    }
    w->need_comma[w->depth] = 1;
    if (is_key)
        w->after_key = 1;
    return 0;
}

static int put(tern_jw *w, const char *s, size_t n)
{
    int rc = tern_buf_append(w->out, s, n);

    return rc ? fail(w, rc) : 0;
}

static int open_container(tern_jw *w, char c, int is_obj)
{
    int rc = before_value(w, 0);

    if (rc)
        return rc;
    if (w->depth >= TERN_JW_MAX_DEPTH)
        return fail(w, TERN_ETOOBIG);
    rc = put(w, &c, 1);
    if (rc)
        return rc;
    w->depth++;
    w->need_comma[w->depth] = 0;
    w->in_object[w->depth] = (unsigned char)is_obj;
    return 0;
}

static int close_container(tern_jw *w, char c, int is_obj)
{
    if (w->err)
        return w->err;
    if (w->depth == 0 || w->in_object[w->depth] != is_obj || (is_obj && w->after_key))
        return fail(w, TERN_ESTATE);
    w->depth--;
    return put(w, &c, 1);
}

int tern_jw_obj_begin(tern_jw *w)
{
    return open_container(w, '{', 1);
}
int tern_jw_obj_end(tern_jw *w)
{
    return close_container(w, '}', 1);
}
int tern_jw_arr_begin(tern_jw *w)
{
    return open_container(w, '[', 0);
}
int tern_jw_arr_end(tern_jw *w)
{
    return close_container(w, ']', 0);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

/*
 * 1 when none of the 8 bytes at p needs attention: all are printable ASCII
 * other than '"' and '\\'.  SWAR: a byte below 0x20, equal to '"' or '\\',
 * or with its top bit set, sets the top bit of its lane in the mask (a
 * false alarm only sends the bytes through the exact loop).
 */
static int plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t x, q, b;

    memcpy(&x, p, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return (((x - ones * 0x20) | (q - ones) | (b - ones) | x) & high) == 0;
}

int tern_json_escape(tern_buf *out, tern_str s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0, run = 0;
    int rc;

    while (i < s.n) {
        unsigned char c = p[i];
        char esc[8];
        size_t en = 0, l;

        if (i + 8 <= s.n && plain8(p + i)) {
            i += 8;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            l = utf8_len(p + i, s.n - i);
            if (l == 0)
                return TERN_EINVAL;
            /* U+2028 / U+2029: E2 80 A8 / E2 80 A9 */
            if (!(l == 3 && c == 0xE2 && p[i + 1] == 0x80 &&
                  (p[i + 2] == 0xA8 || p[i + 2] == 0xA9))) {
                i += l;
                continue;
            }
            memcpy(esc, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            en = 6;
            l = 3;
        } else {
            l = 1;
            esc[0] = '\\';
            en = 2;
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                en = 6;
            }
        }
        rc = tern_buf_append(out, s.p + run, i - run);
        if (rc == 0)
            rc = tern_buf_append(out, esc, en);
        if (rc)
            return rc;
        i += l;
        run = i;
    }
    return tern_buf_append(out, s.p + run, s.n - run);
}

static int put_string(tern_jw *w, tern_str s)
{
    size_t mark = w->out->len;
    int rc = put(w, "\"", 1);

    if (rc)
        return rc;
    rc = tern_json_escape(w->out, s);
    if (rc) {
        w->out->len = mark;
        return fail(w, rc);
    }
    return put(w, "\"", 1);
}

int tern_jw_key(tern_jw *w, tern_str key)
{
    int rc = before_value(w, 1);

    if (rc)
        return rc;
    rc = put_string(w, key);
    return rc ? rc : put(w, ":", 1);
}

int tern_jw_str(tern_jw *w, tern_str s)
{
    int rc = before_value(w, 0);

    return rc ? rc : put_string(w, s);
}

int tern_jw_cstr(tern_jw *w, const char *s)
{
    return s ? tern_jw_str(w, tern_str_c(s)) : tern_jw_null(w);
}

int tern_jw_int(tern_jw *w, int64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int rc = before_value(w, 0);

    if (rc)
        return rc;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    return put(w, tmp + i, sizeof tmp - i);
}

int tern_jw_double(tern_jw *w, double v)
{
    char tmp[32];
    int n = 0, rc;

    if (!isfinite(v))
        return fail(w, TERN_EINVAL);
    rc = before_value(w, 0);
    if (rc)
        return rc;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* Keep it a real for readers that type numbers: 2.0 is "2.0", not "2". */
    if (strpbrk(tmp, ".e") == NULL && n + 2 < (int)sizeof tmp) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    return put(w, tmp, (size_t)n);
}

int tern_jw_bool(tern_jw *w, int v)
{
    int rc = before_value(w, 0);

    return rc ? rc : (v ? put(w, "true", 4) : put(w, "false", 5));
}

int tern_jw_null(tern_jw *w)
{
    int rc = before_value(w, 0);

    return rc ? rc : put(w, "null", 4);
}

int tern_jw_raw(tern_jw *w, tern_str json)
{
    int rc = before_value(w, 0);

    return rc ? rc : put(w, json.p, json.n);
}

int tern_jw_finish(tern_jw *w)
{
    if (w->err)
        return w->err;
    if (w->depth != 0 || !w->need_comma[0])
        return fail(w, TERN_ESTATE);
    return 0;
}
