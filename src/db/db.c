/*
 * db.c - the public database API: opening a pool, running statements,
 * transactions, reading results, writing them as JSON.
 *
 * A statement's way: the handle's readiness (migrations) is checked, a
 * connection is taken from the pool, the driver runs the statement through
 * the connection's statement cache, the rows are copied into the request's
 * arena, and the connection goes straight back to the pool.  So a handler
 * holds a connection only while its statement runs, never while it writes
 * its response, and the rows stay readable until the request ends.
 *
 * SQLite routing: the driver runs a statement on a reader connection, or
 * answers DB_NEEDS_WRITER for a statement that writes; this file then sends
 * it to the writer pool (one connection), whose calls run on the offload
 * pool.  Writers queue in the pool's FIFO as any other waiters do.
 *
 * Coalescing (PostgreSQL): single statements outside a transaction that
 * requests on one worker issue in the same loop iteration share one round
 * trip.  The first becomes the group's leader: it lets the other ready
 * coroutines run (it resumes at the end of the iteration), takes a
 * connection (the group stays open to newcomers while it waits for one),
 * and hands the group to the driver's pipeline, which runs each statement
 * in its own implicit transaction and hands each result back to its
 * coroutine as soon as it is in.  The server then wakes once per group
 * instead of once per statement.  The price: statements of one group wait
 * on each other, so a slow one delays the few that happened to join it.
 * cfg.coalesce_max bounds a group; 1 turns coalescing off.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "db/internal.h"
#include "net/coro.h"
#include "net/loop.h"

/* ------------------------------------------------------------------------ */
/* Opening                                                                    */

void tern_db_config_init(tern_db_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->min_conns = 1;
    cfg->max_conns = 16;
    cfg->acquire_timeout_ms = 5000;
    cfg->max_waiters = 1024;
    cfg->idle_timeout_ms = 60000;
    cfg->max_lifetime_ms = 1800000;
    cfg->connect_timeout_ms = 5000;
    cfg->statement_timeout_ms = 30000;
    cfg->busy_timeout_ms = 5000;
    cfg->stmt_cache = 128;
    cfg->tx_retries = 3;
    cfg->backoff_min_ms = 100;
    cfg->backoff_max_ms = 10000;
    cfg->retry_after_s = 1;
    cfg->coalesce_max = 32;
}

static const db_driver *driver_for(const char *url)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        return &db_driver_sqlite;
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0 ||
        strchr(url, '=') != NULL)
        return &db_driver_pg;
    return NULL;
}

int tern_db_open(const tern_db_config *cfg, tern_db **out)
{
    const db_driver *drv;
    tern_db *db;
    db_err e;
    int rc;

    *out = NULL;
    if (cfg == NULL || cfg->url == NULL || (drv = driver_for(cfg->url)) == NULL) {
        tern_log(TERN_LOG_ERROR, "db: unknown database URL scheme (want sqlite:, postgres://, "
                                 "postgresql:// or key=value)");
        return TERN_EINVAL;
    }
    if (cfg->max_conns > 100000 || cfg->min_conns > cfg->max_conns)
        return TERN_EINVAL;
    db = tern_calloc(1, sizeof *db);
    if (db == NULL)
        return TERN_ENOMEM;
    db->drv = drv;
    db->cfg = *cfg;
    db->url = tern_strdup(cfg->url);
    db->cfg.url = db->url;
    if (cfg->migrations_dir) {
        db->migrations_dir = tern_strdup(cfg->migrations_dir);
        db->cfg.migrations_dir = db->migrations_dir;
    }
    if (db->url == NULL || (cfg->migrations_dir && db->migrations_dir == NULL)) {
        rc = TERN_ENOMEM;
        goto fail;
    }
    rc = drv->open(db, db->url, &e);
    if (rc != 0) {
        tern_log(TERN_LOG_ERROR, "db: cannot open %s database: %s", drv->name, e.msg);
        goto fail;
    }
    /* The driver may lower max_conns (SQLite in memory: writer only). */
    if (db->cfg.min_conns > db->cfg.max_conns)
        db->cfg.min_conns = db->cfg.max_conns;
    rc = db_pool_init(&db->pool, db, "pool", db->cfg.min_conns, db->cfg.max_conns);
    if (rc == 0 && drv == &db_driver_sqlite) {
        db->writer = tern_calloc(1, sizeof *db->writer);
        rc = db->writer ? db_pool_init(db->writer, db, "writer", 0, 1) : TERN_ENOMEM;
        if (rc == 0)
            db->writer->offload = 1;
    }
    if (rc != 0) {
        drv->close(db);
        goto fail;
    }
    atomic_init(&db->mig_state, (cfg->migrations && cfg->migrations[0].name) || cfg->migrations_dir
                                    ? MIG_PENDING
                                    : MIG_DONE);
    atomic_init(&db->errors, 0);
    atomic_init(&db->unavail_logged_ms, 0);
    *out = db;
    return 0;
fail:
    tern_free(db->writer);
    tern_free(db->migrations_dir);
    tern_free(db->url);
    tern_free(db);
    return rc;
}

int tern_db_open_url(const char *url, tern_db **out)
{
    tern_db_config cfg;

    tern_db_config_init(&cfg);
    cfg.url = url;
    return tern_db_open(&cfg, out);
}

void tern_db_close(tern_db *db)
{
    if (db == NULL)
        return;
    db_pool_deinit(&db->pool);
    if (db->writer) {
        db_pool_deinit(db->writer);
        tern_free(db->writer);
    }
    db->drv->close(db);
    tern_free(db->migrations_dir);
    tern_free(db->url);
    tern_free(db);
}

const char *tern_db_driver(const tern_db *db)
{
    return db->drv->name;
}

void tern_db_stats_get(tern_db *db, tern_db_stats *out)
{
    memset(out, 0, sizeof *out);
    out->ready = atomic_load(&db->mig_state) == MIG_DONE;
    db_pool_stats_add(&db->pool, out);
    if (db->writer)
        db_pool_stats_add(db->writer, out);
    out->errors = atomic_load(&db->errors);
    out->coalesced = atomic_load(&db->coalesced);
    out->groups = atomic_load(&db->groups);
}

db_pool *db_first_pool(tern_db *db)
{
    return db->pool.max == 0 && db->writer ? db->writer : &db->pool;
}

/*
 * Runs the configured migrations once, on the first statement (or
 * tern_db_ready).  While they run, other requests get 503: the database is
 * not ready.  A database that is down leaves them pending; a migration that
 * fails (bad SQL, changed checksum) stops the handle for good: every request
 * gets 503 and the log says why, once.
 */
static int ensure_ready(tern_db *db, db_err *e)
{
    int st = atomic_load(&db->mig_state), rc;

    if (st == MIG_DONE)
        return 0;
    if (st == MIG_FAILED)
        return db_err_set(e, TERN_EUNAVAIL, "migrations failed; see the log above");
    if (!atomic_compare_exchange_strong(&db->mig_state, &st, MIG_RUNNING) || st != MIG_PENDING)
        return db_err_set(e, TERN_EUNAVAIL, "migrations are running");
    rc = db_migrate_configured(db);
    atomic_store(&db->mig_state, rc == 0               ? MIG_DONE
                                 : rc == TERN_EUNAVAIL ? MIG_PENDING
                                                       : MIG_FAILED);
    if (rc != 0)
        return db_err_set(e, TERN_EUNAVAIL, "migrations not applied: %s", tern_strerror(rc));
    return 0;
}

int tern_db_ready(tern_db *db)
{
    db_conn *c;
    db_err e;

    if (ensure_ready(db, &e) != 0)
        return 0;
    if (db_pool_acquire(db_first_pool(db), &c, &e) != 0)
        return 0;
    db_pool_release(c->pool, c);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Running statements                                                         */

typedef struct stmt_job {
    db_conn *c;
    const char *sql;
    const tern_db_val *args;
    unsigned nargs;
    tern_db_rows *rs;
    db_err *e;
    int rc;
} stmt_job;

static void query_fn(void *arg)
{
    stmt_job *j = arg;

    j->rc = j->c->db->drv->query(j->c, j->sql, j->args, j->nargs, j->rs, j->e);
}

static void script_fn(void *arg)
{
    stmt_job *j = arg;

    j->rc = j->c->db->drv->script(j->c, j->sql, j->e);
}

static int run_job(stmt_job *j, void (*fn)(void *))
{
    if (db_pool_run(j->c->pool, fn, j) != 0)
        return db_err_set(j->e, TERN_ENOMEM, "cannot queue the statement");
    return j->rc;
}

int db_conn_query(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs,
                  tern_db_rows *rs, db_err *e)
{
    stmt_job j = { c, sql, args, nargs, rs, e, 0 };

    return run_job(&j, query_fn);
}

int db_conn_script(db_conn *c, const char *sql, db_err *e)
{
    stmt_job j = { c, sql, NULL, 0, NULL, e, 0 };

    return run_job(&j, script_fn);
}

/* Errors after which a connection is checked before its next use. */
static void after_error(db_conn *c, int rc)
{
    if (rc == TERN_EUNAVAIL || rc == TERN_EDB || rc == TERN_ENOMEM)
        c->suspect = 1;
}

void db_rows_reset(tern_db_rows *rs)
{
    rs->nrows = rs->ncols = rs->cap = 0;
    rs->names = NULL;
    rs->cells = NULL;
    rs->affected = 0;
}

/* Runs sql with n parameter sets on c: the driver's batch, or one at a time. */
static int conn_batch(db_conn *c, const char *sql, const tern_db_val *args, unsigned nargs,
                      unsigned n, tern_db_rows **rs, db_err *e)
{
    int rc = 0;

    if (c->db->drv->batch != NULL && !c->pool->offload)
        rc = c->db->drv->batch(c, sql, args, nargs, n, rs, e);
    else
        for (unsigned i = 0; i < n && rc == 0; i++)
            rc = db_conn_query(c, sql, args + (size_t)i * nargs, nargs, rs[i], e);
    if (rc != 0)
        after_error(c, rc);
    return rc;
}

/* Runs the sets on a connection of pool p; SQLite writes move to the writer. */
static int on_pool(db_pool *p, const char *sql, const tern_db_val *args, unsigned nargs, unsigned n,
                   tern_db_rows **rs, db_err *e)
{
    db_conn *c;
    int rc = db_pool_acquire(p, &c, e);

    if (rc != 0)
        return rc;
    rc = conn_batch(c, sql, args, nargs, n, rs, e);
    db_pool_release(p, c);
    if (rc == DB_NEEDS_WRITER) {
        tern_db *db = p->db;

        if (db->writer == NULL || p == db->writer)
            return db_err_set(e, TERN_EDB, "driver asked for a writer it does not have");
        for (unsigned i = 0; i < n; i++)
            db_rows_reset(rs[i]);
        return on_pool(db->writer, sql, args, nargs, n, rs, e);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Coalescing single statements (see the top of the file)                    */

typedef struct db_group {
    tern_db *db;
    db_item *head, *tail;
    unsigned n;
} db_group;

/* The group of this worker that still takes newcomers, if any. */
static _Thread_local db_group *t_group;

/* A member's item and the post that resumes its coroutine when done. */
typedef struct db_member {
    db_item item; /* first: done() gets &member->item */
    tern_loop *loop;
    offload_job wake;
    int leader;
    int finished; /* done() was called: the item is out of every list */
} db_member;

static void member_done(db_item *it)
{
    db_member *m = (db_member *)it;

    m->finished = 1;
    if (!m->leader)
        loop_post_local(m->loop, &m->wake);
}

static void group_add(db_group *g, db_member *m)
{
    m->item.next = NULL;
    if (g->tail != NULL)
        g->tail->next = &m->item;
    else
        g->head = &m->item;
    g->tail = &m->item;
    if (++g->n >= g->db->cfg.coalesce_max && t_group == g)
        t_group = NULL; /* full: the next statement starts a new group */
}

/*
 * Leads group g (whose first member is m): waits for the iteration's other
 * statements to join, takes a connection and runs them all.  A group of one
 * runs as any single statement.  Every member is handed back exactly once.
 */
static void group_lead(db_group *g, db_member *m)
{
    db_pool *p = db_first_pool(g->db);
    offload_job self = { 0 };
    db_conn *c;
    db_err e;
    int rc;

    self.co = coro_current();
    self.loop = m->loop;
    loop_post_local(m->loop, &self);
    coro_yield();
    rc = db_pool_acquire(p, &c, &e);
    if (t_group == g)
        t_group = NULL;
    if (rc != 0) {
        for (db_item *it = g->head, *next; it != NULL; it = next) {
            next = it->next;
            it->rc = rc;
            it->e = e;
            it->done(it);
        }
        return;
    }
    if (g->n == 1) {
        m->item.rc = conn_batch(c, m->item.sql, m->item.args, m->item.nargs, m->item.n, m->item.rs,
                                &m->item.e);
    } else {
        atomic_fetch_add(&g->db->coalesced, g->n);
        atomic_fetch_add(&g->db->groups, 1);
        rc = c->db->drv->pipeline(c, g->head, &e);
        if (rc != 0)
            after_error(c, rc);
    }
    db_pool_release(p, c);
}

/*
 * Runs a call (n parameter sets, rows to rs[0..n)) through a coalesced
 * group: joins this worker's open group, or starts and leads one.  A call
 * the driver left to run alone runs on the pool as usual.
 */
static int coalesced(tern_db *db, const char *sql, const tern_db_val *args, unsigned nargs,
                     unsigned n, tern_db_rows **rs, db_err *e)
{
    db_member m;
    db_group g;

    memset(&m, 0, sizeof m);
    m.item.sql = sql;
    m.item.args = args;
    m.item.nargs = nargs;
    m.item.n = n;
    m.item.rs = rs;
    m.item.rc = DB_PENDING;
    m.item.done = member_done;
    m.loop = loop_current();
    m.wake.co = coro_current();
    m.wake.loop = m.loop;
    if (t_group != NULL && t_group->db == db) {
        group_add(t_group, &m);
        while (!m.finished)
            coro_yield(); /* resumed by member_done's post */
    } else {
        g.db = db;
        g.head = g.tail = NULL;
        g.n = 0;
        t_group = &g;
        m.leader = 1;
        group_add(&g, &m);
        group_lead(&g, &m);
    }
    if (m.item.rc == DB_RUN_ALONE) {
        for (unsigned i = 0; i < n; i++)
            db_rows_reset(rs[i]);
        return on_pool(db_first_pool(db), sql, args, nargs, n, rs, e);
    }
    if (m.item.rc != 0)
        *e = m.item.e;
    return m.item.rc;
}

/* 1 when a call on db may join a coalesced group. */
static int may_coalesce(tern_db *db)
{
    return db->drv->pipeline != NULL && db->cfg.coalesce_max > 1 && coro_current() != NULL &&
           loop_current() != NULL && !db_first_pool(db)->offload;
}

static tern_db_rows *rows_new(tern_req *req)
{
    tern_db_rows *rs;

    if (req != NULL) {
        tern_arena *a = tern_req_arena(req);

        rs = tern_arena_alloc(a, sizeof *rs);
        if (rs == NULL)
            return NULL;
        memset(rs, 0, sizeof *rs);
        rs->arena = a;
        return rs;
    }
    rs = tern_calloc(1, sizeof *rs);
    if (rs == NULL)
        return NULL;
    tern_arena_init(&rs->own, 4096);
    rs->arena = &rs->own;
    rs->owned = 1;
    return rs;
}

void tern_db_rows_free(tern_db_rows *rs)
{
    if (rs == NULL || !rs->owned)
        return;
    tern_arena_deinit(&rs->own);
    tern_free(rs);
}

static tern_db *root_of(tern_db *db)
{
    return db->parent ? db->parent : db;
}

/* Reports a failure: the log always, the request unless a retry will follow. */
static int fail(tern_req *req, tern_db *db, db_err *e, const char *sql)
{
    tern_db *root = root_of(db);
    int log = 1;

    atomic_fetch_add(&root->errors, 1);
    if (db->tx_conn != NULL && db->tx_failed == 0)
        db->tx_failed = e->code;
    if (db->tx_conn != NULL && e->code == TERN_ERETRY) {
        db->tx_retry = 1; /* tern_db_tx reruns the transaction */
        tern_log(TERN_LOG_DEBUG, "db: transaction conflict (%s), will retry", e->sqlstate);
        return e->code;
    }
    if (e->code == TERN_EUNAVAIL) {
        /* A database that is down fails every request: one line a second. */
        long long now = tern_now_ms(), last = atomic_load(&root->unavail_logged_ms);

        log = now - last >= 1000 &&
              atomic_compare_exchange_strong(&root->unavail_logged_ms, &last, now);
    }
    db_report(req, e, sql, root->cfg.retry_after_s, log);
    return e->code;
}

/*
 * The one way a statement runs: n parameter sets (1 for query/one/exec),
 * rows to out[0..n), in the transaction of a tx handle or on the pool.  A
 * failure frees the rows and is reported (log, and the request's answer).
 */
static int run_n(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                 unsigned nargs, unsigned n, tern_db_rows **out)
{
    db_err e;
    int rc = 0;

    if (db == NULL || out == NULL)
        return TERN_EINVAL;
    for (unsigned i = 0; i < n; i++)
        out[i] = NULL;
    if (sql == NULL || (n > 0 && nargs > 0 && args == NULL) || nargs > 65535) {
        db_err_set(&e, TERN_EINVAL, "bad arguments to a query call");
        return fail(req, db, &e, sql);
    }
    for (size_t i = 0; i < (size_t)n * nargs; i++) {
        if (args[i].type < TERN_DB_NULL || args[i].type > TERN_DB_JSON ||
            (args[i].type == TERN_DB_DOUBLE && !isfinite(args[i].u.d))) {
            db_err_set(&e, TERN_EINVAL,
                       "parameter $%zu of set %zu has an unknown type or is not "
                       "a finite number",
                       i % nargs + 1, i / nargs);
            return fail(req, db, &e, sql);
        }
    }
    for (unsigned i = 0; i < n && rc == 0; i++)
        if ((out[i] = rows_new(req)) == NULL)
            rc = db_err_set(&e, TERN_ENOMEM, "out of memory for the results");
    if (rc == 0 && n > 0) {
        if (db->tx_conn != NULL) {
            rc = conn_batch(db->tx_conn, sql, args, nargs, n, out, &e);
            if (rc == DB_NEEDS_WRITER) /* the transaction is on the writer: cannot happen */
                rc = db_err_set(&e, TERN_EDB, "statement needs the writer inside a transaction");
        } else if ((rc = ensure_ready(db, &e)) == 0) {
            /* Batches already share a round trip; grouping them too would
             * put many on one server process and cost parallelism. */
            if (n == 1 && may_coalesce(db))
                rc = coalesced(db, sql, args, nargs, n, out, &e);
            else
                rc = on_pool(db_first_pool(db), sql, args, nargs, n, out, &e);
        }
    }
    if (rc != 0) {
        for (unsigned i = 0; i < n; i++) {
            tern_db_rows_free(out[i]);
            out[i] = NULL;
        }
        return fail(req, db, &e, sql);
    }
    return 0;
}

static int run(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args, unsigned nargs,
               tern_db_rows **out)
{
    *out = NULL;
    return run_n(req, db, sql, args, nargs, 1, out);
}

int tern_db_query(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                  unsigned nargs, tern_db_rows **out)
{
    tern_db_rows *rs;
    int rc = run(req, db, sql, args, nargs, &rs);

    if (out != NULL)
        *out = rs;
    else
        tern_db_rows_free(rs);
    return rc;
}

int tern_db_query_batch(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                        unsigned nargs, unsigned n, tern_db_rows **out)
{
    return run_n(req, db, sql, args, nargs, n, out);
}

int tern_db_one(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                unsigned nargs, tern_db_rows **out)
{
    tern_db_rows *rs;
    int rc = run(req, db, sql, args, nargs, &rs);

    if (out != NULL)
        *out = NULL;
    if (rc != 0)
        return rc;
    if (rs->nrows == 0) {
        db_err e;

        tern_db_rows_free(rs);
        db_err_set(&e, TERN_ENOTFOUND, "no row");
        db_report(req, &e, sql, 0, 1);
        return TERN_ENOTFOUND;
    }
    if (out != NULL)
        *out = rs;
    else
        tern_db_rows_free(rs);
    return 0;
}

int tern_db_exec(tern_req *req, tern_db *db, const char *sql, const tern_db_val *args,
                 unsigned nargs, int64_t *affected)
{
    tern_db_rows *rs;
    int rc = run(req, db, sql, args, nargs, &rs);

    if (affected != NULL)
        *affected = rc == 0 ? rs->affected : 0;
    tern_db_rows_free(rs);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Transactions                                                               */

int db_tx_run(tern_req *req, tern_db *db, tern_db_tx_fn fn, void *arg, int check_ready)
{
    tern_db *root = root_of(db);
    db_pool *p = root->writer ? root->writer : &root->pool;
    const char *begin = root->writer ? "BEGIN IMMEDIATE" : "BEGIN";
    db_err e;
    int rc = 0;

    if (fn == NULL)
        return TERN_EINVAL;
    if (db->tx_conn != NULL) /* nested: run inside the open transaction */
        return fn(req, db, arg);
    if (check_ready && (rc = ensure_ready(root, &e)) != 0)
        return fail(req, root, &e, begin);
    for (unsigned attempt = 0;; attempt++) {
        tern_db tx;
        db_conn *c;

        rc = db_pool_acquire(p, &c, &e);
        if (rc != 0)
            return fail(req, root, &e, begin);
        rc = db_conn_script(c, begin, &e);
        if (rc != 0) {
            after_error(c, rc);
            db_pool_release(p, c);
            return fail(req, root, &e, begin);
        }
        memset(&tx, 0, sizeof tx);
        tx.drv = root->drv;
        tx.cfg = root->cfg;
        tx.writer = root->writer;
        tx.parent = root;
        tx.tx_conn = c;
        c->in_tx = 1;
        rc = fn(req, &tx, arg);
        if (rc == 0 && tx.tx_failed != 0 && !tx.tx_retry) {
            /*
             * fn ignored a failed statement.  PostgreSQL has aborted the
             * transaction (its COMMIT would quietly roll back); SQLite would
             * commit the rest.  One rule for both: nothing is committed.
             */
            tern_log(TERN_LOG_WARN,
                     "db: transaction rolled back: a statement in it failed (%s) "
                     "and the function returned 0",
                     tern_strerror(tx.tx_failed));
            rc = tx.tx_failed;
        }
        if (rc == 0 && !tx.tx_retry) {
            rc = db_conn_script(c, "COMMIT", &e);
            if (rc == TERN_ERETRY)
                tx.tx_retry = 1;
            else if (rc != 0)
                fail(req, &tx, &e, "COMMIT");
        }
        if (rc != 0 || tx.tx_retry) {
            db_err re;

            /* After a failed COMMIT PostgreSQL has already rolled back. */
            if (db_conn_script(c, "ROLLBACK", &re) != 0 && re.code == TERN_EUNAVAIL)
                c->broken = 1;
        }
        c->in_tx = 0;
        db_pool_release(p, c);
        if (!tx.tx_retry)
            return rc;
        if (attempt >= root->cfg.tx_retries) {
            db_err_set(&e, TERN_ECONFLICT, "transaction still conflicting after %u retries",
                       attempt);
            return fail(req, root, &e, begin);
        }
        /* A short, growing, jittered pause lets the other transaction finish. */
        tern_sleep((int64_t)(attempt + 1) * (1 + rand() % 5));
    }
}

int tern_db_tx(tern_req *req, tern_db *db, tern_db_tx_fn fn, void *arg)
{
    if (db == NULL)
        return TERN_EINVAL;
    return db_tx_run(req, db, fn, arg, 1);
}

/* ------------------------------------------------------------------------ */
/* Building results (for the drivers)                                         */

int db_rows_columns(tern_db_rows *rs, unsigned ncols)
{
    if (rs->names != NULL || rs->ncols != 0)
        return rs->ncols == ncols ? 0 : TERN_EINVAL;
    rs->ncols = ncols;
    if (ncols == 0)
        return 0;
    rs->names = tern_arena_alloc(rs->arena, ncols * sizeof *rs->names);
    if (rs->names == NULL)
        return TERN_ENOMEM;
    for (unsigned i = 0; i < ncols; i++)
        rs->names[i] = "";
    return 0;
}

int db_rows_set_name(tern_db_rows *rs, unsigned col, const char *name, size_t n)
{
    char *s;

    if (col >= rs->ncols)
        return TERN_EINVAL;
    s = tern_arena_strndup(rs->arena, name, n);
    if (s == NULL)
        return TERN_ENOMEM;
    rs->names[col] = s;
    return 0;
}

tern_db_val *db_rows_push(tern_db_rows *rs)
{
    unsigned w = rs->ncols ? rs->ncols : 1; /* a row of no columns still counts */
    tern_db_val *row;

    if (rs->nrows == rs->cap) {
        unsigned cap = rs->cap ? rs->cap * 2 : 8;
        tern_db_val *cells;

        if (cap < rs->cap || (size_t)cap * w > SIZE_MAX / sizeof *cells)
            return NULL;
        cells = tern_arena_alloc(rs->arena, (size_t)cap * w * sizeof *cells);
        if (cells == NULL)
            return NULL;
        if (rs->nrows)
            memcpy(cells, rs->cells, (size_t)rs->nrows * w * sizeof *cells);
        rs->cells = cells;
        rs->cap = cap;
    }
    row = rs->cells + (size_t)rs->nrows * w;
    for (unsigned i = 0; i < w; i++)
        row[i] = tern_db_null();
    rs->nrows++;
    return row;
}

tern_str db_rows_str(tern_db_rows *rs, const void *p, size_t n)
{
    tern_str s = { NULL, 0 };
    char *d = tern_arena_strndup(rs->arena, n ? (const char *)p : "", n);

    if (d != NULL) {
        s.p = d;
        s.n = n;
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* Reading results                                                            */

unsigned tern_db_nrows(const tern_db_rows *rs)
{
    return rs ? rs->nrows : 0;
}

unsigned tern_db_ncols(const tern_db_rows *rs)
{
    return rs ? rs->ncols : 0;
}

int64_t tern_db_affected(const tern_db_rows *rs)
{
    return rs ? rs->affected : 0;
}

const char *tern_db_colname(const tern_db_rows *rs, unsigned col)
{
    return rs && col < rs->ncols ? rs->names[col] : NULL;
}

int tern_db_colindex(const tern_db_rows *rs, const char *name)
{
    if (rs == NULL || name == NULL)
        return -1;
    for (unsigned i = 0; i < rs->ncols; i++)
        if (strcmp(rs->names[i], name) == 0)
            return (int)i;
    return -1;
}

tern_db_val tern_db_cell(const tern_db_rows *rs, unsigned row, unsigned col)
{
    if (rs == NULL || row >= rs->nrows || col >= rs->ncols)
        return tern_db_null();
    return rs->cells[(size_t)row * rs->ncols + col];
}

static tern_db_val named(const tern_db_rows *rs, unsigned row, const char *col)
{
    int i = tern_db_colindex(rs, col);

    return i < 0 ? tern_db_null() : tern_db_cell(rs, row, (unsigned)i);
}

int tern_db_isnull(const tern_db_rows *rs, unsigned row, const char *col)
{
    return named(rs, row, col).type == TERN_DB_NULL;
}

/* Parses the whole of s as a decimal integer; 0 on any junk. */
static int64_t text_int(tern_str s)
{
    char buf[32], *end;
    long long v;

    if (s.n == 0 || s.n >= sizeof buf)
        return 0;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    v = strtoll(buf, &end, 10);
    return *end == '\0' ? (int64_t)v : 0;
}

static double text_double(tern_str s)
{
    char buf[64], *end;
    double v;

    if (s.n == 0 || s.n >= sizeof buf)
        return 0;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    v = strtod(buf, &end);
    return *end == '\0' ? v : 0;
}

int64_t tern_db_get_int(const tern_db_rows *rs, unsigned row, const char *col)
{
    tern_db_val v = named(rs, row, col);

    switch (v.type) {
    case TERN_DB_INT: return v.u.i;
    case TERN_DB_BOOL: return v.u.b;
    case TERN_DB_DOUBLE:
        return v.u.d >= -9.2e18 && v.u.d <= 9.2e18 ? (int64_t)v.u.d : 0; /* in range only */
    case TERN_DB_TEXT:
    case TERN_DB_JSON: return text_int(v.u.s);
    default: return 0;
    }
}

double tern_db_get_double(const tern_db_rows *rs, unsigned row, const char *col)
{
    tern_db_val v = named(rs, row, col);

    switch (v.type) {
    case TERN_DB_DOUBLE: return v.u.d;
    case TERN_DB_INT: return (double)v.u.i;
    case TERN_DB_BOOL: return v.u.b;
    case TERN_DB_TEXT:
    case TERN_DB_JSON: return text_double(v.u.s);
    default: return 0;
    }
}

int tern_db_get_bool(const tern_db_rows *rs, unsigned row, const char *col)
{
    tern_db_val v = named(rs, row, col);

    switch (v.type) {
    case TERN_DB_BOOL: return v.u.b;
    case TERN_DB_INT: return v.u.i != 0;
    case TERN_DB_DOUBLE: return v.u.d != 0;
    case TERN_DB_TEXT:
        return tern_str_eq(v.u.s, TERN_STR("t")) || tern_str_eq(v.u.s, TERN_STR("true")) ||
               tern_str_eq(v.u.s, TERN_STR("1"));
    default: return 0;
    }
}

tern_str tern_db_get_text(const tern_db_rows *rs, unsigned row, const char *col)
{
    tern_db_val v = named(rs, row, col);
    char buf[40];
    int n;

    switch (v.type) {
    case TERN_DB_TEXT:
    case TERN_DB_JSON:
    case TERN_DB_BLOB: return v.u.s;
    case TERN_DB_INT: n = snprintf(buf, sizeof buf, "%lld", (long long)v.u.i); break;
    case TERN_DB_DOUBLE: n = snprintf(buf, sizeof buf, "%.17g", v.u.d); break;
    case TERN_DB_BOOL: return v.u.b ? TERN_STR("true") : TERN_STR("false");
    default: return TERN_STR("");
    }
    /* Numbers are formatted into the rows' arena, so they live as long. */
    return db_rows_str((tern_db_rows *)rs, buf, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                       */

static int jw_base64(tern_jw *w, tern_str s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 4 * ((s.n + 2) / 3) + 2, o = 0;
    const unsigned char *p = (const unsigned char *)s.p;
    char *out = tern_malloc(n);
    int rc;

    if (out == NULL)
        return TERN_ENOMEM;
    out[o++] = '"';
    for (size_t i = 0; i < s.n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;

        if (i + 1 < s.n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < s.n)
            v |= p[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < s.n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < s.n ? tab[v & 63] : '=';
    }
    out[o++] = '"';
    rc = tern_jw_raw(w, (tern_str){ out, o });
    tern_free(out);
    return rc;
}

int tern_db_jw_cell(tern_jw *w, tern_db_val v)
{
    switch (v.type) {
    case TERN_DB_BOOL: return tern_jw_bool(w, v.u.b);
    case TERN_DB_INT: return tern_jw_int(w, v.u.i);
    case TERN_DB_DOUBLE: return isfinite(v.u.d) ? tern_jw_double(w, v.u.d) : tern_jw_null(w);
    case TERN_DB_TEXT: return tern_jw_str(w, v.u.s);
    case TERN_DB_JSON: return tern_jw_raw(w, v.u.s);
    case TERN_DB_BLOB: return jw_base64(w, v.u.s);
    default: return tern_jw_null(w);
    }
}

int tern_db_jw_row(tern_jw *w, const tern_db_rows *rs, unsigned row)
{
    tern_jw_obj_begin(w);
    for (unsigned c = 0; rs && c < rs->ncols; c++) {
        tern_jw_key(w, tern_str_c(rs->names[c]));
        tern_db_jw_cell(w, tern_db_cell(rs, row, c));
    }
    return tern_jw_obj_end(w);
}

int tern_db_jw_rows(tern_jw *w, const tern_db_rows *rs)
{
    tern_jw_arr_begin(w);
    for (unsigned r = 0; rs && r < rs->nrows; r++)
        tern_db_jw_row(w, rs, r);
    return tern_jw_arr_end(w);
}

int tern_db_send_row(tern_req *req, int status, const tern_db_rows *rs)
{
    tern_jw *w = tern_json_begin(req, status);

    if (w == NULL)
        return TERN_ENOMEM;
    tern_db_jw_row(w, rs, 0);
    return tern_json_end(req);
}

int tern_db_send_one(tern_req *req, tern_db *db, int status, const char *sql,
                     const tern_db_val *args, unsigned nargs)
{
    tern_db_rows *rs;
    int rc = tern_db_one(req, db, sql, args, nargs, &rs);

    return rc != 0 ? rc : tern_db_send_row(req, status, rs);
}

tern_db_val tern_db_jarg(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    tern_db_val r = tern_db_null();

    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        r.type = TERN_DB_TEXT;
        r.u.s.p = json_string_value(v);
        r.u.s.n = json_string_length(v);
        return r;
    case JSON_INTEGER: return tern_db_int(json_integer_value(v));
    case JSON_REAL: return tern_db_double(json_real_value(v));
    case JSON_TRUE: return tern_db_bool(1);
    case JSON_FALSE: return tern_db_bool(0);
    case JSON_NULL: return r;
    default: r.type = -1; return r; /* refused by the statement: TERN_EINVAL */
    }
}
