/* pgadmin.c - see pgadmin.h. */
#include "pgadmin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

const char *pg_admin_url(void)
{
    const char *u = getenv("TERN_TEST_PG_URL");

    cr_assert(u != NULL && u[0] != '\0',
              "TERN_TEST_PG_URL is not set: the PostgreSQL tests need the server that "
              "scripts/run-tests.sh starts (by hand: eval \"$(sh scripts/pg-test.sh start "
              ">/dev/null && sh scripts/pg-test.sh env)\")");
    return u;
}

void pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(pg_admin_url());
    PGresult *r;
    char msg[512];
    int ok;

    cr_assert(PQstatus(c) == CONNECTION_OK, "cannot reach PostgreSQL at %s: %s", pg_admin_url(),
              PQerrorMessage(c));
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    cr_assert(ok, "%s: %s", sql, msg);
}

void pg_url_for(const char *dbname, char *out, size_t cap)
{
    const char *u = pg_admin_url();
    const char *slash = strrchr(u, '/');

    cr_assert(slash != NULL && slash > strstr(u, "://") + 2, "unexpected URL %s", u);
    snprintf(out, cap, "%.*s/%s", (int)(slash - u), u, dbname);
}
