/*
 * url.c - percent-decoding (RFC 3986 2.1) of paths, query strings and form
 * fields.
 *
 * tern__url_decode() turns "%XX" (either case of hex digit) into the byte
 * 0xXX and, when asked (application/x-www-form-urlencoded), '+' into ' '.
 * Every other byte is copied as is.  It rejects, rather than passes through,
 * anything a later layer could misread:
 *   - a '%' not followed by two hex digits ("%zz", "%4", a trailing "%");
 *   - a NUL byte in the output, whether decoded ("%00") or raw, since decoded
 *     values are handed to C code as NUL-terminated strings.
 *
 * The output is never longer than the input and the write position never
 * passes the read position, so decoding in place (out == in) is safe.
 */
#include <limits.h>
#include <string.h>

#include "app/router.h"

/* The value of a hex digit, or -1. */
static inline int hexval(unsigned char c)
{
    if ((unsigned)(c - '0') < 10u)
        return c - '0';
    c |= 0x20; /* fold ASCII letters to lower case */
    if ((unsigned)(c - 'a') < 6u)
        return c - 'a' + 10;
    return -1;
}

long tern__url_decode(char *out, const char *in, size_t n, int plus_is_space)
{
    size_t i = 0, o = 0;

    if (n > (size_t)LONG_MAX)
        return -1;
    while (i < n) {
        unsigned char c = (unsigned char)in[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3)
                return -1;
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 3;
        } else {
            if (c == '+' && plus_is_space)
                c = ' ';
            i++;
        }
        if (c == '\0')
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}
