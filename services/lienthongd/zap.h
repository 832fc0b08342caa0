/*
 * zap.h — the parent's ZeroMQ authentication handler (ZAP, RFC 27), served on
 * the daemon's libuv loop.
 *
 * Invariants: the handler is bound to inproc://zeromq.zap.01 before the
 * children's ROUTER is bound, or the daemon does not start (libzmq 4.3.4 lets
 * every CURVE key in when no handler is bound). A key is accepted (200) only
 * when the allow-list binds it to a unit; the reply's User-Id is that unit
 * and its metadata carries the key (ZAP_KEY_PROPERTY), so every message says
 * which unit and which key it came from. Everything else gets 400, a counter
 * and a log line.
 */
#ifndef LT_ZAP_H
#define LT_ZAP_H

#include "daemon.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "lienthong"
/* The metadata property (on every received message) holding the peer's z85 key. */
#define ZAP_KEY_PROPERTY "X-Curve-Key"

typedef struct zap zap_t;

/* Load the allow-list at path and bind the handler on d's ZeroMQ context.
   NULL (logged) when the list is unreadable or the handler cannot be bound. */
zap_t *zap_new(lt_daemon_t *d, const char *allowlist_path);
/* SIGHUP: read the allow-list again; a bad file leaves the running list in
   place (logged). 0 or -1. */
int zap_reload(zap_t *z);
/* The unit a z85 key is bound to by the current allow-list, or NULL: a key
   removed from the list by a reload is refused on the next message, without
   waiting for the connection to end. */
const char *zap_unit_of(const zap_t *z, const char *key_z85);
/* Close the handler (idempotent; nulls *z_p). */
void zap_destroy(zap_t **z_p);

#endif
