/* What airlockd's SQLite connections do the same way (db_sqlite.c;
 * private to the adapters): open in WAL mode, report a failure. */
#ifndef ALD_ADAPTERS_SQLITE_CONN_H
#define ALD_ADAPTERS_SQLITE_CONN_H

#include <sqlite3.h>

/* Opens (creating) the database at `path` read-write for use by any thread
 * under the caller's own lock: WAL, synchronous=NORMAL, no automatic
 * checkpoint (the main store checkpoints, store.c), a 5 s busy timeout,
 * then `pragmas` (may be NULL). 0 and *out (sqlite3_close() it), or AL_EIO
 * naming `path`. */
int ald_sql_open(sqlite3 **out, const char *path, const char *pragmas);

/* Sets "database: WHAT: <sqlite's message>" and returns AL_EIO. */
int ald_sql_fail(sqlite3 *db, const char *what);

#endif
