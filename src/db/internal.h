/*
 * db/internal.h - the db layer's insides: the driver interface, the pool,
 * result building and error classification.
 *
 *   db.c       public API: open, query/one/exec, transactions, getters, JSON
 *   pool.c     the bounded connection pool shared by the workers
 *   errors.c   driver error -> TERN_E* code -> HTTP status, in one place
 *   migrate.c  migrations
 *   pg.c       PostgreSQL driver (libpq, non-blocking)
 *   sqlite.c   SQLite driver (readers inline, one writer on the offload pool)
 *
 * A driver works on connections (db_conn, embedded first in its own
 * struct).  The pool decides when to connect, check, recycle and close them;
 * db.c decides which pool a statement goes to and maps failures.
 */
#ifndef TERN_DB_INTERNAL_H
#define TERN_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "tern/db.h"
#include "tern/loop.h"

typedef struct db_conn db_conn;
typedef struct db_pool db_pool;
typedef struct db_driver db_driver;
typedef struct db_item db_item;

/* ------------------------------------------------------------------------ */
/* Errors reported by a driver                                                */

typedef struct db_err {
    int code;         /* TERN_E* (classified with db_classify_*) */
    char sqlstate[6]; /* PostgreSQL SQLSTATE, "" otherwise */
    int sqlite_code;  /* SQLite extended result code, 0 otherwise */
    char msg[240];    /* driver's message: for the log only, never the client */
} db_err;

/* Fills e from a SQLSTATE (5 characters) and a message; returns e->code. */
int db_err_sqlstate(db_err *e, const char *sqlstate, const char *msg);
/* Fills e from an SQLite extended result code and a message; returns e->code. */
int db_err_sqlite(db_err *e, int rc, const char *msg);
/* Fills e with a code and a formatted message; returns code. */
int db_err_set(db_err *e, int code, const char *fmt, ...) TERN_PRINTF(3, 4);
/*
 * Logs a failed statement (code, SQLSTATE or SQLite code, the start of the
 * SQL, the request id; at debug level only when log is 0) and, with a
 * request, records the HTTP answer on it (Retry-After on 503).  The
 * driver's message never reaches the client.
 */
void db_report(tern_req *req, const db_err *e, const char *sql, int retry_after_s, int log);

/* ------------------------------------------------------------------------ */
/* Results                                                                    */

struct tern_db_rows {
    unsigned nrows, ncols;
    unsigned cap;       /* rows allocated in cells */
    const char **names; /* ncols NUL-terminated names */
    tern_db_val *cells; /* nrows * ncols, row-major */
    int64_t affected;
    tern_arena *arena; /* where everything above lives */
    tern_arena own;    /* used when no request arena was given */
    int owned;         /* 1: free with tern_db_rows_free */
};

/*
 * Builder used by the drivers: set the columns once, then push rows and fill
 * their cells (text copied with db_rows_str).  All memory comes from the
 * rows' arena; failures are TERN_ENOMEM.
 */
int db_rows_columns(tern_db_rows *rs, unsigned ncols);
int db_rows_set_name(tern_db_rows *rs, unsigned col, const char *name, size_t n);
/* Empties rs for another try (its arena keeps what it holds). */
void db_rows_reset(tern_db_rows *rs);
/* Appends a row of NULL cells; returns its cells, or NULL on OOM. */
tern_db_val *db_rows_push(tern_db_rows *rs);
/* An arena copy of p[0..n) (NUL-terminated for convenience), or NULL p on OOM. */
tern_str db_rows_str(tern_db_rows *rs, const void *p, size_t n);

/* ------------------------------------------------------------------------ */
/* Connections and drivers                                                    */

struct db_conn {
    tern_db *db;
    db_pool *pool;
    db_conn *next; /* idle list */
    int64_t created_ms;
    int64_t last_used_ms;
    unsigned suspect : 1; /* last use failed: check it before handing it out */
    unsigned broken : 1;  /* unusable: the pool closes it on release */
    unsigned in_tx : 1;
};

/*
 * A driver.  Every call may suspend the calling coroutine (waiting on a
 * socket) but must not block the worker thread, except where noted.
 * Failures fill *e and return e->code; a lost connection also sets
 * c->broken.
 */
struct db_driver {
    const char *name;
    /* Checks the URL and sets db->drv_state; no connection yet. */
    int (*open)(tern_db *db, const char *url, db_err *e);
    void (*close)(tern_db *db);
    /* Opens one connection for pool (the SQLite driver uses pool == db->writer
     * to open the writer), honouring cfg.connect_timeout_ms. */
    int (*connect)(tern_db *db, db_pool *pool, db_conn **out, db_err *e);
    void (*disconnect)(db_conn *c);
    /*
     * Runs one statement with $1..$n parameters through the connection's
     * statement cache, appending result rows to rs (columns set first) and
     * setting rs->affected.  The SQLite driver returns DB_NEEDS_WRITER
     * (without running anything) when called on a reader with a statement
     * that writes; db.c then sends it to the writer.
     */
    int (*query)(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs,
                 tern_db_rows *rs, db_err *e);
    /* Runs SQL text of one or more statements without parameters. */
    int (*script)(db_conn *c, const char *sql, db_err *e);
    /* Cheap liveness check (health check on checkout after an error). */
    int (*ping)(db_conn *c, db_err *e);
    /*
     * Optional: runs sql n times, set i of the parameters at args + i *
     * nargs, its rows to rs[i] (each with columns unset), in fewer round
     * trips than n query calls.  The first error is returned; later
     * statements may not have run.  NULL: db.c calls query n times.
     */
    int (*batch)(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs, unsigned n,
                 tern_db_rows **rs, db_err *e);
    /*
     * Optional: runs the items (a list of calls from different requests) in
     * one round trip, each in its own implicit transaction, so one failing
     * changes nothing for the others; each item gets its own outcome (see
     * db_item).  Every item is handed back exactly once, also when the
     * exchange itself fails (the connection lost), which is then returned
     * (e filled).  NULL: the driver cannot coalesce.
     */
    int (*pipeline)(db_conn *c, db_item *items, db_err *e);
};

/* Not a TERN_E* code: a reader was handed a write (SQLite only). */
#define DB_NEEDS_WRITER 1
/* Not TERN_E* codes either: db_item.rc before the item is done, and an item
 * the driver's pipeline left for the caller to run alone. */
#define DB_PENDING   2
#define DB_RUN_ALONE 3

/*
 * One call of a coalesced group (db.c): a statement with n parameter sets
 * (1 for a single statement, n for a batch), set i at args + i * nargs, its
 * rows to rs[i].  The driver sets rc (0, a TERN_E* code with e filled, or
 * DB_RUN_ALONE) and then calls done(item), after which it must not touch the
 * item again (done may hand it back to its coroutine).
 */
struct db_item {
    db_item *next;
    const char *sql;
    const tern_db_val *args;
    unsigned nargs;
    unsigned n;
    tern_db_rows **rs;
    int rc;
    db_err e;
    void (*done)(db_item *it);
    /* The driver's, while the item is in flight: */
    unsigned ncmds; /* protocol commands sent for it */
    uint64_t stmt;  /* prepared statement it ran (0: unnamed) */
    int prepared;   /* 1: prepared in this exchange */
};

extern const db_driver db_driver_pg;
extern const db_driver db_driver_sqlite;

/* ------------------------------------------------------------------------ */
/* The pool                                                                   */

typedef struct db_waiter db_waiter;

struct db_pool {
    tern_db *db;
    const char *name; /* "pool" or "writer", for logs */
    pthread_mutex_t mu;
    unsigned max, min;
    unsigned open; /* connections open or being opened */
    unsigned in_use;
    unsigned nidle;
    db_conn *idle; /* LIFO: the warmest connection first */
    db_waiter *wait_head, *wait_tail;
    unsigned nwaiting;
    /* Reconnect backoff: no connect attempt before next_connect_ms. */
    int64_t next_connect_ms;
    int backoff_ms;
    int down;    /* last connect failed */
    int offload; /* statements on this pool run on the offload pool */
    /* Counters, under mu. */
    uint64_t acquired, timeouts, rejected, connects, connect_failures;
};

/*
 * Takes a connection, connecting when none is idle and the pool may grow,
 * else waiting (the coroutine yields; a thread blocks) up to
 * cfg.acquire_timeout_ms.  TERN_EUNAVAIL at once when the database is down
 * and its backoff has not expired, or the wait queue is full; after the
 * timeout, TERN_EUNAVAIL too.  Idle connections past their lifetime or idle
 * time are closed on the way; a suspect one is pinged first.
 */
int db_pool_acquire(db_pool *p, db_conn **out, db_err *e);
/*
 * Runs fn(arg) where this pool's driver calls run: on the offload pool (the
 * SQLite writer; the coroutine waits) or inline.  0, or TERN_ENOMEM when it
 * could not be queued.
 */
int db_pool_run(db_pool *p, void (*fn)(void *), void *arg);
/* Returns a connection (closing it when broken or too old). */
void db_pool_release(db_pool *p, db_conn *c);
int db_pool_init(db_pool *p, tern_db *db, const char *name, unsigned min, unsigned max);
/* Closes every idle connection; none may be in use. */
void db_pool_deinit(db_pool *p);
void db_pool_stats_add(db_pool *p, tern_db_stats *s);

/* ------------------------------------------------------------------------ */
/* The database handle                                                        */

struct tern_db {
    const db_driver *drv;
    void *drv_state;
    tern_db_config cfg;
    char *url;                            /* owned copy of cfg.url */
    char *migrations_dir;                 /* owned copy */
    db_pool pool;                         /* PostgreSQL: all; SQLite: readers */
    db_pool *writer;                      /* SQLite: the one writer; PostgreSQL: NULL */
    db_conn *tx_conn;                     /* set on transaction handles only */
    tern_db *parent;                      /* transaction handle: the pool it came from */
    int tx_retry;                         /* transaction handle: a statement asked for a retry */
    int tx_failed;                        /* transaction handle: first failed statement's code */
    _Atomic int mig_state;                /* MIG_* */
    _Atomic unsigned long errors;         /* statements that failed */
    _Atomic unsigned long long coalesced; /* statements run in groups of two or more */
    _Atomic unsigned long long groups;    /* such groups */
    _Atomic long long unavail_logged_ms;  /* last 503 logged: at most one a second */
};

enum { MIG_PENDING, MIG_RUNNING, MIG_DONE, MIG_FAILED };

/* The pool a handle's statements go to first (SQLite in memory: the writer). */
db_pool *db_first_pool(tern_db *db);
/* Runs a driver call on c, on the offload pool when c's pool says so. */
int db_conn_query(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs,
                  tern_db_rows *rs, db_err *e);
int db_conn_script(db_conn *c, const char *sql, db_err *e);
/* Runs fn in a transaction on handle db without the readiness check. */
int db_tx_run(tern_req *req, tern_db *db, tern_db_tx_fn fn, void *arg, int check_ready);
/* Applies db->cfg's migrations (list or directory). */
int db_migrate_configured(tern_db *db);

#endif /* TERN_DB_INTERNAL_H */
