/*
 * wire_encode.c — protocol v1 encoders and the streaming batch writer. Every
 * encoder applies the record checks of wire_check.c to what it is given, so a
 * node never sends what a peer would reject; a failed encode leaves the buffer
 * as it was.
 */
#include "wire_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- encoding */

#define PK_STR(pk, s, n) (msgpack_pack_str((pk), (n)) | msgpack_pack_str_body((pk), (s), (n)))

static int pack_cstr(msgpack_packer *pk, const char *s) { return PK_STR(pk, s, strlen(s)); }

/* Free text cut to LT_WIRE_MAX_TEXT bytes, never inside a UTF-8 sequence. */
static int pack_text(msgpack_packer *pk, const char *s)
{
    if (!s)
        s = "";
    size_t n = strnlen(s, LT_WIRE_MAX_TEXT + 1);
    if (n > LT_WIRE_MAX_TEXT) {
        n = LT_WIRE_MAX_TEXT;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    return PK_STR(pk, s, n);
}

static int pack_head(msgpack_packer *pk, lt_msg_type_t type)
{
    return msgpack_pack_array(pk, 2 + lt_wire__msg_fields[type]) |
           msgpack_pack_uint8(pk, LT_WIRE_VERSION) | msgpack_pack_uint8(pk, (uint8_t)type);
}

static int pack_ts(msgpack_packer *pk, int64_t t)
{
    return t == -1 ? msgpack_pack_nil(pk) : msgpack_pack_uint64(pk, (uint64_t)t);
}

static int pack_value_rec(msgpack_packer *pk, uint64_t seq, const lt_value_rec_t *v)
{
    int rc = msgpack_pack_array(pk, REC_VALUE_FIELDS);
    rc |= msgpack_pack_uint64(pk, seq);
    rc |= msgpack_pack_uint8(pk, LT_REC_VALUE);
    rc |= pack_cstr(pk, v->unit);
    rc |= pack_cstr(pk, v->element);
    rc |= pack_cstr(pk, v->period);
    rc |= pack_cstr(pk, v->disagg);
    rc |= v->has_value ? msgpack_pack_double(pk, v->value) : msgpack_pack_nil(pk);
    rc |= msgpack_pack_uint64(pk, v->version);
    rc |= msgpack_pack_uint64(pk, v->changed_at_ms);
    return rc;
}

static int pack_case_rec(msgpack_packer *pk, uint64_t seq, const lt_case_rec_t *c)
{
    int rc = msgpack_pack_array(pk, REC_CASE_FIELDS);
    rc |= msgpack_pack_uint64(pk, seq);
    rc |= msgpack_pack_uint8(pk, LT_REC_CASE);
    rc |= pack_cstr(pk, c->case_id);
    rc |= pack_cstr(pk, c->unit);
    rc |= msgpack_pack_uint64(pk, c->version);
    rc |= msgpack_pack_uint64(pk, c->changed_at_ms);
    rc |= c->deleted ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    rc |= PK_STR(pk, &c->sex, 1);
    rc |= c->birth_ym[0] ? pack_cstr(pk, c->birth_ym) : msgpack_pack_nil(pk);
    rc |= c->ethnicity ? msgpack_pack_uint8(pk, (uint8_t)c->ethnicity) : msgpack_pack_nil(pk);
    rc |= c->village[0] ? pack_cstr(pk, c->village) : msgpack_pack_nil(pk);
    rc |= msgpack_pack_uint32(pk, c->categories);
    rc |= pack_cstr(pk, c->status);
    rc |= msgpack_pack_uint64(pk, (uint64_t)c->notified_at);
    rc |= pack_ts(pk, c->assessed_at);
    rc |= pack_ts(pk, c->emergency_at);
    rc |= pack_ts(pk, c->plan_drafted_at);
    rc |= pack_ts(pk, c->plan_approved_at);
    rc |= pack_ts(pk, c->reviewed_at);
    rc |= pack_ts(pk, c->closed_at);
    rc |= msgpack_pack_uint32(pk, c->services);
    return rc;
}

static int pack_submission_rec(msgpack_packer *pk, uint64_t seq, const lt_submission_rec_t *r)
{
    int rc = msgpack_pack_array(pk, REC_SUBMISSION_FIELDS);
    rc |= msgpack_pack_uint64(pk, seq);
    rc |= msgpack_pack_uint8(pk, LT_REC_SUBMISSION);
    rc |= pack_cstr(pk, r->unit);
    rc |= pack_cstr(pk, r->data_set);
    rc |= pack_cstr(pk, r->period);
    rc |= msgpack_pack_uint64(pk, r->version);
    rc |= msgpack_pack_uint64(pk, (uint64_t)r->submitted_at);
    rc |= msgpack_pack_uint64(pk, (uint64_t)r->first_submitted_at);
    rc |= pack_cstr(pk, r->status);
    rc |= r->decided_by[0] ? pack_cstr(pk, r->decided_by) : msgpack_pack_nil(pk);
    rc |= pack_ts(pk, r->decided_at);
    rc |= r->reason[0] ? pack_text(pk, r->reason) : msgpack_pack_nil(pk);
    return rc;
}

static int pack_resync_rec(msgpack_packer *pk, uint64_t seq, const lt_resync_rec_t *r)
{
    int rc = msgpack_pack_array(pk, REC_RESYNC_FIELDS);
    rc |= msgpack_pack_uint64(pk, seq);
    rc |= msgpack_pack_uint8(pk, LT_REC_RESYNC);
    rc |= pack_cstr(pk, r->unit);
    rc |= msgpack_pack_uint8(pk, (uint8_t)r->phase);
    return rc;
}

/* Undo a partly written message on failure. */
static int enc_done(msgpack_sbuffer *sb, size_t start, int rc)
{
    if (rc) {
        sb->size = start;
        return -1;
    }
    return 0;
}

int lt_wire_encode_hello(msgpack_sbuffer *sb, const char *unit, const char *software,
                         uint64_t max_seq, uint64_t sent_at_ms)
{
    if (!lt_valid_unit(unit) || !lt_wire__software_ok(software))
        return -1;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_HELLO);
    rc |= pack_cstr(&pk, unit);
    rc |= pack_cstr(&pk, software);
    rc |= msgpack_pack_uint64(&pk, max_seq);
    rc |= msgpack_pack_uint64(&pk, sent_at_ms);
    return enc_done(sb, start, rc);
}

int lt_wire_encode_welcome(msgpack_sbuffer *sb, const char *unit, uint64_t resume_after,
                           uint64_t token)
{
    if (!lt_valid_unit(unit))
        return -1;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_WELCOME);
    rc |= pack_cstr(&pk, unit);
    rc |= msgpack_pack_uint64(&pk, resume_after);
    rc |= msgpack_pack_uint64(&pk, token);
    return enc_done(sb, start, rc);
}

int lt_wire_encode_ack(msgpack_sbuffer *sb, uint64_t applied_upto, uint32_t n_applied,
                       const lt_reject_t *rejects, uint32_t n_rejects)
{
    if (n_rejects > LT_WIRE_MAX_REJECTS || (n_rejects && !rejects))
        return -1;
    for (uint32_t i = 0; i < n_rejects; i++)
        if (rejects[i].seq < 1 || rejects[i].code < 1)
            return -1;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_ACK);
    rc |= msgpack_pack_uint64(&pk, applied_upto);
    rc |= msgpack_pack_uint32(&pk, n_applied);
    rc |= msgpack_pack_array(&pk, n_rejects);
    for (uint32_t i = 0; i < n_rejects; i++) {
        rc |= msgpack_pack_array(&pk, 3);
        rc |= msgpack_pack_uint64(&pk, rejects[i].seq);
        rc |= msgpack_pack_uint8(&pk, rejects[i].code);
        rc |= pack_text(&pk, rejects[i].reason);
    }
    return enc_done(sb, start, rc);
}

int lt_wire_encode_resume(msgpack_sbuffer *sb, uint64_t resume_after, const char *reason)
{
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_RESUME);
    rc |= msgpack_pack_uint64(&pk, resume_after);
    rc |= pack_text(&pk, reason);
    return enc_done(sb, start, rc);
}

int lt_wire_encode_error(msgpack_sbuffer *sb, uint16_t code, const char *message)
{
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_ERROR);
    rc |= msgpack_pack_uint16(&pk, code);
    rc |= pack_text(&pk, message);
    return enc_done(sb, start, rc);
}

int lt_wire_encode_ping(msgpack_sbuffer *sb, lt_msg_type_t type, uint64_t ms)
{
    if (type != LT_MSG_PING && type != LT_MSG_PONG)
        return -1;
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, type);
    rc |= msgpack_pack_uint64(&pk, ms);
    return enc_done(sb, start, rc);
}

int lt_wire_encode_meta(msgpack_sbuffer *sb, uint64_t after, uint64_t upto,
                        const lt_meta_change_t *changes, uint32_t n)
{
    if (n > LT_WIRE_MAX_META_CHANGES || after > upto)
        return -1;
    uint64_t prev = after;
    for (uint32_t i = 0; i < n; i++) {
        if (changes[i].version <= prev || changes[i].version > upto ||
            lt_wire_check_meta_change(&changes[i], NULL, 0) < 0)
            return -1;
        prev = changes[i].version;
    }
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_META);
    rc |= msgpack_pack_uint64(&pk, after);
    rc |= msgpack_pack_uint64(&pk, upto);
    rc |= msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n && !rc; i++) {
        const lt_meta_change_t *m = &changes[i];
        rc |= msgpack_pack_array(&pk, META_CHANGE_FIELDS);
        rc |= msgpack_pack_uint64(&pk, m->version);
        rc |= pack_cstr(&pk, m->kind);
        rc |= pack_cstr(&pk, m->key);
        rc |= m->doc ? pack_cstr(&pk, m->doc) : msgpack_pack_nil(&pk);
        rc |= m->scope[0] ? pack_cstr(&pk, m->scope) : msgpack_pack_nil(&pk);
    }
    if (!rc && sb->size - start > LT_WIRE_MAX_FRAME)
        rc = -1;
    return enc_done(sb, start, rc);
}

int lt_wire_encode_meta_ack(msgpack_sbuffer *sb, uint64_t applied)
{
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_META_ACK);
    rc |= msgpack_pack_uint64(&pk, applied);
    return enc_done(sb, start, rc);
}

/* ----------------------------------------------------------- batch writer */

struct lt_batch_writer {
    msgpack_sbuffer body; /* the packed records */
    msgpack_packer pk;    /* packs into body */
    uint64_t prev_seq;
    uint64_t last_rec_seq; /* seq of the last record added, or prev_seq */
    uint32_t n;
    int closed; /* a resync marker was added: it is the batch's last record */
};

lt_batch_writer_t *lt_batch_new(void)
{
    lt_batch_writer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    msgpack_sbuffer_init(&self->body);
    msgpack_packer_init(&self->pk, &self->body, msgpack_sbuffer_write);
    return self;
}

void lt_batch_destroy(lt_batch_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_sbuffer_destroy(&(*self_p)->body);
    free(*self_p);
    *self_p = NULL;
}

void lt_batch_begin(lt_batch_writer_t *self, uint64_t prev_seq)
{
    self->body.size = 0;
    self->prev_seq = self->last_rec_seq = prev_seq;
    self->n = 0;
    self->closed = 0;
}

int lt_batch_closed(const lt_batch_writer_t *self) { return self->closed; }

uint32_t lt_batch_count(const lt_batch_writer_t *self) { return self->n; }

size_t lt_batch_size(const lt_batch_writer_t *self)
{
    return self->body.size + BATCH_HEADER_MAX;
}

/* Common tail of the two add functions: rc from packing, body size before. */
static int batch_added(lt_batch_writer_t *self, uint64_t seq, size_t start, int rc)
{
    if (rc || self->body.size + BATCH_HEADER_MAX > LT_WIRE_MAX_FRAME) {
        self->body.size = start;
        return -1;
    }
    self->last_rec_seq = seq;
    self->n++;
    return 0;
}

int lt_batch_add_value(lt_batch_writer_t *self, uint64_t seq, const lt_value_rec_t *v)
{
    if (seq <= self->last_rec_seq || self->n >= LT_WIRE_MAX_RECORDS || self->closed ||
        lt_wire_check_value(v, NULL, 0) < 0)
        return -1;
    size_t start = self->body.size;
    return batch_added(self, seq, start, pack_value_rec(&self->pk, seq, v));
}

int lt_batch_add_case(lt_batch_writer_t *self, uint64_t seq, const lt_case_rec_t *c)
{
    if (seq <= self->last_rec_seq || self->n >= LT_WIRE_MAX_RECORDS || self->closed ||
        lt_wire_check_case(c, NULL, 0) < 0)
        return -1;
    size_t start = self->body.size;
    return batch_added(self, seq, start, pack_case_rec(&self->pk, seq, c));
}

int lt_batch_add_submission(lt_batch_writer_t *self, uint64_t seq, const lt_submission_rec_t *r)
{
    if (seq <= self->last_rec_seq || self->n >= LT_WIRE_MAX_RECORDS || self->closed ||
        lt_wire_check_submission(r, NULL, 0) < 0)
        return -1;
    size_t start = self->body.size;
    return batch_added(self, seq, start, pack_submission_rec(&self->pk, seq, r));
}

int lt_batch_add_resync(lt_batch_writer_t *self, uint64_t seq, const lt_resync_rec_t *r)
{
    if (seq <= self->last_rec_seq || self->n >= LT_WIRE_MAX_RECORDS || self->closed ||
        lt_wire_check_resync(r, NULL, 0) < 0)
        return -1;
    size_t start = self->body.size;
    if (batch_added(self, seq, start, pack_resync_rec(&self->pk, seq, r)) < 0)
        return -1;
    self->closed = 1;
    return 0;
}

int lt_batch_finish(lt_batch_writer_t *self, msgpack_sbuffer *out, uint64_t last_seq,
                    uint64_t last_token)
{
    if (self->n == 0 || last_seq < self->last_rec_seq || (self->closed && last_seq != self->last_rec_seq))
        return -1;
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = pack_head(&pk, LT_MSG_BATCH);
    rc |= msgpack_pack_uint64(&pk, self->prev_seq);
    rc |= msgpack_pack_uint64(&pk, last_seq);
    rc |= msgpack_pack_array(&pk, self->n);
    rc |= msgpack_sbuffer_write(out, self->body.data, self->body.size);
    rc |= msgpack_pack_uint64(&pk, last_token);
    return enc_done(out, start, rc);
}

int lt_wire_encode_msg(msgpack_sbuffer *sb, const lt_msg_t *m)
{
    switch (m->type) {
    case LT_MSG_HELLO:
        return lt_wire_encode_hello(sb, m->u.hello.unit, m->u.hello.software,
                                    m->u.hello.max_seq, m->u.hello.sent_at_ms);
    case LT_MSG_WELCOME:
        return lt_wire_encode_welcome(sb, m->u.welcome.unit, m->u.welcome.resume_after,
                                      m->u.welcome.token);
    case LT_MSG_BATCH: {
        lt_batch_writer_t *w = lt_batch_new();
        if (!w)
            return -1;
        int rc = 0;
        lt_batch_begin(w, m->u.batch.prev_seq);
        for (uint32_t i = 0; i < m->u.batch.n && rc == 0; i++) {
            const lt_record_t *r = &m->u.batch.records[i];
            rc = r->kind == LT_REC_VALUE        ? lt_batch_add_value(w, r->seq, &r->u.v)
                 : r->kind == LT_REC_CASE       ? lt_batch_add_case(w, r->seq, &r->u.c)
                 : r->kind == LT_REC_SUBMISSION ? lt_batch_add_submission(w, r->seq, &r->u.s)
                 : r->kind == LT_REC_RESYNC     ? lt_batch_add_resync(w, r->seq, &r->u.r)
                                                : -1;
        }
        if (rc == 0)
            rc = lt_batch_finish(w, sb, m->u.batch.last_seq, m->u.batch.last_token);
        lt_batch_destroy(&w);
        return rc;
    }
    case LT_MSG_ACK:
        return lt_wire_encode_ack(sb, m->u.ack.applied_upto, m->u.ack.n_applied,
                                  m->u.ack.rejects, m->u.ack.n_rejects);
    case LT_MSG_RESUME:
        return lt_wire_encode_resume(sb, m->u.resume.resume_after, m->u.resume.reason);
    case LT_MSG_ERROR:
        return lt_wire_encode_error(sb, m->u.error.code, m->u.error.message);
    case LT_MSG_PING:
    case LT_MSG_PONG:
        return lt_wire_encode_ping(sb, m->type, m->u.ping.ms);
    case LT_MSG_META:
        return lt_wire_encode_meta(sb, m->u.meta.after, m->u.meta.upto, m->u.meta.changes, m->u.meta.n);
    case LT_MSG_META_ACK:
        return lt_wire_encode_meta_ack(sb, m->u.meta_ack.applied);
    }
    return -1;
}
