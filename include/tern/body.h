/*
 * tern/body.h - request bodies and request metadata: media types, JSON,
 * urlencoded forms and query strings, cookies, multipart/form-data.
 *
 * Two levels:
 *   - pure parsers over byte slices (tern_media_type_parse, tern_json_parse,
 *     tern_form_parse, tern_cookie_parse, the multipart parser): no I/O, no
 *     global state, fuzzed;
 *   - request helpers (tern_req_json, tern_req_form, tern_req_query_form,
 *     tern_req_cookie, tern_req_multipart) that read the body, apply the
 *     route's limits and, on failure, record the right problem so that a
 *     handler can just `return rc;` and the client gets a 400/413/415
 *     problem+json that says what was wrong.
 *
 * JSON values are jansson's json_t (Debian libjansson-dev).
 */
#ifndef TERN_BODY_H
#define TERN_BODY_H

#include <jansson.h>

#include "core.h"
#include "http.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Media types (RFC 9110 section 8.3.1)                                       */

#define TERN_MEDIA_MAX_PARAMS 8

typedef struct tern_media_param {
    tern_str name;  /* a token; compare case-insensitively */
    tern_str value; /* token, or the inside of a quoted-string (escapes kept) */
} tern_media_param;

typedef struct tern_media_type {
    tern_str type;    /* e.g. "application" (as sent; compare case-insensitively) */
    tern_str subtype; /* e.g. "json" */
    tern_media_param params[TERN_MEDIA_MAX_PARAMS];
    unsigned nparams;
} tern_media_type;

/**
 * Parses a Content-Type value strictly: `type "/" subtype *( OWS ";" OWS
 * name "=" value )` with tokens per RFC 9110 5.6.2 and values as token or
 * quoted-string.  Anything else (empty, a missing subtype, a space inside a
 * token, a tab or control character, a duplicate parameter name, more than
 * TERN_MEDIA_MAX_PARAMS parameters, an empty parameter as in
 * "application/json;", trailing junk) is TERN_EINVAL and leaves *out zeroed.
 * All slices point into text.  Returns 0 or TERN_EINVAL.
 */
TERN_API int tern_media_type_parse(tern_str text, tern_media_type *out);
/** The value of parameter `name` (case-insensitive), or .p NULL if absent. */
TERN_API tern_str tern_media_type_param(const tern_media_type *mt, const char *name);
/**
 * 1 when mt is the media type `pattern` ("application/json"), compared
 * case-insensitively.  A pattern "application/<star>+json" matches any
 * subtype ending in "+json" (with at least one character before it);
 * "type/<star>" and "<star>/<star>" match any subtype / any type.
 */
TERN_API int tern_media_type_is(const tern_media_type *mt, const char *pattern);

/* ------------------------------------------------------------------------ */
/* JSON                                                                       */

/** Where a JSON text went wrong: 1-based line and column (in code points). */
typedef struct tern_json_error {
    unsigned line, column;
    size_t offset;      /* byte offset */
    const char *reason; /* static English text: "expected ',' or '}' after an object member" */
} tern_json_error;

/**
 * Checks that text is one JSON value per RFC 8259 (optionally surrounded by
 * whitespace): valid UTF-8 (no overlongs, no surrogates), escapes valid
 * (\u surrogate pairs paired), nesting at most max_depth arrays/objects, no
 * NUL (also not as \u0000).  Does not allocate; runs in linear time with no
 * recursion.  err may be NULL.  Returns 0, or TERN_EINVAL with *err filled
 * (also for max_depth above 1024), or TERN_ETOOBIG (nesting too deep; *err
 * filled).
 */
TERN_API int tern_json_check(tern_str text, unsigned max_depth, tern_json_error *err);

/**
 * tern_json_check, then parses with jansson (duplicate object keys are
 * rejected, integers kept as json_int_t exactly; an integer that does not fit
 * int64 is an error).  *out gets a new reference (json_decref it), or NULL
 * on failure.  Returns 0, TERN_EINVAL (err filled, reason names what was
 * wrong), TERN_ETOOBIG (depth), or TERN_ENOMEM.
 */
TERN_API int tern_json_parse(tern_str text, unsigned max_depth, json_t **out, tern_json_error *err);

/**
 * Reads the request body as JSON.  The request must carry Content-Type
 * application/json or application/<star>+json, with no charset or
 * charset=utf-8 (else 415); the body must not be empty and must parse (else
 * 400 naming line, column and what was expected); nesting is capped by
 * cfg.json_max_depth (default 64).  *out is owned by the request (released
 * when the request ends; json_incref to keep it longer is NOT allowed: copy
 * with json_deep_copy).  On failure the problem is recorded: a handler
 * returns rc and the framework answers it.  Returns 0 or a TERN_E* code.
 */
TERN_API int tern_req_json(tern_req *req, json_t **out);

/**
 * Writes a jansson value through the JSON writer (objects keep insertion
 * order).  Returns 0 or the writer's sticky error (a string that is not
 * UTF-8 cannot occur in jansson values; nesting beyond TERN_JW_MAX_DEPTH
 * gives TERN_ETOOBIG).
 */
TERN_API int tern_jw_json(tern_jw *w, const json_t *v);

/* ------------------------------------------------------------------------ */
/* application/x-www-form-urlencoded and query strings                        */

typedef struct tern_kv {
    tern_str key;   /* percent-decoded */
    tern_str value; /* percent-decoded */
} tern_kv;

typedef struct tern_form {
    tern_kv *fields; /* in order of appearance; repeated keys repeat */
    unsigned n;
} tern_form;

#define TERN_FORM_MAX_FIELDS 256 /* default field cap for request helpers */

/**
 * Parses `a=1&b=x%20y&b=z` into decoded fields allocated in the arena.
 * plus_is_space: 1 for forms and query strings (WHATWG), 0 to keep '+'.
 * Empty pairs (`a=1&&b=2`) are skipped; a key without '=' has an empty value.
 * Each key and value is a NUL-terminated arena copy.  Returns 0,
 * TERN_EINVAL (an invalid percent-escape or a decoded NUL; *bad_at, if not
 * NULL, gets the byte offset of the pair holding it), TERN_ETOOBIG (more than
 * max_fields fields; 0 allows none), or TERN_ENOMEM.  On any error *out is
 * empty.
 */
TERN_API int tern_form_parse(tern_arena *a, tern_str text, int plus_is_space, unsigned max_fields,
                             tern_form *out, size_t *bad_at);
/** The first value for key, or .p NULL if absent. */
TERN_API tern_str tern_form_get(const tern_form *f, const char *key);
/** Up to max values for key, in order; returns how many exist in total. */
TERN_API unsigned tern_form_get_all(const tern_form *f, const char *key, tern_str *out,
                                    unsigned max);
/**
 * Typed accessors for the first value of key.  Return 0 (and set *out),
 * TERN_ENOTFOUND (absent), or TERN_EINVAL (present but not valid, including
 * empty).  Integers follow JSON's grammar within int64: `-?(0|[1-9][0-9]*)`,
 * so "-0" is 0 while "007", "+1", "0x10" and "1e3" are refused.  Numbers are
 * finite decimals with an optional exponent (".5" and "5." accepted; no
 * sign '+', nan, inf or hex), parsed in the C locale.  Booleans are exactly
 * true, false, 1, 0.
 */
TERN_API int tern_form_int(const tern_form *f, const char *key, int64_t *out);
TERN_API int tern_form_double(const tern_form *f, const char *key, double *out);
TERN_API int tern_form_bool(const tern_form *f, const char *key, int *out);

/**
 * The request's query string, parsed once and cached for the request.
 * Returns 0, or TERN_EINVAL / TERN_ETOOBIG with a 400 recorded.
 */
TERN_API int tern_req_query_form(tern_req *req, const tern_form **out);
/**
 * The body as application/x-www-form-urlencoded (415 for any other
 * Content-Type; 400 for a bad escape; 413 over the limit).
 */
TERN_API int tern_req_form(tern_req *req, const tern_form **out);

/* ------------------------------------------------------------------------ */
/* Cookies (RFC 6265)                                                         */

/**
 * Parses a Cookie header (`a=1; b="x"`) into name/value pairs (values
 * unquoted, not decoded).  Pairs that break the RFC 6265 grammar (no '=',
 * a name that is not a token, bytes outside cookie-octet) are skipped, not
 * fatal: browsers send such cookies from other apps, and they do not count
 * toward max.  Names and values are NUL-terminated arena copies.  Returns 0
 * or TERN_ENOMEM / TERN_ETOOBIG (more than max pairs); on error *out is
 * empty.
 */
TERN_API int tern_cookie_parse(tern_arena *a, tern_str header, unsigned max, tern_form *out);
/** The value of cookie `name` from the request's Cookie header(s), or .p NULL. */
TERN_API tern_str tern_req_cookie(tern_req *req, const char *name);

/** Attributes of a Set-Cookie; zero-initialize, then set what you need. */
typedef struct tern_cookie {
    const char *name;      /* token */
    const char *value;     /* cookie-octets only (no space, quote, comma, ';', '\\') */
    const char *path;      /* default "/" */
    const char *domain;    /* default none (host-only) */
    int64_t max_age;       /* seconds; 0 = session cookie; < 0 = delete (Max-Age=0) */
    int secure;            /* add Secure (opt-in: HTTPS is terminated in front) */
    int allow_script;      /* 1 drops HttpOnly (HttpOnly is the default) */
    const char *same_site; /* "Strict", "Lax" (default) or "None" (requires secure) */
} tern_cookie;

/**
 * Formats a Set-Cookie header value into out.  Returns 0, TERN_EINVAL (a bad
 * name, value, path or domain character; a path not starting with '/';
 * name+value over 4096 bytes or a path over 1024; SameSite=None without
 * Secure or an unknown SameSite; a `__Secure-` name without Secure, or a
 * `__Host-` name without Secure, with a Domain, or with a Path other than
 * "/"), TERN_ETOOBIG (out's cap) or TERN_ENOMEM; out is unchanged on error.
 */
TERN_API int tern_cookie_format(tern_buf *out, const tern_cookie *c);
/** Adds a Set-Cookie header to the response (see tern_cookie_format). */
TERN_API int tern_set_cookie(tern_req *req, const tern_cookie *c);

/* ------------------------------------------------------------------------ */
/* multipart/form-data (RFC 7578)                                             */

typedef struct tern_part {
    tern_str name;         /* the form field name */
    tern_str filename;     /* sanitized file name; .p NULL for plain fields */
    tern_str content_type; /* the part's Content-Type, default "text/plain" */
    tern_str data;         /* the content when kept in memory (NUL-terminated) */
    const char *path;      /* spooled: "/proc/self/fd/N" of an unlinked temp file, else NULL */
    int fd;                /* spooled: the open file (offset 0), else -1; closed at request end */
    uint64_t size;         /* content bytes */
} tern_part;

typedef struct tern_multipart_limits {
    unsigned max_parts;      /* default 64 -> 413 "more than N parts" */
    size_t max_field_size;   /* non-file part, default 64 KiB -> 413 */
    uint64_t max_file_size;  /* one file, default 10 MiB -> 413 */
    uint64_t max_total;      /* whole body, default: the route's body limit -> 413 */
    size_t max_header_bytes; /* one part's header section, default 8 KiB -> 400 */
    size_t spool_threshold;  /* files larger go to a temp file, default 64 KiB */
    const char *tmp_dir;     /* default $TMPDIR or /tmp */
} tern_multipart_limits;

/** Fills the defaults above (max_total 0 = the route's body limit). */
TERN_API void tern_multipart_limits_init(tern_multipart_limits *lim);

/**
 * Reads a multipart/form-data body as it streams in: fields to memory, files
 * to memory up to spool_threshold and to a temporary file (mode 0600) past
 * it.  A temporary file is unlinked as soon as it is created and reached
 * through its descriptor, so it disappears when the request ends (the
 * descriptor is closed then) or the process dies, whatever happens.  File
 * names are sanitized: the last path component only (after '/' or '\\'), no
 * control or bidi-override characters, invalid UTF-8 bytes as '_', no
 * leading dots or spaces, at most 255 bytes, never empty ("file");
 * `filename*=UTF-8''...` is decoded and preferred.  lim may be NULL
 * (defaults).  On failure the problem is recorded (415 wrong type, 400
 * missing boundary or malformed body, 413 with a detail naming the limit).
 */
TERN_API int tern_req_multipart(tern_req *req, const tern_multipart_limits *lim,
                                const tern_part **parts, unsigned *nparts);

/* ------------------------------------------------------------------------ */
/* Streaming body access                                                      */

/**
 * Reads the next bytes of the request body into buf (for handlers that
 * stream uploads themselves).  Returns the number of bytes (> 0), 0 at the
 * end of the body, or a negative TERN_E* (with the problem recorded).  Do
 * not mix with tern_req_body on the same request.
 */
TERN_API long tern_req_read(tern_req *req, void *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TERN_BODY_H */
