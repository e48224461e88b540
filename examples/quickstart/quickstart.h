/*
 * quickstart.h - what the quickstart's files share: the database handle and
 * a few helpers every resource uses (paging, ids, timestamps, 201 replies).
 */
#ifndef QUICKSTART_H
#define QUICKSTART_H

#include <tern.h>

extern tern_db *db;

/* Path parameters {id}: a positive integer (else 422). */
extern const tern_schema id_params;
/* Query properties every list takes: limit (1-100, default 20), offset (>= 0, default 0). */
extern const tern_schema limit_s, offset_s;
#define PAGE_PROPS                                                                                 \
    { "limit", &limit_s, 0 },                                                                      \
    {                                                                                              \
        "offset", &offset_s, 0                                                                     \
    }

/* The id path parameter as a statement argument. */
tern_db_val id_arg(tern_req *req);
/* The current time, RFC 3339 in UTC with milliseconds, as a statement argument. */
tern_db_val now_arg(tern_req *req);
/* Index of the validated query member `key` in a NULL-terminated list of choices. */
unsigned choice(tern_req *req, const char *key, const char *const *choices);
/* 200 with {"items": [...], "limit", "offset", "next_offset" (null on the last page)}. */
int send_page(tern_req *req, const tern_db_rows *rs);
/* 201 with the row and `Location: <prefix><id>`. */
int send_created(tern_req *req, const char *prefix, const tern_db_rows *rs);
/* 204 when a DELETE removed a row, else 404. */
int send_deleted(tern_req *req, int rc, int64_t affected);

/* Route registration, one function per resource. */
void users_routes(tern_app *app);
void products_routes(tern_app *app);
/* The schema, per driver (the id column differs). */
extern const tern_db_migration migrations_sqlite[], migrations_postgres[];

#endif
