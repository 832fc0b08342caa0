/*
 * cmd_generate.c — realistic synthetic data for one commune, for the demo, tests
 * and benchmarks: the yearly population figures, quarterly communication and
 * training activity, monthly injuries, and case records with the NĐ 56/2017 steps
 * and synthetic personal data (which must never leave the commune).
 *
 * Deterministic for a given --seed and unit. Every write goes through lt.put_value /
 * lt.put_case in one transaction, exactly like an officer's writes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rng_int(rng_t *r, int lo, int hi) /* inclusive */
{
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

/* binomial-ish draw: n trials at probability p, normal approximation for large n */
static int rng_binom(rng_t *r, int n, double p)
{
    if (n <= 0)
        return 0;
    double mean = n * p, sd = sqrt(n * p * (1 - p));
    double u1 = rng_unit(r) + 1e-12, u2 = rng_unit(r);
    double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    int v = (int)lround(mean + z * sd);
    return v < 0 ? 0 : v > n ? n : v;
}

static int put(PGconn *db, const char *unit, const char *element, const char *period,
               const char *disagg, long value)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld", value);
    const char *p[5] = {unit, element, period, disagg, v};
    PGresult *r = PQexecPrepared(db, "put", 5, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "lienthong: %s %s: %s", element, period, PQerrorMessage(db));
    PQclear(r);
    return ok ? 0 : -1;
}

static const char *const family_names[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ",
                                           "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Lý"};
static const char *const middle_names[] = {"Văn", "Thị", "Đức", "Minh", "Ngọc", "Thu", "Hữu"};
static const char *const given_names[] = {"An", "Bình", "Chi", "Dũng", "Hà", "Hải", "Hoa",
                                          "Hùng", "Lan", "Linh", "Mai", "Nam", "Phúc", "Quân",
                                          "Trang", "Tuấn", "Vy", "Yến"};
#define PICK(r, a) (a)[rng_next(r) % (sizeof(a) / sizeof((a)[0]))]

/* Category mix: at risk and child labour dominate the programmes' caseload. */
static int pick_categories(rng_t *r)
{
    double u = rng_unit(r);
    int cats;
    if (u < 0.38)
        cats = 1 << 0; /* at risk */
    else if (u < 0.60)
        cats = (1 << 1) | (rng_unit(r) < 0.4 ? (1 << 10) : 0) | (rng_unit(r) < 0.3 ? (1 << 12) : 0);
    else if (u < 0.63)
        cats = (1 << 2) | (1 << 14);
    else
        cats = 1 << rng_int(r, 3, 16);
    if (rng_unit(r) < 0.15)
        cats |= 1 << rng_int(r, 3, 16); /* a child can be in several groups */
    return cats;
}

static void fmt_ts(char *out, size_t n, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Add working days (Mon-Fri) to t; holidays are the metadata's business, not the generator's. */
static time_t add_working_days(time_t t, int days)
{
    struct tm tm;
    while (days > 0) {
        t += 86400;
        gmtime_r(&t, &tm);
        if (tm.tm_wday != 0 && tm.tm_wday != 6)
            days--;
    }
    return t;
}

static int gen_case(PGconn *db, rng_t *r, int year, int month, time_t now)
{
    struct tm tm = {0};
    char json[2048], notified[32], assessed[32], emergency[32] = "", drafted[32] = "",
                                                  approved[32] = "", closed[32] = "";
    const char *status;

    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = rng_int(r, 1, 28);
    tm.tm_hour = rng_int(r, 1, 15); /* 08:00-22:00 in Vietnam */
    tm.tm_min = rng_int(r, 0, 59);
    time_t t = timegm(&tm);
    if (t > now)
        t = now - rng_int(r, 3600, 86400);
    fmt_ts(notified, sizeof(notified), t);
    fmt_ts(assessed, sizeof(assessed), t + rng_int(r, 1, 30) * 3600);
    int cats = pick_categories(r);
    /* urgent cases (trafficking, violence, sexual abuse) get emergency action, mostly in 12 h */
    if ((cats & ((1 << 2) | (1 << 11) | (1 << 13) | (1 << 14))) || rng_unit(r) < 0.1)
        fmt_ts(emergency, sizeof(emergency), t + rng_int(r, 1, rng_unit(r) < 0.9 ? 11 : 30) * 3600);
    time_t d = add_working_days(t, rng_unit(r) < 0.85 ? rng_int(r, 1, 5) : rng_int(r, 6, 9));
    time_t a = add_working_days(d, rng_unit(r) < 0.9 ? rng_int(r, 1, 2) : rng_int(r, 3, 4));
    double age_days = difftime(now, t) / 86400.0;
    if (d < now)
        fmt_ts(drafted, sizeof(drafted), d);
    if (a < now)
        fmt_ts(approved, sizeof(approved), a);
    if (!drafted[0])
        status = "assessed";
    else if (!approved[0])
        status = "planning";
    else if (age_days > 120 && rng_unit(r) < 0.6) {
        status = "closed";
        fmt_ts(closed, sizeof(closed), t + (time_t)(rng_int(r, 90, 119) * 86400));
    } else
        status = age_days > 60 ? "reviewing" : "implementing";
    int age = rng_int(r, 5, 17);
    int ethnicity = rng_unit(r) < 0.85 ? 1 : rng_int(r, 2, 54);
    const char *fam = PICK(r, family_names);
    snprintf(json, sizeof(json),
             "{\"sex\":\"%s\",\"birth_ym\":\"%04d-%02d\",\"ethnicity\":%d,\"village\":\"TH%02d\","
             "\"categories\":%d,\"status\":\"%s\",\"notified_at\":\"%s\",\"assessed_at\":\"%s\""
             "%s%s%s%s%s%s%s%s%s%s%s%s,\"services\":%d,"
             "\"full_name\":\"%s %s %s\",\"guardian_name\":\"%s %s %s\","
             "\"address\":\"Thôn %d\",\"phone\":\"09%08d\",\"notes\":\"Ghi chú riêng về hoàn cảnh gia đình %d\"}",
             rng_unit(r) < 0.55 ? "M" : "F", year - age, rng_int(r, 1, 12), ethnicity,
             rng_int(r, 1, 12), cats, status, notified, assessed,
             emergency[0] ? ",\"emergency_at\":\"" : "", emergency, emergency[0] ? "\"" : "",
             drafted[0] ? ",\"plan_drafted_at\":\"" : "", drafted, drafted[0] ? "\"" : "",
             approved[0] ? ",\"plan_approved_at\":\"" : "", approved, approved[0] ? "\"" : "",
             closed[0] ? ",\"closed_at\":\"" : "", closed, closed[0] ? "\"" : "",
             rng_int(r, 0, 63), fam, PICK(r, middle_names), PICK(r, given_names), fam,
             PICK(r, middle_names), PICK(r, given_names), rng_int(r, 1, 12),
             rng_int(r, 0, 99999999), rng_int(r, 1, 1000));
    const char *p[1] = {json};
    PGresult *res = PQexecPrepared(db, "case", 1, p, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "lienthong: case: %s", PQerrorMessage(db));
    PQclear(res);
    return ok ? 0 : -1;
}

int cmd_generate(cli_t *cli)
{
    int year = cli_opt(cli, "--year") ? atoi(cli_opt(cli, "--year")) : 2024;
    int months = cli_opt(cli, "--months") ? atoi(cli_opt(cli, "--months")) : 12;
    int ncases = cli_opt(cli, "--cases") ? atoi(cli_opt(cli, "--cases")) : 12;
    uint64_t seed = cli_opt(cli, "--seed") ? strtoull(cli_opt(cli, "--seed"), NULL, 10) : 1;
    int rounds = cli_opt(cli, "--rounds") ? atoi(cli_opt(cli, "--rounds")) : 1;
    PGconn *db;
    PGresult *res;
    rng_t r;
    char period[16];
    long nvalues = 0;

    if (year < 1990 || year > 2100 || months < 1 || months > 12 || ncases < 0 || rounds < 1) {
        fprintf(stderr, "lienthong: generate: --year 1990..2100, --months 1..12, --cases >= 0, --rounds >= 1\n");
        return 2;
    }
    if (!(db = cli_connect(cli)))
        return 2;
    const char *unit = cli->cfg.unit;
    r.s = seed * 1000003u + (uint64_t)strtoul(unit, NULL, 10);
    res = PQprepare(db, "put", "SELECT lt.put_value($1, $2, $3, $4, $5::numeric)", 5, NULL);
    PQclear(res);
    res = PQprepare(db, "case", "SELECT lt.put_case($1::jsonb)", 1, NULL);
    PQclear(res);
    if (cli_exec(db, "BEGIN", 0, NULL) != 0)
        goto fail;

    /* yearly figures: a commune of 8,000-30,000 people, about a quarter of them children */
    int children = rng_int(&r, 1800, 7500);
    int c517 = children * rng_int(&r, 70, 80) / 100;
    int families = children * rng_int(&r, 55, 65) / 100;
    int parents = families * 18 / 10;
    int officials = rng_int(&r, 60, 160), businesses = rng_int(&r, 30, 320);
    int culture = rng_int(&r, 2, 4), agencies = rng_int(&r, 10, 22);
    int disabled = children * rng_int(&r, 8, 15) / 1000;
    snprintf(period, sizeof(period), "%04d", year);
    struct {
        const char *e;
        long v;
    } yearly[] = {{"POP_CHILD_U16", children}, {"POP_CHILD_5_17", c517},
                  {"POP_CHILD_U8", children * 45 / 100}, {"POP_CHILD_7P", children * 60 / 100},
                  {"POP_CHILD_DISABLED", disabled}, {"FAMILIES_WITH_CHILDREN", families},
                  {"OFFICIALS_TEACHERS", officials}, {"PARENTS", parents},
                  {"BUSINESSES", businesses}, {"CULTURE_OFFICIALS", culture},
                  {"AGENCY_REPS", agencies}};
    for (size_t i = 0; i < sizeof(yearly) / sizeof(yearly[0]); i++, nvalues++)
        if (put(db, unit, yearly[i].e, period, "", yearly[i].v) != 0)
            goto fail;

    /* quarterly activity: shares of the yearly reach, by quarter; --rounds rewrites them
       (corrections), which makes versions travel */
    for (int round = 0; round < rounds; round++) {
        for (int q = 1; q <= (months + 2) / 3; q++) {
            snprintf(period, sizeof(period), "%04dQ%d", year, q);
            int girls = rng_binom(&r, children / 2, 0.18), boys = rng_binom(&r, children / 2, 0.17);
            struct {
                const char *e, *d;
                long v;
            } qv[] = {
                {"OFFICIALS_TEACHERS_INF", "", rng_binom(&r, officials, 0.24)},
                {"PARENTS_INF", "", rng_binom(&r, parents, 0.19)},
                {"CHILDREN_INF", "sex=F", girls},
                {"CHILDREN_INF", "sex=M", boys},
                {"BUSINESSES_INF", "", rng_binom(&r, businesses, 0.23)},
                {"BUSINESSES_TRAINED", "", rng_binom(&r, businesses, 0.2)},
                {"CULTURE_OFFICIALS_TRN", "", q == 2 ? culture : 0},
                {"AGENCY_REPS_TRN", "", rng_binom(&r, agencies, 0.18)},
                {"FAMILIES_KNOWLEDGE", "", rng_binom(&r, families, 0.22)},
                {"CHILDREN_U8_ECD", "", rng_binom(&r, children * 45 / 100, 0.2)},
                {"DISABLED_REACHED", "", rng_binom(&r, disabled, 0.22)},
                {"DISABLED_SKILLS", "", rng_binom(&r, disabled, 0.15)},
                {"CHILDREN_7P_CONSULTED", "", rng_binom(&r, children * 60 / 100, 0.05)},
                {"PARENTS_INF_CL", "", rng_binom(&r, parents, 0.19)},
            };
            for (size_t i = 0; i < sizeof(qv) / sizeof(qv[0]); i++, nvalues++)
                if (put(db, unit, qv[i].e, period, qv[i].d, qv[i].v) != 0)
                    goto fail;
        }
    }
    /* monthly injuries: about 3 per 1,000 children a year, deaths rare */
    for (int m = 1; m <= months; m++) {
        snprintf(period, sizeof(period), "%04d%02d", year, m);
        if (put(db, unit, "CHILD_INJURIES", period, "", rng_binom(&r, children, 0.0028 / 12)) != 0 ||
            put(db, unit, "CHILD_INJURY_DEATHS", period, "", rng_binom(&r, children, 0.00012)) != 0)
            goto fail;
        nvalues += 2;
    }
    time_t now = time(NULL);
    for (int i = 0; i < ncases; i++)
        if (gen_case(db, &r, year, rng_int(&r, 1, months), now) != 0)
            goto fail;
    if (cli_exec(db, "COMMIT", 0, NULL) != 0)
        goto fail;
    PQfinish(db);
    printf("generated for %s: %ld values, %d cases (year %d, %d months, seed %llu)\n", unit,
           nvalues, ncases, year, months, (unsigned long long)seed);
    return 0;
fail:
    PQfinish(db);
    return 2;
}
