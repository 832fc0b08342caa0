/*
 * net.c — every ZeroMQ socket option lienthongd relies on, in one place, set
 * explicitly (ARCHITECTURE §5): a message-size cap so a peer cannot make us
 * allocate, high-water marks, heartbeats that detect dead links, reconnect
 * back-off, no linger at shutdown (the outbox, not ZeroMQ, keeps data), and
 * ROUTER_MANDATORY so a reply to a vanished peer fails loudly instead of silently.
 * Links are CURVE-encrypted and authenticated unless security.mode = plaintext.
 *
 * Reconnects are spread out: each socket's first reconnect delay is drawn at random
 * between net.reconnect_min_ms and half as much again (libzmq adds its own jitter and
 * doubles the delay up to net.reconnect_max_ms), so children cut off together do not
 * come back in step; a connect attempt that nobody answers (a cable out drops SYNs)
 * is abandoned after the heartbeat timeout instead of the kernel's two minutes.
 *
 * net_tcp_read() lets the link code tell a slow link from a dead one: the kernel's
 * counters of bytes delivered and received on the connection move on a slow link.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "zap.h"

static int set_int(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof(value)) != 0) {
        log_error("zmq_setsockopt %s=%d: %s", name, value, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int set_key(void *sock, int opt, const char *z85, const char *name)
{
    uint8_t key[LT_KEY_BYTES];
    int rc = 0;
    if (lt_keys_decode(z85, key) != 0 || zmq_setsockopt(sock, opt, key, sizeof(key)) != 0) {
        log_error("zmq_setsockopt %s: %s", name, zmq_strerror(errno));
        rc = -1;
    }
    memset(key, 0, sizeof(key));
    return rc;
}

/* CURVE: this node's key pair (checked to be one pair) and, for a DEALER, the
   parent's public key; a ROUTER is the server of the ZAP domain. */
static int setup_curve(const lt_config_t *c, void *sock, int type)
{
    char secret[LT_KEY_Z85_LEN + 1], public[LT_KEY_Z85_LEN + 1], derived[LT_KEY_Z85_LEN + 1];
    char server[LT_KEY_Z85_LEN + 1], err[512];
    int one = 1, rc = -1;

    if (lt_keys_read(c->secret_key_file, 1, secret, err, sizeof(err)) != 0 ||
        lt_keys_read(c->public_key_file, 0, public, err, sizeof(err)) != 0) {
        log_error("security: %s", err);
        goto out;
    }
    if (lt_keys_public_of(secret, derived) != 0 || strcmp(derived, public) != 0) {
        log_error("security: the public key in %s does not belong to the secret key in %s", c->public_key_file,
                  c->secret_key_file);
        goto out;
    }
    if (type == ZMQ_ROUTER) {
        if (set_int(sock, ZMQ_CURVE_SERVER, one, "ZMQ_CURVE_SERVER") ||
            set_key(sock, ZMQ_CURVE_SECRETKEY, secret, "ZMQ_CURVE_SECRETKEY") ||
            zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0) {
            log_error("security: cannot make the children's socket a CURVE server: %s", zmq_strerror(errno));
            goto out;
        }
    } else {
        if (lt_keys_read(c->parent_public_key_file, 0, server, err, sizeof(err)) != 0) {
            log_error("security: %s", err);
            goto out;
        }
        if (set_key(sock, ZMQ_CURVE_SERVERKEY, server, "ZMQ_CURVE_SERVERKEY") ||
            set_key(sock, ZMQ_CURVE_PUBLICKEY, public, "ZMQ_CURVE_PUBLICKEY") ||
            set_key(sock, ZMQ_CURVE_SECRETKEY, secret, "ZMQ_CURVE_SECRETKEY"))
            goto out;
    }
    rc = 0;
out:
    memset(secret, 0, sizeof(secret));
    return rc;
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
        set_int(sock, ZMQ_HEARTBEAT_TTL, c->heartbeat_timeout_ms, "ZMQ_HEARTBEAT_TTL"))
        return -1;
    /* per-socket jitter on the first reconnect delay; the maximum stays the configured one */
    int ivl = c->reconnect_min_ms + rand() % (c->reconnect_min_ms / 2 + 1);
    if (set_int(sock, ZMQ_RECONNECT_IVL, ivl, "ZMQ_RECONNECT_IVL") ||
        set_int(sock, ZMQ_RECONNECT_IVL_MAX, ivl > c->reconnect_max_ms ? ivl : c->reconnect_max_ms,
                "ZMQ_RECONNECT_IVL_MAX"))
        return -1;
    if (type == ZMQ_DEALER && set_int(sock, ZMQ_CONNECT_TIMEOUT, c->heartbeat_timeout_ms, "ZMQ_CONNECT_TIMEOUT"))
        return -1;
    if (type == ZMQ_ROUTER && set_int(sock, ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY"))
        return -1;
    /* A DEALER queues nothing for a parent it is not connected to: a send fails
       with EAGAIN and the rows wait in the outbox, on disk. */
    if (type == ZMQ_DEALER && set_int(sock, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE"))
        return -1;
    if (c->security_mode == LT_SECURITY_CURVE && setup_curve(c, sock, type) != 0)
        return -1;
    return 0;
}

/* The kernel's struct tcp_info (linux/tcp.h, a stable ABI) goes on past the part glibc
   declares; the byte counters come right after two pacing rates. */
struct lt_tcp_info {
    struct tcp_info base;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
};
_Static_assert(offsetof(struct lt_tcp_info, bytes_acked) == 120, "struct tcp_info layout");

int net_tcp_read(int fd, net_tcp_t *t)
{
    struct lt_tcp_info ti;
    socklen_t len = sizeof(ti);
    int proto = 0, outq = 0;
    socklen_t plen = sizeof(proto);

    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) != 0 || proto != IPPROTO_TCP)
        return -1;
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.base.tcpi_state != TCP_ESTABLISHED ||
        len < sizeof(ti) || ioctl(fd, SIOCOUTQ, &outq) != 0)
        return -1;
    t->delivered = ti.bytes_acked;
    t->received = ti.bytes_received;
    t->queued = outq > 0 ? (uint64_t)outq : 0;
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
