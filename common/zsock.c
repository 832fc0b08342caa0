/*
 * zsock.c — see zsock.h. One uv_poll on ZMQ_FD wakes the loop; the work is
 * done in a uv_check that runs after every poll phase; a uv_idle, started only
 * while ZeroMQ still has work for us, keeps the next poll phase from blocking.
 * Invariant: the idle handle is active whenever the last ZMQ_EVENTS read (or a
 * state change not yet looked at) says there is something to do.
 */
#include "zsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct zsock {
    uv_poll_t poll;  /* readability of ZMQ_FD: "re-read ZMQ_EVENTS" */
    uv_check_t check;
    uv_idle_t idle;
    void *sock;
    zsock_cb cb;
    void *arg;
    int want_write;
    int closing;       /* zsock_destroy called: touch nothing but the memory */
    int open_handles;  /* uv handles not yet closed; free at 0 */
};

/* The events the owner should hear about now (reading ZMQ_EVENTS also
   processes ZeroMQ's pending commands, which is what re-arms ZMQ_FD). */
static int zs_ready(zsock_t *s)
{
    int events = 0;
    size_t len = sizeof(events);

    if (zmq_getsockopt(s->sock, ZMQ_EVENTS, &events, &len) != 0) {
        if (errno != ETERM)
            log_warn("zsock: reading ZMQ_EVENTS: %s", zmq_strerror(errno));
        return 0;
    }
    return events & (ZMQ_POLLIN | (s->want_write ? ZMQ_POLLOUT : 0));
}

/* Both callbacks are intentionally empty: the poll only wakes the loop, the
   idle only keeps it from sleeping; zs_on_check does the work. */
static void zs_on_poll(uv_poll_t *h, int status, int events)
{
}

static void zs_on_idle(uv_idle_t *h)
{
}

static void zs_on_check(uv_check_t *h)
{
    zsock_t *s = h->data;
    int ev = zs_ready(s);

    if (ev) {
        s->cb(s, ev, s->arg);
        if (s->closing)
            return;
        ev = zs_ready(s);
    }
    if (ev)
        uv_idle_start(&s->idle, zs_on_idle);
    else
        uv_idle_stop(&s->idle);
}

static void zs_on_close(uv_handle_t *h)
{
    zsock_t *s = h->data;

    if (--s->open_handles == 0)
        free(s);
}

static void zs_close_handles(zsock_t *s)
{
    s->closing = 1;
    s->open_handles = 3;
    uv_close((uv_handle_t *)&s->poll, zs_on_close);
    uv_close((uv_handle_t *)&s->check, zs_on_close);
    uv_close((uv_handle_t *)&s->idle, zs_on_close);
}

zsock_t *zsock_new(uv_loop_t *loop, void *zmq_socket, zsock_cb cb, void *arg)
{
    int fd = -1, rc;
    size_t len = sizeof(fd);
    zsock_t *s;

    if (!loop || !zmq_socket || !cb)
        return NULL;
    if (zmq_getsockopt(zmq_socket, ZMQ_FD, &fd, &len) != 0) {
        log_error("zsock: reading ZMQ_FD: %s", zmq_strerror(errno));
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->sock = zmq_socket;
    s->cb = cb;
    s->arg = arg;
    rc = uv_poll_init(loop, &s->poll, fd);
    if (rc != 0) {
        log_error("zsock: uv_poll_init on ZMQ_FD: %s", uv_strerror(rc));
        free(s);
        return NULL;
    }
    uv_check_init(loop, &s->check);
    uv_idle_init(loop, &s->idle);
    s->poll.data = s->check.data = s->idle.data = s;

    rc = uv_poll_start(&s->poll, UV_READABLE, zs_on_poll);
    if (rc == 0)
        rc = uv_check_start(&s->check, zs_on_check);
    /* Messages may already be queued and their edge already consumed (by a
       send, a zmq_poll...): the first iteration must not sleep. */
    if (rc == 0)
        rc = uv_idle_start(&s->idle, zs_on_idle);
    if (rc != 0) {
        log_error("zsock: starting handles: %s", uv_strerror(rc));
        s->sock = NULL; /* not ours: the caller keeps it */
        zs_close_handles(s);
        return NULL;
    }
    return s;
}

void *zsock_handle(zsock_t *s)
{
    return s->sock;
}

void zsock_kick(zsock_t *s)
{
    if (s && !s->closing)
        uv_idle_start(&s->idle, zs_on_idle);
}

void zsock_want_write(zsock_t *s, int on)
{
    if (!s || s->closing)
        return;
    s->want_write = on != 0;
    zsock_kick(s);
}

void zsock_destroy(zsock_t **s_p)
{
    zsock_t *s;

    if (!s_p || !*s_p)
        return;
    s = *s_p;
    *s_p = NULL;
    if (s->closing)
        return;
    /* uv_close stops the poll (epoll_ctl DEL) at once, so ZMQ_FD is no longer
       watched when zmq_close hands it to ZeroMQ's reaper. */
    zs_close_handles(s);
    if (s->sock && zmq_close(s->sock) != 0)
        log_warn("zsock: zmq_close: %s", zmq_strerror(errno));
    s->sock = NULL;
}

int zsock_send_parts(void *sock, const void *const *parts, const size_t *lens, int nparts)
{
    if (!sock || nparts <= 0) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < nparts; i++) {
        int flags = ZMQ_DONTWAIT | (i < nparts - 1 ? ZMQ_SNDMORE : 0);

        if (zmq_send(sock, parts[i], lens[i], flags) < 0) {
            if (i > 0)
                log_error("zsock: part %d of %d refused: %s", i + 1, nparts,
                          zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}

int zsock_recv_parts(void *sock, zmq_msg_t *parts, int maxparts)
{
    zmq_msg_t extra;
    int n = 0, more;

    if (!sock || maxparts <= 0) {
        errno = EINVAL;
        return -1;
    }
    do {
        /* Parts beyond maxparts land in `extra` and are dropped. ZeroMQ
           delivers a multipart message whole, so DONTWAIT never splits it. */
        zmq_msg_t *m = n < maxparts ? &parts[n] : &extra;

        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            int err = errno;

            zmq_msg_close(m);
            for (int i = 0; i < n && i < maxparts; i++)
                zmq_msg_close(&parts[i]);
            errno = err;
            return n == 0 && err == EAGAIN ? 0 : -1;
        }
        more = zmq_msg_more(m);
        if (m == &extra)
            zmq_msg_close(&extra);
        n++;
    } while (more);

    if (n > maxparts) {
        for (int i = 0; i < maxparts; i++)
            zmq_msg_close(&parts[i]);
        return -2;
    }
    return n;
}

zsock_t *zsock_monitor_new(uv_loop_t *loop, void *zctx, void *sock, const char *endpoint, int events,
                           zsock_cb cb, void *arg)
{
    void *pair = NULL;
    zsock_t *zs = NULL;

    if (zmq_socket_monitor(sock, endpoint, events) != 0 || !(pair = zmq_socket(zctx, ZMQ_PAIR)) ||
        zmq_connect(pair, endpoint) != 0 || !(zs = zsock_new(loop, pair, cb, arg))) {
        int err = errno;
        if (pair)
            zmq_close(pair);
        errno = err;
        return NULL;
    }
    return zs;
}

int zsock_recv_event(void *pair, uint16_t *event, uint32_t *value)
{
    zmq_msg_t parts[2];
    int n, found = 0;

    while (!found && (n = zsock_recv_parts(pair, parts, 2)) != 0) {
        if (n == -1)
            break;
        if (n < 0)
            continue; /* too many frames: already discarded */
        if (n == 2 && zmq_msg_size(&parts[0]) == 6) { /* uint16 event, uint32 value */
            memcpy(event, zmq_msg_data(&parts[0]), 2);
            memcpy(value, (const char *)zmq_msg_data(&parts[0]) + 2, 4);
            found = 1;
        }
        for (int k = 0; k < n; k++)
            zmq_msg_close(&parts[k]);
    }
    return found;
}
