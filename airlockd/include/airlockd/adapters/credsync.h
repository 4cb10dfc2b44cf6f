/* The credential store shared through the cluster's database
 * (docs/cluster.md, "Credentials across nodes"): each node keeps its
 * creds.store file (what `airlock creds` writes, the gitproxy and the
 * session secrets read) in step with the `credentials` table, whose rows
 * are the entries sealed with the master key (aad "airlock cred v1:"
 * SCOPE). A pass:
 *   - file -> database: when the file changed since the last pass (not by
 *     it), the entries that differ from the last synced set are upserted,
 *     removed ones become tombstones;
 *   - database -> file: rows newer than the last applied generation are put
 *     into (or removed from) the file, written atomically (temp + rename).
 * The first pass lets the database win: its entries overwrite the file's,
 * and only scopes the database never had are added from the file. */
#ifndef ALD_ADAPTERS_CREDSYNC_H
#define ALD_ADAPTERS_CREDSYNC_H

struct ald;
struct ald_store;
struct ald_credsync;

/* A sync of the store file `path` (master key at `key_path`) with the
 * credentials rows of `st` (borrowed; it must outlive the sync). Nothing
 * is read yet. 0, AL_ENOMEM. Free with ald_credsync_free(). */
int ald_credsync_new(struct ald_credsync **out, struct ald_store *st, const char *path,
                     const char *key_path);
void ald_credsync_free(struct ald_credsync *cs);

/* One pass (above). 0; AL_EAGAIN while the database is unreachable; the
 * creds library's errors for an unreadable store or key (al_error_last()
 * says why). After an error the next pass starts over where this one
 * started (nothing is lost, a row may be applied twice). */
int ald_credsync_run_once(struct ald_credsync *cs);

/* Cluster mode: a pass at once (its error is returned: the daemon should
 * not start with credentials it cannot share), then a thread that runs one
 * every 2 s. A single machine: 0 and nothing. The store file and key are
 * proxies.credential_store and proxies.master_key (their defaults in the
 * state dir), as adapters/secrets.c reads them. */
int ald_credsync_start(struct ald *d);
/* Stops the thread (after its pass in progress) and frees; NULL-safe and
 * a no-op when nothing was started. */
void ald_credsync_stop(struct ald *d);

#endif
