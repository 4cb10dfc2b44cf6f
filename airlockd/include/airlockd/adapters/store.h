/* airlockd's state: in SQLite, one file `<state_dir>/airlockd.db` in WAL
 * mode, or in PostgreSQL (adapters/db.h, docs/airlockd.md "Store").
 *
 * Tables: users, api_keys (SHA-256 of the key, never the key), sessions and
 * processes (the public JSON object plus private fields the daemon needs to
 * find a sandbox again), idempotency (create keys, 24 h), audit
 * (append-only). The schema is versioned (db.h, ald_db_migrate). Every
 * statement has bound parameters. Any thread may call any function.
 * Errors as db.h's: AL_EAGAIN when the database cannot be reached.
 */
#ifndef ALD_STORE_H
#define ALD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/principal.h"

struct ald_store;
struct ald_db;
struct ald_config;

struct ald_user {
    char name[ALD_NAME_MAX];
    int admin;
    int64_t max_sessions;  /* -1: the config's quota */
    int64_t max_memory_mb; /* -1: the config's quota */
    uint64_t created_ms;
};

/* Opens (creating and migrating) the database at `path`. The connection
 * does not checkpoint the WAL by itself: call ald_store_checkpoint(). */
int ald_store_open(struct ald_store **out, const char *path);
void ald_store_close(struct ald_store *st);
/* The same on an open database (SQLite or PostgreSQL, adapters/db.h): the
 * store keeps a reference to `db` of its own. */
int ald_store_open_db(struct ald_store **out, struct ald_db *db);
/* The store the config's "store" section names: SQLite at `sqlite_path`,
 * or PostgreSQL with the conninfo read from store.conninfo_file (and the
 * section's pool size and timeouts). */
int ald_store_open_config(struct ald_store **out, const struct ald_config *cfg,
                          const char *sqlite_path);
/* The store's database (borrowed). */
struct ald_db *ald_store_db(struct ald_store *st);
/* A database for another store beside this one (ald_db_sibling(): SQLite
 * a connection of its own, PostgreSQL the same pool); NULL on error (al_error_last()). Unref it. */
struct ald_db *ald_store_sibling(struct ald_store *st);

/* Writes the session and process rows kept while the database was
 * unreachable (see ald_store_session_put), then, for SQLite, copies the
 * WAL back into the database (PASSIVE) on a second connection, so requests
 * never wait for it. Call it from one thread only (the reaper, each
 * second). */
int ald_store_checkpoint(struct ald_store *st);

/* 1 when `name` is a valid user name: [a-z0-9][a-z0-9._-]{0,62}. */
int ald_user_name_valid(const char *name);

/* AL_EEXISTS when the name is taken. */
int ald_store_user_add(struct ald_store *st, const struct ald_user *u);
/* AL_ENOTFOUND when missing. */
int ald_store_user_get(struct ald_store *st, const char *name, struct ald_user *out);
/* Removes the user and revokes their keys; AL_ENOTFOUND when missing. */
int ald_store_user_remove(struct ald_store *st, const char *name, uint64_t now_ms);
/* *out: a new JSON array of {name, admin, max_sessions, max_memory_mb, created_at}. */
int ald_store_user_list(struct ald_store *st, json_t **out);

/* Adds a key (`hash`: SHA-256 of the key). AL_ENOTFOUND: no such user. */
int ald_store_key_add(struct ald_store *st, const char *id, const char *user, const char *name,
                      const unsigned char hash[32], uint64_t now_ms);
/* Finds the live key with this hash. AL_EAUTH when none (or revoked). */
int ald_store_key_lookup(struct ald_store *st, const unsigned char hash[32],
                         struct ald_principal *out);
/* *out: JSON array of {id, user, name, created_at, revoked_at}; user NULL = all. */
int ald_store_key_list(struct ald_store *st, const char *user, json_t **out);
/* AL_ENOTFOUND when no such live key. */
int ald_store_key_revoke(struct ald_store *st, const char *id, uint64_t now_ms);

/* Inserts or updates a session row. `pub` is the public object (it has
 * "id", "user", "state"), `priv` the daemon's private fields. When the
 * database cannot be reached (AL_EAGAIN) a copy of the row is kept in
 * memory and written by ald_store_checkpoint() once it can (unless a newer
 * put of the same row came first); ald_store_proc_put and
 * ald_store_proc_put_audit keep process rows the same way. */
int ald_store_session_put(struct ald_store *st, json_t *pub, json_t *priv);
/* *pub (and *priv when not NULL): new references. AL_ENOTFOUND when
 * missing or, with `user` not NULL, owned by someone else. */
int ald_store_session_get(struct ald_store *st, const char *id, const char *user, json_t **pub,
                          json_t **priv);
/* A page of sessions, oldest first: rows after `after` (a sequence number;
 * 0 = from the start) for `user` (NULL = all) in `state` (NULL = any).
 * *out: JSON array of public objects; *next: the cursor for the next page
 * or 0 when this was the last. */
int ald_store_session_page(struct ald_store *st, const char *user, const char *state, int64_t after,
                           unsigned limit, json_t **out, int64_t *next);
/* *out: JSON array of [pub, priv] pairs for every session not ended. */
int ald_store_session_live(struct ald_store *st, json_t **out);
/* *out: JSON object state -> count over every session. */
int ald_store_session_counts(struct ald_store *st, json_t **out);
/* *out: JSON array of [id, ended_at_ms] for ended sessions whose workspace
 * may still exist (priv.workspace_kept true). */
int ald_store_session_kept(struct ald_store *st, json_t **out);

/* The ids of ended sessions (deleted, expired, failed) that had a git token
 * whose expiry (Unix seconds) is at or after `after`: the gitproxy must keep
 * refusing those tokens (sent to it again when it restarts). *out is a new
 * JSON array of strings. */
int ald_store_session_revoked(struct ald_store *st, int64_t after, json_t **out);

/* *out: JSON array of [id, repo] for every session (any state, except one
 * whose create failed or was refused: end_reason "create-…") whose public
 * "branch" collides with `branch`: equal, or one a directory of the other
 * ("a" and "a/b"), ignoring ASCII case. */
int ald_store_session_branch_clash(struct ald_store *st, const char *branch, json_t **out);

/* Process rows: keyed by (session, num). */
int ald_store_proc_put(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                       json_t *priv);
int ald_store_proc_get(struct ald_store *st, const char *session, uint64_t num, json_t **pub,
                       json_t **priv);
/* *out: JSON array of public objects, oldest first. */
int ald_store_proc_list(struct ald_store *st, const char *session, json_t **out);
/* *out: JSON array of [pub, priv] for the session's processes still running. */
int ald_store_proc_running(struct ald_store *st, const char *session, json_t **out);

/* The highest process number of the session (0 when none). */
int ald_store_proc_max(struct ald_store *st, const char *session, uint64_t *out);

/* Claims an idempotency key for `user`: 0 when claimed (the caller creates
 * `session`), AL_EEXISTS when it was claimed before (then `out_session` and
 * `out_hash` hold the first claim's session id and body hash). */
int ald_store_idem_claim(struct ald_store *st, const char *user, const char *key,
                         const char *body_hash, const char *session, uint64_t now_ms,
                         char out_session[32], char out_hash[72]);
int ald_store_idem_release(struct ald_store *st, const char *user, const char *key);
int ald_store_idem_purge(struct ald_store *st, uint64_t before_ms);

/* Appends one audit row. */
int ald_store_audit(struct ald_store *st, const struct ald_audit_row *a);

/* ald_store_proc_put and ald_store_audit in one transaction (one commit
 * instead of two: a quick command's exit and its exec's audit row); both
 * rows or neither. */
int ald_store_proc_put_audit(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                             json_t *priv, const struct ald_audit_row *a);

/* Which audit rows ald_store_audit_page returns: every non-NULL/non-zero
 * field must match (text: a substring of the path; times in Unix ms,
 * since inclusive, until exclusive, 0 = open). `before`: the cursor, rows
 * with a lower sequence number (0 = from the newest). */
struct ald_audit_filter {
    const char *user, *session, *method, *text;
    uint64_t since_ms, until_ms;
    int64_t before;
    unsigned limit;
};
/* A page of audit rows, newest first. *out: a new JSON array of {seq, time,
 * time_ms, user, key_id, method, path, status, session}; *next: the cursor
 * of the next page (older rows) or 0 when this was the last. */
int ald_store_audit_page(struct ald_store *st, const struct ald_audit_filter *f, json_t **out,
                         int64_t *next);
/* *out: a new JSON array of {name, admin, created_at, keys (live ones),
 * live_sessions} for every user, by name. */
int ald_store_user_summary(struct ald_store *st, json_t **out);

#endif
