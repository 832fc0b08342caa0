/*
 * upstream.c — this node as a child: streams its outbox to the parent over a
 * DEALER and forgets rows only once the parent has acknowledged them.
 *
 *   HELLO ──> WELCOME(resume_after) ──> BATCH(prev, last) ... <── ACK(applied_upto)
 *
 * Invariants:
 *  - Rows live in lt.outbox (on disk) until an ACK covers them; the daemon holds at
 *    most sync.max_inflight batch bounds in memory, never the rows (bounded memory
 *    whatever the backlog).
 *  - Every batch names the seq it follows (prev); the parent applies it only when
 *    prev is at or below what it has applied, so a lost batch is noticed (RESUME),
 *    never skipped.
 *  - Any doubt (timeout, ERROR, reconnect, database loss) goes back to HELLO, and the
 *    parent's WELCOME decides where to resume: it knows what it committed.
 *  - The parent ahead of anything this node issued means this database was restored
 *    from a backup: the sequence is moved past the parent's and everything is re-sent.
 *  - A socket monitor reports the connection and, in curve mode, the handshake: a
 *    parent that refuses this node's key is logged (once per change) and shown as the
 *    link's error, with the real reason (a refused key, a key mismatch, or a connection
 *    dropped during the handshake), rather than only timing out.
 *  - A slow link is not a dead one. While bytes of ours are still on their way and the
 *    kernel sees them delivered, the parent is not declared silent and the oldest
 *    batch's acknowledgement timer waits. Batches are bounded by rows and bytes, and
 *    the bounds adapt to the link (AIMD): cut, down to a floor, when a batch takes
 *    longer than a heartbeat interval to leave the send queue (to what the link carries
 *    in half an interval, at least by half) or halved when a timeout fires;
 *    grown back step by step with every acknowledgement that came without trouble.
 *    So heartbeats and acknowledgements never wait behind minutes of batch.
 *  - HELLO costs a database read, so it is sent only over a connection that is up
 *    (the DEALER is ZMQ_IMMEDIATE): while the parent is unreachable, libzmq's jittered
 *    reconnect back-off runs and the database is left alone. A HELLO that goes out
 *    unanswered or refused is retried after an exponential, jittered back-off capped
 *    at HELLO_BACKOFF_CAP_MS; a new connection gets its HELLO at once.
 *  - libzmq retries at its minimum delay after a connection it made was dropped during
 *    the handshake (a proxy in front of a parent that is down accepts and drops; a
 *    parent refusing the key): from the second such failure in a row the socket is
 *    disconnected and connected again after an exponential, jittered back-off up to
 *    net.reconnect_max_ms.
 */
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"
#include "pgconn.h"
#include "pgtext.h"
#include "wire.h"
#include "zsock.h"

#define MAX_INFLIGHT 64
#define RECV_BURST 64
#define TICK_MS 100
/* HELLO retries over a live connection back off up to this (or net.reconnect_max_ms). */
#define HELLO_BACKOFF_CAP_MS 5000
/* Batch bounds never shrink below these (nor above the configured ones). */
#define BATCH_FLOOR_ROWS 16
#define BATCH_FLOOR_BYTES 4096
/* Bytes in our send queue beyond what heartbeats and acknowledgements take: a batch. */
#define QUEUED_BATCH_BYTES 512

typedef enum { UP_WAIT_DB, UP_HELLO, UP_WAIT_WELCOME, UP_CHECKING, UP_STREAMING } up_state_t;

static const char *const state_names[] = {"waiting-for-database", "connecting", "hello-sent",
                                          "checking-position", "streaming"};

typedef struct {
    uint64_t prev, last, sent_mono;
} inflight_t;

struct upstream {
    lt_daemon_t *d;
    pgconn_t *db;
    zsock_t *zs;
    uv_timer_t timer;
    up_state_t state;
    int reading, dirty, db_up, hello_info_pending;
    int read_limit; /* rows asked of the running outbox read */
    uint64_t read_after; /* the position the running outbox read started from */
    uint64_t local_high, local_acked; /* from the database at connect */
    uint64_t welcome_resume;          /* the WELCOME being checked (UP_CHECKING) */
    uint64_t acked, sent_upto;
    inflight_t inflight[MAX_INFLIGHT];
    int n_inflight;
    uint64_t last_hello_mono, last_rx_mono, last_ping_mono;
    uint64_t hello_backoff_ms, hello_wait_ms; /* back-off step, and this wait (jittered) */
    int link_was_down;                        /* no connection at the last HELLO attempt */
    char parent_unit[8];
    char last_error[256];
    zsock_t *monitor;     /* connection and handshake events of zs */
    char auth_error[200]; /* the last handshake failure, until one succeeds */
    int hs_failures;            /* handshakes failed in a row */
    uint64_t reconnect_at_mono; /* disconnected after those: connect again at this time */
    /* the TCP connection to the parent, as the kernel sees it */
    int link_fd;                     /* from the monitor; -1 when none */
    net_tcp_t tcp;                   /* counters at the last tick */
    int tcp_known;                   /* tcp holds a reading of link_fd */
    uint64_t tx_progress_mono;       /* a batch of ours was still moving out at this time */
    uint64_t queued_since_mono;      /* a batch has sat in the send queue since; 0 when not */
    uint64_t queued_delivered;       /* tcp.delivered at queued_since_mono */
    /* adaptive batch bounds (AIMD), at most the configured ones */
    int cap_rows, cap_bytes;
    uint64_t last_shrink_mono;
    lt_batch_writer_t *bw;
    int stopping;
    void (*done)(void *);
    void *done_arg;
};

static void pump(upstream_t *u);

static void set_state(upstream_t *u, up_state_t st, const char *why)
{
    if (u->state == st)
        return;
    if (st == UP_STREAMING || u->state == UP_STREAMING)
        log_info("upstream: %s -> %s%s%s", state_names[u->state], state_names[st], why ? ": " : "",
                 why ? why : "");
    else
        log_debug("upstream: %s -> %s%s%s", state_names[u->state], state_names[st], why ? ": " : "",
                  why ? why : "");
    u->state = st;
    u->d->stats.up_connected = st == UP_STREAMING;
    if (st != UP_STREAMING)
        u->n_inflight = 0;
}

/* The batch bounds in force: the adaptive ones, never above the configured ones
   (SIGHUP may lower those). */
static int batch_rows(const upstream_t *u)
{
    return u->cap_rows < u->d->cfg->batch_rows ? u->cap_rows : u->d->cfg->batch_rows;
}

static int batch_bytes(const upstream_t *u)
{
    return u->cap_bytes < u->d->cfg->batch_bytes ? u->cap_bytes : u->d->cfg->batch_bytes;
}

/* Multiplicative decrease: the link could not carry batches this big in time. At
   least halved; when the link's rate is known (fit > 0: the bytes it carries in half
   a heartbeat interval), straight down to what fits, rows in proportion. */
static void batches_shrink(upstream_t *u, const char *why, uint64_t fit)
{
    const lt_config_t *cfg = u->d->cfg;
    int fr = cfg->batch_rows < BATCH_FLOOR_ROWS ? cfg->batch_rows : BATCH_FLOOR_ROWS;
    int fb = cfg->batch_bytes < BATCH_FLOOR_BYTES ? cfg->batch_bytes : BATCH_FLOOR_BYTES;
    int rows = batch_rows(u) / 2, bytes = batch_bytes(u) / 2;
    if (fit && fit < (uint64_t)bytes) {
        rows = (int)((uint64_t)batch_rows(u) * fit / (uint64_t)batch_bytes(u));
        bytes = (int)fit;
    }
    u->last_shrink_mono = lt_mono_ms();
    if (rows < fr)
        rows = fr;
    if (bytes < fb)
        bytes = fb;
    if (rows == batch_rows(u) && bytes == batch_bytes(u))
        return;
    u->cap_rows = rows;
    u->cap_bytes = bytes;
    u->d->stats.up_batch_shrinks++;
    log_info("upstream: %s; batches now at most %d rows, %d bytes", why, rows, bytes);
}

/* Additive increase: a batch was acknowledged without any sign of trouble. */
static void batches_grow(upstream_t *u)
{
    const lt_config_t *cfg = u->d->cfg;
    int step_r = cfg->batch_rows / 8, step_b = cfg->batch_bytes / 8;
    if (batch_rows(u) >= cfg->batch_rows && batch_bytes(u) >= cfg->batch_bytes)
        return;
    u->cap_rows = batch_rows(u) + (step_r > BATCH_FLOOR_ROWS ? step_r : BATCH_FLOOR_ROWS);
    u->cap_bytes = batch_bytes(u) + (step_b > BATCH_FLOOR_BYTES ? step_b : BATCH_FLOOR_BYTES);
    if (batch_rows(u) >= cfg->batch_rows && batch_bytes(u) >= cfg->batch_bytes)
        log_info("upstream: batches back to their configured bounds (%d rows, %d bytes)", cfg->batch_rows,
                 cfg->batch_bytes);
}

/* The next HELLO waits: exponential back-off with jitter ("equal jitter": between
   half and all of the step), capped so that a healed link is used within seconds. */
static void hello_backoff(upstream_t *u)
{
    const lt_config_t *cfg = u->d->cfg;
    uint64_t cap = (uint64_t)cfg->reconnect_max_ms < HELLO_BACKOFF_CAP_MS ? (uint64_t)cfg->reconnect_max_ms
                                                                           : HELLO_BACKOFF_CAP_MS;
    u->hello_backoff_ms = u->hello_backoff_ms ? u->hello_backoff_ms * 2 : (uint64_t)cfg->reconnect_min_ms;
    if (u->hello_backoff_ms > cap)
        u->hello_backoff_ms = cap;
    u->hello_wait_ms = u->hello_backoff_ms / 2 + (uint64_t)rand() % (u->hello_backoff_ms / 2 + 1);
    u->last_hello_mono = lt_mono_ms();
}

/* Back to HELLO after a doubt; the next hello waits (hello_backoff). */
static void rehello(upstream_t *u, const char *why)
{
    snprintf(u->last_error, sizeof(u->last_error), "%.255s", why);
    set_state(u, u->db_up ? UP_HELLO : UP_WAIT_DB, why);
    hello_backoff(u);
}

/* Whether a message could go to the parent now: with ZMQ_IMMEDIATE, only over a
   connection whose handshake is done. */
static int link_up(upstream_t *u)
{
    int events = 0;
    size_t len = sizeof(events);
    if (!u->zs || zmq_getsockopt(zsock_handle(u->zs), ZMQ_EVENTS, &events, &len) != 0)
        return 0;
    zsock_kick(u->zs);
    return (events & ZMQ_POLLOUT) != 0;
}

static int send_frame(upstream_t *u, const msgpack_sbuffer *sb)
{
    if (!u->zs)
        return -1;
    if (zmq_send(zsock_handle(u->zs), sb->data, sb->size, ZMQ_DONTWAIT) < 0) {
        if (errno == EAGAIN)
            u->d->stats.up_send_blocked++;
        else
            log_warn("upstream: send failed: %s", zmq_strerror(errno));
        zsock_kick(u->zs);
        return -1;
    }
    zsock_kick(u->zs);
    return 0;
}

/* ------------------------------------------------------------ database callbacks */

static void on_acked(pgconn_t *c, PGresult *res, void *arg)
{
    upstream_t *u = arg;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        u->d->stats.up_outbox_rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    else if (res)
        log_warn("upstream: could not record the ack: %s", PQresultErrorMessage(res));
}

static void record_ack(upstream_t *u, uint64_t seq)
{
    char p_seq[24];
    snprintf(p_seq, sizeof(p_seq), "%" PRIu64, seq);
    const char *p[2] = {p_seq, u->parent_unit[0] ? u->parent_unit : NULL};
    if (pgconn_query(u->db, "SELECT lt.upstream_acked($1::bigint, $2)", 2, p, on_acked, u) != 0)
        log_debug("upstream: ack not recorded (database down); the next WELCOME repeats it");
}

static void on_hello_info(pgconn_t *c, PGresult *res, void *arg)
{
    upstream_t *u = arg;
    u->hello_info_pending = 0;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res)
            log_error("upstream: cannot read the outbox position: %s", PQresultErrorMessage(res));
        return;
    }
    u->local_high = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    u->local_acked = strtoull(PQgetvalue(res, 0, 1), NULL, 10);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (u->state != UP_HELLO) {
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    if (lt_wire_encode_hello(&sb, u->d->cfg->unit, u->d->software, u->local_high, lt_now_ms()) == 0 &&
        send_frame(u, &sb) == 0) {
        u->d->stats.up_hellos++;
        set_state(u, UP_WAIT_WELCOME, NULL);
        u->last_hello_mono = lt_mono_ms();
    } else {
        u->link_was_down = 1; /* the connection went meanwhile: HELLO when it is back */
        hello_backoff(u);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void send_hello(upstream_t *u)
{
    if (u->hello_info_pending)
        return;
    u->hello_info_pending = 1;
    u->last_hello_mono = lt_mono_ms();
    if (pgconn_query(u->db, "SELECT lt.outbox_high(), acked_seq FROM lt.upstream", 0, NULL,
                     on_hello_info, u) != 0)
        u->hello_info_pending = 0;
}

/* lt.upstream_welcome decided whether the parent's position is this database's. */
static void on_welcome_checked(pgconn_t *c, PGresult *res, void *arg)
{
    upstream_t *u = arg;
    if (u->state != UP_CHECKING)
        return; /* given up meanwhile; the next WELCOME is checked again */
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res)
            log_error("upstream: cannot check the parent's position: %s", PQresultErrorMessage(res));
        rehello(u, "cannot check the parent's position");
        return;
    }
    uint64_t resume = u->welcome_resume;
    u->acked = u->sent_upto = resume;
    if (strcmp(PQgetvalue(res, 0, 0), "rewound") == 0) {
        /* restored from a backup, or the parent lost rows: every row this node holds
           goes up again between resync markers, after the parent's position */
        u->d->stats.up_rewinds++;
        snprintf(u->last_error, sizeof(u->last_error), "%s", PQgetvalue(res, 0, 1));
        log_error("upstream: %s; full resync: %s rows queued after seq %" PRIu64, PQgetvalue(res, 0, 1),
                  PQgetvalue(res, 0, 2), resume);
        set_state(u, UP_STREAMING, "full resync queued");
    } else {
        u->last_error[0] = '\0';
        u->d->stats.up_outbox_rows = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        set_state(u, UP_STREAMING, NULL);
        log_info("upstream: parent %s resumes after seq %" PRIu64 " (%" PRIu64 " issued here)",
                 u->parent_unit, resume, u->local_high);
    }
    u->dirty = 1;
    pump(u);
}

/* Columns of lt.outbox_read() after the record's own. */
#define OUTBOX_TOKEN 31
#define OUTBOX_PHASE 32

/* Fill one record from a row of lt.outbox_read(). Returns 0, or -1 (logged) when
   the database holds something the wire cannot carry. */
static int row_to_record(PGresult *r, int i, lt_record_t *rec)
{
    char err[200];
#define COL(n) PQgetvalue(r, i, n)
#define NUL(n) PQgetisnull(r, i, n)
#define MS(n) (NUL(n) ? (int64_t)-1 : strtoll(COL(n), NULL, 10))
    memset(rec, 0, sizeof(*rec));
    rec->seq = strtoull(COL(0), NULL, 10);
    rec->kind = (lt_rec_kind_t)atoi(COL(1));
    if (NUL(2)) {
        log_error("upstream: outbox seq %" PRIu64 " points at a row that does not exist", rec->seq);
        return -1;
    }
    if (rec->kind == LT_REC_RESYNC) {
        snprintf(rec->u.r.unit, sizeof(rec->u.r.unit), "%s", COL(2));
        rec->u.r.phase = NUL(OUTBOX_PHASE) ? 0 : atoi(COL(OUTBOX_PHASE));
        if (lt_wire_check_resync(&rec->u.r, err, sizeof(err)) != 0)
            goto bad;
    } else if (rec->kind == LT_REC_VALUE) {
        lt_value_rec_t *v = &rec->u.v;
        snprintf(v->unit, sizeof(v->unit), "%s", COL(2));
        snprintf(v->element, sizeof(v->element), "%s", COL(3));
        snprintf(v->period, sizeof(v->period), "%s", COL(4));
        snprintf(v->disagg, sizeof(v->disagg), "%s", COL(5));
        v->has_value = !NUL(6);
        v->value = v->has_value ? strtod(COL(6), NULL) : 0;
        v->version = strtoull(COL(7), NULL, 10);
        v->changed_at_ms = strtoull(COL(8), NULL, 10);
        if (lt_wire_check_value(v, err, sizeof(err)) != 0)
            goto bad;
    } else if (rec->kind == LT_REC_SUBMISSION) {
        lt_submission_rec_t *sub = &rec->u.s;
        snprintf(sub->unit, sizeof(sub->unit), "%s", COL(2));
        snprintf(sub->period, sizeof(sub->period), "%s", COL(4));
        sub->version = strtoull(COL(7), NULL, 10);
        snprintf(sub->status, sizeof(sub->status), "%s", COL(16));
        snprintf(sub->data_set, sizeof(sub->data_set), "%s", COL(25));
        sub->submitted_at = MS(26);
        sub->first_submitted_at = MS(27);
        snprintf(sub->decided_by, sizeof(sub->decided_by), "%s", NUL(28) ? "" : COL(28));
        sub->decided_at = MS(29);
        snprintf(sub->reason, sizeof(sub->reason), "%s", NUL(30) ? "" : COL(30));
        if (lt_wire_check_submission(sub, err, sizeof(err)) != 0)
            goto bad;
    } else {
        lt_case_rec_t *c = &rec->u.c;
        snprintf(c->unit, sizeof(c->unit), "%s", COL(2));
        c->version = strtoull(COL(7), NULL, 10);
        c->changed_at_ms = strtoull(COL(8), NULL, 10);
        snprintf(c->case_id, sizeof(c->case_id), "%s", COL(9));
        c->deleted = COL(10)[0] == 't';
        c->sex = COL(11)[0];
        snprintf(c->birth_ym, sizeof(c->birth_ym), "%s", NUL(12) ? "" : COL(12));
        c->ethnicity = NUL(13) ? 0 : atoi(COL(13));
        snprintf(c->village, sizeof(c->village), "%s", NUL(14) ? "" : COL(14));
        c->categories = (uint32_t)strtoul(COL(15), NULL, 10);
        snprintf(c->status, sizeof(c->status), "%s", COL(16));
        c->notified_at = MS(17);
        c->assessed_at = MS(18);
        c->emergency_at = MS(19);
        c->plan_drafted_at = MS(20);
        c->plan_approved_at = MS(21);
        c->reviewed_at = MS(22);
        c->closed_at = MS(23);
        c->services = (uint32_t)strtoul(COL(24), NULL, 10);
        if (lt_wire_check_case(c, err, sizeof(err)) != 0)
            goto bad;
    }
    return 0;
bad:
    log_error("upstream: outbox seq %" PRIu64 " cannot be sent (%s); it stays in this node's database "
              "and is skipped on the link",
              rec->seq, err);
    return -1;
#undef COL
#undef NUL
#undef MS
}

static void on_read(pgconn_t *c, PGresult *res, void *arg)
{
    upstream_t *u = arg;
    uint64_t after = u->sent_upto;
    int n, used = 0;

    u->reading = 0;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res)
            log_error("upstream: outbox read failed: %s", PQresultErrorMessage(res));
        return;
    }
    if (u->state != UP_STREAMING)
        return;
    /* The position moved while we read (RESUME, ACK past it): read again from there. */
    if (u->read_after != after) {
        u->dirty = 1;
        pump(u);
        return;
    }
    n = PQntuples(res);
    if (n == 0)
        return;
    lt_batch_begin(u->bw, after);
    uint64_t last = after, last_token = 0;
    size_t cap = (size_t)batch_bytes(u);
    for (int i = 0; i < n && !lt_batch_closed(u->bw); i++) {
        lt_record_t rec;
        if (lt_batch_count(u->bw) > 0 && lt_batch_size(u->bw) + 1024 > cap)
            break;
        used++;
        uint64_t token = strtoull(PQgetvalue(res, i, OUTBOX_TOKEN), NULL, 10);
        if (row_to_record(res, i, &rec) != 0) {
            u->d->stats.up_bad_messages++;
            last = strtoull(PQgetvalue(res, i, 0), NULL, 10);
            last_token = token;
            continue;
        }
        /* a resync marker closes its batch: the parent acts on it after the rows before it */
        int rc = rec.kind == LT_REC_VALUE        ? lt_batch_add_value(u->bw, rec.seq, &rec.u.v)
                 : rec.kind == LT_REC_SUBMISSION ? lt_batch_add_submission(u->bw, rec.seq, &rec.u.s)
                 : rec.kind == LT_REC_RESYNC     ? lt_batch_add_resync(u->bw, rec.seq, &rec.u.r)
                                                 : lt_batch_add_case(u->bw, rec.seq, &rec.u.c);
        if (rc != 0 && lt_batch_count(u->bw) > 0) {
            used--; /* no room left in this frame: it opens the next batch */
            break;
        }
        if (rc != 0) {
            log_error("upstream: cannot encode seq %" PRIu64, rec.seq);
            u->d->stats.up_bad_messages++;
        }
        last = rec.seq;
        last_token = token;
    }
    if (lt_batch_count(u->bw) == 0) {
        /* Nothing sendable (logged above): the database holds rows its own
           constraints should have refused. Stop here and say so in the status. */
        snprintf(u->last_error, sizeof(u->last_error), "outbox seq %" PRIu64 " cannot be sent", last);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (lt_batch_finish(u->bw, &sb, last, last_token) == 0 && send_frame(u, &sb) == 0) {
        inflight_t *f = &u->inflight[u->n_inflight++];
        f->prev = after;
        f->last = last;
        f->sent_mono = lt_mono_ms();
        u->sent_upto = last;
        u->d->stats.up_batches_sent++;
        u->d->stats.up_records_sent += lt_batch_count(u->bw);
        u->d->stats.up_bytes_sent += sb.size;
        log_debug("upstream: sent (%" PRIu64 ", %" PRIu64 "]: %u records, %zu bytes", after, last,
                  lt_batch_count(u->bw), sb.size);
        if (used < n || n == u->read_limit)
            u->dirty = 1; /* more waiting */
    } else {
        u->dirty = 1; /* blocked: try again on the next tick */
    }
    msgpack_sbuffer_destroy(&sb);
    if (u->dirty && u->n_inflight < u->d->cfg->max_inflight && u->n_inflight < MAX_INFLIGHT)
        pump(u);
}

static void pump(upstream_t *u)
{
    char p_after[24], p_limit[16];
    if (u->state != UP_STREAMING || !u->db_up || u->reading || !u->dirty || u->stopping)
        return;
    if (u->n_inflight >= u->d->cfg->max_inflight || u->n_inflight >= MAX_INFLIGHT)
        return;
    /* a batch still waiting in the send queue: the next one would only wait behind it */
    if (u->n_inflight && u->tcp_known && u->tcp.queued > (uint64_t)batch_bytes(u))
        return;
    u->read_limit = batch_rows(u);
    snprintf(p_after, sizeof(p_after), "%" PRIu64, u->sent_upto);
    snprintf(p_limit, sizeof(p_limit), "%d", u->read_limit);
    const char *p[2] = {p_after, p_limit};
    u->dirty = 0;
    u->read_after = u->sent_upto;
    if (pgconn_query(u->db, "SELECT * FROM lt.outbox_read($1::bigint, $2::int)", 2, p, on_read, u) == 0)
        u->reading = 1;
    else
        u->dirty = 1;
}

static void on_db_state(pgconn_t *c, int up, void *arg)
{
    upstream_t *u = arg;
    u->db_up = up;
    u->reading = 0;
    u->hello_info_pending = 0;
    if (up) {
        set_state(u, UP_HELLO, "database up");
        u->last_hello_mono = 0;
        u->hello_backoff_ms = u->hello_wait_ms = 0;
    } else {
        set_state(u, UP_WAIT_DB, pgconn_error(c));
    }
}

static void on_notify(pgconn_t *c, const char *channel, const char *payload, void *arg)
{
    upstream_t *u = arg;
    u->dirty = 1;
    pump(u);
}

/* ------------------------------------------------------------ messages from the parent */

/* ------------------------------------------------------------ metadata from the parent */

static void send_meta_ack(upstream_t *u, uint64_t applied)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (lt_wire_encode_meta_ack(&sb, applied) == 0)
        (void)send_frame(u, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* The result of lt.meta_version() or lt.meta_apply(): our position in the parent's log. */
static void on_meta_position(pgconn_t *c, PGresult *res, void *arg)
{
    upstream_t *u = arg;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res) {
            u->d->stats.up_meta_errors++;
            log_error("upstream: metadata from the parent not applied: %s", PQresultErrorMessage(res));
        }
        return; /* the parent sends it again when no META_ACK comes */
    }
    uint64_t v = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    u->d->stats.up_meta_version = v;
    send_meta_ack(u, v);
}

static void json_string(pgtext_buf_t *b, const char *s)
{
    pgtext_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            pgtext_add(b, "\\", 1);
            pgtext_add(b, s, 1);
        } else if (ch < 0x20) {
            pgtext_fmt(b, "\\u%04x", ch);
        } else {
            pgtext_add(b, s, 1);
        }
    }
    pgtext_add(b, "\"", 1);
}

/* Apply a META in one transaction (lt.meta_apply), then tell the parent where we are. */
static void apply_meta(upstream_t *u, const lt_msg_t *m)
{
    pgtext_buf_t b = {0};
    pgtext_add(&b, "[", 1);
    for (uint32_t i = 0; i < m->u.meta.n; i++) {
        const lt_meta_change_t *ch = &m->u.meta.changes[i];
        pgtext_fmt(&b, "%s{\"version\":%" PRIu64 ",\"kind\":", i ? "," : "", ch->version);
        json_string(&b, ch->kind);
        pgtext_str(&b, ",\"key\":");
        json_string(&b, ch->key);
        pgtext_str(&b, ",\"doc\":");
        pgtext_str(&b, ch->doc ? ch->doc : "null"); /* JSON text; the database parses it */
        pgtext_str(&b, ",\"scope_unit\":");
        if (ch->scope[0])
            json_string(&b, ch->scope);
        else
            pgtext_str(&b, "null");
        pgtext_add(&b, "}", 1);
    }
    pgtext_add(&b, "]", 1);
    /* The parent answers a position below ours (it was restored from an older backup
       and sends its whole log again): start over, or versions we passed would be skipped. */
    if (m->u.meta.after < u->d->stats.up_meta_version) {
        log_warn("upstream: the parent sends metadata after version %" PRIu64 ", below ours (%" PRIu64
                 "); starting over from its log",
                 m->u.meta.after, u->d->stats.up_meta_version);
        if (pgconn_query(u->db, "SELECT lt.meta_reset()", 0, NULL, NULL, NULL) != 0) {
            free(b.buf);
            return;
        }
        u->d->stats.up_meta_version = m->u.meta.after;
    }
    if (b.oom) {
        log_error("upstream: out of memory for a META of %u changes", m->u.meta.n);
    } else {
        const char *p[1] = {b.buf};
        u->d->stats.up_meta_changes += m->u.meta.n;
        if (pgconn_query(u->db, "SELECT lt.meta_apply($1::jsonb)", 1, p, on_meta_position, u) != 0)
            log_debug("upstream: META not applied now (database down); the parent will send it again");
    }
    free(b.buf);
}

static void report_meta_position(upstream_t *u)
{
    if (pgconn_query(u->db, "SELECT lt.meta_version()", 0, NULL, on_meta_position, u) != 0)
        log_debug("upstream: metadata position not reported (database down)");
}

static void handle(upstream_t *u, const void *data, size_t len)
{
    lt_msg_t msg;
    char err[256];
    int code = 0;
    lt_stats_t *st = &u->d->stats;

    if (lt_wire_decode(data, len, &msg, err, sizeof(err), &code) != 0) {
        st->up_bad_messages++;
        log_warn("upstream: bad message from the parent (%s): %s", lt_wire_error_name(code), err);
        return;
    }
    u->last_rx_mono = lt_mono_ms();
    switch (msg.type) {
    case LT_MSG_WELCOME: {
        if (u->state != UP_WAIT_WELCOME)
            break;
        snprintf(u->parent_unit, sizeof(u->parent_unit), "%s", msg.u.welcome.unit);
        u->hello_backoff_ms = u->hello_wait_ms = 0;
        report_meta_position(u); /* the parent then sends the metadata we lack */
        /* Is the parent's position this database's? Positions beyond what this node
           issued or below what it saw confirmed say no; so does a token at that seq
           other than this node's own (a restored backup that has written since). */
        char p_seq[24], p_tok[24];
        snprintf(p_seq, sizeof(p_seq), "%" PRIu64, msg.u.welcome.resume_after);
        snprintf(p_tok, sizeof(p_tok), "%" PRId64, (int64_t)msg.u.welcome.token);
        const char *p[3] = {p_seq, p_tok, u->parent_unit};
        u->welcome_resume = msg.u.welcome.resume_after;
        set_state(u, UP_CHECKING, NULL);
        if (pgconn_query(u->db, "SELECT action, reason, n FROM lt.upstream_welcome($1::bigint, $2::bigint, $3)", 3, p,
                         on_welcome_checked, u) != 0)
            rehello(u, "database down");
        break;
    }
    case LT_MSG_ACK: {
        uint64_t upto = msg.u.ack.applied_upto;
        st->up_acks++;
        for (uint32_t i = 0; i < msg.u.ack.n_rejects; i++) {
            st->up_rejected++;
            log_warn("upstream: parent refused seq %" PRIu64 " (%s): %s", msg.u.ack.rejects[i].seq,
                     lt_wire_error_name(msg.u.ack.rejects[i].code), msg.u.ack.rejects[i].reason);
        }
        if (u->state != UP_STREAMING || upto <= u->acked)
            break;
        u->acked = upto;
        int k = 0;
        while (k < u->n_inflight && u->inflight[k].last <= upto) {
            /* went through with no shrink since it was sent, and no batch waiting in the send queue */
            if (u->inflight[k].sent_mono > u->last_shrink_mono && !u->queued_since_mono)
                batches_grow(u);
            k++;
        }
        memmove(u->inflight, u->inflight + k, (size_t)(u->n_inflight - k) * sizeof(inflight_t));
        u->n_inflight -= k;
        if (u->sent_upto < upto)
            u->sent_upto = upto;
        st->up_acked_seq = upto;
        record_ack(u, upto);
        u->dirty = 1;
        pump(u);
        break;
    }
    case LT_MSG_RESUME:
        st->up_resumes++;
        if (u->state != UP_STREAMING)
            break;
        log_info("upstream: parent asks to resume after seq %" PRIu64 " (%s)", msg.u.resume.resume_after,
                 msg.u.resume.reason);
        u->n_inflight = 0;
        u->sent_upto = msg.u.resume.resume_after;
        if (u->acked > u->sent_upto)
            u->acked = u->sent_upto;
        u->dirty = 1;
        pump(u);
        break;
    case LT_MSG_ERROR: {
        char why[300];
        if (msg.u.error.code == LT_WIRE_EUNAVAILABLE)
            snprintf(why, sizeof(why), "parent's database unavailable (parent error %u: %s)", msg.u.error.code,
                     msg.u.error.message);
        else
            snprintf(why, sizeof(why), "parent error %u (%s): %s", msg.u.error.code,
                     lt_wire_error_name(msg.u.error.code), msg.u.error.message);
        if (msg.u.error.code == LT_WIRE_EBUSY || msg.u.error.code == LT_WIRE_EUNAVAILABLE)
            log_info("upstream: %s", why);
        else
            log_warn("upstream: %s", why);
        rehello(u, why);
        break;
    }
    case LT_MSG_PONG:
        break;
    case LT_MSG_META:
        apply_meta(u, &msg);
        break;
    default:
        st->up_bad_messages++;
        log_warn("upstream: unexpected message type %d from the parent", (int)msg.type);
        break;
    }
    lt_msg_clear(&msg);
}

static void on_zmq(zsock_t *zs, int events, void *arg)
{
    upstream_t *u = arg;
    zmq_msg_t m;

    if (!(events & ZMQ_POLLIN))
        return;
    for (int i = 0; i < RECV_BURST; i++) {
        int n = zsock_recv_parts(zsock_handle(zs), &m, 1);
        if (n == 0)
            break;
        if (n < 0) {
            u->d->stats.up_bad_messages++;
            log_warn("upstream: multi-frame message from the parent dropped");
            continue;
        }
        handle(u, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
    }
}

/* ------------------------------------------------------------ timer */

/* ------------------------------------------------------------ connection and handshake */

#define MONITOR_ENDPOINT "inproc://lienthongd-upstream-monitor"

/* Why a handshake failed, in words an operator can act on. ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
   carries an errno: the connection broke during the handshake (the parent restarting, a
   proxy or the network dropping it), which says nothing about keys. */
static void handshake_failure(char *why, size_t n, unsigned event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        snprintf(why, n, "the parent refused this node's key (ZAP status %u): is its public key in the "
                 "parent's allow-list?", (unsigned)value);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        snprintf(why, n, "the connection to the parent broke during the handshake (%s, errno %u): the parent "
                 "restarting, or the network or a proxy dropping the connection",
                 strerror((int)value), (unsigned)value);
    } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        snprintf(why, n, "the parent does not speak CURVE (security mechanism mismatch): is the parent in curve "
                 "mode?");
    } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC || value == ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE ||
               (value >= ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED &&
                value <= ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_READY)) {
        snprintf(why, n, "CURVE handshake with the parent failed (protocol error 0x%x): is "
                 "parent_public_key_file the parent's key?", (unsigned)value);
    } else {
        snprintf(why, n, "handshake with the parent failed (protocol error 0x%x)", (unsigned)value);
    }
}

static void on_link_event(upstream_t *u, unsigned event, uint32_t value)
{
    char why[sizeof(u->auth_error)];
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        u->link_fd = (int)value;
        u->tcp_known = 0;
        u->queued_since_mono = 0;
        return;
    case ZMQ_EVENT_DISCONNECTED:
        if ((int)value != u->link_fd)
            return;
        u->link_fd = -1;
        u->tcp_known = 0;
        u->queued_since_mono = 0;
        if (u->state == UP_STREAMING || u->state == UP_WAIT_WELCOME) {
            /* whatever was queued on that connection is gone: HELLO on the next one */
            if (u->n_inflight)
                batches_shrink(u, "the connection dropped with batches in flight", 0);
            rehello(u, "connection to the parent lost");
        }
        return;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        if (u->auth_error[0])
            log_info("upstream: handshake with the parent succeeded");
        u->auth_error[0] = '\0';
        u->hs_failures = 0;
        return;
    default:
        break;
    }
    handshake_failure(why, sizeof(why), event, value);
    if (strcmp(why, u->auth_error) != 0)
        log_warn("upstream: %s", why);
    snprintf(u->auth_error, sizeof(u->auth_error), "%s", why);
    /* libzmq would try again at its minimum delay: back off here instead */
    if (++u->hs_failures >= 2 && !u->reconnect_at_mono && u->zs) {
        const lt_config_t *cfg = u->d->cfg;
        int shift = u->hs_failures < 16 ? u->hs_failures : 16;
        uint64_t step = (uint64_t)cfg->reconnect_min_ms << shift;
        if (step > (uint64_t)cfg->reconnect_max_ms)
            step = (uint64_t)cfg->reconnect_max_ms;
        if (zmq_disconnect(zsock_handle(u->zs), cfg->parent_endpoint) == 0)
            u->reconnect_at_mono = lt_mono_ms() + step / 2 + (uint64_t)rand() % (step / 2 + 1);
        else
            log_debug("upstream: disconnect for back-off: %s", zmq_strerror(errno));
    }
}

static void on_monitor(zsock_t *zs, int events, void *arg)
{
    upstream_t *u = arg;
    uint16_t event;
    uint32_t value;

    if (!(events & ZMQ_POLLIN))
        return;
    for (int i = 0; i < RECV_BURST && zsock_recv_event(zsock_handle(zs), &event, &value) == 1; i++)
        on_link_event(u, event, value);
}

static int monitor_start(upstream_t *u, void *sock)
{
    u->monitor = zsock_monitor_new(u->d->loop, u->d->zctx, sock, MONITOR_ENDPOINT,
                                   ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                                   on_monitor, u);
    if (!u->monitor) {
        log_error("upstream: cannot monitor the connection to the parent: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Read the kernel's counters of the connection: bytes of ours still moving out mean the
   link is alive however slow; a batch that sits in the send queue for more than a
   heartbeat interval means batches are too big for this link. */
static void link_sample(upstream_t *u, uint64_t now)
{
    net_tcp_t t;
    const lt_config_t *cfg = u->d->cfg;
    if (u->link_fd < 0 || net_tcp_read(u->link_fd, &t) != 0) {
        u->tcp_known = 0;
        u->queued_since_mono = 0;
        return;
    }
    if (u->tcp_known && u->tcp.queued > QUEUED_BATCH_BYTES && t.delivered > u->tcp.delivered)
        u->tx_progress_mono = now;
    if (t.queued > QUEUED_BATCH_BYTES && u->n_inflight) {
        if (!u->queued_since_mono) {
            u->queued_since_mono = now;
            u->queued_delivered = t.delivered;
        } else if (now - u->queued_since_mono > (uint64_t)cfg->heartbeat_ivl_ms &&
                   now - u->last_shrink_mono > (uint64_t)cfg->heartbeat_ivl_ms) {
            /* what the link delivered meanwhile: a batch should leave in half a heartbeat interval */
            uint64_t fit = (t.delivered - u->queued_delivered) * (uint64_t)cfg->heartbeat_ivl_ms / 2 /
                           (now - u->queued_since_mono);
            batches_shrink(u, "a batch takes longer than a heartbeat interval to leave the send queue",
                           fit ? fit : 1);
            u->queued_since_mono = now;
            u->queued_delivered = t.delivered;
        }
    } else {
        u->queued_since_mono = 0;
    }
    u->tcp = t;
    u->tcp_known = 1;
}

static void on_tick(uv_timer_t *t)
{
    upstream_t *u = t->data;
    const lt_config_t *cfg = u->d->cfg;
    uint64_t now = lt_mono_ms();

    if (u->reconnect_at_mono && now >= u->reconnect_at_mono && u->zs) {
        u->reconnect_at_mono = 0;
        if (zmq_connect(zsock_handle(u->zs), cfg->parent_endpoint) != 0) {
            log_error("upstream: cannot connect to the parent at %s again: %s", cfg->parent_endpoint,
                      zmq_strerror(errno));
            u->reconnect_at_mono = now + (uint64_t)cfg->reconnect_max_ms;
        }
        zsock_kick(u->zs);
    }
    link_sample(u, now);
    switch (u->state) {
    case UP_WAIT_DB:
    case UP_CHECKING:
        break;
    case UP_HELLO:
        /* no connection: nothing to say HELLO over, and no database read for it */
        if (!link_up(u)) {
            u->link_was_down = 1;
            break;
        }
        if (u->link_was_down || now - u->last_hello_mono >= u->hello_wait_ms) {
            u->link_was_down = 0;
            send_hello(u);
        }
        break;
    case UP_WAIT_WELCOME: {
        /* the HELLO may be waiting behind a batch that is still moving out */
        uint64_t since = u->last_hello_mono > u->tx_progress_mono ? u->last_hello_mono : u->tx_progress_mono;
        if (now - since >= (uint64_t)cfg->heartbeat_timeout_ms)
            rehello(u, "no answer to HELLO");
        break;
    }
    case UP_STREAMING: {
        /* a batch still moving out is a sign of life: its ACK, and the PONGs, come after it */
        uint64_t alive = u->last_rx_mono > u->tx_progress_mono ? u->last_rx_mono : u->tx_progress_mono;
        if (u->n_inflight) {
            uint64_t from = u->inflight[0].sent_mono > u->tx_progress_mono ? u->inflight[0].sent_mono
                                                                           : u->tx_progress_mono;
            if (now - from >= (uint64_t)cfg->ack_timeout_ms) {
                u->d->stats.up_timeouts++;
                batches_shrink(u, "no acknowledgement in time", 0);
                rehello(u, "no acknowledgement in time");
                break;
            }
        }
        if (now - alive >= (uint64_t)cfg->heartbeat_timeout_ms) {
            if (u->n_inflight)
                batches_shrink(u, "parent silent with batches in flight", 0);
            rehello(u, "parent silent");
            break;
        }
        if (now - u->last_ping_mono >= (uint64_t)cfg->heartbeat_ivl_ms) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            if (lt_wire_encode_ping(&sb, LT_MSG_PING, lt_now_ms()) == 0)
                (void)send_frame(u, &sb);
            msgpack_sbuffer_destroy(&sb);
            u->last_ping_mono = now;
        }
        if (!u->dirty && now % (uint64_t)cfg->rescan_ms < TICK_MS)
            u->dirty = 1; /* periodic rescan, in case a notification was missed */
        pump(u);
        break;
    }
    }
}

static void on_state_written(pgconn_t *c, PGresult *res, void *arg)
{
    (void)c;
    (void)arg;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("upstream: link state write failed: %s", PQresultErrorMessage(res));
}

static void on_depth(pgconn_t *c, PGresult *res, void *arg)
{
    upstream_t *u = arg;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        u->d->stats.up_outbox_rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        u->d->stats.up_oldest_unacked_ms = PQgetisnull(res, 0, 1) ? -1 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
}

void upstream_stats_tick(upstream_t *u)
{
    const char *err = u->auth_error[0] ? u->auth_error : u->last_error[0] ? u->last_error : NULL;
    const char *p[2] = {state_names[u->state], err};
    if (!pgconn_is_up(u->db))
        return;
    if (pgconn_query(u->db, "SELECT lt.upstream_state($1, $2)", 2, p, on_state_written, u) != 0 ||
        pgconn_query(u->db,
                     "SELECT count(*), (extract(epoch FROM now() - min(queued_at)) * 1000)::bigint FROM lt.outbox",
                     0, NULL, on_depth, u) != 0)
        log_debug("upstream: link state not written (database down)");
}

/* ------------------------------------------------------------ lifecycle */

upstream_t *upstream_new(lt_daemon_t *d)
{
    upstream_t *u = calloc(1, sizeof(*u));
    void *sock = NULL;

    if (!u)
        return NULL;
    u->d = d;
    u->state = UP_WAIT_DB;
    u->link_fd = -1;
    u->cap_rows = d->cfg->batch_rows;
    u->cap_bytes = d->cfg->batch_bytes;
    u->d->stats.up_oldest_unacked_ms = -1;
    if (!(u->bw = lt_batch_new()))
        goto fail;
    u->db = pgconn_new(d->loop, d->cfg->database, on_db_state, on_notify, u);
    if (!u->db || pgconn_set_init_sql(u->db, "SET application_name = 'lienthongd upstream'; LISTEN lt_outbox") != 0)
        goto fail;
    pgconn_set_backoff(u->db, (unsigned)d->cfg->reconnect_min_ms, (unsigned)d->cfg->reconnect_max_ms);
    if (!(sock = zmq_socket(d->zctx, ZMQ_DEALER)) || net_setup_socket(d, sock, ZMQ_DEALER) != 0)
        goto fail;
    if (monitor_start(u, sock) != 0)
        goto fail;
    if (zmq_connect(sock, d->cfg->parent_endpoint) != 0) {
        log_error("cannot connect to the parent at %s: %s", d->cfg->parent_endpoint, zmq_strerror(errno));
        goto fail;
    }
    if (!(u->zs = zsock_new(d->loop, sock, on_zmq, u)))
        goto fail;
    sock = NULL;
    uv_timer_init(d->loop, &u->timer);
    u->timer.data = u;
    uv_timer_start(&u->timer, on_tick, TICK_MS, TICK_MS);
    if (pgconn_start(u->db) != 0)
        goto fail;
    log_info("parent at %s", d->cfg->parent_endpoint);
    return u;
fail:
    if (sock)
        zmq_close(sock);
    zsock_destroy(&u->zs);
    zsock_destroy(&u->monitor);
    pgconn_destroy(&u->db);
    lt_batch_destroy(&u->bw);
    free(u);
    return NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    upstream_t *u = h->data;
    void (*done)(void *) = u->done;
    void *arg = u->done_arg;
    lt_batch_destroy(&u->bw);
    free(u);
    if (done)
        done(arg);
}

void upstream_stop(upstream_t *u, void (*done)(void *arg), void *arg)
{
    u->stopping = 1;
    u->done = done;
    u->done_arg = arg;
    /* Batches in flight are abandoned: unacked rows stay in the outbox. */
    zsock_destroy(&u->zs);
    zsock_destroy(&u->monitor);
    pgconn_destroy(&u->db);
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, on_timer_closed);
}
