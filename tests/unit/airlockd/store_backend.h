/* Which database the store tests (store.c, store_jobs.c) run on: SQLite
 * files (the default), or PostgreSQL when AIRLOCK_TEST_PG holds a libpq
 * conninfo (set by pg_run.sh, which starts a scratch server: ctest's
 * unit_airlockd_*_pg). The tests open every store through t_*_open(), so
 * the same assertions run on both. */
#ifndef AIRLOCK_TEST_STORE_BACKEND_H
#define AIRLOCK_TEST_STORE_BACKEND_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlockd/adapters/db.h"
#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_jobs.h"
#include "airlockd/adapters/webhooks.h"

static inline const char *t_pg(void)
{
    return getenv("AIRLOCK_TEST_PG");
}

/* A database of its own: the SQLite file `path`, or the PostgreSQL one
 * with a pool of `pool` connections and statement and connect timeouts of
 * `timeout_ms`. NULL on failure. */
static inline struct ald_db *t_db_pool(const char *path, unsigned pool, unsigned timeout_ms)
{
    struct ald_db_cfg cfg = {.driver = ALD_DB_SQLITE, .path = path};
    if (t_pg()) {
        cfg.driver = ALD_DB_POSTGRES;
        cfg.conninfo = t_pg();
        cfg.pool_size = pool;
        cfg.statement_timeout_ms = timeout_ms;
        cfg.connect_timeout_ms = timeout_ms;
    }
    struct ald_db *db = NULL;
    return ald_db_open(&db, &cfg) == 0 ? db : NULL;
}

/* t_db_pool with a pool of 2 and short timeouts. */
static inline struct ald_db *t_db(const char *path)
{
    return t_db_pool(path, 2, 2000);
}

/* PostgreSQL: drops every table, so that a test program starts as on a
 * new SQLite file. 0 on SQLite. */
static inline int t_reset(void)
{
    if (!t_pg())
        return 0;
    struct ald_db *db = t_db(NULL);
    int err = db ? ald_db_script(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public") : -1;
    ald_db_unref(db);
    return err;
}

/* Makes a scratch directory (mkdtemp under /var/tmp) and writes the path
 * of an SQLite file in it to db[size]; then starts PostgreSQL's database
 * afresh (t_reset). */
static inline int t_scratch_setup(char *db, size_t size)
{
    char dir[] = "/var/tmp/airlockd-store-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, size, "%s/airlockd.db", dir);
    return t_reset();
}

/* Removes the SQLite file db, its -wal and -shm, and their directory. */
static inline void t_scratch_teardown(const char *db)
{
    char p[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", db, suffix[i]);
        unlink(p);
    }
    char *slash = strrchr(db, '/');
    if (slash) {
        snprintf(p, sizeof(p), "%.*s", (int)(slash - db), db);
        rmdir(p);
    }
}

/* The SQLite file of the including program's tests: t_setup and
 * t_teardown (cmocka fixtures) make and remove it with t_scratch_setup and
 * t_scratch_teardown. */
static char t_db_path[256];

static inline int t_setup(void **state)
{
    (void)state;
    return t_scratch_setup(t_db_path, sizeof(t_db_path));
}

static inline int t_teardown(void **state)
{
    (void)state;
    t_scratch_teardown(t_db_path);
    return 0;
}

#define T_OPEN_DB(open_db, out, path)                                                              \
    do {                                                                                           \
        struct ald_db *t_db_ = t_db(path);                                                         \
        int t_err_ = t_db_ ? open_db(out, t_db_) : -1;                                             \
        ald_db_unref(t_db_);                                                                       \
        if (t_err_ < 0)                                                                            \
            *(out) = NULL;                                                                         \
        t_rc_ = t_err_;                                                                            \
    } while (0)

static inline int t_store_open(struct ald_store **out, const char *path)
{
    int t_rc_;
    T_OPEN_DB(ald_store_open_db, out, path);
    return t_rc_;
}

static inline int t_jobstore_open(struct ald_jobstore **out, const char *path)
{
    int t_rc_;
    T_OPEN_DB(ald_jobstore_open_db, out, path);
    return t_rc_;
}

static inline int t_whstore_open(struct ald_whstore **out, const char *path)
{
    int t_rc_;
    T_OPEN_DB(ald_whstore_open_db, out, path);
    return t_rc_;
}

/* The one integer `sql` ($1: `arg`) returns, on a connection of its own;
 * -1 on failure. */
static inline long long t_count(const char *path, const struct ald_sql *sql, const char *arg)
{
    struct ald_db *db = t_db(path);
    struct ald_db_rows r = {0};
    struct ald_db_arg a = ALD_DB_TXT(arg);
    long long n = db && ald_db_run(db, sql, &a, 1, &r) == 0 && r.n == 1 ? ald_db_int(&r, 0, 0) : -1;
    ald_db_rows_free(&r);
    ald_db_unref(db);
    return n;
}

#endif
