/*
 * test_media.c - media type parsing and matching (src/body/media.c).
 *
 * Table-driven: every row is a Content-Type value and whether it must parse.
 * The rejected rows include the body-type confusion classes behind Fastify's
 * Content-Type CVEs (a prefix match on "application/json", a list of types,
 * a type named inside a parameter value) and every grammar corner of RFC
 * 9110 8.3.1 that tern chooses to be strict about.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tern/body.h"

static int parse(const char *s, tern_media_type *mt)
{
    return tern_media_type_parse((tern_str){s, strlen(s)}, mt);
}

static int str_is(tern_str s, const char *want)
{
    return s.p != NULL && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* Values that must parse. */
static const char *const valid[] = {
    "application/json",
    "Application/JSON",
    "application/json;charset=utf-8",
    "application/json; charset=utf-8",
    "application/json ; charset=utf-8", /* OWS before ';' is in the grammar */
    "application/json\t;\tcharset=utf-8",
    "application/json  ;  charset=utf-8",
    "application/json;charset=\"utf-8\"",
    "application/json;charset=\"\"", /* an empty quoted-string is a value */
    "text/plain; x=\"application/json\"",
    "text/plain; x=\"application/json, a; b\"",
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "multipart/form-data; boundary=\"a b\\\"c\\\\\"",
    "application/vnd.api+json",
    "application/problem+json; charset=utf-8",
    "a/b;c=d;e=f;g=h;i=j;k=l;m=n;o=p;q=r", /* exactly TERN_MEDIA_MAX_PARAMS */
    "!#$%&'*+-.^_`|~09AZaz/!#$%&'*+-.^_`|~09AZaz",
    "a/b;c=\"\t tab and space\"",
    "a/b;c=\"\xc3\xa9\"",   /* obs-text inside a quoted-string */
    "a/b;c=\"\\\xc3\\\t\"", /* quoted-pair of obs-text and HTAB */
};

/* Values that must be rejected. */
static const char *const invalid[] = {
    "",
    "application",
    "application/",
    "/json",
    "/",
    "application/json;", /* empty parameter */
    "application/json; ",
    "application/json ;",
    "application/json;;charset=utf-8",
    "application/json; ;charset=utf-8",
    "application/json, text/plain", /* a list is not a media type */
    "application/json,text/plain",
    "application/json text/plain",
    " application/json", /* leading whitespace */
    "application/json ", /* trailing whitespace */
    "application/json\t",
    "\tapplication/json",
    "application /json", /* whitespace around '/' */
    "application/ json",
    "application\t/json",
    "application//json",
    "application/json/x",
    "appli cation/json",
    "appli\tcation/json",
    "application/js\x01on",
    "application/json\x7f",
    "applic\xc3\xa9tion/json", /* non-ASCII in a token */
    "application/json\xc2\xa0",
    "application/json;charset",        /* no '=' */
    "application/json;charset=",       /* empty value */
    "application/json;charset =utf-8", /* whitespace around '=' */
    "application/json;charset= utf-8",
    "application/json;charset=utf-8 ",
    "application/json;charset=utf 8",
    "application/json;=utf-8",
    "application/json;charset=\"utf-8", /* unterminated quoted-string */
    "application/json;charset=\"utf-8\\\"",
    "application/json;charset=\"utf-8\"x",
    "application/json;charset=\"a\x01\"",
    "application/json;charset=\"a\x7f\"",
    "application/json;charset=\"a\\\x01\"", /* quoted-pair of a control */
    "application/json;charset=\"\\",
    "application/json;charset=utf-8;CHARSET=latin1", /* duplicate, any case */
    "application/json;a=1;b=2;a=3",
    "a/b;c=d;e=f;g=h;i=j;k=l;m=n;o=p;q=r;s=t", /* one more than the maximum */
    "application/json;charset=utf-8,text/plain",
    "application/json;charset=utf@8",
    "text/plain; x=application/json", /* '/' is not a tchar: must be quoted */
    "application/json(comment)",
    "application/json\r\n",
    "application/json\n",
};

Test(media, valid_values_parse)
{
    for (size_t k = 0; k < sizeof valid / sizeof valid[0]; k++) {
        tern_media_type mt;

        cr_assert_eq(parse(valid[k], &mt), 0, "should parse: [%s]", valid[k]);
    }
}

Test(media, invalid_values_are_rejected)
{
    for (size_t k = 0; k < sizeof invalid / sizeof invalid[0]; k++) {
        tern_media_type mt;

        cr_assert_eq(parse(invalid[k], &mt), TERN_EINVAL, "should be rejected: [%s]", invalid[k]);
    }
}

Test(media, embedded_nul_is_rejected)
{
    tern_media_type mt;

    cr_assert_eq(tern_media_type_parse(TERN_STR("application/json\0"), &mt), TERN_EINVAL);
    cr_assert_eq(tern_media_type_parse(TERN_STR("application/json;a=\"\0\""), &mt), TERN_EINVAL);
    cr_assert_eq(tern_media_type_parse(TERN_STR("appli\0cation/json"), &mt), TERN_EINVAL);
    cr_assert_eq(tern_media_type_parse(TERN_STR_NULL, &mt), TERN_EINVAL);
}

Test(media, slices_point_into_the_input)
{
    const char *s = "Application/Problem+JSON ; Charset=\"UTF-8\" ;\tq=0.5";
    tern_media_type mt;

    cr_assert_eq(parse(s, &mt), 0);
    cr_assert(str_is(mt.type, "Application"));
    cr_assert(str_is(mt.subtype, "Problem+JSON"));
    cr_assert_eq(mt.type.p, s);
    cr_assert_eq(mt.nparams, 2);
    cr_assert(str_is(mt.params[0].name, "Charset"));
    cr_assert(str_is(mt.params[0].value, "UTF-8"), "the value is the inside of the quotes");
    cr_assert(mt.params[0].value.p > s && mt.params[0].value.p < s + strlen(s));
    cr_assert(str_is(mt.params[1].name, "q"));
    cr_assert(str_is(mt.params[1].value, "0.5"));
}

Test(media, quoted_values_keep_their_escapes)
{
    tern_media_type mt;

    cr_assert_eq(parse("multipart/form-data; boundary=\"a\\\"b\\\\c\"", &mt), 0);
    cr_assert(str_is(tern_media_type_param(&mt, "boundary"), "a\\\"b\\\\c"));
    cr_assert_eq(parse("a/b; x=\"\"", &mt), 0);
    cr_assert_not_null(tern_media_type_param(&mt, "x").p, "present but empty");
    cr_assert_eq(tern_media_type_param(&mt, "x").n, 0);
}

Test(media, param_lookup_is_case_insensitive)
{
    tern_media_type mt;

    cr_assert_eq(parse("text/html; CharSet=utf-8; level=1", &mt), 0);
    cr_assert(str_is(tern_media_type_param(&mt, "charset"), "utf-8"));
    cr_assert(str_is(tern_media_type_param(&mt, "CHARSET"), "utf-8"));
    cr_assert(str_is(tern_media_type_param(&mt, "level"), "1"));
    cr_assert_null(tern_media_type_param(&mt, "char").p);
    cr_assert_null(tern_media_type_param(&mt, "charsets").p);
    cr_assert_null(tern_media_type_param(&mt, "").p);
    cr_assert_null(tern_media_type_param(NULL, "charset").p);
}

Test(media, failure_leaves_no_partial_result_in_use)
{
    tern_media_type mt;

    /* on failure out is all zero, so a caller that ignores rc matches nothing */
    cr_assert_eq(parse("a/b;c=d", &mt), 0);
    cr_assert_eq(parse("application/json;c=d;c=e", &mt), TERN_EINVAL);
    cr_assert_eq(mt.nparams, 0);
    cr_assert_null(mt.type.p);
    cr_assert_null(mt.subtype.p);
    cr_assert_not(tern_media_type_is(&mt, "application/json"));
    cr_assert_not(tern_media_type_is(&mt, "*/*"));
}

Test(media, is_matches_type_and_subtype_exactly)
{
    tern_media_type mt;

    cr_assert_eq(parse("Application/JSON; charset=utf-8", &mt), 0);
    cr_assert(tern_media_type_is(&mt, "application/json"));
    cr_assert(tern_media_type_is(&mt, "APPLICATION/json"));
    cr_assert_not(tern_media_type_is(&mt, "application/jso"));
    cr_assert_not(tern_media_type_is(&mt, "application/jsonx"));
    cr_assert_not(tern_media_type_is(&mt, "text/json"));
    cr_assert_not(tern_media_type_is(&mt, "application"));
    cr_assert_not(tern_media_type_is(&mt, "application/*+json"), "no '+' suffix here");
    cr_assert(tern_media_type_is(&mt, "application/*"));
    cr_assert(tern_media_type_is(&mt, "*/*"));
    cr_assert_not(tern_media_type_is(NULL, "application/json"));
    cr_assert_not(tern_media_type_is(&mt, NULL));

    cr_assert_eq(parse("application/jsonx", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/json"), "no prefix matching");
    cr_assert_eq(parse("application/json-patch", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/json"));
    cr_assert_eq(parse("text/plain; x=\"application/json\"", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/json"), "a parameter is not the type");
    cr_assert(tern_media_type_is(&mt, "text/plain"));
}

Test(media, is_matches_structured_suffix)
{
    tern_media_type mt;

    cr_assert_eq(parse("application/vnd.api+json", &mt), 0);
    cr_assert(tern_media_type_is(&mt, "application/*+json"));
    cr_assert_not(tern_media_type_is(&mt, "application/json"));
    cr_assert_eq(parse("Application/Problem+JSON", &mt), 0);
    cr_assert(tern_media_type_is(&mt, "application/*+json"));
    cr_assert_eq(parse("text/vnd.api+json", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/*+json"), "type must match");
    cr_assert_eq(parse("application/+json", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/*+json"), "nothing before the suffix");
    cr_assert_eq(parse("application/x+jsonx", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/*+json"));
    cr_assert_eq(parse("application/json+xml", &mt), 0);
    cr_assert_not(tern_media_type_is(&mt, "application/*+json"));
}

/* The Fastify Content-Type CVE classes, one by one, through parse + is. */
Test(media, fastify_cve_classes)
{
    struct {
        const char *value;
        int rc;      /* expected parse result */
        int is_json; /* expected tern_media_type_is(, "application/json") when parsed */
    } rows[] = {
        {"application/json ; charset=utf-8", 0, 1},
        {"application/json\t; charset=utf-8", 0, 1},
        {"Application/JSON", 0, 1},
        {"application/jsonx", 0, 0},
        {"application/json, text/plain", TERN_EINVAL, 0},
        {"application/json;", TERN_EINVAL, 0},
        {"text/plain; x=application/json", TERN_EINVAL, 0}, /* unquoted '/' */
        {"text/plain; x=\"application/json\"", 0, 0},
        {"text/plain;a=b;application/json=1", TERN_EINVAL, 0},
        {"text/plain;application/json", TERN_EINVAL, 0},
        {"application/json\t", TERN_EINVAL, 0},
        {"application/json;charset=utf-8;charset=latin1", TERN_EINVAL, 0},
    };

    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        tern_media_type mt;

        cr_assert_eq(parse(rows[k].value, &mt), rows[k].rc, "[%s]", rows[k].value);
        if (rows[k].rc == 0)
            cr_assert_eq(tern_media_type_is(&mt, "application/json"), rows[k].is_json, "[%s]",
                         rows[k].value);
    }
}

Test(media, every_byte_in_a_token)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";

    for (int c = 0; c < 256; c++) {
        char buf[16];
        tern_media_type mt;
        int is_tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c != 0 && strchr(tchar, c) != NULL);

        memcpy(buf, "a/b", 3);
        buf[3] = (char)c;
        cr_assert_eq(tern_media_type_parse((tern_str){buf, 4}, &mt), is_tchar ? 0 : TERN_EINVAL,
                     "byte 0x%02x", c);
    }
}
