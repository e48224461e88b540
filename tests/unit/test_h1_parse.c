/*
 * test_h1_parse.c - the HTTP/1.1 request head parser (src/http/parser.c).
 *
 * One table of raw requests with the expected result (complete, incomplete
 * or the negated status) and the fields to check; every row is also parsed
 * incrementally (grown one byte at a time, and in two pieces split at every
 * position) and must give the one-shot result.  Each input is copied into a
 * buffer of exactly its length so AddressSanitizer sees any over-read.
 * Focused tests cover the limits, pipelining, the headers array and the
 * *scanned state.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

#define OK 1000000 /* expected rc: complete, head_len == the whole input */
#define NONE "\x01(absent)" /* expected tern_str: p == NULL */
#define RAW(s) .raw = (s), .len = sizeof(s) - 1
#define FLAGS(f) .flags = (f), .chk_flags = 1
#define H11 "HTTP/1.1\r\nHost: h\r\n"
#define KA H1_KEEPALIVE

typedef struct pcase {
    const char *name;
    const char *raw;
    size_t len;
    int rc;
    const char *method, *path, *query, *host; /* NULL: not checked */
    unsigned flags;
    int chk_flags;
    uint64_t cl;
    int chk_cl;
} pcase;

static const h1_limits deflim = { 8192, 8192, 64 };

static const pcase cases[] = {
    /* --- valid requests --- */
    { "simple get", RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), OK, "GET", "/", NONE, "a", FLAGS(KA) },
    { "path and query", RAW("GET /p/q?x=1&y=%20 " H11 "\r\n"), OK, "GET", "/p/q", "x=1&y=%20", "h",
      FLAGS(KA) },
    { "empty query", RAW("GET /p? " H11 "\r\n"), OK, NULL, "/p", "", NULL, FLAGS(KA) },
    { "query with slash and qmark", RAW("GET /a?b/c?d " H11 "\r\n"), OK, NULL, "/a", "b/c?d" },
    { "lowercase method is a token", RAW("get / " H11 "\r\n"), OK, "get" },
    { "method of tchars", RAW("M-!#$%&'*+.^_`|~9 / " H11 "\r\n"), OK, "M-!#$%&'*+.^_`|~9" },
    { "method of 32 bytes", RAW("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / " H11 "\r\n"), OK },
    { "http/1.0 without host", RAW("GET / HTTP/1.0\r\n\r\n"), OK, "GET", "/", NONE, NONE, FLAGS(0) },
    { "http/1.0 keep-alive", RAW("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), OK, FLAGS(KA) },
    { "http/1.0 Keep-Alive any case", RAW("GET / HTTP/1.0\r\nconnection: Keep-ALIVE\r\n\r\n"), OK,
      FLAGS(KA) },
    { "http/1.1 close", RAW("GET / " H11 "Connection: close\r\n\r\n"), OK, FLAGS(0) },
    { "connection list with close", RAW("GET / " H11 "Connection: Upgrade, CLOSE , x\r\n\r\n"), OK,
      FLAGS(0) },
    { "connection close and keep-alive", RAW("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
      OK, FLAGS(0) },
    { "connection lines combine", RAW("GET / " H11 "Connection: x\r\nConnection: close\r\n\r\n"), OK,
      FLAGS(0) },
    { "connection empty elements", RAW("GET / " H11 "Connection: ,, close ,\r\n\r\n"), OK, FLAGS(0) },
    { "connection not a token", RAW("GET / " H11 "Connection: close x\r\n\r\n"), -400 },
    { "connection other token keeps alive", RAW("GET / " H11 "Connection: te\r\n\r\n"), OK, FLAGS(KA) },
    { "value ows stripped", RAW("GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n"), OK, NULL, NULL, NULL, "a" },
    { "empty header value", RAW("GET / " H11 "X-Empty:\r\n\r\n"), OK },
    { "obs-text value kept", RAW("GET / " H11 "X: \xa0\x85 caf\xc3\xa9\r\n\r\n"), OK },
    { "htab inside value", RAW("GET / " H11 "X: a\tb\r\n\r\n"), OK },
    { "leading crlf x1", RAW("\r\nGET / " H11 "\r\n"), OK, "GET" },
    { "leading crlf x4", RAW("\r\n\r\n\r\n\r\nGET / " H11 "\r\n"), OK, "GET" },

    /* --- Content-Length --- */
    { "content-length", RAW("POST /x " H11 "Content-Length: 5\r\n\r\n"), OK, "POST", FLAGS(KA | H1_HAS_CL),
      .cl = 5, .chk_cl = 1 },
    { "content-length 0", RAW("POST /x " H11 "content-length: 0\r\n\r\n"), OK, FLAGS(KA | H1_HAS_CL),
      .cl = 0, .chk_cl = 1 },
    { "content-length leading zeros", RAW("POST /x " H11 "Content-Length: 007\r\n\r\n"), OK, .cl = 7,
      .chk_cl = 1 },
    { "content-length with ows", RAW("POST /x " H11 "Content-Length:  5 \r\n\r\n"), OK, .cl = 5,
      .chk_cl = 1 },
    { "content-length identical list", RAW("POST /x " H11 "Content-Length: 5, 5,5\r\n\r\n"), OK, .cl = 5,
      .chk_cl = 1 },
    { "content-length identical lines", RAW("POST /x " H11 "Content-Length: 5\r\nContent-Length: 05\r\n\r\n"),
      OK, .cl = 5, .chk_cl = 1 },
    { "content-length cap 1e15", RAW("POST /x " H11 "Content-Length: 1000000000000000\r\n\r\n"), OK,
      .cl = 1000000000000000ull, .chk_cl = 1 },
    { "content-length over cap", RAW("POST /x " H11 "Content-Length: 1000000000000001\r\n\r\n"), -400 },
    { "content-length uint64 overflow", RAW("POST /x " H11 "Content-Length: 18446744073709551616\r\n\r\n"),
      -400 },
    { "content-length different lines", RAW("POST /x " H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
      -400 },
    { "content-length different list", RAW("POST /x " H11 "Content-Length: 5, 6\r\n\r\n"), -400 },
    { "content-length trailing comma", RAW("POST /x " H11 "Content-Length: 5,\r\n\r\n"), -400 },
    { "content-length leading comma", RAW("POST /x " H11 "Content-Length: ,5\r\n\r\n"), -400 },
    { "content-length plus", RAW("POST /x " H11 "Content-Length: +5\r\n\r\n"), -400 },
    { "content-length minus", RAW("POST /x " H11 "Content-Length: -1\r\n\r\n"), -400 },
    { "content-length hex", RAW("POST /x " H11 "Content-Length: 0x5\r\n\r\n"), -400 },
    { "content-length empty", RAW("POST /x " H11 "Content-Length:\r\n\r\n"), -400 },
    { "content-length blank", RAW("POST /x " H11 "Content-Length:   \r\n\r\n"), -400 },
    { "content-length space inside", RAW("POST /x " H11 "Content-Length: 5 5\r\n\r\n"), -400 },
    { "content-length underscore", RAW("POST /x " H11 "Content-Length: 1_0\r\n\r\n"), -400 },
    { "content-length nbsp", RAW("POST /x " H11 "Content-Length: \xa0" "5\r\n\r\n"), -400 },
    { "content-length vtab", RAW("POST /x " H11 "Content-Length: \v5\r\n\r\n"), -400 },
    { "content-length nul", RAW("POST /x " H11 "Content-Length: 5\0\r\n\r\n"), -400 },
    { "content-length decimal", RAW("POST /x " H11 "Content-Length: 5.0\r\n\r\n"), -400 },

    /* --- Transfer-Encoding --- */
    { "chunked", RAW("POST /x " H11 "Transfer-Encoding: chunked\r\n\r\n"), OK, FLAGS(KA | H1_CHUNKED) },
    { "chunked any case and ows", RAW("POST /x " H11 "transfer-encoding:  ChUnKeD \r\n\r\n"), OK,
      FLAGS(KA | H1_CHUNKED) },
    { "te with content-length", RAW("POST /x " H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
      -400 },
    { "content-length after te", RAW("POST /x " H11 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
      -400 },
    { "te eee,chunked with cl", RAW("POST /x " H11 "Transfer-Encoding: eee, chunked\r\nContent-Length: 1\r\n\r\n"),
      -400 },
    { "chunked, chunked", RAW("POST /x " H11 "Transfer-Encoding: chunked, chunked\r\n\r\n"), -400 },
    { "chunked on two lines", RAW("POST /x " H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
      -400 },
    { "xchunked", RAW("POST /x " H11 "Transfer-Encoding: xchunked\r\n\r\n"), -501 },
    { "chunkedx", RAW("POST /x " H11 "Transfer-Encoding: chunkedx\r\n\r\n"), -501 },
    { "gzip", RAW("POST /x " H11 "Transfer-Encoding: gzip\r\n\r\n"), -501 },
    { "identity", RAW("POST /x " H11 "Transfer-Encoding: identity\r\n\r\n"), -501 },
    { "gzip, chunked", RAW("POST /x " H11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), -501 },
    { "gzip then chunked lines", RAW("POST /x " H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
      -501 },
    { "chunked not last", RAW("POST /x " H11 "Transfer-Encoding: chunked, gzip\r\n\r\n"), -400 },
    { "chunked not last across lines",
      RAW("POST /x " H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), -400 },
    { "te leading comma", RAW("POST /x " H11 "Transfer-Encoding: ,chunked\r\n\r\n"), -400 },
    { "te trailing comma", RAW("POST /x " H11 "Transfer-Encoding: chunked,\r\n\r\n"), -400 },
    { "te empty", RAW("POST /x " H11 "Transfer-Encoding:\r\n\r\n"), -400 },
    { "te parameter", RAW("POST /x " H11 "Transfer-Encoding: chunked;q=1\r\n\r\n"), -400 },
    { "te quoted", RAW("POST /x " H11 "Transfer-Encoding: \"chunked\"\r\n\r\n"), -400 },
    { "te in http/1.0", RAW("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400 },
    { "te vtab", RAW("POST /x " H11 "Transfer-Encoding: \vchunked\r\n\r\n"), -400 },

    /* --- Host --- */
    { "missing host 1.1", RAW("GET / HTTP/1.1\r\n\r\n"), -400 },
    { "two host lines", RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -400 },
    { "host any case", RAW("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n"), OK, NULL, NULL, NULL, "a" },
    { "empty host origin-form", RAW("GET / HTTP/1.1\r\nHost:\r\n\r\n"), OK, NULL, NULL, NULL, "" },
    { "host with port", RAW("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), OK, NULL, NULL, NULL,
      "example.com:8080" },
    { "host ipv4", RAW("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n"), OK },
    { "host ipv6", RAW("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), OK, NULL, NULL, NULL, "[::1]:8080" },
    { "host ipv6 v4-mapped", RAW("GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.4]\r\n\r\n"), OK },
    { "host pct-encoded", RAW("GET / HTTP/1.1\r\nHost: ex%41mple\r\n\r\n"), OK },
    { "host sub-delims", RAW("GET / HTTP/1.1\r\nHost: a!$&'()*+,;=b\r\n\r\n"), OK },
    { "host empty port", RAW("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), OK },
    { "host 1.0 invalid", RAW("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), -400 },
    { "host space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400 },
    { "host slash", RAW("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -400 },
    { "host userinfo", RAW("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), -400 },
    { "host qmark", RAW("GET / HTTP/1.1\r\nHost: a?b\r\n\r\n"), -400 },
    { "host hash", RAW("GET / HTTP/1.1\r\nHost: a#b\r\n\r\n"), -400 },
    { "host bad pct", RAW("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n"), -400 },
    { "host only port", RAW("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), -400 },
    { "host port letters", RAW("GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n"), -400 },
    { "host two colons", RAW("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"), -400 },
    { "host ipv6 unclosed", RAW("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), -400 },
    { "host ipv6 garbage", RAW("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n"), -400 },
    { "host ipv6 zone", RAW("GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n"), -400 },
    { "host ipv6 trailing", RAW("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), -400 },
    { "host obs-text", RAW("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"), -400 },

    /* --- request-target forms --- */
    { "absolute-form", RAW("GET http://ex.com/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n"), OK, "GET", "/a/b",
      "c=d", "ex.com", FLAGS(KA | H1_ABSOLUTE) },
    { "absolute-form https upper", RAW("GET HTTPS://Ex.com:443/ HTTP/1.1\r\nHost: x\r\n\r\n"), OK, NULL, "/",
      NONE, "Ex.com:443", FLAGS(KA | H1_ABSOLUTE) },
    { "absolute-form empty path", RAW("GET http://ex.com HTTP/1.1\r\nHost: ex.com\r\n\r\n"), OK, NULL, "/",
      NONE, "ex.com" },
    { "absolute-form query only", RAW("GET http://ex.com?q=1 HTTP/1.1\r\nHost: ex.com\r\n\r\n"), OK, NULL,
      "/", "q=1", "ex.com" },
    { "absolute-form ipv6", RAW("GET http://[::1]:8080/x HTTP/1.1\r\nHost: a\r\n\r\n"), OK, NULL, "/x", NONE,
      "[::1]:8080" },
    { "absolute-form 1.0 no host", RAW("GET http://ex.com/ HTTP/1.0\r\n\r\n"), OK, NULL, "/", NONE, "ex.com" },
    { "absolute-form no host header", RAW("GET http://ex.com/ HTTP/1.1\r\n\r\n"), -400 },
    { "absolute-form empty host header", RAW("GET http://ex.com/ HTTP/1.1\r\nHost:\r\n\r\n"), -400 },
    { "absolute-form invalid host header", RAW("GET http://ex.com/ HTTP/1.1\r\nHost: a b\r\n\r\n"), -400 },
    { "absolute-form empty authority", RAW("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), -400 },
    { "absolute-form scheme only", RAW("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n"), -400 },
    { "absolute-form userinfo", RAW("GET http://u:p@ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400 },
    { "absolute-form ftp", RAW("GET ftp://ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400 },
    { "absolute-form bad authority", RAW("GET http://ex!com:x/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400 },
    { "asterisk-form options", RAW("OPTIONS * " H11 "\r\n"), OK, "OPTIONS", "*", NONE, "h",
      FLAGS(KA | H1_ASTERISK) },
    { "asterisk-form get", RAW("GET * " H11 "\r\n"), -400 },
    { "asterisk-form longer", RAW("OPTIONS *x " H11 "\r\n"), -400 },
    { "authority-form connect", RAW("CONNECT ex.com:443 " H11 "\r\n"), -501 },
    { "authority-form get", RAW("GET ex.com:443 " H11 "\r\n"), -400 },
    { "relative target", RAW("GET a/b " H11 "\r\n"), -400 },
    { "fragment", RAW("GET /a#b " H11 "\r\n"), -400 },
    { "target ctl", RAW("GET /a\x01 " H11 "\r\n"), -400 },
    { "target del", RAW("GET /a\x7f " H11 "\r\n"), -400 },
    { "target obs-text", RAW("GET /caf\xc3\xa9 " H11 "\r\n"), -400 },
    { "target long bad byte late", RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x80 " H11 "\r\n"), -400 },
    { "target tab", RAW("GET /a\tb " H11 "\r\n"), -400 },
    { "target nul", RAW("GET /a\0b " H11 "\r\n"), -400 },

    /* --- request line --- */
    { "method 33 bytes", RAW("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / " H11 "\r\n"), -501 },
    { "method bad byte", RAW("G(T / " H11 "\r\n"), -400 },
    { "method empty", RAW(" / " H11 "\r\n"), -400 },
    { "two spaces after method", RAW("GET  / " H11 "\r\n"), -400 },
    { "two spaces after target", RAW("GET /  " H11 "\r\n"), -400 },
    { "tab separator", RAW("GET\t/ " H11 "\r\n"), -400 },
    { "space in target", RAW("GET /a b " H11 "\r\n"), -400 },
    { "trailing space", RAW("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), -400 },
    { "no version", RAW("GET /\r\nHost: h\r\n\r\n"), -400 },
    { "no target", RAW("GET\r\nHost: h\r\n\r\n"), -400 },
    { "empty request line", RAW("\r\n\r\n\r\n\r\n\r\n"), -400 },
    { "five leading crlf", RAW("\r\n\r\n\r\n\r\n\r\nGET / " H11 "\r\n"), -400 },
    { "leading bare lf", RAW("\nGET / " H11 "\r\n"), -400 },
    { "http/1.0", RAW("GET / HTTP/1.0\r\n\r\n"), OK },
    { "http/2.0", RAW("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), -505 },
    { "http/1.2", RAW("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), -505 },
    { "http/3.0", RAW("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), -505 },
    { "http/0.9", RAW("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), -505 },
    { "http/1", RAW("GET / HTTP/1\r\nHost: h\r\n\r\n"), -400 },
    { "lowercase http", RAW("GET / http/1.1\r\nHost: h\r\n\r\n"), -400 },
    { "version suffix", RAW("GET / HTTP/1.1x\r\nHost: h\r\n\r\n"), -400 },
    { "version two digits", RAW("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), -400 },
    { "version 11", RAW("GET / HTTP/11\r\nHost: h\r\n\r\n"), -400 },
    { "version letters", RAW("GET / HTTP/a.b\r\nHost: h\r\n\r\n"), -400 },
    { "garbage (tls hello)", RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), -400 },

    /* --- line endings --- */
    { "bare lf request line", RAW("GET / HTTP/1.1\nHost: h\r\n\r\n"), -400 },
    { "bare lf header", RAW("GET / HTTP/1.1\r\nHost: h\n\r\n"), -400 },
    { "bare lf end", RAW("GET / HTTP/1.1\r\nHost: h\r\n\n"), -400 },
    { "lf only", RAW("GET / HTTP/1.1\nHost: h\n\n"), -400 },
    { "bare cr request line", RAW("GET / HTTP/1.1\rHost: h\r\n\r\n"), -400 },
    { "bare cr in target", RAW("GET /\r/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400 },
    { "bare cr in value", RAW("GET / " H11 "X: a\rb\r\n\r\n"), -400 },
    { "cr before crlf", RAW("GET / " H11 "X: a\r\r\n\r\n"), -400 },
    { "cr line", RAW("GET / " H11 "\r\r\n\r\n"), -400 },
    { "cr X as line end", RAW("GET / " H11 "X: a\rX\r\n\r\n"), -400 },

    /* --- field syntax --- */
    { "space before colon", RAW("GET / " H11 "X : a\r\n\r\n"), -400 },
    { "space before colon host", RAW("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), -400 },
    { "tab before colon", RAW("GET / " H11 "X\t: a\r\n\r\n"), -400 },
    { "obs-fold", RAW("GET / " H11 "X: a\r\n b\r\n\r\n"), -400 },
    { "obs-fold tab", RAW("GET / " H11 "X: a\r\n\tb\r\n\r\n"), -400 },
    { "ws before first field", RAW("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), -400 },
    { "name continued across lines", RAW("GET / HTTP/1.1\r\nHo\r\nst: h\r\n\r\n"), -400 },
    { "no colon", RAW("GET / " H11 "X-Foo\r\n\r\n"), -400 },
    { "empty name", RAW("GET / " H11 ": x\r\n\r\n"), -400 },
    { "bad name byte", RAW("GET / " H11 "X(Y: a\r\n\r\n"), -400 },
    { "name obs-text", RAW("GET / " H11 "X\xe9: a\r\n\r\n"), -400 },
    { "nul in value", RAW("GET / " H11 "X: a\0b\r\n\r\n"), -400 },
    { "nul crlf in value", RAW("GET / " H11 "X: a\0\r\n\r\n"), -400 },
    { "del in value", RAW("GET / " H11 "X: a\x7f\r\n\r\n"), -400 },
    { "ctl in value", RAW("GET / " H11 "X: a\x01 b\r\n\r\n"), -400 },
    { "ctl in long value", RAW("GET / " H11 "X: aaaaaaaaaaaaaaaaaaaaaaaa\x1f" "aaaaaaaaaaaaaaaa\r\n\r\n"), -400 },
    { "esc in value", RAW("GET / " H11 "X: \x1b[0m\r\n\r\n"), -400 },

    /* --- Expect --- */
    { "expect 100-continue", RAW("POST / " H11 "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n"), OK,
      FLAGS(KA | H1_HAS_CL | H1_EXPECT_CONTINUE) },
    { "expect any case", RAW("POST / " H11 "expect: 100-Continue\r\n\r\n"), OK, FLAGS(KA | H1_EXPECT_CONTINUE) },
    { "expect in 1.0 ignored", RAW("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), OK, FLAGS(0) },
    { "expect other", RAW("POST / " H11 "Expect: 200-ok\r\n\r\n"), -417 },
    { "expect list", RAW("POST / " H11 "Expect: 100-continue, x\r\n\r\n"), -417 },
    { "expect empty", RAW("POST / " H11 "Expect:\r\n\r\n"), -417 },
    { "expect loses to missing host", RAW("POST / HTTP/1.1\r\nExpect: x\r\n\r\n"), -400 },

    /* --- incomplete --- */
    { "empty input", RAW(""), 0 },
    { "partial method", RAW("GE"), 0 },
    { "partial target", RAW("GET /abc"), 0 },
    { "partial version", RAW("GET / HTTP/1."), 0 },
    { "request line cr only", RAW("GET / HTTP/1.1\r"), 0 },
    { "no final crlf", RAW("GET / " H11), 0 },
    { "final cr only", RAW("GET / " H11 "\r"), 0 },
    { "partial field", RAW("GET / " H11 "X-A: b"), 0 },
    { "leading cr only", RAW("\r"), 0 },
    { "leading crlf cr", RAW("\r\n\r"), 0 },
};

/* A comparable digest of a parse: fields as offsets into the buffer. */
typedef struct digest {
    int rc;
    unsigned flags, minor, nheaders;
    uint64_t cl;
    size_t head_len;
    long off[5], len[5]; /* method, target, path, query, host: -1 NULL, -2 outside */
    long hoff[16][2];
} digest;

static long offset_of(tern_str s, const char *buf, size_t n)
{
    if (s.p == NULL)
        return -1;
    if (s.p < buf || s.p + s.n > buf + n)
        return -2;
    return (long)(s.p - buf);
}

static void digest_of(digest *d, int rc, const h1_request *r, const char *buf, size_t n)
{
    const tern_str *s[5] = { &r->method, &r->target, &r->path, &r->query, &r->host };

    memset(d, 0, sizeof *d);
    d->rc = rc;
    if (rc <= 0)
        return; /* outputs are unspecified unless complete */
    d->flags = r->flags;
    d->minor = r->minor;
    d->nheaders = r->nheaders;
    d->cl = r->content_length;
    d->head_len = r->head_len;
    for (int i = 0; i < 5; i++) {
        d->off[i] = offset_of(*s[i], buf, n);
        d->len[i] = (long)s[i]->n;
    }
    for (unsigned i = 0; i < r->nheaders && i < 16; i++) {
        d->hoff[i][0] = offset_of(r->headers[i].name, buf, n);
        d->hoff[i][1] = offset_of(r->headers[i].value, buf, n);
    }
}

/* Parses raw[0..n) from an exact-size copy, continuing from *scanned. */
static void parse_copy(digest *d, const char *raw, size_t n, const h1_limits *lim, size_t *scanned)
{
    char *copy = malloc(n ? n : 1);
    h1_header hdrs[64];
    h1_request r;
    int rc;

    cr_assert_not_null(copy);
    memcpy(copy, raw, n);
    memset(&r, 0xa5, sizeof r);
    r.headers = hdrs;
    rc = h1_parse_request(&r, copy, n, lim, scanned);
    digest_of(d, rc, &r, copy, n);
    free(copy);
}

static int digest_eq(const digest *a, const digest *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/*
 * Checks that raw gives the same result fed one byte at a time, in two
 * pieces split at every position, and that every prefix gives 0 or the
 * final result.
 */
static void check_incremental(const char *name, const char *raw, size_t n, const h1_limits *lim)
{
    digest one, d;
    size_t scanned = 0;

    parse_copy(&one, raw, n, lim, &scanned);
    /* grown one byte at a time, *scanned carried along */
    scanned = 0;
    for (size_t k = 0; k <= n; k++) {
        parse_copy(&d, raw, k, lim, &scanned);
        if (d.rc != 0) {
            cr_assert(digest_eq(&d, &one), "%s: byte-by-byte gives %d at %zu, one-shot %d", name, d.rc,
                      k, one.rc);
            break;
        }
        cr_assert(k < n || one.rc == 0, "%s: byte-by-byte stays incomplete, one-shot %d", name, one.rc);
    }
    /* two pieces */
    for (size_t k = 0; k <= n; k++) {
        scanned = 0;
        parse_copy(&d, raw, k, lim, &scanned);
        if (d.rc == 0)
            parse_copy(&d, raw, n, lim, &scanned);
        cr_assert(digest_eq(&d, &one), "%s: split at %zu gives %d, one-shot %d", name, k, d.rc, one.rc);
    }
}

Test(h1_parse, table)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pcase *c = &cases[i];
        char *copy = malloc(c->len ? c->len : 1);
        h1_header hdrs[64];
        h1_request r;
        size_t scanned = 0;
        int rc, want = c->rc == OK ? (int)c->len : c->rc;

        memcpy(copy, c->raw, c->len);
        memset(&r, 0, sizeof r);
        r.headers = hdrs;
        rc = h1_parse_request(&r, copy, c->len, &deflim, &scanned);
        cr_expect_eq(rc, want, "%s: got %d, want %d", c->name, rc, want);
        if (rc > 0 && rc == want) {
            const char *want_s[4] = { c->method, c->path, c->query, c->host };
            tern_str got_s[4] = { r.method, r.path, r.query, r.host };

            cr_expect_eq(r.head_len, (size_t)rc, "%s: head_len", c->name);
            for (int k = 0; k < 4; k++) {
                if (want_s[k] == NULL)
                    continue;
                if (strcmp(want_s[k], NONE) == 0) {
                    cr_expect_null(got_s[k].p, "%s: field %d should be absent", c->name, k);
                    continue;
                }
                cr_expect(tern_str_eq(got_s[k], tern_str_c(want_s[k])) && got_s[k].p != NULL,
                          "%s: field %d is '%.*s', want '%s'", c->name, k, (int)got_s[k].n,
                          got_s[k].p ? got_s[k].p : "", want_s[k]);
            }
            if (c->chk_flags)
                cr_expect_eq(r.flags, c->flags, "%s: flags 0x%x, want 0x%x", c->name, r.flags, c->flags);
            if (c->chk_cl)
                cr_expect_eq(r.content_length, c->cl, "%s: content_length", c->name);
        }
        free(copy);
        check_incremental(c->name, c->raw, c->len, &deflim);
    }
}

/* ------------------------------------------------------------------------ */
/* Outputs                                                                    */

Test(h1_parse, headers_array_and_pointers)
{
    static const char req[] = "POST /up?x HTTP/1.1\r\nHost: h\r\nX-A:  one \r\nx-b:\r\nContent-Length: 3\r\n\r\nabc";
    h1_header hdrs[8];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0;
    int rc = h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned);

    cr_assert_eq(rc, (int)(sizeof req - 4));
    cr_assert_eq(r.nheaders, 4);
    cr_assert(tern_str_eq(hdrs[0].name, TERN_STR("Host")));
    cr_assert(tern_str_eq(hdrs[1].name, TERN_STR("X-A")));
    cr_assert(tern_str_eq(hdrs[1].value, TERN_STR("one")));
    cr_assert(tern_str_eq(hdrs[2].name, TERN_STR("x-b")));
    cr_assert_eq(hdrs[2].value.n, 0);
    cr_assert(tern_str_eq(hdrs[3].value, TERN_STR("3")));
    cr_assert(tern_str_eq(r.target, TERN_STR("/up?x")));
    cr_assert_eq(r.minor, 1);
    /* everything points into the buffer */
    cr_assert_eq(r.method.p, req);
    cr_assert_eq(r.path.p, req + 5);
    cr_assert_eq(r.query.p, req + 9);
    cr_assert_eq(hdrs[1].value.p, req + 36);
}

Test(h1_parse, absolute_form_empty_path_is_static_slash)
{
    static const char req[] = "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n";
    h1_header hdrs[4];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0;

    cr_assert_gt(h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned), 0);
    cr_assert(tern_str_eq(r.path, TERN_STR("/")));
    cr_assert(r.path.p < req || r.path.p >= req + sizeof req);
    cr_assert_eq(r.host.p, req + 11);
    cr_assert(tern_str_eq(r.target, TERN_STR("http://h")));
}

Test(h1_parse, pipelined_requests)
{
    static const char req[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                              "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
                              "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
    h1_header hdrs[4];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0, off = 0;
    int rc;

    rc = h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned);
    cr_assert_eq(rc, 28);
    cr_assert(tern_str_eq(r.path, TERN_STR("/a")));
    off += (size_t)rc;
    scanned = 0;
    rc = h1_parse_request(&r, req + off, sizeof req - 1 - off, &deflim, &scanned);
    cr_assert_eq(rc, 48);
    cr_assert(tern_str_eq(r.path, TERN_STR("/b")));
    cr_assert_eq(r.content_length, 2);
    off += (size_t)rc + 2;
    scanned = 0;
    rc = h1_parse_request(&r, req + off, sizeof req - 1 - off, &deflim, &scanned);
    cr_assert_eq(rc, 28);
    cr_assert(tern_str_eq(r.path, TERN_STR("/c")));
    cr_assert_eq(off + (size_t)rc, sizeof req - 1);
}

Test(h1_parse, pipelined_second_request_bad_does_not_affect_first)
{
    static const char req[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\nX";
    h1_header hdrs[4];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0;

    cr_assert_eq(h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned), 28);
    scanned = 0;
    cr_assert_eq(h1_parse_request(&r, req + 28, sizeof req - 29, &deflim, &scanned), -400);
}

Test(h1_parse, leading_crlf_counted_in_head_len)
{
    static const char req[] = "\r\n\r\nGET / HTTP/1.0\r\n\r\n";
    h1_header hdrs[4];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0;

    cr_assert_eq(h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned), (int)(sizeof req - 1));
    cr_assert_eq(r.method.p, req + 4);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                     */

/* "GET /aaa...a HTTP/1.1" of exactly n bytes (n >= 16), then the rest. */
static char *long_line(size_t n, const char *rest)
{
    size_t rn = strlen(rest);
    char *s = malloc(n + rn + 1);

    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', n - 14);
    memcpy(s + n - 9, " HTTP/1.1", 9);
    memcpy(s + n, rest, rn + 1);
    return s;
}

static int parse_str(const char *s, size_t n, const h1_limits *lim)
{
    h1_header hdrs[64];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0;
    char *copy = malloc(n ? n : 1);
    int rc;

    memcpy(copy, s, n);
    rc = h1_parse_request(&r, copy, n, lim, &scanned);
    free(copy);
    return rc;
}

Test(h1_parse, request_line_limit)
{
    h1_limits lim = { 100, 8192, 64 };
    char *at = long_line(100, "\r\nHost: h\r\n\r\n");
    char *over = long_line(101, "\r\nHost: h\r\n\r\n");

    cr_assert_eq(parse_str(at, strlen(at), &lim), (int)strlen(at));
    cr_assert_eq(parse_str(over, strlen(over), &lim), -414);
    /* incomplete: 100 bytes and the CR are not yet too long; 101 bytes are */
    cr_assert_eq(parse_str(at, 100, &lim), 0);
    cr_assert_eq(parse_str(at, 101, &lim), 0);
    cr_assert_eq(parse_str(over, 101, &lim), -414);
    cr_assert_eq(parse_str(over, 100, &lim), 0);
    /* leading empty lines do not count */
    {
        char buf[300];
        int n = snprintf(buf, sizeof buf, "\r\n\r\n%s", at);

        cr_assert_eq(parse_str(buf, (size_t)n, &lim), n);
    }
    check_incremental("line at limit", at, strlen(at), &lim);
    check_incremental("line over limit", over, strlen(over), &lim);
    free(at);
    free(over);
}

Test(h1_parse, request_line_limit_errors_before_it_win)
{
    static const char early[] = "GET /\x01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n";
    static const char late[] = "GET /xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\x01\r\n\r\n";
    h1_limits lim = { 20, 8192, 64 };

    /* a bad byte inside the first 20 bytes decides, even on a long line */
    cr_assert_eq(parse_str(early, sizeof early - 1, &lim), -400);
    cr_assert_eq(parse_str(early, 8, &lim), -400);
    cr_assert_eq(parse_str(late, sizeof late - 1, &lim), -414);
    cr_assert_eq(parse_str(late, 21, &lim), -414);
    check_incremental("bad early", early, sizeof early - 1, &lim);
    check_incremental("bad late", late, sizeof late - 1, &lim);
}

Test(h1_parse, method_length_limit_incomplete)
{
    /* 33 token bytes with nothing else yet: already 501 */
    cr_assert_eq(parse_str("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG", 33, &deflim), -501);
    cr_assert_eq(parse_str("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF", 32, &deflim), 0);
}

Test(h1_parse, header_bytes_limit)
{
    /* section = "Host: h\r\n" (9) + "X: " + v + "\r\n" (5 + v) + "\r\n" (2) */
    h1_limits lim = { 8192, 40, 64 };
    char req[128];
    size_t v = 40 - 9 - 5 - 2;
    int n;

    n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\nX: %.*s\r\n\r\n", (int)v,
                 "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
    cr_assert_eq(parse_str(req, (size_t)n, &lim), n, "exactly at the limit");
    check_incremental("headers at limit", req, (size_t)n, &lim);
    n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\nX: %.*s\r\n\r\n", (int)v + 1,
                 "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
    cr_assert_eq(parse_str(req, (size_t)n, &lim), -431, "one past the limit");
    check_incremental("headers over limit", req, (size_t)n, &lim);
    /* incomplete: 41 section bytes without the end are already too many */
    cr_assert_eq(parse_str(req, 16 + 40, &lim), 0);
    cr_assert_eq(parse_str(req, 16 + 41, &lim), -431);
}

Test(h1_parse, header_bytes_limit_beats_earlier_field_error)
{
    /* Field syntax is judged once the head is complete, framing as it
     * arrives: a bad field followed by an oversize section gives 431. */
    h1_limits lim = { 8192, 30, 64 };
    static const char req[] = "GET / HTTP/1.1\r\nBad Field: x\r\nHost: hhhhhhhhhhhhhhhhhhh\r\n\r\n";

    cr_assert_eq(parse_str(req, sizeof req - 1, &lim), -431);
    cr_assert_eq(parse_str(req, sizeof req - 1, &deflim), -400);
}

Test(h1_parse, header_count_limit)
{
    h1_limits lim = { 8192, 8192, 3 };
    static const char at[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    static const char over[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    h1_limits zero = { 8192, 8192, 0 };

    cr_assert_eq(parse_str(at, sizeof at - 1, &lim), (int)sizeof at - 1);
    cr_assert_eq(parse_str(over, sizeof over - 1, &lim), -431);
    cr_assert_eq(parse_str("GET / HTTP/1.0\r\n\r\n", 18, &zero), 18);
    cr_assert_eq(parse_str(at, sizeof at - 1, &zero), -431);
    check_incremental("count over", over, sizeof over - 1, &lim);
}

Test(h1_parse, zero_limits)
{
    h1_limits lim = { 0, 0, 0 };

    cr_assert_eq(parse_str("G", 1, &lim), -414);
    cr_assert_eq(parse_str("", 0, &lim), 0);
}

/* ------------------------------------------------------------------------ */
/* Incremental state                                                          */

Test(h1_parse, scanned_resumes_in_header_section)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: abcdefghij\r\n\r\n";
    h1_header hdrs[8];
    h1_request r = { .headers = hdrs };
    size_t scanned = 0;

    /* request line incomplete: nothing to remember */
    cr_assert_eq(h1_parse_request(&r, req, 10, &deflim, &scanned), 0);
    cr_assert_eq(scanned, 0);
    /* inside the header section: a position is kept */
    cr_assert_eq(h1_parse_request(&r, req, 30, &deflim, &scanned), 0);
    cr_assert_neq(scanned, 0);
    cr_assert_eq(h1_parse_request(&r, req, 40, &deflim, &scanned), 0);
    cr_assert_eq(h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned), (int)sizeof req - 1);
    cr_assert_eq(r.nheaders, 2);
    cr_assert(tern_str_eq(r.host, TERN_STR("h")));
}

Test(h1_parse, scanned_bogus_state_starts_over)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    h1_header hdrs[8];
    h1_request r = { .headers = hdrs };
    size_t scanned = (size_t)-1;

    cr_assert_eq(h1_parse_request(&r, req, sizeof req - 1, &deflim, &scanned), (int)sizeof req - 1);
}

Test(h1_parse, incremental_field_error_waits_for_the_head)
{
    /* A malformed field line is reported once the head is complete. */
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nBad Field: x\r\nMore: y\r\n\r\n";

    cr_assert_eq(parse_str(req, 40, &deflim), 0);
    cr_assert_eq(parse_str(req, sizeof req - 1, &deflim), -400);
    check_incremental("field error", req, sizeof req - 1, &deflim);
}

Test(h1_parse, incremental_request_line_error_is_immediate)
{
    cr_assert_eq(parse_str("GET / HTTP/2", 12, &deflim), 0);
    cr_assert_eq(parse_str("GET / HTTP/2.0", 14, &deflim), 0);
    cr_assert_eq(parse_str("GET / HTTP/2.0\r", 15, &deflim), 0);
    cr_assert_eq(parse_str("GET / HTTP/2.0\r\n", 16, &deflim), -505);
    cr_assert_eq(parse_str("GET / HTTP/1.1 ", 15, &deflim), -400);
    cr_assert_eq(parse_str("GET /#", 6, &deflim), -400);
    cr_assert_eq(parse_str("GET * ", 6, &deflim), -400);
    cr_assert_eq(parse_str("CONNECT ", 8, &deflim), -501);
}

Test(h1_parse, incremental_many_requests)
{
    static const char *reqs[] = {
        "POST /api/v1/items?limit=10 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: t/1\r\n"
        "Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n",
        "\r\nPUT http://a.b:81/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Connection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nX: \xff\xfe\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        h1_limits small = { 40, 100, 5 };

        check_incremental(reqs[i], reqs[i], strlen(reqs[i]), &deflim);
        check_incremental(reqs[i], reqs[i], strlen(reqs[i]), &small);
    }
}
