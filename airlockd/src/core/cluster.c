/* Cluster mode (cluster.h, docs/cluster.md). */
#include "airlockd/core/cluster.h"

#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"

#include "airlock/error.h"

const char *ald_cluster_self(const struct ald *d)
{
    return d->cfg->cluster.enabled ? d->cfg->cluster.node_id : NULL;
}

/* Not built yet (issue 13, W2): the rest answers AL_EUNSUPP / defaults. */
int ald_cluster_start(struct ald *d)
{
    if (!d->cfg->cluster.enabled)
        return 0;
    return al_error_set(AL_EUNSUPP, "cluster mode is not built yet");
}

void ald_cluster_stop(struct ald *d)
{
    (void)d;
}

enum ald_node_state ald_cluster_state(const struct ald *d)
{
    (void)d;
    return ALD_NODE_UP;
}

json_t *ald_cluster_nodes_cached(struct ald *d)
{
    (void)d;
    return NULL;
}

int ald_cluster_place(struct ald *d, const struct ald_principal *who,
                      const struct ald_create_req *req, const char *id, json_t *pub0, json_t *priv0,
                      struct ald_place_out *out, struct ald_fault *f)
{
    (void)d, (void)who, (void)req, (void)id, (void)pub0, (void)priv0, (void)out;
    return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                         "cluster placement not built yet");
}

int ald_session_create_placed(struct ald *d, const struct ald_principal *who,
                              struct ald_create_req *req, const char *id, json_t **out_pub,
                              struct ald_fault *f)
{
    (void)d, (void)who, (void)req, (void)id, (void)out_pub;
    return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "cluster start not built yet");
}
