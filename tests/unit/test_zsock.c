/*
 * test_zsock.c — zsock on a real libuv loop and real TCP ZeroMQ sockets:
 * bulk traffic both ways through callbacks only (nothing lost, order kept,
 * high-water marks honoured), messages queued before the loop runs (the
 * ZMQ_FD edge-trigger trap), ROUTER_MANDATORY, the multipart helpers and the
 * connection monitor.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "unit.h"
#include "zsock.h"

#define NMSG 10000
#define BURST 100 /* messages per callback, to exercise the "more later" path */

typedef struct {
    void *ctx;
    void *router, *dealer;
    char endpoint[256];
} pair_t;

static void set_int(void *sock, int opt, int val)
{
    CHECK_EQ_INT(zmq_setsockopt(sock, opt, &val, sizeof(val)), 0);
}

/* ROUTER bound on an ephemeral port, DEALER (routing id "D1") connected. */
static void pair_open(pair_t *p)
{
    size_t len = sizeof(p->endpoint);

    memset(p, 0, sizeof(*p));
    p->ctx = zmq_ctx_new();
    CHECK(p->ctx);
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    CHECK(p->router && p->dealer);
    set_int(p->router, ZMQ_LINGER, 0);
    set_int(p->dealer, ZMQ_LINGER, 0);
    set_int(p->router, ZMQ_ROUTER_MANDATORY, 1);
    CHECK_EQ_INT(zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, "D1", 2), 0);
    CHECK_EQ_INT(zmq_bind(p->router, "tcp://127.0.0.1:*"), 0);
    CHECK_EQ_INT(zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, p->endpoint, &len), 0);
    CHECK(strncmp(p->endpoint, "tcp://127.0.0.1:", 16) == 0);
    CHECK_EQ_INT(zmq_connect(p->dealer, p->endpoint), 0);
}

/* Blocking wait for readability, for the tests that run without a loop. */
static void wait_readable(void *sock)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};

    CHECK_EQ_INT(zmq_poll(&item, 1, 5000), 1);
}

/* ------------------------------------------------ bulk, both directions */

typedef struct {
    zsock_t *router, *dealer;
    uv_timer_t guard;
    int sent;        /* dealer -> router */
    int received;    /* at the router, in order */
    int replied;     /* router -> dealer */
    int got;         /* replies at the dealer, in order */
    int bad_order;
    int eagain;      /* times a send met the high-water mark */
    int timed_out;
} bulk_t;

static int send_seq(void *sock, const void *id, size_t idlen, uint32_t seq)
{
    const void *parts[2] = {id, &seq};
    size_t lens[2] = {idlen, sizeof(seq)};

    return id ? zsock_send_parts(sock, parts, lens, 2) : zsock_send_parts(sock, parts + 1, lens + 1, 1);
}

static void bulk_done_check(bulk_t *b);

/* Router: echo each message; when the echo meets the HWM, stop reading until
   the backlog (received - replied) is sent. */
static void router_flush(bulk_t *b)
{
    void *sock = zsock_handle(b->router);

    while (b->replied < b->received) {
        if (send_seq(sock, "D1", 2, (uint32_t)b->replied) != 0) {
            CHECK_EQ_INT(errno, EAGAIN);
            b->eagain++;
            zsock_want_write(b->router, 1);
            return;
        }
        b->replied++;
    }
    zsock_want_write(b->router, 0);
}

static void on_router(zsock_t *s, int events, void *arg)
{
    bulk_t *b = arg;
    void *sock = zsock_handle(s);

    router_flush(b);
    for (int i = 0; i < BURST && b->replied == b->received; i++) {
        zmq_msg_t parts[2];
        int n = zsock_recv_parts(sock, parts, 2);
        uint32_t seq;

        if (n == 0)
            break;
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(zmq_msg_size(&parts[0]), 2);
        CHECK(memcmp(zmq_msg_data(&parts[0]), "D1", 2) == 0);
        CHECK_EQ_INT(zmq_msg_size(&parts[1]), sizeof(seq));
        memcpy(&seq, zmq_msg_data(&parts[1]), sizeof(seq));
        if (seq != (uint32_t)b->received)
            b->bad_order++;
        b->received++;
        zmq_msg_close(&parts[0]);
        zmq_msg_close(&parts[1]);
        router_flush(b);
    }
}

static void on_dealer(zsock_t *s, int events, void *arg)
{
    bulk_t *b = arg;
    void *sock = zsock_handle(s);

    if (events & ZMQ_POLLOUT) {
        while (b->sent < NMSG) {
            if (send_seq(sock, NULL, 0, (uint32_t)b->sent) != 0) {
                CHECK_EQ_INT(errno, EAGAIN);
                b->eagain++;
                break;
            }
            b->sent++;
        }
        if (b->sent == NMSG)
            zsock_want_write(s, 0);
    }
    for (int i = 0; i < BURST && (events & ZMQ_POLLIN); i++) {
        zmq_msg_t part;
        uint32_t seq;
        int n = zsock_recv_parts(sock, &part, 1);

        if (n == 0)
            break;
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(zmq_msg_size(&part), sizeof(seq));
        memcpy(&seq, zmq_msg_data(&part), sizeof(seq));
        zmq_msg_close(&part);
        if (seq != (uint32_t)b->got)
            b->bad_order++;
        b->got++;
    }
    bulk_done_check(b);
}

static void bulk_done_check(bulk_t *b)
{
    if (b->got < NMSG)
        return;
    /* Destroy both from inside a callback: the loop must then end by itself. */
    zsock_destroy(&b->dealer);
    zsock_destroy(&b->router);
    uv_close((uv_handle_t *)&b->guard, NULL);
}

static void on_guard(uv_timer_t *t)
{
    bulk_t *b = t->data;

    b->timed_out = 1;
    zsock_destroy(&b->dealer);
    zsock_destroy(&b->router);
    uv_close((uv_handle_t *)t, NULL);
}

TEST(bulk_10000_both_ways_in_order)
{
    uv_loop_t loop;
    pair_t p;
    bulk_t b;

    memset(&b, 0, sizeof(b));
    pair_open(&p);
    /* Small HWMs so the EAGAIN paths run for sure. */
    set_int(p.dealer, ZMQ_SNDHWM, 100);
    set_int(p.router, ZMQ_SNDHWM, 100);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    b.router = zsock_new(&loop, p.router, on_router, &b);
    b.dealer = zsock_new(&loop, p.dealer, on_dealer, &b);
    CHECK(b.router && b.dealer);
    zsock_want_write(b.dealer, 1);
    uv_timer_init(&loop, &b.guard);
    b.guard.data = &b;
    uv_timer_start(&b.guard, on_guard, 15000, 0);

    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(b.timed_out, 0);
    CHECK_EQ_INT(b.sent, NMSG);
    CHECK_EQ_INT(b.received, NMSG);
    CHECK_EQ_INT(b.replied, NMSG);
    CHECK_EQ_INT(b.got, NMSG);
    CHECK_EQ_INT(b.bad_order, 0);
    fprintf(stderr, "  (high-water mark met %d times)\n", b.eagain);
    CHECK_EQ_INT(uv_loop_close(&loop), 0); /* every handle closed */
    CHECK_EQ_INT(zmq_ctx_term(p.ctx), 0);  /* zsock_destroy closed the sockets */
}

/* -------------------------------------- queued before the loop starts */

typedef struct {
    zsock_t *router;
    uv_timer_t guard;
    int got;
    int timed_out;
    uint64_t done_at;
} early_t;

static void on_early_router(zsock_t *s, int events, void *arg)
{
    early_t *e = arg;
    zmq_msg_t parts[2];
    int n;

    while ((n = zsock_recv_parts(zsock_handle(s), parts, 2)) > 0) {
        CHECK_EQ_INT(n, 2);
        zmq_msg_close(&parts[0]);
        zmq_msg_close(&parts[1]);
        e->got++;
    }
    CHECK_EQ_INT(n, 0);
    if (e->got == 5) {
        e->done_at = uv_hrtime();
        zsock_destroy(&e->router);
        uv_close((uv_handle_t *)&e->guard, NULL);
    }
}

static void on_early_guard(uv_timer_t *t)
{
    early_t *e = t->data;

    e->timed_out = 1;
    zsock_destroy(&e->router);
    uv_close((uv_handle_t *)t, NULL);
}

TEST(messages_queued_before_loop_are_delivered)
{
    uv_loop_t loop;
    early_t e;
    pair_t p;
    uint64_t start;
    int events = 0;
    size_t len = sizeof(events);

    memset(&e, 0, sizeof(e));
    pair_open(&p);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_EQ_INT(send_seq(p.dealer, NULL, 0, i), 0);
    /* Wait until all five sit in the router's queue. zmq_poll and the
       ZMQ_EVENTS read consume ZMQ_FD's edge: epoll will not wake for them. */
    wait_readable(p.router);
    usleep(200 * 1000);
    CHECK_EQ_INT(zmq_getsockopt(p.router, ZMQ_EVENTS, &events, &len), 0);
    CHECK(events & ZMQ_POLLIN);

    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    e.router = zsock_new(&loop, p.router, on_early_router, &e);
    CHECK(e.router);
    uv_timer_init(&loop, &e.guard);
    e.guard.data = &e;
    uv_timer_start(&e.guard, on_early_guard, 2000, 0);
    start = uv_hrtime();
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(e.timed_out, 0);
    CHECK_EQ_INT(e.got, 5);
    /* Not merely delivered when the guard timer woke the loop: at once. */
    CHECK((e.done_at - start) / 1000000 < 500);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    CHECK_EQ_INT(zmq_close(p.dealer), 0);
    CHECK_EQ_INT(zmq_ctx_term(p.ctx), 0);
}

/* ------------------------------- kick after receiving outside the callback */

typedef struct {
    zsock_t *router;
    void *dealer;
    uv_timer_t start, guard;
    uint64_t kicked_at, delivered_at;
    int got, timed_out, kick;
} kick_t;

static void kick_stop(kick_t *k)
{
    zsock_destroy(&k->router);
    uv_close((uv_handle_t *)&k->start, NULL);
    uv_close((uv_handle_t *)&k->guard, NULL);
}

static void on_kick_router(zsock_t *s, int events, void *arg)
{
    kick_t *k = arg;
    zmq_msg_t parts[2];

    while (zsock_recv_parts(zsock_handle(s), parts, 2) == 2) {
        zmq_msg_close(&parts[0]);
        zmq_msg_close(&parts[1]);
        k->got++;
    }
    if (k->got == 1) {
        k->delivered_at = uv_hrtime();
        kick_stop(k);
    }
}

/* As a daemon might from another callback: wait for a message and take it
   without the router's callback, which swallows the ZMQ_FD edge of a second
   one still queued. Only zsock_kick() gets that one delivered without delay. */
static void on_kick_start(uv_timer_t *t)
{
    kick_t *k = t->data;
    void *router = zsock_handle(k->router);
    zmq_msg_t parts[2];

    CHECK_EQ_INT(send_seq(k->dealer, NULL, 0, 1), 0);
    wait_readable(router);
    CHECK_EQ_INT(zsock_recv_parts(router, parts, 2), 2);
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
    CHECK_EQ_INT(send_seq(k->dealer, NULL, 0, 2), 0);
    wait_readable(router);
    k->kicked_at = uv_hrtime();
    if (k->kick)
        zsock_kick(k->router);
}

static void on_kick_guard(uv_timer_t *t)
{
    kick_t *k = t->data;

    k->timed_out = 1;
    kick_stop(k);
}

static void kick_run(int kick, uint64_t *delay_ms)
{
    uv_loop_t loop;
    kick_t k;
    pair_t p;

    memset(&k, 0, sizeof(k));
    k.kick = kick;
    pair_open(&p);
    k.dealer = p.dealer;
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    k.router = zsock_new(&loop, p.router, on_kick_router, &k);
    CHECK(k.router);
    uv_timer_init(&loop, &k.start);
    uv_timer_init(&loop, &k.guard);
    k.start.data = k.guard.data = &k;
    uv_timer_start(&k.start, on_kick_start, 50, 0);
    uv_timer_start(&k.guard, on_kick_guard, 1500, 0);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    CHECK_EQ_INT(zmq_close(p.dealer), 0);
    CHECK_EQ_INT(zmq_ctx_term(p.ctx), 0);
    CHECK_EQ_INT(k.got, 1);
    *delay_ms = (k.delivered_at - k.kicked_at) / 1000000;
}

TEST(kick_after_receiving_outside_callback)
{
    uint64_t with_kick, without_kick;

    kick_run(1, &with_kick);
    CHECK(with_kick < 200);
    /* Control: without the kick the message waits for the next wake-up (the
       1.5 s guard timer here), which shows the test sees the trap. */
    kick_run(0, &without_kick);
    CHECK(without_kick >= 1000);
}

/* ------------------------------------------------------------ helpers */

TEST(router_mandatory_unknown_peer_is_ehostunreach)
{
    pair_t p;
    const void *parts[2] = {"nobody", "x"};
    size_t lens[2] = {6, 1};

    pair_open(&p);
    errno = 0;
    CHECK_EQ_INT(zsock_send_parts(p.router, parts, lens, 2), -1);
    CHECK_EQ_INT(errno, EHOSTUNREACH);
    CHECK_EQ_INT(zmq_close(p.router), 0);
    CHECK_EQ_INT(zmq_close(p.dealer), 0);
    CHECK_EQ_INT(zmq_ctx_term(p.ctx), 0);
}

TEST(recv_parts_too_many_frames_and_next_message_intact)
{
    pair_t p;
    zmq_msg_t parts[3];
    const void *hello[1] = {"hi"};
    size_t hello_len[1] = {2};
    const void *three[4] = {"D1", "a", "b", "c"};
    const void *two[3] = {"D1", "d", "e"};
    size_t lens[4] = {2, 1, 1, 1};

    pair_open(&p);
    /* The router learns the dealer's routing id from a first message. */
    CHECK_EQ_INT(zsock_send_parts(p.dealer, hello, hello_len, 1), 0);
    wait_readable(p.router);
    CHECK_EQ_INT(zsock_recv_parts(p.router, parts, 3), 2);
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
    CHECK_EQ_INT(zsock_recv_parts(p.router, parts, 3), 0); /* nothing: EAGAIN */

    CHECK_EQ_INT(zsock_send_parts(p.router, three, lens, 4), 0); /* 3 parts at the dealer */
    CHECK_EQ_INT(zsock_send_parts(p.router, two, lens, 3), 0);   /* then 2 parts */
    wait_readable(p.dealer);
    CHECK_EQ_INT(zsock_recv_parts(p.dealer, parts, 2), -2);
    wait_readable(p.dealer);
    CHECK_EQ_INT(zsock_recv_parts(p.dealer, parts, 2), 2);
    CHECK_EQ_INT(zmq_msg_size(&parts[0]), 1);
    CHECK(memcmp(zmq_msg_data(&parts[0]), "d", 1) == 0);
    CHECK(memcmp(zmq_msg_data(&parts[1]), "e", 1) == 0);
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);

    CHECK_EQ_INT(zsock_send_parts(p.router, three, lens, 4), 0);
    wait_readable(p.dealer);
    CHECK_EQ_INT(zsock_recv_parts(p.dealer, parts, 3), 3); /* exactly fits */
    CHECK(memcmp(zmq_msg_data(&parts[2]), "c", 1) == 0);
    for (int i = 0; i < 3; i++)
        zmq_msg_close(&parts[i]);

    CHECK_EQ_INT(zmq_close(p.router), 0);
    CHECK_EQ_INT(zmq_close(p.dealer), 0);
    CHECK_EQ_INT(zmq_ctx_term(p.ctx), 0);
}

/* ------------------------------------------------ connection monitor */

typedef struct {
    void *router;
    zsock_t *mon;
    uv_timer_t guard;
    uint32_t fd_connected, fd_closed;
    int connected, closed;
} mon_t;

static void on_mon(zsock_t *zs, int events, void *arg)
{
    mon_t *m = arg;
    uint16_t event;
    uint32_t value;

    if (!(events & ZMQ_POLLIN))
        return;
    while (zsock_recv_event(zsock_handle(zs), &event, &value) == 1) {
        if (event == ZMQ_EVENT_CONNECTED) {
            m->connected++;
            m->fd_connected = value;
            zmq_close(m->router); /* the peer goes away: the connection ends */
            m->router = NULL;
        } else if (event == ZMQ_EVENT_DISCONNECTED && !m->closed++) {
            m->fd_closed = value;
            zsock_destroy(&m->mon);
            uv_close((uv_handle_t *)&m->guard, NULL);
        }
    }
}

static void on_mon_guard(uv_timer_t *t)
{
    mon_t *m = t->data;
    zsock_destroy(&m->mon);
    uv_close((uv_handle_t *)t, NULL);
}

TEST(monitor_reports_connect_and_disconnect_with_the_fd)
{
    pair_t p;
    uv_loop_t loop;
    mon_t m = {0};

    pair_open(&p);
    /* a dealer of its own, monitored before it connects */
    CHECK_EQ_INT(zmq_close(p.dealer), 0);
    p.dealer = zmq_socket(p.ctx, ZMQ_DEALER);
    CHECK(p.dealer);
    set_int(p.dealer, ZMQ_LINGER, 0);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    m.router = p.router;
    m.mon = zsock_monitor_new(&loop, p.ctx, p.dealer, "inproc://test-monitor",
                              ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED, on_mon, &m);
    CHECK(m.mon != NULL);
    /* a second monitor on the same endpoint is refused, and leaves nothing open */
    CHECK(zsock_monitor_new(&loop, p.ctx, p.router, "inproc://test-monitor", ZMQ_EVENT_ALL, on_mon, &m) == NULL);
    CHECK_EQ_INT(zmq_connect(p.dealer, p.endpoint), 0);
    uv_timer_init(&loop, &m.guard);
    m.guard.data = &m;
    uv_timer_start(&m.guard, on_mon_guard, 5000, 0);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK(m.connected >= 1);
    CHECK_EQ_INT(m.closed, 1);
    CHECK(m.fd_connected == m.fd_closed);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    if (m.router)
        zmq_close(m.router);
    CHECK_EQ_INT(zmq_close(p.dealer), 0);
    CHECK_EQ_INT(zmq_ctx_term(p.ctx), 0);
}
