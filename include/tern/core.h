/*
 * tern/core.h - the core layer: strings, errors, allocation, arenas, buffers,
 * logging.
 *
 * Everything else in tern is written on top of these few types.  Strings are
 * passed as (pointer, length) slices (`tern_str`) and are never assumed to be
 * NUL-terminated.  Functions return 0 on success and a negative TERN_E* code
 * on failure; tern_strerror() names the code.
 */
#ifndef TERN_CORE_H
#define TERN_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TERN_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TERN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TERN_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

/*
 * X-macro: name, value, message.  One list gives the enum and the strings.
 * -1 (TERN_EFAIL) is the generic failure, so a handler's plain `return -1`
 * reads as "failed" in the logs.
 */
#define TERN_ERRNO_MAP(X)                                                                          \
    X(OK, 0, "success")                                                                            \
    X(EFAIL, -1, "operation failed")                                                               \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EINVAL, -3, "invalid argument")                                                              \
    X(ETIMEDOUT, -4, "timed out")                                                                  \
    X(ECANCELED, -5, "canceled")                                                                   \
    X(EIO, -6, "input/output error")                                                               \
    X(ECLOSED, -7, "connection closed")                                                            \
    X(EEXIST, -8, "already exists")                                                                \
    X(ENOTFOUND, -9, "not found")                                                                  \
    X(ETOOBIG, -10, "limit exceeded")                                                              \
    X(EALREADY, -11, "already done")                                                               \
    X(ESTATE, -12, "not allowed in this state")                                                    \
    X(EPROTO, -13, "protocol error")                                                               \
    X(ESYS, -14, "system call failed")                                                             \
    X(ECONFLICT, -15, "conflicts with existing data")                                              \
    X(ECONSTRAINT, -16, "violates a constraint")                                                   \
    X(EUNAVAIL, -17, "temporarily unavailable")                                                    \
    X(ERETRY, -18, "transaction conflict, retry")                                                  \
    X(EDB, -19, "database error")

enum tern_errno {
#define TERN_ERRNO_ENUM(name, val, msg) TERN_##name = (val),
    TERN_ERRNO_MAP(TERN_ERRNO_ENUM)
#undef TERN_ERRNO_ENUM
};

/** Returns a static English description of a TERN_E* code (or "unknown"). */
TERN_API const char *tern_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Strings                                                                    */

/** A byte slice.  `p` may be NULL only when `n` is 0; it is not owned. */
typedef struct tern_str {
    const char *p;
    size_t n;
} tern_str;

/** A tern_str of a string literal, length computed at compile time. */
#define TERN_STR(lit) ((tern_str){ "" lit, sizeof(lit) - 1 })
/** The empty/absent string. */
#define TERN_STR_NULL ((tern_str){ NULL, 0 })

/** A tern_str over a NUL-terminated C string (NULL gives TERN_STR_NULL). */
static inline tern_str tern_str_c(const char *s)
{
    tern_str r = { s, s ? strlen(s) : 0 };
    return r;
}

/** 1 when both slices hold the same bytes, else 0. */
static inline int tern_str_eq(tern_str a, tern_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/** 1 when the slices are equal ignoring ASCII case, else 0. */
TERN_API int tern_str_ieq(tern_str a, tern_str b);

/* ------------------------------------------------------------------------ */
/* Allocation                                                                 */

/**
 * Replaces the allocator every tern allocation goes through (before any other
 * tern call).  Any of the three may be NULL to keep the libc default.  The
 * functions must be thread-safe.  Used by the tests to inject failures.
 */
TERN_API void tern_set_allocator(void *(*xmalloc)(size_t), void *(*xrealloc)(void *, size_t),
                                 void (*xfree)(void *));
/** malloc through the tern allocator; NULL on failure. */
TERN_API void *tern_malloc(size_t n);
/** calloc through the tern allocator; NULL on failure or overflow. */
TERN_API void *tern_calloc(size_t count, size_t size);
/** realloc through the tern allocator; NULL on failure (p stays valid). */
TERN_API void *tern_realloc(void *p, size_t n);
/** free through the tern allocator; NULL is a no-op. */
TERN_API void tern_free(void *p);
/** A heap copy of s (NUL-terminated), or NULL. Free with tern_free(). */
TERN_API char *tern_strdup(const char *s);

/* ------------------------------------------------------------------------ */
/* Arena: a bump allocator released in one step                               */

typedef struct tern_arena_chunk tern_arena_chunk;

/**
 * A bump allocator.  Memory comes from chunks of `chunk_size` bytes; an
 * allocation larger than a quarter chunk gets its own block.  Reset releases
 * every allocation at once and keeps the first chunk for reuse, so a request
 * served after warm-up allocates nothing from the heap.  Not thread-safe.
 * The unused tail of each chunk is poisoned under AddressSanitizer.
 */
typedef struct tern_arena {
    tern_arena_chunk *head; /* current chunk (newest first) */
    tern_arena_chunk *big;  /* list of oversize blocks */
    size_t chunk_size;
    size_t used;  /* bytes handed out since the last reset */
    size_t limit; /* 0 = unlimited; else cap on `used` */
} tern_arena;

/** Initializes caller storage; chunk_size 0 means 8 KiB. No allocation yet. */
TERN_API void tern_arena_init(tern_arena *a, size_t chunk_size);
/** Frees everything the arena holds. The arena may be initialized again. */
TERN_API void tern_arena_deinit(tern_arena *a);
/** Releases all allocations, keeping the first chunk. */
TERN_API void tern_arena_reset(tern_arena *a);
/** n bytes aligned to 16, or NULL on OOM or when the arena's limit is hit. */
TERN_API void *tern_arena_alloc(tern_arena *a, size_t n);
/** A NUL-terminated arena copy of s, or NULL. */
TERN_API char *tern_arena_strndup(tern_arena *a, const char *s, size_t n);
/** printf into the arena; the result is NUL-terminated, or NULL on OOM. */
TERN_API char *tern_arena_printf(tern_arena *a, const char *fmt, ...) TERN_PRINTF(2, 3);

/* ------------------------------------------------------------------------ */
/* Growable byte buffer with a hard cap                                       */

/**
 * A growable buffer.  `max` caps its size (0 = SIZE_MAX/2): an append that
 * would pass it fails with TERN_ETOOBIG and leaves the buffer unchanged.
 * The memory is the buffer's own (tern_malloc); `p` may be NULL while empty.
 */
typedef struct tern_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
} tern_buf;

/** Initializes an empty buffer with the given cap. Allocates nothing. */
TERN_API void tern_buf_init(tern_buf *b, size_t max);
/** Frees the memory; the buffer is empty and usable again. */
TERN_API void tern_buf_deinit(tern_buf *b);
/** Makes room for n more bytes. 0, TERN_ENOMEM or TERN_ETOOBIG. */
TERN_API int tern_buf_reserve(tern_buf *b, size_t n);
/** Appends n bytes. 0, TERN_ENOMEM or TERN_ETOOBIG. */
TERN_API int tern_buf_append(tern_buf *b, const void *p, size_t n);
/** Appends formatted text (no NUL kept in len). 0 or a TERN_E* code. */
TERN_API int tern_buf_printf(tern_buf *b, const char *fmt, ...) TERN_PRINTF(2, 3);
/** Appends the decimal form of v. */
TERN_API int tern_buf_append_u64(tern_buf *b, uint64_t v);
/** Drops the first n bytes, moving the rest to the front. */
TERN_API void tern_buf_consume(tern_buf *b, size_t n);

/* ------------------------------------------------------------------------ */
/* Logging                                                                    */

enum tern_log_level { TERN_LOG_DEBUG, TERN_LOG_INFO, TERN_LOG_WARN, TERN_LOG_ERROR, TERN_LOG_OFF };

/** Messages below this level are dropped (default TERN_LOG_INFO; env TERN_LOG). */
TERN_API void tern_log_set_level(int level);
/** The current level. */
TERN_API int tern_log_level(void);
/**
 * Writes one line to stderr: `time level message`.  The line is written with a
 * single write(2), so lines from several threads never interleave.
 */
TERN_API void tern_log(int level, const char *fmt, ...) TERN_PRINTF(2, 3);

/* ------------------------------------------------------------------------ */
/* Clock                                                                      */

/** Monotonic milliseconds (CLOCK_MONOTONIC). */
TERN_API int64_t tern_now_ms(void);

/** Writes the IMF-fixdate (RFC 9110 5.6.7) of t into out[29] (no NUL). */
TERN_API void tern_http_date(int64_t unix_seconds, char out[29]);

#ifdef __cplusplus
}
#endif
#endif /* TERN_CORE_H */
