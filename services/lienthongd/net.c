/*
 * net.c — every ZeroMQ socket option lienthongd relies on, in one place, set
 * explicitly (ARCHITECTURE §5): a message-size cap so a peer cannot make us
 * allocate, high-water marks, heartbeats that detect dead links, reconnect
 * back-off, no linger at shutdown (the outbox, not ZeroMQ, keeps data), and
 * ROUTER_MANDATORY so a reply to a vanished peer fails loudly instead of silently.
 * Links are CURVE-encrypted and authenticated unless security.mode = plaintext.
 */
#include <errno.h>
#include <string.h>
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
    if (c->security_mode == LT_SECURITY_CURVE && setup_curve(c, sock, type) != 0)
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
