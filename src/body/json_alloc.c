/*
 * json_alloc.c - a per-thread cache of small blocks for jansson's values.
 *
 * A parsed request body is a few dozen small jansson allocations (each value,
 * each object member, each string's bytes, the hash buckets), all freed
 * together when the request ends.  glibc's per-thread cache holds 7 blocks
 * per size, so most of those frees and the next request's mallocs go the
 * slow way through the arena.  tern_app_new therefore hands jansson a malloc
 * and free (json_set_alloc_funcs) that keep freed blocks of up to
 * JA_BIN_MAX bytes in per-thread lists, by size class, and reuse them.
 *
 * Invariants, which make the pair safe to install while jansson values made
 * with plain malloc exist, and to be replaced later by plain malloc/free:
 *   - every block is a genuine malloc block, of at least the size asked:
 *     a block in list b has malloc_usable_size >= 16 * b, and a request of
 *     n bytes takes from list ceil(n / 16) or gets malloc(16 * ceil(n / 16));
 *   - the free side finds the class from malloc_usable_size, so a block may
 *     come from any thread and from plain malloc;
 *   - a thread keeps at most JA_CACHE_MAX bytes; the rest goes to free().
 *     Its lists are released when it exits (a pthread key destructor; after
 *     that the thread's calls go straight to malloc/free) or when it calls
 *     tern__json_alloc_drain (tern_app_free does).
 * Lifetimes do not change: a value lives until its last json_decref, on any
 * thread, exactly as with malloc.
 *
 * Installed only when jansson still has its defaults (malloc, free): an app
 * that set its own functions before tern_app_new keeps them.  Not installed
 * under AddressSanitizer, so block reuse never hides a use-after-free there.
 */
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "body/json_alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define JA_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JA_DISABLED 1
#endif
#endif

#define JA_NBINS     33          /* classes 1..32: 16..512 bytes */
#define JA_BIN_MAX   (16 * (JA_NBINS - 1))
#define JA_CACHE_MAX (64 * 1024) /* bytes one thread keeps */

typedef struct ja_block {
    struct ja_block *next;
} ja_block;

typedef struct ja_cache {
    ja_block *bin[JA_NBINS];
    size_t bytes; /* in the lists, counted as 16 * class */
    int state;    /* 0 new, 1 registered for thread exit, -1 off */
} ja_cache;

static _Thread_local ja_cache ja_tc;
static pthread_key_t ja_key;
static int ja_key_ok;
static pthread_once_t ja_once = PTHREAD_ONCE_INIT;

static void ja_release(ja_cache *c)
{
    for (size_t b = 0; b < JA_NBINS; b++) {
        while (c->bin[b] != NULL) {
            ja_block *k = c->bin[b];

            c->bin[b] = k->next;
            free(k);
        }
    }
    c->bytes = 0;
}

/* Thread exit: release the lists and stop caching on this thread. */
static void ja_thread_exit(void *p)
{
    ja_cache *c = p;

    ja_release(c);
    c->state = -1;
}

static void ja_make_key(void)
{
    ja_key_ok = pthread_key_create(&ja_key, ja_thread_exit) == 0;
}

static void *ja_malloc(size_t n)
{
    ja_cache *c = &ja_tc;
    size_t b = n ? (n + 15) >> 4 : 1;

    if (b < JA_NBINS) {
        ja_block *k = c->bin[b];

        if (k != NULL) {
            c->bin[b] = k->next;
            c->bytes -= b << 4;
            return k;
        }
        return malloc(b << 4);
    }
    return malloc(n);
}

static void ja_free(void *p)
{
    ja_cache *c = &ja_tc;
    size_t b;

    if (p == NULL)
        return;
    b = malloc_usable_size(p) >> 4;
    if (b == 0 || b >= JA_NBINS || c->bytes + (b << 4) > JA_CACHE_MAX || c->state < 0) {
        free(p);
        return;
    }
    if (c->state == 0) { /* first block kept on this thread */
        pthread_once(&ja_once, ja_make_key);
        if (!ja_key_ok || pthread_setspecific(ja_key, c) != 0) {
            c->state = -1;
            free(p);
            return;
        }
        c->state = 1;
    }
    ((ja_block *)p)->next = c->bin[b];
    c->bin[b] = p;
    c->bytes += b << 4;
}

void tern__json_alloc_install(void)
{
#ifndef JA_DISABLED
    json_malloc_t m;
    json_free_t f;

    json_get_alloc_funcs(&m, &f);
    if (m == malloc && f == free)
        json_set_alloc_funcs(ja_malloc, ja_free);
#else
    (void)ja_malloc;
    (void)ja_free;
#endif
}

void tern__json_alloc_drain(void)
{
    if (ja_tc.state >= 0)
        ja_release(&ja_tc);
}
