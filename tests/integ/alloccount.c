/*
 * alloccount.c - an LD_PRELOAD shim that counts heap allocations.
 *
 * Interposes malloc, calloc, realloc, aligned_alloc, posix_memalign and
 * memalign, forwards them to libc, and counts each call in an atomic.  On
 * SIGUSR2 it writes the count as decimal to the file named by
 * ALLOCCOUNT_FILE (with a single write, from the handler: only
 * async-signal-safe calls).  Used by test_alloc.c to show that a warm
 * tern-tfb serves /plaintext and /json without any heap allocation.
 *
 * dlsym itself may call calloc before the real one is known; those early
 * calls are served from a small static arena.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong count;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static char early[8192];
static size_t early_used;

static void *early_alloc(size_t n)
{
    size_t off = (early_used + 15) & ~(size_t)15;

    if (off + n > sizeof early)
        return NULL;
    early_used = off + n;
    return early + off;
}

static void on_usr2(int sig)
{
    char buf[32];
    size_t i = sizeof buf;
    unsigned long v = atomic_load(&count);
    const char *path = getenv("ALLOCCOUNT_FILE");
    int fd;

    (void)sig;
    if (path == NULL)
        return;
    buf[--i] = '\n';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, buf + i, sizeof buf - i);
        (void)w;
        close(fd);
    }
}

__attribute__((constructor)) static void init(void)
{
    struct sigaction sa;

    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

void *malloc(size_t n)
{
    atomic_fetch_add(&count, 1);
    if (real_malloc == NULL)
        return early_alloc(n);
    return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add(&count, 1);
    if (real_calloc == NULL) {
        void *p = early_alloc(a * b);
        if (p)
            memset(p, 0, a * b);
        return p;
    }
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add(&count, 1);
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    atomic_fetch_add(&count, 1);
    return real_posix_memalign(out, al, n);
}

void *aligned_alloc(size_t al, size_t n)
{
    atomic_fetch_add(&count, 1);
    return real_aligned_alloc(al, n);
}

void *memalign(size_t al, size_t n)
{
    atomic_fetch_add(&count, 1);
    return real_memalign(al, n);
}

void free(void *p)
{
    static void (*real_free)(void *);

    if ((char *)p >= early && (char *)p < early + sizeof early)
        return;
    if (real_free == NULL)
        real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}
