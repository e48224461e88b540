/*
 * internal.h - structures shared by the app layer's files (never installed).
 *
 *   app.c         config, app lifecycle, route and group registration
 *   server.c      workers, listeners, connections, the request lifecycle
 *   request.c     request accessors and body reading
 *   response.c    response serialization, problem+json, streaming
 *   middleware.c  the chain (tern_next) and the built-in middleware
 *
 * Ownership: the app owns routes, groups and middleware lists (immutable
 * once the app runs).  Each worker owns its loop, connections and pools; a
 * connection owns its buffers while it holds them; a request context
 * (struct tern_req) is lent to a connection for one request at a time and
 * returned to the worker's free list, its arena reset.
 */
#ifndef TERN_APP_INTERNAL_H
#define TERN_APP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "app/router.h"
#include "http/h1.h"
#include "net/loop.h"
#include "tern/body.h"
#include "tern/http.h"
#include "tern/valid.h"

#define MW_MAX     32 /* middleware entries in one chain (app+groups+route) */
#define REQ_LOCALS 8  /* tern_req_set slots */
#define REQ_ID_MAX 128

typedef struct mw_entry {
    tern_middleware fn;
    void *data;
} mw_entry;

typedef struct mw_list {
    mw_entry *v;
    unsigned n;
} mw_list;

struct tern_group {
    tern_app *app;
    tern_group *parent;
    char *prefix; /* full prefix (parents' included), no trailing '/' */
    mw_list mws;
    tern_group *next_alloc; /* app's list for freeing */
};

struct tern_route {
    tern_app *app;
    tern_group *group;
    tern_handler handler;
    char *method;
    char *pattern; /* full pattern */
    size_t body_limit;
    void *data;
    mw_list mws;
    char *body_media; /* declared body media type (tern_route_body) */
    int body_form;    /* body_media is urlencoded (else the JSON family) */
    const tern_schema *body_schema;
    const tern_schema *query_schema;
    const tern_schema *params_schema;
    /* Flattened chain (app, groups outer->inner, route), built at listen. */
    const mw_entry **chain;
    unsigned nchain;
    tern_route *next_alloc;
};

typedef struct worker worker;

struct tern_app {
    tern_config cfg;
    router *router;
    mw_list mws;
    tern_group *groups;
    tern_route *routes;
    tern_route fallback; /* app-wide middleware + the 404/405/OPTIONS answer */
    int uses_request_id; /* tern_mw_request_id is app-wide middleware */
    int reg_error;       /* first registration error (TERN_E*), 0 if none */
    int listening;
    int port;        /* bound port */
    int *listen_fds; /* one per worker */
    unsigned nworkers;
    worker *workers;
    offload_pool *offload;
    int stop_pipe[2]; /* tern_app_stop writes here */
    atomic_int stopping;
};

/* ------------------------------------------------------------------------ */
/* Connections and requests (server.c)                                        */

typedef struct conn conn;

enum conn_wait { WAIT_NONE = 0, WAIT_READ = 1, WAIT_WRITE = 2 };

struct conn {
    loop_io io; /* first: epoll data points here */
    worker *w;
    tern_timer timer;     /* header / body / keep-alive / write deadline */
    coro *co;             /* request coroutine while one runs */
    struct tern_req *req; /* context while a request is being read or served */
    char *rbuf;           /* read buffer from the worker's pool, NULL when idle */
    size_t rlen;          /* bytes in rbuf */
    size_t rpos;          /* start of unprocessed bytes */
    tern_buf wbuf;        /* pending output */
    conn *prev, *next;    /* worker's list */
    unsigned nrequests;
    unsigned char wait;     /* enum conn_wait while the coroutine waits on the socket */
    unsigned char readable; /* edge-triggered readiness not yet consumed */
    unsigned char writable;
    unsigned char eof;       /* peer closed its side */
    unsigned char closing;   /* close after the current response */
    unsigned char timed_out; /* the timer fired while waiting */
    unsigned char dead;      /* fd closed; free when the coroutine is done */
    unsigned char freed;     /* retired to the worker's zombie list */
};

typedef struct res_header {
    tern_str name, value;
} res_header;

enum req_body_state { BODY_NONE, BODY_PENDING, BODY_READ, BODY_FAILED };

struct tern_req {
    conn *c;
    worker *w;
    tern_app *app;
    h1_request h;
    h1_header *hdrs; /* max_headers entries */
    size_t scanned;  /* parser state */
    tern_route *route;
    router_match m;
    int route_result; /* enum router_result of the lookup */
    int early_status; /* a framework answer decided before the chain (400, 413) */
    const char *early_detail;
    tern_str params[ROUTER_MAX_PARAMS]; /* decoded lazily (p == NULL: not yet) */
    unsigned chain_pos;
    int parse_rc; /* h1_parse_request result for this request */
    tern_arena arena;
    int64_t start_ms;
    struct timespec start_ts;
    /* body */
    int body_state;
    tern_str body;
    tern_buf body_buf; /* for chunked / large bodies */
    h1_chunked chunked;
    uint64_t body_left; /* Content-Length bytes not yet consumed */
    unsigned char continue_sent;
    /* A failure recorded by a tern_req_* helper, answered if the handler returns it. */
    int fail_status;               /* 400, 408, 413, 415, 422, 431 ... (0: none) */
    const char *fail_detail;       /* static or arena string; NULL: the status's default */
    const char *fail_in;           /* "body", "query", "path" for 422 */
    struct tern_errors *fail_errs; /* field errors for 422 (arena) */
    int fail_retry_after;          /* seconds for Retry-After on the failure (0: none) */
    /* Inputs decoded for the handler; released when the request ends. */
    json_t *json_body; /* tern_req_json */
    json_t *valid_body, *valid_query, *valid_params;
    const struct tern_form *query_form, *body_form; /* arena, cached */
    struct tern_part *parts;                        /* multipart: spooled files closed at the end */
    unsigned nparts;
    unsigned char reading; /* tern_req_read in progress (streaming) */
    /* response */
    int status;
    unsigned char responded;
    unsigned char head_only;
    unsigned char streaming; /* 1: chunked, 2: close-delimited */
    unsigned char stream_done;
    res_header *rh;
    unsigned nrh, caprh;
    tern_buf out; /* JSON body under construction */
    tern_jw jw;
    uint64_t bytes;
    char id[REQ_ID_MAX + 1];
    struct {
        const char *key;
        void *value;
    } locals[REQ_LOCALS];
    struct tern_req *next_free;
};

struct worker {
    tern_app *app;
    unsigned index;
    pthread_t thread;
    tern_loop *loop;
    coro_pool *coros;
    loop_io listen_io;
    conn *conns;   /* all open connections */
    conn *zombies; /* closed, freed at the end of the loop iteration */
    unsigned nconns;
    char **free_bufs; /* read buffers for reuse */
    unsigned nfree_bufs, capfree_bufs;
    struct tern_req *free_reqs;
    char date[29]; /* cached IMF-fixdate */
    int64_t date_sec;
    uint64_t id_seed; /* request id generation */
    uint64_t id_counter;
    int shutting_down;
    int64_t shutdown_deadline;
    tern_timer shutdown_timer;
    int done;
};

/* server.c */
int tern__server_listen(tern_app *app);
int tern__server_run(tern_app *app);
/* Reads more request bytes from inside the request coroutine. 0/TERN_E*. */
int tern__conn_read_more(conn *c, int timeout_ms);
/*
 * Receives into dst from inside the request coroutine (large bodies skip the
 * read buffer).  Bytes (> 0), or TERN_ECLOSED, TERN_ETIMEDOUT, TERN_ECANCELED.
 */
long tern__conn_recv(conn *c, char *dst, size_t cap, int timeout_ms);
/* Flushes c->wbuf from inside the coroutine (waits while the socket is full). */
int tern__conn_flush(conn *c);
/* The worker's cached Date value (29 bytes). */
const char *tern__worker_date(worker *w);

/* response.c */
int tern__respond_error(tern_req *req, int status, const char *detail);
/* Sets Retry-After (seconds) for the recorded failure's answer. */
void tern__req_retry_after(tern_req *req, int seconds);
/* Answers the recorded failure (fail_status, detail, errors). */
int tern__respond_failure(tern_req *req);
void tern__res_reset(tern_req *req);
/* Serializes status line + headers (+ Content-Length when cl >= 0) into wbuf. */
int tern__write_head(tern_req *req, int status, const char *ctype, int64_t cl);

/* request.c */
void tern__req_reset(tern_req *req);
/* Records a failure for the framework to answer (first one wins). */
void tern__req_fail(tern_req *req, int status, const char *detail);
/* Consumes and drops an unread body; returns 0 if the connection can be reused. */
int tern__req_discard_body(tern_req *req);

/* input.c */
/* Reads, parses and validates the route's declared inputs; 0 or a failure recorded. */
int tern__prepare_inputs(tern_req *req);
/* Releases decoded inputs (JSON values, spooled files). */
void tern__inputs_release(tern_req *req);

/* middleware.c */
int tern__run_chain(tern_req *req);
/* Gives req a fresh id and sets X-Request-Id (framing errors skip the chain). */
void tern__request_id_generate(tern_req *req);
/* Writes a fresh 20-character request id (and its NUL) into out. */
void tern__gen_id(worker *w, char out[21]);
/* Answers status through the app-wide middleware (ids, logs) and the fallback. */
void tern__run_early(tern_req *req, int status, const char *detail);
/* Answers a request no route took: 404, 405 + Allow, or 204 for OPTIONS. */
int tern__fallback_handler(tern_req *req);

#endif /* TERN_APP_INTERNAL_H */
