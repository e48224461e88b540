/*
 * format.c - the string formats of tern_schema.format, and a UTF-8 checker.
 *
 * Each checker takes a byte slice and answers 1 (valid) or 0.  They are
 * hand-written scanners: no allocation, no regex, one pass.  The grammars
 * (documented in docs/validation.md):
 *
 *   email      pragmatic addr-spec: dot-atom local part (1-64 bytes) "@" a
 *              DNS name of at least two labels (letters, digits, inner
 *              hyphens, 1-63 bytes each) whose last label is >= 2 letters;
 *              at most 254 bytes.  No quoted local parts, no IP literals, ASCII only.
 *   uuid       8-4-4-4-12 hex digits, any version, either case.
 *   date-time  RFC 3339 section 5.6 date-time; 'T' and 'Z' in either case;
 *              second 60 only where the time, moved to UTC, is 23:59:60.
 *   uri        RFC 3986 URI (absolute: a scheme is required; a fragment is
 *              allowed), ASCII only, with valid percent-escapes.
 */
#include <string.h>

#include "validate/regex.h"

/* ------------------------------------------------------------------------ */
/* Character classes                                                          */

static int is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Byte classes for the URI and email scanners (one table lookup per byte). */
enum {
    C_PCHAR = 0x01, /* RFC 3986 unreserved or sub-delims */
    C_COLON = 0x02,
    C_AT = 0x04,
    C_SLASH = 0x08,
    C_QUERY = 0x10, /* '?' */
    C_HASH = 0x20,
    C_ATEXT = 0x40, /* RFC 5322 atext */
};

/* clang-format off */
static const unsigned char ctab[256] = {
    /* sub-delims ! $ & ' ( ) * + , ; =  (atext too, but for ( ) , ;) */
    ['!'] = C_PCHAR | C_ATEXT, ['$'] = C_PCHAR | C_ATEXT, ['&'] = C_PCHAR | C_ATEXT,
    ['\''] = C_PCHAR | C_ATEXT, ['('] = C_PCHAR, [')'] = C_PCHAR, ['*'] = C_PCHAR | C_ATEXT,
    ['+'] = C_PCHAR | C_ATEXT, [','] = C_PCHAR, [';'] = C_PCHAR, ['='] = C_PCHAR | C_ATEXT,
    /* unreserved - . _ ~  (atext but for .) */
    ['-'] = C_PCHAR | C_ATEXT, ['.'] = C_PCHAR, ['_'] = C_PCHAR | C_ATEXT, ['~'] = C_PCHAR | C_ATEXT,
    /* the other atext */
    ['#'] = C_ATEXT | C_HASH, ['%'] = C_ATEXT, ['/'] = C_ATEXT | C_SLASH, ['?'] = C_ATEXT | C_QUERY,
    ['^'] = C_ATEXT, ['`'] = C_ATEXT, ['{'] = C_ATEXT, ['|'] = C_ATEXT, ['}'] = C_ATEXT,
    [':'] = C_COLON, ['@'] = C_AT,
    ['0'] = C_PCHAR | C_ATEXT, ['1'] = C_PCHAR | C_ATEXT, ['2'] = C_PCHAR | C_ATEXT,
    ['3'] = C_PCHAR | C_ATEXT, ['4'] = C_PCHAR | C_ATEXT, ['5'] = C_PCHAR | C_ATEXT,
    ['6'] = C_PCHAR | C_ATEXT, ['7'] = C_PCHAR | C_ATEXT, ['8'] = C_PCHAR | C_ATEXT,
    ['9'] = C_PCHAR | C_ATEXT,
#define L(c) [c] = C_PCHAR | C_ATEXT, [c - 'a' + 'A'] = C_PCHAR | C_ATEXT
    L('a'), L('b'), L('c'), L('d'), L('e'), L('f'), L('g'), L('h'), L('i'), L('j'), L('k'),
    L('l'), L('m'), L('n'), L('o'), L('p'), L('q'), L('r'), L('s'), L('t'), L('u'), L('v'),
    L('w'), L('x'), L('y'), L('z'),
#undef L
};
/* clang-format on */

/* RFC 5322 atext: letters, digits and ! # $ % & ' * + - / = ? ^ _ ` { | } ~ */
static int is_atext(unsigned char c)
{
    return (ctab[c] & C_ATEXT) != 0;
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                      */

int tern_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* no overlongs */
            else if (c == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* no overlongs */
            else if (c == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return 0;
        }
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        }
        i += need + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* email                                                                      */

int tern_fmt_email(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t at, i, label = 0, tld_start = 0;
    int tld_alpha = 1, dots = 0;

    if (n > 254)
        return 0;
    for (at = 0; at < n && s[at] != '@'; at++)
        ;
    if (at == 0 || at == n || at > 64)
        return 0;
    /* Local part: dot-atom, no leading, trailing or doubled dot. */
    for (i = 0; i < at; i++) {
        if (s[i] == '.') {
            if (i == 0 || i + 1 == at || s[i - 1] == '.')
                return 0;
        } else if (!is_atext(s[i])) {
            return 0;
        }
    }
    /* Domain: labels separated by dots. */
    if (at + 1 == n)
        return 0;
    for (i = at + 1; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            if (i < n) {
                dots++;
                label = 0;
                tld_start = i + 1;
                tld_alpha = 1;
            }
            continue;
        }
        if (s[i] == '-') {
            if (label == 0)
                return 0;
        } else if (!is_alpha(s[i]) && !is_digit(s[i])) {
            return 0;
        }
        if (!is_alpha(s[i]))
            tld_alpha = 0;
        label++;
    }
    return dots >= 1 && tld_alpha && n - tld_start >= 2;
}

/* ------------------------------------------------------------------------ */
/* uuid                                                                       */

int tern_fmt_uuid(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* date-time (RFC 3339 5.6)                                                   */

/* Reads exactly `digits` decimal digits at s[*i]. */
static int num(const char *s, size_t n, size_t *i, int digits, int *out)
{
    int v = 0;

    if (n - *i < (size_t)digits)
        return 0;
    for (int k = 0; k < digits; k++) {
        if (!is_digit((unsigned char)s[*i + (size_t)k]))
            return 0;
        v = v * 10 + (s[*i + (size_t)k] - '0');
    }
    *i += (size_t)digits;
    *out = v;
    return 1;
}

static int lit(const char *s, size_t n, size_t *i, char c)
{
    if (*i >= n || (s[*i] | 0x20) != (c | 0x20))
        return 0;
    (*i)++;
    return 1;
}

int tern_fmt_date_time(const char *s, size_t n)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0, dim;
    size_t i = 0;

    if (!num(s, n, &i, 4, &y) || !lit(s, n, &i, '-') || !num(s, n, &i, 2, &mo) ||
        !lit(s, n, &i, '-') || !num(s, n, &i, 2, &d) || !lit(s, n, &i, 'T') ||
        !num(s, n, &i, 2, &h) || !lit(s, n, &i, ':') || !num(s, n, &i, 2, &mi) ||
        !lit(s, n, &i, ':') || !num(s, n, &i, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return 0;
    dim = mdays[mo - 1];
    if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        dim = 29;
    if (d > dim)
        return 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;

        while (i < n && is_digit((unsigned char)s[i]))
            i++;
        if (i == start)
            return 0;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        sign = s[i++] == '+' ? 1 : -1;
        if (!num(s, n, &i, 2, &oh) || !lit(s, n, &i, ':') || !num(s, n, &i, 2, &om) || oh > 23 ||
            om > 59)
            return 0;
    } else {
        return 0;
    }
    if (i != n)
        return 0;
    if (sec == 60) {
        /* A leap second is only ever inserted at 23:59:60 UTC. */
        int utc = h * 60 + mi - sign * (oh * 60 + om);

        utc = ((utc % 1440) + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* uri (RFC 3986 section 3, absolute)                                         */

/* Accepts one pct-encoded triplet at s[*i] == '%'. */
static int pct(const char *s, size_t n, size_t *i)
{
    if (n - *i < 3 || !is_hex((unsigned char)s[*i + 1]) || !is_hex((unsigned char)s[*i + 2]))
        return 0;
    *i += 3;
    return 1;
}

/* Scans bytes of the classes in `extra` plus unreserved, sub-delims and
 * pct-encoded up to a byte of a class in `stop` or the end.  Returns 0 on a
 * byte that is neither. */
static int scan(const char *s, size_t n, size_t *i, unsigned extra, unsigned stop)
{
    unsigned ok = C_PCHAR | extra;

    while (*i < n) {
        unsigned char c = (unsigned char)s[*i];

        if (ctab[c] & stop)
            return 1;
        if (c == '%') {
            if (!pct(s, n, i))
                return 0;
            continue;
        }
        if (!(ctab[c] & ok))
            return 0;
        (*i)++;
    }
    return 1;
}

static int ipv4(const char *s, size_t n)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        int v = 0, digits = 0;

        if (part > 0 && (i >= n || s[i++] != '.'))
            return 0;
        while (i < n && is_digit((unsigned char)s[i]) && digits < 4) {
            v = v * 10 + (s[i++] - '0');
            digits++;
        }
        /* dec-octet: no leading zeros, at most 255 */
        if (digits == 0 || v > 255 || (digits > 1 && s[i - (size_t)digits] == '0'))
            return 0;
    }
    return i == n;
}

static int ipv6(const char *s, size_t n)
{
    size_t i = 0;
    int groups = 0, gap = 0;

    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
    } else if (n >= 1 && s[0] == ':') {
        return 0;
    }
    while (i < n) {
        size_t start = i;
        int hex = 0;

        while (i < n && is_hex((unsigned char)s[i]) && hex < 5)
            i++, hex++;
        if (i < n && s[i] == '.') {
            /* a trailing IPv4 address counts as two groups */
            if (!ipv4(s + start, n - start))
                return 0;
            groups += 2;
            i = n;
            break;
        }
        if (hex == 0 || hex > 4)
            return 0;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (gap)
                return 0;
            gap = 1;
            i++;
        } else if (i == n) {
            return 0; /* a single trailing ':' */
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

/* IP-literal inside [ ]: IPv6address or IPvFuture. */
static int ip_literal(const char *s, size_t n)
{
    size_t i = 1;

    if (n >= 1 && (s[0] == 'v' || s[0] == 'V')) {
        while (i < n && is_hex((unsigned char)s[i]))
            i++;
        if (i == 1 || i >= n || s[i] != '.' || i + 1 >= n)
            return 0;
        for (i++; i < n; i++) {
            unsigned char c = (unsigned char)s[i];

            if (!(ctab[c] & C_PCHAR) && c != ':') /* unreserved, sub-delims or ':' */
                return 0;
        }
        return 1;
    }
    return ipv6(s, n);
}

int tern_fmt_uri(const char *s, size_t n)
{
    size_t i = 0;

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    if (n == 0 || !is_alpha((unsigned char)s[0]))
        return 0;
    while (i < n && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
                     s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= n || s[i] != ':')
        return 0;
    i++;
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t start, end, at;

        i += 2;
        start = i;
        /* The authority runs to the next '/', '?', '#' or the end. */
        for (end = start; end < n && s[end] != '/' && s[end] != '?' && s[end] != '#'; end++)
            ;
        /* [ userinfo "@" ] */
        for (at = end; at > start && s[at - 1] != '@'; at--)
            ;
        if (at > start) {
            size_t u = start;

            if (!scan(s, at - 1, &u, C_COLON, 0) || u != at - 1)
                return 0;
            i = at;
        }
        /* host */
        if (i < end && s[i] == '[') {
            size_t close = i + 1;

            while (close < end && s[close] != ']')
                close++;
            if (close >= end || !ip_literal(s + i + 1, close - i - 1))
                return 0;
            i = close + 1;
        } else {
            /* reg-name (an IPv4 address is a reg-name too) */
            if (!scan(s, end, &i, 0, C_COLON))
                return 0;
        }
        /* [ ":" port ] */
        if (i < end && s[i] == ':') {
            for (i++; i < end; i++) {
                if (!is_digit((unsigned char)s[i]))
                    return 0;
            }
        }
        if (i != end)
            return 0;
    }
    /* path: pchar and '/' */
    if (!scan(s, n, &i, C_COLON | C_AT | C_SLASH, C_QUERY | C_HASH))
        return 0;
    if (i < n && s[i] == '?') {
        i++;
        if (!scan(s, n, &i, C_COLON | C_AT | C_SLASH | C_QUERY, C_HASH))
            return 0;
    }
    if (i < n && s[i] == '#') {
        i++;
        if (!scan(s, n, &i, C_COLON | C_AT | C_SLASH | C_QUERY, 0))
            return 0;
    }
    return i == n;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                   */

typedef struct fmt_def {
    const char *name;
    int (*check)(const char *s, size_t n);
    const char *message;
} fmt_def;

static const fmt_def formats[] = {
    { "email", tern_fmt_email, "must be an email address" },
    { "uuid", tern_fmt_uuid, "must be a UUID" },
    { "date-time", tern_fmt_date_time, "must be an RFC 3339 date-time" },
    { "uri", tern_fmt_uri, "must be an absolute URI" },
};

static const fmt_def *find(const char *name)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (formats[i].name[0] == name[0] && strcmp(formats[i].name, name) == 0)
            return &formats[i];
    }
    return NULL;
}

int tern_fmt_known(const char *name)
{
    return find(name) != NULL;
}

int tern_fmt_check(const char *name, const char *s, size_t n)
{
    const fmt_def *f = find(name);

    return f != NULL && f->check(s, n);
}

const char *tern_fmt_message(const char *name)
{
    const fmt_def *f = find(name);

    return f != NULL ? f->message : "must match the format";
}
