/*
 * cookie.c - the Cookie request header (RFC 6265 section 4.2 / 5.4) and
 * Set-Cookie values (section 4.1).
 *
 * Parsing is lenient about layout and strict about content.  The header is
 * split on ';'; SP and HTAB around each pair, and around the '=' inside it,
 * are dropped (the RFC wants "; " exactly, browsers and proxies vary).  A
 * pair is kept only if its name is a token and its value is *cookie-octet,
 * optionally inside one pair of double quotes (which are removed).  Any
 * other pair is skipped, not fatal: a browser sends every cookie of the
 * site, including those other apps on the same domain set with bytes this
 * grammar does not allow.  Values are not percent-decoded.
 *
 * Names and values are copied, NUL-terminated, into one arena block, so
 * the result outlives the header buffer only as long as the arena does.
 *
 * Formatting validates every field before writing anything and never emits
 * a byte outside its grammar, so nothing taken from the caller can end the
 * header line (CR, LF) or add an attribute (';').  Browsers silently drop a
 * cookie over their size limits or that breaks a name prefix rule; those
 * cases are errors here so they show up in the app instead.
 */
#include <string.h>

#include "tern/body.h"

/* RFC 6265bis: browsers drop a cookie whose name + value exceed this... */
#define COOKIE_NAME_VALUE_MAX 4096
/* ...or ignore an attribute whose value exceeds this. */
#define COOKIE_ATTR_MAX 1024
/* RFC 1035: the longest domain name. */
#define DOMAIN_MAX 253

/* tchar (RFC 9110 5.6.2). */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* cookie-octet (RFC 6265 4.1.1): US-ASCII except CTLs, SP, DQUOTE, ',', ';', '\'. */
static int is_cookie_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static int is_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 0;
    return 1;
}

static int is_cookie_value(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_cookie_octet((unsigned char)p[i]))
            return 0;
    return 1;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* [p, e) with SP and HTAB removed from both ends. */
static tern_str trim(const char *p, const char *e)
{
    while (p < e && is_ws(*p))
        p++;
    while (e > p && is_ws(e[-1]))
        e--;
    return (tern_str){ p, (size_t)(e - p) };
}

/*
 * Splits the pair [p, e) into name and value (quotes removed).  Returns 1
 * when the pair follows the grammar, 0 when it is to be skipped.
 */
static int split_pair(const char *p, const char *e, tern_str *name, tern_str *value)
{
    const char *eq = memchr(p, '=', (size_t)(e - p));

    if (eq == NULL)
        return 0;
    *name = trim(p, eq);
    *value = trim(eq + 1, e);
    if (!is_token(name->p, name->n))
        return 0;
    if (value->n >= 2 && value->p[0] == '"' && value->p[value->n - 1] == '"') {
        value->p++;
        value->n -= 2;
    }
    return is_cookie_value(value->p, value->n);
}

/* The end of the pair that starts at p: the next ';' or the end. */
static const char *pair_end(const char *p, const char *end)
{
    const char *semi = memchr(p, ';', (size_t)(end - p));

    return semi != NULL ? semi : end;
}

/* An arena copy of s, NUL-terminated, at buf + *o. */
static tern_str copy_to(char *buf, size_t *o, tern_str s)
{
    tern_str r = { buf + *o, s.n };

    if (s.n > 0)
        memcpy(buf + *o, s.p, s.n);
    *o += s.n;
    buf[(*o)++] = '\0';
    return r;
}

int tern_cookie_parse(tern_arena *a, tern_str header, unsigned max, tern_form *out)
{
    const char *p, *e, *end;
    tern_str name, value;
    size_t npairs = 0, bytes = 0, o = 0;
    tern_kv *fields;
    char *buf;
    unsigned i = 0;

    if (out == NULL)
        return TERN_EINVAL;
    out->fields = NULL;
    out->n = 0;
    if (header.n == 0)
        return 0;
    if (a == NULL || header.p == NULL)
        return TERN_EINVAL;
    end = header.p + header.n;

    /* Pass 1: count the valid pairs and the bytes their copies need. */
    for (p = header.p;; p = e + 1) {
        e = pair_end(p, end);
        if (split_pair(p, e, &name, &value)) {
            npairs++;
            if (npairs > max)
                return TERN_ETOOBIG;
            bytes += name.n + value.n + 2; /* <= the pair's length + 1 */
        }
        if (e == end)
            break;
    }
    if (npairs == 0)
        return 0;
    if (header.n > SIZE_MAX / 2 || npairs > SIZE_MAX / sizeof *fields)
        return TERN_ENOMEM;
    fields = tern_arena_alloc(a, npairs * sizeof *fields);
    buf = tern_arena_alloc(a, bytes);
    if (fields == NULL || buf == NULL)
        return TERN_ENOMEM;

    /* Pass 2: copy them. */
    for (p = header.p;; p = e + 1) {
        e = pair_end(p, end);
        if (split_pair(p, e, &name, &value)) {
            fields[i].key = copy_to(buf, &o, name);
            fields[i].value = copy_to(buf, &o, value);
            i++;
        }
        if (e == end)
            break;
    }
    out->fields = fields;
    out->n = i;
    return 0;
}

/* 1 when s starts with prefix, ignoring ASCII case. */
static int has_prefix_icase(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        unsigned char c = (unsigned char)*s, d = (unsigned char)*prefix;

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (d >= 'A' && d <= 'Z')
            d = (unsigned char)(d + 32);
        if (c != d)
            return 0; /* also stops at the end of s */
    }
    return 1;
}

/* path-av value (RFC 6265 4.1.1): CHAR except CTLs and ';'; must start with '/'. */
static int valid_path(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > COOKIE_ATTR_MAX || s[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c >= 0x7f || c == ';')
            return 0;
    }
    return 1;
}

/*
 * A host name: labels of letters, digits and '-' separated by single dots,
 * at most DOMAIN_MAX bytes.  One leading dot is allowed (RFC 6265 5.2.3
 * ignores it); a trailing dot or an empty label is not.
 */
static int valid_domain(const char *s)
{
    size_t n, label = 0;

    if (*s == '.')
        s++;
    n = strlen(s);
    if (n == 0 || n > DOMAIN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            label++;
        } else {
            return 0;
        }
    }
    return label > 0;
}

int tern_cookie_format(tern_buf *out, const tern_cookie *c)
{
    const char *value, *path, *same_site;
    size_t name_n, value_n, len0;
    int rc = 0;

    if (out == NULL || c == NULL || c->name == NULL)
        return TERN_EINVAL;

    /* Validate everything first: an error leaves out untouched. */
    value = c->value != NULL ? c->value : "";
    path = c->path != NULL ? c->path : "/";
    same_site = c->same_site != NULL ? c->same_site : "Lax";
    name_n = strlen(c->name);
    value_n = strlen(value);
    if (!is_token(c->name, name_n) || !is_cookie_value(value, value_n))
        return TERN_EINVAL;
    if (name_n + value_n > COOKIE_NAME_VALUE_MAX)
        return TERN_EINVAL;
    if (!valid_path(path))
        return TERN_EINVAL;
    if (c->domain != NULL && !valid_domain(c->domain))
        return TERN_EINVAL;
    if (strcmp(same_site, "None") == 0) {
        if (!c->secure)
            return TERN_EINVAL; /* browsers reject SameSite=None without Secure */
    } else if (strcmp(same_site, "Lax") != 0 && strcmp(same_site, "Strict") != 0) {
        return TERN_EINVAL;
    }
    /* Cookie name prefixes (RFC 6265bis 4.1.3), matched as browsers do. */
    if (has_prefix_icase(c->name, "__Secure-") && !c->secure)
        return TERN_EINVAL;
    if (has_prefix_icase(c->name, "__Host-") &&
        (!c->secure || c->domain != NULL || strcmp(path, "/") != 0))
        return TERN_EINVAL;

    len0 = out->len;
#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        if (rc == 0)                                                                               \
            rc = tern_buf_append(out, (s), (n));                                                   \
    } while (0)
#define PUTS(s) PUT((s), strlen(s))
    PUT(c->name, name_n);
    PUTS("=");
    PUT(value, value_n);
    PUTS("; Path=");
    PUTS(path);
    if (c->max_age != 0) {
        PUTS("; Max-Age=");
        if (rc == 0)
            rc = tern_buf_append_u64(out, c->max_age < 0 ? 0 : (uint64_t)c->max_age);
    }
    if (c->domain != NULL) {
        PUTS("; Domain=");
        PUTS(c->domain);
    }
    if (c->secure)
        PUTS("; Secure");
    if (!c->allow_script)
        PUTS("; HttpOnly");
    PUTS("; SameSite=");
    PUTS(same_site);
#undef PUTS
#undef PUT
    if (rc != 0)
        out->len = len0; /* all or nothing */
    return rc;
}
