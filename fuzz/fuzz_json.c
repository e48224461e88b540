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
 *   4. A parsed value is serialized (JSON_COMPACT | JSON_ENCODE_ANY), that
 *      text must parse again, and the two values must be json_equal.
 * Any disagreement calls abort().  Nothing is kept between runs.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tern/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    text = (tern_str){buf, size};

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
        json_decref(v);
    }
    free(buf);
    return 0;
}
