/*
 * downstream.c — this node as a parent: a ROUTER bound for the children, one
 * session per connection (keyed by ZeroMQ routing id), and the apply queue
 * (apply.c) that turns their batches into committed rows before any ACK.
 *
 * Invariants: a batch is accepted only on a session whose HELLO the database
 * accepted; the unit a session speaks for is decided here (the HELLO in plaintext
 * mode, the CURVE key's allow-list entry otherwise), never by the batch; every
 * malformed or unexpected message gets an ERROR, a counter and a log line, and the
 * other children carry on.
 */
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "apply.h"
#include "daemon.h"
#include "log.h"
#include "pgconn.h"
#include "wire.h"
#include "zsock.h"

#define SESSION_BUCKETS 4096
#define RECV_BURST 256

typedef struct session {
    struct session *next;
    uint8_t rid[256];
    size_t rid_len;
    char unit[8];
    int welcomed, hello_pending;
    uint64_t last_seen_mono;
    double last_seen_wall;
} session_t;

struct downstream {
    lt_daemon_t *d;
    pgconn_t *db;
    zsock_t *zs;
    applier_t *applier;
    uv_timer_t timer;
    session_t *buckets[SESSION_BUCKETS];
    size_t nsessions;
    int stopping;
    void (*done)(void *);
    void *done_arg;
};

/* ------------------------------------------------------------ sessions */

static uint32_t rid_hash(const uint8_t *rid, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ rid[i]) * 16777619u;
    return h % SESSION_BUCKETS;
}

static session_t *session_find(downstream_t *s, const uint8_t *rid, size_t len)
{
    for (session_t *x = s->buckets[rid_hash(rid, len)]; x; x = x->next)
        if (x->rid_len == len && memcmp(x->rid, rid, len) == 0)
            return x;
    return NULL;
}

static session_t *session_get(downstream_t *s, const uint8_t *rid, size_t len)
{
    session_t *x = session_find(s, rid, len);
    if (x || len > sizeof(x->rid))
        return x;
    if (!(x = calloc(1, sizeof(*x))))
        return NULL;
    memcpy(x->rid, rid, len);
    x->rid_len = len;
    uint32_t h = rid_hash(rid, len);
    x->next = s->buckets[h];
    s->buckets[h] = x;
    s->nsessions++;
    return x;
}

/* Forget sessions silent for longer than three heartbeat timeouts. */
static void sessions_expire(downstream_t *s, uint64_t now)
{
    uint64_t limit = 3u * (uint64_t)s->d->cfg->heartbeat_timeout_ms;
    for (int b = 0; b < SESSION_BUCKETS; b++) {
        session_t **pp = &s->buckets[b];
        while (*pp) {
            session_t *x = *pp;
            if (!x->hello_pending && now - x->last_seen_mono > limit) {
                log_info("child %s: session idle for %" PRIu64 " s, forgotten", x->unit[0] ? x->unit : "?",
                         (now - x->last_seen_mono) / 1000);
                *pp = x->next;
                free(x);
                s->nsessions--;
            } else {
                pp = &x->next;
            }
        }
    }
}

/* ------------------------------------------------------------ sending */

static void send_to(void *arg, const uint8_t *rid, size_t rid_len, const char *buf, size_t len)
{
    downstream_t *s = arg;
    const void *parts[2] = {rid, buf};
    size_t lens[2] = {rid_len, len};

    if (!s->zs)
        return;
    if (zsock_send_parts(zsock_handle(s->zs), parts, lens, 2) != 0) {
        /* EHOSTUNREACH: the child is gone; EAGAIN: its queue is full. Either way it
           will time out, say HELLO again and resume from what was committed. */
        log_debug("reply to a child not delivered: %s", zmq_strerror(errno));
    }
    zsock_kick(s->zs);
}

static void send_error(downstream_t *s, const uint8_t *rid, size_t rid_len, int code, const char *text)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (lt_wire_encode_error(&sb, (uint16_t)code, text) == 0)
        send_to(s, rid, rid_len, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void on_welcomed(void *arg, const uint8_t *rid, size_t rid_len, const char *unit, int ok)
{
    downstream_t *s = arg;
    session_t *x = session_find(s, rid, rid_len);
    if (!x)
        return;
    x->hello_pending = 0;
    x->welcomed = ok;
}

/* ------------------------------------------------------------ receiving */

static void handle(downstream_t *s, const uint8_t *rid, size_t rid_len, const void *data, size_t len)
{
    lt_stats_t *st = &s->d->stats;
    lt_msg_t msg;
    char err[256];
    int code = 0;
    session_t *x = session_get(s, rid, rid_len);

    st->down_bytes_received += len;
    if (!x) {
        st->down_bad_messages++;
        log_warn("cannot track a child connection (routing id of %zu bytes)", rid_len);
        return;
    }
    x->last_seen_mono = lt_mono_ms();
    x->last_seen_wall = (double)lt_now_ms() / 1000.0;

    if (lt_wire_decode(data, len, &msg, err, sizeof(err), &code) != 0) {
        st->down_bad_messages++;
        log_warn("child %s: bad message (%s, %zu bytes): %s", x->unit[0] ? x->unit : "?",
                 lt_wire_error_name(code), len, err);
        send_error(s, rid, rid_len, code, err);
        return;
    }
    switch (msg.type) {
    case LT_MSG_HELLO:
        if (x->hello_pending)
            break; /* one at a time */
        /* Plaintext: the child names itself; the database checks it is our child. */
        snprintf(x->unit, sizeof(x->unit), "%s", msg.u.hello.unit);
        x->welcomed = 0;
        x->hello_pending = 1;
        log_debug("child %s: hello (%s, issued up to seq %" PRIu64 ")", x->unit, msg.u.hello.software,
                  msg.u.hello.max_seq);
        if (applier_submit_hello(s->applier, rid, rid_len, x->unit, msg.u.hello.max_seq) != 0) {
            x->hello_pending = 0;
            send_error(s, rid, rid_len, LT_WIRE_EBUSY, "busy; say hello again later");
        }
        break;
    case LT_MSG_BATCH:
        if (!x->welcomed) {
            st->down_bad_messages++;
            send_error(s, rid, rid_len, LT_WIRE_ENO_SESSION, "no session: send HELLO first");
            break;
        }
        if (applier_submit_batch(s->applier, rid, rid_len, x->unit, &msg, len) != 0) {
            st->down_dropped_busy++;
            log_info("child %s: apply queue full (%zu bytes); batch refused with BUSY", x->unit,
                     applier_queue_bytes(s->applier));
            send_error(s, rid, rid_len, LT_WIRE_EBUSY, "apply queue full; send again later");
        }
        break;
    case LT_MSG_PING: {
        if (!x->welcomed) {
            send_error(s, rid, rid_len, LT_WIRE_ENO_SESSION, "no session: send HELLO first");
            break;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (lt_wire_encode_ping(&sb, LT_MSG_PONG, msg.u.ping.ms) == 0)
            send_to(s, rid, rid_len, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        break;
    }
    case LT_MSG_ERROR:
        log_warn("child %s reports error %u: %s", x->unit[0] ? x->unit : "?", msg.u.error.code,
                 msg.u.error.message);
        break;
    default:
        st->down_bad_messages++;
        log_warn("child %s: unexpected message type %d from a child", x->unit[0] ? x->unit : "?",
                 (int)msg.type);
        send_error(s, rid, rid_len, LT_WIRE_EBAD_TYPE, "message type not accepted from a child");
        break;
    }
    lt_msg_clear(&msg);
}

static void on_zmq(zsock_t *zs, int events, void *arg)
{
    downstream_t *s = arg;
    zmq_msg_t parts[2];

    if (!(events & ZMQ_POLLIN))
        return;
    for (int i = 0; i < RECV_BURST; i++) {
        int n = zsock_recv_parts(zsock_handle(zs), parts, 2);
        if (n == 0)
            break;
        if (n < 0) {
            s->d->stats.down_bad_messages++;
            log_warn("message from a child with too many frames or unreadable; dropped");
            continue;
        }
        if (n == 2)
            handle(s, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), zmq_msg_data(&parts[1]),
                   zmq_msg_size(&parts[1]));
        else
            s->d->stats.down_bad_messages++;
        for (int k = 0; k < n; k++)
            zmq_msg_close(&parts[k]);
    }
}

/* ------------------------------------------------------------ database */

static void on_db_state(pgconn_t *c, int up, void *arg)
{
    downstream_t *s = arg;
    if (!up) {
        log_warn("database connection lost (%s); children will be asked to retry", pgconn_error(c));
        /* sessions must say HELLO again: their resume point is re-read from the database */
        for (int b = 0; b < SESSION_BUCKETS; b++)
            for (session_t *x = s->buckets[b]; x; x = x->next)
                x->welcomed = 0, x->hello_pending = 0;
    }
    applier_db_state(s->applier, up);
}

static void on_flush(pgconn_t *c, PGresult *res, void *arg)
{
    (void)c;
    (void)arg;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("link state write failed: %s", PQresultErrorMessage(res));
}

/* Persist last-contact times of live sessions, for `lienthong status`. */
static void flush_contacts(downstream_t *s)
{
    size_t cap = s->nsessions * 24 + 16;
    char *units = malloc(cap), *seen = malloc(cap);
    size_t ul = 0, sl = 0;
    if (!units || !seen || !pgconn_is_up(s->db))
        goto out;
    units[ul++] = '{';
    seen[sl++] = '{';
    for (int b = 0; b < SESSION_BUCKETS; b++)
        for (session_t *x = s->buckets[b]; x; x = x->next)
            if (x->welcomed && ul + 24 < cap && sl + 24 < cap) {
                ul += (size_t)snprintf(units + ul, cap - ul, "%s%s", ul > 1 ? "," : "", x->unit);
                sl += (size_t)snprintf(seen + sl, cap - sl, "%s%.3f", sl > 1 ? "," : "", x->last_seen_wall);
            }
    units[ul++] = '}';
    units[ul] = '\0';
    seen[sl++] = '}';
    seen[sl] = '\0';
    if (ul > 2) {
        const char *p[2] = {units, seen};
        if (pgconn_query(s->db, "SELECT lt.children_seen($1::text[], $2::float8[])", 2, p, on_flush, s) != 0)
            log_debug("link state not written: database down");
    }
out:
    free(units);
    free(seen);
}

static void on_timer(uv_timer_t *t)
{
    downstream_t *s = t->data;
    sessions_expire(s, lt_mono_ms());
    s->d->stats.down_sessions = s->nsessions;
}

void downstream_stats_tick(downstream_t *s)
{
    flush_contacts(s);
    s->d->stats.down_sessions = s->nsessions;
    s->d->stats.down_queue_bytes = applier_queue_bytes(s->applier);
}

/* ------------------------------------------------------------ lifecycle */

downstream_t *downstream_new(lt_daemon_t *d)
{
    downstream_t *s = calloc(1, sizeof(*s));
    void *sock = NULL;
    applier_hooks_t hooks = {.send = send_to, .welcomed = on_welcomed};

    if (!s)
        return NULL;
    s->d = d;
    hooks.arg = s;
    s->db = pgconn_new(d->loop, d->cfg->database, on_db_state, NULL, s);
    if (!s->db || pgconn_set_init_sql(s->db, "SET application_name = 'lienthongd downstream'; "
                                             "SELECT lt.create_staging()") != 0)
        goto fail;
    pgconn_set_backoff(s->db, (unsigned)d->cfg->reconnect_min_ms, (unsigned)d->cfg->reconnect_max_ms);
    if (!(s->applier = applier_new(d, s->db, &hooks)))
        goto fail;
    if (!(sock = zmq_socket(d->zctx, ZMQ_ROUTER)) || net_setup_socket(d, sock, ZMQ_ROUTER) != 0)
        goto fail;
    if (zmq_bind(sock, d->cfg->children_bind) != 0) {
        log_error("cannot bind %s for children: %s", d->cfg->children_bind, zmq_strerror(errno));
        goto fail;
    }
    if (!(s->zs = zsock_new(d->loop, sock, on_zmq, s)))
        goto fail;
    sock = NULL;
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, 1000, 1000);
    if (pgconn_start(s->db) != 0)
        goto fail;
    log_info("listening for children on %s", d->cfg->children_bind);
    return s;
fail:
    if (sock)
        zmq_close(sock);
    zsock_destroy(&s->zs);
    pgconn_destroy(&s->db);
    applier_destroy(&s->applier);
    free(s);
    return NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    downstream_t *s = h->data;
    for (int b = 0; b < SESSION_BUCKETS; b++) {
        while (s->buckets[b]) {
            session_t *x = s->buckets[b];
            s->buckets[b] = x->next;
            free(x);
        }
    }
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    free(s);
    if (done)
        done(arg);
}

void downstream_stop(downstream_t *s, void (*done)(void *arg), void *arg)
{
    s->stopping = 1;
    s->done = done;
    s->done_arg = arg;
    zsock_destroy(&s->zs);
    /* The batch being applied is abandoned: its transaction rolls back when the
       connection closes, no ACK was sent, and the child sends it again. */
    pgconn_destroy(&s->db);
    applier_destroy(&s->applier);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
