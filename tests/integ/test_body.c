/*
 * test_body.c - request bodies, query strings, cookies and uploads over real
 * sockets against tern-hello: every status the body layer answers (400, 413,
 * 415, 422) and the happy paths (201 with typed values, forms, cookies,
 * multipart with spooling), plus the Content-Type cases that let bodies skip
 * validation in other frameworks.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static th_server srv;

static void start(void)
{
    cr_assert_eq(th_start(&srv, TH_HELLO, "--workers", "1", "--max-body", "200000", NULL), 0);
}

TestSuite(body, .init = start, .fini = th_cleanup_all, .timeout = 60);

#define SERVER_TEST(name)                                                                   \
    static void name##_body(void);                                                          \
    Test(body, name)                                                                        \
    {                                                                                       \
        name##_body();                                                                      \
        cr_assert_eq(th_stop(&srv, TH_STOP_MS), 0, "tern-hello did not exit 0");           \
    }                                                                                       \
    static void name##_body(void)

/* POSTs body with the given Content-Type (NULL: none) and reads the answer. */
static void post(const char *path, const char *ctype, const char *body, size_t len, th_resp *r)
{
    th_conn c;
    char head[512];
    int n, rc;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    n = snprintf(head, sizeof head,
                 "POST %s HTTP/1.1\r\nHost: t\r\n%s%s%sContent-Length: %zu\r\n\r\n", path,
                 ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", len);
    cr_assert_eq(th_send(&c, head, (size_t)n), 0);
    if (len)
        cr_assert_eq(th_send(&c, body, len), 0);
    rc = th_read_final(&c, r, TH_TIMEOUT_MS, 0, NULL);
    th_close(&c);
    TH_ASSERT_OK(rc, path);
}

static void get(const char *raw, th_resp *r)
{
    th_conn c;

    cr_assert_eq(th_connect(&c, srv.port), 0);
    int rc = th_exchange(&c, raw, r);
    th_close(&c);
    TH_ASSERT_OK(rc, raw);
}

static void post_json(const char *ctype, const char *json, th_resp *r)
{
    post("/users", ctype, json, strlen(json), r);
}

static void assert_has(const th_resp *r, const char *needle)
{
    cr_assert(r->body && strstr(r->body, needle) != NULL, "'%s' not in body: %s", needle,
              r->body ? r->body : "(none)");
}

/* ------------------------------------------------------------------------ */
/* JSON bodies with a declared schema                                         */

SERVER_TEST(create_user_201_typed)
{
    th_resp r;

    post_json("application/json", "{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\"}", &r);
    TH_ASSERT_STATUS(&r, 201);
    cr_assert_str_eq(th_hdr(&r, "Content-Type"), "application/json");
    assert_has(&r, "\"name\":\"Ada Lovelace\"");
    assert_has(&r, "\"email\":\"ada@example.com\"");
    cr_assert(th_hdr(&r, "Location") && strncmp(th_hdr(&r, "Location"), "/users/", 7) == 0);
    th_resp_free(&r);

    get("GET /users HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_has(&r, "ada@example.com");
    th_resp_free(&r);
}

SERVER_TEST(invalid_fields_all_listed_422)
{
    th_resp r;

    post_json("application/json", "{\"name\":\"\",\"email\":\"not-an-email\",\"admin\":true}", &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"errors\":[");
    assert_has(&r, "\"field\":\"/name\",\"code\":\"min_length\"");
    assert_has(&r, "\"field\":\"/email\",\"code\":\"format\",\"message\":\"must be an email address\"");
    assert_has(&r, "\"field\":\"/admin\",\"code\":\"unknown\"");
    assert_has(&r, "\"in\":\"body\"");
    th_resp_free(&r);

    post_json("application/json", "{}", &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"field\":\"/name\",\"code\":\"required\"");
    assert_has(&r, "\"field\":\"/email\",\"code\":\"required\"");
    th_resp_free(&r);

    post_json("application/json", "[1,2]", &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"code\":\"type\"");
    th_resp_free(&r);
}

SERVER_TEST(name_length_counts_code_points)
{
    th_resp r;
    char body[1024];
    char name[600] = "";

    for (int i = 0; i < 100; i++)
        strcat(name, "\xc3\xa9"); /* 100 code points, 200 bytes */
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"email\":\"e@example.org\"}", name);
    post_json("application/json", body, &r);
    TH_ASSERT_STATUS(&r, 201);
    th_resp_free(&r);
    strcat(name, "\xc3\xa9");
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"email\":\"e@example.org\"}", name);
    post_json("application/json", body, &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"code\":\"max_length\"");
    th_resp_free(&r);
}

SERVER_TEST(malformed_json_400_names_line_and_column)
{
    th_resp r;

    post_json("application/json", "{\"name\": \"x\",\n \"email\" \"y\"}", &r);
    TH_ASSERT_PROBLEM(&r, 400);
    assert_has(&r, "line 2, column 10");
    assert_has(&r, "expected ':'");
    th_resp_free(&r);

    post_json("application/json", "{\"name\":\"a\",\"name\":\"b\",\"email\":\"e@x.io\"}", &r);
    TH_ASSERT_PROBLEM(&r, 400);
    assert_has(&r, "duplicate");
    th_resp_free(&r);

    post_json("application/json", "{\"name\":\"\xff\",\"email\":\"e@x.io\"}", &r);
    TH_ASSERT_PROBLEM(&r, 400);
    assert_has(&r, "UTF-8");
    th_resp_free(&r);

    post("/users", "application/json", "", 0, &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);
}

SERVER_TEST(nesting_over_64_is_400)
{
    th_resp r;
    char body[400];
    size_t n = 0;

    n += (size_t)sprintf(body, "{\"name\":");
    for (int i = 0; i < 64; i++)
        body[n++] = '[';
    for (int i = 0; i < 64; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n] = '\0';
    /* depth 65 (the object plus 64 arrays): rejected before parsing */
    post_json("application/json", body, &r);
    TH_ASSERT_PROBLEM(&r, 400);
    assert_has(&r, "nesting");
    th_resp_free(&r);
}

/*
 * Every Content-Type variant either reaches validation (an invalid body gets
 * 422, never 201) or is refused with 415: no spelling lets a body skip the
 * schema (Fastify CVE-2025-32442, CVE-2026-25223).
 */
SERVER_TEST(content_type_never_skips_validation)
{
    static const struct {
        const char *ctype;
        int status;
    } cases[] = {
        { "application/json", 422 },
        { "Application/JSON", 422 },                 /* case-insensitive */
        { "application/json; charset=utf-8", 422 },
        { "application/json;charset=UTF-8", 422 },
        { "application/json ; charset=utf-8", 422 },  /* OWS before ';' is in the grammar */
        { "application/json\t;\tcharset=utf-8", 422 },
        { "application/json\t", 422 },                /* trailing OWS is not part of the value */
        { "application/vnd.api+json", 422 },
        { "text/plain", 415 },
        { "application/jsonx", 415 },
        { "application/json, text/plain", 415 },
        { "application/json;", 415 },
        { "application/json; charset=latin1", 415 },
        { "application/json; charset=utf-8; charset=utf-8", 415 },
        { "text/plain; x=application/json", 415 },
        { "text/plain; x=\"application/json\"", 415 },
        { "application/ json", 415 },
        { "application /json", 415 },
        { "application", 415 },
        { "json", 415 },
        { NULL, 415 }, /* no Content-Type at all */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        th_resp r;
        post_json(cases[i].ctype, "{\"name\":\"x\",\"email\":\"not an email\"}", &r);
        cr_assert_eq(r.status, cases[i].status, "Content-Type '%s': got %d, expected %d",
                     cases[i].ctype ? cases[i].ctype : "(none)", r.status, cases[i].status);
        TH_ASSERT_PROBLEM(&r, cases[i].status);
        th_resp_free(&r);
    }
    th_resp r;
    post_json("Application/Vnd.Api+JSON; Charset=\"UTF-8\"",
              "{\"name\":\"x\",\"email\":\"x@example.com\"}", &r);
    TH_ASSERT_STATUS(&r, 201);
    th_resp_free(&r);
}

SERVER_TEST(body_over_route_limit_413)
{
    th_resp r;
    size_t n = 250000;
    char *big = malloc(n);

    memset(big, ' ', n);
    post_json("application/json", "{}", &r); /* warm */
    th_resp_free(&r);
    post("/users", "application/json", big, n, &r);
    TH_ASSERT_PROBLEM(&r, 413);
    th_resp_free(&r);
    free(big);
}

/* ------------------------------------------------------------------------ */
/* Query strings                                                              */

SERVER_TEST(query_is_coerced_and_validated)
{
    th_resp r;

    for (int i = 0; i < 3; i++) {
        post_json("application/json", "{\"name\":\"q\",\"email\":\"q@example.com\"}", &r);
        th_resp_free(&r);
    }
    get("GET /users?limit=2 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert(r.body[0] == '[' && strstr(r.body, "},{") != NULL &&
                  strstr(strstr(r.body, "},{") + 3, "},{") == NULL,
              "expected exactly 2 users: %s", r.body);
    th_resp_free(&r);

    get("GET /users?limit=0 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"in\":\"query\",\"field\":\"/limit\",\"code\":\"minimum\"");
    th_resp_free(&r);

    get("GET /users?limit=abc HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"field\":\"/limit\",\"code\":\"type\"");
    th_resp_free(&r);

    get("GET /users?limit=1&sort=x HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_PROBLEM(&r, 422);
    assert_has(&r, "\"field\":\"/sort\",\"code\":\"unknown\"");
    th_resp_free(&r);

    get("GET /users?limit=%zz HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Forms and cookies                                                          */

SERVER_TEST(urlencoded_form)
{
    th_resp r;
    const char *f = "a=1&b=x+y%21&a=2";

    post("/form", "application/x-www-form-urlencoded", f, strlen(f), &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_str_eq(r.body, "[[\"a\",\"1\"],[\"b\",\"x y!\"],[\"a\",\"2\"]]");
    th_resp_free(&r);

    post("/form", "application/x-www-form-urlencoded", "a=%G1", 5, &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);

    post("/form", "application/json", "{}", 2, &r);
    TH_ASSERT_PROBLEM(&r, 415);
    th_resp_free(&r);
}

SERVER_TEST(cookies_secure_defaults_and_parsing)
{
    th_resp r;
    const char *sc;

    get("GET /cookie HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_STATUS(&r, 200);
    sc = th_hdr(&r, "Set-Cookie");
    cr_assert(sc != NULL);
    cr_assert(strstr(sc, "session=abc123") == sc, "%s", sc);
    cr_assert(strstr(sc, "HttpOnly") && strstr(sc, "SameSite=Lax") && strstr(sc, "Path=/") &&
                  strstr(sc, "Max-Age=3600"),
              "Set-Cookie lacks a secure default: %s", sc);
    cr_assert(strstr(sc, "Secure") == NULL, "Secure is opt-in: %s", sc);
    th_resp_free(&r);

    get("GET /whoami HTTP/1.1\r\nHost: t\r\nCookie: theme=dark; session=abc123; bad cookie\r\n\r\n",
        &r);
    TH_ASSERT_STATUS(&r, 200);
    cr_assert_str_eq(r.body, "abc123");
    th_resp_free(&r);

    get("GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    TH_ASSERT_PROBLEM(&r, 401);
    th_resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Multipart                                                                  */

#define BOUNDARY "----ternTestBoundary7MA4YWxk"

static char *multipart(size_t file_size, unsigned extra_fields, size_t *len)
{
    size_t cap = file_size + 4096 + extra_fields * 128, n = 0;
    char *b = malloc(cap);

    n += (size_t)sprintf(b + n,
                         "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
                         "holiday\r\n");
    for (unsigned i = 0; i < extra_fields; i++)
        n += (size_t)sprintf(b + n,
                             "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"f%u\"\r\n\r\n"
                             "v\r\n",
                             i);
    n += (size_t)sprintf(b + n, "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"photo\"; "
                                "filename=\"../../etc/passwd\"\r\nContent-Type: image/jpeg\r\n\r\n");
    for (size_t i = 0; i < file_size; i++)
        b[n++] = (char)('a' + i % 26);
    n += (size_t)sprintf(b + n, "\r\n--" BOUNDARY "--\r\n");
    *len = n;
    return b;
}

static int count_fds(pid_t pid)
{
    char path[64];
    int n = 0;
    DIR *d;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

SERVER_TEST(multipart_spools_big_files_and_sanitizes_names)
{
    th_resp r;
    size_t len;
    char *b = multipart(100000, 0, &len);
    int before = count_fds(srv.pid);

    post("/upload", "multipart/form-data; boundary=" BOUNDARY, b, len, &r);
    TH_ASSERT_STATUS(&r, 200);
    assert_has(&r, "{\"name\":\"title\",\"filename\":null,\"size\":7,\"spooled\":false}");
    assert_has(&r, "{\"name\":\"photo\",\"filename\":\"passwd\",\"size\":100000,\"spooled\":true}");
    th_resp_free(&r);
    free(b);
    th_sleep_ms(50);
    cr_assert_eq(count_fds(srv.pid), before, "spooled files must be closed after the request");
}

SERVER_TEST(multipart_limits_and_errors)
{
    th_resp r;
    size_t len;
    char *b = multipart(10, 70, &len); /* 72 parts > the default 64 */

    post("/upload", "multipart/form-data; boundary=" BOUNDARY, b, len, &r);
    TH_ASSERT_PROBLEM(&r, 413);
    assert_has(&r, "parts");
    th_resp_free(&r);
    free(b);

    post("/upload", "multipart/form-data", "x", 1, &r); /* no boundary */
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);

    b = multipart(10, 0, &len);
    len -= strlen("--" BOUNDARY "--\r\n"); /* no closing delimiter */
    post("/upload", "multipart/form-data; boundary=" BOUNDARY, b, len, &r);
    TH_ASSERT_PROBLEM(&r, 400);
    th_resp_free(&r);
    free(b);
}

SERVER_TEST(aborted_upload_leaves_no_temp_file)
{
    th_conn c;
    size_t len;
    char head[256];
    char *b = multipart(150000, 0, &len);
    int before = count_fds(srv.pid);
    int n = snprintf(head, sizeof head,
                     "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; "
                     "boundary=" BOUNDARY "\r\nContent-Length: %zu\r\n\r\n",
                     len);

    cr_assert_eq(th_connect(&c, srv.port), 0);
    cr_assert_eq(th_send(&c, head, (size_t)n), 0);
    cr_assert_eq(th_send(&c, b, len / 2), 0); /* half the file: spooling has begun */
    th_sleep_ms(100);
    cr_assert_gt(count_fds(srv.pid), before, "the upload should hold a spool file by now");
    th_abort(&c); /* the client goes away mid-upload */
    free(b);
    for (int i = 0; i < 50 && count_fds(srv.pid) != before; i++)
        th_sleep_ms(20);
    cr_assert_eq(count_fds(srv.pid), before, "the spool file of an aborted upload must be gone");
}
