/*
 * dbapp.c - tern-dbapp, a small server used only by the db integration tests
 * (tests/integ/test_db_http.c).  It stores items through the db layer and
 * has routes that hold a pooled connection, sleep in the database, fail on
 * purpose and report readiness, so the tests can drive every status the db
 * layer answers over real HTTP.
 *
 *   tern-dbapp --db URL [--pool N] [--acquire-ms MS] [--stmt-timeout-ms MS]
 *              [--backoff-max-ms MS] [--max-waiters N] [tern_app_args flags]
 *
 * Routes (handlers just return the db code on failure; tern answers the
 * problem+json with its status):
 *
 *   POST /items              body = name, ?qty=N  -> 201 {"id","name","qty"}
 *                            duplicate 409, empty name (NULL) 422, qty<0 422
 *   GET  /items/:id          -> 200 {"id","name","qty"} or 404
 *   POST /items/:id/tags     body = tag -> 201; no such item 409 (foreign key)
 *   GET  /count              -> {"n":N}
 *   GET  /hold/:ms           a transaction holding its connection ms -> 200
 *   GET  /sleep/:ms          PostgreSQL pg_sleep (statement timeout -> 503)
 *   GET  /bad                a syntax error -> 500
 *   GET  /ready              -> 200 {"ready":true} or 503
 *   GET  /runs               -> {"n":N}: rows the migrations inserted
 *   GET  /stats              -> {"coalesced":N,"groups":N,"errors":N} (tern_db_stats)
 *   POST /discard            PostgreSQL DEALLOCATE ALL on whichever connection
 *                            runs it: its cached statements go stale -> 204
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern.h>

static tern_db *db;

/* Migrations per driver; 0003 inserts a row, so running it twice shows. */
static const tern_db_migration migs_sqlite[] = {
    { "0001_items", "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "name TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0))" },
    { "0002_tags", "CREATE TABLE tags (item_id INTEGER NOT NULL REFERENCES items(id), tag TEXT)" },
    { "0003_runs", "CREATE TABLE runs (note TEXT); INSERT INTO runs VALUES ('migrated')" },
    { 0 },
};
static const tern_db_migration migs_pg[] = {
    { "0001_items", "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, "
                    "name TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0))" },
    { "0002_tags", "CREATE TABLE tags (item_id BIGINT NOT NULL REFERENCES items(id), tag TEXT)" },
    { "0003_runs", "CREATE TABLE runs (note TEXT); SELECT pg_sleep(0.1); "
                   "INSERT INTO runs VALUES ('migrated')" },
    { 0 },
};

/* A non-negative integer from a slice, or -1. */
static long num(tern_str s)
{
    char buf[24], *end;
    long v;

    if (s.n == 0 || s.n >= sizeof buf)
        return -1;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    v = strtol(buf, &end, 10);
    return *end == '\0' && buf[0] != '-' && buf[0] != '+' ? v : -1;
}

static int send_row(tern_req *req, int status, tern_db_rows *rs)
{
    tern_jw *w = tern_json_begin(req, status);

    tern_db_jw_row(w, rs, 0);
    return tern_json_end(req);
}

static int send_count(tern_req *req, tern_db_rows *rs)
{
    tern_jw *w = tern_json_begin(req, 200);

    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("n"));
    tern_jw_int(w, tern_db_get_int(rs, 0, "n"));
    tern_jw_obj_end(w);
    return tern_json_end(req);
}

static int create_item(tern_req *req)
{
    tern_str body, q = tern_req_query(req);
    tern_db_rows *rs;
    long qty = 0;
    int rc = tern_req_body(req, &body);

    if (rc != 0)
        return rc;
    if (q.n > 4 && memcmp(q.p, "qty=", 4) == 0) {
        /* a leading '-' is allowed here so the CHECK constraint can refuse it */
        int neg = q.n > 5 && q.p[4] == '-';
        tern_str d = { q.p + 4 + neg, q.n - 4 - (size_t)neg };
        qty = num(d);
        if (qty < 0)
            return tern_problem(req, 400, "qty must be an integer");
        if (neg)
            qty = -qty;
    }
    rc = tern_db_one(req, db, "INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id, name, qty",
                     TERN_DB_ARGS(body.n ? tern_db_text(body) : tern_db_null(), tern_db_int(qty)), &rs);
    if (rc != 0)
        return rc;
    return send_row(req, 201, rs);
}

static int get_item(tern_req *req)
{
    long id = num(tern_param(req, "id"));
    tern_db_rows *rs;
    int rc;

    if (id < 0)
        return tern_problem(req, 400, "id must be an integer");
    rc = tern_db_one(req, db, "SELECT id, name, qty FROM items WHERE id = $1",
                     TERN_DB_ARGS(tern_db_int(id)), &rs);
    if (rc != 0)
        return rc;
    return send_row(req, 200, rs);
}

static int add_tag(tern_req *req)
{
    long id = num(tern_param(req, "id"));
    tern_str body;
    int rc = tern_req_body(req, &body);

    if (rc != 0)
        return rc;
    if (id < 0)
        return tern_problem(req, 400, "id must be an integer");
    rc = tern_db_exec(req, db, "INSERT INTO tags (item_id, tag) VALUES ($1, $2)",
                      TERN_DB_ARGS(tern_db_int(id), tern_db_text(body)), NULL);
    if (rc != 0)
        return rc;
    return tern_json_send(req, 201, TERN_STR("{\"ok\":true}"));
}

static int count_items(tern_req *req)
{
    tern_db_rows *rs;
    int rc = tern_db_one(req, db, "SELECT count(*) AS n FROM items", TERN_DB_NOARGS, &rs);

    return rc ? rc : send_count(req, rs);
}

static int count_runs(tern_req *req)
{
    tern_db_rows *rs;
    int rc = tern_db_one(req, db, "SELECT count(*) AS n FROM runs", TERN_DB_NOARGS, &rs);

    return rc ? rc : send_count(req, rs);
}

static int hold_tx(tern_req *req, tern_db *tx, void *arg)
{
    long ms = *(long *)arg;
    int rc = tern_db_exec(req, tx, "SELECT count(*) FROM items", TERN_DB_NOARGS, NULL);

    if (rc == 0)
        rc = tern_sleep(ms);
    return rc;
}

static int hold(tern_req *req)
{
    long ms = num(tern_param(req, "ms"));
    int rc;

    if (ms < 0 || ms > 10000)
        return tern_problem(req, 400, "ms must be an integer from 0 to 10000");
    rc = tern_db_tx(req, db, hold_tx, &ms);
    if (rc != 0)
        return rc;
    return tern_json_send(req, 200, TERN_STR("{\"held\":true}"));
}

static int db_sleep(tern_req *req)
{
    long ms = num(tern_param(req, "ms"));
    int rc;

    if (ms < 0 || ms > 10000)
        return tern_problem(req, 400, "ms must be an integer from 0 to 10000");
    rc = tern_db_exec(req, db, "SELECT pg_sleep($1)", TERN_DB_ARGS(tern_db_double(ms / 1000.0)), NULL);
    if (rc != 0)
        return rc;
    return tern_json_send(req, 200, TERN_STR("{\"slept\":true}"));
}

static int bad(tern_req *req)
{
    return tern_db_exec(req, db, "SELEC name FROM items WHERE secret_column = $1",
                        TERN_DB_ARGS(tern_db_cstr("x")), NULL);
}

static int ready(tern_req *req)
{
    if (!tern_db_ready(db))
        return tern_problem(req, 503, "database not ready");
    return tern_json_send(req, 200, TERN_STR("{\"ready\":true}"));
}

static int discard(tern_req *req)
{
    int rc = tern_db_exec(req, db, "DEALLOCATE ALL", TERN_DB_NOARGS, NULL);

    return rc ? rc : tern_send(req, 204, NULL, NULL, 0);
}

static int stats(tern_req *req)
{
    tern_db_stats st;
    tern_jw *w = tern_json_begin(req, 200);

    tern_db_stats_get(db, &st);
    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("coalesced"));
    tern_jw_int(w, (int64_t)st.coalesced);
    tern_jw_key(w, TERN_STR("groups"));
    tern_jw_int(w, (int64_t)st.groups);
    tern_jw_key(w, TERN_STR("errors"));
    tern_jw_int(w, (int64_t)st.errors);
    tern_jw_obj_end(w);
    return tern_json_end(req);
}

int main(int argc, char **argv)
{
    tern_db_config dbc;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    const char *url = getenv("DATABASE_URL");
    int nrest = 0, rc;
    tern_app *app;

    tern_db_config_init(&dbc);
    dbc.max_conns = 2;
    dbc.acquire_timeout_ms = 300;
    if (rest == NULL)
        return 1;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && strcmp(a, "--db") == 0)
            url = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--pool") == 0)
            dbc.max_conns = (unsigned)atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--acquire-ms") == 0)
            dbc.acquire_timeout_ms = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--stmt-timeout-ms") == 0)
            dbc.statement_timeout_ms = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--backoff-max-ms") == 0)
            dbc.backoff_max_ms = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--max-waiters") == 0)
            dbc.max_waiters = (unsigned)atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--coalesce") == 0)
            dbc.coalesce_max = (unsigned)atoi(argv[++i]);
        else
            rest[nrest++] = argv[i];
    }
    if (url == NULL) {
        fprintf(stderr, "tern-dbapp: --db URL (or DATABASE_URL) is required\n");
        free(rest);
        return 2;
    }
    dbc.url = url;
    dbc.migrations = strncmp(url, "sqlite:", 7) == 0 ? migs_sqlite : migs_pg;
    rc = tern_db_open(&dbc, &db);
    if (rc != 0) {
        fprintf(stderr, "tern-dbapp: %s: %s\n", url, tern_strerror(rc));
        free(rest);
        return 1;
    }

    app = tern_app_new(NULL);
    if (app == NULL || tern_app_args(app, nrest, rest) != 0) {
        tern_app_free(app);
        tern_db_close(db);
        free(rest);
        return 2;
    }
    tern_use(app, tern_mw_request_id, NULL);
    tern_use(app, tern_mw_recover, NULL);
    tern_post(app, "/items", create_item);
    tern_get(app, "/items/:id", get_item);
    tern_post(app, "/items/:id/tags", add_tag);
    tern_get(app, "/count", count_items);
    tern_get(app, "/runs", count_runs);
    tern_get(app, "/hold/:ms", hold);
    tern_get(app, "/sleep/:ms", db_sleep);
    tern_get(app, "/bad", bad);
    tern_get(app, "/ready", ready);
    tern_get(app, "/stats", stats);
    tern_post(app, "/discard", discard);

    rc = tern_app_run(app);
    tern_app_free(app);
    tern_db_close(db);
    free(rest);
    return rc == 0 ? 0 : 1;
}
