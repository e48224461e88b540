/*
 * buf.c - growable byte buffers with a hard cap (curl's dynbuf idea).
 */
#include <stdio.h>
#include <string.h>

#include "tern/core.h"

#define BUF_MAX_DEFAULT (SIZE_MAX / 2)

void tern_buf_init(tern_buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : BUF_MAX_DEFAULT;
}

void tern_buf_deinit(tern_buf *b)
{
    tern_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int tern_buf_reserve(tern_buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (n > b->max || b->len > b->max - n)
        return TERN_ETOOBIG;
    need = b->len + n;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    p = tern_realloc(b->p, cap);
    if (p == NULL)
        return TERN_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tern_buf_append(tern_buf *b, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    rc = tern_buf_reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int tern_buf_printf(tern_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TERN_EINVAL;
    rc = tern_buf_reserve(b, (size_t)n + 1);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int tern_buf_append_u64(tern_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return tern_buf_append(b, tmp + i, sizeof tmp - i);
}

void tern_buf_consume(tern_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}
