/*
 * sqlite.c - the SQLite driver.
 *
 * URLs:  sqlite:path/to.db   sqlite:///abs/path.db   sqlite://rel/path.db
 *        sqlite::memory:
 *
 * Readers and one writer.  SQLite lets many connections read a database at
 * once but only one write at a time; a second writer gets SQLITE_BUSY.  So
 * tern opens the database in WAL mode (readers never wait for the writer,
 * the writer never waits for readers) and keeps two pools:
 *
 *   db->pool     readers (up to cfg.max_conns), `query_only` set.
 *                A read runs inline on the worker thread: it only touches
 *                the page cache and the file, and never waits on a lock.
 *   db->writer   exactly one connection.  Every statement that writes, and
 *                every transaction, runs on it, from the offload pool.  Two
 *                requests that write at once queue for it in the pool
 *                instead of failing with SQLITE_BUSY, and the worker that
 *                issued the write keeps serving other requests' I/O while
 *                the write (and its fsync) runs on an offload thread.
 *
 * db.c first hands every statement to a reader.  query() prepares it and,
 * when SQLite says it may write (sqlite3_stmt_readonly() false), returns
 * DB_NEEDS_WRITER without running it; db.c then runs the same call on the
 * writer.  Transaction control (BEGIN, COMMIT, SAVEPOINT...), PRAGMA,
 * ATTACH, DETACH and REINDEX count as writes too: sqlite3_stmt_readonly()
 * may call them read-only, but they change the connection's state (or, for
 * REINDEX, rewrite indexes), which must only happen on the writer, where
 * transactions live.
 *
 * In-memory databases.  Each connection to ":memory:" is a database of its
 * own, so readers could never see what the writer wrote.  open() therefore
 * sets db->cfg.max_conns to 0, which tells db.c to send every statement to
 * the writer: an in-memory database is served by that one connection, and
 * lives as long as it does.  So open() also turns off max_lifetime_ms and
 * idle_timeout_ms (the pool would otherwise replace the writer, losing the
 * data), and an error never marks that connection broken.
 *
 * Parameters.  SQLite parses "$1" as a named parameter called "$1" (the
 * same name used twice is one parameter), so $1..$n work as on PostgreSQL:
 * each parameter name is checked to be "$<k>" with 1 <= k <= nargs, the
 * count to be nargs, and argument k-1 is bound to it.  Any other form (?,
 * ?NNN, :x, @x, $x, or "$1::text", which SQLite reads as one name) is
 * TERN_EINVAL.  Bound text and blobs are not copied (SQLITE_STATIC): every
 * path out of query() resets the statement and clears its bindings, so
 * SQLite never holds the caller's memory after the call returns.
 *
 * Statement cache.  Each connection keeps up to cfg.stmt_cache prepared
 * statements (SQLITE_PREPARE_PERSISTENT), keyed by the SQL text, in a hash
 * table with an LRU list; the least recently used is finalized when a new
 * one needs room.  SQLite re-prepares a cached statement by itself when the
 * schema changes.  stmt_cache 0 prepares and finalizes every time.
 *
 * Timeouts.  busy_timeout (cfg.busy_timeout_ms) covers locks held by other
 * processes.  cfg.statement_timeout_ms is enforced by a progress handler
 * that interrupts the statement (SQLITE_INTERRUPT -> TERN_EUNAVAIL) once the
 * deadline passes; script() (transaction control, migrations) has no
 * deadline.  cfg.connect_timeout_ms does not apply: opening is local.
 *
 * Threads.  A connection is used by one thread at a time but moves between
 * threads (workers, offload threads), which SQLite's multi-thread mode
 * allows; connections are opened with SQLITE_OPEN_NOMUTEX.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "db/internal.h"

/* Progress handler period, in virtual machine steps. */
#define PROGRESS_STEPS 1000

/* One cached statement. */
typedef struct sq_stmt sq_stmt;
struct sq_stmt {
    sq_stmt *hnext;       /* hash bucket chain */
    sq_stmt *prev, *next; /* LRU list, most recently used first */
    sqlite3_stmt *stmt;
    uint64_t hash;
    size_t len;
    int writes; /* must run on the writer */
    char sql[]; /* len bytes + NUL */
};

typedef struct sq_conn {
    db_conn base; /* first: the pool sees a db_conn */
    sqlite3 *h;
    int writer;          /* 1 on the writer connection */
    int memory;          /* 1 for ":memory:" */
    int64_t deadline_ms; /* current statement's deadline, 0 = none */
    /* Statement cache. */
    unsigned cap, n;
    unsigned nbuckets; /* power of two */
    sq_stmt **buckets;
    sq_stmt *lru_head, *lru_tail;
} sq_conn;

static const char memory_path[] = ":memory:";

/* ------------------------------------------------------------------------ */
/* Small helpers                                                              */

static int is_memory(const char *path)
{
    return strcmp(path, memory_path) == 0;
}

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* Skips blanks, semicolons and SQL comments; returns the next token. */
static const char *skip_blank(const char *p)
{
    for (;;) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v' ||
            *p == ';') {
            p++;
        } else if (p[0] == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (end == NULL)
                return p + strlen(p); /* SQLite accepts an unclosed comment at the end */
            p = end + 2;
        } else {
            return p;
        }
    }
}

/*
 * 1 when the statement starts with a keyword that changes the connection's
 * state although sqlite3_stmt_readonly() calls it read-only.
 */
static int state_keyword(const char *sql)
{
    static const char *const words[] = { "begin",   "commit", "end",    "rollback", "savepoint",
                                         "release", "pragma", "attach", "detach",   "reindex" };
    const char *p = skip_blank(sql);
    size_t n = 0;

    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z'))
        n++;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t k = 0;
        if (strlen(words[i]) != n)
            continue;
        while (k < n && lower((unsigned char)p[k]) == words[i][k])
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

/* 1 when s (may be NULL) equals name ignoring ASCII case. */
static int ieq(const char *s, const char *name)
{
    return s != NULL && tern_str_ieq(tern_str_c(s), tern_str_c(name));
}

/* Fills e from the connection's last error and returns e->code. */
static int conn_err(sq_conn *c, db_err *e)
{
    int rc = sqlite3_extended_errcode(c->h);
    int prim = rc & 0xff;

    if (prim == SQLITE_INTERRUPT && c->deadline_ms != 0)
        return db_err_sqlite(e, rc, "statement timeout");
    /* The file went bad under us: let the pool replace the connection.  An
     * in-memory database lives in its connection, so that one is kept. */
    if (!c->memory && (prim == SQLITE_IOERR || prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB ||
                       prim == SQLITE_CANTOPEN))
        c->base.broken = 1;
    return db_err_sqlite(e, rc, sqlite3_errmsg(c->h));
}

/* ------------------------------------------------------------------------ */
/* Statement cache                                                            */

static uint64_t hash_sql(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static void lru_unlink(sq_conn *c, sq_stmt *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->lru_head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        c->lru_tail = s->prev;
    s->prev = s->next = NULL;
}

static void lru_push(sq_conn *c, sq_stmt *s)
{
    s->prev = NULL;
    s->next = c->lru_head;
    if (c->lru_head != NULL)
        c->lru_head->prev = s;
    c->lru_head = s;
    if (c->lru_tail == NULL)
        c->lru_tail = s;
}

static sq_stmt *cache_find(sq_conn *c, const char *sql, size_t len, uint64_t hash)
{
    sq_stmt *s;

    if (c->buckets == NULL)
        return NULL;
    for (s = c->buckets[hash & (c->nbuckets - 1)]; s != NULL; s = s->hnext)
        if (s->hash == hash && s->len == len && memcmp(s->sql, sql, len) == 0)
            return s;
    return NULL;
}

/* Removes s from the cache (hash chain and LRU list) and frees it. */
static void cache_drop(sq_conn *c, sq_stmt *s)
{
    sq_stmt **pp = &c->buckets[s->hash & (c->nbuckets - 1)];

    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    lru_unlink(c, s);
    c->n--;
    sqlite3_finalize(s->stmt);
    tern_free(s);
}

/* Adds a freshly prepared statement, evicting the least recently used one
 * when full.  Returns the entry, or NULL on OOM (the caller keeps stmt). */
static sq_stmt *cache_add(sq_conn *c, const char *sql, size_t len, uint64_t hash,
                          sqlite3_stmt *stmt, int writes)
{
    sq_stmt *s = tern_malloc(sizeof *s + len + 1);
    sq_stmt **bucket;

    if (s == NULL)
        return NULL;
    if (c->n >= c->cap)
        cache_drop(c, c->lru_tail);
    memcpy(s->sql, sql, len);
    s->sql[len] = '\0';
    s->len = len;
    s->hash = hash;
    s->stmt = stmt;
    s->writes = writes;
    bucket = &c->buckets[hash & (c->nbuckets - 1)];
    s->hnext = *bucket;
    *bucket = s;
    lru_push(c, s);
    c->n++;
    return s;
}

static void cache_clear(sq_conn *c)
{
    while (c->lru_head != NULL)
        cache_drop(c, c->lru_head);
    tern_free(c->buckets);
    c->buckets = NULL;
}

/*
 * Finds or prepares the statement for sql.  *out_stmt is the statement,
 * *out_owned 1 when it is not cached (the caller finalizes it), *out_writes
 * 1 when it must run on the writer.  Returns 0 or a TERN_E* code.
 */
static int get_stmt(sq_conn *c, const char *sql, sqlite3_stmt **out_stmt, int *out_owned,
                    int *out_writes, db_err *e)
{
    size_t len = strlen(sql);
    uint64_t hash = 0;
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    unsigned flags = 0;
    int rc, writes;

    if (c->cap > 0) {
        sq_stmt *s;

        hash = hash_sql(sql, len);
        s = cache_find(c, sql, len, hash);
        if (s != NULL) {
            if (s != c->lru_head) {
                lru_unlink(c, s);
                lru_push(c, s);
            }
            *out_stmt = s->stmt;
            *out_owned = 0;
            *out_writes = s->writes;
            return 0;
        }
        flags = SQLITE_PREPARE_PERSISTENT;
    }

    if (len >= INT32_MAX)
        return db_err_set(e, TERN_EINVAL, "statement too long");
    rc = sqlite3_prepare_v3(c->h, sql, (int)len + 1, flags, &stmt, &tail);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return conn_err(c, e);
    }
    if (stmt == NULL)
        return db_err_set(e, TERN_EINVAL, "empty statement");
    if (tail != NULL && *skip_blank(tail) != '\0') {
        sqlite3_finalize(stmt);
        return db_err_set(e, TERN_EINVAL, "one statement per call (use a transaction)");
    }
    writes = !sqlite3_stmt_readonly(stmt) || state_keyword(sql);

    *out_stmt = stmt;
    *out_owned = 1;
    *out_writes = writes;
    if (c->cap > 0 && cache_add(c, sql, len, hash, stmt, writes) != NULL)
        *out_owned = 0;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                 */

/* The k of a parameter named "$<k>" with 1 <= k <= max, else 0. */
static unsigned param_number(const char *name, unsigned max)
{
    uint64_t k = 0;
    const char *p;

    if (name == NULL || name[0] != '$' || name[1] < '1' || name[1] > '9')
        return 0;
    for (p = name + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        k = k * 10 + (unsigned)(*p - '0');
        if (k > max)
            return 0;
    }
    return (unsigned)k;
}

/*
 * Checks the statement's parameters against args and binds them.  Returns
 * 0 or a TERN_E* code (TERN_EINVAL for misuse).
 */
static int bind_args(sq_conn *c, sqlite3_stmt *stmt, const tern_db_val *args, unsigned nargs,
                     db_err *e)
{
    int count = sqlite3_bind_parameter_count(stmt);

    for (int idx = 1; idx <= count; idx++) {
        const char *name = sqlite3_bind_parameter_name(stmt, idx);
        if (param_number(name, (unsigned)count) == 0)
            return db_err_set(e, TERN_EINVAL, "parameter %s: use $1..$n", name ? name : "?");
    }
    if ((unsigned)count != nargs)
        return db_err_set(e, TERN_EINVAL, "statement has %d parameter%s, %u given", count,
                          count == 1 ? "" : "s", nargs);

    /* The names are now $1..$count, each once (SQLite merges repeats). */
    for (int idx = 1; idx <= count; idx++) {
        unsigned k = param_number(sqlite3_bind_parameter_name(stmt, idx), nargs);
        const tern_db_val *v = &args[k - 1];
        int rc;

        switch (v->type) {
        case TERN_DB_NULL: rc = sqlite3_bind_null(stmt, idx); break;
        case TERN_DB_BOOL: rc = sqlite3_bind_int(stmt, idx, v->u.b != 0); break;
        case TERN_DB_INT: rc = sqlite3_bind_int64(stmt, idx, v->u.i); break;
        case TERN_DB_DOUBLE:
            if (!isfinite(v->u.d))
                return db_err_set(e, TERN_EINVAL, "parameter $%u: double is not finite", k);
            rc = sqlite3_bind_double(stmt, idx, v->u.d);
            break;
        case TERN_DB_TEXT:
        case TERN_DB_JSON:
            /* A NULL pointer would bind SQL NULL; an empty slice is "". */
            rc = sqlite3_bind_text64(stmt, idx, v->u.s.p ? v->u.s.p : "", v->u.s.n, SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        case TERN_DB_BLOB:
            rc = sqlite3_bind_blob64(stmt, idx, v->u.s.p ? v->u.s.p : "", v->u.s.n, SQLITE_STATIC);
            break;
        default: return db_err_set(e, TERN_EINVAL, "parameter $%u: unknown type %d", k, v->type);
        }
        if (rc != SQLITE_OK)
            return conn_err(c, e);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Results                                                                    */

enum { KIND_PLAIN, KIND_BOOL, KIND_JSON };

/* What the declared type of column i makes of its values. */
static unsigned char column_kind(sqlite3_stmt *stmt, int i)
{
    const char *decl = sqlite3_column_decltype(stmt, i);

    if (ieq(decl, "BOOLEAN") || ieq(decl, "BOOL"))
        return KIND_BOOL;
    if (ieq(decl, "JSON") || ieq(decl, "JSONB"))
        return KIND_JSON;
    return KIND_PLAIN;
}

/* Copies the current row of stmt into a new row of rs. */
static int read_row(sq_conn *c, sqlite3_stmt *stmt, tern_db_rows *rs, const unsigned char *kinds,
                    int ncols, db_err *e)
{
    tern_db_val *cells = db_rows_push(rs);

    if (cells == NULL)
        return db_err_set(e, TERN_ENOMEM, "out of memory reading a row");
    for (int i = 0; i < ncols; i++) {
        tern_db_val *v = &cells[i];
        const void *p;
        int n;

        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            if (kinds[i] == KIND_BOOL) {
                v->type = TERN_DB_BOOL;
                v->u.b = sqlite3_column_int64(stmt, i) != 0;
            } else {
                v->type = TERN_DB_INT;
                v->u.i = sqlite3_column_int64(stmt, i);
            }
            break;
        case SQLITE_FLOAT:
            v->type = TERN_DB_DOUBLE;
            v->u.d = sqlite3_column_double(stmt, i);
            break;
        case SQLITE_TEXT:
        case SQLITE_BLOB:
            if (sqlite3_column_type(stmt, i) == SQLITE_TEXT) {
                p = sqlite3_column_text(stmt, i);
                v->type = kinds[i] == KIND_JSON ? TERN_DB_JSON : TERN_DB_TEXT;
            } else {
                p = sqlite3_column_blob(stmt, i);
                v->type = TERN_DB_BLOB;
            }
            n = sqlite3_column_bytes(stmt, i);
            if (p == NULL && n > 0)
                return conn_err(c, e); /* SQLITE_NOMEM converting the value */
            v->u.s = db_rows_str(rs, p ? p : "", (size_t)n);
            if (v->u.s.p == NULL)
                return db_err_set(e, TERN_ENOMEM, "out of memory reading a row");
            break;
        default: v->type = TERN_DB_NULL; break;
        }
    }
    return 0;
}

/* Sets the result's columns from the statement. */
static int set_columns(sq_conn *c, sqlite3_stmt *stmt, tern_db_rows *rs, int ncols, db_err *e)
{
    if (db_rows_columns(rs, (unsigned)ncols) != 0)
        return db_err_set(e, TERN_ENOMEM, "out of memory reading columns");
    for (int i = 0; i < ncols; i++) {
        const char *name = sqlite3_column_name(stmt, i);
        if (name == NULL)
            return conn_err(c, e);
        if (db_rows_set_name(rs, (unsigned)i, name, strlen(name)) != 0)
            return db_err_set(e, TERN_ENOMEM, "out of memory reading columns");
    }
    return 0;
}

/* Steps stmt to completion, filling rs (may be NULL). */
static int run(sq_conn *c, sqlite3_stmt *stmt, tern_db_rows *rs, db_err *e)
{
    unsigned char kinds_small[32];
    unsigned char *kinds = kinds_small;
    sqlite3_int64 before = sqlite3_total_changes64(c->h);
    int ncols = 0, rc = 0;
    int step = sqlite3_step(stmt);

    /* The columns are read after the first step, not after prepare: a
     * cached statement that a schema change expired is prepared again by
     * that step, and "SELECT *" may have gained or lost columns. */
    if (rs != NULL && (step == SQLITE_ROW || step == SQLITE_DONE))
        ncols = sqlite3_column_count(stmt);
    if (ncols > 0) {
        rc = set_columns(c, stmt, rs, ncols, e);
        if (rc != 0)
            goto out;
        if ((size_t)ncols > sizeof kinds_small) {
            kinds = tern_malloc((size_t)ncols);
            if (kinds == NULL) {
                kinds = kinds_small;
                rc = db_err_set(e, TERN_ENOMEM, "out of memory");
                goto out;
            }
        }
        for (int i = 0; i < ncols; i++)
            kinds[i] = column_kind(stmt, i);
    }

    while (step == SQLITE_ROW) {
        if (ncols > 0) {
            rc = read_row(c, stmt, rs, kinds, ncols, e);
            if (rc != 0)
                goto out;
        }
        step = sqlite3_step(stmt);
    }
    if (step != SQLITE_DONE) {
        rc = conn_err(c, e);
        goto out;
    }
    /* sqlite3_changes64() keeps the count of the last INSERT/UPDATE/DELETE,
     * so a DDL statement would report a stale one: only trust it when this
     * statement changed something. */
    if (rs != NULL)
        rs->affected = sqlite3_total_changes64(c->h) != before ? sqlite3_changes64(c->h) : 0;
out:
    if (kinds != kinds_small)
        tern_free(kinds);
    return rc;
}

/* Progress handler: non-zero interrupts the running statement. */
static int on_progress(void *arg)
{
    sq_conn *c = arg;
    return c->deadline_ms != 0 && tern_now_ms() >= c->deadline_ms;
}

/* ------------------------------------------------------------------------ */
/* The driver                                                                 */

static int sq_open(tern_db *db, const char *url, db_err *e)
{
    const char *path;

    if (strncmp(url, "sqlite:", 7) != 0)
        return db_err_set(e, TERN_EINVAL, "not a sqlite: URL");
    path = url + 7;
    if (path[0] == '/' && path[1] == '/')
        path += 2; /* sqlite:///abs/path -> /abs/path */
    if (path[0] == '\0')
        return db_err_set(e, TERN_EINVAL, "sqlite URL has no path");
    if (sqlite3_threadsafe() == 0)
        return db_err_set(e, TERN_EINVAL, "SQLite was built without thread support");

    db->drv_state = tern_strdup(path);
    if (db->drv_state == NULL)
        return db_err_set(e, TERN_ENOMEM, "out of memory");
    /* Connections to :memory: do not share a database: the writer alone
     * serves it, and must never be recycled (see the top of this file). */
    if (is_memory(path)) {
        db->cfg.max_conns = 0;
        db->cfg.max_lifetime_ms = 0;
        db->cfg.idle_timeout_ms = 0;
    }
    return 0;
}

static void sq_close(tern_db *db)
{
    tern_free(db->drv_state);
    db->drv_state = NULL;
}

/* Runs a PRAGMA that returns one text value into buf. */
static int pragma_text(sqlite3 *h, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &stmt, NULL);

    buf[0] = '\0';
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(stmt, 0);
            size_t n = t ? strlen((const char *)t) : 0;
            if (n >= size)
                n = size - 1;
            memcpy(buf, t ? (const char *)t : "", n);
            buf[n] = '\0';
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(stmt);
    return rc;
}

static void sq_disconnect(db_conn *base)
{
    sq_conn *c = (sq_conn *)base;

    if (c == NULL)
        return;
    cache_clear(c);
    sqlite3_close_v2(c->h); /* NULL is a no-op */
    tern_free(c);
}

static int sq_connect(tern_db *db, db_pool *pool, db_conn **out, db_err *e)
{
    const char *path = db->drv_state;
    sq_conn *c;
    char mode[16];
    int rc;

    *out = NULL;
    c = tern_calloc(1, sizeof *c);
    if (c == NULL)
        return db_err_set(e, TERN_ENOMEM, "out of memory");
    c->base.db = db;
    c->base.pool = pool;
    c->base.created_ms = tern_now_ms();
    c->base.last_used_ms = c->base.created_ms;
    /* The readers are db->pool; any other pool is the writer (so the role
     * does not depend on db->writer being set yet). */
    c->writer = pool != &db->pool;
    c->memory = is_memory(path);

    rc = sqlite3_open_v2(path, &c->h,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        db_err_set(e, TERN_EUNAVAIL, "sqlite open %s: %s", path,
                   c->h ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc));
        e->sqlite_code = c->h ? sqlite3_extended_errcode(c->h) : rc;
        goto fail;
    }
    sqlite3_extended_result_codes(c->h, 1);
    sqlite3_busy_timeout(c->h, db->cfg.busy_timeout_ms > 0 ? db->cfg.busy_timeout_ms : 0);
    if (db->cfg.statement_timeout_ms > 0)
        sqlite3_progress_handler(c->h, PROGRESS_STEPS, on_progress, c);

    rc = sqlite3_exec(c->h, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    if (rc == SQLITE_OK && c->writer) {
        /* WAL is recorded in the file: set once, every connection uses it. */
        /*
         * Switching a fresh file to WAL needs its exclusive lock, and SQLite
         * answers BUSY at once there instead of calling the busy handler (to
         * avoid a deadlock): when several processes open a new database
         * together, retry for busy_timeout_ms.  The writer connects on the
         * offload pool, so sleeping here stalls no request.
         */
        for (int waited = 0;; waited += 10) {
            rc = pragma_text(c->h, "PRAGMA journal_mode=WAL", mode, sizeof mode);
            if ((rc & 0xff) != SQLITE_BUSY || waited >= db->cfg.busy_timeout_ms)
                break;
            sqlite3_sleep(10);
        }
        if (rc == SQLITE_OK && !c->memory && !ieq(mode, "wal"))
            tern_log(TERN_LOG_WARN, "sqlite %s: journal_mode is %s, not wal", path, mode);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(c->h, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    } else if (rc == SQLITE_OK) {
        rc = sqlite3_exec(c->h, "PRAGMA query_only=1", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        db_err_set(e, TERN_EUNAVAIL, "sqlite setup %s: %s", path, sqlite3_errmsg(c->h));
        e->sqlite_code = sqlite3_extended_errcode(c->h);
        goto fail;
    }

    c->cap = db->cfg.stmt_cache;
    if (c->cap > 0) {
        c->nbuckets = 8;
        while (c->nbuckets < c->cap * 2u && c->nbuckets < (1u << 20))
            c->nbuckets *= 2;
        c->buckets = tern_calloc(c->nbuckets, sizeof *c->buckets);
        if (c->buckets == NULL) {
            db_err_set(e, TERN_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = &c->base;
    return 0;

fail:
    sq_disconnect(&c->base);
    return e->code;
}

static int sq_query(db_conn *base, const char *sql, const tern_db_val *args, unsigned nargs,
                    tern_db_rows *rs, db_err *e)
{
    sq_conn *c = (sq_conn *)base;
    sqlite3_stmt *stmt = NULL;
    int owned = 0, writes = 0;
    int rc;

    if (sql == NULL || (nargs > 0 && args == NULL))
        return db_err_set(e, TERN_EINVAL, "no SQL or no arguments");
    rc = get_stmt(c, sql, &stmt, &owned, &writes, e);
    if (rc != 0)
        return rc;

    /* From here on every path resets the statement: the bindings point
     * into the caller's memory (SQLITE_STATIC). */
    rc = bind_args(c, stmt, args, nargs, e);
    if (rc == 0 && writes && !c->writer) {
        rc = DB_NEEDS_WRITER;
        goto out;
    }
    if (rc == 0) {
        int timeout = c->base.db->cfg.statement_timeout_ms;
        c->deadline_ms = timeout > 0 ? tern_now_ms() + timeout : 0;
        rc = run(c, stmt, rs, e);
        c->deadline_ms = 0;
    }
out:
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (owned)
        sqlite3_finalize(stmt);
    return rc;
}

static int sq_script(db_conn *base, const char *sql, db_err *e)
{
    sq_conn *c = (sq_conn *)base;
    char *msg = NULL;
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        rc = db_err_sqlite(e, sqlite3_extended_errcode(c->h), msg ? msg : sqlite3_errmsg(c->h));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* Reads the schema cookie: touches the file, so a vanished or corrupt
 * database shows up here. */
static int sq_ping(db_conn *base, db_err *e)
{
    sq_conn *c = (sq_conn *)base;
    int rc;

    if (c->h == NULL)
        return db_err_set(e, TERN_EUNAVAIL, "sqlite connection closed");
    rc = sqlite3_exec(c->h, "PRAGMA schema_version", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return conn_err(c, e);
    return 0;
}

const db_driver db_driver_sqlite = {
    "sqlite", sq_open,   sq_close, sq_connect, sq_disconnect,
    sq_query, sq_script, sq_ping,  NULL, /* batch: statements run in-process, one by one costs
                                            nothing extra */
    NULL,                                /* pipeline: no round trips to save */
};
