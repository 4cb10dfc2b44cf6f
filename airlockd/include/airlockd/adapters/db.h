/* The database behind airlockd's stores (store.h, store_jobs.h, the webhook
 * outbox in webhooks.h): SQLite (one file, the single-machine default) or
 * PostgreSQL (libpq, a pool of connections; docs/airlockd.md "Store").
 *
 * The stores write their SQL once, with $1.. placeholders, and run it
 * through this interface; where the two dialects differ (JSON access, the
 * schema's types) a query carries a PostgreSQL text of its own.
 *
 * Errors of every call here: AL_EEXISTS for a constraint violation, AL_EAGAIN
 * when the database cannot be reached or a statement ran out of time (the
 * API answers 503 with al_error_last() as the reason), AL_EIO otherwise.
 * No call waits longer than the configured connect or statement timeout. */
#ifndef ALD_ADAPTERS_DB_H
#define ALD_ADAPTERS_DB_H

#include <stddef.h>
#include <stdint.h>

enum ald_db_driver { ALD_DB_SQLITE, ALD_DB_POSTGRES };

struct ald_db_cfg {
    enum ald_db_driver driver;
    const char *path;              /* SQLite: the database file */
    const char *conninfo;          /* PostgreSQL: a libpq conninfo string or URI */
    unsigned pool_size;            /* PostgreSQL: connections (0: 4) */
    unsigned statement_timeout_ms; /* PostgreSQL: per statement (0: 5000) */
    unsigned connect_timeout_ms;   /* PostgreSQL: connecting, or waiting for a free
                                      connection of the pool (0: 3000) */
};

struct ald_db;
struct ald_db_conn;

/* Opens the database: SQLite opens (creating) the file; PostgreSQL makes
 * the pool and connects one connection, so that a wrong conninfo fails
 * here. *out has one reference: ald_db_unref() it. */
int ald_db_open(struct ald_db **out, const struct ald_db_cfg *cfg);
/* ald_db_open() of the SQLite file `path`. */
int ald_db_open_sqlite(struct ald_db **out, const char *path);
/* A database for another store beside `db`'s: SQLite, a connection of its
 * own on the same file (as each store had before: their locks apart);
 * PostgreSQL, another reference to the same pool. ald_db_unref() it. */
int ald_db_sibling(struct ald_db *db, struct ald_db **out);
/* Another reference to `db` (every store keeps one); returns db. */
struct ald_db *ald_db_ref(struct ald_db *db);
/* Drops a reference; the last one closes the database. NULL is ignored. */
void ald_db_unref(struct ald_db *db);
enum ald_db_driver ald_db_driver_of(const struct ald_db *db);
/* SQLite's file, NULL for PostgreSQL. */
const char *ald_db_path(const struct ald_db *db);
/* 1 while the last attempt to reach PostgreSQL failed (and until a later
 * one succeeds), with the reason in `why`; always 0 for SQLite. */
int ald_db_down(struct ald_db *db, char *why, size_t whysz);

/* One statement, in both dialects: `pg` NULL means `sql` serves both. The
 * address identifies it (SQLite keeps it prepared per connection), so give
 * every query a static one. {now} in either text stands for the database's
 * clock in Unix milliseconds (an integer expression: PostgreSQL's
 * clock_timestamp(), SQLite's julianday('now')); every node of a cluster
 * compares times with it, never with its own clock. It is expanded once per
 * query, the first time it runs. */
struct ald_sql {
    const char *sql;
    const char *pg;
};

enum ald_db_type { ALD_DB_NULL, ALD_DB_TEXT, ALD_DB_INT, ALD_DB_BLOB };

/* A parameter: text (`s`, NUL-terminated unless len >= 0; NULL is SQL
 * NULL), an integer, or bytes. Borrowed for the call. */
struct ald_db_arg {
    enum ald_db_type type;
    const char *s;
    long long len;
    int64_t i;
};
#define ALD_DB_TXT(v) ((struct ald_db_arg){.type = ALD_DB_TEXT, .s = (v), .len = -1})
#define ALD_DB_TXTN(v, n)                                                                          \
    ((struct ald_db_arg){.type = ALD_DB_TEXT, .s = (v), .len = (long long)(n)})
#define ALD_DB_INT(v) ((struct ald_db_arg){.type = ALD_DB_INT, .i = (int64_t)(v)})
#define ALD_DB_BLOB(v, n)                                                                          \
    ((struct ald_db_arg){.type = ALD_DB_BLOB, .s = (const char *)(v), .len = (long long)(n)})

/* The rows of a result, all copied out of the database's buffers. */
struct ald_db_rows {
    int n;           /* rows */
    int ncols;       /* columns */
    int64_t changes; /* rows an INSERT/UPDATE/DELETE touched */
    char **val;      /* n * ncols values, NULL for SQL NULL; text NUL-terminated */
    size_t *len;     /* their lengths in bytes */
};
/* The value at (row, col): text or bytes (PostgreSQL's bytea decoded; NULL
 * for SQL NULL or a cell outside the result), its length, an integer (0 for
 * NULL). */
const char *ald_db_text(const struct ald_db_rows *r, int row, int col);
size_t ald_db_len(const struct ald_db_rows *r, int row, int col);
int64_t ald_db_int(const struct ald_db_rows *r, int row, int col);
int ald_db_isnull(const struct ald_db_rows *r, int row, int col);
/* Frees the values; `r` may be reused. */
void ald_db_rows_free(struct ald_db_rows *r);

/* Takes a connection (SQLite: the one connection, under its lock;
 * PostgreSQL: a free one of the pool, waiting at most the connect timeout,
 * connecting it when needed, no sooner than the reconnect backoff allows).
 * Give it back with ald_db_release(). */
int ald_db_acquire(struct ald_db *db, struct ald_db_conn **out);
void ald_db_release(struct ald_db *db, struct ald_db_conn *c);

/* Runs `q` with `n` parameters on a connection. `rows` (may be NULL)
 * receives the result (ald_db_rows_free() it, also on error). */
int ald_db_exec(struct ald_db_conn *c, const struct ald_sql *q, const struct ald_db_arg *args,
                int n, struct ald_db_rows *rows);

/* ald_db_exec on a connection of its own, taken and given back; when a
 * pooled PostgreSQL connection turns out to be broken (the server
 * restarted), once more on a fresh one. */
int ald_db_run(struct ald_db *db, const struct ald_sql *q, const struct ald_db_arg *args, int n,
               struct ald_db_rows *rows);

/* BEGIN (SQLite: IMMEDIATE), COMMIT, ROLLBACK on a connection. */
int ald_db_begin(struct ald_db_conn *c);
int ald_db_commit(struct ald_db_conn *c);
void ald_db_rollback(struct ald_db_conn *c);

/* One schema step of a store: `sql` (several statements) in which
 * {serial}, {int} and {blob} stand for the column types of the driver
 * (SQLite: INTEGER PRIMARY KEY AUTOINCREMENT, INTEGER, BLOB; PostgreSQL:
 * BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, BIGINT, BYTEA) and
 * {now} for the database's clock (struct ald_sql), then
 * `sqlite` or `pg`, what only that driver runs (may be NULL). */
struct ald_db_migration {
    const char *sql;
    const char *sqlite;
    const char *pg;
};

/* Brings the store `name` to version `n` by running the steps it has not
 * had, in one transaction. The version is kept in PostgreSQL's table
 * airlock_schema (name, version), under an advisory lock so that two
 * daemons starting at once do not both migrate; in SQLite in PRAGMA
 * user_version when `versioned` (the main store), else every step runs
 * each time (CREATE ... IF NOT EXISTS). AL_EINVAL when the database's
 * version is newer than `n`. */
int ald_db_migrate(struct ald_db *db, const char *name, int versioned,
                   const struct ald_db_migration *steps, int n);

/* Adds the column `column` of `type` to `table` unless it has one (the
 * stores whose SQLite schema is not versioned: ALTER TABLE there has no IF
 * NOT EXISTS). The names are the caller's constants, never input. */
int ald_db_add_column(struct ald_db *db, const char *table, const char *column, const char *type);

/* Runs `sql` (several statements, no parameters) on a connection of its
 * own: for tests that empty a PostgreSQL database. */
int ald_db_script(struct ald_db *db, const char *sql);

#endif
