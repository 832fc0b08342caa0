/*
 * main.c — lienthongd, one daemon per node and one binary for every level: the
 * configuration says whether this node has a parent (upstream.c) and/or children
 * (downstream.c). One libuv loop runs everything; signals arrive as loop events:
 * SIGTERM/SIGINT stop gracefully, SIGHUP reloads the reloadable settings and the
 * children's allow-list. Links are CURVE unless security.mode = plaintext, which
 * is logged loudly at start.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"

typedef struct {
    lt_daemon_t d;
    lt_config_t cfg;
    const char *config_path;
    upstream_t *up;
    downstream_t *down;
    metrics_t *metrics;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t stats_timer;
    int stopping, pending_stops, exit_code;
} main_t;

static void log_stats(main_t *m)
{
    const lt_stats_t *s = &m->d.stats;
    if (m->up)
        log_info("stats: up connected=%d sent=%" PRIu64 " batches/%" PRIu64 " records acked_seq=%" PRIu64
                 " outbox=%" PRIu64 " oldest_ms=%" PRId64 " rejected=%" PRIu64 " timeouts=%" PRIu64
                 " resumes=%" PRIu64 " blocked=%" PRIu64 " shrinks=%" PRIu64,
                 s->up_connected, s->up_batches_sent, s->up_records_sent, s->up_acked_seq, s->up_outbox_rows,
                 s->up_oldest_unacked_ms, s->up_rejected, s->up_timeouts, s->up_resumes, s->up_send_blocked,
                 s->up_batch_shrinks);
    if (m->down)
        log_info("stats: down sessions=%" PRIu64 " batches=%" PRIu64 " applied=%" PRIu64 " rejected=%" PRIu64
                 " duplicates=%" PRIu64 " gaps=%" PRIu64 " bad=%" PRIu64 " busy=%" PRIu64 " db_errors=%" PRIu64
                 " queue_bytes=%" PRIu64 " auth_ok=%" PRIu64 " auth_refused=%" PRIu64 " auth_mismatch=%" PRIu64,
                 s->down_sessions, s->down_batches, s->down_records_applied, s->down_records_rejected,
                 s->down_duplicates, s->down_gaps, s->down_bad_messages, s->down_dropped_busy,
                 s->down_db_errors, s->down_queue_bytes, s->down_auth_accepted, s->down_auth_refused,
                 s->down_auth_mismatch);
}

static void on_stats(uv_timer_t *t)
{
    main_t *m = t->data;
    if (m->up)
        upstream_stats_tick(m->up);
    if (m->down)
        downstream_stats_tick(m->down);
    log_stats(m);
}

static void on_part_stopped(void *arg)
{
    main_t *m = arg;
    if (--m->pending_stops == 0) {
        uv_close((uv_handle_t *)&m->sigterm, NULL);
        uv_close((uv_handle_t *)&m->sigint, NULL);
        uv_close((uv_handle_t *)&m->sighup, NULL);
        uv_close((uv_handle_t *)&m->stats_timer, NULL);
    }
}

static void stop(main_t *m, const char *why)
{
    if (m->stopping)
        return;
    m->stopping = 1;
    log_info("%s, stopping", why);
    uv_timer_stop(&m->stats_timer);
    log_stats(m);
    m->pending_stops = 1; /* held until every part is asked */
    if (m->up) {
        m->pending_stops++;
        upstream_stop(m->up, on_part_stopped, m);
        m->up = NULL;
    }
    if (m->down) {
        m->pending_stops++;
        downstream_stop(m->down, on_part_stopped, m);
        m->down = NULL;
    }
    metrics_destroy(&m->metrics);
    on_part_stopped(m);
}

static void on_signal(uv_signal_t *h, int signum)
{
    main_t *m = h->data;
    if (signum == SIGHUP) {
        char changed[512] = "", restart[512] = "", err[512];
        log_info("got SIGHUP, reloading %s", m->config_path);
        if (lt_config_reload(m->config_path, &m->cfg, changed, sizeof(changed), restart, sizeof(restart),
                             err, sizeof(err)) != 0) {
            log_error("reload failed, keeping the running configuration: %s", err);
            return;
        }
        lt_log_level = (lt_log_level_t)m->cfg.log_level;
        lt_log_setup(m->cfg.unit, m->cfg.log_format);
        log_info("reloaded: changed [%s]%s%s%s", changed, restart[0] ? "; need a restart to take effect: [" : "",
                 restart, restart[0] ? "]" : "");
        uv_timer_set_repeat(&m->stats_timer, (uint64_t)m->cfg.stats_interval_ms);
        if (m->down)
            downstream_reload(m->down);
        return;
    }
    stop(m, signum == SIGTERM ? "got SIGTERM" : "got SIGINT");
}

static void usage(void)
{
    fprintf(stderr, "usage: lienthongd -c CONFIG [--check]\n"
                    "  -c CONFIG   the node's configuration file (see deploy/CONFIG.md)\n"
                    "  --check     validate the configuration and exit\n");
}

int main(int argc, char **argv)
{
    static main_t m;
    char err[512];
    int check = 0;

    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            m.config_path = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else {
            usage();
            return 2;
        }
    }
    if (!m.config_path) {
        usage();
        return 2;
    }
    if (lt_config_load(m.config_path, &m.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "lienthongd: %s\n", err);
        return 2;
    }
    lt_log_level = (lt_log_level_t)m.cfg.log_level;
    lt_log_setup(m.cfg.unit, m.cfg.log_format);
    if (check) {
        lt_config_dump(&m.cfg, stdout);
        lt_config_free(&m.cfg);
        return 0;
    }
    if (m.cfg.security_mode == LT_SECURITY_PLAINTEXT)
        log_warn("SECURITY: links are PLAINTEXT (security.mode = plaintext): unauthenticated and "
                 "unencrypted. Use only on a local test network.");
    else
        log_info("security: links are CURVE-encrypted; %s%s%s", m.cfg.children_bind[0] ? "children's keys from " : "",
                 m.cfg.children_bind[0] ? m.cfg.children_keys_file : "",
                 m.cfg.parent_endpoint[0] ? (m.cfg.children_bind[0] ? ", parent authenticated by its key"
                                                                     : "parent authenticated by its key")
                                          : "");

    signal(SIGPIPE, SIG_IGN);
    m.d.loop = uv_default_loop();
    m.d.cfg = &m.cfg;
    m.d.software = LT_SOFTWARE;
    srand((unsigned)(lt_now_ms() ^ (uint64_t)getpid()));
    if (!(m.d.zctx = zmq_ctx_new())) {
        log_error("zmq_ctx_new: %s", zmq_strerror(errno));
        return 2;
    }
    log_info("lienthongd starting: node %s%s%s, %s", m.cfg.unit, m.cfg.parent_endpoint[0] ? ", parent " : "",
             m.cfg.parent_endpoint, m.cfg.children_bind[0] ? "children welcome" : "no children");

    uv_signal_init(m.d.loop, &m.sigterm);
    uv_signal_init(m.d.loop, &m.sigint);
    uv_signal_init(m.d.loop, &m.sighup);
    m.sigterm.data = m.sigint.data = m.sighup.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    uv_signal_start(&m.sighup, on_signal, SIGHUP);
    uv_timer_init(m.d.loop, &m.stats_timer);
    m.stats_timer.data = &m;
    uv_timer_start(&m.stats_timer, on_stats, 1000, (uint64_t)m.cfg.stats_interval_ms);

    if (m.cfg.children_bind[0] && !(m.down = downstream_new(&m.d)))
        m.exit_code = 2;
    if (!m.exit_code && m.cfg.parent_endpoint[0] && !(m.up = upstream_new(&m.d)))
        m.exit_code = 2;
    if (!m.exit_code && m.cfg.metrics_listen[0] &&
        !(m.metrics = metrics_new(m.d.loop, m.cfg.metrics_listen, &m.d)))
        m.exit_code = 2;
    if (m.exit_code)
        stop(&m, "start-up failed");

    uv_run(m.d.loop, UV_RUN_DEFAULT);
    uv_loop_close(m.d.loop);
    zmq_ctx_term(m.d.zctx);
    log_info("stopped");
    lt_config_free(&m.cfg);
    return m.exit_code;
}
