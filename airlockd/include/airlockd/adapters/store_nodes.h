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
 * down, makes their live sessions `lost` ("node-down: ID: REASON") and
 * returns, in one transaction, what it did: *lost = [{"node", "reason",
 * "sessions": [{"id","user","pub"}], "jobs": [{"pub","priv"}]}] (the
 * running jobs of those nodes, for the caller to fail). Only this caller
 * sees those rows (RETURNING), so each loss is reported once. */
int ald_store_node_sweep(struct ald_store *st, const char *self, int64_t down_after_ms,
                         json_t **lost);

/* [{"id","address","api_address","state","version","epoch","capacity":
 * {"sessions","memory_mb","cpu_m"},"heartbeat_ms","heartbeat_age_ms",
 * "down_reason","sessions","memory_mb"}] ordered by id. */
int ald_store_node_list(struct ald_store *st, json_t **out);

/* Sets node `id` to "draining", "up" or "left" (admin). AL_ENOTFOUND: no
 * such node. */
int ald_store_node_set_state(struct ald_store *st, const char *id, const char *state);

/* Placement in one transaction (docs/cluster.md "Placement"). 0 with `o`
 * filled and the `placed` row written; AL_EPERM + f 429 quota_exceeded;
 * AL_EEXISTS + f 409 (branch in use); AL_EAGAIN + f 503 (no node has
 * room, or the database). */
int ald_store_place(struct ald_store *st, const struct ald_place_req *q, struct ald_place_out *o,
                    struct ald_fault *f);

/* A `placed` row whose start failed becomes `failed` with `reason`. */
int ald_store_place_fail(struct ald_store *st, const char *id, const char *reason);

/* The node and its node-to-node address that own session `id` (of `user`,
 * or anyone's with user NULL), and the row's state. AL_ENOTFOUND: no such
 * session (for that user). node "" when the row has none. */
int ald_store_session_owner(struct ald_store *st, const char *id, const char *user, char node[64],
                            char address[128], char state[16]);

/* The live rows (placed, creating, ready, deleting) of `node` (NULL: those
 * with no node, a single machine), as ald_store_session_live. */
int ald_store_session_live_on(struct ald_store *st, const char *node, json_t **out);

/* Ended rows (lost, failed, deleted, expired) of `node` that ended within
 * the last 7 days and have a sandbox record: [{"pub","priv"}]. */
int ald_store_session_gone_on(struct ald_store *st, const char *node, json_t **out);

/* For each id: {"id": {"state","node"}} of the rows that exist. */
int ald_store_session_rows(struct ald_store *st, const char *const *ids, size_t n, json_t **out);

/* Sets cluster_meta[k] = v unless set; AL_EINVAL when it holds another
 * value (a node with another key). */
int ald_store_meta_check(struct ald_store *st, const char *k, const char *v);

/* Approvals: upsert of one approval's row; the rows of a session, oldest
 * first ([body...]); pending ones of a session become "timed-out". */
int ald_store_approval_put(struct ald_store *st, const char *id, const char *session,
                           const char *kind, json_t *body, const char *state,
                           const char *decided_by);
int ald_store_approval_list(struct ald_store *st, const char *session, json_t **out);
int ald_store_approvals_expire(struct ald_store *st, const char *session);

/* Credential entries (adapters/credsync.c): the rows with gen > after_gen
 * ([{"scope","sealed" (base64),"gen","deleted"}]) and the largest gen;
 * an upsert with a new cluster-wide gen. */
int ald_store_cred_rows(struct ald_store *st, int64_t after_gen, json_t **out, int64_t *max_gen);
int ald_store_cred_put(struct ald_store *st, const char *scope, const void *sealed, size_t n,
                       int deleted);

#endif
