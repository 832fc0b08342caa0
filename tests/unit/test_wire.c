/*
 * test_wire.c — protocol v1 codec: round trips, the byte-exact test vectors
 * of schemas/protocol.md, and hostile frames. Every rejection asserts its
 * LT_WIRE_E* code, so a frame refused for the wrong reason fails the test.
 */
#include "unit.h"
#include "wire.h"

#include <math.h>
#include <stdint.h>

/* ---------------------------------------------------------------- helpers */

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ' || *p == '\n') {
            p++;
            continue;
        }
        unsigned v;
        CHECK(sscanf(p, "%2x", &v) == 1);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

static void check_bytes(const msgpack_sbuffer *sb, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want);
    if (sb->size != n || memcmp(sb->data, want, n) != 0) {
        fprintf(stderr, "  encoded (%zu bytes):", sb->size);
        for (size_t i = 0; i < sb->size; i++)
            fprintf(stderr, " %02x", (uint8_t)sb->data[i]);
        fprintf(stderr, "\n  expected %zu bytes: %s\n", n, hex);
    }
    CHECK_EQ_INT(sb->size, n);
    CHECK(memcmp(sb->data, want, n) == 0);
}

/* Decode; return the LT_WIRE_E* code (0 on success); the reason in err. */
static char err[256];
static int decode_code(const void *buf, size_t len)
{
    lt_msg_t m;
    int code = -1;
    int rc = lt_wire_decode(buf, len, &m, err, sizeof err, &code);
    CHECK_EQ_INT(rc, -code);
    lt_msg_clear(&m);
    return code;
}

static int decode_hex(const char *hex)
{
    uint8_t buf[4096];
    return decode_code(buf, unhex(hex, buf));
}

#define CHECK_CODE(expr, want)                                                 \
    do {                                                                       \
        int got_ = (expr);                                                     \
        if (got_ != (want))                                                    \
            fprintf(stderr, "  reason: %s\n", err);                            \
        CHECK_EQ_INT(got_, (want));                                            \
    } while (0)
#define CHECK_ERR_HAS(s)                                                       \
    do {                                                                       \
        if (!strstr(err, (s)))                                                 \
            fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", err, (s));       \
        CHECK(strstr(err, (s)) != NULL);                                       \
    } while (0)

/* decode sb, expect success, compare with want */
static void check_round_trip(const msgpack_sbuffer *sb, const lt_msg_t *want)
{
    lt_msg_t got;
    int code = -1;
    int rc = lt_wire_decode(sb->data, sb->size, &got, err, sizeof err, &code);
    if (rc)
        fprintf(stderr, "  decode failed: %s (%s)\n", err, lt_wire_error_name(code));
    CHECK_EQ_INT(rc, 0);
    CHECK(lt_msg_equal(&got, want));
    lt_msg_clear(&got);
}

static const uint64_t T0 = UINT64_C(1767225600000); /* 2026-01-01T00:00:00Z */

static lt_value_rec_t sample_value(void)
{
    lt_value_rec_t v = {.unit = "00001", .element = "CL_AT_RISK", .period = "2025Q4",
                        .disagg = "sex=F", .has_value = 1, .value = 3, .version = 2,
                        .changed_at_ms = T0};
    return v;
}

static lt_case_rec_t sample_case(void)
{
    lt_case_rec_t c = {.case_id = "0b0c4a3e-5d2f-4b7a-9c1e-2f3a4b5c6d7e",
                       .unit = "00001", .version = 1, .changed_at_ms = T0, .deleted = 0,
                       .sex = 'F', .birth_ym = "2014-05", .ethnicity = 1, .village = "TH03",
                       .categories = 9, .status = "assessed",
                       .notified_at = INT64_C(1767139200000),
                       .assessed_at = INT64_C(1767182400000), .emergency_at = -1,
                       .plan_drafted_at = -1, .plan_approved_at = -1, .reviewed_at = -1,
                       .closed_at = -1, .services = 5};
    return c;
}

/* ----------------------------------------------------------- test vectors */

#define HEX_HELLO                                                              \
    "96 01 01 a5 30 30 30 30 31 ae 6c 69 65 6e 74 68 6f 6e 67 64 2f 30 2e 31 "  \
    "2a cf 00 00 01 9b 76 da a8 00"
/* WELCOME and BATCH end with a token; a peer that leaves it out (the first form
   of protocol v1) is still read, with token 0 */
#define HEX_WELCOME "95 01 02 a3 30 30 31 28 cf 01 02 03 04 05 06 07 08"
#define HEX_WELCOME_NO_TOKEN "94 01 02 a3 30 30 31 28"
#define HEX_BATCH_VALUE_NO_TOKEN                                               \
    "95 01 03 28 29 91 99 29 01 a5 30 30 30 30 31 aa 43 4c 5f 41 54 5f 52 49 "  \
    "53 4b a6 32 30 32 35 51 34 a5 73 65 78 3d 46 cb 40 08 00 00 00 00 00 00 "  \
    "02 cf 00 00 01 9b 76 da a8 00"
#define HEX_BATCH_VALUE                                                        \
    "96 01 03 28 29 91 99 29 01 a5 30 30 30 30 31 aa 43 4c 5f 41 54 5f 52 49 "  \
    "53 4b a6 32 30 32 35 51 34 a5 73 65 78 3d 46 cb 40 08 00 00 00 00 00 00 "  \
    "02 cf 00 00 01 9b 76 da a8 00 2b"
#define HEX_BATCH_RESYNC "96 01 03 2a 2c 92 94 2b 04 a3 32 32 33 01 94 2c 04 a3 32 32 33 02 00"
#define HEX_BATCH_CASE                                                         \
    "96 01 03 29 2a 91 dc 00 15 2a 02 d9 24 30 62 30 63 34 61 33 65 2d 35 64 "  \
    "32 66 2d 34 62 37 61 2d 39 63 31 65 2d 32 66 33 61 34 62 35 63 36 64 37 "  \
    "65 a5 30 30 30 30 31 01 cf 00 00 01 9b 76 da a8 00 c2 a1 46 a7 32 30 31 "  \
    "34 2d 30 35 01 a4 54 48 30 33 09 a8 61 73 73 65 73 73 65 64 cf 00 00 01 "  \
    "9b 71 b4 4c 00 cf 00 00 01 9b 74 47 7a 00 c0 c0 c0 c0 c0 05 00"
#define HEX_ACK "95 01 04 2a 01 91 93 29 06 aa 62 61 64 20 70 65 72 69 6f 64"
#define HEX_RESUME "94 01 05 28 ac 67 61 70 20 61 66 74 65 72 20 34 30"
#define HEX_ERROR                                                              \
    "94 01 06 04 d9 32 75 6e 73 75 70 70 6f 72 74 65 64 20 70 72 6f 74 6f 63 "  \
    "6f 6c 20 76 65 72 73 69 6f 6e 20 32 3b 20 74 68 69 73 20 6e 6f 64 65 20 "  \
    "73 70 65 61 6b 73 20 31"
#define HEX_PING "93 01 07 cf 00 00 01 9b 76 da a8 00"

/* Decode hex and expect the message want. */
static void check_vector_decodes(const char *hex, const lt_msg_t *want)
{
    uint8_t buf[512];
    size_t n = unhex(hex, buf);
    msgpack_sbuffer sb = {.size = n, .data = (char *)buf, .alloc = n};
    check_round_trip(&sb, want);
}

TEST(vector_hello)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_EQ_INT(lt_wire_encode_hello(&sb, "00001", "lienthongd/0.1", 42, T0), 0);
    check_bytes(&sb, HEX_HELLO);
    lt_msg_t m = {.type = LT_MSG_HELLO};
    strcpy(m.u.hello.unit, "00001");
    strcpy(m.u.hello.software, "lienthongd/0.1");
    m.u.hello.max_seq = 42;
    m.u.hello.sent_at_ms = T0;
    check_vector_decodes(HEX_HELLO, &m);
    msgpack_sbuffer_destroy(&sb);
}

TEST(vector_welcome)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_EQ_INT(lt_wire_encode_welcome(&sb, "001", 40, UINT64_C(0x0102030405060708)), 0);
    check_bytes(&sb, HEX_WELCOME);
    lt_msg_t m = {.type = LT_MSG_WELCOME};
    strcpy(m.u.welcome.unit, "001");
    m.u.welcome.resume_after = 40;
    m.u.welcome.token = UINT64_C(0x0102030405060708);
    check_vector_decodes(HEX_WELCOME, &m);
    m.u.welcome.token = 0;
    check_vector_decodes(HEX_WELCOME_NO_TOKEN, &m);
    msgpack_sbuffer_destroy(&sb);
}

TEST(vector_batch_value)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    lt_batch_writer_t *w = lt_batch_new();
    CHECK(w);
    lt_record_t r = {.seq = 41, .kind = LT_REC_VALUE, .u.v = sample_value()};
    lt_batch_begin(w, 40);
    CHECK_EQ_INT(lt_batch_add_value(w, 41, &r.u.v), 0);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 41, 43), 0);
    check_bytes(&sb, HEX_BATCH_VALUE);
    lt_msg_t m = {.type = LT_MSG_BATCH,
                  .u.batch = {.prev_seq = 40, .last_seq = 41, .last_token = 43, .n = 1, .records = &r}};
    check_vector_decodes(HEX_BATCH_VALUE, &m);
    m.u.batch.last_token = 0;
    check_vector_decodes(HEX_BATCH_VALUE_NO_TOKEN, &m);
    lt_batch_destroy(&w);
    CHECK(w == NULL);
    lt_batch_destroy(&w); /* idempotent */
    msgpack_sbuffer_destroy(&sb);
}

TEST(vector_batch_case)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    lt_batch_writer_t *w = lt_batch_new();
    CHECK(w);
    lt_record_t r = {.seq = 42, .kind = LT_REC_CASE, .u.c = sample_case()};
    lt_batch_begin(w, 41);
    CHECK_EQ_INT(lt_batch_add_case(w, 42, &r.u.c), 0);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 42, 0), 0);
    check_bytes(&sb, HEX_BATCH_CASE);
    lt_msg_t m = {.type = LT_MSG_BATCH,
                  .u.batch = {.prev_seq = 41, .last_seq = 42, .n = 1, .records = &r}};
    check_vector_decodes(HEX_BATCH_CASE, &m);
    lt_batch_destroy(&w);
    msgpack_sbuffer_destroy(&sb);
}

/* A resync marker is a record [seq, 4, unit, phase] and always a batch's last. */
TEST(vector_batch_resync)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    lt_batch_writer_t *w = lt_batch_new();
    CHECK(w);
    lt_record_t r[2] = {{.seq = 43, .kind = LT_REC_RESYNC, .u.r = {.unit = "223", .phase = LT_RESYNC_BEGIN}},
                        {.seq = 44, .kind = LT_REC_RESYNC, .u.r = {.unit = "223", .phase = LT_RESYNC_END}}};
    lt_value_rec_t v = sample_value();
    lt_resync_rec_t bad = {.unit = "223", .phase = 3};
    lt_batch_begin(w, 42);
    CHECK_EQ_INT(lt_batch_add_resync(w, 43, &bad), -1);
    CHECK_EQ_INT(lt_batch_add_resync(w, 43, &r[0].u.r), 0);
    CHECK(lt_batch_closed(w));
    CHECK_EQ_INT(lt_batch_add_value(w, 44, &v), -1);  /* nothing after a marker */
    CHECK_EQ_INT(lt_batch_add_resync(w, 44, &r[1].u.r), -1);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 44, 0), -1); /* nor a last_seq beyond it */
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 43, 0), 0);
    lt_msg_t one = {.type = LT_MSG_BATCH, .u.batch = {.prev_seq = 42, .last_seq = 43, .n = 1, .records = r}};
    check_round_trip(&sb, &one);
    lt_batch_begin(w, 42);
    CHECK(!lt_batch_closed(w));
    lt_batch_destroy(&w);

    /* two markers in one batch: the first is not the last record */
    uint8_t buf[64];
    size_t n = unhex(HEX_BATCH_RESYNC, buf);
    lt_msg_t got;
    int code = 0;
    CHECK(lt_wire_decode(buf, n, &got, err, sizeof err, &code) < 0);
    CHECK_EQ_INT(code, LT_WIRE_EBAD_FIELD);
    CHECK(strstr(err, "must be the last record") != NULL);
    /* phase out of range, unit not a unit */
    n = unhex("96 01 03 2a 2b 91 94 2b 04 a3 32 32 33 07 00", buf);
    CHECK(lt_wire_decode(buf, n, &got, err, sizeof err, &code) < 0);
    CHECK(strstr(err, "phase") != NULL);
    n = unhex("96 01 03 2a 2b 91 94 2b 04 a3 32 32 41 01 00", buf);
    CHECK(lt_wire_decode(buf, n, &got, err, sizeof err, &code) < 0);
    CHECK(strstr(err, "unit") != NULL);
    msgpack_sbuffer_destroy(&sb);
}

TEST(vector_ack_resume_error_ping)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    lt_reject_t rj = {.seq = 41, .code = LT_WIRE_EBAD_FIELD, .reason = "bad period"};
    CHECK_EQ_INT(lt_wire_encode_ack(&sb, 42, 1, &rj, 1), 0);
    check_bytes(&sb, HEX_ACK);
    lt_msg_t m = {.type = LT_MSG_ACK,
                  .u.ack = {.applied_upto = 42, .n_applied = 1, .n_rejects = 1, .rejects = &rj}};
    check_vector_decodes(HEX_ACK, &m);

    sb.size = 0;
    CHECK_EQ_INT(lt_wire_encode_resume(&sb, 40, "gap after 40"), 0);
    check_bytes(&sb, HEX_RESUME);
    memset(&m, 0, sizeof m);
    m.type = LT_MSG_RESUME;
    m.u.resume.resume_after = 40;
    strcpy(m.u.resume.reason, "gap after 40");
    check_vector_decodes(HEX_RESUME, &m);

    sb.size = 0;
    CHECK_EQ_INT(lt_wire_encode_error(&sb, LT_WIRE_EBAD_VERSION,
                                      "unsupported protocol version 2; this node speaks 1"),
                 0);
    check_bytes(&sb, HEX_ERROR);
    memset(&m, 0, sizeof m);
    m.type = LT_MSG_ERROR;
    m.u.error.code = 4;
    strcpy(m.u.error.message, "unsupported protocol version 2; this node speaks 1");
    check_vector_decodes(HEX_ERROR, &m);

    sb.size = 0;
    CHECK_EQ_INT(lt_wire_encode_ping(&sb, LT_MSG_PING, T0), 0);
    check_bytes(&sb, HEX_PING);
    memset(&m, 0, sizeof m);
    m.type = LT_MSG_PING;
    m.u.ping.ms = T0;
    check_vector_decodes(HEX_PING, &m);
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------ round trips */

static void round_trip(const lt_msg_t *m)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_EQ_INT(lt_wire_encode_msg(&sb, m), 0);
    CHECK(sb.size <= LT_WIRE_MAX_FRAME);
    check_round_trip(&sb, m);
    msgpack_sbuffer_destroy(&sb);
}

TEST(round_trip_small_messages)
{
    lt_msg_t m = {.type = LT_MSG_HELLO};
    strcpy(m.u.hello.unit, "79");
    memset(m.u.hello.software, 'x', 64); /* max length */
    m.u.hello.max_seq = UINT64_MAX;
    m.u.hello.sent_at_ms = 0;
    round_trip(&m);

    memset(&m, 0, sizeof m);
    m.type = LT_MSG_WELCOME;
    strcpy(m.u.welcome.unit, "26734");
    m.u.welcome.resume_after = 0;
    round_trip(&m);

    memset(&m, 0, sizeof m);
    m.type = LT_MSG_ACK; /* no rejects */
    m.u.ack.applied_upto = UINT64_C(1) << 40;
    m.u.ack.n_applied = UINT32_MAX;
    round_trip(&m);

    memset(&m, 0, sizeof m);
    m.type = LT_MSG_RESUME;
    m.u.resume.resume_after = 65536;
    memset(m.u.resume.reason, 'r', 200);
    round_trip(&m);

    memset(&m, 0, sizeof m);
    m.type = LT_MSG_ERROR;
    m.u.error.code = UINT16_MAX;
    strcpy(m.u.error.message, "tệp quá lớn"); /* UTF-8 passes through */
    round_trip(&m);

    for (int t = LT_MSG_PING; t <= LT_MSG_PONG; t++) {
        memset(&m, 0, sizeof m);
        m.type = (lt_msg_type_t)t;
        m.u.ping.ms = 127;
        round_trip(&m);
        m.u.ping.ms = UINT64_MAX;
        round_trip(&m);
    }
}

TEST(round_trip_batch_both_kinds_nils_tombstones)
{
    lt_record_t r[6];
    memset(r, 0, sizeof r);
    r[0] = (lt_record_t){.seq = 11, .kind = LT_REC_VALUE, .u.v = sample_value()};
    r[1] = (lt_record_t){.seq = 12, .kind = LT_REC_VALUE, .u.v = sample_value()};
    r[1].u.v.has_value = 0; /* tombstone */
    strcpy(r[1].u.v.disagg, ""); /* default disaggregation */
    strcpy(r[1].u.v.period, "2026-2030");
    r[2] = (lt_record_t){.seq = 13, .kind = LT_REC_CASE, .u.c = sample_case()};
    r[3] = (lt_record_t){.seq = 20, .kind = LT_REC_CASE, .u.c = sample_case()};
    lt_case_rec_t *c = &r[3].u.c; /* every optional field nil, deleted */
    c->deleted = 1;
    c->sex = 'U';
    c->birth_ym[0] = c->village[0] = '\0';
    c->ethnicity = 0;
    c->assessed_at = -1;
    c->categories = LT_CASE_CATEGORY_MASK;
    c->services = UINT32_MAX;
    strcpy(c->status, "implementing");
    r[4] = (lt_record_t){.seq = 21, .kind = LT_REC_CASE, .u.c = sample_case()};
    c = &r[4].u.c; /* every step dated */
    c->emergency_at = c->plan_drafted_at = c->plan_approved_at = c->reviewed_at =
        c->closed_at = LT_WIRE_TS_END - 1;
    c->notified_at = LT_WIRE_TS_MIN;
    strcpy(c->status, "closed");
    c->ethnicity = 99;
    memset(c->village, 'v', 32);
    r[5] = (lt_record_t){.seq = 22, .kind = LT_REC_VALUE, .u.v = sample_value()};
    r[5].u.v.value = -1e15;
    memset(r[5].u.v.element, 'E', 64);
    memset(r[5].u.v.disagg, ':', 64);

    lt_msg_t m = {.type = LT_MSG_BATCH,
                  .u.batch = {.prev_seq = 10, .last_seq = 30, .n = 6, .records = r}};
    round_trip(&m);
}

TEST(round_trip_max_sizes)
{
    /* a full batch: 10000 records, the writer refuses the 10001st */
    lt_batch_writer_t *w = lt_batch_new();
    CHECK(w);
    lt_batch_begin(w, 0);
    lt_value_rec_t v = sample_value();
    lt_case_rec_t c = sample_case();
    for (uint64_t s = 1; s <= LT_WIRE_MAX_RECORDS; s++) {
        v.version = s;
        int rc = s % 2 ? lt_batch_add_value(w, s, &v) : lt_batch_add_case(w, s, &c);
        CHECK_EQ_INT(rc, 0);
    }
    CHECK_EQ_INT(lt_batch_count(w), LT_WIRE_MAX_RECORDS);
    CHECK_EQ_INT(lt_batch_add_value(w, LT_WIRE_MAX_RECORDS + 1, &v), -1);
    size_t bound = lt_batch_size(w);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, LT_WIRE_MAX_RECORDS, 0), 0);
    CHECK(sb.size <= bound);
    lt_msg_t got;
    CHECK_EQ_INT(lt_wire_decode(sb.data, sb.size, &got, err, sizeof err, NULL), 0);
    CHECK_EQ_INT(got.u.batch.n, LT_WIRE_MAX_RECORDS);
    CHECK_EQ_INT(got.u.batch.records[9999].seq, 10000);
    CHECK_EQ_INT(got.u.batch.records[9999].kind, LT_REC_CASE);
    CHECK_EQ_INT(got.u.batch.records[9998].u.v.version, 9999);
    /* re-encoding the decoded batch gives the same bytes */
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    CHECK_EQ_INT(lt_wire_encode_msg(&again, &got), 0);
    CHECK_EQ_INT(again.size, sb.size);
    CHECK(memcmp(again.data, sb.data, sb.size) == 0);
    lt_msg_clear(&got);
    lt_msg_clear(&got); /* idempotent */
    msgpack_sbuffer_destroy(&again);

    /* a full ack: 1000 rejects with 200-byte reasons */
    static lt_reject_t rj[LT_WIRE_MAX_REJECTS];
    for (int i = 0; i < LT_WIRE_MAX_REJECTS; i++) {
        rj[i].seq = (uint64_t)i + 1;
        rj[i].code = (uint8_t)(i % 255 + 1);
        memset(rj[i].reason, 'a' + i % 26, 200);
        rj[i].reason[200] = '\0';
    }
    lt_msg_t m = {.type = LT_MSG_ACK,
                  .u.ack = {.applied_upto = 5, .n_applied = 7,
                            .n_rejects = LT_WIRE_MAX_REJECTS, .rejects = rj}};
    round_trip(&m);
    sb.size = 0;
    CHECK_EQ_INT(lt_wire_encode_ack(&sb, 1, 1, rj, LT_WIRE_MAX_REJECTS + 1), -1);
    CHECK_EQ_INT(sb.size, 0);
    lt_batch_destroy(&w);
    msgpack_sbuffer_destroy(&sb);
}

TEST(batch_writer_refuses_bad_input)
{
    lt_batch_writer_t *w = lt_batch_new();
    CHECK(w);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    lt_value_rec_t v = sample_value();
    lt_case_rec_t c = sample_case();
    lt_batch_begin(w, 5);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 6, 0), -1); /* no records */
    CHECK_EQ_INT(lt_batch_add_value(w, 5, &v), -1); /* not after prev_seq */
    CHECK_EQ_INT(lt_batch_add_value(w, 7, &v), 0);
    CHECK_EQ_INT(lt_batch_add_value(w, 7, &v), -1); /* not increasing */
    strcpy(v.period, "2024-13");
    CHECK_EQ_INT(lt_batch_add_value(w, 8, &v), -1);
    c.categories = 1u << 20;
    CHECK_EQ_INT(lt_batch_add_case(w, 8, &c), -1);
    CHECK_EQ_INT(lt_batch_count(w), 1);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 6, 0), -1); /* last_seq below a record */
    CHECK_EQ_INT(sb.size, 0);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 9, 0), 0);
    lt_msg_t got;
    CHECK_EQ_INT(lt_wire_decode(sb.data, sb.size, &got, err, sizeof err, NULL), 0);
    CHECK_EQ_INT(got.u.batch.prev_seq, 5);
    CHECK_EQ_INT(got.u.batch.last_seq, 9);
    CHECK_EQ_INT(got.u.batch.n, 1);
    lt_msg_clear(&got);
    /* reuse after begin */
    sb.size = 0;
    lt_batch_begin(w, 100);
    CHECK_EQ_INT(lt_batch_count(w), 0);
    strcpy(v.period, "2024");
    CHECK_EQ_INT(lt_batch_add_value(w, 101, &v), 0);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 101, 0), 0);
    CHECK_EQ_INT(lt_wire_decode(sb.data, sb.size, &got, err, sizeof err, NULL), 0);
    CHECK_EQ_INT(got.u.batch.records[0].seq, 101);
    lt_msg_clear(&got);
    lt_batch_destroy(&w);
    msgpack_sbuffer_destroy(&sb);
}

TEST(encoders_refuse_bad_arguments_and_cut_text)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_EQ_INT(lt_wire_encode_hello(&sb, "12a", "x", 0, 0), -1);
    CHECK_EQ_INT(lt_wire_encode_hello(&sb, "123456", "x", 0, 0), -1);
    CHECK_EQ_INT(lt_wire_encode_hello(&sb, "12", "tab\there", 0, 0), -1);
    CHECK_EQ_INT(lt_wire_encode_welcome(&sb, "1", 0, 0), -1);
    CHECK_EQ_INT(lt_wire_encode_ping(&sb, LT_MSG_HELLO, 0), -1);
    lt_reject_t rj = {.seq = 0, .code = 1};
    CHECK_EQ_INT(lt_wire_encode_ack(&sb, 0, 0, &rj, 1), -1);
    CHECK_EQ_INT(sb.size, 0);

    /* 199 ASCII bytes then a 3-byte character: cut before the character */
    char text[400];
    memset(text, 'a', 199);
    strcpy(text + 199, "\xe1\xbb\x87 and more");
    CHECK_EQ_INT(lt_wire_encode_error(&sb, 1, text), 0);
    lt_msg_t got;
    CHECK_EQ_INT(lt_wire_decode(sb.data, sb.size, &got, err, sizeof err, NULL), 0);
    CHECK_EQ_INT(strlen(got.u.error.message), 199);
    lt_msg_clear(&got);
    sb.size = 0;
    memset(text, 'b', 300);
    text[300] = '\0';
    CHECK_EQ_INT(lt_wire_encode_resume(&sb, 3, text), 0);
    CHECK_EQ_INT(lt_wire_decode(sb.data, sb.size, &got, err, sizeof err, NULL), 0);
    CHECK_EQ_INT(strlen(got.u.resume.reason), 200);
    lt_msg_clear(&got);
    msgpack_sbuffer_destroy(&sb);
}

/* A positive or negative integer field may come in any encoding that holds it. */
TEST(integer_encodings)
{
    lt_msg_t m;
    const char *ms7[] = {"93 01 07 07", "93 01 07 cc 07", "93 01 07 cd 00 07",
                         "93 01 07 ce 00 00 00 07", "93 01 07 cf 00 00 00 00 00 00 00 07",
                         "93 01 07 d0 07", "93 01 07 d1 00 07", "93 01 07 d2 00 00 00 07",
                         "93 01 07 d3 00 00 00 00 00 00 00 07",
                         /* version and type as int64 too */
                         "93 d3 00 00 00 00 00 00 00 01 d0 07 07"};
    for (size_t i = 0; i < sizeof ms7 / sizeof ms7[0]; i++) {
        uint8_t buf[64];
        size_t n = unhex(ms7[i], buf);
        CHECK_EQ_INT(lt_wire_decode(buf, n, &m, err, sizeof err, NULL), 0);
        CHECK_EQ_INT(m.type, LT_MSG_PING);
        CHECK_EQ_INT(m.u.ping.ms, 7);
    }
    /* a negative integer where an unsigned one belongs */
    CHECK_CODE(decode_hex("93 01 07 ff"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("93 01 07 d0 ff"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("93 01 07 d3 ff ff ff ff ff ff ff ff"), LT_WIRE_EBAD_FIELD);
    /* uint16 code out of range in ERROR */
    CHECK_CODE(decode_hex("94 01 06 ce 00 01 00 00 a0"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("code 65536 is out of range");
}

/* ---------------------------------------------------------------- hostile */

TEST(hostile_size_headers)
{
    /* array32 of 4 G elements, alone and as the records of a batch */
    CHECK_CODE(decode_hex("dd ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("95 01 03 00 01 dd ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("dd 00 00 00 04 01 07 01"), LT_WIRE_EMALFORMED); /* 4 > 3 left */
    /* str32, bin32, ext32 and map32 claiming 4 GB */
    CHECK_CODE(decode_hex("96 01 01 db ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("db ff ff ff ff 41"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("93 01 07 c6 ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("93 01 07 c9 ff ff ff ff 01"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("93 01 07 df ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("93 01 07 de 00 01 01"), LT_WIRE_EMALFORMED); /* needs 2 */
    /* the header itself cut short */
    CHECK_CODE(decode_hex("93 01 07 da 00"), LT_WIRE_EMALFORMED);
    /* never-used byte */
    CHECK_CODE(decode_hex("93 01 07 c1"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_code("", 0), LT_WIRE_EMALFORMED);
    /* a record count the bytes cannot hold is refused before any allocation */
    uint8_t buf[20000];
    size_t n = unhex("95 01 03 00 cc ff dc 27 10", buf);
    memset(buf + n, 0xc0, 10000);
    CHECK_CODE(decode_code(buf, n + 10000), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("10000 records cannot fit");
}

TEST(hostile_frame_too_large)
{
    size_t n = LT_WIRE_MAX_FRAME + 1;
    uint8_t *buf = calloc(1, n);
    CHECK(buf);
    buf[0] = 0x93;
    CHECK_CODE(decode_code(buf, n), LT_WIRE_ETOO_LARGE);
    free(buf);
}

/* Packing without validation, for frames an honest encoder would refuse. A
 * field of a record can be replaced by bad_pack (field index bad_field). */
static int bad_field = -1;
static void (*bad_pack)(msgpack_packer *pk);

static int take_field(msgpack_packer *pk, int i)
{
    if (i != bad_field)
        return 0;
    bad_pack(pk);
    return 1;
}

static void raw_str(msgpack_packer *pk, const char *s)
{
    CHECK_EQ_INT(msgpack_pack_str(pk, strlen(s)), 0);
    CHECK_EQ_INT(msgpack_pack_str_body(pk, s, strlen(s)), 0);
}

static void raw_value(msgpack_packer *pk, uint64_t seq, const lt_value_rec_t *v)
{
    int i = 0;
    msgpack_pack_array(pk, 9);
    if (!take_field(pk, i++)) msgpack_pack_uint64(pk, seq);
    if (!take_field(pk, i++)) msgpack_pack_uint8(pk, 1);
    if (!take_field(pk, i++)) raw_str(pk, v->unit);
    if (!take_field(pk, i++)) raw_str(pk, v->element);
    if (!take_field(pk, i++)) raw_str(pk, v->period);
    if (!take_field(pk, i++)) raw_str(pk, v->disagg);
    if (!take_field(pk, i++)) {
        if (v->has_value)
            msgpack_pack_double(pk, v->value);
        else
            msgpack_pack_nil(pk);
    }
    if (!take_field(pk, i++)) msgpack_pack_uint64(pk, v->version);
    if (!take_field(pk, i++)) msgpack_pack_uint64(pk, v->changed_at_ms);
}

static void raw_ts(msgpack_packer *pk, int64_t t)
{
    if (t == -1)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_int64(pk, t);
}

static void raw_case(msgpack_packer *pk, uint64_t seq, const lt_case_rec_t *c)
{
    int i = 0;
    char sex[2] = {c->sex, 0};
    msgpack_pack_array(pk, 21);
    if (!take_field(pk, i++)) msgpack_pack_uint64(pk, seq);
    if (!take_field(pk, i++)) msgpack_pack_uint8(pk, 2);
    if (!take_field(pk, i++)) raw_str(pk, c->case_id);
    if (!take_field(pk, i++)) raw_str(pk, c->unit);
    if (!take_field(pk, i++)) msgpack_pack_uint64(pk, c->version);
    if (!take_field(pk, i++)) msgpack_pack_uint64(pk, c->changed_at_ms);
    if (!take_field(pk, i++)) {
        if (c->deleted)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    }
    if (!take_field(pk, i++)) raw_str(pk, sex);
    if (!take_field(pk, i++)) raw_str(pk, c->birth_ym);
    if (!take_field(pk, i++)) msgpack_pack_int(pk, c->ethnicity);
    if (!take_field(pk, i++)) raw_str(pk, c->village);
    if (!take_field(pk, i++)) msgpack_pack_uint32(pk, c->categories);
    if (!take_field(pk, i++)) raw_str(pk, c->status);
    if (!take_field(pk, i++)) raw_ts(pk, c->notified_at);
    if (!take_field(pk, i++)) raw_ts(pk, c->assessed_at);
    if (!take_field(pk, i++)) raw_ts(pk, c->emergency_at);
    if (!take_field(pk, i++)) raw_ts(pk, c->plan_drafted_at);
    if (!take_field(pk, i++)) raw_ts(pk, c->plan_approved_at);
    if (!take_field(pk, i++)) raw_ts(pk, c->reviewed_at);
    if (!take_field(pk, i++)) raw_ts(pk, c->closed_at);
    if (!take_field(pk, i++)) msgpack_pack_uint32(pk, c->services);
}

/* A batch (prev, last] of n records; record i is a value or a case (per kinds)
 * with seq seqs[i]. Returns the decode code. */
static int raw_batch(uint64_t prev, uint64_t last, const uint64_t *seqs, const char *kinds,
                     const lt_value_rec_t *v, const lt_case_rec_t *c)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t n = strlen(kinds);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_uint64(&pk, prev);
    msgpack_pack_uint64(&pk, last);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        if (kinds[i] == 'v')
            raw_value(&pk, seqs[i], v);
        else
            raw_case(&pk, seqs[i], c);
    }
    int code = decode_code(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return code;
}

static int one_value(const lt_value_rec_t *v)
{
    uint64_t s = 1;
    return raw_batch(0, 1, &s, "v", v, NULL);
}

static int one_case(const lt_case_rec_t *c)
{
    uint64_t s = 1;
    return raw_batch(0, 1, &s, "c", NULL, c);
}

static void pk_str_x(msgpack_packer *pk) { raw_str(pk, "x"); }
static void pk_neg(msgpack_packer *pk) { msgpack_pack_int64(pk, -1); }
static void pk_nan(msgpack_packer *pk) { msgpack_pack_double(pk, NAN); }
static void pk_inf(msgpack_packer *pk) { msgpack_pack_double(pk, -INFINITY); }
static void pk_1e16(msgpack_packer *pk) { msgpack_pack_double(pk, 1e16); }
static void pk_big_int(msgpack_packer *pk) { msgpack_pack_uint64(pk, UINT64_C(1000000000000001)); }
static void pk_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void pk_map(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }
static void pk_bin(msgpack_packer *pk) { msgpack_pack_bin(pk, 1); msgpack_pack_bin_body(pk, "1", 1); }
static void pk_empty(msgpack_packer *pk) { raw_str(pk, ""); }
static void pk_zero(msgpack_packer *pk) { msgpack_pack_uint8(pk, 0); }
static void pk_one(msgpack_packer *pk) { msgpack_pack_uint8(pk, 1); }
static void pk_unit6(msgpack_packer *pk) { raw_str(pk, "123456"); }
static void pk_true(msgpack_packer *pk) { msgpack_pack_true(pk); }
static void pk_nul(msgpack_packer *pk) { msgpack_pack_str(pk, 3); msgpack_pack_str_body(pk, "F\0x", 3); }
static void pk_f32(msgpack_packer *pk) { msgpack_pack_float(pk, 2.5f); }
static void pk_negint(msgpack_packer *pk) { msgpack_pack_int16(pk, -300); }

static int value_with(int i, void (*fn)(msgpack_packer *))
{
    lt_value_rec_t v = sample_value();
    bad_field = i, bad_pack = fn;
    int code = one_value(&v);
    bad_field = -1;
    return code;
}

static int case_with(int i, void (*fn)(msgpack_packer *))
{
    lt_case_rec_t c = sample_case();
    bad_field = i, bad_pack = fn;
    int code = one_case(&c);
    bad_field = -1;
    return code;
}

TEST(hostile_value_fields)
{
    lt_value_rec_t v = sample_value();
    CHECK_CODE(one_value(&v), 0); /* the raw packer itself makes a valid frame */
    CHECK_CODE(value_with(0, pk_str_x), LT_WIRE_EBAD_FIELD); /* seq */
    CHECK_ERR_HAS("batch record 0: seq: expected an unsigned integer, got a string");
    CHECK_CODE(value_with(0, pk_neg), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(0, pk_zero), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(1, pk_str_x), LT_WIRE_EBAD_FIELD); /* kind */
    CHECK_CODE(value_with(2, pk_nil), LT_WIRE_EBAD_FIELD);   /* unit */
    CHECK_CODE(value_with(3, pk_bin), LT_WIRE_EBAD_FIELD);   /* element as bin */
    CHECK_CODE(value_with(3, pk_empty), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(3, pk_nul), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("element contains a NUL byte");
    CHECK_CODE(value_with(4, pk_map), LT_WIRE_EBAD_FIELD); /* period */
    CHECK_CODE(value_with(6, pk_str_x), LT_WIRE_EBAD_FIELD); /* value */
    CHECK_CODE(value_with(6, pk_nan), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("value is not finite");
    CHECK_CODE(value_with(6, pk_inf), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(6, pk_1e16), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(6, pk_big_int), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(6, pk_true), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(value_with(6, pk_f32), 0);
    CHECK_CODE(value_with(6, pk_negint), 0);
    CHECK_CODE(value_with(6, pk_nil), 0); /* tombstone */
    CHECK_CODE(value_with(7, pk_zero), LT_WIRE_EBAD_FIELD); /* version 0 */
    CHECK_CODE(value_with(8, pk_neg), LT_WIRE_EBAD_FIELD);  /* changed_at_ms */

    struct {
        const char *unit, *element, *period, *disagg, *reason;
    } bad[] = {
        {"12a", "E", "2024", "", "unit \"12a\" is not a unit code"},
        {"1", "E", "2024", "", "not a unit code"},
        {"00001", "E.F", "2024-13", "", "batch record 0 (seq 1): period \"2024-13\" is not a period"},
        {"00001", "E", "202413", "", "period"},
        {"00001", "E", "2024Q5", "", "period"},
        {"00001", "E", "2024S3", "", "period"},
        {"00001", "E", "1989", "", "period"},
        {"00001", "E", "2101", "", "period"},
        {"00001", "E", "2030-2026", "", "period"},
        {"00001", "E", "2024-", "", "period"},
        {"00001", "E", "20241", "", "period"},
        {"00001", "E F", "2024", "", "element \"E F\" is not an element code"},
        {"00001", "E", "2024", "a b", "disagg"},
        {"00001", "E", "2024", "sex=F,age=5", "disagg"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = sample_value();
        snprintf(v.unit, sizeof v.unit, "%s", bad[i].unit);
        snprintf(v.element, sizeof v.element, "%s", bad[i].element);
        snprintf(v.period, sizeof v.period, "%s", bad[i].period);
        snprintf(v.disagg, sizeof v.disagg, "%s", bad[i].disagg);
        CHECK_CODE(one_value(&v), LT_WIRE_EBAD_FIELD);
        CHECK_ERR_HAS(bad[i].reason);
        CHECK_EQ_INT(lt_wire_check_value(&v, NULL, 0), -1);
    }
    /* a unit of 6 digits does not fit the field at all */
    CHECK_CODE(value_with(2, pk_unit6), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("batch record 0 (seq 1): unit \"123456\" is 6 bytes; at most 5");
}

TEST(hostile_case_fields)
{
    lt_case_rec_t c = sample_case();
    CHECK_CODE(one_case(&c), 0); /* the raw packer itself makes a valid frame */
    CHECK_CODE(case_with(6, pk_zero), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("deleted: expected a bool, got an unsigned integer");
    CHECK_CODE(case_with(2, pk_str_x), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("case_id \"x\" is not a lowercase uuid");
    CHECK_CODE(case_with(4, pk_neg), LT_WIRE_EBAD_FIELD);    /* version */
    CHECK_CODE(case_with(7, pk_nul), LT_WIRE_EBAD_FIELD);    /* sex "F\0x" */
    CHECK_CODE(case_with(7, pk_empty), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(case_with(7, pk_nil), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(case_with(8, pk_empty), LT_WIRE_EBAD_FIELD);  /* birth_ym "" */
    CHECK_CODE(case_with(8, pk_nil), 0);
    CHECK_CODE(case_with(9, pk_zero), LT_WIRE_EBAD_FIELD);   /* ethnicity 0 */
    CHECK_CODE(case_with(9, pk_nil), 0);
    CHECK_CODE(case_with(10, pk_empty), LT_WIRE_EBAD_FIELD); /* village "" */
    CHECK_CODE(case_with(10, pk_nil), 0);
    CHECK_CODE(case_with(11, pk_neg), LT_WIRE_EBAD_FIELD);   /* categories */
    CHECK_CODE(case_with(12, pk_nil), LT_WIRE_EBAD_FIELD);   /* status */
    CHECK_CODE(case_with(13, pk_nil), LT_WIRE_EBAD_FIELD);   /* notified_at required */
    CHECK_CODE(case_with(19, pk_nil), 0);                    /* closed_at optional */
    CHECK_CODE(case_with(19, pk_str_x), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(case_with(20, pk_big_int), LT_WIRE_EBAD_FIELD); /* services > uint32 */
    CHECK_CODE(case_with(1, pk_zero), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("kind 0 is not a record kind");
    CHECK_CODE(case_with(1, pk_true), LT_WIRE_EBAD_FIELD);

    /* one field changed from the valid sample: refused by the decoder and by
     * lt_wire_check_case alike */
#define CASE_BAD(stmt, reason)                                                 \
    do {                                                                       \
        c = sample_case();                                                     \
        stmt;                                                                  \
        CHECK_CODE(one_case(&c), LT_WIRE_EBAD_FIELD);                          \
        CHECK_ERR_HAS(reason);                                                 \
        CHECK_EQ_INT(lt_wire_check_case(&c, NULL, 0), -1);                     \
    } while (0)
    CASE_BAD(strcpy(c.case_id, "0B0C4A3E-5D2F-4B7A-9C1E-2F3A4B5C6D7E"), "not a lowercase uuid");
    CASE_BAD(strcpy(c.case_id, "0b0c4a3e05d2f-4b7a-9c1e-2f3a4b5c6d7e"), "not a lowercase uuid");
    CASE_BAD(strcpy(c.case_id, "0b0c4a3e-5d2f-4b7a-9c1e-2f3a4b5c6d7g"), "not a lowercase uuid");
    CASE_BAD(strcpy(c.case_id, "0b0c4a3e-5d2f-4b7a-9c1e-2f3a4b5c6d7"), "not a lowercase uuid");
    CASE_BAD(strcpy(c.unit, "12a"), "unit \"12a\" is not a unit code");
    CASE_BAD(c.sex = 'X', "sex must be M, F or U");
    CASE_BAD(strcpy(c.birth_ym, "2014-13"), "birth_ym \"2014-13\" is not YYYY-MM");
    CASE_BAD(strcpy(c.birth_ym, "1989-01"), "birth_ym");
    CASE_BAD(strcpy(c.birth_ym, "201405"), "birth_ym");
    CASE_BAD(c.ethnicity = 100, "ethnicity 100 is out of range 1..99");
    CASE_BAD(strcpy(c.village, "a/b"), "village \"a/b\" is not a village code");
    CASE_BAD(c.categories = 1u << 20, "categories 0x100000 has bits beyond 16");
    CASE_BAD(c.categories = 1u << 17, "categories");
    CASE_BAD(strcpy(c.status, "open"), "status \"open\" is not a case status");
    CASE_BAD(c.notified_at = 0, "notified_at 0 is outside [2000-01-01, 2100-01-01)");
    CASE_BAD(c.notified_at = LT_WIRE_TS_MIN - 1, "notified_at");
    CASE_BAD(c.closed_at = LT_WIRE_TS_END, "closed_at 4102444800000 is outside");
    CASE_BAD(c.assessed_at = 5, "assessed_at 5 is outside");
    CASE_BAD(c.changed_at_ms = 1, "changed_at_ms 1 is outside");
    CASE_BAD(c.version = 0, "version 0 is out of range");
#undef CASE_BAD
    /* the boundaries themselves are fine */
    c = sample_case();
    c.notified_at = LT_WIRE_TS_MIN;
    c.closed_at = LT_WIRE_TS_END - 1;
    c.categories = LT_CASE_CATEGORY_MASK;
    CHECK_EQ_INT(lt_wire_check_case(&c, NULL, 0), 0);
    CHECK_CODE(one_case(&c), 0);
}

TEST(hostile_batch_structure)
{
    lt_value_rec_t v = sample_value();
    lt_case_rec_t c = sample_case();
    uint64_t s[] = {11, 12, 12};
    CHECK_CODE(raw_batch(10, 12, s, "vc", &v, &c), 0);
    CHECK_CODE(raw_batch(10, 12, s, "vcv", &v, &c), LT_WIRE_EBAD_FIELD); /* 12, 12 */
    CHECK_ERR_HAS("batch record 2 (seq 12): seq does not follow seq 12");
    uint64_t down[] = {12, 11};
    CHECK_CODE(raw_batch(10, 12, down, "vv", &v, &c), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("batch record 1 (seq 11): seq does not follow seq 12");
    uint64_t at_prev[] = {10};
    CHECK_CODE(raw_batch(10, 12, at_prev, "c", &v, &c), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("seq is outside (prev_seq, last_seq] = (10, 12]");
    uint64_t past[] = {11, 13};
    CHECK_CODE(raw_batch(10, 12, past, "vv", &v, &c), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("batch record 1 (seq 13)");
    CHECK_CODE(raw_batch(12, 12, s, "v", &v, &c), LT_WIRE_EBAD_FIELD); /* prev == last */
    CHECK_ERR_HAS("prev_seq 12 is not below last_seq 12");
    CHECK_CODE(raw_batch(0, 12, s, "", &v, &c), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("records is empty");

    /* 10001 records */
    static uint64_t many[LT_WIRE_MAX_RECORDS + 1];
    static char kinds[LT_WIRE_MAX_RECORDS + 2];
    for (int i = 0; i <= LT_WIRE_MAX_RECORDS; i++) {
        many[i] = (uint64_t)i + 1;
        kinds[i] = 'v';
    }
    CHECK_CODE(raw_batch(0, LT_WIRE_MAX_RECORDS + 1, many, kinds, &v, &c), LT_WIRE_ETOO_LARGE);
    CHECK_ERR_HAS("10001 records; at most 10000");
    kinds[LT_WIRE_MAX_RECORDS] = '\0';
    CHECK_CODE(raw_batch(0, LT_WIRE_MAX_RECORDS, many, kinds, &v, &c), 0);

    /* a record array whose length does not match its kind */
    CHECK_CODE(case_with(1, pk_one), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("record of kind 1 has 21 fields; expected 9");
    CHECK_CODE(decode_hex("95 01 03 00 01 91 93 01 01 ad 61 61 61 61 61 61 61 61 61 61 61 61 61"),
               LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("record of kind 1 has 3 fields; expected 9");
    /* too short to hold even one record */
    CHECK_CODE(decode_hex("95 01 03 00 01 91 91 01"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("1 records cannot fit in 2 bytes");
    CHECK_CODE(decode_hex("95 01 03 00 01 a1 78"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("records: expected an array, got a string");
}

TEST(hostile_ack)
{
    /* 1001 rejects */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_array(&pk, LT_WIRE_MAX_REJECTS + 1);
    for (int i = 0; i <= LT_WIRE_MAX_REJECTS; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint16(&pk, (uint16_t)(i + 1));
        msgpack_pack_uint8(&pk, 6);
        raw_str(&pk, "r");
    }
    CHECK_CODE(decode_code(sb.data, sb.size), LT_WIRE_ETOO_LARGE);
    msgpack_sbuffer_destroy(&sb);

    CHECK_CODE(decode_hex("95 01 04 00 00 91 93 01 06 a1 72"), 0);
    CHECK_CODE(decode_hex("95 01 04 00 00 91 93 00 06 a1 72"), LT_WIRE_EBAD_FIELD); /* seq 0 */
    CHECK_CODE(decode_hex("95 01 04 00 00 91 93 01 00 a1 72"), LT_WIRE_EBAD_FIELD); /* code 0 */
    CHECK_ERR_HAS("ack reject 0: code 0 is out of range 1..255");
    CHECK_CODE(decode_hex("95 01 04 00 00 91 93 01 cd 01 00 a1 72"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("95 01 04 00 00 91 92 01 06"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("95 01 04 00 ce 00 00 00 01 90"), 0);
    CHECK_CODE(decode_hex("95 01 04 00 cf 00 00 00 01 00 00 00 00 90"), LT_WIRE_EBAD_FIELD);
    /* a 201-byte reason */
    uint8_t buf[300];
    size_t n = unhex("95 01 04 00 00 91 93 01 06 d9 c9", buf);
    memset(buf + n, 'r', 201);
    CHECK_CODE(decode_code(buf, n + 201), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_code(buf, n + 200), LT_WIRE_EMALFORMED);
    buf[n - 1] = 200;
    CHECK_CODE(decode_code(buf, n + 200), 0);
}

TEST(hostile_truncated_at_every_byte)
{
    lt_batch_writer_t *w = lt_batch_new();
    CHECK(w);
    lt_value_rec_t v = sample_value();
    lt_case_rec_t c = sample_case();
    lt_batch_begin(w, 0);
    CHECK_EQ_INT(lt_batch_add_value(w, 1, &v), 0);
    CHECK_EQ_INT(lt_batch_add_case(w, 2, &c), 0);
    v.has_value = 0;
    CHECK_EQ_INT(lt_batch_add_value(w, 3, &v), 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_EQ_INT(lt_batch_finish(w, &sb, 3, 0), 0);
    CHECK_CODE(decode_code(sb.data, sb.size), 0);
    for (size_t cut = 0; cut < sb.size; cut++) {
        /* a copy of exactly cut bytes, so ASan sees any read past it */
        uint8_t *part = malloc(cut ? cut : 1);
        CHECK(part);
        memcpy(part, sb.data, cut);
        int code = decode_code(part, cut);
        if (code != LT_WIRE_EMALFORMED)
            fprintf(stderr, "  cut at %zu: %d %s\n", cut, code, err);
        CHECK_EQ_INT(code, LT_WIRE_EMALFORMED);
        free(part);
    }
    /* and trailing garbage */
    msgpack_sbuffer_write(&sb, "\x00", 1);
    CHECK_CODE(decode_code(sb.data, sb.size), LT_WIRE_EMALFORMED);
    CHECK_ERR_HAS("1 trailing bytes");
    CHECK_CODE(decode_hex(HEX_PING " c0 c0"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex(HEX_PING HEX_PING), LT_WIRE_EMALFORMED); /* two messages */
    lt_batch_destroy(&w);
    msgpack_sbuffer_destroy(&sb);
}

TEST(hostile_nesting)
{
    uint8_t buf[64];
    memset(buf, 0x91, 50);
    buf[50] = 0x01;
    CHECK_CODE(decode_code(buf, 51), LT_WIRE_ETOO_DEEP);
    /* depth 4 is structurally fine (the field is then wrong), depth 5 is not */
    CHECK_CODE(decode_hex("93 01 07 91 91 91 01"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("93 01 07 91 91 91 91 01"), LT_WIRE_ETOO_DEEP);
    CHECK_CODE(decode_hex("93 01 07 81 01 81 01 81 01 81 01 01"), LT_WIRE_ETOO_DEEP);
}

TEST(hostile_version_and_type)
{
    CHECK_CODE(decode_hex("93 02 07 00"), LT_WIRE_EBAD_VERSION);
    CHECK_EQ_STR(err, "unsupported protocol version 2; this node speaks 1");
    CHECK_CODE(decode_hex("91 00"), LT_WIRE_EBAD_VERSION);
    CHECK_CODE(decode_hex("92 cd 01 00 81 a1 6b 91 91 91 91 91 01"), LT_WIRE_EBAD_VERSION);
    CHECK_ERR_HAS("version 256;");
    CHECK_CODE(decode_hex("93 01 63 00"), LT_WIRE_EBAD_TYPE); /* type 99 */
    CHECK_ERR_HAS("unknown message type 99");
    CHECK_CODE(decode_hex("93 01 00 00"), LT_WIRE_EBAD_TYPE);
    CHECK_CODE(decode_hex("93 01 0b 00"), LT_WIRE_EBAD_TYPE); /* 11: past META_ACK */
    CHECK_CODE(decode_hex("93 01 a1 37 00"), LT_WIRE_EBAD_TYPE);
    CHECK_CODE(decode_hex("93 01 ff 00"), LT_WIRE_EBAD_TYPE);
    /* not a lienthong frame at all */
    CHECK_CODE(decode_hex("01"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("91 01"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("82 01 07 02 00"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("92 a1 31 07"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("92 ff 07"), LT_WIRE_EMALFORMED);
    /* field counts */
    CHECK_CODE(decode_hex("92 01 07"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("94 01 07 00 00"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("ping: 2 fields after the type; expected 1");
}

TEST(hostile_hello_welcome)
{
    CHECK_CODE(decode_hex("96 01 01 a2 31 32 a1 78 a1 78 00"), LT_WIRE_EBAD_FIELD); /* max_seq str */
    CHECK_ERR_HAS("hello: max_seq: expected an unsigned integer, got a string");
    CHECK_CODE(decode_hex("96 01 01 a3 31 32 61 a1 78 00 00"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("hello: unit \"12a\" is not a unit code");
    CHECK_CODE(decode_hex("96 01 01 a2 31 32 a1 09 00 00"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("software is not printable ASCII");
    CHECK_CODE(decode_hex("96 01 01 a2 31 32 a0 00 00"), 0);
    CHECK_CODE(decode_hex("94 01 02 a1 31 00"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("94 01 02 a2 31 32 ff"), LT_WIRE_EBAD_FIELD);
    CHECK_CODE(decode_hex("94 01 02 a2 31 32 cb 40 00 00 00 00 00 00 00"), LT_WIRE_EBAD_FIELD);
}

/* The "frames that must be refused" table of schemas/protocol.md §8. */
TEST(protocol_md_refusal_table)
{
    uint8_t deep[51];
    memset(deep, 0x91, 50);
    deep[50] = 0x01;
    CHECK_CODE(decode_hex("dd ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("95 01 03 00 01 dd ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("96 01 01 db ff ff ff ff"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("93 01 07 cf 00 00 01 9b 76 da a8 00 00"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_code(deep, sizeof deep), LT_WIRE_ETOO_DEEP);
    CHECK_CODE(decode_hex("93 02 07 00"), LT_WIRE_EBAD_VERSION);
    CHECK_CODE(decode_hex("93 01 63 00"), LT_WIRE_EBAD_TYPE);
    CHECK_CODE(decode_hex("93 01 07 ff"), LT_WIRE_EBAD_FIELD);
}

TEST(validators)
{
    const char *periods_ok[] = {"1990", "2100", "202401", "202412", "2024Q1", "2024Q4",
                                "2024S1", "2024S2", "2026-2030", "2024-2024"};
    const char *periods_bad[] = {"", "199", "1989", "2101", "202400", "202413", "2024Q0",
                                 "2024Q5", "2024S0", "2024S3", "2024-13", "2030-2026",
                                 "2024-1989", "2024-2101", "2024 ", "2024-20245", "abcd",
                                 "2024q1", "20240101"};
    for (size_t i = 0; i < sizeof periods_ok / sizeof *periods_ok; i++)
        CHECK(lt_valid_period(periods_ok[i]));
    for (size_t i = 0; i < sizeof periods_bad / sizeof *periods_bad; i++) {
        if (lt_valid_period(periods_bad[i]))
            fprintf(stderr, "  period \"%s\" accepted\n", periods_bad[i]);
        CHECK(!lt_valid_period(periods_bad[i]));
    }
    CHECK(lt_valid_unit("01") && lt_valid_unit("26734") && lt_valid_unit("001"));
    CHECK(!lt_valid_unit("1") && !lt_valid_unit("123456") && !lt_valid_unit("12a") &&
          !lt_valid_unit("") && !lt_valid_unit("-12"));
    CHECK(lt_valid_element("a") && lt_valid_element("CL.at-risk_5"));
    CHECK(!lt_valid_element("") && !lt_valid_element("a=b") && !lt_valid_element("é"));
    char long_el[66];
    memset(long_el, 'e', 65);
    long_el[65] = '\0';
    CHECK(!lt_valid_element(long_el) && !lt_valid_disagg(long_el));
    long_el[64] = '\0';
    CHECK(lt_valid_element(long_el) && lt_valid_disagg(long_el));
    CHECK(lt_valid_disagg("") && lt_valid_disagg("sex=F;age=5-9:x"));
    CHECK(!lt_valid_disagg("sex=F,age") && !lt_valid_disagg("a b"));
    CHECK(lt_valid_uuid("00000000-0000-0000-0000-000000000000"));
    CHECK(!lt_valid_uuid("00000000-0000-0000-0000-0000000000000"));
    CHECK(!lt_valid_uuid("00000000-0000-0000-0000-00000000000"));
    CHECK(lt_valid_birth_ym("1990-01") && lt_valid_birth_ym("2100-12"));
    CHECK(!lt_valid_birth_ym("2024-00") && !lt_valid_birth_ym("2024-1") &&
          !lt_valid_birth_ym("2024/01"));
    CHECK(lt_valid_village("TH-03.a_b") && !lt_valid_village(""));
    const char *st[] = {"notified", "assessed", "emergency", "planning",
                        "implementing", "reviewing", "closed"};
    for (size_t i = 0; i < 7; i++)
        CHECK(lt_case_status_valid(st[i]));
    CHECK(!lt_case_status_valid("Closed") && !lt_case_status_valid(""));
    CHECK_EQ_STR(lt_case_category_name(0), "at_risk_of_child_labour");
    CHECK_EQ_STR(lt_case_category_name(16), "migrant_or_refugee_alone");
    CHECK(lt_case_category_name(17) == NULL && lt_case_category_name(-1) == NULL);
    CHECK_EQ_STR(lt_wire_error_name(LT_WIRE_EMALFORMED), "malformed");
    CHECK_EQ_STR(lt_wire_error_name(LT_WIRE_EDB_REJECTED), "db_rejected");
    CHECK_EQ_STR(lt_wire_error_name(0), "unknown");
    CHECK_EQ_STR(lt_wire_error_name(LT_WIRE_ENO_SESSION), "no_session");
    CHECK_EQ_STR(lt_wire_error_name(LT_WIRE_EUNAVAILABLE), "unavailable");
    CHECK_EQ_STR(lt_wire_error_name(12), "unknown");
}

/* ---------------------------------------------------------------- metadata down, submissions up */

TEST(meta_round_trip_and_limits)
{
    lt_meta_change_t ch[3] = {
        {.version = 5, .kind = "target", .key = "PL003/CL_RATE/24/2026", .doc = "{\"value\": 4, \"cmp\": \"<\"}"},
        {.version = 7, .kind = "holiday", .key = "2026-04-30", .doc = NULL},
        {.version = 9, .kind = "approval", .key = "07621/ANNUAL/2025", .doc = "{}", .scope = "07621"},
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(lt_wire_encode_meta(&sb, 4, 9, ch, 3) == 0);
    lt_msg_t want = {.type = LT_MSG_META, .u.meta = {.after = 4, .upto = 9, .n = 3, .changes = ch}};
    check_round_trip(&sb, &want);
    /* refused by the encoder: versions not increasing, outside (after, upto], bad kind, bad scope */
    size_t before = sb.size;
    lt_meta_change_t bad = ch[1];
    bad.version = 5;
    lt_meta_change_t two[2] = {ch[0], bad};
    CHECK(lt_wire_encode_meta(&sb, 4, 9, two, 2) < 0);
    CHECK(lt_wire_encode_meta(&sb, 5, 9, ch, 1) < 0);
    bad = ch[0];
    snprintf(bad.kind, sizeof bad.kind, "Target");
    CHECK(lt_wire_encode_meta(&sb, 4, 9, &bad, 1) < 0);
    bad = ch[0];
    snprintf(bad.scope, sizeof bad.scope, "7a");
    CHECK(lt_wire_encode_meta(&sb, 4, 9, &bad, 1) < 0);
    CHECK_EQ_INT(sb.size, before);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    CHECK(lt_wire_encode_meta_ack(&sb, 42) == 0);
    check_bytes(&sb, "93 01 0a 2a");
    msgpack_sbuffer_destroy(&sb);
    /* hostile: a change claiming more changes than bytes; versions going backwards; a doc of the wrong type */
    CHECK_CODE(decode_hex("95 01 09 00 05 dd 00 01 00 00"), LT_WIRE_EMALFORMED);
    CHECK_CODE(decode_hex("95 01 09 00 09 92 95 05 a1 61 a1 6b c0 c0 95 04 a1 61 a1 6b c0 c0"),
               LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("is not inside");
    CHECK_CODE(decode_hex("95 01 09 00 09 91 95 05 a1 61 a1 6b 07 c0"), LT_WIRE_EBAD_FIELD);
    CHECK_ERR_HAS("doc: expected a string or nil");
    CHECK_CODE(decode_hex("95 01 09 09 04 90"), LT_WIRE_EBAD_FIELD);
}

TEST(submission_records_round_trip)
{
    lt_submission_rec_t s = {.unit = "07621", .data_set = "ANNUAL", .period = "2025", .version = 3,
                             .submitted_at = 1764000000000, .first_submitted_at = 1763000000000,
                             .status = "approved", .decided_by = "24", .decided_at = 1764100000000,
                             .reason = "đủ số liệu"};
    lt_batch_writer_t *w = lt_batch_new();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    lt_batch_begin(w, 10);
    CHECK(lt_batch_add_submission(w, 11, &s) == 0);
    lt_submission_rec_t bad = s;
    snprintf(bad.status, sizeof bad.status, "maybe");
    CHECK(lt_batch_add_submission(w, 12, &bad) < 0);
    bad = s;
    bad.first_submitted_at = s.submitted_at + 1;
    CHECK(lt_batch_add_submission(w, 12, &bad) < 0);
    CHECK(lt_batch_finish(w, &sb, 11, 0) == 0);
    lt_record_t rec = {.seq = 11, .kind = LT_REC_SUBMISSION, .u.s = s};
    lt_msg_t want = {.type = LT_MSG_BATCH, .u.batch = {.prev_seq = 10, .last_seq = 11, .n = 1, .records = &rec}};
    check_round_trip(&sb, &want);
    lt_batch_destroy(&w);
    msgpack_sbuffer_destroy(&sb);
}
