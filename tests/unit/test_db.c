/*
 * test_db.c - the db API of include/tern/db.h, called directly with req NULL
 * from plain threads (no coroutine), where every call blocks its thread.
 *
 * Each DB_TEST runs three times, once per driver: SQLite on a temporary
 * file (suite sqlite_file), SQLite in memory (sqlite_mem) and PostgreSQL
 * (pg).  The PostgreSQL server is the private one scripts/pg-test.sh starts
 * (make test exports TERN_TEST_PG_URL); every PostgreSQL test creates a
 * database of its own, so Criterion's parallel workers never share tables.
 * Without TERN_TEST_PG_URL the pg tests fail: a missing server must never
 * look like a passing suite.
 *
 * Fixtures and checks that must not depend on the code under test (creating
 * databases, counting migration rows) use libpq and sqlite3 directly.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>

#include "pgadmin.h"
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tern/db.h"
#include "tern/loop.h"

enum kind { K_FILE, K_MEM, K_PG };

static struct {
    int kind;
    char url[512];
    char path[256];   /* SQLite file */
    char pgname[64];  /* PostgreSQL database */
    char dir[256];    /* migrations directory */
    tern_db *db;      /* closed by teardown */
    tern_db *more[8]; /* other pools, closed by teardown */
    int listen_fd;    /* a socket that never accepts, -1 */
} T = { .listen_fd = -1 };

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                   */


static void prepare(int kind)
{
    static unsigned seq;

    T.kind = kind;
    T.listen_fd = -1;
    switch (kind) {
    case K_FILE:
        snprintf(T.path, sizeof T.path, "/tmp/tern-dbtest-%d-%u.db", (int)getpid(), seq++);
        snprintf(T.url, sizeof T.url, "sqlite:%s", T.path);
        break;
    case K_MEM:
        snprintf(T.url, sizeof T.url, "sqlite::memory:");
        break;
    case K_PG: {
        char sql[128];
        snprintf(T.pgname, sizeof T.pgname, "tern_t_%d_%u_%ld", (int)getpid(), seq++,
                 (long)(tern_now_ms() % 100000));
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", T.pgname);
        pg_admin(sql);
        pg_url_for(T.pgname, T.url, sizeof T.url);
        break;
    }
    }
}

static void rm_sqlite(const char *path)
{
    static const char *sfx[] = { "", "-wal", "-shm", "-journal" };
    char p[300];

    for (unsigned i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static void rm_dir(const char *dir)
{
    char cmd[300];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void teardown(void)
{
    tern_db_close(T.db);
    T.db = NULL;
    for (unsigned i = 0; i < 8; i++) {
        tern_db_close(T.more[i]);
        T.more[i] = NULL;
    }
    if (T.listen_fd >= 0)
        close(T.listen_fd);
    if (T.path[0])
        rm_sqlite(T.path);
    if (T.dir[0])
        rm_dir(T.dir);
    if (T.pgname[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", T.pgname);
        pg_admin(sql);
    }
}

/* A config with the test URL and bounds that keep a broken test short. */
static tern_db_config config(void)
{
    tern_db_config cfg;

    tern_db_config_init(&cfg);
    cfg.url = T.url;
    cfg.acquire_timeout_ms = 2000;
    cfg.connect_timeout_ms = 2000;
    cfg.statement_timeout_ms = 10000;
    return cfg;
}

static tern_db *open_cfg(const tern_db_config *cfg)
{
    tern_db *db = NULL;
    int rc = tern_db_open(cfg, &db);

    cr_assert_eq(rc, 0, "tern_db_open(%s): %s", cfg->url, tern_strerror(rc));
    cr_assert_not_null(db);
    return db;
}

static tern_db *open_default(void)
{
    tern_db_config cfg = config();

    T.db = open_cfg(&cfg);
    return T.db;
}

/* Keeps a second pool for teardown. */
static tern_db *keep(tern_db *db)
{
    for (unsigned i = 0; i < 8; i++) {
        if (T.more[i] == NULL) {
            T.more[i] = db;
            return db;
        }
    }
    cr_assert_fail("too many pools");
    return db;
}

static const char *pick(const char *pg, const char *lite)
{
    return T.kind == K_PG ? pg : lite;
}

#define EXEC_OK(db, sql, ...)                                                                      \
    do {                                                                                           \
        int rc_ = tern_db_exec(NULL, (db), (sql), __VA_ARGS__, NULL);                              \
        cr_assert_eq(rc_, 0, "%s: %s", (sql), tern_strerror(rc_));                               \
    } while (0)

static void exec_ok(tern_db *db, const char *sql)
{
    EXEC_OK(db, sql, TERN_DB_NOARGS);
}

/* The single integer a query returns (asserting success). */
static int64_t scalar(tern_db *db, const char *sql, const tern_db_val *args, unsigned n)
{
    tern_db_rows *rs = NULL;
    int rc = tern_db_one(NULL, db, sql, args, n, &rs);
    int64_t v;

    cr_assert_eq(rc, 0, "%s: %s", sql, tern_strerror(rc));
    cr_assert_eq(tern_db_ncols(rs), 1);
    v = tern_db_cell(rs, 0, 0).type == TERN_DB_INT ? tern_db_cell(rs, 0, 0).u.i
                                                   : tern_db_get_int(rs, 0, tern_db_colname(rs, 0));
    tern_db_rows_free(rs);
    return v;
}

static int64_t count(tern_db *db, const char *table)
{
    char sql[128];

    snprintf(sql, sizeof sql, "SELECT count(*) AS n FROM %s", table);
    return scalar(db, sql, TERN_DB_NOARGS);
}

static void make_users(tern_db *db)
{
    exec_ok(db, pick("CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                     "age INTEGER CHECK (age >= 0), active BOOLEAN NOT NULL DEFAULT TRUE)",
                     "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "name TEXT NOT NULL UNIQUE, age INTEGER CHECK (age >= 0), "
                     "active BOOLEAN NOT NULL DEFAULT TRUE)"));
    exec_ok(db, pick("CREATE TABLE posts (id BIGSERIAL PRIMARY KEY, "
                     "user_id BIGINT NOT NULL REFERENCES users(id), title TEXT)",
                     "CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "user_id INTEGER NOT NULL REFERENCES users(id), title TEXT)"));
}

static int64_t add_user(tern_db *db, const char *name, int age)
{
    tern_db_rows *rs = NULL;
    int rc = tern_db_one(NULL, db, "INSERT INTO users (name, age) VALUES ($1, $2) RETURNING id",
                         TERN_DB_ARGS(tern_db_cstr(name), tern_db_int(age)), &rs);
    int64_t id;

    cr_assert_eq(rc, 0, "insert %s: %s", name, tern_strerror(rc));
    id = tern_db_get_int(rs, 0, "id");
    tern_db_rows_free(rs);
    return id;
}

static int str_is(tern_str s, const char *want, size_t n)
{
    return s.n == n && memcmp(s.p, want, n) == 0;
}

/*
 * DB_TEST(name) defines one body and three tests: sqlite_file::name,
 * sqlite_mem::name and pg::name.  DB_TEST_FILE_PG skips the in-memory
 * database (for tests that need several pools on one database).
 */
#define DB_TEST(name)                                                                              \
    static void name##_run(void);                                                                  \
    Test(sqlite_file, name, .fini = teardown, .timeout = 60)                                       \
    {                                                                                              \
        prepare(K_FILE);                                                                           \
        name##_run();                                                                              \
    }                                                                                              \
    Test(sqlite_mem, name, .fini = teardown, .timeout = 60)                                        \
    {                                                                                              \
        prepare(K_MEM);                                                                            \
        name##_run();                                                                              \
    }                                                                                              \
    Test(pg, name, .fini = teardown, .timeout = 60)                                                \
    {                                                                                              \
        prepare(K_PG);                                                                             \
        name##_run();                                                                              \
    }                                                                                              \
    static void name##_run(void)

#define DB_TEST_FILE_PG(name)                                                                      \
    static void name##_run(void);                                                                  \
    Test(sqlite_file, name, .fini = teardown, .timeout = 60)                                       \
    {                                                                                              \
        prepare(K_FILE);                                                                           \
        name##_run();                                                                              \
    }                                                                                              \
    Test(pg, name, .fini = teardown, .timeout = 60)                                                \
    {                                                                                              \
        prepare(K_PG);                                                                             \
        name##_run();                                                                              \
    }                                                                                              \
    static void name##_run(void)

#define PG_TEST(name)                                                                              \
    static void name##_run(void);                                                                  \
    Test(pg, name, .fini = teardown, .timeout = 60)                                                \
    {                                                                                              \
        prepare(K_PG);                                                                             \
        name##_run();                                                                              \
    }                                                                                              \
    static void name##_run(void)

/* ------------------------------------------------------------------------ */
/* Opening                                                                    */

Test(open, bad_configuration_is_einval)
{
    tern_db_config cfg;
    tern_db *db = (tern_db *)1;

    cr_assert_eq(tern_db_open_url("mysql://localhost/x", &db), TERN_EINVAL);
    cr_assert_eq(tern_db_open_url("", &db), TERN_EINVAL);
    cr_assert_eq(tern_db_open_url("nonsense", &db), TERN_EINVAL);
    tern_db_config_init(&cfg);
    cr_assert_null(cfg.url);
    cr_assert_eq(tern_db_open(&cfg, &db), TERN_EINVAL, "url NULL");
    tern_db_rows_free(NULL);
}

Test(open, config_defaults)
{
    tern_db_config cfg;

    memset(&cfg, 0xa5, sizeof cfg);
    tern_db_config_init(&cfg);
    cr_assert_null(cfg.url);
    cr_assert_eq(cfg.min_conns, 1);
    cr_assert_eq(cfg.max_conns, 16);
    cr_assert_eq(cfg.acquire_timeout_ms, 5000);
    cr_assert_eq(cfg.max_waiters, 1024);
    cr_assert_eq(cfg.statement_timeout_ms, 30000);
    cr_assert_eq(cfg.tx_retries, 3);
    cr_assert_eq(cfg.retry_after_s, 1);
    cr_assert_eq(cfg.coalesce_max, 32);
    cr_assert_eq(cfg.idle_timeout_ms, 60000);
    cr_assert_eq(cfg.max_lifetime_ms, 1800000);
    cr_assert_eq(cfg.connect_timeout_ms, 5000);
    cr_assert_eq(cfg.busy_timeout_ms, 5000);
    cr_assert_eq(cfg.stmt_cache, 128);
    cr_assert_eq(cfg.backoff_min_ms, 100);
    cr_assert_eq(cfg.backoff_max_ms, 10000);
    cr_assert_null(cfg.migrations);
    cr_assert_null(cfg.migrations_dir);
}

/* More than 65535 parameters (the PostgreSQL protocol's limit) is refused on both drivers. */
Test(open, too_many_parameters_is_einval)
{
    tern_db_val *args = calloc(65536, sizeof *args);
    tern_db_rows *rs = NULL;
    tern_db *db;

    cr_assert_not_null(args);
    cr_assert_eq(tern_db_open_url("sqlite::memory:", &db), 0);
    cr_assert_eq(tern_db_query(NULL, db, "SELECT 1", args, 65536, &rs), TERN_EINVAL);
    cr_assert_null(rs);
    cr_assert_eq(tern_db_query_batch(NULL, db, "SELECT 1", args, 65536, 1, &rs), TERN_EINVAL);
    tern_db_close(db);
    free(args);
}

Test(open, status_mapping)
{
    cr_assert_eq(tern_db_status(0), 0);
    cr_assert_eq(tern_db_status(TERN_ENOTFOUND), 404);
    cr_assert_eq(tern_db_status(TERN_ECONFLICT), 409);
    cr_assert_eq(tern_db_status(TERN_ECONSTRAINT), 422);
    cr_assert_eq(tern_db_status(TERN_EUNAVAIL), 503);
    cr_assert_eq(tern_db_status(TERN_EINVAL), 500);
    cr_assert_eq(tern_db_status(TERN_EDB), 500);
}

DB_TEST(driver_name_and_ready)
{
    tern_db *db = open_default();
    tern_db_stats st;

    cr_assert_str_eq(tern_db_driver(db), T.kind == K_PG ? "postgres" : "sqlite");
    cr_assert_eq(tern_db_ready(db), 1);
    cr_assert_eq(scalar(db, "SELECT 1 + 1", TERN_DB_NOARGS), 2);
    tern_db_stats_get(db, &st);
    cr_assert_eq(st.ready, 1);
    cr_assert_geq(st.connects, 1);
    cr_assert_geq(st.acquired, 1);
    cr_assert_eq(st.in_use, 0);
    cr_assert_geq(st.idle, 1);
    cr_assert_eq(st.waiting, 0);
    cr_assert_eq(st.connect_failures, 0);
}

/* ------------------------------------------------------------------------ */
/* Statements                                                                 */

DB_TEST(crud_one_many_exec)
{
    tern_db *db = open_default();
    tern_db_rows *rs = NULL;
    int64_t n = -1, id;
    int rc;

    make_users(db);

    /* Create, with RETURNING. */
    rc = tern_db_one(NULL, db,
                     "INSERT INTO users (name, age) VALUES ($1, $2) RETURNING id, name, age, active",
                     TERN_DB_ARGS(tern_db_cstr("ann"), tern_db_int(30)), &rs);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert_eq(tern_db_nrows(rs), 1);
    cr_assert_eq(tern_db_ncols(rs), 4);
    id = tern_db_get_int(rs, 0, "id");
    cr_assert_gt(id, 0);
    cr_assert(str_is(tern_db_get_text(rs, 0, "name"), "ann", 3));
    cr_assert_eq(tern_db_get_int(rs, 0, "age"), 30);
    cr_assert_eq(tern_db_cell(rs, 0, 3).type, TERN_DB_BOOL);
    cr_assert_eq(tern_db_get_bool(rs, 0, "active"), 1);
    tern_db_rows_free(rs);

    /* Read one. */
    rs = NULL;
    rc = tern_db_one(NULL, db, "SELECT id, name, age FROM users WHERE id = $1",
                     TERN_DB_ARGS(tern_db_int(id)), &rs);
    cr_assert_eq(rc, 0);
    cr_assert(str_is(tern_db_get_text(rs, 0, "name"), "ann", 3));
    tern_db_rows_free(rs);

    /* tern_db_one with out NULL: only success matters. */
    cr_assert_eq(tern_db_one(NULL, db, "SELECT id FROM users WHERE id = $1",
                             TERN_DB_ARGS(tern_db_int(id)), NULL),
                 0);

    /* Many. */
    for (int i = 0; i < 99; i++) {
        char name[16];
        snprintf(name, sizeof name, "u%02d", i);
        add_user(db, name, i);
    }
    rs = NULL;
    rc = tern_db_query(NULL, db, "SELECT id, name, age FROM users WHERE age < $1 ORDER BY age",
                       TERN_DB_ARGS(tern_db_int(50)), &rs);
    cr_assert_eq(rc, 0);
    cr_assert_eq(tern_db_nrows(rs), 51, "ann (30) and u00..u49");
    cr_assert_eq(tern_db_get_int(rs, 0, "age"), 0);
    cr_assert_eq(tern_db_get_int(rs, 50, "age"), 49);
    cr_assert_eq(tern_db_affected(rs), 0, "a SELECT changes nothing");
    tern_db_rows_free(rs);

    /* A SELECT with no rows: empty set, not an error; one() says not found. */
    rs = NULL;
    rc = tern_db_query(NULL, db, "SELECT id FROM users WHERE age > $1", TERN_DB_ARGS(tern_db_int(1000)),
                       &rs);
    cr_assert_eq(rc, 0);
    cr_assert_eq(tern_db_nrows(rs), 0);
    tern_db_rows_free(rs);
    rs = NULL;
    cr_assert_eq(tern_db_one(NULL, db, "SELECT id FROM users WHERE id = $1",
                             TERN_DB_ARGS(tern_db_int(-5)), &rs),
                 TERN_ENOTFOUND);
    tern_db_rows_free(rs);

    /* Update: affected rows through exec and through query. */
    rc = tern_db_exec(NULL, db, "UPDATE users SET age = age + 1 WHERE age >= $1",
                      TERN_DB_ARGS(tern_db_int(90)), &n);
    cr_assert_eq(rc, 0);
    cr_assert_eq(n, 9, "u90..u98");
    rs = NULL;
    rc = tern_db_query(NULL, db, "UPDATE users SET age = 0 WHERE name = $1",
                       TERN_DB_ARGS(tern_db_cstr("ann")), &rs);
    cr_assert_eq(rc, 0);
    cr_assert_eq(tern_db_nrows(rs), 0);
    cr_assert_eq(tern_db_affected(rs), 1);
    tern_db_rows_free(rs);
    rc = tern_db_exec(NULL, db, "UPDATE users SET age = 1 WHERE name = $1",
                      TERN_DB_ARGS(tern_db_cstr("nobody")), &n);
    cr_assert_eq(rc, 0);
    cr_assert_eq(n, 0);

    /* Delete. */
    rc = tern_db_exec(NULL, db, "DELETE FROM users WHERE id = $1", TERN_DB_ARGS(tern_db_int(id)), &n);
    cr_assert_eq(rc, 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(tern_db_one(NULL, db, "SELECT id FROM users WHERE id = $1",
                             TERN_DB_ARGS(tern_db_int(id)), NULL),
                 TERN_ENOTFOUND);
    rc = tern_db_exec(NULL, db, "DELETE FROM users WHERE age < $1", TERN_DB_ARGS(tern_db_int(10)), NULL);
    cr_assert_eq(rc, 0, "affected may be NULL");
    cr_assert_eq(count(db, "users"), 89);
}

DB_TEST(typed_binds_round_trip)
{
    tern_db *db = open_default();
    static const char text[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80 'single' "
                               "\"double\" back\\slash; -- /* */ \t\n";
    static const unsigned char blob[] = { 0, 1, 2, 0, 0xff, '\'', 0, '\\', 'x', 0 };
    static const char json[] = "{\"a\": 1, \"b\": [true, null, \"x'y\\\"z\"], \"c\": {\"d\": 2.5}}";
    const struct {
        int64_t i;
        double d;
        int b;
    } v[] = { { INT64_MIN, -2.5e-300, 0 }, { INT64_MAX, 3.141592653589793, 1 }, { 0, 0.0, 1 },
              { -1, 1e300, 0 } };
    tern_db_rows *rs = NULL;
    int rc;

    exec_ok(db, pick("CREATE TABLE vals (id INTEGER PRIMARY KEY, b BOOLEAN, i BIGINT, "
                     "d DOUBLE PRECISION, t TEXT, bl BYTEA, j JSONB, n TEXT)",
                     "CREATE TABLE vals (id INTEGER PRIMARY KEY, b BOOLEAN, i INTEGER, d REAL, "
                     "t TEXT, bl BLOB, j JSON, n TEXT)"));
    for (unsigned k = 0; k < 4; k++) {
        rc = tern_db_exec(NULL, db,
                          "INSERT INTO vals (id, b, i, d, t, bl, j, n) "
                          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                          TERN_DB_ARGS(tern_db_int(k), tern_db_bool(v[k].b), tern_db_int(v[k].i),
                                       tern_db_double(v[k].d), tern_db_text((tern_str){ text, sizeof text - 1 }),
                                       tern_db_blob(blob, sizeof blob),
                                       tern_db_json(tern_str_c(json)), tern_db_null()),
                          NULL);
        cr_assert_eq(rc, 0, "insert %u: %s", k, tern_strerror(rc));
    }
    /* Empty text and empty blob are values, not NULL. */
    rc = tern_db_exec(NULL, db, "INSERT INTO vals (id, t, bl, n) VALUES (9, $1, $2, $3)",
                      TERN_DB_ARGS(tern_db_text(TERN_STR_NULL), tern_db_blob(NULL, 0),
                                   tern_db_cstr(NULL)),
                      NULL);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));

    rc = tern_db_query(NULL, db, "SELECT id, b, i, d, t, bl, j, n FROM vals ORDER BY id",
                       TERN_DB_NOARGS, &rs);
    cr_assert_eq(rc, 0);
    cr_assert_eq(tern_db_nrows(rs), 5);
    cr_assert_eq(tern_db_ncols(rs), 8);
    for (unsigned k = 0; k < 4; k++) {
        tern_db_val c;

        c = tern_db_cell(rs, k, 1);
        cr_assert_eq(c.type, TERN_DB_BOOL, "row %u: b has type %d", k, c.type);
        cr_assert_eq(c.u.b, v[k].b);
        c = tern_db_cell(rs, k, 2);
        cr_assert_eq(c.type, TERN_DB_INT, "row %u: i has type %d", k, c.type);
        cr_assert_eq(c.u.i, v[k].i, "row %u: %lld != %lld", k, (long long)c.u.i, (long long)v[k].i);
        c = tern_db_cell(rs, k, 3);
        cr_assert_eq(c.type, TERN_DB_DOUBLE, "row %u: d has type %d", k, c.type);
        cr_assert(c.u.d == v[k].d, "row %u: %.17g != %.17g", k, c.u.d, v[k].d);
        c = tern_db_cell(rs, k, 4);
        cr_assert_eq(c.type, TERN_DB_TEXT);
        cr_assert(str_is(c.u.s, text, sizeof text - 1), "text came back as '%.*s'", (int)c.u.s.n,
                  c.u.s.p);
        c = tern_db_cell(rs, k, 5);
        cr_assert_eq(c.type, TERN_DB_BLOB, "row %u: bl has type %d", k, c.type);
        cr_assert(str_is(c.u.s, (const char *)blob, sizeof blob), "blob came back with %zu bytes",
                  c.u.s.n);
        c = tern_db_cell(rs, k, 6);
        cr_assert_eq(c.type, TERN_DB_JSON, "row %u: j has type %d", k, c.type);
        json_t *a = json_loadb(c.u.s.p, c.u.s.n, 0, NULL), *b = json_loads(json, 0, NULL);
        cr_assert(a && b && json_equal(a, b), "JSON came back as %.*s", (int)c.u.s.n, c.u.s.p);
        json_decref(a);
        json_decref(b);
        c = tern_db_cell(rs, k, 7);
        cr_assert_eq(c.type, TERN_DB_NULL);
        cr_assert(tern_db_isnull(rs, k, "n"));
        cr_assert(!tern_db_isnull(rs, k, "t"));
    }
    /* Row id 9: empty text and blob, NULL from tern_db_cstr(NULL). */
    cr_assert_eq(tern_db_cell(rs, 4, 4).type, TERN_DB_TEXT, "empty text must not become NULL");
    cr_assert_eq(tern_db_cell(rs, 4, 4).u.s.n, 0);
    cr_assert_eq(tern_db_cell(rs, 4, 5).type, TERN_DB_BLOB, "empty blob must not become NULL");
    cr_assert_eq(tern_db_cell(rs, 4, 5).u.s.n, 0);
    cr_assert_eq(tern_db_cell(rs, 4, 7).type, TERN_DB_NULL);
    tern_db_rows_free(rs);

    /* Typed binds in WHERE find their rows. */
    cr_assert_eq(scalar(db, "SELECT id FROM vals WHERE i = $1", TERN_DB_ARGS(tern_db_int(INT64_MIN))),
                 0);
    cr_assert_eq(scalar(db, "SELECT id FROM vals WHERE i = $1", TERN_DB_ARGS(tern_db_int(INT64_MAX))),
                 1);
    cr_assert_eq(scalar(db, "SELECT id FROM vals WHERE d = $1", TERN_DB_ARGS(tern_db_double(1e300))),
                 3);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM vals WHERE b = $1", TERN_DB_ARGS(tern_db_bool(1))),
                 2);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM vals WHERE bl = $1",
                        TERN_DB_ARGS(tern_db_blob(blob, sizeof blob))),
                 4);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM vals WHERE t = $1", TERN_DB_ARGS(tern_db_cstr(text))),
                 4);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM vals WHERE n IS NULL AND t = $1",
                        TERN_DB_ARGS(tern_db_cstr(""))),
                 1);
}

DB_TEST(getters_by_name_and_index)
{
    tern_db *db = open_default();
    tern_db_rows *rs = NULL;
    tern_str s;
    int rc;

    make_users(db);
    add_user(db, "ann", 30);
    exec_ok(db, "INSERT INTO users (name, age, active) VALUES ('42', NULL, FALSE)");
    rc = tern_db_query(NULL, db, "SELECT id, name, age, active FROM users ORDER BY id",
                       TERN_DB_NOARGS, &rs);
    cr_assert_eq(rc, 0);
    cr_assert_eq(tern_db_ncols(rs), 4);
    cr_assert_str_eq(tern_db_colname(rs, 0), "id");
    cr_assert_str_eq(tern_db_colname(rs, 3), "active");
    cr_assert_null(tern_db_colname(rs, 4));
    cr_assert_eq(tern_db_colindex(rs, "age"), 2);
    cr_assert_eq(tern_db_colindex(rs, "missing"), -1);

    /* By index. */
    cr_assert_eq(tern_db_cell(rs, 0, 2).type, TERN_DB_INT);
    cr_assert_eq(tern_db_cell(rs, 0, 2).u.i, 30);
    cr_assert_eq(tern_db_cell(rs, 1, 2).type, TERN_DB_NULL);
    cr_assert_eq(tern_db_cell(rs, 0, 9).type, TERN_DB_NULL, "column out of range");
    cr_assert_eq(tern_db_cell(rs, 7, 0).type, TERN_DB_NULL, "row out of range");

    /* By name, with conversions. */
    cr_assert_eq(tern_db_get_int(rs, 0, "age"), 30);
    cr_assert(tern_db_get_double(rs, 0, "age") == 30.0, "int read as double");
    cr_assert_eq(tern_db_get_int(rs, 1, "name"), 42, "text \"42\" read as int");
    cr_assert_eq(tern_db_get_bool(rs, 0, "active"), 1);
    cr_assert_eq(tern_db_get_bool(rs, 1, "active"), 0);
    cr_assert_eq(tern_db_get_int(rs, 1, "age"), 0, "NULL reads as 0");
    cr_assert(tern_db_isnull(rs, 1, "age"));
    cr_assert(!tern_db_isnull(rs, 0, "age"));
    cr_assert(tern_db_isnull(rs, 0, "missing"), "a missing column counts as NULL");
    cr_assert_eq(tern_db_get_int(rs, 0, "missing"), 0);
    cr_assert_eq(tern_db_get_int(rs, 9, "age"), 0, "row out of range");
    s = tern_db_get_text(rs, 0, "missing");
    cr_assert_eq(s.n, 0);
    s = tern_db_get_text(rs, 0, "name");
    cr_assert(str_is(s, "ann", 3));
    cr_assert_eq(s.p[3], '\0', "text cells are NUL-terminated");
    cr_assert_eq(tern_db_get_int(rs, 0, "name"), 0, "\"ann\" is no integer");
    tern_db_rows_free(rs);

    /* Double from a computed column. */
    rs = NULL;
    /* Parameters may travel untyped (PostgreSQL infers their type from the
     * context), so the SQL gives the context: 2.0, not 2. */
    rc = tern_db_one(NULL, db, "SELECT $1 * 2.0 AS x", TERN_DB_ARGS(tern_db_double(1.25)), &rs);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert(tern_db_get_double(rs, 0, "x") == 2.5, "got %g", tern_db_get_double(rs, 0, "x"));
    tern_db_rows_free(rs);
}

DB_TEST(json_writer_output)
{
    tern_db *db = open_default();
    static const unsigned char blob[] = { 0, 1, 2, 0, 0xff };
    tern_db_rows *rs = NULL;
    tern_buf out;
    tern_jw w;
    int rc;

    make_users(db);
    add_user(db, "ann", 30);
    EXEC_OK(db, "INSERT INTO users (name, age, active) VALUES ($1, NULL, FALSE)",
            TERN_DB_ARGS(tern_db_cstr("bob \"b\" \xc3\xa9")));
    rc = tern_db_query(NULL, db, "SELECT id, name, age, active FROM users ORDER BY id",
                       TERN_DB_NOARGS, &rs);
    cr_assert_eq(rc, 0);
    tern_buf_init(&out, 1 << 20);
    tern_jw_init(&w, &out);
    cr_assert_eq(tern_db_jw_rows(&w, rs), 0);
    cr_assert_eq(tern_jw_finish(&w), 0);
    cr_assert_eq(out.len, strlen("[{\"id\":1,\"name\":\"ann\",\"age\":30,\"active\":true},"
                                 "{\"id\":2,\"name\":\"bob \\\"b\\\" \xc3\xa9\",\"age\":null,"
                                 "\"active\":false}]"),
                 "got %.*s", (int)out.len, out.p);
    cr_assert(memcmp(out.p,
                     "[{\"id\":1,\"name\":\"ann\",\"age\":30,\"active\":true},"
                     "{\"id\":2,\"name\":\"bob \\\"b\\\" \xc3\xa9\",\"age\":null,\"active\":false}]",
                     out.len) == 0,
              "got %.*s", (int)out.len, out.p);

    /* One row, and an empty set. */
    out.len = 0;
    tern_jw_init(&w, &out);
    cr_assert_eq(tern_db_jw_row(&w, rs, 0), 0);
    cr_assert_eq(tern_jw_finish(&w), 0);
    cr_assert(out.len == strlen("{\"id\":1,\"name\":\"ann\",\"age\":30,\"active\":true}") &&
                  memcmp(out.p, "{\"id\":1,\"name\":\"ann\",\"age\":30,\"active\":true}", out.len) == 0,
              "got %.*s", (int)out.len, out.p);
    tern_db_rows_free(rs);
    rs = NULL;
    cr_assert_eq(tern_db_query(NULL, db, "SELECT id FROM users WHERE id < 0", TERN_DB_NOARGS, &rs), 0);
    out.len = 0;
    tern_jw_init(&w, &out);
    cr_assert_eq(tern_db_jw_rows(&w, rs), 0);
    cr_assert_eq(tern_jw_finish(&w), 0);
    cr_assert(out.len == 2 && memcmp(out.p, "[]", 2) == 0, "got %.*s", (int)out.len, out.p);
    tern_db_rows_free(rs);

    /* Blob as base64, JSON as JSON, doubles as reals. */
    exec_ok(db, pick("CREATE TABLE v (bl BYTEA, j JSONB, d DOUBLE PRECISION)",
                     "CREATE TABLE v (bl BLOB, j JSON, d REAL)"));
    EXEC_OK(db, "INSERT INTO v VALUES ($1, $2, $3)",
            TERN_DB_ARGS(tern_db_blob(blob, sizeof blob), tern_db_json(TERN_STR("{\"k\": [1, \"s\"]}")),
                         tern_db_double(2.0)));
    rs = NULL;
    cr_assert_eq(tern_db_one(NULL, db, "SELECT bl, j, d FROM v", TERN_DB_NOARGS, &rs), 0);
    out.len = 0;
    tern_jw_init(&w, &out);
    cr_assert_eq(tern_db_jw_row(&w, rs, 0), 0);
    cr_assert_eq(tern_jw_finish(&w), 0);
    json_t *doc = json_loadb(out.p, out.len, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %.*s", (int)out.len, out.p);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "bl")), "AAECAP8=", "blob: %.*s",
                     (int)out.len, out.p);
    cr_assert(json_is_array(json_object_get(json_object_get(doc, "j"), "k")),
              "JSON cell must be written as JSON: %.*s", (int)out.len, out.p);
    cr_assert(json_is_real(json_object_get(doc, "d")) && json_real_value(json_object_get(doc, "d")) == 2.0,
              "double: %.*s", (int)out.len, out.p);
    json_decref(doc);
    tern_db_rows_free(rs);
    tern_buf_deinit(&out);
}

DB_TEST(parameter_numbering_and_count)
{
    tern_db *db = open_default();
    tern_db_rows *rs = NULL;
    int rc;

    /* $2 before $1, and $1 twice. */
    rc = tern_db_one(NULL, db, "SELECT $2 AS a, $1 AS b, $1 AS c",
                     TERN_DB_ARGS(tern_db_cstr("first"), tern_db_cstr("second")), &rs);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert(str_is(tern_db_get_text(rs, 0, "a"), "second", 6));
    cr_assert(str_is(tern_db_get_text(rs, 0, "b"), "first", 5));
    cr_assert(str_is(tern_db_get_text(rs, 0, "c"), "first", 5));
    tern_db_rows_free(rs);

    make_users(db);
    rs = NULL;
    rc = tern_db_one(NULL, db, "INSERT INTO users (age, name) VALUES ($2, $1) RETURNING name, age",
                     TERN_DB_ARGS(tern_db_cstr("zed"), tern_db_int(7)), &rs);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert(str_is(tern_db_get_text(rs, 0, "name"), "zed", 3));
    cr_assert_eq(tern_db_get_int(rs, 0, "age"), 7);
    tern_db_rows_free(rs);

    /* Ten parameters, out of order. */
    cr_assert_eq(scalar(db, "SELECT 0 + $10 + $1 + $9 + $2 + $8 + $3 + $7 + $4 + $6 + $5",
                        TERN_DB_ARGS(tern_db_int(1), tern_db_int(2), tern_db_int(3), tern_db_int(4),
                                     tern_db_int(5), tern_db_int(6), tern_db_int(7), tern_db_int(8),
                                     tern_db_int(9), tern_db_int(1000))),
                 1045);

    /* Wrong counts are misuse, caught before anything runs. */
    rs = NULL;
    cr_assert_eq(tern_db_query(NULL, db, "SELECT $1 AS a, $2 AS b", TERN_DB_ARGS(tern_db_int(1)), &rs),
                 TERN_EINVAL, "too few");
    tern_db_rows_free(rs);
    rs = NULL;
    cr_assert_eq(tern_db_query(NULL, db, "SELECT $1 AS a", TERN_DB_ARGS(tern_db_int(1), tern_db_int(2)),
                               &rs),
                 TERN_EINVAL, "too many");
    tern_db_rows_free(rs);
    cr_assert_eq(tern_db_exec(NULL, db, "DELETE FROM users WHERE id = $1", TERN_DB_NOARGS, NULL),
                 TERN_EINVAL, "none for one");
    cr_assert_eq(tern_db_exec(NULL, db, "DELETE FROM users", TERN_DB_ARGS(tern_db_int(1)), NULL),
                 TERN_EINVAL, "one for none");
    cr_assert_eq(tern_db_status(TERN_EINVAL), 500);
    cr_assert_eq(count(db, "users"), 1, "nothing was deleted");
}

/*
 * Injection: hostile strings through every bind type are stored and compared
 * as plain values; the tables survive.
 */
DB_TEST(injection_through_every_bind_type)
{
    static const char *evil[] = {
        "x'); DROP TABLE users; --",
        "'; DELETE FROM users; --",
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "1; DROP TABLE posts",
        "Robert'); DROP TABLE students;--",
        "\\'; DROP TABLE users; --",
        "$1",
        "$2 $1 ?",
        "?1 :name @x",
        "%' OR 1=1 --",
        "'); ATTACH DATABASE '/tmp/tern-pwn.db' AS pwn; --",
        "x'||(SELECT sqlite_version())||'",
        "'; SELECT pg_sleep(5); --",
        "*/ DROP TABLE users /*",
    };
    const unsigned n = sizeof evil / sizeof evil[0];
    tern_db *db = open_default();
    tern_db_rows *rs = NULL;
    int rc;

    make_users(db);
    exec_ok(db, pick("CREATE TABLE loot (id BIGSERIAL PRIMARY KEY, t TEXT, bl BYTEA, j JSONB, "
                     "i BIGINT, d DOUBLE PRECISION, b BOOLEAN, n TEXT)",
                     "CREATE TABLE loot (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, bl BLOB, j JSON, "
                     "i INTEGER, d REAL, b BOOLEAN, n TEXT)"));
    add_user(db, "alice", 1);

    /* A hostile WHERE value matches nothing. */
    for (unsigned k = 0; k < n; k++) {
        rs = NULL;
        rc = tern_db_query(NULL, db, "SELECT id FROM users WHERE name = $1",
                           TERN_DB_ARGS(tern_db_cstr(evil[k])), &rs);
        cr_assert_eq(rc, 0, "%s: %s", evil[k], tern_strerror(rc));
        cr_assert_eq(tern_db_nrows(rs), 0, "'%s' matched a row", evil[k]);
        tern_db_rows_free(rs);
    }

    /* Stored verbatim as text, blob (with a NUL) and inside JSON, next to the
     * other types. */
    for (unsigned k = 0; k < n; k++) {
        char blob[128], json[256], *q = json;
        size_t bl = strlen(evil[k]);

        memcpy(blob, evil[k], bl);
        blob[bl++] = '\0';
        blob[bl++] = '\'';
        q += sprintf(q, "{\"k\": \"");
        for (const char *p = evil[k]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *q++ = '\\';
            *q++ = *p;
        }
        sprintf(q, "\"}");
        rc = tern_db_exec(NULL, db, "INSERT INTO loot (t, bl, j, i, d, b, n) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                          TERN_DB_ARGS(tern_db_cstr(evil[k]), tern_db_blob(blob, bl),
                                       tern_db_json(tern_str_c(json)), tern_db_int(-1),
                                       tern_db_double(-0.5), tern_db_bool(0), tern_db_null()),
                          NULL);
        cr_assert_eq(rc, 0, "insert '%s': %s", evil[k], tern_strerror(rc));
        add_user(db, evil[k], 2);

        rs = NULL;
        rc = tern_db_one(NULL, db, "SELECT t, bl, j FROM loot WHERE t = $1 AND bl = $2",
                         TERN_DB_ARGS(tern_db_cstr(evil[k]), tern_db_blob(blob, bl)), &rs);
        cr_assert_eq(rc, 0, "'%s' not found verbatim: %s", evil[k], tern_strerror(rc));
        cr_assert(str_is(tern_db_get_text(rs, 0, "t"), evil[k], strlen(evil[k])));
        cr_assert(str_is(tern_db_get_text(rs, 0, "bl"), blob, bl));
        tern_str j = tern_db_get_text(rs, 0, "j");
        json_t *doc = json_loadb(j.p, j.n, 0, NULL);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "k")), evil[k]);
        json_decref(doc);
        tern_db_rows_free(rs);

        /* Echoed back by SELECT $1 unchanged, whatever the type. */
        rs = NULL;
        rc = tern_db_one(NULL, db, "SELECT $1 AS v", TERN_DB_ARGS(tern_db_cstr(evil[k])), &rs);
        cr_assert_eq(rc, 0);
        cr_assert(str_is(tern_db_get_text(rs, 0, "v"), evil[k], strlen(evil[k])));
        tern_db_rows_free(rs);
    }

    /* Text where a number is expected: an error or no match, never a match. */
    rs = NULL;
    rc = tern_db_query(NULL, db, pick("SELECT id FROM users WHERE id::text = $1", "SELECT id FROM users WHERE id = $1"),
                       TERN_DB_ARGS(tern_db_cstr("1 OR 1=1")), &rs);
    cr_assert(rc != 0 || tern_db_nrows(rs) == 0, "'1 OR 1=1' matched rows");
    tern_db_rows_free(rs);
    rs = NULL;
    rc = tern_db_query(NULL, db, "SELECT id FROM users WHERE age = $1",
                       TERN_DB_ARGS(tern_db_cstr("1 OR 1=1")), &rs);
    cr_assert(rc != 0 || tern_db_nrows(rs) == 0, "'1 OR 1=1' matched rows");
    tern_db_rows_free(rs);

    /* Everything is still there. */
    cr_assert_eq(count(db, "users"), n + 1);
    cr_assert_eq(count(db, "loot"), n);
    cr_assert_eq(count(db, "posts"), 0);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM loot WHERE i = $1 AND b = $2 AND n IS NULL",
                        TERN_DB_ARGS(tern_db_int(-1), tern_db_bool(0))),
                 n);
    cr_assert(access("/tmp/tern-pwn.db", F_OK) != 0, "ATTACH ran");
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

DB_TEST(error_classification)
{
    tern_db *db = open_default();
    tern_db_stats st0, st1;
    int64_t ann;
    int rc;

    make_users(db);
    ann = add_user(db, "ann", 30);
    tern_db_stats_get(db, &st0);

    rc = tern_db_exec(NULL, db, "INSERT INTO users (name, age) VALUES ($1, $2)",
                      TERN_DB_ARGS(tern_db_cstr("ann"), tern_db_int(1)), NULL);
    cr_assert_eq(rc, TERN_ECONFLICT, "unique: %s", tern_strerror(rc));
    cr_assert_eq(tern_db_status(rc), 409);

    rc = tern_db_exec(NULL, db, "INSERT INTO posts (user_id, title) VALUES ($1, $2)",
                      TERN_DB_ARGS(tern_db_int(ann + 1000), tern_db_cstr("orphan")), NULL);
    cr_assert_eq(rc, TERN_ECONFLICT, "foreign key: %s", tern_strerror(rc));
    cr_assert_eq(count(db, "posts"), 0);
    EXEC_OK(db, "INSERT INTO posts (user_id, title) VALUES ($1, $2)",
            TERN_DB_ARGS(tern_db_int(ann), tern_db_cstr("mine")));
    rc = tern_db_exec(NULL, db, "DELETE FROM users WHERE id = $1", TERN_DB_ARGS(tern_db_int(ann)), NULL);
    cr_assert_eq(rc, TERN_ECONFLICT, "foreign key on delete: %s", tern_strerror(rc));

    rc = tern_db_exec(NULL, db, "INSERT INTO users (name, age) VALUES ($1, $2)",
                      TERN_DB_ARGS(tern_db_null(), tern_db_int(1)), NULL);
    cr_assert_eq(rc, TERN_ECONSTRAINT, "not null: %s", tern_strerror(rc));
    cr_assert_eq(tern_db_status(rc), 422);

    rc = tern_db_exec(NULL, db, "INSERT INTO users (name, age) VALUES ($1, $2)",
                      TERN_DB_ARGS(tern_db_cstr("neg"), tern_db_int(-1)), NULL);
    cr_assert_eq(rc, TERN_ECONSTRAINT, "check: %s", tern_strerror(rc));

    rc = tern_db_one(NULL, db, "SELECT id FROM users WHERE name = $1",
                     TERN_DB_ARGS(tern_db_cstr("nobody")), NULL);
    cr_assert_eq(rc, TERN_ENOTFOUND);
    cr_assert_eq(tern_db_status(rc), 404);

    rc = tern_db_exec(NULL, db, "SELEC nonsense FROM", TERN_DB_NOARGS, NULL);
    cr_assert_eq(rc, TERN_EDB, "syntax error: %s", tern_strerror(rc));
    cr_assert_eq(tern_db_status(rc), 500);
    rc = tern_db_exec(NULL, db, "SELECT * FROM no_such_table", TERN_DB_NOARGS, NULL);
    cr_assert_eq(rc, TERN_EDB, "unknown table: %s", tern_strerror(rc));

    /* Failures leave the pool healthy. */
    cr_assert_eq(count(db, "users"), 1);
    tern_db_stats_get(db, &st1);
    cr_assert_geq(st1.errors, st0.errors + 7, "errors %llu -> %llu", (unsigned long long)st0.errors,
                  (unsigned long long)st1.errors);
    cr_assert_eq(st1.in_use, 0);
    cr_assert_eq(st1.ready, 1);
}

/* ------------------------------------------------------------------------ */
/* Transactions                                                               */

struct txa {
    int attempts;
    int fail_times;     /* raise a serialization failure this many times */
    const char *sqlstate;
    int ret;            /* what fn returns at the end */
    int rc_seen;        /* first failing rc inside fn */
    int64_t inside, outside;
    tern_db *pool;
};

static int tx_two_users(tern_req *req, tern_db *tx, void *arg)
{
    struct txa *a = arg;
    int rc;

    a->attempts++;
    rc = tern_db_exec(req, tx, "INSERT INTO users (name, age) VALUES ('t1', 1)", TERN_DB_NOARGS, NULL);
    if (rc == 0)
        rc = tern_db_exec(req, tx, "INSERT INTO users (name, age) VALUES ('t2', 2)", TERN_DB_NOARGS,
                          NULL);
    if (rc != 0) {
        a->rc_seen = rc;
        return rc;
    }
    /* Own writes are visible inside, not outside. */
    tern_db_rows *rs = NULL;
    if (tern_db_one(req, tx, "SELECT count(*) AS n FROM users", TERN_DB_NOARGS, &rs) == 0)
        a->inside = tern_db_get_int(rs, 0, "n");
    tern_db_rows_free(rs);
    rs = NULL;
    if (a->pool && tern_db_one(req, a->pool, "SELECT count(*) AS n FROM users", TERN_DB_NOARGS, &rs) == 0)
        a->outside = tern_db_get_int(rs, 0, "n");
    else
        a->outside = -1;
    tern_db_rows_free(rs);
    return a->ret;
}

DB_TEST(tx_commit_and_rollback)
{
    tern_db *db = open_default();
    struct txa a = { 0 };
    tern_db_stats st;
    int rc;

    make_users(db);

    a.ret = 0;
    /* sqlite::memory: has one connection, the writer: a read through the
     * pool inside a transaction would wait for the transaction itself. */
    a.pool = T.kind == K_MEM ? NULL : db;
    rc = tern_db_tx(NULL, db, tx_two_users, &a);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert_eq(a.attempts, 1);
    cr_assert_eq(a.inside, 2, "own writes visible in the transaction");
    if (T.kind != K_MEM)
        cr_assert_eq(a.outside, 0, "uncommitted writes visible outside (%lld)", (long long)a.outside);
    cr_assert_eq(count(db, "users"), 2);

    /* fn returns non-zero: rolled back, that value comes back. */
    exec_ok(db, "DELETE FROM users");
    memset(&a, 0, sizeof a);
    a.ret = 42;
    rc = tern_db_tx(NULL, db, tx_two_users, &a);
    cr_assert_eq(rc, 42);
    cr_assert_eq(count(db, "users"), 0, "rolled back");

    /* A failing statement: fn passes the code on, nothing is kept. */
    add_user(db, "t2", 9);
    memset(&a, 0, sizeof a);
    rc = tern_db_tx(NULL, db, tx_two_users, &a);
    cr_assert_eq(rc, TERN_ECONFLICT, "%s", tern_strerror(rc));
    cr_assert_eq(a.rc_seen, TERN_ECONFLICT);
    cr_assert_eq(a.attempts, 1, "a unique violation is not retried");
    cr_assert_eq(count(db, "users"), 1, "t1 rolled back");

    tern_db_stats_get(db, &st);
    cr_assert_eq(st.in_use, 0, "the transaction's connection went back");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM users WHERE name = $1", TERN_DB_ARGS(tern_db_cstr("t2"))),
                 1);
}

/* fn ignores a failed statement and asks to commit. */
static int tx_ignore_error(tern_req *req, tern_db *tx, void *arg)
{
    int *seen = arg;

    (void)tern_db_exec(req, tx, "INSERT INTO users (name, age) VALUES ('keep', 1)", TERN_DB_NOARGS, NULL);
    *seen = tern_db_exec(req, tx, "INSERT INTO users (name, age) VALUES ('dup', 1)", TERN_DB_NOARGS, NULL);
    return 0;
}

DB_TEST(tx_commit_after_ignored_error_is_not_silent)
{
    tern_db *db = open_default();
    int seen = 0, rc;

    make_users(db);
    add_user(db, "dup", 1);
    rc = tern_db_tx(NULL, db, tx_ignore_error, &seen);
    cr_assert_eq(seen, TERN_ECONFLICT);
    /* Either the commit reports the failure, or 'keep' was really committed
     * (SQLite keeps the statements before the failed one).  Never 0 with
     * nothing stored (PostgreSQL answers COMMIT of an aborted transaction
     * with ROLLBACK). */
    int64_t kept = scalar(db, "SELECT count(*) FROM users WHERE name = 'keep'", TERN_DB_NOARGS);
    cr_assert(rc != 0 || kept == 1, "tern_db_tx returned 0 but nothing was committed");
    cr_assert_eq(scalar(db, "SELECT 7", TERN_DB_NOARGS), 7, "connection usable after");
}

static int tx_forced_retry(tern_req *req, tern_db *tx, void *arg)
{
    struct txa *a = arg;
    char sql[160];
    int rc;

    a->attempts++;
    rc = tern_db_exec(req, tx, "INSERT INTO users (name, age) VALUES ('once', 1)", TERN_DB_NOARGS, NULL);
    if (rc != 0) {
        if (!a->rc_seen)
            a->rc_seen = rc;
        return rc;
    }
    if (a->attempts <= a->fail_times) {
        snprintf(sql, sizeof sql,
                 "DO $$BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '%s'; END$$", a->sqlstate);
        rc = tern_db_exec(req, tx, sql, TERN_DB_NOARGS, NULL);
        if (!a->rc_seen)
            a->rc_seen = rc;
        return rc;
    }
    return 0;
}

PG_TEST(tx_retries_serialization_failures)
{
    tern_db_config cfg = config();
    struct txa a = { 0 };
    int rc;

    cfg.tx_retries = 3;
    T.db = open_cfg(&cfg);
    make_users(T.db);

    a.fail_times = 2;
    a.sqlstate = "serialization_failure";
    rc = tern_db_tx(NULL, T.db, tx_forced_retry, &a);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert_eq(a.rc_seen, TERN_ERETRY, "fn saw %s", tern_strerror(a.rc_seen));
    cr_assert_eq(a.attempts, 3);
    cr_assert_eq(count(T.db, "users"), 1, "rolled-back attempts left nothing");

    exec_ok(T.db, "DELETE FROM users");
    memset(&a, 0, sizeof a);
    a.fail_times = 2;
    a.sqlstate = "deadlock_detected";
    rc = tern_db_tx(NULL, T.db, tx_forced_retry, &a);
    cr_assert_eq(rc, 0, "deadlock: %s", tern_strerror(rc));
    cr_assert_eq(a.attempts, 3);

    exec_ok(T.db, "DELETE FROM users");
    memset(&a, 0, sizeof a);
    a.fail_times = 1000;
    a.sqlstate = "serialization_failure";
    rc = tern_db_tx(NULL, T.db, tx_forced_retry, &a);
    cr_assert_eq(rc, TERN_ECONFLICT, "after the retries: %s", tern_strerror(rc));
    cr_assert_eq(tern_db_status(rc), 409);
    cr_assert_eq(a.attempts, 4, "one run and tx_retries (3) reruns, got %d", a.attempts);
    cr_assert_eq(count(T.db, "users"), 0);
}

/* Real write skew under SERIALIZABLE: two threads, one must be rerun. */
static pthread_barrier_t skew_barrier;
struct skew {
    tern_db *db;
    int who;
    int attempts;
    int rc;
};

static int tx_skew(tern_req *req, tern_db *tx, void *arg)
{
    struct skew *s = arg;
    tern_db_rows *rs = NULL;
    int rc;

    s->attempts++;
    rc = tern_db_exec(req, tx, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", TERN_DB_NOARGS, NULL);
    if (rc == 0)
        rc = tern_db_one(req, tx, "SELECT count(*) AS n FROM oncall WHERE on_duty", TERN_DB_NOARGS, &rs);
    tern_db_rows_free(rs);
    if (s->attempts == 1)
        pthread_barrier_wait(&skew_barrier); /* both have read before either writes */
    if (rc == 0)
        rc = tern_db_exec(req, tx, "INSERT INTO oncall (who, on_duty) VALUES ($1, TRUE)",
                          TERN_DB_ARGS(tern_db_int(s->who)), NULL);
    if (s->attempts == 1)
        pthread_barrier_wait(&skew_barrier); /* both have written before either commits */
    return rc;
}

static void *skew_thread(void *arg)
{
    struct skew *s = arg;

    s->rc = tern_db_tx(NULL, s->db, tx_skew, s);
    return NULL;
}

PG_TEST(tx_retries_real_serialization_conflict)
{
    tern_db *db = open_default();
    struct skew s[2] = { { db, 1, 0, -1 }, { db, 2, 0, -1 } };
    pthread_t th[2];

    exec_ok(db, "CREATE TABLE oncall (who INTEGER, on_duty BOOLEAN)");
    pthread_barrier_init(&skew_barrier, NULL, 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, skew_thread, &s[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&skew_barrier);
    cr_assert_eq(s[0].rc, 0, "thread 1: %s", tern_strerror(s[0].rc));
    cr_assert_eq(s[1].rc, 0, "thread 2: %s", tern_strerror(s[1].rc));
    cr_assert_geq(s[0].attempts + s[1].attempts, 3, "attempts %d + %d: a rerun expected",
                  s[0].attempts, s[1].attempts);
    cr_assert_eq(count(db, "oncall"), 2);
}

/* ------------------------------------------------------------------------ */
/* Concurrency                                                                */

struct writer {
    tern_db *db;
    int id, n, failures, first_rc;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;

    for (int i = 0; i < w->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d-%d", w->id, i);
        int rc = tern_db_exec(NULL, w->db, "INSERT INTO users (name, age) VALUES ($1, $2)",
                              TERN_DB_ARGS(tern_db_cstr(name), tern_db_int(i)), NULL);
        if (rc != 0) {
            if (!w->failures)
                w->first_rc = rc;
            w->failures++;
        }
    }
    return NULL;
}

DB_TEST(concurrent_writers_lose_nothing)
{
    enum { NW = 16, PER = 40 };
    tern_db *db = open_default();
    struct writer w[NW];
    pthread_t th[NW];

    make_users(db);
    for (int i = 0; i < NW; i++) {
        w[i] = (struct writer){ db, i, PER, 0, 0 };
        pthread_create(&th[i], NULL, writer_thread, &w[i]);
    }
    for (int i = 0; i < NW; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NW; i++)
        cr_assert_eq(w[i].failures, 0, "writer %d: %d failures, first %s", i, w[i].failures,
                     tern_strerror(w[i].first_rc));
    cr_assert_eq(count(db, "users"), NW * PER);
}

struct incr {
    tern_db *db;
    int n, failures, first_rc;
};

static int tx_incr(tern_req *req, tern_db *tx, void *arg)
{
    tern_db_rows *rs = NULL;
    int rc;

    (void)arg;
    rc = tern_db_one(req, tx, pick("SELECT n FROM counter WHERE id = 1 FOR UPDATE",
                                   "SELECT n FROM counter WHERE id = 1"),
                     TERN_DB_NOARGS, &rs);
    if (rc != 0)
        return rc;
    int64_t n = tern_db_get_int(rs, 0, "n");
    tern_db_rows_free(rs);
    return tern_db_exec(req, tx, "UPDATE counter SET n = $1 WHERE id = 1", TERN_DB_ARGS(tern_db_int(n + 1)),
                        NULL);
}

static void *incr_thread(void *arg)
{
    struct incr *c = arg;

    for (int i = 0; i < c->n; i++) {
        int rc = tern_db_tx(NULL, c->db, tx_incr, NULL);
        if (rc != 0) {
            if (!c->failures)
                c->first_rc = rc;
            c->failures++;
        }
    }
    return NULL;
}

/* Read-modify-write transactions from 8 threads: no lost update, no BUSY. */
DB_TEST(concurrent_transactions_serialize)
{
    enum { NT = 8, PER = 25 };
    tern_db *db = open_default();
    struct incr c[NT];
    pthread_t th[NT];

    exec_ok(db, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)");
    exec_ok(db, "INSERT INTO counter VALUES (1, 0)");
    for (int i = 0; i < NT; i++) {
        c[i] = (struct incr){ db, PER, 0, 0 };
        pthread_create(&th[i], NULL, incr_thread, &c[i]);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++)
        cr_assert_eq(c[i].failures, 0, "thread %d: %d failures, first %s", i, c[i].failures,
                     tern_strerror(c[i].first_rc));
    cr_assert_eq(scalar(db, "SELECT n FROM counter WHERE id = 1", TERN_DB_NOARGS), NT * PER);
}

/* ------------------------------------------------------------------------ */
/* The pool: exhaustion, timeouts, unreachable servers                        */

struct holder {
    tern_db *db;
    int ms;
    volatile int holding;
    int rc;
};

static int tx_hold(tern_req *req, tern_db *tx, void *arg)
{
    struct holder *h = arg;
    int rc = tern_db_exec(req, tx, "INSERT INTO users (name, age) VALUES ('holder', 1)", TERN_DB_NOARGS,
                          NULL);

    h->holding = 1;
    tern_sleep(h->ms);
    return rc;
}

static void *holder_thread(void *arg)
{
    struct holder *h = arg;

    h->rc = tern_db_tx(NULL, h->db, tx_hold, h);
    h->holding = 2;
    return NULL;
}

DB_TEST(pool_exhaustion_times_out_unavailable)
{
    tern_db_config cfg = config();
    struct holder h = { 0 };
    tern_db_stats st;
    pthread_t th;
    int64_t t0, dt;
    int rc;

    cfg.max_conns = 1;
    cfg.acquire_timeout_ms = 200;
    T.db = open_cfg(&cfg);
    make_users(T.db);

    h.db = T.db;
    h.ms = 1200;
    pthread_create(&th, NULL, holder_thread, &h);
    while (h.holding == 0)
        tern_sleep(5);
    /* The only connection (PostgreSQL) or the writer (SQLite) is taken. */
    t0 = tern_now_ms();
    rc = tern_db_exec(NULL, T.db, "INSERT INTO users (name, age) VALUES ('late', 1)", TERN_DB_NOARGS,
                      NULL);
    dt = tern_now_ms() - t0;
    cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
    cr_assert_eq(tern_db_status(rc), 503);
    cr_assert(dt >= 150 && dt < 900, "gave up after %lld ms, acquire_timeout_ms is 200", (long long)dt);
    tern_db_stats_get(T.db, &st);
    cr_assert_geq(st.timeouts, 1);
    if (T.kind == K_FILE) {
        /* SQLite: readers are not blocked by the writer (a memory database
         * has only the writer). */
        t0 = tern_now_ms();
        cr_assert_eq(count(T.db, "users"), 0, "the holder's insert is not committed yet");
        cr_assert_lt(tern_now_ms() - t0, 150, "a read waited for the writer");
    }
    pthread_join(th, NULL);
    cr_assert_eq(h.rc, 0, "holder: %s", tern_strerror(h.rc));
    /* Recovered. */
    EXEC_OK(T.db, "INSERT INTO users (name, age) VALUES ('after', 1)", TERN_DB_NOARGS);
    cr_assert_eq(count(T.db, "users"), 2);
    tern_db_stats_get(T.db, &st);
    cr_assert_eq(st.in_use, 0);
    cr_assert_eq(st.waiting, 0);
}

struct waiter {
    tern_db *db;
    int rc;
};

static void *waiter_thread(void *arg)
{
    struct waiter *w = arg;

    w->rc = tern_db_exec(NULL, w->db, "INSERT INTO users (name, age) VALUES ('waiter', 1)",
                         TERN_DB_NOARGS, NULL);
    return NULL;
}

/* A full wait queue refuses at once instead of queueing more. */
DB_TEST_FILE_PG(pool_queue_full_rejects_at_once)
{
    tern_db_config cfg = config();
    struct holder h = { 0 };
    struct waiter w = { 0 };
    tern_db_stats st;
    pthread_t th, tw;
    int64_t t0, dt;
    int rc;

    cfg.max_conns = 1;
    cfg.max_waiters = 1;
    cfg.acquire_timeout_ms = 3000;
    T.db = open_cfg(&cfg);
    make_users(T.db);

    h.db = T.db;
    h.ms = 800;
    pthread_create(&th, NULL, holder_thread, &h);
    while (h.holding == 0)
        tern_sleep(5);
    w.db = T.db;
    pthread_create(&tw, NULL, waiter_thread, &w);
    t0 = tern_now_ms();
    do {
        tern_sleep(5);
        tern_db_stats_get(T.db, &st);
    } while (st.waiting < 1 && tern_now_ms() - t0 < 2000);
    cr_assert_eq(st.waiting, 1, "the waiter never queued");

    t0 = tern_now_ms();
    rc = tern_db_exec(NULL, T.db, "INSERT INTO users (name, age) VALUES ('third', 1)", TERN_DB_NOARGS,
                      NULL);
    dt = tern_now_ms() - t0;
    cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
    cr_assert_lt(dt, 100, "a full queue should refuse at once, took %lld ms", (long long)dt);
    tern_db_stats_get(T.db, &st);
    cr_assert_geq(st.rejected, 1);
    pthread_join(th, NULL);
    pthread_join(tw, NULL);
    cr_assert_eq(h.rc, 0, "holder: %s", tern_strerror(h.rc));
    cr_assert_eq(w.rc, 0, "the queued waiter got the connection: %s", tern_strerror(w.rc));
    cr_assert_eq(count(T.db, "users"), 2);
}

PG_TEST(statement_timeout_is_unavailable)
{
    tern_db_config cfg = config();
    int64_t t0, dt;
    int rc;

    cfg.statement_timeout_ms = 200;
    T.db = open_cfg(&cfg);
    t0 = tern_now_ms();
    rc = tern_db_exec(NULL, T.db, "SELECT pg_sleep(3)", TERN_DB_NOARGS, NULL);
    dt = tern_now_ms() - t0;
    cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
    cr_assert_lt(dt, 1500, "took %lld ms", (long long)dt);
    cr_assert_eq(scalar(T.db, "SELECT 5", TERN_DB_NOARGS), 5, "usable after a timeout");
    /* Short statements are unaffected. */
    EXEC_OK(T.db, "SELECT pg_sleep(0.01)", TERN_DB_NOARGS);
}

/*
 * The server ends the session between a statement and its commit (a fast
 * shutdown caught it there; here a deferred trigger terminates its own
 * backend at commit): the statement's rows arrive, then a FATAL stands
 * where the commit's answer was due.  Nothing was committed, and the caller
 * must hear "unavailable" (503), not a protocol error (500).  The next
 * statement runs on a new connection.
 */
PG_TEST(session_ended_at_commit_is_unavailable)
{
    int rc;

    T.db = open_default();
    exec_ok(T.db, "CREATE TABLE doomed (x int)");
    exec_ok(T.db, "CREATE FUNCTION doomed_die() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$");
    exec_ok(T.db, "CREATE CONSTRAINT TRIGGER doomed_die AFTER INSERT ON doomed "
                  "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION doomed_die()");
    rc = tern_db_exec(NULL, T.db, "INSERT INTO doomed VALUES ($1) RETURNING x",
                      TERN_DB_ARGS(tern_db_int(1)), NULL);
    cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
    cr_assert_eq(count(T.db, "doomed"), 0, "the insert was committed");
    cr_assert_eq(scalar(T.db, "SELECT 5", TERN_DB_NOARGS), 5, "no usable connection after it");
}

Test(sqlite_file, statement_timeout_is_unavailable, .fini = teardown, .timeout = 60)
{
    tern_db_config cfg;
    int64_t t0, dt;
    int rc;

    prepare(K_FILE);
    cfg = config();
    cfg.statement_timeout_ms = 200;
    T.db = open_cfg(&cfg);
    t0 = tern_now_ms();
    /* Counting to 2e9 takes minutes. */
    rc = tern_db_exec(NULL, T.db,
                      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
                      "SELECT count(*) FROM c",
                      TERN_DB_NOARGS, NULL);
    dt = tern_now_ms() - t0;
    cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
    cr_assert_lt(dt, 1500, "took %lld ms", (long long)dt);
    cr_assert_eq(scalar(T.db, "SELECT 5", TERN_DB_NOARGS), 5, "usable after a timeout");
}

/* A loopback port that accepts TCP connections but never answers. */
static int silent_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 64), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    T.listen_fd = fd;
    return ntohs(a.sin_port);
}

/* A loopback port where nothing listens. */
static int closed_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

Test(pg_down, unreachable_server_is_unavailable_with_backoff, .fini = teardown, .timeout = 30)
{
    tern_db_config cfg;
    tern_db_stats st;
    tern_db *db = NULL;
    int64_t t0, first, second;
    int rc;

    snprintf(T.url, sizeof T.url, "postgres://postgres@127.0.0.1:%d/postgres", silent_port());
    tern_db_config_init(&cfg);
    cfg.url = T.url;
    cfg.connect_timeout_ms = 300;
    cfg.backoff_min_ms = 3000;
    cfg.backoff_max_ms = 3000;
    rc = tern_db_open(&cfg, &db);
    cr_assert_eq(rc, 0, "an unreachable database is not an open error: %s", tern_strerror(rc));
    T.db = db;

    t0 = tern_now_ms();
    rc = tern_db_exec(NULL, db, "SELECT 1", TERN_DB_NOARGS, NULL);
    first = tern_now_ms() - t0;
    cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
    cr_assert_lt(first, 1500, "the first attempt took %lld ms (connect_timeout_ms 300)", (long long)first);

    /* Within the backoff: refused at once, no new connect. */
    t0 = tern_now_ms();
    rc = tern_db_exec(NULL, db, "SELECT 1", TERN_DB_NOARGS, NULL);
    second = tern_now_ms() - t0;
    cr_assert_eq(rc, TERN_EUNAVAIL);
    cr_assert_lt(second, 100, "second attempt took %lld ms: no backoff", (long long)second);
    t0 = tern_now_ms();
    cr_assert_eq(tern_db_ready(db), 0);
    cr_assert_lt(tern_now_ms() - t0, 100, "tern_db_ready waited during the backoff");
    tern_db_stats_get(db, &st);
    cr_assert_eq(st.ready, 0);
    cr_assert_geq(st.connect_failures, 1);
    cr_assert_geq(st.rejected, 1);
    cr_assert_eq(st.in_use, 0);
}

Test(pg_down, refused_connection_is_unavailable_fast, .fini = teardown, .timeout = 30)
{
    tern_db *db = NULL;
    int64_t t0;
    int rc;

    snprintf(T.url, sizeof T.url, "postgres://postgres@127.0.0.1:%d/postgres", closed_port());
    rc = tern_db_open_url(T.url, &db);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    T.db = db;
    for (int i = 0; i < 5; i++) {
        t0 = tern_now_ms();
        rc = tern_db_exec(NULL, db, "SELECT 1", TERN_DB_NOARGS, NULL);
        cr_assert_eq(rc, TERN_EUNAVAIL, "%s", tern_strerror(rc));
        cr_assert_lt(tern_now_ms() - t0, 1000);
    }
    cr_assert_eq(tern_db_ready(db), 0);
    tern_db_stats st;
    tern_db_stats_get(db, &st);
    cr_assert_geq(st.connect_failures, 1);
}

/* ------------------------------------------------------------------------ */
/* Statement cache                                                            */

DB_TEST(statement_cache_eviction_and_schema_change)
{
    tern_db_config cfg = config();
    tern_db_rows *rs = NULL;
    static const char *sqls[] = {
        "SELECT $1 + 1 AS v", "SELECT $1 + 2 AS v", "SELECT $1 + 3 AS v",
        "SELECT $1 + 4 AS v", "SELECT $1 + 5 AS v", "SELECT $1 + 6 AS v",
    };

    cfg.stmt_cache = 2;
    cfg.max_conns = 1;
    T.db = open_cfg(&cfg);
    for (int round = 0; round < 5; round++)
        for (int k = 0; k < 6; k++)
            cr_assert_eq(scalar(T.db, sqls[k], TERN_DB_ARGS(tern_db_int(round * 10))), round * 10 + k + 1);
    if (T.kind == K_PG) {
        /* 30 prepares, 28 evictions: the evicted names were DEALLOCATEd in
         * batches of 8, so the session holds at most 2 cached + 8 queued
         * (+ this query's own). */
        int64_t n = scalar(T.db, "SELECT count(*) FROM pg_prepared_statements", TERN_DB_NOARGS);

        cr_assert_leq(n, 11, "%lld prepared statements left on the server", (long long)n);
    }

    /* A cached SELECT * survives a change of the table's columns. */
    exec_ok(T.db, "CREATE TABLE t (a INTEGER)");
    exec_ok(T.db, "INSERT INTO t VALUES (1)");
    cr_assert_eq(tern_db_query(NULL, T.db, "SELECT * FROM t", TERN_DB_NOARGS, &rs), 0);
    cr_assert_eq(tern_db_ncols(rs), 1);
    tern_db_rows_free(rs);
    exec_ok(T.db, "ALTER TABLE t ADD COLUMN b INTEGER DEFAULT 2");
    rs = NULL;
    int rc = tern_db_query(NULL, T.db, "SELECT * FROM t", TERN_DB_NOARGS, &rs);
    cr_assert_eq(rc, 0, "SELECT * after ALTER TABLE: %s", tern_strerror(rc));
    cr_assert_eq(tern_db_ncols(rs), 2);
    cr_assert_eq(tern_db_get_int(rs, 0, "b"), 2);
    tern_db_rows_free(rs);
}

PG_TEST(batch_reprepares_a_statement_the_server_dropped)
{
    tern_db_config cfg = config();
    tern_db_val args[3] = { tern_db_int(1), tern_db_int(2), tern_db_int(3) };
    tern_db_rows *out[3];

    cfg.max_conns = 1; /* DEALLOCATE ALL hits the connection the batch uses */
    T.db = open_cfg(&cfg);
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(tern_db_query_batch(NULL, T.db, "SELECT $1::int * 10 AS v", args, 1, 3, out),
                     0, "round %d", round);
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(tern_db_get_int(out[i], 0, "v"), (i + 1) * 10);
            tern_db_rows_free(out[i]);
        }
        exec_ok(T.db, "DEALLOCATE ALL"); /* the cached statement is gone on the server */
    }
}

/* ------------------------------------------------------------------------ */
/* Migrations                                                                 */

static const tern_db_migration migs_v1[] = {
    { "0001_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)" },
    { "0002_seed", "INSERT INTO notes (id, body) VALUES (1, 'first'); "
                   "INSERT INTO notes (id, body) VALUES (2, 'second')" },
    { 0 },
};
static const tern_db_migration migs_v2[] = {
    { "0001_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)" },
    { "0002_seed", "INSERT INTO notes (id, body) VALUES (1, 'first'); "
                   "INSERT INTO notes (id, body) VALUES (2, 'second')" },
    { "0003_tags", "CREATE TABLE tags (note_id INTEGER REFERENCES notes(id), tag TEXT)" },
    { 0 },
};
static const tern_db_migration migs_changed[] = {
    { "0001_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)" },
    { 0 },
};
static const tern_db_migration migs_broken[] = {
    { "0001_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)" },
    { "0002_seed", "INSERT INTO notes (id, body) VALUES (1, 'first'); "
                   "INSERT INTO notes (id, body) VALUES (2, 'second')" },
    { "0003_bad", "CREATE TABLE half (x INTEGER); THIS IS NOT SQL" },
    { 0 },
};

DB_TEST(migrations_apply_once)
{
    tern_db *db = open_default();
    int rc;

    rc = tern_db_migrate(db, migs_v1);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert_eq(count(db, "notes"), 2);
    cr_assert_eq(count(db, "tern_migrations"), 2);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM tern_migrations WHERE name = $1",
                        TERN_DB_ARGS(tern_db_cstr("0002_seed"))),
                 1);

    /* Again: a no-op (the seed would fail on its primary key). */
    rc = tern_db_migrate(db, migs_v1);
    cr_assert_eq(rc, 0, "rerun: %s", tern_strerror(rc));
    cr_assert_eq(count(db, "notes"), 2);
    cr_assert_eq(count(db, "tern_migrations"), 2);

    /* A new one: only it runs. */
    rc = tern_db_migrate(db, migs_v2);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert_eq(count(db, "tern_migrations"), 3);
    cr_assert_eq(count(db, "tags"), 0);

    /* An applied migration whose SQL changed. */
    rc = tern_db_migrate(db, migs_changed);
    cr_assert_eq(rc, TERN_ECONFLICT, "changed SQL: %s", tern_strerror(rc));
    cr_assert_eq(count(db, "tern_migrations"), 3);

    /* Empty list. */
    static const tern_db_migration none[] = { { 0 } };
    cr_assert_eq(tern_db_migrate(db, none), 0);
}

DB_TEST(failing_migration_is_not_recorded)
{
    tern_db *db = open_default();
    tern_db_rows *rs = NULL;
    int rc;

    rc = tern_db_migrate(db, migs_broken);
    cr_assert_neq(rc, 0, "a broken migration must fail");
    cr_assert_eq(count(db, "tern_migrations"), 2, "the two good ones stay applied");
    cr_assert_eq(count(db, "notes"), 2);
    rc = tern_db_query(NULL, db, "SELECT * FROM half", TERN_DB_NOARGS, &rs);
    cr_assert_neq(rc, 0, "the broken migration's first statement was kept");
    tern_db_rows_free(rs);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM tern_migrations WHERE name = $1",
                        TERN_DB_ARGS(tern_db_cstr("0003_bad"))),
                 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void make_migration_dir(void)
{
    snprintf(T.dir, sizeof T.dir, "/tmp/tern-migs-XXXXXX");
    cr_assert_not_null(mkdtemp(T.dir));
    /* Written out of order; 0002 needs 0001, 0010 needs both. */
    write_file(T.dir, "0010_more.sql", "INSERT INTO notes (id, body) VALUES (3, 'third');\n");
    write_file(T.dir, "0002_seed.sql",
               "-- seed\nINSERT INTO notes (id, body) VALUES (1, 'first');\n"
               "INSERT INTO notes (id, body) VALUES (2, 'second');\n");
    write_file(T.dir, "0001_notes.sql",
               "CREATE TABLE notes (\n  id INTEGER PRIMARY KEY,\n  body TEXT NOT NULL\n);\n");
    write_file(T.dir, "README.txt", "not a migration; DROP TABLE notes;");
    write_file(T.dir, "0003_skip.sql.bak", "DROP TABLE notes;");
}

DB_TEST(migrate_dir_in_name_order)
{
    tern_db *db = open_default();
    int rc;

    make_migration_dir();
    rc = tern_db_migrate_dir(db, T.dir);
    cr_assert_eq(rc, 0, "%s", tern_strerror(rc));
    cr_assert_eq(count(db, "notes"), 3);
    cr_assert_eq(count(db, "tern_migrations"), 3);
    rc = tern_db_migrate_dir(db, T.dir);
    cr_assert_eq(rc, 0, "rerun: %s", tern_strerror(rc));
    cr_assert_eq(count(db, "notes"), 3);
    cr_assert_neq(tern_db_migrate_dir(db, "/nonexistent/tern-migrations"), 0);
}

DB_TEST(config_migrations_run_on_first_connect)
{
    tern_db_config cfg = config();

    cfg.migrations = migs_v1;
    T.db = open_cfg(&cfg);
    cr_assert_eq(tern_db_ready(T.db), 1);
    cr_assert_eq(count(T.db, "notes"), 2);
    cr_assert_eq(count(T.db, "tern_migrations"), 2);
}

DB_TEST(config_migrations_dir_run_on_first_connect)
{
    tern_db_config cfg = config();

    make_migration_dir();
    cfg.migrations_dir = T.dir;
    T.db = open_cfg(&cfg);
    cr_assert_eq(count(T.db, "notes"), 3, "a query before tern_db_ready sees the migrated schema");
    cr_assert_eq(tern_db_ready(T.db), 1);
}

/* Counts rows with the native client, not through tern. */
static int64_t raw_count(const char *sql)
{
    int64_t n = -1;

    if (T.kind == K_PG) {
        PGconn *c = PQconnectdb(T.url);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = atoll(PQgetvalue(r, 0, 0));
        else
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *d;
        sqlite3_stmt *st;
        if (sqlite3_open(T.path, &d) == SQLITE_OK && sqlite3_prepare_v2(d, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        } else {
            fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(d));
        }
        sqlite3_close(d);
    }
    return n;
}

static const tern_db_migration migs_count[] = {
    { "0001_runs", "CREATE TABLE runs (note TEXT)" },
    { "0002_once", "INSERT INTO runs (note) VALUES ('applied')" },
    { "0003_twice", "INSERT INTO runs (note) VALUES ('applied again')" },
    { 0 },
};

struct starter {
    const char *url;
    pthread_barrier_t *go;
    tern_db *db;
    int rc;
};

static void *starter_thread(void *arg)
{
    struct starter *s = arg;
    tern_db_config cfg;

    tern_db_config_init(&cfg);
    cfg.url = s->url;
    cfg.migrations = migs_count;
    cfg.acquire_timeout_ms = 10000;
    s->rc = tern_db_open(&cfg, &s->db);
    pthread_barrier_wait(s->go);
    if (s->rc == 0)
        s->rc = tern_db_exec(NULL, s->db, "SELECT count(*) FROM runs", TERN_DB_NOARGS, NULL);
    return NULL;
}

/* Four pools start at once on one fresh database: each migration runs once. */
DB_TEST_FILE_PG(migrations_once_under_concurrent_starts)
{
    enum { N = 4 };
    struct starter s[N];
    pthread_t th[N];
    pthread_barrier_t go;

    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        s[i] = (struct starter){ T.url, &go, NULL, -1 };
        pthread_create(&th[i], NULL, starter_thread, &s[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (s[i].db)
            keep(s[i].db);
    }
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N; i++)
        cr_assert_eq(s[i].rc, 0, "starter %d: %s", i, tern_strerror(s[i].rc));
    cr_assert_eq(raw_count("SELECT count(*) FROM runs"), 2, "a migration ran twice");
    cr_assert_eq(raw_count("SELECT count(*) FROM tern_migrations"), 3);
}

/* ------------------------------------------------------------------------ */
/* Batches (pipelined on PostgreSQL)                                          */

DB_TEST(batch_reads_each_set_in_order)
{
    tern_db *db = open_default();
    tern_db_val args[25];
    tern_db_rows *out[25];
    int64_t ids[25];

    make_users(db);
    for (int i = 0; i < 25; i++) {
        char name[16];

        snprintf(name, sizeof name, "b%02d", i);
        ids[i] = add_user(db, name, i);
    }
    /* Out of order, with a repeat and a miss. */
    for (int i = 0; i < 25; i++)
        args[i] = tern_db_int(i == 24 ? 999999 : ids[(i * 7) % 24]);
    cr_assert_eq(tern_db_query_batch(NULL, db, "SELECT id, name, age FROM users WHERE id = $1",
                                     args, 1, 25, out),
                 0);
    for (int i = 0; i < 25; i++) {
        cr_assert_not_null(out[i]);
        if (i == 24) {
            cr_assert_eq(tern_db_nrows(out[i]), 0, "the missing id has no row");
        } else {
            cr_assert_eq(tern_db_nrows(out[i]), 1);
            cr_assert_eq(tern_db_get_int(out[i], 0, "id"), ids[(i * 7) % 24], "set %d", i);
            cr_assert_eq(tern_db_get_int(out[i], 0, "age"), (i * 7) % 24);
        }
        tern_db_rows_free(out[i]);
    }
    /* Again: the statement is now cached, the pipeline path from the start. */
    cr_assert_eq(tern_db_query_batch(NULL, db, "SELECT id, name, age FROM users WHERE id = $1",
                                     args, 1, 3, out),
                 0);
    cr_assert_eq(tern_db_get_int(out[2], 0, "id"), ids[14]);
    for (int i = 0; i < 3; i++)
        tern_db_rows_free(out[i]);
}

DB_TEST(batch_writes_and_first_error)
{
    tern_db *db = open_default();
    tern_db_val args[8];
    tern_db_rows *out[4];

    make_users(db);
    args[0] = tern_db_cstr("w1");
    args[1] = tern_db_int(1);
    args[2] = tern_db_cstr("w2");
    args[3] = tern_db_int(2);
    cr_assert_eq(tern_db_query_batch(NULL, db,
                                     "INSERT INTO users (name, age) VALUES ($1, $2) RETURNING id",
                                     args, 2, 2, out),
                 0);
    cr_assert_eq(tern_db_nrows(out[1]), 1);
    tern_db_rows_free(out[0]);
    tern_db_rows_free(out[1]);
    cr_assert_eq(count(db, "users"), 2);
    /* The second set breaks the CHECK: the batch fails with its code, no rows returned. */
    args[0] = tern_db_cstr("w3");
    args[1] = tern_db_int(3);
    args[2] = tern_db_cstr("w4");
    args[3] = tern_db_int(-1);
    args[4] = tern_db_cstr("w5");
    args[5] = tern_db_int(5);
    cr_assert_eq(tern_db_query_batch(NULL, db,
                                     "INSERT INTO users (name, age) VALUES ($1, $2) RETURNING id",
                                     args, 2, 3, out),
                 TERN_ECONSTRAINT);
    for (int i = 0; i < 3; i++)
        cr_assert_null(out[i]);
    /* PostgreSQL: one implicit transaction, the set before the error is
     * undone; SQLite: each set commits on its own (db.h says so). */
    cr_assert_eq(count(db, "users"), T.kind == K_PG ? 2 : 3);
    /* The connection is still good. */
    cr_assert_eq(tern_db_query_batch(NULL, db, "SELECT count(*) AS n FROM users", NULL, 0, 2, out),
                 0);
    cr_assert_geq(tern_db_get_int(out[1], 0, "n"), 2);
    tern_db_rows_free(out[0]);
    tern_db_rows_free(out[1]);
    /* Wrong parameter count: EINVAL, nothing run. */
    cr_assert_eq(tern_db_query_batch(NULL, db, "SELECT $1 AS a, $2 AS b", args, 1, 2, out),
                 TERN_EINVAL);
}
