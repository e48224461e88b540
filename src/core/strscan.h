/*
 * strscan.h - finding the next byte of a JSON string that needs attention,
 * 16 or 8 bytes at a time (shared by the JSON checker, the builder and the
 * writer; internal, never installed).
 *
 * Two questions, each answered with the offset of the first such byte at or
 * after p[i], or n when there is none before n:
 *   tern__str_special: a byte below 0x20, '"', '\' or non-ASCII (the bytes a
 *                      JSON string scanner or escaper must look at);
 *   tern__str_qb:      '"' or '\' (the bytes that end a run of an already
 *                      checked string).
 * Reads stay inside p[0..n).  With SSE2 (every x86-64) whole 16-byte blocks
 * are tested with three compares; otherwise (and for the rest) 8-byte words
 * with the SWAR zero-byte test, whose lowest flagged byte is exact (a borrow
 * can only flag a byte above a truly flagged one); the last bytes of a range
 * of at least 8 are tested as the overlapping word ending at n, with the
 * bytes already known to be plain masked off.  Below 8 bytes, a byte loop.
 */
#ifndef TERN_CORE_STRSCAN_H
#define TERN_CORE_STRSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) &&                        \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TERN__STRSCAN_SWAR 1
#endif

#define TERN__ONES  0x0101010101010101ull
#define TERN__HIGHS 0x8080808080808080ull

/* The high bit of each byte of w that is below 0x20, '"', '\' or >= 0x80. */
static inline uint64_t tern__special8(uint64_t w)
{
    uint64_t q = w ^ (TERN__ONES * '"'), b = w ^ (TERN__ONES * '\\');
    uint64_t lt20 = (w - TERN__ONES * 0x20) & ~w;

    q = (q - TERN__ONES) & ~q;
    b = (b - TERN__ONES) & ~b;
    return (lt20 | q | b | w) & TERN__HIGHS;
}

/* The high bit of each byte of w that is '"' or '\'. */
static inline uint64_t tern__qb8(uint64_t w)
{
    uint64_t q = w ^ (TERN__ONES * '"'), b = w ^ (TERN__ONES * '\\');

    return (((q - TERN__ONES) & ~q) | ((b - TERN__ONES) & ~b)) & TERN__HIGHS;
}

/* The high bit of each flagged byte of w: special bytes, or '"' and '\'. */
static inline uint64_t tern__flag8(uint64_t w, int special)
{
    return special ? tern__special8(w) : tern__qb8(w);
}

static inline int tern__flagged(uint8_t c, int special)
{
    if (special)
        return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
    return c == '"' || c == '\\';
}

/*
 * The offset of the first flagged byte of p[i..n), or n.  `special` is a
 * constant at each call (the two wrappers below), so the compiler builds
 * one loop for each question with no test of it inside.
 */
static inline size_t tern__str_scan(const uint8_t *p, size_t i, size_t n, int special)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash));
        unsigned bits;

        if (special) /* signed: below 0x20 is 0x00-0x1f and 0x80-0xff */
            m = _mm_or_si128(m, _mm_cmplt_epi8(x, space));
        bits = (unsigned)_mm_movemask_epi8(m);
        if (bits != 0)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
#if defined(TERN__STRSCAN_SWAR)
    if (n - i >= 8) {
        uint64_t w, m;

        for (; n - i >= 8; i += 8) {
            memcpy(&w, p + i, sizeof w);
            m = tern__flag8(w, special);
            if (m != 0)
                return i + ((size_t)__builtin_ctzll(m) >> 3);
        }
        if (i == n)
            return n;
        /* the word ending at n; its first 8 - (n - i) bytes were plain */
        memcpy(&w, p + n - 8, sizeof w);
        m = tern__flag8(w, special) & (~0ull << (8 * (8 - (n - i))));
        return m != 0 ? n - 8 + ((size_t)__builtin_ctzll(m) >> 3) : n;
    }
#endif
    while (i < n && !tern__flagged(p[i], special))
        i++;
    return i;
}

static inline size_t tern__str_special(const uint8_t *p, size_t i, size_t n)
{
    return tern__str_scan(p, i, n, 1);
}

static inline size_t tern__str_qb(const uint8_t *p, size_t i, size_t n)
{
    return tern__str_scan(p, i, n, 0);
}

#endif /* TERN_CORE_STRSCAN_H */
