/* The daemon's counters (struct ald_metrics): exec durations and limit
 * kills, counted by core; the api counts HTTP replies and renders them all
 * (api/metrics.h). */
#ifndef ALD_CORE_METRICS_H
#define ALD_CORE_METRICS_H

#include <stdint.h>

struct ald;

/* Upper bounds of the exec duration histogram, in seconds. */
extern const double ald_metrics_buckets[12];
/* The limits whose kills are counted, in struct ald_metrics.limit_kills. */
extern const char *const ald_metrics_limits[4];

void ald_metrics_exec(struct ald *d, uint64_t duration_ms);
void ald_metrics_limit(struct ald *d, const char *limit);

#endif
