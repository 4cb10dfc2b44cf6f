/* The stores' database, SQLite or PostgreSQL (airlockd/adapters/db.h).
 * What both drivers share: references, rows, the {type} schema templates,
 * migrations, the retry of ald_db_run. The drivers: db_sqlite.c, db_pg.c,
 * behind struct db_ops (db_impl.h). */
#include "db_impl.h"

#include "airlock/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ald_db_open(struct ald_db **out, const struct ald_db_cfg *cfg)
{
    *out = NULL;
    if (cfg->driver == ALD_DB_POSTGRES)
        return ald_dbpg_open(out, cfg);
    return ald_dbsq_open(out, cfg->path);
}

int ald_db_open_sqlite(struct ald_db **out, const char *path)
{
    struct ald_db_cfg cfg = {.driver = ALD_DB_SQLITE, .path = path};
    return ald_db_open(out, &cfg);
}

int ald_db_sibling(struct ald_db *db, struct ald_db **out)
{
    if (db->driver == ALD_DB_SQLITE)
        return ald_db_open_sqlite(out, db->path);
    *out = ald_db_ref(db);
    return 0;
}

struct ald_db *ald_db_ref(struct ald_db *db)
{
    atomic_fetch_add(&db->refs, 1);
    return db;
}

void ald_db_unref(struct ald_db *db)
{
    if (db && atomic_fetch_sub(&db->refs, 1) == 1)
        db->ops->close(db);
}

enum ald_db_driver ald_db_driver_of(const struct ald_db *db)
{
    return db->driver;
}

const char *ald_db_path(const struct ald_db *db)
{
    return db->path;
}

int ald_db_down(struct ald_db *db, char *why, size_t whysz)
{
    return db->ops->down(db, why, whysz);
}

int ald_db_acquire(struct ald_db *db, struct ald_db_conn **out)
{
    return db->ops->acquire(db, out);
}

void ald_db_release(struct ald_db *db, struct ald_db_conn *c)
{
    if (c)
        db->ops->release(db, c);
}

/* The database's clock in Unix milliseconds, for {now} (db.h). */
#define NOW_SQLITE "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
#define NOW_PG     "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

/* `sql` with every {now} replaced by `now`: a new string (free() it) or
 * NULL when out of memory. */
static char *expand_now(const char *sql, const char *now)
{
    size_t k = 0, nl = strlen(now);
    for (const char *p = strstr(sql, "{now}"); p; p = strstr(p + 5, "{now}"))
        k++;
    char *out = malloc(strlen(sql) + k * nl + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = sql; *p;) {
        if (strncmp(p, "{now}", 5) == 0) {
            memcpy(out + o, now, nl);
            o += nl;
            p += 5;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* The queries with {now}, expanded once and kept for the process's life
 * (a query is static, so is its expansion: SQLite keys its prepared
 * statements by the address, which stays the same). */
struct now_query {
    const struct ald_sql *orig;
    struct ald_sql q;
    struct now_query *next;
};
static pthread_mutex_t now_lock = PTHREAD_MUTEX_INITIALIZER;
static struct now_query *now_queries;

/* `q` itself when it has no {now}, else its expansion; NULL when out of
 * memory. */
static const struct ald_sql *with_now(const struct ald_sql *q)
{
    if (!strstr(q->sql, "{now}") && !(q->pg && strstr(q->pg, "{now}")))
        return q;
    pthread_mutex_lock(&now_lock);
    struct now_query *e = now_queries;
    while (e && e->orig != q)
        e = e->next;
    if (!e && (e = calloc(1, sizeof(*e))) != NULL) {
        e->orig = q;
        e->q.sql = expand_now(q->sql, NOW_SQLITE);
        e->q.pg = expand_now(q->pg ? q->pg : q->sql, NOW_PG);
        if (e->q.sql && e->q.pg) {
            e->next = now_queries;
            now_queries = e;
        } else {
            free((char *)e->q.sql);
            free((char *)e->q.pg);
            free(e);
            e = NULL;
        }
    }
    pthread_mutex_unlock(&now_lock);
    return e ? &e->q : NULL;
}

int ald_db_exec(struct ald_db_conn *c, const struct ald_sql *q, const struct ald_db_arg *args,
                int n, struct ald_db_rows *rows)
{
    if (rows)
        memset(rows, 0, sizeof(*rows));
    if (!(q = with_now(q)))
        return al_error_set(AL_ENOMEM, "database: out of memory");
    return c->db->ops->exec(c, q, args, n, rows);
}

int ald_db_run(struct ald_db *db, const struct ald_sql *q, const struct ald_db_arg *args, int n,
               struct ald_db_rows *rows)
{
    int err = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct ald_db_conn *c = NULL;
        if ((err = ald_db_acquire(db, &c)) < 0)
            return err;
        int was_pooled = !c->fresh;
        err = ald_db_exec(c, q, args, n, rows);
        int broken = c->broken && !c->late;
        ald_db_release(db, c);
        /* a pooled connection the server closed (it restarted): once more,
         * on a new one; a fresh one that fails says the database is down,
         * and one that did not answer in time is not waited for twice */
        if (!(err == AL_EAGAIN && broken && was_pooled))
            break;
        if (rows)
            ald_db_rows_free(rows);
    }
    return err;
}

static const struct ald_sql q_begin = {"BEGIN IMMEDIATE", "BEGIN"};
static const struct ald_sql q_commit = {"COMMIT", NULL};
static const struct ald_sql q_rollback = {"ROLLBACK", NULL};

int ald_db_begin(struct ald_db_conn *c)
{
    return ald_db_exec(c, &q_begin, NULL, 0, NULL);
}

int ald_db_commit(struct ald_db_conn *c)
{
    return ald_db_exec(c, &q_commit, NULL, 0, NULL);
}

void ald_db_rollback(struct ald_db_conn *c)
{
    char keep[512];
    snprintf(keep, sizeof(keep), "%s", al_error_last());
    (void)ald_db_exec(c, &q_rollback, NULL, 0, NULL);
    al_error_set(AL_ERROR, "%s", keep); /* the failure that made us roll back */
}

/* 1 when (row, col) is in the result. */
static int in_rows(const struct ald_db_rows *r, int row, int col)
{
    return row >= 0 && row < r->n && col >= 0 && col < r->ncols;
}

const char *ald_db_text(const struct ald_db_rows *r, int row, int col)
{
    return in_rows(r, row, col) ? r->val[row * r->ncols + col] : NULL;
}

size_t ald_db_len(const struct ald_db_rows *r, int row, int col)
{
    return in_rows(r, row, col) ? r->len[row * r->ncols + col] : 0;
}

int ald_db_isnull(const struct ald_db_rows *r, int row, int col)
{
    return ald_db_text(r, row, col) == NULL;
}

int64_t ald_db_int(const struct ald_db_rows *r, int row, int col)
{
    const char *v = ald_db_text(r, row, col);
    return v ? (int64_t)strtoll(v, NULL, 10) : 0;
}

void ald_db_rows_free(struct ald_db_rows *r)
{
    if (r->val)
        for (int i = 0; i < r->n * r->ncols; i++)
            free(r->val[i]);
    free(r->val);
    free(r->len);
    memset(r, 0, sizeof(*r));
}

int ald_db_rows_init(struct ald_db_rows *r, int n, int ncols)
{
    size_t cells = (size_t)n * (size_t)ncols;
    r->n = 0;
    r->ncols = ncols;
    r->val = calloc(cells ? cells : 1, sizeof(*r->val));
    r->len = calloc(cells ? cells : 1, sizeof(*r->len));
    if (!r->val || !r->len)
        return AL_ENOMEM;
    r->n = n;
    return 0;
}

int ald_db_rows_grow(struct ald_db_rows *r, int *cap)
{
    if (r->n < *cap)
        return 0;
    int ncap = *cap ? *cap * 2 : 16;
    size_t cells = (size_t)ncap * (size_t)r->ncols;
    char **v = realloc(r->val, (cells ? cells : 1) * sizeof(*v));
    if (!v)
        return AL_ENOMEM;
    r->val = v;
    size_t *l = realloc(r->len, (cells ? cells : 1) * sizeof(*l));
    if (!l)
        return AL_ENOMEM;
    r->len = l;
    *cap = ncap;
    return 0;
}

char *ald_db_copy(const char *v, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, v, n);
        p[n] = '\0';
    }
    return p;
}

/* The template `sql` with {serial}, {int} and {blob} replaced by the
 * driver's types, and {now} by its clock. A new string (free() it) or NULL. */
static char *expand(const char *sql, enum ald_db_driver drv)
{
    static const char *const keys[] = {"{serial}", "{int}", "{blob}", "{now}"};
    static const char *const sq[] = {"INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "BLOB",
                                     NOW_SQLITE};
    static const char *const pg[] = {"BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                     "BIGINT", "BYTEA", NOW_PG};
    const char *const *to = drv == ALD_DB_POSTGRES ? pg : sq;
    size_t cap = strlen(sql) * 13 + 1, o = 0; /* each key grows at most 12 times */
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = sql; *p;) {
        size_t k = 0;
        while (k < 4 && strncmp(p, keys[k], strlen(keys[k])) != 0)
            k++;
        if (k < 4) {
            size_t tl = strlen(to[k]);
            memcpy(out + o, to[k], tl);
            o += tl;
            p += strlen(keys[k]);
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* Runs the steps from `from` to `n` on `c` (in the caller's transaction). */
static int run_steps(struct ald_db *db, struct ald_db_conn *c, const char *name,
                     const struct ald_db_migration *steps, int from, int n)
{
    int err = 0;
    for (int i = from; i < n && err == 0; i++) {
        char *sql = expand(steps[i].sql, db->driver);
        if (!sql)
            return AL_ENOMEM;
        err = db->ops->script(c, sql);
        free(sql);
        const char *only = db->driver == ALD_DB_POSTGRES ? steps[i].pg : steps[i].sqlite;
        if (err == 0 && only)
            err = db->ops->script(c, only);
        if (err < 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", al_error_last());
            err = al_error_set(err, "database: the %s schema, step %d: %s", name, i + 1, why);
        }
    }
    return err;
}

static const struct ald_sql q_pg_lock = {"SELECT pg_advisory_xact_lock(7271331)", NULL};
static const struct ald_sql q_pg_vtable = {
    "CREATE TABLE IF NOT EXISTS airlock_schema (name TEXT PRIMARY KEY, version BIGINT NOT NULL)",
    NULL};
static const struct ald_sql q_pg_vget = {"SELECT version FROM airlock_schema WHERE name = $1",
                                         NULL};
static const struct ald_sql q_pg_vset = {
    "INSERT INTO airlock_schema (name, version) VALUES ($1, $2)"
    " ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version",
    NULL};
static const struct ald_sql q_sq_vget = {"PRAGMA user_version", NULL};

int ald_db_migrate(struct ald_db *db, const char *name, int versioned,
                   const struct ald_db_migration *steps, int n)
{
    struct ald_db_conn *c = NULL;
    struct ald_db_rows rows = {0};
    int pg = db->driver == ALD_DB_POSTGRES;
    int err = ald_db_acquire(db, &c);
    if (err < 0)
        return err;
    if ((err = ald_db_begin(c)) < 0)
        goto out;
    if (pg) {
        struct ald_db_arg a = ALD_DB_TXT(name);
        if ((err = ald_db_exec(c, &q_pg_lock, NULL, 0, NULL)) < 0 ||
            (err = ald_db_exec(c, &q_pg_vtable, NULL, 0, NULL)) < 0 ||
            (err = ald_db_exec(c, &q_pg_vget, &a, 1, &rows)) < 0)
            goto out;
    } else if (versioned && (err = ald_db_exec(c, &q_sq_vget, NULL, 0, &rows)) < 0) {
        goto out;
    }
    int version = rows.n > 0 ? (int)ald_db_int(&rows, 0, 0) : 0;
    if (version > n) {
        err = al_error_set(AL_EINVAL,
                           "database: the %s schema's version %d is newer than this"
                           " airlockd's (%d)",
                           name, version, n);
        goto out;
    }
    if ((err = run_steps(db, c, name, steps, version, n)) < 0)
        goto out;
    if (pg) {
        struct ald_db_arg a[2] = {ALD_DB_TXT(name), ALD_DB_INT(n)};
        err = ald_db_exec(c, &q_pg_vset, a, 2, NULL);
    } else if (versioned && version < n) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", n);
        err = db->ops->script(c, pragma);
    }
    if (err == 0)
        err = ald_db_commit(c);
out:
    if (err < 0)
        ald_db_rollback(c);
    ald_db_rows_free(&rows);
    ald_db_release(db, c);
    return err;
}

static const struct ald_sql q_has_column = {
    "SELECT count(*) FROM pragma_table_info($1) WHERE name = $2",
    "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND table_name = $1 AND column_name = $2"};

int ald_db_add_column(struct ald_db *db, const char *table, const char *column, const char *type)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(table), ALD_DB_TXT(column)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(db, &q_has_column, a, 2, &r);
    int64_t has = ald_db_int(&r, 0, 0);
    ald_db_rows_free(&r);
    if (err < 0 || has > 0)
        return err;
    /* PostgreSQL: IF NOT EXISTS, for two daemons starting at once */
    char sql[256];
    int n = snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s%s %s", table,
                     db->driver == ALD_DB_POSTGRES ? "IF NOT EXISTS " : "", column, type);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return al_error_set(AL_EINVAL, "database: column %s.%s: name too long", table, column);
    return ald_db_script(db, sql);
}

int ald_db_script(struct ald_db *db, const char *sql)
{
    struct ald_db_conn *c = NULL;
    int err = ald_db_acquire(db, &c);
    if (err == 0)
        err = db->ops->script(c, sql);
    ald_db_release(db, c);
    return err;
}
