/* pg.c - PostgreSQL driver (being written; this stub refuses every URL). */
#include "db/internal.h"

static int pg_open(tern_db *db, const char *url, db_err *e)
{
    (void)db;
    (void)url;
    return db_err_set(e, TERN_EINVAL, "PostgreSQL support is not built yet");
}
static void pg_close(tern_db *db)
{
    (void)db;
}

const db_driver db_driver_pg = { "postgres", pg_open, pg_close, NULL, NULL, NULL, NULL, NULL };
