/*
 * pgconn.h — one asynchronous libpq connection driven by a libuv loop.
 *
 * Invariant: nothing here ever blocks the loop. Connecting uses
 * PQconnectStartParams + PQconnectPoll on a uv_poll that follows PQsocket;
 * queries use non-blocking PQsend* + PQflush + PQconsumeInput/PQisBusy/
 * PQgetResult. Queries run one at a time, in the order they were queued.
 * Every queued query gets exactly one callback: its result, or NULL when the
 * connection went away first (the server may or may not have committed it:
 * callers design for that). A lost connection is re-made with exponential
 * back-off and jitter; after each (re)connect the init SQL (LISTEN, temp
 * tables, SET ...) runs before the owner hears "up".
 *
 * Callbacks never run from inside pgconn_query()/pgconn_copy_in(). They may
 * queue queries and may call pgconn_destroy(). pgconn_destroy() itself calls
 * the callbacks of the queries it cancels (with NULL).
 *
 * Limitation: PQconnectStartParams resolves host names synchronously; give a
 * socket directory, an IP address or hostaddr= to keep the loop free.
 */
#ifndef LT_PGCONN_H
#define LT_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>
#include <uv.h>

typedef struct pgconn pgconn_t;

/* res: the query's result, borrowed for the callback's duration. For a
   multi-statement string, the first error result if any, else the last
   result. NULL when the connection was lost (or pgconn_destroy called)
   before the query completed. */
typedef void (*pgconn_result_cb)(pgconn_t *c, PGresult *res, void *arg);
/* up=1 after connect + init sql done; up=0 when a connection that was up is
   lost (after the callbacks of its queries got NULL). */
typedef void (*pgconn_state_cb)(pgconn_t *c, int up, void *arg);
/* A NOTIFY on a channel this connection LISTENs to. */
typedef void (*pgconn_notify_cb)(pgconn_t *c, const char *channel, const char *payload,
                                 void *arg);

/* conninfo: a libpq keyword/value string or URI, checked here. on_state and
   on_notify may be NULL. Returns NULL on failure. Does not connect yet. */
pgconn_t *pgconn_new(uv_loop_t *loop, const char *conninfo, pgconn_state_cb on_state,
                     pgconn_notify_cb on_notify, void *arg);
/* SQL run after every (re)connect before on_state(up=1): e.g. "LISTEN x;
   CREATE TEMP TABLE ...; SET ...". Copied; NULL for none. If it fails, the
   connection is dropped and re-made with back-off. Returns 0 or -1. */
int pgconn_set_init_sql(pgconn_t *c, const char *sql);
/* Connect now; on failure or loss, reconnect with exponential back-off plus
   jitter between min and max ms. Returns 0, or -1 if already started. */
int pgconn_start(pgconn_t *c);
/* Defaults 200 / 10000. */
void pgconn_set_backoff(pgconn_t *c, unsigned min_ms, unsigned max_ms);
int pgconn_is_up(const pgconn_t *c);

/* Queue a query (text params, NULL entries are SQL NULL; text results). sql
   and params are copied. With nparams == 0 the simple protocol is used, so
   sql may hold several statements. Returns -1 when the connection is not up
   (the callback is then never called), else 0. */
int pgconn_query(pgconn_t *c, const char *sql, int nparams, const char *const *params,
                 pgconn_result_cb cb, void *arg) __attribute__((warn_unused_result));
/* Queue "COPY ... FROM STDIN" and the data to send (COPY text format, whole
   rows). The data is copied. The result is that of the COPY (PQcmdTuples
   gives the row count). Returns -1 when the connection is not up, else 0. */
int pgconn_copy_in(pgconn_t *c, const char *copy_sql, const char *data, size_t len,
                   pgconn_result_cb cb, void *arg) __attribute__((warn_unused_result));
/* Queries queued or running. */
size_t pgconn_queue_len(const pgconn_t *c);
/* Last connection error message (one line), "" if none: for logs and status. */
const char *pgconn_error(const pgconn_t *c);
/* Close: cancels queued queries (their callbacks get res=NULL), closes the
   connection and the uv handles; the memory goes in the last close callback,
   so the loop must run once more. Idempotent; nulls *c_p. */
void pgconn_destroy(pgconn_t **c_p);

#endif
