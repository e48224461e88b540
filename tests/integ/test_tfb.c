/*
 * test_tfb.c - tern-tfb (bench/tfb) against what the TechEmpower verifier
 * checks (specs/tfb.md section 1): exact bodies, the Content-Type patterns,
 * Server and Date on every response, a Date that changes, and 16 pipelined
 * plaintext requests answered in one go.  The database tests (3.2-3.5) are
 * at the end: 503 without a database always, the rest with
 * TERN_TEST_PG_URL.
 */
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define REQ(path) "GET " path " HTTP/1.1\r\nHost: localhost\r\n\r\n"

static th_server srv;

static void start_tfb(void)
{
    cr_assert_eq(th_start(&srv, TH_TFB, "--workers", "2", NULL), 0, "tern-tfb did not start");
}

/* Stops the suite's server; it must exit 0 on SIGTERM. */
static void stop_checked(void)
{
    int rc = th_stop(&srv, TH_STOP_MS);

    cr_assert_eq(rc, 0, "tern-tfb did not exit 0 after SIGTERM (got %d)", rc);
}

/*
 * Criterion does not fail a test for an assertion in .fini, so each test on
 * the suite's server checks the exit status at the end of its own body; the
 * fini only kills what a failed test left running.
 */
TestSuite(tfb, .init = start_tfb, .fini = th_cleanup_all, .timeout = 30);

#define SERVER_TEST(name)                                                                   \
    static void name##_body(void);                                                          \
    Test(tfb, name)                                                                     \
    {                                                                                       \
        name##_body();                                                                      \
        stop_checked();                                                                     \
    }                                                                                       \
    static void name##_body(void)

static int matches(const char *re, const char *s)
{
    regex_t rx;
    int ok;

    if (s == NULL || regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* The headers the verifier requires on every response. */
static void assert_tfb_headers(const th_resp *r)
{
    const char *date = th_hdr(r, "Date");

    cr_assert(th_hdr(r, "Server") != NULL && th_hdr(r, "Server")[0] != '\0',
              "no Server header; head:\n%s", r->head);
    cr_assert(date != NULL, "no Date header; head:\n%s", r->head);
    cr_assert(th_parse_imf_date(date) != (time_t)-1, "Date is not RFC 1123: '%s'", date);
    cr_assert(th_hdr(r, "Content-Length") != NULL || r->chunked,
              "neither Content-Length nor Transfer-Encoding; head:\n%s", r->head);
}

static void get(th_conn *c, const char *raw, th_resp *r)
{
    TH_ASSERT_OK(th_exchange(c, raw, r), raw);
}

SERVER_TEST(plaintext)
{
    th_conn c;
    th_resp r;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    get(&c, REQ("/plaintext"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_tfb_headers(&r);
    cr_assert_str_eq(r.body, "Hello, World!");
    cr_assert_eq(r.body_len, 13);
    cr_assert(matches("^text/plain(; ?charset=(UTF|utf)-8)?$", th_hdr(&r, "Content-Type")),
              "plaintext Content-Type '%s'", th_hdr(&r, "Content-Type"));
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(json)
{
    th_conn c;
    th_resp r;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    get(&c, REQ("/json"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_tfb_headers(&r);
    cr_assert_str_eq(r.body, "{\"message\":\"Hello, World!\"}");
    cr_assert(matches("^application/json(; ?charset=(UTF|utf)-8)?$", th_hdr(&r, "Content-Type")),
              "json Content-Type '%s'", th_hdr(&r, "Content-Type"));
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(keepalive_many_requests)
{
    th_conn c;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    for (int i = 0; i < 50; i++) {
        th_resp r;

        get(&c, i % 2 ? REQ("/json") : REQ("/plaintext"), &r);
        TH_ASSERT_STATUS(&r, 200);
        cr_assert(!th_hdr_has_token(&r, "Connection", "close"), "request %d closed the conn", i);
        th_resp_free(&r);
    }
    th_close(&c);
}

SERVER_TEST(date_changes)
{
    th_conn c;
    th_resp a, b;
    time_t ta, tb;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    get(&c, REQ("/plaintext"), &a);
    th_sleep_ms(1100);
    get(&c, REQ("/plaintext"), &b);
    ta = th_parse_imf_date(th_hdr(&a, "Date"));
    tb = th_parse_imf_date(th_hdr(&b, "Date"));
    cr_assert(ta != (time_t)-1 && tb != (time_t)-1);
    cr_assert_str_neq(th_hdr(&a, "Date"), th_hdr(&b, "Date"),
                      "Date did not change in 1.1 s: '%s'", th_hdr(&a, "Date"));
    cr_assert(tb > ta, "Date went backwards: '%s' then '%s'", th_hdr(&a, "Date"),
              th_hdr(&b, "Date"));
    th_resp_free(&a);
    th_resp_free(&b);
    th_close(&c);
}

SERVER_TEST(pipelined_16_plaintext)
{
    char all[2048];
    size_t n = 0;
    th_conn c;

    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(all + n, sizeof all - n, "%s", REQ("/plaintext"));
    cr_assert_eq(th_connect(&c, srv.port), 0);
    cr_assert_eq(th_send(&c, all, n), 0);
    for (int i = 0; i < 16; i++) {
        th_resp r;
        int rc = th_read(&c, &r, TH_TIMEOUT_MS, 0);

        cr_assert_eq(rc, TH_OK, "pipelined response %d: %s", i, th_strerr(rc));
        TH_ASSERT_STATUS(&r, 200);
        cr_assert_str_eq(r.body, "Hello, World!", "response %d", i);
        th_resp_free(&r);
    }
    cr_assert_eq(th_wait_closed(&c, 100), 0, "connection closed after the batch");
    cr_assert_eq(c.len, 0, "extra bytes after 16 responses");
    th_close(&c);
}

SERVER_TEST(pipelined_mixed_in_order)
{
    char all[4096];
    size_t n = 0;
    th_conn c;

    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(all + n, sizeof all - n, "%s",
                              i % 3 == 0 ? REQ("/json") : REQ("/plaintext"));
    cr_assert_eq(th_connect(&c, srv.port), 0);
    cr_assert_eq(th_send_slow(&c, all, n, 100, 1), 0);
    for (int i = 0; i < 16; i++) {
        th_resp r;

        TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "pipelined mixed");
        cr_assert_str_eq(r.body, i % 3 == 0 ? "{\"message\":\"Hello, World!\"}" : "Hello, World!",
                         "response %d out of order", i);
        th_resp_free(&r);
    }
    th_close(&c);
}

SERVER_TEST(unknown_route_is_404)
{
    th_conn c;
    th_resp r;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    get(&c, REQ("/nothing-here"), &r);
    TH_ASSERT_STATUS(&r, 404);
    cr_assert_not_null(th_hdr(&r, "Date"));
    th_resp_free(&r);
    th_close(&c);
}

/* ------------------------------------------------------------------------ */
/* The database tests (specs/tfb.md 3.2-3.5)                                  */

/*
 * Without DATABASE_URL the four routes answer 503 problem+json and the
 * others keep working.  With TERN_TEST_PG_URL set (make test exports it),
 * the suite tfb_db builds the TFB tables in a schema of its own (through
 * psql, so the test links no driver), points tern-tfb at it with
 * search_path, and checks what the TFB verifier checks: the shapes, the
 * `queries` clamping, the exact fortunes page and that /updates persists
 * what it returns.  Without TERN_TEST_PG_URL those tests are skipped.
 */
extern char **environ;

#define TFB_SCHEMA "tern_tfb_test"

/* The page of specs/tfb.md 3.4 (1,226 bytes), also bench/verify/fortunes.html. */
static const char fortunes_page[] =
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser "
    "alert box.&quot;);&lt;/script&gt;</td></tr>"
    "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>"
    "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to "
    "do.</td></tr>"
    "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#39;t "
    "broken.</td></tr>"
    "<tr><td>8</td><td>A list is only as strong as its weakest link. \xE2\x80\x94 Donald "
    "Knuth</td></tr>"
    "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
    "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
    "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
    "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
    "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \xE2\x80\x94 Tom "
    "Christaensen</td></tr>"
    "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
    "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
    "<tr><td>12</td><td>\xE3\x83\x95\xE3\x83\xAC\xE3\x83\xBC\xE3\x83\xA0\xE3\x83\xAF\xE3\x83\xBC"
    "\xE3\x82\xAF\xE3\x81\xAE\xE3\x83\x99\xE3\x83\xB3\xE3\x83\x81\xE3\x83\x9E\xE3\x83\xBC"
    "\xE3\x82\xAF</td></tr>"
    "</table></body></html>";

static const char tfb_setup_sql[] =
    "SET client_min_messages = warning;"
    "DROP SCHEMA IF EXISTS " TFB_SCHEMA " CASCADE; CREATE SCHEMA " TFB_SCHEMA ";"
    "CREATE TABLE " TFB_SCHEMA ".world (id integer PRIMARY KEY,"
    " randomnumber integer NOT NULL DEFAULT 0);"
    "INSERT INTO " TFB_SCHEMA ".world SELECT i, 1 + floor(random() * 10000)::integer"
    " FROM generate_series(1, 10000) AS i;"
    "CREATE TABLE " TFB_SCHEMA ".fortune (id integer PRIMARY KEY,"
    " message varchar(2048) NOT NULL);"
    "INSERT INTO " TFB_SCHEMA ".fortune VALUES"
    " (1, 'fortune: No such file or directory'),"
    " (2, 'A computer scientist is someone who fixes things that aren''t broken.'),"
    " (3, 'After enough decimal places, nobody gives a damn.'),"
    " (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),"
    " (5, 'A computer program does what you tell it to do, not what you want it to do.'),"
    " (6, 'Emacs is a nice operating system, but I prefer UNIX. \xE2\x80\x94 Tom Christaensen'),"
    " (7, 'Any program that runs right is obsolete.'),"
    " (8, 'A list is only as strong as its weakest link. \xE2\x80\x94 Donald Knuth'),"
    " (9, 'Feature: A bug with seniority.'),"
    " (10, 'Computers make very fast, very accurate mistakes.'),"
    " (11, '<script>alert(\"This should not be displayed in a browser alert box.\");</script>'),"
    " (12, '\xE3\x83\x95\xE3\x83\xAC\xE3\x83\xBC\xE3\x83\xA0\xE3\x83\xAF\xE3\x83\xBC\xE3\x82\xAF"
    "\xE3\x81\xAE\xE3\x83\x99\xE3\x83\xB3\xE3\x83\x81\xE3\x83\x9E\xE3\x83\xBC\xE3\x82\xAF');";

/*
 * Runs `psql -X -q -At -v ON_ERROR_STOP=1 -d url -c sql`, its stdout into
 * out (NUL-terminated, may be NULL).  Returns psql's exit status, or -1.
 */
static int psql(const char *url, const char *sql, char *out, size_t cap)
{
    const char *argv[] = { "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                           sql, NULL };
    posix_spawn_file_actions_t fa;
    int fds[2], status;
    size_t n = 0;
    pid_t pid;

    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawnp(&pid, "psql", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    for (;;) {
        char tmp[4096];
        ssize_t k = read(fds[0], tmp, sizeof tmp);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k && out != NULL && n + 1 < cap; i++)
            out[n++] = tmp[i];
    }
    if (out != NULL && cap > 0)
        out[n] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* TERN_TEST_PG_URL with search_path set to the test schema, in *url; NULL
 * (and the test skipped) without TERN_TEST_PG_URL. */
static char db_url[1024];

static const char *test_db_url(void)
{
    const char *base = getenv("TERN_TEST_PG_URL");

    if (base == NULL || base[0] == '\0')
        return NULL;
    if (strncmp(base, "postgres://", 11) == 0 || strncmp(base, "postgresql://", 13) == 0)
        snprintf(db_url, sizeof db_url, "%s%coptions=-csearch_path%%3D" TFB_SCHEMA, base,
                 strchr(base, '?') ? '&' : '?');
    else
        snprintf(db_url, sizeof db_url, "%s options=-csearch_path=" TFB_SCHEMA, base);
    return db_url;
}

static th_server dbsrv;

/* Creates the tables and starts tern-tfb on them; skips without a database. */
static void start_tfb_db(void)
{
    const char *url = test_db_url();

    if (url == NULL)
        cr_skip_test("TERN_TEST_PG_URL is not set: no PostgreSQL for the TFB database tests");
    cr_assert_eq(psql(url, tfb_setup_sql, NULL, 0), 0, "creating the TFB tables with psql failed");
    setenv("DATABASE_URL", url, 1);
    int rc = th_start(&dbsrv, TH_TFB, "--workers", "2", NULL);
    unsetenv("DATABASE_URL");
    cr_assert_eq(rc, 0, "tern-tfb did not start");
}

static void stop_tfb_db(void)
{
    int rc = th_stop(&dbsrv, TH_STOP_MS);

    psql(db_url, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS " TFB_SCHEMA " CASCADE",
         NULL, 0);
    cr_assert_eq(rc, 0, "tern-tfb did not exit 0 after SIGTERM (got %d)", rc);
}

TestSuite(tfb_db, .fini = th_cleanup_all, .timeout = 60);

/* A GET on a fresh connection; the TFB headers checked. */
static void db_get(const char *path, th_resp *r)
{
    char raw[512];
    th_conn c;

    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    cr_assert_eq(th_connect(&c, dbsrv.port), 0);
    get(&c, raw, r);
    th_close(&c);
    TH_ASSERT_STATUS(r, 200);
    assert_tfb_headers(r);
}

/* 1 when v is a World object: exactly id and randomNumber, integers in 1..10000. */
static int is_world(const json_t *v)
{
    const json_t *id = json_object_get(v, "id"), *rn = json_object_get(v, "randomNumber");

    return json_is_object(v) && json_object_size(v) == 2 && json_is_integer(id) &&
           json_is_integer(rn) && json_integer_value(id) >= 1 &&
           json_integer_value(id) <= 10000 && json_integer_value(rn) >= 1 &&
           json_integer_value(rn) <= 10000;
}

/* GETs path and checks it is a JSON array of n World objects; returns it. */
static json_t *get_worlds(const char *path, size_t n)
{
    th_resp r;
    json_error_t err;
    json_t *v;

    db_get(path, &r);
    cr_assert(matches("^application/json(; ?charset=(UTF|utf)-8)?$", th_hdr(&r, "Content-Type")),
              "%s: Content-Type '%s'", path, th_hdr(&r, "Content-Type"));
    v = json_loadb(r.body, r.body_len, 0, &err);
    cr_assert_not_null(v, "%s: not JSON: %s", path, th_show(r.body, r.body_len));
    cr_assert(json_is_array(v) && json_array_size(v) == n, "%s: expected an array of %zu, got %s",
              path, n, th_show(r.body, r.body_len));
    for (size_t i = 0; i < n; i++)
        cr_assert(is_world(json_array_get(v, i)), "%s: element %zu is not a World: %s", path, i,
                  th_show(r.body, r.body_len));
    th_resp_free(&r);
    return v;
}

Test(tfb_db, db_is_one_world_object)
{
    start_tfb_db();
    for (int i = 0; i < 20; i++) {
        th_resp r;
        json_error_t err;

        db_get("/db", &r);
        cr_assert(matches("^application/json(; ?charset=(UTF|utf)-8)?$",
                          th_hdr(&r, "Content-Type")));
        json_t *v = json_loadb(r.body, r.body_len, 0, &err);
        cr_assert(v != NULL && is_world(v), "/db: %s", th_show(r.body, r.body_len));
        json_decref(v);
        th_resp_free(&r);
    }
    stop_tfb_db();
}

Test(tfb_db, queries_count_and_clamping)
{
    static const struct {
        const char *path;
        size_t n;
    } cases[] = {
        { "/queries?queries=20", 20 }, { "/queries?queries=2", 2 },   { "/queries?queries=0", 1 },
        { "/queries?queries=foo", 1 }, { "/queries?queries=501", 500 }, { "/queries?queries=", 1 },
        { "/queries", 1 },             { "/queries?queries=-3", 1 },
    };

    start_tfb_db();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        json_decref(get_worlds(cases[i].path, cases[i].n));
    stop_tfb_db();
}

Test(tfb_db, fortunes_page_is_exact)
{
    th_resp r;

    start_tfb_db();
    db_get("/fortunes", &r);
    cr_assert(matches("^text/html; ?charset=(UTF|utf)-8$", th_hdr(&r, "Content-Type")),
              "fortunes Content-Type '%s'", th_hdr(&r, "Content-Type"));
    cr_assert_eq(r.body_len, sizeof fortunes_page - 1, "fortunes: %zu bytes, expected %zu:\n%s",
                 r.body_len, sizeof fortunes_page - 1, r.body);
    cr_assert_str_eq(r.body, fortunes_page);
    th_resp_free(&r);
    stop_tfb_db();
}

/* /updates returns N rows with new values, and those are what the table holds. */
Test(tfb_db, updates_persist_what_they_return)
{
    char sql[8192], out[8192];
    size_t n = 0;

    start_tfb_db();
    json_t *v = get_worlds("/updates?queries=20", 20);
    n += (size_t)snprintf(sql + n, sizeof sql - n,
                          "SELECT id || ':' || randomnumber FROM world WHERE id IN (");
    for (size_t i = 0; i < 20; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s%lld", i ? "," : "",
                              (long long)json_integer_value(
                                  json_object_get(json_array_get(v, i), "id")));
    snprintf(sql + n, sizeof sql - n, ")");
    out[0] = '\n'; /* every row then reads "\nid:value\n" */
    cr_assert_eq(psql(db_url, sql, out + 1, sizeof out - 1), 0, "psql failed: %s", sql);
    for (size_t i = 0; i < 20; i++) {
        const json_t *w = json_array_get(v, i);
        char want[64];

        snprintf(want, sizeof want, "\n%lld:%lld\n",
                 (long long)json_integer_value(json_object_get(w, "id")),
                 (long long)json_integer_value(json_object_get(w, "randomNumber")));
        cr_assert(strstr(out, want) != NULL, "row %s not stored; table has:%s", want + 1, out);
    }
    json_decref(v);
    json_decref(get_worlds("/updates?queries=foo", 1));
    json_decref(get_worlds("/updates?queries=501", 500));
    stop_tfb_db();
}

/* Without DATABASE_URL: 503 problem+json on the database routes only. */
Test(tfb_db, no_database_answers_503)
{
    static const char *const paths[] = { "/db", "/queries?queries=5", "/fortunes",
                                         "/updates?queries=5" };
    th_conn c;
    th_resp r;

    unsetenv("DATABASE_URL");
    cr_assert_eq(th_start(&dbsrv, TH_TFB, "--workers", "1", NULL), 0, "tern-tfb did not start");
    cr_assert_eq(th_connect(&c, dbsrv.port), 0);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char raw[256];

        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", paths[i]);
        get(&c, raw, &r);
        TH_ASSERT_STATUS(&r, 503);
        cr_assert_str_eq(th_hdr(&r, "Content-Type"), "application/problem+json", "%s", paths[i]);
        th_resp_free(&r);
    }
    get(&c, REQ("/json"), &r);
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    th_close(&c);
    cr_assert_eq(th_stop(&dbsrv, TH_STOP_MS), 0);
}
