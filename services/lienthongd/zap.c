/*
 * zap.c — see zap.h. A ZMQ_REP socket driven by zsock on the loop: each
 * request (version, request id, domain, address, routing id, mechanism,
 * credentials) gets exactly one reply, so the REP socket never stalls; a
 * malformed request is answered 500 and the handshake behind it fails.
 */
#include "zap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"
#include "log.h"
#include "zsock.h"

#define ZAP_MAX_PARTS 8
#define RECV_BURST 64
#define LOG_EVERY_MS 1000 /* refusals are always counted, logged at most once a second per key */

struct zap {
    lt_daemon_t *d;
    zsock_t *zs;
    char *path;
    lt_allowlist_t *list;
    char last_refused[LT_KEY_Z85_LEN + 1];
    uint64_t last_log_mono, suppressed;
};

static void reply(void *sock, const zmq_msg_t *reqid, const char *status, const char *text, const char *user,
                  const char *key_z85)
{
    /* metadata: one property, name-length byte, name, 4-byte big-endian length, value */
    uint8_t meta[1 + sizeof(ZAP_KEY_PROPERTY) + 4 + LT_KEY_Z85_LEN];
    size_t mlen = 0, nlen = strlen(ZAP_KEY_PROPERTY);
    if (key_z85) {
        meta[mlen++] = (uint8_t)nlen;
        memcpy(meta + mlen, ZAP_KEY_PROPERTY, nlen);
        mlen += nlen;
        meta[mlen++] = 0;
        meta[mlen++] = 0;
        meta[mlen++] = 0;
        meta[mlen++] = LT_KEY_Z85_LEN;
        memcpy(meta + mlen, key_z85, LT_KEY_Z85_LEN);
        mlen += LT_KEY_Z85_LEN;
    }
    const void *parts[6] = {"1.0", reqid ? zmq_msg_data((zmq_msg_t *)reqid) : "", status, text, user, meta};
    size_t lens[6] = {3, reqid ? zmq_msg_size((zmq_msg_t *)reqid) : 0, strlen(status), strlen(text),
                      strlen(user), mlen};
    if (zsock_send_parts(sock, parts, lens, 6) != 0)
        log_error("ZAP: cannot answer an authentication request: %s", zmq_strerror(errno));
}

static int part_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/* A printable copy of a frame (an address), for logs. */
static void part_text(zmq_msg_t *m, char *out, size_t cap)
{
    size_t n = zmq_msg_size(m), k = 0;
    const unsigned char *p = zmq_msg_data(m);
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        out[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    out[k] = '\0';
}

static void refused(zap_t *z, const char *key_z85, const char *address, const char *why)
{
    uint64_t now = lt_mono_ms();
    z->d->stats.down_auth_refused++;
    if (strcmp(key_z85, z->last_refused) == 0 && now - z->last_log_mono < LOG_EVERY_MS) {
        z->suppressed++;
        return;
    }
    if (z->suppressed)
        log_warn("ZAP: %" PRIu64 " more refusals of key %s not logged", z->suppressed, z->last_refused);
    log_warn("ZAP: refused a child connection from %s, CURVE key %s: %s", address, key_z85, why);
    snprintf(z->last_refused, sizeof(z->last_refused), "%s", key_z85);
    z->last_log_mono = now;
    z->suppressed = 0;
}

static void handle(zap_t *z, void *sock, zmq_msg_t *p, int n)
{
    char address[64] = "?", key_z85[LT_KEY_Z85_LEN + 1] = "";

    if (n < 6 || !part_is(&p[0], "1.0")) {
        log_warn("ZAP: malformed authentication request (%d parts); refused", n);
        z->d->stats.down_auth_refused++;
        reply(sock, n >= 2 ? &p[1] : NULL, "500", "malformed request", "", NULL);
        return;
    }
    part_text(&p[3], address, sizeof(address));
    if (!part_is(&p[5], "CURVE") || n != 7 || zmq_msg_size(&p[6]) != LT_KEY_BYTES) {
        char mech[16];
        part_text(&p[5], mech, sizeof(mech));
        refused(z, mech, address, "only CURVE is accepted on this socket");
        reply(sock, &p[1], "400", "CURVE required", "", NULL);
        return;
    }
    if (!part_is(&p[2], ZAP_DOMAIN)) {
        refused(z, "-", address, "wrong ZAP domain");
        reply(sock, &p[1], "400", "wrong domain", "", NULL);
        return;
    }
    const uint8_t *key = zmq_msg_data(&p[6]);
    if (!zmq_z85_encode(key_z85, key, LT_KEY_BYTES)) {
        reply(sock, &p[1], "500", "cannot encode the key", "", NULL);
        return;
    }
    const char *unit = lt_allowlist_find(z->list, key);
    if (!unit) {
        refused(z, key_z85, address, "key not in the allow-list (security.children_keys_file)");
        reply(sock, &p[1], "400", "key not allowed", "", NULL);
        return;
    }
    z->d->stats.down_auth_accepted++;
    log_debug("ZAP: child %s authenticated from %s", unit, address);
    reply(sock, &p[1], "200", "OK", unit, key_z85);
}

static void on_request(zsock_t *zs, int events, void *arg)
{
    zap_t *z = arg;
    zmq_msg_t parts[ZAP_MAX_PARTS];

    if (!(events & ZMQ_POLLIN))
        return;
    for (int i = 0; i < RECV_BURST; i++) {
        void *sock = zsock_handle(zs);
        int n = zsock_recv_parts(sock, parts, ZAP_MAX_PARTS);
        if (n == 0)
            break;
        if (n == -1) {
            log_warn("ZAP: receive failed: %s", zmq_strerror(errno));
            break;
        }
        if (n == -2) { /* more parts than any mechanism sends; a REP still owes a reply */
            log_warn("ZAP: authentication request with too many parts; refused");
            z->d->stats.down_auth_refused++;
            reply(sock, NULL, "500", "malformed request", "", NULL);
            continue;
        }
        handle(z, sock, parts, n);
        for (int k = 0; k < n; k++)
            zmq_msg_close(&parts[k]);
    }
}

static lt_allowlist_t *load(const char *path)
{
    char err[512];
    lt_allowlist_t *l = lt_allowlist_load(path, err, sizeof(err));
    if (!l)
        log_error("%s", err);
    return l;
}

zap_t *zap_new(lt_daemon_t *d, const char *allowlist_path)
{
    zap_t *z = calloc(1, sizeof(*z));
    void *sock = NULL;
    char bound[256] = "";
    size_t blen = sizeof(bound);
    int linger = 0;

    if (!z || !(z->path = strdup(allowlist_path)))
        goto fail;
    z->d = d;
    if (!(z->list = load(z->path)))
        goto fail;
    if (!(sock = zmq_socket(d->zctx, ZMQ_REP)) ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0) {
        log_error("ZAP: cannot create the handler socket: %s", zmq_strerror(errno));
        goto fail;
    }
    /* Bound, or no start: without a handler every CURVE key would be let in. */
    if (zmq_bind(sock, ZAP_ENDPOINT) != 0 || zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &blen) != 0 ||
        strcmp(bound, ZAP_ENDPOINT) != 0) {
        log_error("ZAP: cannot bind the authentication handler at %s (%s); without it CURVE would "
                  "authenticate nobody, so the children's socket is not opened",
                  ZAP_ENDPOINT, zmq_strerror(errno));
        goto fail;
    }
    if (!(z->zs = zsock_new(d->loop, sock, on_request, z)))
        goto fail;
    log_info("ZAP: authentication handler bound; %zu child key%s allowed (%s)", lt_allowlist_count(z->list),
             lt_allowlist_count(z->list) == 1 ? "" : "s", z->path);
    return z;
fail:
    if (sock)
        zmq_close(sock);
    if (z) {
        lt_allowlist_destroy(&z->list);
        free(z->path);
        free(z);
    }
    return NULL;
}

int zap_reload(zap_t *z)
{
    lt_allowlist_t *l = load(z->path);
    if (!l) {
        log_error("ZAP: keeping the running allow-list (%zu keys)", lt_allowlist_count(z->list));
        return -1;
    }
    lt_allowlist_destroy(&z->list);
    z->list = l;
    log_info("ZAP: allow-list reloaded: %zu child key%s allowed", lt_allowlist_count(l),
             lt_allowlist_count(l) == 1 ? "" : "s");
    return 0;
}

const char *zap_unit_of(const zap_t *z, const char *key_z85)
{
    uint8_t key[LT_KEY_BYTES];
    if (!z || lt_keys_decode(key_z85, key) != 0)
        return NULL;
    return lt_allowlist_find(z->list, key);
}

void zap_destroy(zap_t **z_p)
{
    zap_t *z = z_p ? *z_p : NULL;
    if (!z)
        return;
    zsock_destroy(&z->zs);
    lt_allowlist_destroy(&z->list);
    free(z->path);
    free(z);
    *z_p = NULL;
}
