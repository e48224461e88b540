/*
 * validate.c - schema validation of JSON values and of string forms, and the
 * schema self-check.
 *
 * One recursive walk over the schema and the value together.  Every failure
 * is appended to a tern_errors list (in the caller's arena) and the walk goes
 * on, so a client learns about all its mistakes at once.  Order: a value's
 * own failures come before its children's; object members are visited in
 * document order, then missing required members follow in schema order.
 *
 * Invariants and choices:
 *   - The JSON pointer of the current value is a chain of `seg` records on
 *     the C stack; it becomes a string (RFC 6901, '~' -> ~0, '/' -> ~1) only
 *     when a failure is recorded, so a valid value costs no string work.
 *   - A type failure stops the checks of that value (no keyword noise).
 *   - schema->message replaces the message of every failure whose pointer is
 *     that value's (type and keywords), not of "required"/"unknown".
 *   - Allocation happens only for error records (arena), inserted defaults
 *     (json_loads), reals replaced by integers, and the hash table of a
 *     uniqueness check over more than UNIQUE_PAIRWISE items.  An allocation
 *     failure sets a sticky flag that unwinds the walk with TERN_ENOMEM.
 *   - Recursion depth equals the value's nesting depth, which the JSON parser
 *     caps (tern_json_parse's max_depth).
 */
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/valid.h"
#include "validate/regex.h"

/* 2^53: reals are integers only within +-2^53 (JSON Schema semantics). */
#define EXACT_DOUBLE_MAX 9007199254740992.0
/* 2^63 as a double (exactly representable). */
#define TWO_63 9223372036854775808.0

/* One step of the JSON pointer of the value being checked. */
typedef struct seg {
    const struct seg *up; /* NULL: the parent is the root */
    const char *key;      /* member name; NULL for an array index */
    size_t klen;
    size_t idx;
} seg;

/* Where the value lives, so a real can be replaced by an integer in place. */
typedef struct slot {
    json_t *parent; /* object or array; NULL for the root (never replaced) */
    void *iter;     /* object: the member's iterator */
    size_t idx;     /* array: the index */
} slot;

typedef struct vctx {
    tern_errors *errs;
    int nomem;
} vctx;

/* ------------------------------------------------------------------------ */
/* Errors and pointers                                                        */

void tern_errors_init(tern_errors *e, tern_arena *a)
{
    e->v = NULL;
    e->n = e->cap = 0;
    e->arena = a;
}

/* Bytes segment sg takes in a pointer, '/' excluded. */
static size_t seg_len(const seg *sg)
{
    size_t n = 0, i;

    if (sg->key == NULL) {
        char tmp[24];

        return (size_t)snprintf(tmp, sizeof tmp, "%zu", sg->idx);
    }
    for (i = 0; i < sg->klen; i++) {
        unsigned char c = (unsigned char)sg->key[i];

        n += c == '~' || c == '/' ? 2 : 1;
    }
    return n;
}

/* Writes the escaped segment at out (exactly seg_len bytes). */
static void seg_write(const seg *sg, char *out)
{
    size_t i;

    if (sg->key == NULL) {
        char tmp[24];
        int n = snprintf(tmp, sizeof tmp, "%zu", sg->idx);

        memcpy(out, tmp, (size_t)n);
        return;
    }
    for (i = 0; i < sg->klen; i++) {
        char c = sg->key[i];

        if (c == '~' || c == '/') {
            *out++ = '~';
            *out++ = c == '~' ? '0' : '1';
        } else {
            *out++ = c;
        }
    }
}

/* The RFC 6901 pointer of sg as an arena string ("" for the root). */
static char *pointer(tern_arena *a, const seg *sg)
{
    size_t len = 0;
    const seg *p;
    char *out, *end;

    for (p = sg; p != NULL; p = p->up)
        len += 1 + seg_len(p);
    out = tern_arena_alloc(a, len + 1);
    if (out == NULL)
        return NULL;
    end = out + len;
    *end = '\0';
    for (p = sg; p != NULL; p = p->up) { /* leaf first: fill from the end */
        size_t l = seg_len(p);

        end -= l;
        seg_write(p, end);
        *--end = '/';
    }
    return out;
}

/* Appends a failure.  msg must outlive the list (static, schema or arena). */
static void add_error(vctx *c, const seg *sg, const char *code, const char *msg)
{
    tern_errors *e = c->errs;
    tern_field_error *fe;

    if (c->nomem)
        return;
    if (msg == NULL) { /* a failed message allocation */
        c->nomem = 1;
        return;
    }
    if (e->n == e->cap) {
        unsigned cap = e->cap ? e->cap * 2 : 8;
        tern_field_error *v = tern_arena_alloc(e->arena, cap * sizeof *v);

        if (v == NULL) {
            c->nomem = 1;
            return;
        }
        if (e->n > 0)
            memcpy(v, e->v, e->n * sizeof *v);
        e->v = v;
        e->cap = cap;
    }
    fe = &e->v[e->n];
    fe->field = pointer(e->arena, sg);
    if (fe->field == NULL) {
        c->nomem = 1;
        return;
    }
    fe->code = code;
    fe->message = msg;
    e->n++;
}

/* printf into the error arena (NULL on OOM). */
static const char *msgf(vctx *c, const char *fmt, ...) TERN_PRINTF(2, 3);
static const char *msgf(vctx *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *out;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    out = tern_arena_alloc(c->errs->arena, (size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* A failure of value s: its message, unless the schema overrides it. */
static void fail(vctx *c, const tern_schema *s, const seg *sg, const char *code, const char *msg)
{
    add_error(c, sg, code, s->message != NULL ? s->message : msg);
}

/*
 * Writes a bound for a message: integral values as integers, others in the
 * shortest "%g" form that reads back as the same double.
 */
static void fmt_num(double v, char *buf, size_t n)
{
    if (v == floor(v) && fabs(v) < TWO_63) {
        snprintf(buf, n, "%" PRId64, (int64_t)v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static const char *type_message(tern_type t, int nullable)
{
    static const char *const plain[] = {
        "must be a value",   "must be a string", "must be an integer", "must be a number",
        "must be a boolean", "must be an array", "must be an object",  "must be null",
    };
    static const char *const or_null[] = {
        "must be a value",
        "must be a string or null",
        "must be an integer or null",
        "must be a number or null",
        "must be a boolean or null",
        "must be an array or null",
        "must be an object or null",
        "must be null",
    };

    if ((unsigned)t > TERN_NULL)
        return "has the wrong type";
    return nullable ? or_null[t] : plain[t];
}

static void fail_type(vctx *c, const tern_schema *s, const seg *sg)
{
    fail(c, s, sg, "type", type_message(s->type, (s->flags & TERN_NULLABLE) != 0));
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                    */

/* Code points in s[0..n): the bytes that do not continue a sequence (10xxxxxx),
 * counted eight at a time.  The rest of a string of eight bytes or more is
 * the word ending at n, less its bytes counted already: last + k holds 8 - k
 * zero bytes then k ones, a mask of a word's last k bytes in either byte
 * order. */
static size_t count_code_points(const char *s, size_t n)
{
    static const unsigned char last[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 };
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t cps = 0, i = 0;

    for (; n - i >= 8; i += 8) {
        uint64_t w, cont;

        memcpy(&w, s + i, sizeof w);
        cont = (w & ~(w << 1) & highs) >> 7; /* 1 in each continuation byte */
        cps += 8 - (size_t)((cont * ones) >> 56);
    }
    if (i < n && n >= 8) { /* the word ending at n, its first bytes counted already */
        uint64_t w, cont, mask;

        memcpy(&w, s + n - 8, sizeof w);
        memcpy(&mask, last + (n - i), sizeof mask);
        cont = (w & ~(w << 1) & highs) >> 7;
        return cps + (n - i) - (size_t)(((cont & mask) * ones) >> 56);
    }
    for (; i < n; i++)
        cps += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cps;
}

static void check_string(vctx *c, const tern_schema *s, const char *str, size_t len, const seg *sg)
{
    /* No count needed when no minimum is set and the byte length is within
     * the maximum: there are never more code points than bytes. */
    if (s->min_length > 0 || (s->max_length > 0 && len > s->max_length)) {
        size_t cps = count_code_points(str, len);

        if (cps < s->min_length)
            fail(c, s, sg, "min_length",
                 s->min_length == 1 ? "must be at least 1 character"
                                    : msgf(c, "must be at least %zu characters", s->min_length));
        if (s->max_length > 0 && cps > s->max_length)
            fail(c, s, sg, "max_length",
                 s->max_length == 1 ? "must be at most 1 character"
                                    : msgf(c, "must be at most %zu characters", s->max_length));
    }
    if (s->pattern != NULL) {
        const tern_rx *rx;
        int rc = tern_rx_get(s->pattern, &rx);

        /* A pattern that does not compile matches nothing (fail closed);
         * tern_schema_check reports it at registration. */
        if (rc == 0)
            rc = tern_rx_search(rx, str, len);
        else if (rc == TERN_EINVAL)
            rc = 0;
        if (rc == TERN_ENOMEM)
            c->nomem = 1;
        else if (rc == 0)
            fail(c, s, sg, "pattern", msgf(c, "must match the pattern %s", s->pattern));
    }
    if (s->format != NULL && !tern_fmt_check(s->format, str, len))
        fail(c, s, sg, "format", tern_fmt_message(s->format));
    if (s->enum_values != NULL) {
        const char *const *e;
        size_t total = 0;
        char *msg, *w;

        for (e = s->enum_values; *e != NULL; e++) {
            if (strlen(*e) == len && memcmp(*e, str, len) == 0)
                return;
        }
        if (s->message != NULL) {
            fail(c, s, sg, "enum", s->message);
            return;
        }
        /* "must be one of: a, b, c" */
        for (e = s->enum_values; *e != NULL; e++)
            total += strlen(*e) + 2;
        msg = tern_arena_alloc(c->errs->arena, sizeof "must be one of: " + total);
        if (msg == NULL) {
            c->nomem = 1;
            return;
        }
        memcpy(msg, "must be one of: ", sizeof "must be one of: " - 1);
        w = msg + sizeof "must be one of: " - 1;
        for (e = s->enum_values; *e != NULL; e++) {
            size_t l = strlen(*e);

            if (e != s->enum_values) {
                memcpy(w, ", ", 2);
                w += 2;
            }
            memcpy(w, *e, l);
            w += l;
        }
        *w = '\0';
        fail(c, s, sg, "enum", msg);
    }
}

/*
 * Compares integer v with bound b exactly: -1, 0 or 1.  An integral bound
 * within int64 is compared as int64 (no rounding of v beyond 2^53); a
 * non-integral bound is below 2^52 in magnitude, where comparing (double)v
 * cannot flip the order.
 */
static int cmp_int(int64_t v, double b)
{
    if (b >= TWO_63)
        return -1;
    if (b < -TWO_63)
        return 1;
    if (b == floor(b)) {
        int64_t bi = (int64_t)b;

        return (v > bi) - (v < bi);
    }
    return (double)v > b ? 1 : -1;
}

static int cmp_real(double v, double b)
{
    return (v > b) - (v < b);
}

/* Checks the bounds given the comparisons of the value with each. */
static void check_bounds(vctx *c, const tern_schema *s, const seg *sg, int is_int, int64_t iv,
                         double dv)
{
    char num[40];

    if (s->minimum.set) {
        int cmp = is_int ? cmp_int(iv, s->minimum.value) : cmp_real(dv, s->minimum.value);

        if (cmp < 0 || (cmp == 0 && s->minimum.exclusive)) {
            fmt_num(s->minimum.value, num, sizeof num);
            fail(c, s, sg, "minimum",
                 msgf(c, s->minimum.exclusive ? "must be greater than %s" : "must be at least %s",
                      num));
        }
    }
    if (s->maximum.set) {
        int cmp = is_int ? cmp_int(iv, s->maximum.value) : cmp_real(dv, s->maximum.value);

        if (cmp > 0 || (cmp == 0 && s->maximum.exclusive)) {
            fmt_num(s->maximum.value, num, sizeof num);
            fail(
                c, s, sg, "maximum",
                msgf(c, s->maximum.exclusive ? "must be less than %s" : "must be at most %s", num));
        }
    }
}

/*
 * For TERN_INTEGER: the value as int64 if it is a json integer, or a real
 * with an integral value within +-2^53 (*was_real set).  0 when neither.
 */
static int integer_value(json_t *v, int64_t *out, int *was_real)
{
    *was_real = 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);

        if (d == floor(d) && fabs(d) <= EXACT_DOUBLE_MAX) {
            *out = (int64_t)d;
            *was_real = 1;
            return 1;
        }
    }
    return 0;
}

/* Replaces the value in its container by a json integer. */
static void replace_with_int(vctx *c, const slot *sl, int64_t iv)
{
    json_t *n;
    int rc;

    if (sl == NULL || sl->parent == NULL)
        return; /* the root: the caller owns the reference; left as a real */
    n = json_integer(iv);
    if (n == NULL) {
        c->nomem = 1;
        return;
    }
    if (json_is_object(sl->parent))
        rc = json_object_iter_set_new(sl->parent, sl->iter, n);
    else
        rc = json_array_set_new(sl->parent, sl->idx, n);
    if (rc != 0)
        c->nomem = 1;
}

/* ------------------------------------------------------------------------ */
/* Uniqueness                                                                 */

/* Arrays up to this size are checked pairwise, without allocation. */
#define UNIQUE_PAIRWISE 16

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    return h;
}

/* A hash consistent with json_equal (equal values hash alike). */
static uint64_t hash_json(json_t *v)
{
    uint64_t h = 0;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        void *it;

        /* member order does not matter to json_equal: sum the members */
        for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
            k = json_object_iter_key(it);
            m = json_object_iter_value(it);
            h += mix(hash_bytes(k, json_object_iter_key_len(it)) ^ (hash_json(m) * 31));
        }
        return mix(h ^ 1);
    }
    case JSON_ARRAY:
        for (i = 0; i < json_array_size(v); i++)
            h = mix(h * 31 + hash_json(json_array_get(v, i)));
        return mix(h ^ 2);
    case JSON_STRING: return mix(hash_bytes(json_string_value(v), json_string_length(v)) ^ 3);
    case JSON_INTEGER: return mix((uint64_t)json_integer_value(v) ^ 4);
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;

        if (d == 0)
            d = 0; /* -0.0 equals 0.0 */
        memcpy(&bits, &d, sizeof bits);
        return mix(bits ^ 5);
    }
    case JSON_TRUE: return 6;
    case JSON_FALSE: return 7;
    default: return 8;
    }
}

typedef struct hashed {
    uint64_t h;
    size_t i;
} hashed;

static int cmp_hashed(const void *a, const void *b)
{
    const hashed *x = a, *y = b;

    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* 1 if two items of arr are equal, 0 if none, TERN_ENOMEM. */
static int has_duplicates(json_t *arr)
{
    size_t n = json_array_size(arr), i, j;
    hashed *hs;
    int dup = 0;

    if (n <= UNIQUE_PAIRWISE) {
        for (i = 0; i < n; i++) {
            for (j = i + 1; j < n; j++) {
                if (json_equal(json_array_get(arr, i), json_array_get(arr, j)))
                    return 1;
            }
        }
        return 0;
    }
    /* Sort by hash; only items with equal hashes are compared. */
    hs = tern_malloc(n * sizeof *hs);
    if (hs == NULL)
        return TERN_ENOMEM;
    for (i = 0; i < n; i++) {
        hs[i].h = hash_json(json_array_get(arr, i));
        hs[i].i = i;
    }
    qsort(hs, n, sizeof *hs, cmp_hashed);
    for (i = 0; i < n && !dup; i = j) {
        for (j = i + 1; j < n && hs[j].h == hs[i].h; j++)
            ;
        for (size_t a = i; a < j && !dup; a++) {
            for (size_t b = a + 1; b < j && !dup; b++)
                dup = json_equal(json_array_get(arr, hs[a].i), json_array_get(arr, hs[b].i));
        }
    }
    tern_free(hs);
    return dup;
}

/* ------------------------------------------------------------------------ */
/* The walk                                                                   */

/*
 * 1 when json_loads failed for lack of memory.  jansson reports most of those
 * as json_error_out_of_memory, but a failure to set up its lexer returns
 * before any error text is written (an empty text), and a failure to grow
 * its token buffer surfaces as a syntax error: only tern_schema_check, which
 * parses a default for the first time, has to live with that ambiguity.
 */
static int load_oom(const json_error_t *e)
{
    return json_error_code(e) == json_error_out_of_memory || e->text[0] == '\0';
}

static void check_value(vctx *c, const tern_schema *s, json_t *v, const seg *sg, const slot *sl);

static void check_array(vctx *c, const tern_schema *s, json_t *v, const seg *sg)
{
    size_t n = json_array_size(v), i;

    if (n < s->min_items)
        fail(c, s, sg, "min_items",
             s->min_items == 1 ? "must have at least 1 item"
                               : msgf(c, "must have at least %zu items", s->min_items));
    if (s->max_items > 0 && n > s->max_items)
        fail(c, s, sg, "max_items",
             s->max_items == 1 ? "must have at most 1 item"
                               : msgf(c, "must have at most %zu items", s->max_items));
    if (s->flags & TERN_UNIQUE) {
        int rc = has_duplicates(v);

        if (rc == TERN_ENOMEM)
            c->nomem = 1;
        else if (rc == 1)
            fail(c, s, sg, "unique", "must not contain duplicate items");
    }
    if (s->items == NULL)
        return;
    for (i = 0; i < n && !c->nomem; i++) {
        seg child = { sg, NULL, 0, i };
        slot sl = { v, NULL, i };

        check_value(c, s->items, json_array_get(v, i), &child, &sl);
    }
}

/* Whether the C string name is key[0..klen); reads no byte of name past
 * its NUL (a key may hold a NUL byte). */
static inline int name_is(const char *name, const char *key, size_t klen)
{
    for (size_t j = 0; j < klen; j++)
        if (name[j] != key[j] || name[j] == '\0')
            return 0;
    return name[klen] == '\0';
}

/*
 * Finds the property named key[0..klen) in props (count n), trying *hint
 * first: members usually come in schema order, so that is one comparison.
 */
static long find_prop(const tern_prop *props, size_t n, const char *key, size_t klen, size_t *hint)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = (*hint + k) % n;
        const char *name = props[i].name;

        if (name_is(name, key, klen)) {
            *hint = i + 1 < n ? i + 1 : 0;
            return (long)i;
        }
    }
    return -1;
}

static size_t count_props(const tern_prop *props)
{
    size_t n = 0;

    while (props != NULL && props[n].name != NULL)
        n++;
    return n;
}

/*
 * Required members and defaults for the members of props that are absent.
 * present(i) is told by `seen` (bit i, for i < 64) or by `state` (form mode)
 * or else by a lookup.
 */
static void check_absent(vctx *c, const tern_schema *s, json_t *obj, const seg *sg, uint64_t seen,
                         const unsigned char *state)
{
    const tern_prop *props = s->properties;

    for (size_t i = 0; props != NULL && props[i].name != NULL && !c->nomem; i++) {
        const tern_prop *p = &props[i];
        int present;

        if (!p->required && (p->schema == NULL || p->schema->default_json == NULL))
            continue;
        if (state != NULL)
            present = state[i] != 0;
        else if (i < 64)
            present = (seen >> i) & 1;
        else
            present = json_object_get(obj, p->name) != NULL;
        if (present)
            continue;
        if (p->required) {
            seg child = { sg, p->name, strlen(p->name), 0 };

            add_error(c, &child, "required", "is required");
        } else {
            /* tern_schema_check proved the default parses, so a failure here
             * is a failed allocation (for an unchecked schema with a broken
             * default it fails closed the same way). */
            json_t *d = json_loads(p->schema->default_json, JSON_DECODE_ANY, NULL);

            if (d == NULL || json_object_set_new(obj, p->name, d) != 0)
                c->nomem = 1;
        }
    }
}

static void check_object(vctx *c, const tern_schema *s, json_t *v, const seg *sg)
{
    const tern_prop *props = s->properties;
    size_t n = count_props(props), hint = 0;
    uint64_t seen = 0;
    void *it;

    for (it = json_object_iter(v); it != NULL && !c->nomem; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        long i = n ? find_prop(props, n, key, klen, &hint) : -1;
        seg child = { sg, key, klen, 0 };

        if (i < 0) {
            if (!(s->flags & TERN_ALLOW_EXTRA))
                add_error(c, &child, "unknown", "is not allowed");
            continue;
        }
        if (i < 64)
            seen |= (uint64_t)1 << i;
        if (props[i].schema != NULL) {
            slot sl = { v, it, 0 };

            check_value(c, props[i].schema, json_object_iter_value(it), &child, &sl);
        }
    }
    /* Nothing can be absent when every property was seen (the usual case). */
    if (!c->nomem && (n > 64 || seen != (n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1)))
        check_absent(c, s, v, sg, seen, NULL);
}

static void check_value(vctx *c, const tern_schema *s, json_t *v, const seg *sg, const slot *sl)
{
    int64_t iv;
    int was_real;
    tern_type t = s->type;

    if (json_is_null(v) && ((s->flags & TERN_NULLABLE) || t == TERN_NULL || t == TERN_ANY))
        return;
    if (t == TERN_ANY) {
        /* No type constraint: the keywords of the value's own type apply. */
        switch (json_typeof(v)) {
        case JSON_STRING: t = TERN_STRING; break;
        case JSON_INTEGER: t = TERN_INTEGER; break;
        case JSON_REAL: t = TERN_NUMBER; break;
        case JSON_ARRAY: t = TERN_ARRAY; break;
        case JSON_OBJECT: t = TERN_OBJECT; break;
        default: return;
        }
    }
    switch (t) {
    case TERN_STRING:
        if (!json_is_string(v))
            break;
        check_string(c, s, json_string_value(v), json_string_length(v), sg);
        return;
    case TERN_INTEGER:
        if (!integer_value(v, &iv, &was_real))
            break;
        if (was_real)
            replace_with_int(c, sl, iv);
        check_bounds(c, s, sg, 1, iv, 0);
        return;
    case TERN_NUMBER:
        if (json_is_integer(v))
            check_bounds(c, s, sg, 1, json_integer_value(v), 0);
        else if (json_is_real(v))
            check_bounds(c, s, sg, 0, 0, json_real_value(v));
        else
            break;
        return;
    case TERN_BOOLEAN:
        if (!json_is_boolean(v))
            break;
        return;
    case TERN_ARRAY:
        if (!json_is_array(v))
            break;
        check_array(c, s, v, sg);
        return;
    case TERN_OBJECT:
        if (!json_is_object(v))
            break;
        check_object(c, s, v, sg);
        return;
    default: /* TERN_NULL (null returned above) or an invalid type */ break;
    }
    fail_type(c, s, sg);
}

int tern_validate(const tern_schema *s, json_t *value, tern_errors *errs)
{
    vctx c = { errs, 0 };
    unsigned before = errs->n;

    check_value(&c, s, value, NULL, NULL);
    if (c.nomem)
        return TERN_ENOMEM;
    return errs->n > before ? TERN_EINVAL : 0;
}

/* ------------------------------------------------------------------------ */
/* Forms: coercion of text to the declared types                              */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Optional '-' and decimal digits within int64. */
static int parse_int(tern_str t, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, lim;

    if (t.n > 0 && t.p[0] == '-')
        neg = 1, i = 1;
    if (i == t.n)
        return 0;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < t.n; i++) {
        unsigned d = (unsigned char)t.p[i] - '0';

        if (d > 9 || v > (lim - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/*
 * A finite decimal: '-'? digits ('.' digits)? ([eE] [+-]? digits)?.
 * Returns 1 (*out set), 0 (not a number), or TERN_ENOMEM.
 */
static int parse_number(vctx *c, tern_str t, double *out)
{
    size_t i = 0, d;
    char buf[128], *copy = buf;

    if (i < t.n && t.p[i] == '-')
        i++;
    for (d = i; i < t.n && t.p[i] >= '0' && t.p[i] <= '9'; i++)
        ;
    if (i == d)
        return 0;
    if (i < t.n && t.p[i] == '.') {
        for (d = ++i; i < t.n && t.p[i] >= '0' && t.p[i] <= '9'; i++)
            ;
        if (i == d)
            return 0;
    }
    if (i < t.n && (t.p[i] == 'e' || t.p[i] == 'E')) {
        i++;
        if (i < t.n && (t.p[i] == '+' || t.p[i] == '-'))
            i++;
        for (d = i; i < t.n && t.p[i] >= '0' && t.p[i] <= '9'; i++)
            ;
        if (i == d)
            return 0;
    }
    if (i != t.n)
        return 0;
    if (t.n >= sizeof buf) {
        copy = tern_arena_strndup(c->errs->arena, t.p, t.n);
        if (copy == NULL)
            return TERN_ENOMEM;
    } else {
        memcpy(buf, t.p, t.n);
        buf[t.n] = '\0';
    }
    /* strtod follows LC_NUMERIC; the text uses '.', so parse in "C". */
    pthread_once(&c_locale_once, make_c_locale);
    if (c_locale == (locale_t)0)
        return TERN_ENOMEM;
    *out = strtod_l(copy, NULL, c_locale);
    return isfinite(*out) ? 1 : 0;
}

/*
 * The JSON value of one form text for schema s (a new reference), or NULL:
 * a `type` failure was recorded at sg, or c->nomem is set.
 */
static json_t *coerce(vctx *c, const tern_schema *s, tern_str t, const seg *sg)
{
    json_t *v = NULL;
    int64_t iv;
    double dv;
    int rc;

    if (t.n == 0 && (s->flags & TERN_NULLABLE) && s->type != TERN_STRING && s->type != TERN_ANY)
        return json_null(); /* ?age= for a nullable integer is null */
    switch (s->type) {
    case TERN_INTEGER:
        if (!parse_int(t, &iv)) {
            fail(c, s, sg, "type", "must be an integer");
            return NULL;
        }
        v = json_integer(iv);
        break;
    case TERN_NUMBER:
        if (parse_int(t, &iv)) { /* integral text stays an exact integer */
            v = json_integer(iv);
            break;
        }
        rc = parse_number(c, t, &dv);
        if (rc == TERN_ENOMEM) {
            c->nomem = 1;
            return NULL;
        }
        if (rc == 0) {
            fail(c, s, sg, "type", "must be a number");
            return NULL;
        }
        v = json_real(dv);
        break;
    case TERN_BOOLEAN:
        if (t.n == 4 && memcmp(t.p, "true", 4) == 0)
            return json_true();
        if (t.n == 5 && memcmp(t.p, "false", 5) == 0)
            return json_false();
        fail(c, s, sg, "type", "must be a boolean");
        return NULL;
    case TERN_STRING:
    case TERN_ANY:
        if (!tern_utf8_valid(t.p, t.n)) {
            fail(c, s, sg, "type", "must be valid UTF-8 text");
            return NULL;
        }
        v = json_stringn(t.p ? t.p : "", t.n);
        break;
    case TERN_NULL:
        if (t.n == 0)
            return json_null();
        fail_type(c, s, sg);
        return NULL;
    default: /* arrays of arrays, objects: not expressible in a form */
        fail_type(c, s, sg);
        return NULL;
    }
    if (v == NULL)
        c->nomem = 1;
    return v;
}

static int key_is(tern_str k, const char *name)
{
    return strnlen(name, k.n + 1) == k.n && (k.n == 0 || memcmp(name, k.p, k.n) == 0);
}

/* Collects every value of the array property p (first seen at field i). */
static json_t *coerce_array(vctx *c, const tern_form *f, unsigned first, const tern_prop *p,
                            const seg *sg)
{
    static const tern_schema any_s = { .type = TERN_ANY };
    const tern_schema *items = p->schema->items ? p->schema->items : &any_s;
    json_t *arr = json_array();
    size_t idx = 0;
    int ok = 1;

    if (arr == NULL) {
        c->nomem = 1;
        return NULL;
    }
    for (unsigned j = first; j < f->n && !c->nomem; j++) {
        seg item = { sg, NULL, 0, idx };
        json_t *v;

        if (!key_is(f->fields[j].key, p->name))
            continue;
        idx++;
        v = coerce(c, items, f->fields[j].value, &item);
        if (v == NULL) {
            ok = 0;
            continue;
        }
        if (json_array_append_new(arr, v) != 0)
            c->nomem = 1;
    }
    if (!ok || c->nomem) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* Adds an unknown field (TERN_ALLOW_EXTRA) as a string; the first value wins. */
static void keep_extra(vctx *c, json_t *obj, const tern_kv *kv)
{
    json_t *v;

    if (!tern_utf8_valid(kv->key.p, kv->key.n) || !tern_utf8_valid(kv->value.p, kv->value.n) ||
        memchr(kv->key.p ? kv->key.p : "", '\0', kv->key.n) != NULL)
        return; /* not representable as a JSON member: dropped */
    if (json_object_getn(obj, kv->key.p ? kv->key.p : "", kv->key.n) != NULL)
        return;
    v = json_stringn(kv->value.p ? kv->value.p : "", kv->value.n);
    if (v == NULL || json_object_setn_new(obj, kv->key.p ? kv->key.p : "", kv->key.n, v) != 0)
        c->nomem = 1;
}

/* Reports an unknown field, once per distinct key. */
static void unknown_field(vctx *c, const tern_form *f, unsigned i)
{
    const tern_kv *kv = &f->fields[i];
    seg sg = { NULL, kv->key.p ? kv->key.p : "", kv->key.n, 0 };
    char *fixed;

    for (unsigned j = 0; j < i; j++) {
        if (tern_str_eq(f->fields[j].key, kv->key))
            return;
    }
    if (!tern_utf8_valid(kv->key.p, kv->key.n)) {
        /* The pointer ends up in a JSON response: replace bytes that are
         * not UTF-8 with '?' (a lossy name is still a useful hint). */
        fixed = tern_arena_strndup(c->errs->arena, sg.key, sg.klen);
        if (fixed == NULL) {
            c->nomem = 1;
            return;
        }
        for (size_t k = 0; k < sg.klen; k++) {
            if ((unsigned char)fixed[k] >= 0x80)
                fixed[k] = '?';
        }
        sg.key = fixed;
    }
    add_error(c, &sg, "unknown", "is not allowed");
}

/* Per-property state when validating a form. */
#define ST_SEEN 1

int tern_validate_form(const tern_schema *s, const tern_form *form, json_t **out, tern_errors *errs)
{
    vctx c = { errs, 0 };
    unsigned before = errs->n;
    const tern_prop *props = s->properties;
    size_t n = count_props(props), hint = 0;
    unsigned char small[64], *state = small;
    json_t *obj;

    *out = NULL;
    if (s->type != TERN_OBJECT)
        return TERN_EINVAL;
    obj = json_object();
    if (obj == NULL)
        return TERN_ENOMEM;
    if (n > sizeof small) {
        state = tern_calloc(n, 1);
        if (state == NULL) {
            json_decref(obj);
            return TERN_ENOMEM;
        }
    } else {
        memset(small, 0, sizeof small);
    }
    for (unsigned i = 0; i < form->n && !c.nomem; i++) {
        const tern_kv *kv = &form->fields[i];
        long pi = n ? find_prop(props, n, kv->key.p ? kv->key.p : "", kv->key.n, &hint) : -1;
        const tern_prop *p;
        seg sg;
        json_t *v;
        unsigned j;

        if (pi < 0) {
            if (s->flags & TERN_ALLOW_EXTRA)
                keep_extra(&c, obj, kv);
            else
                unknown_field(&c, form, i);
            continue;
        }
        if (state[pi] & ST_SEEN)
            continue; /* a repeat: handled at the first occurrence */
        state[pi] |= ST_SEEN;
        p = &props[pi];
        sg = (seg){ NULL, p->name, strlen(p->name), 0 };
        if (p->schema == NULL)
            continue;
        if (p->schema->type == TERN_ARRAY) {
            v = coerce_array(&c, form, i, p, &sg);
        } else {
            for (j = i + 1; j < form->n && !key_is(form->fields[j].key, p->name); j++)
                ;
            if (j < form->n) {
                fail(&c, p->schema, &sg, "type", "must be given once");
                continue;
            }
            v = coerce(&c, p->schema, kv->value, &sg);
        }
        if (v == NULL)
            continue;
        if (json_object_set_new(obj, p->name, v) != 0) {
            c.nomem = 1;
            break;
        }
        check_value(&c, p->schema, v, &sg, NULL);
    }
    if (!c.nomem)
        check_absent(&c, s, obj, NULL, 0, state);
    if (state != small)
        tern_free(state);
    if (c.nomem) {
        json_decref(obj);
        return TERN_ENOMEM;
    }
    if (errs->n > before) {
        json_decref(obj);
        return TERN_EINVAL;
    }
    *out = obj;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Schema self-check                                                          */

#define CHECK_MAX_DEPTH 32

typedef struct schk {
    char *err;
    size_t errlen;
    char path[256]; /* where in the schema, e.g. "/properties/tags/items" */
    size_t plen;
} schk;

static int bad(schk *k, const char *fmt, ...) TERN_PRINTF(2, 3);
static int bad(schk *k, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (k->err != NULL && k->errlen > 0) {
        n = snprintf(k->err, k->errlen, "%s: ", k->plen ? k->path : "schema");
        if (n < 0 || (size_t)n >= k->errlen)
            return TERN_EINVAL;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return TERN_EINVAL;
}

/* Appends "/part" to the path (truncated when long); returns the old length. */
static size_t path_push(schk *k, const char *part)
{
    size_t old = k->plen;
    int n = snprintf(k->path + k->plen, sizeof k->path - k->plen, "/%s", part);

    if (n > 0)
        k->plen = k->plen + (size_t)n < sizeof k->path ? k->plen + (size_t)n : sizeof k->path - 1;
    return old;
}

static int check_bound(schk *k, const char *name, const tern_bound *b)
{
    if (b->set && !isfinite(b->value))
        return bad(k, "%s is not a finite number", name);
    return 0;
}

/* Validates a standalone value against s with a scratch error list. */
static int check_sample(schk *k, const tern_schema *s, json_t *v, const char *what)
{
    tern_arena a;
    tern_errors e;
    int rc;

    tern_arena_init(&a, 1024);
    tern_errors_init(&e, &a);
    rc = tern_validate(s, v, &e);
    if (rc == TERN_EINVAL)
        rc = bad(k, "%s does not match the schema: %s%s%s", what, e.v[0].field,
                 e.v[0].field[0] ? " " : "", e.v[0].message);
    tern_arena_deinit(&a);
    return rc;
}

static int check_schema(schk *k, const tern_schema *s, int depth)
{
    tern_type t = s->type;
    int any = t == TERN_ANY, rc;
    size_t old, i, j;

    if (depth > CHECK_MAX_DEPTH)
        return bad(k, "schemas nest more than %d levels (a recursive schema?)", CHECK_MAX_DEPTH);
    if ((unsigned)t > TERN_NULL)
        return bad(k, "invalid type %d", (int)t);
    if (s->flags & ~(TERN_NULLABLE | TERN_ALLOW_EXTRA | TERN_UNIQUE))
        return bad(k, "unknown flags 0x%x", s->flags);
    /* Keywords of another type are almost always a mistake
     * (min_length on an integer meant minimum): refuse them. */
    if (!any && t != TERN_STRING &&
        (s->min_length || s->max_length || s->pattern || s->format || s->enum_values))
        return bad(k, "string keywords (length, pattern, format, enum) on a non-string type");
    if (!any && t != TERN_INTEGER && t != TERN_NUMBER && (s->minimum.set || s->maximum.set))
        return bad(k, "minimum/maximum on a non-numeric type");
    if (!any && t != TERN_ARRAY &&
        (s->items || s->min_items || s->max_items || (s->flags & TERN_UNIQUE)))
        return bad(k, "array keywords (items, min/max_items, TERN_UNIQUE) on a non-array type");
    if (!any && t != TERN_OBJECT && (s->properties || (s->flags & TERN_ALLOW_EXTRA)))
        return bad(k, "object keywords (properties, TERN_ALLOW_EXTRA) on a non-object type");
    if (s->max_length && s->min_length > s->max_length)
        return bad(k, "min_length %zu > max_length %zu", s->min_length, s->max_length);
    if (s->max_items && s->min_items > s->max_items)
        return bad(k, "min_items %zu > max_items %zu", s->min_items, s->max_items);
    if ((rc = check_bound(k, "minimum", &s->minimum)) != 0 ||
        (rc = check_bound(k, "maximum", &s->maximum)) != 0)
        return rc;
    if (s->minimum.set && s->maximum.set &&
        (s->minimum.value > s->maximum.value ||
         (s->minimum.value == s->maximum.value && (s->minimum.exclusive || s->maximum.exclusive))))
        return bad(k, "minimum and maximum leave no valid value");
    if (s->pattern != NULL) {
        char why[160];
        tern_rx *rx;

        rc = tern_rx_compile(s->pattern, &rx, why, sizeof why);
        if (rc == TERN_EINVAL)
            return bad(k, "pattern \"%s\": %s", s->pattern, why);
        if (rc != 0)
            return rc;
        tern_rx_free(rx);
    }
    if (s->format != NULL && !tern_fmt_known(s->format))
        return bad(k, "unknown format \"%s\" (known: email, uuid, date-time, uri)", s->format);
    if (s->enum_values != NULL) {
        tern_schema plain = *s;

        if (s->enum_values[0] == NULL)
            return bad(k, "enum_values is empty");
        /* Each enum value must pass the schema's other string keywords. */
        plain.enum_values = NULL;
        plain.message = NULL;
        plain.type = TERN_STRING;
        for (i = 0; s->enum_values[i] != NULL; i++) {
            json_t *v;

            if (!tern_utf8_valid(s->enum_values[i], strlen(s->enum_values[i])))
                return bad(k, "enum value %zu is not valid UTF-8", i);
            v = json_string(s->enum_values[i]);
            if (v == NULL)
                return TERN_ENOMEM;
            rc = check_sample(k, &plain, v, "an enum value");
            json_decref(v);
            if (rc != 0)
                return rc;
        }
    }
    if (s->items != NULL) {
        old = path_push(k, "items");
        if ((rc = check_schema(k, s->items, depth + 1)) != 0)
            return rc;
        k->plen = old;
        k->path[old] = '\0';
    }
    for (i = 0; s->properties != NULL && s->properties[i].name != NULL; i++) {
        const tern_prop *p = &s->properties[i];

        for (j = 0; j < i; j++) {
            if (strcmp(s->properties[j].name, p->name) == 0)
                return bad(k, "property \"%s\" is declared twice", p->name);
        }
        old = path_push(k, "properties");
        path_push(k, p->name);
        if (p->schema == NULL)
            return bad(k, "property has no schema");
        if ((rc = check_schema(k, p->schema, depth + 1)) != 0)
            return rc;
        k->plen = old;
        k->path[old] = '\0';
    }
    if (s->default_json != NULL) {
        json_error_t jerr;
        json_t *d = json_loads(s->default_json, JSON_DECODE_ANY, &jerr);

        if (d == NULL) {
            if (load_oom(&jerr))
                return TERN_ENOMEM;
            return bad(k, "default is not valid JSON: %s", jerr.text);
        }
        rc = check_sample(k, s, d, "the default");
        json_decref(d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tern_schema_check(const tern_schema *s, char *err, size_t errlen)
{
    schk k;

    k.err = err;
    k.errlen = errlen;
    k.path[0] = '\0';
    k.plen = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (s == NULL)
        return bad(&k, "no schema");
    return check_schema(&k, s, 0);
}
