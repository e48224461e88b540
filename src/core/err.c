/*
 * err.c - error codes to text, and small string helpers.
 */
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

int tern_str_ieq(tern_str a, tern_str b)
{
    if (a.n != b.n)
        return 0;
    for (size_t i = 0; i < a.n; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return 0;
    return 1;
}
