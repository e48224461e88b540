/*
 * log.c - one-line logging to stderr.
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from several worker threads never interleave.  Lines are cut at
 * 2 KiB.  The level comes from tern_log_set_level() or the TERN_LOG
 * environment variable (debug, info, warn, error, off).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tern/core.h"

static atomic_int g_level = -1;

static int level_from_env(void)
{
    const char *e = getenv("TERN_LOG");

    if (e == NULL)
        return TERN_LOG_INFO;
    if (strcmp(e, "debug") == 0)
        return TERN_LOG_DEBUG;
    if (strcmp(e, "warn") == 0)
        return TERN_LOG_WARN;
    if (strcmp(e, "error") == 0)
        return TERN_LOG_ERROR;
    if (strcmp(e, "off") == 0)
        return TERN_LOG_OFF;
    return TERN_LOG_INFO;
}

void tern_log_set_level(int level)
{
    atomic_store(&g_level, level);
}

int tern_log_level(void)
{
    int l = atomic_load(&g_level);

    if (l < 0) {
        l = level_from_env();
        atomic_store(&g_level, l);
    }
    return l;
}

void tern_log(int level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    if (level < tern_log_level() || level < 0 || level >= TERN_LOG_OFF)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    k = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 names[level]);
    n = k > 0 ? (size_t)k : 0;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, n);
    (void)w;
}
