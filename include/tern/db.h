/*
 * tern/db.h - SQL databases: SQLite and PostgreSQL behind one API.
 *
 * A tern_db is a pool of connections shared by all workers, opened from a
 * URL:
 *
 *     sqlite:path/to.db          sqlite::memory:
 *     postgres://user:pass@host:port/db    postgresql://...
 *     host=... dbname=... (a libpq key/value string)
 *
 * Statements take bound parameters only, written $1..$n on both drivers;
 * there is no call that pastes text into SQL.  Each connection caches its
 * prepared statements, keyed by the SQL text, so a handler simply passes the
 * same string every time.
 *
 * Calls made from a request handler never block the worker: PostgreSQL runs
 * libpq in non-blocking mode and the coroutine waits on the socket; SQLite
 * reads run on a reader connection, and writes queue for the one writer
 * connection and run on the offload pool (so concurrent writes wait their
 * turn instead of failing with SQLITE_BUSY).  Outside a request (main(), a
 * test) the same calls block the calling thread.
 *
 * Errors.  Every call returns 0 or a TERN_E* code, classified the same way
 * on both drivers:
 *
 *     TERN_ENOTFOUND    tern_db_one found no row                 -> 404
 *     TERN_ECONFLICT    unique or foreign-key violation,          -> 409
 *                       or a transaction still conflicting after its retries
 *     TERN_ECONSTRAINT  not-null or check violation              -> 422
 *     TERN_EUNAVAIL     pool timeout, database down, connection   -> 503
 *                       lost, statement timeout                     (Retry-After)
 *     TERN_ERETRY       serialization failure or deadlock (inside tern_db_tx,
 *                       which retries the transaction itself)
 *     TERN_EINVAL       misuse: wrong parameter count, bad URL    -> 500
 *     TERN_EDB          any other database error                  -> 500
 *
 * When a request is given, a failing call also records that status on it:
 * a handler that just returns the code (`if (rc) return rc;`) gets the
 * problem+json answer above, with `Retry-After` on 503.  Clients never see
 * SQL text or driver messages; the log gets the SQLSTATE or SQLite code, the
 * statement and the request id.
 */
#ifndef TERN_DB_H
#define TERN_DB_H

#include <jansson.h>

#include "core.h"
#include "http.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_db tern_db;
typedef struct tern_db_rows tern_db_rows;

/* ------------------------------------------------------------------------ */
/* Values: parameters and result cells                                        */

enum tern_db_type {
    TERN_DB_NULL,
    TERN_DB_BOOL,
    TERN_DB_INT, /* int64 */
    TERN_DB_DOUBLE,
    TERN_DB_TEXT, /* UTF-8 text */
    TERN_DB_BLOB, /* bytes */
    TERN_DB_JSON  /* JSON text (json/jsonb on PostgreSQL, TEXT on SQLite) */
};

/** A typed value: a bound parameter, or a cell of a result. */
typedef struct tern_db_val {
    int type; /* enum tern_db_type */
    union {
        int b;
        int64_t i;
        double d;
        tern_str s; /* TEXT, BLOB, JSON: not owned */
    } u;
} tern_db_val;

/** SQL NULL. */
static inline tern_db_val tern_db_null(void)
{
    tern_db_val v = { TERN_DB_NULL, { 0 } };
    return v;
}
/** A boolean (0 or 1). */
static inline tern_db_val tern_db_bool(int b)
{
    tern_db_val v = { TERN_DB_BOOL, { 0 } };
    v.u.b = b != 0;
    return v;
}
/** A 64-bit integer. */
static inline tern_db_val tern_db_int(int64_t i)
{
    tern_db_val v = { TERN_DB_INT, { 0 } };
    v.u.i = i;
    return v;
}
/** A double (must be finite). */
static inline tern_db_val tern_db_double(double d)
{
    tern_db_val v = { TERN_DB_DOUBLE, { 0 } };
    v.u.d = d;
    return v;
}
/** Text from a slice; NULL p with n 0 is the empty string, not NULL. */
static inline tern_db_val tern_db_text(tern_str s)
{
    tern_db_val v = { TERN_DB_TEXT, { 0 } };
    v.u.s = s.p ? s : TERN_STR("");
    return v;
}
/** Text from a C string; a NULL pointer gives SQL NULL. */
static inline tern_db_val tern_db_cstr(const char *s)
{
    return s ? tern_db_text(tern_str_c(s)) : tern_db_null();
}
/** Bytes. */
static inline tern_db_val tern_db_blob(const void *p, size_t n)
{
    tern_db_val v = { TERN_DB_BLOB, { 0 } };
    v.u.s.p = n ? (const char *)p : "";
    v.u.s.n = n;
    return v;
}
/** JSON text (the caller vouches it is valid JSON). */
static inline tern_db_val tern_db_json(tern_str json)
{
    tern_db_val v = { TERN_DB_JSON, { 0 } };
    v.u.s = json;
    return v;
}

/**
 * A parameter from member `key` of a JSON object (typically a validated
 * body): string -> TEXT, integer -> INT, real -> DOUBLE, true/false -> BOOL,
 * null or absent -> NULL.  Objects and arrays make the statement fail with
 * TERN_EINVAL: serialize them and pass tern_db_json().  The text points into
 * the JSON value, which must outlive the call.
 */
TERN_API tern_db_val tern_db_jarg(const json_t *obj, const char *key);

/**
 * Parameters for one statement, as the two arguments (array, count) every
 * query call takes:  tern_db_one(req, db, sql, TERN_DB_ARGS(tern_db_int(id)), &row)
 */
#define TERN_DB_ARGS(...)                                                                          \
    ((const tern_db_val[]){ __VA_ARGS__ }),                                                        \
        (unsigned)(sizeof((const tern_db_val[]){ __VA_ARGS__ }) / sizeof(tern_db_val))
/** No parameters. */
#define TERN_DB_NOARGS ((const tern_db_val *)0), 0u

/* ------------------------------------------------------------------------ */
/* Opening                                                                    */

/** A migration: a name (ordering key, e.g. "0001_users") and its SQL. */
typedef struct tern_db_migration {
    const char *name;
    const char *sql; /* one or more statements */
} tern_db_migration;

/**
 * Pool settings.  Initialize with tern_db_config_init() (every default
 * below), then set url and whatever else.  Times are milliseconds.
 */
typedef struct tern_db_config {
    const char *url;                     /* see the top of this file; required */
    unsigned min_conns;                  /* idle ones never closed below this, default 1 */
    unsigned max_conns;                  /* hard cap, default 16 (SQLite: readers) */
    int acquire_timeout_ms;              /* wait for a free connection, default 5000 -> 503 */
    unsigned max_waiters;                /* queued acquirers beyond which -> 503 at once, 1024 */
    int idle_timeout_ms;                 /* idle connections above min closed, default 60000 */
    int max_lifetime_ms;                 /* connections replaced after, default 1800000 */
    int connect_timeout_ms;              /* default 5000 */
    int statement_timeout_ms;            /* per statement, default 30000 -> 503; 0 = none */
    int busy_timeout_ms;                 /* SQLite busy_timeout, default 5000 */
    unsigned stmt_cache;                 /* prepared statements per connection, default 128 */
    unsigned tx_retries;                 /* reruns of a conflicting transaction, default 3 */
    int backoff_min_ms;                  /* first reconnect delay after a failure, default 100 */
    int backoff_max_ms;                  /* reconnect delay cap, default 10000 */
    int retry_after_s;                   /* Retry-After on 503, default 1 */
    unsigned coalesce_max;               /* PostgreSQL: statements of concurrent requests
                                            sharing a round trip, default 32; 1 = off */
    const tern_db_migration *migrations; /* applied on first connect, { 0 }-terminated */
    const char *migrations_dir;          /* or *.sql files from here, in name order */
} tern_db_config;

/** Fills cfg with the defaults (url NULL). */
TERN_API void tern_db_config_init(tern_db_config *cfg);

/**
 * Opens a pool.  Fails only on a bad configuration (TERN_EINVAL: unknown URL
 * scheme, malformed URL) or TERN_ENOMEM.  An unreachable database is not an
 * error: the pool reports not-ready, answers 503 while down, and reconnects
 * with exponential backoff (jitter, capped) until the database answers; the
 * configured migrations run on the first successful connection.
 */
TERN_API int tern_db_open(const tern_db_config *cfg, tern_db **out);
/** tern_db_open with the defaults and this URL. */
TERN_API int tern_db_open_url(const char *url, tern_db **out);
/** Closes every connection and frees the pool (no call may be in flight). */
TERN_API void tern_db_close(tern_db *db);
/** "sqlite" or "postgres". */
TERN_API const char *tern_db_driver(const tern_db *db);

/**
 * 1 when the database is reachable and migrated (a connection succeeded and
 * no connect has failed since), else 0.  Tries to connect when it has no
 * connection and the backoff allows.  For readiness probes.
 */
TERN_API int tern_db_ready(tern_db *db);

/** Pool figures, for metrics. */
typedef struct tern_db_stats {
    unsigned in_use;   /* connections checked out */
    unsigned idle;     /* open and free */
    unsigned waiting;  /* acquirers queued now */
    uint64_t acquired; /* total successful acquisitions */
    uint64_t timeouts; /* acquisitions that gave up (503) */
    uint64_t rejected; /* refused at once: queue full or database down */
    uint64_t connects; /* connections opened */
    uint64_t connect_failures;
    uint64_t errors;    /* statements that failed */
    int ready;          /* as tern_db_ready, without connecting */
    uint64_t coalesced; /* statements that shared a round trip (coalesce_max) */
    uint64_t groups;    /* those round trips: coalesced / groups = statements per trip */
} tern_db_stats;

/** Copies the pool's figures into out. */
TERN_API void tern_db_stats_get(tern_db *db, tern_db_stats *out);

/* ------------------------------------------------------------------------ */
/* Statements                                                                 */

/**
 * Runs one statement and returns its rows.  With a request, the rows live in
 * the request's arena (until it ends) and a failure is recorded on it (see
 * the top of this file); with req NULL, free them with tern_db_rows_free().
 * Statements that return no rows give an empty set whose
 * tern_db_affected() tells the rows changed.
 */
TERN_API int tern_db_query(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                           unsigned nargs, tern_db_rows **out);

/**
 * Runs a statement expected to return one row (a SELECT by key, or an
 * INSERT ... RETURNING) and points *out at its first row; *out may be NULL
 * when only success matters.  No row: TERN_ENOTFOUND (404 on the request).
 */
TERN_API int tern_db_one(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                         unsigned nargs, tern_db_rows **out);

/**
 * Runs one statement n times with n parameter sets, as fast as the driver
 * can: on PostgreSQL the executions are pipelined (sent together, results
 * read in order: one network round trip instead of n); on SQLite they run
 * one after another.  Set i is args[i * nargs .. (i + 1) * nargs); its rows
 * go to out[i] (an array of n pointers the caller provides).  Each execution
 * is a statement of its own; the first error is returned (and recorded, as
 * for tern_db_query) and the sets after it do not run.  What the sets
 * before it did differs: on PostgreSQL the batch is one implicit
 * transaction, so they are undone; on SQLite each committed on its own.
 * For N lookups by key in one request; for writes that must all happen or
 * none, use tern_db_tx.
 */
TERN_API int tern_db_query_batch(tern_req *req, tern_db *db, const char *sql,
                                 const tern_db_val *args, unsigned nargs, unsigned n,
                                 tern_db_rows **out);

/**
 * Runs a statement for its effect; *affected (may be NULL) gets the number
 * of rows inserted, updated or deleted.
 */
TERN_API int tern_db_exec(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                          unsigned nargs, int64_t *affected);

/**
 * Runs fn in a transaction on one connection: `tx` is a handle for that
 * connection, to pass to the calls above instead of the pool.  fn returns 0
 * to commit, non-zero to roll back (that value is returned).  A statement
 * that failed inside fn rolls the whole transaction back even if fn then
 * returns 0 (PostgreSQL aborts the transaction at the first error; tern
 * applies the same rule on SQLite), and its code is returned.  When a
 * statement or the commit fails with a serialization failure or a deadlock,
 * the transaction is rolled back and fn runs again, up to cfg.tx_retries
 * times, then TERN_ECONFLICT.  fn may therefore run more than once: answer
 * the request after tern_db_tx returns.  On SQLite the transaction holds the
 * writer (BEGIN IMMEDIATE) until it ends, so inside fn use `tx`, never `db`:
 * a write through `db` would queue behind the transaction itself and fail
 * with TERN_EUNAVAIL after acquire_timeout_ms.
 */
typedef int (*tern_db_tx_fn)(tern_req *req, tern_db *tx, void *arg);
TERN_API int tern_db_tx(tern_req *req, tern_db *db, tern_db_tx_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Results                                                                    */

/** Frees rows returned for req NULL (rows of a request: no-op). */
TERN_API void tern_db_rows_free(tern_db_rows *rs);
/** Number of rows. */
TERN_API unsigned tern_db_nrows(const tern_db_rows *rs);
/** Number of columns. */
TERN_API unsigned tern_db_ncols(const tern_db_rows *rs);
/** Rows changed by an INSERT/UPDATE/DELETE (0 for a SELECT). */
TERN_API int64_t tern_db_affected(const tern_db_rows *rs);
/** Name of column col, or NULL when out of range. */
TERN_API const char *tern_db_colname(const tern_db_rows *rs, unsigned col);
/** Index of the column named name, or -1. */
TERN_API int tern_db_colindex(const tern_db_rows *rs, const char *name);

/**
 * The cell at (row, col), typed as the driver reported it: PostgreSQL by the
 * column's type (integers INT, floating and numeric DOUBLE, bool BOOL, bytea
 * BLOB, json/jsonb JSON, the rest TEXT); SQLite by the stored value's class,
 * with columns declared BOOLEAN read as BOOL and JSON as JSON.  Out of range
 * gives a NULL value.
 */
TERN_API tern_db_val tern_db_cell(const tern_db_rows *rs, unsigned row, unsigned col);

/*
 * Typed getters on row `row` by column name.  They convert where it makes
 * sense (text "42" as int, int as double, int as bool) and give 0 / empty
 * for NULL, a missing column, or an impossible conversion.
 */
/** 1 when the column is missing or the value is NULL. */
TERN_API int tern_db_isnull(const tern_db_rows *rs, unsigned row, const char *col);
TERN_API int64_t tern_db_get_int(const tern_db_rows *rs, unsigned row, const char *col);
TERN_API double tern_db_get_double(const tern_db_rows *rs, unsigned row, const char *col);
TERN_API int tern_db_get_bool(const tern_db_rows *rs, unsigned row, const char *col);
/** Text (or JSON text, or blob bytes) of the cell; lives as long as the rows. */
TERN_API tern_str tern_db_get_text(const tern_db_rows *rs, unsigned row, const char *col);

/** Writes one cell as a JSON value (BLOB as base64 text). */
TERN_API int tern_db_jw_cell(tern_jw *w, tern_db_val v);
/** Writes row `row` as a JSON object keyed by column name. */
TERN_API int tern_db_jw_row(tern_jw *w, const tern_db_rows *rs, unsigned row);
/** Writes all rows as a JSON array of objects. */
TERN_API int tern_db_jw_rows(tern_jw *w, const tern_db_rows *rs);
/** Answers the request with the first row of rs as a JSON object. */
TERN_API int tern_db_send_row(tern_req *req, int status, const tern_db_rows *rs);
/**
 * tern_db_one, then answers with its row as a JSON object and `status`:
 * a whole "get by id" handler in one call.  On failure returns the code
 * (the failure is recorded on the request, so returning it answers 404,
 * 409, 503...).
 */
TERN_API int tern_db_send_one(tern_req *req, tern_db *db, int status, const char *sql,
                              const tern_db_val *args, unsigned nargs);

/* ------------------------------------------------------------------------ */
/* Migrations and errors                                                      */

/**
 * Applies the pending migrations of a { 0 }-terminated list, in order, each
 * in its own transaction, recording name and checksum in tern_migrations.
 * An applied migration whose SQL changed is an error (TERN_ECONFLICT, logged
 * with its name).  Safe when several instances start at once (an advisory
 * lock on PostgreSQL, the writer on SQLite).  Returns 0 or a TERN_E* code.
 */
TERN_API int tern_db_migrate(tern_db *db, const tern_db_migration *list);
/** As tern_db_migrate, with every *.sql file of dir in name order. */
TERN_API int tern_db_migrate_dir(tern_db *db, const char *dir);

/**
 * The HTTP status tern gives a database error code (404, 409, 422, 503,
 * 500), and 0 for 0.  The one mapping used everywhere.
 */
TERN_API int tern_db_status(int err);

#ifdef __cplusplus
}
#endif
#endif /* TERN_DB_H */
