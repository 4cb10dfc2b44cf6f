/* Cluster mode (docs/cluster.md): airlockd nodes sharing one PostgreSQL
 * store. Present only when the config has a "cluster" section; then
 * d->cluster is set by ald_cluster_start() and every function below works.
 * On a single machine d->cluster is NULL, ald_cluster_self() returns NULL
 * and every caller keeps today's local behaviour.
 *
 * This node registers its row (id, node-to-node address, capacity,
 * version), heartbeats every cluster.heartbeat_ms, marks nodes whose
 * heartbeat is older than cluster.down_after_ms down (their sessions
 * become `lost`), places new sessions on the node with the most free
 * capacity in one store transaction, and fences itself when the store gave
 * its claim away (the heartbeat finds its row down). The store side is
 * struct ald_cluster_store_hooks (hooks.h), implemented by
 * adapters/store_nodes.c. */
#ifndef ALD_CORE_CLUSTER_H
#define ALD_CORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/config.h"
#include "airlockd/core/fault.h"
#include "airlockd/core/principal.h"

struct ald;
struct ald_create_req;

/* A node's capacity, as registered. */
struct ald_node_caps {
    int64_t sessions, memory_mb, cpu_m; /* cpu_m: thousandths of a CPU */
};

/* One placement (ald_cluster_store_hooks.place). */
struct ald_place_req {
    const char *id, *user;
    int64_t max_sessions, max_memory_mb; /* the user's quota, resolved */
    int64_t memory_mb, cpu_m;            /* what the session takes */
    const char *repo;                    /* URL or NULL: the branch clash check runs with one */
    const char *branch;                  /* the planned branch or NULL */
    const char *force_node;              /* NULL: any up node; else only this one */
    const char *exclude_node;            /* NULL, or a node not to pick (retry after a failure) */
    int64_t down_after_ms;               /* nodes whose heartbeat is older are not candidates */
    json_t *pub, *priv;                  /* the `placed` row's documents (borrowed) */
};

/* Where a session went. */
struct ald_place_out {
    char node[64];
    char address[128]; /* the node's node-to-node "HOST:PORT" */
};

/* The node's own state, as its last heartbeat saw it. */
enum ald_node_state {
    ALD_NODE_UP,
    ALD_NODE_DRAINING,
    ALD_NODE_FENCED, /* the store marked it down while it ran; it re-registers */
};

/* ald_session_create()'s return when the session was placed on another
 * node: `place_out` says where, and the api forwards the create there. */
#define ALD_CREATE_REMOTE 1

/* Reads the cluster key, checks the shared keys against the store's check
 * values (cluster_meta "cluster_key_check", "master_key_check"), registers
 * this node (`version`: what it runs, AL_VERSION) with its capacity, and
 * starts the heartbeat thread. Call after the store is open and before
 * ald_sessions_start() (which re-adopts). 0 (also on a single machine:
 * nothing done), or a negative AL_E* with al_error_last() set (the daemon
 * refuses to start). */
int ald_cluster_start(struct ald *d, const char *version);

/* Stops the heartbeat thread and frees d->cluster (NULL-safe). */
void ald_cluster_stop(struct ald *d);

/* This node's id, or NULL on a single machine. */
const char *ald_cluster_self(const struct ald *d);

/* This node's state (ALD_NODE_UP on a single machine). */
enum ald_node_state ald_cluster_state(const struct ald *d);

/* The last node list the heartbeat thread read (nodes rows with live
 * session counts, the shape of ald_cluster_store_hooks.node_list), a new
 * reference, or NULL when none yet / single machine. */
json_t *ald_cluster_nodes_cached(struct ald *d);

/* Places a new session on a node (one store transaction that checks the
 * user's quota, the branch and the nodes' capacity and writes the `placed`
 * row). 0 with `out` filled; or a negative AL_E* with `f` set (quota 429,
 * branch clash 409, no node with room 503). */
int ald_cluster_place(struct ald *d, const struct ald_principal *who,
                      const struct ald_create_req *req, const char *id, json_t *pub0, json_t *priv0,
                      const char *force_node, const char *exclude_node, struct ald_place_out *out,
                      struct ald_fault *f);

/* After ald_adopt_all() (adopt.c): ends the sandboxes of this node's
 * sessions the cluster gave up on while it was away (sbs_destroy of their
 * recorded sandbox), and removes session directories no row owns. No-op on
 * a single machine. */
void ald_adopt_orphans(struct ald *d);

/* A fenced write (AL_ESTALE from the store): the heartbeat thread checks
 * at once which local sessions the cluster gave away and ends them
 * without writing their rows. No-op on a single machine. */
void ald_cluster_note_stale(struct ald *d);

/* The heartbeat streak (docs/cluster.md, "the sweep rule"): `since` is the
 * monotonic time since which this node's heartbeats succeed without a gap
 * over down_after/2 (0: broken), `last_ok` the last success. */
struct ald_cluster_streak {
    uint64_t since, last_ok;
};

/* Records one heartbeat at monotonic `now_ms` (ok: it reached the store)
 * and says whether this node may sweep (mark other nodes down): only
 * after its own heartbeats have been unbroken for down_after_ms, so that
 * after an outage of the database nobody marks the others down before
 * they could heartbeat again. 1 sweep, 0 not. */
int ald_cluster_streak_beat(struct ald_cluster_streak *s, uint64_t now_ms, int ok,
                            uint64_t down_after_ms);

/* The capacity this node registers: the configured values, or for
 * cap_memory_mb 0 MemTotal - 1 GiB of `meminfo` (the text of
 * /proc/meminfo, n bytes; at least 256 MiB), for cap_cpus 0 `ncpus` (the
 * online CPUs); cpu_m = CPUs x 1000. AL_EINVAL when meminfo has no
 * MemTotal and the memory capacity is not configured. */
int ald_cluster_caps_default(const struct ald_cluster_config *k, const char *meminfo, size_t n,
                             long ncpus, struct ald_node_caps *out);

/* Starts a session another node placed here (its `placed` row names this
 * node): the owner's half of a create, called by the node-to-node start
 * route. Same contract as ald_session_create() minus placement. */
int ald_session_create_placed(struct ald *d, const struct ald_principal *who,
                              struct ald_create_req *req, const char *id, json_t **out_pub,
                              struct ald_fault *f);

#endif
