/*
 * tern-hello - a small tern app: a few routes, a path parameter, JSON,
 * a request body, a slow handler, streaming, a guarded group, and a users
 * resource whose input is declared as a schema and validated before the
 * handler runs.
 *
 *   make run              (or: build/release/examples/hello/tern-hello --port 8080)
 *   curl localhost:8080/hello/world
 */
#include <pthread.h>
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

/* ------------------------------------------------------------------------ */
/* Users: validated input, kept in memory (the last 50)                       */

static const tern_schema user_name = { .type = TERN_STRING, .min_length = 1, .max_length = 100 };
static const tern_schema user_email = { .type = TERN_STRING, .format = "email", .max_length = 254 };
static const tern_prop user_props[] = {
    { "name", &user_name, 1 },
    { "email", &user_email, 1 },
    { 0 },
};
static const tern_schema user_schema = { .type = TERN_OBJECT, .properties = user_props };

static const tern_schema list_limit = {
    .type = TERN_INTEGER, .minimum = TERN_MIN(1), .maximum = TERN_MAX(50), .default_json = "50"
};
static const tern_prop list_props[] = { { "limit", &list_limit, 0 }, { 0 } };
static const tern_schema list_query = { .type = TERN_OBJECT, .properties = list_props };

#define USERS_KEPT 50

struct user {
    int64_t id;
    char name[401]; /* 100 code points of up to 4 bytes */
    char email[255];
};

static struct {
    pthread_mutex_t mu; /* handlers run on several worker threads */
    struct user ring[USERS_KEPT];
    int64_t next_id;
} users = { PTHREAD_MUTEX_INITIALIZER, { { 0 } }, 1 };

struct user_in {
    tern_str name, email;
};

static const tern_bind_field user_fields[] = {
    TERN_BIND(struct user_in, name, TERN_STRING),
    TERN_BIND(struct user_in, email, TERN_STRING),
    { 0 },
};

static void user_json(tern_jw *w, const struct user *u)
{
    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("id"));
    tern_jw_int(w, u->id);
    tern_jw_key(w, TERN_STR("name"));
    tern_jw_cstr(w, u->name);
    tern_jw_key(w, TERN_STR("email"));
    tern_jw_cstr(w, u->email);
    tern_jw_obj_end(w);
}

static int create_user(tern_req *req)
{
    struct user_in in;
    struct user u;

    /* The schema already checked everything: bind and store. */
    if (tern_bind(tern_req_valid_body(req), user_fields, &in) != 0)
        return -1;
    memset(&u, 0, sizeof u);
    memcpy(u.name, in.name.p, in.name.n);
    memcpy(u.email, in.email.p, in.email.n);
    pthread_mutex_lock(&users.mu);
    u.id = users.next_id++;
    users.ring[u.id % USERS_KEPT] = u;
    pthread_mutex_unlock(&users.mu);

    char *loc = tern_arena_printf(tern_req_arena(req), "/users/%lld", (long long)u.id);
    if (loc == NULL || tern_header(req, "Location", loc) != 0)
        return -1;
    tern_jw *w = tern_json_begin(req, 201);
    user_json(w, &u);
    return tern_json_end(req);
}

static int list_users(tern_req *req)
{
    int64_t limit = json_integer_value(json_object_get(tern_req_valid_query(req), "limit"));
    tern_jw *w = tern_json_begin(req, 200);

    tern_jw_arr_begin(w);
    pthread_mutex_lock(&users.mu);
    for (int64_t id = users.next_id - 1; id >= 1 && id >= users.next_id - limit; id--)
        user_json(w, &users.ring[id % USERS_KEPT]); /* newest first */
    pthread_mutex_unlock(&users.mu);
    tern_jw_arr_end(w);
    return tern_json_end(req);
}

/* ------------------------------------------------------------------------ */
/* Forms, cookies, uploads                                                    */

/* Echoes an urlencoded form as a JSON object of arrays (keys may repeat). */
static int echo_form(tern_req *req)
{
    const tern_form *f;
    int rc = tern_req_form(req, &f);

    if (rc != 0)
        return rc;
    tern_jw *w = tern_json_begin(req, 200);
    tern_jw_arr_begin(w);
    for (unsigned i = 0; i < f->n; i++) {
        tern_jw_arr_begin(w);
        tern_jw_str(w, f->fields[i].key);
        tern_jw_str(w, f->fields[i].value);
        tern_jw_arr_end(w);
    }
    tern_jw_arr_end(w);
    return tern_json_end(req);
}

static int set_cookie(tern_req *req)
{
    tern_cookie c = { .name = "session", .value = "abc123", .max_age = 3600 };
    int rc = tern_set_cookie(req, &c);

    return rc ? rc : tern_text(req, 200, "cookie set\n");
}

static int whoami(tern_req *req)
{
    tern_str s = tern_req_cookie(req, "session");

    if (s.p == NULL)
        return tern_problem(req, 401, "no session cookie");
    return tern_send(req, 200, "text/plain; charset=utf-8", s.p, s.n);
}

/* Lists the parts of a multipart upload: name, filename, size, spooled. */
static int upload(tern_req *req)
{
    const tern_part *parts;
    unsigned n;
    int rc = tern_req_multipart(req, NULL, &parts, &n);

    if (rc != 0)
        return rc;
    tern_jw *w = tern_json_begin(req, 200);
    tern_jw_arr_begin(w);
    for (unsigned i = 0; i < n; i++) {
        tern_jw_obj_begin(w);
        tern_jw_key(w, TERN_STR("name"));
        tern_jw_str(w, parts[i].name);
        tern_jw_key(w, TERN_STR("filename"));
        if (parts[i].filename.p)
            tern_jw_str(w, parts[i].filename);
        else
            tern_jw_null(w);
        tern_jw_key(w, TERN_STR("size"));
        tern_jw_int(w, (int64_t)parts[i].size);
        tern_jw_key(w, TERN_STR("spooled"));
        tern_jw_bool(w, parts[i].fd >= 0);
        tern_jw_obj_end(w);
    }
    tern_jw_arr_end(w);
    return tern_json_end(req);
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

    tern_route_body(tern_post(app, "/users", create_user), "application/json", &user_schema);
    tern_route_query(tern_get(app, "/users", list_users), &list_query);
    tern_post(app, "/form", echo_form);
    tern_get(app, "/cookie", set_cookie);
    tern_get(app, "/whoami", whoami);
    tern_post(app, "/upload", upload);

    admin = tern_group_new(app, "/admin");
    tern_group_use(admin, require_admin, NULL);
    tern_group_route(admin, "GET", "/stats", admin_stats);

    rc = tern_app_run(app);
    tern_app_free(app);
    return rc == 0 ? 0 : 1;
}
