/*
 * tern-tfb - tern's TechEmpower Framework Benchmarks entry.
 *
 *   tern-tfb [--port N] [--host H] [--workers N]
 *   env DATABASE_URL   postgres://user:pass@host:port/db (the TFB database,
 *                      bench/pg-setup.sh); without it the database routes
 *                      answer 503
 *   env TFB_DB_CONNS   pool size (default: 8 per worker)
 *
 * Implements the six TFB test types as plain routes (see
 * /work/shared/specs/tfb.md):
 *   GET /plaintext  Hello, World!               (3.6, text/plain)
 *   GET /json       {"message":"Hello, World!"} (3.1, serialized per request)
 *   GET /db         one random World row        (3.2, JSON object)
 *   GET /queries?queries=N   N rows, one query each (3.3, JSON array)
 *   GET /fortunes   Fortune rows + 1, sorted, HTML-escaped (3.4, text/html)
 *   GET /updates?queries=N   N rows read one by one, new random numbers
 *                   persisted with one batched UPDATE (3.5, JSON array)
 * and one test of tern's own (bench/README.md):
 *   POST /validate  a JSON body checked against validate_s, echoed (200);
 *                   the framework answers 415/400/413/422 before the handler
 *
 * Every response carries `Server: tern`; the framework adds Date and
 * Content-Length.  No logging middleware: TFB forbids disk logging and the
 * access log would only measure stderr.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
                                   .minimum = TERN_MIN(0),
                                   .maximum = TERN_MAX(150) };
static const tern_schema quantity_s = { .type = TERN_INTEGER,
                                        .minimum = TERN_MIN(1),
                                        .maximum = TERN_MAX(10000) };
static const tern_schema tag_s = { .type = TERN_STRING, .min_length = 1, .max_length = 32 };
static const tern_schema tags_s = {
    .type = TERN_ARRAY, .items = &tag_s, .min_items = 1, .max_items = 10
};
static const tern_schema street_s = { .type = TERN_STRING, .min_length = 1, .max_length = 200 };
static const tern_schema city_s = { .type = TERN_STRING, .min_length = 1, .max_length = 100 };
static const tern_schema postal_code_s = { .type = TERN_STRING, .min_length = 2, .max_length = 16 };
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
/* Database tests (PostgreSQL, tables from bench/pg-setup.sh)                 */

/* The pool, opened in main() from DATABASE_URL; NULL without one. */
static tern_db *g_db;

#define WORLD_ROWS  10000
#define MAX_QUERIES 500

static const char SQL_WORLD[] = "SELECT id, randomnumber FROM world WHERE id = $1";
static const char SQL_FORTUNES[] = "SELECT id, message FROM fortune";
/* One batched UPDATE for all rows of a request (tfb.md 3.5), the ids sorted
 * so concurrent requests lock rows in the same order.  The two arrays are
 * sent as PostgreSQL array literals ("{1,2,3}"). */
static const char SQL_UPDATE[] =
    "UPDATE world SET randomnumber = v.r "
    "FROM (SELECT unnest($1::int[]) AS i, unnest($2::int[]) AS r) AS v "
    "WHERE world.id = v.i";

/* The database routes without DATABASE_URL: 503 problem+json. */
static int no_db(tern_req *req)
{
    return tern_problem(req, 503, NULL);
}

/* A per-thread xorshift64* generator: workers never share state, and no
 * lock or system call per number.  Seeded lazily from the clock and the
 * thread's own address. */
static _Thread_local uint64_t rng_state;

static uint32_t rng_next(void)
{
    uint64_t x = rng_state;

    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* splitmix64 of time ^ address: distinct, non-zero per thread */
        x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&rng_state;
        x += 0x9E3779B97F4A7C15ull;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        x ^= x >> 31;
        if (x == 0)
            x = 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Uniform in 1..10000 (multiply-shift: no division, bias < 3e-6). */
static int32_t random_number(void)
{
    return 1 + (int32_t)(((uint64_t)rng_next() * WORLD_ROWS) >> 32);
}

/* The `queries` parameter (tfb.md 3.3): missing, empty, not an integer or
 * < 1 gives 1; > 500 gives 500. */
static unsigned queries_param(tern_req *req)
{
    const tern_form *q;
    int64_t n;

    if (tern_req_query_form(req, &q) != 0 || tern_form_int(q, "queries", &n) != 0 || n < 1)
        return 1;
    return n > MAX_QUERIES ? MAX_QUERIES : (unsigned)n;
}

static int64_t cell_int(const tern_db_rows *rs, unsigned row, unsigned col)
{
    tern_db_val v = tern_db_cell(rs, row, col);

    return v.type == TERN_DB_INT ? v.u.i : 0;
}

/* One World row by id into *out (id, randomNumber).  A failure has its
 * status recorded on req: the handler just returns the code. */
static int world_get(tern_req *req, int32_t id, int32_t out[2])
{
    tern_db_rows *rs;
    int rc = tern_db_one(req, g_db, SQL_WORLD, TERN_DB_ARGS(tern_db_int(id)), &rs);

    if (rc != 0)
        return rc;
    out[0] = (int32_t)cell_int(rs, 0, 0);
    out[1] = (int32_t)cell_int(rs, 0, 1);
    return 0;
}

static void jw_world(tern_jw *w, const int32_t row[2])
{
    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("id"));
    tern_jw_int(w, row[0]);
    tern_jw_key(w, TERN_STR("randomNumber"));
    tern_jw_int(w, row[1]);
    tern_jw_obj_end(w);
}

static int send_worlds(tern_req *req, int32_t (*rows)[2], unsigned n)
{
    tern_jw *w = tern_json_begin(req, 200);
    if (!w)
        return TERN_ENOMEM;
    tern_jw_arr_begin(w);
    for (unsigned i = 0; i < n; i++)
        jw_world(w, rows[i]);
    tern_jw_arr_end(w);
    return tern_json_end(req);
}

/* 3.2 Single query: one random row as a JSON object. */
static int db_single(tern_req *req)
{
    int32_t row[2];
    int rc;

    if (!g_db)
        return no_db(req);
    rc = world_get(req, random_number(), row);
    if (rc != 0)
        return rc;
    tern_jw *w = tern_json_begin(req, 200);
    if (!w)
        return TERN_ENOMEM;
    jw_world(w, row);
    return tern_json_end(req);
}

/*
 * N random rows into rows[0..n), one SELECT per row, sent as one pipelined
 * batch (tern_db_query_batch: one round trip to PostgreSQL for all N).
 */
static int worlds_get(tern_req *req, unsigned n, int32_t (*rows)[2])
{
    tern_db_val args[MAX_QUERIES];
    tern_db_rows *rs[MAX_QUERIES];
    int rc;

    args[0] = tern_db_int(random_number()); /* n >= 1 (queries_param) */
    for (unsigned i = 1; i < n; i++)
        args[i] = tern_db_int(random_number());
    rc = tern_db_query_batch(req, g_db, SQL_WORLD, args, 1, n, rs);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        if (tern_db_nrows(rs[i]) != 1)
            return tern_problem(req, 500, "a World row is missing");
        rows[i][0] = (int32_t)cell_int(rs[i], 0, 0);
        rows[i][1] = (int32_t)cell_int(rs[i], 0, 1);
    }
    return 0;
}

/* 3.3 Multiple queries: N rows, one query per row, as a JSON array.  The
 * rows are collected on the coroutine stack (4 KiB at most) first, so a
 * failing query leaves no half-written response. */
static int db_queries(tern_req *req)
{
    int32_t rows[MAX_QUERIES][2];
    unsigned n;
    int rc;

    if (!g_db)
        return no_db(req);
    n = queries_param(req);
    rc = worlds_get(req, n, rows);
    return rc != 0 ? rc : send_worlds(req, rows, n);
}

/* Appends the decimal form of v (>= 0) at p; returns the end. */
static char *put_uint(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;

    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* A PostgreSQL int[] literal "{a,b,c}" of v[0..n) into buf (>= 11 n + 2). */
static tern_str int_array(char *buf, const int32_t *v, unsigned n)
{
    char *p = buf;

    *p++ = '{';
    for (unsigned i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p = put_uint(p, (uint32_t)v[i]);
    }
    *p++ = '}';
    return (tern_str){ buf, (size_t)(p - buf) };
}

/* Sorts idx[0..n) by rows[idx][0] (insertion sort: n is small and the
 * common n of 20 beats qsort's call overhead; 500 is still cheap). */
static void sort_by_id(uint16_t *idx, unsigned n, int32_t (*rows)[2])
{
    for (unsigned i = 1; i < n; i++) {
        uint16_t k = idx[i];
        unsigned j = i;
        while (j > 0 && rows[idx[j - 1]][0] > rows[k][0]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = k;
    }
}

/* 3.5 Updates: N rows, each read by its own query, each given its own new
 * random number, persisted with one batched UPDATE (sorted by id; an id
 * drawn twice is written once and reported with the value written). */
static int db_updates(tern_req *req)
{
    int32_t rows[MAX_QUERIES][2];
    uint16_t idx[MAX_QUERIES];
    int32_t ids[MAX_QUERIES], nums[MAX_QUERIES];
    char ids_lit[MAX_QUERIES * 11 + 2], nums_lit[MAX_QUERIES * 11 + 2];
    unsigned n, m = 0;
    int rc;

    if (!g_db)
        return no_db(req);
    n = queries_param(req);
    rc = worlds_get(req, n, rows);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        rows[i][1] = random_number();
        idx[i] = (uint16_t)i;
    }
    sort_by_id(idx, n, rows);
    for (unsigned i = 0; i < n; i++) {
        int32_t *row = rows[idx[i]];
        if (m > 0 && ids[m - 1] == row[0])
            row[1] = nums[m - 1]; /* a repeated id keeps the first value */
        else {
            ids[m] = row[0];
            nums[m++] = row[1];
        }
    }
    rc = tern_db_exec(req, g_db, SQL_UPDATE,
                      TERN_DB_ARGS(tern_db_text(int_array(ids_lit, ids, m)),
                                   tern_db_text(int_array(nums_lit, nums, m))),
                      NULL);
    if (rc != 0)
        return rc;
    return send_worlds(req, rows, n);
}

/* 3.4 Fortunes. */
typedef struct fortune {
    int32_t id;
    tern_str message;
} fortune;

static int fortune_cmp(const void *a, const void *b)
{
    tern_str x = ((const fortune *)a)->message, y = ((const fortune *)b)->message;
    size_t n = x.n < y.n ? x.n : y.n;
    int c = memcmp(x.p, y.p, n); /* bytewise = code point order in UTF-8 */

    return c != 0 ? c : (x.n > y.n) - (x.n < y.n);
}

/* The template: fixed fragments around each row; messages HTML-escaped. */
#define FORTUNES_HEAD                                                                              \
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"                       \
    "<tr><th>id</th><th>message</th></tr>"
#define FORTUNES_ROW1 "<tr><td>"
#define FORTUNES_ROW2 "</td><td>"
#define FORTUNES_ROW3 "</td></tr>"
#define FORTUNES_TAIL "</table></body></html>"
#define LIT_LEN(s)    (sizeof(s) - 1)

/* The escaped form of c, or NULL when c stands for itself. */
static const char *html_entity(unsigned char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    }
    return NULL;
}

static size_t html_escaped_len(tern_str s)
{
    size_t n = s.n;

    for (size_t i = 0; i < s.n; i++) {
        const char *e = html_entity((unsigned char)s.p[i]);
        if (e)
            n += strlen(e) - 1;
    }
    return n;
}

static char *put_html(char *p, tern_str s)
{
    for (size_t i = 0; i < s.n; i++) {
        const char *e = html_entity((unsigned char)s.p[i]);
        if (e) {
            size_t k = strlen(e);
            memcpy(p, e, k);
            p += k;
        } else
            *p++ = s.p[i];
    }
    return p;
}

#define PUT_LIT(p, s) (memcpy((p), (s), LIT_LEN(s)), (p) + LIT_LEN(s))

/* All Fortune rows (one query, no ORDER BY), plus one added per request,
 * sorted by message and rendered as HTML.  The list and the page live in
 * the request's arena, like the rows. */
static int db_fortunes(tern_req *req)
{
    tern_db_rows *rs;
    int rc;

    if (!g_db)
        return no_db(req);
    rc = tern_db_query(req, g_db, SQL_FORTUNES, TERN_DB_NOARGS, &rs);
    if (rc != 0)
        return rc;

    tern_arena *a = tern_req_arena(req);
    unsigned n = tern_db_nrows(rs) + 1;
    fortune *list = tern_arena_alloc(a, n * sizeof *list);
    if (!list)
        return TERN_ENOMEM;
    for (unsigned i = 0; i + 1 < n; i++) {
        list[i].id = (int32_t)cell_int(rs, i, 0);
        list[i].message = tern_db_cell(rs, i, 1).u.s;
    }
    list[n - 1].id = 0;
    list[n - 1].message = TERN_STR("Additional fortune added at request time.");
    qsort(list, n, sizeof *list, fortune_cmp);

    size_t len = LIT_LEN(FORTUNES_HEAD) + LIT_LEN(FORTUNES_TAIL);
    for (unsigned i = 0; i < n; i++)
        len += LIT_LEN(FORTUNES_ROW1) + 10 + LIT_LEN(FORTUNES_ROW2) +
               html_escaped_len(list[i].message) + LIT_LEN(FORTUNES_ROW3);
    char *page = tern_arena_alloc(a, len), *p = page;
    if (!page)
        return TERN_ENOMEM;
    p = PUT_LIT(p, FORTUNES_HEAD);
    for (unsigned i = 0; i < n; i++) {
        p = PUT_LIT(p, FORTUNES_ROW1);
        p = put_uint(p, (uint32_t)list[i].id);
        p = PUT_LIT(p, FORTUNES_ROW2);
        p = put_html(p, list[i].message);
        p = PUT_LIT(p, FORTUNES_ROW3);
    }
    p = PUT_LIT(p, FORTUNES_TAIL);
    return tern_send(req, 200, "text/html; charset=utf-8", page, (size_t)(p - page));
}

/* Opens the pool from DATABASE_URL (if set): TFB_DB_CONNS connections,
 * default 8 per worker, all kept open.  The pool is shared by the workers,
 * and a request waiting for a connection is handed one across threads (an
 * eventfd wake-up each time): with 64 clients, 2 per worker cost ~30 % more
 * CPU per /db response than 8 per worker (bench/README.md).  Returns 0 or a
 * TERN_E* code. */
static int open_db(const tern_config *cfg)
{
    const char *url = getenv("DATABASE_URL");
    const char *conns = getenv("TFB_DB_CONNS");
    long workers = cfg->workers ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
    tern_db_config dc;

    if (!url || !*url) {
        tern_log(TERN_LOG_INFO, "tern-tfb: no DATABASE_URL; /db /queries /fortunes /updates "
                                "answer 503");
        return 0;
    }
    tern_db_config_init(&dc);
    dc.url = url;
    dc.max_conns = (unsigned)(8 * (workers > 0 ? workers : 1));
    if (conns && atoi(conns) > 0)
        dc.max_conns = (unsigned)atoi(conns);
    dc.min_conns = dc.max_conns;
    int rc = tern_db_open(&dc, &g_db);
    if (rc != 0) {
        tern_log(TERN_LOG_ERROR, "tern-tfb: DATABASE_URL: %s", tern_strerror(rc));
        return rc;
    }
    if (!tern_db_ready(g_db))
        tern_log(TERN_LOG_WARN, "tern-tfb: the database does not answer yet; retrying");
    return 0;
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
    { "GET", "/db", db_single, NULL },
    { "GET", "/queries", db_queries, NULL },
    { "GET", "/fortunes", db_fortunes, NULL },
    { "GET", "/updates", db_updates, NULL },
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

    if (open_db(cfg) != 0) {
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
    if (g_db)
        tern_db_close(g_db);
    return rc == 0 ? 0 : 1;
}
