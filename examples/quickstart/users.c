/*
 * users.c - the /users resource: list, get, create, replace, patch, delete.
 *
 * The schemas say what a valid user is; tern checks every request against
 * them before a handler runs (422 with the list of failures), so handlers
 * only talk to the database.  A duplicate email is the database's unique
 * constraint, answered 409 by tern; a missing id is 404.
 */
#include "quickstart.h"

static const tern_schema name_s = { .type = TERN_STRING, .min_length = 1, .max_length = 100 };
static const tern_schema email_s = { .type = TERN_STRING, .format = "email", .max_length = 254 };
static const tern_prop user_props[] = { { "name", &name_s, 1 }, { "email", &email_s, 1 }, { 0 } };
static const tern_schema user_s = { .type = TERN_OBJECT, .properties = user_props };
static const tern_prop patch_props[] = { { "name", &name_s, 0 }, { "email", &email_s, 0 }, { 0 } };
static const tern_schema patch_s = { .type = TERN_OBJECT, .properties = patch_props };

static const char *const sorts[] = { "-created_at", "created_at", "name", "-name", NULL };
static const tern_schema sort_s = { .type = TERN_STRING, .enum_values = sorts };
static const tern_prop list_props[] = {
    PAGE_PROPS, { "email", &email_s, 0 }, { "sort", &sort_s, 0 }, { 0 }
};
static const tern_schema list_s = { .type = TERN_OBJECT, .properties = list_props };

#define COLS "id, name, email, created_at, updated_at"
#define LIST(o)                                                                                    \
    "SELECT " COLS " FROM users WHERE (CAST($1 AS TEXT) IS NULL OR email = $1) ORDER BY " o        \
    " LIMIT $2 OFFSET $3"
static const char *const list_sql[] = { LIST("created_at DESC, id DESC"), LIST("created_at, id"),
                                        LIST("name, id"), LIST("name DESC, id DESC") };

static int list(tern_req *req)
{
    json_t *q = tern_req_valid_query(req);
    tern_db_rows *rs;
    int rc = tern_db_query(
        req, db, list_sql[choice(req, "sort", sorts)],
        TERN_DB_ARGS(tern_db_jarg(q, "email"), tern_db_jarg(q, "limit"), tern_db_jarg(q, "offset")),
        &rs);
    return rc ? rc : send_page(req, rs);
}

static int get(tern_req *req)
{
    return tern_db_send_one(req, db, 200, "SELECT " COLS " FROM users WHERE id = $1",
                            TERN_DB_ARGS(id_arg(req)));
}

static int create(tern_req *req)
{
    json_t *b = tern_req_valid_body(req);
    tern_db_rows *rs;
    int rc = tern_db_one(
        req, db,
        "INSERT INTO users (name, email, created_at, updated_at) "
        "VALUES ($1, $2, $3, $3) RETURNING " COLS,
        TERN_DB_ARGS(tern_db_jarg(b, "name"), tern_db_jarg(b, "email"), now_arg(req)), &rs);
    return rc ? rc : send_created(req, "/users/", rs);
}

/* PUT replaces every field; PATCH (JSON merge patch) keeps the absent ones. */
static int update(tern_req *req)
{
    json_t *b = tern_req_valid_body(req);
    return tern_db_send_one(
        req, db, 200,
        "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email), "
        "updated_at = $4 WHERE id = $1 RETURNING " COLS,
        TERN_DB_ARGS(id_arg(req), tern_db_jarg(b, "name"), tern_db_jarg(b, "email"), now_arg(req)));
}

static int destroy(tern_req *req)
{
    int64_t n;
    int rc =
        tern_db_exec(req, db, "DELETE FROM users WHERE id = $1", TERN_DB_ARGS(id_arg(req)), &n);
    return send_deleted(req, rc, n);
}

static const tern_route_def routes[] = {
    { "GET", "", list, .query = &list_s },
    { "POST", "", create, .body = &user_s },
    { "GET", "/:id", get, .params = &id_params },
    { "PUT", "/:id", update, .params = &id_params, .body = &user_s },
    { "PATCH", "/:id", update, .params = &id_params, .body = &patch_s },
    { "DELETE", "/:id", destroy, .params = &id_params },
    { 0 },
};

void users_routes(tern_app *app)
{
    tern_group_routes(tern_group_new(app, "/users"), routes);
}
