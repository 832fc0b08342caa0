/*
 * daemon.h — what the parts of lienthongd share: the loop, the configuration, the
 * ZeroMQ context and the counters. Each link direction is its own module
 * (upstream.c towards the parent, downstream.c for the children); main.c wires them
 * to signals and timers. Nothing here keeps data: the database does.
 */
#ifndef LT_DAEMON_H
#define LT_DAEMON_H

#include <stdint.h>
#include <uv.h>

#include "config.h"

/* Counters: one struct, logged by the periodic "stats:" line and served on /metrics. */
typedef struct {
    /* upstream (this node as a child) */
    uint64_t up_batches_sent, up_records_sent, up_bytes_sent, up_acks, up_rejected,
        up_resumes, up_timeouts, up_hellos, up_send_blocked, up_rewinds, up_bad_messages,
        up_batch_shrinks; /* batch bounds halved to suit a slow link */
    uint64_t up_acked_seq, up_outbox_rows; /* gauges */
    int64_t up_oldest_unacked_ms;          /* gauge: age of the oldest unacked row, -1 none */
    int up_connected;                      /* gauge */
    uint64_t up_meta_changes, up_meta_errors, up_meta_version; /* metadata from the parent */
    /* downstream (this node as a parent) */
    uint64_t down_batches, down_records_applied, down_records_rejected, down_duplicates,
        down_gaps, down_bad_messages, down_refused_hellos, down_dropped_busy, down_db_errors,
        down_bisections, down_quarantined, down_bytes_received, down_groups;
    /* authentication (curve mode): ZAP accepted / refused connections, and
       messages refused because the HELLO named another unit than the key's or
       the key was removed from the allow-list since the connection began */
    uint64_t down_auth_accepted, down_auth_refused, down_auth_mismatch;
    uint64_t down_meta_sent, down_submissions;
    uint64_t down_sessions, down_queue_bytes; /* gauges */
    uint64_t apply_ns_total;                  /* time spent in batch applies */
} lt_stats_t;

typedef struct upstream upstream_t;
typedef struct downstream downstream_t;

typedef struct {
    uv_loop_t *loop;
    lt_config_t *cfg;
    void *zctx;
    lt_stats_t stats;
    const char *software; /* "lienthongd/VERSION" */
} lt_daemon_t;

#define LT_SOFTWARE "lienthongd/0.1"



/* Both modules: _new returns NULL on failure (logged); _stop begins a graceful
   shutdown and calls done(arg) once every handle is closed; _reload applies
   reloadable settings. */
upstream_t *upstream_new(lt_daemon_t *d);
void upstream_stop(upstream_t *u, void (*done)(void *arg), void *arg);
void upstream_stats_tick(upstream_t *u);

downstream_t *downstream_new(lt_daemon_t *d);
void downstream_stop(downstream_t *s, void (*done)(void *arg), void *arg);
void downstream_stats_tick(downstream_t *s);
/* SIGHUP: re-read the children's allow-list (curve mode). */
void downstream_reload(downstream_t *s);

/* Socket options shared by both sides (net.c): limits, heartbeats, reconnect
   back-off, linger, and CURVE unless security.mode = plaintext: a ROUTER
   becomes a CURVE server in the ZAP domain (its ZAP handler must be bound
   first: zap.h), a DEALER a CURVE client of the parent's public key. Key files
   are checked (a secret readable by others, or a public key that is not the
   secret's, is refused). 0 or -1 (logged). */
int net_setup_socket(lt_daemon_t *d, void *sock, int type);

/* The kernel's view of one TCP connection (a file descriptor from a socket monitor
   or ZMQ_SRCFD): bytes of ours the peer has acknowledged, bytes received from it
   (both since the connection began), and bytes still waiting in our send queue.
   0, or -1 when fd is not an established TCP connection. */
typedef struct {
    uint64_t delivered, received, queued;
} net_tcp_t;
int net_tcp_read(int fd, net_tcp_t *t);

/* Wall-clock milliseconds since the epoch, and monotonic milliseconds. */
uint64_t lt_now_ms(void);
uint64_t lt_mono_ms(void);

#endif
