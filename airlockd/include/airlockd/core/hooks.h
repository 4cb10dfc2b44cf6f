/* What core needs from the layers above it, as function pointers that
 * main.c fills in before ald_sessions_start() (struct ald.hooks): the
 * store (adapters/store.c), the proxy supervisor (adapters/proxies.c),
 * git repositories (adapters/gitrepo.c) and the forge (adapters/forge_github.c). Core calls them
 * only through these pointers, so it neither includes nor links the adapters. Each pointer has the
 * signature and the contract of the function named in its comment; every
 * one must be set. */
#ifndef ALD_CORE_HOOKS_H
#define ALD_CORE_HOOKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "airlockd/core/fault.h"
#include "airlockd/core/principal.h"

#include "airlock/strlist.h"

struct ald;
struct ald_session;
struct ald_store;
struct ald_create_req;
struct ald_node_caps;
struct ald_place_req;
struct ald_place_out;

/* The rows core keeps (ald_store_*, adapters/store.h). */
struct ald_store_hooks {
    int (*checkpoint)(struct ald_store *st);
    int (*session_put)(struct ald_store *st, json_t *pub, json_t *priv);
    int (*session_get)(struct ald_store *st, const char *id, const char *user, json_t **pub,
                       json_t **priv);
    int (*session_live)(struct ald_store *st, json_t **out);
    int (*session_kept)(struct ald_store *st, json_t **out);
    int (*proc_put)(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                    json_t *priv);
    int (*proc_put_audit)(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                          json_t *priv, const struct ald_audit_row *a);
    int (*proc_running)(struct ald_store *st, const char *session, json_t **out);
    int (*proc_max)(struct ald_store *st, const char *session, uint64_t *out);
    int (*idem_claim)(struct ald_store *st, const char *user, const char *key,
                      const char *body_hash, const char *session, uint64_t now_ms,
                      char out_session[32], char out_hash[72]);
    int (*idem_release)(struct ald_store *st, const char *user, const char *key);
    int (*idem_purge)(struct ald_store *st, uint64_t before_ms);
};

/* The proxies (ald_px_*, adapters/proxies.h). */
struct ald_px_hooks {
    int (*start)(struct ald *d);
    void (*stop)(struct ald *d);
    size_t (*ports)(const struct ald *d, const uint16_t **ports);
    int (*session_add)(struct ald *d, struct ald_session *s, pid_t init_pid, int wait);
    void (*session_remove)(struct ald *d, struct ald_session *s);
};

/* A session's repository (ald_git_*, adapters/gitrepo.h). */
struct ald_git_hooks {
    int (*plan)(struct ald *d, const char *id, const struct ald_create_req *req, json_t **out,
                struct ald_fault *f);
    int (*live_clash)(struct ald *d, json_t *git, struct ald_fault *f);
    int (*setup)(struct ald *d, struct ald_session *s);
    int (*load)(struct ald_session *s, json_t *git);
    int (*clone)(struct ald *d, struct ald_session *s);
};

/* A session's HTTP secrets and CA (ald_secrets_*, adapters/secrets.h). */
struct ald_creds_hooks {
    int (*prepare)(struct ald *d, struct ald_session *s, const struct ald_create_req *req,
                   struct ald_fault *f);
    int (*load)(const struct ald *d, struct ald_session *s, json_t *rec);
    int (*trust_files)(const struct ald *d, const struct ald_session *s, const char *dir,
                       struct al_strlist *src, struct al_strlist *dst);
};

/* Outgoing webhooks' outbox and sealing (ald_webhooks_*, adapters/webhooks.h). */
struct ald_webhook_item;
struct ald_webhook_hooks {
    int (*enqueue)(struct ald *d, const struct ald_webhook_item *it, struct ald_fault *f);
    int (*seal)(struct ald *d, const char *aad, const char *plain, char **out);
    int (*unseal)(struct ald *d, const char *aad, const char *sealed, char **out);
};

/* Pull requests through the forge's REST API (ald_forge_open_pr,
 * adapters/forge.h). */
struct ald_forge_hooks {
    int (*open_pr)(struct ald *d, const char *repo_url, const char *head_branch, const char *base,
                   const char *title, const char *body, char **url_out, struct ald_fault *f);
};

/* The cluster's rows (ald_store_node_* and friends, adapters/store_nodes.h;
 * core/cluster.h). Set by main.c always; called only in cluster mode,
 * except session_live_on, which a single machine calls with node NULL. */
struct ald_cluster_store_hooks {
    int (*node_register)(struct ald_store *st, const char *id, const char *address,
                         const char *api_address, const char *version,
                         const struct ald_node_caps *caps, int64_t *epoch, char state[16]);
    int (*node_heartbeat)(struct ald_store *st, const char *id, int64_t epoch, char state[16]);
    int (*node_sweep)(struct ald_store *st, const char *self, int64_t down_after_ms, json_t **lost);
    int (*node_list)(struct ald_store *st, json_t **out);
    int (*node_set_state)(struct ald_store *st, const char *id, const char *state);
    int (*place)(struct ald_store *st, const struct ald_place_req *q, struct ald_place_out *o,
                 struct ald_fault *f);
    int (*place_fail)(struct ald_store *st, const char *id, const char *reason);
    int (*session_live_on)(struct ald_store *st, const char *node, json_t **out);
    int (*session_gone_on)(struct ald_store *st, const char *node, json_t **out);
    int (*session_rows)(struct ald_store *st, const char *const *ids, size_t n, json_t **out);
    int (*meta_check)(struct ald_store *st, const char *k, const char *v);
    int (*approval_put)(struct ald_store *st, const char *id, const char *session, const char *kind,
                        json_t *body, const char *state, const char *decided_by);
    int (*approval_list)(struct ald_store *st, const char *session, json_t **out);
    int (*approvals_expire)(struct ald_store *st, const char *session);
};

struct ald_hooks {
    struct ald_store_hooks store;
    struct ald_cluster_store_hooks cluster;
    struct ald_px_hooks px;
    struct ald_git_hooks git;
    struct ald_creds_hooks creds;
    struct ald_webhook_hooks webhook;
    struct ald_forge_hooks forge;
};

#endif
