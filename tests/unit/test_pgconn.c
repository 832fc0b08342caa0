/*
 * test_pgconn.c — pgconn against a real PostgreSQL: ordered queued queries,
 * COPY, LISTEN/NOTIFY, a killed backend (NULL callbacks, down, up, init SQL
 * re-run), errors, a slow query that must not stall the loop, destroy from a
 * callback, unreachable servers and failing init SQL.
 *
 * The server: $LT_TEST_PGURI (a conninfo) if set; else a throwaway cluster
 * (initdb -A trust -U lt, unix socket only) in a temporary directory, started
 * by the first test that needs it (tests run in forked children, one after
 * the other) and stopped by the parent process at exit. As root, initdb and
 * pg_ctl run as the unprivileged user ltpg, created if missing.
 */
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "pgconn.h"
#include "unit.h"

/* ------------------------------------------------ throwaway cluster */

static char pg_dir[64];     /* "" when LT_TEST_PGURI is used */
static char pg_info[512];   /* conninfo for the tests */
static pid_t pg_parent;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* "runuser -u ltpg -- /usr/lib/postgresql/N/bin/" (or less) */
static const char *pg_cmd_prefix(void)
{
    static char prefix[512];
    char bindir[256] = "";
    glob_t g;

    if (prefix[0])
        return prefix;
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        snprintf(bindir, sizeof(bindir), "%s", g.gl_pathv[g.gl_pathc - 1]);
        strrchr(bindir, '/')[1] = '\0';
    }
    globfree(&g);
    snprintf(prefix, sizeof(prefix), "%s%s", geteuid() == 0 ? "runuser -u ltpg -- " : "",
             bindir);
    return prefix;
}

__attribute__((constructor)) static void pg_setup(void)
{
    const char *uri = getenv("LT_TEST_PGURI");

    if (uri && *uri) {
        snprintf(pg_info, sizeof(pg_info), "%s", uri);
        return;
    }
    snprintf(pg_dir, sizeof(pg_dir), "/tmp/lt-pgconn-XXXXXX");
    if (!mkdtemp(pg_dir)) {
        pg_dir[0] = '\0';
        return;
    }
    pg_parent = getpid();
    snprintf(pg_info, sizeof(pg_info), "host=%s user=lt dbname=postgres", pg_dir);
}

__attribute__((destructor)) static void pg_teardown(void)
{
    char pidfile[128];
    struct stat st;

    if (!pg_dir[0] || getpid() != pg_parent)
        return;
    snprintf(pidfile, sizeof(pidfile), "%s/data/postmaster.pid", pg_dir);
    if (stat(pidfile, &st) == 0)
        sh("%spg_ctl -D %s/data -m immediate -w stop >/dev/null 2>&1", pg_cmd_prefix(), pg_dir);
    sh("rm -rf %s", pg_dir);
}

/* The conninfo of a running server, starting the cluster if needed. */
static const char *test_pg(void)
{
    char pidfile[128];
    struct stat st;

    CHECK(pg_info[0]);
    if (!pg_dir[0])
        return pg_info;
    snprintf(pidfile, sizeof(pidfile), "%s/data/postmaster.pid", pg_dir);
    if (stat(pidfile, &st) == 0)
        return pg_info;
    if (geteuid() == 0) {
        struct passwd *pw;

        CHECK_EQ_INT(sh("id -u ltpg >/dev/null 2>&1 || "
                        "useradd -r -M -s /usr/sbin/nologin ltpg"), 0);
        pw = getpwnam("ltpg");
        CHECK(pw);
        CHECK_EQ_INT(chown(pg_dir, pw->pw_uid, pw->pw_gid), 0);
    }
    if (sh("%sinitdb -D %s/data -A trust -U lt --no-sync --no-locale -E UTF8 >%s/initdb.log 2>&1",
           pg_cmd_prefix(), pg_dir, pg_dir) != 0) {
        sh("cat %s/initdb.log >&2", pg_dir);
        CHECK(!"initdb failed");
    }
    if (sh("%spg_ctl -D %s/data -l %s/server.log -w -t 15 "
           "-o \"-k %s -c listen_addresses='' -c fsync=off\" start >/dev/null 2>&1",
           pg_cmd_prefix(), pg_dir, pg_dir, pg_dir) != 0) {
        sh("cat %s/server.log >&2", pg_dir);
        CHECK(!"pg_ctl start failed");
    }
    return pg_info;
}

/* ------------------------------------------------------------ fixture */

static uv_loop_t loop;
static uv_timer_t guard;
static pgconn_t *pa, *pb;
static int timed_out;

/* End the test's loop: destroy the connections, close the guard. */
static void finish(void)
{
    pgconn_destroy(&pa);
    pgconn_destroy(&pb);
    if (!uv_is_closing((uv_handle_t *)&guard))
        uv_close((uv_handle_t *)&guard, NULL);
}

static void on_guard(uv_timer_t *t)
{
    timed_out = 1;
    finish();
}

static void setup(unsigned guard_ms)
{
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, guard_ms, 0);
}

/* Run until everything is closed; the loop must end by itself. */
static void run(void)
{
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(timed_out, 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static pgconn_t *open_pg(const char *conninfo, const char *init_sql, pgconn_state_cb on_state,
                         pgconn_notify_cb on_notify)
{
    pgconn_t *c = pgconn_new(&loop, conninfo, on_state, on_notify, NULL);

    CHECK(c);
    pgconn_set_backoff(c, 20, 200);
    CHECK_EQ_INT(pgconn_set_init_sql(c, init_sql), 0);
    CHECK_EQ_INT(pgconn_start(c), 0);
    CHECK_EQ_INT(pgconn_start(c), -1);
    return c;
}

static const char *value(PGresult *res, int row, int col)
{
    CHECK(res);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "  unexpected: %s %s\n", PQresStatus(PQresultStatus(res)),
                PQresultErrorMessage(res));
    CHECK_EQ_INT(PQresultStatus(res), PGRES_TUPLES_OK);
    CHECK(row < PQntuples(res) && col < PQnfields(res));
    return PQgetvalue(res, row, col);
}

#define QUERY(c, sql, n, params, cb, arg) CHECK_EQ_INT(pgconn_query(c, sql, n, params, cb, arg), 0)

/* --------------------------------------------- 1000 queued queries */

#define NQ 1000
static int q_next;

static void on_q_result(pgconn_t *c, PGresult *res, void *arg)
{
    int i = (int)(intptr_t)arg;
    char want[32];

    CHECK_EQ_INT(i, q_next); /* FIFO */
    snprintf(want, sizeof(want), "%d", 2 * i);
    CHECK_EQ_STR(value(res, 0, 0), want);
    snprintf(want, sizeof(want), "s%d!", i);
    CHECK_EQ_STR(value(res, 0, 1), want);
    q_next++;
    if (q_next == NQ) {
        CHECK_EQ_INT(pgconn_queue_len(c), 0);
        finish();
    }
}

static void on_q_state(pgconn_t *c, int up, void *arg)
{
    CHECK_EQ_INT(up, 1);
    CHECK(pgconn_is_up(c));
    for (int i = 0; i < NQ; i++) {
        char n[16], s[16];
        const char *params[2] = {n, s};

        snprintf(n, sizeof(n), "%d", i);
        snprintf(s, sizeof(s), "s%d", i);
        QUERY(c, "SELECT $1::int * 2, $2::text || '!'", 2, params, on_q_result,
              (void *)(intptr_t)i);
    }
    CHECK_EQ_INT(pgconn_queue_len(c), NQ);
}

TEST(queued_queries_run_in_order)
{
    const char *info = test_pg();

    setup(15000);
    pa = open_pg(info, NULL, on_q_state, NULL);
    CHECK(!pgconn_is_up(pa));
    CHECK_EQ_INT(pgconn_query(pa, "SELECT 1", 0, NULL, NULL, NULL), -1); /* not up yet */
    run();
    CHECK_EQ_INT(q_next, NQ);
}

/* --------------------------------------------------------- COPY */

#define NROWS 100000
static int copy_step;

static void on_copy_result(pgconn_t *c, PGresult *res, void *arg);

static void on_copy_result(pgconn_t *c, PGresult *res, void *arg)
{
    int step = (int)(intptr_t)arg;

    CHECK_EQ_INT(step, copy_step);
    CHECK(res);
    switch (step) {
    case 0: /* the big COPY */
        CHECK_EQ_INT(PQresultStatus(res), PGRES_COMMAND_OK);
        CHECK_EQ_STR(PQcmdTuples(res), "100000");
        break;
    case 1:
        CHECK_EQ_STR(value(res, 0, 0), "100000");
        CHECK_EQ_STR(value(res, 0, 1), "5000050000");
        CHECK_EQ_STR(value(res, 0, 2), "100000");
        break;
    case 2: /* a bad row fails the whole COPY */
    case 3: /* COPY FROM STDIN through pgconn_query is refused, not hung */
        CHECK_EQ_INT(PQresultStatus(res), PGRES_FATAL_ERROR);
        break;
    case 4: /* and the connection carries on */
        CHECK_EQ_STR(value(res, 0, 0), "100000");
        finish();
        break;
    }
    copy_step++;
}

static void on_copy_state(pgconn_t *c, int up, void *arg)
{
    size_t cap = (size_t)NROWS * 24, len = 0;
    char *data = malloc(cap);
    static const char bad[] = "1\tok\nnot-a-number\tbad\n";

    CHECK(up && data);
    for (int i = 1; i <= NROWS; i++)
        len += (size_t)snprintf(data + len, cap - len, "%d\tname-%d\n", i, i);
    CHECK_EQ_INT(pgconn_copy_in(c, "COPY t_copy (id, name) FROM STDIN", data, len,
                                on_copy_result, (void *)0), 0);
    memset(data, 'x', len); /* copied: the caller's buffer is free at once */
    free(data);
    QUERY(c, "SELECT count(*), sum(id), count(DISTINCT name) FROM t_copy", 0, NULL,
          on_copy_result, (void *)1);
    CHECK_EQ_INT(pgconn_copy_in(c, "COPY t_copy (id, name) FROM STDIN", bad, strlen(bad),
                                on_copy_result, (void *)2), 0);
    QUERY(c, "COPY t_copy (id, name) FROM STDIN", 0, NULL, on_copy_result, (void *)3);
    QUERY(c, "SELECT count(*) FROM t_copy", 0, NULL, on_copy_result, (void *)4);
}

TEST(copy_in_100000_rows)
{
    const char *info = test_pg();

    setup(15000);
    pa = open_pg(info, "CREATE TEMP TABLE t_copy (id int NOT NULL, name text)", on_copy_state,
                 NULL);
    run();
    CHECK_EQ_INT(copy_step, 5);
}

/* ------------------------------------------------- LISTEN / NOTIFY */

static int n_up, n_notified;

static void on_notify(pgconn_t *c, const char *channel, const char *payload, void *arg)
{
    CHECK(c == pa);
    CHECK_EQ_STR(channel, "lt_chan");
    CHECK_EQ_STR(payload, n_notified == 0 ? "hello" : "world");
    if (++n_notified == 2)
        finish();
}

static void on_sent(pgconn_t *c, PGresult *res, void *arg)
{
    if (!res) { /* pb destroyed by finish() before its last result came */
        CHECK_EQ_INT(n_notified, 2);
        return;
    }
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
}

static void on_notify_state(pgconn_t *c, int up, void *arg)
{
    CHECK_EQ_INT(up, 1);
    if (++n_up < 2)
        return;
    /* Both up: pa LISTENs (init SQL), pb notifies. */
    QUERY(pb, "NOTIFY lt_chan, 'hello'", 0, NULL, on_sent, NULL);
    QUERY(pb, "SELECT pg_notify('lt_chan', 'world')", 0, NULL, on_sent, NULL);
}

TEST(listen_notify_delivered)
{
    const char *info = test_pg();

    setup(10000);
    pa = open_pg(info, "LISTEN lt_chan", on_notify_state, on_notify);
    pb = open_pg(info, NULL, on_notify_state, NULL);
    run();
    CHECK_EQ_INT(n_notified, 2);
}

/* ------------------------------------- backend killed, reconnect */

static int k_ups, k_downs, k_nulls, k_pid, k_checked;

static void on_k_pending(pgconn_t *c, PGresult *res, void *arg)
{
    CHECK(res == NULL); /* lost before completion */
    CHECK_EQ_INT(k_downs, 0); /* failed before on_state(0) */
    k_nulls++;
}

static void on_k_terminated(pgconn_t *c, PGresult *res, void *arg)
{
    CHECK_EQ_STR(value(res, 0, 0), "t");
}

static void on_k_pid(pgconn_t *c, PGresult *res, void *arg)
{
    char pid[16];
    const char *params[1] = {pid};

    k_pid = atoi(value(res, 0, 0));
    CHECK(k_pid > 0);
    /* Something in flight and more queued, then kill the backend from pb. */
    QUERY(pa, "SELECT pg_sleep(10)", 0, NULL, on_k_pending, NULL);
    for (int i = 0; i < 5; i++)
        QUERY(pa, "SELECT 1", 0, NULL, on_k_pending, NULL);
    snprintf(pid, sizeof(pid), "%d", k_pid);
    QUERY(pb, "SELECT pg_terminate_backend($1::int)", 1, params, on_k_terminated, NULL);
}

static void on_k_after(pgconn_t *c, PGresult *res, void *arg)
{
    /* The temp table exists again: the init SQL ran on the new session. */
    CHECK_EQ_STR(value(res, 0, 0), "0");
    CHECK(atoi(value(res, 0, 1)) != k_pid);
    k_checked = 1;
    finish();
}

static void on_k_state(pgconn_t *c, int up, void *arg)
{
    if (c == pb) {
        CHECK_EQ_INT(up, 1);
        QUERY(pa, "SELECT pg_backend_pid()", 0, NULL, on_k_pid, NULL);
        return;
    }
    if (!up) {
        k_downs++;
        CHECK_EQ_INT(k_nulls, 6);
        CHECK(!pgconn_is_up(c));
        CHECK_EQ_INT(pgconn_queue_len(c), 0);
        CHECK(pgconn_error(c)[0] != '\0');
        CHECK_EQ_INT(pgconn_query(c, "SELECT 1", 0, NULL, NULL, NULL), -1);
        return;
    }
    k_ups++;
    if (k_ups == 1) {
        pb = open_pg(test_pg(), NULL, on_k_state, NULL);
        return;
    }
    CHECK_EQ_INT(k_downs, 1);
    QUERY(c, "SELECT count(*), pg_backend_pid() FROM t_init", 0, NULL, on_k_after, NULL);
}

TEST(backend_killed_fails_pending_and_reconnects)
{
    const char *info = test_pg();

    setup(15000);
    pa = open_pg(info, "CREATE TEMP TABLE t_init (x int); SET application_name = 'lt_test'",
                 on_k_state, NULL);
    run();
    CHECK_EQ_INT(k_nulls, 6);
    CHECK_EQ_INT(k_downs, 1);
    CHECK_EQ_INT(k_ups, 2);
    CHECK_EQ_INT(k_checked, 1);
}

/* ------------------------------------- errors, multi-statement, NULL */

static int e_step;

static void on_e_result(pgconn_t *c, PGresult *res, void *arg)
{
    int step = (int)(intptr_t)arg;

    CHECK_EQ_INT(step, e_step);
    CHECK(res);
    switch (step) {
    case 0:
        CHECK_EQ_INT(PQresultStatus(res), PGRES_FATAL_ERROR);
        CHECK_EQ_STR(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22012");
        break;
    case 1:
        CHECK_EQ_STR(value(res, 0, 0), "42");
        break;
    case 2: /* several statements: the last result */
        CHECK_EQ_STR(value(res, 0, 0), "2");
        break;
    case 3: /* several statements, one failing: the error */
        CHECK_EQ_INT(PQresultStatus(res), PGRES_FATAL_ERROR);
        break;
    case 4: /* a NULL parameter */
        CHECK_EQ_STR(value(res, 0, 0), "t");
        break;
    case 5:
        CHECK_EQ_INT(PQresultStatus(res), PGRES_EMPTY_QUERY);
        break;
    case 6: /* a syntax error with params, then still fine */
        CHECK_EQ_INT(PQresultStatus(res), PGRES_FATAL_ERROR);
        break;
    case 7:
        CHECK_EQ_STR(value(res, 0, 0), "ok");
        finish();
        break;
    }
    e_step++;
}

static void on_e_state(pgconn_t *c, int up, void *arg)
{
    const char *null_param[1] = {NULL};
    const char *ok_param[1] = {"ok"};

    CHECK_EQ_INT(up, 1);
    QUERY(c, "SELECT 1/0", 0, NULL, on_e_result, (void *)0);
    QUERY(c, "SELECT 42", 0, NULL, on_e_result, (void *)1);
    QUERY(c, "SELECT 1; SELECT 2", 0, NULL, on_e_result, (void *)2);
    QUERY(c, "SELECT 1; SELECT 1/0; SELECT 3", 0, NULL, on_e_result, (void *)3);
    QUERY(c, "SELECT $1::text IS NULL", 1, null_param, on_e_result, (void *)4);
    QUERY(c, "", 0, NULL, on_e_result, (void *)5);
    QUERY(c, "SELEC $1", 1, ok_param, on_e_result, (void *)6);
    QUERY(c, "SELECT $1::text", 1, ok_param, on_e_result, (void *)7);
}

TEST(error_then_next_query_works)
{
    const char *info = test_pg();

    setup(10000);
    pa = open_pg(info, NULL, on_e_state, NULL);
    run();
    CHECK_EQ_INT(e_step, 8);
}

/* ------------------------------------- a slow query, a busy loop */

static uv_timer_t tick;
static int ticks;
static uint64_t last_tick, max_gap_ms;

static void on_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();

    if (last_tick && (now - last_tick) / 1000000 > max_gap_ms)
        max_gap_ms = (now - last_tick) / 1000000;
    last_tick = now;
    ticks++;
}

static void on_slow_done(pgconn_t *c, PGresult *res, void *arg)
{
    CHECK(res && PQresultStatus(res) == PGRES_COMMAND_OK);
    uv_close((uv_handle_t *)&tick, NULL);
    finish();
}

static void on_slow_state(pgconn_t *c, int up, void *arg)
{
    CHECK_EQ_INT(up, 1);
    /* The NOTICE reaches us at once, so the socket turns readable while the
       query still runs: a PQgetResult without PQisBusy would block here. */
    QUERY(c, "DO $$BEGIN RAISE NOTICE 'slow query started'; PERFORM pg_sleep(1); END$$", 0, NULL,
          on_slow_done, NULL);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
}

TEST(slow_query_does_not_block_loop)
{
    const char *info = test_pg();

    setup(10000);
    pa = open_pg(info, NULL, on_slow_state, NULL);
    run();
    fprintf(stderr, "  %d ticks of 10 ms during pg_sleep(1), longest gap %llu ms\n", ticks,
            (unsigned long long)max_gap_ms);
    CHECK(ticks >= 80);
    CHECK(max_gap_ms < 50);
}

/* ----------------------------------------- destroy from a callback */

static int d_results[3], d_calls, d_downs;

static void on_d_result(pgconn_t *c, PGresult *res, void *arg)
{
    int i = (int)(intptr_t)arg;

    d_results[i] = res ? 1 : -1;
    d_calls++;
    if (i == 0) {
        CHECK(c == pa);
        finish(); /* destroys pa: the two queued after this get NULL, now */
        CHECK_EQ_INT(d_calls, 3);
        CHECK(pa == NULL);
    }
}

static void on_d_state(pgconn_t *c, int up, void *arg)
{
    if (!up) {
        d_downs++;
        return;
    }
    for (int i = 0; i < 3; i++)
        QUERY(c, "SELECT 1", 0, NULL, on_d_result, (void *)(intptr_t)i);
}

TEST(destroy_from_callback_cancels_the_rest)
{
    const char *info = test_pg();

    setup(10000);
    pa = open_pg(info, NULL, on_d_state, NULL);
    run();
    CHECK_EQ_INT(d_results[0], 1);
    CHECK_EQ_INT(d_results[1], -1);
    CHECK_EQ_INT(d_results[2], -1);
    CHECK_EQ_INT(d_downs, 0); /* destroy is not a "down" */
}

/* --------------------------- libpq changes sockets while connecting */

static void on_mh_result(pgconn_t *c, PGresult *res, void *arg)
{
    CHECK_EQ_STR(value(res, 0, 0), "1");
    finish();
}

static void on_mh_state(pgconn_t *c, int up, void *arg)
{
    CHECK_EQ_INT(up, 1);
    QUERY(c, "SELECT 1", 0, NULL, on_mh_result, NULL);
}

/* The first host refuses (TCP port 1), so libpq closes that socket and opens
   one to the second: usually under the same number, which the poll must not
   take for the old one. */
TEST(connect_moves_to_second_host)
{
    char info[600];

    test_pg();
    if (!pg_dir[0]) {
        fprintf(stderr, "  skipped: needs the throwaway cluster\n");
        return;
    }
    snprintf(info, sizeof(info), "host=127.0.0.1,%s port=1,5432 user=lt dbname=postgres", pg_dir);
    setup(10000);
    pa = open_pg(info, NULL, on_mh_state, NULL);
    run();
}

/* ------------------------------------- no server, bad init SQL */

static void on_never(pgconn_t *c, int up, void *arg)
{
    CHECK(!"on_state must not be called");
}

static uv_timer_t probe;

static void on_probe(uv_timer_t *t)
{
    const char *want = t->data;

    CHECK(pa && !pgconn_is_up(pa));
    CHECK_EQ_INT(pgconn_query(pa, "SELECT 1", 0, NULL, NULL, NULL), -1);
    CHECK_EQ_INT(pgconn_copy_in(pa, "COPY x FROM STDIN", "", 0, NULL, NULL), -1);
    CHECK_EQ_INT(pgconn_queue_len(pa), 0);
    if (!strstr(pgconn_error(pa), want))
        fprintf(stderr, "  error: \"%s\", expected to contain \"%s\"\n", pgconn_error(pa), want);
    CHECK(strstr(pgconn_error(pa), want));
    uv_close((uv_handle_t *)t, NULL);
    finish();
}

static void probe_after(unsigned ms, const char *want)
{
    uv_timer_init(&loop, &probe);
    probe.data = (void *)want;
    uv_timer_start(&probe, on_probe, ms, 0);
}

TEST(unreachable_server_keeps_retrying)
{
    setup(10000);
    pa = open_pg("host=/nonexistent-lt-dir user=lt dbname=postgres", NULL, on_never, NULL);
    probe_after(300, "/nonexistent-lt-dir");
    run();
}

TEST(failing_init_sql_is_not_up)
{
    const char *info = test_pg();

    setup(10000);
    pa = open_pg(info, "CREATE TEMP TABLE t_ok (x int); SELEC broken", on_never, NULL);
    probe_after(500, "init sql failed");
    run();
}

TEST(bad_conninfo_rejected)
{
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK(pgconn_new(&loop, "this is not a conninfo", NULL, NULL, NULL) == NULL);
    CHECK(pgconn_new(&loop, "postgresql://[broken", NULL, NULL, NULL) == NULL);
    CHECK(pgconn_new(&loop, "nosuchkey=1", NULL, NULL, NULL) == NULL);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}
