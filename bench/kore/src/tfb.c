/*
 * kore peer for tern's TFB bench (bench/run.sh): the database tests of
 * /work/shared/specs/tfb.md 3.2-3.5 on Debian's kore 4.1 (built with
 * PGSQL), written the way kore's own pgsql example is: an HTTP state
 * machine around asynchronous kore_pgsql queries, the request sleeping
 * while a query runs and while it waits for one of the worker's
 * `pgsql_conn_max` connections.
 *
 *   GET /db                 one random World row
 *   GET /queries?queries=N  N rows, one query each (one after the other)
 *   GET /fortunes           Fortune rows + 1, sorted, HTML-escaped
 *   GET /updates?queries=N  N rows read one by one, new random numbers
 *                           persisted with one batched UPDATE (sorted by id,
 *                           a repeated id written once)
 *   GET /plaintext, /json   for wait_ready and completeness; kore 4.1 does
 *                           not answer pipelined requests, so run.sh does
 *                           not measure kore on plaintext (tfb.md section 1)
 *
 * The database URL comes from DATABASE_URL (libpq accepts postgres:// URIs).
 * kore 4.1 sends no Date header: every response gets one here (TFB requires
 * it), refreshed once per second.  Its seccomp sandbox needs one system call
 * added (KORE_SECCOMP_FILTER below).
 */
#define _GNU_SOURCE /* qsort_r */
#include <sys/types.h>

#include <kore/kore.h>
#include <kore/http.h>
#include <kore/hooks.h>
#include <kore/pgsql.h>
#include <kore/seccomp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int page_plaintext(struct http_request *);
int page_json(struct http_request *);
int page_db(struct http_request *);
int page_queries(struct http_request *);
int page_fortunes(struct http_request *);
int page_updates(struct http_request *);

#define WORLD_ROWS 10000
#define MAX_QUERIES 500

enum { T_DB, T_QUERIES, T_FORTUNES, T_UPDATES };

struct fortune {
	int	id;
	char	*message;
};

struct tfb_state {
	struct kore_pgsql	sql;
	int			test;
	int			n;		/* rows wanted */
	int			done;		/* statements finished */
	int			updated;	/* updates: the UPDATE ran */
	int			bound;		/* sql bound to the request */
	int32_t			rows[MAX_QUERIES][2];
	struct fortune		*fortunes;
	int			nfortunes;
};

static int	state_setup(struct http_request *);
static int	state_query(struct http_request *);
static int	state_wait(struct http_request *);
static int	state_read(struct http_request *);
static int	state_done(struct http_request *);
static int	state_error(struct http_request *);

enum { S_SETUP, S_QUERY, S_WAIT, S_READ, S_DONE, S_ERROR };

static struct http_state states[] = {
	KORE_HTTP_STATE(state_setup),
	KORE_HTTP_STATE(state_query),
	KORE_HTTP_STATE(state_wait),
	KORE_HTTP_STATE(state_read),
	KORE_HTTP_STATE(state_done),
	KORE_HTTP_STATE(state_error),
};

static const char SQL_WORLD[] =
    "SELECT id, randomnumber FROM world WHERE id = $1";
static const char SQL_FORTUNES[] = "SELECT id, message FROM fortune";
static const char SQL_UPDATE[] =
    "UPDATE world SET randomnumber = v.r "
    "FROM (SELECT unnest($1::int[]) AS i, unnest($2::int[]) AS r) AS v "
    "WHERE world.id = v.i";

/*
 * kore 4.1's worker sandbox predates glibc 2.33+, whose fstat() is the
 * newfstatat system call (used by libc on first stdio/time-zone use): the
 * worker dies with SIGSYS without it.
 */
KORE_SECCOMP_FILTER("tfb",
	KORE_SYSCALL_ALLOW(newfstatat),
	KORE_SYSCALL_ALLOW(getdents64),
);

/* ------------------------------------------------------------------------ */

void
kore_worker_configure(void)
{
	const char	*url = getenv("DATABASE_URL");

	if (url == NULL || *url == '\0')
		fatal("tfb: DATABASE_URL is not set");
	if (!kore_pgsql_register("db", url))
		fatal("tfb: cannot register the database");
	srandom((unsigned)(time(NULL) ^ getpid()));
}

/* The Date header: kore 4.1 sends none. */
static const char *
http_date(void)
{
	static time_t	last;
	static char	buf[40];
	time_t		now = time(NULL);
	struct tm	tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return (buf);
}

static void
respond(struct http_request *req, const char *type, const void *body,
    size_t len)
{
	http_response_header(req, "content-type", type);
	http_response_header(req, "date", http_date());
	http_response(req, 200, body, len);
}

static int
random_number(void)
{
	return (1 + (int)(random() % WORLD_ROWS));
}

/* The `queries` parameter: missing, empty, not an integer or < 1 gives 1;
 * > 500 gives 500. */
static int
queries_param(struct http_request *req)
{
	const char	*q = req->query_string, *p, *v;
	long		n;
	char		*end;

	for (p = q; p != NULL && *p != '\0'; p = strchr(p, '&'), p = p ? p + 1 : p) {
		if (strncmp(p, "queries=", 8) != 0)
			continue;
		v = p + 8;
		if (*v == '\0' || *v == '&')
			return (1);
		n = strtol(v, &end, 10);
		if (*end != '\0' && *end != '&')
			return (1);
		return (n < 1 ? 1 : n > MAX_QUERIES ? MAX_QUERIES : (int)n);
	}
	return (1);
}

/* ------------------------------------------------------------------------ */

int
page_plaintext(struct http_request *req)
{
	respond(req, "text/plain", "Hello, World!", 13);
	return (KORE_RESULT_OK);
}

int
page_json(struct http_request *req)
{
	struct kore_buf	*b = kore_buf_alloc(64);

	kore_buf_appendf(b, "{\"message\":\"%s\"}", "Hello, World!");
	respond(req, "application/json", b->data, b->offset);
	kore_buf_free(b);
	return (KORE_RESULT_OK);
}

static void
state_free(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);
	int			i;

	if (st == NULL)
		return;
	kore_pgsql_cleanup(&st->sql);
	for (i = 0; i < st->nfortunes; i++)
		kore_free(st->fortunes[i].message);
	kore_free(st->fortunes);
	http_state_cleanup(req);
}

static int
run(struct http_request *req, int test)
{
	struct tfb_state	*st;

	if (!http_state_exists(req)) {
		st = http_state_create(req, sizeof(*st), state_free);
		st->test = test;
	}
	return (http_state_run(states, sizeof(states) / sizeof(states[0]), req));
}

int page_db(struct http_request *req) { return (run(req, T_DB)); }
int page_queries(struct http_request *req) { return (run(req, T_QUERIES)); }
int page_fortunes(struct http_request *req) { return (run(req, T_FORTUNES)); }
int page_updates(struct http_request *req) { return (run(req, T_UPDATES)); }

static int
state_setup(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);

	st->n = 1;
	if (st->test == T_QUERIES || st->test == T_UPDATES) {
		http_populate_qs(req);
		st->n = queries_param(req);
	}
	req->fsm_state = S_QUERY;
	return (HTTP_STATE_CONTINUE);
}

/* "{a,b,c}" for a PostgreSQL int[] parameter. */
static void
int_array(struct kore_buf *b, const int32_t *v, int n)
{
	int	i;

	kore_buf_append(b, "{", 1);
	for (i = 0; i < n; i++)
		kore_buf_appendf(b, i ? ",%d" : "%d", v[i]);
	kore_buf_append(b, "}", 2); /* with the NUL */
}

static int
cmp_idx(const void *a, const void *b, void *arg)
{
	int32_t	(*rows)[2] = arg;
	int	x = rows[*(const uint16_t *)a][0], y = rows[*(const uint16_t *)b][0];

	return ((x > y) - (x < y));
}

static int
send_update(struct tfb_state *st)
{
	uint16_t	idx[MAX_QUERIES];
	int32_t		ids[MAX_QUERIES], nums[MAX_QUERIES];
	struct kore_buf	*a, *b;
	int		i, m = 0, ok;

	for (i = 0; i < st->n; i++) {
		st->rows[i][1] = random_number();
		idx[i] = (uint16_t)i;
	}
	qsort_r(idx, st->n, sizeof(idx[0]), cmp_idx, st->rows);
	for (i = 0; i < st->n; i++) {
		int32_t *row = st->rows[idx[i]];
		if (m > 0 && ids[m - 1] == row[0]) {
			row[1] = nums[m - 1];
		} else {
			ids[m] = row[0];
			nums[m++] = row[1];
		}
	}
	a = kore_buf_alloc(m * 6 + 4);
	b = kore_buf_alloc(m * 6 + 4);
	int_array(a, ids, m);
	int_array(b, nums, m);
	ok = kore_pgsql_query_params(&st->sql, SQL_UPDATE, 0, 2,
	    KORE_PGSQL_PARAM_TEXT((const char *)a->data),
	    KORE_PGSQL_PARAM_TEXT((const char *)b->data));
	kore_buf_free(a);
	kore_buf_free(b);
	return (ok);
}

static int
state_query(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);
	char			id[16];
	int			ok;

	/* Bound once per statement: a retry after waiting for a connection
	 * calls setup again on the same (queued, then woken) handle. */
	if (!st->bound) {
		kore_pgsql_init(&st->sql);
		kore_pgsql_bind_request(&st->sql, req);
		st->bound = 1;
	}
	req->fsm_state = S_WAIT;
	if (!kore_pgsql_setup(&st->sql, "db", KORE_PGSQL_ASYNC)) {
		/* No free connection: queued, the request sleeps until one is. */
		if (st->sql.state == KORE_PGSQL_STATE_INIT) {
			req->fsm_state = S_QUERY;
			return (HTTP_STATE_RETRY);
		}
		kore_pgsql_logerror(&st->sql);
		req->fsm_state = S_ERROR;
		return (HTTP_STATE_CONTINUE);
	}
	if (st->test == T_FORTUNES) {
		ok = kore_pgsql_query(&st->sql, SQL_FORTUNES);
	} else if (st->test == T_UPDATES && st->done == st->n) {
		ok = send_update(st);
	} else {
		snprintf(id, sizeof(id), "%d", random_number());
		ok = kore_pgsql_query_params(&st->sql, SQL_WORLD, 0, 1,
		    KORE_PGSQL_PARAM_TEXT(id));
	}
	if (!ok) {
		kore_pgsql_logerror(&st->sql);
		req->fsm_state = S_ERROR;
	}
	return (HTTP_STATE_CONTINUE);
}

static int
state_wait(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);

	switch (st->sql.state) {
	case KORE_PGSQL_STATE_WAIT:
		return (HTTP_STATE_RETRY);
	case KORE_PGSQL_STATE_COMPLETE:
		/* One statement done, its connection back in the pool. */
		kore_pgsql_cleanup(&st->sql);
		st->bound = 0;
		if (st->test == T_UPDATES && st->done == st->n && !st->updated) {
			st->updated = 1;
			req->fsm_state = S_DONE;
		} else if (st->test == T_FORTUNES || ++st->done == st->n) {
			req->fsm_state = st->test == T_UPDATES ? S_QUERY : S_DONE;
		} else {
			req->fsm_state = S_QUERY;
		}
		break;
	case KORE_PGSQL_STATE_ERROR:
		kore_pgsql_logerror(&st->sql);
		req->fsm_state = S_ERROR;
		break;
	case KORE_PGSQL_STATE_RESULT:
		req->fsm_state = S_READ;
		break;
	default:
		kore_pgsql_continue(&st->sql);
		break;
	}
	return (HTTP_STATE_CONTINUE);
}

static int
state_read(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);
	int			i, n;

	n = kore_pgsql_ntuples(&st->sql);
	if (st->test == T_FORTUNES) {
		st->fortunes = kore_calloc(n + 1, sizeof(*st->fortunes));
		for (i = 0; i < n; i++) {
			st->fortunes[i].id = atoi(kore_pgsql_getvalue(&st->sql, i, 0));
			st->fortunes[i].message =
			    kore_strdup(kore_pgsql_getvalue(&st->sql, i, 1));
		}
		st->nfortunes = n;
	} else if (!(st->test == T_UPDATES && st->done == st->n)) {
		if (n != 1) {
			req->fsm_state = S_ERROR;
			return (HTTP_STATE_CONTINUE);
		}
		st->rows[st->done][0] = atoi(kore_pgsql_getvalue(&st->sql, 0, 0));
		st->rows[st->done][1] = atoi(kore_pgsql_getvalue(&st->sql, 0, 1));
	}
	kore_pgsql_continue(&st->sql);
	req->fsm_state = S_WAIT;
	return (HTTP_STATE_CONTINUE);
}

static int
cmp_fortune(const void *a, const void *b)
{
	return (strcmp(((const struct fortune *)a)->message,
	    ((const struct fortune *)b)->message));
}

static void
html_escape(struct kore_buf *b, const char *s)
{
	const char	*start = s;

	for (; *s != '\0'; s++) {
		const char *e;
		switch (*s) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		default: continue;
		}
		kore_buf_append(b, start, s - start);
		kore_buf_append(b, e, strlen(e));
		start = s + 1;
	}
	kore_buf_append(b, start, s - start);
}

static int
state_done(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);
	struct kore_buf		*b = kore_buf_alloc(2048);
	int			i;

	if (st->test == T_FORTUNES) {
		st->fortunes[st->nfortunes].id = 0;
		st->fortunes[st->nfortunes].message =
		    kore_strdup("Additional fortune added at request time.");
		st->nfortunes++;
		qsort(st->fortunes, st->nfortunes, sizeof(*st->fortunes),
		    cmp_fortune);
		kore_buf_appendf(b, "%s", "<!DOCTYPE html><html><head>"
		    "<title>Fortunes</title></head><body><table>"
		    "<tr><th>id</th><th>message</th></tr>");
		for (i = 0; i < st->nfortunes; i++) {
			kore_buf_appendf(b, "<tr><td>%d</td><td>",
			    st->fortunes[i].id);
			html_escape(b, st->fortunes[i].message);
			kore_buf_appendf(b, "%s", "</td></tr>");
		}
		kore_buf_appendf(b, "%s", "</table></body></html>");
		respond(req, "text/html; charset=utf-8", b->data, b->offset);
	} else {
		if (st->test != T_DB)
			kore_buf_append(b, "[", 1);
		for (i = 0; i < st->n; i++)
			kore_buf_appendf(b, "%s{\"id\":%d,\"randomNumber\":%d}",
			    i ? "," : "", st->rows[i][0], st->rows[i][1]);
		if (st->test != T_DB)
			kore_buf_append(b, "]", 1);
		respond(req, "application/json", b->data, b->offset);
	}
	kore_buf_free(b);
	return (HTTP_STATE_COMPLETE);
}

static int
state_error(struct http_request *req)
{
	struct tfb_state	*st = http_state_get(req);

	kore_pgsql_cleanup(&st->sql);
	http_response_header(req, "date", http_date());
	http_response(req, 500, NULL, 0);
	return (HTTP_STATE_COMPLETE);
}
