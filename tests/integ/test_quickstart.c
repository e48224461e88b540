/*
 * test_quickstart.c - the quickstart API over real sockets, every route and
 * every error status, on SQLite and on PostgreSQL (TERN_TEST_PG_URL; each
 * run creates its own database).  Black-box: the binary, HTTP, JSON.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern.h>

#include "harness.h"

#define TH_QUICKSTART "TERN_QUICKSTART"

static th_server srv;
static char dbfile[64];
static char pgdb[64];

static void start_with(const char *url)
{
    setenv("DATABASE_URL", url, 1);
    cr_assert_eq(th_start(&srv, TH_QUICKSTART, "--workers", "2", NULL), 0);
}

static void start_sqlite(void)
{
    char url[96];

    snprintf(dbfile, sizeof dbfile, "/tmp/tern-qs-%d.db", (int)getpid());
    unlink(dbfile);
    snprintf(url, sizeof url, "sqlite:%s", dbfile);
    start_with(url);
}

/* A fresh database on the test PostgreSQL, so runs never see each other. */
static void start_pg(void)
{
    const char *base = getenv("TERN_TEST_PG_URL");
    char sql[128], url[512];
    tern_db *admin;

    cr_assert(base != NULL && *base, "TERN_TEST_PG_URL is not set: make test starts PostgreSQL");
    cr_assert_eq(tern_db_open_url(base, &admin), 0);
    snprintf(pgdb, sizeof pgdb, "tern_qs_%d", (int)getpid());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", pgdb);
    tern_db_exec(NULL, admin, sql, TERN_DB_NOARGS, NULL);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", pgdb);
    cr_assert_eq(tern_db_exec(NULL, admin, sql, TERN_DB_NOARGS, NULL), 0, "CREATE DATABASE");
    tern_db_close(admin);
    /* postgres://user@host:port/db -> same server, our database */
    const char *slash = strrchr(base, '/');
    cr_assert(slash != NULL && slash > base + 12);
    snprintf(url, sizeof url, "%.*s/%s", (int)(slash - base), base, pgdb);
    start_with(url);
}

static void stop(void)
{
    th_cleanup_all();
    if (dbfile[0]) {
        char p[96];

        unlink(dbfile);
        snprintf(p, sizeof p, "%s-wal", dbfile);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", dbfile);
        unlink(p);
    }
}

/* One exchange on a fresh connection; body may be NULL. */
static void call(th_resp *r, const char *method, const char *path, const char *ctype,
                 const char *body)
{
    th_conn c;
    char head[1024];
    size_t len = body ? strlen(body) : 0;
    int n, rc;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                 method, path, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                 ctype ? "\r\n" : "", len);
    cr_assert_eq(th_send(&c, head, (size_t)n), 0);
    if (len)
        cr_assert_eq(th_send(&c, body, len), 0);
    rc = th_read_final(&c, r, 5000, strcmp(method, "HEAD") == 0 ? TH_HEAD : 0, NULL);
    th_close(&c);
    TH_ASSERT_OK(rc, path);
    /* Nothing a client sees may come from the database's own messages. */
    cr_assert(strstr(r->body, "SELECT") == NULL && strstr(r->body, "INSERT") == NULL &&
                  strstr(r->body, "UPDATE") == NULL && strstr(r->body, "constraint failed") == NULL &&
                  strstr(r->body, "violates") == NULL,
              "driver text leaked: %s", r->body);
}

#define JSON "application/json"

static json_t *parse(const th_resp *r)
{
    json_error_t e;
    json_t *v = json_loadb(r->body, r->body_len, 0, &e);

    cr_assert(v != NULL, "not JSON (%s): %s", e.text, r->body);
    return v;
}

/* Does `method path` with a JSON body and expects `status`; returns the parsed body. */
static json_t *expect(int status, const char *method, const char *path, const char *body)
{
    th_resp r;
    json_t *v = NULL;

    call(&r, method, path, body ? JSON : NULL, body);
    if (status >= 400) {
        TH_ASSERT_PROBLEM(&r, status);
        if (status == 503)
            cr_assert(th_hdr(&r, "Retry-After") != NULL, "503 without Retry-After");
    } else {
        TH_ASSERT_STATUS(&r, status);
    }
    if (r.body_len)
        v = parse(&r);
    th_resp_free(&r);
    return v;
}

static long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    cr_assert(json_is_integer(v), "member %s is not an integer", k);
    return (long)json_integer_value(v);
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    cr_assert(json_is_string(v), "member %s is not a string", k);
    return json_string_value(v);
}

/* The first error's field pointer in a 422 body. */
static const char *first_field(json_t *p)
{
    json_t *e = json_array_get(json_object_get(p, "errors"), 0);

    cr_assert(e != NULL, "422 without errors");
    return jstr(e, "field");
}

static long create_user(const char *name, const char *email)
{
    char body[256];
    json_t *u;
    long id;

    snprintf(body, sizeof body, "{\"name\":\"%s\",\"email\":\"%s\"}", name, email);
    u = expect(201, "POST", "/users", body);
    id = jint(u, "id");
    json_decref(u);
    return id;
}

static int rfc3339_utc(const char *s)
{
    int y, mo, d, h, mi, se, ms;
    char z;

    return strlen(s) == 24 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &se, &ms, &z) == 8 &&
           z == 'Z';
}

/* ------------------------------------------------------------------------ */
/* The scenarios, run once per driver                                         */

static void users_crud(void)
{
    th_resp r;
    json_t *u;
    char path[64];
    long id;

    call(&r, "POST", "/users", JSON, "{\"name\":\"Ada\",\"email\":\"ada@example.com\"}");
    TH_ASSERT_STATUS(&r, 201);
    u = parse(&r);
    id = jint(u, "id");
    snprintf(path, sizeof path, "/users/%ld", id);
    cr_assert_str_eq(th_hdr(&r, "Location"), path);
    cr_assert_str_eq(jstr(u, "name"), "Ada");
    cr_assert_str_eq(jstr(u, "email"), "ada@example.com");
    cr_assert(rfc3339_utc(jstr(u, "created_at")), "created_at: %s", jstr(u, "created_at"));
    cr_assert_str_eq(jstr(u, "created_at"), jstr(u, "updated_at"));
    json_decref(u);
    th_resp_free(&r);

    u = expect(200, "GET", path, NULL);
    cr_assert_eq(jint(u, "id"), id);
    json_decref(u);

    u = expect(200, "PATCH", path, "{\"name\":\"Ada L\"}");
    cr_assert_str_eq(jstr(u, "name"), "Ada L");
    cr_assert_str_eq(jstr(u, "email"), "ada@example.com", "PATCH kept the absent field");
    cr_assert(strcmp(jstr(u, "updated_at"), jstr(u, "created_at")) >= 0);
    json_decref(u);

    u = expect(200, "PUT", path, "{\"name\":\"Ada Lovelace\",\"email\":\"ada@lovelace.org\"}");
    cr_assert_str_eq(jstr(u, "name"), "Ada Lovelace");
    cr_assert_str_eq(jstr(u, "email"), "ada@lovelace.org");
    json_decref(u);

    call(&r, "DELETE", path, NULL, NULL);
    TH_ASSERT_STATUS(&r, 204);
    cr_assert_eq(r.body_len, 0);
    th_resp_free(&r);
    json_decref(expect(404, "GET", path, NULL));
    json_decref(expect(404, "DELETE", path, NULL));
    json_decref(expect(404, "PUT", path, "{\"name\":\"X\",\"email\":\"x@example.com\"}"));
    json_decref(expect(404, "PATCH", path, "{\"name\":\"X\"}"));
}

static void users_errors(void)
{
    th_resp r;
    json_t *p;

    create_user("Bob", "bob@example.com");
    json_decref(expect(409, "POST", "/users", "{\"name\":\"Bob 2\",\"email\":\"bob@example.com\"}"));

    p = expect(422, "POST", "/users", "{\"name\":\"Bob\",\"email\":\"not-an-email\"}");
    cr_assert_str_eq(first_field(p), "/email");
    json_decref(p);
    p = expect(422, "POST", "/users", "{\"name\":\"\",\"email\":\"x\",\"admin\":true}");
    cr_assert_eq(json_array_size(json_object_get(p, "errors")), 3, "every failure listed");
    json_decref(p);
    p = expect(422, "POST", "/users", "{\"email\":\"c@example.com\"}");
    cr_assert_str_eq(first_field(p), "/name");
    json_decref(p);
    json_decref(expect(422, "PATCH", "/users/1", "{\"name\":null}"));
    json_decref(expect(422, "GET", "/users/abc", NULL));
    json_decref(expect(422, "GET", "/users/0", NULL));
    json_decref(expect(422, "DELETE", "/users/-4", NULL));
    json_decref(expect(400, "POST", "/users", "{\"name\":"));

    call(&r, "POST", "/users", "text/plain", "{\"name\":\"A\",\"email\":\"a@example.com\"}");
    TH_ASSERT_PROBLEM(&r, 415);
    th_resp_free(&r);
    json_decref(expect(405, "POST", "/users/1", "{}"));
    json_decref(expect(404, "GET", "/nothing", NULL));
}

static void users_list(void)
{
    char path[128];
    json_t *l, *items;

    for (int i = 0; i < 25; i++) {
        char name[32], email[64];

        snprintf(name, sizeof name, "user%02d", i);
        snprintf(email, sizeof email, "user%02d@example.com", i);
        create_user(name, email);
    }
    l = expect(200, "GET", "/users", NULL);
    items = json_object_get(l, "items");
    cr_assert_eq(json_array_size(items), 20, "default limit 20");
    cr_assert_eq(jint(l, "limit"), 20);
    cr_assert_eq(jint(l, "next_offset"), 20);
    cr_assert_str_eq(jstr(json_array_get(items, 0), "name"), "user24", "newest first");
    json_decref(l);

    l = expect(200, "GET", "/users?sort=name&limit=3&offset=1", NULL);
    items = json_object_get(l, "items");
    cr_assert_eq(json_array_size(items), 3);
    cr_assert_str_eq(jstr(json_array_get(items, 0), "name"), "user01");
    json_decref(l);

    l = expect(200, "GET", "/users?email=user07%40example.com", NULL);
    items = json_object_get(l, "items");
    cr_assert_eq(json_array_size(items), 1);
    cr_assert_str_eq(jstr(json_array_get(items, 0), "name"), "user07");
    cr_assert(json_is_null(json_object_get(l, "next_offset")), "last page");
    json_decref(l);

    snprintf(path, sizeof path, "/users?limit=100&offset=1000");
    l = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(json_object_get(l, "items")), 0);
    json_decref(l);

    json_decref(expect(422, "GET", "/users?limit=101", NULL));
    json_decref(expect(422, "GET", "/users?limit=0", NULL));
    json_decref(expect(422, "GET", "/users?offset=-1", NULL));
    json_decref(expect(422, "GET", "/users?sort=password", NULL));
    json_decref(expect(422, "GET", "/users?email=nope", NULL));
    json_decref(expect(422, "GET", "/users?role=admin", NULL));
}

static void products(void)
{
    char body[512], path[64];
    long owner = create_user("Owner", "owner@example.com"), other, id;
    json_t *p, *items;

    snprintf(body, sizeof body,
             "{\"name\":\"Lamp\",\"sku\":\"LAMP-1\",\"price\":19.99,\"owner_id\":%ld,"
             "\"description\":\"bright\"}",
             owner);
    p = expect(201, "POST", "/products", body);
    id = jint(p, "id");
    cr_assert(json_real_value(json_object_get(p, "price")) == 19.99, "price round trip");
    cr_assert_eq(jint(p, "owner_id"), owner);
    json_decref(p);
    snprintf(body, sizeof body,
             "{\"name\":\"Desk\",\"sku\":\"DESK-1\",\"price\":250,\"owner_id\":%ld}", owner);
    json_decref(expect(201, "POST", "/products", body));

    /* Errors: duplicate SKU, missing owner, money, pattern, unknown field. */
    snprintf(body, sizeof body, "{\"name\":\"L\",\"sku\":\"LAMP-1\",\"price\":1,\"owner_id\":%ld}",
             owner);
    json_decref(expect(409, "POST", "/products", body));
    json_decref(expect(409, "POST", "/products",
                       "{\"name\":\"L\",\"sku\":\"LAMP-9\",\"price\":1,\"owner_id\":999999}"));
    snprintf(body, sizeof body, "{\"name\":\"L\",\"sku\":\"LAMP-2\",\"price\":1.001,\"owner_id\":%ld}",
             owner);
    p = expect(422, "POST", "/products", body);
    cr_assert_str_eq(first_field(p), "/price");
    json_decref(p);
    snprintf(body, sizeof body, "{\"name\":\"L\",\"sku\":\"LAMP-2\",\"price\":-1,\"owner_id\":%ld}",
             owner);
    json_decref(expect(422, "POST", "/products", body));
    snprintf(body, sizeof body, "{\"name\":\"L\",\"sku\":\"lamp 2\",\"price\":1,\"owner_id\":%ld}",
             owner);
    json_decref(expect(422, "POST", "/products", body));
    snprintf(body, sizeof body,
             "{\"name\":\"L\",\"sku\":\"LAMP-2\",\"price\":1,\"owner_id\":%ld,\"id\":5}", owner);
    json_decref(expect(422, "POST", "/products", body));

    /* Filters and sort. */
    snprintf(path, sizeof path, "/products?owner_id=%ld&sort=-price", owner);
    p = expect(200, "GET", path, NULL);
    items = json_object_get(p, "items");
    cr_assert_eq(json_array_size(items), 2);
    cr_assert_str_eq(jstr(json_array_get(items, 0), "sku"), "DESK-1");
    json_decref(p);
    p = expect(200, "GET", "/products?min_price=20&max_price=300", NULL);
    cr_assert_eq(json_array_size(json_object_get(p, "items")), 1);
    json_decref(p);
    json_decref(expect(422, "GET", "/products?min_price=1.005", NULL));
    json_decref(expect(422, "GET", "/products?sort=owner_id", NULL));

    /* Merge patch: null removes the description, absent members stay. */
    snprintf(path, sizeof path, "/products/%ld", id);
    p = expect(200, "PATCH", path, "{\"description\":null,\"price\":21.5}");
    cr_assert(json_is_null(json_object_get(p, "description")));
    cr_assert(json_real_value(json_object_get(p, "price")) == 21.5);
    cr_assert_str_eq(jstr(p, "sku"), "LAMP-1");
    json_decref(p);
    other = create_user("Other", "other@example.com");
    snprintf(body, sizeof body, "{\"name\":\"Lamp 2\",\"sku\":\"LAMP-1\",\"price\":5,\"owner_id\":%ld}",
             other);
    p = expect(200, "PUT", path, body);
    cr_assert_eq(jint(p, "owner_id"), other);
    json_decref(p);
    json_decref(expect(422, "PATCH", path, "{\"name\":null}"));
    json_decref(expect(409, "PATCH", path, "{\"owner_id\":999999}"));

    /* Deleting the owner deletes their products. */
    snprintf(path, sizeof path, "/users/%ld", other);
    json_decref(expect(204, "DELETE", path, NULL));
    snprintf(path, sizeof path, "/products/%ld", id);
    json_decref(expect(404, "GET", path, NULL));
    json_decref(expect(404, "DELETE", path, NULL));
    json_decref(expect(422, "GET", "/products/x", NULL));
}

/* A body over the 1 MiB default limit: 413 before the handler runs. */
static void too_large(void)
{
    size_t n = (1u << 20) + 100;
    char *body = malloc(n + 1);
    th_resp r;

    cr_assert_not_null(body);
    memset(body, 'a', n);
    memcpy(body, "{\"name\":\"", 9);
    body[n] = '\0';
    call(&r, "POST", "/users", JSON, body);
    TH_ASSERT_PROBLEM(&r, 413);
    th_resp_free(&r);
    free(body);
}

static void health(void)
{
    json_t *h = expect(200, "GET", "/health", NULL);

    cr_assert_str_eq(jstr(h, "status"), "ok");
    json_decref(h);
}

#define DRIVER_TESTS(suite)                                                                   \
    Test(suite, users_crud)                                                                   \
    {                                                                                         \
        users_crud();                                                                         \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");             \
    }                                                                                         \
    Test(suite, users_errors)                                                                 \
    {                                                                                         \
        users_errors();                                                                       \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");             \
    }                                                                                         \
    Test(suite, users_list)                                                                   \
    {                                                                                         \
        users_list();                                                                         \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");             \
    }                                                                                         \
    Test(suite, products)                                                                     \
    {                                                                                         \
        products();                                                                           \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");             \
    }                                                                                         \
    Test(suite, too_large)                                                                    \
    {                                                                                         \
        too_large();                                                                          \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");             \
    }                                                                                         \
    Test(suite, health)                                                                       \
    {                                                                                         \
        health();                                                                             \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");             \
    }

TestSuite(qs_sqlite, .init = start_sqlite, .fini = stop, .timeout = 60);
DRIVER_TESTS(qs_sqlite)

TestSuite(qs_postgres, .init = start_pg, .fini = stop, .timeout = 60);
DRIVER_TESTS(qs_postgres)

/*
 * The database is down (nothing listens on the port): the app starts
 * anyway, answers 503 with Retry-After at once, and says not-ready.
 */
Test(qs_down, database_down_is_503, .fini = stop, .timeout = 60)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char url[128];
    double t0;

    /* A port that was free a moment ago: bind, learn it, close. */
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd);
    snprintf(url, sizeof url, "postgres://postgres@127.0.0.1:%d/postgres", ntohs(a.sin_port));
    start_with(url);
    t0 = th_now_ms();
    json_decref(expect(503, "GET", "/users/1", NULL));
    json_decref(expect(503, "POST", "/users", "{\"name\":\"A\",\"email\":\"a@example.com\"}"));
    json_decref(expect(503, "GET", "/health", NULL));
    cr_assert_lt(th_now_ms() - t0, 1000, "503s took %.0f ms", th_now_ms() - t0);
    cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "the server did not exit 0");
}
