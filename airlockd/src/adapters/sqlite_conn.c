/* Shared SQLite connection helpers of the store (sqlite_conn.h). */
#include "sqlite_conn.h"

#include "airlock/error.h"

#include <stddef.h>

int ald_sql_fail(sqlite3 *db, const char *what)
{
    return al_error_set(AL_EIO, "database: %s: %s", what, sqlite3_errmsg(db));
}

int ald_sql_open(sqlite3 **out, const char *path, const char *pragmas)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int err = 0;
    *out = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        err = al_error_set(AL_EIO, "database %s: %s", path,
                           db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     " PRAGMA wal_autocheckpoint=0;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        (pragmas && sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK)) {
        err = al_error_set(AL_EIO, "database %s: %s", path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return err;
}

sqlite3_stmt *ald_sql_stmt(sqlite3 *db, sqlite3_stmt **slot, const char *sql)
{
    sqlite3_stmt *s = *slot;
    if (!s) {
        if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
            ald_sql_fail(db, "prepare");
            return NULL;
        }
        *slot = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

void ald_sql_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}
