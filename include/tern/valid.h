/*
 * tern/valid.h - declarative schemas: validation, coercion, binding, and
 * JSON Schema output.
 *
 * A schema is static data written once with designated initializers:
 *
 *     static const tern_schema name_s = { .type = TERN_STRING,
 *                                         .min_length = 1, .max_length = 100 };
 *     static const tern_schema email_s = { .type = TERN_STRING, .format = "email" };
 *     static const tern_prop user_props[] = {
 *         { "name", &name_s, 1 }, { "email", &email_s, 1 }, { 0 },
 *     };
 *     static const tern_schema user_s = { .type = TERN_OBJECT, .properties = user_props };
 *
 * The same schema validates a JSON body, a query string or path parameters
 * (whose string values are coerced to the declared type), lists every
 * failure with a JSON pointer, and is written out as JSON Schema 2020-12 for
 * the OpenAPI document.  Objects reject unknown members unless
 * TERN_ALLOW_EXTRA is set, so mass assignment stays out by default.
 */
#ifndef TERN_VALID_H
#define TERN_VALID_H

#include <jansson.h>

#include "body.h"
#include "core.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tern_type {
    TERN_ANY = 0,
    TERN_STRING,
    TERN_INTEGER, /* json integer (or a real with an integral value within +-2^53) */
    TERN_NUMBER,
    TERN_BOOLEAN,
    TERN_ARRAY,
    TERN_OBJECT,
    TERN_NULL,
} tern_type;

/* tern_schema.flags */
#define TERN_NULLABLE    0x1u /* null is accepted besides the type */
#define TERN_ALLOW_EXTRA 0x2u /* objects: unknown members are kept, not rejected */
#define TERN_UNIQUE      0x4u /* arrays: items must be distinct (JSON equality) */

/** A numeric bound; zero-initialized means "no bound". */
typedef struct tern_bound {
    unsigned char set;
    unsigned char exclusive;
    double value;
} tern_bound;

#define TERN_MIN(x)                                                                                \
    {                                                                                              \
        1, 0, (x)                                                                                  \
    } /* value >= x */
#define TERN_XMIN(x)                                                                               \
    {                                                                                              \
        1, 1, (x)                                                                                  \
    } /* value > x */
#define TERN_MAX(x)                                                                                \
    {                                                                                              \
        1, 0, (x)                                                                                  \
    } /* value <= x */
#define TERN_XMAX(x)                                                                               \
    {                                                                                              \
        1, 1, (x)                                                                                  \
    } /* value < x */

typedef struct tern_schema tern_schema;

/** One object member: name, schema, required flag.  Arrays end with {0}. */
typedef struct tern_prop {
    const char *name;
    const tern_schema *schema;
    int required;
} tern_prop;

struct tern_schema {
    tern_type type;
    unsigned flags;
    const char *title;       /* documentation only */
    const char *description; /* documentation only */
    /* strings */
    size_t min_length;              /* in code points */
    size_t max_length;              /* in code points; 0 = no limit */
    const char *pattern;            /* a linear-time regex subset, see docs/validation.md */
    const char *format;             /* "email", "uuid", "date-time" (RFC 3339), "uri" */
    const char *const *enum_values; /* strings, NULL-terminated */
    /* numbers */
    tern_bound minimum;
    tern_bound maximum;
    /* arrays */
    const tern_schema *items;
    size_t min_items;
    size_t max_items; /* 0 = no limit */
    /* objects */
    const tern_prop *properties; /* ends with { 0 } */
    /* any type */
    const char *default_json; /* applied when the member is absent: JSON text */
    const char *message;      /* replaces every failure message for this value */
};

/** One failed check. */
typedef struct tern_field_error {
    const char *field;   /* JSON pointer: "/email", "/tags/2", "" for the root */
    const char *code;    /* "required", "type", "format", "min_length", ... */
    const char *message; /* plain English: "must be an email address" */
} tern_field_error;

/** The failures of one validation, in document order; memory in the arena. */
typedef struct tern_errors {
    tern_field_error *v;
    unsigned n, cap;
    tern_arena *arena;
} tern_errors;

/** Initializes an empty error list whose strings and array live in a. */
TERN_API void tern_errors_init(tern_errors *e, tern_arena *a);

/**
 * Checks a schema itself (pattern compiles, bounds make sense, defaults
 * match, properties unique).  Returns 0 or TERN_EINVAL with a reason in err.
 * Route registration calls it, so a broken schema stops the app at start.
 */
TERN_API int tern_schema_check(const tern_schema *s, char *err, size_t errlen);

/**
 * Validates value against s and collects every failure (not just the
 * first) into errs.  Defaults are inserted into objects (value is modified).
 * Returns 0 when valid, TERN_EINVAL when errs has failures, or TERN_ENOMEM.
 */
TERN_API int tern_validate(const tern_schema *s, json_t *value, tern_errors *errs);

/**
 * Builds a JSON object from string fields (a query string, a form, path
 * parameters) per an object schema: each declared property's text is coerced
 * to its type (integer, number, boolean "true"/"false", string; an array
 * property collects repeated keys and coerces each), then the object is
 * validated like a body.  Unknown keys fail unless TERN_ALLOW_EXTRA.  s must
 * be a TERN_OBJECT schema.  *out is a new reference, or NULL on failure.
 * Returns 0, TERN_EINVAL (errs filled; no errors when s is not an object), or
 * TERN_ENOMEM.
 */
TERN_API int tern_validate_form(const tern_schema *s, const tern_form *form, json_t **out,
                                tern_errors *errs);

/** Writes s as a JSON Schema (2020-12) object.  New reference, or NULL on OOM. */
TERN_API json_t *tern_schema_json(const tern_schema *s);

/* ------------------------------------------------------------------------ */
/* Binding validated values to a C struct                                     */

typedef struct tern_bind_field {
    const char *name; /* member name */
    tern_type type;   /* TERN_STRING -> tern_str, TERN_INTEGER -> int64_t,
                         TERN_NUMBER -> double, TERN_BOOLEAN -> int,
                         TERN_ARRAY, TERN_OBJECT, TERN_ANY -> json_t *
                         (borrowed; arrays and objects type-checked) */
    size_t offset;    /* offsetof(struct, member) */
} tern_bind_field;

#define TERN_BIND(st, member, type)                                                                \
    {                                                                                              \
#member, (type), offsetof(st, member)                                                      \
    }

/**
 * Copies the members of a validated object into a struct.  Absent (optional)
 * members leave the struct field untouched; null leaves it untouched too.
 * Strings point into the JSON value (valid while it lives).  Returns 0 or
 * TERN_EINVAL when a member's JSON type does not match the field's (which
 * cannot happen after validation against a matching schema); mismatched
 * fields are left untouched and the others are still bound.
 * Fields end with { 0 }.
 */
TERN_API int tern_bind(json_t *obj, const tern_bind_field *fields, void *out);

/* ------------------------------------------------------------------------ */
/* Routes with declared inputs                                                */

/**
 * Declares that the route takes a body of media type `media_type` (e.g.
 * "application/json"), validated against schema (NULL: parsed, not
 * validated).  Before the handler runs, the framework answers 415 for any
 * other Content-Type (compared strictly: see tern_media_type_parse), 400 for
 * malformed JSON, 413 over the body limit, and 422 with every failure for an
 * invalid body.  The handler reads the result with tern_req_valid_body().
 */
TERN_API int tern_route_body(tern_route *r, const char *media_type, const tern_schema *schema);
/** Declares the query string's schema (an object schema; 422 on failure). */
TERN_API int tern_route_query(tern_route *r, const tern_schema *schema);
/** Declares the path parameters' schema (an object schema; 422 on failure). */
TERN_API int tern_route_params(tern_route *r, const tern_schema *schema);

/**
 * A route as data: method, pattern, handler and its declared inputs.  A
 * resource's routes read as one table:
 *
 *     static const tern_route_def user_routes[] = {
 *         { "GET", "", list, .query = &list_s },
 *         { "POST", "", create, .body = &user_s },
 *         { "GET", "/:id", get, .params = &id_s },
 *         { 0 },
 *     };
 *     tern_group_routes(tern_group_new(app, "/users"), user_routes);
 */
typedef struct tern_route_def {
    const char *method;
    const char *pattern;
    tern_handler handler;
    const tern_schema *params; /* tern_route_params */
    const tern_schema *query;  /* tern_route_query */
    const tern_schema *body;   /* tern_route_body, with body_type */
    const char *body_type;     /* media type of body; NULL means "application/json" */
} tern_route_def;

/**
 * Registers every route of a { 0 }-terminated table under group g (NULL: at
 * the app's root, use tern_routes).  Returns 0 or the first error (which is
 * also recorded, so tern_app_listen fails).
 */
TERN_API int tern_group_routes(tern_group *g, const tern_route_def *defs);
/** tern_group_routes at the app's root. */
TERN_API int tern_routes(tern_app *app, const tern_route_def *defs);

/** The validated body, query and params (borrowed; NULL if not declared). */
TERN_API json_t *tern_req_valid_body(tern_req *req);
TERN_API json_t *tern_req_valid_query(tern_req *req);
TERN_API json_t *tern_req_valid_params(tern_req *req);

/**
 * Answers 422 application/problem+json with `errors`: one
 * {"field","code","message"} object per failure, plus `in` ("body", "query",
 * "path") when in is not NULL.
 */
TERN_API int tern_problem_errors(tern_req *req, int status, const char *detail, const char *in,
                                 const tern_errors *errs);

#ifdef __cplusplus
}
#endif
#endif /* TERN_VALID_H */
