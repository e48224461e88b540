/*
 * json_write.c - writing jansson values through tern's JSON writer.
 *
 * Lets a handler echo or embed a json_t (a validated body, say) into a
 * response built with tern_jw, with tern's escaping rules, without going
 * through json_dumps and its allocations.  Object members keep jansson's
 * insertion order.  Depth is bounded by the writer (TERN_JW_MAX_DEPTH).
 */
#include "tern/body.h"

int tern_jw_json(tern_jw *w, const json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (v == NULL)
        return tern_jw_null(w);
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        tern_jw_obj_begin(w);
        json_object_foreach((json_t *)v, key, item)
        {
            tern_jw_key(w, tern_str_c(key));
            if (tern_jw_json(w, item) != 0)
                break;
        }
        return tern_jw_obj_end(w);
    case JSON_ARRAY:
        tern_jw_arr_begin(w);
        json_array_foreach((json_t *)v, i, item)
        {
            if (tern_jw_json(w, item) != 0)
                break;
        }
        return tern_jw_arr_end(w);
    case JSON_STRING:
        return tern_jw_str(w, (tern_str){ json_string_value(v), json_string_length(v) });
    case JSON_INTEGER: return tern_jw_int(w, (int64_t)json_integer_value(v));
    case JSON_REAL: return tern_jw_double(w, json_real_value(v));
    case JSON_TRUE: return tern_jw_bool(w, 1);
    case JSON_FALSE: return tern_jw_bool(w, 0);
    case JSON_NULL: return tern_jw_null(w);
    }
    return tern_jw_null(w);
}
