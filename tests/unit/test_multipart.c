/*
 * test_multipart.c - multipart/form-data (src/body/multipart.c): the push
 * parser, the collector (limits, spooling, cleanup) and the file name
 * sanitizer.
 *
 * Bodies come from tables with the expected parts written as a compact dump
 * ("name[filename](type)=data;" per part) or the expected status and detail.
 * Every row is also run with one-byte reads and with two reads split at
 * every position and must give the same result.  The parser is also driven
 * directly with exact-size heap copies of each piece so AddressSanitizer
 * sees any read past a piece, in two and three pieces at every position.
 * Every collector run checks that no descriptor is left open.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "body/multipart.h"

#define BODY(s) .body = (s), .len = sizeof(s) - 1
#define CRLF "\r\n"
#define D "--XyZ"
#define CD(name) "Content-Disposition: form-data; name=\"" name "\"" CRLF
#define FIELD(name, data) D CRLF CD(name) CRLF data CRLF
#define END D "--" CRLF

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

typedef struct reader {
    const char *p;
    size_t n, off;
    size_t piece;    /* > 0: reads of at most this many bytes */
    size_t split;    /* > 0: the first read stops here */
    int fail_at_end; /* return TERN_EIO instead of 0 */
} reader;

static long rd(void *ctx, char *buf, size_t cap)
{
    reader *r = ctx;
    size_t k = r->n - r->off;

    if (k == 0)
        return r->fail_at_end ? TERN_EIO : 0;
    if (r->piece != 0 && k > r->piece)
        k = r->piece;
    else if (r->split != 0 && r->off < r->split && k > r->split - r->off)
        k = r->split - r->off;
    if (k > cap)
        k = cap;
    memcpy(buf, r->p + r->off, k);
    r->off += k;
    return (long)k;
}

typedef struct result {
    int rc, status;
    char detail[256];
    char dump[16384];
    size_t dn;
} result;

static void put(result *res, const char *s, size_t n)
{
    for (size_t i = 0; i < n && res->dn + 5 < sizeof res->dump; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f && c != '\\')
            res->dump[res->dn++] = (char)c;
        else
            res->dn += (size_t)snprintf(res->dump + res->dn, 5, "\\x%02x", c);
    }
    res->dump[res->dn] = '\0';
}

static void puts_(result *res, const char *s)
{
    put(res, s, strlen(s));
}

/* Appends one part to the dump; checks a spooled part's file. */
static void dump_part(result *res, const tern_part *pt, int mark_spool)
{
    put(res, pt->name.p, pt->name.n);
    cr_assert_eq(pt->name.p[pt->name.n], '\0');
    if (pt->filename.p != NULL) {
        puts_(res, "[");
        put(res, pt->filename.p, pt->filename.n);
        puts_(res, "]");
    }
    if (!tern_str_eq(pt->content_type, TERN_STR("text/plain"))) {
        puts_(res, "(");
        put(res, pt->content_type.p, pt->content_type.n);
        puts_(res, ")");
    }
    puts_(res, "=");
    if (pt->fd >= 0) {
        struct stat st;
        char buf[4096];
        uint64_t got = 0;
        char path[64];

        cr_assert_eq(pt->data.n, 0);
        cr_assert_not_null(pt->data.p);
        snprintf(path, sizeof path, "/proc/self/fd/%d", pt->fd);
        cr_assert_str_eq(pt->path, path);
        cr_assert_eq(fstat(pt->fd, &st), 0);
        cr_assert_eq(st.st_nlink, 0, "the temporary file is unlinked");
        cr_assert_eq(st.st_mode & 0777, 0600);
        cr_assert_eq((uint64_t)st.st_size, pt->size);
        cr_assert_eq(lseek(pt->fd, 0, SEEK_CUR), 0, "handed over at offset 0");
        cr_assert(fcntl(pt->fd, F_GETFD) & FD_CLOEXEC);
        if (mark_spool)
            puts_(res, "@");
        for (;;) {
            ssize_t r = pread(pt->fd, buf, sizeof buf, (off_t)got);

            cr_assert_geq(r, 0);
            if (r == 0)
                break;
            put(res, buf, (size_t)r);
            got += (uint64_t)r;
        }
        cr_assert_eq(got, pt->size);
    } else {
        cr_assert_null(pt->path);
        cr_assert_eq(pt->data.n, pt->size);
        cr_assert_eq(pt->data.p[pt->data.n], '\0');
        put(res, pt->data.p, pt->data.n);
    }
    puts_(res, ";");
}

/* Runs the collector; the result is filled and every descriptor closed. */
static void run_reader(result *res, tern_str boundary, reader *r, const tern_multipart_limits *lim,
                       int mark_spool)
{
    tern_arena a;
    tern_part *parts = (tern_part *)1;
    unsigned n = 99;
    const char *detail = "x";
    int fds = count_fds();

    memset(res, 0, sizeof *res);
    tern_arena_init(&a, 0);
    res->rc = tern__multipart_collect(&a, boundary, lim, rd, r, &parts, &n, &res->status, &detail);
    if (res->rc == 0) {
        cr_assert_eq(res->status, 0);
        cr_assert_null(detail);
        cr_assert((n == 0) == (parts == NULL));
        for (unsigned i = 0; i < n; i++)
            dump_part(res, &parts[i], mark_spool);
        tern__multipart_release(parts, n);
        for (unsigned i = 0; i < n; i++)
            cr_assert_eq(parts[i].fd, -1);
    } else {
        cr_assert_null(parts);
        cr_assert_eq(n, 0);
        if (res->status != 0) {
            cr_assert_not_null(detail);
            snprintf(res->detail, sizeof res->detail, "%s", detail);
        }
    }
    cr_assert_eq(count_fds(), fds, "no descriptor left open");
    tern_arena_deinit(&a);
}

static void run(result *res, const char *boundary, const char *body, size_t len,
                const tern_multipart_limits *lim, size_t piece, size_t split)
{
    reader r = {body, len, 0, piece, split, 0};

    run_reader(res, tern_str_c(boundary), &r, lim, 0);
}

/* Runs body whole, in 1-byte reads and split at every position; all the
 * results must agree.  Returns the whole-body result in *res. */
static void run_all(result *res, const char *boundary, const char *body, size_t len,
                    const tern_multipart_limits *lim, const char *name)
{
    result *other = malloc(sizeof *other);

    cr_assert_not_null(other);
    run(res, boundary, body, len, lim, 0, 0);
    for (size_t k = 0; k <= len; k++) {
        if (k == 0)
            run(other, boundary, body, len, lim, 1, 0);
        else
            run(other, boundary, body, len, lim, 0, k);
        cr_assert_eq(other->rc, res->rc, "%s: split %zu: rc %d vs %d", name, k, other->rc,
                     res->rc);
        cr_assert_eq(other->status, res->status, "%s: split %zu", name, k);
        cr_assert_str_eq(other->detail, res->detail, "%s: split %zu", name, k);
        cr_assert_str_eq(other->dump, res->dump, "%s: split %zu", name, k);
    }
    free(other);
}

/* ------------------------------------------------------------------------ */
/* Valid bodies                                                               */

typedef struct vcase {
    const char *name;
    const char *boundary; /* NULL: "XyZ" */
    const char *body;
    size_t len;
    const char *dump;
} vcase;

static const vcase valid[] = {
    { "one field", NULL, BODY(FIELD("a", "hello") END), "a=hello;" },
    { "fields and a file", NULL,
      BODY(FIELD("a", "1") FIELD("b", "two")
           D CRLF "Content-Disposition: form-data; name=\"f\"; filename=\"x.txt\"" CRLF
           "Content-Type: application/octet-stream" CRLF CRLF "DATA" CRLF END),
      "a=1;b=two;f[x.txt](application/octet-stream)=DATA;" },
    { "empty parts", NULL, BODY(FIELD("e", "") FIELD("f", "") END), "e=;f=;" },
    { "empty file", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=\"f\"; filename=\"\"" CRLF
           "Content-Type: application/octet-stream" CRLF CRLF CRLF END),
      "f[file](application/octet-stream)=;" },
    { "binary data", NULL,
      BODY(FIELD("b", "\0\r\n--\r\n-\r\r\n\r\n--Xy\r\n--XyY\r--XyZ\n--XyZ\xff") END),
      "b=\\x00\\x0d\\x0a--\\x0d\\x0a-\\x0d\\x0d\\x0a\\x0d\\x0a--Xy\\x0d\\x0a--XyY\\x0d--XyZ\\x0a--"
      "XyZ\\xff;" },
    { "data ends in cr", NULL, BODY(FIELD("a", "abc\r") END), "a=abc\\x0d;" },
    { "data ends in a partial delimiter", NULL, BODY(FIELD("a", "x\r\n--Xy") END),
      "a=x\\x0d\\x0a--Xy;" },
    { "data is crlf", NULL, BODY(FIELD("a", "\r\n") END), "a=\\x0d\\x0a;" },
    { "preamble and epilogue", NULL,
      BODY("This is the preamble.\r\nx--XyZ\r\n--XyY\r\n" FIELD("a", "1") END
           "epilogue\n--XyZ\r\nContent-Disposition: junk\r\n\0"),
      "a=1;" },
    { "crlf before the first delimiter", NULL, BODY(CRLF FIELD("a", "1") END), "a=1;" },
    { "transport padding", NULL,
      BODY(D " \t " CRLF CD("a") CRLF "1" CRLF D "\t" CRLF CD("b") CRLF "2" CRLF D "--  \r\n"),
      "a=1;b=2;" },
    { "close delimiter ends the body", NULL, BODY(FIELD("a", "1") D "--"), "a=1;" },
    { "close delimiter then junk", NULL, BODY(FIELD("a", "1") D "--junk\n"), "a=1;" },
    { "zero parts", NULL, BODY(END), "" },
    { "repeated names", NULL, BODY(FIELD("a", "1") FIELD("a", "2") END), "a=1;a=2;" },
    { "empty name", NULL, BODY(FIELD("", "v") END), "=v;" },
    { "case-insensitive names", NULL,
      BODY(D CRLF "content-DISPOSITION: FORM-DATA; NAME=tok; FileName=\"x\"" CRLF
           "CONTENT-TYPE: Text/Plain" CRLF CRLF "v" CRLF END),
      "tok[x](Text/Plain)=v;" },
    { "ows around parameters", NULL,
      BODY(D CRLF "Content-Disposition:form-data ;name = \"a\"\t; filename= b.txt  " CRLF CRLF
           "v" CRLF END),
      "a[b.txt]=v;" },
    { "quoted-string escapes", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=\"a\\\"b\\\\c\\d\"" CRLF CRLF "v" CRLF
           END),
      "a\"b\\x5cc\\x5cd=v;" },
    { "windows path", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=\"f\"; filename=\"C:\\Users\\me\\r.pdf\""
           CRLF CRLF "v" CRLF END),
      "f[r.pdf]=v;" },
    { "filename star preferred", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename=\"EUR rates.txt\"; "
           "filename*=UTF-8''%e2%82%AC%20rates.txt" CRLF CRLF "v" CRLF END),
      "f[\\xe2\\x82\\xac rates.txt]=v;" },
    { "filename star before filename", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename*=utf-8'en'a%2Fb.txt; "
           "filename=c.txt" CRLF CRLF "v" CRLF END),
      "f[b.txt]=v;" },
    { "filename star only", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''na%C3%AFve.txt"
           CRLF CRLF "v" CRLF END),
      "f[na\\xc3\\xafve.txt]=v;" },
    { "filename star other charset", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename*=iso-8859-1''%e9t%e9.txt; "
           "filename=\"ete.txt\"" CRLF CRLF "v" CRLF END),
      "f[ete.txt]=v;" },
    { "filename star other charset only", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename*=iso-8859-1''%e9t%e9.txt"
           CRLF CRLF "v" CRLF END),
      "f[file]=v;" },
    { "filename star nul", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''a%00b" CRLF CRLF
           "v" CRLF END),
      "f[ab]=v;" },
    { "percent not decoded in filename", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename=\"%2e%2e%2fx\"" CRLF CRLF
           "v" CRLF END),
      "f[%2e%2e%2fx]=v;" },
    { "traversal filename", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=f; filename=\"../../etc/passwd\"" CRLF
           CRLF "v" CRLF END),
      "f[passwd]=v;" },
    { "content-type parameters", NULL,
      BODY(D CRLF CD("a") "Content-Type: text/plain; charset=utf-8" CRLF CRLF "v" CRLF END),
      "a(text/plain; charset=utf-8)=v;" },
    { "other headers ignored", NULL,
      BODY(D CRLF "X-Empty:" CRLF CD("a") "Content-Transfer-Encoding: binary" CRLF
           "X-Obs: \xe9t\xe9\t" CRLF CRLF "v" CRLF END),
      "a=v;" },
    { "other parameters ignored", NULL,
      BODY(D CRLF "Content-Disposition: form-data; name=a; size=3; x=\"y;z\"" CRLF CRLF "v"
           CRLF END),
      "a=v;" },
    { "boundary with specials", "a'()+_,-./:=? b",
      BODY("--a'()+_,-./:=? b" CRLF CD("a") CRLF "v" CRLF "--a'()+_,-./:=? b--"), "a=v;" },
    { "one-char boundary", "-",
      BODY("---" CRLF CD("a") CRLF "-\r\n-" CRLF "-----" CRLF), "a=-\\x0d\\x0a-;" },
    { "70-char boundary",
      "0123456789012345678901234567890123456789012345678901234567890123456789",
      BODY("--0123456789012345678901234567890123456789012345678901234567890123456789" CRLF CD("a")
           CRLF "v" CRLF
           "--0123456789012345678901234567890123456789012345678901234567890123456789--"),
      "a=v;" },
    { "leading space boundary", " b", BODY("-- b" CRLF CD("a") CRLF "v" CRLF "-- b--"),
      "a=v;" },
};

Test(multipart, valid_bodies)
{
    result *res = malloc(sizeof *res);

    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const vcase *c = &valid[i];

        run_all(res, c->boundary ? c->boundary : "XyZ", c->body, c->len, NULL, c->name);
        cr_assert_eq(res->rc, 0, "%s: rc %d (%s)", c->name, res->rc, res->detail);
        cr_assert_str_eq(res->dump, c->dump, "%s", c->name);
    }
    free(res);
}

/* ------------------------------------------------------------------------ */
/* Malformed bodies                                                           */

typedef struct icase {
    const char *name;
    const char *body;
    size_t len;
    const char *detail; /* expected detail (exact) */
} icase;

#define ENDED "the multipart body ended before its closing boundary"
#define AFTER "a delimiter line has characters after the boundary"
#define NOCRLF "a part's header line does not end in CRLF"
#define MALCD "a part's Content-Disposition is malformed"
#define NAMEVAL "a part header is not `name: value`"
#define REPEAT "a part's Content-Disposition repeats a parameter"
#define BADSTAR "a part's filename* is malformed"
#define BADCT "a part's Content-Type is not a media type"
#define PART(hdrs) D CRLF hdrs CRLF "v" CRLF END

static const icase invalid[] = {
    { "empty body", BODY(""), ENDED },
    { "preamble only", BODY("hello\r\n"), ENDED },
    { "boundary without dashes", BODY("XyZ\r\n" CD("a") CRLF "v" CRLF), ENDED },
    { "no close delimiter", BODY(FIELD("a", "1")), ENDED },
    { "ends in the data", BODY(D CRLF CD("a") CRLF "v"), ENDED },
    { "ends in the headers", BODY(D CRLF "Content-Disp"), ENDED },
    { "ends after a delimiter", BODY(FIELD("a", "1") D), ENDED },
    { "ends after one dash", BODY(FIELD("a", "1") D "-"), ENDED },
    { "ends in a header line cr", BODY(D CRLF CD("a") "\r"), ENDED },
    { "boundary continued", BODY(FIELD("a", "1\r\n--XyZZ") END), AFTER },
    { "boundary continued first", BODY("--XyZx" CRLF CD("a") CRLF "v" CRLF END), AFTER },
    { "one dash then junk", BODY(FIELD("a", "1") D "-x"), AFTER },
    { "padding then junk", BODY(D "  x" CRLF CD("a") CRLF "v" CRLF END), AFTER },
    { "delimiter line bare lf", BODY(D "\n" CD("a") CRLF "v" CRLF END),
      "a delimiter line does not end in CRLF" },
    { "delimiter line cr junk", BODY(D "\rx" CD("a") CRLF "v" CRLF END),
      "a delimiter line does not end in CRLF" },
    { "header bare lf", BODY(D CRLF "Content-Disposition: form-data; name=a\n" CRLF "v" CRLF END),
      NOCRLF },
    { "header cr junk", BODY(D CRLF "Content-Disposition: form-data; name=a\rx" CRLF CRLF "v"
                              CRLF END), NOCRLF },
    { "empty line bare lf", BODY(D CRLF CD("a") "\n" "v" CRLF END), NOCRLF },
    { "empty line cr junk", BODY(D CRLF CD("a") "\rv" CRLF END), NOCRLF },
    { "obs-fold", BODY(D CRLF "Content-Disposition: form-data;" CRLF " name=a" CRLF CRLF "v" CRLF
                       END), "a part header line starts with whitespace (obs-fold)" },
    { "no colon", BODY(PART("Content-Disposition form-data; name=a" CRLF)), NAMEVAL },
    { "space before colon", BODY(PART("Content-Disposition : form-data; name=a" CRLF)), NAMEVAL },
    { "empty header name", BODY(PART(": x" CRLF CD("a"))), NAMEVAL },
    { "control in value", BODY(PART(CD("a") "X: a\x01z" CRLF)),
      "a part header value contains a control character" },
    { "nul in value", BODY(PART("Content-Disposition: form-data; name=\"a\0\"" CRLF)),
      "a part header value contains a control character" },
    { "del in value", BODY(PART(CD("a") "X: \x7f" CRLF)),
      "a part header value contains a control character" },
    { "no content-disposition", BODY(PART("Content-Type: text/plain" CRLF)),
      "a part has no Content-Disposition header" },
    { "no headers", BODY(PART("")), "a part has no Content-Disposition header" },
    { "not form-data", BODY(PART("Content-Disposition: attachment; name=a" CRLF)),
      "a part's Content-Disposition is not form-data" },
    { "form-data prefix", BODY(PART("Content-Disposition: form-datax; name=a" CRLF)),
      "a part's Content-Disposition is not form-data" },
    { "no name", BODY(PART("Content-Disposition: form-data; filename=x" CRLF)),
      "a part's Content-Disposition has no name parameter" },
    { "two content-dispositions", BODY(PART(CD("a") CD("b"))),
      "a part has more than one Content-Disposition" },
    { "two content-types", BODY(PART(CD("a") "Content-Type: a/b" CRLF "content-type: a/b" CRLF)),
      "a part has more than one Content-Type" },
    { "two names", BODY(PART("Content-Disposition: form-data; name=a; name=b" CRLF)), REPEAT },
    { "two filenames", BODY(PART("Content-Disposition: form-data; name=a; filename=x; "
                                 "FILENAME=y" CRLF)), REPEAT },
    { "two filename stars", BODY(PART("Content-Disposition: form-data; name=a; "
                                      "filename*=UTF-8''x; filename*=UTF-8''y" CRLF)), REPEAT },
    { "empty disposition", BODY(PART("Content-Disposition:" CRLF)), MALCD },
    { "missing semicolon", BODY(PART("Content-Disposition: form-data name=a" CRLF)), MALCD },
    { "parameter without value", BODY(PART("Content-Disposition: form-data; name" CRLF)), MALCD },
    { "parameter empty value", BODY(PART("Content-Disposition: form-data; name=" CRLF)), MALCD },
    { "unterminated quote", BODY(PART("Content-Disposition: form-data; name=\"a" CRLF)), MALCD },
    { "escaped closing quote", BODY(PART("Content-Disposition: form-data; name=\"a\\\"" CRLF)),
      MALCD },
    { "trailing semicolon", BODY(PART("Content-Disposition: form-data; name=a;" CRLF)), MALCD },
    { "space in token", BODY(PART("Content-Disposition: form-data; name=a b" CRLF)), MALCD },
    { "empty parameter name", BODY(PART("Content-Disposition: form-data; =a" CRLF)), MALCD },
    { "junk after quoted", BODY(PART("Content-Disposition: form-data; name=\"a\"b" CRLF)), MALCD },
    { "star bad escape", BODY(PART("Content-Disposition: form-data; name=a; "
                                   "filename*=UTF-8''%zz" CRLF)), BADSTAR },
    { "star short escape", BODY(PART("Content-Disposition: form-data; name=a; "
                                     "filename*=UTF-8''a%4" CRLF)), BADSTAR },
    { "star one quote", BODY(PART("Content-Disposition: form-data; name=a; "
                                  "filename*=UTF-8'a" CRLF)), BADSTAR },
    { "star no quote", BODY(PART("Content-Disposition: form-data; name=a; "
                                 "filename*=abc" CRLF)), BADSTAR },
    { "star third quote", BODY(PART("Content-Disposition: form-data; name=a; "
                                    "filename*=UTF-8''a'b" CRLF)), BADSTAR },
    { "star quoted", BODY(PART("Content-Disposition: form-data; name=a; "
                               "filename*=\"UTF-8''a\"" CRLF)), BADSTAR },
    { "star in other charset checked", BODY(PART("Content-Disposition: form-data; name=a; "
                                                 "filename*=latin1''%g0" CRLF)), BADSTAR },
    { "content-type no slash", BODY(PART(CD("a") "Content-Type: text" CRLF)), BADCT },
    { "content-type no type", BODY(PART(CD("a") "Content-Type: /plain" CRLF)), BADCT },
    { "content-type no subtype", BODY(PART(CD("a") "Content-Type: text/" CRLF)), BADCT },
    { "content-type junk", BODY(PART(CD("a") "Content-Type: text/plain junk" CRLF)), BADCT },
    { "content-type empty", BODY(PART(CD("a") "Content-Type:" CRLF)), BADCT },
    { "second part bad", BODY(FIELD("a", "1") PART("X: y" CRLF)),
      "a part has no Content-Disposition header" },
};

Test(multipart, malformed_bodies)
{
    result *res = malloc(sizeof *res);

    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const icase *c = &invalid[i];

        run_all(res, "XyZ", c->body, c->len, NULL, c->name);
        cr_assert_eq(res->rc, TERN_EINVAL, "%s: rc %d", c->name, res->rc);
        cr_assert_eq(res->status, 400, "%s", c->name);
        cr_assert_str_eq(res->detail, c->detail, "%s", c->name);
    }
    free(res);
}

Test(multipart, bad_boundaries)
{
    static const char *const bad[] = {
        "", "a ", " ", "a\"b", "a@b", "a\rb", "a\nb", "a;b", "a\tb", "\xc3\xa9",
        "01234567890123456789012345678901234567890123456789012345678901234567890",
    };
    result res;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_parser p;
        char hdr[16];

        cr_assert_eq(mp_boundary_valid(tern_str_c(bad[i])), 0, "%s", bad[i]);
        cr_assert_eq(mp_parser_init(&p, tern_str_c(bad[i]), hdr, sizeof hdr, NULL, NULL),
                     TERN_EINVAL);
        run(&res, bad[i], "--x--", 5, NULL, 0, 0);
        cr_assert_eq(res.rc, TERN_EINVAL);
        cr_assert_eq(res.status, 415);
        cr_assert_str_eq(res.detail, "the multipart boundary is not valid");
    }
    cr_assert(mp_boundary_valid(TERN_STR("a")));
    cr_assert(mp_boundary_valid(TERN_STR("----WebKitFormBoundary7MA4YWxkTrZu0gW")));
    cr_assert(mp_boundary_valid(TERN_STR(" a b")));
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                     */

static void limits_small(tern_multipart_limits *lim)
{
    tern_multipart_limits_init(lim);
}

Test(multipart, limits_defaults)
{
    tern_multipart_limits lim;

    memset(&lim, 0xff, sizeof lim);
    tern_multipart_limits_init(&lim);
    cr_assert_eq(lim.max_parts, 64);
    cr_assert_eq(lim.max_field_size, 64 * 1024);
    cr_assert_eq(lim.max_file_size, 10 * 1024 * 1024);
    cr_assert_eq(lim.max_total, 0);
    cr_assert_eq(lim.max_header_bytes, 8 * 1024);
    cr_assert_eq(lim.spool_threshold, 64 * 1024);
    cr_assert_null(lim.tmp_dir);
}

/* Runs body under lim: must succeed with `dump`, or fail with 413/400 and detail. */
static void expect(const char *body, size_t len, const tern_multipart_limits *lim, int status,
                   const char *what)
{
    result *res = malloc(sizeof *res);

    run_all(res, "XyZ", body, len, lim, what);
    if (status == 0) {
        cr_assert_eq(res->rc, 0, "%s: rc %d %s", what, res->rc, res->detail);
    } else {
        cr_assert_eq(res->rc, status == 413 ? TERN_ETOOBIG : TERN_EINVAL, "%s: rc %d", what,
                     res->rc);
        cr_assert_eq(res->status, status, "%s", what);
    }
    free(res);
}

static void expect_detail(const char *body, size_t len, const tern_multipart_limits *lim,
                          int status, const char *detail)
{
    result res;

    expect(body, len, lim, status, detail);
    run(&res, "XyZ", body, len, lim, 0, 0);
    cr_assert_str_eq(res.detail, detail);
}

Test(multipart, limit_parts)
{
    static const char two[] = FIELD("a", "1") FIELD("b", "2") END;
    static const char three[] = FIELD("a", "1") FIELD("b", "2") FIELD("c", "3") END;
    tern_multipart_limits lim;

    limits_small(&lim);
    lim.max_parts = 2;
    expect(two, sizeof two - 1, &lim, 0, "2 parts");
    expect_detail(three, sizeof three - 1, &lim, 413, "more than 2 parts");
    lim.max_parts = 0;
    expect(END, sizeof END - 1, &lim, 0, "0 parts");
    expect_detail(two, sizeof two - 1, &lim, 413, "more than 0 parts");
}

Test(multipart, limit_field_size)
{
    static const char five[] = FIELD("a", "12345") END;
    static const char six[] = FIELD("a", "123456") END;
    static const char file6[] =
        D CRLF "Content-Disposition: form-data; name=f; filename=x" CRLF CRLF "123456" CRLF END;
    tern_multipart_limits lim;

    limits_small(&lim);
    lim.max_field_size = 5;
    expect(five, sizeof five - 1, &lim, 0, "field of 5");
    expect_detail(six, sizeof six - 1, &lim, 413, "a form field is larger than 5 bytes");
    expect(file6, sizeof file6 - 1, &lim, 0, "the field limit does not apply to files");
    lim.max_field_size = 0;
    expect(FIELD("a", "") END, sizeof(FIELD("a", "") END) - 1, &lim, 0, "empty field");
}

Test(multipart, limit_file_size)
{
    static const char five[] =
        D CRLF "Content-Disposition: form-data; name=f; filename=x" CRLF CRLF "12345" CRLF END;
    static const char six[] =
        D CRLF "Content-Disposition: form-data; name=f; filename=x" CRLF CRLF "123456" CRLF END;
    static const char field6[] = FIELD("a", "123456") END;
    tern_multipart_limits lim;

    limits_small(&lim);
    lim.max_file_size = 5;
    expect(five, sizeof five - 1, &lim, 0, "file of 5");
    expect_detail(six, sizeof six - 1, &lim, 413, "a file is larger than 5 bytes");
    expect(field6, sizeof field6 - 1, &lim, 0, "the file limit does not apply to fields");
    /* spooled: the limit is checked past the threshold too */
    lim.spool_threshold = 2;
    expect(five, sizeof five - 1, &lim, 0, "spooled file of 5");
    expect_detail(six, sizeof six - 1, &lim, 413, "a file is larger than 5 bytes");
}

Test(multipart, limit_total)
{
    static const char body[] = FIELD("a", "1") END "epilogue";
    tern_multipart_limits lim;
    char detail[128];

    limits_small(&lim);
    lim.max_total = sizeof body - 1;
    expect(body, sizeof body - 1, &lim, 0, "exactly max_total");
    lim.max_total = sizeof body - 2;
    snprintf(detail, sizeof detail, "the multipart body is larger than %zu bytes",
             sizeof body - 2);
    expect_detail(body, sizeof body - 1, &lim, 413, detail);
    /* a 400 inside the limit wins over the 413 */
    lim.max_total = 10;
    expect_detail("--XyZ!" CRLF "more bytes than ten", 25, &lim, 400, AFTER);
    lim.max_total = 5;
    expect_detail("--XyZ!" CRLF "more bytes than ten", 25, &lim, 413,
                  "the multipart body is larger than 5 bytes");
}

Test(multipart, limit_header_bytes)
{
    static const char body[] = D CRLF CD("a") "X-A: 1" CRLF CRLF "v" CRLF END;
    size_t hdr = sizeof(CD("a") "X-A: 1" CRLF) - 1;
    tern_multipart_limits lim;
    char detail[128];

    limits_small(&lim);
    lim.max_header_bytes = hdr;
    expect(body, sizeof body - 1, &lim, 0, "exactly max_header_bytes");
    lim.max_header_bytes = hdr - 1;
    snprintf(detail, sizeof detail, "a part's header section is larger than %zu bytes", hdr - 1);
    expect_detail(body, sizeof body - 1, &lim, 400, detail);
    lim.max_header_bytes = 0;
    expect_detail(body, sizeof body - 1, &lim, 400,
                  "a part's header section is larger than 0 bytes");
}

/* ------------------------------------------------------------------------ */
/* Spooling                                                                   */

#define FILEPART(name, fn, data)                                                                  \
    D CRLF "Content-Disposition: form-data; name=\"" name "\"; filename=\"" fn "\"" CRLF CRLF     \
           data CRLF

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_mp.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n == 0;
}

Test(multipart, spool_threshold)
{
    static const char body[] = FIELD("a", "0123456789") FILEPART("f", "x.bin", "0123456789")
        FILEPART("g", "y.bin", "0123") FILEPART("e", "e.bin", "") FILEPART("h", "z", "\r\n--XyY\r")
        END;
    tern_multipart_limits lim;
    result *res = malloc(sizeof *res);

    make_tmpdir();
    limits_small(&lim);
    lim.spool_threshold = 4;
    lim.tmp_dir = tmpdir;
    for (size_t piece = 0; piece <= 7; piece++) {
        reader r = {body, sizeof body - 1, 0, piece, 0, 0};

        run_reader(res, TERN_STR("XyZ"), &r, &lim, 1);
        cr_assert_eq(res->rc, 0, "%s", res->detail);
        /* fields never spool; a file of exactly the threshold stays in memory */
        cr_assert_str_eq(res->dump, "a=0123456789;f[x.bin]=@0123456789;g[y.bin]=0123;e[e.bin]=;"
                                    "h[z]=@\\x0d\\x0a--XyY\\x0d;",
                         "piece %zu", piece);
        cr_assert(dir_empty(tmpdir));
    }
    lim.spool_threshold = 0; /* every non-empty file */
    {
        reader r = {body, sizeof body - 1, 0, 0, 0, 0};

        run_reader(res, TERN_STR("XyZ"), &r, &lim, 1);
        cr_assert_str_eq(res->dump, "a=0123456789;f[x.bin]=@0123456789;g[y.bin]=@0123;e[e.bin]=;"
                                    "h[z]=@\\x0d\\x0a--XyY\\x0d;");
    }
    rmdir(tmpdir);
    free(res);
}

/* The descriptor, its /proc path, and where the file was made. */
Test(multipart, spool_file_access)
{
    static const char body[] = FILEPART("f", "x.bin", "hello, spooled world") END;
    tern_multipart_limits lim;
    tern_arena a;
    tern_part *parts;
    unsigned n;
    int status, fds = count_fds();
    const char *detail;
    reader r = {body, sizeof body - 1, 0, 3, 0, 0};
    char link[256], buf[64];
    ssize_t k;
    int fd2;

    make_tmpdir();
    limits_small(&lim);
    lim.spool_threshold = 1;
    setenv("TMPDIR", tmpdir, 1); /* tmp_dir NULL: $TMPDIR */
    tern_arena_init(&a, 0);
    cr_assert_eq(tern__multipart_collect(&a, TERN_STR("XyZ"), &lim, rd, &r, &parts, &n, &status,
                                         &detail), 0);
    cr_assert_eq(n, 1);
    cr_assert_geq(parts[0].fd, 0);
    cr_assert_eq(parts[0].size, 20);
    k = readlink(parts[0].path, link, sizeof link - 1);
    cr_assert_gt(k, 0);
    link[k] = '\0';
    cr_assert_eq(strncmp(link, tmpdir, strlen(tmpdir)), 0, "%s", link);
    cr_assert(strstr(link, "/tern-upload-") != NULL);
    cr_assert(strstr(link, "(deleted)") != NULL, "%s", link);
    /* the path opens the same (unlinked) file */
    fd2 = open(parts[0].path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd2, 0);
    k = read(fd2, buf, sizeof buf);
    cr_assert_eq(k, 20);
    cr_assert_eq(memcmp(buf, "hello, spooled world", 20), 0);
    close(fd2);
    k = read(parts[0].fd, buf, sizeof buf);
    cr_assert_eq(k, 20);
    tern__multipart_release(parts, n);
    tern__multipart_release(parts, n); /* idempotent */
    tern__multipart_release(NULL, 0);
    cr_assert_eq(count_fds(), fds);
    cr_assert(dir_empty(tmpdir));
    tern_arena_deinit(&a);
    unsetenv("TMPDIR");
    rmdir(tmpdir);
}

Test(multipart, spool_large_file)
{
    /* a file far larger than one read, with delimiter look-alikes inside */
    size_t n = 300000, len = 0;
    char *body = malloc(n + 512), *data = malloc(n);
    tern_multipart_limits lim;
    tern_arena a;
    tern_part *parts;
    unsigned np;
    int status;
    const char *detail;
    char *back = malloc(n);

    for (size_t i = 0; i < n; i++)
        data[i] = (i % 97 == 0) ? '\r' : (i % 89 == 0) ? '\n' : (char)('-' + i % 3);
    len += (size_t)sprintf(body, "%s", FILEPART("f", "big", ""));
    len -= 2; /* drop the CRLF: the data goes there */
    memcpy(body + len, data, n);
    len += n;
    memcpy(body + len, CRLF END, sizeof(CRLF END) - 1);
    len += sizeof(CRLF END) - 1;
    limits_small(&lim);
    make_tmpdir();
    lim.tmp_dir = tmpdir;
    for (size_t piece = 1; piece <= 100001; piece += 50000) {
        reader r = {body, len, 0, piece == 1 ? 0 : piece, 0, 0};

        tern_arena_init(&a, 0);
        cr_assert_eq(tern__multipart_collect(&a, TERN_STR("XyZ"), &lim, rd, &r, &parts, &np,
                                             &status, &detail), 0);
        cr_assert_eq(np, 1);
        cr_assert_eq(parts[0].size, n);
        cr_assert_eq(pread(parts[0].fd, back, n, 0), (ssize_t)n);
        cr_assert_eq(memcmp(back, data, n), 0);
        tern__multipart_release(parts, np);
        tern_arena_deinit(&a);
    }
    rmdir(tmpdir);
    free(body);
    free(data);
    free(back);
}

/* ------------------------------------------------------------------------ */
/* Cleanup on failure                                                         */

Test(multipart, cleanup_on_failure)
{
    static const char spooled[] = FILEPART("f", "a", "0123456789") FILEPART("g", "b", "abcdefghij");
    struct {
        const char *tail;
        int rc, status;
    } tails[] = {
        { FIELD("c", "123456789012345678901234567890") END, TERN_ETOOBIG, 413 }, /* field limit */
        { FILEPART("h", "c", "0123456789012345678901234567890") END, TERN_ETOOBIG, 413 },
        { FIELD("c", "1") FIELD("d", "1") FIELD("e", "1") END, TERN_ETOOBIG, 413 }, /* parts */
        { D CRLF "X: y" CRLF CRLF, TERN_EINVAL, 400 },                           /* malformed */
        { FIELD("c", "1"), TERN_EINVAL, 400 },                                   /* ended early */
        { "", TERN_EINVAL, 400 },                                                /* ended in g */
        { END, TERN_EIO, 0 },                                                    /* read error */
    };
    tern_multipart_limits lim;
    result *res = malloc(sizeof *res);

    make_tmpdir();
    limits_small(&lim);
    lim.spool_threshold = 3;
    lim.max_field_size = 20;
    lim.max_file_size = 20;
    lim.max_parts = 4;
    lim.tmp_dir = tmpdir;
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        char body[512];
        size_t len = (size_t)snprintf(body, sizeof body, "%s%s", spooled, tails[i].tail);

        for (size_t piece = 0; piece < 4; piece++) {
            reader r = {body, len, 0, piece, 0, tails[i].rc == TERN_EIO};

            run_reader(res, TERN_STR("XyZ"), &r, &lim, 0); /* checks the fd count */
            cr_assert_eq(res->rc, tails[i].rc, "tail %zu: %d", i, res->rc);
            cr_assert_eq(res->status, tails[i].status, "tail %zu", i);
        }
    }
    /* the first file crosses the threshold, then the same file passes its limit */
    {
        static const char body[] = FILEPART("f", "a", "0123456789012345678901234") END;
        reader r = {body, sizeof body - 1, 0, 4, 0, 0};

        run_reader(res, TERN_STR("XyZ"), &r, &lim, 0);
        cr_assert_eq(res->rc, TERN_ETOOBIG);
    }
    cr_assert(dir_empty(tmpdir));
    rmdir(tmpdir);
    free(res);
}

Test(multipart, tmp_dir_missing)
{
    static const char body[] = FIELD("a", "1") FILEPART("f", "a", "0123456789") END;
    tern_multipart_limits lim;
    result res;

    limits_small(&lim);
    lim.spool_threshold = 3;
    lim.tmp_dir = "/nonexistent/tern-test";
    run(&res, "XyZ", body, sizeof body - 1, &lim, 0, 0);
    cr_assert_eq(res.rc, TERN_ESYS);
    cr_assert_eq(res.status, 500);
    cr_assert_str_eq(res.detail, "an uploaded file could not be stored");
    /* fine while nothing needs spooling */
    lim.spool_threshold = 10;
    run(&res, "XyZ", body, sizeof body - 1, &lim, 0, 0);
    cr_assert_eq(res.rc, 0);
}

Test(multipart, read_error_passes_through)
{
    static const char body[] = FIELD("a", "1") END;
    result res;
    reader r = {body, sizeof body - 1, 0, 0, 0, 1};

    run_reader(&res, TERN_STR("XyZ"), &r, NULL, 0);
    cr_assert_eq(res.rc, TERN_EIO);
    cr_assert_eq(res.status, 0);
}

/* ------------------------------------------------------------------------ */
/* The parser directly                                                        */

typedef struct events {
    char s[4096];
    size_t n;
    int fail_data; /* on_data returns -413 */
} events;

static void ev_put(events *e, const char *s, size_t n)
{
    cr_assert_lt(e->n + n, sizeof e->s);
    memcpy(e->s + e->n, s, n);
    e->n += n;
    e->s[e->n] = '\0';
}

static int ev_begin(void *ctx, const mp_part_head *h)
{
    events *e = ctx;

    ev_put(e, "<", 1);
    ev_put(e, h->name.p, h->name.n);
    if (h->filename.p != NULL) {
        ev_put(e, "|", 1);
        ev_put(e, h->filename.p, h->filename.n);
    }
    if (h->content_type.p != NULL) {
        ev_put(e, "|", 1);
        ev_put(e, h->content_type.p, h->content_type.n);
    }
    ev_put(e, ">", 1);
    return 0;
}

static int ev_data(void *ctx, const char *p, size_t n)
{
    events *e = ctx;

    cr_assert_gt(n, 0);
    ev_put(e, p, n);
    return e->fail_data ? -413 : 0;
}

static int ev_end(void *ctx)
{
    ev_put(ctx, "</>", 3);
    return 0;
}

static const mp_callbacks ev_cb = {ev_begin, ev_data, ev_end};

/* Feeds body in pieces cut at a and b (exact-size heap copies); returns the
 * last mp_feed result and checks it is 0 before the end. */
static int feed3(events *e, const char *body, size_t len, size_t a, size_t b)
{
    mp_parser p;
    char hdr[256];
    size_t cut[4] = {0, a, b, len};
    int rc = 0;

    memset(e, 0, sizeof *e);
    cr_assert_eq(mp_parser_init(&p, TERN_STR("XyZ"), hdr, sizeof hdr, &ev_cb, e), 0);
    for (int k = 0; k < 3; k++) {
        size_t n = cut[k + 1] - cut[k];
        char *piece = malloc(n ? n : 1);

        memcpy(piece, body + cut[k], n);
        rc = mp_feed(&p, piece, n);
        free(piece);
        if (rc != 0)
            break;
    }
    return rc;
}

Test(multipart, parser_every_split)
{
    static const char body[] = "pre\r--XyZ\n--XyZ\r\n--XyZ " CRLF
        "Content-Disposition: form-data; name=\"a\"; filename=\"f\"" CRLF
        "Content-Type: a/b" CRLF CRLF "x\r\n--XyY\r\n\r\n--Xy" CRLF D CRLF CD("b") CRLF CRLF
        D "--" CRLF "epi\r\n--XyZ--";
    size_t len = sizeof body - 1;
    events one, e;

    cr_assert_eq(feed3(&one, body, len, len, len), 1);
    cr_assert_str_eq(one.s, "<a|f|a/b>x\r\n--XyY\r\n\r\n--Xy</><b></>");
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            int rc = feed3(&e, body, len, a, b);

            cr_assert_eq(rc, 1, "cuts %zu %zu", a, b);
            cr_assert_str_eq(e.s, one.s, "cuts %zu %zu", a, b);
        }
    }
}

Test(multipart, parser_results)
{
    static const char body[] = FIELD("a", "1") D "--" CRLF "epilogue";
    mp_parser p;
    char hdr[128];
    events e;
    size_t len = sizeof body - 1, close = len - sizeof("--" CRLF "epilogue") + 1;

    memset(&e, 0, sizeof e);
    cr_assert_eq(mp_parser_init(&p, TERN_STR("XyZ"), hdr, sizeof hdr, &ev_cb, &e), 0);
    cr_assert_eq(mp_feed(&p, body, 0), 0);
    cr_assert_eq(mp_feed(&p, body, close), 0);
    cr_assert_str_eq(e.s, "<a>1</>");
    cr_assert_eq(mp_feed(&p, body + close, 1), 0); /* "-" */
    cr_assert_eq(mp_feed(&p, body + close + 1, 1), 1);
    cr_assert_eq(mp_feed(&p, body + close + 2, len - close - 2), 1, "epilogue ignored");
    cr_assert_eq(mp_feed(&p, "garbage", 7), 1, "sticky");
    cr_assert_str_eq(e.s, "<a>1</>");

    /* errors are sticky, with a reason */
    memset(&e, 0, sizeof e);
    mp_parser_init(&p, TERN_STR("XyZ"), hdr, sizeof hdr, &ev_cb, &e);
    cr_assert_eq(mp_feed(&p, "--XyZ\n", 6), -400);
    cr_assert_str_eq(p.reason, "a delimiter line does not end in CRLF");
    cr_assert_eq(mp_feed(&p, FIELD("a", "1") END, sizeof(FIELD("a", "1") END) - 1), -400);

    /* a callback's value stops the parser and is returned as is */
    memset(&e, 0, sizeof e);
    e.fail_data = 1;
    mp_parser_init(&p, TERN_STR("XyZ"), hdr, sizeof hdr, &ev_cb, &e);
    cr_assert_eq(mp_feed(&p, body, len), -413);
    cr_assert_eq(mp_feed(&p, body, len), -413);
    cr_assert_null(p.reason);

    /* no callbacks at all */
    mp_parser_init(&p, TERN_STR("XyZ"), hdr, sizeof hdr, NULL, NULL);
    cr_assert_eq(mp_feed(&p, body, len), 1);
}

Test(multipart, parser_streams_without_buffering)
{
    /* data is handed out as it arrives, except a possible delimiter prefix */
    mp_parser p;
    char hdr[128];
    events e;
    static const char head[] = D CRLF CD("a") CRLF;

    memset(&e, 0, sizeof e);
    mp_parser_init(&p, TERN_STR("XyZ"), hdr, sizeof hdr, &ev_cb, &e);
    cr_assert_eq(mp_feed(&p, head, sizeof head - 1), 0);
    cr_assert_str_eq(e.s, "<a>");
    cr_assert_eq(mp_feed(&p, "abc", 3), 0);
    cr_assert_str_eq(e.s, "<a>abc");
    cr_assert_eq(mp_feed(&p, "def\r\n--X", 8), 0);
    cr_assert_str_eq(e.s, "<a>abcdef", "the delimiter prefix is held back");
    cr_assert_eq(mp_feed(&p, "x", 1), 0);
    cr_assert_str_eq(e.s, "<a>abcdef\r\n--Xx", "and released on a mismatch");
    cr_assert_eq(mp_feed(&p, "\r", 1), 0);
    cr_assert_eq(mp_feed(&p, "\r", 1), 0);
    cr_assert_str_eq(e.s, "<a>abcdef\r\n--Xx\r");
    cr_assert_eq(mp_feed(&p, "\n--XyZ--", 8), 1);
    cr_assert_str_eq(e.s, "<a>abcdef\r\n--Xx\r</>");
}

/* ------------------------------------------------------------------------ */
/* File names                                                                 */

typedef struct fcase {
    const char *in;
    size_t len;
    const char *out;
} fcase;

#define FN(s, o) { (s), sizeof(s) - 1, (o) }

static const fcase fnames[] = {
    FN("report.pdf", "report.pdf"),
    FN("../../etc/passwd", "passwd"),
    FN("..\\..\\boot.ini", "boot.ini"),
    FN("/abs", "abs"),
    FN("/", "file"),
    FN("C:\\x\\y.txt", "y.txt"),
    FN("C:y.txt", "C:y.txt"),
    FN("a/b/", "file"),
    FN("a\\", "file"),
    FN("", "file"),
    FN("\0", "file"),
    FN("a\0b", "ab"),
    FN("..", "file"),
    FN(".", "file"),
    FN("...", "file"),
    FN(".bashrc", "bashrc"),
    FN(" . .x", "x"),
    FN("x. . ", "x"),
    FN("a.b.", "a.b"),
    FN("%2e%2e%2f", "%2e%2e%2f"),
    FN("..%2f..%2fetc", "%2f..%2fetc"),
    FN("a\tb\r\nc\x1b\x7f.txt", "abc.txt"),
    FN("\x01.hidden", "hidden"),
    FN("caf\xe9.txt", "caf_.txt"),
    FN("\xff\xfe", "__"),
    FN("\xc0\xaf", "__"),                 /* overlong '/' */
    FN("a\xc0\xaf..\xc0\xaf" "b", "a__..__b"),
    FN("\xed\xa0\x80x", "___x"),          /* surrogate */
    FN("\xf4\x90\x80\x80", "____"),       /* > U+10FFFF */
    FN("\xe2\x82", "__"),                 /* truncated */
    FN("na\xc3\xafve \xe2\x82\xac.txt", "na\xc3\xafve \xe2\x82\xac.txt"),
    FN("\xf0\x9f\x98\x80.png", "\xf0\x9f\x98\x80.png"),
    FN("invoice\xe2\x80\xaegpj.exe", "invoicegpj.exe"), /* U+202E dropped */
    FN("\xe2\x81\xa6x\xe2\x81\xa9\xe2\x80\x8f", "x"),   /* U+2066, U+2069, U+200F */
    FN("\xc2\x85\xc2\x9fx", "x"),                       /* C1 controls */
    FN("\xc2\xa0x", "\xc2\xa0x"),                       /* NBSP kept */
    FN("\xe2\x88\x95x", "\xe2\x88\x95x"),               /* division slash kept: not a separator */
};

Test(multipart, sanitize_table)
{
    for (size_t i = 0; i < sizeof fnames / sizeof fnames[0]; i++) {
        char out[MP_FILENAME_MAX + 1];
        size_t n = tern__sanitize_filename((tern_str){fnames[i].in, fnames[i].len}, out);

        cr_assert_eq(n, strlen(out), "row %zu", i);
        cr_assert_str_eq(out, fnames[i].out, "row %zu", i);
    }
}

Test(multipart, sanitize_long_names)
{
    char in[1024], out[MP_FILENAME_MAX + 1];
    size_t n;

    memset(in, 'a', sizeof in);
    n = tern__sanitize_filename((tern_str){in, sizeof in}, out);
    cr_assert_eq(n, 255);
    cr_assert_eq(strspn(out, "a"), 255);
    n = tern__sanitize_filename((tern_str){in, 255}, out);
    cr_assert_eq(n, 255);
    n = tern__sanitize_filename((tern_str){in, 256}, out);
    cr_assert_eq(n, 255);

    /* "a" then 3-byte characters: the cut falls on a character boundary */
    in[0] = 'a';
    for (size_t i = 1; i + 3 <= sizeof in; i += 3)
        memcpy(in + i, "\xe2\x82\xac", 3);
    n = tern__sanitize_filename((tern_str){in, 1 + 3 * 300}, out);
    cr_assert_eq(n, 253, "1 + 84 * 3");
    cr_assert_eq(memcmp(out + 250, "\xe2\x82\xac", 3), 0);

    /* the leading dots do not count; trailing dots after the cut are trimmed */
    memset(in, '.', 10);
    memset(in + 10, 'b', 250);
    memset(in + 260, '.', 20);
    n = tern__sanitize_filename((tern_str){in, 280}, out);
    cr_assert_eq(n, 250);
    cr_assert_eq(strspn(out, "b"), 250);

    /* a long directory part does not matter */
    memset(in, 'd', 900);
    memcpy(in + 900, "/x.txt", 6);
    n = tern__sanitize_filename((tern_str){in, 906}, out);
    cr_assert_str_eq(out, "x.txt");
}

Test(multipart, sanitize_properties)
{
    /* every output of a pseudo-random input keeps the promises */
    unsigned seed = 12345;

    for (int round = 0; round < 20000; round++) {
        char in[64], out[MP_FILENAME_MAX + 1];
        size_t len = (size_t)(round % 64), n;

        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)"./\\ \0\x01\xe2\x80\xae\xc3\xa9" "ab"[(seed >> 16) % 14];
        }
        n = tern__sanitize_filename((tern_str){in, len}, out);
        cr_assert(n >= 1 && n <= MP_FILENAME_MAX);
        cr_assert_eq(strlen(out), n);
        cr_assert_null(memchr(out, '/', n));
        cr_assert_null(memchr(out, '\\', n));
        cr_assert_neq(out[0], '.');
        cr_assert_neq(out[0], ' ');
        cr_assert_neq(out[n - 1], '.');
        cr_assert_neq(out[n - 1], ' ');
        for (size_t i = 0; i < n; i++)
            cr_assert((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
        cr_assert_null(strstr(out, "\xe2\x80\xae"));
    }
}

/* ------------------------------------------------------------------------ */
/* Out of memory                                                              */

static unsigned alloc_count, alloc_fail_at;

static void *oom_malloc(size_t n)
{
    return ++alloc_count == alloc_fail_at ? NULL : malloc(n);
}

static void *oom_realloc(void *p, size_t n)
{
    return ++alloc_count == alloc_fail_at ? NULL : realloc(p, n);
}

/* Fails the Nth allocation for N = 1, 2, ... until the collection succeeds:
 * each failure is a 503 with nothing left open (and, under ASan, nothing
 * leaked). */
Test(multipart, out_of_memory)
{
    static const char body[] = FIELD("a", "hello") FILEPART("f", "x.bin", "0123456789")
        FILEPART("g", "y.bin", "ab") FIELD("b", "") END;
    tern_multipart_limits lim;
    result *res = malloc(sizeof *res);
    unsigned nth;

    make_tmpdir();
    limits_small(&lim);
    lim.spool_threshold = 4;
    lim.tmp_dir = tmpdir;
    tern_set_allocator(oom_malloc, oom_realloc, NULL);
    for (nth = 1;; nth++) {
        reader r = {body, sizeof body - 1, 0, 7, 0, 0};

        alloc_count = 0;
        alloc_fail_at = nth;
        run_reader(res, TERN_STR("XyZ"), &r, &lim, 1);
        if (res->rc == 0)
            break;
        cr_assert_eq(res->rc, TERN_ENOMEM, "allocation %u: rc %d", nth, res->rc);
        cr_assert_eq(res->status, 503);
        cr_assert_str_eq(res->detail, "out of memory");
    }
    alloc_fail_at = 0;
    tern_set_allocator(NULL, NULL, NULL);
    cr_assert_gt(nth, 3);
    cr_assert_str_eq(res->dump, "a=hello;f[x.bin]=@0123456789;g[y.bin]=ab;b=;");
    cr_assert(dir_empty(tmpdir));
    rmdir(tmpdir);
    free(res);
}
