/*
 * test_hello.c - tern-hello's routes and the framework behaviour every app
 * gets: Date, X-Request-Id, problem+json errors, HEAD and OPTIONS,
 * keep-alive, pipelining, request bodies (Content-Length, chunked, split
 * writes, Expect: 100-continue), streaming, and slow-handler isolation.
 *
 * Each test starts its own server (suite init) on a free loopback port and
 * ends by checking that SIGTERM makes it exit 0 (SERVER_TEST).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: localhost\r\n\r\n"

static th_server srv;

static void start_default(void)
{
    cr_assert_eq(th_start(&srv, TH_HELLO, "--workers", "2", NULL), 0, "tern-hello did not start");
}

/* Stops the suite's server; it must exit 0 on SIGTERM. */
static void stop_checked(void)
{
    int rc = th_stop(&srv, TH_STOP_MS);

    cr_assert_eq(rc, 0, "tern-hello did not exit 0 after SIGTERM (got %d)", rc);
}

/*
 * Criterion does not fail a test for an assertion in .fini, so each test on
 * the suite's server checks the exit status at the end of its own body; the
 * fini only kills what a failed test left running.
 */
TestSuite(hello, .init = start_default, .fini = th_cleanup_all, .timeout = 30);

#define SERVER_TEST(name)                                                                   \
    static void name##_body(void);                                                          \
    Test(hello, name)                                                                     \
    {                                                                                       \
        name##_body();                                                                      \
        stop_checked();                                                                     \
    }                                                                                       \
    static void name##_body(void)

/* Opens a connection to the suite's server. */
static void conn(th_conn *c)
{
    int rc = th_connect(c, srv.port);

    cr_assert_eq(rc, 0, "connect to port %d: %s", srv.port, strerror(-rc));
}

/* One request on a fresh connection; returns the response (caller frees). */
static void get1(const char *raw, th_resp *r)
{
    th_conn c;
    int rc;

    conn(&c);
    rc = th_exchange(&c, raw, r);
    th_close(&c);
    TH_ASSERT_OK(rc, raw);
}

static void assert_body(const th_resp *r, const char *want)
{
    cr_assert(r->body_len == strlen(want) && memcmp(r->body, want, r->body_len) == 0,
              "body is '%s', expected '%s'", th_show(r->body, r->body_len), want);
}

static void assert_ctype(const th_resp *r, const char *want)
{
    const char *ct = th_hdr(r, "Content-Type");

    cr_assert(ct != NULL && strcasecmp(ct, want) == 0, "Content-Type is '%s', expected '%s'",
              ct ? ct : "(none)", want);
}

static void assert_json_ctype(const th_resp *r)
{
    const char *ct = th_hdr(r, "Content-Type");

    cr_assert(ct != NULL && (strcmp(ct, "application/json") == 0 ||
                             strcasecmp(ct, "application/json; charset=utf-8") == 0 ||
                             strcasecmp(ct, "application/json;charset=utf-8") == 0),
              "Content-Type is '%s', expected application/json", ct ? ct : "(none)");
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                     */

SERVER_TEST(root)
{
    th_resp r;

    get1(REQ("GET", "/"), &r);
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_COMMON(&r);
    assert_ctype(&r, "text/plain; charset=utf-8");
    assert_body(&r, "Hello from tern!\n");
    cr_assert_str_eq(th_hdr(&r, "Content-Length"), "17");
    cr_assert_null(th_hdr(&r, "Server"), "tern-hello must not send a Server banner: '%s'",
                   th_hdr(&r, "Server"));
    cr_assert_eq(r.minor, 1, "response version is HTTP/1.%d", r.minor);
    th_resp_free(&r);
}

SERVER_TEST(hello_name)
{
    th_resp r;

    get1(REQ("GET", "/hello/world"), &r);
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_COMMON(&r);
    assert_ctype(&r, "text/plain; charset=utf-8");
    assert_body(&r, "Hello, world!");
    th_resp_free(&r);
}

SERVER_TEST(hello_name_percent_decoded)
{
    th_resp r;

    get1(REQ("GET", "/hello/J%C3%BCrgen%20Z"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, "Hello, J\xc3\xbcrgen Z!");
    th_resp_free(&r);
}

SERVER_TEST(hello_bad_percent_is_400)
{
    th_resp r;

    get1(REQ("GET", "/hello/%zz"), &r);
    TH_ASSERT_PROBLEM(&r, 400);
    TH_ASSERT_COMMON(&r);
    th_resp_free(&r);
}

SERVER_TEST(json)
{
    th_resp r;

    get1(REQ("GET", "/json"), &r);
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_COMMON(&r);
    assert_json_ctype(&r);
    assert_body(&r, "{\"message\":\"Hello, World!\"}");
    th_resp_free(&r);
}

SERVER_TEST(users_id)
{
    th_resp r;

    get1(REQ("GET", "/users/42"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_json_ctype(&r);
    assert_body(&r, "{\"id\":\"42\"}");
    th_resp_free(&r);
}

SERVER_TEST(files_rest_of_path)
{
    th_resp r;

    get1(REQ("GET", "/files/a/b/c.txt"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, "a/b/c.txt");
    th_resp_free(&r);
    get1(REQ("GET", "/files/"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, "");
    th_resp_free(&r);
}

SERVER_TEST(not_found_is_problem)
{
    th_resp r;

    get1(REQ("GET", "/no/such/route"), &r);
    TH_ASSERT_PROBLEM(&r, 404);
    TH_ASSERT_COMMON(&r);
    th_resp_free(&r);
}

SERVER_TEST(wrong_method_is_405_with_allow)
{
    th_resp r;
    const char *allow;

    get1(REQ("DELETE", "/json"), &r);
    TH_ASSERT_PROBLEM(&r, 405);
    allow = th_hdr(&r, "Allow");
    cr_assert(allow != NULL, "405 without Allow");
    cr_assert(th_hdr_has_token(&r, "Allow", "GET"), "Allow '%s' lacks GET", allow);
    cr_assert(!th_hdr_has_token(&r, "Allow", "DELETE"), "Allow '%s' lists DELETE", allow);
    th_resp_free(&r);
}

SERVER_TEST(fail_is_500_without_detail_leak)
{
    th_resp r;
    char detail[512];

    get1(REQ("GET", "/fail"), &r);
    TH_ASSERT_PROBLEM(&r, 500);
    TH_ASSERT_COMMON(&r);
    cr_assert_eq(th_json_str(r.body, "detail", detail, sizeof detail), 0);
    cr_assert(strstr(r.body, ".c:") == NULL && strstr(r.body, "TERN_E") == NULL &&
                  strstr(r.body, "errno") == NULL,
              "500 body leaks internals: %s", r.body);
    th_resp_free(&r);
}

SERVER_TEST(silent_handler_is_500)
{
    th_resp r;

    get1(REQ("GET", "/silent"), &r);
    TH_ASSERT_PROBLEM(&r, 500);
    th_resp_free(&r);
}

SERVER_TEST(admin_requires_header)
{
    th_resp r;

    get1(REQ("GET", "/admin/stats"), &r);
    TH_ASSERT_PROBLEM(&r, 403);
    th_resp_free(&r);
    get1("GET /admin/stats HTTP/1.1\r\nHost: localhost\r\nX-Admin: no\r\n\r\n", &r);
    TH_ASSERT_PROBLEM(&r, 403);
    th_resp_free(&r);
    get1("GET /admin/stats HTTP/1.1\r\nHost: localhost\r\nX-Admin: yes\r\n\r\n", &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_json_ctype(&r);
    assert_body(&r, "{\"ok\":true}");
    th_resp_free(&r);
}

SERVER_TEST(sleep_route)
{
    th_resp r;

    get1(REQ("GET", "/sleep/50"), &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, "slept 50");
    cr_assert(r.ms >= 45, "/sleep/50 answered after %.1f ms", r.ms);
    th_resp_free(&r);
    get1(REQ("GET", "/sleep/10001"), &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);
    get1(REQ("GET", "/sleep/abc"), &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);
    get1(REQ("GET", "/sleep/-1"), &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);
}

SERVER_TEST(stream_chunked_http11)
{
    th_resp r;

    get1(REQ("GET", "/stream"), &r);
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_COMMON(&r);
    cr_assert(r.chunked, "/stream is not chunked; head:\n%s", r.head);
    cr_assert_null(th_hdr(&r, "Content-Length"), "chunked response with Content-Length");
    cr_assert_eq(r.nchunks, 3, "expected 3 chunks, got %u", r.nchunks);
    assert_body(&r, "one\ntwo\nthree\n");
    th_resp_free(&r);
}

SERVER_TEST(stream_http10_is_close_delimited)
{
    th_conn c;
    th_resp r;
    int rc;

    conn(&c);
    rc = th_exchange(&c, "GET /stream HTTP/1.0\r\n\r\n", &r);
    TH_ASSERT_OK(rc, "GET /stream HTTP/1.0");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_null(th_hdr(&r, "Transfer-Encoding"), "Transfer-Encoding sent to HTTP/1.0");
    cr_assert(r.until_close, "1.0 stream should be delimited by close; head:\n%s", r.head);
    assert_body(&r, "one\ntwo\nthree\n");
    th_resp_free(&r);
    th_close(&c);
}

/* ------------------------------------------------------------------------ */
/* Request ids and Date                                                       */

SERVER_TEST(request_id_valid_is_echoed)
{
    th_resp r;
    char id128[129], raw[512];

    get1("GET /json HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: abc-DEF_1.2\r\n\r\n", &r);
    cr_assert_str_eq(th_hdr(&r, "X-Request-Id"), "abc-DEF_1.2");
    th_resp_free(&r);

    memset(id128, 'a', 128);
    id128[128] = '\0';
    snprintf(raw, sizeof raw, "GET /json HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: %s\r\n\r\n",
             id128);
    get1(raw, &r);
    cr_assert_str_eq(th_hdr(&r, "X-Request-Id"), id128, "a 128-char id was not kept");
    th_resp_free(&r);
}

SERVER_TEST(request_id_invalid_is_replaced)
{
    static const char *const bad[] = {"has space", "semi;colon", "quote\"", "x/y"};
    th_resp r;
    char raw[512], id129[130];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(raw, sizeof raw,
                 "GET /nope HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: %s\r\n\r\n", bad[i]);
        get1(raw, &r);
        TH_ASSERT_PROBLEM(&r, 404);
        cr_assert(strcmp(th_hdr(&r, "X-Request-Id"), bad[i]) != 0,
                  "invalid id '%s' echoed", bad[i]);
        th_resp_free(&r);
    }
    memset(id129, 'b', 129);
    id129[129] = '\0';
    snprintf(raw, sizeof raw, "GET /json HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: %s\r\n\r\n",
             id129);
    get1(raw, &r);
    cr_assert(strcmp(th_hdr(&r, "X-Request-Id"), id129) != 0, "a 129-char id was echoed");
    th_resp_free(&r);
}

SERVER_TEST(request_id_generated_unique)
{
    th_conn c;
    th_resp r1, r2, r3;

    conn(&c);
    TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &r1), "1st");
    TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &r2), "2nd");
    th_close(&c);
    get1(REQ("GET", "/json"), &r3);
    TH_ASSERT_COMMON(&r1);
    TH_ASSERT_COMMON(&r2);
    cr_assert_str_neq(th_hdr(&r1, "X-Request-Id"), th_hdr(&r2, "X-Request-Id"));
    cr_assert_str_neq(th_hdr(&r1, "X-Request-Id"), th_hdr(&r3, "X-Request-Id"));
    cr_assert_str_neq(th_hdr(&r2, "X-Request-Id"), th_hdr(&r3, "X-Request-Id"));
    th_resp_free(&r1);
    th_resp_free(&r2);
    th_resp_free(&r3);
}

SERVER_TEST(date_on_2xx_and_4xx)
{
    th_resp r;

    get1(REQ("GET", "/json"), &r);
    TH_ASSERT_COMMON(&r);
    cr_assert_eq(th_hdr_count(&r, "Date"), 1);
    th_resp_free(&r);
    get1(REQ("GET", "/missing"), &r);
    TH_ASSERT_STATUS(&r, 404);
    TH_ASSERT_COMMON(&r);
    cr_assert_eq(th_hdr_count(&r, "Date"), 1);
    th_resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* HEAD and OPTIONS                                                           */

static void head_matches_get(const char *path)
{
    th_conn c;
    th_resp g, h, after;
    char raw[256];

    conn(&c);
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    TH_ASSERT_OK(th_exchange(&c, raw, &g), "GET");
    snprintf(raw, sizeof raw, "HEAD %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    TH_ASSERT_OK(th_exchange(&c, raw, &h), "HEAD");
    TH_ASSERT_STATUS(&h, 200);
    TH_ASSERT_COMMON(&h);
    cr_assert_str_eq(th_hdr(&h, "Content-Length"), th_hdr(&g, "Content-Length"),
                     "HEAD Content-Length differs from GET's");
    cr_assert_str_eq(th_hdr(&h, "Content-Type"), th_hdr(&g, "Content-Type"));
    /* no body bytes may follow the HEAD response: the next response parses */
    TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/users/7"), &after), "GET after HEAD");
    TH_ASSERT_STATUS(&after, 200);
    cr_assert_str_eq(after.body, "{\"id\":\"7\"}", "stray bytes after HEAD: got '%s'",
                     th_show(after.body, after.body_len));
    th_resp_free(&g);
    th_resp_free(&h);
    th_resp_free(&after);
    th_close(&c);
}

SERVER_TEST(head_root)
{
    head_matches_get("/");
}

SERVER_TEST(head_json)
{
    head_matches_get("/json");
}

SERVER_TEST(options_route_is_204_with_allow)
{
    th_conn c;
    th_resp r, after;

    conn(&c);
    TH_ASSERT_OK(th_exchange(&c, REQ("OPTIONS", "/hello/x"), &r), "OPTIONS");
    TH_ASSERT_STATUS(&r, 204);
    cr_assert(th_hdr_has_token(&r, "Allow", "GET"), "Allow is '%s'", th_hdr(&r, "Allow"));
    cr_assert(th_hdr_has_token(&r, "Allow", "OPTIONS") || th_hdr_has_token(&r, "Allow", "HEAD"),
              "Allow is '%s'", th_hdr(&r, "Allow"));
    cr_assert_eq(r.body_len, 0);
    TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &after), "GET after OPTIONS");
    TH_ASSERT_STATUS(&after, 200);
    th_resp_free(&r);
    th_resp_free(&after);
    th_close(&c);
}

SERVER_TEST(options_asterisk)
{
    th_conn c;
    th_resp r, after;

    conn(&c);
    TH_ASSERT_OK(th_exchange(&c, "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", &r),
                 "OPTIONS *");
    cr_assert(r.status >= 200 && r.status < 300, "OPTIONS * gave %d; head:\n%s", r.status,
              r.head);
    cr_assert_eq(r.body_len, 0, "OPTIONS * has a body: %s", th_show(r.body, r.body_len));
    TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &after), "GET after OPTIONS *");
    TH_ASSERT_STATUS(&after, 200);
    th_resp_free(&r);
    th_resp_free(&after);
    th_close(&c);
}

/* ------------------------------------------------------------------------ */
/* Persistence and pipelining                                                 */

SERVER_TEST(keepalive_http11_default)
{
    th_conn c;
    th_resp r;

    conn(&c);
    for (int i = 0; i < 5; i++) {
        TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &r), "request on kept-alive conn");
        TH_ASSERT_STATUS(&r, 200);
        cr_assert(!th_hdr_has_token(&r, "Connection", "close"), "1.1 response %d says close", i);
        th_resp_free(&r);
    }
    cr_assert_eq(th_wait_closed(&c, 200), 0, "server closed a kept-alive connection");
    th_close(&c);
}

SERVER_TEST(connection_close_is_honoured)
{
    th_conn c;
    th_resp r;

    conn(&c);
    TH_ASSERT_OK(th_exchange(&c, "GET /json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                             &r),
                 "Connection: close");
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_CLOSES(&c, &r);
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(http10_closes_by_default)
{
    th_conn c;
    th_resp r;

    conn(&c);
    TH_ASSERT_OK(th_exchange(&c, "GET /json HTTP/1.0\r\n\r\n", &r), "HTTP/1.0");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert(!th_hdr_has_token(&r, "Connection", "keep-alive"));
    cr_assert_eq(th_wait_closed(&c, 1000), 1, "1.0 connection not closed");
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(http10_keepalive_persists)
{
    th_conn c;
    th_resp r;

    conn(&c);
    for (int i = 0; i < 3; i++) {
        TH_ASSERT_OK(th_exchange(&c, "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r),
                     "1.0 keep-alive");
        TH_ASSERT_STATUS(&r, 200);
        cr_assert(th_hdr_has_token(&r, "Connection", "keep-alive"),
                  "1.0 keep-alive response lacks Connection: keep-alive; head:\n%s", r.head);
        cr_assert_not_null(th_hdr(&r, "Content-Length"));
        th_resp_free(&r);
    }
    cr_assert_eq(th_wait_closed(&c, 200), 0, "server closed a 1.0 keep-alive connection");
    th_close(&c);
}

SERVER_TEST(pipelining_16_in_order)
{
    /* 16 requests in one write; a slow one in the middle must not reorder */
    static const char *const paths[16] = {
        "/users/0", "/hello/a", "/json", "/users/3", "/files/x4", "/hello/b", "/users/6",
        "/sleep/50", "/users/8", "/hello/c", "/json", "/users/11", "/files/y12", "/hello/d",
        "/users/14", "/",
    };
    static const char *const bodies[16] = {
        "{\"id\":\"0\"}", "Hello, a!", "{\"message\":\"Hello, World!\"}", "{\"id\":\"3\"}",
        "x4", "Hello, b!", "{\"id\":\"6\"}", "slept 50", "{\"id\":\"8\"}", "Hello, c!",
        "{\"message\":\"Hello, World!\"}", "{\"id\":\"11\"}", "y12", "Hello, d!",
        "{\"id\":\"14\"}", "Hello from tern!\n",
    };
    char all[4096];
    size_t n = 0;
    th_conn c;

    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(all + n, sizeof all - n,
                              "GET %s HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: req-%d\r\n\r\n",
                              paths[i], i);
    conn(&c);
    cr_assert_eq(th_send(&c, all, n), 0);
    for (int i = 0; i < 16; i++) {
        th_resp r;
        char id[32];
        int rc = th_read(&c, &r, TH_TIMEOUT_MS, 0);

        cr_assert_eq(rc, TH_OK, "pipelined response %d: %s", i, th_strerr(rc));
        TH_ASSERT_STATUS(&r, 200);
        snprintf(id, sizeof id, "req-%d", i);
        cr_assert_str_eq(th_hdr(&r, "X-Request-Id"), id, "response %d out of order", i);
        assert_body(&r, bodies[i]);
        th_resp_free(&r);
    }
    cr_assert_eq(th_wait_closed(&c, 100), 0, "connection closed after pipelined batch");
    cr_assert_eq(c.len, 0, "extra bytes after 16 responses: %s", th_show(c.buf, c.len));
    th_close(&c);
}

/* ------------------------------------------------------------------------ */
/* Request bodies                                                             */

SERVER_TEST(echo_content_length)
{
    th_resp r;

    get1("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-test\r\n"
         "Content-Length: 11\r\n\r\nhello world",
         &r);
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_COMMON(&r);
    assert_ctype(&r, "application/x-test");
    assert_body(&r, "hello world");
    th_resp_free(&r);
}

SERVER_TEST(echo_default_content_type)
{
    th_resp r;

    get1("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc", &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_ctype(&r, "application/octet-stream");
    assert_body(&r, "abc");
    th_resp_free(&r);
}

SERVER_TEST(echo_empty_body)
{
    th_resp r;

    get1("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(r.body_len, 0);
    cr_assert_str_eq(th_hdr(&r, "Content-Length"), "0");
    th_resp_free(&r);
}

SERVER_TEST(echo_binary_all_bytes)
{
    char req[1024];
    unsigned char body[512];
    size_t n;
    th_conn c;
    th_resp r;

    for (int i = 0; i < 512; i++)
        body[i] = (unsigned char)(i * 7 + (i >> 8));
    n = (size_t)snprintf(req, sizeof req,
                         "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 512\r\n\r\n");
    conn(&c);
    cr_assert_eq(th_send(&c, req, n), 0);
    cr_assert_eq(th_send(&c, body, sizeof body), 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "echo binary");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(r.body_len, 512);
    cr_assert(memcmp(r.body, body, 512) == 0, "binary body changed");
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(echo_large_body)
{
    size_t n = 300 * 1024;
    char *body = malloc(n), head[256];
    th_conn c;
    th_resp r;

    cr_assert_not_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n",
             n);
    conn(&c);
    cr_assert_eq(th_send_str(&c, head), 0);
    cr_assert_eq(th_send(&c, body, n), 0);
    TH_ASSERT_OK(th_read(&c, &r, 5000, 0), "echo 300 KiB");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(r.body_len, n);
    cr_assert(memcmp(r.body, body, n) == 0, "large body changed");
    th_resp_free(&r);
    th_close(&c);
    free(body);
}

SERVER_TEST(echo_chunked_with_extensions_and_trailers)
{
    th_resp r;

    get1("POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
         "Content-Type: text/x-c\r\n\r\n"
         "5;name=value\r\nhello\r\n"
         "1;flag\r\n \r\n"
         "A\r\n0123456789\r\n"
         "a;x=\"quoted\"\r\nabcdefghij\r\n"
         "0;last=1\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n",
         &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_ctype(&r, "text/x-c");
    assert_body(&r, "hello 0123456789abcdefghij");
    cr_assert_null(th_hdr(&r, "X-Trailer"), "trailer leaked into the response");
    th_resp_free(&r);
}

SERVER_TEST(echo_chunked_then_pipelined)
{
    th_conn c;
    th_resp r;

    conn(&c);
    cr_assert_eq(th_send_str(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n"
                                 "3\r\nabc\r\n0\r\n\r\n" REQ("GET", "/users/5")),
                 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "chunked echo");
    assert_body(&r, "abc");
    th_resp_free(&r);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "request after chunked body");
    assert_body(&r, "{\"id\":\"5\"}");
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(echo_many_small_chunks)
{
    char req[16384], want[2048];
    size_t n = 0, w = 0;

    n += (size_t)snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                                           "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 300; i++) {
        char ch = (char)('A' + i % 26);

        n += (size_t)snprintf(req + n, sizeof req - n, "1\r\n%c\r\n", ch);
        want[w++] = ch;
    }
    want[w] = '\0';
    n += (size_t)snprintf(req + n, sizeof req - n, "0\r\n\r\n");
    {
        th_resp r;

        get1(req, &r);
        TH_ASSERT_STATUS(&r, 200);
        assert_body(&r, want);
        th_resp_free(&r);
    }
}

SERVER_TEST(echo_body_split_across_writes)
{
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 64\r\n\r\n";
    static const char body[] = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEF";
    th_conn c;
    th_resp r;

    conn(&c);
    cr_assert_eq(th_send_slow(&c, head, sizeof head - 1, 7, 5), 0);
    cr_assert_eq(th_send_slow(&c, body, sizeof body - 1, 5, 10), 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "split body");
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, body);
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(echo_chunked_split_across_writes)
{
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                              "\r\n4\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    th_conn c;
    th_resp r;

    conn(&c);
    cr_assert_eq(th_send_slow(&c, req, sizeof req - 1, 3, 3), 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "split chunked body");
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, "wikipedia in\r\n\r\nchunks.");
    th_resp_free(&r);
    th_close(&c);
}

/* ------------------------------------------------------------------------ */
/* Expect                                                                     */

SERVER_TEST(expect_100_continue_echo)
{
    th_conn c;
    th_resp r;

    conn(&c);
    cr_assert_eq(th_send_str(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                                 "Expect: 100-continue\r\n\r\n"),
                 0);
    TH_ASSERT_OK(th_read(&c, &r, 1000, 0), "interim response before the body");
    TH_ASSERT_STATUS(&r, 100);
    cr_assert_eq(r.minor, 1);
    th_resp_free(&r);
    cr_assert_eq(th_send_str(&c, "hello"), 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "final response");
    TH_ASSERT_STATUS(&r, 200);
    assert_body(&r, "hello");
    th_resp_free(&r);
    th_close(&c);
}

/*
 * A route that never reads the body: the server must not invite it with a
 * 100; after the final response it either closes or discards the body, so
 * a pipelined request sent after the body is answered normally.
 */
static void expect_without_reading(const char *head, int want_status)
{
    th_conn c;
    th_resp r;
    unsigned info = 0;
    int rc;

    conn(&c);
    cr_assert_eq(th_send_str(&c, head), 0);
    rc = th_read_final(&c, &r, TH_TIMEOUT_MS, 0, &info);
    TH_ASSERT_OK(rc, "final response without reading the body");
    cr_assert_eq(info, 0, "a 100 Continue was sent for a body that is never read");
    TH_ASSERT_STATUS(&r, want_status);
    th_resp_free(&r);
    rc = th_send_str(&c, "hello" REQ("GET", "/users/9"));
    if (rc != 0) {
        cr_assert_eq(th_wait_closed(&c, 1000), 1, "send failed but not closed");
    } else {
        rc = th_read(&c, &r, TH_TIMEOUT_MS, 0);
        if (rc == TH_CLOSED) {
            fprintf(stderr, "expect-without-read: server closed the connection\n");
        } else {
            TH_ASSERT_OK(rc, "pipelined request after the unread body");
            cr_assert_neq(r.status, 100, "a 100 Continue came after the final response");
            TH_ASSERT_STATUS(&r, 200);
            assert_body(&r, "{\"id\":\"9\"}");
            fprintf(stderr, "expect-without-read: server discarded the body, kept the conn\n");
            th_resp_free(&r);
        }
    }
    th_close(&c);
}

SERVER_TEST(expect_100_on_405_route_sends_no_continue)
{
    expect_without_reading("POST /hello/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                           "Expect: 100-continue\r\n\r\n",
                           405);
}

SERVER_TEST(expect_100_on_get_with_body_sends_no_continue)
{
    expect_without_reading("GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                           "Expect: 100-continue\r\n\r\n",
                           200);
}

SERVER_TEST(expect_unknown_is_417)
{
    th_resp r;

    get1("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nExpect: foo\r\n\r\nabc",
         &r);
    TH_ASSERT_PROBLEM(&r, 417);
    th_resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Slow handler isolation (one worker)                                        */

TestSuite(hello_isolation, .fini = th_cleanup_all, .timeout = 30);

Test(hello_isolation, slow_handler_does_not_block_worker)
{
    th_server s;
    th_conn slow, fast;
    th_resp rf, rs;
    double t0, fast_ms, slow_ms;
    int rc;

    cr_assert_eq(th_start(&s, TH_HELLO, "--workers", "1", NULL), 0);
    cr_assert_eq(th_connect(&slow, s.port), 0);
    cr_assert_eq(th_connect(&fast, s.port), 0);
    t0 = th_now_ms();
    cr_assert_eq(th_send_str(&slow, REQ("GET", "/sleep/500")), 0);
    th_sleep_ms(20); /* let the worker enter the slow handler */
    {
        double t1 = th_now_ms();

        rc = th_exchange(&fast, REQ("GET", "/json"), &rf);
        fast_ms = th_now_ms() - t1;
    }
    TH_ASSERT_OK(rc, "fast request");
    TH_ASSERT_STATUS(&rf, 200);
    rc = th_read(&slow, &rs, 3000, 0);
    slow_ms = th_now_ms() - t0;
    TH_ASSERT_OK(rc, "slow request");
    TH_ASSERT_STATUS(&rs, 200);
    cr_assert_str_eq(rs.body, "slept 500");
    fprintf(stderr, "isolation: fast /json took %.1f ms while /sleep/500 ran; slow took %.1f ms\n",
            fast_ms, slow_ms);
    cr_assert(fast_ms < 100, "fast request took %.1f ms behind a sleeping handler", fast_ms);
    cr_assert(slow_ms >= 500, "slow request finished after %.1f ms", slow_ms);
    th_resp_free(&rf);
    th_resp_free(&rs);
    th_close(&slow);
    th_close(&fast);
    rc = th_stop(&s, TH_STOP_MS);
    cr_assert_eq(rc, 0, "exit status %d", rc);
}
