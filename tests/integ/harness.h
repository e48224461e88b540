/*
 * harness.h - helpers for the black-box integration tests.
 *
 * The tests start a real server binary (tern-hello, tern-tfb) on a free
 * loopback port, talk raw HTTP to it over sockets and stop it with SIGTERM.
 * The binaries' paths come from the environment (TERN_HELLO, TERN_TFB, set
 * by tests/meson.build).  Every wait here is bounded: a server that does not
 * print its listening line, does not answer or does not exit is reported and
 * killed, so no test can hang.
 *
 * Responses are parsed by a small strict client: status line, header fields
 * (looked up case-insensitively), and the body framed by Content-Length,
 * chunked coding or the close of the connection.  A response that is not
 * well-formed HTTP/1.1 is reported as TH_MALFORMED, never accepted.
 *
 * The harness also provides main(): Criterion runs the tests one at a time
 * (jobs = 1, overridable with --jobs), because several tests measure
 * latencies and the CI machine has two cores.
 */
#ifndef TERN_INTEG_HARNESS_H
#define TERN_INTEG_HARNESS_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <criterion/criterion.h>

/* Environment variables naming the binaries. */
#define TH_HELLO "TERN_HELLO"
#define TH_TFB "TERN_TFB"

/* Default bound for one response (ms); the tests pass smaller ones. */
#define TH_TIMEOUT_MS 3000
/* Bound for SIGTERM -> exit in the fixtures (ms). */
#define TH_STOP_MS 3000

/* ------------------------------------------------------------------------ */
/* Server processes                                                           */

typedef struct th_server {
    pid_t pid;          /* 0 when not started or already reaped */
    int out_fd;         /* read end of the server's stdout pipe, -1 if none */
    int port;           /* learned from the listening line */
    unsigned workers;   /* learned from the listening line */
    char errlog[64];    /* file the server's stderr goes to */
    int reaped;         /* 1 once waitpid() collected it */
    int wstatus;        /* its wait status once reaped */
} th_server;

/*
 * Starts the binary named by the environment variable env (TH_HELLO or
 * TH_TFB) with `--host 127.0.0.1`, `--port 0` (unless the extra arguments
 * contain --port) and the extra arguments, a NULL-terminated list of strings.
 * Waits (at most 10 s) for the line `tern: listening on http://H:P (N
 * workers)` and fills s->port and s->workers.  Returns 0, or -1 after logging
 * why (and killing the process).
 */
int th_start(th_server *s, const char *env, ...) __attribute__((sentinel));

/* Sends sig to the server (no-op if it was reaped). */
void th_signal(th_server *s, int sig);

/*
 * Waits at most timeout_ms for the server to exit.  Returns its exit code
 * (0..255), 128 + signal if a signal ended it, or -2 if it is still running.
 */
int th_wait(th_server *s, int timeout_ms);

/*
 * Stops the server: SIGTERM, then waits at most timeout_ms; a server still
 * running then is killed with SIGKILL and -1 is returned.  Otherwise returns
 * what th_wait returns.  A non-zero result prints the tail of its stderr
 * (th_wait does that when it reaps a server that failed).
 */
int th_stop(th_server *s, int timeout_ms);

/* Prints the last bytes of the server's stderr (access log, sanitizer report). */
void th_dump_log(const th_server *s);

/* Kills (SIGKILL) every server still running; for fixtures and atexit. */
void th_cleanup_all(void);

/* ------------------------------------------------------------------------ */
/* Client connections                                                         */

typedef struct th_conn {
    int fd;
    char *buf;      /* bytes received and not yet consumed as a response */
    size_t len;
    size_t cap;
    int eof;        /* the server closed: read returned 0, or a reset */
    int reset;      /* the close was a reset (ECONNRESET) */
} th_conn;

/*
 * Connects to 127.0.0.1:port (at most 2 s).  The socket is non-blocking,
 * TCP_NODELAY and close-on-exec.  Returns 0 or a negative errno.
 */
int th_connect(th_conn *c, int port);
/* Closes the socket and frees the buffer (safe on a closed conn). */
void th_close(th_conn *c);
/* Closes with an RST (SO_LINGER 0), e.g. to drop many connections fast. */
void th_abort(th_conn *c);

/* Sends all n bytes (each wait for the socket bounded by 3 s). 0 or -errno. */
int th_send(th_conn *c, const void *p, size_t n);
int th_send_str(th_conn *c, const char *s);
/* Sends p in pieces of `piece` bytes with delay_ms between them. */
int th_send_slow(th_conn *c, const void *p, size_t n, size_t piece, int delay_ms);

/* ------------------------------------------------------------------------ */
/* Responses                                                                  */

typedef struct th_header {
    char *name;
    char *value;    /* leading and trailing whitespace removed */
} th_header;

typedef struct th_resp {
    int status;
    int minor;          /* HTTP/1.<minor> */
    char *reason;
    th_header *h;
    unsigned nh;
    char *body;         /* NUL-terminated (the NUL is not counted) */
    size_t body_len;
    int chunked;        /* body came in chunked coding */
    unsigned nchunks;   /* non-empty chunks */
    int until_close;    /* body was delimited by the close of the connection */
    char *head;         /* the raw head (status line and fields), for messages */
    char *store;        /* private: the parsed copy r->h and r->reason point into */
    double ms;          /* time th_read took */
} th_resp;

/* th_read results */
enum {
    TH_OK = 0,
    TH_TIMEOUT = -1,    /* nothing complete arrived in time */
    TH_CLOSED = -2,     /* the server closed before the first byte */
    TH_TRUNCATED = -3,  /* the server closed in the middle of a response */
    TH_MALFORMED = -4,  /* the bytes are not a valid HTTP/1.1 response */
};

/* th_read flags */
#define TH_HEAD 1       /* the request was HEAD: the response has no body */

/*
 * Reads one response (1xx included) within timeout_ms.  The bytes after it
 * stay in c->buf for the next call (pipelining).  Returns TH_OK or one of the
 * errors above; r is always safe to th_resp_free.
 */
int th_read(th_conn *c, th_resp *r, int timeout_ms, int flags);
/* Like th_read but skips 1xx responses, counting them in *n_info (may be NULL). */
int th_read_final(th_conn *c, th_resp *r, int timeout_ms, int flags, unsigned *n_info);
/* Sends raw and reads the final response (TH_HEAD when raw starts "HEAD "). */
int th_exchange(th_conn *c, const char *raw, th_resp *r);
void th_resp_free(th_resp *r);

/* The first value of a header (case-insensitive name), or NULL. */
const char *th_hdr(const th_resp *r, const char *name);
/* How many field lines carry this name. */
unsigned th_hdr_count(const th_resp *r, const char *name);
/* 1 if the comma-separated list in header `name` contains token (any case). */
int th_hdr_has_token(const th_resp *r, const char *name, const char *token);

/*
 * Waits at most timeout_ms for the server to close the connection.  Returns 1
 * when it did (EOF or reset), 0 if it is still open.  Bytes that arrive in the
 * meantime are kept in c->buf (c->len > 0 means the server sent more).
 */
int th_wait_closed(th_conn *c, int timeout_ms);

/* Human-readable name of a th_read result, for messages. */
const char *th_strerr(int rc);

/* ------------------------------------------------------------------------ */
/* Small utilities                                                            */

/* Monotonic clock in milliseconds. */
double th_now_ms(void);
void th_sleep_ms(int ms);

/*
 * Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) strictly; returns
 * the time or -1 when the text does not match the format exactly.
 */
time_t th_parse_imf_date(const char *s);

/*
 * Reads a top-level member of a flat JSON object: a string (copied to out,
 * escapes kept as sent) or an integer.  Return 0, or -1 if the member is
 * absent or of another type.  Enough for problem+json bodies.
 */
int th_json_str(const char *json, const char *name, char *out, size_t cap);
int th_json_int(const char *json, const char *name, long *out);

/* A printable, truncated copy of a byte string for assertion messages. */
const char *th_show(const void *p, size_t n);

/* ------------------------------------------------------------------------ */
/* Assertions shared by the test files                                        */

/* The exchange worked: rc is TH_OK. */
#define TH_ASSERT_OK(rc, what)                                                              \
    cr_assert_eq((rc), TH_OK, "%s: no complete response: %s", (what), th_strerr(rc))

/* r has the status code. */
#define TH_ASSERT_STATUS(r, code)                                                           \
    cr_assert_eq((r)->status, (code), "expected status %d, got %d; head:\n%s", (code),     \
                 (r)->status, (r)->head ? (r)->head : "(none)")

/*
 * Headers every tern-hello response has: a Date in IMF-fixdate close to now,
 * a non-empty X-Request-Id, and Content-Length or chunked framing.
 */
#define TH_ASSERT_COMMON(r)                                                                 \
    do {                                                                                    \
        const char *d_ = th_hdr((r), "Date");                                               \
        cr_assert(d_ != NULL, "no Date header; head:\n%s", (r)->head);                      \
        time_t t_ = th_parse_imf_date(d_);                                                  \
        cr_assert(t_ != (time_t)-1, "Date is not an IMF-fixdate: '%s'", d_);                \
        cr_assert(t_ > time(NULL) - 5 && t_ < time(NULL) + 5, "Date is off: '%s'", d_);     \
        const char *id_ = th_hdr((r), "X-Request-Id");                                      \
        cr_assert(id_ != NULL && id_[0] != '\0', "no X-Request-Id; head:\n%s", (r)->head);  \
        cr_assert(th_hdr((r), "Content-Length") != NULL || (r)->chunked ||                  \
                      (r)->until_close || (r)->status == 204 || (r)->status == 304,         \
                  "no Content-Length and not chunked; head:\n%s", (r)->head);               \
    } while (0)

/*
 * An application/problem+json error with the given status: members type,
 * title, status (= code), detail, and request_id equal to X-Request-Id.
 */
#define TH_ASSERT_PROBLEM(r, code)                                                          \
    do {                                                                                    \
        TH_ASSERT_STATUS((r), (code));                                                      \
        const char *ct_ = th_hdr((r), "Content-Type");                                      \
        cr_assert(ct_ != NULL && strncmp(ct_, "application/problem+json", 24) == 0,         \
                  "status %d: Content-Type is '%s', not application/problem+json",          \
                  (code), ct_ ? ct_ : "(none)");                                            \
        long st_ = 0;                                                                       \
        char s_[256], rid_[256];                                                            \
        cr_assert(th_json_int((r)->body, "status", &st_) == 0 && st_ == (code),             \
                  "problem body has no status %d: %s", (code), (r)->body);                 \
        cr_assert(th_json_str((r)->body, "type", s_, sizeof s_) == 0,                       \
                  "problem body has no type: %s", (r)->body);                               \
        cr_assert(th_json_str((r)->body, "title", s_, sizeof s_) == 0 && s_[0] != '\0',     \
                  "problem body has no title: %s", (r)->body);                              \
        cr_assert(th_json_str((r)->body, "detail", s_, sizeof s_) == 0,                     \
                  "problem body has no detail: %s", (r)->body);                             \
        cr_assert(th_json_str((r)->body, "request_id", rid_, sizeof rid_) == 0,             \
                  "problem body has no request_id: %s", (r)->body);                         \
        const char *hid_ = th_hdr((r), "X-Request-Id");                                     \
        cr_assert(hid_ != NULL && strcmp(hid_, rid_) == 0,                                  \
                  "request_id '%s' differs from X-Request-Id '%s'", rid_,                   \
                  hid_ ? hid_ : "(none)");                                                  \
    } while (0)

/* The response says Connection: close and the server then closes (1 s). */
#define TH_ASSERT_CLOSES(c, r)                                                              \
    do {                                                                                    \
        cr_assert(th_hdr_has_token((r), "Connection", "close"),                             \
                  "status %d without Connection: close; head:\n%s", (r)->status,            \
                  (r)->head);                                                               \
        cr_assert(th_wait_closed((c), 1000) == 1,                                           \
                  "the server did not close the connection after status %d",                \
                  (r)->status);                                                             \
        cr_assert_eq((c)->len, 0, "bytes after the last response: %s",                      \
                     th_show((c)->buf, (c)->len));                                          \
    } while (0)

#endif /* TERN_INTEG_HARNESS_H */
