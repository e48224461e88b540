/*
 * arena.c - the per-request bump allocator.
 *
 * An arena is a list of chunks; allocations bump a pointer in the newest
 * chunk.  Requests larger than a quarter chunk get a block of their own (kept
 * on a separate list) so one big body does not waste a chunk's tail.  Reset
 * frees every chunk but the first and every big block, so a steady workload
 * reaches a state where reset+alloc never touch the heap.
 *
 * Under AddressSanitizer the unused part of each chunk is poisoned and every
 * allocation unpoisoned as it is handed out, so an overrun past an arena
 * allocation is reported even though it stays inside the chunk (lwan does
 * the same).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tern/core.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TERN_ASAN 1
#endif

#ifdef TERN_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16u

struct tern_arena_chunk {
    tern_arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t off;  /* bytes used */
    _Alignas(16) unsigned char data[];
};

void tern_arena_init(tern_arena *a, size_t chunk_size)
{
    memset(a, 0, sizeof *a);
    a->chunk_size = chunk_size ? chunk_size : 8192;
}

static void free_list(tern_arena_chunk *c)
{
    while (c != NULL) {
        tern_arena_chunk *next = c->next;
        UNPOISON(c->data, c->size);
        tern_free(c);
        c = next;
    }
}

void tern_arena_deinit(tern_arena *a)
{
    free_list(a->head);
    free_list(a->big);
    a->head = a->big = NULL;
    a->used = 0;
}

void tern_arena_reset(tern_arena *a)
{
    tern_arena_chunk *c = a->head;

    free_list(a->big);
    a->big = NULL;
    a->used = 0;
    if (c == NULL)
        return;
    /* Keep the oldest chunk (the tail of the list); free the others. */
    while (c->next != NULL) {
        tern_arena_chunk *next = c->next;
        UNPOISON(c->data, c->size);
        tern_free(c);
        c = next;
    }
    a->head = c;
    c->off = 0;
    POISON(c->data, c->size);
}

static tern_arena_chunk *chunk_new(size_t size)
{
    tern_arena_chunk *c = tern_malloc(sizeof *c + size);

    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->off = 0;
    POISON(c->data, size);
    return c;
}

void *tern_arena_alloc(tern_arena *a, size_t n)
{
    tern_arena_chunk *c;
    size_t rounded;

    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    rounded = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (a->limit != 0 && (a->used + rounded > a->limit || a->used + rounded < a->used))
        return NULL;

    if (rounded > a->chunk_size / 4) {
        c = chunk_new(rounded);
        if (c == NULL)
            return NULL;
        c->next = a->big;
        a->big = c;
        c->off = rounded;
        UNPOISON(c->data, n);
        a->used += rounded;
        return c->data;
    }
    c = a->head;
    if (c == NULL || c->size - c->off < rounded) {
        c = chunk_new(a->chunk_size);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->off;
    c->off += rounded;
    a->used += rounded;
    UNPOISON(p, n);
    return p;
}

char *tern_arena_strndup(tern_arena *a, const char *s, size_t n)
{
    char *d = tern_arena_alloc(a, n + 1);

    if (d != NULL) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *tern_arena_printf(tern_arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *d;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    d = tern_arena_alloc(a, (size_t)n + 1);
    if (d == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}
