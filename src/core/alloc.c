/*
 * alloc.c - the allocation hook every tern allocation goes through.
 *
 * Apps and tests may swap the allocator once, before any other tern call
 * (libuv's uv_replace_allocator).  The tests use it to fail the Nth
 * allocation and check that nothing leaks on the error paths.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tern/core.h"

static void *(*g_malloc)(size_t) = malloc;
static void *(*g_realloc)(void *, size_t) = realloc;
static void (*g_free)(void *) = free;

void tern_set_allocator(void *(*xmalloc)(size_t), void *(*xrealloc)(void *, size_t),
                        void (*xfree)(void *))
{
    g_malloc = xmalloc ? xmalloc : malloc;
    g_realloc = xrealloc ? xrealloc : realloc;
    g_free = xfree ? xfree : free;
}

void *tern_malloc(size_t n)
{
    return g_malloc(n ? n : 1);
}

void *tern_calloc(size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    p = tern_malloc(count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

void *tern_realloc(void *p, size_t n)
{
    return g_realloc(p, n ? n : 1);
}

void tern_free(void *p)
{
    if (p != NULL)
        g_free(p);
}

char *tern_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tern_malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}
