/*
 * wire_decode.c — protocol v1 decoder (see wire.h and schemas/protocol.md).
 *
 * Decoding is two passes over the raw bytes. The pre-scan walks every msgpack
 * object and proves the frame is well formed: no length header claims more
 * than the bytes left, nesting stays within LT_WIRE_MAX_DEPTH, nothing trails.
 * Only then does the field reader run; it still bounds-checks every read, and
 * checks each field's type and range before it is stored. msgpack-c is used
 * for encoding only, so its trust in size headers never meets a peer's bytes.
 */
#include "wire_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- decoding */

typedef struct {
    const uint8_t *start, *p, *end;
    char *err;
    size_t errlen;
    int code;
    char where[64]; /* prefix of every reason, e.g. "batch record 3 (seq 17)" */
    uint64_t nfields; /* fields after [version, type] in the frame being read */
    size_t objects; /* pre-scan: objects seen so far */
} dec_t;

static int fail(dec_t *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(dec_t *d, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->where[0])
        lt_wire__errf(d->err, d->errlen, "%s: %s", d->where, msg);
    else
        lt_wire__errf(d->err, d->errlen, "%s", msg);
    d->code = code;
    return -1;
}

static uint64_t be_read(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Pre-scan one object and everything inside it; depth = containers around it. */
static int scan_object(dec_t *d, int depth)
{
    size_t at = (size_t)(d->p - d->start);
    if (d->p >= d->end)
        return fail(d, LT_WIRE_EMALFORMED, "frame ends early at byte %zu", at);
    if (++d->objects > (size_t)(d->end - d->start))
        return fail(d, LT_WIRE_EMALFORMED, "more objects than bytes");
    uint8_t b = *d->p++;
    int lenbytes = 0;  /* size of the length header that follows b */
    uint64_t skip = 0; /* payload bytes, for scalars, strings, bin and ext */
    uint64_t kids = 0; /* objects inside, for arrays and maps */
    int container = 0;
    int ext = 0;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        /* fixint, nil, bool: nothing follows */
    } else if (b <= 0x8f) {
        container = 1, kids = 2u * (b & 0x0fu);
    } else if (b <= 0x9f) {
        container = 1, kids = b & 0x0fu;
    } else if (b <= 0xbf) {
        skip = b & 0x1fu;
    } else {
        switch (b) {
        case 0xc4: case 0xd9: lenbytes = 1; break; /* bin8, str8 */
        case 0xc5: case 0xda: lenbytes = 2; break; /* bin16, str16 */
        case 0xc6: case 0xdb: lenbytes = 4; break; /* bin32, str32 */
        case 0xc7: lenbytes = 1, ext = 1; break;
        case 0xc8: lenbytes = 2, ext = 1; break;
        case 0xc9: lenbytes = 4, ext = 1; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break; /* fixext 1, 2, 4, 8, 16 plus type byte */
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: lenbytes = 2, container = 1; break;
        case 0xdd: lenbytes = 4, container = 1; break;
        case 0xde: lenbytes = 2, container = 2; break;
        case 0xdf: lenbytes = 4, container = 2; break;
        default: /* 0xc1 */
            return fail(d, LT_WIRE_EMALFORMED, "byte 0x%02x at %zu is not msgpack", b, at);
        }
    }
    if (lenbytes) {
        if (d->end - d->p < lenbytes)
            return fail(d, LT_WIRE_EMALFORMED, "frame ends inside a header at byte %zu", at);
        uint64_t n = be_read(d->p, lenbytes);
        d->p += lenbytes;
        if (container)
            kids = container == 2 ? 2 * n : n;
        else
            skip = n + (uint64_t)ext;
    }
    size_t left = (size_t)(d->end - d->p);
    if (!container) {
        if (skip > left)
            return fail(d, LT_WIRE_EMALFORMED,
                        "object at byte %zu claims %" PRIu64 " bytes; %zu left", at, skip, left);
        d->p += skip;
        return 0;
    }
    if (depth >= LT_WIRE_MAX_DEPTH)
        return fail(d, LT_WIRE_ETOO_DEEP, "nesting deeper than %d at byte %zu",
                    LT_WIRE_MAX_DEPTH, at);
    if (kids > left)
        return fail(d, LT_WIRE_EMALFORMED,
                    "container at byte %zu claims %" PRIu64 " objects; %zu bytes left", at,
                    kids, left);
    for (uint64_t i = 0; i < kids; i++)
        if (scan_object(d, depth + 1) < 0)
            return -1;
    return 0;
}

/* One object as read by the field reader. */
typedef enum { T_NIL, T_BOOL, T_UINT, T_NEG, T_FLOAT, T_STR, T_ARRAY, T_OTHER } tkind_t;
typedef struct {
    tkind_t t;
    uint64_t u;    /* T_UINT, T_BOOL; T_ARRAY: element count; T_STR: length */
    int64_t i;     /* T_NEG */
    double f;      /* T_FLOAT */
    const char *s; /* T_STR */
} item_t;

static const char *tname(const item_t *it)
{
    static const char *const names[] = {
        "nil", "a bool", "an unsigned integer", "a negative integer",
        "a float", "a string", "an array", "a map, bin or ext",
    };
    return names[it->t];
}

/* Read one object's header (and a string's bytes; an array's elements stay). */
static int read_item(dec_t *d, item_t *it)
{
    memset(it, 0, sizeof *it);
    if (d->p >= d->end)
        return fail(d, LT_WIRE_EMALFORMED, "frame ends early");
    uint8_t b = *d->p++;
    int n = 0; /* bytes of payload or length header */
    size_t left = (size_t)(d->end - d->p);

    if (b <= 0x7f) {
        it->t = T_UINT, it->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        it->t = T_NEG, it->i = (int8_t)b;
        return 0;
    }
    if (b >= 0x90 && b <= 0x9f) {
        it->t = T_ARRAY, it->u = b & 0x0fu;
        return 0;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        it->t = T_STR, it->u = b & 0x1fu;
        goto str_body;
    }
    switch (b) {
    case 0xc0: it->t = T_NIL; return 0;
    case 0xc2: case 0xc3: it->t = T_BOOL, it->u = b & 1u; return 0;
    case 0xcc: case 0xd0: case 0xd9: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xca: case 0xce: case 0xd2: n = 4; break;
    case 0xcb: case 0xcf: case 0xd3: n = 8; break;
    case 0xda: case 0xdc: n = 2; break;
    case 0xdb: case 0xdd: n = 4; break;
    default: it->t = T_OTHER; return 0;
    }
    if (left < (size_t)n)
        return fail(d, LT_WIRE_EMALFORMED, "frame ends early");
    uint64_t v = be_read(d->p, n);
    d->p += n;
    switch (b) {
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        it->t = T_UINT, it->u = v;
        return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int64_t s = n == 1 ? (int8_t)v : n == 2 ? (int16_t)v : n == 4 ? (int32_t)v : (int64_t)v;
        if (s >= 0)
            it->t = T_UINT, it->u = (uint64_t)s;
        else
            it->t = T_NEG, it->i = s;
        return 0;
    }
    case 0xca: {
        uint32_t w = (uint32_t)v;
        float f;
        memcpy(&f, &w, sizeof f);
        it->t = T_FLOAT, it->f = f;
        return 0;
    }
    case 0xcb:
        it->t = T_FLOAT;
        memcpy(&it->f, &v, sizeof it->f);
        return 0;
    case 0xdc: case 0xdd:
        it->t = T_ARRAY, it->u = v;
        return 0;
    default: /* str8, str16, str32 */
        it->t = T_STR, it->u = v;
        break;
    }
str_body:
    if ((size_t)(d->end - d->p) < it->u)
        return fail(d, LT_WIRE_EMALFORMED, "frame ends inside a string");
    it->s = (const char *)d->p;
    d->p += it->u;
    return 0;
}

static int get_uint(dec_t *d, const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
    item_t it;
    if (read_item(d, &it) < 0)
        return -1;
    if (it.t != T_UINT)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s: expected an unsigned integer, got %s", name,
                    tname(&it));
    if (it.u < min || it.u > max)
        return fail(d, LT_WIRE_EBAD_FIELD,
                    "%s %" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, name, it.u, min,
                    max);
    *out = it.u;
    return 0;
}

/* Like get_uint, or nil: then *out is left alone and *is_nil set. */
static int get_uint_or_nil(dec_t *d, const char *name, uint64_t min, uint64_t max,
                           uint64_t *out, int *is_nil)
{
    const uint8_t *p = d->p;
    *is_nil = p < d->end && *p == 0xc0;
    if (*is_nil) {
        d->p++;
        return 0;
    }
    return get_uint(d, name, min, max, out);
}

/* A string of minlen..dstsize-1 bytes without NUL, copied and terminated.
 * With nil_ok, nil gives "". */
static int get_str(dec_t *d, const char *name, size_t minlen, char *dst, size_t dstsize,
                   int nil_ok)
{
    item_t it;
    char b[72];
    if (read_item(d, &it) < 0)
        return -1;
    if (it.t == T_NIL && nil_ok) {
        dst[0] = '\0';
        return 0;
    }
    if (it.t != T_STR)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s: expected a string, got %s", name, tname(&it));
    if (it.u >= dstsize)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s %s is %" PRIu64 " bytes; at most %zu", name,
                    lt_wire__quote(b, it.s, (size_t)it.u), it.u, dstsize - 1);
    if (it.u < minlen)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s is empty", name);
    if (memchr(it.s, '\0', (size_t)it.u))
        return fail(d, LT_WIRE_EBAD_FIELD, "%s contains a NUL byte", name);
    memcpy(dst, it.s, (size_t)it.u);
    dst[it.u] = '\0';
    return 0;
}

static int get_array(dec_t *d, const char *name, uint64_t *n)
{
    item_t it;
    if (read_item(d, &it) < 0)
        return -1;
    if (it.t != T_ARRAY)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s: expected an array, got %s", name, tname(&it));
    *n = it.u;
    return 0;
}

static int get_unit(dec_t *d, const char *name, char dst[6])
{
    char b[72];
    if (get_str(d, name, 0, dst, 6, 0) < 0)
        return -1;
    if (!lt_valid_unit(dst))
        return fail(d, LT_WIRE_EBAD_FIELD, "%s %s is not a unit code", name, q(b, dst));
    return 0;
}

/* A case timestamp: uint in [LT_WIRE_TS_MIN, LT_WIRE_TS_END), or nil (-1). */
static int get_ts(dec_t *d, const char *name, int nil_ok, int64_t *out)
{
    uint64_t u = 0;
    int is_nil = 0;
    if ((nil_ok ? get_uint_or_nil(d, name, 0, UINT64_MAX, &u, &is_nil)
                : get_uint(d, name, 0, UINT64_MAX, &u)) < 0)
        return -1;
    if (is_nil) {
        *out = -1;
        return 0;
    }
    if (u < (uint64_t)LT_WIRE_TS_MIN || u >= (uint64_t)LT_WIRE_TS_END)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s %" PRIu64 " is outside [2000-01-01, 2100-01-01)",
                    name, u);
    *out = (int64_t)u;
    return 0;
}

static int decode_value_rec(dec_t *d, lt_value_rec_t *v)
{
    item_t it;
    char why[200];
    if (get_str(d, "unit", 0, v->unit, sizeof v->unit, 0) < 0 ||
        get_str(d, "element", 0, v->element, sizeof v->element, 0) < 0 ||
        get_str(d, "period", 0, v->period, sizeof v->period, 0) < 0 ||
        get_str(d, "disagg", 0, v->disagg, sizeof v->disagg, 0) < 0 || read_item(d, &it) < 0)
        return -1;
    switch (it.t) {
    case T_NIL: v->has_value = 0; break;
    case T_UINT: v->has_value = 1, v->value = (double)it.u; break;
    case T_NEG: v->has_value = 1, v->value = (double)it.i; break;
    case T_FLOAT: v->has_value = 1, v->value = it.f; break;
    default:
        return fail(d, LT_WIRE_EBAD_FIELD, "value: expected a number or nil, got %s",
                    tname(&it));
    }
    if (get_uint(d, "version", 1, UINT64_MAX, &v->version) < 0 ||
        get_uint(d, "changed_at_ms", 0, UINT64_MAX, &v->changed_at_ms) < 0)
        return -1;
    if (lt_wire_check_value(v, why, sizeof why) < 0)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s", why);
    return 0;
}

static int decode_case_rec(dec_t *d, lt_case_rec_t *c)
{
    item_t it;
    char why[200], sex[2];
    uint64_t u = 0;
    int is_nil = 0;
    if (get_str(d, "case_id", 0, c->case_id, sizeof c->case_id, 0) < 0 ||
        get_str(d, "unit", 0, c->unit, sizeof c->unit, 0) < 0 ||
        get_uint(d, "version", 1, UINT64_MAX, &c->version) < 0 ||
        get_uint(d, "changed_at_ms", 0, UINT64_MAX, &c->changed_at_ms) < 0 ||
        read_item(d, &it) < 0)
        return -1;
    if (it.t != T_BOOL)
        return fail(d, LT_WIRE_EBAD_FIELD, "deleted: expected a bool, got %s", tname(&it));
    c->deleted = (int)it.u;
    if (get_str(d, "sex", 1, sex, sizeof sex, 0) < 0 ||
        get_str(d, "birth_ym", 1, c->birth_ym, sizeof c->birth_ym, 1) < 0 ||
        get_uint_or_nil(d, "ethnicity", 1, 99, &u, &is_nil) < 0)
        return -1;
    c->sex = sex[0];
    c->ethnicity = is_nil ? 0 : (int)u;
    if (get_str(d, "village", 1, c->village, sizeof c->village, 1) < 0 ||
        get_uint(d, "categories", 0, UINT32_MAX, &u) < 0)
        return -1;
    c->categories = (uint32_t)u;
    if (get_str(d, "status", 0, c->status, sizeof c->status, 0) < 0 ||
        get_ts(d, "notified_at", 0, &c->notified_at) < 0 ||
        get_ts(d, "assessed_at", 1, &c->assessed_at) < 0 ||
        get_ts(d, "emergency_at", 1, &c->emergency_at) < 0 ||
        get_ts(d, "plan_drafted_at", 1, &c->plan_drafted_at) < 0 ||
        get_ts(d, "plan_approved_at", 1, &c->plan_approved_at) < 0 ||
        get_ts(d, "reviewed_at", 1, &c->reviewed_at) < 0 ||
        get_ts(d, "closed_at", 1, &c->closed_at) < 0 ||
        get_uint(d, "services", 0, UINT32_MAX, &u) < 0)
        return -1;
    c->services = (uint32_t)u;
    if (lt_wire_check_case(c, why, sizeof why) < 0)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s", why);
    return 0;
}

static int decode_submission_rec(dec_t *d, lt_submission_rec_t *r)
{
    char why[200];
    uint64_t u = 0;
    if (get_str(d, "unit", 0, r->unit, sizeof r->unit, 0) < 0 ||
        get_str(d, "data_set", 0, r->data_set, sizeof r->data_set, 0) < 0 ||
        get_str(d, "period", 0, r->period, sizeof r->period, 0) < 0 ||
        get_uint(d, "version", 1, INT64_MAX, &r->version) < 0 ||
        get_uint(d, "submitted_at", 0, UINT64_MAX, &u) < 0)
        return -1;
    r->submitted_at = (int64_t)(u & INT64_MAX);
    if (get_uint(d, "first_submitted_at", 0, UINT64_MAX, &u) < 0)
        return -1;
    r->first_submitted_at = (int64_t)(u & INT64_MAX);
    if (get_str(d, "status", 0, r->status, sizeof r->status, 0) < 0 ||
        get_str(d, "decided_by", 1, r->decided_by, sizeof r->decided_by, 1) < 0 ||
        get_ts(d, "decided_at", 1, &r->decided_at) < 0 ||
        get_str(d, "reason", 1, r->reason, sizeof r->reason, 1) < 0)
        return -1;
    if (lt_wire_check_submission(r, why, sizeof why) < 0)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s", why);
    return 0;
}

static int decode_resync_rec(dec_t *d, lt_resync_rec_t *r)
{
    char why[200];
    uint64_t phase = 0;
    if (get_str(d, "unit", 0, r->unit, sizeof r->unit, 0) < 0 ||
        get_uint(d, "phase", 0, UINT8_MAX, &phase) < 0)
        return -1;
    r->phase = (int)phase;
    if (lt_wire_check_resync(r, why, sizeof why) < 0)
        return fail(d, LT_WIRE_EBAD_FIELD, "%s", why);
    return 0;
}

/* Record i of a batch covering (prev, last]; after is the previous record's seq. */
static int decode_record(dec_t *d, uint32_t i, uint64_t prev, uint64_t last, uint64_t after,
                         lt_record_t *r)
{
    uint64_t n = 0, kind = 0;
    snprintf(d->where, sizeof d->where, "batch record %" PRIu32, i);
    if (get_array(d, "record", &n) < 0)
        return -1;
    if (n < 2)
        return fail(d, LT_WIRE_EBAD_FIELD, "record has %" PRIu64 " fields", n);
    if (get_uint(d, "seq", 1, UINT64_MAX, &r->seq) < 0)
        return -1;
    snprintf(d->where, sizeof d->where, "batch record %" PRIu32 " (seq %" PRIu64 ")", i, r->seq);
    if (r->seq <= prev || r->seq > last)
        return fail(d, LT_WIRE_EBAD_FIELD,
                    "seq is outside (prev_seq, last_seq] = (%" PRIu64 ", %" PRIu64 "]", prev,
                    last);
    if (r->seq <= after)
        return fail(d, LT_WIRE_EBAD_FIELD, "seq does not follow seq %" PRIu64, after);
    if (get_uint(d, "kind", 0, UINT64_MAX, &kind) < 0)
        return -1;
    if (kind != LT_REC_VALUE && kind != LT_REC_CASE && kind != LT_REC_SUBMISSION &&
        kind != LT_REC_RESYNC)
        return fail(d, LT_WIRE_EBAD_FIELD, "kind %" PRIu64 " is not a record kind", kind);
    r->kind = (lt_rec_kind_t)kind;
    uint64_t want = kind == LT_REC_VALUE        ? REC_VALUE_FIELDS
                    : kind == LT_REC_CASE       ? REC_CASE_FIELDS
                    : kind == LT_REC_SUBMISSION ? REC_SUBMISSION_FIELDS
                                                : REC_RESYNC_FIELDS;
    if (n != want)
        return fail(d, LT_WIRE_EBAD_FIELD, "record of kind %" PRIu64 " has %" PRIu64
                    " fields; expected %" PRIu64, kind, n, want);
    return kind == LT_REC_VALUE        ? decode_value_rec(d, &r->u.v)
           : kind == LT_REC_CASE       ? decode_case_rec(d, &r->u.c)
           : kind == LT_REC_SUBMISSION ? decode_submission_rec(d, &r->u.s)
                                       : decode_resync_rec(d, &r->u.r);
}

static int decode_batch(dec_t *d, lt_msg_t *m)
{
    uint64_t prev = 0, last = 0, n = 0;
    if (get_uint(d, "prev_seq", 0, UINT64_MAX, &prev) < 0 ||
        get_uint(d, "last_seq", 1, UINT64_MAX, &last) < 0)
        return -1;
    if (prev >= last)
        return fail(d, LT_WIRE_EBAD_FIELD,
                    "prev_seq %" PRIu64 " is not below last_seq %" PRIu64, prev, last);
    if (get_array(d, "records", &n) < 0)
        return -1;
    if (n == 0)
        return fail(d, LT_WIRE_EBAD_FIELD, "records is empty");
    if (n > LT_WIRE_MAX_RECORDS)
        return fail(d, LT_WIRE_ETOO_LARGE, "%" PRIu64 " records; at most %d", n,
                    LT_WIRE_MAX_RECORDS);
    if (n * REC_MIN_BYTES > (uint64_t)(d->end - d->p))
        return fail(d, LT_WIRE_EBAD_FIELD, "%" PRIu64 " records cannot fit in %zu bytes", n,
                    (size_t)(d->end - d->p));
    m->u.batch.records = calloc((size_t)n, sizeof *m->u.batch.records);
    if (!m->u.batch.records)
        return fail(d, LT_WIRE_ETOO_LARGE, "out of memory for %" PRIu64 " records", n);
    m->u.batch.prev_seq = prev;
    m->u.batch.last_seq = last;
    m->u.batch.n = (uint32_t)n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t after = i ? m->u.batch.records[i - 1].seq : prev;
        if (decode_record(d, i, prev, last, after, &m->u.batch.records[i]) < 0)
            return -1;
        if (m->u.batch.records[i].kind == LT_REC_RESYNC && i + 1 < n)
            return fail(d, LT_WIRE_EBAD_FIELD, "a resync marker must be the last record of its batch");
    }
    snprintf(d->where, sizeof d->where, "batch");
    if (d->nfields > 3)
        return get_uint(d, "last_token", 0, UINT64_MAX, &m->u.batch.last_token);
    return 0;
}

static int decode_ack(dec_t *d, lt_msg_t *m)
{
    uint64_t upto = 0, applied = 0, n = 0, code = 0, nf = 0;
    if (get_uint(d, "applied_upto", 0, UINT64_MAX, &upto) < 0 ||
        get_uint(d, "n_applied", 0, UINT32_MAX, &applied) < 0 ||
        get_array(d, "rejects", &n) < 0)
        return -1;
    m->u.ack.applied_upto = upto;
    m->u.ack.n_applied = (uint32_t)applied;
    if (n > LT_WIRE_MAX_REJECTS)
        return fail(d, LT_WIRE_ETOO_LARGE, "%" PRIu64 " rejects; at most %d", n,
                    LT_WIRE_MAX_REJECTS);
    if (n == 0)
        return 0;
    if (n * REJECT_MIN_BYTES > (uint64_t)(d->end - d->p))
        return fail(d, LT_WIRE_EBAD_FIELD, "%" PRIu64 " rejects cannot fit in %zu bytes", n,
                    (size_t)(d->end - d->p));
    lt_reject_t *rj = calloc((size_t)n, sizeof *rj);
    if (!rj)
        return fail(d, LT_WIRE_ETOO_LARGE, "out of memory for %" PRIu64 " rejects", n);
    m->u.ack.rejects = rj;
    m->u.ack.n_rejects = (uint32_t)n;
    for (uint32_t i = 0; i < n; i++) {
        snprintf(d->where, sizeof d->where, "ack reject %" PRIu32, i);
        if (get_array(d, "reject", &nf) < 0)
            return -1;
        if (nf != 3)
            return fail(d, LT_WIRE_EBAD_FIELD, "reject has %" PRIu64 " fields; expected 3", nf);
        if (get_uint(d, "seq", 1, UINT64_MAX, &rj[i].seq) < 0 ||
            get_uint(d, "code", 1, 255, &code) < 0 ||
            get_str(d, "reason", 0, rj[i].reason, sizeof rj[i].reason, 0) < 0)
            return -1;
        rj[i].code = (uint8_t)code;
    }
    return 0;
}

static int decode_meta(dec_t *d, lt_msg_t *m)
{
    uint64_t after = 0, upto = 0, n = 0, nf = 0;
    char why[200];
    if (get_uint(d, "after", 0, INT64_MAX, &after) < 0 || get_uint(d, "upto", 0, INT64_MAX, &upto) < 0 ||
        get_array(d, "changes", &n) < 0)
        return -1;
    if (after > upto)
        return fail(d, LT_WIRE_EBAD_FIELD, "after %" PRIu64 " is above upto %" PRIu64, after, upto);
    if (n > LT_WIRE_MAX_META_CHANGES)
        return fail(d, LT_WIRE_ETOO_LARGE, "%" PRIu64 " changes; at most %d", n, LT_WIRE_MAX_META_CHANGES);
    if (n * 6 > (uint64_t)(d->end - d->p))
        return fail(d, LT_WIRE_EBAD_FIELD, "%" PRIu64 " changes cannot fit in %zu bytes", n,
                    (size_t)(d->end - d->p));
    m->u.meta.after = after;
    m->u.meta.upto = upto;
    if (n == 0)
        return 0;
    m->u.meta.changes = calloc((size_t)n, sizeof *m->u.meta.changes);
    if (!m->u.meta.changes)
        return fail(d, LT_WIRE_ETOO_LARGE, "out of memory for %" PRIu64 " changes", n);
    m->u.meta.n = (uint32_t)n;
    uint64_t prev = after;
    for (uint32_t i = 0; i < n; i++) {
        lt_meta_change_t *c = &m->u.meta.changes[i];
        item_t it;
        snprintf(d->where, sizeof d->where, "meta change %" PRIu32, i);
        if (get_array(d, "change", &nf) < 0)
            return -1;
        if (nf != META_CHANGE_FIELDS)
            return fail(d, LT_WIRE_EBAD_FIELD, "change has %" PRIu64 " fields; expected %d", nf,
                        META_CHANGE_FIELDS);
        if (get_uint(d, "version", 1, INT64_MAX, &c->version) < 0 ||
            get_str(d, "kind", 1, c->kind, sizeof c->kind, 0) < 0 ||
            get_str(d, "key", 1, c->key, sizeof c->key, 0) < 0 || read_item(d, &it) < 0)
            return -1;
        if (c->version <= prev || c->version > upto)
            return fail(d, LT_WIRE_EBAD_FIELD, "version %" PRIu64 " is not inside (%" PRIu64 ", %" PRIu64 "]",
                        c->version, prev, upto);
        prev = c->version;
        if (it.t == T_STR) {
            if (it.u > LT_WIRE_MAX_META_DOC)
                return fail(d, LT_WIRE_EBAD_FIELD, "doc is %" PRIu64 " bytes; at most %d", it.u,
                            LT_WIRE_MAX_META_DOC);
            if (memchr(it.s, '\0', (size_t)it.u))
                return fail(d, LT_WIRE_EBAD_FIELD, "doc contains a NUL byte");
            if (!(c->doc = malloc((size_t)it.u + 1)))
                return fail(d, LT_WIRE_ETOO_LARGE, "out of memory for a doc");
            memcpy(c->doc, it.s, (size_t)it.u);
            c->doc[it.u] = '\0';
        } else if (it.t != T_NIL) {
            return fail(d, LT_WIRE_EBAD_FIELD, "doc: expected a string or nil, got %s", tname(&it));
        }
        if (get_str(d, "scope", 1, c->scope, sizeof c->scope, 1) < 0)
            return -1;
        if (lt_wire_check_meta_change(c, why, sizeof why) < 0)
            return fail(d, LT_WIRE_EBAD_FIELD, "%s", why);
    }
    return 0;
}

static int decode_body(dec_t *d, lt_msg_t *m)
{
    uint64_t u = 0;
    switch (m->type) {
    case LT_MSG_HELLO:
        if (get_unit(d, "unit", m->u.hello.unit) < 0 ||
            get_str(d, "software", 0, m->u.hello.software, sizeof m->u.hello.software, 0) < 0)
            return -1;
        if (!lt_wire__software_ok(m->u.hello.software))
            return fail(d, LT_WIRE_EBAD_FIELD, "software is not printable ASCII");
        return get_uint(d, "max_seq", 0, UINT64_MAX, &m->u.hello.max_seq) < 0 ||
                       get_uint(d, "sent_at_ms", 0, UINT64_MAX, &m->u.hello.sent_at_ms) < 0
                   ? -1
                   : 0;
    case LT_MSG_WELCOME:
        if (get_unit(d, "parent_unit", m->u.welcome.unit) < 0 ||
            get_uint(d, "resume_after", 0, UINT64_MAX, &m->u.welcome.resume_after) < 0)
            return -1;
        return d->nfields > 2 ? get_uint(d, "token", 0, UINT64_MAX, &m->u.welcome.token) : 0;
    case LT_MSG_BATCH:
        return decode_batch(d, m);
    case LT_MSG_ACK:
        return decode_ack(d, m);
    case LT_MSG_RESUME:
        return get_uint(d, "resume_after", 0, UINT64_MAX, &m->u.resume.resume_after) < 0 ||
                       get_str(d, "reason", 0, m->u.resume.reason, sizeof m->u.resume.reason,
                               0) < 0
                   ? -1
                   : 0;
    case LT_MSG_ERROR:
        if (get_uint(d, "code", 0, UINT16_MAX, &u) < 0)
            return -1;
        m->u.error.code = (uint16_t)u;
        return get_str(d, "message", 0, m->u.error.message, sizeof m->u.error.message, 0);
    case LT_MSG_PING:
    case LT_MSG_PONG:
        return get_uint(d, "ms", 0, UINT64_MAX, &m->u.ping.ms);
    case LT_MSG_META:
        return decode_meta(d, m);
    case LT_MSG_META_ACK:
        return get_uint(d, "applied", 0, INT64_MAX, &m->u.meta_ack.applied);
    }
    return fail(d, LT_WIRE_EBAD_TYPE, "unknown message type");
}

/* The version is read before anything else, so that a later version may change
 * everything after it. 1 with *version set when the frame starts [uint, ...]. */
static int peek_version(const void *buf, size_t len, uint64_t *version)
{
    dec_t d = {.start = buf, .p = buf, .end = (const uint8_t *)buf + len};
    item_t it;
    if (read_item(&d, &it) < 0 || it.t != T_ARRAY || it.u == 0 || read_item(&d, &it) < 0 ||
        it.t != T_UINT)
        return 0;
    *version = it.u;
    return 1;
}

int lt_wire_decode(const void *buf, size_t len, lt_msg_t *msg, char *err, size_t errlen,
                   int *code)
{
    const uint8_t *start = buf ? buf : (const uint8_t *)"";
    dec_t d = {.start = start, .p = start, .end = start + (buf ? len : 0),
               .err = err, .errlen = errlen};
    item_t it;
    uint64_t version = 0, type, nfields;

    memset(msg, 0, sizeof *msg);
    lt_wire__errf(err, errlen, "%s", "");
    len = (size_t)(d.end - d.start);
    if (len > LT_WIRE_MAX_FRAME) {
        fail(&d, LT_WIRE_ETOO_LARGE, "frame of %zu bytes is over the %u-byte cap", len,
             LT_WIRE_MAX_FRAME);
        goto fail;
    }
    if (len == 0) {
        fail(&d, LT_WIRE_EMALFORMED, "empty frame");
        goto fail;
    }
    if (peek_version(start, len, &version) && version != LT_WIRE_VERSION) {
        fail(&d, LT_WIRE_EBAD_VERSION, "unsupported protocol version %" PRIu64
             "; this node speaks %d", version, LT_WIRE_VERSION);
        goto fail;
    }
    if (scan_object(&d, 0) < 0)
        goto fail;
    if (d.p != d.end) {
        fail(&d, LT_WIRE_EMALFORMED, "%zu trailing bytes after the message",
             (size_t)(d.end - d.p));
        goto fail;
    }

    d.p = d.start;
    if (read_item(&d, &it) < 0)
        goto fail;
    if (it.t != T_ARRAY || it.u < 2) {
        fail(&d, LT_WIRE_EMALFORMED, "frame is not an array [version, type, ...]");
        goto fail;
    }
    nfields = it.u - 2;
    if (read_item(&d, &it) < 0)
        goto fail;
    if (it.t != T_UINT) {
        fail(&d, LT_WIRE_EMALFORMED, "version is %s, not an unsigned integer", tname(&it));
        goto fail;
    }
    if (read_item(&d, &it) < 0)
        goto fail;
    if (it.t != T_UINT || it.u < LT_MSG_HELLO || it.u > LT_MSG_META_ACK) {
        if (it.t == T_UINT)
            fail(&d, LT_WIRE_EBAD_TYPE, "unknown message type %" PRIu64, it.u);
        else
            fail(&d, LT_WIRE_EBAD_TYPE, "message type is %s, not an unsigned integer",
                 tname(&it));
        goto fail;
    }
    type = it.u;
    msg->type = (lt_msg_type_t)type;
    snprintf(d.where, sizeof d.where, "%s", lt_wire__msg_names[type]);
    if (nfields < lt_wire__msg_fields_min[type] || nfields > lt_wire__msg_fields[type]) {
        if (lt_wire__msg_fields_min[type] == lt_wire__msg_fields[type])
            fail(&d, LT_WIRE_EBAD_FIELD, "%" PRIu64 " fields after the type; expected %" PRIu32,
                 nfields, lt_wire__msg_fields[type]);
        else
            fail(&d, LT_WIRE_EBAD_FIELD,
                 "%" PRIu64 " fields after the type; expected %" PRIu32 " or %" PRIu32, nfields,
                 lt_wire__msg_fields_min[type], lt_wire__msg_fields[type]);
        goto fail;
    }
    d.nfields = nfields;
    if (decode_body(&d, msg) < 0)
        goto fail;
    if (d.p != d.end) { /* cannot happen after the pre-scan and exact counts */
        fail(&d, LT_WIRE_EMALFORMED, "bytes left after the last field");
        goto fail;
    }
    if (code)
        *code = 0;
    return 0;
fail:
    lt_msg_clear(msg);
    if (code)
        *code = d.code;
    return -d.code;
}

void lt_msg_clear(lt_msg_t *msg)
{
    if (!msg)
        return;
    if (msg->type == LT_MSG_BATCH)
        free(msg->u.batch.records);
    else if (msg->type == LT_MSG_ACK)
        free(msg->u.ack.rejects);
    else if (msg->type == LT_MSG_META && msg->u.meta.changes) {
        for (uint32_t i = 0; i < msg->u.meta.n; i++)
            free(msg->u.meta.changes[i].doc);
        free(msg->u.meta.changes);
    }
    memset(msg, 0, sizeof *msg);
}

/* ---------------------------------------------------------------- compare */

static int value_equal(const lt_value_rec_t *a, const lt_value_rec_t *b)
{
    return !strcmp(a->unit, b->unit) && !strcmp(a->element, b->element) &&
           !strcmp(a->period, b->period) && !strcmp(a->disagg, b->disagg) &&
           a->has_value == b->has_value && (!a->has_value || a->value == b->value) &&
           a->version == b->version && a->changed_at_ms == b->changed_at_ms;
}

static int case_equal(const lt_case_rec_t *a, const lt_case_rec_t *b)
{
    return !strcmp(a->case_id, b->case_id) && !strcmp(a->unit, b->unit) &&
           a->version == b->version && a->changed_at_ms == b->changed_at_ms &&
           a->deleted == b->deleted && a->sex == b->sex && !strcmp(a->birth_ym, b->birth_ym) &&
           a->ethnicity == b->ethnicity && !strcmp(a->village, b->village) &&
           a->categories == b->categories && !strcmp(a->status, b->status) &&
           a->notified_at == b->notified_at && a->assessed_at == b->assessed_at &&
           a->emergency_at == b->emergency_at && a->plan_drafted_at == b->plan_drafted_at &&
           a->plan_approved_at == b->plan_approved_at && a->reviewed_at == b->reviewed_at &&
           a->closed_at == b->closed_at && a->services == b->services;
}

int lt_msg_equal(const lt_msg_t *a, const lt_msg_t *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case LT_MSG_HELLO:
        return !strcmp(a->u.hello.unit, b->u.hello.unit) &&
               !strcmp(a->u.hello.software, b->u.hello.software) &&
               a->u.hello.max_seq == b->u.hello.max_seq &&
               a->u.hello.sent_at_ms == b->u.hello.sent_at_ms;
    case LT_MSG_WELCOME:
        return !strcmp(a->u.welcome.unit, b->u.welcome.unit) &&
               a->u.welcome.resume_after == b->u.welcome.resume_after &&
               a->u.welcome.token == b->u.welcome.token;
    case LT_MSG_BATCH:
        if (a->u.batch.prev_seq != b->u.batch.prev_seq ||
            a->u.batch.last_seq != b->u.batch.last_seq || a->u.batch.n != b->u.batch.n ||
            a->u.batch.last_token != b->u.batch.last_token)
            return 0;
        for (uint32_t i = 0; i < a->u.batch.n; i++) {
            const lt_record_t *x = &a->u.batch.records[i], *y = &b->u.batch.records[i];
            if (x->seq != y->seq || x->kind != y->kind ||
                !(x->kind == LT_REC_VALUE        ? value_equal(&x->u.v, &y->u.v)
                  : x->kind == LT_REC_CASE       ? case_equal(&x->u.c, &y->u.c)
                  : x->kind == LT_REC_SUBMISSION ? memcmp(&x->u.s, &y->u.s, sizeof x->u.s) == 0
                                                 : !strcmp(x->u.r.unit, y->u.r.unit) &&
                                                       x->u.r.phase == y->u.r.phase))
                return 0;
        }
        return 1;
    case LT_MSG_ACK:
        if (a->u.ack.applied_upto != b->u.ack.applied_upto ||
            a->u.ack.n_applied != b->u.ack.n_applied ||
            a->u.ack.n_rejects != b->u.ack.n_rejects)
            return 0;
        for (uint32_t i = 0; i < a->u.ack.n_rejects; i++) {
            const lt_reject_t *x = &a->u.ack.rejects[i], *y = &b->u.ack.rejects[i];
            if (x->seq != y->seq || x->code != y->code || strcmp(x->reason, y->reason))
                return 0;
        }
        return 1;
    case LT_MSG_RESUME:
        return a->u.resume.resume_after == b->u.resume.resume_after &&
               !strcmp(a->u.resume.reason, b->u.resume.reason);
    case LT_MSG_ERROR:
        return a->u.error.code == b->u.error.code &&
               !strcmp(a->u.error.message, b->u.error.message);
    case LT_MSG_PING:
    case LT_MSG_PONG:
        return a->u.ping.ms == b->u.ping.ms;
    case LT_MSG_META:
        if (a->u.meta.after != b->u.meta.after || a->u.meta.upto != b->u.meta.upto || a->u.meta.n != b->u.meta.n)
            return 0;
        for (uint32_t i = 0; i < a->u.meta.n; i++) {
            const lt_meta_change_t *x = &a->u.meta.changes[i], *y = &b->u.meta.changes[i];
            if (x->version != y->version || strcmp(x->kind, y->kind) || strcmp(x->key, y->key) ||
                strcmp(x->scope, y->scope) || !x->doc != !y->doc || (x->doc && strcmp(x->doc, y->doc)))
                return 0;
        }
        return 1;
    case LT_MSG_META_ACK:
        return a->u.meta_ack.applied == b->u.meta_ack.applied;
    }
    return 1; /* two zeroed messages */
}
