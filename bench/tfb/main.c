/*
 * tern-tfb - tern's TechEmpower Framework Benchmarks entry.
 *
 *   tern-tfb [--port N] [--host H] [--workers N]
 *
 * Implements the TFB test types as plain routes (see
 * /work/shared/specs/tfb.md):
 *   GET /plaintext  Hello, World!               (3.6, text/plain)
 *   GET /json       {"message":"Hello, World!"} (3.1, serialized per request)
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
/* Routes: one row per TFB test type.                                         */

static const struct {
    const char *path;
    tern_handler handler;
} routes[] = {
    { "/plaintext", plaintext },
    { "/json", json },
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

    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        tern_get(app, routes[i].path, routes[i].handler); /* errors: listen fails */

    int rc = tern_app_run(app);
    if (rc != 0)
        tern_log(TERN_LOG_ERROR, "tern-tfb: %s", tern_strerror(rc));
    tern_app_free(app);
    return rc == 0 ? 0 : 1;
}
