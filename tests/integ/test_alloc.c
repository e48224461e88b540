/*
 * test_alloc.c - a warm tern-tfb serves /plaintext and /json without heap
 * allocations.
 *
 * tern-tfb runs with the alloccount.c shim preloaded, which counts every
 * malloc/calloc/realloc/memalign in the process (tern's, libc's, anyone's).
 * After a warm-up on a fixed set of keep-alive connections, the count is
 * read (SIGUSR2 makes the shim write it to a file); then 20,000 more
 * requests run on the same connections, pipelined and not, and the count
 * must not have moved.  Only registered for builds without sanitizers (ASan
 * interposes malloc itself).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

#define NCONN 8

static long read_count(th_server *s, const char *file)
{
    long v = -1;

    unlink(file);
    th_signal(s, SIGUSR2);
    for (int i = 0; i < 100 && v < 0; i++) {
        FILE *f = fopen(file, "r");
        th_sleep_ms(10);
        if (f == NULL)
            continue;
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Sends `depth` pipelined GETs of path on c and reads every response. */
static void round_trip(th_conn *c, const char *path, int depth)
{
    char req[256], batch[256 * 16];
    size_t n = 0;
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);

    for (int i = 0; i < depth; i++) {
        memcpy(batch + n, req, (size_t)len);
        n += (size_t)len;
    }
    cr_assert_eq(th_send(c, batch, n), 0);
    for (int i = 0; i < depth; i++) {
        th_resp r;
        int rc = th_read(c, &r, TH_TIMEOUT_MS, 0);
        TH_ASSERT_OK(rc, path);
        TH_ASSERT_STATUS(&r, 200);
        th_resp_free(&r);
    }
}

static void work(th_conn *conns, int rounds)
{
    for (int k = 0; k < rounds; k++)
        for (int i = 0; i < NCONN; i++) {
            round_trip(&conns[i], "/plaintext", 16);
            round_trip(&conns[i], "/json", 1);
            round_trip(&conns[i], "/json", 4);
        }
}

Test(alloc, warm_server_allocates_nothing_per_request, .timeout = 120)
{
    const char *shim = getenv("TERN_ALLOC_SHIM");
    char file[64];
    th_server s;
    th_conn conns[NCONN];
    long before, after;

    cr_assert(shim != NULL, "TERN_ALLOC_SHIM is not set");
    snprintf(file, sizeof file, "/tmp/tern-alloc-%d.txt", (int)getpid());
    setenv("LD_PRELOAD", shim, 1);
    setenv("ALLOCCOUNT_FILE", file, 1);
    int rc = th_start(&s, TH_TFB, "--workers", "2", NULL);
    unsetenv("LD_PRELOAD");
    cr_assert_eq(rc, 0);

    for (int i = 0; i < NCONN; i++)
        cr_assert_eq(th_connect(&conns[i], s.port), 0);
    work(conns, 20); /* warm-up: pools, buffers and arenas reach their size */
    before = read_count(&s, file);
    cr_assert_geq(before, 0, "the shim did not report");
    work(conns, 95); /* 95 * 8 * 21 = 15,960 requests */
    after = read_count(&s, file);
    cr_log_info("heap allocations: %ld after warm-up, %ld after 15,960 more requests", before,
                after);
    cr_assert_eq(after, before, "%ld heap allocations during 15,960 warm requests",
                 after - before);
    for (int i = 0; i < NCONN; i++)
        th_close(&conns[i]);
    cr_assert_eq(th_stop(&s, TH_STOP_MS), 0);
    unlink(file);
}
