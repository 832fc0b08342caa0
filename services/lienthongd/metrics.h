/*
 * metrics.h — a minimal HTTP endpoint serving the daemon's counters in the
 * Prometheus text format at GET /metrics. One request per connection, answered
 * from memory; never touches the database, so it answers even when that is down.
 */
#ifndef LT_METRICS_H
#define LT_METRICS_H

#include <uv.h>

#include "daemon.h"

typedef struct metrics metrics_t;

/* listen: "host:port" (IPv4). NULL on failure (logged). */
metrics_t *metrics_new(uv_loop_t *loop, const char *listen, lt_daemon_t *d);
void metrics_destroy(metrics_t **m_p);
/* The exposition text for the current counters; the caller frees it. */
char *metrics_render(const lt_daemon_t *d);

#endif
