/*
 * media.c - strict parsing and matching of media types (Content-Type values,
 * RFC 9110 section 8.3.1).
 *
 * Accepted grammar, and nothing else:
 *
 *     media-type = type "/" subtype *( OWS ";" OWS parameter )
 *     parameter  = name "=" ( token / quoted-string )
 *     OWS        = *( SP / HTAB )
 *
 * type, subtype and name are tokens (RFC 9110 5.6.2 tchar).  A quoted-string
 * holds qdtext (HTAB, SP, VCHAR except '"' and '\', obs-text) and quoted-pairs
 * ('\' followed by HTAB, SP, VCHAR or obs-text); its value is returned as the
 * raw bytes between the quotes, escapes kept.  Deliberately stricter than the
 * RFC in two places, because lenient Content-Type parsing is how body-type
 * confusion bugs happen (e.g. Fastify's CVE-2022-41919 / CVE-2023-29020
 * classes):
 *   - an empty parameter (`a/b;` or `a/b; ;c=d`) is rejected, although
 *     RFC 9110 5.6.6 tolerates it;
 *   - no whitespace at all at the start or end of the value (the HTTP parser
 *     has already stripped the field's own OWS, so any left is suspicious).
 * Whitespace around '/' or '=' is rejected (the grammar has none there), as
 * are duplicate parameter names (case-insensitive) and more than
 * TERN_MEDIA_MAX_PARAMS parameters.
 *
 * Everything here is a pure function over a byte slice: no allocation, no
 * global state, and every output slice points into the input.  On failure
 * the output is all zero (no partial result a careless caller could use).
 */
#include <stdint.h>
#include <string.h>

#include "tern/body.h"

/* Character classes, one table lookup per byte. */
enum {
    M_TCHAR = 0x01,  /* token character (RFC 9110 5.6.2) */
    M_QDTEXT = 0x02, /* qdtext: HTAB, SP, 0x21, 0x23-0x5B, 0x5D-0x7E, obs-text */
    M_QPAIR = 0x04,  /* may follow '\' in a quoted-pair: HTAB, SP, VCHAR, obs-text */
};

/* clang-format off */
static const uint8_t mtab[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00-0f */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10-1f */
    0x06, 0x07, 0x04, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x07, 0x07, 0x06, 0x07, 0x07, 0x06, /* 20-2f */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 30-3f */
    0x06, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 40-4f */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x04, 0x06, 0x07, 0x07, /* 50-5f */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 60-6f */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x07, 0x06, 0x07, 0x00, /* 70-7f */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 80-8f */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 90-9f */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* a0-af */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* b0-bf */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* c0-cf */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* d0-df */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* e0-ef */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* f0-ff */
};
/* clang-format on */

#define MIS(c, cls) (mtab[(uint8_t)(c)] & (cls))

/* Length of the token at s[i..n) (0 if there is none). */
static size_t token_len(const char *s, size_t i, size_t n)
{
    size_t j = i;

    while (j < n && MIS(s[j], M_TCHAR))
        j++;
    return j - i;
}

static size_t skip_ows(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* The parse proper; out starts zeroed and is left partly filled on failure. */
static int parse_media_type(const char *s, size_t n, tern_media_type *out)
{
    size_t i = 0, len;

    if (s == NULL || n == 0)
        return TERN_EINVAL;

    len = token_len(s, i, n);
    if (len == 0 || len == n || s[len] != '/')
        return TERN_EINVAL;
    out->type = (tern_str){ s, len };
    i = len + 1;
    len = token_len(s, i, n);
    if (len == 0)
        return TERN_EINVAL;
    out->subtype = (tern_str){ s + i, len };
    i += len;

    while (i < n) {
        tern_media_param *p;
        size_t semi = skip_ows(s, i, n);

        /* OWS must lead to a ';': this also rejects trailing whitespace. */
        if (semi == n || s[semi] != ';')
            return TERN_EINVAL;
        i = skip_ows(s, semi + 1, n);
        len = token_len(s, i, n);
        if (len == 0 || i + len == n || s[i + len] != '=')
            return TERN_EINVAL; /* empty parameter, junk, or space before '=' */
        if (out->nparams == TERN_MEDIA_MAX_PARAMS)
            return TERN_EINVAL;
        p = &out->params[out->nparams];
        p->name = (tern_str){ s + i, len };
        i += len + 1;
        if (i < n && s[i] == '"') {
            size_t start = ++i;

            for (;;) {
                if (i == n)
                    return TERN_EINVAL; /* unterminated */
                if (s[i] == '"')
                    break;
                if (s[i] == '\\') {
                    if (i + 1 == n || !MIS(s[i + 1], M_QPAIR))
                        return TERN_EINVAL;
                    i += 2;
                } else if (MIS(s[i], M_QDTEXT)) {
                    i++;
                } else {
                    return TERN_EINVAL; /* a control character or DEL */
                }
            }
            p->value = (tern_str){ s + start, i - start };
            i++; /* the closing quote */
        } else {
            len = token_len(s, i, n);
            if (len == 0)
                return TERN_EINVAL; /* empty value or space after '=' */
            p->value = (tern_str){ s + i, len };
            i += len;
        }
        for (unsigned k = 0; k < out->nparams; k++)
            if (tern_str_ieq(out->params[k].name, p->name))
                return TERN_EINVAL;
        out->nparams++;
    }
    return 0;
}

int tern_media_type_parse(tern_str text, tern_media_type *out)
{
    int rc;

    memset(out, 0, sizeof *out);
    rc = parse_media_type(text.p, text.n, out);
    if (rc != 0)
        memset(out, 0, sizeof *out); /* no partial result on failure */
    return rc;
}

tern_str tern_media_type_param(const tern_media_type *mt, const char *name)
{
    tern_str want = tern_str_c(name);

    if (mt == NULL || name == NULL)
        return TERN_STR_NULL;
    for (unsigned k = 0; k < mt->nparams && k < TERN_MEDIA_MAX_PARAMS; k++)
        if (tern_str_ieq(mt->params[k].name, want))
            return mt->params[k].value;
    return TERN_STR_NULL;
}

/*
 * Patterns: "type/subtype" (exact, case-insensitive), "type/<star>" (any
 * subtype), "type/<star>+suffix" (a subtype of at least one character
 * before "+suffix"), and "<star>/<star>".  A pattern without '/' matches
 * nothing.
 */
int tern_media_type_is(const tern_media_type *mt, const char *pattern)
{
    const char *slash;
    tern_str ptype, psub;

    if (mt == NULL || pattern == NULL || mt->type.n == 0 || mt->subtype.n == 0)
        return 0;
    slash = strchr(pattern, '/');
    if (slash == NULL)
        return 0;
    ptype = (tern_str){ pattern, (size_t)(slash - pattern) };
    psub = tern_str_c(slash + 1);

    if (!(ptype.n == 1 && ptype.p[0] == '*') && !tern_str_ieq(mt->type, ptype))
        return 0;
    if (psub.n == 1 && psub.p[0] == '*')
        return 1;
    if (psub.n >= 2 && psub.p[0] == '*' && psub.p[1] == '+') {
        tern_str suffix = { psub.p + 1, psub.n - 1 }; /* "+json" */

        if (mt->subtype.n <= suffix.n)
            return 0;
        return tern_str_ieq((tern_str){ mt->subtype.p + mt->subtype.n - suffix.n, suffix.n },
                            suffix);
    }
    return tern_str_ieq(mt->subtype, psub);
}
