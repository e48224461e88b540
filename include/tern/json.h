/*
 * tern/json.h - a streaming JSON writer into a tern_buf.
 *
 * The writer keeps a small fixed stack of open containers and inserts commas
 * itself, so callers write values in order.  It allocates nothing except when
 * the target buffer grows.  Strings are escaped per RFC 8259, and U+2028/2029
 * are escaped too so output is safe inside <script>.  Invalid UTF-8 is
 * refused: the write fails with TERN_EINVAL and the writer is poisoned
 * (every later call fails), so a half-valid document is never sent.
 */
#ifndef TERN_JSON_H
#define TERN_JSON_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TERN_JW_MAX_DEPTH 64

typedef struct tern_jw {
    tern_buf *out;
    int err;        /* first error, sticky */
    unsigned depth; /* open containers */
    unsigned char need_comma[TERN_JW_MAX_DEPTH + 1];
    unsigned char in_object[TERN_JW_MAX_DEPTH + 1];
    unsigned char after_key;
} tern_jw;

/** Starts a writer appending to out. */
TERN_API void tern_jw_init(tern_jw *w, tern_buf *out);
/** Opens an object `{`. */
TERN_API int tern_jw_obj_begin(tern_jw *w);
/** Closes the innermost object `}`. */
TERN_API int tern_jw_obj_end(tern_jw *w);
/** Opens an array `[`. */
TERN_API int tern_jw_arr_begin(tern_jw *w);
/** Closes the innermost array `]`. */
TERN_API int tern_jw_arr_end(tern_jw *w);
/** Writes an object key (inside an object, before its value). */
TERN_API int tern_jw_key(tern_jw *w, tern_str key);
/** Writes a string value (escaped; invalid UTF-8 fails with TERN_EINVAL). */
TERN_API int tern_jw_str(tern_jw *w, tern_str s);
/** Writes a NUL-terminated string value, or null when s is NULL. */
TERN_API int tern_jw_cstr(tern_jw *w, const char *s);
/** Writes a signed integer. */
TERN_API int tern_jw_int(tern_jw *w, int64_t v);
/**
 * Writes a finite double in its shortest round-trip form, always as a real
 * (2.0 is written "2.0"); NaN and infinities fail with TERN_EINVAL.
 */
TERN_API int tern_jw_double(tern_jw *w, double v);
/** Writes true or false. */
TERN_API int tern_jw_bool(tern_jw *w, int v);
/** Writes null. */
TERN_API int tern_jw_null(tern_jw *w);
/** Writes pre-serialized JSON as a value, unchecked (caller vouches). */
TERN_API int tern_jw_raw(tern_jw *w, tern_str json);
/** 0 when the document is complete and no call failed, else the error. */
TERN_API int tern_jw_finish(tern_jw *w);

/** Appends s to out with JSON string escaping, without quotes. */
TERN_API int tern_json_escape(tern_buf *out, tern_str s);

#ifdef __cplusplus
}
#endif
#endif /* TERN_JSON_H */
