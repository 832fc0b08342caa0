/*
 * net.c — every ZeroMQ socket option lienthongd relies on, in one place, set
 * explicitly (ARCHITECTURE §5): a message-size cap so a peer cannot make us
 * allocate, high-water marks, heartbeats that detect dead links, reconnect
 * back-off, no linger at shutdown (the outbox, not ZeroMQ, keeps data), and
 * ROUTER_MANDATORY so a reply to a vanished peer fails loudly instead of silently.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"

static int set_int(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof(value)) != 0) {
        log_error("zmq_setsockopt %s=%d: %s", name, value, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int net_setup_socket(lt_daemon_t *d, void *sock, int type)
{
    const lt_config_t *c = d->cfg;
    int64_t maxmsg = c->max_message_bytes;

    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0) {
        log_error("zmq_setsockopt ZMQ_MAXMSGSIZE: %s", zmq_strerror(errno));
        return -1;
    }
    if (set_int(sock, ZMQ_LINGER, 0, "ZMQ_LINGER") || set_int(sock, ZMQ_SNDHWM, c->hwm, "ZMQ_SNDHWM") ||
        set_int(sock, ZMQ_RCVHWM, c->hwm, "ZMQ_RCVHWM") ||
        set_int(sock, ZMQ_HEARTBEAT_IVL, c->heartbeat_ivl_ms, "ZMQ_HEARTBEAT_IVL") ||
        set_int(sock, ZMQ_HEARTBEAT_TIMEOUT, c->heartbeat_timeout_ms, "ZMQ_HEARTBEAT_TIMEOUT") ||
        set_int(sock, ZMQ_HEARTBEAT_TTL, c->heartbeat_timeout_ms, "ZMQ_HEARTBEAT_TTL") ||
        set_int(sock, ZMQ_RECONNECT_IVL, c->reconnect_min_ms, "ZMQ_RECONNECT_IVL") ||
        set_int(sock, ZMQ_RECONNECT_IVL_MAX, c->reconnect_max_ms, "ZMQ_RECONNECT_IVL_MAX"))
        return -1;
    if (type == ZMQ_ROUTER && set_int(sock, ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY"))
        return -1;
    /* A DEALER queues nothing for a parent it is not connected to: a send fails
       with EAGAIN and the rows wait in the outbox, on disk. */
    if (type == ZMQ_DEALER && set_int(sock, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE"))
        return -1;
    return 0;
}

uint64_t lt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t lt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
