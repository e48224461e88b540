/*
 * json_write.c - writing jansson values through tern's JSON writer.
 *
 * Lets a handler echo or embed a json_t (a validated body, say) into a
 * response built with tern_jw, with tern's escaping rules, without going
 * through json_dumps and its allocations.  Object members keep jansson's
 * insertion order.  Depth is bounded by the writer (TERN_JW_MAX_DEPTH).
 *
 * The writer's state machine (commas, keys, nesting) is consulted once, for
 * the value as a whole; inside it the structure comes from the json_t, so
 * the members and items are written straight into the buffer, with the same
 * bytes the tern_jw_* calls would produce.
 */
#include <string.h>

#include "tern/body.h"

/* Makes room for n more bytes: the common case (room already there) inline. */
static inline int room(tern_buf *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : tern_buf_reserve(b, n);
}

static inline int put(tern_buf *b, const char *s, size_t n)
{
    int rc = room(b, n);

    if (rc == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
    return rc;
}

/* s quoted and escaped (tern_jw_str's bytes); nothing of it stays on failure. */
static int put_string(tern_buf *b, const char *s, size_t n)
{
    size_t mark = b->len;
    int rc = room(b, n + 2);

    if (rc == 0) {
        b->p[b->len++] = '"';
        rc = tern_json_escape(b, (tern_str){ s, n });
    }
    if (rc == 0)
        rc = room(b, 1);
    if (rc != 0) {
        b->len = mark;
        return rc;
    }
    b->p[b->len++] = '"';
    return 0;
}

static int put_int(tern_buf *b, int64_t v)
{
    int rc = room(b, 21); /* '-' and 20 digits: neither append can fail after */

    if (rc == 0 && v < 0)
        rc = put(b, "-", 1);
    return rc ? rc : tern_buf_append_u64(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/*
 * Writes v at nesting depth `depth` (the writer's depth of its container).
 * Returns 0 or the first error; containers deeper than TERN_JW_MAX_DEPTH fail
 * with TERN_ETOOBIG, as tern_jw_obj_begin/arr_begin would.
 */
static int put_value(tern_buf *b, const json_t *v, unsigned depth)
{
    int rc;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        void *it = json_object_iter((json_t *)v);
        const char *sep = "{";

        if (depth >= TERN_JW_MAX_DEPTH)
            return TERN_ETOOBIG;
        for (; it != NULL; it = json_object_iter_next((json_t *)v, it)) {
            const char *key = json_object_iter_key(it);

            rc = put(b, sep, 1);
            if (rc == 0)
                rc = put_string(b, key, strlen(key));
            if (rc == 0)
                rc = put(b, ":", 1);
            if (rc == 0)
                rc = put_value(b, json_object_iter_value(it), depth + 1);
            if (rc != 0)
                return rc;
            sep = ",";
        }
        return *sep == '{' ? put(b, "{}", 2) : put(b, "}", 1);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);

        if (depth >= TERN_JW_MAX_DEPTH)
            return TERN_ETOOBIG;
        rc = put(b, "[", 1);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i > 0)
                rc = put(b, ",", 1);
            if (rc == 0)
                rc = put_value(b, json_array_get(v, i), depth + 1);
        }
        return rc != 0 ? rc : put(b, "]", 1);
    }
    case JSON_STRING: return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return put_int(b, (int64_t)json_integer_value(v));
    case JSON_REAL: {
        /* tern_jw_double's shortest round-trip form, through a scratch writer */
        tern_jw t;

        tern_jw_init(&t, b);
        return tern_jw_double(&t, json_real_value(v));
    }
    case JSON_TRUE: return put(b, "true", 4);
    case JSON_FALSE: return put(b, "false", 5);
    case JSON_NULL: return put(b, "null", 4);
    }
    return put(b, "null", 4);
}

int tern_jw_json(tern_jw *w, const json_t *v)
{
    int rc;

    if (v == NULL)
        return tern_jw_null(w);
    /* The separator and the writer's checks, as for any value (tern_jw_raw
     * writes nothing when it fails). */
    rc = tern_jw_raw(w, TERN_STR(""));
    if (rc != 0)
        return rc;
    rc = put_value(w->out, v, w->depth);
    if (rc != 0 && w->err == 0)
        w->err = rc;
    return rc;
}
