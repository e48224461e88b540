/*
 * test_json.c - the strict JSON checker and the checked jansson parse
 * (src/body/json.c).
 *
 * Table-driven: valid documents must pass both tern_json_check and jansson;
 * invalid ones carry the expected line, column (code points) and reason.
 * Then the limits (depth at exactly the limit and one more, for arrays and
 * objects; 100,000 '[' on a tiny thread stack), int64 and double range,
 * duplicate keys (also after escape decoding), the classic UTF-8 decoder
 * edge cases (each also cross-checked against jansson), the SWAR fast path
 * at every alignment, and a parse/serialize round trip.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "body/json_alloc.h"
#include "tern/body.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A row's text may hold NUL bytes, so its length is given explicitly when
 * nonzero (T() below computes it from the literal). */
typedef struct row {
    const char *text;
    size_t n;
} row;
/* clang-format off */
#define T(lit) { lit, sizeof(lit) - 1 }
/* clang-format on */

static tern_str S(row r)
{
    return (tern_str){r.text, r.n};
}

/* clang-format off */
static const row valid_docs[] = {
    T("0"), T("-0"), T("1"), T("-1"), T("123"), T("1.5"), T("-1.5e10"), T("1E+2"), T("1e-2"),
    T("0.0"), T("0e0"), T("-0.0E-0"), T("1.0e+308"), T("5e-324"), T("1e-400"),
    T("9223372036854775807"), T("-9223372036854775808"), T("true"), T("false"), T("null"),
    T("\"\""), T("\"abc\""), T("[]"), T("{}"), T(" [ ] "), T("\t\r\n{}\n"), T("[1,2,3]"),
    T("[[[]]]"), T("[{}]"), T("{\"\":\"\"}"),
    T("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"),
    T("{ \"a\" : 1 , \"b\" : [ true , false , null ] }"),
    T("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
    T("\"\\u0041\\u00e9\\uFFFF\\u0001\\u001f\""),
    T("\"\\uD83D\\uDE00\""), T("\"\\ud83d\\ude00\""), T("\"\\uDBFF\\uDFFF\""),
    T("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""),
    T("\"\x7f\""),
    T("\"a long string with no special characters at all, more than 8 bytes\""),
    T("[\"x\",\"yy\",\"zzzzzzzzzzzzzzzzz\\n\",\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"]"),
    T("{\"a\":{\"a\":1}}"),       /* same key in different objects */
    T("[{\"a\":1},{\"a\":2}]"),
    T("{\"a\":1,\"A\":2}"),        /* keys are case-sensitive */
    T("[1e5,1E5,-1e-5,0.5,10.25]"),
};
/* clang-format on */

typedef struct bad {
    const char *text;
    size_t n;
    int rc;
    unsigned line, column;
    const char *reason;
} bad;
/* clang-format off */
#define B(lit, rc, line, col, reason) { lit, sizeof(lit) - 1, rc, line, col, reason }
/* clang-format on */
#define E TERN_EINVAL

static const char R_JSON_VALUE[] = "expected a JSON value";
static const char R_VALUE[] = "expected a value";
static const char R_VALUE_OR_CLOSE[] = "expected a value or ']'";
static const char R_KEY[] = "expected a string key";
static const char R_KEY_OR_CLOSE[] = "expected a string key or '}'";
static const char R_COLON[] = "expected ':' after an object key";
static const char R_MEMBER[] = "expected ',' or '}' after an object member";
static const char R_ELEMENT[] = "expected ',' or ']' after an array element";
static const char R_TRAILING[] = "unexpected data after the JSON value";
static const char R_LITERAL[] = "invalid literal (expected true, false or null)";
static const char R_NUMBER[] = "invalid number";
static const char R_UNTERM[] = "unterminated string";
static const char R_CONTROL[] = "control character in a string (must be escaped)";
static const char R_ESCAPE[] = "invalid escape in a string";
static const char R_SURR[] = "unpaired surrogate in a \\u escape";
static const char R_NUL[] = "NUL characters are not allowed";
static const char R_UTF8[] = "invalid UTF-8";
static const char R_DEPTH[] = "nesting deeper than the limit";
static const char R_DUP[] = "duplicate object key";
static const char R_RANGE[] = "number out of range";

static const bad invalid_docs[] = {
    /* missing or extra values */
    B("", E, 1, 1, R_JSON_VALUE),
    B("   ", E, 1, 4, R_JSON_VALUE),
    B("\n\n", E, 3, 1, R_JSON_VALUE),
    B("x", E, 1, 1, R_JSON_VALUE),
    B("\0", E, 1, 1, R_JSON_VALUE),
    B("\xef\xbb\xbf{}", E, 1, 1, R_JSON_VALUE), /* a BOM is not whitespace */
    B("True", E, 1, 1, R_JSON_VALUE),
    B("NaN", E, 1, 1, R_JSON_VALUE),
    B("Infinity", E, 1, 1, R_JSON_VALUE),
    B("+1", E, 1, 1, R_JSON_VALUE),
    B(".5", E, 1, 1, R_JSON_VALUE),
    B("'a'", E, 1, 1, R_JSON_VALUE),
    B("[1]]", E, 1, 4, R_TRAILING),
    B("{} {}", E, 1, 4, R_TRAILING),
    B("1 2", E, 1, 3, R_TRAILING),
    B("[1]\0", E, 1, 4, R_TRAILING),
    B("\"a\"\n/", E, 2, 1, R_TRAILING),
    B("null // comment", E, 1, 6, R_TRAILING),
    /* arrays */
    B("[", E, 1, 2, R_VALUE_OR_CLOSE),
    B("[ \xc3\xa9]", E, 1, 3, R_VALUE_OR_CLOSE),
    B("[1,", E, 1, 4, R_VALUE),
    B("[1,]", E, 1, 4, R_VALUE),
    B("[,1]", E, 1, 2, R_VALUE_OR_CLOSE),
    B("[1 2]", E, 1, 4, R_ELEMENT),
    B("[1", E, 1, 3, R_ELEMENT),
    B("[1:2]", E, 1, 3, R_ELEMENT),
    B("[1}", E, 1, 3, R_ELEMENT),
    /* objects */
    B("{", E, 1, 2, R_KEY_OR_CLOSE),
    B("{a:1}", E, 1, 2, R_KEY_OR_CLOSE),
    B("{'a':1}", E, 1, 2, R_KEY_OR_CLOSE),
    B("{1:1}", E, 1, 2, R_KEY_OR_CLOSE),
    B("{\"a\"}", E, 1, 5, R_COLON),
    B("{\"a\" 1}", E, 1, 6, R_COLON),
    B("{\"a\"", E, 1, 5, R_COLON),
    B("{\"a\":}", E, 1, 6, R_VALUE),
    B("{\"a\":", E, 1, 6, R_VALUE),
    B("{\"a\":1,}", E, 1, 8, R_KEY),
    B("{\"a\":1,", E, 1, 8, R_KEY),
    B("{\"a\":1 \"b\":2}", E, 1, 8, R_MEMBER),
    B("{\"a\":1]", E, 1, 7, R_MEMBER),
    B("{\"a\":1", E, 1, 7, R_MEMBER),
    /* literals */
    B("tru", E, 1, 1, R_LITERAL),
    B("nul", E, 1, 1, R_LITERAL),
    B("nulll", E, 1, 1, R_LITERAL),
    B("falsy", E, 1, 1, R_LITERAL),
    B("[truex]", E, 1, 2, R_LITERAL),
    B("[true1]", E, 1, 2, R_LITERAL),
    B("tRue", E, 1, 1, R_LITERAL),
    /* numbers: the position is the start of the number */
    B("01", E, 1, 1, R_NUMBER),
    B("00", E, 1, 1, R_NUMBER),
    B("-01", E, 1, 1, R_NUMBER),
    B("-", E, 1, 1, R_NUMBER),
    B("-a", E, 1, 1, R_NUMBER),
    B("- 1", E, 1, 1, R_NUMBER),
    B("1.", E, 1, 1, R_NUMBER),
    B("1.e5", E, 1, 1, R_NUMBER),
    B("1e", E, 1, 1, R_NUMBER),
    B("1e+", E, 1, 1, R_NUMBER),
    B("1E-x", E, 1, 1, R_NUMBER),
    B("0x10", E, 1, 1, R_NUMBER),
    B("1.2.3", E, 1, 1, R_NUMBER),
    B("1e5e5", E, 1, 1, R_NUMBER),
    B("-Infinity", E, 1, 1, R_NUMBER),
    B("[1,-]", E, 1, 4, R_NUMBER),
    B("[1_000]", E, 1, 2, R_NUMBER),
    B("[1+2]", E, 1, 2, R_NUMBER),
    B("{\"n\": 012}", E, 1, 7, R_NUMBER),
    /* strings */
    B("\"abc", E, 1, 1, R_UNTERM),
    B("\"", E, 1, 1, R_UNTERM),
    B("[\"a\", \"bcdefghijklmnop", E, 1, 7, R_UNTERM),
    B("\"\\", E, 1, 1, R_UNTERM),
    B("\"\\u12", E, 1, 1, R_UNTERM),
    B("\"\\uD800", E, 1, 1, R_UNTERM),
    B("\"\\uD800\\", E, 1, 1, R_UNTERM),
    B("\"\\uD800\\uDC0", E, 1, 1, R_UNTERM),
    B("[\"a\nb\"]", E, 1, 4, R_CONTROL),
    B("\"a\tb\"", E, 1, 3, R_CONTROL),
    B("\"a\rb\"", E, 1, 3, R_CONTROL),
    B("\"0123456789\x1f\"", E, 1, 12, R_CONTROL),
    B("\"a\0b\"", E, 1, 3, R_NUL),
    B("\"\\x\"", E, 1, 2, R_ESCAPE),
    B("\"\\U0041\"", E, 1, 2, R_ESCAPE),
    B("\"\\'\"", E, 1, 2, R_ESCAPE),
    B("\"\\a\"", E, 1, 2, R_ESCAPE),
    B("\"\\u12G4\"", E, 1, 2, R_ESCAPE),
    B("\"\\u12\"", E, 1, 2, R_ESCAPE),
    B("\"ab\\u 123\"", E, 1, 4, R_ESCAPE),
    B("\"\\uD800\\uZZZZ\"", E, 1, 8, R_ESCAPE),
    B("\"\\u0000\"", E, 1, 2, R_NUL),
    B("\"a\\u0000\"", E, 1, 3, R_NUL),
    B("{\"\\u0000\":1}", E, 1, 3, R_NUL),
    B("\"\\uD800\"", E, 1, 2, R_SURR),
    B("\"\\uDC00\"", E, 1, 2, R_SURR),
    B("\"\\uDFFF\\uD800\"", E, 1, 2, R_SURR),
    B("\"\\uDC00\\uD800\"", E, 1, 2, R_SURR),
    B("\"\\uD800\\u0041\"", E, 1, 2, R_SURR),
    B("\"\\uD800\\uD800\"", E, 1, 2, R_SURR),
    B("\"\\uDBFF\\uE000\"", E, 1, 2, R_SURR),
    B("\"\\uD800\\n\"", E, 1, 2, R_SURR),
    B("\"\\uD800x\"", E, 1, 2, R_SURR),
    B("\"\xc0\xaf\"", E, 1, 2, R_UTF8),
    B("\"x\xed\xa0\x80\"", E, 1, 3, R_UTF8),
    /* positions: lines split on LF only, columns count code points */
    B("{\"\xc3\xa9\": 1,\n  \"\xc3\xbc\xf0\x9f\x98\x80\": tru}", E, 2, 9, R_LITERAL),
    B("[1,\r\n2,,]", E, 2, 3, R_VALUE),
    B("[1,\r2 x]", E, 1, 7, R_ELEMENT),
    B("\n\n   [\n\"\xe2\x82\xac\xe2\x82\xac\", 01]", E, 4, 7, R_NUMBER),
    B("[\"\xe2\x82\xac\",\n\"\xe2\x82\xac\xe2\x82\xac\xed\xbf\xbf\"]", E, 2, 4, R_UTF8),
};

static void check_row(const bad *b)
{
    tern_json_error e;
    int rc;

    memset(&e, 0xA5, sizeof e);
    rc = tern_json_check((tern_str){b->text, b->n}, 64, &e);
    cr_assert_eq(rc, b->rc, "[%.*s]: rc %d", (int)b->n, b->text, rc);
    cr_assert_str_eq(e.reason, b->reason, "[%.*s]", (int)b->n, b->text);
    cr_assert_eq(e.line, b->line, "[%.*s]: line %u", (int)b->n, b->text, e.line);
    cr_assert_eq(e.column, b->column, "[%.*s]: column %u", (int)b->n, b->text, e.column);
    cr_assert_leq(e.offset, b->n);
}

Test(json_check, valid_documents)
{
    for (size_t k = 0; k < LEN(valid_docs); k++) {
        tern_json_error e;

        cr_assert_eq(tern_json_check(S(valid_docs[k]), 64, &e), 0, "[%s]: %u:%u %s",
                     valid_docs[k].text, e.line, e.column, e.reason);
        cr_assert_eq(tern_json_check(S(valid_docs[k]), 64, NULL), 0, "err may be NULL");
    }
}

Test(json_check, invalid_documents_name_line_column_and_reason)
{
    for (size_t k = 0; k < LEN(invalid_docs); k++)
        check_row(&invalid_docs[k]);
}

/* jansson must agree with the checker on every table row (it has no say on
 * positions): what we accept it accepts, what we reject it rejects. */
Test(json_check, jansson_agrees_on_the_tables)
{
    for (size_t k = 0; k < LEN(valid_docs); k++) {
        json_error_t je;
        json_t *v = json_loadb(valid_docs[k].text, valid_docs[k].n,
                               JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);

        cr_assert_not_null(v, "[%s]: jansson says %s", valid_docs[k].text, je.text);
        json_decref(v);
    }
    for (size_t k = 0; k < LEN(invalid_docs); k++) {
        json_error_t je;
        json_t *v = json_loadb(invalid_docs[k].text, invalid_docs[k].n, JSON_DECODE_ANY, &je);

        cr_assert_null(v, "[%.*s]: jansson accepts it", (int)invalid_docs[k].n,
                       invalid_docs[k].text);
    }
}

Test(json_check, err_may_be_null_on_failure)
{
    cr_assert_eq(tern_json_check(TERN_STR("[1,]"), 64, NULL), TERN_EINVAL);
    cr_assert_eq(tern_json_check(TERN_STR("[[1]]"), 1, NULL), TERN_ETOOBIG);
    cr_assert_eq(tern_json_check(TERN_STR_NULL, 64, NULL), TERN_EINVAL);
}

Test(json_check, max_depth_argument_is_capped_at_1024)
{
    tern_json_error e;

    cr_assert_eq(tern_json_check(TERN_STR("1"), 1024, &e), 0);
    cr_assert_eq(tern_json_check(TERN_STR("1"), 1025, &e), TERN_EINVAL);
    cr_assert_str_eq(e.reason, "max_depth above 1024");
    cr_assert_eq(tern_json_check(TERN_STR("1"), UINT_MAX, &e), TERN_EINVAL);
}

/* "[[[...1...]]]" (or {"a":{"a":...}}) nested `depth` deep. */
static char *nest(unsigned depth, int objects, size_t *n)
{
    size_t cap = (size_t)depth * 6 + 2, len = 0;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    for (unsigned d = 0; d < depth; d++) {
        if (objects) {
            memcpy(s + len, "{\"a\":", 5);
            len += 5;
        } else {
            s[len++] = '[';
        }
    }
    s[len++] = '1';
    for (unsigned d = 0; d < depth; d++)
        s[len++] = objects ? '}' : ']';
    *n = len;
    return s;
}

static void depth_case(unsigned max, int objects)
{
    tern_json_error e;
    json_t *v = NULL;
    size_t n;
    char *s = nest(max, objects, &n);

    cr_assert_eq(tern_json_check((tern_str){s, n}, max, &e), 0, "depth %u, limit %u", max, max);
    cr_assert_eq(tern_json_parse((tern_str){s, n}, max, &v, &e), 0);
    cr_assert_not_null(v);
    json_decref(v);
    free(s);

    s = nest(max + 1, objects, &n);
    cr_assert_eq(tern_json_check((tern_str){s, n}, max, &e), TERN_ETOOBIG, "depth %u, limit %u",
                 max + 1, max);
    cr_assert_str_eq(e.reason, R_DEPTH);
    cr_assert_eq(e.offset, (size_t)max * (objects ? 5 : 1), "at the first '%c' too many",
                 objects ? '{' : '[');
    cr_assert_eq(e.line, 1);
    cr_assert_eq(e.column, e.offset + 1);
    cr_assert_eq(tern_json_parse((tern_str){s, n}, max, &v, &e), TERN_ETOOBIG);
    cr_assert_null(v);
    free(s);
}

Test(json_check, depth_limit_exactly_and_one_more)
{
    static const unsigned limits[] = {1, 2, 63, 64, 65, 127, 128, 129, 1023, 1024};

    for (size_t k = 0; k < LEN(limits); k++) {
        depth_case(limits[k], 0);
        depth_case(limits[k], 1);
    }
}

Test(json_check, depth_zero_allows_only_scalars)
{
    tern_json_error e;

    cr_assert_eq(tern_json_check(TERN_STR("\"x\""), 0, &e), 0);
    cr_assert_eq(tern_json_check(TERN_STR("[]"), 0, &e), TERN_ETOOBIG);
    cr_assert_eq(tern_json_check(TERN_STR(" {}"), 0, &e), TERN_ETOOBIG);
    cr_assert_eq(e.column, 2);
}

Test(json_check, depth_mixed_containers_and_siblings)
{
    tern_json_error e;

    /* siblings do not add depth; the stack of kinds survives 64-bit words */
    cr_assert_eq(tern_json_check(TERN_STR("[[1],[2],{\"a\":[3]},[[4]]]"), 3, &e), 0);
    cr_assert_eq(tern_json_check(TERN_STR("[[1],[2],{\"a\":[3]},[[[4]]]]"), 3, &e), TERN_ETOOBIG);
    cr_assert_eq(e.column, 22);

    /* 70 levels alternating kinds, closed in the right order only */
    char buf[1024];
    size_t n = 0;
    for (int d = 0; d < 70; d++)
        n += (size_t)sprintf(buf + n, "%s", d % 3 == 0 ? "{\"k\":" : "[");
    buf[n++] = '0';
    for (int d = 69; d >= 0; d--)
        buf[n++] = d % 3 == 0 ? '}' : ']';
    cr_assert_eq(tern_json_check((tern_str){buf, n}, 70, &e), 0);
    cr_assert_eq(tern_json_check((tern_str){buf, n}, 69, &e), TERN_ETOOBIG);
    buf[n - 1] = ']'; /* the outermost is an object */
    cr_assert_eq(tern_json_check((tern_str){buf, n}, 70, &e), TERN_EINVAL);
    cr_assert_str_eq(e.reason, R_MEMBER);
}

/* 100,000 '[' on a thread whose whole stack is 64 KiB: a recursive parser
 * would need megabytes; the checker fails fast at the limit. */
struct deep_arg {
    const char *s;
    size_t n;
    unsigned max;
    int rc;
    tern_json_error e;
};

static void *deep_thread(void *p)
{
    struct deep_arg *a = p;

    a->rc = tern_json_check((tern_str){a->s, a->n}, a->max, &a->e);
    return NULL;
}

Test(json_check, hundred_thousand_brackets_small_stack_fast)
{
    size_t n = 100000;
    char *s = malloc(n);
    struct deep_arg a = {s, n, 64, 0, {0}};
    pthread_attr_t attr;
    pthread_t t;
    struct timespec t0, t1;

    cr_assert_not_null(s);
    memset(s, '[', n);
    cr_assert_eq(pthread_attr_init(&attr), 0);
    cr_assert_eq(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(pthread_create(&t, &attr, deep_thread, &a), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(a.rc, TERN_ETOOBIG);
    cr_assert_eq(a.e.offset, 64);
    cr_assert_eq(a.e.column, 65);

    a.max = 1024;
    cr_assert_eq(pthread_create(&t, &attr, deep_thread, &a), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(a.rc, TERN_ETOOBIG);
    cr_assert_eq(a.e.offset, 1024);

    /* and through the parse, which must stop before jansson recurses */
    json_t *v = NULL;
    cr_assert_eq(tern_json_parse((tern_str){s, n}, 1024, &v, &a.e), TERN_ETOOBIG);
    cr_assert_null(v);
    pthread_attr_destroy(&attr);
    free(s);
    cr_assert_lt((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec), 200000000L,
                 "should take microseconds, took over 200 ms");
}

/* Classic UTF-8 decoder cases (after Markus Kuhn's stress test), each inside
 * a string; also cross-checked with jansson. */
static const struct {
    const char *bytes;
    int ok;
    unsigned before; /* code points before the bad byte */
} utf8_cases[] = {
    {"\xc2\x80", 1, 0},                 /* U+0080, first 2-byte */
    {"\xdf\xbf", 1, 0},                 /* U+07FF, last 2-byte */
    {"\xe0\xa0\x80", 1, 0},             /* U+0800 */
    {"\xef\xbf\xbf", 1, 0},             /* U+FFFF (noncharacter, still valid) */
    {"\xef\xbf\xbe", 1, 0},             /* U+FFFE */
    {"\xef\xbf\xbd", 1, 0},             /* U+FFFD */
    {"\xed\x9f\xbf", 1, 0},             /* U+D7FF, last before the surrogates */
    {"\xee\x80\x80", 1, 0},             /* U+E000, first after */
    {"\xf0\x90\x80\x80", 1, 0},         /* U+10000 */
    {"\xf4\x8f\xbf\xbf", 1, 0},         /* U+10FFFF, the last code point */
    {"\xe2\x80\xa8\xe2\x80\xa9", 1, 0}, /* U+2028, U+2029 */
    {"\x80", 0, 0},                     /* lone continuation bytes */
    {"\xbf", 0, 0},
    {"\x80\xbf\x80", 0, 0},
    {"\xc0\xaf", 0, 0}, /* overlong '/' */
    {"\xe0\x80\xaf", 0, 0},
    {"\xf0\x80\x80\xaf", 0, 0},
    {"\xf8\x80\x80\x80\xaf", 0, 0},
    {"\xfc\x80\x80\x80\x80\xaf", 0, 0},
    {"\xc1\xbf", 0, 0}, /* largest overlongs */
    {"\xe0\x9f\xbf", 0, 0},
    {"\xf0\x8f\xbf\xbf", 0, 0},
    {"\xc0\x80", 0, 0}, /* overlong NUL */
    {"\xe0\x80\x80", 0, 0},
    {"\xed\xa0\x80", 0, 0}, /* UTF-16 surrogates encoded */
    {"\xed\xad\xbf", 0, 0},
    {"\xed\xae\x80", 0, 0},
    {"\xed\xbf\xbf", 0, 0},
    {"\xed\xa0\x80\xed\xb0\x80", 0, 0}, /* a "paired" surrogate (CESU-8) */
    {"\xf4\x90\x80\x80", 0, 0},         /* U+110000 */
    {"\xf5\x80\x80\x80", 0, 0},
    {"\xf7\xbf\xbf\xbf", 0, 0},
    {"\xfe", 0, 0},
    {"\xff", 0, 0},
    {"\xfe\xfe\xff\xff", 0, 0},
    {"\xc2", 0, 0}, /* truncated sequences */
    {"\xe2\x82", 0, 0},
    {"\xf0\x9f\x98", 0, 0},
    {"\xc2\x41", 0, 0}, /* a lead followed by ASCII */
    {"\xe2\x41\x82", 0, 0},
    {"\xf0\x9f\x41\x80", 0, 0},
    {"\xc3\xa9\xc3", 0, 1},
};

Test(json_check, utf8_classic_cases)
{
    for (size_t k = 0; k < LEN(utf8_cases); k++) {
        char buf[64];
        size_t bl = strlen(utf8_cases[k].bytes);
        tern_json_error e;
        json_error_t je;
        json_t *v;
        int rc;

        /* both positions: right after the quote, and after a long ASCII run */
        for (int pad = 0; pad <= 9; pad += 9) {
            size_t n = 0;

            buf[n++] = '"';
            memset(buf + n, 'a', (size_t)pad);
            n += (size_t)pad;
            memcpy(buf + n, utf8_cases[k].bytes, bl);
            n += bl;
            buf[n++] = '"';
            rc = tern_json_check((tern_str){buf, n}, 64, &e);
            cr_assert_eq(rc, utf8_cases[k].ok ? 0 : TERN_EINVAL, "case %zu pad %d", k, pad);
            if (!utf8_cases[k].ok) {
                cr_assert_str_eq(e.reason, R_UTF8, "case %zu", k);
                cr_assert_eq(e.column, 2 + (unsigned)pad + utf8_cases[k].before,
                             "case %zu: column %u", k, e.column);
            }
            v = json_loadb(buf, n, JSON_DECODE_ANY, &je);
            cr_assert_eq(v != NULL, utf8_cases[k].ok, "jansson disagrees on case %zu", k);
            json_decref(v);
        }
        /* outside a string any non-ASCII byte is a syntax error */
        buf[0] = '[';
        memcpy(buf + 1, utf8_cases[k].bytes, bl);
        buf[1 + bl] = ']';
        cr_assert_eq(tern_json_check((tern_str){buf, bl + 2}, 64, &e), TERN_EINVAL);
        cr_assert_str_eq(e.reason, R_VALUE_OR_CLOSE);
    }
}

Test(json_check, every_single_byte_in_a_string)
{
    for (int c = 0; c < 256; c++) {
        char buf[3] = {'"', (char)c, '"'};
        tern_json_error e;
        int ok = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';

        cr_assert_eq(tern_json_check((tern_str){buf, 3}, 64, &e), ok ? 0 : TERN_EINVAL, "0x%02x",
                     c);
    }
}

/* The SWAR fast path at every alignment: a special byte at each position of
 * strings up to 40 bytes long, preceded by 0-7 bytes of padding. */
Test(json_check, swar_finds_every_special_position)
{
    static const struct {
        const char *ins;
        int ok;
        const char *reason;
    } specials[] = {
        {"\\n", 1, NULL},       {"\xc3\xa9", 1, NULL}, {"\x7f", 1, NULL},    {"\x01", 0, R_CONTROL},
        {"\x1f", 0, R_CONTROL}, {"\xff", 0, R_UTF8},   {"\\q", 0, R_ESCAPE},
    };

    for (size_t sp = 0; sp < LEN(specials); sp++) {
        for (size_t pad = 0; pad < 8; pad++) {
            for (size_t len = 0; len <= 40; len++) {
                for (size_t at = 0; at <= len; at++) {
                    char buf[128];
                    size_t n = 0, il = strlen(specials[sp].ins);
                    tern_json_error e;
                    int rc;

                    memset(buf, ' ', pad);
                    n = pad;
                    buf[n++] = '"';
                    memset(buf + n, 'x', at);
                    n += at;
                    memcpy(buf + n, specials[sp].ins, il);
                    n += il;
                    memset(buf + n, 'y', len - at);
                    n += len - at;
                    buf[n++] = '"';
                    rc = tern_json_check((tern_str){buf, n}, 64, &e);
                    if (specials[sp].ok) {
                        cr_assert_eq(rc, 0, "special %zu pad %zu len %zu at %zu", sp, pad, len, at);
                    } else {
                        cr_assert_eq(rc, TERN_EINVAL);
                        cr_assert_str_eq(e.reason, specials[sp].reason);
                        cr_assert_eq(e.offset, pad + 1 + at, "special %zu pad %zu len %zu at %zu",
                                     sp, pad, len, at);
                    }
                }
            }
        }
    }
}

Test(json_check, missing_close_quote_at_every_length)
{
    char buf[64];

    for (size_t len = 0; len < 40; len++) {
        tern_json_error e;

        buf[0] = '[';
        buf[1] = '"';
        memset(buf + 2, 'z', len);
        cr_assert_eq(tern_json_check((tern_str){buf, len + 2}, 64, &e), TERN_EINVAL);
        cr_assert_str_eq(e.reason, R_UNTERM);
        cr_assert_eq(e.column, 2);
    }
}

/* ------------------------------------------------------------------------ */
/* tern_json_parse                                                            */

static void parse_fails(const char *text, unsigned line, unsigned column, const char *reason)
{
    tern_json_error e;
    json_t *v = (json_t *)1;

    cr_assert_eq(tern_json_parse(tern_str_c(text), 64, &v, &e), TERN_EINVAL, "[%s]", text);
    cr_assert_null(v, "*out is NULL on failure");
    cr_assert_str_eq(e.reason, reason, "[%s]", text);
    cr_assert_eq(e.line, line, "[%s]: line %u", text, e.line);
    cr_assert_eq(e.column, column, "[%s]: column %u", text, e.column);
}

Test(json_parse, int64_limits_exactly)
{
    tern_json_error e;
    json_t *v;

    cr_assert_eq(tern_json_parse(TERN_STR("9223372036854775807"), 64, &v, &e), 0);
    cr_assert(json_is_integer(v));
    cr_assert_eq(json_integer_value(v), INT64_MAX);
    json_decref(v);
    cr_assert_eq(tern_json_parse(TERN_STR("[-9223372036854775808]"), 64, &v, &e), 0);
    cr_assert_eq(json_integer_value(json_array_get(v, 0)), INT64_MIN);
    json_decref(v);
    cr_assert_eq(tern_json_parse(TERN_STR("-0"), 64, &v, &e), 0);
    cr_assert(json_is_integer(v));
    json_decref(v);

    parse_fails("9223372036854775808", 1, 1, R_RANGE);
    parse_fails("[1, -9223372036854775809 ]", 1, 5, R_RANGE);
    parse_fails("{\"big\":\n  123456789012345678901234567890}", 2, 3, R_RANGE);
    parse_fails("[\"\xc3\xa9\xc3\xa9\", 99999999999999999999]", 1, 8, R_RANGE);
}

Test(json_parse, reals_overflow_but_underflow_is_zero)
{
    tern_json_error e;
    json_t *v;

    parse_fails("1e400", 1, 1, R_RANGE);
    parse_fails("[0, -1.5E+309]", 1, 5, R_RANGE);
    cr_assert_eq(tern_json_parse(TERN_STR("1e-400"), 64, &v, &e), 0);
    cr_assert(json_is_real(v));
    cr_assert(json_real_value(v) == 0.0);
    json_decref(v);
    cr_assert_eq(tern_json_parse(TERN_STR("1.7976931348623157e308"), 64, &v, &e), 0);
    json_decref(v);
    /* an integer too big for int64 written as a real is fine */
    cr_assert_eq(tern_json_parse(TERN_STR("9223372036854775808.0"), 64, &v, &e), 0);
    cr_assert(json_is_real(v));
    json_decref(v);
}

Test(json_parse, duplicate_keys)
{
    parse_fails("{\"a\":1,\"a\":2}", 1, 8, R_DUP);
    parse_fails("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", 1, 19, R_DUP);
    parse_fails("[{}, {\"x\": [ {\"k\":1, \"k\":1} ]}]", 1, 22, R_DUP);
    parse_fails("{\"a\":1,\"\\u0061\":2}", 1, 8, R_DUP); /* equal after decoding */
    parse_fails("{\"\xc3\xa9\":1,\"\\u00e9\":2}", 1, 8, R_DUP);
    parse_fails("{\"\\uD83D\\uDE00\":1,\"\xf0\x9f\x98\x80\":2}", 1, 19, R_DUP);
    parse_fails("{\"a\\\"b\":1,\"a\\\"b\":2}", 1, 11, R_DUP); /* escaped quote inside */
    parse_fails("{\"a\\\\\":1,\"a\\\\\":2}", 1, 10, R_DUP);   /* ends in an escaped '\' */
    parse_fails("{\"\xc3\xa9\":1,\n \"\xc3\xa9\" :2}", 2, 2, R_DUP);

    tern_json_error e;
    json_t *v;
    cr_assert_eq(
        tern_json_parse(TERN_STR("{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}"), 64, &v, &e), 0);
    json_decref(v);
}

/* Valid text is read once; any failure reruns check and build, so a syntax
 * error later in the text still wins over a duplicate or a range error
 * found first, and the depth limit is the checker's. */
Test(json_parse, one_pass_keeps_error_precedence)
{
    tern_json_error e;
    json_t *v = (json_t *)1;

    parse_fails("{\"a\":1,\"a\":2,}", 1, 14, "expected a string key");
    parse_fails("[99999999999999999999, tru]", 1, 24,
                "invalid literal (expected true, false or null)");
    parse_fails("{\"a\":1,\"a\":2} x", 1, 15, "unexpected data after the JSON value");
    parse_fails("[1e999, \"\\q\"]", 1, 10, "invalid escape in a string");
    parse_fails("{\"a\":[1,{\"b\":2,\"b\":3}],\"c\":-01}", 1, 28, "invalid number");
    cr_assert_eq(tern_json_parse(TERN_STR("[[[1]]]"), 2, &v, &e), TERN_ETOOBIG);
    cr_assert_null(v);
    cr_assert_str_eq(e.reason, R_DEPTH);
    cr_assert_eq(e.offset, 2);
    cr_assert_eq(tern_json_parse(TERN_STR(" [[1]] "), 2, &v, &e), 0);
    json_decref(v);
}

Test(json_parse, check_errors_pass_through_unchanged)
{
    for (size_t k = 0; k < LEN(invalid_docs); k++) {
        tern_json_error e1, e2;
        json_t *v = (json_t *)1;
        tern_str s = {invalid_docs[k].text, invalid_docs[k].n};

        cr_assert_eq(tern_json_check(s, 64, &e1), tern_json_parse(s, 64, &v, &e2));
        cr_assert_null(v);
        cr_assert_eq(e1.offset, e2.offset);
        cr_assert_eq(e1.reason, e2.reason);
    }
}

Test(json_parse, valid_documents_never_hit_invalid_json)
{
    for (size_t k = 0; k < LEN(valid_docs); k++) {
        tern_json_error e;
        json_t *v = NULL;

        cr_assert_eq(tern_json_parse(S(valid_docs[k]), 64, &v, &e), 0, "[%s]: %s",
                     valid_docs[k].text, e.reason);
        cr_assert_not_null(v);
        json_decref(v);
    }
}

Test(json_parse, values_are_decoded)
{
    tern_json_error e;
    json_t *v;

    cr_assert_eq(tern_json_parse(TERN_STR("{\"s\":\"\\u00e9\\uD83D\\uDE00\\n\",\"b\":true,"
                                          "\"n\":null,\"r\":2.5,\"a\":[1]}"),
                                 64, &v, &e),
                 0);
    cr_assert_str_eq(json_string_value(json_object_get(v, "s")), "\xc3\xa9\xf0\x9f\x98\x80\n");
    cr_assert(json_is_true(json_object_get(v, "b")));
    cr_assert(json_is_null(json_object_get(v, "n")));
    cr_assert(json_real_value(json_object_get(v, "r")) == 2.5);
    cr_assert_eq(json_array_size(json_object_get(v, "a")), 1);
    json_decref(v);
}

Test(json_parse, round_trip)
{
    static const char doc[] =
        "{\"id\": 42, \"name\": \"Z\xc3\xbcrich \xe2\x82\xac \\ud83d\\ude00\", \"tags\": [\"a\", "
        "\"\\\"b\\\"\"],\n"
        " \"price\": -12.75, \"tiny\": 5e-324, \"big\": -9223372036854775808, \"ok\": false,\n"
        " \"nested\": {\"x\": [[], {}, [null, true]], \"ctl\": \"\\u0001\\t\\u001f\\u2028\"}}";
    tern_json_error e;
    json_t *v, *w;
    char *dump;

    cr_assert_eq(tern_json_parse((tern_str){doc, sizeof doc - 1}, 64, &v, &e), 0, "%u:%u %s",
                 e.line, e.column, e.reason);
    dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(dump);
    cr_assert_eq(tern_json_parse(tern_str_c(dump), 64, &w, &e), 0, "[%s]", dump);
    cr_assert(json_equal(v, w));
    free(dump);
    json_decref(v);
    json_decref(w);
}

/* jansson's allocator is separate from tern's; make it fail. */
static void *failing_malloc(size_t n)
{
    (void)n;
    return NULL;
}

Test(json_parse, jansson_out_of_memory_is_enomem)
{
    tern_json_error e;
    json_t *v = (json_t *)1;

    json_set_alloc_funcs(failing_malloc, free);
    cr_assert_eq(tern_json_parse(TERN_STR("{\"a\":[1,2,3]}"), 64, &v, &e), TERN_ENOMEM);
    cr_assert_null(v);
    cr_assert_str_eq(e.reason, "out of memory");
}

/* ------------------------------------------------------------------------ */
/* The per-thread block cache tern_app_new hands jansson (json_alloc.c)      */

static const char cache_doc[] = "{\"id\":\"3f2b8c1e\",\"tags\":[\"a\",\"bb\",\"ccc\"],"
                                "\"address\":{\"city\":\"London\",\"n\":12},\"x\":1.5,"
                                "\"long\":\"0123456789012345678901234567890123456789"
                                "01234567890123456789012345678901234567890123456789\"}";

static void *parse_and_free_many(void *arg)
{
    json_t *keep = arg; /* made on another thread: freed here */
    tern_json_error e;

    for (int i = 0; i < 2000; i++) {
        json_t *v = NULL;

        cr_assert_eq(tern_json_parse(((tern_str){ cache_doc, sizeof cache_doc - 1 }), 64, &v, &e), 0);
        cr_assert_str_eq(json_string_value(json_object_get(v, "id")), "3f2b8c1e");
        json_decref(v);
    }
    json_decref(keep);
    return NULL;
}

Test(json_alloc, values_round_trip_across_threads_with_the_cache)
{
    json_t *before = json_pack("{s:[i,s]}", "made with plain malloc", 1, "x");
    json_t *kept[4];
    pthread_t t[4];
    tern_json_error e;

    tern__json_alloc_install();
    json_decref(before); /* a plain malloc block through the cache's free */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(tern_json_parse(((tern_str){ cache_doc, sizeof cache_doc - 1 }), 64, &kept[i], &e), 0);
        cr_assert_eq(pthread_create(&t[i], NULL, parse_and_free_many, kept[i]), 0);
    }
    parse_and_free_many(json_deep_copy(kept[0]));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_join(t[i], NULL), 0);
    tern__json_alloc_drain();

    /* Replaced by plain malloc/free later: blocks the cache made stay valid. */
    json_t *v = NULL;
    cr_assert_eq(tern_json_parse(((tern_str){ cache_doc, sizeof cache_doc - 1 }), 64, &v, &e), 0);
    json_set_alloc_funcs(malloc, free);
    json_decref(v);
}

static void *app_malloc(size_t n)
{
    return malloc(n);
}

static void app_free(void *p)
{
    free(p);
}

Test(json_alloc, an_allocator_the_app_set_is_kept)
{
    json_malloc_t m;
    json_free_t f;

    json_set_alloc_funcs(app_malloc, app_free);
    tern__json_alloc_install();
    json_get_alloc_funcs(&m, &f);
    cr_assert(m == app_malloc && f == app_free);
    json_set_alloc_funcs(malloc, free);
}
