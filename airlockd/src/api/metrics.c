/* Prometheus metrics: sessions by state, execs, exec durations, limit
 * kills, HTTP replies by status. */
#include "airlockd/api/metrics.h"

#include "airlockd/adapters/store.h"
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

char *ald_metrics_render(struct ald *d)
{
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    static const char *const states[] = {"creating", "ready",   "deleting",
                                         "deleted",  "expired", "failed"};
    long long counts[6] = {0};
    json_t *stored = NULL;
    if (ald_store_session_counts(d->st, &stored) == 0)
        for (int i = 3; i < 6; i++)
            counts[i] = (long long)json_integer_value(json_object_get(stored, states[i]));
    json_decref(stored);
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s; s = s->next)
        if (s->state < 3)
            counts[s->state]++;
    pthread_mutex_unlock(&d->lock);
    int err = al_buf_puts(&b, "# HELP airlock_sessions Sessions by state.\n"
                              "# TYPE airlock_sessions gauge\n");
    for (int i = 0; i < 6 && err == 0; i++)
        err = al_buf_printf(&b, "airlock_sessions{state=\"%s\"} %lld\n", states[i], counts[i]);
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
