/*
 * test_tfb.c - tern-tfb (bench/tfb) against what the TechEmpower verifier
 * checks (specs/tfb.md section 1): exact bodies, the Content-Type patterns,
 * Server and Date on every response, a Date that changes, and 16 pipelined
 * plaintext requests answered in one go.
 */
#include <regex.h>
#include <stdio.h>
#include <string.h>

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
