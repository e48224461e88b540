/*
 * test_db_http.c - the db layer under HTTP, against tern-dbapp (dbapp.c) on
 * SQLite (suite db_sqlite) and on PostgreSQL (suite db_pg):
 *
 *   - CRUD, and each db error as its status: 404, 409 (unique, foreign key),
 *     422 (not null, check), 500 (a broken statement), with problem+json
 *     bodies that never carry SQL text or driver messages;
 *   - pool exhaustion: 503 with Retry-After, then recovery;
 *   - 50 concurrent writers: every insert 201, none lost;
 *   - four servers starting at once on one fresh database: each migration
 *     runs once;
 *   - PostgreSQL stopped and restarted under load (a private instance from
 *     scripts/pg-test.sh): fast 503s while down, 2xx again after, the server
 *     alive throughout and exiting 0 (and, under ASan, without leaks);
 *   - statement timeout and an unreachable database: 503.
 *
 * PostgreSQL tests need TERN_TEST_PG_URL (scripts/run-tests.sh exports it);
 * without it they fail.  Each test gets a database (or SQLite file) of its own.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "harness.h"
#include "pgadmin.h"

#define TH_DBAPP "TERN_DBAPP"

enum kind { K_SQLITE, K_PG };

static struct {
    int kind;
    char url[512];
    char path[256];
    char pgname[64];
    char state[256];   /* private PostgreSQL instance, if any */
    th_server srv[4];
} T;

/* ------------------------------------------------------------------------ */
/* Databases                                                                  */


static void prepare(int kind)
{
    static unsigned seq;

    memset(&T, 0, sizeof T);
    T.kind = kind;
    if (kind == K_SQLITE) {
        snprintf(T.path, sizeof T.path, "/tmp/tern-dbhttp-%d-%u.db", (int)getpid(), seq++);
        snprintf(T.url, sizeof T.url, "sqlite:%s", T.path);
    } else {
        char sql[128];

        snprintf(T.pgname, sizeof T.pgname, "tern_h_%d_%u", (int)getpid(), seq++);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", T.pgname);
        pg_admin(sql);
        pg_url_for(T.pgname, T.url, sizeof T.url);
    }
}

static void teardown(void)
{
    th_cleanup_all();
    if (T.path[0]) {
        static const char *sfx[] = { "", "-wal", "-shm", "-journal" };
        char p[300];
        for (unsigned i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s%s", T.path, sfx[i]);
            unlink(p);
        }
    }
    if (T.pgname[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", T.pgname);
        pg_admin(sql);
    }
    if (T.state[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "sh '%s' stop '%s'", getenv("TERN_TEST_PG_SCRIPT"), T.state);
        if (system(cmd) != 0)
            fprintf(stderr, "could not stop the private PostgreSQL (%s)\n", T.state);
    }
}

/* One integer from the database, read with the native client. */
static long raw_scalar(const char *sql)
{
    long n = -1;

    if (T.kind == K_PG) {
        PGconn *c = PQconnectdb(T.url);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = atol(PQgetvalue(r, 0, 0));
        else
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *d = NULL;
        sqlite3_stmt *st;
        if (sqlite3_open(T.path, &d) == SQLITE_OK &&
            sqlite3_prepare_v2(d, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                n = (long)sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        } else {
            fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(d));
        }
        sqlite3_close(d);
    }
    return n;
}

/* Starts tern-dbapp number i on T.url with extra flags (NULL-terminated). */
#define START(i, ...)                                                                              \
    cr_assert_eq(th_start(&T.srv[i], TH_DBAPP, "--db", T.url, ##__VA_ARGS__, NULL), 0,           \
                 "tern-dbapp did not start")

#define STOP_OK(i)                                                                                 \
    cr_assert_eq(th_stop(&T.srv[i], 5000), 0, "tern-dbapp did not exit 0 on SIGTERM")

/* ------------------------------------------------------------------------ */
/* HTTP                                                                       */

/* One request on a new connection; returns the th_read code. */
static int http(int port, const char *method, const char *path, const char *body, th_resp *r,
                int timeout_ms)
{
    th_conn c;
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int n, rc;

    memset(r, 0, sizeof *r);
    if (th_connect(&c, port) != 0)
        return TH_CLOSED;
    n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                 method, path, blen);
    rc = th_send(&c, head, (size_t)n);
    if (rc == 0 && blen)
        rc = th_send(&c, body, blen);
    rc = rc == 0 ? th_read_final(&c, r, timeout_ms, 0, NULL) : TH_CLOSED;
    th_close(&c);
    return rc;
}

static void must(int port, const char *method, const char *path, const char *body, th_resp *r)
{
    int rc = http(port, method, path, body, r, TH_TIMEOUT_MS);

    TH_ASSERT_OK(rc, path);
}

/* What a client must never see in an error body. */
static void assert_no_leak(const th_resp *r)
{
    static const char *bad[] = {
        "SELECT", "INSERT", "SELEC ", "FROM", "items", "tags", "secret_column", "ERROR",
        "FATAL", "sqlite", "SQLITE", "SQLSTATE", "duplicate key", "violates unique",
        "violates foreign", "violates check", "null value", "UNIQUE constraint",
        "NOT NULL constraint", "CHECK constraint", "FOREIGN KEY", "syntax", "Key (", "23505",
        "pg_sleep", "canceling statement", "terminating connection", "shutting down",
        "Connection refused", "could not connect", "server closed", "libpq", "postgres",
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(r->body == NULL || strstr(r->body, bad[i]) == NULL,
                  "status %d body leaks '%s': %s", r->status, bad[i], r->body);
    for (unsigned i = 0; i < r->nh; i++)
        cr_assert(strstr(r->h[i].value, "SELECT") == NULL && strstr(r->h[i].value, "sqlite") == NULL,
                  "header %s leaks: %s", r->h[i].name, r->h[i].value);
}

static void assert_503(const th_resp *r)
{
    const char *ra = th_hdr(r, "Retry-After");

    TH_ASSERT_PROBLEM(r, 503);
    cr_assert(ra != NULL && atoi(ra) >= 1, "503 without a Retry-After of at least 1 s: %s", r->head);
    assert_no_leak(r);
}

static void expect_problem(int port, const char *method, const char *path, const char *body, int status)
{
    th_resp r;

    must(port, method, path, body, &r);
    TH_ASSERT_PROBLEM(&r, status);
    assert_no_leak(&r);
    th_resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* CRUD and error statuses                                                    */

static void crud_and_errors(void)
{
    static const char evil[] = "x'); DROP TABLE items; --";
    char path[64], s[256];
    th_resp r;
    long id = 0, n = 0;
    int port;

    START(0);
    port = T.srv[0].port;

    must(port, "POST", "/items?qty=3", "apple", &r);
    TH_ASSERT_STATUS(&r, 201);
    cr_assert_eq(th_json_int(r.body, "id", &id), 0, "%s", r.body);
    cr_assert_eq(th_json_str(r.body, "name", s, sizeof s), 0);
    cr_assert_str_eq(s, "apple");
    th_resp_free(&r);

    snprintf(path, sizeof path, "/items/%ld", id);
    must(port, "GET", path, NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert(th_json_int(r.body, "qty", &n) == 0 && n == 3, "%s", r.body);
    th_resp_free(&r);

    /* Hostile text is stored verbatim; the table survives. */
    must(port, "POST", "/items", evil, &r);
    TH_ASSERT_STATUS(&r, 201);
    cr_assert_eq(th_json_int(r.body, "id", &id), 0);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/items/%ld", id);
    must(port, "GET", path, NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(th_json_str(r.body, "name", s, sizeof s), 0);
    cr_assert_str_eq(s, evil);
    th_resp_free(&r);

    expect_problem(port, "GET", "/items/999999", NULL, 404);
    expect_problem(port, "POST", "/items", "apple", 409);          /* unique */
    expect_problem(port, "POST", "/items/999999/tags", "red", 409); /* foreign key */
    expect_problem(port, "POST", "/items", "", 422);                /* not null */
    expect_problem(port, "POST", "/items?qty=-1", "pear", 422);     /* check */
    expect_problem(port, "GET", "/bad", NULL, 500);                 /* syntax error */

    snprintf(path, sizeof path, "/items/%ld/tags", id);
    must(port, "POST", path, "red", &r);
    TH_ASSERT_STATUS(&r, 201);
    th_resp_free(&r);

    must(port, "GET", "/count", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert(th_json_int(r.body, "n", &n) == 0 && n == 2, "%s", r.body);
    th_resp_free(&r);
    must(port, "GET", "/ready", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    STOP_OK(0);
}

Test(db_sqlite, crud_and_error_statuses, .fini = teardown, .timeout = 60)
{
    prepare(K_SQLITE);
    crud_and_errors();
}

Test(db_pg, crud_and_error_statuses, .fini = teardown, .timeout = 60)
{
    prepare(K_PG);
    crud_and_errors();
}

/* ------------------------------------------------------------------------ */
/* Pool exhaustion                                                            */

struct holdreq {
    int port;
    pthread_barrier_t *go;
    th_resp r;
    int rc;
    double ms;
};

static void *hold_thread(void *arg)
{
    struct holdreq *h = arg;
    double t0;

    pthread_barrier_wait(h->go);
    t0 = th_now_ms();
    h->rc = http(h->port, "GET", "/hold/1500", NULL, &h->r, 5000);
    h->ms = th_now_ms() - t0;
    return NULL;
}

static void pool_exhaustion(void)
{
    enum { N = 6 };
    struct holdreq h[N];
    pthread_t th[N];
    pthread_barrier_t go;
    th_resp r;
    int ok = 0, unavailable = 0;
    int port;

    START(0, "--pool", "2", "--acquire-ms", "300", "--workers", "2");
    port = T.srv[0].port;
    /* Warm up: migrations done, a connection open. */
    must(port, "GET", "/count", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);

    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].port = port;
        h[i].go = &go;
        pthread_create(&th[i], NULL, hold_thread, &h[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N; i++) {
        TH_ASSERT_OK(h[i].rc, "/hold");
        if (h[i].r.status == 200) {
            ok++;
        } else {
            assert_503(&h[i].r);
            cr_assert_lt(h[i].ms, 1200, "a 503 took %.0f ms (acquire timeout 300 ms)", h[i].ms);
            unavailable++;
        }
        th_resp_free(&h[i].r);
    }
    cr_assert_geq(ok, 1, "no request got the connection");
    cr_assert_geq(unavailable, 1, "the pool of %s never ran out", T.kind == K_PG ? "2" : "1 writer");
    cr_assert_leq(ok, T.kind == K_PG ? 2 : 3, "%d holders with 2 connections", ok);

    /* Recovered. */
    must(port, "GET", "/count", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    must(port, "GET", "/hold/10", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    STOP_OK(0);
}

Test(db_sqlite, pool_exhaustion_503_then_recovery, .fini = teardown, .timeout = 60)
{
    prepare(K_SQLITE);
    pool_exhaustion();
}

Test(db_pg, pool_exhaustion_503_then_recovery, .fini = teardown, .timeout = 60)
{
    prepare(K_PG);
    pool_exhaustion();
}

/*
 * One request on the kept-alive connection *c, connected first when
 * *connected is 0.  A failed exchange, or a response with Connection: close,
 * closes it (the next call reconnects).  Returns TH_OK or the failure
 * (TH_CLOSED when the connect or the send failed); r is safe to free.
 */
static int keepalive(int port, th_conn *c, int *connected, const char *req, th_resp *r)
{
    int rc;

    memset(r, 0, sizeof *r);
    if (!*connected) {
        if (th_connect(c, port) != 0)
            return TH_CLOSED;
        *connected = 1;
    }
    rc = th_send_str(c, req);
    rc = rc == 0 ? th_read_final(c, r, 20000, 0, NULL) : TH_CLOSED;
    if (rc != TH_OK || th_hdr_has_token(r, "Connection", "close")) {
        th_close(c);
        *connected = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Concurrent writers                                                         */

struct writer {
    int port, id, n;
    int created, unavailable, other, errors, last_status;
    pthread_barrier_t *go;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    th_conn c;
    int connected = 0;

    pthread_barrier_wait(w->go);
    for (int i = 0; i < w->n; i++) {
        char req[256], name[32];
        th_resp r;
        int len;

        len = snprintf(name, sizeof name, "w%02d-%03d", w->id, i);
        snprintf(req, sizeof req, "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s",
                 len, name);
        if (keepalive(w->port, &c, &connected, req, &r) != TH_OK) {
            w->errors++;
            th_resp_free(&r);
            continue;
        }
        w->last_status = r.status;
        if (r.status == 201)
            w->created++;
        else if (r.status == 503)
            w->unavailable++;
        else
            w->other++;
        th_resp_free(&r);
    }
    if (connected)
        th_close(&c);
    return NULL;
}

static void concurrent_writers(void)
{
    enum { NW = 50, PER = 20 };
    struct writer w[NW];
    pthread_t th[NW];
    pthread_barrier_t go;
    th_resp r;
    long n = -1;

    /* A long acquire timeout: writers must queue, not fail. */
    START(0, "--pool", "4", "--acquire-ms", "20000", "--workers", "4");
    must(T.srv[0].port, "GET", "/ready", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);

    pthread_barrier_init(&go, NULL, NW);
    for (int i = 0; i < NW; i++) {
        w[i] = (struct writer){ .port = T.srv[0].port, .id = i, .n = PER, .go = &go };
        cr_assert_eq(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
    }
    for (int i = 0; i < NW; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < NW; i++) {
        cr_assert_eq(w[i].created, PER,
                     "writer %d: %d created, %d x 503, %d other (last status %d), %d I/O errors", i,
                     w[i].created, w[i].unavailable, w[i].other, w[i].last_status, w[i].errors);
    }
    must(T.srv[0].port, "GET", "/count", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert(th_json_int(r.body, "n", &n) == 0 && n == NW * PER, "count %ld, expected %d", n,
              NW * PER);
    th_resp_free(&r);
    STOP_OK(0);
    cr_assert_eq(raw_scalar("SELECT count(*) FROM items"), NW * PER, "rows on disk");
}

Test(db_sqlite, fifty_concurrent_writers_lose_nothing, .fini = teardown, .timeout = 120)
{
    prepare(K_SQLITE);
    concurrent_writers();
}

Test(db_pg, fifty_concurrent_writers_lose_nothing, .fini = teardown, .timeout = 120)
{
    prepare(K_PG);
    concurrent_writers();
}

/* ------------------------------------------------------------------------ */
/* Coalesced statements (PostgreSQL)                                          */

/*
 * One client thread of the mix: keep-alive requests whose outcomes differ
 * (created, duplicate, read, foreign key violation, syntax error), so that
 * statements sharing a round trip must still each get their own answer.
 */
struct mixer {
    int port, id, n;
    long dup_id;
    int created, wrong, io;
    char detail[200];
    pthread_barrier_t *go;
};

/* Request i of m into req; *want is the status it must get. */
static void mix_request(const struct mixer *m, int i, char *req, size_t cap, int *want)
{
    char name[32];
    int len;

    switch (i % 5) {
    case 0:
        snprintf(req, cap, "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ndup");
        *want = 409;
        break;
    case 1:
        len = snprintf(name, sizeof name, "m%02d-%03d", m->id, i);
        snprintf(req, cap, "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", len,
                 name);
        *want = 201;
        break;
    case 2:
        snprintf(req, cap, "GET /items/%ld HTTP/1.1\r\nHost: t\r\n\r\n", m->dup_id);
        *want = 200;
        break;
    case 3:
        snprintf(req, cap,
                 "POST /items/999999999/tags HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nt");
        *want = 409;
        break;
    default:
        snprintf(req, cap, "GET /bad HTTP/1.1\r\nHost: t\r\n\r\n");
        *want = 500;
        break;
    }
}

static void *mixer_thread(void *arg)
{
    struct mixer *m = arg;
    th_conn c;
    int connected = 0;

    pthread_barrier_wait(m->go);
    for (int i = 0; i < m->n; i++) {
        char req[256];
        th_resp r;
        int want;

        mix_request(m, i + m->id, req, sizeof req, &want);
        if (keepalive(m->port, &c, &connected, req, &r) != TH_OK) {
            m->io++;
            th_resp_free(&r);
            continue;
        }
        if (r.status != want || (want == 200 && strstr(r.body, "\"name\":\"dup\"") == NULL) ||
            (r.status >= 500 && strstr(r.body, "SELEC") != NULL)) {
            if (m->wrong++ == 0)
                snprintf(m->detail, sizeof m->detail, "request %d: want %d, got %d %.120s", i,
                         want, r.status, r.body);
        } else if (want == 201) {
            m->created++;
        }
        th_resp_free(&r);
    }
    if (connected)
        th_close(&c);
    return NULL;
}

/* Runs the mix on one worker with coalesce_max `coalesce`; returns the
 * statements the server reports as coalesced, and their groups in *groups. */
static long coalesced_mix(const char *coalesce, long *groups)
{
    enum { NM = 24, PER = 25 };
    struct mixer m[NM];
    pthread_t th[NM];
    pthread_barrier_t go;
    th_resp r;
    long dup_id = -1, n = -1, coalesced = -1, created = 0;

    START(0, "--pool", "2", "--acquire-ms", "20000", "--workers", "1", "--coalesce", coalesce);
    must(T.srv[0].port, "POST", "/items", "dup", &r);
    TH_ASSERT_STATUS(&r, 201);
    cr_assert_eq(th_json_int(r.body, "id", &dup_id), 0, "%s", r.body);
    th_resp_free(&r);

    pthread_barrier_init(&go, NULL, NM);
    for (int i = 0; i < NM; i++) {
        m[i] = (struct mixer){ .port = T.srv[0].port, .id = i, .n = PER, .dup_id = dup_id,
                               .go = &go };
        cr_assert_eq(pthread_create(&th[i], NULL, mixer_thread, &m[i]), 0);
    }
    for (int i = 0; i < NM; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < NM; i++) {
        cr_assert_eq(m[i].io, 0, "client %d: %d requests got no complete response", i, m[i].io);
        cr_assert_eq(m[i].wrong, 0, "client %d: %d wrong answers; first: %s", i, m[i].wrong,
                     m[i].detail);
        created += m[i].created;
    }
    must(T.srv[0].port, "GET", "/count", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert(th_json_int(r.body, "n", &n) == 0 && n == created + 1,
              "count %ld, expected %ld: a failing neighbour took a write with it", n, created + 1);
    th_resp_free(&r);
    must(T.srv[0].port, "GET", "/stats", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(th_json_int(r.body, "coalesced", &coalesced), 0, "%s", r.body);
    cr_assert_eq(th_json_int(r.body, "groups", groups), 0, "%s", r.body);
    th_resp_free(&r);
    STOP_OK(0);
    cr_assert_eq(raw_scalar("SELECT count(*) FROM items"), created + 1, "rows on disk");
    return coalesced;
}

Test(db_pg, coalesced_statements_keep_their_own_outcomes, .fini = teardown, .timeout = 120)
{
    long coalesced, groups;

    prepare(K_PG);
    coalesced = coalesced_mix("32", &groups);
    fprintf(stderr, "coalesced: %ld of 601 statements shared a round trip, in %ld groups\n",
            coalesced, groups);
    cr_assert_gt(coalesced, 0, "24 concurrent clients on one worker never shared a round trip");
    cr_assert_leq(coalesced, 32 * groups);
}

Test(db_pg, coalesce_max_bounds_a_group, .fini = teardown, .timeout = 120)
{
    long coalesced, groups;

    prepare(K_PG);
    coalesced = coalesced_mix("3", &groups);
    cr_assert_gt(coalesced, 0);
    cr_assert_geq(coalesced, 2 * groups, "a group has at least two statements");
    cr_assert_leq(coalesced, 3 * groups, "%ld statements in %ld groups of at most 3", coalesced,
                  groups);
}

/* Readers for the stale-statement test: GET /items/ID until told to stop. */
struct reader {
    int port, n, ok, wrong;
    long id;
};

static void *reader_thread(void *arg)
{
    struct reader *rd = arg;
    char path[64];

    snprintf(path, sizeof path, "/items/%ld", rd->id);
    for (int i = 0; i < rd->n; i++) {
        th_resp r;

        if (http(rd->port, "GET", path, NULL, &r, 20000) != TH_OK) {
            rd->wrong++;
            continue;
        }
        if (r.status == 200 && strstr(r.body, "\"name\":\"s\"") != NULL)
            rd->ok++;
        else
            rd->wrong++;
        th_resp_free(&r);
    }
    return NULL;
}

/*
 * DEALLOCATE ALL on the only connection makes every cached statement stale
 * while reads keep arriving in groups: the statement that meets "prepared
 * statement does not exist" inside a group, and every later one of that
 * group, must be run again on its own and answer as if nothing happened.
 */
Test(db_pg, coalesced_statements_survive_a_dropped_statement_cache, .fini = teardown,
     .timeout = 120)
{
    enum { NR = 12, PER = 20 };
    struct reader rd[NR];
    pthread_t th[NR];
    th_resp r;
    long id = -1, coalesced = -1;

    prepare(K_PG);
    START(0, "--pool", "1", "--acquire-ms", "20000", "--workers", "1");
    must(T.srv[0].port, "POST", "/items", "s", &r);
    TH_ASSERT_STATUS(&r, 201);
    cr_assert_eq(th_json_int(r.body, "id", &id), 0, "%s", r.body);
    th_resp_free(&r);
    for (int round = 0; round < 3; round++) {
        must(T.srv[0].port, "POST", "/discard", NULL, &r);
        TH_ASSERT_STATUS(&r, 204);
        th_resp_free(&r);
        for (int i = 0; i < NR; i++) {
            rd[i] = (struct reader){ .port = T.srv[0].port, .n = PER, .id = id };
            cr_assert_eq(pthread_create(&th[i], NULL, reader_thread, &rd[i]), 0);
        }
        for (int i = 0; i < NR; i++) {
            pthread_join(th[i], NULL);
            cr_assert_eq(rd[i].wrong, 0, "round %d reader %d: %d wrong answers", round, i,
                         rd[i].wrong);
            cr_assert_eq(rd[i].ok, PER);
        }
    }
    must(T.srv[0].port, "GET", "/stats", NULL, &r);
    cr_assert_eq(th_json_int(r.body, "coalesced", &coalesced), 0, "%s", r.body);
    th_resp_free(&r);
    cr_assert_gt(coalesced, 0, "the reads never shared a round trip");
    STOP_OK(0);
}

Test(db_pg, coalescing_off_with_coalesce_max_1, .fini = teardown, .timeout = 120)
{
    long groups;

    prepare(K_PG);
    cr_assert_eq(coalesced_mix("1", &groups), 0, "coalesce_max 1 still coalesced");
    cr_assert_eq(groups, 0);
}

/* ------------------------------------------------------------------------ */
/* Migrations under concurrent starts                                         */

struct prober {
    int port;
    pthread_barrier_t *go;
    int status;
};

static void *probe_thread(void *arg)
{
    struct prober *p = arg;
    th_resp r;

    pthread_barrier_wait(p->go);
    p->status = http(p->port, "GET", "/ready", NULL, &r, 15000) == TH_OK ? r.status : -1;
    th_resp_free(&r);
    return NULL;
}

static void concurrent_starts(void)
{
    enum { N = 4 };
    struct prober p[N];
    pthread_t th[N];
    pthread_barrier_t go;

    for (int i = 0; i < N; i++)
        cr_assert_eq(th_start(&T.srv[i], TH_DBAPP, "--db", T.url, "--workers", "1", "--acquire-ms",
                              "10000", NULL),
                     0);
    /* All four connect (and migrate) at the same moment. */
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        p[i] = (struct prober){ T.srv[i].port, &go, 0 };
        pthread_create(&th[i], NULL, probe_thread, &p[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N; i++) {
        if (p[i].status != 200)
            th_dump_log(&T.srv[i]);
        cr_assert_eq(p[i].status, 200, "server %d: /ready answered %d", i, p[i].status);
    }
    for (int i = 0; i < N; i++) {
        th_resp r;
        long n = -1;
        must(T.srv[i].port, "GET", "/runs", NULL, &r);
        TH_ASSERT_STATUS(&r, 200);
        cr_assert(th_json_int(r.body, "n", &n) == 0 && n == 1,
                  "server %d: the row-inserting migration ran %ld times", i, n);
        th_resp_free(&r);
    }
    for (int i = 0; i < N; i++)
        STOP_OK(i);
    cr_assert_eq(raw_scalar("SELECT count(*) FROM tern_migrations"), 3);
    cr_assert_eq(raw_scalar("SELECT count(DISTINCT name) FROM tern_migrations"), 3);
    cr_assert_eq(raw_scalar("SELECT count(*) FROM runs"), 1);
}

Test(db_sqlite, migrations_once_under_concurrent_starts, .fini = teardown, .timeout = 60)
{
    prepare(K_SQLITE);
    concurrent_starts();
}

Test(db_pg, migrations_once_under_concurrent_starts, .fini = teardown, .timeout = 60)
{
    prepare(K_PG);
    concurrent_starts();
}

/* ------------------------------------------------------------------------ */
/* PostgreSQL: statement timeout, unreachable server                          */

Test(db_pg, statement_timeout_503, .fini = teardown, .timeout = 60)
{
    th_resp r;
    double t0;

    prepare(K_PG);
    START(0, "--stmt-timeout-ms", "200");
    t0 = th_now_ms();
    must(T.srv[0].port, "GET", "/sleep/3000", NULL, &r);
    cr_assert_lt(th_now_ms() - t0, 1500, "the statement ran %.0f ms", th_now_ms() - t0);
    assert_503(&r);
    th_resp_free(&r);
    must(T.srv[0].port, "GET", "/sleep/10", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    STOP_OK(0);
}

/*
 * SIGTERM while one request holds the only connection (sleeping in a
 * transaction) and another waits for it in the pool with a long acquire
 * timeout: at the shutdown deadline both unwind (the sleep is canceled, the
 * waiter gets the connection or gives up), and the server exits 0 within
 * the deadline plus a little, without waiting out the 30 s acquire timeout.
 */
static void *hold_long(void *arg)
{
    th_resp *r = arg;

    http(T.srv[0].port, "GET", "/hold/20000", NULL, r, 15000);
    return NULL;
}

static void *count_once(void *arg)
{
    th_resp *r = arg;

    http(T.srv[0].port, "GET", "/count", NULL, r, 15000);
    return NULL;
}

static void shutdown_with_waiters(void)
{
    th_resp held, waited;
    pthread_t a, b;
    double t0;
    int rc;

    START(0, "--workers", "1", "--pool", "1", "--acquire-ms", "30000", "--shutdown-timeout",
          "300");
    must(T.srv[0].port, "GET", "/count", NULL, &held); /* connect and migrate */
    th_resp_free(&held);
    cr_assert_eq(pthread_create(&a, NULL, hold_long, &held), 0);
    th_sleep_ms(200);
    cr_assert_eq(pthread_create(&b, NULL, count_once, &waited), 0);
    th_sleep_ms(200);
    t0 = th_now_ms();
    th_signal(&T.srv[0], SIGTERM);
    rc = th_wait(&T.srv[0], 5000);
    cr_assert_eq(rc, 0, "tern-dbapp exited with %d", rc);
    cr_assert_lt(th_now_ms() - t0, 2500, "shutdown took %.0f ms", th_now_ms() - t0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    th_resp_free(&held);
    th_resp_free(&waited);
}

Test(db_sqlite, shutdown_with_pool_waiters, .fini = teardown, .timeout = 60)
{
    prepare(K_SQLITE);
    shutdown_with_waiters();
}

Test(db_pg, shutdown_with_pool_waiters, .fini = teardown, .timeout = 60)
{
    prepare(K_PG);
    shutdown_with_waiters();
}

/*
 * A request waiting on PostgreSQL does not delay other requests on the same
 * worker: one worker, a 600 ms pg_sleep in flight, and meanwhile quick
 * database requests on other connections answer in a few milliseconds.
 */
static void *slow_thread(void *arg)
{
    th_resp *r = arg;

    http(T.srv[0].port, "GET", "/sleep/600", NULL, r, 5000);
    return NULL;
}

Test(db_pg, waiting_query_does_not_block_the_worker, .fini = teardown, .timeout = 60)
{
    th_resp slow, r;
    pthread_t t;
    double t0, worst = 0;

    prepare(K_PG);
    START(0, "--workers", "1", "--pool", "4");
    must(T.srv[0].port, "GET", "/count", NULL, &r); /* warm: connect and migrate */
    th_resp_free(&r);
    t0 = th_now_ms();
    cr_assert_eq(pthread_create(&t, NULL, slow_thread, &slow), 0);
    th_sleep_ms(100); /* the slow statement is now waiting in PostgreSQL */
    for (int i = 0; i < 10; i++) {
        double q = th_now_ms();

        must(T.srv[0].port, "GET", "/count", NULL, &r);
        TH_ASSERT_STATUS(&r, 200);
        th_resp_free(&r);
        if (th_now_ms() - q > worst)
            worst = th_now_ms() - q;
    }
    cr_assert_lt(th_now_ms() - t0, 550, "the quick requests finished only after the slow one");
    pthread_join(t, NULL);
    TH_ASSERT_STATUS(&slow, 200);
    cr_assert_geq(th_now_ms() - t0, 600, "the slow request did not wait in the database");
    th_resp_free(&slow);
    cr_assert_lt(worst, 50, "a quick request took %.1f ms while a query waited", worst);
    STOP_OK(0);
}

Test(db_pg, unreachable_database_503_and_not_ready, .fini = teardown, .timeout = 60)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    th_resp r;
    double t0;

    memset(&T, 0, sizeof T);
    T.kind = K_PG;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* nothing listens there now */
    snprintf(T.url, sizeof T.url, "postgres://postgres@127.0.0.1:%d/postgres", ntohs(a.sin_port));

    START(0);
    for (int i = 0; i < 3; i++) {
        t0 = th_now_ms();
        must(T.srv[0].port, "POST", "/items", "x", &r);
        assert_503(&r);
        cr_assert_lt(th_now_ms() - t0, 1000);
        th_resp_free(&r);
    }
    must(T.srv[0].port, "GET", "/ready", NULL, &r);
    TH_ASSERT_STATUS(&r, 503);
    th_resp_free(&r);
    STOP_OK(0);
}

/* ------------------------------------------------------------------------ */
/* PostgreSQL stopped and restarted under load                                */

static int pg_script(const char *verb, char *out, size_t cap)
{
    const char *script = getenv("TERN_TEST_PG_SCRIPT");
    char cmd[800];
    FILE *f;
    int rc;

    cr_assert(script != NULL, "TERN_TEST_PG_SCRIPT is not set (run through meson test)");
    snprintf(cmd, sizeof cmd, "sh '%s' %s '%s'", script, verb, T.state);
    f = popen(cmd, "r");
    cr_assert_not_null(f);
    if (out) {
        out[0] = '\0';
        if (fgets(out, (int)cap, f) != NULL)
            out[strcspn(out, "\n")] = '\0';
    }
    while (fgetc(f) != EOF) {
    }
    rc = pclose(f);
    return rc;
}

enum { PH_UP, PH_DOWN, PH_BACK, PH_N };

static struct load {
    int port;
    volatile int phase, stop;
    pthread_mutex_t mu;
    int n[PH_N], created[PH_N], unavailable[PH_N], other[PH_N], io[PH_N];
    int other_status;
    char other_body[256]; /* the first wrong answer's body (its request id) */
    double max_503_ms;
    double first_back_ms; /* time of the first 201 after the restart */
    int bad_503;          /* 503s without Retry-After or not problem+json */
    int leaked;           /* error bodies with driver text */
    char leak[256];
} L;

static int leaks(const th_resp *r)
{
    static const char *bad[] = { "ERROR", "FATAL", "terminating", "shutting down", "refused",
                                 "could not", "server closed", "INSERT", "postgres" };
    for (unsigned i = 0; r->body && i < sizeof bad / sizeof bad[0]; i++)
        if (strstr(r->body, bad[i]))
            return 1;
    return 0;
}

static void *load_thread(void *arg)
{
    long me = (long)arg;

    for (long i = 0; !L.stop; i++) {
        char name[48];
        th_resp r;
        int ph = L.phase;
        double t0 = th_now_ms(), dt;
        int rc;

        snprintf(name, sizeof name, "load-%ld-%ld", me, i);
        rc = http(L.port, "POST", "/items", name, &r, 5000);
        dt = th_now_ms() - t0;
        /* A request still in flight when the stop began overlapped it: it
         * counts in the down phase, where a 503 is a right answer. */
        if (ph == PH_UP && L.phase != PH_UP)
            ph = PH_DOWN;
        pthread_mutex_lock(&L.mu);
        L.n[ph]++;
        if (rc != TH_OK) {
            L.io[ph]++;
        } else if (r.status == 201) {
            L.created[ph]++;
            if (ph == PH_BACK && L.first_back_ms == 0)
                L.first_back_ms = th_now_ms();
        } else if (r.status == 503) {
            const char *ct = th_hdr(&r, "Content-Type"), *ra = th_hdr(&r, "Retry-After");
            L.unavailable[ph]++;
            if (dt > L.max_503_ms)
                L.max_503_ms = dt;
            if (ra == NULL || ct == NULL || strncmp(ct, "application/problem+json", 24) != 0)
                L.bad_503++;
        } else {
            if (L.other[ph]++ == 0)
                snprintf(L.other_body, sizeof L.other_body, "%s", r.body ? r.body : "");
            L.other_status = r.status;
        }
        if (rc == TH_OK && r.status >= 400 && leaks(&r) && !L.leaked) {
            L.leaked = 1;
            snprintf(L.leak, sizeof L.leak, "%s", r.body);
        }
        pthread_mutex_unlock(&L.mu);
        int status = rc == TH_OK ? r.status : 0;
        th_resp_free(&r);
        if (status != 201)
            th_sleep_ms(10); /* load, not a flood */
    }
    return NULL;
}

/*
 * nt clients POST items to a server with `workers` workers while its private
 * PostgreSQL is stopped for 1.2 s and started again: 201 before, 503s (or
 * 201s) while down, service back by itself; no other status, no lost write.
 */
static long restart_under_load(int nt, const char *workers)
{
    long coalesced = -1;
    pthread_t th[32];
    char url[256];
    th_resp r;
    double t_resume;
    long n = -1;

    memset(&T, 0, sizeof T);
    T.kind = K_PG;
    snprintf(T.state, sizeof T.state, "/tmp/tern-pg-restart-%d.state", (int)getpid());
    cr_assert_eq(pg_script("start", url, sizeof url), 0, "could not start a private PostgreSQL");
    cr_assert(strncmp(url, "postgres://", 11) == 0, "pg-test.sh start printed '%s'", url);
    snprintf(T.url, sizeof T.url, "%s", url);

    cr_assert_leq(nt, 32);
    START(0, "--pool", "4", "--acquire-ms", "300", "--backoff-max-ms", "300", "--stmt-timeout-ms",
          "2000", "--workers", workers);
    must(T.srv[0].port, "GET", "/ready", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);

    memset(&L, 0, sizeof L);
    pthread_mutex_init(&L.mu, NULL);
    L.port = T.srv[0].port;
    L.phase = PH_UP;
    for (long i = 0; i < nt; i++)
        pthread_create(&th[i], NULL, load_thread, (void *)i);

    th_sleep_ms(400);
    L.phase = PH_DOWN;
    cr_assert_eq(pg_script("pause", NULL, 0), 0, "pg_ctl stop failed");
    th_sleep_ms(1200);
    L.phase = PH_BACK;
    t_resume = th_now_ms();
    cr_assert_eq(pg_script("resume", NULL, 0), 0, "pg_ctl start failed");
    for (int i = 0; i < 200 && L.first_back_ms == 0; i++)
        th_sleep_ms(50);
    th_sleep_ms(300);
    L.stop = 1;
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);

    fprintf(stderr,
            "restart: up %d/%d created; down %d x 503, %d created, %d other; back %d created, "
            "%d x 503 (first 201 %.0f ms after restart); slowest 503 %.0f ms\n",
            L.created[PH_UP], L.n[PH_UP], L.unavailable[PH_DOWN], L.created[PH_DOWN],
            L.other[PH_DOWN], L.created[PH_BACK], L.unavailable[PH_BACK],
            L.first_back_ms ? L.first_back_ms - t_resume : -1.0, L.max_503_ms);
    if (L.other[PH_UP] + L.other[PH_DOWN] + L.other[PH_BACK] > 0)
        th_dump_log(&T.srv[0]); /* the log names the driver error behind it */
    cr_assert_gt(L.created[PH_UP], 0, "no 201 before the stop");
    cr_assert_eq(L.created[PH_UP], L.n[PH_UP], "failures before the stop");
    cr_assert_gt(L.unavailable[PH_DOWN], 0, "no 503 while the database was down");
    for (int ph = 0; ph < PH_N; ph++) {
        cr_assert_eq(L.other[ph], 0, "phase %d: status %d (only 201 and 503 are right): %s", ph,
                     L.other_status, L.other_body);
        cr_assert_eq(L.io[ph], 0, "phase %d: %d requests got no complete response", ph, L.io[ph]);
    }
    cr_assert_eq(L.bad_503, 0, "503s without Retry-After or problem+json");
    cr_assert(!L.leaked, "an error body leaks driver text: %s", L.leak);
    cr_assert_lt(L.max_503_ms, 1500, "a 503 took %.0f ms", L.max_503_ms);
    cr_assert_gt(L.first_back_ms, 0, "no 201 within 10 s of the restart");
    cr_assert_gt(L.created[PH_BACK], 0);

    must(T.srv[0].port, "GET", "/ready", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    must(T.srv[0].port, "GET", "/count", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(th_json_int(r.body, "n", &n), 0, "%s", r.body);
    th_resp_free(&r);
    /* A 503 may still have committed (the answer was lost, not the write);
     * a 201 must have. */
    cr_assert_geq(n, L.created[PH_UP] + L.created[PH_DOWN] + L.created[PH_BACK],
                  "%ld rows for %d created", n,
                  L.created[PH_UP] + L.created[PH_DOWN] + L.created[PH_BACK]);
    must(T.srv[0].port, "GET", "/stats", NULL, &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(th_json_int(r.body, "coalesced", &coalesced), 0, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_wait(&T.srv[0], 0), -2, "tern-dbapp died");
    STOP_OK(0);
    return coalesced;
}

Test(db_pg, stopped_and_restarted_under_load, .fini = teardown, .timeout = 120)
{
    restart_under_load(4, "2");
}

/* The same with 16 clients on one worker: the statements go in coalesced
 * groups, so groups fail (and recover) as a whole. */
Test(db_pg, stopped_and_restarted_under_coalesced_load, .fini = teardown, .timeout = 120)
{
    long coalesced = restart_under_load(16, "1");

    cr_assert_gt(coalesced, 0, "16 clients on one worker never shared a round trip");
}
