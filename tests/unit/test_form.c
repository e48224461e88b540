/*
 * test_form.c - unit tests for urlencoded forms and query strings
 * (src/body/form.c) and cookies (src/body/cookie.c).
 *
 * Most tests are tables.  A form case is (text, plus_is_space, max_fields)
 * -> expected rc, bad_at, and the decoded fields written as "k=v|k=v" (the
 * separators never occur in the test data).  Typed accessor cases map one
 * value to rc and result; cookie cases map a header to the kept pairs; format
 * cases map a tern_cookie to the exact Set-Cookie text or an error.
 * Besides those: limits at and past the cap, very long values, arena
 * exhaustion (ENOMEM), that every string lies in arena memory and is
 * NUL-terminated, and that failures leave the output empty or unchanged.
 */
#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/body.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static tern_arena arena;

static void setup(void)
{
    tern_arena_init(&arena, 512);
}

static void teardown(void)
{
    tern_arena_deinit(&arena);
}

TestSuite(form, .init = setup, .fini = teardown);
TestSuite(form_typed, .init = setup, .fini = teardown);
TestSuite(cookie, .init = setup, .fini = teardown);
TestSuite(cookie_format);

/* Renders f as "k=v|k=v" into out (which holds cap bytes). */
static void render(const tern_form *f, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (unsigned i = 0; i < f->n; i++) {
        int w = snprintf(out + o, cap - o, "%s%.*s=%.*s", i ? "|" : "", (int)f->fields[i].key.n,
                         f->fields[i].key.p, (int)f->fields[i].value.n, f->fields[i].value.p);

        cr_assert(w >= 0 && (size_t)w < cap - o, "render buffer too small");
        o += (size_t)w;
    }
}

/* Every key and value is NUL-terminated and contains no NUL byte. */
static void check_strings(const tern_form *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        const tern_kv *kv = &f->fields[i];

        cr_assert_not_null(kv->key.p);
        cr_assert_not_null(kv->value.p);
        cr_assert_eq(kv->key.p[kv->key.n], '\0');
        cr_assert_eq(kv->value.p[kv->value.n], '\0');
        cr_assert_eq(memchr(kv->key.p, '\0', kv->key.n), NULL);
        cr_assert_eq(memchr(kv->value.p, '\0', kv->value.n), NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* Form parsing table                                                         */

typedef struct form_case {
    const char *text;
    int plus;
    unsigned max;
    int rc;
    size_t bad_at;      /* checked when rc == TERN_EINVAL */
    const char *fields; /* "k=v|k=v" when rc == 0 */
} form_case;

static const form_case form_cases[] = {
    /* basics */
    { "", 1, 8, 0, 0, "" },
    { "a=1", 1, 8, 0, 0, "a=1" },
    { "a=1&b=2", 1, 8, 0, 0, "a=1|b=2" },
    { "a=1&b=x%20y&b=z", 1, 8, 0, 0, "a=1|b=x y|b=z" },
    /* plus handling, both modes */
    { "q=a+b", 1, 8, 0, 0, "q=a b" },
    { "q=a+b", 0, 8, 0, 0, "q=a+b" },
    { "a+b=c+d", 1, 8, 0, 0, "a b=c d" },
    { "a+b=c+d", 0, 8, 0, 0, "a+b=c+d" },
    { "q=a%2Bb", 1, 8, 0, 0, "q=a+b" },
    { "q=%20+", 0, 8, 0, 0, "q= +" },
    /* empty pairs, keys, values */
    { "&&", 1, 8, 0, 0, "" },
    { "&", 1, 0, 0, 0, "" },
    { "a=1&&b=2", 1, 8, 0, 0, "a=1|b=2" },
    { "&a=1&", 1, 8, 0, 0, "a=1" },
    { "a", 1, 8, 0, 0, "a=" },
    { "a&b", 1, 8, 0, 0, "a=|b=" },
    { "a=", 1, 8, 0, 0, "a=" },
    { "=1", 1, 8, 0, 0, "=1" },
    { "=", 1, 8, 0, 0, "=" },
    { "==", 1, 8, 0, 0, "==" },
    { "a==b", 1, 8, 0, 0, "a==b" },
    { "a=b=c", 1, 8, 0, 0, "a=b=c" },
    /* ';' is not a separator */
    { "a=1;b=2", 1, 8, 0, 0, "a=1;b=2" },
    /* escapes: both hex cases; encoded separators stay data */
    { "k=%41%62%2f%2F", 1, 8, 0, 0, "k=Ab//" },
    { "%26=%3D", 1, 8, 0, 0, "&==" },
    { "k=%C3%A9", 1, 8, 0, 0, "k=\xc3\xa9" },
    { "k=%FF%FE", 1, 8, 0, 0, "k=\xff\xfe" }, /* not UTF-8: allowed here */
    { "k=\xff", 1, 8, 0, 0, "k=\xff" },
    /* invalid escapes: bad_at is the offset of the offending pair */
    { "%", 1, 8, TERN_EINVAL, 0, NULL },
    { "a=%", 1, 8, TERN_EINVAL, 0, NULL },
    { "a=%4", 1, 8, TERN_EINVAL, 0, NULL },
    { "a=%zz", 1, 8, TERN_EINVAL, 0, NULL },
    { "a=%4g", 1, 8, TERN_EINVAL, 0, NULL },
    { "a=%00", 1, 8, TERN_EINVAL, 0, NULL },
    { "a=1&b=%00", 1, 8, TERN_EINVAL, 4, NULL },
    { "a=1&&%zz=1", 1, 8, TERN_EINVAL, 5, NULL },
    { "a=1&b=2&c=%", 1, 8, TERN_EINVAL, 8, NULL },
    { "a=1&%=x&c=%", 1, 8, TERN_EINVAL, 4, NULL }, /* the first bad pair */
    /* max_fields: exactly, one past; empty pairs do not count */
    { "a&b&c", 1, 3, 0, 0, "a=|b=|c=" },
    { "a&b&c&d", 1, 3, TERN_ETOOBIG, 0, NULL },
    { "a&&b&&c&&", 1, 3, 0, 0, "a=|b=|c=" },
    { "a", 1, 0, TERN_ETOOBIG, 0, NULL },
    { "", 1, 0, 0, 0, "" },
    /* the limit is checked before decoding */
    { "%&b&c", 1, 2, TERN_ETOOBIG, 0, NULL },
};

Test(form, table)
{
    for (size_t i = 0; i < NELEM(form_cases); i++) {
        const form_case *c = &form_cases[i];
        tern_form f = { (tern_kv *)1, 99 };
        size_t bad_at = (size_t)-1;
        tern_str text = tern_str_c(c->text);
        char got[512];
        int rc = tern_form_parse(&arena, text, c->plus, c->max, &f, &bad_at);

        cr_assert_eq(rc, c->rc, "case %zu \"%s\": rc %d, want %d", i, c->text, rc, c->rc);
        if (rc != 0) {
            cr_assert_eq(f.n, 0, "case %zu: n on failure", i);
            cr_assert_null(f.fields, "case %zu: fields on failure", i);
            if (rc == TERN_EINVAL)
                cr_assert_eq(bad_at, c->bad_at, "case %zu \"%s\": bad_at %zu, want %zu", i,
                             c->text, bad_at, c->bad_at);
            continue;
        }
        cr_assert_eq(bad_at, (size_t)-1, "case %zu: bad_at touched on success", i);
        check_strings(&f);
        render(&f, got, sizeof got);
        cr_assert_str_eq(got, c->fields, "case %zu \"%s\"", i, c->text);
    }
}

Test(form, raw_nul_is_invalid)
{
    static const char text[] = "a=1&b=x\0y&c=3";
    tern_form f;
    size_t bad_at = 0;

    cr_assert_eq(tern_form_parse(&arena, (tern_str){text, sizeof text - 1}, 1, 8, &f, &bad_at),
                 TERN_EINVAL);
    cr_assert_eq(bad_at, 4);
}

Test(form, bad_at_may_be_null)
{
    tern_form f;

    cr_assert_eq(tern_form_parse(&arena, TERN_STR("a=%"), 1, 8, &f, NULL), TERN_EINVAL);
}

Test(form, empty_text_allocates_nothing)
{
    tern_form f;

    cr_assert_eq(tern_form_parse(&arena, TERN_STR_NULL, 1, 8, &f, NULL), 0);
    cr_assert_eq(f.n, 0);
    cr_assert_eq(tern_form_parse(&arena, TERN_STR("&&&"), 1, 8, &f, NULL), 0);
    cr_assert_eq(f.n, 0);
    cr_assert_eq(arena.used, 0);
}

Test(form, strings_are_arena_copies)
{
    char text[] = "a=1&b=x%20y&c";
    tern_form f;

    cr_assert_eq(tern_form_parse(&arena, tern_str_c(text), 1, 8, &f, NULL), 0);
    memset(text, 'Z', sizeof text - 1); /* the parse must not point into the input */
    cr_assert(tern_str_eq(tern_form_get(&f, "a"), TERN_STR("1")));
    cr_assert(tern_str_eq(tern_form_get(&f, "b"), TERN_STR("x y")));
    cr_assert(tern_str_eq(tern_form_get(&f, "c"), TERN_STR("")));
    cr_assert(arena.used > 0);
}

Test(form, get_and_get_all)
{
    tern_form f;
    tern_str v[4];

    cr_assert_eq(tern_form_parse(&arena, TERN_STR("b=1&a=x&b=2&c&b=3&B=4&b"), 1, 16, &f, NULL),
                 0);
    /* get: the first value; absent is .p NULL, empty is .p non-NULL */
    cr_assert(tern_str_eq(tern_form_get(&f, "b"), TERN_STR("1")));
    cr_assert_not_null(tern_form_get(&f, "c").p);
    cr_assert_eq(tern_form_get(&f, "c").n, 0);
    cr_assert_null(tern_form_get(&f, "d").p);
    cr_assert_null(tern_form_get(&f, "").p);
    cr_assert_null(tern_form_get(&f, NULL).p);
    cr_assert_null(tern_form_get(NULL, "b").p);
    /* keys are case-sensitive */
    cr_assert(tern_str_eq(tern_form_get(&f, "B"), TERN_STR("4")));

    /* get_all: order of appearance, total count even past max */
    cr_assert_eq(tern_form_get_all(&f, "b", v, 4), 4);
    cr_assert(tern_str_eq(v[0], TERN_STR("1")));
    cr_assert(tern_str_eq(v[1], TERN_STR("2")));
    cr_assert(tern_str_eq(v[2], TERN_STR("3")));
    cr_assert(tern_str_eq(v[3], TERN_STR("")));
    v[2] = TERN_STR("untouched");
    cr_assert_eq(tern_form_get_all(&f, "b", v, 2), 4);
    cr_assert(tern_str_eq(v[2], TERN_STR("untouched")));
    cr_assert_eq(tern_form_get_all(&f, "b", NULL, 0), 4);
    cr_assert_eq(tern_form_get_all(&f, "zz", v, 4), 0);
    cr_assert_eq(tern_form_get_all(NULL, "b", v, 4), 0);
}

Test(form, empty_key_lookup)
{
    tern_form f;

    cr_assert_eq(tern_form_parse(&arena, TERN_STR("=v&x=1"), 1, 8, &f, NULL), 0);
    cr_assert(tern_str_eq(tern_form_get(&f, ""), TERN_STR("v")));
}

Test(form, max_fields_at_default_cap)
{
    char text[TERN_FORM_MAX_FIELDS * 4 + 8];
    size_t o = 0;
    tern_form f;

    for (unsigned i = 0; i < TERN_FORM_MAX_FIELDS; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%sk", i ? "&" : "");
    cr_assert_eq(tern_form_parse(&arena, (tern_str){text, o}, 1, TERN_FORM_MAX_FIELDS, &f, NULL),
                 0);
    cr_assert_eq(f.n, TERN_FORM_MAX_FIELDS);
    cr_assert_eq(tern_form_get_all(&f, "k", NULL, 0), TERN_FORM_MAX_FIELDS);
    memcpy(text + o, "&k", 2);
    cr_assert_eq(tern_form_parse(&arena, (tern_str){text, o + 2}, 1, TERN_FORM_MAX_FIELDS, &f,
                                 NULL),
                 TERN_ETOOBIG);
    cr_assert_eq(f.n, 0);
}

Test(form, very_long_values)
{
    size_t n = 1 << 20;
    char *text = malloc(3 * n + 16);
    size_t o = 0;
    tern_form f;
    tern_str v;

    cr_assert_not_null(text);
    memcpy(text, "big=", 4);
    o = 4;
    for (size_t i = 0; i < n; i++) {
        memcpy(text + o, i % 2 ? "%41" : "+", i % 2 ? 3 : 1);
        o += i % 2 ? 3 : 1;
    }
    memcpy(text + o, "&x=1", 4);
    o += 4;
    cr_assert_eq(tern_form_parse(&arena, (tern_str){text, o}, 1, 8, &f, NULL), 0);
    cr_assert_eq(f.n, 2);
    v = tern_form_get(&f, "big");
    cr_assert_eq(v.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(v.p[i], i % 2 ? 'A' : ' ');
    cr_assert_eq(v.p[n], '\0');
    cr_assert(tern_str_eq(tern_form_get(&f, "x"), TERN_STR("1")));
    free(text);
}

Test(form, arena_limit_is_enomem)
{
    tern_form f;

    arena.limit = 32;
    cr_assert_eq(tern_form_parse(&arena, TERN_STR("a=1&b=2&c=3"), 1, 8, &f, NULL), TERN_ENOMEM);
    cr_assert_eq(f.n, 0);
    cr_assert_null(f.fields);
}

static unsigned heap_calls;

static void *counting_malloc(size_t n)
{
    heap_calls++;
    return malloc(n);
}

static void *counting_realloc(void *p, size_t n)
{
    heap_calls++;
    return realloc(p, n);
}

Test(form, warm_arena_parses_without_heap)
{
    tern_form f, c;
    int64_t i;
    double d;

    /* Warm the arena: its first chunk is kept across resets. */
    cr_assert_not_null(tern_arena_alloc(&arena, 16));
    tern_arena_reset(&arena);
    tern_set_allocator(counting_malloc, counting_realloc, NULL);
    cr_assert_eq(tern_form_parse(&arena, TERN_STR("a=1&b=x+y%21&c&d=2.5"), 1, 8, &f, NULL), 0);
    cr_assert_eq(tern_cookie_parse(&arena, TERN_STR("sid=abc; t=\"q\""), 8, &c), 0);
    cr_assert_eq(tern_form_int(&f, "a", &i), 0);
    cr_assert_eq(tern_form_double(&f, "d", &d), 0);
    cr_assert_eq(heap_calls, 0);
    tern_set_allocator(NULL, NULL, NULL);
}

Test(form, bad_arguments)
{
    tern_form f;

    cr_assert_eq(tern_form_parse(&arena, TERN_STR("a=1"), 1, 8, NULL, NULL), TERN_EINVAL);
    cr_assert_eq(tern_form_parse(NULL, TERN_STR("a=1"), 1, 8, &f, NULL), TERN_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Typed accessors                                                            */

typedef struct int_case {
    const char *v;
    int rc;
    int64_t want;
} int_case;

static const int_case int_cases[] = {
    { "0", 0, 0 },
    { "1", 0, 1 },
    { "-1", 0, -1 },
    { "42", 0, 42 },
    { "-0", 0, 0 },
    { "9223372036854775807", 0, INT64_MAX },
    { "-9223372036854775808", 0, INT64_MIN },
    { "9223372036854775808", TERN_EINVAL, 0 },
    { "-9223372036854775809", TERN_EINVAL, 0 },
    { "9999999999999999999", TERN_EINVAL, 0 },   /* 19 digits, > int64 */
    { "10000000000000000000", TERN_EINVAL, 0 },  /* 20 digits */
    { "00000000000000000001", TERN_EINVAL, 0 },
    { "007", TERN_EINVAL, 0 },                   /* leading zeros rejected */
    { "00", TERN_EINVAL, 0 },
    { "-01", TERN_EINVAL, 0 },
    { "", TERN_EINVAL, 0 },
    { "-", TERN_EINVAL, 0 },
    { "--1", TERN_EINVAL, 0 },
    { "+1", TERN_EINVAL, 0 },
    { " 1", TERN_EINVAL, 0 },
    { "1 ", TERN_EINVAL, 0 },
    { "0x10", TERN_EINVAL, 0 },
    { "1e3", TERN_EINVAL, 0 },
    { "1.0", TERN_EINVAL, 0 },
    { "1_000", TERN_EINVAL, 0 },
    { "abc", TERN_EINVAL, 0 },
    { "\xd9\xa1", TERN_EINVAL, 0 }, /* ARABIC-INDIC DIGIT ONE */
};

/* A form with one field "k" = value (value may hold any bytes). */
static tern_form one(tern_kv *kv, const char *value)
{
    kv->key = TERN_STR("k");
    kv->value = tern_str_c(value);
    return (tern_form){ kv, 1 };
}

Test(form_typed, int_table)
{
    for (size_t i = 0; i < NELEM(int_cases); i++) {
        tern_kv kv;
        tern_form f = one(&kv, int_cases[i].v);
        int64_t got = 12345;
        int rc = tern_form_int(&f, "k", &got);

        cr_assert_eq(rc, int_cases[i].rc, "int \"%s\": rc %d", int_cases[i].v, rc);
        if (rc == 0)
            cr_assert_eq(got, int_cases[i].want, "int \"%s\": %lld", int_cases[i].v,
                         (long long)got);
        else
            cr_assert_eq(got, 12345, "int \"%s\": *out written on failure", int_cases[i].v);
    }
}

typedef struct double_case {
    const char *v;
    int rc;
    double want;
} double_case;

static const double_case double_cases[] = {
    { "0", 0, 0.0 },
    { "1", 0, 1.0 },
    { "-1.5", 0, -1.5 },
    { "1e3", 0, 1000.0 },
    { "1E3", 0, 1000.0 },
    { "1e+3", 0, 1000.0 },
    { "2.5e-1", 0, 0.25 },
    { ".5", 0, 0.5 },
    { "5.", 0, 5.0 },
    { "-.5", 0, -0.5 },
    { "007", 0, 7.0 },
    { "-0", 0, -0.0 },
    { "9223372036854775808", 0, 9223372036854775808.0 },
    { "1.7976931348623157e308", 0, 1.7976931348623157e308 },
    { "1e-400", 0, 0.0 }, /* underflow rounds to 0 */
    { "1e309", TERN_EINVAL, 0 },
    { "-1e309", TERN_EINVAL, 0 },
    { "", TERN_EINVAL, 0 },
    { ".", TERN_EINVAL, 0 },
    { "-", TERN_EINVAL, 0 },
    { "-.", TERN_EINVAL, 0 },
    { "e3", TERN_EINVAL, 0 },
    { "1e", TERN_EINVAL, 0 },
    { "1e+", TERN_EINVAL, 0 },
    { "1.2.3", TERN_EINVAL, 0 },
    { "+1", TERN_EINVAL, 0 },
    { " 1", TERN_EINVAL, 0 },
    { "1 ", TERN_EINVAL, 0 },
    { "0x10", TERN_EINVAL, 0 },
    { "0x1p3", TERN_EINVAL, 0 },
    { "nan", TERN_EINVAL, 0 },
    { "NaN", TERN_EINVAL, 0 },
    { "inf", TERN_EINVAL, 0 },
    { "-Infinity", TERN_EINVAL, 0 },
    { "1,5", TERN_EINVAL, 0 },
    { "1d", TERN_EINVAL, 0 },
};

Test(form_typed, double_table)
{
    for (size_t i = 0; i < NELEM(double_cases); i++) {
        tern_kv kv;
        tern_form f = one(&kv, double_cases[i].v);
        double got = 12345.0;
        int rc = tern_form_double(&f, "k", &got);

        cr_assert_eq(rc, double_cases[i].rc, "double \"%s\": rc %d", double_cases[i].v, rc);
        if (rc == 0) {
            cr_assert(got == double_cases[i].want, "double \"%s\": %.17g", double_cases[i].v,
                      got);
            cr_assert_eq(signbit(got) != 0, signbit(double_cases[i].want) != 0);
        } else {
            cr_assert(got == 12345.0, "double \"%s\": *out written on failure",
                      double_cases[i].v);
        }
    }
}

Test(form_typed, double_length_cap)
{
    char buf[200];
    tern_kv kv;
    tern_form f;
    double d;

    /* 128 bytes is the cap: "0.000...01" */
    memset(buf, '0', sizeof buf);
    buf[1] = '.';
    buf[127] = '1';
    buf[128] = '\0';
    f = one(&kv, buf);
    cr_assert_eq(tern_form_double(&f, "k", &d), 0);
    cr_assert(d > 0 && d < 1e-120);
    buf[128] = '1';
    buf[129] = '\0';
    f = one(&kv, buf);
    cr_assert_eq(tern_form_double(&f, "k", &d), TERN_EINVAL);
}

Test(form_typed, double_ignores_locale)
{
    tern_kv kv;
    tern_form f = one(&kv, "1.5");
    double d = 0;

    /* Any locale with a ',' decimal point will do; skip if none is installed. */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL && setlocale(LC_NUMERIC, "fr_FR.UTF-8") == NULL)
        cr_skip_test("no locale with a ',' decimal point installed");
    cr_assert_eq(tern_form_double(&f, "k", &d), 0);
    cr_assert(d == 1.5);
    setlocale(LC_NUMERIC, "C");
}

typedef struct bool_case {
    const char *v;
    int rc;
    int want;
} bool_case;

static const bool_case bool_cases[] = {
    { "true", 0, 1 },          { "1", 0, 1 },          { "false", 0, 0 },
    { "0", 0, 0 },             { "True", TERN_EINVAL, 0 }, { "TRUE", TERN_EINVAL, 0 },
    { "yes", TERN_EINVAL, 0 }, { "on", TERN_EINVAL, 0 }, { "", TERN_EINVAL, 0 },
    { "01", TERN_EINVAL, 0 },  { "2", TERN_EINVAL, 0 },  { " true", TERN_EINVAL, 0 },
    { "true ", TERN_EINVAL, 0 }, { "t", TERN_EINVAL, 0 }, { "truex", TERN_EINVAL, 0 },
};

Test(form_typed, bool_table)
{
    for (size_t i = 0; i < NELEM(bool_cases); i++) {
        tern_kv kv;
        tern_form f = one(&kv, bool_cases[i].v);
        int got = 7;
        int rc = tern_form_bool(&f, "k", &got);

        cr_assert_eq(rc, bool_cases[i].rc, "bool \"%s\": rc %d", bool_cases[i].v, rc);
        cr_assert_eq(got, rc == 0 ? bool_cases[i].want : 7, "bool \"%s\"", bool_cases[i].v);
    }
}

Test(form_typed, absent_and_first_value)
{
    tern_form f;
    int64_t i = 0;
    double d = 0;
    int b = 0;

    cr_assert_eq(tern_form_parse(&arena, TERN_STR("n=5&n=x&e=&f=2.5&t=true"), 1, 8, &f, NULL), 0);
    cr_assert_eq(tern_form_int(&f, "missing", &i), TERN_ENOTFOUND);
    cr_assert_eq(tern_form_double(&f, "missing", &d), TERN_ENOTFOUND);
    cr_assert_eq(tern_form_bool(&f, "missing", &b), TERN_ENOTFOUND);
    cr_assert_eq(tern_form_int(NULL, "n", &i), TERN_ENOTFOUND);
    /* the first value counts, not a later valid or invalid one */
    cr_assert_eq(tern_form_int(&f, "n", &i), 0);
    cr_assert_eq(i, 5);
    /* present but empty is invalid, not absent */
    cr_assert_eq(tern_form_int(&f, "e", &i), TERN_EINVAL);
    cr_assert_eq(tern_form_double(&f, "e", &d), TERN_EINVAL);
    cr_assert_eq(tern_form_bool(&f, "e", &b), TERN_EINVAL);
    cr_assert_eq(tern_form_double(&f, "f", &d), 0);
    cr_assert(d == 2.5);
    cr_assert_eq(tern_form_int(&f, "f", &i), TERN_EINVAL);
    cr_assert_eq(tern_form_bool(&f, "t", &b), 0);
    cr_assert_eq(b, 1);
}

Test(form_typed, values_need_not_be_nul_terminated)
{
    /* A hand-built form whose value is a slice followed by more digits. */
    static const char text[] = "12345";
    tern_kv kv = { TERN_STR("k"), { text, 2 } };
    tern_form f = { &kv, 1 };
    int64_t i;
    double d;

    cr_assert_eq(tern_form_int(&f, "k", &i), 0);
    cr_assert_eq(i, 12);
    cr_assert_eq(tern_form_double(&f, "k", &d), 0);
    cr_assert(d == 12.0);
}

/* ------------------------------------------------------------------------ */
/* Cookie parsing                                                             */

typedef struct cookie_case {
    const char *header;
    unsigned max;
    int rc;
    const char *pairs; /* "n=v|n=v" when rc == 0 */
} cookie_case;

static const cookie_case cookie_cases[] = {
    { "", 8, 0, "" },
    { "a=1", 8, 0, "a=1" },
    { "a=1; b=2", 8, 0, "a=1|b=2" },
    /* spaces: missing, extra, tabs, around '=' */
    { "a=1;b=2", 8, 0, "a=1|b=2" },
    { "a=1;   b=2  ;\tc=3\t", 8, 0, "a=1|b=2|c=3" },
    { "  a = 1 ; b= 2", 8, 0, "a=1|b=2" },
    { "a=1;", 8, 0, "a=1" },
    { ";;a=1;;", 8, 0, "a=1" },
    { "; ; ", 8, 0, "" },
    /* quotes are removed; must be a matched pair around cookie-octets */
    { "a=\"x\"", 8, 0, "a=x" },
    { "a=\"\"", 8, 0, "a=" },
    { "a=\"x y\"; b=2", 8, 0, "b=2" },
    { "a=\"x; b=2", 8, 0, "b=2" },
    { "a=\"; b=2", 8, 0, "b=2" },
    { "a=x\"; b=2", 8, 0, "b=2" },
    { "a=\"x\"y\"; b=2", 8, 0, "b=2" },
    /* empty values */
    { "a=; b=", 8, 0, "a=|b=" },
    /* '=' inside a value is a cookie-octet */
    { "a=b=c; t=dGVzdA==", 8, 0, "a=b=c|t=dGVzdA==" },
    /* invalid pairs are skipped */
    { "novalue; a=1", 8, 0, "a=1" },
    { "=v; a=1", 8, 0, "a=1" },
    { "a b=1; c=2", 8, 0, "c=2" },
    { "a(b)=1; c=2", 8, 0, "c=2" },
    { "a/b=1; c=2", 8, 0, "c=2" },
    { "a=x y; c=2", 8, 0, "c=2" },
    { "a=x,y; c=2", 8, 0, "c=2" },
    { "a=x\\y; c=2", 8, 0, "c=2" },
    { "a=\x7f; c=2", 8, 0, "c=2" },
    { "a=\xc3\xa9; c=2", 8, 0, "c=2" },
    { "a=\x01; c=2", 8, 0, "c=2" },
    { "\xc3\xa9=1; c=2", 8, 0, "c=2" },
    /* every tchar is allowed in a name */
    { "!#$%&'*+-.^_`|~09azAZ=v", 8, 0, "!#$%&'*+-.^_`|~09azAZ=v" },
    /* every cookie-octet range edge in a value */
    { "v=!#+-:<[]~", 8, 0, "v=!#+-:<[]~" },
    /* duplicates are kept in order (lookups take the first) */
    { "id=1; id=2", 8, 0, "id=1|id=2" },
    /* names are case-sensitive and kept as sent */
    { "ID=1; id=2", 8, 0, "ID=1|id=2" },
    /* max: exactly, one past; skipped pairs do not count */
    { "a=1; b=2", 2, 0, "a=1|b=2" },
    { "a=1; b=2; c=3", 2, TERN_ETOOBIG, NULL },
    { "a=1; bad; b=2; x y=3", 2, 0, "a=1|b=2" },
    { "a=1", 0, TERN_ETOOBIG, NULL },
    { "bad", 0, 0, "" },
};

Test(cookie, table)
{
    for (size_t i = 0; i < NELEM(cookie_cases); i++) {
        const cookie_case *c = &cookie_cases[i];
        tern_form f = { (tern_kv *)1, 99 };
        char got[512];
        int rc = tern_cookie_parse(&arena, tern_str_c(c->header), c->max, &f);

        cr_assert_eq(rc, c->rc, "case %zu [%s]: rc %d, want %d", i, c->header, rc, c->rc);
        if (rc != 0) {
            cr_assert_eq(f.n, 0);
            cr_assert_null(f.fields);
            continue;
        }
        check_strings(&f);
        render(&f, got, sizeof got);
        cr_assert_str_eq(got, c->pairs, "case %zu [%s]", i, c->header);
    }
}

Test(cookie, first_occurrence_wins)
{
    tern_form f;

    cr_assert_eq(tern_cookie_parse(&arena, TERN_STR("sid=old; x=1; sid=new"), 8, &f), 0);
    cr_assert(tern_str_eq(tern_form_get(&f, "sid"), TERN_STR("old")));
}

Test(cookie, copies_into_arena)
{
    char header[] = "a=1; b=\"two\"";
    tern_form f;

    cr_assert_eq(tern_cookie_parse(&arena, tern_str_c(header), 8, &f), 0);
    memset(header, 'Z', sizeof header - 1);
    cr_assert(tern_str_eq(tern_form_get(&f, "a"), TERN_STR("1")));
    cr_assert(tern_str_eq(tern_form_get(&f, "b"), TERN_STR("two")));
}

Test(cookie, nul_byte_ends_nothing)
{
    /* A NUL byte is not a cookie-octet: only that pair is dropped. */
    static const char h[] = "a=x\0y; b=2";
    tern_form f;

    cr_assert_eq(tern_cookie_parse(&arena, (tern_str){h, sizeof h - 1}, 8, &f), 0);
    cr_assert_eq(f.n, 1);
    cr_assert(tern_str_eq(tern_form_get(&f, "b"), TERN_STR("2")));
}

Test(cookie, arena_limit_and_arguments)
{
    tern_form f;

    arena.limit = 16;
    cr_assert_eq(tern_cookie_parse(&arena, TERN_STR("a=1; b=2; c=3"), 8, &f), TERN_ENOMEM);
    cr_assert_eq(f.n, 0);
    cr_assert_eq(tern_cookie_parse(&arena, TERN_STR("a=1"), 8, NULL), TERN_EINVAL);
    cr_assert_eq(tern_cookie_parse(NULL, TERN_STR("a=1"), 8, &f), TERN_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Set-Cookie formatting                                                      */

typedef struct format_case {
    tern_cookie c;
    int rc;
    const char *want; /* when rc == 0 */
} format_case;

static char long_value[4100];
static char long_path[1100];
static char long_domain[300];

static const format_case format_cases[] = {
    /* defaults: Path=/, session, HttpOnly, SameSite=Lax */
    { { .name = "sid", .value = "abc" }, 0, "sid=abc; Path=/; HttpOnly; SameSite=Lax" },
    { { .name = "sid" }, 0, "sid=; Path=/; HttpOnly; SameSite=Lax" },
    /* every attribute */
    { { .name = "sid", .value = "abc", .path = "/app", .domain = "example.com", .max_age = 3600,
        .secure = 1, .same_site = "Strict" },
      0, "sid=abc; Path=/app; Max-Age=3600; Domain=example.com; Secure; HttpOnly; SameSite=Strict" },
    { { .name = "a", .value = "b", .allow_script = 1 }, 0, "a=b; Path=/; SameSite=Lax" },
    { { .name = "a", .value = "b", .same_site = "None", .secure = 1 }, 0,
      "a=b; Path=/; Secure; HttpOnly; SameSite=None" },
    { { .name = "a", .value = "b", .same_site = "Lax" }, 0, "a=b; Path=/; HttpOnly; SameSite=Lax" },
    /* Max-Age: < 0 deletes, 0 is a session cookie, int64 max as is */
    { { .name = "a", .max_age = -1 }, 0, "a=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" },
    { { .name = "a", .max_age = INT64_MIN }, 0, "a=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" },
    { { .name = "a", .max_age = 1 }, 0, "a=; Path=/; Max-Age=1; HttpOnly; SameSite=Lax" },
    { { .name = "a", .max_age = INT64_MAX }, 0,
      "a=; Path=/; Max-Age=9223372036854775807; HttpOnly; SameSite=Lax" },
    /* the whole cookie-octet and tchar sets */
    { { .name = "!#$%&'*+-.^_`|~09azAZ", .value = "!#+-:<[]~=" }, 0,
      "!#$%&'*+-.^_`|~09azAZ=!#+-:<[]~=; Path=/; HttpOnly; SameSite=Lax" },
    /* domains: leading dot kept, digits and hyphens */
    { { .name = "a", .domain = ".example.com" }, 0,
      "a=; Path=/; Domain=.example.com; HttpOnly; SameSite=Lax" },
    { { .name = "a", .domain = "api-2.Example.COM" }, 0,
      "a=; Path=/; Domain=api-2.Example.COM; HttpOnly; SameSite=Lax" },
    { { .name = "a", .domain = "localhost" }, 0,
      "a=; Path=/; Domain=localhost; HttpOnly; SameSite=Lax" },
    /* paths may hold any printable ASCII but ';' */
    { { .name = "a", .path = "/a b/%20/=,\"" }, 0,
      "a=; Path=/a b/%20/=,\"; HttpOnly; SameSite=Lax" },
    /* prefixes */
    { { .name = "__Host-sid", .value = "x", .secure = 1 }, 0,
      "__Host-sid=x; Path=/; Secure; HttpOnly; SameSite=Lax" },
    { { .name = "__Secure-sid", .value = "x", .secure = 1, .domain = "example.com", .path = "/a" },
      0, "__Secure-sid=x; Path=/a; Domain=example.com; Secure; HttpOnly; SameSite=Lax" },

    /* rejections: name */
    { { .name = NULL }, TERN_EINVAL, NULL },
    { { .name = "" }, TERN_EINVAL, NULL },
    { { .name = "a b" }, TERN_EINVAL, NULL },
    { { .name = "a=b" }, TERN_EINVAL, NULL },
    { { .name = "a;b" }, TERN_EINVAL, NULL },
    { { .name = "a\r\nSet-Cookie: x" }, TERN_EINVAL, NULL },
    { { .name = "a\"" }, TERN_EINVAL, NULL },
    { { .name = "\xc3\xa9" }, TERN_EINVAL, NULL },
    /* value */
    { { .name = "a", .value = "x y" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "x;y" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "x,y" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "\"x\"" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "x\\y" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "x\r\nSet-Cookie: evil=1" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "x\n" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "\x7f" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "\xc3\xa9" }, TERN_EINVAL, NULL },
    { { .name = "a", .value = "x\ty" }, TERN_EINVAL, NULL },
    /* path */
    { { .name = "a", .path = "" }, TERN_EINVAL, NULL },
    { { .name = "a", .path = "app" }, TERN_EINVAL, NULL },
    { { .name = "a", .path = "/a;Domain=evil.com" }, TERN_EINVAL, NULL },
    { { .name = "a", .path = "/a\r\nX: y" }, TERN_EINVAL, NULL },
    { { .name = "a", .path = "/a\tb" }, TERN_EINVAL, NULL },
    { { .name = "a", .path = "/\x7f" }, TERN_EINVAL, NULL },
    { { .name = "a", .path = "/\xc3\xa9" }, TERN_EINVAL, NULL },
    /* domain */
    { { .name = "a", .domain = "" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "." }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "..example.com" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "a..b" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "example.com." }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "exa mple.com" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "example.com;Secure" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "ex_ample.com" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "example.com:80" }, TERN_EINVAL, NULL },
    { { .name = "a", .domain = "example.com\r\n" }, TERN_EINVAL, NULL },
    /* SameSite */
    { { .name = "a", .same_site = "None" }, TERN_EINVAL, NULL },
    { { .name = "a", .same_site = "lax" }, TERN_EINVAL, NULL },
    { { .name = "a", .same_site = "" }, TERN_EINVAL, NULL },
    { { .name = "a", .same_site = "Lax; Secure" }, TERN_EINVAL, NULL },
    /* prefixes (case-insensitive, as browsers match them) */
    { { .name = "__Secure-sid" }, TERN_EINVAL, NULL },
    { { .name = "__secure-sid" }, TERN_EINVAL, NULL },
    { { .name = "__Host-sid" }, TERN_EINVAL, NULL },
    { { .name = "__HOST-sid", .secure = 1, .path = "/a" }, TERN_EINVAL, NULL },
    { { .name = "__Host-sid", .secure = 1, .domain = "example.com" }, TERN_EINVAL, NULL },
};

static void fill_long(void)
{
    memset(long_value, 'v', sizeof long_value - 1);
    long_path[0] = '/';
    memset(long_path + 1, 'p', sizeof long_path - 2);
    memset(long_domain, 'd', sizeof long_domain - 1);
}

Test(cookie_format, table)
{
    tern_buf b;

    tern_buf_init(&b, 0);
    for (size_t i = 0; i < NELEM(format_cases); i++) {
        const format_case *fc = &format_cases[i];
        int rc;

        tern_buf_append(&b, "X", 1); /* output is appended; failures leave it alone */
        rc = tern_cookie_format(&b, &fc->c);
        cr_assert_eq(rc, fc->rc, "case %zu (%s): rc %d, want %d", i,
                     fc->c.name ? fc->c.name : "(null)", rc, fc->rc);
        if (rc == 0) {
            cr_assert_eq(b.len, 1 + strlen(fc->want), "case %zu", i);
            cr_assert(memcmp(b.p + 1, fc->want, b.len - 1) == 0, "case %zu: got %.*s", i,
                      (int)b.len - 1, b.p + 1);
            cr_assert_eq(memchr(b.p, '\r', b.len), NULL);
            cr_assert_eq(memchr(b.p, '\n', b.len), NULL);
        } else {
            cr_assert_eq(b.len, 1, "case %zu: output changed on failure", i);
        }
        b.len = 0;
    }
    tern_buf_deinit(&b);
}

Test(cookie_format, size_limits)
{
    tern_buf b;
    tern_cookie c = { .name = "n" };

    fill_long();
    tern_buf_init(&b, 0);
    /* name + value: 4096 is fine, 4097 is not */
    long_value[4095] = '\0';
    c.value = long_value;
    cr_assert_eq(tern_cookie_format(&b, &c), 0);
    long_value[4095] = 'v';
    long_value[4096] = '\0';
    cr_assert_eq(tern_cookie_format(&b, &c), TERN_EINVAL);
    /* path: 1024 bytes, then 1025 */
    b.len = 0;
    c.value = "v";
    long_path[1024] = '\0';
    c.path = long_path;
    cr_assert_eq(tern_cookie_format(&b, &c), 0);
    long_path[1024] = 'p';
    long_path[1025] = '\0';
    cr_assert_eq(tern_cookie_format(&b, &c), TERN_EINVAL);
    /* domain: 253 bytes, then 254 (a leading dot does not count) */
    c.path = NULL;
    long_domain[253] = '\0';
    c.domain = long_domain;
    cr_assert_eq(tern_cookie_format(&b, &c), 0);
    long_domain[253] = 'd';
    long_domain[254] = '\0';
    cr_assert_eq(tern_cookie_format(&b, &c), TERN_EINVAL);
    long_domain[0] = '.';
    cr_assert_eq(tern_cookie_format(&b, &c), 0);
    tern_buf_deinit(&b);
}

Test(cookie_format, buffer_cap_is_all_or_nothing)
{
    tern_buf b;
    tern_cookie c = { .name = "sid", .value = "0123456789" };

    tern_buf_init(&b, 20);
    cr_assert_eq(tern_cookie_format(&b, &c), TERN_ETOOBIG);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(tern_cookie_format(NULL, &c), TERN_EINVAL);
    cr_assert_eq(tern_cookie_format(&b, NULL), TERN_EINVAL);
    tern_buf_deinit(&b);
}

Test(cookie_format, round_trip_through_parse)
{
    tern_arena a;
    tern_buf b;
    tern_form f;
    tern_cookie c = { .name = "sid", .value = "a-b.c_d~e=", .max_age = 60, .secure = 1 };

    tern_arena_init(&a, 0);
    tern_buf_init(&b, 0);
    cr_assert_eq(tern_cookie_format(&b, &c), 0);
    cr_assert_eq(tern_cookie_parse(&a, (tern_str){b.p, b.len}, 16, &f), 0);
    cr_assert(f.n >= 1);
    cr_assert(tern_str_eq(f.fields[0].key, TERN_STR("sid")));
    cr_assert(tern_str_eq(f.fields[0].value, TERN_STR("a-b.c_d~e=")));
    tern_buf_deinit(&b);
    tern_arena_deinit(&a);
}
