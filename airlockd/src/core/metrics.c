/* The counters core keeps (metrics.h): execs, their durations, limit
 * kills. */
#include "airlockd/core/daemon.h"
#include "airlockd/core/metrics.h"

#include <string.h>

/* Upper bounds of the exec duration histogram, in seconds. */
const double ald_metrics_buckets[12] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    5,     30};
const char *const ald_metrics_limits[4] = {"memory", "pids", "timeout", "output"};

void ald_metrics_exec(struct ald *d, uint64_t duration_ms)
{
    atomic_fetch_add(&d->metrics.execs_total, 1);
    atomic_fetch_add(&d->metrics.exec_count, 1);
    atomic_fetch_add(&d->metrics.exec_ms_sum, duration_ms);
    double secs = (double)duration_ms / 1000.0;
    for (int i = 0; i < 12; i++)
        if (secs <= ald_metrics_buckets[i])
            atomic_fetch_add(&d->metrics.exec_buckets[i], 1);
}

void ald_metrics_limit(struct ald *d, const char *limit)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(limit, ald_metrics_limits[i]) == 0)
            atomic_fetch_add(&d->metrics.limit_kills[i], 1);
}
