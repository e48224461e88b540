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

#include "core/strscan.h"
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

/* Makes room for n more bytes: the common case (room already there) inline. */
static inline int room(tern_buf *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : tern_buf_reserve(b, n);
}

/*
 * Plain runs are copied straight into the buffer: room for the whole rest of
 * the string is made once at the start and again after each escape (which
 * may be longer than the bytes it replaces), so a string without escapes
 * costs one reservation and one copy.
 */
int tern_json_escape(tern_buf *out, tern_str s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0, run = 0;
    int rc = room(out, s.n);

    if (rc)
        return rc;
    for (;;) {
        unsigned char c;
        char esc[8];
        size_t en, l;

        i = tern__str_special(p, i, s.n);
        if (i == s.n)
            break;
        c = p[i];
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
        /* room holds s.n - run bytes: the run, then the escape and the rest */
        memcpy(out->p + out->len, s.p + run, i - run);
        out->len += i - run;
        i += l;
        run = i;
        rc = room(out, en + (s.n - i));
        if (rc)
            return rc;
        memcpy(out->p + out->len, esc, en);
        out->len += en;
    }
    if (s.n > run) {
        memcpy(out->p + out->len, s.p + run, s.n - run);
        out->len += s.n - run;
    }
    return 0;
}

/* Writes s quoted and escaped; on failure nothing of it stays in the buffer. */
static int put_string(tern_jw *w, tern_str s)
{
    tern_buf *out = w->out;
    size_t mark = out->len;
    int rc = room(out, s.n + 2);

    if (rc == 0) {
        out->p[out->len++] = '"';
        rc = tern_json_escape(out, s);
    }
    if (rc == 0)
        rc = room(out, 1);
    if (rc) {
        out->len = mark;
        return fail(w, rc);
    }
    out->p[out->len++] = '"';
    return 0;
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
