/* Sessions: their state, their parts (each saying which lock guards it:
 * see daemon.h for d->lock) and their lifecycle (session.c). */
#ifndef ALD_CORE_SESSION_H
#define ALD_CORE_SESSION_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "airlockd/core/config.h"
#include "airlockd/core/fault.h"
#include "airlockd/core/principal.h"
#include "airlockd/core/requests.h"

#include "airlock/credmask.h"
#include "airlock/sbsession.h"

struct ald;
struct ald_proc;
struct ald_approval;

enum ald_state {
    ALD_CREATING,
    ALD_READY,
    ALD_DELETING,
    ALD_DELETED,
    ALD_EXPIRED,
    ALD_FAILED,
    ALD_LOST, /* its node was marked down (cluster); the row is the cluster's verdict */
};

#define ALD_STATE_ENDED(s) ((s) >= ALD_DELETED)

const char *ald_state_name(enum ald_state st);
/* -1 when `name` is no state. */
int ald_state_parse(const char *name);

/* A session's connection to the init of its sandbox.
 *
 * Locks: `send_lock` serialises the messages to init; `recv_lock` is held by
 * the control thread while it reads, so teardown can wait for it. `conn`,
 * `open` and `have_record` are set under d->lock before the control socket
 * is watched (creation, re-adoption); after that they change only in
 * teardown, with both send_lock and recv_lock held, so holding either keeps
 * them stable. `oom_seen` and `oom_kills_seen` are the control thread's,
 * under d->lock. */
struct ald_sandbox_link {
    struct sbs_conn conn;
    int open;        /* conn is connected */
    int have_record; /* conn.rec is valid (sandbox started) */
    pthread_mutex_t send_lock, recv_lock;
    int oom_seen;        /* fallback: sbs_oom_killed() was seen true */
    long oom_kills_seen; /* the cgroup's OOM kill count at the last exit */
};

/* A session's processes (struct ald_proc), under d->lock; d->cond is
 * broadcast whenever one of them changes. */
struct ald_proc_table {
    struct ald_proc *list; /* newest first */
    uint64_t next;         /* the number of the next process */
};

/* A session's approvals (struct ald_approval), newest first, under d->lock;
 * d->cond is broadcast when one is decided. */
struct ald_approvals {
    struct ald_approval *list;
};

/* What the proxies know of a session (proxies.c), under d->lock. */
struct ald_session_px {
    int lfd[3];        /* listeners in the sandbox's netns: http, socks5, git; -1 none */
    json_t *netpolicy; /* the network policy in its wire form (al_netpolicy_to_json),
                          what the netproxy is sent; never NULL once linked */
    int removed;       /* session_remove sent (or due): never re-sent */
};

/* A session's repository and its scoped git token (gitrepo.c), under
 * d->lock. */
struct ald_session_git {
    json_t *repo; /* NULL or {repo, branch, base, token, token_exp} */
    json_t *env;  /* NULL or GIT_CONFIG_* for every command */
};

/* A session's HTTP secrets and its CA (adapters/secrets.c): set before the
 * session is linked (create) or by its load (re-adoption), never changed
 * after, so read without a lock; freed (values and key wiped) with the
 * session. */
struct ald_session_creds {
    json_t *rec;           /* NULL, or what its row keeps: {"ca_cert": PEM, "ca_key":
                              sealed (creds_store_seal), "list": [{"secret", "env",
                              "inject_hosts", "sentinel"}]}; never a value */
    json_t *env;           /* NULL, or VAR -> sentinel and the CA trust variables, given
                              to every command */
    struct al_credset set; /* the real values, named by secret; what the netproxy gets */
    char *ca_cert;         /* PEM, or NULL: no CA (then no credential either) */
    char *ca_key;          /* PEM, in memory only */
};

/* One session. Each part says which lock guards it. */
struct ald_session {
    /* Identity and limits: set before the session is linked into the live
     * list (d->sessions), never changed after, so read without a lock. */
    char id[32];
    char user[ALD_NAME_MAX];
    uint64_t tag; /* the control thread's key for this session */
    uid_t uid;
    int mode;
    struct ald_limits limits;
    json_t *metadata, *env;
    json_t *webhook; /* NULL or {"url", "secret": sealed} (ald_webhook_session_prepare) */
    uint64_t created_ms;
    /* Lifecycle, under d->lock; d->cond is broadcast when the state
     * changes. */
    struct ald_session *next; /* in d->sessions */
    int refs;
    enum ald_state state;
    char end_reason[256];
    uint64_t last_active_ms, ended_ms;
    int workspace_kept;
    /* The parts */
    struct ald_sandbox_link sandbox; /* its own send_lock and recv_lock */
    struct ald_proc_table procs;     /* d->lock */
    struct ald_approvals approvals;  /* d->lock */
    struct ald_session_px px;        /* d->lock */
    struct ald_session_git git;      /* d->lock */
    struct ald_session_creds creds;  /* set before linking, then read-only */
};

/* Loads the live sessions, starts the control and reaper threads. */
int ald_sessions_start(struct ald *d);
/* Stops the threads (sandboxes keep running); frees the in-memory state. */
void ald_sessions_stop(struct ald *d);

/* Creates a session for `who` (blocking until it is ready or failed).
 * Takes req->policy for the sandbox (left initialised and empty); the
 * caller still frees `req`. *out_pub: the session object (new reference).
 * In a cluster the session is placed on this node (the user's quota and
 * the node's capacity checked cluster-wide; 503 when this node is full). */
int ald_session_create(struct ald *d, const struct ald_principal *who, struct ald_create_req *req,
                       const char *idem_key, const char *body_hash, json_t **out_pub, int *replayed,
                       struct ald_fault *f);

/* ald_session_create() in a cluster (core/cluster.h): with `remote` set the
 * session may be placed on another node; then it returns ALD_CREATE_REMOTE
 * with *remote filled and *out_pub = the `placed` row's document, and the
 * caller forwards the create to remote->address (the api's
 * ald_forward_start). With `remote` NULL the session is placed on this node
 * (jobs). On input remote->node is "" (zeroed), or a node not to place on
 * (the retry after that node did not answer). On a single machine both
 * behave as ald_session_create(). */
struct ald_place_out;
int ald_session_create_ex(struct ald *d, const struct ald_principal *who,
                          struct ald_create_req *req, const char *idem_key, const char *body_hash,
                          json_t **out_pub, int *replayed, struct ald_place_out *remote,
                          struct ald_fault *f);

/* A new session object (state creating, one reference for the live list)
 * and its insertion into the live list (caller holds d->lock). */
struct ald_session *ald_session_new(const char *id, const char *user);
void ald_session_link(struct ald *d, struct ald_session *s);

/* Finds a live session `id` visible to `who` and takes a reference; NULL
 * when none (then the caller looks in the store for ended ones). */
struct ald_session *ald_session_get(struct ald *d, const struct ald_principal *who, const char *id);
void ald_session_unref(struct ald *d, struct ald_session *s);

/* The public JSON object of a session (caller holds d->lock). */
json_t *ald_session_json(const struct ald_session *s);

/* Looks a session up live or in the store: *out the public object. ALD_FAULT_NOT_FOUND
 * in `f` when `who` may not see it. */
int ald_session_lookup_json(struct ald *d, const struct ald_principal *who, const char *id,
                            json_t **out, struct ald_fault *f);

/* Tears a live session down and gives it the final `state` with `reason`
 * (NULL for none). Waits for a teardown already under way. Takes its own
 * references; `s` stays valid for the caller's reference. */
int ald_session_end(struct ald *d, struct ald_session *s, enum ald_state state, const char *reason);

/* ald_session_end() with flags: ALD_END_NOSAVE does not write the row (a
 * cluster node ending a session the cluster gave away: the row is the
 * cluster's verdict, and this node may no longer write it). */
enum ald_end_flags { ALD_END_NOSAVE = 1 };
int ald_session_end_ex(struct ald *d, struct ald_session *s, enum ald_state state,
                       const char *reason, unsigned flags);

/* Marks activity (resets the idle timer). */
void ald_session_touch(struct ald *d, struct ald_session *s);

/* Writes the session's row (takes d->lock itself). */
int ald_session_save(struct ald *d, struct ald_session *s);

/* Wipes and frees a session's credentials part (the session's own free,
 * and the creds hooks on failure). */
void ald_session_creds_clear(struct ald_session_creds *c);

/* Host path of the session's workspace / output dir. */
void ald_session_path(const struct ald *d, const char *id, const char *leaf, char *out,
                      size_t size);

#endif
