/*
 * test_memory.c - memory bounds of a running server.
 *
 * tern-tfb with 2 workers must sit at <= 8 MiB resident when idle, and
 * 10,000 idle keep-alive connections (each has served one request) must add
 * <= 64 MiB.  Resident size is VmRSS from /proc/PID/status.  Only registered
 * for builds without sanitizers (ASan's shadow memory would dominate).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "harness.h"

#define NCONN 10000

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

Test(memory, idle_rss_and_10k_keepalive_connections, .timeout = 180)
{
    struct rlimit rl;
    th_server s;
    th_conn *conns;
    long idle, loaded;
    int n = 0;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < NCONN + 64)
        cr_skip_test("RLIMIT_NOFILE hard limit %lu is below %d", (unsigned long)rl.rlim_max,
                     NCONN + 64);
    cr_assert_eq(th_start(&s, TH_TFB, "--workers", "2", NULL), 0);
    th_sleep_ms(200);
    idle = rss_kib(s.pid);
    cr_log_info("idle RSS: %ld KiB", idle);
    cr_assert(idle > 0 && idle <= 8 * 1024, "idle RSS is %ld KiB (limit 8192)", idle);

    conns = calloc(NCONN, sizeof *conns);
    cr_assert_not_null(conns);
    for (; n < NCONN; n++) {
        th_resp r;
        cr_assert_eq(th_connect(&conns[n], s.port), 0, "connection %d", n);
        cr_assert_eq(th_send_str(&conns[n], "GET /plaintext HTTP/1.1\r\nHost: m\r\n\r\n"), 0);
        int rc = th_read(&conns[n], &r, TH_TIMEOUT_MS, 0);
        TH_ASSERT_OK(rc, "plaintext");
        TH_ASSERT_STATUS(&r, 200);
        th_resp_free(&r);
    }
    th_sleep_ms(200);
    loaded = rss_kib(s.pid);
    cr_log_info("RSS with %d idle keep-alive connections: %ld KiB (+%ld KiB, %.0f bytes each)",
                NCONN, loaded, loaded - idle, (loaded - idle) * 1024.0 / NCONN);
    cr_assert(loaded - idle <= 64 * 1024, "%d connections added %ld KiB (limit 65536)", NCONN,
              loaded - idle);
    for (int i = 0; i < n; i++)
        th_abort(&conns[i]);
    free(conns);
    cr_assert_eq(th_stop(&s, TH_STOP_MS), 0);
}
