/*
 * multipart.h - the multipart/form-data push parser and collector (internal).
 *
 * Two layers, both in multipart.c:
 *
 *   - mp_parser: a push parser for RFC 7578 bodies with the RFC 2046 5.1.1
 *     framing.  Bytes go in through mp_feed in pieces of any size; parts come
 *     out through callbacks: on_part_begin with the part's parsed headers,
 *     on_data for body bytes as they stream, on_part_end.  It keeps no part
 *     data: besides the caller's header buffer (one part's header section,
 *     at most max_header_bytes) it holds only the length of a partial
 *     delimiter match, whose bytes are the delimiter's own.  The result for
 *     a body does not depend on how it was split into pieces.
 *
 *   - tern__multipart_collect: pulls a body through a read function, runs
 *     the parser and builds the tern_part array in an arena, with the limits
 *     of tern_multipart_limits, spooling large files to unlinked temporary
 *     files.  tern_req_multipart (request.c) is glue around it.
 *
 * Strictness (where the RFCs let a recipient choose, the parser rejects):
 *   - the boundary is 1..70 bchars, not ending in a space (mp_boundary_valid);
 *   - the delimiter is CRLF "--" boundary; the first one may start the body
 *     (no CRLF before it) and whatever precedes it is the ignored preamble;
 *   - after a delimiter only transport padding (SP / HTAB) then CRLF, or "--"
 *     (the close delimiter) may follow; anything else, e.g. the boundary
 *     text continued, is -400 (RFC 2046: the delimiter must not occur in a
 *     part); everything after the close delimiter is the ignored epilogue;
 *   - part header lines end in CRLF (a bare CR or LF is -400); no obs-fold;
 *     names are tokens; values are VCHAR / obs-text / SP / HTAB;
 *   - Content-Disposition is required, once, with type form-data and a name
 *     parameter; name, filename and filename* at most once each; values are
 *     tokens or quoted-strings; Content-Type at most once, `type/subtype`
 *     then optional parameters;
 *   - a body of only the close delimiter is a valid form with zero parts
 *     (browsers send that for an empty form).
 */
#ifndef TERN_BODY_MULTIPART_H
#define TERN_BODY_MULTIPART_H

#include <stdint.h>

#include "tern/body.h"
#include "tern/core.h"

#define MP_BOUNDARY_MAX 70  /* RFC 2046 5.1.1 */
#define MP_FILENAME_MAX 255 /* bytes of a sanitized file name */

/* A part's header section as parsed; every slice is valid only during the
 * on_part_begin call (it points into the header buffer). */
typedef struct mp_part_head {
    tern_str name;         /* the name parameter, unquoted; not percent-decoded */
    tern_str filename;     /* filename* (decoded, when its charset is UTF-8)
                            * else filename (unquoted, not percent-decoded);
                            * NOT sanitized; .p NULL when the part has neither;
                            * .p set and .n 0 for filename="" */
    tern_str content_type; /* the Content-Type value, OWS trimmed; .p NULL if absent */
} mp_part_head;

/*
 * Callbacks; any may be NULL.  Each returns 0 to go on or a negative value,
 * which stops the parser: mp_feed returns that value unchanged from then on.
 * on_data may be called several times per part and with n == 0 never.
 */
typedef struct mp_callbacks {
    int (*on_part_begin)(void *ctx, const mp_part_head *h);
    int (*on_data)(void *ctx, const char *p, size_t n);
    int (*on_part_end)(void *ctx);
} mp_callbacks;

typedef struct mp_parser {
    const mp_callbacks *cb;
    void *ctx;
    char *hdr;      /* caller's buffer for one header section */
    size_t hdr_cap; /* its size: the max_header_bytes limit */
    size_t hdr_len;
    size_t match;                    /* delimiter bytes matched at the end of the last input */
    size_t dlen;                     /* 4 + boundary length */
    int state;                       /* internal */
    int result;                      /* sticky return value once done or failed */
    int hdr_overflow;                /* 1 when the failure was the header section limit */
    const char *reason;              /* static English text for a -400, else NULL */
    char delim[4 + MP_BOUNDARY_MAX]; /* CR LF '-' '-' boundary */
} mp_parser;

/** 1 when b is a valid RFC 2046 boundary (1..70 bchars, last not a space). */
int mp_boundary_valid(tern_str b);

/*
 * Prepares p for one body.  hdr_buf must hold max_header_bytes bytes and
 * outlive the parser: a part's header lines (each with its CRLF, without
 * the empty line that ends the section) may take at most that many bytes,
 * more is -400.  cb and ctx are kept.  Returns 0, or TERN_EINVAL when the
 * boundary is not valid (p is then unusable).
 */
int mp_parser_init(mp_parser *p, tern_str boundary, char *hdr_buf, size_t max_header_bytes,
                   const mp_callbacks *cb, void *ctx);

/*
 * Feeds in[0..n).  Returns 0 (all consumed, need more), 1 (the close
 * delimiter was seen; the rest of the input, and of any later input, is the
 * epilogue and is ignored), -400 (malformed: p->reason says why), or the
 * negative value a callback returned.  Results 1 and < 0 are sticky.
 */
int mp_feed(mp_parser *p, const char *in, size_t n);

/*
 * Writes the safe form of a client's file name to out (NUL-terminated) and
 * returns its length (1..MP_FILENAME_MAX):
 *   1. invalid UTF-8 (bad sequences, overlongs, surrogates, > U+10FFFF)
 *      becomes '_', one per byte;
 *   2. control characters (C0, DEL, C1) and the bidirectional formatting
 *      characters (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069)
 *      are dropped;
 *   3. only what follows the last '/' or '\\' is kept;
 *   4. leading dots and spaces are stripped;
 *   5. the name is cut to MP_FILENAME_MAX bytes on a character boundary;
 *   6. trailing dots and spaces are stripped;
 *   7. an empty result becomes "file".
 * Percent-escapes are not decoded.  The result never contains '/', '\\',
 * NUL or a control character and never starts with '.'.
 */
size_t tern__sanitize_filename(tern_str in, char out[MP_FILENAME_MAX + 1]);

/*
 * Reads a multipart/form-data body with the given boundary (already
 * unquoted) and builds its parts in arena a.
 *
 * read(read_ctx, buf, cap) returns the number of bytes put in buf (> 0), 0
 * at the end of the body, or a negative TERN_E* that is returned unchanged
 * (with *status 0: the reader has recorded the problem).  The body is read
 * to its end, the epilogue included.  lim NULL means the defaults; in
 * lim->max_total 0 means no limit (the caller substitutes the route's body
 * limit before calling).
 *
 * On success returns 0 and sets *parts (arena memory, NULL when *nparts is
 * 0) and *nparts.  Spooled parts own an open descriptor: the caller must
 * call tern__multipart_release(*parts, *nparts) when done with them.
 *
 * On failure no descriptor stays open, *parts is NULL, *nparts 0, and:
 *   TERN_EINVAL   *status 415: the boundary is not valid;
 *                 *status 400: the body is malformed or ended early;
 *   TERN_ETOOBIG  *status 413: a limit was passed;
 *   TERN_ENOMEM   *status 503;
 *   TERN_ESYS     *status 500: a temporary file could not be created or
 *                 written (errno kept from the failing call);
 *   < 0 other     what read() returned, *status 0.
 * *detail (static or arena text, NULL with *status 0) says what was wrong,
 * for the problem's "detail" member.
 */
int tern__multipart_collect(tern_arena *a, tern_str boundary, const tern_multipart_limits *lim,
                            long (*read)(void *ctx, char *buf, size_t cap), void *read_ctx,
                            tern_part **parts, unsigned *nparts, int *status, const char **detail);

/** Closes the descriptors of spooled parts (fd set to -1); NULL/0 is a no-op. */
void tern__multipart_release(tern_part *parts, unsigned n);

#endif /* TERN_BODY_MULTIPART_H */
