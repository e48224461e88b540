/*
 * test_limits.c - every cap and timeout the server enforces: request line
 * (414), header section and field count (431), body size (413, by
 * Content-Length before the body and by chunked while reading, and with
 * Expect: 100-continue), the header, body and keep-alive timeouts (408 or a
 * quiet close), slowloris resistance and the per-worker connection cap.
 *
 * Small limits are set with the command line flags so the tests stay fast.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: localhost\r\n\r\n"

TestSuite(limits, .fini = th_cleanup_all, .timeout = 30);

static void start(th_server *s, const char *a1, const char *v1, const char *a2, const char *v2)
{
    int rc;

    if (a1 == NULL)
        rc = th_start(s, TH_HELLO, "--workers", "1", NULL);
    else if (a2 == NULL)
        rc = th_start(s, TH_HELLO, "--workers", "1", a1, v1, NULL);
    else
        rc = th_start(s, TH_HELLO, "--workers", "1", a1, v1, a2, v2, NULL);
    cr_assert_eq(rc, 0, "tern-hello did not start");
}

static void stop(th_server *s)
{
    int rc = th_stop(s, TH_STOP_MS);

    cr_assert_eq(rc, 0, "tern-hello did not exit 0 after SIGTERM (got %d)", rc);
}

/* Sends raw[0..n) and expects a problem+json with status, Connection: close and the close. */
static void expect_close(th_server *s, const char *raw, size_t n, int status)
{
    th_conn c;
    th_resp r;
    int rc;

    cr_assert_eq(th_connect(&c, s->port), 0);
    rc = th_send(&c, raw, n);
    cr_assert_eq(rc, 0, "send: %s", strerror(-rc));
    rc = th_read_final(&c, &r, TH_TIMEOUT_MS, 0, NULL);
    TH_ASSERT_OK(rc, "limit response");
    TH_ASSERT_STATUS(&r, status);
    TH_ASSERT_CLOSES(&c, &r);
    TH_ASSERT_PROBLEM(&r, status);
    th_resp_free(&r);
    th_close(&c);
}

/* A GET whose request line is exactly line_len bytes (CRLF excluded). */
static char *long_line_request(size_t line_len)
{
    static const char pre[] = "GET /files/", post[] = " HTTP/1.1";
    size_t fill = line_len - (sizeof pre - 1) - (sizeof post - 1);
    char *req = malloc(line_len + 64);

    cr_assert_not_null(req);
    memcpy(req, pre, sizeof pre - 1);
    memset(req + sizeof pre - 1, 'a', fill);
    strcpy(req + sizeof pre - 1 + fill, " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    return req;
}

/* ------------------------------------------------------------------------ */
/* Request line and header section                                            */

Test(limits, request_line_of_8000_is_served)
{
    th_server s;
    th_conn c;
    th_resp r;
    char *req = long_line_request(8000);

    start(&s, NULL, NULL, NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    TH_ASSERT_OK(th_exchange(&c, req, &r), "8000-byte request line");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(r.body_len, 8000 - strlen("GET /files/ HTTP/1.1"), "echoed path of %zu bytes",
                 r.body_len);
    th_resp_free(&r);
    th_close(&c);
    free(req);
    stop(&s);
}

Test(limits, request_line_over_8k_is_414)
{
    th_server s;
    char *req = long_line_request(9000);

    start(&s, NULL, NULL, NULL, NULL);
    expect_close(&s, req, strlen(req), 414);
    free(req);
    stop(&s);
}

Test(limits, request_line_over_8k_without_crlf_is_414)
{
    /* the limit applies before the line is complete */
    th_server s;
    char *req = long_line_request(9000);

    start(&s, NULL, NULL, NULL, NULL);
    req[8500] = '\0';
    expect_close(&s, req, 8500, 414);
    free(req);
    stop(&s);
}

Test(limits, header_section_over_16k_is_431)
{
    th_server s;
    char *req = malloc(32768);
    size_t n = 0;

    cr_assert_not_null(req);
    start(&s, NULL, NULL, NULL, NULL);
    n += (size_t)sprintf(req, "GET /json HTTP/1.1\r\nHost: localhost\r\n");
    for (int i = 0; i < 20; i++) {
        n += (size_t)sprintf(req + n, "X-Pad-%02d: ", i);
        memset(req + n, 'p', 1000);
        n += 1000;
        n += (size_t)sprintf(req + n, "\r\n");
    }
    n += (size_t)sprintf(req + n, "\r\n");
    expect_close(&s, req, n, 431);
    free(req);
    stop(&s);
}

Test(limits, single_huge_field_is_431)
{
    th_server s;
    char *req = malloc(32768);
    size_t n = 0;

    cr_assert_not_null(req);
    start(&s, NULL, NULL, NULL, NULL);
    n += (size_t)sprintf(req, "GET /json HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(req + n, 'b', 17000);
    n += 17000;
    n += (size_t)sprintf(req + n, "\r\n\r\n");
    expect_close(&s, req, n, 431);
    free(req);
    stop(&s);
}

static size_t many_fields(char *req, int count)
{
    size_t n = (size_t)sprintf(req, "GET /json HTTP/1.1\r\nHost: localhost\r\n");

    for (int i = 1; i < count; i++) /* Host is field 1 */
        n += (size_t)sprintf(req + n, "X-F%d: v\r\n", i);
    n += (size_t)sprintf(req + n, "\r\n");
    return n;
}

Test(limits, fields_100_are_served_101_are_431)
{
    th_server s;
    th_conn c;
    th_resp r;
    char req[8192];

    start(&s, NULL, NULL, NULL, NULL);
    many_fields(req, 100);
    cr_assert_eq(th_connect(&c, s.port), 0);
    TH_ASSERT_OK(th_exchange(&c, req, &r), "100 fields");
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    th_close(&c);
    expect_close(&s, req, many_fields(req, 101), 431);
    stop(&s);
}

/* ------------------------------------------------------------------------ */
/* Body size                                                                  */

Test(limits, body_at_max_is_served)
{
    th_server s;
    th_conn c;
    th_resp r;
    char body[1024];

    start(&s, "--max-body", "1024", NULL, NULL);
    memset(body, 'z', sizeof body);
    cr_assert_eq(th_connect(&c, s.port), 0);
    cr_assert_eq(th_send_str(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1024\r\n\r\n"), 0);
    cr_assert_eq(th_send(&c, body, sizeof body), 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "1024-byte body");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(r.body_len, 1024);
    th_resp_free(&r);
    th_close(&c);
    stop(&s);
}

Test(limits, content_length_over_max_is_413_before_body)
{
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1025\r\n\r\n";
    th_server s;

    start(&s, "--max-body", "1024", NULL, NULL);
    /* only the head is sent: the answer must not wait for the body */
    expect_close(&s, head, sizeof head - 1, 413);
    stop(&s);
}

Test(limits, chunked_over_max_is_413)
{
    th_server s;
    char req[4096];
    size_t n;

    start(&s, "--max-body", "1024", NULL, NULL);
    n = (size_t)sprintf(req, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += (size_t)sprintf(req + n, "200\r\n");
        memset(req + n, 'c', 512);
        n += 512;
        n += (size_t)sprintf(req + n, "\r\n");
    }
    n += (size_t)sprintf(req + n, "0\r\n\r\n");
    expect_close(&s, req, n, 413);
    stop(&s);
}

Test(limits, chunked_at_max_is_served)
{
    th_server s;
    th_conn c;
    th_resp r;
    char req[4096];
    size_t n;

    start(&s, "--max-body", "1024", NULL, NULL);
    n = (size_t)sprintf(req, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        n += (size_t)sprintf(req + n, "200\r\n");
        memset(req + n, 'c', 512);
        n += 512;
        n += (size_t)sprintf(req + n, "\r\n");
    }
    n += (size_t)sprintf(req + n, "0\r\n\r\n");
    cr_assert_eq(th_connect(&c, s.port), 0);
    cr_assert_eq(th_send(&c, req, n), 0);
    TH_ASSERT_OK(th_read(&c, &r, TH_TIMEOUT_MS, 0), "chunked 1024");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_eq(r.body_len, 1024);
    th_resp_free(&r);
    th_close(&c);
    stop(&s);
}

Test(limits, expect_100_over_max_is_413_without_continue)
{
    th_server s;
    th_conn c;
    th_resp r;
    unsigned info = 0;

    start(&s, "--max-body", "1024", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    cr_assert_eq(th_send_str(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n"
                                 "Expect: 100-continue\r\n\r\n"),
                 0);
    TH_ASSERT_OK(th_read_final(&c, &r, 1000, 0, &info), "413 without the body");
    cr_assert_eq(info, 0, "100 Continue sent for a body over the limit");
    TH_ASSERT_STATUS(&r, 413);
    TH_ASSERT_CLOSES(&c, &r);
    TH_ASSERT_PROBLEM(&r, 413);
    th_resp_free(&r);
    th_close(&c);
    stop(&s);
}

/* ------------------------------------------------------------------------ */
/* Timeouts                                                                   */

Test(limits, header_timeout_partial_head_is_408)
{
    th_server s;
    th_conn c;
    th_resp r;
    double t0;

    start(&s, "--header-timeout", "300", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    t0 = th_now_ms();
    cr_assert_eq(th_send_str(&c, "GET /json HTTP/1.1\r\nHost: loc"), 0);
    TH_ASSERT_OK(th_read(&c, &r, 2000, 0), "408 after a stalled head");
    fprintf(stderr, "header timeout: 408 after %.0f ms\n", th_now_ms() - t0);
    cr_assert(th_now_ms() - t0 >= 250, "408 came too early (%.0f ms)", th_now_ms() - t0);
    cr_assert(th_now_ms() - t0 <= 1000, "408 came late (%.0f ms)", th_now_ms() - t0);
    TH_ASSERT_STATUS(&r, 408);
    TH_ASSERT_CLOSES(&c, &r);
    TH_ASSERT_PROBLEM(&r, 408);
    th_resp_free(&r);
    th_close(&c);
    stop(&s);
}

Test(limits, header_timeout_covers_dripping_head)
{
    /* a byte every 50 ms never completes the head: cut at the deadline anyway */
    static const char head[] = "GET /json HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    th_server s;
    th_conn c;
    double t0, closed_at = 0;
    int closed = 0;

    start(&s, "--header-timeout", "300", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    t0 = th_now_ms();
    for (size_t i = 0; i < sizeof head - 1 && !closed; i++) {
        if (th_send(&c, head + i, 1) != 0 || th_wait_closed(&c, 50) == 1) {
            closed = 1;
            closed_at = th_now_ms() - t0;
        }
    }
    if (!closed && th_wait_closed(&c, 1000) == 1) {
        closed = 1;
        closed_at = th_now_ms() - t0;
    }
    fprintf(stderr, "dripping head: closed=%d after %.0f ms, got %zu bytes: %s\n", closed,
            closed_at, c.len, th_show(c.buf, c.len > 40 ? 40 : c.len));
    cr_assert(closed, "a dripping client was never cut off");
    cr_assert(closed_at <= 1200, "dripping client cut only after %.0f ms", closed_at);
    if (c.len > 0)
        cr_assert(strncmp(c.buf, "HTTP/1.1 408 ", 13) == 0, "unexpected answer: %s",
                  th_show(c.buf, c.len));
    th_close(&c);
    stop(&s);
}

Test(limits, body_timeout_stalled_body_is_408)
{
    th_server s;
    th_conn c;
    th_resp r;
    double t0;

    start(&s, "--body-timeout", "300", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    cr_assert_eq(th_send_str(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n"
                                 "only ten.."),
                 0);
    t0 = th_now_ms();
    TH_ASSERT_OK(th_read(&c, &r, 2000, 0), "408 after a stalled body");
    fprintf(stderr, "body timeout: 408 after %.0f ms\n", th_now_ms() - t0);
    cr_assert(th_now_ms() - t0 >= 250, "408 came too early (%.0f ms)", th_now_ms() - t0);
    cr_assert(th_now_ms() - t0 <= 1000, "408 came late (%.0f ms)", th_now_ms() - t0);
    TH_ASSERT_STATUS(&r, 408);
    TH_ASSERT_CLOSES(&c, &r);
    TH_ASSERT_PROBLEM(&r, 408);
    th_resp_free(&r);
    th_close(&c);
    stop(&s);
}

Test(limits, body_timeout_is_idle_time_not_total)
{
    /* a body that keeps moving (every 100 ms) outlives a 300 ms idle timeout */
    static const char body[] = "0123456789";
    th_server s;
    th_conn c;
    th_resp r;

    start(&s, "--body-timeout", "300", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    cr_assert_eq(th_send_str(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n"),
                 0);
    cr_assert_eq(th_send_slow(&c, body, 10, 1, 100), 0);
    TH_ASSERT_OK(th_read(&c, &r, 2000, 0), "slow but moving body");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_str_eq(r.body, body);
    th_resp_free(&r);
    th_close(&c);
    stop(&s);
}

Test(limits, keepalive_timeout_closes_idle_connection)
{
    th_server s;
    th_conn c;
    th_resp r;
    double t0, dt;

    start(&s, "--keepalive-timeout", "300", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &r), "first request");
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    t0 = th_now_ms();
    cr_assert_eq(th_wait_closed(&c, 2000), 1, "idle keep-alive connection not closed in 2 s");
    dt = th_now_ms() - t0;
    fprintf(stderr, "keep-alive timeout: closed after %.0f ms idle\n", dt);
    cr_assert(dt >= 250, "closed too early: %.0f ms", dt);
    cr_assert(dt <= 1000, "closed too late: %.0f ms", dt);
    cr_assert_eq(c.len, 0, "bytes sent on an idle close: %s", th_show(c.buf, c.len));
    th_close(&c);
    stop(&s);
}

Test(limits, keepalive_timeout_is_reset_by_requests)
{
    th_server s;
    th_conn c;
    th_resp r;

    start(&s, "--keepalive-timeout", "300", NULL, NULL);
    cr_assert_eq(th_connect(&c, s.port), 0);
    for (int i = 0; i < 5; i++) {
        TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &r), "request at 150 ms spacing");
        TH_ASSERT_STATUS(&r, 200);
        th_resp_free(&r);
        th_sleep_ms(150);
    }
    th_close(&c);
    stop(&s);
}

/* ------------------------------------------------------------------------ */
/* Slow clients and connection caps                                           */

Test(limits, slowloris_does_not_block_new_clients)
{
    enum { N = 50 };
    static const char head[] = "GET /json HTTP/1.1\r\nHost: localhost\r\nX-a: b\r\n";
    th_server s;
    th_conn *slow = calloc(N, sizeof *slow);
    double worst = 0;

    cr_assert_not_null(slow);
    start(&s, NULL, NULL, NULL, NULL);
    for (int i = 0; i < N; i++)
        cr_assert_eq(th_connect(&slow[i], s.port), 0, "slow connection %d", i);
    for (size_t b = 0; b < 8; b++) {
        th_conn c;
        th_resp r;
        double t0;

        for (int i = 0; i < N; i++)
            (void)th_send(&slow[i], head + b * 3, 3);
        t0 = th_now_ms();
        cr_assert_eq(th_connect(&c, s.port), 0, "new client refused during slowloris");
        TH_ASSERT_OK(th_exchange(&c, REQ("GET", "/json"), &r), "normal request");
        TH_ASSERT_STATUS(&r, 200);
        if (th_now_ms() - t0 > worst)
            worst = th_now_ms() - t0;
        th_resp_free(&r);
        th_close(&c);
        th_sleep_ms(30);
    }
    fprintf(stderr, "slowloris: worst normal request took %.1f ms with %d dripping conns\n", worst,
            N);
    cr_assert(worst < 250, "normal request took %.1f ms during slowloris", worst);
    for (int i = 0; i < N; i++)
        th_abort(&slow[i]);
    free(slow);
    stop(&s);
}

Test(limits, max_conns_refuses_the_21st_cleanly)
{
    enum { N = 20 };
    th_server s;
    th_conn conns[N], extra;
    th_resp r;
    int rc;

    start(&s, "--max-conns", "20", NULL, NULL);
    for (int i = 0; i < N; i++)
        cr_assert_eq(th_connect(&conns[i], s.port), 0, "connection %d", i);
    th_sleep_ms(100); /* let the worker accept all 20 */
    rc = th_connect(&extra, s.port);
    if (rc != 0) {
        fprintf(stderr, "max-conns: 21st connect failed: %s\n", strerror(-rc));
    } else {
        rc = th_read(&extra, &r, 1000, 0);
        if (rc == TH_OK) {
            fprintf(stderr, "max-conns: 21st got %d then close\n", r.status);
            TH_ASSERT_STATUS(&r, 503);
            TH_ASSERT_CLOSES(&extra, &r);
            TH_ASSERT_PROBLEM(&r, 503);
            th_resp_free(&r);
        } else {
            cr_assert_eq(rc, TH_CLOSED, "21st connection neither answered nor closed: %s",
                         th_strerr(rc));
            fprintf(stderr, "max-conns: 21st closed without a response (reset=%d)\n",
                    extra.reset);
        }
        th_close(&extra);
    }
    for (int i = 0; i < N; i++) {
        TH_ASSERT_OK(th_exchange(&conns[i], REQ("GET", "/json"), &r), "one of the first 20");
        TH_ASSERT_STATUS(&r, 200);
        th_resp_free(&r);
    }
    for (int i = 0; i < N; i++)
        th_close(&conns[i]);
    /* capacity is back once they are gone */
    th_sleep_ms(100);
    cr_assert_eq(th_connect(&extra, s.port), 0);
    TH_ASSERT_OK(th_exchange(&extra, REQ("GET", "/json"), &r), "after the 20 closed");
    TH_ASSERT_STATUS(&r, 200);
    th_resp_free(&r);
    th_close(&extra);
    stop(&s);
}
