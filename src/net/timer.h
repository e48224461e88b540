/*
 * timer.h - a binary min-heap of timers (internal).
 *
 * Timers are intrusive: the caller embeds a tern_timer in its own struct, so
 * arming one never allocates except when the heap's array grows.  Add, update
 * and remove are O(log n); the earliest deadline is O(1).
 */
#ifndef TERN_TIMER_H
#define TERN_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tern_timer tern_timer;
typedef void (*timer_cb)(tern_timer *t);

struct tern_timer {
    int64_t deadline; /* monotonic ms */
    size_t idx;       /* position in the heap + 1; 0 when not armed */
    uint64_t seq;     /* insertion order, breaks deadline ties (FIFO) */
    timer_cb cb;
};

typedef struct timer_heap {
    tern_timer **v;
    size_t n, cap;
    uint64_t seq;
} timer_heap;

void timer_heap_init(timer_heap *h);
void timer_heap_deinit(timer_heap *h);
/* Initializes a timer (not armed) with its callback. */
void timer_init(tern_timer *t, timer_cb cb);
/* Arms t for deadline, or moves it if already armed. 0 or TERN_ENOMEM. */
int timer_arm(timer_heap *h, tern_timer *t, int64_t deadline);
/* Disarms t if armed (no-op otherwise). */
void timer_disarm(timer_heap *h, tern_timer *t);
/* 1 if t is armed. */
static inline int timer_armed(const tern_timer *t)
{
    return t->idx != 0;
}
/* Earliest deadline, or INT64_MAX when empty. */
int64_t timer_next_deadline(const timer_heap *h);
/*
 * Disarms and calls the callback of every timer whose deadline <= now, in
 * deadline order (ties in arming order).  Callbacks may arm or disarm any
 * timer, including the one being run.  A timer armed (or re-armed) by a
 * callback during this pass waits for the next pass even if it is already
 * due, so a callback that re-arms itself for "now" cannot spin forever; the
 * loop then sees timer_next_deadline() <= now and polls without sleeping.
 * Returns the number run.
 */
size_t timer_run_expired(timer_heap *h, int64_t now);

#endif /* TERN_TIMER_H */
