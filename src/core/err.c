/*
 * err.c - error codes to text, and small string helpers.
 */
#include <stdint.h>
#include <string.h>

#include "tern/core.h"

const char *tern_strerror(int err)
{
    switch (err) {
#define TERN_ERRNO_CASE(name, val, msg)                                                            \
    case (val): return msg;
        TERN_ERRNO_MAP(TERN_ERRNO_CASE)
#undef TERN_ERRNO_CASE
    }
    return "unknown error";
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/*
 * w with the ASCII capitals of each of its eight bytes made lower case, the
 * bytes compared as unsigned: no byte carries into the next, so byte order
 * does not matter.
 */
static inline uint64_t lower8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = ones * 0x80;
    uint64_t h = w & ~highs;                   /* each byte's low seven bits */
    uint64_t ge_a = h + ones * (0x80 - 'A');   /* high bit: at least 'A' */
    uint64_t gt_z = h + ones * (0x80 - 'Z' - 1); /* high bit: above 'Z' */

    return w | (ge_a & ~gt_z & ~w & highs) >> 2; /* ASCII A-Z: set 0x20 */
}

/* Compared eight bytes at a time; the last (overlapping) word covers the
 * rest of a string of eight bytes or more. */
int tern_str_ieq(tern_str a, tern_str b)
{
    uint64_t x, y;
    size_t i = 0;

    if (a.n != b.n)
        return 0;
    if (a.n < 8) {
        for (; i < a.n; i++)
            if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
                return 0;
        return 1;
    }
    for (; a.n - i > 8; i += 8) {
        memcpy(&x, a.p + i, sizeof x);
        memcpy(&y, b.p + i, sizeof y);
        if (x != y && lower8(x) != lower8(y))
            return 0;
    }
    memcpy(&x, a.p + a.n - 8, sizeof x);
    memcpy(&y, b.p + b.n - 8, sizeof y);
    return x == y || lower8(x) == lower8(y);
}
