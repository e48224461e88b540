/*
 * tern-hello - a small tern app: a few routes, a path parameter, JSON,
 * a request body, a slow handler, streaming, and a guarded group.
 *
 *   make run              (or: build/release/examples/hello/tern-hello --port 8080)
 *   curl localhost:8080/hello/world
 */
#include <stdlib.h>
#include <string.h>

#include <tern.h>

static int index_page(tern_req *req)
{
    return tern_text(req, 200, "Hello from tern!\n");
}

static int hello_name(tern_req *req)
{
    tern_str name = tern_param(req, "name");
    char *msg = tern_arena_printf(tern_req_arena(req), "Hello, %.*s!", (int)name.n, name.p);

    return msg ? tern_text(req, 200, msg) : -1;
}

static int json(tern_req *req)
{
    tern_jw *w = tern_json_begin(req, 200);

    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("message"));
    tern_jw_str(w, TERN_STR("Hello, World!"));
    tern_jw_obj_end(w);
    return tern_json_end(req);
}

static int get_user(tern_req *req)
{
    tern_jw *w = tern_json_begin(req, 200);

    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("id"));
    tern_jw_str(w, tern_param(req, "id"));
    tern_jw_obj_end(w);
    return tern_json_end(req);
}

static int echo(tern_req *req)
{
    tern_str body, ctype = tern_req_header(req, "Content-Type");
    int rc = tern_req_body(req, &body);

    if (rc != 0)
        return rc; /* 413, 408 or 400 is answered by the framework */
    if (ctype.p != NULL)
        tern_header_str(req, TERN_STR("X-Echo-Type"), ctype);
    return tern_send(req, 200,
                     ctype.p ? tern_arena_strndup(tern_req_arena(req), ctype.p, ctype.n)
                             : "application/octet-stream",
                     body.p, body.n);
}

static int sleep_ms(tern_req *req)
{
    tern_str s = tern_param(req, "ms");
    char buf[16], *end;
    long ms;

    if (s.n == 0 || s.n >= sizeof buf)
        return tern_problem(req, 400, "ms must be an integer from 0 to 10000");
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    ms = strtol(buf, &end, 10);
    if (*end != '\0' || buf[0] == '-' || buf[0] == '+' || ms > 10000)
        return tern_problem(req, 400, "ms must be an integer from 0 to 10000");
    if (tern_sleep(ms) != 0)
        return tern_problem(req, 503, "shutting down");
    return tern_text(req, 200, tern_arena_printf(tern_req_arena(req), "slept %ld", ms));
}

static int fail(tern_req *req)
{
    (void)req;
    return -1; /* recover turns this into a 500 problem */
}

static int silent(tern_req *req)
{
    (void)req;
    return 0; /* returns without answering: also a 500 */
}

static int stream(tern_req *req)
{
    static const char *parts[] = { "one\n", "two\n", "three\n" };
    int rc = tern_stream_begin(req, 200, "text/plain; charset=utf-8");

    for (int i = 0; rc == 0 && i < 3; i++)
        rc = tern_stream_write(req, parts[i], strlen(parts[i]));
    return rc ? rc : tern_stream_end(req);
}

static int files(tern_req *req)
{
    tern_str path = tern_param(req, "path");

    return tern_send(req, 200, "text/plain; charset=utf-8", path.p, path.n);
}

static int require_admin(tern_req *req, void *data)
{
    (void)data;
    if (!tern_str_eq(tern_req_header(req, "X-Admin"), TERN_STR("yes")))
        return tern_problem(req, 403, "admin access required");
    return tern_next(req);
}

static int admin_stats(tern_req *req)
{
    return tern_json_send(req, 200, TERN_STR("{\"ok\":true}"));
}

int main(int argc, char **argv)
{
    tern_app *app = tern_app_new(NULL);
    tern_group *admin;
    int rc;

    if (app == NULL || tern_app_args(app, argc, argv) != 0)
        return 2;
    tern_use(app, tern_mw_request_id, NULL);
    tern_use(app, tern_mw_access_log, NULL);
    tern_use(app, tern_mw_recover, NULL);

    tern_get(app, "/", index_page);
    tern_get(app, "/hello/:name", hello_name);
    tern_get(app, "/json", json);
    tern_get(app, "/users/:id", get_user);
    tern_post(app, "/echo", echo);
    tern_get(app, "/sleep/:ms", sleep_ms);
    tern_get(app, "/fail", fail);
    tern_get(app, "/silent", silent);
    tern_get(app, "/stream", stream);
    tern_get(app, "/files/*path", files);

    admin = tern_group_new(app, "/admin");
    tern_group_use(admin, require_admin, NULL);
    tern_group_route(admin, "GET", "/stats", admin_stats);

    rc = tern_app_run(app);
    tern_app_free(app);
    return rc == 0 ? 0 : 1;
}
