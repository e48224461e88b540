/*
 * form.c - application/x-www-form-urlencoded bodies and query strings, and
 * the typed accessors over a parsed tern_form.
 *
 * Parsing follows the WHATWG URL standard's urlencoded parser, but strict on
 * escapes: the text is split on '&' only (';' is an ordinary byte), empty
 * pairs are skipped, each pair is split at its first '=' (no '=' means an
 * empty value), '+' becomes a space when plus_is_space, and percent-escapes
 * are decoded by tern__url_decode, which rejects a malformed escape and any
 * NUL byte (raw or "%00") instead of passing it through.  Decoded bytes are
 * not checked to be UTF-8: that is the validation layer's job.
 *
 * Memory: two arena allocations per parse, the field array and one block
 * for every decoded key and value.  Each key and value is NUL-terminated in
 * that block, so .p can also be handed to C string functions.  Decoding
 * never lengthens its input, so the block needs at most one byte per input
 * byte plus one per pair (the pair's '=' pays for the key's NUL; a pair
 * without '=' has an empty value that points at the key's NUL).
 *
 * The field limit is checked in a counting pass before anything is
 * allocated or decoded, so an over-long form costs one memchr pass.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app/router.h"
#include "tern/body.h"

/* Longest number text tern_form_double accepts (it is copied to the stack). */
#define NUMBER_MAX 128

/* The end of the pair that starts at p: the next '&' or the end of text. */
static const char *pair_end(const char *p, const char *end)
{
    const char *amp = memchr(p, '&', (size_t)(end - p));

    return amp != NULL ? amp : end;
}

/*
 * Decodes the non-empty pair [p, e) into kv, writing the NUL-terminated key
 * and value at buf + *o and advancing *o.  Returns 0, or -1 on a bad escape
 * or a NUL byte.
 */
static int decode_pair(tern_kv *kv, char *buf, size_t *o, const char *p, const char *e,
                       int plus_is_space)
{
    const char *eq = memchr(p, '=', (size_t)(e - p));
    long kn, vn;

    kn = tern__url_decode(buf + *o, p, (size_t)((eq != NULL ? eq : e) - p), plus_is_space);
    if (kn < 0)
        return -1;
    kv->key.p = buf + *o;
    kv->key.n = (size_t)kn;
    *o += (size_t)kn;
    buf[(*o)++] = '\0';
    if (eq == NULL) {
        kv->value.p = buf + *o - 1; /* the key's NUL doubles as an empty value */
        kv->value.n = 0;
        return 0;
    }
    vn = tern__url_decode(buf + *o, eq + 1, (size_t)(e - eq - 1), plus_is_space);
    if (vn < 0)
        return -1;
    kv->value.p = buf + *o;
    kv->value.n = (size_t)vn;
    *o += (size_t)vn;
    buf[(*o)++] = '\0';
    return 0;
}

int tern_form_parse(tern_arena *a, tern_str text, int plus_is_space, unsigned max_fields,
                    tern_form *out, size_t *bad_at)
{
    const char *p, *e, *end;
    size_t npairs = 0, o = 0;
    tern_kv *fields;
    char *buf;
    unsigned i = 0;

    if (out == NULL)
        return TERN_EINVAL;
    out->fields = NULL;
    out->n = 0;
    if (text.n == 0)
        return 0;
    if (a == NULL || text.p == NULL)
        return TERN_EINVAL;
    end = text.p + text.n;

    /* Pass 1: count the non-empty pairs; stop at the first one too many. */
    for (p = text.p;; p = e + 1) {
        e = pair_end(p, end);
        if (e > p) {
            npairs++;
            if (npairs > max_fields)
                return TERN_ETOOBIG;
        }
        if (e == end)
            break;
    }
    if (npairs == 0)
        return 0;

    /* npairs <= max_fields and npairs <= text.n: only a huge text can wrap. */
    if (text.n > SIZE_MAX / 2 || npairs > SIZE_MAX / sizeof *fields)
        return TERN_ENOMEM;
    fields = tern_arena_alloc(a, npairs * sizeof *fields);
    buf = tern_arena_alloc(a, text.n + npairs);
    if (fields == NULL || buf == NULL)
        return TERN_ENOMEM;

    /* Pass 2: split and decode. */
    for (p = text.p;; p = e + 1) {
        e = pair_end(p, end);
        if (e > p) {
            if (decode_pair(&fields[i], buf, &o, p, e, plus_is_space) != 0) {
                if (bad_at != NULL)
                    *bad_at = (size_t)(p - text.p);
                return TERN_EINVAL;
            }
            i++;
        }
        if (e == end)
            break;
    }
    out->fields = fields;
    out->n = i;
    return 0;
}

/* The first field whose key is `key`, or NULL. */
static const tern_kv *find(const tern_form *f, const char *key)
{
    tern_str k;

    if (f == NULL || key == NULL)
        return NULL;
    k = tern_str_c(key);
    for (unsigned i = 0; i < f->n; i++)
        if (tern_str_eq(f->fields[i].key, k))
            return &f->fields[i];
    return NULL;
}

tern_str tern_form_get(const tern_form *f, const char *key)
{
    const tern_kv *kv = find(f, key);

    return kv != NULL ? kv->value : TERN_STR_NULL;
}

unsigned tern_form_get_all(const tern_form *f, const char *key, tern_str *out, unsigned max)
{
    unsigned total = 0;
    tern_str k;

    if (f == NULL || key == NULL)
        return 0;
    k = tern_str_c(key);
    for (unsigned i = 0; i < f->n; i++) {
        if (!tern_str_eq(f->fields[i].key, k))
            continue;
        if (out != NULL && total < max)
            out[total] = f->fields[i].value;
        total++;
    }
    return total;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The JSON integer grammar: -?(0|[1-9][0-9]*), at most 19 digits, within
 * int64.  So "-0" is 0, while "007", "+1", " 1", "1.0" and "1e3" are not
 * integers.  Rejecting leading zeros keeps one spelling per number (and
 * avoids the octal question some clients have).
 */
static int parse_int(tern_str s, int64_t *out)
{
    size_t i = 0;
    uint64_t v = 0, limit;
    int neg = 0;

    if (s.n > 0 && s.p[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == s.n || s.n - i > 19)
        return TERN_EINVAL;
    if (s.p[i] == '0' && s.n - i > 1)
        return TERN_EINVAL;
    for (; i < s.n; i++) {
        if (!is_digit(s.p[i]))
            return TERN_EINVAL;
        v = v * 10 + (uint64_t)(s.p[i] - '0'); /* 19 digits stay below 2^64 */
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (v > limit)
        return TERN_EINVAL;
    if (neg)
        *out = v == limit ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

/*
 * strtod follows LC_NUMERIC, so an app that calls setlocale() for its own
 * output could make "1.5" stop at the '.'.  Numbers are parsed in the C
 * locale instead.  glibc returns a static object for "C" (no allocation).
 */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/*
 * A finite decimal: -?(digits[.digits*] | .digits)([eE][+-]?digits)?, at
 * most NUMBER_MAX bytes.  No '+' sign, no spaces, no hex, no inf/nan.  A
 * value that overflows double is rejected; one that underflows becomes 0 or
 * a subnormal, as strtod gives it.
 */
static int parse_double(tern_str s, double *out)
{
    char tmp[NUMBER_MAX + 1];
    size_t i = 0, mant = 0, exp;
    char *endp;
    double v;

    if (s.n == 0 || s.n > NUMBER_MAX)
        return TERN_EINVAL;
    if (s.p[i] == '-')
        i++;
    for (; i < s.n && is_digit(s.p[i]); i++)
        mant++;
    if (i < s.n && s.p[i] == '.')
        for (i++; i < s.n && is_digit(s.p[i]); i++)
            mant++;
    if (mant == 0)
        return TERN_EINVAL;
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '+' || s.p[i] == '-'))
            i++;
        for (exp = 0; i < s.n && is_digit(s.p[i]); i++)
            exp++;
        if (exp == 0)
            return TERN_EINVAL;
    }
    if (i != s.n)
        return TERN_EINVAL;

    /* The grammar is a subset of strtod's; strtod only does the rounding. */
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    pthread_once(&c_locale_once, c_locale_init);
    if (c_locale != (locale_t)0)
        v = strtod_l(tmp, &endp, c_locale);
    else
        v = strtod(tmp, &endp); /* a '.' the locale does not take fails below */
    if (endp != tmp + s.n || !isfinite(v))
        return TERN_EINVAL;
    *out = v;
    return 0;
}

int tern_form_int(const tern_form *f, const char *key, int64_t *out)
{
    const tern_kv *kv = find(f, key);

    if (kv == NULL)
        return TERN_ENOTFOUND;
    return parse_int(kv->value, out);
}

int tern_form_double(const tern_form *f, const char *key, double *out)
{
    const tern_kv *kv = find(f, key);

    if (kv == NULL)
        return TERN_ENOTFOUND;
    return parse_double(kv->value, out);
}

int tern_form_bool(const tern_form *f, const char *key, int *out)
{
    const tern_kv *kv = find(f, key);

    if (kv == NULL)
        return TERN_ENOTFOUND;
    if (tern_str_eq(kv->value, TERN_STR("true")) || tern_str_eq(kv->value, TERN_STR("1"))) {
        *out = 1;
        return 0;
    }
    if (tern_str_eq(kv->value, TERN_STR("false")) || tern_str_eq(kv->value, TERN_STR("0"))) {
        *out = 0;
        return 0;
    }
    return TERN_EINVAL;
}
