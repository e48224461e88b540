/*
 * harness.c - server processes, raw HTTP client and utilities for the
 * integration tests (see harness.h).
 *
 * Servers are started with posix_spawn: stdout goes to a pipe (its first
 * line tells the port), stderr to a file in /tmp that is printed when a
 * server exits badly.  Every started pid is kept in a small table so a test
 * that fails half-way still kills its servers (suite fini and atexit).
 *
 * Client sockets are non-blocking and every read or write waits with poll()
 * and a deadline.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

#define MAX_SERVERS 16
#define MAX_HEAD 65536
#define MAX_BUF (64u << 20)

static pid_t g_pids[MAX_SERVERS];
static int g_atexit_done;

/* ------------------------------------------------------------------------ */
/* Time                                                                       */

double th_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int ms_left(double deadline)
{
    double left = deadline - th_now_ms();

    if (left <= 0)
        return 0;
    return left < 1.0 ? 1 : (int)left;
}

/* ------------------------------------------------------------------------ */
/* Server processes                                                           */

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (g_pids[i] == 0) {
            g_pids[i] = pid;
            return;
        }
    }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (g_pids[i] == pid)
            g_pids[i] = 0;
    }
}

void th_cleanup_all(void)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (g_pids[i] > 0) {
            kill(g_pids[i], SIGKILL);
            (void)waitpid(g_pids[i], NULL, 0);
            g_pids[i] = 0;
        }
    }
}

void th_dump_log(const th_server *s)
{
    FILE *f;
    long size;
    char buf[4097];
    size_t n;

    if (s->errlog[0] == '\0' || (f = fopen(s->errlog, "r")) == NULL)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > 4096 ? size - 4096 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- server stderr (pid %d, last %zu bytes) ----\n%s\n----\n", (int)s->pid,
            n, buf);
}

/* Reads the first stdout line of the server, at most 10 s. */
static int read_line(th_server *s, char *line, size_t cap)
{
    double deadline = th_now_ms() + 10000;
    size_t n = 0;

    while (n + 1 < cap) {
        struct pollfd p = {s->out_fd, POLLIN, 0};
        int left = ms_left(deadline), k;
        ssize_t got;

        if (left == 0)
            return -1;
        k = poll(&p, 1, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got = read(s->out_fd, line + n, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        if (line[n] == '\n') {
            line[n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

static int parse_listening(th_server *s, const char *line)
{
    const char *p = strstr(line, "tern: listening on http://");
    const char *colon, *paren;
    char *end;
    long port, workers;

    if (p == NULL)
        return -1;
    p += strlen("tern: listening on http://");
    paren = strstr(p, " (");
    if (paren == NULL)
        return -1;
    colon = NULL;
    for (const char *q = p; q < paren; q++) {
        if (*q == ':')
            colon = q;
    }
    if (colon == NULL)
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (end != paren || port <= 0 || port > 65535)
        return -1;
    workers = strtol(paren + 2, &end, 10);
    if (workers <= 0 || strncmp(end, " worker", 7) != 0)
        return -1;
    s->port = (int)port;
    s->workers = (unsigned)workers;
    return 0;
}

int th_start(th_server *s, const char *env, ...)
{
    const char *bin = getenv(env);
    const char *argv[64];
    int argc = 0, has_port = 0, pipefd[2], fd, rc;
    posix_spawn_file_actions_t fa;
    char line[512];
    va_list ap;

    memset(s, 0, sizeof *s);
    s->out_fd = -1;
    if (!g_atexit_done) {
        atexit(th_cleanup_all);
        g_atexit_done = 1;
    }
    if (bin == NULL || bin[0] == '\0') {
        fprintf(stderr, "th_start: environment variable %s is not set (run through meson test)\n",
                env);
        return -1;
    }
    argv[argc++] = bin;
    argv[argc++] = "--host";
    argv[argc++] = "127.0.0.1";
    va_start(ap, env);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 60;) {
        if (strcmp(a, "--port") == 0)
            has_port = 1;
        argv[argc++] = a;
    }
    va_end(ap);
    if (!has_port) {
        argv[argc++] = "--port";
        argv[argc++] = "0";
    }
    argv[argc] = NULL;

    snprintf(s->errlog, sizeof s->errlog, "/tmp/tern-integ-XXXXXX");
    fd = mkstemp(s->errlog);
    if (fd < 0) {
        perror("th_start: mkstemp");
        return -1;
    }
    close(fd);
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        perror("th_start: pipe2");
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, s->errlog, O_WRONLY | O_APPEND, 0);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    rc = posix_spawn(&s->pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        fprintf(stderr, "th_start: cannot spawn %s: %s\n", bin, strerror(rc));
        close(pipefd[0]);
        s->pid = 0;
        return -1;
    }
    track(s->pid);
    s->out_fd = pipefd[0];
    /* An app may print its own lines first (the quickstart prints curl examples). */
    int found = -1;
    for (int i = 0; i < 20 && found != 0 && read_line(s, line, sizeof line) == 0; i++)
        found = parse_listening(s, line);
    if (found != 0) {
        fprintf(stderr, "th_start: %s printed no listening line within 10 s\n", bin);
        th_stop(s, 500);
        th_dump_log(s);
        return -1;
    }
    return 0;
}

void th_signal(th_server *s, int sig)
{
    if (s->pid > 0 && !s->reaped)
        kill(s->pid, sig);
}

static int exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

int th_wait(th_server *s, int timeout_ms)
{
    double deadline = th_now_ms() + timeout_ms;

    if (s->pid <= 0)
        return -1;
    while (!s->reaped) {
        pid_t r = waitpid(s->pid, &s->wstatus, WNOHANG);

        if (r == s->pid) {
            s->reaped = 1;
            untrack(s->pid);
            if (exit_code(s->wstatus) != 0) {
                fprintf(stderr, "th_wait: server pid %d ended with %d\n", (int)s->pid,
                        exit_code(s->wstatus));
                th_dump_log(s);
            }
            break;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (ms_left(deadline) == 0)
            return -2;
        th_sleep_ms(2);
    }
    return exit_code(s->wstatus);
}

int th_stop(th_server *s, int timeout_ms)
{
    int rc;

    if (s->pid <= 0)
        return -1;
    th_signal(s, SIGTERM);
    rc = th_wait(s, timeout_ms);
    if (rc == -2) {
        fprintf(stderr, "th_stop: pid %d still running %d ms after SIGTERM: SIGKILL\n",
                (int)s->pid, timeout_ms);
        kill(s->pid, SIGKILL);
        (void)th_wait(s, 5000);
        rc = -1;
    }
    if (rc == -1)
        th_dump_log(s);
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    if (rc == 0 && s->errlog[0] != '\0' && getenv("TERN_INTEG_KEEP_LOGS") == NULL)
        unlink(s->errlog);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Client connections                                                         */

int th_connect(th_conn *c, int port)
{
    struct sockaddr_in sa;
    int one = 1, err = 0;
    socklen_t elen = sizeof err;

    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        struct pollfd p = {c->fd, POLLOUT, 0};

        if (errno != EINPROGRESS) {
            err = errno;
            goto fail;
        }
        if (poll(&p, 1, 2000) != 1) {
            err = ETIMEDOUT;
            goto fail;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
            if (err == 0)
                err = errno;
            goto fail;
        }
    }
    return 0;
fail:
    close(c->fd);
    c->fd = -1;
    return -err;
}

void th_close(th_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

void th_abort(th_conn *c)
{
    struct linger lg = {1, 0};

    if (c->fd >= 0)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    th_close(c);
}

int th_send(th_conn *c, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);

        if (k > 0) {
            s += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {c->fd, POLLOUT, 0};

            if (poll(&pf, 1, 3000) != 1)
                return -ETIMEDOUT;
            continue;
        }
        return k < 0 ? -errno : -EIO;
    }
    return 0;
}

int th_send_str(th_conn *c, const char *s)
{
    return th_send(c, s, strlen(s));
}

int th_send_slow(th_conn *c, const void *p, size_t n, size_t piece, int delay_ms)
{
    const char *s = p;

    while (n > 0) {
        size_t k = n < piece ? n : piece;
        int rc = th_send(c, s, k);

        if (rc != 0)
            return rc;
        s += k;
        n -= k;
        if (n > 0)
            th_sleep_ms(delay_ms);
    }
    return 0;
}

/* Receives more bytes before deadline: > 0 bytes, 0 closed, TH_TIMEOUT. */
static int fill(th_conn *c, double deadline)
{
    if (c->eof)
        return 0;
    if (c->cap - c->len < 16384) {
        size_t ncap = c->cap ? c->cap * 2 : 65536;
        char *nb;

        if (ncap > MAX_BUF)
            return TH_MALFORMED;
        nb = realloc(c->buf, ncap + 1);
        if (nb == NULL)
            return TH_MALFORMED;
        c->buf = nb;
        c->cap = ncap;
    }
    for (;;) {
        struct pollfd p = {c->fd, POLLIN, 0};
        int left = ms_left(deadline), k;
        ssize_t got;

        if (left == 0)
            return TH_TIMEOUT;
        k = poll(&p, 1, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            return TH_TIMEOUT;
        if (k < 0) {
            c->eof = 1;
            return 0;
        }
        got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (got > 0) {
            c->len += (size_t)got;
            return (int)got;
        }
        if (got == 0) {
            c->eof = 1;
            return 0;
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        c->eof = 1;
        c->reset = errno == ECONNRESET;
        return 0;
    }
}

int th_wait_closed(th_conn *c, int timeout_ms)
{
    double deadline = th_now_ms() + timeout_ms;

    for (;;) {
        int k = fill(c, deadline);

        if (c->eof)
            return 1;
        if (k == TH_TIMEOUT || k == TH_MALFORMED)
            return 0;
    }
}

const char *th_strerr(int rc)
{
    switch (rc) {
    case TH_OK:
        return "ok";
    case TH_TIMEOUT:
        return "timeout (no complete response)";
    case TH_CLOSED:
        return "connection closed without a response";
    case TH_TRUNCATED:
        return "connection closed in the middle of a response";
    case TH_MALFORMED:
        return "malformed response";
    default:
        return "?";
    }
}

void th_resp_free(th_resp *r)
{
    free(r->h);
    free(r->head);
    free(r->store);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *th_hdr(const th_resp *r, const char *name)
{
    for (unsigned i = 0; i < r->nh; i++) {
        if (strcasecmp(r->h[i].name, name) == 0)
            return r->h[i].value;
    }
    return NULL;
}

unsigned th_hdr_count(const th_resp *r, const char *name)
{
    unsigned n = 0;

    for (unsigned i = 0; i < r->nh; i++)
        n += strcasecmp(r->h[i].name, name) == 0;
    return n;
}

int th_hdr_has_token(const th_resp *r, const char *name, const char *token)
{
    size_t tl = strlen(token);

    for (unsigned i = 0; i < r->nh; i++) {
        const char *v = r->h[i].value;

        if (strcasecmp(r->h[i].name, name) != 0)
            continue;
        while (*v != '\0') {
            const char *e;
            size_t n;

            while (*v == ' ' || *v == '\t' || *v == ',')
                v++;
            e = v;
            while (*e != '\0' && *e != ',')
                e++;
            n = (size_t)(e - v);
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (n == tl && strncasecmp(v, token, tl) == 0)
                return 1;
            v = e;
        }
    }
    return 0;
}

static int is_tchar(int ch)
{
    return isalnum(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/*
 * Parses r->store (the head, NUL-terminated, lines split by CRLF, no final
 * empty line) in place into r.  Returns 0 or TH_MALFORMED.
 */
static int parse_head(th_resp *r)
{
    char *p = r->store, *line, *e;
    unsigned cap = 0;

    /* status line: HTTP/1.x SP 3DIGIT SP reason */
    e = strstr(p, "\r\n");
    line = p;
    if (e != NULL) {
        *e = '\0';
        p = e + 2;
    } else {
        p = line + strlen(line);
    }
    if (strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
        !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
        !isdigit((unsigned char)line[11]) || (line[12] != ' ' && line[12] != '\0'))
        return TH_MALFORMED;
    r->minor = line[7] - '0';
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    r->reason = line[12] == ' ' ? line + 13 : line + 12;

    while (*p != '\0') {
        char *colon, *v, *end;

        line = p;
        e = strstr(p, "\r\n");
        if (e != NULL) {
            *e = '\0';
            p = e + 2;
        } else {
            p = line + strlen(line);
        }
        colon = strchr(line, ':');
        if (colon == NULL || colon == line)
            return TH_MALFORMED;
        for (char *q = line; q < colon; q++) {
            if (!is_tchar((unsigned char)*q))
                return TH_MALFORMED;
        }
        for (char *q = colon + 1; *q != '\0'; q++) {
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return TH_MALFORMED;
        }
        *colon = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (r->nh == cap) {
            th_header *nh;

            cap = cap ? cap * 2 : 16;
            nh = realloc(r->h, cap * sizeof *nh);
            if (nh == NULL)
                return TH_MALFORMED;
            r->h = nh;
        }
        r->h[r->nh].name = line;
        r->h[r->nh].value = v;
        r->nh++;
    }
    return 0;
}

/* The first CRLF in p[0..n), or NULL. */
static const char *find_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n')
            return p + i;
    }
    return NULL;
}

/*
 * Decodes a chunked body at p[0..n).  Returns the bytes the body took (> 0)
 * when complete, 0 when more bytes are needed, TH_MALFORMED on bad framing.
 * The data goes to *out (malloc'd) when complete.
 */
static long parse_chunked(const char *p, size_t n, char **out, size_t *out_len, unsigned *nchunks)
{
    size_t i = 0, olen = 0, ocap = 256;
    char *o;
    unsigned chunks = 0;

    if (p == NULL || n == 0)
        return 0;
    o = malloc(ocap + 1);
    if (o == NULL)
        return TH_MALFORMED;
    for (;;) {
        unsigned long long size = 0;
        size_t digits = 0;
        const char *crlf;

        while (i < n && isxdigit((unsigned char)p[i])) {
            int ch = tolower((unsigned char)p[i]);

            if (++digits > 15)
                goto bad;
            size = size * 16 + (unsigned)(isdigit(ch) ? ch - '0' : ch - 'a' + 10);
            i++;
        }
        if (i == n)
            goto more;
        if (digits == 0)
            goto bad;
        crlf = find_crlf(p + i, n - i);
        if (crlf == NULL)
            goto more;
        if (memchr(p + i, '\n', (size_t)(crlf - (p + i))) != NULL)
            goto bad;
        i = (size_t)(crlf - p) + 2;
        if (size == 0)
            break;
        if (n - i < size + 2)
            goto more;
        if (p[i + size] != '\r' || p[i + size + 1] != '\n')
            goto bad;
        if (olen + size > ocap) {
            char *no;

            while (olen + size > ocap)
                ocap *= 2;
            no = realloc(o, ocap + 1);
            if (no == NULL)
                goto bad;
            o = no;
        }
        memcpy(o + olen, p + i, size);
        olen += size;
        chunks++;
        i += size + 2;
    }
    /* trailer section: field lines until an empty line */
    for (;;) {
        const char *crlf = find_crlf(p + i, n - i);

        if (crlf == NULL)
            goto more;
        if (crlf == p + i) {
            i += 2;
            break;
        }
        i = (size_t)(crlf - p) + 2;
    }
    o[olen] = '\0';
    *out = o;
    *out_len = olen;
    *nchunks = chunks;
    return (long)i;
more:
    free(o);
    return 0;
bad:
    free(o);
    return TH_MALFORMED;
}


static void consume(th_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads the body framed by Content-Length / chunked / close into r. */
static int read_body(th_conn *c, th_resp *r, size_t body_start, double deadline, int flags)
{
    const char *te = th_hdr(r, "Transfer-Encoding");
    const char *cl = th_hdr(r, "Content-Length");
    int rc;

    if (th_hdr_count(r, "Content-Length") > 1 || th_hdr_count(r, "Transfer-Encoding") > 1 ||
        (te != NULL && cl != NULL))
        return TH_MALFORMED;
    if ((flags & TH_HEAD) || (r->status >= 100 && r->status < 200) || r->status == 204 ||
        r->status == 304) {
        consume(c, body_start);
        return TH_OK;
    }
    if (te != NULL) {
        long used;

        if (strcasecmp(te, "chunked") != 0)
            return TH_MALFORMED;
        r->chunked = 1;
        while ((used = parse_chunked(c->buf + body_start, c->len - body_start, &r->body,
                                     &r->body_len, &r->nchunks)) == 0) {
            rc = fill(c, deadline);
            if (rc <= 0)
                return rc == 0 ? TH_TRUNCATED : rc;
        }
        if (used < 0)
            return TH_MALFORMED;
        consume(c, body_start + (size_t)used);
        return TH_OK;
    }
    if (cl != NULL) {
        char *endp;
        unsigned long long n;

        if (!isdigit((unsigned char)cl[0]))
            return TH_MALFORMED;
        errno = 0;
        n = strtoull(cl, &endp, 10);
        if (*endp != '\0' || errno != 0 || n > MAX_BUF)
            return TH_MALFORMED;
        while (c->len - body_start < n) {
            rc = fill(c, deadline);
            if (rc <= 0)
                return rc == 0 ? TH_TRUNCATED : rc;
        }
        r->body_len = (size_t)n;
    } else {
        /* delimited by the close of the connection */
        while (!c->eof) {
            rc = fill(c, deadline);
            if (rc < 0)
                return rc;
        }
        r->until_close = 1;
        r->body_len = c->len - body_start;
    }
    r->body = malloc(r->body_len + 1);
    if (r->body == NULL)
        return TH_MALFORMED;
    memcpy(r->body, c->buf + body_start, r->body_len);
    r->body[r->body_len] = '\0';
    consume(c, body_start + r->body_len);
    return TH_OK;
}

int th_read(th_conn *c, th_resp *r, int timeout_ms, int flags)
{
    double start = th_now_ms(), deadline = start + timeout_ms;
    size_t head_len;
    int rc;

    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;

        if (end != NULL) {
            head_len = (size_t)(end - c->buf) + 4;
            break;
        }
        if (c->len > MAX_HEAD)
            return TH_MALFORMED;
        rc = fill(c, deadline);
        if (rc == 0)
            return c->len ? TH_TRUNCATED : TH_CLOSED;
        if (rc < 0)
            return rc;
    }
    r->head = malloc(head_len - 3);
    r->store = malloc(head_len - 3);
    if (r->head == NULL || r->store == NULL)
        return TH_MALFORMED;
    memcpy(r->head, c->buf, head_len - 4);
    r->head[head_len - 4] = '\0';
    memcpy(r->store, r->head, head_len - 3);
    if (memchr(r->head, '\0', head_len - 4) != NULL)
        rc = TH_MALFORMED;
    else
        rc = parse_head(r);
    if (rc == TH_OK)
        rc = read_body(c, r, head_len, deadline, flags);
    if (rc == TH_OK && r->body == NULL)
        r->body = calloc(1, 1);
    r->ms = th_now_ms() - start;
    return rc;
}

int th_read_final(th_conn *c, th_resp *r, int timeout_ms, int flags, unsigned *n_info)
{
    double deadline = th_now_ms() + timeout_ms;

    if (n_info != NULL)
        *n_info = 0;
    for (;;) {
        int rc = th_read(c, r, ms_left(deadline) ? ms_left(deadline) : 1, flags);

        if (rc != TH_OK || r->status >= 200 || r->status == 101)
            return rc;
        if (n_info != NULL)
            (*n_info)++;
        th_resp_free(r);
    }
}

int th_exchange(th_conn *c, const char *raw, th_resp *r)
{
    int rc = th_send_str(c, raw);

    if (rc != 0) {
        memset(r, 0, sizeof *r);
        /* the server may already have answered and closed: read what came */
    }
    return th_read_final(c, r, TH_TIMEOUT_MS, strncmp(raw, "HEAD ", 5) == 0 ? TH_HEAD : 0,
                         NULL);
}

/* ------------------------------------------------------------------------ */
/* Utilities                                                                  */

time_t th_parse_imf_date(const char *s)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const char pattern[] = "www, ## mmm #### ##:##:## GMT";
    struct tm tm;
    int wday = -1, mon = -1;
    time_t t;

    if (strlen(s) != sizeof pattern - 1)
        return (time_t)-1;
    for (size_t i = 0; i < sizeof pattern - 1; i++) {
        char pc = pattern[i];

        if (pc == '#') {
            if (!isdigit((unsigned char)s[i]))
                return (time_t)-1;
        } else if (pc != 'w' && pc != 'm' && s[i] != pc) {
            return (time_t)-1;
        }
    }
    for (int i = 0; i < 7; i++) {
        if (strncmp(s, days[i], 3) == 0)
            wday = i;
    }
    for (int i = 0; i < 12; i++) {
        if (strncmp(s + 8, months[i], 3) == 0)
            mon = i;
    }
    if (wday < 0 || mon < 0)
        return (time_t)-1;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = (s[5] - '0') * 10 + (s[6] - '0');
    tm.tm_mon = mon;
    tm.tm_year = atoi(s + 12) - 1900;
    tm.tm_hour = (s[17] - '0') * 10 + (s[18] - '0');
    tm.tm_min = (s[20] - '0') * 10 + (s[21] - '0');
    tm.tm_sec = (s[23] - '0') * 10 + (s[24] - '0');
    if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return (time_t)-1;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return t;
    {
        struct tm chk;

        gmtime_r(&t, &chk);
        if (chk.tm_wday != wday || chk.tm_mday != tm.tm_mday)
            return (time_t)-1;
    }
    return t;
}

/* Finds `"name"` followed by optional spaces and ':' at object level 1. */
static const char *json_member(const char *json, const char *name)
{
    size_t nl = strlen(name);
    int depth = 0;

    for (const char *p = json; *p != '\0'; p++) {
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (*p == '"') {
            const char *start = p + 1, *q = start;

            while (*q != '\0' && *q != '"') {
                if (*q == '\\' && q[1] != '\0')
                    q++;
                q++;
            }
            if (*q == '\0')
                return NULL;
            p = q;
            if (depth == 1 && (size_t)(q - start) == nl && strncmp(start, name, nl) == 0) {
                q++;
                while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                    q++;
                if (*q == ':') {
                    q++;
                    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                        q++;
                    return q;
                }
            }
        }
    }
    return NULL;
}

int th_json_str(const char *json, const char *name, char *out, size_t cap)
{
    const char *v = json ? json_member(json, name) : NULL;
    size_t n = 0;

    if (v == NULL || *v != '"' || cap == 0)
        return -1;
    for (v++; *v != '\0' && *v != '"'; v++) {
        if (*v == '\\' && v[1] != '\0') {
            if (n + 1 < cap)
                out[n++] = *v;
            v++;
        }
        if (n + 1 < cap)
            out[n++] = *v;
    }
    out[n] = '\0';
    return *v == '"' ? 0 : -1;
}

int th_json_int(const char *json, const char *name, long *out)
{
    const char *v = json ? json_member(json, name) : NULL;
    char *end;

    if (v == NULL || (!isdigit((unsigned char)*v) && *v != '-'))
        return -1;
    *out = strtol(v, &end, 10);
    return end == v ? -1 : 0;
}

const char *th_show(const void *p, size_t n)
{
    static _Thread_local char buf[1024];
    const unsigned char *s = p;
    size_t o = 0;

    for (size_t i = 0; i < n && o + 8 < sizeof buf; i++) {
        unsigned ch = s[i];

        if (ch == '\r') {
            buf[o++] = '\\';
            buf[o++] = 'r';
        } else if (ch == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    if (o + 8 >= sizeof buf)
        memcpy(buf + o, "...", 4);
    else
        buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* main                                                                       */

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;

    /* One test at a time: several tests measure latency on a 2-core box. */
    criterion_options.jobs = 1;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
