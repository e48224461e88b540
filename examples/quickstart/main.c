/*
 * quickstart - a users and products API on SQL, the app `make run` starts.
 *
 *   users.c     /users: schemas and handlers
 *   products.c  /products: the same, with an owner and money
 *   schema.c    the tables, as migrations
 *   common.c    paging, ids, timestamps, replies
 *
 * Database: DATABASE_URL (postgres://user:pass@host/db), or else
 * quickstart.db (SQLite) beside the binary.  Port: --port N, or PORT, or 8080.
 * Access log, request ids and recover are on.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "quickstart.h"

tern_db *db;

/* Readiness for a load balancer: 200 when the database answers, else 503. */
static int health(tern_req *req)
{
    if (!tern_db_ready(db)) {
        tern_header(req, "Retry-After", "1");
        return tern_problem(req, 503, "the database is not reachable");
    }
    return tern_json_send(req, 200, TERN_STR("{\"status\":\"ok\"}"));
}

/* sqlite:<directory of this binary>/quickstart.db */
static char *default_url(void)
{
    static char url[PATH_MAX + 32];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n <= 0)
        return "sqlite:quickstart.db";
    exe[n] = '\0';
    snprintf(url, sizeof url, "sqlite:%s/quickstart.db", dirname(exe));
    return url;
}

int main(int argc, char **argv)
{
    const char *url = getenv("DATABASE_URL");
    tern_app *app = tern_app_new(NULL); /* --port N, PORT, or 8080 */
    tern_db_config dbc;
    int rc;

    if (app == NULL || tern_app_args(app, argc, argv) != 0)
        return 2;

    tern_db_config_init(&dbc);
    dbc.url = url && *url ? url : default_url();
    dbc.migrations = strncmp(dbc.url, "sqlite:", 7) == 0 ? migrations_sqlite : migrations_postgres;
    if (tern_db_open(&dbc, &db) != 0)
        return 2;
    /* Connect and migrate now; if the database is down, serve 503 until it is back. */
    if (!tern_db_ready(db))
        tern_log(TERN_LOG_WARN, "database not ready: answering 503 until it is");

    tern_use(app, tern_mw_request_id, NULL);
    tern_use(app, tern_mw_access_log, NULL);
    tern_use(app, tern_mw_recover, NULL);
    tern_get(app, "/health", health);
    users_routes(app);
    products_routes(app);

    rc = tern_app_listen(app);
    if (rc > 0) {
        int p = rc;

        printf("quickstart: serving on http://localhost:%d (%s database)\n"
               "  try: curl -i -X POST localhost:%d/users -H 'Content-Type: application/json' "
               "-d '{\"name\":\"Ada\",\"email\":\"ada@example.com\"}'\n"
               "       curl -i localhost:%d/users\n"
               "       curl -i localhost:%d/users/1\n",
               p, tern_db_driver(db), p, p, p);
        fflush(stdout);
        rc = tern_app_run(app);
    }
    tern_app_free(app);
    tern_db_close(db);
    return rc == 0 ? 0 : 1;
}
