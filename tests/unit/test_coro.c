/*
 * test_coro.c - unit tests for the stackful coroutines (src/net/coro.c).
 *
 * Ping-pong through the data slot, finish detection, 1000 interleaved
 * coroutines, pool reuse (bounded mappings, no allocation), deep recursion,
 * the guard page (SIGSEGV), callee-saved and floating-point state across
 * switches, and coroutines on several threads at once.  Coroutine bodies do
 * not call cr_assert (a failed assertion would longjmp off the coroutine's
 * stack); they record what they saw and the test checks it afterwards.
 */
#include <criterion/criterion.h>
#include <fenv.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tern/core.h"
#include "net/coro.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ON_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef ON_VALGRIND
#define ON_VALGRIND() 0
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#endif

#define STACK (256 * 1024)

/* ------------------------------------------------------------------------ */
/* Ping-pong and finish detection                                             */

static void ping_body(void *arg)
{
    int rounds = *(int *)arg;
    coro *self = coro_current();
    int i;

    for (i = 0; i < rounds; i++) {
        intptr_t v = (intptr_t)coro_get_data(self);
        coro_set_data(self, (void *)(v * 2 + 1)); /* pong */
        coro_yield();
    }
}

Test(coro, ping_pong)
{
    coro_pool *p = coro_pool_new(STACK, 4);
    int rounds = 100, i;
    coro *c;

    cr_assert_not_null(p);
    c = coro_get(p, ping_body, &rounds);
    cr_assert_not_null(c);
    cr_assert_null(coro_get_data(c), "data cleared by coro_get");
    cr_assert_null(coro_current());
    for (i = 0; i < rounds; i++) {
        coro_set_data(c, (void *)(intptr_t)i); /* ping */
        cr_assert_eq(coro_resume(c), 0, "round %d yielded", i);
        cr_assert_eq((intptr_t)coro_get_data(c), (intptr_t)i * 2 + 1);
        cr_assert_null(coro_current());
    }
    cr_assert_eq(coro_resume(c), 1, "returning finishes");
    coro_put(c);
    coro_pool_free(p);
}

static coro *g_seen_current;
static void current_body(void *arg)
{
    (void)arg;
    g_seen_current = coro_current();
}

Test(coro, finish_and_current)
{
    coro_pool *p = coro_pool_new(STACK, 4);
    coro *c = coro_get(p, current_body, NULL);

    g_seen_current = NULL;
    cr_assert_eq(coro_resume(c), 1, "no yield: finished on first resume");
    cr_assert_eq(g_seen_current, c);
    cr_assert_null(coro_current());
    coro_put(c);
    coro_pool_free(p);
}

/* ------------------------------------------------------------------------ */
/* Many coroutines alive at once                                              */

#define MANY 1000
#define MANY_ROUNDS 20

typedef struct many_arg {
    int id;
    int steps;
    long sum;
} many_arg;

static int g_turn; /* the id the scheduler resumed last */

static void many_body(void *arg)
{
    many_arg *a = arg;
    long local = a->id; /* lives on this coroutine's stack across yields */
    int i;

    for (i = 0; i < MANY_ROUNDS; i++) {
        if (g_turn != a->id)
            return; /* scheduled out of order: stop early, test fails */
        local += i;
        a->steps++;
        coro_yield();
    }
    a->sum = local;
}

Test(coro, many_interleaved)
{
    static coro *cs[MANY];
    static many_arg args[MANY];
    coro_pool *p = coro_pool_new(STACK, MANY);
    int round, i, alive = MANY;

    for (i = 0; i < MANY; i++) {
        args[i] = (many_arg){ .id = i };
        cs[i] = coro_get(p, many_body, &args[i]);
        cr_assert_not_null(cs[i]);
    }
    cr_assert_eq(coro_pool_mapped(p), MANY);
    for (round = 0; alive > 0; round++) {
        for (i = 0; i < MANY; i++) {
            if (cs[i] == NULL)
                continue;
            g_turn = i;
            if (coro_resume(cs[i])) {
                coro_put(cs[i]);
                cs[i] = NULL;
                alive--;
            }
        }
        cr_assert_leq(round, MANY_ROUNDS);
    }
    for (i = 0; i < MANY; i++) {
        cr_assert_eq(args[i].steps, MANY_ROUNDS);
        cr_assert_eq(args[i].sum, i + MANY_ROUNDS * (MANY_ROUNDS - 1) / 2);
    }
    cr_assert_eq(coro_pool_mapped(p), MANY, "all idle, none unmapped");
    coro_pool_free(p);
}

/* ------------------------------------------------------------------------ */
/* The pool                                                                   */

static void noop_body(void *arg)
{
    (*(int *)arg)++;
}

static size_t g_allocs;
static void *counting_malloc(size_t n)
{
    __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
    return malloc(n);
}
static void *counting_realloc(void *q, size_t n)
{
    __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
    return realloc(q, n);
}

Test(coro, pool_reuse)
{
    coro_pool *p;
    coro *c, *first, *extra[5];
    int runs = 0, i;

    tern_set_allocator(counting_malloc, counting_realloc, NULL);
    p = coro_pool_new(STACK, 2);
    first = coro_get(p, noop_body, &runs);
    cr_assert_eq(coro_resume(first), 1);
    coro_put(first);
    cr_assert_eq(coro_pool_mapped(p), 1);

    /* Steady state: the same coroutine comes back, nothing allocated. */
    g_allocs = 0;
    for (i = 0; i < 1000; i++) {
        c = coro_get(p, noop_body, &runs);
        cr_assert_eq(c, first, "LIFO reuse of the idle coroutine");
        cr_assert_eq(coro_resume(c), 1);
        coro_put(c);
    }
    cr_assert_eq(g_allocs, 0, "coro_get/coro_put from the pool allocate nothing");
    cr_assert_eq(coro_pool_mapped(p), 1);
    cr_assert_eq(runs, 1001);

    /* Five at once: five mapped; given back, only max_idle (2) stay. */
    for (i = 0; i < 5; i++)
        extra[i] = coro_get(p, noop_body, &runs);
    cr_assert_eq(coro_pool_mapped(p), 5);
    for (i = 0; i < 5; i++) {
        cr_assert_eq(coro_resume(extra[i]), 1);
        coro_put(extra[i]);
    }
    cr_assert_eq(coro_pool_mapped(p), 2);
    coro_pool_free(p);
    tern_set_allocator(NULL, NULL, NULL);
}

static void yield_forever_body(void *arg)
{
    (void)arg;
    for (;;)
        coro_yield();
}

Test(coro, put_new_and_suspended)
{
    coro_pool *p = coro_pool_new(STACK, 4);
    int runs = 0;
    coro *c;

    /* Never resumed: back to the pool as is. */
    c = coro_get(p, noop_body, &runs);
    coro_put(c);
    /* Suspended mid-body (shutdown): abandoned, the stack is reusable. */
    c = coro_get(p, yield_forever_body, NULL);
    cr_assert_eq(coro_resume(c), 0);
    cr_assert_eq(coro_resume(c), 0);
    coro_put(c);
    c = coro_get(p, noop_body, &runs);
    cr_assert_eq(coro_resume(c), 1, "reused stack starts afresh");
    cr_assert_eq(runs, 1);
    coro_put(c);
    cr_assert_eq(coro_pool_mapped(p), 1);
    coro_pool_free(p);
}

Test(coro, pool_zero_idle)
{
    coro_pool *p = coro_pool_new(16 * 1024, 0);
    int runs = 0;
    coro *c = coro_get(p, noop_body, &runs);

    cr_assert_eq(coro_resume(c), 1);
    coro_put(c);
    cr_assert_eq(coro_pool_mapped(p), 0, "max_idle 0 unmaps at once");
    coro_pool_free(p);
}

/* ------------------------------------------------------------------------ */
/* Stack depth and the guard page                                             */

typedef struct deep_arg {
    size_t limit;       /* bytes of stack to use */
    const char *top;    /* frame address at entry */
    int depth;
    long sum;
    size_t used;
} deep_arg;

__attribute__((noinline)) static long deep(deep_arg *a, int d)
{
    volatile char buf[480];
    const char *here = __builtin_frame_address(0);
    long r;

    buf[0] = (char)d;
    buf[sizeof buf - 1] = (char)(d >> 8);
    if ((size_t)(a->top - here) >= a->limit) {
        a->depth = d;
        a->used = (size_t)(a->top - here);
        coro_yield(); /* switch away with the stack nearly full */
        return d;
    }
    if (d % 64 == 0)
        coro_yield();
    r = deep(a, d + 1);
    return r + buf[0] + (buf[sizeof buf - 1] & 0); /* not a tail call */
}

static void deep_body(void *arg)
{
    deep_arg *a = arg;
    a->top = __builtin_frame_address(0);
    a->sum = deep(a, 0);
}

Test(coro, deep_recursion)
{
    coro_pool *p = coro_pool_new(STACK, 1);
    deep_arg a = { .limit = STACK * 85 / 100 };
    coro *c = coro_get(p, deep_body, &a);
    long want = 0;
    int i, yields = 0;

    while (!coro_resume(c))
        yields++;
    cr_assert_geq(a.used, a.limit, "used %zu of %d bytes", a.used, STACK);
    cr_assert_gt(a.depth, 100);
    want = a.depth; /* the leaf returns its depth, each frame adds (char)d */
    for (i = 0; i < a.depth; i++)
        want += (char)i;
    cr_assert_eq(a.sum, want);
    cr_assert_eq(yields, a.depth / 64 + 1 + 1, "every yield came back");
    coro_put(c);
    /* The same stack, reused, recurses as deep again. */
    a.depth = 0;
    c = coro_get(p, deep_body, &a);
    while (!coro_resume(c))
        ;
    cr_assert_gt(a.depth, 100);
    coro_put(c);
    coro_pool_free(p);
}

static volatile int g_overflow_limit = 1 << 30; /* never reached */

__attribute__((noinline)) static int overflow(int d)
{
    volatile char buf[1024];
    buf[0] = (char)d;
    if (d >= g_overflow_limit)
        return 0;
    return overflow(d + 1) + buf[0]; /* not a tail call: grows until it faults */
}

static void overflow_body(void *arg)
{
    (void)arg;
    overflow(0);
}

Test(coro, guard_page, .signal = SIGSEGV)
{
    coro_pool *p;
    coro *c;

    if (ON_VALGRIND()) {
        /* valgrind reports the wild write before the signal: not a bug. */
        raise(SIGSEGV);
    }
#ifdef TEST_ASAN
    /* ASan would catch the fault on its alternate stack and exit(1) with a
     * stack-overflow report; the test wants the plain signal. */
    signal(SIGSEGV, SIG_DFL);
#endif
    p = coro_pool_new(64 * 1024, 1);
    c = coro_get(p, overflow_body, NULL);
    coro_resume(c); /* dies on the guard page */
    cr_assert_fail("overflow did not fault");
}

/* ------------------------------------------------------------------------ */
/* Registers and floating point across switches                               */

#if defined(__x86_64__)
/* Loads junk into every callee-saved register (the compiler saves its own
 * values around this, as the clobbers say), so after a switch the other side
 * sees junk unless the switch restored its registers. */
#define TRASH_CALLEE_SAVED()                                                    \
    __asm__ volatile("movq $-1, %%rbx\n\tmovq $-2, %%r12\n\tmovq $-3, %%r13\n\t" \
                     "movq $-4, %%r14\n\tmovq $-5, %%r15\n\t"                   \
                     ::: "rbx", "r12", "r13", "r14", "r15", "memory")
#elif defined(__aarch64__)
#define TRASH_CALLEE_SAVED()                                                    \
    __asm__ volatile("mov x19, #-1\n\tmov x20, #-2\n\tmov x21, #-3\n\t"          \
                     "mov x22, #-4\n\tmov x23, #-5\n\tmov x24, #-6\n\t"          \
                     "mov x25, #-7\n\tmov x26, #-8\n\tmov x27, #-9\n\t"          \
                     "mov x28, #-10\n\tfmov d8, #1.0\n\tfmov d9, #2.0\n\t"      \
                     "fmov d10, #3.0\n\tfmov d11, #4.0\n\tfmov d12, #5.0\n\t"   \
                     "fmov d13, #6.0\n\tfmov d14, #7.0\n\tfmov d15, #8.0\n\t"   \
                     ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", \
                     "x27", "x28", "d8", "d9", "d10", "d11", "d12", "d13", "d14", \
                     "d15", "memory")
#else
#define TRASH_CALLEE_SAVED() ((void)0)
#endif

typedef struct regs_arg {
    long ints[6];
    double dbls[6];
    int ok;
} regs_arg;

static void regs_body(void *arg)
{
    regs_arg *a = arg;
    /* Many values live across each yield: they end up in callee-saved
     * registers (and d8-d15 on aarch64) or on this stack. */
    long i0 = 1, i1 = 2, i2 = 3, i3 = 5, i4 = 7, i5 = 11;
    double d0 = 0.5, d1 = 1.25, d2 = -3.0, d3 = 1e10, d4 = 1e-10, d5 = 2.0;
    int k;

    a->ok = 1;
    for (k = 0; k < 50; k++) {
        long e0 = i0 + k, e1 = i1 * 3 % 1000003, e2 = i2 ^ k, e3 = i3 + i0, e4 = i4 - 1, e5 = i5 + e3;
        double f0 = d0 + k, f1 = d1 * 1.5, f2 = d2 - 0.25, f3 = d3 / 2, f4 = d4 * 3, f5 = d5 + f0;

        TRASH_CALLEE_SAVED();
        coro_yield();
        i0 += k; i1 = i1 * 3 % 1000003; i2 ^= k; i3 += i0 - k; i4 -= 1; i5 += i3;
        d0 += k; d1 *= 1.5; d2 -= 0.25; d3 /= 2; d4 *= 3; d5 += d0;
        if (i0 != e0 || i1 != e1 || i2 != e2 || i3 != e3 || i4 != e4 || i5 != e5)
            a->ok = 0;
        if (d0 != f0 || d1 != f1 || d2 != f2 || d3 != f3 || d4 != f4 || d5 != f5)
            a->ok = 0;
    }
    a->ints[0] = i0; a->ints[1] = i1; a->ints[2] = i2;
    a->ints[3] = i3; a->ints[4] = i4; a->ints[5] = i5;
    a->dbls[0] = d0; a->dbls[1] = d1; a->dbls[2] = d2;
    a->dbls[3] = d3; a->dbls[4] = d4; a->dbls[5] = d5;
}

Test(coro, registers_preserved)
{
    coro_pool *p = coro_pool_new(STACK, 1);
    regs_arg a;
    coro *c = coro_get(p, regs_body, &a);
    /* The scheduler keeps its own values live across every resume. */
    long s0 = 100, s1 = 200, s2 = 300, s3 = 400, s4 = 500, s5 = 600;
    double g0 = 1.5, g1 = 2.5, g2 = 3.5;
    int n = 0;

    memset(&a, 0, sizeof a);
    for (;;) {
        int done;
        TRASH_CALLEE_SAVED();
        done = coro_resume(c);
        cr_assert_eq(s0 + s1 + s2 + s3 + s4 + s5, 2100 + 6 * n);
        cr_assert(g0 + g1 + g2 == 7.5 + 3.0 * n);
        if (done)
            break;
        s0++; s1++; s2++; s3++; s4++; s5++;
        g0 += 1; g1 += 1; g2 += 1;
        n++;
    }
    cr_assert_eq(n, 50);
    cr_assert(a.ok, "coroutine values survived every switch");
    {
        /* Replay the coroutine's arithmetic here. */
        long i0 = 1, i1 = 2, i2 = 3, i3 = 5, i4 = 7, i5 = 11;
        double d0 = 0.5, d1 = 1.25, d2 = -3.0, d3 = 1e10, d4 = 1e-10, d5 = 2.0;
        int k;
        for (k = 0; k < 50; k++) {
            i0 += k; i1 = i1 * 3 % 1000003; i2 ^= k; i3 += i0 - k; i4 -= 1; i5 += i3;
            d0 += k; d1 *= 1.5; d2 -= 0.25; d3 /= 2; d4 *= 3; d5 += d0;
        }
        cr_assert(a.ints[0] == i0 && a.ints[1] == i1 && a.ints[2] == i2 &&
                  a.ints[3] == i3 && a.ints[4] == i4 && a.ints[5] == i5);
        cr_assert(a.dbls[0] == d0 && a.dbls[1] == d1 && a.dbls[2] == d2 &&
                  a.dbls[3] == d3 && a.dbls[4] == d4 && a.dbls[5] == d5);
    }
    coro_put(c);
    coro_pool_free(p);
}

/*
 * The same check with no compiler in between: call_known(fn, arg, out, base)
 * sets callee-saved register k to base + k, calls fn(arg), and stores the
 * registers as they came back in out[].  The scheduler calls coro_resume
 * through it and the coroutine calls coro_yield through it, so a switch that
 * fails to restore any one register shows up as a wrong value.
 */
#if defined(__x86_64__)
#define KNOWN_N 6
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type call_known, @function\n"
    "call_known:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    pushq %rdx\n"                       /* out; also aligns rsp to 16 */
    "    movq %rdi, %rax\n"
    "    movq %rsi, %rdi\n"
    "    leaq 1(%rcx), %rbx\n"
    "    leaq 2(%rcx), %rbp\n"
    "    leaq 3(%rcx), %r12\n"
    "    leaq 4(%rcx), %r13\n"
    "    leaq 5(%rcx), %r14\n"
    "    leaq 6(%rcx), %r15\n"
    "    callq *%rax\n"
    "    popq %rdx\n"
    "    movq %rbx, 0(%rdx)\n"
    "    movq %rbp, 8(%rdx)\n"
    "    movq %r12, 16(%rdx)\n"
    "    movq %r13, 24(%rdx)\n"
    "    movq %r14, 32(%rdx)\n"
    "    movq %r15, 40(%rdx)\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size call_known, .-call_known\n");
#elif defined(__aarch64__)
#define KNOWN_N 18
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type call_known, %function\n"
    "call_known:\n"
    "    stp x29, x30, [sp, #-176]!\n"
    "    mov x29, sp\n"
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    str x2, [sp, #160]\n"
    "    mov x9, x0\n"
    "    mov x0, x1\n"
    "    add x19, x3, #1\n"
    "    add x20, x3, #2\n"
    "    add x21, x3, #3\n"
    "    add x22, x3, #4\n"
    "    add x23, x3, #5\n"
    "    add x24, x3, #6\n"
    "    add x25, x3, #7\n"
    "    add x26, x3, #8\n"
    "    add x27, x3, #9\n"
    "    add x28, x3, #10\n"
    "    add x10, x3, #11\n"
    "    fmov d8, x10\n"
    "    add x10, x3, #12\n"
    "    fmov d9, x10\n"
    "    add x10, x3, #13\n"
    "    fmov d10, x10\n"
    "    add x10, x3, #14\n"
    "    fmov d11, x10\n"
    "    add x10, x3, #15\n"
    "    fmov d12, x10\n"
    "    add x10, x3, #16\n"
    "    fmov d13, x10\n"
    "    add x10, x3, #17\n"
    "    fmov d14, x10\n"
    "    add x10, x3, #18\n"
    "    fmov d15, x10\n"
    "    blr x9\n"
    "    ldr x2, [sp, #160]\n"
    "    stp x19, x20, [x2, #0]\n"
    "    stp x21, x22, [x2, #16]\n"
    "    stp x23, x24, [x2, #32]\n"
    "    stp x25, x26, [x2, #48]\n"
    "    stp x27, x28, [x2, #64]\n"
    "    stp d8, d9, [x2, #80]\n"
    "    stp d10, d11, [x2, #96]\n"
    "    stp d12, d13, [x2, #112]\n"
    "    stp d14, d15, [x2, #128]\n"
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    ret\n"
    ".size call_known, .-call_known\n");
#endif

#ifdef KNOWN_N
void call_known(void (*fn)(void *), void *arg, uint64_t *out, uint64_t base);

#define BASE_SCHED 0x5c4ed00000000000u
#define BASE_CORO 0xc0c0c0c000000000u

static uint64_t g_known_co[20][KNOWN_N];

static void yield_thunk(void *arg)
{
    (void)arg;
    coro_yield();
}

static int g_resume_rc;
static void resume_thunk(void *arg)
{
    g_resume_rc = coro_resume(arg);
}

static void known_body(void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < 20; i++) {
        call_known(yield_thunk, NULL, g_known_co[i], BASE_CORO);
        TRASH_CALLEE_SAVED();
    }
}

Test(coro, callee_saved_exact)
{
    coro_pool *p = coro_pool_new(STACK, 1);
    coro *c = coro_get(p, known_body, NULL);
    uint64_t sched[21][KNOWN_N];
    int i, j;

    memset(g_known_co, 0, sizeof g_known_co);
    for (i = 0; i < 21; i++) {
        TRASH_CALLEE_SAVED();
        call_known(resume_thunk, c, sched[i], BASE_SCHED);
        cr_assert_eq(g_resume_rc, i == 20, "finished after 20 yields");
    }
    for (i = 0; i < 21; i++)
        for (j = 0; j < KNOWN_N; j++)
            cr_assert_eq(sched[i][j], BASE_SCHED + (uint64_t)j + 1, "scheduler, switch %d, register %d", i, j);
    for (i = 0; i < 20; i++)
        for (j = 0; j < KNOWN_N; j++)
            cr_assert_eq(g_known_co[i][j], BASE_CORO + (uint64_t)j + 1, "coroutine, switch %d, register %d", i, j);
    coro_put(c);
    coro_pool_free(p);
}
#endif

#if defined(__x86_64__)
#include <xmmintrin.h>

/* fegetround reads the x87 control word only, so MXCSR is checked apart. */
/* Control bits; the low 6 are status flags.  valgrind models only the
 * rounding field (RC, bits 13-14) of MXCSR, so only that is checked there. */
#define CSR_MASK (ON_VALGRIND() ? 0x6000u : 0xffc0u)
#define CSR_FTZ_DAZ 0x8040u

static int g_round_in, g_round_again;
static unsigned g_csr_in, g_csr_again;
static void round_body(void *arg)
{
    (void)arg;
    fesetround(FE_UPWARD);
    _mm_setcsr(_mm_getcsr() | CSR_FTZ_DAZ);
    g_round_in = fegetround();
    g_csr_in = _mm_getcsr() & CSR_MASK;
    coro_yield();
    g_round_again = fegetround();
    g_csr_again = _mm_getcsr() & CSR_MASK;
}

/* MXCSR and the x87 control word are callee-saved "control bits": each
 * side keeps its own rounding mode across switches. */
Test(coro, fp_control_bits)
{
    coro_pool *p = coro_pool_new(STACK, 1);
    coro *c = coro_get(p, round_body, NULL);
    unsigned csr = _mm_getcsr() & CSR_MASK;

    cr_assert_eq(fegetround(), FE_TONEAREST);
    cr_assert_eq(coro_resume(c), 0);
    cr_assert_eq(g_round_in, FE_UPWARD);
    cr_assert_eq(g_csr_in, (0x1f80u | 0x4000u | CSR_FTZ_DAZ) & CSR_MASK);
    cr_assert_eq(fegetround(), FE_TONEAREST, "scheduler's x87 mode restored");
    cr_assert_eq(_mm_getcsr() & CSR_MASK, csr, "scheduler's MXCSR restored");
    cr_assert_eq(coro_resume(c), 1);
    cr_assert_eq(g_round_again, FE_UPWARD, "coroutine's x87 mode restored");
    cr_assert_eq(g_csr_again, g_csr_in, "coroutine's MXCSR restored");
    cr_assert_eq(fegetround(), FE_TONEAREST);
    cr_assert_eq(_mm_getcsr() & CSR_MASK, csr);
    coro_put(c);
    /* A fresh coroutine starts with the default mode. */
    c = coro_get(p, round_body, NULL);
    fesetround(FE_DOWNWARD);
    coro_resume(c);
    cr_assert_eq(fegetround(), FE_DOWNWARD);
    fesetround(FE_TONEAREST);
    coro_resume(c);
    coro_put(c);
    coro_pool_free(p);
}
#endif

/* ------------------------------------------------------------------------ */
/* Several threads, each with its own pool                                    */

#define THREADS 4
#define PER_THREAD 200

typedef struct thr_arg {
    int tid;
    long total;
    int bad;
} thr_arg;

typedef struct thr_coro_arg {
    thr_arg *t;
    int id;
    long acc;
} thr_coro_arg;

static void thr_body(void *arg)
{
    thr_coro_arg *a = arg;
    int i;

    for (i = 0; i < 50; i++) {
        a->acc += a->t->tid * 1000 + a->id;
        if (coro_get_data(coro_current()) != a)
            a->t->bad = 1;
        coro_yield();
    }
}

static void *thr_main(void *arg)
{
    thr_arg *t = arg;
    coro_pool *p = coro_pool_new(64 * 1024, 16);
    static _Thread_local thr_coro_arg args[PER_THREAD];
    coro *cs[PER_THREAD];
    int i, alive = PER_THREAD;

    if (p == NULL) {
        t->bad = 1;
        return NULL;
    }
    for (i = 0; i < PER_THREAD; i++) {
        args[i] = (thr_coro_arg){ .t = t, .id = i };
        cs[i] = coro_get(p, thr_body, &args[i]);
        if (cs[i] == NULL) {
            t->bad = 1;
            return NULL;
        }
        coro_set_data(cs[i], &args[i]);
    }
    while (alive > 0) {
        for (i = 0; i < PER_THREAD; i++) {
            if (cs[i] != NULL && coro_resume(cs[i])) {
                coro_put(cs[i]);
                cs[i] = NULL;
                alive--;
            }
            if (coro_current() != NULL)
                t->bad = 1;
        }
    }
    for (i = 0; i < PER_THREAD; i++)
        t->total += args[i].acc;
    if (coro_pool_mapped(p) != 16)
        t->bad = 1;
    coro_pool_free(p);
    return NULL;
}

Test(coro, threads)
{
    pthread_t th[THREADS];
    thr_arg ta[THREADS];
    int i;

    for (i = 0; i < THREADS; i++) {
        ta[i] = (thr_arg){ .tid = i };
        cr_assert_eq(pthread_create(&th[i], NULL, thr_main, &ta[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        long want = 0;
        int j;
        pthread_join(th[i], NULL);
        cr_assert_not(ta[i].bad, "thread %d", i);
        for (j = 0; j < PER_THREAD; j++)
            want += 50L * (i * 1000 + j);
        cr_assert_eq(ta[i].total, want, "thread %d", i);
    }
}

/* ------------------------------------------------------------------------ */
/* ASan: use-after-return detection and big frames across switches            */

__attribute__((noinline)) static int big_frame(int d)
{
    char buf[4096];
    int r;

    memset(buf, d, sizeof buf);
    if (d > 0) {
        coro_yield();
        r = big_frame(d - 1);
    } else {
        r = 0;
    }
    return r + buf[d % 4096] + buf[4095];
}

__attribute__((noinline)) static int big_frame_sched(int d)
{
    char buf[4096];

    memset(buf, d, sizeof buf);
    return (d > 0 ? big_frame_sched(d - 1) : 0) + buf[d] + buf[4095];
}

static void big_body(void *arg)
{
    *(int *)arg = big_frame(20);
}

Test(coro, big_frames_across_switches)
{
    coro_pool *p = coro_pool_new(STACK, 8);
    int res[8], i, done = 0;
    coro *cs[8];

    for (i = 0; i < 8; i++)
        cs[i] = coro_get(p, big_body, &res[i]);
    while (done < 8) {
        for (i = 0; i < 8; i++) {
            if (cs[i] != NULL && coro_resume(cs[i])) {
                coro_put(cs[i]);
                cs[i] = NULL;
                done++;
            }
        }
        /* The scheduler's own deep frames in between. */
        cr_assert_eq(big_frame_sched(3), 0 + 0 + 1 + 1 + 2 + 2 + 3 + 3);
    }
    for (i = 0; i < 8; i++)
        cr_assert_eq(res[i], 2 * (20 * 21 / 2));
    coro_pool_free(p);
}

/* longjmp inside a coroutine: under ASan it unpoisons "the current stack",
 * which must be the coroutine's (known through the fiber annotations). */
static jmp_buf g_jb;
static volatile int g_do_jump = 1;

__attribute__((noinline)) static void jump_deep(int d)
{
    volatile char buf[2048];
    buf[0] = (char)d;
    if (d == 0) {
        if (g_do_jump)
            longjmp(g_jb, 1);
        return;
    }
    jump_deep(d - 1);
    buf[1] = buf[0];
}

static void longjmp_body(void *arg)
{
    int *count = arg;

    /* volatile: the loop counter lives across setjmp/longjmp (-Wclobbered) */
    for (volatile int i = 0; i < 5; i++) {
        if (setjmp(g_jb) == 0)
            jump_deep(30);
        (*count)++;
        coro_yield();
    }
}

Test(coro, longjmp_inside)
{
    coro_pool *p = coro_pool_new(STACK, 1);
    int count = 0;
    coro *c = coro_get(p, longjmp_body, &count);

    while (!coro_resume(c))
        cr_assert_eq(big_frame_sched(2), 6);
    cr_assert_eq(count, 5);
    coro_put(c);
    coro_pool_free(p);
}
