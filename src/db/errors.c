/*
 * errors.c - database errors, classified once, mapped to HTTP once.
 *
 * A driver error goes through two steps, both in this file:
 *
 *   driver code (SQLSTATE or SQLite result code)  ->  TERN_E* code
 *   TERN_E* code                                  ->  HTTP status + safe detail
 *
 * The first step is what makes the two drivers interchangeable: a handler
 * tests TERN_ECONFLICT, never "23505" or SQLITE_CONSTRAINT_UNIQUE.  The
 * second is what a client sees; the driver's own message goes to the log
 * only, with the code, the statement and the request id.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "app/internal.h" /* tern__req_fail: the framework answers */
#include "db/internal.h"

static void set_msg(db_err *e, const char *msg)
{
    size_t n;

    if (msg == NULL)
        msg = "";
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--; /* libpq messages end in a newline */
    if (n >= sizeof e->msg)
        n = sizeof e->msg - 1;
    memcpy(e->msg, msg, n);
    e->msg[n] = '\0';
}

/*
 * PostgreSQL SQLSTATEs (Appendix A of its manual).  Class 22 (data
 * exception: a value out of range, too long, not a number) is the client's
 * input failing a column's type, so it is a 422 like a check violation.
 */
int db_err_sqlstate(db_err *e, const char *sqlstate, const char *msg)
{
    const char *s = sqlstate ? sqlstate : "";
    int code = TERN_EDB;

    memset(e->sqlstate, 0, sizeof e->sqlstate);
    strncpy(e->sqlstate, s, 5);
    e->sqlite_code = 0;
    set_msg(e, msg);
    if (strcmp(s, "23505") == 0 || strcmp(s, "23503") == 0 || strcmp(s, "23P01") == 0)
        code = TERN_ECONFLICT; /* unique, foreign key, exclusion */
    else if (strncmp(s, "23", 2) == 0 || strncmp(s, "22", 2) == 0)
        code = TERN_ECONSTRAINT; /* not null, check, data exception */
    else if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
        code = TERN_ERETRY; /* serialization failure, deadlock */
    else if (strcmp(s, "08P01") == 0)
        code = TERN_EINVAL; /* protocol violation: e.g. wrong parameter count */
    else if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strcmp(s, "57014") == 0 ||
             strncmp(s, "57P", 3) == 0)
        code = TERN_EUNAVAIL; /* connection, resources, statement timeout, shutdown */
    e->code = code;
    return code;
}

int db_err_sqlite(db_err *e, int rc, const char *msg)
{
    int code;

    memset(e->sqlstate, 0, sizeof e->sqlstate);
    e->sqlite_code = rc;
    set_msg(e, msg);
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_FOREIGNKEY: code = TERN_ECONFLICT; break;
    default:
        switch (rc & 0xff) {
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_TOOBIG: code = TERN_ECONSTRAINT; break;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_INTERRUPT:
        case SQLITE_CANTOPEN:
        case SQLITE_FULL:
        case SQLITE_IOERR: code = TERN_EUNAVAIL; break;
        case SQLITE_RANGE:
        case SQLITE_MISUSE: code = TERN_EINVAL; break;
        case SQLITE_NOMEM: code = TERN_ENOMEM; break;
        default: code = TERN_EDB;
        }
    }
    e->code = code;
    return code;
}

int db_err_set(db_err *e, int code, const char *fmt, ...)
{
    va_list ap;

    memset(e->sqlstate, 0, sizeof e->sqlstate);
    e->sqlite_code = 0;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

int tern_db_status(int err)
{
    switch (err) {
    case 0: return 0;
    case TERN_ENOTFOUND: return 404;
    case TERN_ECONFLICT:
    case TERN_ERETRY: return 409;
    case TERN_ECONSTRAINT: return 422;
    case TERN_EUNAVAIL:
    case TERN_ETIMEDOUT:
    case TERN_ENOMEM: return 503;
    default: return 500;
    }
}

/* What the client reads: plain, safe, and the same on both drivers. */
static const char *client_detail(const db_err *e)
{
    switch (e->code) {
    case TERN_ENOTFOUND: return "the resource does not exist";
    case TERN_ECONFLICT:
        if (strcmp(e->sqlstate, "23503") == 0 || e->sqlite_code == SQLITE_CONSTRAINT_FOREIGNKEY)
            return "the request refers to a resource that does not exist, or the resource is "
                   "still referenced";
        if (e->sqlstate[0] == '\0' && e->sqlite_code == 0)
            return "the request conflicted with concurrent changes; retry it";
        return "a resource with this unique value already exists";
    case TERN_ERETRY: return "the request conflicted with concurrent changes; retry it";
    case TERN_ECONSTRAINT: return "a value is missing or out of the allowed range";
    default: return NULL; /* 5xx: nothing to show */
    }
}

/*
 * Logs a failed statement and records the HTTP answer on the request.  The
 * statement is named by the start of its SQL: enough to find it in the code.
 */
void db_report(tern_req *req, const db_err *e, const char *sql, int retry_after_s, int log)
{
    int status = tern_db_status(e->code);
    const char *rid = req ? tern_req_id(req) : "-";
    int level = status >= 500 ? TERN_LOG_ERROR : TERN_LOG_INFO;
    char code[32] = "";

    if (e->code == TERN_ENOTFOUND || !log)
        level = TERN_LOG_DEBUG;
    if (e->sqlstate[0])
        snprintf(code, sizeof code, " sqlstate=%s", e->sqlstate);
    else if (e->sqlite_code)
        snprintf(code, sizeof code, " sqlite=%d", e->sqlite_code);
    tern_log(level, "db: request %s: %s%s stmt=\"%.60s\": %s", rid ? rid : "-",
             tern_strerror(e->code), code, sql ? sql : "", e->msg);
    if (req == NULL)
        return;
    if (status == 503)
        tern__req_retry_after(req, retry_after_s);
    tern__req_fail(req, status, client_detail(e));
}
