/*
 * h1.h - the HTTP/1.1 request parser and chunked decoder (internal).
 *
 * The parser is incremental and zero-copy: every tern_str it fills points into
 * the caller's buffer.  It is strict: where RFC 9112 lets a server reject or
 * repair, it rejects.  The rules it enforces are listed in parser.c and in
 * ../shared/specs/http1.md section 1; each has a test in
 * tests/unit/test_h1_parse.c.
 */
#ifndef TERN_H1_H
#define TERN_H1_H

#include <stdint.h>

#include "tern/core.h"

typedef struct h1_header {
    tern_str name;  /* as sent (case preserved); a token */
    tern_str value; /* leading/trailing OWS stripped */
} h1_header;

typedef struct h1_limits {
    size_t max_request_line; /* bytes of the request line, CRLF excluded -> 414 */
    size_t max_header_bytes; /* bytes of the header section after the request line -> 431 */
    unsigned max_headers;    /* field lines -> 431; also the size of headers[] */
} h1_limits;

/* h1_request.flags */
enum {
    H1_HAS_CL = 1u << 0,          /* a valid Content-Length was present */
    H1_CHUNKED = 1u << 1,         /* Transfer-Encoding: chunked (final coding) */
    H1_KEEPALIVE = 1u << 2,       /* connection persists after this request */
    H1_EXPECT_CONTINUE = 1u << 3, /* Expect: 100-continue */
    H1_ASTERISK = 1u << 4,        /* target is "*" (OPTIONS only) */
    H1_ABSOLUTE = 1u << 5,        /* target was absolute-form */
};

typedef struct h1_request {
    tern_str method; /* token, case-sensitive */
    tern_str target; /* request-target as sent */
    tern_str path;   /* origin-form path (from absolute-form: the path part, "/" if empty) */
    tern_str query;  /* after '?', without it; empty if none */
    tern_str host;   /* Host header value (or authority of absolute-form) */
    unsigned minor;  /* HTTP/1.<minor>: 0 or 1 */
    unsigned flags;  /* H1_* */
    uint64_t content_length; /* valid when H1_HAS_CL */
    unsigned nheaders;
    h1_header *headers; /* caller-provided array of limits->max_headers entries */
    size_t head_len;    /* bytes of the head including the final CRLF CRLF */
} h1_request;

/*
 * Parses a request head from buf[0..len).
 *
 * r->headers must point at an array of lim->max_headers entries before the
 * call; all other fields are outputs.  *scanned carries state between calls on
 * the same head: set it to 0 before the first call and pass it back unchanged
 * while the function returns 0, so bytes already examined are not scanned for
 * the end of the head again.
 *
 * Returns:
 *   > 0  the head is complete and valid; the value is r->head_len
 *     0  incomplete: call again with more bytes (same buf start, larger len)
 *   < 0  the negated HTTP status to answer before closing the connection:
 *        -400 malformed, -414 request line too long, -431 header section or
 *        count too large, -501 unknown transfer coding / method too long,
 *        -505 unsupported HTTP version.
 * The limits are enforced on incomplete input too (a 9 KiB request line with
 * no CRLF yet already gives -414).
 */
int h1_parse_request(h1_request *r, const char *buf, size_t len, const h1_limits *lim,
                     size_t *scanned);

/* Chunked transfer coding decoder (RFC 9112 section 7.1). */
typedef struct h1_chunked {
    int state;            /* internal */
    uint64_t remaining;   /* bytes left in the current chunk */
    size_t line_len;      /* bytes of the current size/ext/trailer line so far */
    size_t trailer_bytes; /* total trailer bytes so far */
    unsigned size_digits;
} h1_chunked;

#define H1_CHUNK_LINE_MAX 4096  /* chunk-size line incl. extensions -> 400 */
#define H1_TRAILER_MAX    16384 /* all trailer field lines -> 431 */

/** Initializes the decoder for a new body. */
void h1_chunked_init(h1_chunked *d);

/*
 * Feeds in[0..n) to the decoder.  Chunk data is copied to out (at most out_cap
 * bytes; *out_n gets the number written) and *consumed gets the input bytes
 * used.  Trailers are parsed and dropped.
 *
 * Returns 1 when the body is complete (the final CRLF consumed; bytes after it
 * belong to the next request), 0 when more input is needed (all input was
 * consumed, or out is full: if *out_n == out_cap and data remains, the caller
 * decides: the body limit was hit), or a negated status: -400 bad framing
 * (bad hex, overflow, missing CRLF, bare LF or CR, oversize line), -431
 * trailers too large.
 */
int h1_chunked_feed(h1_chunked *d, const char *in, size_t n, size_t *consumed, char *out,
                    size_t out_cap, size_t *out_n);

#endif /* TERN_H1_H */
