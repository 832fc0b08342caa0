/*
 * downstream.c — this node as a parent: a ROUTER bound for the children, one
 * session per connection (keyed by ZeroMQ routing id), and the apply queue
 * (apply.c) that turns their batches into committed rows before any ACK.
 *
 * Invariants: a batch is accepted only on a session whose HELLO the database
 * accepted; the unit a session speaks for is decided here, never by the batch:
 * in curve mode it is the User-Id that the ZAP handler (zap.c) attached to the
 * received message from the allow-list entry of the peer's key — never the
 * routing id (the peer may choose it) nor the HELLO (a HELLO naming another unit
 * is refused with code 7) — and a key removed from the allow-list is refused on
 * its next message; in plaintext mode it is the HELLO. Every malformed,
 * unexpected or unauthorised message gets an ERROR, a counter and a log line, and
 * the other children carry on.
 *
 * Liveness: a socket monitor reports each connection's end, and each message names
 * the connection it came on (ZMQ_SRCFD). A session whose connection is open is never
 * forgotten, however long a batch takes to arrive on a slow link (ZMTP heartbeats
 * close dead connections); one whose connection closed is forgotten once idle, and
 * the child's link is marked 'silent' in lt.child_link (with its last contact) when
 * no other connection of that child is open, so `lienthong status` names it.
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
#include "zap.h"
#include "zsock.h"

#define SESSION_BUCKETS 4096
#define RECV_BURST 256

typedef struct session {
    struct session *next;
    uint8_t rid[256];
    size_t rid_len;
    char unit[8];
    int welcomed, hello_pending;
    int fd;             /* the connection it speaks on (ZMQ_SRCFD); -1 once it closed */
    int silent_marked;  /* lt.child_silent written for this session */
    uint64_t last_seen_mono;
    double last_seen_wall;
    /* metadata flowing down: the child's position in this node's log */
    int meta_known, meta_busy;    /* position reported; a query or a META outstanding */
    uint64_t meta_pos, meta_sent_mono;
} session_t;

struct downstream {
    lt_daemon_t *d;
    pgconn_t *db;
    zsock_t *zs;
    zap_t *zap; /* curve mode: the authentication handler */
    zsock_t *monitor; /* connection events of zs */
    applier_t *applier;
    uv_timer_t timer;
    session_t *buckets[SESSION_BUCKETS];
    size_t nsessions;
    uint64_t meta_high;    /* the highest committed version of this node's metadata log */
    int meta_high_known;   /* meta_high has been read once */
    int meta_high_pending; /* a lt.meta_high() query is outstanding */
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
    x->fd = -1;
    uint32_t h = rid_hash(rid, len);
    x->next = s->buckets[h];
    s->buckets[h] = x;
    s->nsessions++;
    return x;
}

/* Whether a session's connection is still open, as far as this node knows. */
static int session_connected(const downstream_t *s, const session_t *x)
{
    return !s->monitor || x->fd >= 0;
}

static void on_flush(pgconn_t *c, PGresult *res, void *arg);

/* The session's connection is gone: unless the child has another one open, mark its
   link 'silent' (keeping its last contact) for the operator. */
static void session_lost(downstream_t *s, session_t *x, const char *why)
{
    char seen[32];
    if (!x->welcomed || x->silent_marked || !x->unit[0])
        return;
    x->silent_marked = 1;
    for (int b = 0; b < SESSION_BUCKETS; b++)
        for (session_t *y = s->buckets[b]; y; y = y->next)
            if (y != x && y->welcomed && strcmp(y->unit, x->unit) == 0 && session_connected(s, y))
                return;
    log_info("child %s: %s; its link is now silent (last contact %.0f s ago)", x->unit, why,
             (double)lt_now_ms() / 1000.0 - x->last_seen_wall);
    snprintf(seen, sizeof(seen), "%.3f", x->last_seen_wall);
    const char *p[2] = {x->unit, seen};
    if (!pgconn_is_up(s->db) ||
        pgconn_query(s->db, "SELECT lt.child_silent($1, $2::float8)", 2, p, on_flush, s) != 0)
        log_debug("child %s: silent link not recorded (database down)", x->unit);
}

/* A message from session x came on connection fd: any other session on that fd
   belonged to a connection that closed (a connection has one routing id). */
static void session_on_fd(downstream_t *s, session_t *x, int fd)
{
    if (!s->monitor || fd < 0 || x->fd == fd)
        return;
    x->fd = fd;
    x->silent_marked = 0;
    for (int b = 0; b < SESSION_BUCKETS; b++)
        for (session_t *y = s->buckets[b]; y; y = y->next)
            if (y != x && y->fd == fd) {
                y->fd = -1;
                session_lost(s, y, "connection replaced");
            }
}

/* Forget sessions whose connection is gone (or unknown) and that were idle for longer
   than three heartbeat timeouts. */
static void sessions_expire(downstream_t *s, uint64_t now)
{
    uint64_t limit = 3u * (uint64_t)s->d->cfg->heartbeat_timeout_ms;
    for (int b = 0; b < SESSION_BUCKETS; b++) {
        session_t **pp = &s->buckets[b];
        while (*pp) {
            session_t *x = *pp;
            if (!x->hello_pending && now - x->last_seen_mono > limit && !(s->monitor && x->fd >= 0)) {
                log_info("child %s: session idle for %" PRIu64 " s, forgotten", x->unit[0] ? x->unit : "?",
                         (now - x->last_seen_mono) / 1000);
                session_lost(s, x, "session forgotten");
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
    if (!x || strcmp(x->unit, unit) != 0)
        return; /* gone, or the routing id now belongs to another key's session */
    x->hello_pending = 0;
    x->welcomed = ok;
}

/* ------------------------------------------------------------ metadata down */

#define META_CHUNK 500 /* changes per META */

typedef struct {
    downstream_t *s;
    uint8_t rid[256];
    size_t rid_len;
    char unit[8];
    uint64_t after;
} meta_req_t;

static void meta_push(downstream_t *s, session_t *x);

static void on_meta_changes(pgconn_t *c, PGresult *res, void *arg)
{
    meta_req_t *q = arg;
    downstream_t *s = q->s;
    session_t *x = session_find(s, q->rid, q->rid_len);
    lt_meta_change_t *ch = NULL;
    msgpack_sbuffer sb;
    int n = 0;

    if (!x || strcmp(x->unit, q->unit) != 0) {
        free(q);
        return; /* the session went away meanwhile */
    }
    x->meta_busy = 0;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res)
            log_warn("child %s: metadata not read: %s", x->unit, PQresultErrorMessage(res));
        free(q);
        return; /* tried again on the timer */
    }
    n = PQntuples(res);
    if (n == 0) {
        /* nothing in (after, high] concerns this child */
        if (x->meta_pos < s->meta_high)
            x->meta_pos = s->meta_high;
        free(q);
        return;
    }
    ch = calloc((size_t)n, sizeof(*ch));
    msgpack_sbuffer_init(&sb);
    for (int i = 0; ch && i < n; i++) {
        ch[i].version = strtoull(PQgetvalue(res, i, 0), NULL, 10);
        snprintf(ch[i].kind, sizeof(ch[i].kind), "%s", PQgetvalue(res, i, 1));
        snprintf(ch[i].key, sizeof(ch[i].key), "%s", PQgetvalue(res, i, 2));
        ch[i].doc = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
        snprintf(ch[i].scope, sizeof(ch[i].scope), "%s", PQgetisnull(res, i, 4) ? "" : PQgetvalue(res, i, 4));
    }
    uint64_t upto = strtoull(PQgetvalue(res, n - 1, 0), NULL, 10);
    if (!ch || lt_wire_encode_meta(&sb, q->after, upto, ch, (uint32_t)n) != 0) {
        log_error("child %s: metadata versions (%" PRIu64 ", %" PRIu64 "] cannot be encoded; not sent", x->unit,
                  q->after, upto);
    } else {
        send_to(s, x->rid, x->rid_len, sb.data, sb.size);
        x->meta_busy = 1; /* until its META_ACK */
        x->meta_sent_mono = lt_mono_ms();
        s->d->stats.down_meta_sent += (uint64_t)n;
        log_debug("child %s: sent metadata (%" PRIu64 ", %" PRIu64 "], %d changes", x->unit, q->after, upto, n);
    }
    msgpack_sbuffer_destroy(&sb);
    free(ch);
    free(q);
}

/* Send the child the next metadata changes it lacks, if any and none are outstanding. */
static void meta_push(downstream_t *s, session_t *x)
{
    char p_after[24], p_limit[16];
    meta_req_t *q;

    if (!x->welcomed || !x->meta_known || x->meta_busy || x->meta_pos >= s->meta_high || !pgconn_is_up(s->db))
        return;
    if (!(q = calloc(1, sizeof(*q))))
        return;
    q->s = s;
    memcpy(q->rid, x->rid, x->rid_len);
    q->rid_len = x->rid_len;
    memcpy(q->unit, x->unit, sizeof(q->unit));
    q->after = x->meta_pos;
    snprintf(p_after, sizeof(p_after), "%" PRIu64, x->meta_pos);
    snprintf(p_limit, sizeof(p_limit), "%d", META_CHUNK);
    const char *p[3] = {p_after, x->unit, p_limit};
    if (pgconn_query(s->db, "SELECT version, kind, key, doc::text, scope_unit FROM lt.meta_changes_since($1::bigint, $2, $3::int)",
                     3, p, on_meta_changes, q) != 0) {
        free(q);
        return;
    }
    x->meta_busy = 1;
    x->meta_sent_mono = lt_mono_ms();
}

static void on_meta_high(pgconn_t *c, PGresult *res, void *arg)
{
    downstream_t *s = arg;
    s->meta_high_pending = 0;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        return;
    s->meta_high = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    s->meta_high_known = 1;
    uint64_t now = lt_mono_ms();
    for (int b = 0; b < SESSION_BUCKETS; b++)
        for (session_t *x = s->buckets[b]; x; x = x->next) {
            /* a META (or its query) without an answer in time is sent again */
            if (x->meta_busy && now - x->meta_sent_mono > (uint64_t)s->d->cfg->ack_timeout_ms)
                x->meta_busy = 0;
            meta_push(s, x);
        }
}

/* ------------------------------------------------------------ receiving */

/* auth: in curve mode the unit the message's key is bound to (its User-Id,
   still allowed by the current allow-list), NULL when the key is not (or no
   longer) allowed; in plaintext mode always NULL. */
static void handle(downstream_t *s, const uint8_t *rid, size_t rid_len, const void *data, size_t len,
                   const char *auth, int fd)
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
    session_on_fd(s, x, fd);
    if (s->zap) {
        if (!auth) {
            st->down_auth_mismatch++;
            log_warn("child %s: its key is no longer in the allow-list; message refused",
                     x->unit[0] ? x->unit : "?");
            x->welcomed = 0;
            send_error(s, rid, rid_len, LT_WIRE_EUNAUTHORISED, "this node's key is not in the parent's allow-list");
            return;
        }
        if (strcmp(x->unit, auth) != 0) {
            /* a new connection, or a routing id taken over by another key: the
               session starts again as the key's unit */
            if (x->unit[0])
                log_warn("child %s: routing id now used by the key of %s; session reset", x->unit, auth);
            snprintf(x->unit, sizeof(x->unit), "%s", auth);
            x->welcomed = 0;
            x->hello_pending = 0;
        }
    }

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
        if (s->zap && strcmp(msg.u.hello.unit, x->unit) != 0) {
            /* Curve: the key decides the unit; a HELLO naming another is refused. */
            char why[128];
            st->down_auth_mismatch++;
            st->down_refused_hellos++;
            x->welcomed = 0;
            log_warn("child %s: HELLO names unit %s, but the connection's key belongs to %s; refused", x->unit,
                     msg.u.hello.unit, x->unit);
            snprintf(why, sizeof(why), "HELLO names unit %s, but this connection's key belongs to %s",
                     msg.u.hello.unit, x->unit);
            send_error(s, rid, rid_len, LT_WIRE_EUNAUTHORISED, why);
            break;
        }
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
            /* usually a batch still in flight when the child's session was reset */
            log_info("child %s: batch (seq %" PRIu64 "..%" PRIu64 "] outside a session; answered NO_SESSION",
                     x->unit, msg.u.batch.prev_seq, msg.u.batch.last_seq);
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
    case LT_MSG_META_ACK:
        if (!x->welcomed) {
            send_error(s, rid, rid_len, LT_WIRE_ENO_SESSION, "no session: send HELLO first");
            break;
        }
        /* the child's position in this node's metadata log (after WELCOME, after each META) */
        x->meta_known = 1;
        x->meta_busy = 0;
        x->meta_pos = msg.u.meta_ack.applied;
        if (s->meta_high_known && x->meta_pos > s->meta_high) {
            /* the child is ahead of this node's log: this node was restored from an older
               backup. Send it everything again; it starts over when it sees after = 0. */
            log_warn("child %s: its metadata position %" PRIu64 " is past this node's log (%" PRIu64
                     "); sending the whole catalogue again",
                     x->unit, x->meta_pos, s->meta_high);
            x->meta_pos = 0;
        }
        meta_push(s, x);
        break;
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
    char auth[8];

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
        if (n == 2) {
            /* The ZAP handler set User-Id (the unit) and the key on every message
               of the connection; the key must still be allowed, for that unit. */
            const char *user = NULL;
            if (s->zap) {
                const char *uid = zmq_msg_gets(&parts[1], "User-Id");
                const char *key = zmq_msg_gets(&parts[1], ZAP_KEY_PROPERTY);
                const char *now = key ? zap_unit_of(s->zap, key) : NULL;
                if (uid && now && strcmp(uid, now) == 0 && strlen(uid) < sizeof(auth)) {
                    snprintf(auth, sizeof(auth), "%s", uid);
                    user = auth;
                }
            }
            handle(s, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), zmq_msg_data(&parts[1]),
                   zmq_msg_size(&parts[1]), user, zmq_msg_get(&parts[1], ZMQ_SRCFD));
        } else
            s->d->stats.down_bad_messages++;
        for (int k = 0; k < n; k++)
            zmq_msg_close(&parts[k]);
    }
}

/* ------------------------------------------------------------ connections */

#define MONITOR_ENDPOINT "inproc://lienthongd-downstream-monitor"

static void on_monitor(zsock_t *zs, int events, void *arg)
{
    downstream_t *s = arg;
    uint16_t event;
    uint32_t value;

    if (!(events & ZMQ_POLLIN))
        return;
    for (int i = 0; i < RECV_BURST && zsock_recv_event(zsock_handle(zs), &event, &value) == 1; i++)
        if (event == ZMQ_EVENT_DISCONNECTED)
            for (int b = 0; b < SESSION_BUCKETS; b++)
                for (session_t *x = s->buckets[b]; x; x = x->next)
                    if (x->fd == (int)value) {
                        x->fd = -1;
                        session_lost(s, x, "connection closed");
                    }
}

static int monitor_start(downstream_t *s, void *sock)
{
    s->monitor = zsock_monitor_new(s->d->loop, s->d->zctx, sock, MONITOR_ENDPOINT, ZMQ_EVENT_DISCONNECTED,
                                   on_monitor, s);
    if (!s->monitor) {
        log_error("cannot monitor the children's connections: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
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
            if (x->welcomed && session_connected(s, x) && ul + 24 < cap && sl + 24 < cap) {
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
    /* has this node's metadata moved (from its parent, or edited here at the top)? */
    if (!s->meta_high_pending && pgconn_is_up(s->db) &&
        pgconn_query(s->db, "SELECT lt.meta_committed_high()", 0, NULL, on_meta_high, s) == 0)
        s->meta_high_pending = 1;
}

void downstream_reload(downstream_t *s)
{
    if (s->zap)
        (void)zap_reload(s->zap); /* logs; a bad file keeps the running list */
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
    /* The authentication handler first: a CURVE socket bound without one lets
       every key in (libzmq 4.3). */
    if (d->cfg->security_mode == LT_SECURITY_CURVE && !(s->zap = zap_new(d, d->cfg->children_keys_file)))
        goto fail;
    if (!(sock = zmq_socket(d->zctx, ZMQ_ROUTER)) || net_setup_socket(d, sock, ZMQ_ROUTER) != 0 ||
        monitor_start(s, sock) != 0)
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
    log_info("listening for children on %s (%s)", d->cfg->children_bind,
             s->zap ? "CURVE, keys checked against the allow-list" : "PLAINTEXT, unauthenticated");
    return s;
fail:
    if (sock)
        zmq_close(sock);
    zsock_destroy(&s->zs);
    zsock_destroy(&s->monitor);
    zap_destroy(&s->zap);
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
    zsock_destroy(&s->monitor);
    zap_destroy(&s->zap);
    /* The batch being applied is abandoned: its transaction rolls back when the
       connection closes, no ACK was sent, and the child sends it again. */
    applier_stop(s->applier);
    pgconn_destroy(&s->db);
    applier_destroy(&s->applier);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
