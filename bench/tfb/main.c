/*
 * tern-tfb - tern's TechEmpower Framework Benchmarks entry.
 *
 *   tern-tfb [--port N] [--host H] [--workers N]
 *
 * Implements the TFB test types as plain routes (see
 * /work/shared/specs/tfb.md):
 *   GET /plaintext  Hello, World!               (3.6, text/plain)
 *   GET /json       {"message":"Hello, World!"} (3.1, serialized per request)
 * and one test of tern's own (bench/README.md):
 *   POST /validate  a JSON body checked against validate_s, echoed (200);
 *                   the framework answers 415/400/413/422 before the handler
 *
 * Every response carries `Server: tern`; the framework adds Date and
 * Content-Length.  No logging middleware: TFB forbids disk logging and the
 * access log would only measure stderr.
 */
#include <tern.h>

/* ------------------------------------------------------------------------ */
/* Test types without a database                                             */

/* 3.6 Plaintext: the body is a static string, the response is composed per
 * request by tern_text (status line, headers, body). */
static int plaintext(tern_req *req)
{
    return tern_text(req, 200, "Hello, World!");
}

/* 3.1 JSON serialization: build the object with the JSON writer on every
 * request, no pre-serialized bytes. */
static int json(tern_req *req)
{
    tern_jw *w = tern_json_begin(req, 200);
    if (!w)
        return TERN_ENOMEM;
    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("message"));
    tern_jw_str(w, TERN_STR("Hello, World!"));
    tern_jw_obj_end(w);
    return tern_json_end(req); /* a failed write poisons w: this sends 500 */
}

/* ------------------------------------------------------------------------ */
/* POST /validate: parse, validate, echo                                      */

/* The body schema: 10 members (formats, bounded integers, an array, a nested
 * object), unknown members rejected at both levels (the default).  The same
 * schema in JSON Schema 2020-12, for the Node peers, is
 * bench/validate/schema.json: keep the two in step. */
static const tern_schema uuid_s = { .type = TERN_STRING, .format = "uuid" };
static const tern_schema email_s = { .type = TERN_STRING, .format = "email", .max_length = 254 };
static const tern_schema name_s = { .type = TERN_STRING, .min_length = 1, .max_length = 100 };
static const tern_schema date_time_s = { .type = TERN_STRING, .format = "date-time" };
static const tern_schema uri_s = { .type = TERN_STRING, .format = "uri", .max_length = 2048 };
static const tern_schema age_s = { .type = TERN_INTEGER,
                                   .minimum = TERN_MIN(0), .maximum = TERN_MAX(150) };
static const tern_schema quantity_s = { .type = TERN_INTEGER,
                                        .minimum = TERN_MIN(1), .maximum = TERN_MAX(10000) };
static const tern_schema tag_s = { .type = TERN_STRING, .min_length = 1, .max_length = 32 };
static const tern_schema tags_s = { .type = TERN_ARRAY, .items = &tag_s,
                                    .min_items = 1, .max_items = 10 };
static const tern_schema street_s = { .type = TERN_STRING, .min_length = 1, .max_length = 200 };
static const tern_schema city_s = { .type = TERN_STRING, .min_length = 1, .max_length = 100 };
static const tern_schema postal_code_s = { .type = TERN_STRING,
                                           .min_length = 2, .max_length = 16 };
static const tern_schema country_s = { .type = TERN_STRING, .min_length = 2, .max_length = 2 };
static const tern_prop address_props[] = {
    { "street", &street_s, 1 },
    { "city", &city_s, 1 },
    { "postal_code", &postal_code_s, 1 },
    { "country", &country_s, 1 },
    { 0 },
};
static const tern_schema address_s = { .type = TERN_OBJECT, .properties = address_props };
static const tern_schema bio_s = { .type = TERN_STRING, .max_length = 1000 };
static const tern_prop validate_props[] = {
    { "id", &uuid_s, 1 },
    { "email", &email_s, 1 },
    { "name", &name_s, 1 },
    { "created_at", &date_time_s, 1 },
    { "website", &uri_s, 1 },
    { "age", &age_s, 1 },
    { "quantity", &quantity_s, 1 },
    { "tags", &tags_s, 1 },
    { "address", &address_s, 1 },
    { "bio", &bio_s, 0 },
    { 0 },
};
static const tern_schema validate_s = { .type = TERN_OBJECT, .properties = validate_props };

/* Runs only for a body that is application/json, parses and matches
 * validate_s.  tern_jw_json writes the parsed value member by member (in
 * the order received) straight into the response buffer, the way /json is
 * written: no intermediate string as json_dumps would allocate. */
static int validate_echo(tern_req *req)
{
    json_t *body = tern_req_valid_body(req);
    if (!body) /* cannot happen with tern_route_body declared */
        return tern_problem(req, 500, "no validated body");
    tern_jw *w = tern_json_begin(req, 200);
    if (!w)
        return TERN_ENOMEM;
    tern_jw_json(w, body);
    return tern_json_end(req); /* a failed write poisons w: this sends 500 */
}

/* ------------------------------------------------------------------------ */
/* Routes: one row per test.                                                  */

static const struct {
    const char *method;
    const char *path;
    tern_handler handler;
    const tern_schema *json_body; /* the declared application/json body, or NULL */
} routes[] = {
    { "GET", "/plaintext", plaintext, NULL },
    { "GET", "/json", json, NULL },
    { "POST", "/validate", validate_echo, &validate_s },
};

int main(int argc, char **argv)
{
    tern_app *app = tern_app_new(NULL);
    if (!app)
        return 1;

    tern_config *cfg = tern_app_config(app);
    cfg->server_header = "tern"; /* TFB requires a Server header */
    if (tern_app_args(app, argc, argv) != 0) {
        tern_app_free(app);
        return 2;
    }

    /* Registration errors (a bad pattern, a broken schema) are logged and
     * kept; tern_app_run then fails. */
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        tern_route *r = tern_route_add(app, routes[i].method, routes[i].path, routes[i].handler);
        if (r && routes[i].json_body)
            tern_route_body(r, "application/json", routes[i].json_body);
    }

    int rc = tern_app_run(app);
    if (rc != 0)
        tern_log(TERN_LOG_ERROR, "tern-tfb: %s", tern_strerror(rc));
    tern_app_free(app);
    return rc == 0 ? 0 : 1;
}
