/*
 * pgadmin.h - the test PostgreSQL, seen from a test: its admin URL (from
 * TERN_TEST_PG_URL, which scripts/run-tests.sh exports), statements run on
 * it through libpq, and URLs of other databases on the same server.  Every
 * call fails the current Criterion test when the server is not there.
 */
#ifndef TERN_TEST_PGADMIN_H
#define TERN_TEST_PGADMIN_H

#include <stddef.h>

/* The admin URL (postgres://postgres@127.0.0.1:PORT/postgres). */
const char *pg_admin_url(void);
/* Runs one statement (CREATE/DROP DATABASE...) on the admin database. */
void pg_admin(const char *sql);
/* The admin URL with its database name replaced by dbname. */
void pg_url_for(const char *dbname, char *out, size_t cap);

#endif
