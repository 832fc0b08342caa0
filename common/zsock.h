/*
 * zsock.h — a ZeroMQ socket driven by a libuv loop, without ever blocking it.
 *
 * ZMQ_FD is edge-triggered: it only says "re-read ZMQ_EVENTS", and any
 * zmq_send/zmq_recv/ZMQ_EVENTS read may consume that edge while messages stay
 * queued inside ZeroMQ. Invariant kept here: ZMQ_EVENTS is re-read after every
 * callback and on every loop iteration, and the loop is kept from sleeping in
 * epoll (a uv_idle) for as long as the socket is readable, or writable while
 * the owner wants to write. So no queued message waits for a wake-up that will
 * never come.
 *
 * The callback runs from a uv_check handle. It receives with ZMQ_DONTWAIT and
 * may stop early (fairness): it is called again on the next loop iteration.
 * After sending or receiving on a socket anywhere but in its own callback
 * (a timer, a database callback, another socket's callback), call
 * zsock_kick() on it.
 */
#ifndef LT_ZSOCK_H
#define LT_ZSOCK_H

#include <stddef.h>
#include <uv.h>
#include <zmq.h>

typedef struct zsock zsock_t;

/* events: ZMQ_POLLIN and/or ZMQ_POLLOUT (the latter only while wanted). The
   callback may call zsock_destroy() on its own socket. */
typedef void (*zsock_cb)(zsock_t *s, int events, void *arg);

/* Takes ownership of zmq_socket (closed by zsock_destroy). Returns NULL on
   failure, in which case the socket stays the caller's. */
zsock_t *zsock_new(uv_loop_t *loop, void *zmq_socket, zsock_cb cb, void *arg);
/* The zmq socket, for zmq_send/zmq_recv by the owner. */
void *zsock_handle(zsock_t *s);
/* Ask for (on=1) or stop asking for (on=0) ZMQ_POLLOUT callbacks. */
void zsock_want_write(zsock_t *s, int on);
/* Schedule an events re-check: call after sending or receiving on the socket
   outside its own callback. */
void zsock_kick(zsock_t *s);
/* Stops the handles, closes the uv_poll, then zmq_close()s the socket (LINGER
   as set by the owner); the memory goes in the last close callback, so the
   loop must run once more. zmq_ctx_term() may be called right after.
   Idempotent; nulls *s_p. */
void zsock_destroy(zsock_t **s_p);

/* Send one multipart message with ZMQ_DONTWAIT (ZMQ_SNDMORE on all but the
   last part). Returns 0, or -1 with errno: EAGAIN at the high-water mark,
   EHOSTUNREACH for an unknown ROUTER peer with ZMQ_ROUTER_MANDATORY. ZeroMQ
   checks both on the first part, so a refused message sends nothing. */
int zsock_send_parts(void *sock, const void *const *parts, const size_t *lens, int nparts)
    __attribute__((warn_unused_result));

/* Receive one multipart message with ZMQ_DONTWAIT into parts[0..maxparts-1]
   (initialised here). Returns the number of parts (the caller closes them),
   0 when nothing is queued (EAGAIN), -1 on error, or -2 when the message had
   more than maxparts parts: it is drained and discarded (the caller logs
   "too many frames"). On 0, -1 and -2 there is nothing to close. */
int zsock_recv_parts(void *sock, zmq_msg_t *parts, int maxparts)
    __attribute__((warn_unused_result));

/* A socket monitor of sock (zmq_socket_monitor for events, published on the inproc
   endpoint), read through a PAIR socket of zctx that the returned zsock owns; cb
   gets its readability. NULL (errno set) on failure, with nothing left open. */
zsock_t *zsock_monitor_new(uv_loop_t *loop, void *zctx, void *sock, const char *endpoint, int events,
                           zsock_cb cb, void *arg);
/* The next event queued on a monitor's PAIR socket. Returns 1 with *event and
   *value (the fd for connection events, an errno or protocol error for failed
   handshakes), or 0 when none is queued; frames that are not an event are
   skipped. */
int zsock_recv_event(void *pair, uint16_t *event, uint32_t *value) __attribute__((warn_unused_result));

#endif
