/*
 * wire.h — the codec of lienthong's protocol v1 (schemas/protocol.md).
 *
 * Every message is one ZeroMQ frame holding one msgpack array
 * [version, type, ...fields]. The decoder is the only place where bytes from a
 * peer become C values. Invariant: nothing reaches the caller, and msgpack-c
 * never sees a byte, before the whole frame has passed a bounds pre-scan and
 * every field has been checked for type and range; a frame that fails gets an
 * LT_WIRE_E* code and a one-line reason naming the field (and, inside a batch,
 * the record index and seq). Encoders apply the same checks to what they are
 * given, so a node never sends what a peer would reject. No message or record
 * has a field for personal data: there is nowhere on the wire to put it.
 */
#ifndef LT_WIRE_H
#define LT_WIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define LT_WIRE_VERSION 1
#define LT_WIRE_MAX_FRAME (4u << 20)
#define LT_WIRE_MAX_RECORDS 10000
#define LT_WIRE_MAX_REJECTS 1000
#define LT_WIRE_MAX_DEPTH 4
#define LT_WIRE_MAX_TEXT 200 /* bytes in a reason or message */

/* Timestamps inside a case record: [2000-01-01, 2100-01-01) in unix ms. */
#define LT_WIRE_TS_MIN INT64_C(946684800000)
#define LT_WIRE_TS_END INT64_C(4102444800000)
/* |value| of a data value. */
#define LT_WIRE_MAX_ABS_VALUE 1e15

/* Case categories: bit i of lt_case_rec_t.categories (see protocol.md). */
#define LT_CASE_CATEGORY_COUNT 17
#define LT_CASE_CATEGORY_MASK ((UINT32_C(1) << LT_CASE_CATEGORY_COUNT) - 1)

/* Error codes: returned by the decoder and carried on the wire in ERROR and
 * in ACK rejects. */
enum {
    LT_WIRE_EMALFORMED = 1,    /* not msgpack, truncated, trailing bytes */
    LT_WIRE_ETOO_LARGE = 2,    /* frame or a count beyond its cap */
    LT_WIRE_ETOO_DEEP = 3,     /* nesting deeper than LT_WIRE_MAX_DEPTH */
    LT_WIRE_EBAD_VERSION = 4,  /* protocol version this node does not speak */
    LT_WIRE_EBAD_TYPE = 5,     /* unknown message type */
    LT_WIRE_EBAD_FIELD = 6,    /* wrong type, wrong count or out of range */
    LT_WIRE_EUNAUTHORISED = 7, /* unit outside the sender's subtree */
    LT_WIRE_EDB_REJECTED = 8,  /* the database refused the record */
    LT_WIRE_ENO_SESSION = 9,   /* ERROR only: no accepted HELLO on this connection */
    LT_WIRE_EBUSY = 10,        /* ERROR only: apply queue full, send again later */
    LT_WIRE_EUNAVAILABLE = 11, /* ERROR only: the parent's database is unavailable */
};
/* "malformed", "too_large", ...; "unknown" for anything else. */
const char *lt_wire_error_name(int code);

typedef enum {
    LT_MSG_HELLO = 1,
    LT_MSG_WELCOME,
    LT_MSG_BATCH,
    LT_MSG_ACK,
    LT_MSG_RESUME,
    LT_MSG_ERROR,
    LT_MSG_PING,
    LT_MSG_PONG,
    LT_MSG_META,     /* parent -> child: metadata changes (catalogue, targets, approvals) */
    LT_MSG_META_ACK  /* child -> parent: the metadata version now applied */
} lt_msg_type_t;

typedef enum {
    LT_REC_VALUE = 1,
    LT_REC_CASE = 2,
    LT_REC_SUBMISSION = 3,
    LT_REC_RESYNC = 4 /* a full resync of a subtree begins or ends (always a batch's last record) */
} lt_rec_kind_t;

#define LT_WIRE_MAX_META_CHANGES 1000
#define LT_WIRE_MAX_META_DOC 65536 /* bytes of one change's JSON document */

typedef struct {
    char unit[6], element[65], period[10], disagg[65];
    int has_value; /* 0: tombstone (nil on the wire); value is then ignored */
    double value;
    uint64_t version, changed_at_ms;
} lt_value_rec_t;

typedef struct {
    char case_id[37], unit[6];
    uint64_t version, changed_at_ms;
    int deleted;       /* 0 or 1 */
    char sex;          /* 'M', 'F' or 'U' */
    char birth_ym[8];  /* "YYYY-MM"; "" when nil */
    int ethnicity;     /* 1..99; 0 when nil */
    char village[33];  /* "" when nil */
    uint32_t categories;
    char status[16];
    /* unix ms; -1 when nil (notified_at is required) */
    int64_t notified_at, assessed_at, emergency_at, plan_drafted_at,
        plan_approved_at, reviewed_at, closed_at;
    uint32_t services;
} lt_case_rec_t;

/* A unit's report submission for a data set and period, and the decision on it. */
typedef struct {
    char unit[6], data_set[65], period[10];
    uint64_t version;
    int64_t submitted_at, first_submitted_at; /* unix ms */
    char status[10];     /* submitted | approved | returned | reopened */
    char decided_by[6];  /* "" when nil */
    int64_t decided_at;  /* -1 when nil */
    char reason[201];    /* "" when nil */
} lt_submission_rec_t;

/* The marker around a full resync: between BEGIN and END the sender re-sends every
   leaf row it holds under unit; what the receiver holds there and did not get again
   is set aside (schemas/protocol.md, "Full resync"). */
enum { LT_RESYNC_BEGIN = 1, LT_RESYNC_END = 2 };
typedef struct {
    char unit[6];
    int phase; /* LT_RESYNC_BEGIN or LT_RESYNC_END */
} lt_resync_rec_t;
typedef struct {
    uint64_t seq;
    lt_rec_kind_t kind;
    union {
        lt_value_rec_t v;
        lt_case_rec_t c;
        lt_submission_rec_t s;
        lt_resync_rec_t r;
    } u;
} lt_record_t;

/* One metadata change: (kind, key) -> doc, a JSON document (NULL: deleted). */
typedef struct {
    uint64_t version;
    char kind[33];   /* [a-z_]{1,32} */
    char key[257];   /* 1..256 bytes, no control characters */
    char *doc;       /* NUL-terminated JSON text owned by the message, NULL when deleted */
    char scope[6];   /* "" = every node; else only nodes whose subtree holds this unit */
} lt_meta_change_t;

typedef struct {
    uint64_t seq;
    uint8_t code; /* 1..255, an LT_WIRE_E* code */
    char reason[201];
} lt_reject_t;

typedef struct {
    lt_msg_type_t type;
    union {
        struct { char unit[6]; char software[65]; uint64_t max_seq, sent_at_ms; } hello;
        /* token: the parent's record of what it applied at resume_after (0: unknown) */
        struct { char unit[6]; uint64_t resume_after, token; } welcome;
        /* last_token: the sender's token of the row at last_seq (0: none) */
        struct { uint64_t prev_seq, last_seq, last_token; uint32_t n; lt_record_t *records; } batch; /* records owned */
        struct { uint64_t applied_upto; uint32_t n_applied; uint32_t n_rejects; lt_reject_t *rejects; } ack; /* rejects owned by the msg */
        struct { uint64_t resume_after; char reason[201]; } resume;
        struct { uint16_t code; char message[201]; } error;
        struct { uint64_t ms; } ping; /* PING and PONG */
        struct { uint64_t after, upto; uint32_t n; lt_meta_change_t *changes; } meta; /* changes and docs owned */
        struct { uint64_t applied; } meta_ack;
    } u;
} lt_msg_t;

/* Decode and validate one frame. Returns 0 with msg filled (call lt_msg_clear
 * after), or -code with msg zeroed, a short reason in err (may be NULL) and
 * *code (may be NULL) set to an LT_WIRE_E* code. On LT_WIRE_EBAD_VERSION the
 * reason is "unsupported protocol version N; this node speaks 1". Allocates at
 * most one array (records or rejects), bounded by the count caps. */
int lt_wire_decode(const void *buf, size_t len, lt_msg_t *msg, char *err,
                   size_t errlen, int *code) __attribute__((warn_unused_result));
/* Free what the msg owns and zero it. Idempotent. */
void lt_msg_clear(lt_msg_t *msg);
/* 1 when two messages carry the same content, else 0. */
int lt_msg_equal(const lt_msg_t *a, const lt_msg_t *b);

/* Encoders append one message to sb (the caller inits and destroys it) and
 * return 0, or -1 when an argument is invalid or memory runs out; sb is then
 * left as it was. Free text (reason, message) longer than LT_WIRE_MAX_TEXT
 * bytes is cut at a UTF-8 boundary. */
int lt_wire_encode_hello(msgpack_sbuffer *sb, const char *unit, const char *software,
                         uint64_t max_seq, uint64_t sent_at_ms)
    __attribute__((warn_unused_result));
int lt_wire_encode_welcome(msgpack_sbuffer *sb, const char *unit, uint64_t resume_after,
                           uint64_t token)
    __attribute__((warn_unused_result));
int lt_wire_encode_ack(msgpack_sbuffer *sb, uint64_t applied_upto, uint32_t n_applied,
                       const lt_reject_t *rejects, uint32_t n_rejects)
    __attribute__((warn_unused_result));
int lt_wire_encode_resume(msgpack_sbuffer *sb, uint64_t resume_after, const char *reason)
    __attribute__((warn_unused_result));
int lt_wire_encode_error(msgpack_sbuffer *sb, uint16_t code, const char *message)
    __attribute__((warn_unused_result));
/* type is LT_MSG_PING or LT_MSG_PONG. */
int lt_wire_encode_ping(msgpack_sbuffer *sb, lt_msg_type_t type, uint64_t ms)
    __attribute__((warn_unused_result));
/* META covering versions (after, upto]; versions strictly increasing inside it. */
int lt_wire_encode_meta(msgpack_sbuffer *sb, uint64_t after, uint64_t upto,
                        const lt_meta_change_t *changes, uint32_t n)
    __attribute__((warn_unused_result));
int lt_wire_encode_meta_ack(msgpack_sbuffer *sb, uint64_t applied)
    __attribute__((warn_unused_result));
/* Any decoded (or hand-built) message, batches included. */
int lt_wire_encode_msg(msgpack_sbuffer *sb, const lt_msg_t *msg)
    __attribute__((warn_unused_result));

/* Streaming batch encoder: records are packed one by one into a body buffer
 * so the sender can stop at a byte cap; finish writes the header, the record
 * count and the body into the output buffer. Reusable: begin resets it. */
typedef struct lt_batch_writer lt_batch_writer_t;
lt_batch_writer_t *lt_batch_new(void);
void lt_batch_destroy(lt_batch_writer_t **self_p);
void lt_batch_begin(lt_batch_writer_t *self, uint64_t prev_seq);
/* seq must be > prev_seq and > the previous record's seq; the record must
 * pass lt_wire_check_*; at most LT_WIRE_MAX_RECORDS records. */
int lt_batch_add_value(lt_batch_writer_t *self, uint64_t seq, const lt_value_rec_t *v)
    __attribute__((warn_unused_result));
int lt_batch_add_case(lt_batch_writer_t *self, uint64_t seq, const lt_case_rec_t *c)
    __attribute__((warn_unused_result));
int lt_batch_add_submission(lt_batch_writer_t *self, uint64_t seq, const lt_submission_rec_t *s)
    __attribute__((warn_unused_result));
/* A resync marker ends the batch: nothing can be added after it. */
int lt_batch_add_resync(lt_batch_writer_t *self, uint64_t seq, const lt_resync_rec_t *r)
    __attribute__((warn_unused_result));
/* 1 when the batch holds a resync marker (it is then full). */
int lt_batch_closed(const lt_batch_writer_t *self);
uint32_t lt_batch_count(const lt_batch_writer_t *self);
/* Upper bound on the frame's size were it finished now. */
size_t lt_batch_size(const lt_batch_writer_t *self);
/* last_seq must be >= the last record's seq; needs at least one record.
 * last_token is the sender's token of its row at last_seq (0: none). */
int lt_batch_finish(lt_batch_writer_t *self, msgpack_sbuffer *out, uint64_t last_seq,
                    uint64_t last_token)
    __attribute__((warn_unused_result));

/* Record checks, shared by the decoder, the encoders, the child before it
 * sends and the CLI before it writes. 0 when valid, else -1 and a reason. */
int lt_wire_check_value(const lt_value_rec_t *v, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int lt_wire_check_case(const lt_case_rec_t *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int lt_wire_check_submission(const lt_submission_rec_t *s, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int lt_wire_check_resync(const lt_resync_rec_t *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int lt_wire_check_meta_change(const lt_meta_change_t *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Field validators: 1 when valid, else 0. */
int lt_valid_unit(const char *s);    /* 2..5 ASCII digits */
int lt_valid_element(const char *s); /* [A-Za-z0-9_.-]{1,64} */
int lt_valid_period(const char *s);  /* YYYY YYYYMM YYYYQn YYYYSn YYYY-YYYY */
int lt_valid_disagg(const char *s);  /* [A-Za-z0-9_.=;:-]{0,64} */
int lt_valid_uuid(const char *s);    /* lowercase 8-4-4-4-12 hex */
int lt_valid_village(const char *s); /* [A-Za-z0-9_.-]{1,32} */
int lt_valid_birth_ym(const char *s); /* YYYY-MM, 1990..2100 */
int lt_case_status_valid(const char *s);
/* Short English name of category bit i (0..16), NULL when out of range. */
const char *lt_case_category_name(int bit);

#endif
