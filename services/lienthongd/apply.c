/*
 * apply.c — see apply.h. The order of work on the database connection is the order
 * of the queue; one job runs at a time, and its steps are queued together so the
 * server runs them back to back:
 *
 *   BEGIN  ->  for each batch of the group: COPY stage_value, COPY stage_case,
 *     [lt.apply_submissions], SELECT lt.apply_batch(child, prev, last)  ->  COMMIT
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
#define APPLY_GROUP_MAX_JOBS 64
#define APPLY_GROUP_MAX_RECORDS 20000

typedef struct job {
    struct job *next;        /* the queue */
    struct applier *a;
    struct job *leader;      /* the group's first job; NULL when this job leads */
    struct job *member_next; /* leader: the other jobs of its transaction */
    int n_members;           /* leader: jobs in the transaction, itself included */
    int solo;                /* never grouped (a retry after a failed group, a split) */
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

static void copy_value_row(pgtext_buf_t *s, uint64_t seq, const lt_value_rec_t *v)
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
    pgtext_add(s, "\n", 1);
}

static void copy_case_row(pgtext_buf_t *s, uint64_t seq, const lt_case_rec_t *c)
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
    pgtext_fmt(s, "\t%" PRIu32 "\n", c->services);
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
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        j->applied_upto = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
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

    for (uint32_t i = j->lo; i < j->hi; i++) {
        if (recs[i].kind == LT_REC_VALUE)
            copy_value_row(&vals, recs[i].seq, &recs[i].u.v);
        else if (recs[i].kind == LT_REC_CASE)
            copy_case_row(&cases, recs[i].seq, &recs[i].u.c);
        else
            submission_json(&subs, recs[i].seq, &recs[i].u.s);
    }
    if (subs.len)
        pgtext_add(&subs, "]", 1);
    if (vals.oom || cases.oom || subs.oom) {
        j->failed = leader_of(j)->failed = 1;
        snprintf(j->err, sizeof(j->err), "out of memory formatting the batch");
    } else {
        snprintf(p_prev, sizeof(p_prev), "%" PRIu64, j->prev);
        snprintf(p_last, sizeof(p_last), "%" PRIu64, j->last);
        const char *p[3] = {j->unit, p_prev, p_last};
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
        step_query(j, "SELECT kind, seq, n, code, reason FROM lt.apply_batch($1, $2::bigint, $3::bigint)", 3,
                   p, on_apply);
    }
    free(vals.buf);
    free(cases.buf);
    free(subs.buf);
}

static uint32_t job_records(const job_t *j)
{
    return j->hi - j->lo;
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
        snprintf(p_max, sizeof(p_max), "%" PRIu64, j->child_max);
        const char *p[2] = {j->unit, p_max};
        step_query(j, "SELECT lt.child_hello($1, $2::bigint)", 2, p, on_single);
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
           transaction, so many small batches share one fsync. A group that fails is
           retried one batch at a time. */
        uint32_t records = job_records(j);
        job_t **tail = &j->member_next;
        while (!j->solo && a->head && a->head->kind == JOB_APPLY && !a->head->solo &&
               j->n_members < APPLY_GROUP_MAX_JOBS && records + job_records(a->head) <= APPLY_GROUP_MAX_RECORDS) {
            job_t *m = pop(a);
            m->leader = j;
            m->t0 = j->t0;
            records += job_records(m);
            *tail = m;
            tail = &m->member_next;
            j->n_members++;
        }
        step_query(j, "BEGIN", 0, NULL, on_step);
        for (job_t *m = j; m; m = m->member_next)
            queue_batch_steps(m);
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
        send_error(a, j, LT_WIRE_EUNAVAILABLE, "the node's database is unavailable; retry later");
        if (j->kind == JOB_HELLO && a->hooks.welcomed)
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
        if (j->failed) {
            /* 42501 insufficient_privilege: not our child. Anything else is ours. */
            int refused = strcmp(j->sqlstate, "42501") == 0;
            if (refused)
                st->down_refused_hellos++;
            else
                st->down_db_errors++;
            log_warn("child %s: hello %s: %s", j->unit, refused ? "refused" : "failed", j->err);
            if (a->hooks.welcomed)
                a->hooks.welcomed(a->hooks.arg, j->rid, j->rid_len, j->unit, 0);
            send_error(a, j, refused ? LT_WIRE_EUNAUTHORISED : LT_WIRE_EUNAVAILABLE, j->err);
        } else {
            log_info("child %s connected; resuming after seq %" PRIu64, j->unit, j->applied_upto);
            if (a->hooks.welcomed)
                a->hooks.welcomed(a->hooks.arg, j->rid, j->rid_len, j->unit, 1);
            if (lt_wire_encode_welcome(&sb, a->d->cfg->unit, j->applied_upto) == 0)
                send_msg(a, j, &sb);
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
