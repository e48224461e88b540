/*
 * test_timer.c - unit tests for the timer min-heap (src/net/timer.c).
 *
 * Covers ordering, FIFO ties, moving, disarming from the middle, callbacks
 * that arm and disarm timers (themselves included), and a randomized run
 * checked against a plain sorted reference.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "tern/core.h"
#include "net/timer.h"

/* A timer that records the order it fired in. */
typedef struct rec_timer {
    tern_timer t;
    int id;
} rec_timer;

static int g_fired[64];
static size_t g_nfired;

static void record_cb(tern_timer *t)
{
    rec_timer *r = (rec_timer *)t;
    cr_assert_eq(t->idx, 0, "a running timer is disarmed");
    cr_assert_lt(g_nfired, 64);
    g_fired[g_nfired++] = r->id;
}

static void reset_fired(void)
{
    g_nfired = 0;
}

/* Checks the heap invariant and every idx back-pointer. */
static void check_heap(const timer_heap *h)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        cr_assert_eq(h->v[i]->idx, i + 1);
        if (i > 0) {
            const tern_timer *p = h->v[(i - 1) / 2], *c = h->v[i];
            cr_assert(p->deadline < c->deadline ||
                      (p->deadline == c->deadline && p->seq < c->seq));
        }
    }
}

Test(timer, empty)
{
    timer_heap h;

    timer_heap_init(&h);
    cr_assert_eq(timer_next_deadline(&h), INT64_MAX);
    cr_assert_eq(timer_run_expired(&h, INT64_MAX), 0);
    timer_heap_deinit(&h);
}

Test(timer, ordering)
{
    static const int64_t dl[] = { 50, 10, 40, 30, 20, 60, 5, 45 };
    rec_timer r[8];
    timer_heap h;
    size_t i;

    timer_heap_init(&h);
    reset_fired();
    for (i = 0; i < 8; i++) {
        timer_init(&r[i].t, record_cb);
        r[i].id = (int)dl[i];
        cr_assert_not(timer_armed(&r[i].t));
        cr_assert_eq(timer_arm(&h, &r[i].t, dl[i]), 0);
        cr_assert(timer_armed(&r[i].t));
        check_heap(&h);
    }
    cr_assert_eq(timer_next_deadline(&h), 5);
    cr_assert_eq(timer_run_expired(&h, 4), 0);
    cr_assert_eq(timer_run_expired(&h, 30), 4);
    cr_assert_eq(g_nfired, 4);
    cr_assert_eq(g_fired[0], 5);
    cr_assert_eq(g_fired[1], 10);
    cr_assert_eq(g_fired[2], 20);
    cr_assert_eq(g_fired[3], 30);
    cr_assert_eq(timer_next_deadline(&h), 40);
    check_heap(&h);
    cr_assert_eq(timer_run_expired(&h, 1000), 4);
    cr_assert_eq(g_fired[4], 40);
    cr_assert_eq(g_fired[5], 45);
    cr_assert_eq(g_fired[6], 50);
    cr_assert_eq(g_fired[7], 60);
    cr_assert_eq(timer_next_deadline(&h), INT64_MAX);
    for (i = 0; i < 8; i++)
        cr_assert_not(timer_armed(&r[i].t));
    timer_heap_deinit(&h);
}

Test(timer, fifo_ties)
{
    rec_timer r[20];
    timer_heap h;
    int i;

    timer_heap_init(&h);
    reset_fired();
    for (i = 0; i < 20; i++) {
        timer_init(&r[i].t, record_cb);
        r[i].id = i;
        /* Interleave two deadlines so ties are spread over the heap. */
        timer_arm(&h, &r[i].t, i % 2 ? 100 : 200);
    }
    cr_assert_eq(timer_run_expired(&h, 200), 20);
    for (i = 0; i < 10; i++) {
        cr_assert_eq(g_fired[i], 2 * i + 1, "deadline 100 in arming order");
        cr_assert_eq(g_fired[10 + i], 2 * i, "deadline 200 in arming order");
    }
    timer_heap_deinit(&h);
}

Test(timer, rearm_earlier_and_later)
{
    rec_timer r[5];
    timer_heap h;
    int i;

    timer_heap_init(&h);
    reset_fired();
    for (i = 0; i < 5; i++) {
        timer_init(&r[i].t, record_cb);
        r[i].id = i;
        timer_arm(&h, &r[i].t, 10 * (i + 1)); /* 10 20 30 40 50 */
    }
    timer_arm(&h, &r[4].t, 5);   /* latest becomes earliest */
    check_heap(&h);
    timer_arm(&h, &r[0].t, 45);  /* earliest becomes late */
    check_heap(&h);
    timer_arm(&h, &r[2].t, 20);  /* ties with r[1], armed after it */
    check_heap(&h);
    cr_assert_eq(h.n, 5, "re-arming does not add entries");
    cr_assert_eq(timer_next_deadline(&h), 5);
    cr_assert_eq(timer_run_expired(&h, 100), 5);
    cr_assert_eq(g_fired[0], 4);
    cr_assert_eq(g_fired[1], 1);
    cr_assert_eq(g_fired[2], 2);
    cr_assert_eq(g_fired[3], 3);
    cr_assert_eq(g_fired[4], 0);
    timer_heap_deinit(&h);
}

Test(timer, disarm_middle)
{
    rec_timer r[15];
    timer_heap h;
    int i;

    timer_heap_init(&h);
    reset_fired();
    for (i = 0; i < 15; i++) {
        timer_init(&r[i].t, record_cb);
        r[i].id = i;
        timer_arm(&h, &r[i].t, i);
    }
    timer_disarm(&h, &r[7].t);
    check_heap(&h);
    timer_disarm(&h, &r[1].t);
    check_heap(&h);
    timer_disarm(&h, &r[14].t); /* the last slot */
    check_heap(&h);
    timer_disarm(&h, &r[0].t);  /* the root */
    check_heap(&h);
    timer_disarm(&h, &r[7].t);  /* already disarmed: no-op */
    cr_assert_eq(h.n, 11);
    cr_assert_not(timer_armed(&r[7].t));
    cr_assert_eq(timer_run_expired(&h, 100), 11);
    {
        static const int want[] = { 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13 };
        for (i = 0; i < 11; i++)
            cr_assert_eq(g_fired[i], want[i]);
    }
    timer_heap_deinit(&h);
}

/* Callbacks that act on the heap while it is being run. */
static timer_heap g_h;
static rec_timer g_r[6];
static int g_self_count;

static void self_rearm_cb(tern_timer *t)
{
    rec_timer *r = (rec_timer *)t;
    record_cb(t);
    if (++g_self_count < 3)
        cr_assert_eq(timer_arm(&g_h, t, r->t.deadline + 10), 0);
}

static void disarm_others_cb(tern_timer *t)
{
    record_cb(t);
    /* g_r[2] is due in this same pass, g_r[3] is not. */
    timer_disarm(&g_h, &g_r[2].t);
    timer_disarm(&g_h, &g_r[3].t);
    /* Arm one that is already due: it waits for the next pass. */
    timer_arm(&g_h, &g_r[4].t, 0);
    /* Disarming and re-arming ourselves is fine too. */
    timer_disarm(&g_h, t);
    timer_arm(&g_h, t, 1000);
}

Test(timer, callbacks_modify_heap)
{
    int i;

    timer_heap_init(&g_h);
    reset_fired();
    g_self_count = 0;
    for (i = 0; i < 6; i++) {
        timer_init(&g_r[i].t, record_cb);
        g_r[i].id = i;
    }
    g_r[0].t.cb = self_rearm_cb;
    g_r[1].t.cb = disarm_others_cb;
    timer_arm(&g_h, &g_r[0].t, 10);
    timer_arm(&g_h, &g_r[1].t, 11);
    timer_arm(&g_h, &g_r[2].t, 12);
    timer_arm(&g_h, &g_r[3].t, 50);
    timer_arm(&g_h, &g_r[5].t, 12);

    /* 0 fires (re-arms for 20), 1 fires (drops 2 and 3, arms 4 at 0, moves
     * itself to 1000).  4 is now the earliest but was armed during the pass,
     * so the pass ends there; 5 (due at 12) keeps deadline order and runs
     * after 4 in the next pass. */
    cr_assert_eq(timer_run_expired(&g_h, 25), 2);
    cr_assert_eq(g_nfired, 2);
    cr_assert_eq(g_fired[0], 0);
    cr_assert_eq(g_fired[1], 1);
    cr_assert_not(timer_armed(&g_r[2].t));
    cr_assert_not(timer_armed(&g_r[3].t));
    cr_assert(timer_armed(&g_r[4].t));
    cr_assert_eq(timer_next_deadline(&g_h), 0);
    check_heap(&g_h);

    /* Next pass: 4 (deadline 0), 5 (12), then 0 (20, re-arms for 30). */
    cr_assert_eq(timer_run_expired(&g_h, 25), 3);
    cr_assert_eq(g_fired[2], 4);
    cr_assert_eq(g_fired[3], 5);
    cr_assert_eq(g_fired[4], 0);
    cr_assert_eq(timer_next_deadline(&g_h), 30);
    cr_assert_eq(timer_run_expired(&g_h, 100), 1);
    cr_assert_eq(g_fired[5], 0);
    cr_assert_eq(g_self_count, 3);
    cr_assert_not(timer_armed(&g_r[0].t), "stopped re-arming after 3 runs");
    cr_assert_eq(timer_next_deadline(&g_h), 1000);
    timer_heap_deinit(&g_h);
    cr_assert_not(timer_armed(&g_r[1].t), "deinit disarms");
}

/* A callback re-arming itself for "now" must not loop forever. */
static int g_spin;
static void spin_cb(tern_timer *t)
{
    g_spin++;
    timer_arm(&g_h, t, 0);
}

Test(timer, rearm_now_no_livelock)
{
    tern_timer t;

    timer_heap_init(&g_h);
    g_spin = 0;
    timer_init(&t, spin_cb);
    timer_arm(&g_h, &t, 0);
    cr_assert_eq(timer_run_expired(&g_h, 0), 1);
    cr_assert_eq(timer_run_expired(&g_h, 0), 1);
    cr_assert_eq(g_spin, 2);
    timer_heap_deinit(&g_h);
}

/* Randomized: 10k operations against a sorted reference. */
#define NT 256
static rec_timer g_pr[NT];
static int g_pfired[NT];
static size_t g_npfired;

static void prop_cb(tern_timer *t)
{
    g_pfired[g_npfired++] = ((rec_timer *)t)->id;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* Reference: armed flags plus (deadline, seq) copies; "fire" by scanning. */
typedef struct ref_t {
    int armed;
    int64_t deadline;
    uint64_t order;
} ref_t;

static int ref_cmp(const void *a, const void *b)
{
    const ref_t *x = *(ref_t *const *)a, *y = *(ref_t *const *)b;
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

Test(timer, randomized_against_reference)
{
    static ref_t ref[NT];
    static ref_t *sorted[NT];
    timer_heap h;
    uint64_t order = 0;
    int64_t now = 0;
    int op, i;

    timer_heap_init(&h);
    memset(ref, 0, sizeof ref);
    for (i = 0; i < NT; i++) {
        timer_init(&g_pr[i].t, prop_cb);
        g_pr[i].id = i;
    }
    for (op = 0; op < 10000; op++) {
        unsigned kind = (unsigned)(rnd() % 10);
        int k = (int)(rnd() % NT);

        if (kind < 5) {
            /* Arm or move; small deadline range for plenty of ties. */
            int64_t dl = now + (int64_t)(rnd() % 64);
            cr_assert_eq(timer_arm(&h, &g_pr[k].t, dl), 0);
            ref[k].armed = 1;
            ref[k].deadline = dl;
            ref[k].order = order++;
        } else if (kind < 8) {
            timer_disarm(&h, &g_pr[k].t);
            ref[k].armed = 0;
        } else {
            size_t n = 0, ran, j;

            now += (int64_t)(rnd() % 16);
            for (i = 0; i < NT; i++)
                if (ref[i].armed && ref[i].deadline <= now)
                    sorted[n++] = &ref[i];
            qsort(sorted, n, sizeof *sorted, ref_cmp);
            g_npfired = 0;
            ran = timer_run_expired(&h, now);
            cr_assert_eq(ran, n, "op %d: ran %zu, expected %zu", op, ran, n);
            for (j = 0; j < n; j++) {
                cr_assert_eq(g_pfired[j], (int)(sorted[j] - ref), "op %d, #%zu", op, j);
                sorted[j]->armed = 0;
            }
        }
        {
            size_t armed = 0;
            for (i = 0; i < NT; i++) {
                cr_assert_eq(timer_armed(&g_pr[i].t), ref[i].armed);
                armed += (size_t)ref[i].armed;
            }
            cr_assert_eq(h.n, armed);
        }
        if (op % 64 == 0)
            check_heap(&h);
        {
            int64_t want = INT64_MAX;
            for (i = 0; i < NT; i++)
                if (ref[i].armed && ref[i].deadline < want)
                    want = ref[i].deadline;
            cr_assert_eq(timer_next_deadline(&h), want);
        }
    }
    timer_heap_deinit(&h);
}

/* Growth failure leaves the heap as it was. */
static int g_fail_realloc;
static void *failing_realloc(void *p, size_t n)
{
    if (g_fail_realloc)
        return NULL;
    return realloc(p, n);
}

Test(timer, arm_enomem)
{
    tern_timer t[17];
    timer_heap h;
    int i;

    tern_set_allocator(NULL, failing_realloc, NULL);
    timer_heap_init(&h);
    for (i = 0; i < 16; i++) {
        timer_init(&t[i], record_cb);
        cr_assert_eq(timer_arm(&h, &t[i], i), 0);
    }
    g_fail_realloc = 1;
    timer_init(&t[16], record_cb);
    cr_assert_eq(timer_arm(&h, &t[16], 0), TERN_ENOMEM);
    cr_assert_not(timer_armed(&t[16]));
    cr_assert_eq(h.n, 16);
    cr_assert_eq(timer_arm(&h, &t[3], 100), 0, "moving needs no memory");
    check_heap(&h);
    g_fail_realloc = 0;
    timer_heap_deinit(&h);
    tern_set_allocator(NULL, NULL, NULL);
}
