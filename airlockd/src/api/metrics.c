/* Prometheus metrics: sessions by state, execs, exec durations, limit
 * kills, HTTP replies by status, the database; in cluster mode this node
 * and the cluster as the last heartbeat saw it (docs/cluster.md). */
#include "airlockd/api/metrics.h"

#include "forward.h"

#include "airlockd/adapters/db.h"
#include "airlockd/adapters/store.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/metrics.h"
#include "airlockd/core/session.h"

#include "airlock/buf.h"
#include "airlock/error.h"

#include <string.h>

void ald_metrics_http(struct ald *d, int status)
{
    if (status >= 100 && status < 600)
        atomic_fetch_add(&d->metrics.http[status], 1);
}

/* Node and cluster gauges (cluster mode only): this node from its config
 * and its sessions in memory, the cluster from the cached node list. */
static int render_cluster(struct ald *d, struct al_buf *b, long long local_live)
{
    const char *self = ald_cluster_self(d);
    if (!self)
        return 0;
    static const char *const mine[] = {"up", "draining", "fenced"};
    enum ald_node_state ns = ald_cluster_state(d);
    json_t *nodes = ald_cluster_nodes_cached(d);
    json_t *me = NULL;
    const char *version = "";
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (strcmp(json_string_value(json_object_get(n, "id")) ?: "", self) == 0) {
            me = json_object_get(n, "capacity");
            version = json_string_value(json_object_get(n, "version")) ?: "";
        }
    }
    /* the registered capacity and version (0 in the config is resolved at
     * start), else the config's until the first node list */
    long long cap_s = (long long)d->cfg->cluster.cap_sessions;
    long long cap_m = (long long)d->cfg->cluster.cap_memory_mb;
    if (me) {
        cap_s = (long long)json_integer_value(json_object_get(me, "sessions"));
        cap_m = (long long)json_integer_value(json_object_get(me, "memory_mb"));
    }
    int err = al_buf_printf(b,
                            "# HELP airlock_node_info This node of the cluster.\n"
                            "# TYPE airlock_node_info gauge\n"
                            "airlock_node_info{node=\"%s\",version=\"%s\"} 1\n"
                            "# HELP airlock_node_state This node's state (1 for the current one).\n"
                            "# TYPE airlock_node_state gauge\n",
                            self, version);
    for (int k = 0; k < 3 && err == 0; k++)
        err = al_buf_printf(b, "airlock_node_state{state=\"%s\"} %d\n", mine[k], (int)ns == k);
    if (err == 0)
        err =
            al_buf_printf(b,
                          "# HELP airlock_node_capacity_sessions Live sessions this node takes.\n"
                          "# TYPE airlock_node_capacity_sessions gauge\n"
                          "airlock_node_capacity_sessions %lld\n"
                          "# HELP airlock_node_capacity_memory_mb Session memory this node takes.\n"
                          "# TYPE airlock_node_capacity_memory_mb gauge\n"
                          "airlock_node_capacity_memory_mb %lld\n"
                          "# HELP airlock_node_sessions Live sessions on this node.\n"
                          "# TYPE airlock_node_sessions gauge\n"
                          "airlock_node_sessions %lld\n",
                          cap_s, cap_m, local_live);
    /* the cluster as the last node list said (absent until the first) */
    static const char *const states[] = {"up", "draining", "down", "left"};
    long long by_state[4] = {0};
    json_array_foreach(nodes, i, n)
    {
        const char *st = json_string_value(json_object_get(n, "state"));
        for (int k = 0; k < 4 && st; k++)
            if (strcmp(st, states[k]) == 0)
                by_state[k]++;
    }
    if (err == 0 && nodes)
        err = al_buf_puts(b, "# HELP airlock_cluster_nodes Nodes by state.\n"
                             "# TYPE airlock_cluster_nodes gauge\n");
    for (int k = 0; k < 4 && err == 0 && nodes; k++)
        err =
            al_buf_printf(b, "airlock_cluster_nodes{state=\"%s\"} %lld\n", states[k], by_state[k]);
    if (err == 0 && nodes)
        err = al_buf_puts(b, "# HELP airlock_cluster_sessions Live sessions by node.\n"
                             "# TYPE airlock_cluster_sessions gauge\n");
    json_array_foreach(nodes, i, n)
    {
        if (err == 0)
            err = al_buf_printf(b, "airlock_cluster_sessions{node=\"%s\"} %lld\n",
                                json_string_value(json_object_get(n, "id")) ?: "",
                                (long long)json_integer_value(json_object_get(n, "sessions")));
    }
    if (err == 0 && nodes)
        err = al_buf_puts(b, "# HELP airlock_cluster_heartbeat_age_seconds Since each node's last "
                             "heartbeat.\n"
                             "# TYPE airlock_cluster_heartbeat_age_seconds gauge\n");
    json_array_foreach(nodes, i, n)
    {
        if (err == 0)
            err = al_buf_printf(b, "airlock_cluster_heartbeat_age_seconds{node=\"%s\"} %.3f\n",
                                json_string_value(json_object_get(n, "id")) ?: "",
                                (double)json_integer_value(json_object_get(n, "heartbeat_age_ms")) /
                                    1000.0);
    }
    json_decref(nodes);
    return err;
}

char *ald_metrics_render(struct ald *d)
{
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    static const char *const states[] = {"creating", "ready",  "deleting", "deleted",
                                         "expired",  "failed", "lost"};
    long long counts[7] = {0};
    json_t *stored = NULL;
    if (ald_store_session_counts(d->st, &stored) == 0)
        for (int i = 3; i < 7; i++)
            counts[i] = (long long)json_integer_value(json_object_get(stored, states[i]));
    json_decref(stored);
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s; s = s->next)
        if (s->state < 3)
            counts[s->state]++;
    pthread_mutex_unlock(&d->lock);
    int err = al_buf_puts(&b, "# HELP airlock_sessions Sessions by state.\n"
                              "# TYPE airlock_sessions gauge\n");
    for (int i = 0; i < 7 && err == 0; i++)
        err = al_buf_printf(&b, "airlock_sessions{state=\"%s\"} %lld\n", states[i], counts[i]);
    char why[256];
    if (err == 0)
        err = al_buf_printf(&b,
                            "# HELP airlock_db_up Whether the last use of the database worked.\n"
                            "# TYPE airlock_db_up gauge\n"
                            "airlock_db_up %d\n",
                            !ald_db_down(ald_store_db(d->st), why, sizeof(why)));
    if (err == 0)
        err = render_cluster(d, &b, counts[0] + counts[1] + counts[2]);
    if (err == 0 && ald_cluster_self(d))
        err = ald_forward_metrics_render(&b);
    if (err == 0)
        err = al_buf_printf(&b,
                            "# HELP airlock_execs_total Commands run.\n"
                            "# TYPE airlock_execs_total counter\n"
                            "airlock_execs_total %llu\n"
                            "# HELP airlock_exec_seconds Command run time.\n"
                            "# TYPE airlock_exec_seconds histogram\n",
                            (unsigned long long)atomic_load(&d->metrics.execs_total));
    for (int i = 0; i < 12 && err == 0; i++)
        err = al_buf_printf(&b, "airlock_exec_seconds_bucket{le=\"%g\"} %llu\n",
                            ald_metrics_buckets[i],
                            (unsigned long long)atomic_load(&d->metrics.exec_buckets[i]));
    if (err == 0)
        err = al_buf_printf(&b,
                            "airlock_exec_seconds_bucket{le=\"+Inf\"} %llu\n"
                            "airlock_exec_seconds_sum %.3f\n"
                            "airlock_exec_seconds_count %llu\n"
                            "# HELP airlock_limit_kills_total Limits hit.\n"
                            "# TYPE airlock_limit_kills_total counter\n",
                            (unsigned long long)atomic_load(&d->metrics.exec_count),
                            (double)atomic_load(&d->metrics.exec_ms_sum) / 1000.0,
                            (unsigned long long)atomic_load(&d->metrics.exec_count));
    for (int i = 0; i < 4 && err == 0; i++)
        err = al_buf_printf(&b, "airlock_limit_kills_total{limit=\"%s\"} %llu\n",
                            ald_metrics_limits[i],
                            (unsigned long long)atomic_load(&d->metrics.limit_kills[i]));
    if (err == 0)
        err = al_buf_puts(&b, "# HELP airlock_http_requests_total Replies by status.\n"
                              "# TYPE airlock_http_requests_total counter\n");
    for (int i = 100; i < 600 && err == 0; i++) {
        unsigned long long n = atomic_load(&d->metrics.http[i]);
        if (n)
            err = al_buf_printf(&b, "airlock_http_requests_total{code=\"%d\"} %llu\n", i, n);
    }
    if (err < 0) {
        al_buf_free(&b);
        return NULL;
    }
    return al_buf_detach(&b);
}
