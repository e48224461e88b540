/*
 * fuzz_media.c - libFuzzer target for the media type parser
 * (src/body/media.c).
 *
 * For each input (an exact-size heap copy, so AddressSanitizer sees any read
 * past the end), tern_media_type_parse, and when it succeeds:
 *   - every slice lies inside the input, tokens are non-empty and made of
 *     tchar only, nparams <= TERN_MEDIA_MAX_PARAMS, no two names are equal
 *     ignoring case, and tern_media_type_param finds each value by its name
 *     in any case;
 *   - the canonical form `type/subtype;name=value;...` (quoted values
 *     re-quoted as they were) parses to the same slices' contents;
 *   - tern_media_type_is agrees with a direct comparison for a few patterns.
 * Failures must leave nparams 0.  Any disagreement calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tern/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void check_token(tern_str t, const char *buf, size_t n)
{
    if (t.n == 0 || t.p < buf || t.p + t.n > buf + n)
        abort();
    for (size_t i = 0; i < t.n; i++)
        if (!is_tchar((unsigned char)t.p[i]))
            abort();
}

static void lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] + 32);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1), *canon, *name;
    tern_media_type mt, again;
    size_t len = 0;

    if (buf == NULL)
        abort();
    if (size)
        memcpy(buf, data, size);
    if (tern_media_type_parse((tern_str){ buf, size }, &mt) != 0) {
        if (mt.nparams != 0)
            abort();
        free(buf);
        return 0;
    }

    check_token(mt.type, buf, size);
    check_token(mt.subtype, buf, size);
    if (mt.nparams > TERN_MEDIA_MAX_PARAMS)
        abort();
    canon = malloc(size + 2 * TERN_MEDIA_MAX_PARAMS + 2);
    if (canon == NULL)
        abort();
    memcpy(canon, mt.type.p, mt.type.n);
    len = mt.type.n;
    canon[len++] = '/';
    memcpy(canon + len, mt.subtype.p, mt.subtype.n);
    len += mt.subtype.n;
    for (unsigned k = 0; k < mt.nparams; k++) {
        const tern_media_param *p = &mt.params[k];
        int quoted = p->value.p > buf && p->value.p[-1] == '"';
        tern_str found;

        check_token(p->name, buf, size);
        if (p->value.p < buf || p->value.p + p->value.n > buf + size)
            abort();
        if (!quoted)
            check_token(p->value, buf, size);
        for (unsigned j = 0; j < k; j++)
            if (tern_str_ieq(mt.params[j].name, p->name))
                abort();
        /* lookup by the name, lower-cased */
        name = malloc(p->name.n + 1);
        if (name == NULL)
            abort();
        memcpy(name, p->name.p, p->name.n);
        name[p->name.n] = '\0';
        lower(name, p->name.n);
        found = tern_media_type_param(&mt, name);
        if (found.p != p->value.p || found.n != p->value.n)
            abort();
        free(name);

        canon[len++] = ';';
        memcpy(canon + len, p->name.p, p->name.n);
        len += p->name.n;
        canon[len++] = '=';
        if (quoted)
            canon[len++] = '"';
        memcpy(canon + len, p->value.p, p->value.n);
        len += p->value.n;
        if (quoted)
            canon[len++] = '"';
    }
    if (len > size + 2 * TERN_MEDIA_MAX_PARAMS + 2)
        abort();

    if (tern_media_type_parse((tern_str){ canon, len }, &again) != 0 ||
        again.nparams != mt.nparams || !tern_str_eq(again.type, mt.type) ||
        !tern_str_eq(again.subtype, mt.subtype))
        abort();
    for (unsigned k = 0; k < mt.nparams; k++)
        if (!tern_str_eq(again.params[k].name, mt.params[k].name) ||
            !tern_str_eq(again.params[k].value, mt.params[k].value))
            abort();

    /* matching */
    if (tern_media_type_is(&mt, "application/json") !=
        (tern_str_ieq(mt.type, TERN_STR("application")) &&
         tern_str_ieq(mt.subtype, TERN_STR("json"))))
        abort();
    if (tern_media_type_is(&mt, "application/*+json")) {
        if (!tern_str_ieq(mt.type, TERN_STR("application")) || mt.subtype.n < 6 ||
            !tern_str_ieq((tern_str){ mt.subtype.p + mt.subtype.n - 5, 5 }, TERN_STR("+json")))
            abort();
    }
    if (!tern_media_type_is(&mt, "*/*"))
        abort();
    free(canon);
    free(buf);
    return 0;
}
