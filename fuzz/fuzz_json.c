/*
 * fuzz_json.c - libFuzzer target for the JSON checker and the checked parse
 * (src/body/json.c).
 *
 * For each input (an exact-size heap copy, so AddressSanitizer sees any read
 * past the end):
 *   1. tern_json_check with max_depth 64 and with a small depth derived from
 *      the input (0..7).  The results must be consistent: a syntax error
 *      found under the small limit is the same error under 64 (a depth
 *      limit only stops a scan earlier); an ETOOBIG under the small limit
 *      sits at or before any error found under 64; success under the small
 *      limit implies success under 64.  Every error has a reason, a line and
 *      column >= 1, and an offset within the input.
 *   2. A differential against jansson alone: when the checker rejects a text
 *      without NUL bytes as a syntax error (EINVAL), jansson must reject it
 *      too.  Catches a checker that refuses valid JSON.
 *   3. tern_json_parse with max_depth 64 must agree with the check: a check
 *      error comes back unchanged; after a successful check the parse may
 *      only fail with "duplicate object key" or "number out of range" (or
 *      out of memory), never with "invalid JSON".
 *      3b. jansson's own parser must build equal values (and fail on the
 *      same duplicate keys and out-of-range numbers): tern builds the
 *      values itself from the checked text.
 *   4. A parsed value is serialized (JSON_COMPACT | JSON_ENCODE_ANY), that
 *      text must parse again, and the two values must be json_equal; the
 *      same through tern's own writer (tern_jw_json).
 *   5. Validation (src/validate): the value is validated against a schema
 *      using every keyword, at the root and under a member.  Every failure
 *      has a JSON pointer, a code and a message; validating a fresh copy
 *      gives the same failures (deterministic); a value that passed passes
 *      again after its defaults were inserted (idempotent).
 * Any disagreement calls abort().  Nothing is kept between runs.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tern/body.h"
#include "tern/valid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A schema touching every keyword. */
static const char *const colors[] = { "red", "green", "blue", NULL };
static const tern_schema s_name = {
    .type = TERN_STRING, .min_length = 1, .max_length = 8, .pattern = "^[a-z]+( [a-z]+)*$"
};
static const tern_schema s_email = { .type = TERN_STRING, .format = "email" };
static const tern_schema s_id = { .type = TERN_STRING, .format = "uuid", .flags = TERN_NULLABLE };
static const tern_schema s_when = { .type = TERN_STRING, .format = "date-time" };
static const tern_schema s_url = { .type = TERN_STRING, .format = "uri" };
static const tern_schema s_color = { .type = TERN_STRING,
                                     .enum_values = colors,
                                     .default_json = "\"red\"" };
static const tern_schema s_age = { .type = TERN_INTEGER,
                                   .minimum = TERN_MIN(0),
                                   .maximum = TERN_XMAX(150) };
static const tern_schema s_score = { .type = TERN_NUMBER,
                                     .minimum = TERN_XMIN(-1.5),
                                     .maximum = TERN_MAX(1e6),
                                     .message = "bad score" };
static const tern_schema s_flag = { .type = TERN_BOOLEAN };
static const tern_schema s_tag = { .type = TERN_STRING, .max_length = 4 };
static const tern_schema s_tags = {
    .type = TERN_ARRAY, .items = &s_tag, .min_items = 1, .max_items = 4, .flags = TERN_UNIQUE
};
static const tern_prop p_inner[] = { { "name", &s_name, 1 }, { "age", &s_age, 0 }, { 0 } };
static const tern_schema s_inner = { .type = TERN_OBJECT, .properties = p_inner };
static const tern_schema s_any = { .type = TERN_ANY };
static const tern_prop p_root[] = {
    { "name", &s_name, 1 },
    { "email", &s_email, 0 },
    { "id", &s_id, 0 },
    { "when", &s_when, 0 },
    { "url", &s_url, 0 },
    { "color", &s_color, 0 },
    { "age", &s_age, 0 },
    { "score", &s_score, 0 },
    { "flag", &s_flag, 0 },
    { "tags", &s_tags, 0 },
    { "inner", &s_inner, 0 },
    { "any", &s_any, 0 },
    { 0 },
};
static const tern_schema s_root = { .type = TERN_OBJECT, .properties = p_root };
static const tern_schema s_list = { .type = TERN_ARRAY, .items = &s_root, .max_items = 8 };

/* Validates a deep copy of v; returns the failure count (or -1 on OOM). */
static int validate_copy(const tern_schema *schema, json_t *v, tern_arena *a, json_t **copy)
{
    tern_errors errs;
    json_t *c = json_deep_copy(v);
    int rc;

    if (c == NULL)
        return -1;
    tern_errors_init(&errs, a);
    rc = tern_validate(schema, c, &errs);
    if (rc == TERN_ENOMEM) {
        json_decref(c);
        return -1;
    }
    if ((rc == 0) != (errs.n == 0))
        abort();
    for (unsigned i = 0; i < errs.n; i++) {
        const tern_field_error *e = &errs.v[i];
        if (e->field == NULL || e->code == NULL || e->message == NULL || e->message[0] == '\0')
            abort();
        if (e->field[0] != '\0' && e->field[0] != '/')
            abort();
    }
    if (copy != NULL)
        *copy = c;
    else
        json_decref(c);
    return (int)errs.n;
}

static void fuzz_validate(json_t *v)
{
    static const tern_schema *const schemas[] = { &s_root, &s_list };
    tern_arena a;

    tern_arena_init(&a, 4096);
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        json_t *once = NULL;
        int n1 = validate_copy(schemas[i], v, &a, &once);
        int n2 = validate_copy(schemas[i], v, &a, NULL);

        if (n1 >= 0 && n2 >= 0 && n1 != n2)
            abort(); /* deterministic */
        if (n1 == 0 && once != NULL && validate_copy(schemas[i], once, &a, NULL) > 0)
            abort(); /* defaults inserted by a pass keep the value valid */
        json_decref(once);
        tern_arena_reset(&a);
    }
    tern_arena_deinit(&a);
}

/* tern's writer must produce text that parses back to the same value. */
static void fuzz_writer(json_t *v)
{
    tern_buf b;
    tern_jw w;
    json_t *back = NULL;
    tern_json_error e;

    tern_buf_init(&b, 0);
    tern_jw_init(&w, &b);
    if (tern_jw_json(&w, v) == 0 && tern_jw_finish(&w) == 0) {
        if (tern_json_parse((tern_str){ b.p, b.len }, 64, &back, &e) == 0 && !json_equal(v, back))
            abort();
        json_decref(back);
    }
    tern_buf_deinit(&b);
}

static void check_error_shape(const tern_json_error *e, size_t n)
{
    if (e->reason == NULL || e->line < 1 || e->column < 1 || e->offset > n)
        abort();
    if (e->column > e->offset + 1 || e->line > e->offset + 1)
        abort();
}

static int same_error(const tern_json_error *a, const tern_json_error *b)
{
    return a->offset == b->offset && a->line == b->line && a->column == b->column &&
           strcmp(a->reason, b->reason) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    tern_str text;
    tern_json_error e64, esmall, ep;
    unsigned small = size ? data[0] % 8 : 0;
    json_t *v = NULL, *w = NULL;
    json_error_t je;
    int rc64, rcsmall, rcp;

    if (buf == NULL)
        abort();
    if (size)
        memcpy(buf, data, size);
    text = (tern_str){ buf, size };

    /* 1. the checker at two depths */
    rc64 = tern_json_check(text, 64, &e64);
    rcsmall = tern_json_check(text, small, &esmall);
    if (rc64 != 0 && rc64 != TERN_EINVAL && rc64 != TERN_ETOOBIG)
        abort();
    if (rc64 != 0)
        check_error_shape(&e64, size);
    if (rcsmall != 0)
        check_error_shape(&esmall, size);
    if (rcsmall == 0 && rc64 != 0)
        abort();
    if (rcsmall == TERN_EINVAL && (rc64 != TERN_EINVAL || !same_error(&e64, &esmall)))
        abort();
    if (rcsmall == TERN_ETOOBIG && rc64 != 0 && esmall.offset > e64.offset)
        abort();

    /*
     * 2. what the checker calls a syntax error, jansson rejects too.  Not for
     * inputs holding a NUL byte: jansson's reader drops a NUL after a number
     * ("[1\0]" loads as [1]; fuzz/regress/json/nul_after_number), a leniency
     * the checker exists to remove.
     */
    if (rc64 == TERN_EINVAL && memchr(buf, '\0', size) == NULL) {
        v = json_loadb(buf, size, JSON_DECODE_ANY, &je);
        if (v != NULL)
            abort();
    }

    /* 3. the parse agrees with the check */
    rcp = tern_json_parse(text, 64, &v, &ep);
    if (rc64 != 0) {
        if (rcp != rc64 || v != NULL || !same_error(&e64, &ep))
            abort();
    } else if (rcp != 0) {
        if (v != NULL)
            abort();
        if (rcp == TERN_EINVAL) {
            check_error_shape(&ep, size);
            if (strcmp(ep.reason, "duplicate object key") != 0 &&
                strcmp(ep.reason, "number out of range") != 0)
                abort(); /* "invalid JSON" must be unreachable */
        } else if (rcp != TERN_ENOMEM) {
            abort();
        }
    }

    /*
     * 3b. differential against jansson's own parser: tern builds the values
     * itself from the checked text, and must build exactly what jansson
     * would (same values, same duplicate and range failures).
     */
    if (rc64 == 0 && rcp != TERN_ENOMEM) {
        json_t *jv = json_loadb(buf, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

        if ((jv == NULL) != (rcp != 0) || (jv != NULL && !json_equal(v, jv)))
            abort();
        json_decref(jv);
    }

    /* 4. serialize and parse again */
    if (rcp == 0) {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        if (dump != NULL) {
            int rc = tern_json_parse(tern_str_c(dump), 64, &w, &ep);

            if (rc == TERN_ENOMEM) {
                w = NULL;
            } else if (rc != 0 || !json_equal(v, w)) {
                abort();
            }
            free(dump);
            json_decref(w);
        }
        fuzz_writer(v);
        fuzz_validate(v);
        json_decref(v);
    }
    free(buf);
    return 0;
}
