/* The cluster's rows in the shared store (docs/cluster.md): nodes,
 * placement, session ownership, approvals, credential entries and the
 * cluster's key check values. Every function works on both drivers (the
 * same schema step); the cluster itself needs PostgreSQL (config.c). Times
 * are the database's clock, never a node's. Errors: AL_EAGAIN while the
 * database is unreachable (the api answers 503), AL_ENOTFOUND, AL_EINVAL;
 * al_error_last() says why. */
#ifndef ALD_ADAPTERS_STORE_NODES_H
#define ALD_ADAPTERS_STORE_NODES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/cluster.h"
#include "airlockd/core/fault.h"

struct ald_store;

/* The states of a live session row, for SQL: `state IN ALD_STORE_LIVE_STATES`.
 * `placed` is a row written by placement (ald_store_place) that its owner
 * has not started yet; it counts everywhere a live session counts. */
#define ALD_STORE_LIVE_STATES "('placed', 'creating', 'ready', 'deleting')"

/* Inserts or refreshes this node's row (state up, or draining if an
 * operator drained it), bumping its epoch. *epoch, state: what the row
 * says now. */
int ald_store_node_register(struct ald_store *st, const char *id, const char *address,
                            const char *api_address, const char *version,
                            const struct ald_node_caps *caps, int64_t *epoch, char state[16]);

/* One heartbeat of node `id` at `epoch`: state gets "up" or "draining".
 * AL_ESTALE: the row is down, left, or has another epoch (fenced). */
int ald_store_node_heartbeat(struct ald_store *st, const char *id, int64_t epoch, char state[16]);

/* Marks every other node whose heartbeat is older than down_after_ms
 * down, makes their live sessions `lost` ("node-down: ID: REASON"; pub's
 * state, end_reason, ended_at and priv's ended_ms set) and returns, in one
 * transaction, what it did: *lost = [{"node", "reason", "sessions":
 * [{"id","user","pub"}], "jobs": [{"pub","priv"}]}] (the running jobs of
 * those nodes, left `running` for the caller to fail), [] when nothing
 * was stale. Only this caller sees those rows (the UPDATE's RETURNING;
 * concurrent sweepers wait for each other's row locks), so each node and
 * each loss is reported once. Needs the jobs table (store_jobs.h) in the
 * same database. */
int ald_store_node_sweep(struct ald_store *st, const char *self, int64_t down_after_ms,
                         json_t **lost);

/* [{"id","address","api_address","state","version","epoch","capacity":
 * {"sessions","memory_mb","cpu_m"},"heartbeat_ms","heartbeat_age_ms",
 * "down_reason","sessions","memory_mb"}] ordered by id. */
int ald_store_node_list(struct ald_store *st, json_t **out);

/* Sets node `id` to "draining", "up" or "left" (admin). AL_ENOTFOUND: no
 * such node. */
int ald_store_node_set_state(struct ald_store *st, const char *id, const char *state);

/* Placement in one transaction (docs/cluster.md "Placement"): the user's
 * live rows against q->max_sessions / q->max_memory_mb (negative: no
 * limit); with q->repo and q->branch both set, every row ever recorded
 * with a colliding branch on that repository (ald_git_plan's rule); then
 * the `up` nodes with a heartbeat younger than q->down_after_ms (only
 * q->force_node when set, never q->exclude_node) that have room for one
 * more session and q->memory_mb, the one with the most free room. The
 * `placed` row is inserted with node, memory_mb, cpu_m, q->pub (its
 * "state" set to "placed") and q->priv. 0 with `o` filled; AL_EPERM + f
 * 429 quota_exceeded (core/session.c's texts); AL_EEXISTS + f 409
 * conflict "branch" (also when the id exists: then f is 500); AL_EAGAIN +
 * f 503 unavailable "no node has room (N up, N full)", or the database
 * (f by ald_fault_store). */
int ald_store_place(struct ald_store *st, const struct ald_place_req *q, struct ald_place_out *o,
                    struct ald_fault *f);

/* A `placed` row whose start failed becomes `failed` with `reason` as its
 * end_reason. Start the reason with "create-" ("create-failed: node n2
 * unreachable") so that its branch is free again (the clash rule skips
 * such rows). AL_ENOTFOUND: no row in state placed with that id. */
int ald_store_place_fail(struct ald_store *st, const char *id, const char *reason);

/* The node and its node-to-node address that own session `id` (of `user`,
 * or anyone's with user NULL), and the row's state. AL_ENOTFOUND: no such
 * session (for that user). node "" when the row has none. */
int ald_store_session_owner(struct ald_store *st, const char *id, const char *user, char node[64],
                            char address[128], char state[16]);

/* The live rows (placed, creating, ready, deleting) of `node` (NULL: those
 * with no node, a single machine), as ald_store_session_live: *out = [[pub,
 * priv], ...] by seq. ald_store_session_live() is this with NULL. */
int ald_store_session_live_on(struct ald_store *st, const char *node, json_t **out);

/* ald_store_session_kept (store.h: [[id, ended_ms], ...] of rows with
 * priv.workspace_kept) for the rows of `node` (NULL: no node; that is
 * ald_store_session_kept()). */
int ald_store_session_kept_on(struct ald_store *st, const char *node, json_t **out);

/* ald_store_session_revoked (store.h) for the rows of `node` (NULL: no
 * node; that is ald_store_session_revoked()). Ended includes lost. */
int ald_store_session_revoked_on(struct ald_store *st, const char *node, int64_t after,
                                 json_t **out);

/* Ended rows (lost, failed, deleted, expired) of `node` that ended within
 * the last 7 days and have a sandbox record: [{"pub","priv"}]. */
int ald_store_session_gone_on(struct ald_store *st, const char *node, json_t **out);

/* For each id: {"id": {"state","node"}} of the rows that exist. */
int ald_store_session_rows(struct ald_store *st, const char *const *ids, size_t n, json_t **out);

/* Sets cluster_meta[k] = v unless set; AL_EINVAL when it holds another
 * value (a node with another key). */
int ald_store_meta_check(struct ald_store *st, const char *k, const char *v);

/* Approvals: upsert of one approval's row (keyed by session and id;
 * decided_ms is set the first time its state is not "pending"); the rows
 * of a session, oldest first ([body...]); pending ones of a session become
 * "timed-out" (the column and body's "state"). */
int ald_store_approval_put(struct ald_store *st, const char *id, const char *session,
                           const char *kind, json_t *body, const char *state,
                           const char *decided_by);
int ald_store_approval_list(struct ald_store *st, const char *session, json_t **out);
int ald_store_approvals_expire(struct ald_store *st, const char *session);

/* Credential entries (adapters/credsync.c): the rows with gen > after_gen
 * ordered by gen ([{"scope","sealed" (standard base64, null when NULL),
 * "gen","deleted" (bool)}]) and the largest gen among them (after_gen when
 * none); an upsert with a new cluster-wide gen (sealed NULL allowed for a
 * tombstone). Gens are handed out and committed in order (PostgreSQL: the
 * sequence credentials_gen under an advisory lock; SQLite: max + 1 under
 * BEGIN IMMEDIATE), so reading "gen > last seen" never misses a row. */
int ald_store_cred_rows(struct ald_store *st, int64_t after_gen, json_t **out, int64_t *max_gen);
int ald_store_cred_put(struct ald_store *st, const char *scope, const void *sealed, size_t n,
                       int deleted);

#endif
