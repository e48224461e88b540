/*
 * test_core.c - the core layer: errors, strings, allocation hook, arena,
 * buffers, HTTP date, and the JSON writer's escaping and structure rules.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/core.h"
#include "tern/json.h"

Test(core, strerror_names_every_code)
{
    cr_assert_str_eq(tern_strerror(TERN_OK), "success");
    cr_assert_str_eq(tern_strerror(TERN_ENOMEM), "out of memory");
    cr_assert_str_eq(tern_strerror(TERN_ETOOBIG), "limit exceeded");
    cr_assert_str_eq(tern_strerror(12345), "unknown error");
}

Test(core, str_ieq)
{
    cr_assert(tern_str_ieq(TERN_STR("Content-Length"), TERN_STR("content-LENGTH")));
    cr_assert_not(tern_str_ieq(TERN_STR("abc"), TERN_STR("abd")));
    cr_assert_not(tern_str_ieq(TERN_STR("abc"), TERN_STR("abcd")));
    cr_assert(tern_str_eq(TERN_STR(""), TERN_STR_NULL));
}

/* Eight bytes at a time: every byte pair, at every position of a 9-byte
 * string (one word and an overlapping tail), against a byte reference. */
Test(core, str_ieq_words)
{
    for (int x = 0; x < 256; x++) {
        for (int y = 0; y < 256; y++) {
            int lx = x >= 'A' && x <= 'Z' ? x | 0x20 : x, ly = y >= 'A' && y <= 'Z' ? y | 0x20 : y;

            for (int at = 0; at < 9; at++) {
                char a[9] = "xYz@[`{Q9", b[9] = "XyZ@[`{q9";

                a[at] = (char)x;
                b[at] = (char)y;
                cr_assert_eq(tern_str_ieq((tern_str){ a, 9 }, (tern_str){ b, 9 }), lx == ly,
                             "%02x %02x at %d", x, y, at);
            }
        }
    }
    cr_assert(tern_str_ieq(TERN_STR("APPLICATION/X-WWW-FORM"), TERN_STR("application/x-www-form")));
    cr_assert_not(tern_str_ieq(TERN_STR("application/x-www-forn"), TERN_STR("application/x-www-form")));
}

Test(core, http_date_format)
{
    char d[30] = { 0 };

    tern_http_date(784111777, d); /* RFC 9110's example instant */
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    tern_http_date(1795500105, d);
    cr_assert_str_eq(d, "Tue, 24 Nov 2026 06:01:45 GMT");
}

Test(arena, alloc_alignment_and_reset_reuses_first_chunk)
{
    tern_arena a;
    tern_arena_init(&a, 1024);
    char *p1 = tern_arena_alloc(&a, 3);
    char *p2 = tern_arena_alloc(&a, 5);
    cr_assert_not_null(p1);
    cr_assert_eq(((uintptr_t)p2) % 16, 0);
    cr_assert_geq(p2 - p1, 16);
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(tern_arena_alloc(&a, 100)); /* forces new chunks */
    void *big = tern_arena_alloc(&a, 10000);           /* oversize block */
    cr_assert_not_null(big);
    memset(big, 0xab, 10000);
    tern_arena_reset(&a);
    cr_assert_eq(a.used, 0);
    char *again = tern_arena_alloc(&a, 3);
    cr_assert_not_null(again);
    cr_assert_eq(a.used, 16, "the kept chunk serves the next request");
    tern_arena_deinit(&a);
}

Test(arena, limit_refuses)
{
    tern_arena a;
    tern_arena_init(&a, 4096);
    a.limit = 100;
    cr_assert_not_null(tern_arena_alloc(&a, 64));
    cr_assert_null(tern_arena_alloc(&a, 64));
    tern_arena_deinit(&a);
}

Test(arena, printf_and_strndup)
{
    tern_arena a;
    tern_arena_init(&a, 0);
    cr_assert_str_eq(tern_arena_printf(&a, "%d-%s", 42, "x"), "42-x");
    cr_assert_str_eq(tern_arena_strndup(&a, "abcdef", 3), "abc");
    tern_arena_deinit(&a);
}

Test(buf, append_cap_and_consume)
{
    tern_buf b;
    tern_buf_init(&b, 10);
    cr_assert_eq(tern_buf_append(&b, "hello", 5), 0);
    cr_assert_eq(tern_buf_append(&b, "world!", 6), TERN_ETOOBIG);
    cr_assert_eq(b.len, 5, "a failed append leaves the buffer unchanged");
    cr_assert_eq(tern_buf_append_u64(&b, 12345), 0);
    cr_assert_eq(memcmp(b.p, "hello12345", 10), 0);
    tern_buf_consume(&b, 5);
    cr_assert_eq(b.len, 5);
    cr_assert_eq(memcmp(b.p, "12345", 5), 0);
    tern_buf_deinit(&b);
}

Test(buf, printf_grows)
{
    tern_buf b;
    tern_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(tern_buf_printf(&b, "%04d", i), 0);
    cr_assert_eq(b.len, 4000);
    cr_assert_eq(memcmp(b.p + 3996, "0999", 4), 0);
    tern_buf_deinit(&b);
}

static int fail_after = -1;
static void *failing_malloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    return malloc(n);
}
static void *failing_realloc(void *p, size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    return realloc(p, n);
}

Test(alloc, hook_failure_propagates)
{
    tern_buf b;
    tern_set_allocator(failing_malloc, failing_realloc, NULL);
    fail_after = 0;
    tern_buf_init(&b, 0);
    cr_assert_eq(tern_buf_append(&b, "x", 1), TERN_ENOMEM);
    cr_assert_null(tern_malloc(10));
    cr_assert_null(tern_strdup("abc"));
    fail_after = -1;
    tern_set_allocator(NULL, NULL, NULL);
    cr_assert_eq(tern_buf_append(&b, "x", 1), 0);
    tern_buf_deinit(&b);
    cr_assert_null(tern_calloc(SIZE_MAX / 2, 4), "calloc overflow is refused");
}

/* JSON writer */

static char *render(void (*fn)(tern_jw *), int *rc)
{
    static char out[4096];
    tern_buf b;
    tern_jw w;

    tern_buf_init(&b, 0);
    tern_jw_init(&w, &b);
    fn(&w);
    *rc = tern_jw_finish(&w);
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p ? b.p : "");
    tern_buf_deinit(&b);
    return out;
}

static void doc_nested(tern_jw *w)
{
    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("a"));
    tern_jw_int(w, -42);
    tern_jw_key(w, TERN_STR("b"));
    tern_jw_arr_begin(w);
    tern_jw_bool(w, 1);
    tern_jw_null(w);
    tern_jw_double(w, 0.1);
    tern_jw_str(w, TERN_STR("x"));
    tern_jw_arr_end(w);
    tern_jw_key(w, TERN_STR("c"));
    tern_jw_obj_begin(w);
    tern_jw_obj_end(w);
    tern_jw_obj_end(w);
}

Test(json, nested_document)
{
    int rc;
    char *s = render(doc_nested, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(s, "{\"a\":-42,\"b\":[true,null,0.1,\"x\"],\"c\":{}}");
}

static void doc_escapes(tern_jw *w)
{
    tern_jw_str(w, TERN_STR("q\"b\\n\nt\tc\x01 \xe2\x80\xa8 \xe2\x80\xa9 \xc3\xa9 </"));
}

Test(json, escapes_controls_and_line_separators)
{
    int rc;
    char *s = render(doc_escapes, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(s, "\"q\\\"b\\\\n\\nt\\tc\\u0001 \\u2028 \\u2029 \xc3\xa9 </\"");
}

static void doc_bad_utf8(tern_jw *w)
{
    tern_jw_arr_begin(w);
    tern_jw_str(w, TERN_STR("ok"));
    tern_jw_str(w, TERN_STR("bad \xc3\x28"));
    tern_jw_arr_end(w);
}

Test(json, invalid_utf8_is_refused_and_sticky)
{
    int rc;
    render(doc_bad_utf8, &rc);
    cr_assert_eq(rc, TERN_EINVAL);
}

Test(json, utf8_edge_cases)
{
    static const char *bad[] = { "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                 "\xff", "\xe2\x82" };
    static const char *good[] = { "\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf" };
    tern_buf b;

    tern_buf_init(&b, 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(tern_json_escape(&b, tern_str_c(bad[i])), TERN_EINVAL, "bad[%zu]", i);
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_assert_eq(tern_json_escape(&b, tern_str_c(good[i])), 0, "good[%zu]", i);
    tern_buf_deinit(&b);
}

static void doc_value_without_key(tern_jw *w)
{
    tern_jw_obj_begin(w);
    tern_jw_int(w, 1);
    tern_jw_obj_end(w);
}
static void doc_unclosed(tern_jw *w) { tern_jw_arr_begin(w); }
static void doc_two_roots(tern_jw *w)
{
    tern_jw_int(w, 1);
    tern_jw_int(w, 2);
}
static void doc_nan(tern_jw *w) { tern_jw_double(w, 0.0 / 0.0); }
static void doc_deep(tern_jw *w)
{
    for (int i = 0; i < TERN_JW_MAX_DEPTH + 1; i++)
        tern_jw_arr_begin(w);
}

Test(json, structure_errors)
{
    int rc;
    render(doc_value_without_key, &rc);
    cr_assert_eq(rc, TERN_ESTATE);
    render(doc_unclosed, &rc);
    cr_assert_eq(rc, TERN_ESTATE);
    render(doc_two_roots, &rc);
    cr_assert_eq(rc, TERN_ESTATE);
    render(doc_nan, &rc);
    cr_assert_eq(rc, TERN_EINVAL);
    render(doc_deep, &rc);
    cr_assert_eq(rc, TERN_ETOOBIG);
}

static void doc_numbers(tern_jw *w)
{
    tern_jw_arr_begin(w);
    tern_jw_int(w, INT64_MIN);
    tern_jw_int(w, INT64_MAX);
    tern_jw_double(w, 1e300);
    tern_jw_double(w, -2.5);
    tern_jw_double(w, 2.0);
    tern_jw_double(w, -0.0);
    tern_jw_arr_end(w);
}

Test(json, number_extremes)
{
    int rc;
    char *s = render(doc_numbers, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(s, "[-9223372036854775808,9223372036854775807,1e+300,-2.5,2.0,-0.0]");
}
