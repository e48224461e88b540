/*
 * bind.c - copies the members of a validated JSON object into a C struct.
 *
 * Each tern_bind_field names a member, the C type of the destination and
 * its offset.  The mapping:
 *   TERN_STRING  -> tern_str pointing into the JSON string (valid while the
 *                   value lives; the bytes are NUL-terminated too)
 *   TERN_INTEGER -> int64_t (a json integer, or a real with an integral
 *                   value within +-2^53, as validation accepts)
 *   TERN_NUMBER  -> double
 *   TERN_BOOLEAN -> int (0 or 1)
 *   TERN_ANY, TERN_ARRAY, TERN_OBJECT -> json_t * (borrowed; ARRAY and
 *                   OBJECT check the JSON type first)
 * Absent and null members leave the destination untouched.  A member whose
 * JSON type does not fit its field leaves that field untouched, the other
 * fields are still bound, and the call returns TERN_EINVAL.
 */
#include <math.h>

#include "tern/valid.h"

static int bind_one(json_t *v, tern_type t, void *dst)
{
    switch (t) {
    case TERN_STRING: {
        tern_str s;

        if (!json_is_string(v))
            return TERN_EINVAL;
        s.p = json_string_value(v);
        s.n = json_string_length(v);
        memcpy(dst, &s, sizeof s);
        return 0;
    }
    case TERN_INTEGER: {
        int64_t i;

        if (json_is_integer(v)) {
            i = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) <= 9007199254740992.0) {
            i = (int64_t)json_real_value(v);
        } else {
            return TERN_EINVAL;
        }
        memcpy(dst, &i, sizeof i);
        return 0;
    }
    case TERN_NUMBER: {
        double d;

        if (!json_is_number(v))
            return TERN_EINVAL;
        d = json_number_value(v);
        memcpy(dst, &d, sizeof d);
        return 0;
    }
    case TERN_BOOLEAN: {
        int b;

        if (!json_is_boolean(v))
            return TERN_EINVAL;
        b = json_is_true(v);
        memcpy(dst, &b, sizeof b);
        return 0;
    }
    case TERN_ARRAY:
        if (!json_is_array(v))
            return TERN_EINVAL;
        break;
    case TERN_OBJECT:
        if (!json_is_object(v))
            return TERN_EINVAL;
        break;
    case TERN_ANY: break;
    default: /* TERN_NULL has no C representation */ return TERN_EINVAL;
    }
    memcpy(dst, &v, sizeof v);
    return 0;
}

int tern_bind(json_t *obj, const tern_bind_field *fields, void *out)
{
    int rc = 0;

    if (!json_is_object(obj))
        return TERN_EINVAL;
    for (const tern_bind_field *f = fields; f->name != NULL; f++) {
        json_t *v = json_object_get(obj, f->name);

        if (v == NULL || json_is_null(v))
            continue;
        if (bind_one(v, f->type, (char *)out + f->offset) != 0)
            rc = TERN_EINVAL;
    }
    return rc;
}
