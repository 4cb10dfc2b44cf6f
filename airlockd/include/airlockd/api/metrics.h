/* Prometheus metrics: sessions by state, execs, exec durations, limit
 * kills (core/metrics.h), HTTP replies by status. */
#ifndef ALD_API_METRICS_H
#define ALD_API_METRICS_H

struct ald;

void ald_metrics_http(struct ald *d, int status);
/* The Prometheus text (caller frees). */
char *ald_metrics_render(struct ald *d);

#endif
