/*
 * ltsim.c — load for `make bench` (tests/bench/bench.sh).
 *
 *   ltsim run ENDPOINT UNITS_FILE [--rate R] [--seconds S] [--backlog M] [--batch N]
 *             [--inflight K] [--period P] [--element E] [--tag T] [--drain S] [--dump FILE]
 *       Many communes against one real parent, each its own DEALER socket (so its
 *       own connection and session), speaking protocol v1 with the project's codec
 *       (common/wire.h): HELLO, WELCOME, then BATCHes of value records, each commune
 *       keeping up to K batches in flight, as a commune daemon does. With --rate,
 *       every commune makes R new records per second for S seconds (steady load,
 *       start times spread over the first second); with --backlog, every commune
 *       starts with M records queued and sends them as fast as ACKs allow (flood).
 *       A record's latency is from its making to the ACK that covers it: the ACK
 *       leaves the parent only after the batch's transaction committed, so this is
 *       "written at the commune" to "visible in the parent's roll-ups", minus the
 *       commune's own database. Records still unacknowledged when the drain time
 *       runs out count with their age at that moment ("unacked" says how many), so
 *       the percentiles are then lower bounds. Prints one JSON object.
 *
 *       With --dump FILE, every record made is written there as "UNIT<TAB>DISAGG<TAB>T",
 *       T its making time in unix seconds: bench.sh joins it with commit times further
 *       up the tree, where the ACK of the first hop says nothing.
 *
 *       With --curve PARENT_PUBLIC_KEY_FILE each commune uses its own CURVE key pair,
 *       from UNITS_FILE lines "UNIT PUBLIC SECRET" (as `ltsim keys` writes them).
 *
 *   ltsim keys UNITS_FILE
 *       A new CURVE key pair per unit: prints "UNIT PUBLIC SECRET" lines (z85). The
 *       parent's allow-list takes the first two fields. Benchmark keys only: the
 *       secrets are printed.
 *
 *   ltsim write UNITS_CONNINFO_FILE [--rate R] [--seconds S] [--period P] [--element E]
 *             [--tag T]
 *       Officers at real communes: each line "UNIT CONNINFO"; every commune gets R
 *       writes per second through lt.put_value (one transaction each, like the CLI),
 *       each to a new key (disagg TAG=N). Prints one JSON object.
 *
 *   ltsim wait CONNINFO SQL TARGET TIMEOUT_S
 *       Poll SQL (first column of the first row, an integer) every 20 ms until it is
 *       at least TARGET; prints the seconds waited and the wall-clock time (unix
 *       seconds) it saw the target. Exit 1 on timeout.
 *
 * Invariant: records are made from (unit, seq) alone (disagg "TAG=seq"), so a
 * commune keeps only their making times, never the records; every record that
 * was made is sent until an ACK covers it, through reconnects, RESUME and ERROR.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <zmq.h>

#include "log.h"
#include "wire.h"

#define SIM_MAX_INFLIGHT 64
#define SIM_TICK_MS 5
#define SIM_HELLO_RETRY_MS 10000
#define SIM_ACK_TIMEOUT_MS 30000
#define SIM_PING_MS 1000 /* as a commune daemon with net.heartbeat_ivl_ms = 1000 */

typedef enum { C_NEW, C_HELLO_SENT, C_STREAMING, C_BACKOFF } cstate_t;

typedef struct {
    uint64_t prev, last, sent_us;
} flight_t;

typedef struct {
    char unit[6];
    char pub[41], sec[41]; /* CURVE key pair (z85), with --curve */
    void *sock;
    int fd;
    cstate_t state;
    uint64_t made;             /* records made so far: seqs 1..made */
    uint64_t acked, sent_upto; /* positions on the hop */
    uint64_t *made_us;         /* making time of seq i at made_us[i - 1] */
    size_t made_cap;
    flight_t fl[SIM_MAX_INFLIGHT];
    int nfl;
    uint64_t state_since_us, next_make_us, last_send_us;
} commune_t;

typedef struct {
    const char *endpoint, *period, *element, *tag;
    char server_key[41]; /* the parent's public key (z85), with --curve */
    double rate, seconds, drain;
    long backlog;
    int batch, inflight;
    commune_t *c;
    int n;
    void *ctx;
    int ep;
    lt_batch_writer_t *bw;
    /* results */
    uint32_t *lat_us;
    size_t nlat, lat_cap;
    uint64_t sent_records, sent_batches, acked_records, errors, busy, resumes, timeouts, hellos,
        rejects, send_blocked;
    uint64_t t_first_send_us, t_last_ack_us;
} sim_t;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in milliseconds. */
static double pct_ms(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return -1;
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1] / 1000.0;
}

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

/* ------------------------------------------------------------ run: communes */

static int make_record(commune_t *c, uint64_t t)
{
    if (c->made == c->made_cap) {
        size_t cap = c->made_cap ? c->made_cap * 2 : 64;
        uint64_t *p = realloc(c->made_us, cap * sizeof(*p));
        if (!p)
            return -1;
        c->made_us = p;
        c->made_cap = cap;
    }
    c->made_us[c->made++] = t;
    return 0;
}

static void fill_record(const sim_t *s, const commune_t *c, uint64_t seq, lt_value_rec_t *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->unit, c->unit, sizeof(v->unit));
    snprintf(v->element, sizeof(v->element), "%s", s->element);
    snprintf(v->period, sizeof(v->period), "%s", s->period);
    snprintf(v->disagg, sizeof(v->disagg), "%s=%" PRIu64, s->tag, seq);
    v->has_value = 1;
    v->value = (double)(seq % 100);
    v->version = wall_ms() * 1000u;
    v->changed_at_ms = wall_ms();
}

static void note_latency(sim_t *s, uint64_t us)
{
    if (s->nlat == s->lat_cap) {
        size_t cap = s->lat_cap ? s->lat_cap * 2 : 65536;
        uint32_t *p = realloc(s->lat_us, cap * sizeof(*p));
        if (!p)
            return;
        s->lat_us = p;
        s->lat_cap = cap;
    }
    s->lat_us[s->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void drain_socket(sim_t *s, commune_t *c);

static int send_frame(sim_t *s, commune_t *c, const msgpack_sbuffer *sb)
{
    int rc = zmq_send(c->sock, sb->data, sb->size, ZMQ_DONTWAIT);
    if (rc < 0 && errno == EAGAIN)
        s->send_blocked++;
    else if (rc >= 0)
        c->last_send_us = now_us();
    drain_socket(s, c); /* a send may consume the ZMQ_FD edge */
    return rc < 0 ? -1 : 0;
}

static void send_hello(sim_t *s, commune_t *c)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    c->state = C_HELLO_SENT;
    c->state_since_us = now_us();
    if (lt_wire_encode_hello(&sb, c->unit, "ltsim/0.1", c->made, wall_ms()) == 0 && send_frame(s, c, &sb) == 0)
        s->hellos++;
    msgpack_sbuffer_destroy(&sb);
}

/* Any doubt: start over with HELLO after a pause; WELCOME says where to resume. */
static void restart(commune_t *c)
{
    c->state = C_BACKOFF;
    c->state_since_us = now_us();
    c->nfl = 0;
}

/* Send batches while there is something unsent and room in flight. */
static void pump(sim_t *s, commune_t *c)
{
    while (c->state == C_STREAMING && c->nfl < s->inflight && c->sent_upto < c->made) {
        uint64_t prev = c->sent_upto, seq = prev;
        lt_batch_begin(s->bw, prev);
        while (seq < c->made && (int)lt_batch_count(s->bw) < s->batch) {
            lt_value_rec_t v;
            fill_record(s, c, ++seq, &v);
            if (lt_batch_add_value(s->bw, seq, &v) != 0) {
                log_error("%s: cannot encode seq %" PRIu64, c->unit, seq);
                exit(2);
            }
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        /* a simulated commune has no outbox rows, so no token (0: none) */
        int ok = lt_batch_finish(s->bw, &sb, seq, 0) == 0 && send_frame(s, c, &sb) == 0;
        msgpack_sbuffer_destroy(&sb);
        if (!ok)
            return; /* high-water mark: the next tick tries again */
        if (!s->t_first_send_us)
            s->t_first_send_us = now_us();
        c->fl[c->nfl].prev = prev;
        c->fl[c->nfl].last = seq;
        c->fl[c->nfl].sent_us = now_us();
        c->nfl++;
        s->sent_records += seq - prev;
        s->sent_batches++;
        c->sent_upto = seq;
    }
}

static void on_ack(sim_t *s, commune_t *c, const lt_msg_t *m)
{
    uint64_t upto = m->u.ack.applied_upto, t = now_us();
    s->rejects += m->u.ack.n_rejects;
    if (c->state != C_STREAMING || upto <= c->acked)
        return;
    if (upto > c->made)
        upto = c->made;
    for (uint64_t q = c->acked + 1; q <= upto; q++)
        note_latency(s, t - c->made_us[q - 1]);
    s->acked_records += upto - c->acked;
    s->t_last_ack_us = t;
    c->acked = upto;
    int k = 0;
    while (k < c->nfl && c->fl[k].last <= upto)
        k++;
    memmove(c->fl, c->fl + k, (size_t)(c->nfl - k) * sizeof(flight_t));
    c->nfl -= k;
    if (c->sent_upto < upto)
        c->sent_upto = upto;
}

static void handle(sim_t *s, commune_t *c, const void *data, size_t len)
{
    lt_msg_t m;
    char err[256];
    int code = 0;
    if (lt_wire_decode(data, len, &m, err, sizeof(err), &code) != 0) {
        s->errors++;
        log_warn("%s: bad message from the parent: %s", c->unit, err);
        return;
    }
    switch (m.type) {
    case LT_MSG_WELCOME:
        if (c->state == C_HELLO_SENT) {
            uint64_t r = m.u.welcome.resume_after;
            if (r > c->made) {
                log_error("%s: the parent has applied up to %" PRIu64 ", beyond the %" PRIu64
                          " records made here: run ltsim against a fresh parent, or use --tag",
                          c->unit, r, c->made);
                exit(2);
            }
            if (r > c->acked) { /* applied before a reconnect: count them once */
                for (uint64_t q = c->acked + 1; q <= r; q++)
                    note_latency(s, now_us() - c->made_us[q - 1]);
                s->acked_records += r - c->acked;
                s->t_last_ack_us = now_us();
                c->acked = r;
            }
            c->sent_upto = c->acked;
            c->nfl = 0;
            c->state = C_STREAMING;
            c->state_since_us = now_us();
        }
        break;
    case LT_MSG_ACK:
        on_ack(s, c, &m);
        break;
    case LT_MSG_RESUME:
        s->resumes++;
        if (c->state == C_STREAMING) {
            c->sent_upto = m.u.resume.resume_after < c->acked ? c->acked : m.u.resume.resume_after;
            c->nfl = 0;
        }
        break;
    case LT_MSG_ERROR:
        if (m.u.error.code == LT_WIRE_EBUSY)
            s->busy++;
        else {
            s->errors++;
            log_warn("%s: parent error %u: %s", c->unit, m.u.error.code, m.u.error.message);
        }
        restart(c);
        break;
    case LT_MSG_PING: {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (lt_wire_encode_ping(&sb, LT_MSG_PONG, m.u.ping.ms) == 0)
            (void)zmq_send(c->sock, sb.data, sb.size, ZMQ_DONTWAIT);
        msgpack_sbuffer_destroy(&sb);
        break;
    }
    default:
        break;
    }
    lt_msg_clear(&m);
}

/* ZMQ_FD is edge-triggered: receive until ZMQ_EVENTS says nothing is queued. */
static void drain_socket(sim_t *s, commune_t *c)
{
    for (;;) {
        int ev = 0;
        size_t sz = sizeof(ev);
        if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &ev, &sz) != 0 || !(ev & ZMQ_POLLIN))
            return;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        if (zmq_msg_more(&m))
            s->errors++;
        else
            handle(s, c, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
    }
}

static int open_commune(sim_t *s, commune_t *c)
{
    int zero = 0, hwm = 10000;
    size_t sz = sizeof(c->fd);
    struct epoll_event ev = {.events = EPOLLIN};
    if (!(c->sock = zmq_socket(s->ctx, ZMQ_DEALER)) ||
        zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
        (s->server_key[0] && (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, s->server_key, 41) != 0 ||
                              zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, c->pub, 41) != 0 ||
                              zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, c->sec, 41) != 0)) ||
        zmq_connect(c->sock, s->endpoint) != 0 || zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &sz) != 0) {
        log_error("%s: cannot open a socket to %s: %s", c->unit, s->endpoint, zmq_strerror(errno));
        return -1;
    }
    ev.data.ptr = c;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int load_units(sim_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int cap = 0;
    if (!f) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char unit[8], pub[41] = "", sec[41] = "";
        if (sscanf(line, "%7s %40s %40s", unit, pub, sec) < 1 || !lt_valid_unit(unit))
            continue;
        if (s->server_key[0] && (strlen(pub) != 40 || strlen(sec) != 40)) {
            log_error("%s: --curve needs \"UNIT PUBLIC SECRET\" lines (ltsim keys)", path);
            fclose(f);
            return -1;
        }
        if (s->n == cap) {
            cap = cap ? cap * 2 : 256;
            commune_t *p = realloc(s->c, (size_t)cap * sizeof(*p));
            if (!p) {
                fclose(f);
                return -1;
            }
            s->c = p;
        }
        memset(&s->c[s->n], 0, sizeof(s->c[s->n]));
        memcpy(s->c[s->n].unit, unit, strlen(unit) + 1); /* 2..5 digits: fits */
        memcpy(s->c[s->n].pub, pub, sizeof(pub));
        memcpy(s->c[s->n].sec, sec, sizeof(sec));
        s->n++;
    }
    fclose(f);
    return s->n > 0 ? 0 : -1;
}

/* One pass over every commune: make due records, time out, (re)hello, send. */
static void tick(sim_t *s, uint64_t t, uint64_t t_end)
{
    for (int i = 0; i < s->n; i++) {
        commune_t *c = &s->c[i];
        if (s->rate > 0) {
            uint64_t step = (uint64_t)(1e6 / s->rate);
            while (c->next_make_us <= t && c->next_make_us < t_end) {
                if (make_record(c, c->next_make_us) != 0)
                    exit(2);
                c->next_make_us += step;
            }
        }
        switch (c->state) {
        case C_NEW:
            send_hello(s, c);
            break;
        case C_BACKOFF:
            if (t - c->state_since_us >= 200000)
                send_hello(s, c);
            break;
        case C_HELLO_SENT:
            if (t - c->state_since_us >= SIM_HELLO_RETRY_MS * 1000u)
                send_hello(s, c);
            break;
        case C_STREAMING:
            if (c->nfl && t - c->fl[0].sent_us >= SIM_ACK_TIMEOUT_MS * 1000u) {
                s->timeouts++;
                restart(c);
                break;
            }
            pump(s, c);
            if (c->state == C_STREAMING && t - c->last_send_us >= SIM_PING_MS * 1000u) {
                /* a silent child's session is forgotten by the parent: ping, as the daemon does */
                msgpack_sbuffer sb;
                msgpack_sbuffer_init(&sb);
                if (lt_wire_encode_ping(&sb, LT_MSG_PING, wall_ms()) == 0)
                    (void)send_frame(s, c, &sb);
                msgpack_sbuffer_destroy(&sb);
            }
            break;
        }
    }
}

static int all_acked(const sim_t *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->c[i].acked < s->c[i].made)
            return 0;
    return 1;
}

static int all_streaming(const sim_t *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->c[i].state != C_STREAMING)
            return 0;
    return 1;
}

/* --dump: making times are monotonic; the wall clock's offset to it turns them into
   unix seconds comparable with PostgreSQL's commit timestamps on this machine. */
static int dump_made(const sim_t *s, const char *path)
{
    struct timespec rt;
    FILE *f = fopen(path, "w");

    if (!f) {
        log_error("--dump %s: %s", path, strerror(errno));
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &rt);
    double off = (double)rt.tv_sec + rt.tv_nsec / 1e9 - (double)now_us() / 1e6;
    for (int i = 0; i < s->n; i++)
        for (uint64_t q = 1; q <= s->c[i].made; q++)
            fprintf(f, "%s\t%s=%" PRIu64 "\t%.6f\n", s->c[i].unit, s->tag, q,
                    (double)s->c[i].made_us[q - 1] / 1e6 + off);
    if (fclose(f) != 0) {
        log_error("--dump %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    static sim_t s;
    struct epoll_event evs[256];

    if (argc < 4)
        return 2;
    s.endpoint = argv[2];
    s.rate = atof(opt(argc, argv, "--rate", "0"));
    s.seconds = atof(opt(argc, argv, "--seconds", "10"));
    s.backlog = atol(opt(argc, argv, "--backlog", "0"));
    s.batch = atoi(opt(argc, argv, "--batch", "500"));
    s.inflight = atoi(opt(argc, argv, "--inflight", "4"));
    s.period = opt(argc, argv, "--period", "202508");
    s.element = opt(argc, argv, "--element", "CHILD_INJURIES");
    s.tag = opt(argc, argv, "--tag", "sim");
    s.drain = atof(opt(argc, argv, "--drain", "120"));
    const char *dump = opt(argc, argv, "--dump", NULL);
    const char *curve = opt(argc, argv, "--curve", NULL);
    if (curve) {
        FILE *kf = fopen(curve, "r");
        if (!kf || fscanf(kf, "%40s", s.server_key) != 1 || strlen(s.server_key) != 40) {
            log_error("cannot read the parent's public key from %s", curve);
            if (kf)
                fclose(kf);
            return 2;
        }
        fclose(kf);
    }
    if (s.batch < 1 || s.batch > LT_WIRE_MAX_RECORDS || s.inflight < 1 || s.inflight > SIM_MAX_INFLIGHT ||
        (s.rate <= 0 && s.backlog <= 0)) {
        log_error("run: needs --rate or --backlog, 1 <= --batch <= %d, 1 <= --inflight <= %d",
                  LT_WIRE_MAX_RECORDS, SIM_MAX_INFLIGHT);
        return 2;
    }
    if (load_units(&s, argv[3]) != 0) {
        log_error("no unit codes in %s", argv[3]);
        return 2;
    }
    if (!(s.ctx = zmq_ctx_new()) || zmq_ctx_set(s.ctx, ZMQ_MAX_SOCKETS, s.n + 64) != 0 ||
        (s.ep = epoll_create1(0)) < 0 || !(s.bw = lt_batch_new()))
        return 2;
    for (int i = 0; i < s.n; i++)
        if (open_commune(&s, &s.c[i]) != 0)
            return 2;

    /* Sessions first: every commune says HELLO and waits for its WELCOME. */
    uint64_t t0 = now_us(), t_welcomed;
    while (!all_streaming(&s) && now_us() - t0 < 120000000u) {
        tick(&s, now_us(), 0);
        int n = epoll_wait(s.ep, evs, 256, SIM_TICK_MS);
        for (int k = 0; k < n; k++)
            drain_socket(&s, evs[k].data.ptr);
    }
    t_welcomed = now_us();

    /* Load: a backlog made at once, or records made at the rate for the duration,
       each commune's first one at a random point of the first period. */
    uint64_t t_start = now_us(), t_end = t_start + (uint64_t)(s.seconds * 1e6);
    for (int i = 0; i < s.n; i++) {
        commune_t *c = &s.c[i];
        for (long k = 0; k < s.backlog; k++)
            if (make_record(c, t_start) != 0)
                return 2;
        if (s.rate > 0)
            c->next_make_us = t_start + (uint64_t)rand() % (uint64_t)(1e6 / s.rate);
    }
    if (s.backlog > 0)
        t_end = t_start;
    uint64_t deadline = t_end + (uint64_t)(s.drain * 1e6);
    for (;;) {
        uint64_t t = now_us();
        if (t >= t_end && all_acked(&s))
            break;
        if (t >= deadline) {
            log_warn("drain time over with records unacknowledged");
            break;
        }
        tick(&s, t, t_end);
        int n = epoll_wait(s.ep, evs, 256, SIM_TICK_MS);
        for (int k = 0; k < n; k++)
            drain_socket(&s, evs[k].data.ptr);
        for (int i = 0; i < s.n; i++)
            if (s.c[i].state == C_STREAMING && s.c[i].nfl < s.inflight && s.c[i].sent_upto < s.c[i].made)
                pump(&s, &s.c[i]);
    }

    /* Records never acknowledged count with their age now: the percentiles are then
       lower bounds, and "unacked" says how many such records there were. */
    uint64_t made = 0, t_stop = now_us();
    for (int i = 0; i < s.n; i++) {
        made += s.c[i].made;
        for (uint64_t q = s.c[i].acked + 1; q <= s.c[i].made; q++)
            note_latency(&s, t_stop - s.c[i].made_us[q - 1]);
    }
    qsort(s.lat_us, s.nlat, sizeof(uint32_t), cmp_u32);
    double span = s.t_last_ack_us > t_start ? (double)(s.t_last_ack_us - t_start) / 1e6 : 0;
    printf("{\"communes\": %d, \"welcome_s\": %.3f, \"made\": %" PRIu64 ", \"acked\": %" PRIu64
           ", \"unacked\": %" PRIu64
           ", \"span_s\": %.3f, \"acked_per_s\": %.1f, \"lat_p50_ms\": %.1f, \"lat_p99_ms\": %.1f"
           ", \"lat_max_ms\": %.1f, \"batches\": %" PRIu64 ", \"hellos\": %" PRIu64 ", \"errors\": %" PRIu64
           ", \"busy\": %" PRIu64 ", \"resumes\": %" PRIu64 ", \"timeouts\": %" PRIu64 ", \"rejects\": %" PRIu64
           ", \"send_blocked\": %" PRIu64 "}\n",
           s.n, (double)(t_welcomed - t0) / 1e6, made, s.acked_records, made - s.acked_records, span,
           span > 0 ? (double)s.acked_records / span : 0, pct_ms(s.lat_us, s.nlat, 0.50),
           pct_ms(s.lat_us, s.nlat, 0.99), s.nlat ? s.lat_us[s.nlat - 1] / 1000.0 : -1, s.sent_batches,
           s.hellos, s.errors, s.busy, s.resumes, s.timeouts, s.rejects, s.send_blocked);
    if (dump && dump_made(&s, dump) != 0)
        return 2;
    for (int i = 0; i < s.n; i++) {
        zmq_close(s.c[i].sock);
        free(s.c[i].made_us);
    }
    free(s.c);
    free(s.lat_us);
    lt_batch_destroy(&s.bw);
    zmq_ctx_term(s.ctx);
    return s.acked_records == made ? 0 : 1;
}

/* ------------------------------------------------------------ keys */

static int cmd_keys(int argc, char **argv)
{
    char line[256];
    if (argc < 3)
        return 2;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        log_error("cannot open %s: %s", argv[2], strerror(errno));
        return 2;
    }
    while (fgets(line, sizeof(line), f)) {
        char unit[8], pub[41], sec[41];
        if (sscanf(line, "%7s", unit) != 1 || !lt_valid_unit(unit))
            continue;
        if (zmq_curve_keypair(pub, sec) != 0) {
            log_error("zmq_curve_keypair: %s", zmq_strerror(errno));
            fclose(f);
            return 2;
        }
        printf("%s %s %s\n", unit, pub, sec);
    }
    fclose(f);
    return 0;
}

/* ------------------------------------------------------------ write: real communes */

typedef struct {
    char unit[8];
    PGconn *db;
    uint64_t next_us, n;
} writer_t;

static int cmd_write(int argc, char **argv)
{
    double rate = atof(opt(argc, argv, "--rate", "1")), seconds = atof(opt(argc, argv, "--seconds", "10"));
    const char *period = opt(argc, argv, "--period", "202406"), *element = opt(argc, argv, "--element", "CHILD_INJURIES"),
               *tag = opt(argc, argv, "--tag", "w");
    writer_t *w = NULL;
    int n = 0, cap = 0;
    uint64_t writes = 0, errors = 0, busy_us = 0;
    char line[1024];

    if (argc < 3 || rate <= 0)
        return 2;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        log_error("cannot open %s: %s", argv[2], strerror(errno));
        return 2;
    }
    while (fgets(line, sizeof(line), f)) {
        char unit[8];
        int off = 0;
        if (sscanf(line, "%7s %n", unit, &off) != 1 || !lt_valid_unit(unit))
            continue;
        line[strcspn(line, "\n")] = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            writer_t *p = realloc(w, (size_t)cap * sizeof(*p));
            if (!p)
                return 2;
            w = p;
        }
        memset(&w[n], 0, sizeof(w[n]));
        snprintf(w[n].unit, sizeof(w[n].unit), "%s", unit);
        w[n].db = PQconnectdb(line + off);
        if (PQstatus(w[n].db) != CONNECTION_OK) {
            log_error("%s: %s", unit, PQerrorMessage(w[n].db));
            return 2;
        }
        n++;
    }
    fclose(f);
    uint64_t step = (uint64_t)(1e6 / rate), t0 = now_us(), t_end = t0 + (uint64_t)(seconds * 1e6);
    for (int i = 0; i < n; i++)
        w[i].next_us = t0 + (uint64_t)rand() % step;
    for (;;) {
        uint64_t t = now_us(), next = t_end;
        if (t >= t_end)
            break;
        for (int i = 0; i < n; i++) {
            if (w[i].next_us <= t) {
                char disagg[80], value[24];
                snprintf(disagg, sizeof(disagg), "%s=%" PRIu64, tag, ++w[i].n);
                snprintf(value, sizeof(value), "%" PRIu64, w[i].n % 100);
                const char *p[5] = {w[i].unit, element, period, disagg, value};
                uint64_t a = now_us();
                PGresult *r = PQexecParams(w[i].db, "SELECT lt.put_value($1, $2, $3, $4, $5::numeric)", 5,
                                           NULL, p, NULL, NULL, 0);
                busy_us += now_us() - a;
                if (PQresultStatus(r) == PGRES_TUPLES_OK)
                    writes++;
                else if (errors++ < 5)
                    log_warn("%s: %s", w[i].unit, PQresultErrorMessage(r));
                PQclear(r);
                w[i].next_us += step;
            }
            if (w[i].next_us < next)
                next = w[i].next_us;
        }
        t = now_us();
        if (next > t) {
            struct timespec ts = {.tv_sec = (time_t)((next - t) / 1000000u),
                                  .tv_nsec = (long)((next - t) % 1000000u) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    double span = (double)(now_us() - t0) / 1e6;
    printf("{\"communes\": %d, \"writes\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"writes_per_s\": %.1f"
           ", \"mean_write_ms\": %.2f}\n",
           n, writes, errors, (double)writes / span, writes ? (double)busy_us / (double)writes / 1000.0 : 0);
    for (int i = 0; i < n; i++)
        PQfinish(w[i].db);
    free(w);
    return errors ? 1 : 0;
}

/* ------------------------------------------------------------ wait */

static int cmd_wait(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    long long target = atoll(argv[4]);
    double timeout = atof(argv[5]);
    PGconn *db = PQconnectdb(argv[2]);
    if (PQstatus(db) != CONNECTION_OK) {
        log_error("%s", PQerrorMessage(db));
        PQfinish(db);
        return 2;
    }
    uint64_t t0 = now_us();
    int rc = 1;
    for (;;) {
        PGresult *r = PQexec(db, argv[3]);
        long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                          ? atoll(PQgetvalue(r, 0, 0))
                          : -1;
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            log_warn("wait: %s", PQresultErrorMessage(r));
        PQclear(r);
        if (v >= target) {
            rc = 0;
            break;
        }
        if ((double)(now_us() - t0) / 1e6 >= timeout)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000};
        nanosleep(&ts, NULL);
    }
    printf("%.3f %.3f\n", (double)(now_us() - t0) / 1e6, (double)wall_ms() / 1e3);
    PQfinish(db);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: ltsim run ENDPOINT UNITS_FILE (--rate R --seconds S | --backlog M) [--batch N]\n"
                    "                 [--inflight K] [--period P] [--element E] [--tag T] [--drain S] [--dump FILE]\n"
                    "                 [--curve PARENT_PUBLIC_KEY_FILE]\n"
                    "       ltsim keys UNITS_FILE\n"
                    "       ltsim write UNITS_CONNINFO_FILE [--rate R] [--seconds S] [--period P]\n"
                    "                 [--element E] [--tag T]\n"
                    "       ltsim wait CONNINFO SQL TARGET TIMEOUT_S\n");
}

int main(int argc, char **argv)
{
    int rc = 2;
    lt_log_setup("ltsim", 0);
    srand((unsigned)now_us());
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        rc = cmd_run(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "write") == 0)
        rc = cmd_write(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "keys") == 0)
        rc = cmd_keys(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "wait") == 0)
        rc = cmd_wait(argc, argv);
    if (rc == 2)
        usage();
    return rc;
}
