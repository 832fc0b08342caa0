/*
 * wire_check.c — the rules of protocol v1 that do not depend on bytes: names,
 * validators of codes and periods, and the record checks shared by the decoder,
 * the encoders, the child before it sends and the CLI before it writes.
 */
#include "wire_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ names */

const char *lt_wire_error_name(int code)
{
    static const char *const names[] = {
        NULL,        "malformed", "too_large",    "too_deep",   "bad_version",
        "bad_type",  "bad_field", "unauthorised", "db_rejected", "no_session",
        "busy",      "unavailable",
    };
    if (code >= 1 && code <= LT_WIRE_EUNAVAILABLE)
        return names[code];
    return "unknown";
}

const char *lt_case_category_name(int bit)
{
    static const char *const names[LT_CASE_CATEGORY_COUNT] = {
        "at_risk_of_child_labour", "child_labourer", "trafficked_for_labour",
        "orphan", "abandoned", "without_carer", "disability", "hiv_aids",
        "in_conflict_with_law", "drug_addiction", "dropped_out_to_work",
        "violence_victim", "exploited", "sexually_abused", "trafficked",
        "severe_illness_poor_household", "migrant_or_refugee_alone",
    };
    return bit >= 0 && bit < LT_CASE_CATEGORY_COUNT ? names[bit] : NULL;
}

/* ------------------------------------------------------------- validators */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* s made of 1..max characters from [A-Za-z0-9] plus those in extra. */
static int charset_ok(const char *s, size_t min, size_t max, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || !(is_alnum(s[n]) || strchr(extra, s[n])))
            return 0;
    return n >= min;
}

/* Four digits forming a year in 1990..2100; the year in *out. */
static int year_at(const char *s, int *out)
{
    for (int i = 0; i < 4; i++)
        if (!is_digit(s[i]))
            return 0;
    *out = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    return *out >= 1990 && *out <= 2100;
}

static int month_at(const char *s)
{
    return is_digit(s[0]) && is_digit(s[1]) && (s[0] - '0') * 10 + (s[1] - '0') >= 1 &&
           (s[0] - '0') * 10 + (s[1] - '0') <= 12;
}

int lt_valid_unit(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 5 || !is_digit(s[n]))
            return 0;
    return n >= 2;
}

int lt_valid_element(const char *s) { return charset_ok(s, 1, 64, "_.-"); }
int lt_valid_disagg(const char *s) { return charset_ok(s, 0, 64, "_.=;:-"); }
int lt_valid_village(const char *s) { return charset_ok(s, 1, 32, "_.-"); }

int lt_valid_period(const char *s)
{
    size_t n = strnlen(s, 10);
    int y1, y2;
    if (n < 4 || !year_at(s, &y1))
        return 0;
    switch (n) {
    case 4:
        return 1;
    case 6:
        if (s[4] == 'Q')
            return s[5] >= '1' && s[5] <= '4';
        if (s[4] == 'S')
            return s[5] >= '1' && s[5] <= '2';
        return month_at(s + 4);
    case 9:
        return s[4] == '-' && year_at(s + 5, &y2) && y1 <= y2;
    default:
        return 0;
    }
}

int lt_valid_birth_ym(const char *s)
{
    int y;
    return strnlen(s, 8) == 7 && year_at(s, &y) && s[4] == '-' && month_at(s + 5);
}

int lt_valid_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) {
            return 0;
        }
    }
    return s[36] == '\0';
}

static const char *const case_statuses[] = {
    "notified", "assessed", "emergency", "planning", "implementing", "reviewing", "closed",
};

int lt_case_status_valid(const char *s)
{
    for (size_t i = 0; i < sizeof case_statuses / sizeof case_statuses[0]; i++)
        if (strcmp(s, case_statuses[i]) == 0)
            return 1;
    return 0;
}

/* software: printable ASCII, at most 64 bytes. */
int lt_wire__software_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 64 || s[n] < 0x20 || s[n] > 0x7e)
            return 0;
    return 1;
}

/* ---------------------------------------------------------- error strings */

void lt_wire__errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* s (n bytes) double-quoted and escaped, cut with "..." after about 52 bytes. */
const char *lt_wire__quote(char dst[72], const char *s, size_t n)
{
    size_t o = 0;
    dst[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o > 52) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, 5, "\\x%02x", c);
    }
    dst[o++] = '"';
    dst[o] = '\0';
    return dst;
}


/* ---------------------------------------------------------- record checks */

/* Each char array field must hold a terminating NUL. */
#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int lt_wire_check_value(const lt_value_rec_t *v, char *err, size_t errlen)
{
    char b[72];
    if (!TERMINATED(v->unit) || !TERMINATED(v->element) || !TERMINATED(v->period) ||
        !TERMINATED(v->disagg)) {
        lt_wire__errf(err, errlen, "a string field is not terminated");
        return -1;
    }
    if (!lt_valid_unit(v->unit))
        lt_wire__errf(err, errlen, "unit %s is not a unit code", q(b, v->unit));
    else if (!lt_valid_element(v->element))
        lt_wire__errf(err, errlen, "element %s is not an element code", q(b, v->element));
    else if (!lt_valid_period(v->period))
        lt_wire__errf(err, errlen, "period %s is not a period", q(b, v->period));
    else if (!lt_valid_disagg(v->disagg))
        lt_wire__errf(err, errlen, "disagg %s is not a disaggregation key", q(b, v->disagg));
    else if (v->has_value && !isfinite(v->value))
        lt_wire__errf(err, errlen, "value is not finite");
    else if (v->has_value && fabs(v->value) > LT_WIRE_MAX_ABS_VALUE)
        lt_wire__errf(err, errlen, "value %g is beyond +-1e15", v->value);
    else if (v->version < 1)
        lt_wire__errf(err, errlen, "version must be at least 1");
    else
        return 0;
    return -1;
}

static int ts_in_range(int64_t t) { return t >= LT_WIRE_TS_MIN && t < LT_WIRE_TS_END; }

/* The optional step dates: each -1 (nil) or within range. */
static int steps_ok(const lt_case_rec_t *c, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int64_t t;
    } steps[] = {
        {"assessed_at", c->assessed_at},         {"emergency_at", c->emergency_at},
        {"plan_drafted_at", c->plan_drafted_at}, {"plan_approved_at", c->plan_approved_at},
        {"reviewed_at", c->reviewed_at},         {"closed_at", c->closed_at},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i].t != -1 && !ts_in_range(steps[i].t)) {
            lt_wire__errf(err, errlen, "%s %" PRId64 " is outside [2000-01-01, 2100-01-01)",
                 steps[i].name, steps[i].t);
            return 0;
        }
    }
    return 1;
}

int lt_wire_check_case(const lt_case_rec_t *c, char *err, size_t errlen)
{
    char b[72];
    if (!TERMINATED(c->case_id) || !TERMINATED(c->unit) || !TERMINATED(c->birth_ym) ||
        !TERMINATED(c->village) || !TERMINATED(c->status)) {
        lt_wire__errf(err, errlen, "a string field is not terminated");
        return -1;
    }
    if (!lt_valid_uuid(c->case_id)) {
        lt_wire__errf(err, errlen, "case_id %s is not a lowercase uuid", q(b, c->case_id));
        return -1;
    }
    if (!lt_valid_unit(c->unit))
        lt_wire__errf(err, errlen, "unit %s is not a unit code", q(b, c->unit));
    else if (c->version < 1)
        lt_wire__errf(err, errlen, "version must be at least 1");
    else if (c->changed_at_ms < (uint64_t)LT_WIRE_TS_MIN ||
             c->changed_at_ms >= (uint64_t)LT_WIRE_TS_END)
        lt_wire__errf(err, errlen, "changed_at_ms %" PRIu64 " is outside [2000-01-01, 2100-01-01)",
             c->changed_at_ms);
    else if (c->deleted != 0 && c->deleted != 1)
        lt_wire__errf(err, errlen, "deleted must be 0 or 1");
    else if (c->sex != 'M' && c->sex != 'F' && c->sex != 'U')
        lt_wire__errf(err, errlen, "sex must be M, F or U");
    else if (c->birth_ym[0] && !lt_valid_birth_ym(c->birth_ym))
        lt_wire__errf(err, errlen, "birth_ym %s is not YYYY-MM", q(b, c->birth_ym));
    else if (c->ethnicity < 0 || c->ethnicity > 99)
        lt_wire__errf(err, errlen, "ethnicity %d is out of range 1..99", c->ethnicity);
    else if (c->village[0] && !lt_valid_village(c->village))
        lt_wire__errf(err, errlen, "village %s is not a village code", q(b, c->village));
    else if (c->categories & ~LT_CASE_CATEGORY_MASK)
        lt_wire__errf(err, errlen, "categories 0x%" PRIx32 " has bits beyond 16", c->categories);
    else if (!lt_case_status_valid(c->status))
        lt_wire__errf(err, errlen, "status %s is not a case status", q(b, c->status));
    else if (!ts_in_range(c->notified_at))
        lt_wire__errf(err, errlen, "notified_at %" PRId64 " is outside [2000-01-01, 2100-01-01)",
             c->notified_at);
    else if (steps_ok(c, err, errlen))
        return 0;
    return -1;
}

static const char *const submission_statuses[] = {"submitted", "approved", "returned", "reopened", NULL};

int lt_wire_check_submission(const lt_submission_rec_t *s, char *err, size_t errlen)
{
    char b[72];
    int ok_status = 0;
    for (int i = 0; submission_statuses[i]; i++)
        ok_status |= strcmp(s->status, submission_statuses[i]) == 0;
    if (!lt_valid_unit(s->unit))
        lt_wire__errf(err, errlen, "unit %s is not a unit code", q(b, s->unit));
    else if (!lt_valid_element(s->data_set))
        lt_wire__errf(err, errlen, "data_set %s is not a code", q(b, s->data_set));
    else if (!lt_valid_period(s->period))
        lt_wire__errf(err, errlen, "period %s is not a period", q(b, s->period));
    else if (s->version == 0 || s->version > INT64_MAX)
        lt_wire__errf(err, errlen, "version %" PRIu64 " is out of range", s->version);
    else if (!ts_in_range(s->submitted_at) || !ts_in_range(s->first_submitted_at) ||
             s->first_submitted_at > s->submitted_at)
        lt_wire__errf(err, errlen, "submission times are out of range or out of order");
    else if (!ok_status)
        lt_wire__errf(err, errlen, "submission status %s is unknown", q(b, s->status));
    else if (s->decided_by[0] && !lt_valid_unit(s->decided_by))
        lt_wire__errf(err, errlen, "decided_by %s is not a unit code", q(b, s->decided_by));
    else if (s->decided_at != -1 && !ts_in_range(s->decided_at))
        lt_wire__errf(err, errlen, "decided_at is out of range");
    else
        return 0;
    return -1;
}

int lt_wire_check_resync(const lt_resync_rec_t *r, char *err, size_t errlen)
{
    char u[72];
    if (!lt_valid_unit(r->unit)) {
        lt_wire__errf(err, errlen, "unit %s is not a unit code", q(u, r->unit));
        return -1;
    }
    if (r->phase != LT_RESYNC_BEGIN && r->phase != LT_RESYNC_END) {
        lt_wire__errf(err, errlen, "resync phase %d is neither 1 (begin) nor 2 (end)", r->phase);
        return -1;
    }
    return 0;
}

int lt_wire_check_meta_change(const lt_meta_change_t *m, char *err, size_t errlen)
{
    char b[72];
    size_t klen = strlen(m->key);
    if (m->version == 0 || m->version > INT64_MAX)
        lt_wire__errf(err, errlen, "version %" PRIu64 " is out of range", m->version);
    else if (!charset_ok(m->kind, 1, 32, "_") || strpbrk(m->kind, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"))
        lt_wire__errf(err, errlen, "kind %s is not [a-z_]{1,32}", q(b, m->kind));
    else if (klen == 0 || klen > 256)
        lt_wire__errf(err, errlen, "key is %zu bytes; 1..256", klen);
    else if (m->scope[0] && !lt_valid_unit(m->scope))
        lt_wire__errf(err, errlen, "scope %s is not a unit code", q(b, m->scope));
    else if (m->doc && strlen(m->doc) > LT_WIRE_MAX_META_DOC)
        lt_wire__errf(err, errlen, "doc is over %d bytes", LT_WIRE_MAX_META_DOC);
    else {
        for (size_t i = 0; i < klen; i++)
            if ((unsigned char)m->key[i] < 0x20) {
                lt_wire__errf(err, errlen, "key contains a control character");
                return -1;
            }
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ tables */

const char *const lt_wire__msg_names[] = {
    "?", "hello", "welcome", "batch", "ack", "resume", "error", "ping", "pong", "meta", "meta_ack",
};
/* Fields after [version, type], per message type: what this node sends, and the
 * fewest it accepts. WELCOME and BATCH gained a trailing token; a peer that does not
 * send it is read as token 0 (unknown). */
const uint32_t lt_wire__msg_fields[] = {0, 4, 3, 4, 3, 2, 2, 1, 1, 3, 1};
const uint32_t lt_wire__msg_fields_min[] = {0, 4, 2, 3, 3, 2, 2, 1, 1, 3, 1};
