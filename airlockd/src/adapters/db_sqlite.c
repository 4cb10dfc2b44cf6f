/* The SQLite driver of the stores' database (db.h): one connection in WAL
 * mode (sqlite_conn.h) under a mutex, each statement prepared once. */
#include "db_impl.h"
#include "sqlite_conn.h"

#include "airlock/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SQ_STMTS 96

struct sq_db {
    struct ald_db base;
    struct ald_db_conn conn;
    sqlite3 *db;
    pthread_mutex_t lock;
    const struct ald_sql *keys[SQ_STMTS];
    sqlite3_stmt *stmts[SQ_STMTS];
};

static struct sq_db *sq_of(struct ald_db *db)
{
    return (struct sq_db *)db;
}

static int sq_acquire(struct ald_db *db, struct ald_db_conn **out)
{
    struct sq_db *s = sq_of(db);
    pthread_mutex_lock(&s->lock);
    *out = &s->conn;
    return 0;
}

static void sq_release(struct ald_db *db, struct ald_db_conn *c)
{
    (void)c;
    pthread_mutex_unlock(&sq_of(db)->lock);
}

/* `sql` with every $N placeholder written ?N (SQLite numbers them so);
 * a new string or NULL. */
static char *placeholders(const char *sql)
{
    char *out = ald_db_copy(sql, strlen(sql));
    for (char *p = out; p && *p; p++)
        if (p[0] == '$' && p[1] >= '0' && p[1] <= '9')
            p[0] = '?';
    return out;
}

/* The prepared statement of `q` (kept when there is room, else *tmp is set
 * and the caller finalizes it), reset and unbound; NULL on error. */
static sqlite3_stmt *sq_stmt(struct sq_db *s, const struct ald_sql *q, int *tmp)
{
    int free_slot = -1;
    *tmp = 0;
    for (int i = 0; i < SQ_STMTS; i++) {
        if (s->keys[i] == q) {
            sqlite3_reset(s->stmts[i]);
            sqlite3_clear_bindings(s->stmts[i]);
            return s->stmts[i];
        }
        if (!s->keys[i] && free_slot < 0)
            free_slot = i;
    }
    char *sql = placeholders(q->sql);
    if (!sql) {
        al_error_set(AL_ENOMEM, "database: out of memory");
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, free_slot >= 0 ? SQLITE_PREPARE_PERSISTENT : 0, &st,
                           NULL) != SQLITE_OK)
        ald_sql_fail(s->db, "prepare");
    free(sql);
    if (st && free_slot >= 0) {
        s->keys[free_slot] = q;
        s->stmts[free_slot] = st;
    } else if (st) {
        *tmp = 1;
    }
    return st;
}

static int sq_bind(sqlite3_stmt *st, const struct ald_db_arg *args, int n)
{
    for (int i = 0; i < n; i++) {
        const struct ald_db_arg *a = &args[i];
        int rc = SQLITE_OK;
        if (a->type == ALD_DB_INT)
            rc = sqlite3_bind_int64(st, i + 1, a->i);
        else if (a->type == ALD_DB_BLOB)
            rc = sqlite3_bind_blob(st, i + 1, a->s, (int)a->len, SQLITE_TRANSIENT);
        else if (a->type == ALD_DB_TEXT && a->s)
            rc =
                sqlite3_bind_text(st, i + 1, a->s, a->len < 0 ? -1 : (int)a->len, SQLITE_TRANSIENT);
        else
            rc = sqlite3_bind_null(st, i + 1);
        if (rc != SQLITE_OK)
            return AL_ENOMEM;
    }
    return 0;
}

/* Copies the current row of `st` into `rows`. */
static int sq_row(sqlite3_stmt *st, struct ald_db_rows *rows, int *cap)
{
    if (ald_db_rows_grow(rows, cap) < 0)
        return AL_ENOMEM;
    size_t base = (size_t)rows->n * (size_t)rows->ncols;
    for (int c = 0; c < rows->ncols; c++) {
        const char *v = NULL;
        if (sqlite3_column_type(st, c) == SQLITE_BLOB)
            v = sqlite3_column_blob(st, c);
        else if (sqlite3_column_type(st, c) != SQLITE_NULL)
            v = (const char *)sqlite3_column_text(st, c);
        size_t len = (size_t)sqlite3_column_bytes(st, c);
        rows->val[base + (size_t)c] = NULL;
        rows->len[base + (size_t)c] = len;
        if (sqlite3_column_type(st, c) != SQLITE_NULL &&
            !(rows->val[base + (size_t)c] = ald_db_copy(v ? v : "", len))) {
            for (int k = 0; k < c; k++)
                free(rows->val[base + (size_t)k]);
            return AL_ENOMEM;
        }
    }
    rows->n++;
    return 0;
}

static int sq_exec(struct ald_db_conn *c, const struct ald_sql *q, const struct ald_db_arg *args,
                   int n, struct ald_db_rows *rows)
{
    struct sq_db *s = sq_of(c->db);
    int tmp = 0;
    sqlite3_stmt *st = sq_stmt(s, q, &tmp);
    if (!st)
        return AL_EIO;
    int err = sq_bind(st, args, n);
    int cap = 0, rc = SQLITE_DONE;
    if (err == 0 && rows) {
        rows->ncols = sqlite3_column_count(st);
        rows->n = 0;
    }
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if (rows)
            err = sq_row(st, rows, &cap);
    if (err == 0 && rc == SQLITE_CONSTRAINT)
        err = al_error_set(AL_EEXISTS, "database: %s", sqlite3_errmsg(s->db));
    else if (err == 0 && rc != SQLITE_DONE)
        err = ald_sql_fail(s->db, "step");
    if (err == 0 && rows)
        rows->changes = sqlite3_changes(s->db);
    if (tmp)
        sqlite3_finalize(st);
    else
        sqlite3_reset(st);
    return err;
}

static int sq_script(struct ald_db_conn *c, const char *sql)
{
    struct sq_db *s = sq_of(c->db);
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    int err = al_error_set(AL_EIO, "database %s: %s", s->base.path, msg ? msg : "failed");
    sqlite3_free(msg);
    return err;
}

static int sq_down(struct ald_db *db, char *why, size_t whysz)
{
    (void)db;
    if (whysz)
        why[0] = '\0';
    return 0;
}

static void sq_close(struct ald_db *db)
{
    struct sq_db *s = sq_of(db);
    for (int i = 0; i < SQ_STMTS; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s->base.path);
    free(s);
}

static const struct db_ops sq_ops = {
    .acquire = sq_acquire,
    .release = sq_release,
    .exec = sq_exec,
    .script = sq_script,
    .down = sq_down,
    .close = sq_close,
};

int ald_dbsq_open(struct ald_db **out, const char *path)
{
    *out = NULL;
    if (!path)
        return al_error_set(AL_EINVAL, "database: no SQLite path");
    /* the stores' UPDATE ... RETURNING and upserts (the cluster's queries) */
    if (sqlite3_libversion_number() < 3035000)
        return al_error_set(AL_EINVAL,
                            "database: SQLite %s is too old: airlockd needs 3.35 or newer",
                            sqlite3_libversion());
    struct sq_db *s = calloc(1, sizeof(*s));
    if (!s)
        return AL_ENOMEM;
    s->base.ops = &sq_ops;
    s->base.driver = ALD_DB_SQLITE;
    atomic_init(&s->base.refs, 1);
    s->conn.db = &s->base;
    pthread_mutex_init(&s->lock, NULL);
    int err = ald_sql_open(&s->db, path, "PRAGMA foreign_keys=ON;");
    if (err == 0 && !(s->base.path = ald_db_copy(path, strlen(path))))
        err = AL_ENOMEM;
    if (err < 0) {
        sq_close(&s->base);
        return err;
    }
    *out = &s->base;
    return 0;
}
