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
