/*
 * fuzz_multipart.c - libFuzzer target for multipart/form-data
 * (src/body/multipart.c): the push parser, the collector and the file name
 * sanitizer.
 *
 * Input: the first line is the boundary (a CR before the LF is dropped),
 * the rest is the body.  The way the body is cut into reads (1 to 3 pieces)
 * and the limits are derived from a hash of the input.  Each input runs
 * under two sets of limits: small ones (a few parts, fields and files of
 * tens of bytes, a header section of tens to hundreds of bytes, sometimes a
 * max_total) so the limit paths run all the time, and the defaults so that
 * bigger bodies get parsed through; both with a spool threshold of 0..7
 * bytes into a private temporary directory, so spooling runs too.
 *
 * Checked for every input (abort() on a violation):
 *   - the body read whole and read in pieces gives the same result: rc,
 *     status, detail and every part (name, file name, type, size, content);
 *   - with the reader failing instead of ending, the result is that error
 *     unless the body had already failed otherwise;
 *   - on success every part keeps its limits and promises: data or an
 *     unlinked 0600 file at offset 0 whose size is part->size, a sanitized
 *     file name (1..255 bytes, no '/', '\\', NUL, control character, no
 *     leading dot); on failure no parts;
 *   - the number of open descriptors is the same before and after;
 *   - the parser fed exact-size heap copies of the pieces (so ASan sees an
 *     over-read) agrees with the collector on success / failure.
 * Nothing is kept between runs but the temporary directory (always empty:
 * files are unlinked at creation), removed at exit.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "body/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "fuzz_multipart: check failed: %s (line %d)\n", #x, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char tmpdir[64];

static void remove_tmpdir(void)
{
    rmdir(tmpdir);
}

static void setup(void)
{
    if (tmpdir[0] != '\0')
        return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fuzz_mp.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        abort();
    atexit(remove_tmpdir);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        abort();
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

typedef struct reader {
    const char *p;
    size_t n, off;
    size_t cut[2]; /* piece ends (<= n); n for none */
    int fail_at_end;
} reader;

static long rd(void *ctx, char *buf, size_t cap)
{
    reader *r = ctx;
    size_t end = r->n, k;

    if (r->off == r->n)
        return r->fail_at_end ? TERN_EIO : 0;
    for (int i = 0; i < 2; i++)
        if (r->cut[i] > r->off && r->cut[i] < end)
            end = r->cut[i];
    k = end - r->off;
    if (k > cap)
        k = cap;
    memcpy(buf, r->p + r->off, k);
    r->off += k;
    return (long)k;
}

/* What one collector run produced, flattened for comparison. */
typedef struct outcome {
    int rc, status;
    char detail[160];
    char *dump; /* malloc'd, one record per part */
    size_t dn;
} outcome;

static void dput(outcome *o, const void *p, size_t n)
{
    char *d = realloc(o->dump, o->dn + n + 1);

    if (d == NULL)
        abort();
    o->dump = d;
    memcpy(o->dump + o->dn, p, n);
    o->dn += n;
}

static void dput_str(outcome *o, tern_str s)
{
    uint64_t n = s.n;

    dput(o, &n, sizeof n);
    dput(o, s.p, s.n);
}

static void check_part(const tern_part *pt, const tern_multipart_limits *lim, outcome *o)
{
    uint64_t size = pt->size;

    CHECK(pt->name.p != NULL && pt->name.p[pt->name.n] == '\0');
    CHECK(pt->content_type.p != NULL && pt->content_type.n > 0);
    dput_str(o, pt->name);
    dput_str(o, pt->content_type);
    if (pt->filename.p != NULL) {
        const char *f = pt->filename.p;
        size_t n = pt->filename.n;

        CHECK(n >= 1 && n <= MP_FILENAME_MAX && f[n] == '\0' && strlen(f) == n);
        CHECK(memchr(f, '/', n) == NULL && memchr(f, '\\', n) == NULL);
        CHECK(f[0] != '.' && f[0] != ' ' && f[n - 1] != '.' && f[n - 1] != ' ');
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)f[i] >= 0x20 && f[i] != 0x7f);
        CHECK(pt->size <= lim->max_file_size);
        dput(o, "F", 1);
        dput_str(o, pt->filename);
    } else {
        CHECK(pt->size <= lim->max_field_size);
        CHECK(pt->fd == -1);
        dput(o, "f", 1);
    }
    dput(o, &size, sizeof size);
    if (pt->fd >= 0) {
        struct stat st;
        char buf[512];
        uint64_t got = 0;

        CHECK(pt->size > lim->spool_threshold);
        CHECK(pt->data.p != NULL && pt->data.n == 0 && pt->path != NULL);
        CHECK(strncmp(pt->path, "/proc/self/fd/", 14) == 0 && atoi(pt->path + 14) == pt->fd);
        CHECK(fstat(pt->fd, &st) == 0);
        CHECK(st.st_nlink == 0 && (st.st_mode & 0777) == 0600);
        CHECK((uint64_t)st.st_size == pt->size);
        CHECK(lseek(pt->fd, 0, SEEK_CUR) == 0);
        for (;;) {
            ssize_t r = pread(pt->fd, buf, sizeof buf, (off_t)got);

            CHECK(r >= 0);
            if (r == 0)
                break;
            dput(o, buf, (size_t)r);
            got += (uint64_t)r;
        }
        CHECK(got == pt->size);
    } else {
        CHECK(pt->path == NULL);
        CHECK(pt->data.p != NULL && pt->data.n == pt->size && pt->data.p[pt->data.n] == '\0');
        if (pt->filename.p != NULL)
            CHECK(pt->size <= lim->spool_threshold);
        dput(o, pt->data.p, pt->data.n);
    }
}

static void collect(outcome *o, tern_str boundary, reader *r, const tern_multipart_limits *lim)
{
    tern_arena a;
    tern_part *parts;
    unsigned n;
    const char *detail;
    int fds = count_fds();

    memset(o, 0, sizeof *o);
    tern_arena_init(&a, 0);
    o->rc = tern__multipart_collect(&a, boundary, lim, rd, r, &parts, &n, &o->status, &detail);
    if (o->rc == 0) {
        CHECK(o->status == 0 && detail == NULL);
        CHECK(n <= lim->max_parts && (n == 0) == (parts == NULL));
        dput(o, &n, sizeof n);
        for (unsigned i = 0; i < n; i++)
            check_part(&parts[i], lim, o);
        tern__multipart_release(parts, n);
    } else {
        CHECK(o->rc < 0 && parts == NULL && n == 0);
        if (o->rc == TERN_EIO) {
            CHECK(o->status == 0 && detail == NULL);
        } else {
            CHECK(o->status == 400 || o->status == 413 || o->status == 415 || o->status == 500 ||
                  o->status == 503);
            CHECK(detail != NULL);
            snprintf(o->detail, sizeof o->detail, "%s", detail);
        }
    }
    CHECK(count_fds() == fds);
    tern_arena_deinit(&a);
}

static int same(const outcome *x, const outcome *y)
{
    return x->rc == y->rc && x->status == y->status && strcmp(x->detail, y->detail) == 0 &&
           x->dn == y->dn && (x->dn == 0 || memcmp(x->dump, y->dump, x->dn) == 0);
}

/* The parser alone on exact-size copies of the pieces; 1, 0 or < 0. */
static int parse_direct(tern_str boundary, const char *body, size_t n, const size_t cut[2],
                        size_t max_header_bytes)
{
    mp_parser p;
    char *hdr = malloc(max_header_bytes ? max_header_bytes : 1);
    size_t at[4] = { 0, cut[0], cut[1], n };
    int rc = 0;

    if (hdr == NULL)
        abort();
    if (mp_parser_init(&p, boundary, hdr, max_header_bytes, NULL, NULL) != 0) {
        free(hdr);
        return -415;
    }
    for (int k = 0; k < 3 && rc == 0; k++) {
        size_t len = at[k + 1] - at[k];
        char *piece = malloc(len ? len : 1);

        if (piece == NULL)
            abort();
        memcpy(piece, body + at[k], len);
        rc = mp_feed(&p, piece, len);
        free(piece);
    }
    free(hdr);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    tern_str boundary;
    const char *body;
    size_t n;
    uint64_t h = 1469598103934665603ull;
    tern_multipart_limits lim;
    reader r;
    outcome whole, pieces, failing;
    size_t cut[2];

    setup();
    if (nl == NULL) {
        boundary = (tern_str){ in, size };
        body = in + size;
        n = 0;
    } else {
        boundary = (tern_str){ in, (size_t)(nl - in) };
        if (boundary.n > 0 && boundary.p[boundary.n - 1] == '\r')
            boundary.n--;
        body = nl + 1;
        n = size - (size_t)(nl + 1 - in);
    }
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;

    tern_multipart_limits_init(&lim);
    lim.max_parts = 1 + (unsigned)(h % 8);
    lim.max_field_size = (size_t)((h >> 3) % 64);
    lim.max_file_size = (h >> 9) % 128;
    lim.max_header_bytes = 16 + (size_t)((h >> 16) % 240);
    lim.spool_threshold = (size_t)((h >> 24) % 8);
    lim.max_total = (h >> 27) % 4 == 0 ? (h >> 29) % (n + 2) : 0;
    lim.tmp_dir = tmpdir;

    /* 1..3 pieces */
    cut[0] = cut[1] = n;
    if ((h >> 40) % 3 >= 1)
        cut[0] = n ? (size_t)((h >> 42) % (n + 1)) : 0;
    if ((h >> 40) % 3 == 2)
        cut[1] = cut[0] + (n - cut[0] ? (size_t)((h >> 52) % (n - cut[0] + 1)) : 0);

    for (int set = 0; set < 2; set++) {
        if (set == 1) {
            /* Roomy limits, so that parts with long headers or data get
             * parsed too; spooling stays on. */
            size_t spool = lim.spool_threshold;

            tern_multipart_limits_init(&lim);
            lim.spool_threshold = spool;
            lim.tmp_dir = tmpdir;
        }
        r = (reader){ body, n, 0, { n, n }, 0 };
        collect(&whole, boundary, &r, &lim);
        r = (reader){ body, n, 0, { cut[0], cut[1] }, 0 };
        collect(&pieces, boundary, &r, &lim);
        CHECK(same(&whole, &pieces));

        r = (reader){ body, n, 0, { cut[0], cut[1] }, 1 };
        collect(&failing, boundary, &r, &lim);
        if (whole.rc == 0 ||
            strcmp(whole.detail, "the multipart body ended before its closing boundary") == 0)
            CHECK(failing.rc == TERN_EIO);
        else
            CHECK(same(&whole, &failing));

        /* The parser alone agrees with the collector where limits cannot
         * make a difference. */
        if (lim.max_total == 0) {
            int prc = parse_direct(boundary, body, n, cut, lim.max_header_bytes);

            if (prc == 1)
                CHECK(whole.status != 400 && whole.status != 415);
            else if (prc == -415)
                CHECK(whole.status == 415);
            else
                CHECK(whole.rc != 0 && whole.status != 415); /* malformed, ended or a limit */
        }
        free(whole.dump);
        free(pieces.dump);
        free(failing.dump);
    }

    /* Sanitizer on the raw input. */
    {
        char out[MP_FILENAME_MAX + 1];
        size_t k = tern__sanitize_filename((tern_str){ in, size }, out);

        CHECK(k >= 1 && k <= MP_FILENAME_MAX && strlen(out) == k);
        CHECK(memchr(out, '/', k) == NULL && memchr(out, '\\', k) == NULL && out[0] != '.');
    }

    return 0;
}
