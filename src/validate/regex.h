/*
 * regex.h - internals of the validation layer (never installed): the
 * linear-time pattern engine (regex.c) and the string formats (format.c).
 *
 * The regex engine compiles an ECMA-262-like subset (see docs/validation.md)
 * into a small program and runs it as a Thompson NFA simulation: every
 * position of the subject is visited once and every instruction at most once
 * per position, so matching is O(len(subject) * len(program)) whatever the
 * pattern.  Programs are capped at TERN_RX_MAX_INSTS instructions.
 *
 * Names are tern_-prefixed to stay clear of libc (glibc has re_search and
 * friends) but hidden from the shared library (no TERN_API).
 */
#ifndef TERN_VALIDATE_REGEX_H
#define TERN_VALIDATE_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "tern/core.h"

/* Upper bound on a compiled program; counted repetitions expand (a{3} is
 * three copies of a), so this bounds both memory and matching time. */
#define TERN_RX_MAX_INSTS 10000
/* Largest m or n in {m}, {m,}, {m,n}. */
#define TERN_RX_MAX_REPEAT 1000
/* Deepest group nesting (the compiler recurses once per level). */
#define TERN_RX_MAX_DEPTH 100

typedef struct tern_rx tern_rx;

/**
 * Compiles pattern (NUL-terminated UTF-8).  *out gets a program to release
 * with tern_rx_free.  Returns 0, TERN_EINVAL (syntax error: a reason with the
 * byte offset in err, which may be NULL), or TERN_ENOMEM.
 */
int tern_rx_compile(const char *pattern, tern_rx **out, char *err, size_t errlen);
/** Frees a program (NULL is a no-op). */
void tern_rx_free(tern_rx *rx);
/** Instructions in the compiled program (for tests and docs). */
size_t tern_rx_size(const tern_rx *rx);
/**
 * 1 when the program matches somewhere in s[0..n) (JSON Schema semantics:
 * not anchored unless the pattern uses ^ or $), 0 when not, TERN_ENOMEM when
 * a large program (over 256 instructions) could not get its scratch memory.
 * Invalid UTF-8 in s is read one byte at a time as U+FFFD.
 */
int tern_rx_search(const tern_rx *rx, const char *s, size_t n);

/**
 * The compiled program for pattern from a process-wide cache (compiled on
 * first use).  Thread-safe; lookups take no lock and do not allocate.
 * Returns 0 (*out set), TERN_EINVAL (the pattern does not compile; cached
 * too), or TERN_ENOMEM.
 */
int tern_rx_get(const char *pattern, const tern_rx **out);
/** Frees the cache.  Only when no other thread can be using it (tests). */
void tern_rx_cache_clear(void);

/* ------------------------------------------------------------------------ */
/* Formats (format.c)                                                         */

/** 1 when name is a supported format ("email", "uuid", "date-time", "uri"). */
int tern_fmt_known(const char *name);
/** 1 when s[0..n) is valid for format name, 0 when not (or unknown name). */
int tern_fmt_check(const char *name, const char *s, size_t n);
/** The default failure message for format name ("must be an email address"). */
const char *tern_fmt_message(const char *name);

int tern_fmt_email(const char *s, size_t n);
int tern_fmt_uuid(const char *s, size_t n);
int tern_fmt_date_time(const char *s, size_t n);
int tern_fmt_uri(const char *s, size_t n);

/**
 * 1 when s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), else 0.
 */
int tern_utf8_valid(const char *s, size_t n);

#endif /* TERN_VALIDATE_REGEX_H */
