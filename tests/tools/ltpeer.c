/*
 * ltpeer.c — a scriptable protocol peer for integration tests: it plays a
 * child node against a parent's children endpoint, one command per stdin line,
 * one result line per command on stdout, so a shell test can drive it with a
 * here-doc and grep what came back.
 *
 *   ltpeer [--curve SERVER_PUBLIC CLIENT_PUBLIC CLIENT_SECRET] ENDPOINT
 *
 * A ZeroMQ DEALER connects to ENDPOINT: in plaintext, or with --curve as a CURVE
 * client of the parent's public key (key files as written by `lienthong keygen`)
 * with the given key pair. With an unknown key the handshake fails and every
 * command that waits prints `timeout`.
 *
 * Commands:
 *   hello UNIT [MAX_SEQ]                          -> welcome PARENT RESUME_AFTER [token T]
 *                                                     (the token only when not 0)
 *   value SEQ UNIT ELEMENT PERIOD DISAGG VALUE VERSION
 *                                                  -> queued N   (DISAGG "-": empty,
 *                                                     VALUE "nil": tombstone)
 *   case SEQ CASE_UUID UNIT VERSION STATUS CATEGORIES NOTIFIED_MS -> queued N
 *   resync SEQ UNIT PHASE                         -> queued N   (a resync marker:
 *                                                     PHASE 1 begin, 2 end; it must
 *                                                     be the last record sent)
 *   send PREV LAST [TOKEN]    encode the queued records as one BATCH and send it
 *                             -> ack APPLIED_UPTO N_APPLIED NREJECTS [SEQ:CODE ...]
 *                                | resume AFTER
 *                             (a parent may acknowledge a batch in parts when it
 *                             isolates a refused record: the ACKs up to the one
 *                             reaching LAST are merged into one line)
 *   resend                    the last BATCH frame again, byte for byte
 *   raw HEX...                these bytes as one frame (spaces allowed)
 *   rawfill N HEXBYTE         a frame of N copies of one byte (oversized frames)
 *   ping                      -> pong
 *   sleep MS                  -> slept
 *   reconnect                 a new DEALER, hence a new session -> reconnected
 * Any command that waits may instead print `error CODE MESSAGE`, `timeout`,
 * `bad-reply REASON` or `send-failed REASON`; a malformed command prints
 * `usage-error ...`. Exit status 0 at the end of input.
 *
 * Invariant: exactly one result line per command (comments and blank lines
 * print nothing), flushed at once. Replies that arrive after their command
 * timed out are discarded (and noted on stderr) before the next send, so a
 * late answer is never taken for the answer to a later command. A PING from
 * the parent is answered with a PONG and does not count as the reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "keys.h"
#include "log.h"
#include "wire.h"

#define LTPEER_SOFTWARE "ltpeer/0.1"
#define WAIT_MS 5000
#define RAW_WAIT_MS 2000
#define MAX_ARGS 4096 /* raw takes one argument per byte */

typedef struct {
    void *ctx, *sock;
    const char *endpoint;
    int curve;
    char server_key[LT_KEY_Z85_LEN + 1], public_key[LT_KEY_Z85_LEN + 1], secret_key[LT_KEY_Z85_LEN + 1];
    lt_record_t *pending; /* records queued for the next BATCH */
    size_t npending, cap;
    char *last_frame; /* the last BATCH sent, for `resend` */
    size_t last_len;
    uint64_t last_last; /* its last_seq */
} peer_t;

/* ------------------------------------------------------------ helpers */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Copy s into a fixed field; -1 when it does not fit. */
static int copy_field(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

/* Free text from a peer, printable on one line: control bytes become \xHH. */
static void escape_text(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    for (; *in && k + 5 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 0x20 || c == 0x7f)
            k += (size_t)snprintf(out + k, cap - k, "\\x%02x", c);
        else
            out[k++] = (char)c;
    }
    out[k] = '\0';
}

/* ------------------------------------------------------------ socket */

static int peer_connect(peer_t *p)
{
    int linger = 0, tmo = WAIT_MS;
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    if (!p->sock)
        return -1;
    if (zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo)) != 0 ||
        (p->curve && (zmq_setsockopt(p->sock, ZMQ_CURVE_SERVERKEY, p->server_key, LT_KEY_Z85_LEN) != 0 ||
                      zmq_setsockopt(p->sock, ZMQ_CURVE_PUBLICKEY, p->public_key, LT_KEY_Z85_LEN) != 0 ||
                      zmq_setsockopt(p->sock, ZMQ_CURVE_SECRETKEY, p->secret_key, LT_KEY_Z85_LEN) != 0)) ||
        zmq_connect(p->sock, p->endpoint) != 0) {
        log_error("cannot connect to %s: %s", p->endpoint, zmq_strerror(errno));
        zmq_close(p->sock);
        p->sock = NULL;
        return -1;
    }
    return 0;
}

static void peer_disconnect(peer_t *p)
{
    if (p->sock)
        zmq_close(p->sock);
    p->sock = NULL;
}

/* Receive one whole message, waiting up to ms; its first part goes in *first
   (the caller closes it). Returns the number of parts, 0 on timeout, -1 on error. */
static int recv_frame(peer_t *p, int ms, zmq_msg_t *first)
{
    zmq_pollitem_t it = {.socket = p->sock, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&it, 1, ms);
    if (rc <= 0)
        return rc < 0 ? -1 : 0;
    zmq_msg_init(first);
    if (zmq_msg_recv(first, p->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(first);
        return errno == EAGAIN ? 0 : -1;
    }
    int parts = 1, more = zmq_msg_more(first);
    while (more) { /* a multipart reply: count the parts, keep only the first */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        if (zmq_msg_recv(&extra, p->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&extra);
            break;
        }
        parts++;
        more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    return parts;
}

static int send_bytes(peer_t *p, const void *buf, size_t len)
{
    if (zmq_send(p->sock, buf, len, 0) < 0) {
        say("send-failed %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Drop replies that arrived after their command gave up waiting. */
static void drain_stale(peer_t *p)
{
    zmq_msg_t m;
    int n;
    while ((n = recv_frame(p, 0, &m)) > 0) {
        fprintf(stderr, "ltpeer: discarded a late reply of %zu bytes\n", zmq_msg_size(&m));
        zmq_msg_close(&m);
    }
}

static void send_pong(peer_t *p, uint64_t ms)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (lt_wire_encode_ping(&sb, LT_MSG_PONG, ms) == 0)
        (void)zmq_send(p->sock, sb.data, sb.size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy(&sb);
}

/* ACKs answering one batch, merged: a parent that splits a batch to isolate
   a record its database refuses acknowledges each part on its own. */
typedef struct {
    int n;
    uint64_t upto, n_applied, n_rejects;
    char list[8192]; /* " SEQ:CODE" per reject */
    size_t len;
} acks_t;

static void acks_add(acks_t *a, const lt_msg_t *m)
{
    a->n++;
    if (m->u.ack.applied_upto > a->upto)
        a->upto = m->u.ack.applied_upto;
    a->n_applied += m->u.ack.n_applied;
    a->n_rejects += m->u.ack.n_rejects;
    for (uint32_t i = 0; i < m->u.ack.n_rejects; i++) {
        if (a->len + 48 >= sizeof(a->list)) {
            a->len += (size_t)snprintf(a->list + a->len, sizeof(a->list) - a->len, " ...");
            break;
        }
        a->len += (size_t)snprintf(a->list + a->len, sizeof(a->list) - a->len, " %" PRIu64 ":%u",
                                   m->u.ack.rejects[i].seq, m->u.ack.rejects[i].code);
    }
}

static void acks_print(const acks_t *a)
{
    say("ack %" PRIu64 " %" PRIu64 " %" PRIu64 "%s", a->upto, a->n_applied, a->n_rejects,
        a->len ? a->list : "");
}

/* Wait for the reply to what was just sent and print it as one line. For a
   batch, until is its last_seq: ACKs are collected (and merged) until one
   reaches it, since ACKs are cumulative; a batch acknowledged only in part
   when the wait runs out prints the merged ACK, whose applied_upto then
   shows how far it got. Otherwise until is 0 and the first reply counts. */
static void print_reply(peer_t *p, int ms, uint64_t until)
{
    acks_t acks = {0};
    uint64_t deadline = mono_ms() + (uint64_t)ms;

    for (;;) {
        uint64_t now = mono_ms();
        int left = now >= deadline ? 0 : (int)(deadline - now);
        zmq_msg_t m;
        int n = recv_frame(p, left, &m);
        if (n == 0) {
            if (acks.n) {
                fprintf(stderr, "ltpeer: batch acknowledged only up to %" PRIu64 " of %" PRIu64 "\n",
                        acks.upto, until);
                acks_print(&acks);
            } else {
                say("timeout");
            }
            return;
        }
        if (n < 0) {
            say("bad-reply receive failed: %s", zmq_strerror(errno));
            return;
        }
        lt_msg_t msg;
        char err[256], text[4 * LT_WIRE_MAX_TEXT + 8];
        int code = 0, rc;
        rc = lt_wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &msg, err, sizeof(err), &code);
        zmq_msg_close(&m);
        if (n > 1) {
            if (rc == 0)
                lt_msg_clear(&msg);
            say("bad-reply a message of %d parts", n);
            return;
        }
        if (rc != 0) {
            escape_text(err, text, sizeof(text));
            say("bad-reply %s: %s", lt_wire_error_name(code), text);
            return;
        }
        if (acks.n && msg.type != LT_MSG_ACK && msg.type != LT_MSG_PING)
            fprintf(stderr, "ltpeer: batch acknowledged up to %" PRIu64 ", then:\n", acks.upto);
        switch (msg.type) {
        case LT_MSG_PING:
            send_pong(p, msg.u.ping.ms);
            lt_msg_clear(&msg);
            continue; /* not the reply we wait for */
        case LT_MSG_ACK:
            acks_add(&acks, &msg);
            lt_msg_clear(&msg);
            if (until && acks.upto < until) {
                deadline = mono_ms() + (uint64_t)ms; /* more parts to come */
                continue;
            }
            if (acks.n > 1)
                fprintf(stderr, "ltpeer: batch acknowledged in %d parts\n", acks.n);
            acks_print(&acks);
            return;
        case LT_MSG_WELCOME:
            if (msg.u.welcome.token)
                say("welcome %s %" PRIu64 " token %" PRIu64, msg.u.welcome.unit, msg.u.welcome.resume_after,
                    msg.u.welcome.token);
            else
                say("welcome %s %" PRIu64, msg.u.welcome.unit, msg.u.welcome.resume_after);
            break;
        case LT_MSG_RESUME:
            say("resume %" PRIu64, msg.u.resume.resume_after);
            break;
        case LT_MSG_ERROR:
            escape_text(msg.u.error.message, text, sizeof(text));
            say("error %u %s", msg.u.error.code, text);
            break;
        case LT_MSG_PONG:
            say("pong");
            break;
        default:
            say("bad-reply unexpected message type %d", (int)msg.type);
            break;
        }
        lt_msg_clear(&msg);
        return;
    }
}

/* ------------------------------------------------------------ commands */

static int queue_record(peer_t *p, const lt_record_t *r)
{
    if (p->npending == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        lt_record_t *nr = realloc(p->pending, cap * sizeof(*nr));
        if (!nr)
            return -1;
        p->pending = nr;
        p->cap = cap;
    }
    p->pending[p->npending++] = *r;
    return 0;
}

static void cmd_hello(peer_t *p, int argc, char **argv)
{
    uint64_t max_seq = 0;
    msgpack_sbuffer sb;
    if (argc < 2 || argc > 3 || (argc == 3 && parse_u64(argv[2], &max_seq) != 0)) {
        say("usage-error hello UNIT [MAX_SEQ]");
        return;
    }
    msgpack_sbuffer_init(&sb);
    if (lt_wire_encode_hello(&sb, argv[1], LTPEER_SOFTWARE, max_seq, now_ms()) != 0)
        say("usage-error hello: %s is not a unit code", argv[1]);
    else if (send_bytes(p, sb.data, sb.size) == 0)
        print_reply(p, WAIT_MS, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void cmd_value(peer_t *p, int argc, char **argv)
{
    lt_record_t r = {.kind = LT_REC_VALUE};
    lt_value_rec_t *v = &r.u.v;
    char err[256];

    if (argc != 8 || parse_u64(argv[1], &r.seq) != 0 || parse_u64(argv[7], &v->version) != 0 ||
        copy_field(v->unit, sizeof(v->unit), argv[2]) != 0 ||
        copy_field(v->element, sizeof(v->element), argv[3]) != 0 ||
        copy_field(v->period, sizeof(v->period), argv[4]) != 0 ||
        copy_field(v->disagg, sizeof(v->disagg), strcmp(argv[5], "-") == 0 ? "" : argv[5]) != 0) {
        say("usage-error value SEQ UNIT ELEMENT PERIOD DISAGG VALUE VERSION");
        return;
    }
    if (strcmp(argv[6], "nil") != 0) {
        char *end;
        v->has_value = 1;
        v->value = strtod(argv[6], &end);
        if (*end || end == argv[6]) {
            say("usage-error value: %s is not a number", argv[6]);
            return;
        }
    }
    v->changed_at_ms = now_ms();
    if (lt_wire_check_value(v, err, sizeof(err)) != 0) {
        say("usage-error value: %s", err);
        return;
    }
    if (queue_record(p, &r) != 0)
        say("usage-error out of memory");
    else
        say("queued %zu", p->npending);
}

static void cmd_case(peer_t *p, int argc, char **argv)
{
    lt_record_t r = {.kind = LT_REC_CASE};
    lt_case_rec_t *c = &r.u.c;
    uint64_t cats;
    char err[256];

    if (argc != 8 || parse_u64(argv[1], &r.seq) != 0 || parse_u64(argv[4], &c->version) != 0 ||
        parse_u64(argv[6], &cats) != 0 || cats > UINT32_MAX || parse_i64(argv[7], &c->notified_at) != 0 ||
        copy_field(c->case_id, sizeof(c->case_id), argv[2]) != 0 ||
        copy_field(c->unit, sizeof(c->unit), argv[3]) != 0 ||
        copy_field(c->status, sizeof(c->status), argv[5]) != 0) {
        say("usage-error case SEQ CASE_UUID UNIT VERSION STATUS CATEGORIES NOTIFIED_MS");
        return;
    }
    c->categories = (uint32_t)cats;
    c->changed_at_ms = now_ms();
    c->sex = 'U';
    c->assessed_at = c->emergency_at = c->plan_drafted_at = c->plan_approved_at = -1;
    c->reviewed_at = c->closed_at = -1;
    if (lt_wire_check_case(c, err, sizeof(err)) != 0) {
        say("usage-error case: %s", err);
        return;
    }
    if (queue_record(p, &r) != 0)
        say("usage-error out of memory");
    else
        say("queued %zu", p->npending);
}

static void cmd_resync(peer_t *p, int argc, char **argv)
{
    lt_record_t r = {.kind = LT_REC_RESYNC};
    uint64_t phase;
    char err[256];
    if (argc != 4 || parse_u64(argv[1], &r.seq) != 0 || parse_u64(argv[3], &phase) != 0 || phase > 9 ||
        copy_field(r.u.r.unit, sizeof(r.u.r.unit), argv[2]) != 0) {
        say("usage-error resync SEQ UNIT PHASE");
        return;
    }
    r.u.r.phase = (int)phase;
    if (lt_wire_check_resync(&r.u.r, err, sizeof(err)) != 0) {
        say("usage-error resync: %s", err);
        return;
    }
    if (queue_record(p, &r) != 0)
        say("usage-error out of memory");
    else
        say("queued %zu", p->npending);
}

static void cmd_send(peer_t *p, int argc, char **argv)
{
    uint64_t prev, last, token = 0;
    lt_batch_writer_t *w = NULL;
    msgpack_sbuffer sb;
    size_t n = p->npending;

    msgpack_sbuffer_init(&sb);
    p->npending = 0; /* whatever happens, the queue starts afresh */
    if (argc < 3 || argc > 4 || parse_u64(argv[1], &prev) != 0 || parse_u64(argv[2], &last) != 0 ||
        (argc == 4 && parse_u64(argv[3], &token) != 0)) {
        say("usage-error send PREV LAST [TOKEN]");
        goto out;
    }
    if (n == 0) {
        say("usage-error send: no records queued");
        goto out;
    }
    if (!(w = lt_batch_new())) {
        say("usage-error out of memory");
        goto out;
    }
    lt_batch_begin(w, prev);
    for (size_t i = 0; i < n; i++) {
        const lt_record_t *r = &p->pending[i];
        int rc = r->kind == LT_REC_VALUE    ? lt_batch_add_value(w, r->seq, &r->u.v)
                 : r->kind == LT_REC_RESYNC ? lt_batch_add_resync(w, r->seq, &r->u.r)
                                            : lt_batch_add_case(w, r->seq, &r->u.c);
        if (rc != 0) {
            say("usage-error send: record %zu (seq %" PRIu64 ") refused by the encoder "
                "(seqs must rise and exceed PREV; nothing after a resync marker)", i, r->seq);
            goto out;
        }
    }
    if (lt_batch_finish(w, &sb, last, token) != 0) {
        say("usage-error send: LAST %" PRIu64 " is below the last record's seq", last);
        goto out;
    }
    char *copy = malloc(sb.size);
    if (!copy) {
        say("usage-error out of memory");
        goto out;
    }
    memcpy(copy, sb.data, sb.size);
    free(p->last_frame);
    p->last_frame = copy;
    p->last_len = sb.size;
    p->last_last = last;
    if (send_bytes(p, p->last_frame, p->last_len) == 0)
        print_reply(p, WAIT_MS, last);
out:
    lt_batch_destroy(&w);
    msgpack_sbuffer_destroy(&sb);
}

static void cmd_resend(peer_t *p, int argc, char **argv)
{
    if (argc != 1 || !p->last_frame) {
        say("usage-error resend: %s", argc != 1 ? "takes no argument" : "no batch sent yet");
        return;
    }
    if (send_bytes(p, p->last_frame, p->last_len) == 0)
        print_reply(p, WAIT_MS, p->last_last);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void cmd_raw(peer_t *p, int argc, char **argv)
{
    size_t cap = 0, n = 0;
    uint8_t *buf;
    for (int i = 1; i < argc; i++)
        cap += strlen(argv[i]) / 2 + 1;
    if (argc < 2 || !(buf = malloc(cap))) {
        say("usage-error raw HEX...");
        return;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        size_t len = strlen(s);
        for (size_t k = 0; k < len; k += 2) {
            int hi = hexval((unsigned char)s[k]), lo = k + 1 < len ? hexval((unsigned char)s[k + 1]) : -1;
            if (hi < 0 || lo < 0) {
                say("usage-error raw: %s is not hex bytes", s);
                free(buf);
                return;
            }
            buf[n++] = (uint8_t)(hi << 4 | lo);
        }
    }
    if (send_bytes(p, buf, n) == 0)
        print_reply(p, RAW_WAIT_MS, 0);
    free(buf);
}

static void cmd_rawfill(peer_t *p, int argc, char **argv)
{
    uint64_t n, byte;
    char *end;
    if (argc != 3 || parse_u64(argv[1], &n) != 0 || n == 0 || n > (256u << 20) ||
        (byte = strtoull(argv[2], &end, 16), *end) || byte > 0xff) {
        say("usage-error rawfill N HEXBYTE (N up to 256 MiB)");
        return;
    }
    uint8_t *buf = malloc(n);
    if (!buf) {
        say("usage-error out of memory");
        return;
    }
    memset(buf, (int)byte, n);
    if (send_bytes(p, buf, n) == 0)
        print_reply(p, RAW_WAIT_MS, 0);
    free(buf);
}

static void cmd_ping(peer_t *p, int argc, char **argv)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (argc != 1 || lt_wire_encode_ping(&sb, LT_MSG_PING, now_ms()) != 0)
        say("usage-error ping");
    else if (send_bytes(p, sb.data, sb.size) == 0)
        print_reply(p, WAIT_MS, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void cmd_sleep(peer_t *p, int argc, char **argv)
{
    uint64_t ms;
    if (argc != 2 || parse_u64(argv[1], &ms) != 0 || ms > 600000) {
        say("usage-error sleep MS");
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    say("slept");
}

static void cmd_reconnect(peer_t *p, int argc, char **argv)
{
    peer_disconnect(p);
    if (peer_connect(p) != 0)
        say("usage-error reconnect: cannot connect to %s", p->endpoint);
    else
        say("reconnected");
}

static const struct {
    const char *name;
    void (*run)(peer_t *p, int argc, char **argv);
    int sends; /* drain late replies first */
} commands[] = {
    {"hello", cmd_hello, 1},   {"value", cmd_value, 0},     {"case", cmd_case, 0},
    {"resync", cmd_resync, 0},
    {"send", cmd_send, 1},     {"resend", cmd_resend, 1},   {"raw", cmd_raw, 1},
    {"rawfill", cmd_rawfill, 1}, {"ping", cmd_ping, 1},     {"sleep", cmd_sleep, 0},
    {"reconnect", cmd_reconnect, 0},
};

static void run_line(peer_t *p, char *line)
{
    char *argv[MAX_ARGS], *save = NULL;
    int argc = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (argc == MAX_ARGS) {
            say("usage-error too many arguments");
            return;
        }
        argv[argc++] = t;
    }
    if (argc == 0 || argv[0][0] == '#')
        return;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[0], commands[i].name) == 0) {
            if (commands[i].sends && !p->sock) {
                say("usage-error not connected");
                return;
            }
            if (commands[i].sends)
                drain_stale(p);
            commands[i].run(p, argc, argv);
            return;
        }
    }
    say("usage-error unknown command %s", argv[0]);
}

int main(int argc, char **argv)
{
    peer_t p = {0};
    char *line = NULL;
    size_t cap = 0;
    int rc = 1;

    lt_log_setup("ltpeer", 0);
    if (argc == 6 && strcmp(argv[1], "--curve") == 0) {
        char err[512];
        if (lt_keys_read(argv[2], 0, p.server_key, err, sizeof(err)) != 0 ||
            lt_keys_read(argv[3], 0, p.public_key, err, sizeof(err)) != 0 ||
            lt_keys_read(argv[4], 1, p.secret_key, err, sizeof(err)) != 0) {
            fprintf(stderr, "ltpeer: %s\n", err);
            return 2;
        }
        p.curve = 1;
        argv += 4;
        argc -= 4;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: ltpeer [--curve SERVER_PUBLIC CLIENT_PUBLIC CLIENT_SECRET] ENDPOINT < commands\n");
        return 2;
    }
    p.endpoint = argv[1];
    if (!(p.ctx = zmq_ctx_new()) || peer_connect(&p) != 0)
        goto fail;
    while (getline(&line, &cap, stdin) >= 0)
        run_line(&p, line);
    rc = 0;
fail:
    free(line);
    free(p.pending);
    free(p.last_frame);
    peer_disconnect(&p);
    if (p.ctx)
        zmq_ctx_term(p.ctx);
    return rc;
}
