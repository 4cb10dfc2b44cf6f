/* What every SQLite connection of airlockd's store does the same way
 * (store.c, store_webhooks.c; private to the adapters): open in WAL mode,
 * prepare each statement once, bind text, report a failure. */
#ifndef ALD_ADAPTERS_SQLITE_CONN_H
#define ALD_ADAPTERS_SQLITE_CONN_H

#include <sqlite3.h>

/* Opens (creating) the database at `path` read-write for use by any thread
 * under the caller's own lock: WAL, synchronous=NORMAL, no automatic
 * checkpoint (the main store checkpoints, store.c), a 5 s busy timeout,
 * then `pragmas` (may be NULL). 0 and *out (sqlite3_close() it), or AL_EIO
 * naming `path`. */
int ald_sql_open(sqlite3 **out, const char *path, const char *pragmas);

/* The statement for `sql`, prepared on first use into *slot (finalized by
 * the owner), reset and with its bindings cleared; NULL with al_error_last()
 * set on error. */
sqlite3_stmt *ald_sql_stmt(sqlite3 *db, sqlite3_stmt **slot, const char *sql);

/* Binds `v` (copied), or NULL as SQL NULL. */
void ald_sql_bind_text(sqlite3_stmt *s, int i, const char *v);

/* Sets "database: WHAT: <sqlite's message>" and returns AL_EIO. */
int ald_sql_fail(sqlite3 *db, const char *what);

#endif
