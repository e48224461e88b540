/*
 * pg.c - the PostgreSQL driver: libpq in non-blocking mode.
 *
 * Nothing here blocks the worker thread.  Every exchange with the server is
 * "send, then wait": the request is queued with a PQsend* call, flushed with
 * PQflush, and the answer collected with PQconsumeInput / PQisBusy /
 * PQgetResult, waiting on the socket with tern_wait_fd whenever libpq would
 * have to block.  In a request coroutine the wait yields to the loop; outside
 * one it polls, so the same code serves main(), tests and migrations.
 * Connecting is the same dance with PQconnectPoll.  The one step libpq can
 * only do blocking, the host name lookup inside PQconnectStartParams, runs on
 * the offload pool.  (With a multi-host URL libpq looks up the later hosts
 * inside PQconnectPoll, on the worker: a trade-off accepted for a rare
 * setup.)
 *
 * Statements.  Each connection caches its prepared statements keyed by the
 * SQL text: a hash table for lookup and an LRU list for eviction, capacity
 * cfg.stmt_cache (0 disables the cache: every statement then goes out as an
 * unnamed one-shot PQsendQueryParams).  A statement is prepared on first use,
 * in the same pipelined round trip as its first execution, under a name that
 * is never reused on the connection ("tern_<n>").  libpq 15 has no
 * PQsendClosePrepared, so evicted names are queued and dropped with one
 * batched DEALLOCATE before a later exchange; names are unique, so a
 * DEALLOCATE that never happens costs server memory, never a wrong answer.
 * A cached statement the server no longer knows (26000, after DISCARD ALL)
 * or may not run any more (0A000, "cached plan must not change result type"
 * after ALTER TABLE) is dropped and, when no transaction is open, run once
 * more freshly prepared.
 *
 * Every statement goes out in pipeline mode (pg_pipeline): a single one, a
 * batch (n executions, one Sync: one implicit transaction), or a coalesced
 * group of calls from different requests, each with its own Sync (db.c).
 *
 * Parameters go in text format (bool t/f, decimal integers, %.17g doubles,
 * text and JSON as given, each copied NUL-terminated into a per-connection
 * scratch buffer) except blobs, which go in binary format straight from the
 * caller's memory.  The server infers the parameter types from the SQL, so a
 * text value can feed a timestamp or uuid column.  Results come back in text
 * format and are typed by column OID (see pg_cell).
 *
 * Connection loss.  Any failure of the socket, or a connection libpq reports
 * as CONNECTION_BAD, sets c->broken and returns TERN_EUNAVAIL; the pool then
 * closes the connection.  Before sending, a connection is checked for data
 * that arrived while it sat idle (the server's "terminating connection"
 * message and EOF after a restart or pg_terminate_backend): one that turns
 * out dead while no transaction was open is reconnected in place, so the
 * statement runs as if nothing happened.  Every wait is bounded by
 * statement_timeout + 5 s (60 s without a statement timeout); past that the
 * server is deemed unreachable and the connection broken.  TCP keepalives
 * find a peer that vanished while the connection was idle.
 */
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "db/internal.h"
#include "tern/loop.h"

#define PG_WAIT_SLACK_MS   5000  /* beyond statement_timeout before giving up */
#define PG_WAIT_DEFAULT_MS 60000 /* the bound when there is no statement timeout */
#define PG_DEALLOC_BATCH   8     /* evicted names dropped in one DEALLOCATE */
#define PG_MAX_PARAMS      65535 /* the protocol's limit */
#define PG_SCRATCH_KEEP    65536 /* scratch kept between statements */
#define PG_CHECK_IDLE_MS   1000  /* idle this long: look for a server goodbye first */

/* Type OIDs from pg_type (stable since forever; the server headers are not
 * a dependency). */
#define PG_OID_BOOL    16
#define PG_OID_BYTEA   17
#define PG_OID_INT8    20
#define PG_OID_INT2    21
#define PG_OID_INT4    23
#define PG_OID_OID     26
#define PG_OID_JSON    114
#define PG_OID_FLOAT4  700
#define PG_OID_FLOAT8  701
#define PG_OID_NUMERIC 1700
#define PG_OID_JSONB   3802

/* Driver state of one tern_db: the connection string, checked at open. */
typedef struct pg_state {
    char *conninfo;
} pg_state;

/* A cached prepared statement. */
typedef struct pg_stmt pg_stmt;
struct pg_stmt {
    pg_stmt *hnext;       /* hash chain */
    pg_stmt *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    uint64_t id; /* server-side name is tern_<id> */
    size_t len;
    char sql[]; /* NUL-terminated */
};

/* A connection: the pool's db_conn first, then ours. */
typedef struct pg_conn {
    db_conn base;
    PGconn *conn;
    int tx_idle;      /* no transaction was open after the last exchange */
    char sqlstate[6]; /* SQLSTATE of the last server error, "" if none */
    /* Statement cache. */
    pg_stmt **buckets;
    unsigned nbuckets; /* power of two, 0 until first use */
    unsigned nstmts;
    pg_stmt *lru_head, *lru_tail;
    uint64_t next_id;
    uint64_t dead[PG_DEALLOC_BATCH]; /* evicted, not yet DEALLOCATEd */
    unsigned ndead;
    /* Parameter arrays for libpq, grown to the largest statement seen. */
    const char **vals;
    int *lens;
    int *fmts;
    unsigned pcap;
    tern_buf scratch; /* NUL-terminated copies of text parameters */
} pg_conn;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                              */

/*
 * Copies a libpq message into dst (cap bytes, always NUL-terminated) on one
 * line: runs of whitespace (libpq ends lines with "\n" and indents hints with
 * tabs) become one space, and the ends are trimmed.
 */
static void pg_msg_copy(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    int space = 0;

    if (src == NULL)
        src = "";
    for (; *src != '\0' && n + 1 < cap; src++) {
        if (*src == ' ' || *src == '\n' || *src == '\t' || *src == '\r') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < cap)
            dst[n++] = ' ';
        space = 0;
        dst[n++] = *src;
    }
    dst[n] = '\0';
}

/*
 * Copies a libpq connection-string parse error, dropping every "quoted"
 * part: libpq quotes the offending piece of the string, which may be the
 * password.
 */
static void pg_msg_redact(char *dst, size_t cap, const char *src)
{
    char tmp[240];
    size_t n = 0;
    int quoted = 0;

    for (; *src != '\0' && n + 4 < sizeof tmp; src++) {
        if (*src == '"') {
            if (!quoted) {
                memcpy(tmp + n, "...", 3);
                n += 3;
            }
            quoted = !quoted;
        } else if (!quoted) {
            tmp[n++] = *src;
        }
    }
    tmp[n] = '\0';
    pg_msg_copy(dst, cap, tmp);
}

/* An absolute deadline ms from now, or -1 (none) when ms <= 0. */
static int64_t pg_deadline_in(int ms)
{
    return ms > 0 ? tern_now_ms() + ms : -1;
}

/* The bound on any one statement's waits (see the file comment). */
static int64_t pg_stmt_deadline(const tern_db *db)
{
    int t = db->cfg.statement_timeout_ms;

    return tern_now_ms() + (t > 0 ? (int64_t)t + PG_WAIT_SLACK_MS : PG_WAIT_DEFAULT_MS);
}

/* Milliseconds left until deadline for tern_wait_fd: -1 none, else >= 0. */
static int64_t pg_remaining(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - tern_now_ms();
    return left > 0 ? left : 0;
}

/* Notice processor: notices (RAISE NOTICE, "table already exists, skipping")
 * are not errors; they go to the debug log. */
static void pg_notice(void *arg, const char *message)
{
    char m[240];

    (void)arg;
    if (tern_log_level() > TERN_LOG_DEBUG)
        return;
    pg_msg_copy(m, sizeof m, message);
    tern_log(TERN_LOG_DEBUG, "postgres: %s", m);
}

/* Frees LISTEN/NOTIFY messages nobody reads, so they do not pile up. */
static void pg_drop_notifies(PGconn *conn)
{
    PGnotify *n;

    while ((n = PQnotifies(conn)) != NULL)
        PQfreemem(n);
}

/* ------------------------------------------------------------------------ */
/* Failures                                                                   */

/* The connection is gone (or in an unknown state): mark it, say so. */
static int pg_lost(pg_conn *pc, db_err *e, const char *what)
{
    char m[200];

    pc->base.broken = 1;
    pg_msg_copy(m, sizeof m, pc->conn ? PQerrorMessage(pc->conn) : "");
    return db_err_set(e, TERN_EUNAVAIL, "postgres: %s%s%s", what, m[0] ? ": " : "", m);
}

/* A failed tern_wait_fd: timeout, shutdown or a system error.  All leave the
 * protocol mid-exchange, so the connection is broken. */
static int pg_wait_failed(pg_conn *pc, int rc, db_err *e)
{
    pc->base.broken = 1;
    if (rc == TERN_ETIMEDOUT)
        return db_err_set(e, TERN_EUNAVAIL, "postgres: no answer from the server in time");
    if (rc == TERN_ECANCELED)
        return db_err_set(e, TERN_EUNAVAIL, "postgres: wait canceled (server shutting down)");
    return db_err_set(e, TERN_EUNAVAIL, "postgres: waiting on the socket failed (%s)",
                      tern_strerror(rc));
}

/* A PQsend* call refused: a lost connection, or libpq in a state we did not
 * expect, which we do not try to repair. */
static int pg_send_failed(pg_conn *pc, db_err *e)
{
    char m[200];

    if (PQstatus(pc->conn) == CONNECTION_BAD)
        return pg_lost(pc, e, "connection lost");
    pc->base.broken = 1;
    pg_msg_copy(m, sizeof m, PQerrorMessage(pc->conn));
    return db_err_set(e, TERN_EDB, "postgres: send failed: %s", m);
}

/*
 * Classifies an error result.  A bind message with the wrong number of
 * parameters is the caller's mistake (TERN_EINVAL), although its SQLSTATE,
 * 08P01, is in the connection-exception class.
 */
static int pg_result_error(pg_conn *pc, PGresult *res, db_err *e)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char m[240];

    if (msg == NULL)
        msg = PQresultErrorMessage(res);
    pg_msg_copy(m, sizeof m, msg);
    if (state == NULL || strlen(state) != 5) {
        /* Made up by libpq itself: nearly always a lost connection. */
        if (PQstatus(pc->conn) == CONNECTION_BAD)
            return pg_lost(pc, e, "connection lost");
        pc->sqlstate[0] = '\0';
        return db_err_set(e, TERN_EDB, "postgres: %s", m);
    }
    memcpy(pc->sqlstate, state, 6);
    db_err_sqlstate(e, state, m);
    if (strcmp(state, "08P01") == 0 && PQstatus(pc->conn) == CONNECTION_OK)
        e->code = TERN_EINVAL;
    return e->code;
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                    */

/* tern_wait_fd on the connection's socket. */
static int pg_wait(PGconn *conn, unsigned events, int64_t deadline)
{
    int fd = PQsocket(conn);

    if (fd < 0)
        return TERN_ESYS;
    return tern_wait_fd(fd, events, pg_remaining(deadline));
}

/*
 * Pushes libpq's output buffer to the socket.  While the socket is full,
 * waits for it to drain, and reads meanwhile, since a server blocked on
 * sending to us may not be reading (libpq's documented deadlock case).
 */
static int pg_flush(pg_conn *pc, int64_t deadline, db_err *e)
{
    for (;;) {
        int rc = PQflush(pc->conn);

        if (rc == 0)
            return 0;
        if (rc < 0)
            return pg_lost(pc, e, "send failed");
        rc = pg_wait(pc->conn, TERN_READ | TERN_WRITE, deadline);
        if (rc < 0)
            return pg_wait_failed(pc, rc, e);
        if ((rc & TERN_READ) && !PQconsumeInput(pc->conn))
            return pg_lost(pc, e, "connection lost");
    }
}

/* Waits until the next result (or the end, NULL) can be taken without
 * blocking, and takes it. */
static int pg_next_result(pg_conn *pc, int64_t deadline, PGresult **out, db_err *e)
{
    while (PQisBusy(pc->conn)) {
        int rc = pg_wait(pc->conn, TERN_READ, deadline);

        if (rc < 0)
            return pg_wait_failed(pc, rc, e);
        if (!PQconsumeInput(pc->conn))
            return pg_lost(pc, e, "connection lost");
    }
    *out = PQgetResult(pc->conn);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Results                                                                    */

/* rs->affected for a command: its row count, except a SELECT's (which libpq
 * also reports, but a SELECT changes nothing). */
static int64_t pg_affected(PGresult *res)
{
    const char *tag = PQcmdStatus(res);
    const char *n = PQcmdTuples(res);

    if (tag == NULL || strncmp(tag, "SELECT", 6) == 0 || n == NULL || *n == '\0')
        return 0;
    return strtoll(n, NULL, 10);
}

/* The value of one hex digit, or -1. */
static int pg_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * Decodes a bytea in text form in place and returns the byte count: the hex
 * format "\x0a0b..." (the default) or the old escape format (bytea_output =
 * escape: "\\" for a backslash, "\ooo" octal, other bytes as they are).
 * Decoding only shrinks, so writing over the input is safe.
 */
static size_t pg_unbytea(char *v, size_t len)
{
    size_t i, o = 0;

    if (len >= 2 && v[0] == '\\' && v[1] == 'x') {
        for (i = 2; i + 1 < len; i += 2) {
            int hi = pg_hexval(v[i]), lo = pg_hexval(v[i + 1]);

            if (hi < 0 || lo < 0)
                break;
            v[o++] = (char)(hi << 4 | lo);
        }
        return o;
    }
    for (i = 0; i < len;) {
        if (v[i] == '\\' && i + 1 < len && v[i + 1] == '\\') {
            v[o++] = '\\';
            i += 2;
        } else if (v[i] == '\\' && i + 3 < len && v[i + 1] >= '0' && v[i + 1] <= '3' &&
                   v[i + 2] >= '0' && v[i + 2] <= '7' && v[i + 3] >= '0' && v[i + 3] <= '7') {
            v[o++] = (char)((v[i + 1] - '0') << 6 | (v[i + 2] - '0') << 3 | (v[i + 3] - '0'));
            i += 4;
        } else {
            v[o++] = v[i++];
        }
    }
    return o;
}

/* An arena copy of p[0..n) for a cell; the empty string needs none. */
static int pg_cell_str(tern_db_rows *rs, const char *p, size_t n, tern_str *out)
{
    if (n == 0) {
        *out = TERN_STR("");
        return 0;
    }
    *out = db_rows_str(rs, p, n);
    return out->p != NULL ? 0 : TERN_ENOMEM;
}

/*
 * Types one non-NULL text-format value by its column's type OID: integers
 * INT, floating point and numeric DOUBLE, bool BOOL, bytea BLOB (decoded),
 * json and jsonb JSON, everything else TEXT (dates, uuids, arrays... in
 * PostgreSQL's text form).  v is the PGresult's memory (bytea is decoded in
 * it); strings are copied into the rows' arena.
 */
static int pg_cell(tern_db_rows *rs, Oid type, char *v, size_t len, tern_db_val *out)
{
    switch (type) {
    case PG_OID_BOOL: *out = tern_db_bool(v[0] == 't'); return 0;
    case PG_OID_INT8:
    case PG_OID_INT2:
    case PG_OID_INT4:
    case PG_OID_OID: *out = tern_db_int(strtoll(v, NULL, 10)); return 0;
    case PG_OID_FLOAT4:
    case PG_OID_FLOAT8:
    case PG_OID_NUMERIC: *out = tern_db_double(strtod(v, NULL)); return 0;
    case PG_OID_BYTEA:
        out->type = TERN_DB_BLOB;
        return pg_cell_str(rs, v, pg_unbytea(v, len), &out->u.s);
    case PG_OID_JSON:
    case PG_OID_JSONB: out->type = TERN_DB_JSON; return pg_cell_str(rs, v, len, &out->u.s);
    default: out->type = TERN_DB_TEXT; return pg_cell_str(rs, v, len, &out->u.s);
    }
}

/* Copies a PGRES_TUPLES_OK result into rs: column names, then every row. */
static int pg_fill(tern_db_rows *rs, PGresult *res, db_err *e)
{
    int nf = PQnfields(res), nt = PQntuples(res);

    if (db_rows_columns(rs, (unsigned)nf) != 0)
        goto oom;
    for (int j = 0; j < nf; j++) {
        const char *name = PQfname(res, j);

        if (db_rows_set_name(rs, (unsigned)j, name, strlen(name)) != 0)
            goto oom;
    }
    for (int i = 0; i < nt; i++) {
        tern_db_val *cells = db_rows_push(rs);

        if (cells == NULL)
            goto oom;
        for (int j = 0; j < nf; j++) {
            if (PQgetisnull(res, i, j)) {
                cells[j] = tern_db_null();
                continue;
            }
            if (pg_cell(rs, PQftype(res, j), PQgetvalue(res, i, j), (size_t)PQgetlength(res, i, j),
                        &cells[j]) != 0)
                goto oom;
        }
    }
    rs->affected = pg_affected(res);
    return 0;
oom:
    return db_err_set(e, TERN_ENOMEM, "postgres: out of memory copying %d rows", nt);
}

/*
 * Handles one result of an exchange.  Rows go to rs when it is given and
 * has not had a result yet (*filled); a statement sent with the extended
 * protocol has exactly one.  Returns 0 or the error the result carries.
 */
static int pg_result(pg_conn *pc, PGresult *res, tern_db_rows *rs, int *filled, db_err *e)
{
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        if (rs == NULL || *filled)
            return 0;
        *filled = 1;
        return pg_fill(rs, res, e);
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        if (rs == NULL || *filled)
            return 0;
        *filled = 1;
        if (db_rows_columns(rs, 0) != 0)
            return db_err_set(e, TERN_ENOMEM, "postgres: out of memory");
        rs->affected = pg_affected(res);
        return 0;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        /* The connection now expects COPY data: not worth rescuing. */
        pc->base.broken = 1;
        return db_err_set(e, TERN_EINVAL, "postgres: COPY is not supported");
    case PGRES_FATAL_ERROR: return pg_result_error(pc, res, e);
    case PGRES_BAD_RESPONSE:
        pc->base.broken = 1;
        return db_err_set(e, TERN_EDB, "postgres: the server's answer was not understood");
    default: return 0;
    }
}

/*
 * Takes one command's results, up to its NULL.  The first result's rows (or
 * row count) go to rs (NULL: none wanted); the first error is kept in
 * *first and fe, later ones and skipped commands (PGRES_PIPELINE_ABORTED)
 * are dropped.  Returns 0 while the connection is usable, else the
 * exchange's failure in e: the lost connection, or the error that broke it.
 */
static int pg_take(pg_conn *pc, int64_t deadline, tern_db_rows *rs, int *first, db_err *fe,
                   db_err *e)
{
    int filled = 0, rc;
    PGresult *res;

    for (;;) {
        rc = pg_next_result(pc, deadline, &res, e);
        if (rc != 0 || res == NULL)
            return rc;
        if (*first == 0)
            *first = pg_result(pc, res, rs, &filled, fe);
        PQclear(res);
        if (pc->base.broken) {
            if (PQstatus(pc->conn) == CONNECTION_BAD)
                return pg_lost(pc, e, "connection lost");
            if (*first == 0)
                return db_err_set(e, TERN_EDB, "postgres: connection unusable");
            if (e != fe)
                *e = *fe;
            return *first;
        }
    }
}

/*
 * Finishes an exchange begun with a PQsend* call: flushes it, then takes
 * every result up to the end so the connection is ready for the next one,
 * even after an error.  The first error wins.  Afterwards the connection's
 * state is checked, so an error that came with the connection's end (the
 * server's FATAL before it hangs up) reports the lost connection.
 */
static int pg_finish(pg_conn *pc, int64_t deadline, tern_db_rows *rs, db_err *e)
{
    int rc, first = 0;

    pc->sqlstate[0] = '\0';
    rc = pg_flush(pc, deadline, e);
    if (rc == 0)
        rc = pg_take(pc, deadline, rs, &first, e, e);
    if (rc != 0)
        return rc;
    if (PQstatus(pc->conn) == CONNECTION_BAD)
        return pg_lost(pc, e, "connection lost");
    pc->tx_idle = PQtransactionStatus(pc->conn) == PQTRANS_IDLE;
    pg_drop_notifies(pc->conn);
    return first;
}

/* ------------------------------------------------------------------------ */
/* Connecting                                                                 */

/* Arguments of PQconnectStartParams, run on the offload pool. */
typedef struct pg_start_job {
    const char *const *keys;
    const char *const *vals;
    PGconn *conn;
} pg_start_job;

static void pg_start_fn(void *arg)
{
    pg_start_job *job = arg;

    job->conn = PQconnectStartParams(job->keys, job->vals, 1);
}

/*
 * Opens pc->conn: starts the connection (on the offload pool, since libpq
 * resolves the host name there, blocking), drives PQconnectPoll on the
 * socket until it is up or cfg.connect_timeout_ms passed, switches it to
 * non-blocking and sets the statement timeout.  Our keepalive settings come
 * before the user's string, so the string may override them; the client
 * encoding comes after it, since tern speaks UTF-8 only.  Failures are
 * TERN_EUNAVAIL (TERN_ENOMEM when libpq cannot allocate); pc->conn is NULL
 * then.
 */
static int pg_dial(pg_conn *pc, db_err *e)
{
    tern_db *db = pc->base.db;
    const pg_state *st = db->drv_state;
    const char *const keys[] = { "keepalives",
                                 "keepalives_idle",
                                 "keepalives_interval",
                                 "keepalives_count",
                                 "fallback_application_name",
                                 "dbname",
                                 "client_encoding",
                                 NULL };
    const char *const vals[] = { "1", "30", "10", "3", "tern", st->conninfo, "UTF8", NULL };
    pg_start_job job = { keys, vals, NULL };
    int64_t deadline = pg_deadline_in(db->cfg.connect_timeout_ms);
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    char m[200];
    int rc;

    rc = tern_offload(pg_start_fn, &job);
    if (rc != 0)
        return db_err_set(e, rc, "postgres: could not start connecting");
    if (job.conn == NULL)
        return db_err_set(e, TERN_ENOMEM, "postgres: out of memory connecting");
    pc->conn = job.conn;
    PQsetNoticeProcessor(pc->conn, pg_notice, NULL);
    if (PQstatus(pc->conn) == CONNECTION_BAD)
        ps = PGRES_POLLING_FAILED;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED) {
            pg_msg_copy(m, sizeof m, PQerrorMessage(pc->conn));
            rc = db_err_set(e, TERN_EUNAVAIL, "postgres: connect failed: %s", m);
            goto fail;
        }
        rc = pg_wait(pc->conn, ps == PGRES_POLLING_READING ? TERN_READ : TERN_WRITE, deadline);
        if (rc == TERN_ETIMEDOUT) {
            rc = db_err_set(e, TERN_EUNAVAIL, "postgres: connect timed out after %d ms",
                            db->cfg.connect_timeout_ms);
            goto fail;
        }
        if (rc < 0) {
            rc = db_err_set(e, TERN_EUNAVAIL, "postgres: connect interrupted (%s)",
                            tern_strerror(rc));
            goto fail;
        }
        ps = PQconnectPoll(pc->conn);
    }
    if (PQsetnonblocking(pc->conn, 1) != 0) {
        rc = db_err_set(e, TERN_EUNAVAIL, "postgres: cannot switch to non-blocking mode");
        goto fail;
    }
    pc->tx_idle = 1;
    if (db->cfg.statement_timeout_ms > 0) {
        char sql[64];

        snprintf(sql, sizeof sql, "SET statement_timeout = %d", db->cfg.statement_timeout_ms);
        if (!PQsendQuery(pc->conn, sql)) {
            rc = pg_send_failed(pc, e);
            goto fail;
        }
        rc = pg_finish(pc, deadline, NULL, e);
        if (rc != 0)
            goto fail;
    }
    pc->base.broken = 0;
    return 0;
fail:
    PQfinish(pc->conn);
    pc->conn = NULL;
    pc->base.broken = 1;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The statement cache                                                        */

/* FNV-1a over the SQL text. */
static uint64_t pg_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211u;
    }
    return h;
}

static void pg_lru_unlink(pg_conn *pc, pg_stmt *st)
{
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        pc->lru_head = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    else
        pc->lru_tail = st->prev;
    st->prev = st->next = NULL;
}

static void pg_lru_push(pg_conn *pc, pg_stmt *st)
{
    st->prev = NULL;
    st->next = pc->lru_head;
    if (pc->lru_head != NULL)
        pc->lru_head->prev = st;
    pc->lru_head = st;
    if (pc->lru_tail == NULL)
        pc->lru_tail = st;
}

/* The cached statement for sql, or NULL. */
static pg_stmt *pg_cache_find(pg_conn *pc, const char *sql, size_t len, uint64_t h)
{
    if (pc->nbuckets == 0)
        return NULL;
    for (pg_stmt *st = pc->buckets[h & (pc->nbuckets - 1)]; st != NULL; st = st->hnext)
        if (st->hash == h && st->len == len && memcmp(st->sql, sql, len) == 0)
            return st;
    return NULL;
}

/* Takes st out of the table and the LRU list and frees it.  The caller
 * decides what becomes of the server-side statement. */
static void pg_cache_remove(pg_conn *pc, pg_stmt *st)
{
    pg_stmt **pp = &pc->buckets[st->hash & (pc->nbuckets - 1)];

    while (*pp != st)
        pp = &(*pp)->hnext;
    *pp = st->hnext;
    pg_lru_unlink(pc, st);
    pc->nstmts--;
    tern_free(st);
}

/* Queues a server-side statement for DEALLOCATE.  When the queue is full
 * (only while DEALLOCATE cannot run, in a failed transaction) the name is
 * left to the end of the session. */
static void pg_forget(pg_conn *pc, uint64_t id)
{
    if (pc->ndead < PG_DEALLOC_BATCH)
        pc->dead[pc->ndead++] = id;
}

/* Empties the cache without touching the server (its statements are gone:
 * a new session, or DISCARD ALL). */
static void pg_cache_clear(pg_conn *pc)
{
    while (pc->lru_head != NULL)
        pg_cache_remove(pc, pc->lru_head);
    pc->ndead = 0;
}

/* Records sql as prepared under id, evicting the least recently used entry
 * when full.  TERN_ENOMEM leaves the cache as it was. */
static int pg_cache_add(pg_conn *pc, const char *sql, size_t len, uint64_t h, uint64_t id)
{
    unsigned cap = pc->base.db->cfg.stmt_cache;
    pg_stmt *st;

    if (pc->nbuckets == 0) {
        unsigned nb = 16;

        while (nb < cap * 2u && nb < (1u << 20))
            nb *= 2;
        pc->buckets = tern_calloc(nb, sizeof *pc->buckets);
        if (pc->buckets == NULL)
            return TERN_ENOMEM;
        pc->nbuckets = nb;
    }
    st = tern_malloc(sizeof *st + len + 1);
    if (st == NULL)
        return TERN_ENOMEM;
    if (pc->nstmts >= cap && pc->lru_tail != NULL) {
        pg_forget(pc, pc->lru_tail->id);
        pg_cache_remove(pc, pc->lru_tail);
    }
    st->hash = h;
    st->id = id;
    st->len = len;
    memcpy(st->sql, sql, len + 1);
    st->hnext = pc->buckets[h & (pc->nbuckets - 1)];
    pc->buckets[h & (pc->nbuckets - 1)] = st;
    pg_lru_push(pc, st);
    pc->nstmts++;
    return 0;
}

/*
 * Drops the queued evicted statements with one DEALLOCATE round trip.  Not
 * in a failed transaction (it would fail too).  A failure other than a lost
 * connection is only logged: the names are never reused.
 */
static int pg_dealloc(pg_conn *pc, int64_t deadline, db_err *e)
{
    char sql[PG_DEALLOC_BATCH * 40];
    size_t n = 0;
    int rc;

    if (pc->ndead == 0 || PQtransactionStatus(pc->conn) == PQTRANS_INERROR)
        return 0;
    for (unsigned i = 0; i < pc->ndead; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "DEALLOCATE tern_%" PRIu64 ";", pc->dead[i]);
    pc->ndead = 0;
    if (!PQsendQuery(pc->conn, sql))
        return pg_send_failed(pc, e);
    rc = pg_finish(pc, deadline, NULL, e);
    if (rc != 0 && !pc->base.broken) {
        tern_log(TERN_LOG_DEBUG, "postgres: DEALLOCATE failed: %s", e->msg);
        rc = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                 */

/*
 * Checks that args can travel (count, size, type; a text or JSON value
 * holding a NUL byte cannot go in text format).  0 or TERN_EINVAL.
 */
static int pg_args_ok(const tern_db_val *args, unsigned nargs, db_err *e)
{
    if (nargs > 0 && args == NULL)
        return db_err_set(e, TERN_EINVAL, "postgres: %u parameters but no values", nargs);
    if (nargs > PG_MAX_PARAMS)
        return db_err_set(e, TERN_EINVAL, "postgres: %u parameters (at most %d)", nargs,
                          PG_MAX_PARAMS);
    for (unsigned i = 0; i < nargs; i++) {
        const tern_db_val *a = &args[i];

        if ((a->type == TERN_DB_TEXT || a->type == TERN_DB_JSON || a->type == TERN_DB_BLOB) &&
            a->u.s.n > 0x7fffffff) /* libpq measures values with an int */
            return db_err_set(e, TERN_EINVAL, "postgres: parameter $%u is too large", i + 1);
        switch (a->type) {
        case TERN_DB_TEXT:
        case TERN_DB_JSON:
            if (a->u.s.n > 0 && memchr(a->u.s.p, '\0', a->u.s.n) != NULL)
                return db_err_set(e, TERN_EINVAL, "postgres: parameter $%u holds a NUL byte",
                                  i + 1);
            break;
        case TERN_DB_INT:
        case TERN_DB_DOUBLE:
        case TERN_DB_BLOB:
        case TERN_DB_NULL:
        case TERN_DB_BOOL: break;
        default:
            return db_err_set(e, TERN_EINVAL, "postgres: parameter $%u has unknown type %d", i + 1,
                              a->type);
        }
    }
    return 0;
}

/*
 * Fills pc->vals/lens/fmts for libpq from args that passed pg_args_ok.
 * Text-format values are written into pc->scratch, reserved up front so the
 * pointers stay valid.  0 or TERN_ENOMEM.
 */
static int pg_bind(pg_conn *pc, const tern_db_val *args, unsigned nargs, db_err *e)
{
    size_t need = 0;
    char *p;

    for (unsigned i = 0; i < nargs; i++) {
        switch (args[i].type) {
        case TERN_DB_INT: need += 24; break;
        case TERN_DB_DOUBLE: need += 32; break;
        case TERN_DB_TEXT:
        case TERN_DB_JSON: need += args[i].u.s.n + 1; break;
        default: break;
        }
    }

    if (nargs > pc->pcap) {
        const char **v = tern_realloc(pc->vals, nargs * sizeof *v);
        int *l, *f;

        if (v == NULL)
            goto oom;
        pc->vals = v;
        l = tern_realloc(pc->lens, nargs * sizeof *l);
        if (l == NULL)
            goto oom;
        pc->lens = l;
        f = tern_realloc(pc->fmts, nargs * sizeof *f);
        if (f == NULL)
            goto oom;
        pc->fmts = f;
        pc->pcap = nargs;
    }
    pc->scratch.len = 0;
    if (need > 0 && tern_buf_reserve(&pc->scratch, need) != 0)
        goto oom;
    p = pc->scratch.p;
    for (unsigned i = 0; i < nargs; i++) {
        const tern_db_val *a = &args[i];

        pc->lens[i] = 0;
        pc->fmts[i] = 0;
        switch (a->type) {
        case TERN_DB_NULL: pc->vals[i] = NULL; break;
        case TERN_DB_BOOL: pc->vals[i] = a->u.b ? "t" : "f"; break;
        case TERN_DB_INT:
            pc->vals[i] = p;
            p += snprintf(p, 24, "%" PRId64, a->u.i) + 1;
            break;
        case TERN_DB_DOUBLE:
            if (isnan(a->u.d))
                pc->vals[i] = "NaN";
            else if (isinf(a->u.d))
                pc->vals[i] = a->u.d > 0 ? "Infinity" : "-Infinity";
            else {
                pc->vals[i] = p;
                p += snprintf(p, 32, "%.17g", a->u.d) + 1;
            }
            break;
        case TERN_DB_TEXT:
        case TERN_DB_JSON:
            pc->vals[i] = p;
            if (a->u.s.n > 0)
                memcpy(p, a->u.s.p, a->u.s.n);
            p[a->u.s.n] = '\0';
            p += a->u.s.n + 1;
            break;
        default: /* TERN_DB_BLOB */
            pc->vals[i] = a->u.s.n > 0 ? a->u.s.p : "";
            pc->lens[i] = (int)a->u.s.n;
            pc->fmts[i] = 1;
            break;
        }
    }
    return 0;
oom:
    return db_err_set(e, TERN_ENOMEM, "postgres: out of memory binding %u parameters", nargs);
}

/* ------------------------------------------------------------------------ */
/* Statements                                                                 */

/* Reconnects in place (see pg_check); the statement cache starts empty. */
static int pg_redial(pg_conn *pc, db_err *e)
{
    PQfinish(pc->conn);
    pc->conn = NULL;
    pg_cache_clear(pc);
    return pg_dial(pc, e);
}

/*
 * Run before sending anything.  An idle connection has nothing to read, so
 * a readable socket (one poll(2), no wait) means the server spoke while we
 * were away: usually a notice, or its "terminating connection" message and
 * EOF.  A connection found dead while no transaction was open is replaced in
 * place, so the caller's statement still runs; inside a transaction the
 * transaction is lost with it: TERN_EUNAVAIL.
 */
static int pg_check(pg_conn *pc, db_err *e)
{
    if (pc->base.broken || pc->conn == NULL)
        return db_err_set(e, TERN_EUNAVAIL, "postgres: connection is broken");
    /*
     * A connection used within the last second is almost surely alive, and
     * busy ones are exactly where a poll(2) per statement costs most; a
     * failure there is still caught (the statement fails, the connection is
     * replaced).
     */
    if (tern_now_ms() - pc->base.last_used_ms < PG_CHECK_IDLE_MS)
        return 0;
    for (int i = 0; i < 4 && PQstatus(pc->conn) == CONNECTION_OK; i++) {
        struct pollfd pfd = { PQsocket(pc->conn), POLLIN, 0 };

        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(pc->conn))
            break;
        pg_drop_notifies(pc->conn);
    }
    if (PQstatus(pc->conn) == CONNECTION_OK)
        return 0;
    if (!pc->tx_idle)
        return pg_lost(pc, e, "connection lost in a transaction");
    tern_log(TERN_LOG_INFO, "postgres: connection closed by the server while idle, reconnecting");
    return pg_redial(pc, e);
}

/*
 * TCP_CORK on (1) or off (0) around the sends of a pipeline: libpq 15's
 * PQpipelineSync flushes each time, and corked those writes leave as one
 * segment, so the server wakes once for the whole group.  Best effort: not
 * TCP (a Unix socket) or not Linux, it does nothing.
 */
static void pg_cork(pg_conn *pc, int on)
{
#ifdef TCP_CORK
    int fd = PQsocket(pc->conn);

    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
#else
    (void)pc;
    (void)on;
#endif
}

/*
 * Queues one item of a pipeline: its statement (prepared first when not
 * cached, and cached at once so a later item of the group reuses it), one
 * execution per parameter set, then a Sync, which ends the item's implicit
 * transaction.  0, or the item's own failure before anything was sent (a
 * parameter libpq cannot take, out of memory), or, with *conn_failed set,
 * libpq refusing a send (the connection's failure).
 */
static int pg_queue_item(pg_conn *pc, db_item *it, int *conn_failed)
{
    char name[32];
    int rc;

    it->ncmds = 0;
    it->stmt = 0;
    it->prepared = 0;
    *conn_failed = 0;
    /* Check every set first: a failure after the first send would leave a
     * half-sent item in the pipeline. */
    for (unsigned i = 0; i < it->n; i++)
        if ((rc = pg_args_ok(it->args + (size_t)i * it->nargs, it->nargs, &it->e)) != 0)
            return rc;
    if (pc->base.db->cfg.stmt_cache != 0) {
        size_t len = strlen(it->sql);
        uint64_t h = pg_hash(it->sql, len);
        pg_stmt *st = pg_cache_find(pc, it->sql, len, h);

        if (st != NULL) {
            pg_lru_unlink(pc, st);
            pg_lru_push(pc, st);
            it->stmt = st->id;
        } else {
            /* An eviction here only queues a DEALLOCATE for later: a
             * statement an earlier item uses stays until then. */
            it->stmt = ++pc->next_id;
            if (pg_cache_add(pc, it->sql, len, h, it->stmt) != 0)
                return db_err_set(&it->e, TERN_ENOMEM, "postgres: out of memory");
            it->prepared = 1;
            snprintf(name, sizeof name, "tern_%" PRIu64, it->stmt);
            if (!PQsendPrepare(pc->conn, name, it->sql, 0, NULL))
                goto send_failed;
            it->ncmds++;
        }
        snprintf(name, sizeof name, "tern_%" PRIu64, it->stmt);
    }
    for (unsigned i = 0; i < it->n; i++) {
        int ok;

        const tern_db_val *args = it->args + (size_t)i * it->nargs;

        /* libpq copies the values into its output buffer, so scratch is
         * reusable.  Checked above, a bind can only run out of memory: the
         * item is half sent by then, so the connection goes too. */
        if (pg_bind(pc, args, it->nargs, &it->e) != 0)
            goto send_failed;
        if (it->stmt != 0)
            ok = PQsendQueryPrepared(pc->conn, name, (int)it->nargs, pc->vals, pc->lens, pc->fmts,
                                     0);
        else
            ok = PQsendQueryParams(pc->conn, it->sql, (int)it->nargs, NULL, pc->vals, pc->lens,
                                   pc->fmts, 0);
        if (!ok)
            goto send_failed;
        it->ncmds++;
    }
    if (!PQpipelineSync(pc->conn))
        goto send_failed;
    return 0;
send_failed:
    *conn_failed = 1;
    return pg_send_failed(pc, &it->e);
}

/* The cached statement prepared under id, or NULL. */
static pg_stmt *pg_cache_by_id(pg_conn *pc, uint64_t id)
{
    for (pg_stmt *st = pc->lru_head; st != NULL; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

/* Hands the items from `from` on back with the exchange's failure e. */
static void pg_fail_items(db_item *from, const db_err *e)
{
    for (db_item *it = from, *next; it != NULL; it = next) {
        next = it->next; /* done() may end the item's life */
        it->rc = e->code;
        it->e = *e;
        it->done(it);
    }
}

/*
 * Reads one item's answers: each command's results up to its NULL, then the
 * Sync's PGRES_PIPELINE_SYNC.  Execution i's rows go to it->rs[i]; the first
 * error is the item's (in it->rc and it->e), and the commands after it in
 * the item were skipped by the server (PGRES_PIPELINE_ABORTED).  A
 * statement the server did not know (a stale cache entry) is dropped and the
 * item left to run alone; one whose prepare failed leaves the cache.
 * Returns 0 while the connection is still in step, else its failure in e.
 */
static int pg_read_item(pg_conn *pc, db_item *it, db_err *e)
{
    int64_t deadline = pg_stmt_deadline(pc->base.db);
    int first = 0, prep_failed = 0, rc;
    PGresult *res;
    pg_stmt *st;

    pc->sqlstate[0] = '\0';
    for (unsigned cmd = 0; cmd < it->ncmds; cmd++) {
        int is_prepare = cmd < (unsigned)it->prepared, was_ok = first == 0;

        /* the prepare's result has no rows; execution i's go to rs[i] */
        rc = pg_take(pc, deadline, is_prepare ? NULL : it->rs[cmd - (unsigned)it->prepared],
                     &first, &it->e, e);
        if (rc != 0)
            return rc;
        prep_failed |= was_ok && first != 0 && is_prepare;
        /* Each execution is read with a fresh deadline: the bound is per
         * statement, as it is for a statement alone. */
        deadline = pg_stmt_deadline(pc->base.db);
    }
    rc = pg_next_result(pc, deadline, &res, e);
    if (rc != 0)
        return rc;
    if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        /* After a FATAL (the server going down) libpq ends the pipeline
         * early: the connection is lost.  The FATAL may also stand where
         * the Sync's answer was due (a fast shutdown caught the backend
         * between the last command and the Sync: the implicit transaction
         * did not commit), before libpq has read the end of the stream.
         * Anything else: not understood. */
        int lost = first == TERN_EUNAVAIL;

        if (!lost && res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR) {
            db_err fatal;

            lost = pg_result_error(pc, res, &fatal) == TERN_EUNAVAIL;
        }
        PQclear(res);
        if (lost || PQstatus(pc->conn) == CONNECTION_BAD)
            return pg_lost(pc, e, "connection lost");
        pc->base.broken = 1;
        return db_err_set(e, TERN_EDB, "postgres: pipeline out of step");
    }
    PQclear(res);
    st = first != 0 && it->stmt != 0 ? pg_cache_by_id(pc, it->stmt) : NULL;
    if (prep_failed) {
        if (st != NULL)
            pg_cache_remove(pc, st); /* never existed on the server */
    } else if (first != 0 && it->stmt != 0 &&
               (strcmp(pc->sqlstate, "26000") == 0 || strcmp(pc->sqlstate, "0A000") == 0)) {
        /* Gone (DISCARD ALL: all are) or unusable (changed result type); an
         * entry already removed was an earlier item's failed prepare. */
        if (st != NULL && pc->sqlstate[0] == '2') {
            pg_cache_clear(pc);
        } else if (st != NULL) {
            pg_forget(pc, st->id);
            pg_cache_remove(pc, st);
        }
        first = DB_RUN_ALONE;
    }
    it->rc = first;
    return 0;
}

/*
 * driver.pipeline (see internal.h): every item is queued with its own Sync
 * (corked, so the group leaves as one write), then the answers are read in
 * order, each item handed back as soon as its own are in.  An item whose
 * parameters cannot be sent fails alone.  Every item is handed back (done)
 * exactly once, also when the connection fails.
 */
static int pg_pipeline(db_conn *c, db_item *items, db_err *e)
{
    pg_conn *pc = (pg_conn *)c;
    int rc = pg_check(pc, e), conn_failed = 0, cork;
    db_item *it, *next;

    /* Evicted statements are dropped before the pipeline, one round trip
     * for PG_DEALLOC_BATCH of them. */
    if (rc == 0 && pc->ndead >= PG_DEALLOC_BATCH)
        rc = pg_dealloc(pc, pg_stmt_deadline(c->db), e);
    if (rc == 0 && !PQenterPipelineMode(pc->conn))
        rc = db_err_set(e, TERN_EDB, "postgres: cannot enter pipeline mode");
    if (rc != 0) {
        pg_fail_items(items, e);
        return rc;
    }
    /* One item flushes once, at its Sync; several need the cork. */
    cork = items->next != NULL;
    if (cork)
        pg_cork(pc, 1);
    for (it = items; it != NULL; it = it->next) {
        int r = pg_queue_item(pc, it, &conn_failed);

        if (conn_failed) {
            *e = it->e;
            break;
        }
        it->rc = r != 0 ? r : DB_PENDING;
    }
    rc = conn_failed ? e->code : pg_flush(pc, pg_stmt_deadline(c->db), e);
    if (cork)
        pg_cork(pc, 0);
    it = items;
    while (it != NULL && rc == 0) {
        if (it->rc == DB_PENDING && (rc = pg_read_item(pc, it, e)) != 0)
            break;
        next = it->next; /* done() may end the item's life */
        it->done(it);
        it = next;
    }
    if (rc == 0 && !PQexitPipelineMode(pc->conn))
        rc = db_err_set(e, TERN_EDB, "postgres: cannot leave pipeline mode");
    if (rc != 0) {
        pc->base.broken = 1; /* mid-pipeline: do not reuse */
        pg_fail_items(it, e);
        return rc;
    }
    if (PQstatus(pc->conn) == CONNECTION_BAD)
        return pg_lost(pc, e, "connection lost");
    pc->tx_idle = PQtransactionStatus(pc->conn) == PQTRANS_IDLE;
    pg_drop_notifies(pc->conn);
    if (pc->scratch.cap > PG_SCRATCH_KEEP)
        tern_buf_deinit(&pc->scratch);
    return 0;
}

/* The done() of an item run on its own: nothing to hand back. */
static void pg_item_kept(db_item *it)
{
    (void)it;
}

/*
 * driver.batch: the same statement n times, pipelined (libpq pipeline
 * mode): every execution is sent (after the prepare, on a cache miss), then
 * one Sync, then the results are read in order, so n statements cost one
 * network round trip instead of n.  Each execution is still its own
 * statement (TFB's "one query per row" holds); they share one implicit
 * transaction, so after an error the server skips the rest
 * (PGRES_PIPELINE_ABORTED), undoes the sets before it, and the first error
 * is returned.  A stale cached statement is prepared afresh and the batch
 * run once more.
 */
static int pg_batch(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs,
                    unsigned n, tern_db_rows **rs, db_err *e)
{
    db_item it;
    int rc;

    for (int attempt = 0;; attempt++) {
        memset(&it, 0, sizeof it);
        it.sql = sql;
        it.args = args;
        it.nargs = nargs;
        it.n = n;
        it.rs = rs;
        it.done = pg_item_kept;
        rc = pg_pipeline(c, &it, e);
        if (rc != 0)
            return rc;
        /* Inside a transaction the failed statement aborted it: no rerun. */
        if (it.rc != DB_RUN_ALONE || attempt > 0 || !((pg_conn *)c)->tx_idle)
            break;
        for (unsigned i = 0; i < n; i++) /* rows of the failed try */
            db_rows_reset(rs[i]);
    }
    if (it.rc == DB_RUN_ALONE) /* stale twice: report what the server said */
        it.rc = it.e.code;
    if (it.rc != 0)
        *e = it.e;
    return it.rc;
}

/* driver.query: one statement, a batch of one (see internal.h). */
static int pg_query(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs,
                    tern_db_rows *rs, db_err *e)
{
    return pg_batch(c, sql, args, nargs, 1, &rs, e);
}

/* driver.script: SQL text of any number of statements, simple protocol (so
 * no parameters); every result is read, the first error is returned. */
static int pg_script(db_conn *c, const char *sql, db_err *e)
{
    pg_conn *pc = (pg_conn *)c;
    int rc = pg_check(pc, e);

    if (rc != 0)
        return rc;
    if (!PQsendQuery(pc->conn, sql))
        return pg_send_failed(pc, e);
    return pg_finish(pc, pg_stmt_deadline(c->db), NULL, e);
}

/* driver.ping: an empty query, the cheapest round trip there is. */
static int pg_ping(db_conn *c, db_err *e)
{
    return pg_script(c, "", e);
}

/* ------------------------------------------------------------------------ */
/* The driver                                                                 */

/*
 * driver.open: checks the URL (postgres://, postgresql:// or a libpq
 * key=value string) with libpq's own parser, plus the port, which libpq
 * would only check when connecting, and keeps a copy.  The error message
 * never repeats the string, which may hold a password.
 */
static int pg_open(tern_db *db, const char *url, db_err *e)
{
    PQconninfoOption *opts;
    char *err = NULL;
    char m[200];
    pg_state *st;

    if (url == NULL || *url == '\0')
        return db_err_set(e, TERN_EINVAL, "postgres: no connection URL");
    opts = PQconninfoParse(url, &err);
    if (opts == NULL) {
        if (err == NULL)
            return db_err_set(e, TERN_ENOMEM, "postgres: out of memory");
        pg_msg_redact(m, sizeof m, err);
        PQfreemem(err);
        return db_err_set(e, TERN_EINVAL, "postgres: bad connection URL: %s", m);
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "port") == 0 && o->val != NULL &&
            o->val[strspn(o->val, "0123456789,")] != '\0') {
            PQconninfoFree(opts);
            return db_err_set(e, TERN_EINVAL, "postgres: bad connection URL: port is not a number");
        }
    }
    PQconninfoFree(opts);
    st = tern_calloc(1, sizeof *st);
    if (st == NULL)
        return db_err_set(e, TERN_ENOMEM, "postgres: out of memory");
    st->conninfo = tern_strdup(url);
    if (st->conninfo == NULL) {
        tern_free(st);
        return db_err_set(e, TERN_ENOMEM, "postgres: out of memory");
    }
    db->drv_state = st;
    return 0;
}

/* driver.close: frees what open kept. */
static void pg_close(tern_db *db)
{
    pg_state *st = db->drv_state;

    if (st == NULL)
        return;
    tern_free(st->conninfo);
    tern_free(st);
    db->drv_state = NULL;
}

/* driver.connect: a new connection for pool (see pg_dial). */
static int pg_connect(tern_db *db, db_pool *pool, db_conn **out, db_err *e)
{
    pg_conn *pc = tern_calloc(1, sizeof *pc);
    int rc;

    *out = NULL;
    if (pc == NULL)
        return db_err_set(e, TERN_ENOMEM, "postgres: out of memory");
    pc->base.db = db;
    pc->base.pool = pool;
    tern_buf_init(&pc->scratch, 0);
    rc = pg_dial(pc, e);
    if (rc != 0) {
        tern_free(pc);
        return rc;
    }
    pc->base.created_ms = tern_now_ms();
    pc->base.last_used_ms = pc->base.created_ms;
    *out = &pc->base;
    return 0;
}

/* driver.disconnect: closes the connection (PQfinish writes its goodbye
 * without blocking, the socket being non-blocking) and frees everything. */
static void pg_disconnect(db_conn *c)
{
    pg_conn *pc = (pg_conn *)c;

    if (pc == NULL)
        return;
    if (pc->conn != NULL)
        PQfinish(pc->conn);
    while (pc->lru_head != NULL)
        pg_cache_remove(pc, pc->lru_head);
    tern_free(pc->buckets);
    tern_free(pc->vals);
    tern_free(pc->lens);
    tern_free(pc->fmts);
    tern_buf_deinit(&pc->scratch);
    tern_free(pc);
}

const db_driver db_driver_pg = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .query = pg_query,
    .script = pg_script,
    .ping = pg_ping,
    .batch = pg_batch,
    .pipeline = pg_pipeline,
};
