/*
 * tern/http.h - the application API: config, app lifecycle, routes, groups,
 * middleware, the request and its response.
 *
 * A handler is a plain function `int handler(tern_req *req)`.  It reads the
 * request through tern_req_* / tern_param, answers through one of the
 * response calls (tern_text, tern_json_send, tern_send, tern_problem, or the
 * streaming trio), and returns 0.  A handler that returns non-zero, or that
 * returns without answering, gets a 500 problem+json from the framework (the
 * detail goes to the log only).
 *
 * Thread and loop affinity: routes and middleware are registered before
 * tern_app_run(); after that the route table is read-only and shared by all
 * workers.  A tern_req belongs to one coroutine on one worker and is valid
 * until the handler (and the middleware around it) returns.
 */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H

#include "core.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_app tern_app;
typedef struct tern_group tern_group;
typedef struct tern_route tern_route;
typedef struct tern_req tern_req;

/** A request handler: answers req and returns 0 (non-zero means failure). */
typedef int (*tern_handler)(tern_req *req);
/**
 * A middleware: runs code around the rest of the chain.  It calls
 * tern_next(req) to pass the request on (and gets the result of the rest of
 * the chain), or answers the request itself without calling it.  `data` is
 * the pointer given at registration.
 */
typedef int (*tern_middleware)(tern_req *req, void *data);

/* ------------------------------------------------------------------------ */
/* Configuration                                                              */

/**
 * Server settings.  Initialize with tern_config_init() (which sets every
 * default below), then change fields.  Sizes are bytes, times milliseconds.
 */
typedef struct tern_config {
    const char *host;                /* listen address, default "0.0.0.0" */
    int port;                        /* default 8080; 0 picks a free port */
    unsigned workers;                /* event-loop threads, default: CPU count */
    unsigned max_conns;              /* open connections per worker, default 16384 */
    size_t max_request_line;         /* default 8192 -> 414 */
    size_t max_header_bytes;         /* header section, default 16384 -> 431 */
    unsigned max_headers;            /* header fields, default 100 -> 431 */
    size_t max_body;                 /* default per-route body limit, 1 MiB -> 413 */
    unsigned json_max_depth;         /* JSON nesting in request bodies, default 64 -> 400 */
    int header_timeout_ms;           /* whole request head, default 10000 -> 408 */
    int body_timeout_ms;             /* idle time while reading a body, 30000 -> 408 */
    int keepalive_timeout_ms;        /* idle keep-alive connection, default 60000 */
    int write_timeout_ms;            /* idle time while sending, default 30000 */
    int shutdown_timeout_ms;         /* graceful drain deadline, default 10000 */
    unsigned max_keepalive_requests; /* per connection, 0 = unlimited (default) */
    size_t stack_size;               /* coroutine stack, default 256 KiB */
    unsigned offload_threads;        /* blocking-call pool, default 4 */
    const char *server_header;       /* Server header value, default NULL (none) */
    int install_signals;             /* handle SIGTERM/SIGINT in run, default 1 */
} tern_config;

/** Fills cfg with the defaults listed in tern_config. */
TERN_API void tern_config_init(tern_config *cfg);

/* ------------------------------------------------------------------------ */
/* App lifecycle                                                              */

/** A new app with a copy of cfg (NULL: defaults). NULL on OOM. */
TERN_API tern_app *tern_app_new(const tern_config *cfg);
/** Frees the app and its routes. Only after tern_app_run() has returned. */
TERN_API void tern_app_free(tern_app *app);
/** The app's configuration, writable until tern_app_listen(). */
TERN_API tern_config *tern_app_config(tern_app *app);

/**
 * Opens the listening sockets (one SO_REUSEPORT socket per worker).  Returns
 * the bound port (> 0), or a TERN_E* code; also fails with the first route
 * registration error, so a conflicting table never serves.  Optional:
 * tern_app_run() calls it when it was not called.
 */
TERN_API int tern_app_listen(tern_app *app);

/**
 * Starts the workers and blocks until shutdown: SIGTERM/SIGINT (when
 * cfg.install_signals) or tern_app_stop().  Shutdown stops accepting, closes
 * idle connections, lets in-flight requests finish until the shutdown
 * deadline, then returns 0 (or a TERN_E* code if the app could not start).
 */
TERN_API int tern_app_run(tern_app *app);

/** Asks a running app to shut down gracefully. Async-signal-safe. */
TERN_API void tern_app_stop(tern_app *app);

/**
 * Parses the common command line flags into the app's config:
 * `--port N`, `--host H`, `--workers N`.  The PORT environment variable sets
 * the port when --port is absent.  Returns 0, or TERN_EINVAL after printing a
 * usage line to stderr.
 */
TERN_API int tern_app_args(tern_app *app, int argc, char **argv);

/* ------------------------------------------------------------------------ */
/* Routes, groups, middleware                                                 */

/**
 * Registers handler for method + pattern.  Patterns are absolute paths whose
 * segments are literals, `:name` (one segment, percent-decoded) or a final
 * `*name` (the rest of the path, possibly empty).  See docs/routing.md for
 * the matching rules.  Returns the route (to attach options) or NULL on an
 * invalid pattern, a conflict with an existing route, or OOM; the error is
 * logged and kept, and tern_app_listen() then fails.
 */
TERN_API tern_route *tern_route_add(tern_app *app, const char *method, const char *pattern,
                                    tern_handler handler);
/** Shorthands for tern_route_add with GET, POST, PUT, PATCH, DELETE. */
TERN_API tern_route *tern_get(tern_app *app, const char *pattern, tern_handler h);
TERN_API tern_route *tern_post(tern_app *app, const char *pattern, tern_handler h);
TERN_API tern_route *tern_put(tern_app *app, const char *pattern, tern_handler h);
TERN_API tern_route *tern_patch(tern_app *app, const char *pattern, tern_handler h);
TERN_API tern_route *tern_delete(tern_app *app, const char *pattern, tern_handler h);

/** Adds app-wide middleware (runs for every routed request, in order). */
TERN_API int tern_use(tern_app *app, tern_middleware mw, void *data);

/**
 * A group: a path prefix plus middleware shared by its routes.  The group is
 * owned by the app.  Groups nest (tern_group_sub).  NULL on OOM.
 */
TERN_API tern_group *tern_group_new(tern_app *app, const char *prefix);
/** A group nested in parent; its prefix is appended to the parent's. */
TERN_API tern_group *tern_group_sub(tern_group *parent, const char *prefix);
/** Adds middleware to the group (runs after app-wide, before route). */
TERN_API int tern_group_use(tern_group *g, tern_middleware mw, void *data);
/** Registers a route under the group's prefix; see tern_route_add. */
TERN_API tern_route *tern_group_route(tern_group *g, const char *method, const char *pattern,
                                      tern_handler handler);

/** Adds middleware to one route (runs last, just around the handler). */
TERN_API int tern_route_use(tern_route *r, tern_middleware mw, void *data);
/** Sets the route's body limit in bytes (0 = cfg.max_body, the default). */
TERN_API void tern_route_body_limit(tern_route *r, size_t max);
/** Attaches a pointer the handler can read back with tern_req_route_data. */
TERN_API void tern_route_data(tern_route *r, void *data);

/** Passes req to the next middleware or the handler; returns its result. */
TERN_API int tern_next(tern_req *req);

/* ------------------------------------------------------------------------ */
/* The request                                                                */

/** The method token, e.g. "GET". */
TERN_API tern_str tern_req_method(const tern_req *req);
/** The raw path (no query), as sent, e.g. "/users/42". */
TERN_API tern_str tern_req_path(const tern_req *req);
/** The raw query string after '?' (empty if none). */
TERN_API tern_str tern_req_query(const tern_req *req);
/** The first value of a header (case-insensitive name); .p NULL if absent. */
TERN_API tern_str tern_req_header(const tern_req *req, const char *name);
/** The number of header fields, and the i-th one (for iteration). */
TERN_API unsigned tern_req_header_count(const tern_req *req);
TERN_API int tern_req_header_at(const tern_req *req, unsigned i, tern_str *name, tern_str *value);
/** A path parameter by name, percent-decoded; .p NULL if the route has none. */
TERN_API tern_str tern_param(const tern_req *req, const char *name);
/** The request id (set by tern_mw_request_id), or an empty string. */
TERN_API const char *tern_req_id(const tern_req *req);
/** The route's tern_route_data pointer (NULL if none). */
TERN_API void *tern_req_route_data(const tern_req *req);
/** The request's arena: memory released when the response is done. */
TERN_API tern_arena *tern_req_arena(tern_req *req);
/** Per-request slots for middleware to hand values to handlers. */
TERN_API void tern_req_set(tern_req *req, const char *key, void *value);
TERN_API void *tern_req_get(const tern_req *req, const char *key);

/**
 * Reads the whole request body (sending `100 Continue` first when the client
 * asked for it) and points *body at it; the bytes live until the request
 * ends.  Returns 0 (an absent body gives an empty slice), TERN_ETOOBIG
 * (the route's limit; the framework answers 413 when the handler returns
 * this), TERN_ETIMEDOUT (408), TERN_EPROTO (400, bad chunked framing), or
 * TERN_ECLOSED.  A handler that does not call it never makes the client send
 * an expected body; unread bodies are discarded after the response.
 */
TERN_API int tern_req_body(tern_req *req, tern_str *body);

/* ------------------------------------------------------------------------ */
/* The response                                                               */

/**
 * Adds a response header.  Name must be a token and value must not contain
 * CR, LF or NUL (TERN_EINVAL otherwise).  Both are copied.  Content-Length,
 * Transfer-Encoding, Date and Connection are the framework's (TERN_EINVAL).
 */
TERN_API int tern_header(tern_req *req, const char *name, const char *value);
/** Like tern_header with slices. */
TERN_API int tern_header_str(tern_req *req, tern_str name, tern_str value);

/**
 * Sends a complete response: status, Content-Type (NULL for none), and body
 * (copied).  Returns 0, TERN_EALREADY if the request was already answered,
 * or TERN_ENOMEM.  HEAD requests get the headers only.
 */
TERN_API int tern_send(tern_req *req, int status, const char *content_type, const void *body,
                       size_t len);
/** tern_send with text/plain; charset=utf-8 and a NUL-terminated body. */
TERN_API int tern_text(tern_req *req, int status, const char *text);
/** tern_send with application/json and a pre-serialized JSON body. */
TERN_API int tern_json_send(tern_req *req, int status, tern_str json);

/**
 * Starts a JSON response: returns a writer into the response body.  Finish
 * the document, then call tern_json_end().  The writer lives in the request.
 */
TERN_API tern_jw *tern_json_begin(tern_req *req, int status);
/** Sends the JSON response started by tern_json_begin (500 if invalid). */
TERN_API int tern_json_end(tern_req *req);

/**
 * Sends an RFC 9457 application/problem+json response with type, title (the
 * status reason), status, detail and the request id.  For 5xx statuses the
 * detail is logged and replaced by a generic text.  detail may be NULL.
 */
TERN_API int tern_problem(tern_req *req, int status, const char *detail);

/**
 * Streaming: starts a response whose body is sent in pieces with chunked
 * transfer coding (or, for HTTP/1.0 clients, until the connection closes).
 * tern_stream_write sends one piece (the coroutine waits while the socket is
 * full); tern_stream_end finishes the body.  Returns 0 or a TERN_E* code.
 */
TERN_API int tern_stream_begin(tern_req *req, int status, const char *content_type);
TERN_API int tern_stream_write(tern_req *req, const void *p, size_t n);
TERN_API int tern_stream_end(tern_req *req);

/** 1 once a response has been started, else 0. */
TERN_API int tern_responded(const tern_req *req);
/** The status sent (0 if none yet). */
TERN_API int tern_res_status(const tern_req *req);
/** Body bytes sent so far. */
TERN_API uint64_t tern_res_bytes(const tern_req *req);

/** The reason phrase of an HTTP status ("Not Found"), or "Unknown". */
TERN_API const char *tern_status_reason(int status);

/* ------------------------------------------------------------------------ */
/* Built-in middleware                                                        */

/**
 * X-Request-Id: keeps a valid incoming id (1-128 characters of
 * [A-Za-z0-9._-]), otherwise generates a unique one; sets it on the response
 * and makes it available as tern_req_id().  data: unused (NULL).
 */
TERN_API int tern_mw_request_id(tern_req *req, void *data);
/**
 * Access log: after the response, one line per request on stderr:
 * `time=... id=... method=GET path=/x status=200 bytes=13 dur_us=42`.
 * data: unused (NULL).
 */
TERN_API int tern_mw_access_log(tern_req *req, void *data);
/**
 * Recover: turns a failing handler (non-zero return) or one that returned
 * without answering into a 500 problem+json carrying the request id; the
 * error goes to the log.  data: unused (NULL).
 */
TERN_API int tern_mw_recover(tern_req *req, void *data);

#ifdef __cplusplus
}
#endif
#endif /* TERN_HTTP_H */
