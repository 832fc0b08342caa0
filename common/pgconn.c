/*
 * pgconn.c — see pgconn.h.
 *
 * States: IDLE (not started) -> CONNECTING (PQconnectPoll) -> INIT (init SQL
 * in flight) -> UP; any error -> BROKEN -> (timer, fresh stack) -> DOWN, with
 * the queries failed -> (back-off timer) -> CONNECTING. CLOSED after destroy.
 *
 * Invariants:
 * - A user callback may destroy us or queue more: after each one, code that
 *   was working on the connection checks `epoch`, bumped on every break and on
 *   destroy, and stops if it moved. Memory is freed only in the last close
 *   callback, so reading c->epoch after a callback is always safe.
 * - Losing a connection never runs callbacks re-entrantly: it is noted
 *   (BROKEN) and handled from the timer.
 * - The uv_poll always watches the socket libpq uses now. While connecting,
 *   libpq may close its socket and open another, possibly with the same
 *   number, so each step restarts the poll (a fresh epoll registration), and
 *   a new number gets a new handle: two slots, one closing while the other
 *   is in use.
 */
#include "pgconn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define PGCONN_CONNECT_TIMEOUT_MS 15000 /* connect + init SQL */
#define PGCONN_COPY_CHUNK (64 * 1024)
#define PGCONN_MAX_PARAMS 65535

enum pg_state { PG_IDLE, PG_CONNECTING, PG_INIT, PG_UP, PG_BROKEN, PG_DOWN, PG_CLOSED };
enum pg_copy { COPY_NONE, COPY_SENDING, COPY_RECEIVING };

typedef struct pg_query {
    struct pg_query *next;
    pgconn_result_cb cb;
    void *arg;
    int user;         /* counted in queue_len (the init SQL is not) */
    char *sql;        /* in the same allocation as the query */
    int nparams;
    char **params;    /* likewise */
    PGresult *result; /* the one kept so far */
    int copy;         /* enum pg_copy */
    char *data;       /* COPY FROM STDIN data (own allocation) */
    size_t len, off;
    int data_sent;    /* all data sent and PQputCopyEnd done */
    const char *copy_refusal; /* COPY FROM STDIN without data: end it with this */
} pg_query_t;

struct pgconn {
    uv_loop_t *loop;
    uv_timer_t timer; /* connect timeout, break handling, back-off */
    uv_poll_t poll[2];
    int poll_open[2]; /* initialised and not yet closed */
    int active;       /* slot watching the socket, -1 for none */
    int poll_fd;
    int poll_events;

    PGconn *conn;
    char *conninfo;
    char *init_sql;
    int state;
    unsigned epoch;
    int reported_up;  /* on_state(1) was called for this connection */
    int write_wait;   /* libpq has output to flush, or COPY data to send */
    int timer_closed;

    pg_query_t *inflight;
    pg_query_t *head, *tail;
    size_t nqueued;

    pgconn_state_cb on_state;
    pgconn_notify_cb on_notify;
    void *arg;

    unsigned min_ms, max_ms, attempts;
    uint32_t rng;
    char err[256];
    char logged_err[256]; /* last connect failure logged at warn */
    char label[128];      /* "db@host:port" for logs, no password */
};

static void pg_on_io(uv_poll_t *h, int status, int events);
static void pg_on_timer(uv_timer_t *t);

/* -------------------------------------------------------------- queries */

static pg_query_t *pg_query_make(const char *sql, int nparams, const char *const *params,
                                 pgconn_result_cb cb, void *arg)
{
    size_t size = sizeof(pg_query_t) + (size_t)nparams * sizeof(char *) + strlen(sql) + 1;
    pg_query_t *q;
    char *p;

    for (int i = 0; i < nparams; i++)
        if (params[i])
            size += strlen(params[i]) + 1;
    q = calloc(1, size);
    if (!q)
        return NULL;
    q->cb = cb;
    q->arg = arg;
    q->nparams = nparams;
    q->params = (char **)(q + 1);
    p = (char *)(q->params + nparams);
    for (int i = 0; i < nparams; i++) {
        if (params[i]) {
            size_t n = strlen(params[i]) + 1;

            q->params[i] = memcpy(p, params[i], n);
            p += n;
        }
    }
    q->sql = strcpy(p, sql);
    return q;
}

static void pg_query_free(pg_query_t *q)
{
    PQclear(q->result);
    free(q->data);
    free(q);
}

static int pg_is_error(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    return st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
}

/* Keep the first error, else the last result. */
static void pg_keep(pg_query_t *q, PGresult *r)
{
    if (q->result && pg_is_error(q->result)) {
        PQclear(r);
        return;
    }
    PQclear(q->result);
    q->result = r;
}

/* Every query waiting or running gets its callback with NULL. */
static void pg_fail_all(pgconn_t *c)
{
    pg_query_t *list = c->inflight;

    if (list)
        list->next = c->head;
    else
        list = c->head;
    c->inflight = c->head = c->tail = NULL;
    c->nqueued = 0;
    while (list) {
        pg_query_t *q = list;

        list = q->next;
        if (q->cb)
            q->cb(c, NULL, q->arg);
        pg_query_free(q);
    }
}

/* ------------------------------------------------------ socket watching */

static void pg_on_poll_close(uv_handle_t *h);

static void pg_poll_close(pgconn_t *c)
{
    if (c->active < 0)
        return;
    uv_close((uv_handle_t *)&c->poll[c->active], pg_on_poll_close);
    c->active = -1;
}

/* Watch PQsocket for `events`. `fresh`: drop and redo the epoll registration
   even if the number is unchanged (libpq may have a new socket). */
static int pg_watch(pgconn_t *c, int events, int fresh)
{
    int fd = PQsocket(c->conn), slot, rc;

    if (fd < 0)
        return -1;
    if (c->active >= 0 && c->poll_fd != fd)
        pg_poll_close(c);
    if (c->active >= 0) {
        uv_poll_t *p = &c->poll[c->active];

        if (!fresh && c->poll_events == events)
            return 0;
        if (fresh)
            uv_poll_stop(p);
        c->poll_events = events;
        return uv_poll_start(p, events, pg_on_io);
    }
    slot = !c->poll_open[0] ? 0 : !c->poll_open[1] ? 1 : -1;
    if (slot < 0) /* both closing: cannot happen with one change per poll callback */
        return -1;
    rc = uv_poll_init(c->loop, &c->poll[slot], fd);
    if (rc != 0)
        return rc;
    c->poll[slot].data = c;
    c->poll_open[slot] = 1;
    c->active = slot;
    c->poll_fd = fd;
    c->poll_events = events;
    return uv_poll_start(&c->poll[slot], events, pg_on_io);
}

/* ----------------------------------------------------- state changes */

/* Copy a libpq message as one line: they span lines and end in "\n". */
static void pg_oneline(char *dst, size_t size, const char *src)
{
    size_t n = 0;

    for (const char *p = src ? src : ""; *p && n < size - 1; p++) {
        char ch = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;

        if (ch == ' ' && (n == 0 || dst[n - 1] == ' '))
            continue;
        dst[n++] = ch;
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

/* Note the connection as unusable; the timer handles the rest from a fresh
   stack (see pg_on_timer). */
static void pg_break(pgconn_t *c, const char *why)
{
    if (c->state != PG_CONNECTING && c->state != PG_INIT && c->state != PG_UP)
        return;
    pg_oneline(c->err, sizeof(c->err), why);
    c->state = PG_BROKEN;
    c->epoch++;
    if (c->active >= 0)
        uv_poll_stop(&c->poll[c->active]);
    uv_timer_start(&c->timer, pg_on_timer, 0, 0);
}

static unsigned pg_backoff(pgconn_t *c)
{
    uint64_t base = c->min_ms ? c->min_ms : 1;
    uint32_t x = c->rng;
    unsigned delay;

    for (unsigned i = 0; i < c->attempts && base < c->max_ms; i++)
        base *= 2;
    if (base > c->max_ms)
        base = c->max_ms;
    x ^= x << 13; /* xorshift32 */
    x ^= x >> 17;
    x ^= x << 5;
    c->rng = x;
    delay = (unsigned)(base / 2 + x % (base - base / 2 + 1)); /* "equal jitter" */
    if (delay < c->min_ms)
        delay = c->min_ms;
    c->attempts++;
    return delay ? delay : 1; /* >= 1 ms: the next attempt is a later iteration */
}

/* BROKEN -> DOWN: drop the connection, fail its queries, schedule the retry. */
static void pg_lost(pgconn_t *c)
{
    int was_up = c->reported_up;
    unsigned delay = pg_backoff(c);

    pg_poll_close(c); /* before PQfinish closes the socket */
    PQfinish(c->conn);
    c->conn = NULL;
    c->state = PG_DOWN;
    c->reported_up = 0;
    c->write_wait = 0;
    if (was_up) {
        log_info("pgconn: connection to %s lost: %s", c->label, c->err);
        snprintf(c->logged_err, sizeof(c->logged_err), "%s", c->err);
    } else if (strcmp(c->err, c->logged_err) != 0) {
        log_warn("pgconn: cannot connect to %s: %s (retrying)", c->label, c->err);
        snprintf(c->logged_err, sizeof(c->logged_err), "%s", c->err);
    } else {
        log_debug("pgconn: cannot connect to %s: %s (retry in %u ms)", c->label, c->err, delay);
    }
    uv_timer_start(&c->timer, pg_on_timer, delay, 0);

    pg_fail_all(c);
    if (was_up && c->state == PG_DOWN && c->on_state)
        c->on_state(c, 0, c->arg);
}

static void pg_run_next(pgconn_t *c);

static void pg_up(pgconn_t *c)
{
    unsigned epoch = c->epoch;

    uv_timer_stop(&c->timer);
    c->state = PG_UP;
    c->reported_up = 1;
    c->attempts = 0;
    c->logged_err[0] = '\0';
    log_info("pgconn: connected to %s (backend pid %d)", c->label, PQbackendPID(c->conn));
    if (c->on_state)
        c->on_state(c, 1, c->arg);
    if (c->epoch == epoch)
        pg_run_next(c);
}

static void pg_init_done(pgconn_t *c, PGresult *res, void *arg)
{
    if (!res || c->state != PG_INIT)
        return; /* lost or closed: handled there */
    if (pg_is_error(res)) {
        char why[300];

        /* logged by pg_lost, once per distinct message */
        snprintf(why, sizeof(why), "init sql failed: %s", PQresultErrorMessage(res));
        pg_break(c, why);
        return;
    }
    pg_up(c);
}

/* ------------------------------------------------------------ sending */

/* Flush libpq's output; wait for writability while some is left. */
static void pg_flush(pgconn_t *c)
{
    int r = PQflush(c->conn);

    if (r < 0) {
        pg_break(c, PQerrorMessage(c->conn));
        return;
    }
    c->write_wait = r == 1;
    if (pg_watch(c, UV_READABLE | (r == 1 ? UV_WRITABLE : 0), 0) != 0)
        pg_break(c, "cannot watch the connection socket");
}

/* Feed COPY data in chunks, flushing before each one so that at most one
   chunk waits in libpq's buffer (PQputCopyData would rather grow its buffer
   than say "wait"), then end the COPY. */
static void pg_send_copy(pgconn_t *c)
{
    pg_query_t *q = c->inflight;
    int r = 1;

    while (!q->data_sent) {
        r = PQflush(c->conn);
        if (r != 0)
            break;
        if (q->copy_refusal || q->off == q->len) {
            r = PQputCopyEnd(c->conn, q->copy_refusal);
            q->data_sent = r == 1;
        } else {
            size_t n = q->len - q->off;

            if (n > PGCONN_COPY_CHUNK)
                n = PGCONN_COPY_CHUNK;
            r = PQputCopyData(c->conn, q->data + q->off, (int)n);
            if (r == 1)
                q->off += n;
        }
        if (r != 1)
            break;
    }
    if (r < 0) {
        pg_break(c, PQerrorMessage(c->conn));
        return;
    }
    if (!q->data_sent) { /* libpq's buffer is full: wait for the socket */
        c->write_wait = 1;
        if (pg_watch(c, UV_READABLE | UV_WRITABLE, 0) != 0)
            pg_break(c, "cannot watch the connection socket");
        return;
    }
    q->copy = COPY_NONE;
    free(q->data);
    q->data = NULL;
    pg_flush(c);
}

static void pg_send(pgconn_t *c, pg_query_t *q)
{
    int ok;

    if (q->nparams > 0)
        ok = PQsendQueryParams(c->conn, q->sql, q->nparams, NULL,
                               (const char *const *)q->params, NULL, NULL, 0);
    else
        ok = PQsendQuery(c->conn, q->sql);
    if (!ok) {
        pg_break(c, PQerrorMessage(c->conn));
        return;
    }
    pg_flush(c);
}

static void pg_run_next(pgconn_t *c)
{
    pg_query_t *q = c->head;

    if (c->state != PG_UP || c->inflight || !q)
        return;
    c->head = q->next;
    if (!c->head)
        c->tail = NULL;
    q->next = NULL;
    c->inflight = q;
    pg_send(c, q);
}

static int pg_enqueue(pgconn_t *c, pg_query_t *q)
{
    q->user = 1;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->nqueued++;
    pg_run_next(c);
    return 0;
}

/* ------------------------------------------------------------ reading */

static void pg_notifies(pgconn_t *c)
{
    unsigned epoch = c->epoch;
    PGnotify *n;

    while (c->epoch == epoch && (n = PQnotifies(c->conn)) != NULL) {
        if (c->on_notify)
            c->on_notify(c, n->relname, n->extra ? n->extra : "", c->arg);
        PQfreemem(n);
    }
}

/* The in-flight query is finished: hand over its result, start the next. */
static void pg_complete(pgconn_t *c)
{
    pg_query_t *q = c->inflight;
    unsigned epoch = c->epoch;

    c->inflight = NULL;
    if (q->user)
        c->nqueued--;
    if (q->cb)
        q->cb(c, q->result, q->arg);
    pg_query_free(q);
    if (c->epoch == epoch)
        pg_run_next(c);
}

/* Take every result libpq can give without waiting. */
static void pg_read(pgconn_t *c)
{
    unsigned epoch = c->epoch;

    while (c->epoch == epoch && c->inflight) {
        pg_query_t *q = c->inflight;
        PGresult *r;

        if (q->copy == COPY_SENDING)
            break;
        if (q->copy == COPY_RECEIVING) { /* COPY TO STDOUT via pgconn_query: dropped */
            char *buf = NULL;
            int n = PQgetCopyData(c->conn, &buf, 1);

            if (buf)
                PQfreemem(buf);
            if (n == 0)
                break;
            if (n == -2) {
                pg_break(c, PQerrorMessage(c->conn));
                return;
            }
            if (n == -1)
                q->copy = COPY_NONE;
            continue;
        }
        if (PQisBusy(c->conn))
            break;
        r = PQgetResult(c->conn);
        if (!r) {
            pg_complete(c);
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_COPY_IN:
            PQclear(r);
            q->copy = COPY_SENDING;
            if (!q->data)
                q->copy_refusal = "COPY FROM STDIN needs pgconn_copy_in";
            pg_send_copy(c);
            break;
        case PGRES_COPY_OUT:
            PQclear(r);
            q->copy = COPY_RECEIVING;
            break;
        case PGRES_COPY_BOTH:
            PQclear(r);
            pg_break(c, "COPY BOTH is not supported");
            return;
        default:
            pg_keep(q, r);
        }
    }
    if (c->epoch == epoch)
        pg_notifies(c);
}

/* ------------------------------------------------------ connecting */

static void pg_connected(pgconn_t *c)
{
    const char *host = PQhost(c->conn);

    snprintf(c->label, sizeof(c->label), "%s@%s:%s", PQdb(c->conn), host ? host : "?",
             PQport(c->conn));
    if (PQsetnonblocking(c->conn, 1) != 0) {
        pg_break(c, PQerrorMessage(c->conn));
        return;
    }
    c->state = PG_INIT;
    if (!c->init_sql) {
        pg_up(c);
        return;
    }
    c->inflight = pg_query_make(c->init_sql, 0, NULL, pg_init_done, NULL);
    if (!c->inflight) {
        pg_break(c, "out of memory");
        return;
    }
    pg_send(c, c->inflight);
}

static void pg_connect_step(pgconn_t *c)
{
    int events;

    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        events = UV_READABLE;
        break;
    case PGRES_POLLING_WRITING:
        events = UV_WRITABLE;
        break;
    case PGRES_POLLING_OK:
        pg_connected(c);
        return;
    default:
        pg_break(c, PQerrorMessage(c->conn));
        return;
    }
    if (pg_watch(c, events, 1) != 0)
        pg_break(c, "cannot watch the connection socket");
}

static void pg_on_notice(void *arg, const PGresult *res)
{
    pgconn_t *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (sev && (strcmp(sev, "NOTICE") == 0 || strcmp(sev, "INFO") == 0 ||
                strcmp(sev, "LOG") == 0 || strncmp(sev, "DEBUG", 5) == 0))
        log_debug("pgconn: %s: %s: %s", c->label, sev, msg ? msg : "");
    else
        log_warn("pgconn: %s: %s: %s", c->label, sev ? sev : "?", msg ? msg : "");
}

static void pg_connect(pgconn_t *c)
{
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {c->conninfo, "lienthong", NULL};

    c->state = PG_CONNECTING;
    c->epoch++;
    uv_timer_start(&c->timer, pg_on_timer, PGCONN_CONNECT_TIMEOUT_MS, 0);
    c->conn = PQconnectStartParams(keys, vals, 1);
    if (!c->conn) {
        pg_break(c, "out of memory");
        return;
    }
    PQsetNoticeReceiver(c->conn, pg_on_notice, c);
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pg_break(c, PQerrorMessage(c->conn));
        return;
    }
    /* Per libpq: start as if PQconnectPoll had said "wait for writable". */
    if (pg_watch(c, UV_WRITABLE, 1) != 0)
        pg_break(c, "cannot watch the connection socket");
}

/* ------------------------------------------------------ loop callbacks */

static void pg_on_timer(uv_timer_t *t)
{
    pgconn_t *c = t->data;

    switch (c->state) {
    case PG_CONNECTING:
    case PG_INIT:
        pg_break(c, "connection timed out");
        break;
    case PG_BROKEN:
        pg_lost(c);
        break;
    case PG_DOWN:
        pg_connect(c);
        break;
    default:
        break;
    }
}

static void pg_on_io(uv_poll_t *h, int status, int events)
{
    pgconn_t *c = h->data;
    unsigned epoch = c->epoch;

    if (c->state == PG_CONNECTING) {
        pg_connect_step(c);
        return;
    }
    if (c->state != PG_INIT && c->state != PG_UP)
        return;
    if (status < 0) {
        pg_break(c, uv_strerror(status));
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->conn)) {
            pg_break(c, PQerrorMessage(c->conn));
            return;
        }
    }
    /* libpq: on either readiness, try the pending write again. */
    if (c->write_wait) {
        if (c->inflight && c->inflight->copy == COPY_SENDING)
            pg_send_copy(c);
        else
            pg_flush(c);
        if (c->epoch != epoch)
            return;
    }
    pg_read(c);
    if (c->epoch == epoch && PQstatus(c->conn) == CONNECTION_BAD)
        pg_break(c, PQerrorMessage(c->conn));
}

/* ------------------------------------------------------ lifetime */

static void pg_maybe_free(pgconn_t *c)
{
    if (c->state != PG_CLOSED || !c->timer_closed || c->poll_open[0] || c->poll_open[1])
        return;
    free(c->conninfo);
    free(c->init_sql);
    free(c);
}

static void pg_on_poll_close(uv_handle_t *h)
{
    pgconn_t *c = h->data;

    c->poll_open[(uv_poll_t *)h == &c->poll[0] ? 0 : 1] = 0;
    pg_maybe_free(c);
}

static void pg_on_timer_close(uv_handle_t *h)
{
    pgconn_t *c = h->data;

    c->timer_closed = 1;
    pg_maybe_free(c);
}

pgconn_t *pgconn_new(uv_loop_t *loop, const char *conninfo, pgconn_state_cb on_state,
                     pgconn_notify_cb on_notify, void *arg)
{
    char *errmsg = NULL;
    PQconninfoOption *opts;
    pgconn_t *c;

    if (!loop || !conninfo)
        return NULL;
    opts = PQconninfoParse(conninfo, &errmsg);
    if (!opts) {
        char why[256];

        pg_oneline(why, sizeof(why), errmsg ? errmsg : "out of memory");
        log_error("pgconn: bad connection string: %s", why);
        PQfreemem(errmsg);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        goto fail;
    c->conninfo = strdup(conninfo);
    if (!c->conninfo)
        goto fail;
    for (PQconninfoOption *o = opts; o->keyword; o++) /* a label until connected */
        if (strcmp(o->keyword, "dbname") == 0 && o->val)
            snprintf(c->label, sizeof(c->label), "%s", o->val);
    PQconninfoFree(opts);
    opts = NULL;
    if (!c->label[0])
        snprintf(c->label, sizeof(c->label), "postgresql");
    c->loop = loop;
    c->on_state = on_state;
    c->on_notify = on_notify;
    c->arg = arg;
    c->active = -1;
    c->min_ms = 200;
    c->max_ms = 10000;
    c->rng = (uint32_t)(uv_hrtime() ^ (uintptr_t)c) | 1u;
    c->state = PG_IDLE;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;

fail:
    PQconninfoFree(opts);
    if (c)
        free(c->conninfo);
    free(c);
    return NULL;
}

int pgconn_set_init_sql(pgconn_t *c, const char *sql)
{
    char *copy = NULL;

    if (sql && !(copy = strdup(sql)))
        return -1;
    free(c->init_sql);
    c->init_sql = copy;
    return 0;
}

int pgconn_start(pgconn_t *c)
{
    if (c->state != PG_IDLE)
        return -1;
    pg_connect(c);
    return 0;
}

void pgconn_set_backoff(pgconn_t *c, unsigned min_ms, unsigned max_ms)
{
    c->min_ms = min_ms;
    c->max_ms = max_ms > min_ms ? max_ms : min_ms;
    if (c->max_ms == 0)
        c->max_ms = 1;
}

int pgconn_is_up(const pgconn_t *c)
{
    return c && c->state == PG_UP;
}

int pgconn_query(pgconn_t *c, const char *sql, int nparams, const char *const *params,
                 pgconn_result_cb cb, void *arg)
{
    pg_query_t *q;

    if (!c || c->state != PG_UP || !sql || nparams < 0 || nparams > PGCONN_MAX_PARAMS ||
        (nparams > 0 && !params))
        return -1;
    q = pg_query_make(sql, nparams, params, cb, arg);
    if (!q)
        return -1;
    return pg_enqueue(c, q);
}

int pgconn_copy_in(pgconn_t *c, const char *copy_sql, const char *data, size_t len,
                   pgconn_result_cb cb, void *arg)
{
    pg_query_t *q;

    if (!c || c->state != PG_UP || !copy_sql || (len > 0 && !data))
        return -1;
    q = pg_query_make(copy_sql, 0, NULL, cb, arg);
    if (!q)
        return -1;
    q->data = malloc(len ? len : 1);
    if (!q->data) {
        pg_query_free(q);
        return -1;
    }
    if (len)
        memcpy(q->data, data, len);
    q->len = len;
    return pg_enqueue(c, q);
}

size_t pgconn_queue_len(const pgconn_t *c)
{
    return c ? c->nqueued : 0;
}

const char *pgconn_error(const pgconn_t *c)
{
    return c ? c->err : "";
}

void pgconn_destroy(pgconn_t **c_p)
{
    pgconn_t *c;

    if (!c_p || !*c_p)
        return;
    c = *c_p;
    *c_p = NULL;
    if (c->state == PG_CLOSED)
        return;
    if (c->reported_up)
        log_info("pgconn: closing connection to %s", c->label);
    c->state = PG_CLOSED;
    c->epoch++;
    pg_poll_close(c); /* before PQfinish closes the socket */
    PQfinish(c->conn);
    c->conn = NULL;
    uv_close((uv_handle_t *)&c->timer, pg_on_timer_close);
    pg_fail_all(c); /* may call back; the memory lives until the close callbacks */
}
