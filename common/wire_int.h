/*
 * wire_int.h — what the three parts of the protocol v1 codec share, and nothing
 * else includes: wire_check.c (names, validators, record checks), wire_encode.c
 * (encoders, batch writer), wire_decode.c (the decoder, comparison).
 */
#ifndef LT_WIRE_INT_H
#define LT_WIRE_INT_H
#include <stdint.h>
#include <string.h>

#include "wire.h"

#define REC_VALUE_FIELDS 9
#define REC_CASE_FIELDS 21
#define REC_SUBMISSION_FIELDS 12
#define REC_RESYNC_FIELDS 4
#define META_CHANGE_FIELDS 5
#define REC_MIN_BYTES 7    /* smallest possible encoded record (a resync marker) */
#define REJECT_MIN_BYTES 4 /* smallest possible encoded reject */
#define BATCH_HEADER_MAX 35 /* fixarray, version, type, 2 x uint64, array32, uint64 */

/* Per message type: its name; the fields after [version, type] this node sends,
 * and the fewest it accepts. */
extern const char *const lt_wire__msg_names[];
extern const uint32_t lt_wire__msg_fields[];
extern const uint32_t lt_wire__msg_fields_min[];

/* printf into err (may be NULL). */
void lt_wire__errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s (n bytes) double-quoted and escaped, cut with "..." after about 52 bytes. */
const char *lt_wire__quote(char dst[72], const char *s, size_t n);
static inline const char *q(char dst[72], const char *s) { return lt_wire__quote(dst, s, strlen(s)); }
/* software: printable ASCII, at most 64 bytes. */
int lt_wire__software_ok(const char *s);

#endif
