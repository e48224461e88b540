/*
 * test_lifecycle.c - graceful shutdown of tern-hello: SIGTERM/SIGINT on an
 * idle server, idle keep-alive connections closed, an in-flight request
 * allowed to finish while new connections are refused, the shutdown deadline
 * cutting a request that runs too long, and SIGTERM in the middle of load
 * (exit 0, no crash, every response received complete).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: localhost\r\n\r\n"

TestSuite(lifecycle, .fini = th_cleanup_all, .timeout = 30);

static void start(th_server *s, const char *a1, const char *v1)
{
    int rc = a1 ? th_start(s, TH_HELLO, "--workers", "2", a1, v1, NULL)
                : th_start(s, TH_HELLO, "--workers", "2", NULL);

    cr_assert_eq(rc, 0, "tern-hello did not start");
}

Test(lifecycle, sigterm_idle_server_exits_0)
{
    th_server s;
    double t0;
    int rc;

    start(&s, NULL, NULL);
    t0 = th_now_ms();
    th_signal(&s, SIGTERM);
    rc = th_wait(&s, 2000);
    fprintf(stderr, "lifecycle: idle server exited %d after %.0f ms\n", rc, th_now_ms() - t0);
    cr_assert_eq(rc, 0, "exit status %d", rc);
    cr_assert(th_now_ms() - t0 < 1000, "idle shutdown took %.0f ms", th_now_ms() - t0);
    cr_assert_eq(th_stop(&s, 100), 0);
}

Test(lifecycle, sigint_exits_0)
{
    th_server s;
    int rc;

    start(&s, NULL, NULL);
    th_signal(&s, SIGINT);
    rc = th_wait(&s, 2000);
    cr_assert_eq(rc, 0, "exit status after SIGINT: %d", rc);
    cr_assert_eq(th_stop(&s, 100), 0);
}

Test(lifecycle, idle_keepalive_connections_closed_on_sigterm)
{
    enum { N = 4 };
    th_server s;
    th_conn c[N];
    th_resp r;
    double t0;
    int rc;

    start(&s, NULL, NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(th_connect(&c[i], s.port), 0);
        TH_ASSERT_OK(th_exchange(&c[i], REQ("GET", "/json"), &r), "warm-up request");
        TH_ASSERT_STATUS(&r, 200);
        th_resp_free(&r);
    }
    t0 = th_now_ms();
    th_signal(&s, SIGTERM);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(th_wait_closed(&c[i], 1000), 1,
                     "idle keep-alive connection %d still open 1 s after SIGTERM", i);
        cr_assert_eq(c[i].len, 0, "bytes on an idle connection at shutdown: %s",
                     th_show(c[i].buf, c[i].len));
    }
    rc = th_wait(&s, 1500);
    fprintf(stderr, "lifecycle: %d idle conns closed, exit %d after %.0f ms\n", N, rc,
            th_now_ms() - t0);
    cr_assert_eq(rc, 0, "exit status %d", rc);
    for (int i = 0; i < N; i++)
        th_close(&c[i]);
    cr_assert_eq(th_stop(&s, 100), 0);
}

Test(lifecycle, inflight_request_finishes_new_connections_refused)
{
    th_server s;
    th_conn slow, late;
    th_resp r;
    double t0;
    int rc;

    start(&s, NULL, NULL);
    cr_assert_eq(th_connect(&slow, s.port), 0);
    cr_assert_eq(th_send_str(&slow, REQ("GET", "/sleep/1000")), 0);
    th_sleep_ms(100);
    t0 = th_now_ms();
    th_signal(&s, SIGTERM);
    th_sleep_ms(150);

    rc = th_connect(&late, s.port);
    if (rc == 0) {
        th_resp lr;

        (void)th_send_str(&late, REQ("GET", "/json"));
        rc = th_read(&late, &lr, 1000, 0);
        cr_assert_eq(rc, TH_CLOSED, "a connection made after SIGTERM was %s (status %d)",
                     rc == TH_OK ? "served" : th_strerr(rc), lr.status);
        fprintf(stderr, "lifecycle: connect after SIGTERM accepted by the kernel, then closed\n");
        th_resp_free(&lr);
        th_close(&late);
    } else {
        fprintf(stderr, "lifecycle: connect after SIGTERM refused: %s\n", strerror(-rc));
    }

    rc = th_read(&slow, &r, 3000, 0);
    TH_ASSERT_OK(rc, "in-flight /sleep/1000 across SIGTERM");
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_str_eq(r.body, "slept 1000");
    fprintf(stderr, "lifecycle: in-flight response after %.0f ms (Connection: %s)\n",
            th_now_ms() - t0, th_hdr(&r, "Connection") ? th_hdr(&r, "Connection") : "-");
    th_resp_free(&r);
    cr_assert_eq(th_wait_closed(&slow, 1000), 1, "connection kept open after the drain");
    th_close(&slow);
    rc = th_wait(&s, 1000);
    cr_assert_eq(rc, 0, "exit status %d", rc);
    fprintf(stderr, "lifecycle: exited %.0f ms after SIGTERM\n", th_now_ms() - t0);
    cr_assert_eq(th_stop(&s, 100), 0);
}

Test(lifecycle, shutdown_timeout_cuts_long_request)
{
    th_server s;
    th_conn slow;
    th_resp r;
    double t0, dt;
    int rc;

    start(&s, "--shutdown-timeout", "300");
    cr_assert_eq(th_connect(&slow, s.port), 0);
    cr_assert_eq(th_send_str(&slow, REQ("GET", "/sleep/5000")), 0);
    th_sleep_ms(100);
    t0 = th_now_ms();
    th_signal(&s, SIGTERM);
    rc = th_wait(&s, 2000);
    dt = th_now_ms() - t0;
    fprintf(stderr, "lifecycle: with --shutdown-timeout 300 exited %d after %.0f ms\n", rc, dt);
    cr_assert_eq(rc, 0, "exit status %d", rc);
    cr_assert(dt < 1000, "shutdown took %.0f ms with a 300 ms deadline", dt);
    rc = th_read(&slow, &r, 1000, 0);
    cr_assert(rc != TH_OK || r.status != 200, "the cut request still got 200: %s", r.body);
    fprintf(stderr, "lifecycle: the cut request saw: %s (status %d)\n", th_strerr(rc),
            rc == TH_OK ? r.status : 0);
    th_resp_free(&r);
    th_close(&slow);
    cr_assert_eq(th_stop(&s, 100), 0);
}

/* ------------------------------------------------------------------------ */
/* SIGTERM under load                                                         */

struct load {
    int port;
    double end_ms;      /* hard stop for the thread */
    atomic_int ok;      /* complete 200 responses */
    atomic_int bad;     /* truncated, malformed, wrong or hung responses */
    atomic_int closed;  /* connection closed between responses (fine) */
    char why[256];      /* first bad thing seen */
};

static void load_bad(struct load *l, const char *what, int rc)
{
    if (atomic_fetch_add(&l->bad, 1) == 0)
        snprintf(l->why, sizeof l->why, "%s: %s", what, th_strerr(rc));
}

static void *hammer(void *arg)
{
    struct load *l = arg;
    th_conn c;
    int connected = 0;

    while (th_now_ms() < l->end_ms) {
        th_resp r;
        int rc;

        if (!connected) {
            if (th_connect(&c, l->port) != 0)
                break; /* refused: the server stopped accepting */
            connected = 1;
        }
        if (th_send_str(&c, REQ("GET", "/json")) != 0) {
            atomic_fetch_add(&l->closed, 1);
            th_close(&c);
            connected = 0;
            continue;
        }
        rc = th_read(&c, &r, 2000, 0);
        if (rc == TH_OK) {
            if (r.status == 200 && strcmp(r.body, "{\"message\":\"Hello, World!\"}") == 0)
                atomic_fetch_add(&l->ok, 1);
            else if (r.status != 503)
                load_bad(l, "wrong response", rc);
            if (th_hdr_has_token(&r, "Connection", "close")) {
                th_close(&c);
                connected = 0;
            }
        } else if (rc == TH_CLOSED) {
            atomic_fetch_add(&l->closed, 1);
            th_close(&c);
            connected = 0;
        } else {
            load_bad(l, "response", rc);
            th_close(&c);
            connected = 0;
        }
        th_resp_free(&r);
    }
    if (connected)
        th_close(&c);
    return NULL;
}

Test(lifecycle, sigterm_under_load)
{
    enum { T = 4 };
    th_server s;
    pthread_t th[T];
    struct load l;
    int rc, ok_before;

    start(&s, NULL, NULL);
    memset(&l, 0, sizeof l);
    l.port = s.port;
    l.end_ms = th_now_ms() + 1000;
    for (int i = 0; i < T; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &l), 0);
    th_sleep_ms(500);
    ok_before = atomic_load(&l.ok);
    th_signal(&s, SIGTERM);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    rc = th_wait(&s, 2000);
    fprintf(stderr, "lifecycle: under load: %d ok (%d before SIGTERM), %d closed, %d bad; exit %d\n",
            atomic_load(&l.ok), ok_before, atomic_load(&l.closed), atomic_load(&l.bad), rc);
    cr_assert_eq(rc, 0, "exit status %d under load", rc);
    cr_assert(ok_before > 0, "no request succeeded before SIGTERM");
    cr_assert_eq(atomic_load(&l.bad), 0, "%d bad responses; first: %s", atomic_load(&l.bad),
                 l.why);
    cr_assert_eq(th_stop(&s, 100), 0);
}
