/*
 * cmd_meta.c — `lienthong meta`: the metadata catalogue at the top node, as data.
 *
 *   meta load DIR [--replace]   load the CSV files of DIR (schemas/catalog/ ships them)
 *   meta set-target PLAN INDICATOR SCOPE PERIOD CMP VALUE [NOTE]
 *   meta delete-target PLAN INDICATOR SCOPE PERIOD
 *   meta put KIND JSON          create or replace one row of any kind
 *   meta delete KIND KEY        delete one row (KEY: its key columns joined by '/')
 *   meta show [KIND]            versions and counts, or the rows of one kind
 *
 * Every edit goes through lt.meta_put / lt.meta_delete, which refuse on a node that has
 * a parent and log each change for the down-flow; loading the same files twice changes
 * nothing. A load is one transaction: a bad row leaves the catalogue as it was.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The files of a catalogue directory, in dependency order (a target after its plan). */
static const struct {
    const char *kind, *file;
} meta_files[] = {
    {"service", "services.csv"},         {"disaggregation", "disaggregations.csv"},
    {"period", "periods.csv"},           {"data_element", "data_elements.csv"},
    {"plan", "plans.csv"},               {"indicator", "indicators.csv"},
    {"data_set", "data_sets.csv"},       {"deadline", "deadlines.csv"},
    {"case_deadline", "case_deadlines.csv"}, {"holiday", "holidays.csv"},
    {"target", "targets.csv"},
};

/* "col1 text, col2 text" from a CSV header line; -1 (reported) on a name that is not
   a plain lower-case identifier. */
static int header_columns(const char *path, const char *data, char *out, size_t outlen)
{
    size_t o = 0;
    const char *p = data;

    out[0] = '\0';
    while (*p && *p != '\n' && *p != '\r') {
        char name[64];
        size_t n = 0;
        while (*p && *p != ',' && *p != '\n' && *p != '\r') {
            if (n + 1 >= sizeof(name) || !(islower((unsigned char)*p) || *p == '_' ||
                                           isdigit((unsigned char)*p))) {
                fprintf(stderr, "lienthong: %s: the header must name columns in lower case (a-z, 0-9, _)\n",
                        path);
                return -1;
            }
            name[n++] = *p++;
        }
        name[n] = '\0';
        if (n == 0) {
            fprintf(stderr, "lienthong: %s: empty column name in the header\n", path);
            return -1;
        }
        int w = snprintf(out + o, outlen - o, "%s\"%s\" text", o ? ", " : "", name);
        if (w < 0 || (size_t)w >= outlen - o) {
            fprintf(stderr, "lienthong: %s: header too long\n", path);
            return -1;
        }
        o += (size_t)w;
        if (*p == ',')
            p++;
    }
    return o ? 0 : -1;
}

/* Load one file into the catalogue (inside the caller's transaction). Returns the
   number of changes logged, or -1. */
static int load_file(PGconn *db, const char *dir, const char *kind, const char *file, int replace,
                     int *rows_out)
{
    char path[1200], cols[4096], sql[4400];
    size_t len;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *data = cli_read_file(path, &len);
    if (!data)
        return -1;
    char *body = data;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) { /* a byte-order mark */
        body += 3;
        len -= 3;
    }
    if (header_columns(path, body, cols, sizeof(cols)) != 0)
        goto out;
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; DROP TABLE IF EXISTS pg_temp.meta_csv; "
             "CREATE TEMP TABLE meta_csv (%s)",
             cols);
    if (cli_exec(db, sql, 0, NULL) != 0 ||
        cli_copy_in(db, "COPY pg_temp.meta_csv FROM STDIN WITH (FORMAT csv, HEADER true)", body, len) != 0) {
        fprintf(stderr, "lienthong: while loading %s\n", path);
        goto out;
    }
    const char *p[2] = {kind, replace ? "true" : "false"};
    PGresult *r = cli_query(db,
                            "SELECT lt.meta_load($1, (SELECT coalesce(jsonb_agg(to_jsonb(m)), '[]') "
                            "FROM pg_temp.meta_csv m), $2::boolean), (SELECT count(*) FROM pg_temp.meta_csv)",
                            2, p);
    if (!r) {
        fprintf(stderr, "lienthong: while loading %s\n", path);
        goto out;
    }
    rc = atoi(PQgetvalue(r, 0, 0));
    *rows_out = atoi(PQgetvalue(r, 0, 1));
    PQclear(r);
out:
    free(data);
    return rc;
}

static int meta_load(cli_t *cli, PGconn *db)
{
    const char *dir = cli_arg(cli, 1);
    int replace = cli_flag(cli, "--replace"), total = 0, files = 0;

    if (!dir) {
        fprintf(stderr, "usage: lienthong meta load DIR [--replace]\n");
        return 2;
    }
    if (cli_exec(db, "BEGIN", 0, NULL) != 0)
        return 2;
    for (size_t i = 0; i < sizeof(meta_files) / sizeof(meta_files[0]); i++) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", dir, meta_files[i].file);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue; /* a directory may carry only some kinds */
        fclose(f);
        int rows = 0;
        int n = load_file(db, dir, meta_files[i].kind, meta_files[i].file, replace, &rows);
        if (n < 0) {
            (void)cli_exec(db, "ROLLBACK", 0, NULL);
            fprintf(stderr, "lienthong: nothing loaded\n");
            return 2;
        }
        printf("%-15s %4d rows, %3d changes\n", meta_files[i].kind, rows, n);
        total += n;
        files++;
    }
    if (files == 0) {
        (void)cli_exec(db, "ROLLBACK", 0, NULL);
        fprintf(stderr, "lienthong: no catalogue files in %s\n", dir);
        return 2;
    }
    PGresult *r = cli_query(db, "COMMIT; SELECT lt.meta_high()", 0, NULL);
    if (!r)
        return 2;
    printf("catalogue loaded from %s: %d changes, log at version %s\n", dir, total, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int print_version(PGresult *r, const char *what)
{
    if (!r)
        return 2;
    if (PQgetisnull(r, 0, 0))
        printf("%s: unchanged\n", what);
    else
        printf("%s: version %s\n", what, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int meta_set_target(cli_t *cli, PGconn *db)
{
    const char *a[7];
    char what[512];

    for (int i = 0; i < 6; i++)
        if (!(a[i] = cli_arg(cli, i + 1))) {
            fprintf(stderr, "usage: lienthong meta set-target PLAN INDICATOR SCOPE PERIOD CMP VALUE [NOTE]\n"
                            "  SCOPE: commune, district, province, national, '*' or a unit code; "
                            "CMP: '<' '<=' '>=' '>'\n");
            return 2;
        }
    a[6] = cli_arg(cli, 7);
    snprintf(what, sizeof(what), "target %s/%s/%s/%s %s %s", a[0], a[1], a[2], a[3], a[4], a[5]);
    return print_version(cli_query(db, "SELECT lt.set_target($1, $2, $3, $4, $5, $6::numeric, $7)", 7, a), what);
}

static int meta_delete_target(cli_t *cli, PGconn *db)
{
    const char *a[4];
    char what[512];

    for (int i = 0; i < 4; i++)
        if (!(a[i] = cli_arg(cli, i + 1))) {
            fprintf(stderr, "usage: lienthong meta delete-target PLAN INDICATOR SCOPE PERIOD\n");
            return 2;
        }
    snprintf(what, sizeof(what), "deleted target %s/%s/%s/%s", a[0], a[1], a[2], a[3]);
    return print_version(
        cli_query(db, "SELECT lt.meta_delete('target', concat_ws('/', $1::text, $2::text, $3::text, $4::text))", 4, a), what);
}

static int meta_put(cli_t *cli, PGconn *db)
{
    const char *a[2] = {cli_arg(cli, 1), cli_arg(cli, 2)};
    char what[256];

    if (!a[0] || !a[1]) {
        fprintf(stderr, "usage: lienthong meta put KIND JSON\n");
        return 2;
    }
    snprintf(what, sizeof(what), "%s", a[0]);
    return print_version(cli_query(db, "SELECT lt.meta_put($1, $2::jsonb)", 2, a), what);
}

static int meta_delete(cli_t *cli, PGconn *db)
{
    const char *a[2] = {cli_arg(cli, 1), cli_arg(cli, 2)};
    char what[256];

    if (!a[0] || !a[1]) {
        fprintf(stderr, "usage: lienthong meta delete KIND KEY\n");
        return 2;
    }
    snprintf(what, sizeof(what), "deleted %s %s", a[0], a[1]);
    return print_version(cli_query(db, "SELECT lt.meta_delete($1, $2)", 2, a), what);
}

static int show_query(PGconn *db, const char *title, const char *sql, int n, const char *const *p)
{
    PGresult *r = cli_query(db, sql, n, p);
    if (!r)
        return -1;
    printf("%s\n", title);
    if (PQntuples(r) == 0)
        printf("  (none)\n");
    else
        report_print_table(r, stdout);
    printf("\n");
    PQclear(r);
    return 0;
}

static int meta_show(cli_t *cli, PGconn *db)
{
    const char *kind = cli_arg(cli, 1);

    if (!kind) {
        int rc = show_query(db, "metadata at this node",
                            "SELECT n.unit_code AS node, CASE WHEN n.has_parent THEN 'from parent' ELSE 'top (edits here)' END AS role, "
                            "       s.applied_version AS parent_version, s.log_high, s.log_rows, "
                            "       coalesce(to_char(s.applied_at, 'YYYY-MM-DD HH24:MI:SS'), '-') AS last_applied, "
                            "       coalesce(to_char(s.last_change, 'YYYY-MM-DD HH24:MI:SS'), '-') AS last_change "
                            "  FROM lt.node n CROSS JOIN lt_report.meta_status s",
                            0, NULL);
        if (rc == 0)
            rc = show_query(db, "catalogue (live rows and tombstones in the log, per kind)",
                            "SELECT kind, count(*) FILTER (WHERE doc IS NOT NULL) AS rows, "
                            "       count(*) FILTER (WHERE doc IS NULL) AS deleted, max(version) AS latest_version "
                            "  FROM lt.meta_change GROUP BY kind ORDER BY kind",
                            0, NULL);
        return rc ? 2 : 0;
    }
    static const struct {
        const char *kind, *sql;
    } views[] = {
        {"target", "SELECT plan, indicator, scope, period, comparison AS cmp, value, coalesce(note, '') AS note "
                   "FROM lt.target ORDER BY plan, indicator, scope, period"},
        {"indicator", "SELECT code, ind_type AS type, numerator, coalesce(denominator, '') AS denominator, name_vi "
                      "FROM lt.indicator ORDER BY sort_order, code"},
        {"data_element", "SELECT code, aggregation, coalesce(period_type, '*') AS period_type, "
                         "coalesce(disaggregation, '') AS disagg, name_vi FROM lt.data_element ORDER BY code"},
        {"plan", "SELECT code, period, coalesce(issued_by, '') AS issued_by, name_vi FROM lt.plan ORDER BY period, code"},
        {"data_set", "SELECT code, period_type, array_to_string(levels, ',') AS levels, includes_cases, "
                     "coalesce(array_length(elements, 1), 0) AS n_elements, name_vi FROM lt.data_set ORDER BY code"},
        {"deadline", "SELECT data_set, period_type, rule, coalesce(lpad(due_day::text, 2, '0') || '/' || "
                     "lpad(due_month::text, 2, '0'), '') AS before, coalesce(days_after::text, '') AS days_after "
                     "FROM lt.deadline ORDER BY data_set, period_type"},
        {"holiday", "SELECT day, to_char(day, 'Dy') AS dow, kind, name_vi FROM lt.holiday ORDER BY day"},
        {"case_deadline", "SELECT step, from_step, amount, unit, required, name_vi FROM lt.case_deadline ORDER BY amount"},
        {"service", "SELECT bit, code, name_vi, name_en FROM lt.service ORDER BY bit"},
        {"disaggregation", "SELECT dimension, option, name_vi, name_en FROM lt.disaggregation "
                           "ORDER BY dimension, sort_order"},
        {"period", "SELECT code, name_vi, name_en FROM lt.period WHERE period_type = 'plan' ORDER BY code"},
        {"approval", "SELECT key, doc ->> 'status' AS status, doc ->> 'decided_by' AS decided_by, "
                     "doc ->> 'decided_at' AS decided_at, coalesce(doc ->> 'reason', '') AS reason "
                     "FROM lt.meta_change WHERE kind = 'approval' ORDER BY key"},
    };
    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
        if (strcmp(kind, views[i].kind) == 0)
            return show_query(db, kind, views[i].sql, 0, NULL) ? 2 : 0;
    fprintf(stderr, "lienthong: unknown kind \"%s\" (target indicator data_element plan data_set deadline "
                    "holiday case_deadline service disaggregation period approval)\n", kind);
    return 2;
}

int cmd_meta(cli_t *cli)
{
    const char *sub = cli_arg(cli, 0);
    static const struct {
        const char *name;
        int (*run)(cli_t *, PGconn *);
    } subs[] = {{"load", meta_load},       {"set-target", meta_set_target},
                {"delete-target", meta_delete_target}, {"put", meta_put},
                {"delete", meta_delete},   {"show", meta_show}};

    if (!sub) {
        fprintf(stderr, "usage: lienthong meta load|set-target|delete-target|put|delete|show ...\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(sub, subs[i].name) != 0)
            continue;
        PGconn *db = cli_connect(cli);
        if (!db)
            return 2;
        int rc = subs[i].run(cli, db);
        PQfinish(db);
        return rc;
    }
    fprintf(stderr, "lienthong: unknown meta command \"%s\"\n", sub);
    return 2;
}
