/*
 * schema_json.c - a tern_schema written out as a JSON Schema (2020-12)
 * object, for the OpenAPI document.
 *
 * The mapping is one keyword per field (see docs/validation.md):
 *   type (+ "null" when TERN_NULLABLE), title, description, minLength,
 *   maxLength, pattern, format, enum (+ null when nullable), minimum /
 *   exclusiveMinimum, maximum / exclusiveMaximum, items, minItems, maxItems,
 *   uniqueItems, properties, required, additionalProperties (false unless
 *   TERN_ALLOW_EXTRA), default.
 * Integral bounds are written as JSON integers so that "maximum": 100 does
 * not read 100.0.  Unset fields (zero) write nothing.  A schema nested more
 * than MAX_DEPTH levels (only a recursive one can be) is cut off as {}.
 *
 * Every jansson call can fail on allocation: a failure anywhere releases
 * the partial object and returns NULL.
 */
#include <math.h>

#include "tern/valid.h"

#define MAX_DEPTH 32

static const char *const type_names[] = {
    NULL, "string", "integer", "number", "boolean", "array", "object", "null",
};

/* Sets key to v (a new reference, may be NULL on OOM); 0 or -1. */
static int put(json_t *o, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

static json_t *number(double v)
{
    /* within int64 and integral: an exact JSON integer */
    if (v == floor(v) && fabs(v) < 9223372036854775808.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *to_json(const tern_schema *s, int depth);

static int add_bound(json_t *o, const tern_bound *b, const char *plain, const char *excl)
{
    if (!b->set)
        return 0;
    return put(o, b->exclusive ? excl : plain, number(b->value));
}

static int add_type(json_t *o, const tern_schema *s)
{
    json_t *a;

    if (s->type == TERN_ANY || (unsigned)s->type > TERN_NULL)
        return 0;
    if (!(s->flags & TERN_NULLABLE) || s->type == TERN_NULL)
        return put(o, "type", json_string(type_names[s->type]));
    a = json_array();
    if (put(o, "type", a) != 0)
        return -1;
    if (json_array_append_new(a, json_string(type_names[s->type])) != 0 ||
        json_array_append_new(a, json_string("null")) != 0)
        return -1;
    return 0;
}

static int add_enum(json_t *o, const tern_schema *s)
{
    json_t *a = json_array();

    if (put(o, "enum", a) != 0)
        return -1;
    for (const char *const *e = s->enum_values; *e != NULL; e++) {
        if (json_array_append_new(a, json_string(*e)) != 0)
            return -1;
    }
    /* with nullable, null must be in the enum too or it stays rejected */
    if ((s->flags & TERN_NULLABLE) && json_array_append_new(a, json_null()) != 0)
        return -1;
    return 0;
}

static int add_object(json_t *o, const tern_schema *s, int depth)
{
    json_t *props = json_object(), *req = json_array();
    const tern_prop *p;

    if (props == NULL || req == NULL) {
        json_decref(props);
        json_decref(req);
        return -1;
    }
    for (p = s->properties; p->name != NULL; p++) {
        json_t *sub = p->schema != NULL ? to_json(p->schema, depth + 1) : json_object();

        if (put(props, p->name, sub) != 0 ||
            (p->required && json_array_append_new(req, json_string(p->name)) != 0)) {
            json_decref(props);
            json_decref(req);
            return -1;
        }
    }
    if (put(o, "properties", props) != 0) {
        json_decref(req);
        return -1;
    }
    if (json_array_size(req) == 0) {
        json_decref(req);
        return 0;
    }
    return put(o, "required", req);
}

static json_t *to_json(const tern_schema *s, int depth)
{
    json_t *o = json_object();
    int rc = 0;

    if (o == NULL || depth > MAX_DEPTH)
        return o;
    rc |= add_type(o, s);
    if (s->title != NULL)
        rc |= put(o, "title", json_string(s->title));
    if (s->description != NULL)
        rc |= put(o, "description", json_string(s->description));
    if (s->min_length > 0)
        rc |= put(o, "minLength", json_integer((json_int_t)s->min_length));
    if (s->max_length > 0)
        rc |= put(o, "maxLength", json_integer((json_int_t)s->max_length));
    if (s->pattern != NULL)
        rc |= put(o, "pattern", json_string(s->pattern));
    if (s->format != NULL)
        rc |= put(o, "format", json_string(s->format));
    if (s->enum_values != NULL)
        rc |= add_enum(o, s);
    rc |= add_bound(o, &s->minimum, "minimum", "exclusiveMinimum");
    rc |= add_bound(o, &s->maximum, "maximum", "exclusiveMaximum");
    if (s->items != NULL)
        rc |= put(o, "items", to_json(s->items, depth + 1));
    if (s->min_items > 0)
        rc |= put(o, "minItems", json_integer((json_int_t)s->min_items));
    if (s->max_items > 0)
        rc |= put(o, "maxItems", json_integer((json_int_t)s->max_items));
    if (s->flags & TERN_UNIQUE)
        rc |= put(o, "uniqueItems", json_true());
    if (s->properties != NULL)
        rc |= add_object(o, s, depth);
    if ((s->type == TERN_OBJECT || s->properties != NULL) && !(s->flags & TERN_ALLOW_EXTRA))
        rc |= put(o, "additionalProperties", json_false());
    if (s->default_json != NULL) {
        /* tern_schema_check proved the default parses: a failure is OOM */
        rc |= put(o, "default", json_loads(s->default_json, JSON_DECODE_ANY, NULL));
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *tern_schema_json(const tern_schema *s)
{
    return to_json(s, 0);
}
