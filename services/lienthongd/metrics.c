/*
 * metrics.c — see metrics.h. Requests larger than 4 KiB or slower than 5 s are
 * dropped; responses are small and written once.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct metrics {
    uv_tcp_t server;
    lt_daemon_t *d;
};

typedef struct {
    uv_tcp_t tcp;
    uv_write_t wr;
    metrics_t *m;
    char req[4096];
    size_t len;
    char *resp;
} conn_t;

char *metrics_render(const lt_daemon_t *d)
{
    const lt_stats_t *s = &d->stats;
    size_t cap = 16384;
    char *out = malloc(cap);
    size_t n = 0;
    if (!out)
        return NULL;
#define M(name, type, help, value)                                                               \
    n += (size_t)snprintf(out + n, cap - n, "# HELP lienthong_%s %s\n# TYPE lienthong_%s %s\nlienthong_%s{node=\"%s\"} %" PRId64 "\n", \
                          name, help, name, type, name, d->cfg->unit, (int64_t)(value))
    M("up_connected", "gauge", "1 while streaming to the parent", s->up_connected);
    M("up_batches_sent_total", "counter", "batches sent to the parent", s->up_batches_sent);
    M("up_records_sent_total", "counter", "records sent to the parent", s->up_records_sent);
    M("up_bytes_sent_total", "counter", "bytes sent to the parent", s->up_bytes_sent);
    M("up_acks_total", "counter", "acknowledgements received", s->up_acks);
    M("up_rejected_total", "counter", "records the parent refused", s->up_rejected);
    M("up_timeouts_total", "counter", "acknowledgement timeouts", s->up_timeouts);
    M("up_resumes_total", "counter", "RESUME requests from the parent", s->up_resumes);
    M("up_rewinds_total", "counter", "full resyncs after positions disagreed", s->up_rewinds);
    M("up_send_blocked_total", "counter", "sends refused by ZeroMQ (parent absent or slow)", s->up_send_blocked);
    M("up_batch_shrinks_total", "counter", "batch bounds halved to suit a slow link", s->up_batch_shrinks);
    M("up_acked_seq", "gauge", "highest sequence acknowledged by the parent", s->up_acked_seq);
    M("up_outbox_rows", "gauge", "rows waiting for an acknowledgement", s->up_outbox_rows);
    M("up_lag_ms", "gauge", "age of the oldest unacknowledged row, -1 when none", s->up_oldest_unacked_ms);
    M("down_sessions", "gauge", "children connected", s->down_sessions);
    M("down_batches_total", "counter", "batches applied", s->down_batches);
    M("down_records_applied_total", "counter", "records applied", s->down_records_applied);
    M("down_records_rejected_total", "counter", "records refused", s->down_records_rejected);
    M("down_duplicates_total", "counter", "batches re-acknowledged without applying", s->down_duplicates);
    M("down_gaps_total", "counter", "batches answered with RESUME", s->down_gaps);
    M("down_bad_messages_total", "counter", "malformed or unexpected messages", s->down_bad_messages);
    M("down_refused_hellos_total", "counter", "HELLOs refused", s->down_refused_hellos);
    M("down_busy_total", "counter", "batches refused because the apply queue was full", s->down_dropped_busy);
    M("down_db_errors_total", "counter", "database failures while applying", s->down_db_errors);
    M("down_quarantined_total", "counter", "records quarantined as poison", s->down_quarantined);
    M("down_queue_bytes", "gauge", "bytes waiting in the apply queue", s->down_queue_bytes);
    M("apply_seconds_total", "counter", "seconds spent applying (integer)", s->apply_ns_total / 1000000000u);
    M("down_groups_total", "counter", "transactions that applied one or more batches", s->down_groups);
    M("down_auth_accepted_total", "counter", "connections whose CURVE key is in the allow-list", s->down_auth_accepted);
    M("down_auth_refused_total", "counter", "connections refused by the ZAP handler", s->down_auth_refused);
    M("down_auth_mismatch_total", "counter", "messages refused: HELLO for another unit than the key's, or a revoked key",
      s->down_auth_mismatch);
    M("down_meta_sent_total", "counter", "metadata changes sent to children", s->down_meta_sent);
    M("down_submissions_total", "counter", "report submissions applied", s->down_submissions);
    M("up_meta_changes_total", "counter", "metadata changes received from the parent", s->up_meta_changes);
    M("up_meta_errors_total", "counter", "metadata messages the database refused", s->up_meta_errors);
    M("up_meta_version", "gauge", "position in the parent's metadata log", s->up_meta_version);
#undef M
    return out;
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    free(c->resp);
    free(c);
}

static void on_written(uv_write_t *w, int status)
{
    conn_t *c = w->data;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    buf->base = c->req + c->len;
    buf->len = sizeof(c->req) - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread < 0 || (nread == 0 && c->len == sizeof(c->req) - 1)) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    c->len += (size_t)nread;
    c->req[c->len] = '\0';
    if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n"))
        return;
    uv_read_stop(s);
    int ok = strncmp(c->req, "GET /metrics", 12) == 0;
    char *body = ok ? metrics_render(c->m->d) : NULL;
    const char *text = body ? body : "not found\n";
    size_t blen = strlen(text);
    c->resp = malloc(blen + 200);
    if (!c->resp) {
        free(body);
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    int h = snprintf(c->resp, 200,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     body ? "200 OK" : "404 Not Found", blen);
    memcpy(c->resp + h, text, blen);
    free(body);
    uv_buf_t out = uv_buf_init(c->resp, (unsigned)(h + (int)blen));
    c->wr.data = c;
    if (uv_write(&c->wr, s, &out, 1, on_written) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    metrics_t *m = server->data;
    conn_t *c;
    if (status < 0 || !(c = calloc(1, sizeof(*c))))
        return;
    c->m = m;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_server_closed(uv_handle_t *h)
{
    free(h->data);
}

metrics_t *metrics_new(uv_loop_t *loop, const char *listen, lt_daemon_t *d)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in addr;
    metrics_t *m;

    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        log_error("status.metrics_listen \"%s\" is not host:port", listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (uv_ip4_addr(host, atoi(colon + 1), &addr) != 0) {
        log_error("status.metrics_listen \"%s\": not an IPv4 address and port", listen);
        return NULL;
    }
    if (!(m = calloc(1, sizeof(*m))))
        return NULL;
    m->d = d;
    uv_tcp_init(loop, &m->server);
    m->server.data = m;
    int rc = uv_tcp_bind(&m->server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->server, 16, on_connection);
    if (rc != 0) {
        log_error("metrics: cannot listen on %s: %s", listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&m->server, on_server_closed);
        return NULL;
    }
    log_info("metrics on http://%s/metrics", listen);
    return m;
}

void metrics_destroy(metrics_t **m_p)
{
    metrics_t *m = *m_p;
    if (!m)
        return;
    *m_p = NULL;
    uv_close((uv_handle_t *)&m->server, on_server_closed);
}
