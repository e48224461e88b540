/*
 * common.c - helpers the resources share: ids, paging, timestamps, replies.
 */
#include <stdio.h>
#include <time.h>

#include "quickstart.h"

static const tern_schema id_s = { .type = TERN_INTEGER,
                                  .minimum = TERN_MIN(1),
                                  .message = "must be a positive whole number" };
static const tern_prop id_props[] = { { "id", &id_s, 1 }, { 0 } };
const tern_schema id_params = { .type = TERN_OBJECT, .properties = id_props };

const tern_schema limit_s = {
    .type = TERN_INTEGER, .minimum = TERN_MIN(1), .maximum = TERN_MAX(100), .default_json = "20"
};
const tern_schema offset_s = { .type = TERN_INTEGER, .minimum = TERN_MIN(0), .default_json = "0" };

tern_db_val id_arg(tern_req *req)
{
    return tern_db_jarg(tern_req_valid_params(req), "id");
}

tern_db_val now_arg(tern_req *req)
{
    struct timespec ts;
    struct tm tm;
    char *s = tern_arena_alloc(tern_req_arena(req), 32);

    if (s == NULL)
        return tern_db_null(); /* NOT NULL column: the insert fails cleanly */
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(s, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(s + 19, 13, ".%03dZ", (int)(ts.tv_nsec / 1000000L) % 1000);
    return tern_db_cstr(s);
}

unsigned choice(tern_req *req, const char *key, const char *const *choices)
{
    const char *v = json_string_value(json_object_get(tern_req_valid_query(req), key));

    for (unsigned i = 0; v && choices[i]; i++)
        if (strcmp(v, choices[i]) == 0)
            return i;
    return 0; /* absent: the first choice is the default */
}

int send_page(tern_req *req, const tern_db_rows *rs)
{
    json_t *q = tern_req_valid_query(req);
    json_int_t limit = json_integer_value(json_object_get(q, "limit"));
    json_int_t offset = json_integer_value(json_object_get(q, "offset"));
    tern_jw *w = tern_json_begin(req, 200);

    tern_jw_obj_begin(w);
    tern_jw_key(w, TERN_STR("items"));
    tern_db_jw_rows(w, rs);
    tern_jw_key(w, TERN_STR("limit"));
    tern_jw_int(w, limit);
    tern_jw_key(w, TERN_STR("offset"));
    tern_jw_int(w, offset);
    tern_jw_key(w, TERN_STR("next_offset"));
    if (tern_db_nrows(rs) == (unsigned)limit)
        tern_jw_int(w, offset + limit);
    else
        tern_jw_null(w);
    tern_jw_obj_end(w);
    return tern_json_end(req);
}

int send_created(tern_req *req, const char *prefix, const tern_db_rows *rs)
{
    char loc[64];

    snprintf(loc, sizeof loc, "%s%lld", prefix, (long long)tern_db_get_int(rs, 0, "id"));
    tern_header(req, "Location", loc);
    return tern_db_send_row(req, 201, rs);
}

int send_deleted(tern_req *req, int rc, int64_t affected)
{
    if (rc != 0)
        return rc;
    if (affected == 0)
        return tern_problem(req, 404, "the resource does not exist");
    return tern_send(req, 204, NULL, NULL, 0);
}
