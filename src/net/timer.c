/*
 * timer.c - the timer min-heap.
 *
 * A binary min-heap of tern_timer pointers ordered by (deadline, seq).
 * Invariants:
 * - h->v[0 .. n-1] is a heap: no element is earlier than its parent.
 * - An armed timer t sits at h->v[t->idx - 1]; a disarmed one has idx 0.
 * - seq is taken from h->seq each time a timer is armed (or moved), so
 *   timers with equal deadlines fire in arming order.
 * - timer_run_expired pops a timer (idx 0) before calling it, so callbacks may
 *   arm or disarm any timer, the running one included, without breaking the
 *   heap.  A timer (re)armed by a callback during a pass waits for the next
 *   pass even if already due, so a callback re-arming itself for "now" cannot
 *   spin the loop forever (the caller sees timer_next_deadline() <= now and
 *   polls with a zero timeout).
 */
#include <stdint.h>

#include "tern/core.h"
#include "net/timer.h"

/* 1 if a must fire before b. */
static inline int timer_before(const tern_timer *a, const tern_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void heap_place(timer_heap *h, size_t i, tern_timer *t)
{
    h->v[i] = t;
    t->idx = i + 1;
}

/* Moves t up from position i until its parent is earlier. */
static void sift_up(timer_heap *h, size_t i, tern_timer *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        tern_timer *p = h->v[parent];
        if (!timer_before(t, p))
            break;
        heap_place(h, i, p);
        i = parent;
    }
    heap_place(h, i, t);
}

/* Moves t down from position i until both children are later. */
static void sift_down(timer_heap *h, size_t i, tern_timer *t)
{
    size_t n = h->n;

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && timer_before(h->v[child + 1], h->v[child]))
            child++;
        if (!timer_before(h->v[child], t))
            break;
        heap_place(h, i, h->v[child]);
        i = child;
    }
    heap_place(h, i, t);
}

/* Puts t (currently nowhere, or just removed) at position i and restores order. */
static void heap_fix(timer_heap *h, size_t i, tern_timer *t)
{
    if (i > 0 && timer_before(t, h->v[(i - 1) / 2]))
        sift_up(h, i, t);
    else
        sift_down(h, i, t);
}

void timer_heap_init(timer_heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    h->seq = 0;
}

void timer_heap_deinit(timer_heap *h)
{
    size_t i;

    /* Leave the timers still armed in a sane (disarmed) state. */
    for (i = 0; i < h->n; i++)
        h->v[i]->idx = 0;
    tern_free(h->v);
    timer_heap_init(h);
}

void timer_init(tern_timer *t, timer_cb cb)
{
    t->deadline = 0;
    t->idx = 0;
    t->seq = 0;
    t->cb = cb;
}

int timer_arm(timer_heap *h, tern_timer *t, int64_t deadline)
{
    if (t->idx != 0) {
        /* Moving: a fresh seq makes it last among equal deadlines, as if it
         * had been disarmed and armed again. */
        t->deadline = deadline;
        t->seq = h->seq++;
        heap_fix(h, t->idx - 1, t);
        return 0;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        tern_timer **v;
        if (cap > SIZE_MAX / sizeof *v)
            return TERN_ENOMEM;
        v = tern_realloc(h->v, cap * sizeof *v);
        if (v == NULL)
            return TERN_ENOMEM; /* t untouched, still disarmed */
        h->v = v;
        h->cap = cap;
    }
    t->deadline = deadline;
    t->seq = h->seq++;
    h->n++;
    sift_up(h, h->n - 1, t);
    return 0;
}

void timer_disarm(timer_heap *h, tern_timer *t)
{
    size_t i;
    tern_timer *last;

    if (t->idx == 0)
        return;
    i = t->idx - 1;
    t->idx = 0;
    last = h->v[--h->n];
    if (last != t)
        heap_fix(h, i, last);
}

int64_t timer_next_deadline(const timer_heap *h)
{
    return h->n ? h->v[0]->deadline : INT64_MAX;
}

size_t timer_run_expired(timer_heap *h, int64_t now)
{
    uint64_t pass = h->seq; /* timers armed from here on wait for the next pass */
    size_t ran = 0;

    while (h->n > 0 && h->v[0]->deadline <= now && h->v[0]->seq < pass) {
        tern_timer *t = h->v[0];
        timer_disarm(h, t);
        t->cb(t);
        ran++;
    }
    return ran;
}
