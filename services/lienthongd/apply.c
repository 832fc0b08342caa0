/*
 * apply.c — see apply.h. The order of work on the database connection is the order
 * of the queue; one job runs at a time, and its steps are queued together so the
 * server runs them back to back. The batches waiting in the queue (from any child)
 * are applied together, set-based, in one transaction:
 *
 *   BEGIN  ->  COPY stage_value, COPY stage_case (every batch's rows, each row with
 *     its batch's place in the group)  ->  SELECT lt.apply_group(children, prevs,
 *     lasts, tokens)  ->  COMMIT
 *
 * so a group costs the same handful of round trips and statements whether it holds
 * one batch or a thousand. A batch carrying submissions or ending with a resync
 * marker, and every retry of a failed group or split, runs alone:
 *
 *   BEGIN  ->  COPY stage_value, COPY stage_case, [lt.apply_submissions],
 *     SELECT lt.apply_link_batch(child, prev, last, token, marker)  ->  COMMIT
 *
 * If any step fails the transaction is aborted, COMMIT answers ROLLBACK, and nothing
 * of the batch is visible: the job is then split (or quarantined). The ACK is sent
 * only from the last step's callback, after the server confirmed COMMIT.
 */
#include "apply.h"

#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pgtext.h"

typedef struct {
    lt_msg_t msg;
    int refs;
    size_t bytes;
} batch_hold_t;

typedef enum { JOB_HELLO, JOB_APPLY, JOB_QUARANTINE } job_kind_t;

/* A transaction applies up to this many queued batches (group commit). */
#define APPLY_GROUP_MAX_JOBS 1024
#define APPLY_GROUP_MAX_RECORDS 20000

typedef struct job {
    struct job *next;        /* the queue */
    struct applier *a;
    struct job *leader;      /* the group's first job; NULL when this job leads */
    struct job *member_next; /* leader: the other jobs of its transaction */
    int n_members;           /* leader: jobs in the transaction, itself included */
    int solo;                /* never grouped (a retry after a failed group, a split, submissions) */
    struct job **group;      /* leader of a set-based group: its jobs by ord */
    int refused;             /* HELLO: the unit is not this node's child */
    job_kind_t kind;
    uint8_t rid[256];
    size_t rid_len;
    char unit[8];
    uint64_t child_max;  /* HELLO */
    batch_hold_t *hold;  /* APPLY, QUARANTINE */
    uint32_t lo, hi;     /* records [lo, hi) of the batch */
    uint64_t prev, last; /* the job covers seqs (prev, last] */
    /* progress */
    int steps_pending, failed, db_lost;
    char err[256];
    char sqlstate[6]; /* of the first failure */
    /* results */
    char status[16];
    uint64_t applied_upto, n_applied;
    uint64_t token; /* HELLO: the child's token at applied_upto */
    lt_reject_t *rejects;
    uint32_t n_rejects, cap_rejects;
    uint64_t t0;
} job_t;

struct applier {
    lt_daemon_t *d;
    pgconn_t *db;
    applier_hooks_t hooks;
    job_t *head, *tail, *current;
    size_t queue_bytes, queue_len;
    int db_up;
    int stopping; /* applier_stop: the links are closing, nobody is told anything */
};

/* ------------------------------------------------------------ formatting */

static void copy_ts(pgtext_buf_t *s, int64_t ms)
{
    char tmp[40];
    if (ms < 0) {
        pgtext_copy_null(s);
        return;
    }
    pgtext_format_ts(ms, tmp, sizeof(tmp));
    pgtext_str(s, tmp);
}

/* ord >= 0: the batch's place in a group, as the last column; < 0: no such column. */
static void copy_end_row(pgtext_buf_t *s, int ord)
{
    if (ord >= 0)
        pgtext_fmt(s, "\t%d\n", ord);
    else
        pgtext_add(s, "\n", 1);
}

static void copy_value_row(pgtext_buf_t *s, uint64_t seq, const lt_value_rec_t *v, int ord)
{
    char num[40];
    pgtext_fmt(s, "%" PRIu64 "\t", seq);
    pgtext_copy_field(s, v->unit);
    pgtext_add(s, "\t", 1);
    pgtext_copy_field(s, v->element);
    pgtext_add(s, "\t", 1);
    pgtext_copy_field(s, v->period);
    pgtext_add(s, "\t", 1);
    pgtext_copy_field(s, v->disagg);
    pgtext_add(s, "\t", 1);
    if (v->has_value) {
        pgtext_format_double(v->value, num, sizeof(num));
        pgtext_str(s, num);
    } else {
        pgtext_copy_null(s);
    }
    pgtext_fmt(s, "\t%" PRIu64 "\t", v->version);
    copy_ts(s, (int64_t)v->changed_at_ms);
    copy_end_row(s, ord);
}

static void copy_case_row(pgtext_buf_t *s, uint64_t seq, const lt_case_rec_t *c, int ord)
{
    pgtext_fmt(s, "%" PRIu64 "\t", seq);
    pgtext_copy_field(s, c->case_id);
    pgtext_add(s, "\t", 1);
    pgtext_copy_field(s, c->unit);
    pgtext_fmt(s, "\t%" PRIu64 "\t", c->version);
    copy_ts(s, (int64_t)c->changed_at_ms);
    pgtext_fmt(s, "\t%s\t%c\t", c->deleted ? "t" : "f", c->sex);
    if (c->birth_ym[0])
        pgtext_copy_field(s, c->birth_ym);
    else
        pgtext_copy_null(s);
    if (c->ethnicity > 0)
        pgtext_fmt(s, "\t%d\t", c->ethnicity);
    else
        pgtext_add(s, "\t\\N\t", 4);
    if (c->village[0])
        pgtext_copy_field(s, c->village);
    else
        pgtext_copy_null(s);
    pgtext_fmt(s, "\t%" PRIu32 "\t", c->categories);
    pgtext_copy_field(s, c->status);
    const int64_t ts[] = {c->notified_at, c->assessed_at, c->emergency_at, c->plan_drafted_at,
                          c->plan_approved_at, c->reviewed_at, c->closed_at};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        pgtext_add(s, "\t", 1);
        copy_ts(s, ts[i]);
    }
    pgtext_fmt(s, "\t%" PRIu32, c->services);
    copy_end_row(s, ord);
}

/* The refused record, as JSON, for lt.rejected_delta. Strings are validated
   plain ASCII by the wire layer; quotes and backslashes are escaped anyway. */
static void json_str(pgtext_buf_t *s, const char *k, const char *v, int first)
{
    pgtext_fmt(s, "%s\"%s\":\"", first ? "" : ",", k);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            pgtext_add(s, "\\", 1);
        if ((unsigned char)*v >= 0x20)
            pgtext_add(s, v, 1);
    }
    pgtext_add(s, "\"", 1);
}

static void record_json(pgtext_buf_t *s, const lt_record_t *r)
{
    char num[40];
    pgtext_fmt(s, "{\"seq\":%" PRIu64 ",\"kind\":%d", r->seq, (int)r->kind);
    if (r->kind == LT_REC_VALUE) {
        const lt_value_rec_t *v = &r->u.v;
        json_str(s, "unit_code", v->unit, 0);
        json_str(s, "element", v->element, 0);
        json_str(s, "period", v->period, 0);
        json_str(s, "disagg", v->disagg, 0);
        if (v->has_value) {
            pgtext_format_double(v->value, num, sizeof(num));
            pgtext_fmt(s, ",\"value\":%s", num);
        } else {
            pgtext_str(s, ",\"value\":null");
        }
        pgtext_fmt(s, ",\"version\":%" PRIu64 "}", v->version);
    } else if (r->kind == LT_REC_SUBMISSION) {
        const lt_submission_rec_t *x = &r->u.s;
        json_str(s, "unit_code", x->unit, 0);
        json_str(s, "data_set", x->data_set, 0);
        json_str(s, "period", x->period, 0);
        json_str(s, "status", x->status, 0);
        pgtext_fmt(s, ",\"version\":%" PRIu64 "}", x->version);
    } else if (r->kind == LT_REC_RESYNC) {
        json_str(s, "unit_code", r->u.r.unit, 0);
        pgtext_fmt(s, ",\"phase\":%d}", r->u.r.phase);
    } else {
        const lt_case_rec_t *c = &r->u.c;
        json_str(s, "case_id", c->case_id, 0);
        json_str(s, "unit_code", c->unit, 0);
        json_str(s, "status", c->status, 0);
        pgtext_fmt(s, ",\"categories\":%" PRIu32 ",\"version\":%" PRIu64 ",\"notified_ms\":%" PRId64 "}",
               c->categories, c->version, c->notified_at);
    }
}

/* A submission record as a JSON object, appended to an array being built. */
static void submission_json(pgtext_buf_t *b, uint64_t seq, const lt_submission_rec_t *r)
{
    char ts[40];
    pgtext_fmt(b, "%s{\"seq\":%" PRIu64, b->len ? "," : "[", seq);
    json_str(b, "unit_code", r->unit, 0);
    json_str(b, "data_set", r->data_set, 0);
    json_str(b, "period", r->period, 0);
    pgtext_fmt(b, ",\"version\":%" PRIu64, r->version);
    pgtext_format_ts(r->submitted_at, ts, sizeof(ts));
    json_str(b, "submitted_at", ts, 0);
    pgtext_format_ts(r->first_submitted_at, ts, sizeof(ts));
    json_str(b, "first_submitted_at", ts, 0);
    json_str(b, "status", r->status, 0);
    if (r->decided_by[0])
        json_str(b, "decided_by", r->decided_by, 0);
    if (r->decided_at >= 0) {
        pgtext_format_ts(r->decided_at, ts, sizeof(ts));
        json_str(b, "decided_at", ts, 0);
    }
    if (r->reason[0])
        json_str(b, "reason", r->reason, 0);
    pgtext_add(b, "}", 1);
}

/* ------------------------------------------------------------ queue */

static void hold_release(batch_hold_t **h_p)
{
    batch_hold_t *h = *h_p;
    *h_p = NULL;
    if (h && --h->refs == 0) {
        lt_msg_clear(&h->msg);
        free(h);
    }
}

static void job_free(job_t *j)
{
    hold_release(&j->hold);
    free(j->rejects);
    free(j->group);
    free(j);
}

static size_t job_bytes(const job_t *j)
{
    return j->hold ? j->hold->bytes : 64;
}

static void push_back(applier_t *a, job_t *j)
{
    j->next = NULL;
    if (a->tail)
        a->tail->next = j;
    else
        a->head = j;
    a->tail = j;
    a->queue_bytes += job_bytes(j);
    a->queue_len++;
}

static void push_front(applier_t *a, job_t *j)
{
    j->next = a->head;
    a->head = j;
    if (!a->tail)
        a->tail = j;
    a->queue_bytes += job_bytes(j);
    a->queue_len++;
}

static job_t *pop(applier_t *a)
{
    job_t *j = a->head;
    if (!j)
        return NULL;
    a->head = j->next;
    if (!a->head)
        a->tail = NULL;
    a->queue_bytes -= job_bytes(j);
    a->queue_len--;
    j->next = NULL;
    return j;
}

static void send_msg(applier_t *a, const job_t *j, msgpack_sbuffer *sb)
{
    a->hooks.send(a->hooks.arg, j->rid, j->rid_len, sb->data, sb->size);
}

static void send_error(applier_t *a, const job_t *j, int code, const char *text)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (lt_wire_encode_error(&sb, (uint16_t)code, text) == 0)
        send_msg(a, j, &sb);
    msgpack_sbuffer_destroy(&sb);
}

static void pump(applier_t *a);

/* ------------------------------------------------------------ step callbacks */

static void job_add_reject(job_t *j, uint64_t seq, int code, const char *reason)
{
    if (j->n_rejects == j->cap_rejects) {
        uint32_t cap = j->cap_rejects ? j->cap_rejects * 2 : 8;
        lt_reject_t *nr = realloc(j->rejects, cap * sizeof(*nr));
        if (!nr)
            return; /* still refused and kept in lt.rejected_delta; only not listed */
        j->rejects = nr;
        j->cap_rejects = cap;
    }
    lt_reject_t *r = &j->rejects[j->n_rejects++];
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    r->code = (uint8_t)(code > 0 && code < 256 ? code : LT_WIRE_EDB_REJECTED);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/* Every step's callback gets the job it belongs to; progress and the fate of the
   transaction are counted on the group's leader. */
static job_t *leader_of(job_t *j)
{
    return j->leader ? j->leader : j;
}

static void note_failure(job_t *j, PGresult *res)
{
    job_t *l = leader_of(j);
    if (!res) {
        l->db_lost = 1;
        return;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return;
    if (!j->failed) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(j->err, sizeof(j->err), "%s", m ? m : PQresStatus(st));
        snprintf(j->sqlstate, sizeof(j->sqlstate), "%s", code ? code : "");
    }
    j->failed = 1;
    if (!l->failed && l != j) {
        snprintf(l->err, sizeof(l->err), "%s", j->err);
        snprintf(l->sqlstate, sizeof(l->sqlstate), "%s", j->sqlstate);
    }
    l->failed = 1;
}

static void finish(applier_t *a, job_t *leader);

static void step_done(job_t *j)
{
    job_t *l = leader_of(j);
    if (--l->steps_pending == 0)
        finish(l->a, l);
}

static void on_step(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *j = arg;
    note_failure(j, res);
    step_done(j);
}

static void on_apply(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *j = arg;
    note_failure(j, res);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            const char *kind = PQgetvalue(res, i, 0);
            uint64_t seq = strtoull(PQgetvalue(res, i, 1), NULL, 10);
            if (strcmp(kind, "summary") == 0) {
                j->applied_upto = seq;
                j->n_applied += strtoull(PQgetvalue(res, i, 2), NULL, 10);
                snprintf(j->status, sizeof(j->status), "%s", PQgetvalue(res, i, 4));
            } else {
                job_add_reject(j, seq, atoi(PQgetvalue(res, i, 3)), PQgetvalue(res, i, 4));
            }
        }
    }
    step_done(j);
}

/* lt.apply_group: per batch ('summary', ord, applied_upto, n, 0, status), then
   ('reject', ord, seq, 0, code, reason) per refused record. */
static void on_group(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *l = arg;
    note_failure(l, res);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            long ord = strtol(PQgetvalue(res, i, 1), NULL, 10);
            if (ord < 0 || ord >= l->n_members)
                continue;
            job_t *m = l->group[ord];
            if (!m)
                continue;
            uint64_t seq = strtoull(PQgetvalue(res, i, 2), NULL, 10);
            if (strcmp(PQgetvalue(res, i, 0), "summary") == 0) {
                m->applied_upto = seq;
                m->n_applied += strtoull(PQgetvalue(res, i, 3), NULL, 10);
                snprintf(m->status, sizeof(m->status), "%s", PQgetvalue(res, i, 5));
            } else {
                job_add_reject(m, seq, atoi(PQgetvalue(res, i, 4)), PQgetvalue(res, i, 5));
            }
        }
    }
    step_done(l);
}

/* lt.children_hello: (ord, resume, token, refused) per HELLO of the group. */
static void on_hellos(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *l = arg;
    note_failure(l, res);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(res); i++) {
            long ord = strtol(PQgetvalue(res, i, 0), NULL, 10);
            if (ord < 0 || ord >= l->n_members || !l->group[ord])
                continue;
            job_t *m = l->group[ord];
            if (PQgetisnull(res, i, 3)) {
                m->applied_upto = strtoull(PQgetvalue(res, i, 1), NULL, 10);
                m->token = (uint64_t)strtoll(PQgetvalue(res, i, 2), NULL, 10);
            } else {
                m->refused = 1;
                snprintf(m->err, sizeof(m->err), "%s", PQgetvalue(res, i, 3));
            }
        }
    }
    step_done(l);
}

/* lt.apply_submissions: refused submissions (seq, code, reason), then (NULL, applied, 'applied'). */
static void on_submissions(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *j = arg;
    note_failure(j, res);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(res); i++) {
            if (PQgetisnull(res, i, 0)) {
                if (strcmp(PQgetvalue(res, i, 2), "applied") == 0) {
                    j->n_applied += strtoull(PQgetvalue(res, i, 1), NULL, 10);
                    j->a->d->stats.down_submissions += strtoull(PQgetvalue(res, i, 1), NULL, 10);
                }
            } else {
                job_add_reject(j, strtoull(PQgetvalue(res, i, 0), NULL, 10), atoi(PQgetvalue(res, i, 1)),
                               PQgetvalue(res, i, 2));
            }
        }
    }
    step_done(j);
}

static void on_commit(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *l = arg;
    note_failure(l, res);
    /* An aborted transaction answers COMMIT with the tag ROLLBACK. */
    if (res && PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        if (!l->failed)
            snprintf(l->err, sizeof(l->err), "transaction rolled back");
        l->failed = 1;
    }
    step_done(l);
}

static void on_single(pgconn_t *c, PGresult *res, void *arg)
{
    job_t *j = arg;
    note_failure(j, res);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        j->applied_upto = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        if (PQnfields(res) > 1) /* HELLO: the token the child's row at that seq must have */
            j->token = (uint64_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    step_done(j);
}

/* Queue one step; a refused enqueue (connection down) counts as a lost database. */
static void step_query(job_t *j, const char *sql, int n, const char *const *p, pgconn_result_cb cb)
{
    if (pgconn_query(j->a->db, sql, n, p, cb, j) == 0)
        leader_of(j)->steps_pending++;
    else
        leader_of(j)->db_lost = 1;
}

static void step_copy(job_t *j, const char *sql, const pgtext_buf_t *data)
{
    if (pgconn_copy_in(j->a->db, sql, data->buf, data->len, on_step, j) == 0)
        leader_of(j)->steps_pending++;
    else
        leader_of(j)->db_lost = 1;
}

/* ------------------------------------------------------------ running a job */

/* One batch's steps inside the group's transaction. */
static void queue_batch_steps(job_t *j)
{
    char p_prev[24], p_last[24];
    pgtext_buf_t vals = {0}, cases = {0}, subs = {0};
    const lt_record_t *recs = j->hold->msg.u.batch.records;

    const lt_resync_rec_t *mark = NULL; /* a resync marker ends the batch (wire.h) */
    for (uint32_t i = j->lo; i < j->hi; i++) {
        if (recs[i].kind == LT_REC_VALUE)
            copy_value_row(&vals, recs[i].seq, &recs[i].u.v, -1);
        else if (recs[i].kind == LT_REC_CASE)
            copy_case_row(&cases, recs[i].seq, &recs[i].u.c, -1);
        else if (recs[i].kind == LT_REC_SUBMISSION)
            submission_json(&subs, recs[i].seq, &recs[i].u.s);
        else
            mark = &recs[i].u.r;
    }
    if (subs.len)
        pgtext_add(&subs, "]", 1);
    if (vals.oom || cases.oom || subs.oom) {
        j->failed = leader_of(j)->failed = 1;
        snprintf(j->err, sizeof(j->err), "out of memory formatting the batch");
    } else {
        /* the child's token names its row at the batch's last seq; a part of a split
           batch that ends earlier has none */
        const lt_msg_t *m = &j->hold->msg;
        char p_token[24], p_phase[4];
        snprintf(p_prev, sizeof(p_prev), "%" PRIu64, j->prev);
        snprintf(p_last, sizeof(p_last), "%" PRIu64, j->last);
        snprintf(p_token, sizeof(p_token), "%" PRId64,
                 j->last == m->u.batch.last_seq ? (int64_t)m->u.batch.last_token : 0);
        snprintf(p_phase, sizeof(p_phase), "%d", mark ? mark->phase : 0);
        const char *p[6] = {j->unit, p_prev, p_last, p_token, mark ? mark->unit : NULL, mark ? p_phase : NULL};
        /* staging is empty here: ON COMMIT DELETE ROWS, and lt.apply_batch empties it
           after each batch of a group */
        if (vals.len)
            step_copy(j,
                      "COPY pg_temp.stage_value (seq, unit_code, element, period, disagg, value, "
                      "version, changed_at) FROM STDIN",
                      &vals);
        if (cases.len)
            step_copy(j,
                      "COPY pg_temp.stage_case (seq, case_id, unit_code, version, changed_at, deleted, "
                      "sex, birth_ym, ethnicity, village_code, categories, status, notified_at, "
                      "assessed_at, emergency_at, plan_drafted_at, plan_approved_at, reviewed_at, "
                      "closed_at, services) FROM STDIN",
                      &cases);
        if (subs.len) {
            /* before apply_batch, which advances the child's position */
            const char *ps[3] = {j->unit, p_prev, subs.buf};
            step_query(j, "SELECT seq, code, reason FROM lt.apply_submissions($1, $2::bigint, $3::jsonb)", 3, ps,
                       on_submissions);
        }
        step_query(j,
                   "SELECT kind, seq, n, code, reason FROM "
                   "lt.apply_link_batch($1, $2::bigint, $3::bigint, $4::bigint, $5, $6::int)",
                   6, p, on_apply);
    }
    free(vals.buf);
    free(cases.buf);
    free(subs.buf);
}

static uint32_t job_records(const job_t *j)
{
    return j->hi - j->lo;
}

/* May this job be applied in a set-based group? Not a retry or split, no
   submissions (they are applied record by record before the batch, see above) and no
   resync marker (its work follows the batch, in the batch's order). */
static int groupable(const job_t *j)
{
    if (j->kind != JOB_APPLY || j->solo)
        return 0;
    const lt_record_t *recs = j->hold->msg.u.batch.records;
    for (uint32_t i = j->lo; i < j->hi; i++)
        if (recs[i].kind != LT_REC_VALUE && recs[i].kind != LT_REC_CASE)
            return 0;
    return 1;
}

static void add_list(pgtext_buf_t *b, const char *item)
{
    pgtext_add(b, b->len ? "," : "{", 1);
    pgtext_str(b, item);
}

/* The whole group's steps: every batch's rows in one COPY per table, one apply. */
static void queue_group_steps(job_t *l)
{
    pgtext_buf_t vals = {0}, cases = {0}, children = {0}, prevs = {0}, lasts = {0}, tokens = {0};
    char num[24];
    int ord = 0;

    for (job_t *m = l; m; m = m->member_next, ord++) {
        const lt_record_t *recs = m->hold->msg.u.batch.records;
        l->group[ord] = m;
        for (uint32_t i = m->lo; i < m->hi; i++) {
            if (recs[i].kind == LT_REC_VALUE)
                copy_value_row(&vals, recs[i].seq, &recs[i].u.v, ord);
            else
                copy_case_row(&cases, recs[i].seq, &recs[i].u.c, ord);
        }
        add_list(&children, m->unit);
        snprintf(num, sizeof(num), "%" PRIu64, m->prev);
        add_list(&prevs, num);
        snprintf(num, sizeof(num), "%" PRIu64, m->last);
        add_list(&lasts, num);
        /* the child's token names its row at the batch's last seq; a part of a split
           batch that ends earlier has none (splits never join a group) */
        snprintf(num, sizeof(num), "%" PRId64,
                 m->last == m->hold->msg.u.batch.last_seq ? (int64_t)m->hold->msg.u.batch.last_token : 0);
        add_list(&tokens, num);
    }
    pgtext_add(&children, "}", 1);
    pgtext_add(&prevs, "}", 1);
    pgtext_add(&lasts, "}", 1);
    pgtext_add(&tokens, "}", 1);
    if (vals.oom || cases.oom || children.oom || prevs.oom || lasts.oom || tokens.oom) {
        l->failed = 1;
        snprintf(l->err, sizeof(l->err), "out of memory formatting the batch");
    } else {
        if (vals.len)
            step_copy(l,
                      "COPY pg_temp.stage_value (seq, unit_code, element, period, disagg, value, "
                      "version, changed_at, ord) FROM STDIN",
                      &vals);
        if (cases.len)
            step_copy(l,
                      "COPY pg_temp.stage_case (seq, case_id, unit_code, version, changed_at, deleted, "
                      "sex, birth_ym, ethnicity, village_code, categories, status, notified_at, "
                      "assessed_at, emergency_at, plan_drafted_at, plan_approved_at, reviewed_at, "
                      "closed_at, services, ord) FROM STDIN",
                      &cases);
        const char *p[4] = {children.buf, prevs.buf, lasts.buf, tokens.buf};
        step_query(l,
                   "SELECT kind, ord, seq, n, code, reason "
                   "FROM lt.apply_group($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])",
                   4, p, on_group);
    }
    free(vals.buf);
    free(cases.buf);
    free(children.buf);
    free(prevs.buf);
    free(lasts.buf);
    free(tokens.buf);
}

static void start(applier_t *a, job_t *j)
{
    char p_prev[24], p_max[24];
    j->t0 = lt_mono_ms();
    j->steps_pending = 1; /* held until every step is queued */
    j->leader = NULL;
    j->n_members = 1;
    j->member_next = NULL;

    if (j->kind == JOB_HELLO) {
        /* every HELLO waiting behind this one: one transaction, one commit */
        pgtext_buf_t children = {0}, maxes = {0};
        job_t **tail = &j->member_next;
        while (a->head && a->head->kind == JOB_HELLO && j->n_members < APPLY_GROUP_MAX_JOBS) {
            job_t *m = pop(a);
            m->leader = j;
            m->t0 = j->t0;
            *tail = m;
            tail = &m->member_next;
            j->n_members++;
        }
        free(j->group);
        j->group = calloc((size_t)j->n_members, sizeof(*j->group));
        int ord = 0;
        for (job_t *m = j; m; m = m->member_next) {
            if (j->group)
                j->group[ord++] = m;
            add_list(&children, m->unit);
            snprintf(p_max, sizeof(p_max), "%" PRIu64, m->child_max);
            add_list(&maxes, p_max);
        }
        pgtext_add(&children, "}", 1);
        pgtext_add(&maxes, "}", 1);
        if (!j->group || children.oom || maxes.oom) {
            j->failed = 1;
            snprintf(j->err, sizeof(j->err), "out of memory");
        } else {
            const char *p[2] = {children.buf, maxes.buf};
            step_query(j, "SELECT ord, resume, token, refused FROM lt.children_hello($1::text[], $2::bigint[])", 2,
                       p, on_hellos);
        }
        free(children.buf);
        free(maxes.buf);
    } else if (j->kind == JOB_QUARANTINE) {
        const lt_record_t *r = &j->hold->msg.u.batch.records[j->lo];
        pgtext_buf_t js = {0};
        char p_seq[24];
        record_json(&js, r);
        snprintf(p_prev, sizeof(p_prev), "%" PRIu64, j->prev);
        snprintf(p_seq, sizeof(p_seq), "%" PRIu64, r->seq);
        const char *p[5] = {j->unit, p_prev, p_seq, j->err, js.oom ? "{}" : js.buf};
        step_query(j, "SELECT lt.quarantine($1, $2::bigint, $3::bigint, $4, $5::jsonb)", 5, p, on_single);
        free(js.buf);
    } else {
        /* Group commit: the batches waiting behind this one (from any child) join its
           transaction, so many small batches share one fsync and one set-based apply.
           A group that fails is retried one batch at a time. */
        uint32_t records = job_records(j);
        job_t **tail = &j->member_next;
        int set_based = groupable(j);
        while (set_based && a->head && groupable(a->head) && j->n_members < APPLY_GROUP_MAX_JOBS &&
               records + job_records(a->head) <= APPLY_GROUP_MAX_RECORDS) {
            job_t *m = pop(a);
            m->leader = j;
            m->t0 = j->t0;
            records += job_records(m);
            *tail = m;
            tail = &m->member_next;
            j->n_members++;
        }
        free(j->group);
        j->group = set_based ? calloc((size_t)j->n_members, sizeof(*j->group)) : NULL;
        step_query(j, "BEGIN", 0, NULL, on_step);
        if (j->group) {
            queue_group_steps(j);
        } else if (set_based) {
            j->failed = 1;
            snprintf(j->err, sizeof(j->err), "out of memory forming a group");
        } else {
            queue_batch_steps(j);
        }
        /* After a failed step the transaction is aborted; COMMIT then rolls it back. */
        step_query(j, "COMMIT", 0, NULL, on_commit);
    }
    step_done(j);
}

static void drop_all(applier_t *a, job_t *first)
{
    /* The database went away: nothing queued can be applied now. Each child hears
       UNAVAILABLE and says HELLO again later; its rows wait in its outbox. */
    job_t *j = first;
    while (j) {
        job_t *next_member = j->member_next;
        if (!a->stopping)
            send_error(a, j, LT_WIRE_EUNAVAILABLE, "the node's database is unavailable; retry later");
        if (!a->stopping && j->kind == JOB_HELLO && a->hooks.welcomed)
            a->hooks.welcomed(a->hooks.arg, j->rid, j->rid_len, j->unit, 0);
        job_free(j);
        j = next_member ? next_member : pop(a);
    }
}

static job_t *sub_job(const job_t *parent, job_kind_t kind, uint32_t lo, uint32_t hi)
{
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->a = parent->a;
    j->kind = kind;
    j->solo = 1;
    memcpy(j->rid, parent->rid, parent->rid_len);
    j->rid_len = parent->rid_len;
    memcpy(j->unit, parent->unit, sizeof(j->unit));
    j->hold = parent->hold;
    j->hold->refs++;
    const lt_record_t *recs = parent->hold->msg.u.batch.records;
    j->lo = lo;
    j->hi = hi;
    j->prev = lo == parent->lo ? parent->prev : recs[lo - 1].seq;
    j->last = hi == parent->hi ? parent->last : recs[hi - 1].seq;
    snprintf(j->err, sizeof(j->err), "%s", parent->err);
    return j;
}

/* A committed batch: tell its child. */
static void answer_applied(applier_t *a, job_t *j)
{
    lt_stats_t *st = &a->d->stats;
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    if (strcmp(j->status, "gap") == 0) {
        st->down_gaps++;
        log_info("child %s: batch (%" PRIu64 ", %" PRIu64 "] leaves a gap after %" PRIu64 "; asking it to resume",
                 j->unit, j->prev, j->last, j->applied_upto);
        if (lt_wire_encode_resume(&sb, j->applied_upto, "gap: resend after this seq") == 0)
            send_msg(a, j, &sb);
    } else {
        if (strcmp(j->status, "duplicate") == 0)
            st->down_duplicates++;
        else
            st->down_batches++;
        st->down_records_applied += j->n_applied;
        st->down_records_rejected += j->n_rejects;
        for (uint32_t i = 0; i < j->n_rejects; i++)
            log_warn("child %s: seq %" PRIu64 " refused (%s): %s", j->unit, j->rejects[i].seq,
                     lt_wire_error_name(j->rejects[i].code), j->rejects[i].reason);
        log_debug("child %s: applied (%" PRIu64 ", %" PRIu64 "]: %" PRIu64 " records, %u refused, %s", j->unit,
                  j->prev, j->last, j->n_applied, j->n_rejects, j->status);
        if (lt_wire_encode_ack(&sb, j->applied_upto, (uint32_t)j->n_applied, j->rejects,
                               j->n_rejects > LT_WIRE_MAX_REJECTS ? LT_WIRE_MAX_REJECTS : j->n_rejects) == 0)
            send_msg(a, j, &sb);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A batch the database refused alone: split it, or quarantine its one record. */
static void split_refused(applier_t *a, job_t *j)
{
    job_t *x, *y;
    a->d->stats.down_bisections++;
    if (j->hi - j->lo > 1) {
        uint32_t mid = j->lo + (j->hi - j->lo) / 2;
        log_warn("child %s: batch (%" PRIu64 ", %" PRIu64 "] refused by the database (%s); "
                 "splitting %u records to find the refused one",
                 j->unit, j->prev, j->last, j->err, j->hi - j->lo);
        x = sub_job(j, JOB_APPLY, j->lo, mid);
        y = sub_job(j, JOB_APPLY, mid, j->hi);
        if (y)
            push_front(a, y);
        if (x)
            push_front(a, x);
    } else if ((x = sub_job(j, JOB_QUARANTINE, j->lo, j->hi)) != NULL) {
        push_front(a, x);
    }
}

static void finish(applier_t *a, job_t *j)
{
    lt_stats_t *st = &a->d->stats;
    msgpack_sbuffer sb;

    a->current = NULL;
    st->apply_ns_total += (lt_mono_ms() - j->t0) * 1000000u;
    if (j->db_lost && a->stopping) {
        /* the connection was closed on purpose: the transaction rolls back, no ACK
           went out, and the children send the same batches after the restart */
        log_info("child %s: stopping; the %s in progress is abandoned (rolled back, not acknowledged)%s",
                 j->unit, j->kind == JOB_HELLO ? "hello" : "apply",
                 a->queue_len + (size_t)j->n_members > 1 ? ", and so is the queue" : "");
        drop_all(a, j);
        return;
    }
    if (j->db_lost) {
        st->down_db_errors++;
        log_warn("child %s: database connection lost during %s; dropping %zu queued jobs", j->unit,
                 j->kind == JOB_HELLO ? "hello" : "apply", a->queue_len + (size_t)j->n_members - 1);
        drop_all(a, j);
        return;
    }
    msgpack_sbuffer_init(&sb);
    switch (j->kind) {
    case JOB_HELLO:
        for (job_t *m = j; m; m = m->member_next) {
            /* the transaction failed (every HELLO of it is unavailable), or this unit is
               not our child (refused, like 42501 insufficient_privilege) */
            if (j->failed || m->refused) {
                int refused = m->refused || strcmp(j->sqlstate, "42501") == 0;
                const char *err = m->refused ? m->err : j->err;
                if (refused)
                    st->down_refused_hellos++;
                else
                    st->down_db_errors++;
                log_warn("child %s: hello %s: %s", m->unit, refused ? "refused" : "failed", err);
                if (a->hooks.welcomed)
                    a->hooks.welcomed(a->hooks.arg, m->rid, m->rid_len, m->unit, 0);
                send_error(a, m, refused ? LT_WIRE_EUNAUTHORISED : LT_WIRE_EUNAVAILABLE, err);
            } else {
                log_info("child %s connected; resuming after seq %" PRIu64, m->unit, m->applied_upto);
                if (a->hooks.welcomed)
                    a->hooks.welcomed(a->hooks.arg, m->rid, m->rid_len, m->unit, 1);
                msgpack_sbuffer_clear(&sb);
                if (lt_wire_encode_welcome(&sb, a->d->cfg->unit, m->applied_upto, m->token) == 0)
                    send_msg(a, m, &sb);
            }
        }
        break;
    case JOB_QUARANTINE:
        if (j->failed) {
            st->down_db_errors++;
            log_error("child %s: could not quarantine seq %" PRIu64 ": %s", j->unit, j->last, j->err);
            send_error(a, j, LT_WIRE_EUNAVAILABLE, "could not record a refused record; retry later");
        } else {
            lt_reject_t rj = {.seq = j->last, .code = LT_WIRE_EDB_REJECTED};
            snprintf(rj.reason, sizeof(rj.reason), "%.200s", j->err);
            st->down_quarantined++;
            st->down_records_rejected++;
            log_warn("child %s: seq %" PRIu64 " refused by the database and quarantined: %s", j->unit, j->last,
                     j->err);
            if (lt_wire_encode_ack(&sb, j->applied_upto, 0, &rj, 1) == 0)
                send_msg(a, j, &sb);
        }
        break;
    case JOB_APPLY:
        if (!j->failed) {
            st->down_groups++;
            for (job_t *m = j; m; m = m->member_next)
                answer_applied(a, m);
        } else if (j->n_members == 1) {
            split_refused(a, j);
        } else {
            /* Nothing of the group was committed: run its batches one by one, in order. */
            log_info("a group of %d batches was refused (%s); applying them one at a time", j->n_members, j->err);
            job_t *members[APPLY_GROUP_MAX_JOBS];
            int n = 0;
            for (job_t *m = j; m && n < APPLY_GROUP_MAX_JOBS; m = m->member_next)
                members[n++] = m;
            for (int i = n - 1; i >= 0; i--) {
                job_t *m = members[i];
                m->solo = 1;
                m->failed = 0;
                m->leader = m->member_next = NULL;
                free(m->group);
                m->group = NULL;
                m->status[0] = '\0';
                m->applied_upto = m->n_applied = 0;
                free(m->rejects);
                m->rejects = NULL;
                m->n_rejects = 0;
                push_front(a, m);
            }
            msgpack_sbuffer_destroy(&sb);
            pump(a);
            return;
        }
        break;
    }
    msgpack_sbuffer_destroy(&sb);
    for (job_t *m = j->member_next, *next; m; m = next) {
        next = m->member_next;
        job_free(m);
    }
    job_free(j);
    pump(a);
}

static void pump(applier_t *a)
{
    while (!a->current && a->db_up && a->head) {
        job_t *j = pop(a);
        a->current = j;
        start(a, j); /* may finish synchronously and clear current */
    }
    a->d->stats.down_queue_bytes = a->queue_bytes;
}

/* ------------------------------------------------------------ API */

applier_t *applier_new(lt_daemon_t *d, pgconn_t *db, const applier_hooks_t *hooks)
{
    applier_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->d = d;
    a->db = db;
    a->hooks = *hooks;
    return a;
}

void applier_stop(applier_t *a)
{
    if (a)
        a->stopping = 1;
}

void applier_destroy(applier_t **a_p)
{
    applier_t *a = *a_p;
    job_t *j;
    if (!a)
        return;
    *a_p = NULL;
    while ((j = pop(a)) != NULL)
        job_free(j);
    /* a->current belongs to pending database callbacks; pgconn_destroy fails them,
       and they must not touch the applier: the owner destroys pgconn first. */
    free(a);
}

static job_t *new_job(applier_t *a, job_kind_t kind, const uint8_t *rid, size_t rid_len,
                      const char *unit)
{
    job_t *j;
    if (rid_len > sizeof(j->rid))
        return NULL;
    j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->a = a;
    j->kind = kind;
    memcpy(j->rid, rid, rid_len);
    j->rid_len = rid_len;
    snprintf(j->unit, sizeof(j->unit), "%s", unit);
    return j;
}

int applier_submit_hello(applier_t *a, const uint8_t *rid, size_t rid_len, const char *unit,
                         uint64_t child_max_seq)
{
    job_t *j = new_job(a, JOB_HELLO, rid, rid_len, unit);
    if (!j)
        return -1;
    if (!a->db_up) {
        /* The resume point is in the database: the child hears why at once, rather than
           waiting for an answer that comes only when the database is back. */
        send_error(a, j, LT_WIRE_EUNAVAILABLE, "the node's database is unavailable; retry later");
        if (a->hooks.welcomed)
            a->hooks.welcomed(a->hooks.arg, j->rid, j->rid_len, j->unit, 0);
        job_free(j);
        return 0;
    }
    j->child_max = child_max_seq;
    push_back(a, j);
    pump(a);
    return 0;
}

int applier_submit_batch(applier_t *a, const uint8_t *rid, size_t rid_len, const char *unit,
                         lt_msg_t *msg, size_t wire_bytes)
{
    /* decoded records take more room than their wire form */
    size_t bytes = wire_bytes + (size_t)msg->u.batch.n * sizeof(lt_record_t);
    job_t *j = NULL;
    batch_hold_t *h = NULL;

    if (a->queue_bytes + bytes > (size_t)a->d->cfg->apply_queue_bytes ||
        !(j = new_job(a, JOB_APPLY, rid, rid_len, unit)) || !(h = calloc(1, sizeof(*h)))) {
        free(j);
        lt_msg_clear(msg);
        return -1;
    }
    h->msg = *msg;
    memset(msg, 0, sizeof(*msg));
    h->refs = 1;
    h->bytes = bytes;
    j->hold = h;
    j->lo = 0;
    j->hi = h->msg.u.batch.n;
    j->prev = h->msg.u.batch.prev_seq;
    j->last = h->msg.u.batch.last_seq;
    push_back(a, j);
    pump(a);
    return 0;
}

void applier_db_state(applier_t *a, int up)
{
    a->db_up = up;
    if (up)
        pump(a);
    else if (!a->current && a->head) {
        job_t *j = pop(a);
        j->db_lost = 1;
        finish(a, j);
    }
}

size_t applier_queue_bytes(const applier_t *a)
{
    return a->queue_bytes;
}

size_t applier_queue_len(const applier_t *a)
{
    return a->queue_len;
}
