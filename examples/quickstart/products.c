/*
 * products.c - the /products resource.  A product belongs to a user
 * (owner_id -> users.id): creating one for a missing owner is 409, and
 * deleting a user deletes their products (ON DELETE CASCADE, see schema.c).
 *
 * Prices are money: the API speaks decimal numbers with at most two
 * decimals, the database stores whole cents, so no rounding ever creeps in.
 */
#include <math.h>

#include "quickstart.h"

static const tern_schema name_s = { .type = TERN_STRING, .min_length = 1, .max_length = 200 };
static const tern_schema sku_s = { .type = TERN_STRING,
                                   .pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$",
                                   .message = "must be 3-32 capital letters, digits or dashes" };
static const tern_schema price_s = { .type = TERN_NUMBER,
                                     .minimum = TERN_MIN(0),
                                     .maximum = TERN_MAX(1e9) };
static const tern_schema desc_s = { .type = TERN_STRING,
                                    .flags = TERN_NULLABLE,
                                    .max_length = 2000 };
static const tern_schema owner_s = { .type = TERN_INTEGER, .minimum = TERN_MIN(1) };
static const tern_prop product_props[] = {
    { "name", &name_s, 1 },        { "sku", &sku_s, 1 },        { "price", &price_s, 1 },
    { "description", &desc_s, 0 }, { "owner_id", &owner_s, 1 }, { 0 },
};
static const tern_schema product_s = { .type = TERN_OBJECT, .properties = product_props };
static const tern_prop patch_props[] = {
    { "name", &name_s, 0 },        { "sku", &sku_s, 0 },        { "price", &price_s, 0 },
    { "description", &desc_s, 0 }, { "owner_id", &owner_s, 0 }, { 0 },
};
static const tern_schema patch_s = { .type = TERN_OBJECT, .properties = patch_props };

static const char *const sorts[] = { "-created_at", "created_at", "name", "-name",
                                     "price",       "-price",     NULL };
static const tern_schema sort_s = { .type = TERN_STRING, .enum_values = sorts };
static const tern_prop list_props[] = {
    PAGE_PROPS,
    { "owner_id", &owner_s, 0 },
    { "min_price", &price_s, 0 },
    { "max_price", &price_s, 0 },
    { "sort", &sort_s, 0 },
    { 0 },
};
static const tern_schema list_s = { .type = TERN_OBJECT, .properties = list_props };

#define COLS                                                                                       \
    "id, owner_id, name, sku, price_cents / 100.0 AS price, description, created_at, updated_at"
#define LIST(o)                                                                                    \
    "SELECT " COLS " FROM products WHERE (CAST($1 AS BIGINT) IS NULL OR owner_id = $1) "           \
    "AND (CAST($2 AS BIGINT) IS NULL OR price_cents >= $2) "                                       \
    "AND (CAST($3 AS BIGINT) IS NULL OR price_cents <= $3) "                                       \
    "ORDER BY " o " LIMIT $4 OFFSET $5"
static const char *const list_sql[] = {
    LIST("created_at DESC, id DESC"), LIST("created_at, id"),  LIST("name, id"),
    LIST("name DESC, id DESC"),       LIST("price_cents, id"), LIST("price_cents DESC, id DESC"),
};

/*
 * The member `key` (a price) as whole cents; NULL when absent.  *bad is set
 * when it has more than two decimals (the schema has checked the range).
 */
static tern_db_val cents(json_t *obj, const char *key, int *bad)
{
    json_t *v = json_object_get(obj, key);
    double c;

    if (v == NULL || json_is_null(v))
        return tern_db_null();
    c = json_number_value(v) * 100.0;
    if (fabs(c - nearbyint(c)) > 1e-6 * (1.0 + fabs(c)))
        *bad = 1;
    return tern_db_int((int64_t)nearbyint(c));
}

static int bad_price(tern_req *req, const char *in, const char *field)
{
    tern_errors errs;

    tern_errors_init(&errs, tern_req_arena(req));
    errs.v = tern_arena_alloc(tern_req_arena(req), sizeof *errs.v);
    if (errs.v == NULL)
        return TERN_ENOMEM;
    errs.v[0] = (tern_field_error){ field, "multiple_of", "must have at most two decimals" };
    errs.n = errs.cap = 1;
    return tern_problem_errors(req, 422, "the request has invalid fields", in, &errs);
}

static int list(tern_req *req)
{
    json_t *q = tern_req_valid_query(req);
    tern_db_rows *rs;
    int bad_lo = 0, bad_hi = 0;
    tern_db_val lo = cents(q, "min_price", &bad_lo), hi = cents(q, "max_price", &bad_hi);
    int rc;

    if (bad_lo || bad_hi)
        return bad_price(req, "query", bad_lo ? "/min_price" : "/max_price");
    rc = tern_db_query(req, db, list_sql[choice(req, "sort", sorts)],
                       TERN_DB_ARGS(tern_db_jarg(q, "owner_id"), lo, hi, tern_db_jarg(q, "limit"),
                                    tern_db_jarg(q, "offset")),
                       &rs);

    return rc ? rc : send_page(req, rs);
}

static int get(tern_req *req)
{
    return tern_db_send_one(req, db, 200, "SELECT " COLS " FROM products WHERE id = $1",
                            TERN_DB_ARGS(id_arg(req)));
}

static int create(tern_req *req)
{
    json_t *b = tern_req_valid_body(req);
    tern_db_rows *rs;
    int bad = 0;
    tern_db_val price = cents(b, "price", &bad);
    int rc;

    if (bad)
        return bad_price(req, "body", "/price");
    rc = tern_db_one(req, db,
                     "INSERT INTO products (owner_id, name, sku, price_cents, description, "
                     "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING " COLS,
                     TERN_DB_ARGS(tern_db_jarg(b, "owner_id"), tern_db_jarg(b, "name"),
                                  tern_db_jarg(b, "sku"), price, tern_db_jarg(b, "description"),
                                  now_arg(req)),
                     &rs);
    return rc ? rc : send_created(req, "/products/", rs);
}

/*
 * PUT and PATCH.  In a JSON merge patch (RFC 7396) an absent member keeps
 * its value and null removes it; only description may be null (the schema
 * refuses null elsewhere), so "present" is passed for it separately.
 */
static int update(tern_req *req)
{
    json_t *b = tern_req_valid_body(req);
    int bad = 0, put = tern_str_eq(tern_req_method(req), TERN_STR("PUT"));
    tern_db_val price = cents(b, "price", &bad);

    if (bad)
        return bad_price(req, "body", "/price");
    return tern_db_send_one(
        req, db, 200,
        "UPDATE products SET owner_id = COALESCE($2, owner_id), "
        "name = COALESCE($3, name), sku = COALESCE($4, sku), "
        "price_cents = COALESCE($5, price_cents), "
        "description = CASE WHEN $6 THEN $7 ELSE description END, updated_at = $8 "
        "WHERE id = $1 RETURNING " COLS,
        TERN_DB_ARGS(id_arg(req), tern_db_jarg(b, "owner_id"), tern_db_jarg(b, "name"),
                     tern_db_jarg(b, "sku"), price,
                     tern_db_bool(put || json_object_get(b, "description") != NULL),
                     tern_db_jarg(b, "description"), now_arg(req)));
}

static int destroy(tern_req *req)
{
    int64_t n;
    int rc =
        tern_db_exec(req, db, "DELETE FROM products WHERE id = $1", TERN_DB_ARGS(id_arg(req)), &n);

    return send_deleted(req, rc, n);
}

static const tern_route_def routes[] = {
    { "GET", "", list, .query = &list_s },
    { "POST", "", create, .body = &product_s },
    { "GET", "/:id", get, .params = &id_params },
    { "PUT", "/:id", update, .params = &id_params, .body = &product_s },
    { "PATCH", "/:id", update, .params = &id_params, .body = &patch_s },
    { "DELETE", "/:id", destroy, .params = &id_params },
    { 0 },
};

void products_routes(tern_app *app)
{
    tern_group_routes(tern_group_new(app, "/products"), routes);
}
