/*
 * test_http_rules.c - every rule of specs/http1.md section 1 over the wire,
 * one test each: request framing (Content-Length, Transfer-Encoding, chunk
 * sizes), field syntax (space before colon, obs-fold, bare CR/LF, NUL),
 * Host, the request line (methods, targets, versions) and Date.
 *
 * A framing error must get an application/problem+json answer carrying
 * `Connection: close`, after which the server closes the connection and
 * never answers bytes that followed (no smuggled second response).
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static th_server srv;

static void start_server(void)
{
    cr_assert_eq(th_start(&srv, TH_HELLO, "--workers", "1", NULL), 0, "tern-hello did not start");
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
TestSuite(rules, .init = start_server, .fini = th_cleanup_all, .timeout = 30);

#define SERVER_TEST(name)                                                                   \
    static void name##_body(void);                                                          \
    Test(rules, name)                                                                     \
    {                                                                                       \
        name##_body();                                                                      \
        stop_checked();                                                                     \
    }                                                                                       \
    static void name##_body(void)

/*
 * Sends raw[0..n) on a new connection, expects a problem+json with status;
 * with must_close, also `Connection: close`, the close, and nothing more.
 */
static void expect_n(const char *raw, size_t n, int status, int must_close)
{
    th_conn c;
    th_resp r;
    int rc;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    rc = th_send(&c, raw, n);
    cr_assert_eq(rc, 0, "send: %s", strerror(-rc));
    rc = th_read_final(&c, &r, TH_TIMEOUT_MS, 0, NULL);
    cr_assert_eq(rc, TH_OK, "request %s: %s", th_show(raw, n), th_strerr(rc));
    /* status and connection handling first, so a missing request id does not hide them */
    TH_ASSERT_STATUS(&r, status);
    if (must_close)
        TH_ASSERT_CLOSES(&c, &r);
    TH_ASSERT_PROBLEM(&r, status);
    TH_ASSERT_COMMON(&r);
    th_resp_free(&r);
    th_close(&c);
}

#define EXPECT(lit, status, must_close) expect_n((lit), sizeof(lit) - 1, (status), (must_close))
#define REJECT(lit) EXPECT(lit, 400, 1)

/* Sends raw on a new connection and expects 200 with the body. */
static void expect_ok(const char *raw, const char *body)
{
    th_conn c;
    th_resp r;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    TH_ASSERT_OK(th_exchange(&c, raw, &r), th_show(raw, strlen(raw)));
    TH_ASSERT_STATUS(&r, 200);
    TH_ASSERT_COMMON(&r);
    cr_assert_str_eq(r.body, body, "body '%s', expected '%s'", th_show(r.body, r.body_len), body);
    th_resp_free(&r);
    th_close(&c);
}

#define POST_ECHO "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
#define SMUGGLED "GET /users/666 HTTP/1.1\r\nHost: localhost\r\n\r\n"

/* ------------------------------------------------------------------------ */
/* Content-Length / Transfer-Encoding                                         */

SERVER_TEST(cl_and_te_together_is_400_and_close)
{
    REJECT(POST_ECHO "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\n" SMUGGLED);
}

SERVER_TEST(te_and_cl_other_order_is_400_and_close)
{
    REJECT(POST_ECHO "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
                     "0\r\n\r\n" SMUGGLED);
}

SERVER_TEST(te_without_final_chunked_is_400)
{
    REJECT(POST_ECHO "Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(te_gzip_only_is_501)
{
    /*
     * An unknown coding (9112 6.1: SHOULD 501) that is also not chunked (6.3
     * r4: 400); either way the connection must close.  tern's contract: 501.
     */
    EXPECT(POST_ECHO "Transfer-Encoding: gzip\r\n\r\nxxxxx", 501, 1);
}

SERVER_TEST(te_gzip_chunked_is_501)
{
    EXPECT(POST_ECHO "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501, 1);
}

SERVER_TEST(te_in_http10_is_400)
{
    REJECT("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(cl_plus_sign_is_400)
{
    REJECT(POST_ECHO "Content-Length: +5\r\n\r\nhello");
}

SERVER_TEST(cl_hex_is_400)
{
    REJECT(POST_ECHO "Content-Length: 0x5\r\n\r\nhello");
}

SERVER_TEST(cl_space_inside_is_400)
{
    REJECT(POST_ECHO "Content-Length: 1 5\r\n\r\nhello");
}

SERVER_TEST(cl_empty_is_400)
{
    REJECT(POST_ECHO "Content-Length: \r\n\r\nhello");
}

SERVER_TEST(cl_different_list_is_400)
{
    REJECT(POST_ECHO "Content-Length: 5,6\r\n\r\nhello");
}

SERVER_TEST(cl_two_different_fields_is_400)
{
    REJECT(POST_ECHO "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
}

SERVER_TEST(cl_negative_is_400)
{
    REJECT(POST_ECHO "Content-Length: -5\r\n\r\nhello");
}

SERVER_TEST(cl_overflow_is_400)
{
    REJECT(POST_ECHO "Content-Length: 99999999999999999999999\r\n\r\nhello");
}

SERVER_TEST(cl_trailing_garbage_is_400)
{
    REJECT(POST_ECHO "Content-Length: 5a\r\n\r\nhello");
}

SERVER_TEST(cl_identical_list_is_accepted)
{
    expect_ok(POST_ECHO "Content-Length: 5, 5\r\n\r\nhello", "hello");
}

/* ------------------------------------------------------------------------ */
/* Chunk sizes                                                                */

#define CHUNKED POST_ECHO "Transfer-Encoding: chunked\r\n\r\n"

SERVER_TEST(chunk_size_hex_prefix_is_400)
{
    REJECT(CHUNKED "0x5\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_size_plus_is_400)
{
    REJECT(CHUNKED "+5\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_size_negative_is_400)
{
    REJECT(CHUNKED "-5\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_size_empty_is_400)
{
    REJECT(CHUNKED "\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_size_not_hex_is_400)
{
    REJECT(CHUNKED "g\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_size_overflow_is_400)
{
    REJECT(CHUNKED "10000000000000005\r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_size_trailing_space_is_400)
{
    REJECT(CHUNKED "5 \r\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_line_bare_lf_is_400)
{
    REJECT(CHUNKED "5\nhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_line_cr_without_lf_is_400)
{
    REJECT(CHUNKED "5\rXhello\r\n0\r\n\r\n");
}

SERVER_TEST(chunk_data_without_crlf_is_400)
{
    REJECT(CHUNKED "5\r\nhelloXX0\r\n\r\n");
}

/* ------------------------------------------------------------------------ */
/* Field syntax                                                               */

SERVER_TEST(space_before_colon_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\nX-Foo : bar\r\n\r\n");
}

SERVER_TEST(obs_fold_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\nX-Foo: bar\r\n  baz\r\n\r\n");
}

SERVER_TEST(bare_cr_in_value_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\rb\r\n\r\n");
}

SERVER_TEST(bare_lf_line_ends_are_400)
{
    REJECT("GET /json HTTP/1.1\nHost: localhost\n\n");
}

SERVER_TEST(bare_lf_after_field_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\nX-Foo: a\r\n\r\n");
}

SERVER_TEST(nul_in_value_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\0b\r\n\r\n");
}

SERVER_TEST(whitespace_before_first_field_is_400)
{
    REJECT("GET /json HTTP/1.1\r\n Host: localhost\r\n\r\n");
}

SERVER_TEST(empty_field_name_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\n: empty\r\n\r\n");
}

SERVER_TEST(space_in_field_name_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\nX Foo: bar\r\n\r\n");
}

/* ------------------------------------------------------------------------ */
/* Host                                                                       */

SERVER_TEST(missing_host_in_11_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nAccept: */*\r\n\r\n");
}

SERVER_TEST(two_hosts_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost\r\nHost: example.com\r\n\r\n");
}

SERVER_TEST(invalid_host_space_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: local host\r\n\r\n");
}

SERVER_TEST(invalid_host_port_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: localhost:80x\r\n\r\n");
}

SERVER_TEST(invalid_host_userinfo_is_400)
{
    REJECT("GET /json HTTP/1.1\r\nHost: user@localhost\r\n\r\n");
}

SERVER_TEST(http10_without_host_is_200)
{
    expect_ok("GET /json HTTP/1.0\r\n\r\n", "{\"message\":\"Hello, World!\"}");
}

/* ------------------------------------------------------------------------ */
/* Request line                                                               */

SERVER_TEST(absolute_form_is_accepted)
{
    expect_ok("GET http://localhost/json HTTP/1.1\r\nHost: localhost\r\n\r\n",
              "{\"message\":\"Hello, World!\"}");
}

SERVER_TEST(absolute_form_with_port_and_query)
{
    expect_ok("GET http://localhost:8080/users/12?x=1 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
              "{\"id\":\"12\"}");
}

SERVER_TEST(unknown_method_is_405_with_allow)
{
    th_conn c;
    th_resp r;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    TH_ASSERT_OK(th_exchange(&c, "FOO / HTTP/1.1\r\nHost: localhost\r\n\r\n", &r), "FOO /");
    TH_ASSERT_PROBLEM(&r, 405);
    cr_assert(th_hdr_has_token(&r, "Allow", "GET"), "Allow is '%s'",
              th_hdr(&r, "Allow") ? th_hdr(&r, "Allow") : "(none)");
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(method_of_32_chars_is_405)
{
    EXPECT("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, 0);
}

SERVER_TEST(method_longer_than_32_is_501)
{
    EXPECT("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\nHost: localhost\r\n\r\n", 501, 1);
}

SERVER_TEST(lowercase_method_is_405)
{
    th_conn c;
    th_resp r;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    TH_ASSERT_OK(th_exchange(&c, "get / HTTP/1.1\r\nHost: localhost\r\n\r\n", &r), "get /");
    TH_ASSERT_PROBLEM(&r, 405);
    cr_assert_not_null(th_hdr(&r, "Allow"), "405 without Allow");
    th_resp_free(&r);
    th_close(&c);
}

SERVER_TEST(invalid_method_char_is_400)
{
    REJECT("GE(T / HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(whitespace_in_target_is_400)
{
    REJECT("GET /json x HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(asterisk_form_only_for_options)
{
    REJECT("GET * HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(http20_is_505)
{
    EXPECT("GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505, 1);
}

SERVER_TEST(http12_is_505)
{
    EXPECT("GET / HTTP/1.2\r\nHost: localhost\r\n\r\n", 505, 1);
}

SERVER_TEST(garbage_version_is_400)
{
    REJECT("GET / HTXP/1.1\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(version_without_dot_is_400)
{
    REJECT("GET / HTTP/11\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(lowercase_version_is_400)
{
    REJECT("GET / http/1.1\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(missing_version_is_400)
{
    REJECT("GET /\r\nHost: localhost\r\n\r\n");
}

SERVER_TEST(double_space_in_request_line_is_400)
{
    REJECT("GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

/* ------------------------------------------------------------------------ */
/* Date                                                                       */

SERVER_TEST(date_present_on_2xx_and_4xx)
{
    th_conn c;
    th_resp ok, bad;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    TH_ASSERT_OK(th_exchange(&c, "GET /json HTTP/1.1\r\nHost: localhost\r\n\r\n", &ok), "200");
    TH_ASSERT_STATUS(&ok, 200);
    TH_ASSERT_COMMON(&ok);
    TH_ASSERT_OK(th_exchange(&c, "GET /json HTTP/1.1\r\n\r\n", &bad), "400");
    TH_ASSERT_STATUS(&bad, 400);
    TH_ASSERT_COMMON(&bad);
    th_resp_free(&ok);
    th_resp_free(&bad);
    th_close(&c);
}
