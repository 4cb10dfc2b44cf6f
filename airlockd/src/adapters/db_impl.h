/* Inside the stores' database (db.c): what a driver provides and the
 * state both keep. Private to db.c, db_sqlite.c and db_pg.c. */
#ifndef ALD_ADAPTERS_DB_IMPL_H
#define ALD_ADAPTERS_DB_IMPL_H

#include "airlockd/adapters/db.h"

#include <stdatomic.h>

struct db_ops {
    int (*acquire)(struct ald_db *db, struct ald_db_conn **out);
    void (*release)(struct ald_db *db, struct ald_db_conn *c);
    int (*exec)(struct ald_db_conn *c, const struct ald_sql *q, const struct ald_db_arg *args,
                int n, struct ald_db_rows *rows);
    /* several statements, no parameters, no rows */
    int (*script)(struct ald_db_conn *c, const char *sql);
    int (*down)(struct ald_db *db, char *why, size_t whysz);
    void (*close)(struct ald_db *db);
};

/* The head of every driver's database struct. */
struct ald_db {
    const struct db_ops *ops;
    enum ald_db_driver driver;
    atomic_int refs;
    char *path; /* SQLite's file; NULL for PostgreSQL */
};

/* The head of every driver's connection. */
struct ald_db_conn {
    struct ald_db *db;
    int fresh;  /* connected by this acquire (not taken from the pool) */
    int broken; /* the last exec found the connection lost (or gave up on it) */
    int late;   /* ... because no answer came in time */
};

int ald_dbsq_open(struct ald_db **out, const char *path);
int ald_dbpg_open(struct ald_db **out, const struct ald_db_cfg *cfg);

/* Rows: `n` rows of `ncols` values, zeroed (init), or room for one more
 * row in a table growing by doubling (*cap: rows allocated). */
int ald_db_rows_init(struct ald_db_rows *r, int n, int ncols);
int ald_db_rows_grow(struct ald_db_rows *r, int *cap);
/* A NUL-terminated copy of n bytes; NULL when out of memory. */
char *ald_db_copy(const char *v, size_t n);

#endif
