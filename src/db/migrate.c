/*
 * migrate.c - ordered SQL migrations, applied once, checked forever.
 *
 * Each migration runs in its own transaction together with its record in
 * tern_migrations (name, checksum), so a migration is either applied and
 * recorded or neither.  A recorded migration whose SQL has changed since is
 * an error: silently running a schema that differs from the code's idea of
 * it is how data gets lost.
 *
 * Several instances starting at once: on PostgreSQL every migration
 * transaction first takes a transaction-scoped advisory lock, so they apply
 * one at a time and the later ones find the record and skip; on SQLite the
 * transaction is BEGIN IMMEDIATE on the writer, which holds the database's
 * write lock (other processes wait busy_timeout for it).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/internal.h"

/* Any constant both sides agree on: "tern" in ASCII. */
#define ADVISORY_KEY       "1952805486"
#define MAX_MIGRATION_FILE (16u << 20)

/* FNV-1a, 64 bits, as 16 hex digits: detects an edited migration. */
static void checksum(const char *s, char out[17])
{
    uint64_t h = 14695981039346656037ull;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

typedef struct apply_ctx {
    const tern_db_migration *m;
    int applied;
} apply_ctx;

static int apply_one(tern_req *req, tern_db *tx, void *arg)
{
    apply_ctx *ctx = arg;
    tern_db_rows *rs = NULL;
    char sum[17];
    db_err e;
    int rc;

    (void)req;
    ctx->applied = 0;
    if (tx->writer == NULL) {
        rc = tern_db_query(NULL, tx, "SELECT pg_advisory_xact_lock(" ADVISORY_KEY ")",
                           TERN_DB_NOARGS, NULL);
        if (rc != 0)
            return rc;
    }
    rc = db_conn_script(tx->tx_conn,
                        "CREATE TABLE IF NOT EXISTS tern_migrations ("
                        "name TEXT PRIMARY KEY, checksum TEXT NOT NULL, "
                        "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
                        &e);
    if (rc != 0) {
        db_report(NULL, &e, "CREATE TABLE tern_migrations", 0, 1);
        return rc;
    }
    checksum(ctx->m->sql, sum);
    rc = tern_db_query(NULL, tx, "SELECT checksum FROM tern_migrations WHERE name = $1",
                       TERN_DB_ARGS(tern_db_cstr(ctx->m->name)), &rs);
    if (rc != 0)
        return rc;
    if (tern_db_nrows(rs) > 0) {
        tern_str have = tern_db_get_text(rs, 0, "checksum");

        rc = tern_str_eq(have, tern_str_c(sum)) ? 0 : TERN_ECONFLICT;
        if (rc != 0)
            tern_log(TERN_LOG_ERROR,
                     "db: migration %s was changed after it was applied (checksum %.*s, now %s); "
                     "add a new migration instead",
                     ctx->m->name, (int)have.n, have.p, sum);
        tern_db_rows_free(rs);
        return rc;
    }
    tern_db_rows_free(rs);
    rc = db_conn_script(tx->tx_conn, ctx->m->sql, &e);
    if (rc != 0) {
        tern_log(TERN_LOG_ERROR, "db: migration %s failed: %s", ctx->m->name, e.msg);
        return rc;
    }
    rc = tern_db_exec(NULL, tx, "INSERT INTO tern_migrations (name, checksum) VALUES ($1, $2)",
                      TERN_DB_ARGS(tern_db_cstr(ctx->m->name), tern_db_cstr(sum)), NULL);
    if (rc == 0)
        ctx->applied = 1;
    return rc;
}

static int migrate_list(tern_db *db, const tern_db_migration *list)
{
    for (const tern_db_migration *m = list; m && m->name; m++) {
        apply_ctx ctx = { m, 0 };
        int rc;

        if (m->sql == NULL)
            return TERN_EINVAL;
        rc = db_tx_run(NULL, db, apply_one, &ctx, 0);
        if (rc != 0) {
            /* Database down: the pool has said so already. */
            if (rc != TERN_EUNAVAIL)
                tern_log(TERN_LOG_ERROR, "db: migration %s not applied: %s", m->name,
                         tern_strerror(rc));
            return rc;
        }
        if (ctx.applied)
            tern_log(TERN_LOG_INFO, "db: applied migration %s", m->name);
    }
    return 0;
}

int tern_db_migrate(tern_db *db, const tern_db_migration *list)
{
    if (db == NULL || db->tx_conn != NULL)
        return TERN_EINVAL;
    return migrate_list(db, list);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tern_db_migration *)a)->name, ((const tern_db_migration *)b)->name);
}

/* Reads a whole file into a NUL-terminated heap string. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        (unsigned long)n <= MAX_MIGRATION_FILE && fseek(f, 0, SEEK_SET) == 0 &&
        (s = tern_malloc((size_t)n + 1)) != NULL) {
        if (fread(s, 1, (size_t)n, f) != (size_t)n) {
            tern_free(s);
            s = NULL;
        } else {
            s[n] = '\0';
        }
    }
    fclose(f);
    return s;
}

int tern_db_migrate_dir(tern_db *db, const char *dir)
{
    tern_db_migration *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (db == NULL || dir == NULL)
        return TERN_EINVAL;
    d = opendir(dir);
    if (d == NULL) {
        tern_log(TERN_LOG_ERROR, "db: cannot open migrations directory %s", dir);
        return TERN_ENOTFOUND;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char *path;

        if (len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0 || de->d_name[0] == '.')
            continue;
        if (n + 2 > cap) {
            tern_db_migration *bigger;

            cap = cap ? cap * 2 : 16;
            bigger = tern_realloc(list, cap * sizeof *list);
            if (bigger == NULL) {
                rc = TERN_ENOMEM;
                break;
            }
            list = bigger;
        }
        path = tern_malloc(strlen(dir) + len + 2);
        list[n].name = tern_strdup(de->d_name);
        if (path != NULL)
            sprintf(path, "%s/%s", dir, de->d_name);
        list[n].sql = path ? read_file(path) : NULL;
        tern_free(path);
        if (list[n].name == NULL || list[n].sql == NULL) {
            tern_log(TERN_LOG_ERROR, "db: cannot read migration %s/%s", dir, de->d_name);
            rc = TERN_EIO;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 0) {
        qsort(list, n, sizeof *list, by_name);
        list[n].name = NULL;
        list[n].sql = NULL;
        rc = migrate_list(db, list);
    }
    for (size_t i = 0; i < n; i++) {
        tern_free((char *)list[i].name);
        tern_free((char *)list[i].sql);
    }
    tern_free(list);
    return rc;
}

int db_migrate_configured(tern_db *db)
{
    int rc = 0;

    if (db->cfg.migrations != NULL)
        rc = migrate_list(db, db->cfg.migrations);
    if (rc == 0 && db->cfg.migrations_dir != NULL)
        rc = tern_db_migrate_dir(db, db->cfg.migrations_dir);
    return rc;
}
