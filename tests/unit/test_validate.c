/*
 * test_validate.c - unit tests for the validation layer (src/validate/):
 * the schema walk (every keyword and code, valid and invalid, boundaries at
 * and one past each bound, exact messages, pointers), defaults, integer
 * exactness, form coercion, JSON Schema output, binding, the regex engine
 * (a table of cases, syntax errors, linear time on pathological patterns),
 * the formats, tern_schema_check, and allocation failure (every allocation
 * failed in turn, tern's and jansson's, with a counting allocator proving
 * nothing leaks).
 *
 * JSON values are built with jansson directly (json_loads), not with
 * tern_json_parse, so this file depends only on src/validate and core.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tern/valid.h"
#include "validate/regex.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static tern_arena arena;
static tern_errors errs;

static void setup(void)
{
    tern_arena_init(&arena, 0);
    tern_errors_init(&errs, &arena);
}

static void teardown(void)
{
    tern_arena_deinit(&arena);
    tern_rx_cache_clear();
}

TestSuite(validate, .init = setup, .fini = teardown);
TestSuite(form, .init = setup, .fini = teardown);
TestSuite(regex, .fini = teardown);
TestSuite(format);
TestSuite(schema_check, .fini = teardown);
TestSuite(schema_json);
TestSuite(bind);
TestSuite(oom, .fini = teardown);

/* One expected failure; lists end with { 0 }. */
typedef struct exp_err {
    const char *field, *code, *message;
} exp_err;

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

    cr_assert_not_null(v, "bad test JSON %s: %s", text, e.text);
    return v;
}

static void expect_errors(const char *what, const exp_err *exp)
{
    unsigned n = 0;

    while (exp[n].field != NULL)
        n++;
    for (unsigned i = 0; i < errs.n && i < n; i++) {
        cr_expect_str_eq(errs.v[i].field, exp[i].field, "%s: error %u field \"%s\"", what, i,
                         errs.v[i].field);
        cr_expect_str_eq(errs.v[i].code, exp[i].code, "%s: error %u code \"%s\"", what, i,
                         errs.v[i].code);
        cr_expect_str_eq(errs.v[i].message, exp[i].message, "%s: error %u message \"%s\"", what,
                         i, errs.v[i].message);
    }
    if (errs.n != n) {
        for (unsigned i = 0; i < errs.n; i++)
            fprintf(stderr, "  got %s %s %s\n", errs.v[i].field, errs.v[i].code,
                    errs.v[i].message);
    }
    cr_assert_eq(errs.n, n, "%s: %u errors, expected %u", what, errs.n, n);
}

/* Validates text against s; checks rc and the exact failures. Returns the value. */
static json_t *check(const tern_schema *s, const char *text, const exp_err *exp)
{
    json_t *v = load(text);
    int rc;

    tern_arena_reset(&arena);
    tern_errors_init(&errs, &arena);
    rc = tern_validate(s, v, &errs);
    expect_errors(text, exp);
    cr_assert_eq(rc, exp[0].field ? TERN_EINVAL : 0, "%s: rc %d", text, rc);
    return v;
}

static void ok(const tern_schema *s, const char *text)
{
    static const exp_err none[] = { { 0 } };

    json_decref(check(s, text, none));
}

static void bad1(const tern_schema *s, const char *text, const char *field, const char *code,
                 const char *message)
{
    exp_err e[] = { { field, code, message }, { 0 } };

    json_decref(check(s, text, e));
}

/* ------------------------------------------------------------------------ */
/* Types                                                                      */

Test(validate, type_messages)
{
    static const tern_schema s_str = { .type = TERN_STRING }, s_int = { .type = TERN_INTEGER },
                             s_num = { .type = TERN_NUMBER }, s_bool = { .type = TERN_BOOLEAN },
                             s_arr = { .type = TERN_ARRAY }, s_obj = { .type = TERN_OBJECT },
                             s_null = { .type = TERN_NULL };

    ok(&s_str, "\"x\"");
    bad1(&s_str, "1", "", "type", "must be a string");
    bad1(&s_str, "null", "", "type", "must be a string");
    ok(&s_int, "-5");
    bad1(&s_int, "\"5\"", "", "type", "must be an integer");
    bad1(&s_int, "true", "", "type", "must be an integer");
    ok(&s_num, "5");
    ok(&s_num, "5.25");
    bad1(&s_num, "\"5\"", "", "type", "must be a number");
    ok(&s_bool, "false");
    bad1(&s_bool, "0", "", "type", "must be a boolean");
    ok(&s_arr, "[]");
    bad1(&s_arr, "{}", "", "type", "must be an array");
    ok(&s_obj, "{}");
    bad1(&s_obj, "[]", "", "type", "must be an object");
    ok(&s_null, "null");
    bad1(&s_null, "0", "", "type", "must be null");
}

Test(validate, any_accepts_everything)
{
    static const tern_schema any = { .type = TERN_ANY };
    static const tern_schema any_len = { .type = TERN_ANY, .min_length = 2 };

    ok(&any, "null");
    ok(&any, "1");
    ok(&any, "[1, {}]");
    ok(&any, "\"\"");
    /* keywords of the value's own type still apply */
    ok(&any_len, "1");
    ok(&any_len, "\"ab\"");
    bad1(&any_len, "\"a\"", "", "min_length", "must be at least 2 characters");
}

Test(validate, nullable)
{
    static const tern_schema s = { .type = TERN_STRING, .flags = TERN_NULLABLE, .min_length = 3 };
    static const tern_schema i = { .type = TERN_INTEGER, .flags = TERN_NULLABLE };

    ok(&s, "null");
    ok(&s, "\"abc\"");
    bad1(&s, "\"ab\"", "", "min_length", "must be at least 3 characters");
    bad1(&s, "1", "", "type", "must be a string or null");
    ok(&i, "null");
    bad1(&i, "1.5", "", "type", "must be an integer or null");
}

Test(validate, type_failure_hides_keyword_failures)
{
    static const tern_schema s = { .type = TERN_STRING, .min_length = 5, .pattern = "^x",
                                   .format = "email" };

    bad1(&s, "12", "", "type", "must be a string");
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                    */

Test(validate, min_max_length_boundaries)
{
    static const tern_schema s = { .type = TERN_STRING, .min_length = 2, .max_length = 4 };

    bad1(&s, "\"a\"", "", "min_length", "must be at least 2 characters");
    ok(&s, "\"ab\"");
    ok(&s, "\"abcd\"");
    bad1(&s, "\"abcde\"", "", "max_length", "must be at most 4 characters");
    bad1(&s, "\"\"", "", "min_length", "must be at least 2 characters");
}

Test(validate, length_counts_code_points)
{
    static const tern_schema s = { .type = TERN_STRING, .min_length = 2, .max_length = 3 };

    ok(&s, "\"\u00e9\u00e9\"");               /* 2 code points, 4 bytes */
    ok(&s, "\"\u65e5\u672c\u8a9e\"");         /* 3 code points, 9 bytes */
    ok(&s, "\"\\ud83d\\ude00x\"");            /* U+1F600 (4 bytes) + x */
    bad1(&s, "\"\\ud83d\\ude00\"", "", "min_length", "must be at least 2 characters");
    bad1(&s, "\"\u00e9\u00e9\u00e9\u00e9\"", "", "max_length", "must be at most 3 characters");
}

Test(validate, length_singular)
{
    static const tern_schema s = { .type = TERN_STRING, .min_length = 1, .max_length = 1 };

    bad1(&s, "\"\"", "", "min_length", "must be at least 1 character");
    bad1(&s, "\"ab\"", "", "max_length", "must be at most 1 character");
    ok(&s, "\"a\"");
}

Test(validate, pattern)
{
    static const tern_schema s = { .type = TERN_STRING, .pattern = "^[a-z][a-z0-9_]*$" };
    static const tern_schema unanchored = { .type = TERN_STRING, .pattern = "[0-9]" };

    ok(&s, "\"user_1\"");
    bad1(&s, "\"1user\"", "", "pattern", "must match the pattern ^[a-z][a-z0-9_]*$");
    bad1(&s, "\"\"", "", "pattern", "must match the pattern ^[a-z][a-z0-9_]*$");
    ok(&unanchored, "\"abc1def\"");
    bad1(&unanchored, "\"abc\"", "", "pattern", "must match the pattern [0-9]");
}

Test(validate, pattern_that_does_not_compile_fails_closed)
{
    static const tern_schema s = { .type = TERN_STRING, .pattern = "(" };

    bad1(&s, "\"(\"", "", "pattern", "must match the pattern (");
    bad1(&s, "\"x\"", "", "pattern", "must match the pattern ("); /* cached negative */
}

Test(validate, format_messages)
{
    static const tern_schema em = { .type = TERN_STRING, .format = "email" },
                             uu = { .type = TERN_STRING, .format = "uuid" },
                             dt = { .type = TERN_STRING, .format = "date-time" },
                             ur = { .type = TERN_STRING, .format = "uri" };

    ok(&em, "\"a@b.co\"");
    bad1(&em, "\"a@b\"", "", "format", "must be an email address");
    ok(&uu, "\"123e4567-e89b-12d3-a456-426614174000\"");
    bad1(&uu, "\"123e4567\"", "", "format", "must be a UUID");
    ok(&dt, "\"2024-02-29T12:00:00Z\"");
    bad1(&dt, "\"2023-02-29T12:00:00Z\"", "", "format", "must be an RFC 3339 date-time");
    ok(&ur, "\"https://example.com/a?b#c\"");
    bad1(&ur, "\"/relative\"", "", "format", "must be an absolute URI");
}

Test(validate, enum_values)
{
    static const char *const abc[] = { "a", "b", "c", NULL };
    static const tern_schema s = { .type = TERN_STRING, .enum_values = abc };

    ok(&s, "\"a\"");
    ok(&s, "\"c\"");
    bad1(&s, "\"d\"", "", "enum", "must be one of: a, b, c");
    bad1(&s, "\"A\"", "", "enum", "must be one of: a, b, c");
    bad1(&s, "\"ab\"", "", "enum", "must be one of: a, b, c");
    bad1(&s, "\"\"", "", "enum", "must be one of: a, b, c");
    bad1(&s, "\"a\\u0000\"", "", "enum", "must be one of: a, b, c"); /* byte equality */
}

Test(validate, several_string_failures_on_one_value)
{
    static const char *const ab[] = { "aaaa", "bbbb", NULL };
    static const tern_schema s = { .type = TERN_STRING, .min_length = 3, .pattern = "^b",
                                   .enum_values = ab };
    static const exp_err e[] = {
        { "", "min_length", "must be at least 3 characters" },
        { "", "pattern", "must match the pattern ^b" },
        { "", "enum", "must be one of: aaaa, bbbb" },
        { 0 },
    };

    json_decref(check(&s, "\"a\"", e));
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                    */

Test(validate, integer_inclusive_bounds)
{
    static const tern_schema s = { .type = TERN_INTEGER, .minimum = TERN_MIN(1),
                                   .maximum = TERN_MAX(10) };

    bad1(&s, "0", "", "minimum", "must be at least 1");
    ok(&s, "1");
    ok(&s, "10");
    bad1(&s, "11", "", "maximum", "must be at most 10");
    bad1(&s, "-9223372036854775808", "", "minimum", "must be at least 1");
    bad1(&s, "9223372036854775807", "", "maximum", "must be at most 10");
}

Test(validate, integer_exclusive_bounds)
{
    static const tern_schema s = { .type = TERN_INTEGER, .minimum = TERN_XMIN(0),
                                   .maximum = TERN_XMAX(10) };

    bad1(&s, "0", "", "minimum", "must be greater than 0");
    ok(&s, "1");
    ok(&s, "9");
    bad1(&s, "10", "", "maximum", "must be less than 10");
}

Test(validate, number_bounds)
{
    static const tern_schema s = { .type = TERN_NUMBER, .minimum = TERN_MIN(0.5),
                                   .maximum = TERN_XMAX(2.5) };

    bad1(&s, "0.49", "", "minimum", "must be at least 0.5");
    ok(&s, "0.5");
    ok(&s, "1");
    ok(&s, "2.4999");
    bad1(&s, "2.5", "", "maximum", "must be less than 2.5");
    bad1(&s, "0", "", "minimum", "must be at least 0.5");
    bad1(&s, "3", "", "maximum", "must be less than 2.5");
}

Test(validate, non_integral_bound_on_integer)
{
    static const tern_schema s = { .type = TERN_INTEGER, .minimum = TERN_MIN(1.5),
                                   .maximum = TERN_MAX(0.1e2) };

    bad1(&s, "1", "", "minimum", "must be at least 1.5");
    ok(&s, "2");
    ok(&s, "10");
    bad1(&s, "11", "", "maximum", "must be at most 10");
}

Test(validate, integer_exactness_beyond_2_53)
{
    static const tern_schema s = { .type = TERN_INTEGER, .maximum = TERN_MAX(9007199254740992.0) };
    static const tern_schema lo = { .type = TERN_INTEGER,
                                    .minimum = TERN_MIN(-9007199254740992.0) };
    static const tern_schema big = { .type = TERN_INTEGER,
                                     .maximum = TERN_MAX(9223372036854775808.0) };

    ok(&s, "9007199254740992");
    /* (double)9007199254740993 == 2^53: a double comparison would pass it */
    bad1(&s, "9007199254740993", "", "maximum", "must be at most 9007199254740992");
    ok(&lo, "-9007199254740992");
    bad1(&lo, "-9007199254740993", "", "minimum", "must be at least -9007199254740992");
    ok(&big, "9223372036854775807"); /* a bound of 2^63 is above every int64 */
}

Test(validate, integral_real_accepted_and_replaced)
{
    static const tern_schema n = { .type = TERN_INTEGER, .maximum = TERN_MAX(5) };
    static const tern_prop props[] = { { "n", &n, 1 }, { 0 } };
    static const tern_schema obj = { .type = TERN_OBJECT, .properties = props };
    static const tern_schema arr = { .type = TERN_ARRAY, .items = &n };
    static const exp_err none[] = { { 0 } };
    json_t *v;

    v = check(&obj, "{\"n\": 2.0}", none);
    cr_assert(json_is_integer(json_object_get(v, "n")));
    cr_assert_eq(json_integer_value(json_object_get(v, "n")), 2);
    json_decref(v);

    v = check(&arr, "[1.0, -0.0, 3]", none);
    cr_assert(json_is_integer(json_array_get(v, 0)));
    cr_assert(json_is_integer(json_array_get(v, 1)));
    cr_assert_eq(json_integer_value(json_array_get(v, 1)), 0);
    json_decref(v);

    bad1(&obj, "{\"n\": 2.5}", "/n", "type", "must be an integer");
    bad1(&obj, "{\"n\": 6.0}", "/n", "maximum", "must be at most 5");
    bad1(&n, "1e300", "", "type", "must be an integer");
    bad1(&n, "9007199254740994.0", "", "type", "must be an integer");
    ok(&n, "-9007199254740992.0");
    ok(&n, "5.0"); /* the root cannot be replaced, but is accepted */
}

/* ------------------------------------------------------------------------ */
/* Arrays                                                                     */

Test(validate, min_max_items)
{
    static const tern_schema s = { .type = TERN_ARRAY, .min_items = 2, .max_items = 3 };
    static const tern_schema one = { .type = TERN_ARRAY, .min_items = 1, .max_items = 1 };

    bad1(&s, "[1]", "", "min_items", "must have at least 2 items");
    ok(&s, "[1, 2]");
    ok(&s, "[1, 2, 3]");
    bad1(&s, "[1, 2, 3, 4]", "", "max_items", "must have at most 3 items");
    bad1(&one, "[]", "", "min_items", "must have at least 1 item");
    bad1(&one, "[1, 2]", "", "max_items", "must have at most 1 item");
}

Test(validate, items_with_pointers)
{
    static const tern_schema item = { .type = TERN_STRING, .max_length = 2 };
    static const tern_schema s = { .type = TERN_ARRAY, .items = &item };
    static const exp_err e[] = {
        { "/1", "max_length", "must be at most 2 characters" },
        { "/3", "type", "must be a string" },
        { 0 },
    };

    json_decref(check(&s, "[\"ab\", \"abc\", \"\", 4]", e));
}

Test(validate, unique_small)
{
    static const tern_schema s = { .type = TERN_ARRAY, .flags = TERN_UNIQUE };

    ok(&s, "[]");
    ok(&s, "[1, 2, \"1\", [1], {\"a\": 1}, {\"a\": 2}]");
    bad1(&s, "[1, 2, 1]", "", "unique", "must not contain duplicate items");
    bad1(&s, "[{\"a\": 1, \"b\": [1]}, {\"b\": [1], \"a\": 1}]", "", "unique",
         "must not contain duplicate items");
    ok(&s, "[[1, 2], [2, 1]]");
}

Test(validate, unique_large_uses_hashing)
{
    static const tern_schema s = { .type = TERN_ARRAY, .flags = TERN_UNIQUE };
    char buf[4096];
    size_t n = 0;

    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"k\": %d, \"s\": \"x%d\"}",
                              i ? ", " : "", i, i);
    snprintf(buf + n, sizeof buf - n, "]");
    ok(&s, buf);
    /* the same with a duplicate (member order differs) at the end */
    snprintf(buf + n, sizeof buf - n, ", {\"s\": \"x7\", \"k\": 7}]");
    bad1(&s, buf, "", "unique", "must not contain duplicate items");
    ok(&s, "[0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]");
    bad1(&s, "[0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, -0.0]",
         "", "unique", "must not contain duplicate items");
}

/* ------------------------------------------------------------------------ */
/* Objects                                                                    */

static const tern_schema name_s = { .type = TERN_STRING, .min_length = 1, .max_length = 10 };
static const tern_schema age_s = { .type = TERN_INTEGER, .minimum = TERN_MIN(0) };
static const tern_schema role_s = { .type = TERN_STRING, .default_json = "\"user\"" };
static const tern_prop person_props[] = {
    { "name", &name_s, 1 },
    { "age", &age_s, 0 },
    { "role", &role_s, 0 },
    { 0 },
};
static const tern_schema person_s = { .type = TERN_OBJECT, .properties = person_props };

Test(validate, object_valid_and_default_inserted)
{
    static const exp_err none[] = { { 0 } };
    json_t *v = check(&person_s, "{\"name\": \"Ann\"}", none);

    cr_assert_str_eq(json_string_value(json_object_get(v, "role")), "user");
    cr_assert_null(json_object_get(v, "age"));
    json_decref(v);
    v = check(&person_s, "{\"role\": \"admin\", \"name\": \"Bo\"}", none);
    cr_assert_str_eq(json_string_value(json_object_get(v, "role")), "admin");
    json_decref(v);
}

Test(validate, default_of_any_json_type)
{
    static const tern_schema tags = { .type = TERN_ARRAY, .default_json = "[\"a\", 1]" };
    static const tern_schema opts = { .type = TERN_OBJECT, .flags = TERN_ALLOW_EXTRA,
                                      .default_json = "{\"x\": null}" };
    static const tern_schema lim = { .type = TERN_INTEGER, .default_json = "20" };
    static const tern_prop props[] = {
        { "tags", &tags, 0 }, { "opts", &opts, 0 }, { "limit", &lim, 0 }, { 0 },
    };
    static const tern_schema s = { .type = TERN_OBJECT, .properties = props };
    static const exp_err none[] = { { 0 } };
    json_t *v = check(&s, "{}", none);
    json_t *want = load("{\"tags\": [\"a\", 1], \"opts\": {\"x\": null}, \"limit\": 20}");

    cr_assert(json_equal(v, want));
    json_decref(v);
    json_decref(want);
}

Test(validate, required_unknown_and_document_order)
{
    static const exp_err e[] = {
        { "/zz", "unknown", "is not allowed" },
        { "/age", "minimum", "must be at least 0" },
        { "/a~1b", "unknown", "is not allowed" },
        { "/m~0n", "unknown", "is not allowed" },
        { "/name", "required", "is required" },
        { 0 },
    };

    json_decref(check(&person_s, "{\"zz\": 1, \"age\": -1, \"a/b\": 2, \"m~n\": 3}", e));
}

Test(validate, required_reported_once_and_default_not_for_required)
{
    static const exp_err e[] = { { "/name", "required", "is required" }, { 0 } };
    json_t *v = check(&person_s, "{}", e);

    json_decref(v);
}

Test(validate, allow_extra)
{
    static const tern_schema s = { .type = TERN_OBJECT, .flags = TERN_ALLOW_EXTRA,
                                   .properties = person_props };

    ok(&s, "{\"name\": \"x\", \"other\": [1, 2]}");
}

Test(validate, nested_pointers_and_escaping)
{
    static const tern_schema leaf = { .type = TERN_INTEGER, .maximum = TERN_MAX(1) };
    static const tern_prop inner_props[] = { { "a/b~c", &leaf, 0 }, { 0 } };
    static const tern_schema inner = { .type = TERN_OBJECT, .properties = inner_props };
    static const tern_schema list = { .type = TERN_ARRAY, .items = &inner };
    static const tern_prop outer_props[] = { { "list", &list, 1 }, { 0 } };
    static const tern_schema outer = { .type = TERN_OBJECT, .properties = outer_props };
    static const exp_err e[] = {
        { "/list/1/a~1b~0c", "maximum", "must be at most 1" },
        { "/list/2", "type", "must be an object" },
        { "/list/3/~1", "unknown", "is not allowed" },
        { 0 },
    };

    json_decref(check(&outer, "{\"list\": [{}, {\"a/b~c\": 2}, 3, {\"/\": 0}]}", e));
}

Test(validate, message_override)
{
    static const tern_schema user = { .type = TERN_STRING, .min_length = 3,
                                      .pattern = "^[a-z]+$",
                                      .message = "must be 3+ lowercase letters" };
    static const tern_prop props[] = { { "user", &user, 1 }, { 0 } };
    static const tern_schema s = { .type = TERN_OBJECT, .properties = props,
                                   .message = "must be a user object" };
    static const exp_err e[] = {
        { "/user", "min_length", "must be 3+ lowercase letters" },
        { "/user", "pattern", "must be 3+ lowercase letters" },
        { 0 },
    };
    static const exp_err missing[] = { { "/user", "required", "is required" }, { 0 } };

    json_decref(check(&s, "{\"user\": \"A\"}", e));
    json_decref(check(&s, "{}", missing));
    bad1(&s, "[]", "", "type", "must be a user object");
    bad1(&s, "{\"user\": 1}", "/user", "type", "must be 3+ lowercase letters");
}

Test(validate, errors_accumulate_across_calls)
{
    static const tern_schema s = { .type = TERN_STRING };
    json_t *a = load("1"), *b = load("\"x\"");

    cr_assert_eq(tern_validate(&s, a, &errs), TERN_EINVAL);
    /* a valid value returns 0 even though the list already has a failure */
    cr_assert_eq(tern_validate(&s, b, &errs), 0);
    cr_assert_eq(errs.n, 1);
    cr_assert_eq(tern_validate(&s, a, &errs), TERN_EINVAL);
    cr_assert_eq(errs.n, 2);
    json_decref(a);
    json_decref(b);
}

Test(validate, many_errors_grow_the_list)
{
    static const tern_schema item = { .type = TERN_STRING };
    static const tern_schema s = { .type = TERN_ARRAY, .items = &item };
    json_t *v = json_array();
    char want[16];

    for (int i = 0; i < 1000; i++)
        json_array_append_new(v, json_integer(i));
    cr_assert_eq(tern_validate(&s, v, &errs), TERN_EINVAL);
    cr_assert_eq(errs.n, 1000);
    snprintf(want, sizeof want, "/%d", 999);
    cr_assert_str_eq(errs.v[999].field, want);
    cr_assert_str_eq(errs.v[0].field, "/0");
    json_decref(v);
}

/* ------------------------------------------------------------------------ */
/* Forms                                                                      */

static const tern_schema f_id = { .type = TERN_INTEGER, .minimum = TERN_MIN(1) };
static const tern_schema f_q = { .type = TERN_STRING, .max_length = 5 };
static const tern_schema f_price = { .type = TERN_NUMBER, .maximum = TERN_MAX(100) };
static const tern_schema f_flag = { .type = TERN_BOOLEAN };
static const tern_schema f_tag = { .type = TERN_STRING, .min_length = 2 };
static const tern_schema f_tags = { .type = TERN_ARRAY, .items = &f_tag, .max_items = 2 };
static const tern_schema f_num = { .type = TERN_INTEGER };
static const tern_schema f_nums = { .type = TERN_ARRAY, .items = &f_num };
static const tern_schema f_age = { .type = TERN_INTEGER, .flags = TERN_NULLABLE };
static const tern_schema f_limit = { .type = TERN_INTEGER, .default_json = "20" };
static const tern_prop form_props[] = {
    { "id", &f_id, 1 },     { "q", &f_q, 0 },       { "price", &f_price, 0 },
    { "flag", &f_flag, 0 }, { "tags", &f_tags, 0 }, { "nums", &f_nums, 0 },
    { "age", &f_age, 0 },   { "limit", &f_limit, 0 }, { 0 },
};
static const tern_schema form_s = { .type = TERN_OBJECT, .properties = form_props };

/* Builds a form from "k=v" strings (split at the first '='; no decoding). */
static tern_form make_form(tern_kv *kv, const char *const *pairs, unsigned n)
{
    tern_form f = { kv, n };

    for (unsigned i = 0; i < n; i++) {
        const char *eq = strchr(pairs[i], '=');

        kv[i].key = (tern_str){ pairs[i], (size_t)(eq - pairs[i]) };
        kv[i].value = tern_str_c(eq + 1);
    }
    return f;
}

static json_t *form_check(const char *const *pairs, unsigned n, const exp_err *exp)
{
    tern_kv kv[32];
    tern_form f = make_form(kv, pairs, n);
    json_t *out = (json_t *)1;
    int rc;

    tern_arena_reset(&arena);
    tern_errors_init(&errs, &arena);
    rc = tern_validate_form(&form_s, &f, &out, &errs);
    expect_errors(pairs[0], exp);
    if (exp[0].field != NULL) {
        cr_assert_eq(rc, TERN_EINVAL);
        cr_assert_null(out);
        return NULL;
    }
    cr_assert_eq(rc, 0);
    cr_assert_not_null(out);
    return out;
}

Test(form, coerces_every_type)
{
    static const char *const p[] = {
        "id=42", "q=hello", "price=9.5", "flag=true", "tags=ab", "tags=cd", "nums=-3",
        "nums=4", "age=",
    };
    static const exp_err none[] = { { 0 } };
    json_t *out = form_check(p, NELEM(p), none);
    json_t *want = load("{\"id\": 42, \"q\": \"hello\", \"price\": 9.5, \"flag\": true,"
                        " \"tags\": [\"ab\", \"cd\"], \"nums\": [-3, 4], \"age\": null,"
                        " \"limit\": 20}");

    cr_assert(json_equal(out, want));
    cr_assert(json_is_integer(json_object_get(out, "id")));
    json_decref(out);
    json_decref(want);
}

Test(form, integer_number_boolean_edges)
{
    static const exp_err none[] = { { 0 } };
    static const char *const a[] = { "id=9223372036854775807", "price=-1e2", "flag=false" };
    static const char *const b[] = { "id=1", "price=100" };
    json_t *out;

    out = form_check(a, NELEM(a), none);
    cr_assert_eq(json_integer_value(json_object_get(out, "id")), INT64_MAX);
    cr_assert_float_eq(json_number_value(json_object_get(out, "price")), -100.0, 1e-9);
    cr_assert(json_is_false(json_object_get(out, "flag")));
    json_decref(out);
    out = form_check(b, NELEM(b), none);
    cr_assert(json_is_integer(json_object_get(out, "price"))); /* integral text stays exact */
    json_decref(out);
}

Test(form, coercion_failures)
{
    static const char *const p[] = {
        "id=12a",  "q=\xff", "price=1e999", "flag=yes", "nums=1", "nums=x",
        "age=1.5",
    };
    static const exp_err e[] = {
        { "/id", "type", "must be an integer" },
        { "/q", "type", "must be valid UTF-8 text" },
        { "/price", "type", "must be a number" },
        { "/flag", "type", "must be a boolean" },
        { "/nums/1", "type", "must be an integer" },
        { "/age", "type", "must be an integer" },
        { 0 },
    };

    cr_assert_null(form_check(p, NELEM(p), e));
}

Test(form, integer_text_grammar)
{
    static const char *const bad[] = {
        "id=", "id=-", "id=+1", "id= 1", "id=1 ", "id=0x10", "id=9223372036854775808",
        "id=1.0", "id=1e3",
    };
    static const exp_err e[] = { { "/id", "type", "must be an integer" }, { 0 } };
    static const exp_err none[] = { { 0 } };
    static const char *const min[] = { "id=-9223372036854775808" };
    static const exp_err low[] = { { "/id", "minimum", "must be at least 1" }, { 0 } };

    for (size_t i = 0; i < NELEM(bad); i++)
        cr_assert_null(form_check(&bad[i], 1, e));
    cr_assert_null(form_check(min, 1, low));
    (void)none;
}

Test(form, number_text_grammar)
{
    static const char *const bad[] = {
        "id=1&price=", "price=.5", "price=5.", "price=nan", "price=inf", "price=1e",
        "price=--1", "price=0x1p3", "price=1,5",
    };
    static const exp_err e[] = { { "/price", "type", "must be a number" }, { 0 } };

    for (size_t i = 1; i < NELEM(bad); i++) {
        const char *p[] = { "id=1", bad[i] };

        cr_assert_null(form_check(p, 2, e), "%s", bad[i]);
    }
}

Test(form, given_twice_unknown_and_required)
{
    static const char *const p[] = {
        "q=a", "x=1", "q=b", "x=2", "y/z=3", "tags=ab", "tags=cd", "tags=ef",
    };
    static const exp_err e[] = {
        { "/q", "type", "must be given once" },
        { "/x", "unknown", "is not allowed" },
        { "/y~1z", "unknown", "is not allowed" },
        { "/tags", "max_items", "must have at most 2 items" },
        { "/id", "required", "is required" },
        { 0 },
    };

    cr_assert_null(form_check(p, NELEM(p), e));
}

Test(form, item_keywords_and_bounds)
{
    static const char *const p[] = { "id=0", "tags=a", "q=toolong", "price=100.5" };
    static const exp_err e[] = {
        { "/id", "minimum", "must be at least 1" },
        { "/tags/0", "min_length", "must be at least 2 characters" },
        { "/q", "max_length", "must be at most 5 characters" },
        { "/price", "maximum", "must be at most 100" },
        { 0 },
    };

    cr_assert_null(form_check(p, NELEM(p), e));
}

Test(form, allow_extra_keeps_first_value_as_string)
{
    static const tern_schema s = { .type = TERN_OBJECT, .flags = TERN_ALLOW_EXTRA,
                                   .properties = form_props };
    static const char *const p[] = { "id=1", "x=1", "x=2", "bad\xff=1" };
    tern_kv kv[8];
    tern_form f = make_form(kv, p, NELEM(p));
    json_t *out, *want = load("{\"id\": 1, \"x\": \"1\", \"limit\": 20}");

    cr_assert_eq(tern_validate_form(&s, &f, &out, &errs), 0);
    cr_assert(json_equal(out, want));
    json_decref(out);
    json_decref(want);
}

Test(form, invalid_utf8_unknown_key_pointer_is_utf8)
{
    static const char *const p[] = { "id=1", "k\xff=1" };
    static const exp_err e[] = { { "/k?", "unknown", "is not allowed" }, { 0 } };

    cr_assert_null(form_check(p, NELEM(p), e));
}

Test(form, non_object_schema_is_einval)
{
    static const tern_schema s = { .type = TERN_STRING };
    tern_form f = { NULL, 0 };
    json_t *out;

    cr_assert_eq(tern_validate_form(&s, &f, &out, &errs), TERN_EINVAL);
    cr_assert_null(out);
}

Test(form, empty_form)
{
    static const tern_prop props[] = { { "a", &f_q, 0 }, { 0 } };
    static const tern_schema s = { .type = TERN_OBJECT, .properties = props };
    tern_form f = { NULL, 0 };
    json_t *out;

    cr_assert_eq(tern_validate_form(&s, &f, &out, &errs), 0);
    cr_assert_eq(json_object_size(out), 0);
    json_decref(out);
}

/* ------------------------------------------------------------------------ */
/* Regex engine                                                               */

typedef struct rx_case {
    const char *pattern, *subject;
    int match;
} rx_case;

static const rx_case rx_cases[] = {
    /* literals, search semantics */
    { "abc", "abc", 1 },
    { "abc", "xabcx", 1 },
    { "abc", "ab", 0 },
    { "", "", 1 },
    { "", "anything", 1 },
    { "b", "abc", 1 },
    /* anchors */
    { "^abc", "abcd", 1 },
    { "^abc", "xabc", 0 },
    { "abc$", "xabc", 1 },
    { "abc$", "abcx", 0 },
    { "^abc$", "abc", 1 },
    { "^abc$", "abcabc", 0 },
    { "^$", "", 1 },
    { "^$", "a", 0 },
    { "a^b", "ab", 0 },
    { "(^a|b)c", "xbc", 1 },
    { "(^a|b)c", "xac", 0 },
    /* dot */
    { "^.$", "a", 1 },
    { "^.$", "\xc3\xa9", 1 },             /* é: one code point */
    { "^.$", "\xf0\x9f\x98\x80", 1 },     /* U+1F600 */
    { "^..$", "\xc3\xa9", 0 },
    { "^.$", "\n", 0 },
    { "^.$", "\r", 0 },
    { "a.c", "a-c", 1 },
    /* classes */
    { "^[a-z0-9_]+$", "user_42", 1 },
    { "^[a-z0-9_]+$", "User", 0 },
    { "^[^a-z]+$", "ABC123", 1 },
    { "^[^a-z]+$", "ABcD", 0 },
    { "^[-a]+$", "a-a", 1 },
    { "^[a-]+$", "-a", 1 },
    { "^[\\]\\\\]+$", "]\\", 1 },
    { "^[\\d.]+$", "1.5", 1 },
    { "^[\\s]$", "\t", 1 },
    { "^[\\W]$", "_", 0 },
    { "^[\\W]$", "!", 1 },
    { "^[\\D]+$", "abc", 1 },
    { "^[\\D]+$", "a1", 0 },
    { "^[\xc3\xa0-\xc3\xbf]+$", "\xc3\xa9\xc3\xa8", 1 }, /* [à-ÿ] over code points */
    { "^[\xc3\xa0-\xc3\xbf]+$", "e", 0 },
    { "^[^\xc3\xa9]$", "\xc3\xa8", 1 },
    { "^[^\xc3\xa9]$", "\xc3\xa9", 0 },
    { "^[]$", "a", 0 },
    { "^[^]$", "\n", 1 },
    { "^[.]$", "a", 0 },
    { "^[.]$", ".", 1 },
    { "^[a-cx-z]$", "y", 1 },
    { "^[a-cx-z]$", "d", 0 },
    /* escapes */
    { "^\\d+$", "2024", 1 },
    { "^\\d+$", "20a4", 0 },
    { "^\\w+$", "a_1", 1 },
    { "^\\w+$", "a-1", 0 },
    { "^\\s$", " ", 1 },
    { "^\\s$", "\xe3\x80\x80", 1 }, /* U+3000 ideographic space */
    { "^\\S+$", "ab", 1 },
    { "^\\D$", "5", 0 },
    { "^a\\.b$", "a.b", 1 },
    { "^a\\.b$", "axb", 0 },
    { "^\\-\\\\\\/$", "-\\/", 1 },
    { "^\\x41\\u0042\\u{1F600}$", "AB\xf0\x9f\x98\x80", 1 },
    { "^\\t$", "\t", 1 },
    { "^\\(\\)\\[\\]\\{\\}\\*\\+\\?\\|\\^\\$$", "()[]{}*+?|^$", 1 },
    /* groups and alternation */
    { "^(ab)+$", "ababab", 1 },
    { "^(ab)+$", "ababa", 0 },
    { "^(?:ab|cd)$", "cd", 1 },
    { "^(?<word>ab|cd)$", "ab", 1 },
    { "^(a|b|c)$", "b", 1 },
    { "^(a|b|c)$", "d", 0 },
    { "^(a|)$", "", 1 },
    { "cat|dog", "hotdog", 1 },
    { "^cat|dog$", "catalog", 1 },
    { "^(cat|dog)$", "catalog", 0 },
    { "^((a)|(b(c|d)))+$", "abcabd", 1 },
    /* quantifiers */
    { "^a*$", "", 1 },
    { "^a*$", "aaaa", 1 },
    { "^a+$", "", 0 },
    { "^a?b$", "b", 1 },
    { "^a?b$", "aab", 0 },
    { "^a{3}$", "aaa", 1 },
    { "^a{3}$", "aa", 0 },
    { "^a{3}$", "aaaa", 0 },
    { "^a{2,}$", "a", 0 },
    { "^a{2,}$", "aaaaaa", 1 },
    { "^a{2,4}$", "aa", 1 },
    { "^a{2,4}$", "aaaa", 1 },
    { "^a{2,4}$", "aaaaa", 0 },
    { "^a{0}$", "", 1 },
    { "^a{0,1}b$", "ab", 1 },
    { "^(ab){2}$", "abab", 1 },
    { "^a*?b+?$", "aabb", 1 }, /* lazy quantifiers: same yes/no */
    { "^\xc3\xa9{2}$", "\xc3\xa9\xc3\xa9", 1 },
    { "^[a-z]{1,1000}$", "abc", 1 },
    { "^.{2,3}$", "\xe6\x97\xa5\xe6\x9c\xac", 1 }, /* 2 code points */
    /* pathological patterns stay correct */
    { "(a*)*b", "aaab", 1 },
    { "(a*)*b", "aaaa", 0 },
    { "^(a?){5}a{5}$", "aaaaa", 1 },
    { "(x+x+)+y", "xxxxxxxxxxy", 1 },
    { "()*", "", 1 },
    { "^(a*)+$", "aa", 1 },
    /* invalid UTF-8 in the subject reads as U+FFFD, one byte at a time */
    { "^.$", "\xff", 1 },
    { "^..$", "\xc3", 0 },
};

Test(regex, table)
{
    for (size_t i = 0; i < NELEM(rx_cases); i++) {
        const rx_case *c = &rx_cases[i];
        tern_rx *rx;
        char err[128];
        int rc = tern_rx_compile(c->pattern, &rx, err, sizeof err);

        cr_assert_eq(rc, 0, "compile /%s/: %s", c->pattern, err);
        cr_expect_eq(tern_rx_search(rx, c->subject, strlen(c->subject)), c->match,
                     "/%s/ on \"%s\": expected %d", c->pattern, c->subject, c->match);
        tern_rx_free(rx);
    }
    cr_assert_geq(NELEM(rx_cases), 60);
}

Test(regex, subject_with_nul_byte)
{
    tern_rx *rx;

    cr_assert_eq(tern_rx_compile("^a\\0b$", &rx, NULL, 0), 0);
    cr_assert_eq(tern_rx_search(rx, "a\0b", 3), 1);
    cr_assert_eq(tern_rx_search(rx, "a\0", 2), 0);
    tern_rx_free(rx);
}

Test(regex, syntax_errors)
{
    static const struct {
        const char *pattern, *reason;
    } bad[] = {
        { "(", "missing ')'" },
        { "(ab", "missing ')'" },
        { ")", "unmatched ')'" },
        { "a)", "unmatched ')'" },
        { "[a-", "unterminated character class" },
        { "[z-a]", "range out of order" },
        { "[\\d-z]", "class escape cannot be a range endpoint" },
        { "*a", "nothing to repeat" },
        { "a**", "nothing to repeat" },
        { "a{2}{3}", "nothing to repeat" },
        { "^*", "nothing to repeat" },
        { "a|*", "nothing to repeat" },
        { "a{", "invalid quantifier" },
        { "a{x}", "invalid quantifier" },
        { "a{,3}", "invalid quantifier" },
        { "a{3,2}", "m > n" },
        { "a{1001}", "above 1000" },
        { "a{1,1001}", "above 1000" },
        { "{", "unescaped bracket" },
        { "]", "unescaped bracket" },
        { "a\\", "ends with a backslash" },
        { "\\q", "unknown escape" },
        { "\\1", "backreferences" },
        { "\\b", "word boundaries" },
        { "(?=a)", "lookaround" },
        { "(?<=a)", "lookaround" },
        { "(?<>a)", "invalid group name" },
        { "\\x4", "hexadecimal" },
        { "\\u{110000}", "\\u{...}" },
        { "\\01", "octal" },
        { "\xff", "invalid UTF-8" },
        { "(a{1000}){20}", "pattern too large" },
    };
    for (size_t i = 0; i < NELEM(bad); i++) {
        tern_rx *rx = (tern_rx *)1;
        char err[160];
        int rc = tern_rx_compile(bad[i].pattern, &rx, err, sizeof err);

        cr_expect_eq(rc, TERN_EINVAL, "/%s/ compiled", bad[i].pattern);
        cr_expect_null(rx);
        cr_expect(strstr(err, bad[i].reason) != NULL, "/%s/: \"%s\" lacks \"%s\"",
                  bad[i].pattern, err, bad[i].reason);
    }
}

Test(regex, group_nesting_limit)
{
    char pat[2 * (TERN_RX_MAX_DEPTH + 2) + 2];
    size_t n = 0;
    tern_rx *rx;
    char err[128];

    for (int i = 0; i < TERN_RX_MAX_DEPTH + 1; i++)
        pat[n++] = '(';
    for (int i = 0; i < TERN_RX_MAX_DEPTH + 1; i++)
        pat[n++] = ')';
    pat[n] = '\0';
    cr_assert_eq(tern_rx_compile(pat, &rx, err, sizeof err), TERN_EINVAL);
    cr_assert(strstr(err, "nested too deeply") != NULL);
    /* one level fewer compiles */
    memmove(pat, pat + 1, n - 2);
    pat[n - 2] = '\0';
    cr_assert_eq(tern_rx_compile(pat, &rx, err, sizeof err), 0, "%s", err);
    tern_rx_free(rx);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

Test(regex, linear_time_on_pathological_patterns)
{
    /* The first three are the classic exponential cases for a backtracking
     * engine and must take well under 100 ms even in a sanitizer build; the
     * others have much bigger programs (the NFA is O(n * m)), so they get a
     * looser bound that still rules out anything super-linear. */
    static const struct {
        const char *pattern;
        int match;
        double max_ms;
    } cases[] = {
        { "(a*)*b", 0, 100 },   { "(a|a)*c", 0, 100 },           { "(a+)+$", 1, 100 },
        { "^(a+)+b", 0, 100 },  { "(a|aa)*b", 0, 100 },          { "^(a?){30}a{30}$", 0, 100 },
        { "(.*a){20}b", 0, 1000 },
    };
    size_t n = 30000;
    char *s = malloc(n + 1);

    memset(s, 'a', n);
    s[n] = '\0';
    for (size_t i = 0; i < NELEM(cases); i++) {
        tern_rx *rx;
        double t0, ms;
        int m;

        cr_assert_eq(tern_rx_compile(cases[i].pattern, &rx, NULL, 0), 0);
        t0 = now_ms();
        m = tern_rx_search(rx, s, n);
        ms = now_ms() - t0;
        cr_expect_eq(m, cases[i].match, "%s", cases[i].pattern);
        cr_expect_lt(ms, cases[i].max_ms, "/%s/ on 30000 'a': %.2f ms", cases[i].pattern, ms);
        fprintf(stderr, "linearity: /%s/ x 30000 'a': %.3f ms\n", cases[i].pattern, ms);
        tern_rx_free(rx);
    }
    free(s);
}

Test(regex, large_program_uses_heap_scratch)
{
    tern_rx *rx;

    cr_assert_eq(tern_rx_compile("^[a-z]{300}$", &rx, NULL, 0), 0);
    cr_assert_gt(tern_rx_size(rx), 256);
    {
        char s[301];

        memset(s, 'q', 300);
        s[300] = '\0';
        cr_assert_eq(tern_rx_search(rx, s, 300), 1);
        cr_assert_eq(tern_rx_search(rx, s, 299), 0);
    }
    tern_rx_free(rx);
}

Test(regex, cache_returns_same_program)
{
    const tern_rx *a, *b;
    char pat[32];

    cr_assert_eq(tern_rx_get("^x+$", &a), 0);
    cr_assert_eq(tern_rx_get("^x+$", &b), 0);
    cr_assert_eq(a, b);
    /* a copy of the text at another address finds the same entry */
    snprintf(pat, sizeof pat, "%s", "^x+$");
    cr_assert_eq(tern_rx_get(pat, &b), 0);
    cr_assert_eq(a, b);
    /* many patterns: the table grows and keeps every entry */
    for (int i = 0; i < 200; i++) {
        snprintf(pat, sizeof pat, "^p%d$", i);
        cr_assert_eq(tern_rx_get(pat, &b), 0);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(pat, sizeof pat, "^p%d$", i);
        cr_assert_eq(tern_rx_get(pat, &b), 0);
        cr_assert_eq(tern_rx_search(b, pat + 1, strlen(pat) - 2), 1);
    }
    cr_assert_eq(tern_rx_get("^x+$", &b), 0);
    cr_assert_eq(a, b);
    cr_assert_eq(tern_rx_get("[", &b), TERN_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Formats                                                                    */

typedef struct fmt_case {
    const char *s;
    int valid;
} fmt_case;

static void fmt_table(int (*f)(const char *, size_t), const fmt_case *c, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(f(c[i].s, strlen(c[i].s)), c[i].valid, "%s \"%s\": expected %d", name,
                     c[i].s, c[i].valid);
}

Test(format, email)
{
    static const fmt_case c[] = {
        { "a@b.co", 1 },
        { "first.last+tag@sub.example.org", 1 },
        { "x!#$%&'*+-/=?^_`{|}~@example.com", 1 },
        { "user@xn--bcher-kva.example", 1 },
        { "user@a-b.example.com", 1 },
        { "user@123.example.com", 1 },
        { "a@b.c", 0 },            /* TLD of one letter */
        { "a@b.c1", 0 },           /* TLD with a digit */
        { "a@localhost", 0 },      /* no dot */
        { "@b.co", 0 },
        { "a@", 0 },
        { "a", 0 },
        { "a@@b.co", 0 },
        { ".a@b.co", 0 },
        { "a.@b.co", 0 },
        { "a..b@b.co", 0 },
        { "a@-b.co", 0 },
        { "a@b-.co", 0 },
        { "a@b..co", 0 },
        { "a@.b.co", 0 },
        { "a@b.co.", 0 },
        { "\"a\"@b.co", 0 },       /* quoted local parts are not accepted */
        { "a b@b.co", 0 },
        { "a@b_c.co", 0 },
        { "a@[1.2.3.4]", 0 },
        { "\xc3\xa9@b.co", 0 },
        /* 64-byte local part is fine, 65 is not */
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.co", 1 },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.co", 0 },
        /* 63-byte label fine, 64 not */
        { "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.co", 1 },
        { "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.co", 0 },
    };
    char buf[300];

    fmt_table(tern_fmt_email, c, NELEM(c), "email");
    /* total length: 254 accepted, 255 rejected */
    memset(buf, 0, sizeof buf);
    memcpy(buf, "a@", 2);
    for (size_t i = 2; i < 254; i += 10)
        memcpy(buf + i, "bbbbbbbbb.", 10);
    memcpy(buf + 250, "comm", 4); /* 254 bytes, ends with a label "...comm" */
    buf[254] = '\0';
    cr_expect_eq(tern_fmt_email(buf, 254), 1, "254 bytes");
    buf[254] = 'm';
    cr_expect_eq(tern_fmt_email(buf, 255), 0, "255 bytes");
}

Test(format, uuid)
{
    static const fmt_case c[] = {
        { "123e4567-e89b-12d3-a456-426614174000", 1 },
        { "123E4567-E89B-12D3-A456-426614174000", 1 },
        { "00000000-0000-0000-0000-000000000000", 1 },
        { "ffffffff-ffff-ffff-ffff-ffffffffffff", 1 },
        { "123e4567e89b12d3a456426614174000", 0 },
        { "123e4567-e89b-12d3-a456-42661417400", 0 },
        { "123e4567-e89b-12d3-a456-4266141740000", 0 },
        { "123e4567-e89b-12d3-a456_426614174000", 0 },
        { "g23e4567-e89b-12d3-a456-426614174000", 0 },
        { "{123e4567-e89b-12d3-a456-426614174000}", 0 },
        { "", 0 },
    };

    fmt_table(tern_fmt_uuid, c, NELEM(c), "uuid");
}

Test(format, date_time)
{
    static const fmt_case c[] = {
        { "2024-01-15T10:30:00Z", 1 },
        { "2024-01-15t10:30:00z", 1 },
        { "2024-01-15T10:30:00.123456Z", 1 },
        { "2024-01-15T10:30:00+05:30", 1 },
        { "2024-01-15T10:30:00-08:00", 1 },
        { "2024-02-29T00:00:00Z", 1 },  /* leap year */
        { "2000-02-29T00:00:00Z", 1 },  /* divisible by 400 */
        { "1900-02-29T00:00:00Z", 0 },  /* divisible by 100 only */
        { "2023-02-29T00:00:00Z", 0 },
        { "2023-04-31T00:00:00Z", 0 },
        { "2023-12-31T23:59:59Z", 1 },
        { "2023-13-01T00:00:00Z", 0 },
        { "2023-00-01T00:00:00Z", 0 },
        { "2023-01-00T00:00:00Z", 0 },
        { "2023-01-32T00:00:00Z", 0 },
        { "2023-01-01T24:00:00Z", 0 },
        { "2023-01-01T23:60:00Z", 0 },
        { "2016-12-31T23:59:60Z", 1 },       /* leap second */
        { "2016-12-31T18:59:60-05:00", 1 },  /* the same leap second in UTC-5 */
        { "2016-12-31T22:59:60Z", 0 },       /* not at 23:59 UTC */
        { "2016-12-31T23:59:61Z", 0 },
        { "2023-01-01T00:00:00", 0 },        /* offset required */
        { "2023-01-01 00:00:00Z", 0 },       /* space instead of T */
        { "2023-01-01T00:00Z", 0 },          /* seconds required */
        { "2023-01-01T00:00:00.Z", 0 },
        { "2023-01-01T00:00:00+0100", 0 },
        { "2023-01-01T00:00:00+24:00", 0 },
        { "2023-01-01T00:00:00+01:60", 0 },
        { "2023-1-01T00:00:00Z", 0 },
        { "2023-01-01", 0 },
        { "2023-01-01T00:00:00Zx", 0 },
        { "", 0 },
    };

    fmt_table(tern_fmt_date_time, c, NELEM(c), "date-time");
}

Test(format, uri)
{
    static const fmt_case c[] = {
        { "https://example.com", 1 },
        { "https://example.com/", 1 },
        { "http://user:pw@example.com:8080/a/b?x=1&y=2#frag", 1 },
        { "mailto:someone@example.com", 1 },
        { "urn:isbn:0451450523", 1 },
        { "file:///etc/hosts", 1 },
        { "http://[::1]:80/", 1 },
        { "http://[2001:db8::7]/c=GB?objectClass?one", 1 },
        { "http://[::ffff:192.0.2.1]/", 1 },
        { "http://[v7.abc:def]/", 1 },
        { "http://192.0.2.16:80/", 1 },
        { "http://a/%20b", 1 },
        { "tag:example.com,2005:x", 1 },
        { "a+b.c-d:x", 1 },
        { "http://example.com/?", 1 },
        { "/relative/path", 0 },
        { "//example.com", 0 },
        { "example.com", 0 },
        { "1http://x", 0 },
        { ":x", 0 },
        { "http://exa mple.com", 0 },
        { "http://example.com/a b", 0 },
        { "http://a/%2", 0 },
        { "http://a/%zz", 0 },
        { "http://a/\xc3\xa9", 0 },
        { "http://[::1/", 0 },
        { "http://[1:2:3:4:5:6:7:8:9]/", 0 },
        { "http://[:::]/", 0 },
        { "http://[12345::]/", 0 },
        { "http://a:8x/", 0 },
        { "http://a/#b#c", 0 },
        { "http://a\"b/", 0 },
        { "http://a<b>/", 0 },
        { "", 0 },
    };

    fmt_table(tern_fmt_uri, c, NELEM(c), "uri");
}

Test(format, utf8)
{
    static const fmt_case c[] = {
        { "plain", 1 },
        { "\xc3\xa9", 1 },
        { "\xe2\x82\xac", 1 },
        { "\xf0\x9f\x98\x80", 1 },
        { "\xf4\x8f\xbf\xbf", 1 },     /* U+10FFFF */
        { "\xc0\xaf", 0 },             /* overlong '/' */
        { "\xe0\x80\xaf", 0 },         /* overlong */
        { "\xed\xa0\x80", 0 },         /* surrogate */
        { "\xf4\x90\x80\x80", 0 },     /* above U+10FFFF */
        { "\xc3", 0 },                 /* truncated */
        { "\xe2\x82", 0 },
        { "\x80", 0 },
        { "\xff", 0 },
    };

    fmt_table(tern_utf8_valid, c, NELEM(c), "utf8");
    cr_assert(tern_fmt_known("email") && tern_fmt_known("uri") && !tern_fmt_known("ipv4"));
    cr_assert_eq(tern_fmt_check("nope", "x", 1), 0);
}

/* ------------------------------------------------------------------------ */
/* tern_schema_check                                                          */

static void check_fails(const tern_schema *s, const char *needle)
{
    char err[256];
    int rc = tern_schema_check(s, err, sizeof err);

    cr_expect_eq(rc, TERN_EINVAL, "expected failure with \"%s\"", needle);
    cr_expect(strstr(err, needle) != NULL, "\"%s\" lacks \"%s\"", err, needle);
}

static const tern_schema rec_s;
static const tern_schema rec_s = { .type = TERN_ARRAY, .items = &rec_s };

Test(schema_check, valid_schemas)
{
    static const char *const colors[] = { "red", "green", NULL };
    static const tern_schema color = { .type = TERN_STRING, .enum_values = colors,
                                       .default_json = "\"red\"" };
    static const tern_schema tags = { .type = TERN_ARRAY, .items = &f_tag, .max_items = 5,
                                      .flags = TERN_UNIQUE, .default_json = "[]" };
    static const tern_prop props[] = {
        { "color", &color, 0 }, { "tags", &tags, 0 }, { "person", &person_s, 1 }, { 0 },
    };
    static const tern_schema s = { .type = TERN_OBJECT, .properties = props };
    char err[256];

    cr_assert_eq(tern_schema_check(&s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tern_schema_check(&form_s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tern_schema_check(&person_s, NULL, 0), 0);
}

Test(schema_check, errors)
{
    static const char *const abc[] = { "abc", "x", NULL };
    static const char *const none[] = { 0 };
    static const tern_schema bad_pattern = { .type = TERN_STRING, .pattern = "a(b" };
    static const tern_schema bad_len = { .type = TERN_STRING, .min_length = 5, .max_length = 4 };
    static const tern_schema bad_items = { .type = TERN_ARRAY, .min_items = 3, .max_items = 2 };
    static const tern_schema bad_bounds = { .type = TERN_INTEGER, .minimum = TERN_MIN(5),
                                            .maximum = TERN_MAX(4) };
    static const tern_schema empty_range = { .type = TERN_NUMBER, .minimum = TERN_XMIN(1),
                                             .maximum = TERN_MAX(1) };
    static const tern_schema nan_bound = { .type = TERN_NUMBER, .minimum = TERN_MIN(NAN) };
    static const tern_schema bad_format = { .type = TERN_STRING, .format = "ipv4" };
    static const tern_schema bad_default = { .type = TERN_INTEGER, .maximum = TERN_MAX(3),
                                             .default_json = "4" };
    static const tern_schema bad_default_json = { .type = TERN_INTEGER, .default_json = "{" };
    static const tern_schema bad_enum = { .type = TERN_STRING, .min_length = 2,
                                          .enum_values = abc };
    static const tern_schema empty_enum = { .type = TERN_STRING, .enum_values = none };
    static const tern_schema wrong_kw = { .type = TERN_INTEGER, .min_length = 1 };
    static const tern_schema wrong_kw2 = { .type = TERN_STRING, .minimum = TERN_MIN(1) };
    static const tern_schema wrong_kw3 = { .type = TERN_STRING, .flags = TERN_UNIQUE };
    static const tern_schema wrong_kw4 = { .type = TERN_ARRAY, .properties = person_props };
    static const tern_schema bad_flags = { .type = TERN_STRING, .flags = 0x100 };
    static const tern_schema bad_type = { .type = (tern_type)42 };
    static const tern_prop dup_props[] = { { "a", &f_q, 0 }, { "a", &f_q, 0 }, { 0 } };
    static const tern_schema dup = { .type = TERN_OBJECT, .properties = dup_props };
    static const tern_prop null_props[] = { { "a", NULL, 0 }, { 0 } };
    static const tern_schema null_schema = { .type = TERN_OBJECT, .properties = null_props };
    static const tern_prop deep_props[] = { { "inner", &bad_pattern, 0 }, { 0 } };
    static const tern_schema deep_inner = { .type = TERN_OBJECT, .properties = deep_props };
    static const tern_schema deep = { .type = TERN_ARRAY, .items = &deep_inner };

    check_fails(&bad_pattern, "missing ')'");
    check_fails(&bad_len, "min_length 5 > max_length 4");
    check_fails(&bad_items, "min_items 3 > max_items 2");
    check_fails(&bad_bounds, "no valid value");
    check_fails(&empty_range, "no valid value");
    check_fails(&nan_bound, "not a finite number");
    check_fails(&bad_format, "unknown format");
    check_fails(&bad_default, "the default does not match the schema: must be at most 3");
    check_fails(&bad_default_json, "default is not valid JSON");
    check_fails(&bad_enum, "an enum value does not match the schema");
    check_fails(&empty_enum, "enum_values is empty");
    check_fails(&wrong_kw, "string keywords");
    check_fails(&wrong_kw2, "minimum/maximum");
    check_fails(&wrong_kw3, "array keywords");
    check_fails(&wrong_kw4, "object keywords");
    check_fails(&bad_flags, "unknown flags");
    check_fails(&bad_type, "invalid type");
    check_fails(&dup, "declared twice");
    check_fails(&null_schema, "no schema");
    check_fails(&rec_s, "recursive");
    /* the error names where in the schema it is */
    check_fails(&deep, "/items/properties/inner: pattern \"a(b\"");
}

Test(schema_check, default_of_object_member_checked_against_member)
{
    static const tern_schema small = { .type = TERN_STRING, .max_length = 2,
                                       .default_json = "\"abc\"" };
    static const tern_prop props[] = { { "s", &small, 0 }, { 0 } };
    static const tern_schema s = { .type = TERN_OBJECT, .properties = props };

    check_fails(&s, "/properties/s: the default does not match the schema");
}

/* ------------------------------------------------------------------------ */
/* JSON Schema output                                                         */

Test(schema_json, complex_schema)
{
    static const char *const roles[] = { "admin", "user", NULL };
    static const tern_schema id = { .type = TERN_STRING, .format = "uuid",
                                    .description = "Server-assigned id" };
    static const tern_schema name = { .type = TERN_STRING, .min_length = 1, .max_length = 100,
                                      .pattern = "^[^\\s]" };
    static const tern_schema age = { .type = TERN_INTEGER, .minimum = TERN_MIN(0),
                                     .maximum = TERN_XMAX(150) };
    static const tern_schema score = { .type = TERN_NUMBER, .minimum = TERN_XMIN(0.5),
                                       .maximum = TERN_MAX(99.75), .flags = TERN_NULLABLE };
    static const tern_schema role = { .type = TERN_STRING, .enum_values = roles,
                                      .flags = TERN_NULLABLE, .default_json = "\"user\"" };
    static const tern_schema tag = { .type = TERN_STRING };
    static const tern_schema tags = { .type = TERN_ARRAY, .items = &tag, .min_items = 1,
                                      .max_items = 10, .flags = TERN_UNIQUE };
    static const tern_schema meta = { .type = TERN_OBJECT, .flags = TERN_ALLOW_EXTRA };
    static const tern_schema any = { .type = TERN_ANY, .title = "Anything" };
    static const tern_schema active = { .type = TERN_BOOLEAN, .default_json = "true" };
    static const tern_prop props[] = {
        { "id", &id, 0 },     { "name", &name, 1 }, { "age", &age, 0 },
        { "score", &score, 0 }, { "role", &role, 0 }, { "tags", &tags, 1 },
        { "meta", &meta, 0 }, { "extra", &any, 0 }, { "active", &active, 0 },
        { 0 },
    };
    static const tern_schema user = { .type = TERN_OBJECT, .properties = props, .title = "User",
                                      .description = "A user account" };
    json_t *got = tern_schema_json(&user);
    json_t *want = load(
        "{\"type\": \"object\", \"title\": \"User\", \"description\": \"A user account\","
        " \"properties\": {"
        "  \"id\": {\"type\": \"string\", \"format\": \"uuid\","
        "           \"description\": \"Server-assigned id\"},"
        "  \"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 100,"
        "             \"pattern\": \"^[^\\\\s]\"},"
        "  \"age\": {\"type\": \"integer\", \"minimum\": 0, \"exclusiveMaximum\": 150},"
        "  \"score\": {\"type\": [\"number\", \"null\"], \"exclusiveMinimum\": 0.5,"
        "              \"maximum\": 99.75},"
        "  \"role\": {\"type\": [\"string\", \"null\"], \"enum\": [\"admin\", \"user\", null],"
        "             \"default\": \"user\"},"
        "  \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"minItems\": 1,"
        "             \"maxItems\": 10, \"uniqueItems\": true},"
        "  \"meta\": {\"type\": \"object\"},"
        "  \"extra\": {\"title\": \"Anything\"},"
        "  \"active\": {\"type\": \"boolean\", \"default\": true}"
        " },"
        " \"required\": [\"name\", \"tags\"],"
        " \"additionalProperties\": false}");
    char *dump;

    cr_assert_not_null(got);
    dump = json_dumps(got, JSON_SORT_KEYS);
    cr_assert(json_equal(got, want), "got %s", dump);
    /* integral bounds are integers, not reals */
    cr_assert(json_is_integer(json_object_get(json_object_get(json_object_get(got, "properties"),
                                                              "age"), "minimum")));
    free(dump);
    json_decref(got);
    json_decref(want);
}

Test(schema_json, recursive_schema_is_cut_off)
{
    json_t *got = tern_schema_json(&rec_s);

    cr_assert_not_null(got);
    json_decref(got);
}

/* ------------------------------------------------------------------------ */
/* Binding                                                                    */

typedef struct user_in {
    tern_str name;
    int64_t age;
    double score;
    int admin;
    json_t *meta;
    json_t *tags;
    tern_str missing;
} user_in;

static const tern_bind_field user_fields[] = {
    TERN_BIND(user_in, name, TERN_STRING),   TERN_BIND(user_in, age, TERN_INTEGER),
    TERN_BIND(user_in, score, TERN_NUMBER),  TERN_BIND(user_in, admin, TERN_BOOLEAN),
    TERN_BIND(user_in, meta, TERN_ANY),      TERN_BIND(user_in, tags, TERN_ARRAY),
    TERN_BIND(user_in, missing, TERN_STRING), { 0 },
};

Test(bind, copies_members)
{
    json_t *v = load("{\"name\": \"Ann\\u0000x\", \"age\": 9007199254740993, \"score\": 2,"
                     " \"admin\": true, \"meta\": {\"a\": 1}, \"tags\": [1], \"missing\": null}");
    user_in u;

    memset(&u, 0, sizeof u);
    u.missing = TERN_STR("keep");
    cr_assert_eq(tern_bind(v, user_fields, &u), 0);
    cr_assert_eq(u.name.n, 5);
    cr_assert_eq(memcmp(u.name.p, "Ann\0x", 5), 0);
    cr_assert_eq(u.age, 9007199254740993LL);
    cr_assert_float_eq(u.score, 2.0, 0);
    cr_assert_eq(u.admin, 1);
    cr_assert_eq(u.meta, json_object_get(v, "meta"));
    cr_assert_eq(u.tags, json_object_get(v, "tags"));
    cr_assert(tern_str_eq(u.missing, TERN_STR("keep"))); /* null leaves it */
    json_decref(v);
}

Test(bind, absent_untouched_and_mismatch)
{
    json_t *v = load("{\"age\": \"x\", \"admin\": false, \"score\": 1.5}");
    user_in u;

    memset(&u, 0, sizeof u);
    u.age = 7;
    u.admin = 5;
    cr_assert_eq(tern_bind(v, user_fields, &u), TERN_EINVAL);
    cr_assert_eq(u.age, 7);                /* mismatched: untouched */
    cr_assert_eq(u.admin, 0);              /* the others still bound */
    cr_assert_float_eq(u.score, 1.5, 0);
    cr_assert_null(u.name.p);
    json_decref(v);
    v = load("[1]");
    cr_assert_eq(tern_bind(v, user_fields, &u), TERN_EINVAL);
    json_decref(v);
}

Test(bind, integral_real_to_integer)
{
    static const tern_bind_field f[] = { TERN_BIND(user_in, age, TERN_INTEGER), { 0 } };
    json_t *v = load("{\"age\": 3.0}");
    user_in u;

    cr_assert_eq(tern_bind(v, f, &u), 0);
    cr_assert_eq(u.age, 3);
    json_decref(v);
    v = load("{\"age\": 3.5}");
    cr_assert_eq(tern_bind(v, f, &u), TERN_EINVAL);
    json_decref(v);
}

/* ------------------------------------------------------------------------ */
/* Allocation failure                                                         */

static long live;       /* allocations not yet freed */
static long fail_at;    /* 1-based index of the allocation to fail; 0 = none */
static long calls;

static void *t_malloc(size_t n)
{
    if (fail_at && ++calls == fail_at)
        return NULL;
    live++;
    return malloc(n ? n : 1);
}

static void *t_realloc(void *p, size_t n)
{
    if (fail_at && ++calls == fail_at)
        return NULL;
    if (p == NULL)
        live++;
    return realloc(p, n ? n : 1);
}

static void t_free(void *p)
{
    if (p != NULL)
        live--;
    free(p);
}

static void set_failing_allocator(long nth)
{
    fail_at = nth;
    calls = 0;
    tern_set_allocator(t_malloc, t_realloc, t_free);
    json_set_alloc_funcs(t_malloc, t_free);
}

static void restore_allocator(void)
{
    fail_at = 0;
    tern_set_allocator(NULL, NULL, NULL);
    json_set_alloc_funcs(malloc, free);
}

/*
 * Runs op with every allocation failed in turn; op must end with no leaks and
 * return TERN_ENOMEM or want_rc (or also_rc, when not 1).
 */
static void oom_loop2(int (*op)(void), int want_rc, int also_rc)
{
    long nth;

    for (nth = 1; nth < 10000; nth++) {
        int rc;

        live = 0;
        set_failing_allocator(nth);
        rc = op();
        restore_allocator();
        cr_assert_eq(live, 0, "allocation %ld failed: %ld leaked", nth, live);
        if (calls < nth) { /* the op made fewer allocations: it ran clean */
            cr_assert_eq(rc, want_rc, "clean run rc %d", rc);
            break;
        }
        cr_assert(rc == TERN_ENOMEM || rc == want_rc || rc == also_rc,
                  "allocation %ld failed: rc %d", nth, rc);
    }
    cr_assert_gt(nth, 3, "the operation allocated too little to test");
}

static void oom_loop(int (*op)(void), int want_rc)
{
    oom_loop2(op, want_rc, 1);
}

static const tern_schema oom_item = { .type = TERN_INTEGER, .maximum = TERN_MAX(5) };
static const tern_schema oom_arr = { .type = TERN_ARRAY, .items = &oom_item,
                                     .flags = TERN_UNIQUE, .default_json = "[1, 2]" };
static const tern_schema oom_str = { .type = TERN_STRING, .pattern = "^[a-z]{1,300}$",
                                     .default_json = "\"abc\"" };
static const tern_prop oom_props[] = {
    { "a", &oom_arr, 0 }, { "s", &oom_str, 0 }, { "n", &oom_item, 1 }, { 0 },
};
static const tern_schema oom_s = { .type = TERN_OBJECT, .properties = oom_props };

static int op_validate(void)
{
    tern_arena a;
    tern_errors e;
    json_t *v = json_loads("{\"x\": 1, \"b\": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0,"
                           " 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 7.0]}",
                           0, NULL);
    static const tern_prop props[] = {
        { "b", &oom_arr, 0 }, { "a", &oom_arr, 0 }, { "s", &oom_str, 0 }, { "n", &oom_item, 1 },
        { 0 },
    };
    static const tern_schema s = { .type = TERN_OBJECT, .properties = props };
    int rc;

    if (v == NULL)
        return TERN_ENOMEM;
    tern_arena_init(&a, 256);
    tern_errors_init(&e, &a);
    rc = tern_validate(&s, v, &e);
    json_decref(v);
    tern_arena_deinit(&a);
    tern_rx_cache_clear();
    return rc;
}

static int op_form(void)
{
    static const char *const p[] = { "a=1", "a=2", "n=3", "s=abc" };
    tern_kv kv[4];
    tern_form f = make_form(kv, p, 4);
    tern_arena a;
    tern_errors e;
    json_t *out = NULL;
    int rc;

    tern_arena_init(&a, 256);
    tern_errors_init(&e, &a);
    rc = tern_validate_form(&oom_s, &f, &out, &e);
    json_decref(out);
    tern_arena_deinit(&a);
    tern_rx_cache_clear();
    return rc;
}

static int op_schema_json(void)
{
    json_t *j = tern_schema_json(&oom_s);

    if (j == NULL)
        return TERN_ENOMEM;
    json_decref(j);
    return 0;
}

static int op_schema_check(void)
{
    int rc = tern_schema_check(&oom_s, NULL, 0);

    tern_rx_cache_clear(); /* checking the defaults warmed the cache */
    return rc;
}

static int op_rx_get(void)
{
    const tern_rx *rx;
    char pat[32];
    int rc = 0;

    for (int i = 0; i < 20 && rc == 0; i++) {
        snprintf(pat, sizeof pat, "^[a-z]+%d$", i);
        rc = tern_rx_get(pat, &rx);
    }
    tern_rx_cache_clear();
    return rc;
}

Test(oom, validate)
{
    oom_loop(op_validate, TERN_EINVAL);
}

Test(oom, validate_form)
{
    oom_loop(op_form, 0);
}

Test(oom, schema_json)
{
    oom_loop(op_schema_json, 0);
}

Test(oom, schema_check)
{
    /* jansson reports a failed allocation in its lexer as a syntax error,
     * so parsing a default may fail as TERN_EINVAL; never a leak or crash */
    oom_loop2(op_schema_check, 0, TERN_EINVAL);
}

Test(oom, regex_cache)
{
    oom_loop(op_rx_get, 0);
}
