/*
 * fuzz_wire.c — libFuzzer target for the protocol v1 decoder (common/wire_decode.c).
 *
 * Any input must be decoded or refused cleanly: no crash, no leak, no read
 * past the buffer. Whatever decodes must survive a round trip: re-encoded,
 * it decodes again to an equal message, and re-encoding that gives the same
 * bytes (the encoder's form is canonical). Build and run: tests/fuzz/run.sh.
 */
#include "wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                             \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_wire: %s failed at line %d\n", #cond, __LINE__); \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lt_msg_t m, again;
    char err[256];
    int code = 0;

    if (lt_wire_decode(data, size, &m, err, sizeof err, &code) < 0) {
        MUST(code >= 1 && code <= LT_WIRE_EBAD_FIELD);
        MUST(err[0] != '\0' && strlen(err) < sizeof err);
        MUST(m.type == 0);
        return 0;
    }
    MUST(code == 0);
    if (m.type == LT_MSG_BATCH)
        for (uint32_t i = 0; i < m.u.batch.n; i++) {
            const lt_record_t *r = &m.u.batch.records[i];
            MUST(r->kind == LT_REC_VALUE ? lt_wire_check_value(&r->u.v, NULL, 0) == 0
                                         : lt_wire_check_case(&r->u.c, NULL, 0) == 0);
        }

    msgpack_sbuffer sb1, sb2;
    msgpack_sbuffer_init(&sb1);
    msgpack_sbuffer_init(&sb2);
    MUST(lt_wire_encode_msg(&sb1, &m) == 0);
    MUST(sb1.size <= LT_WIRE_MAX_FRAME);
    if (lt_wire_decode(sb1.data, sb1.size, &again, err, sizeof err, &code) < 0) {
        fprintf(stderr, "fuzz_wire: re-encoded message refused: %s\n", err);
        abort();
    }
    MUST(lt_msg_equal(&m, &again));
    MUST(lt_wire_encode_msg(&sb2, &again) == 0);
    MUST(sb1.size == sb2.size && memcmp(sb1.data, sb2.data, sb1.size) == 0);
    msgpack_sbuffer_destroy(&sb1);
    msgpack_sbuffer_destroy(&sb2);
    lt_msg_clear(&again);
    lt_msg_clear(&m);
    return 0;
}
