/* Cluster mode (cluster.h, docs/cluster.md). */
#include "airlockd/core/cluster.h"

#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"

#include "airlock/error.h"

const char *ald_cluster_self(const struct ald *d)
{
    return d->cfg->cluster.enabled ? d->cfg->cluster.node_id : NULL;
}
