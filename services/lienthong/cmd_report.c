/*
 * cmd_report.c — what officers read and decide:
 *
 *   report        indicators against targets for a unit and each of its child units
 *   completeness  who reported a data set for a period, on time, late or not at all
 *   submit        this node's unit declares a data set complete for a period
 *   decide        an ancestor approves, returns or reopens a unit's submission
 *
 * Everything is read from the documented views of schema lt_report (schemas/VIEWS.md)
 * and written through lt.submit / lt.decide; nothing here computes an indicator.
 * Vietnamese by default, English with --en; --format table (default), csv or json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { FMT_TABLE, FMT_CSV, FMT_JSON };

/* ---------------------------------------------------------------- output helpers */

/* Display width of a UTF-8 string: one column per code point. */
static int u8_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* A table of malloc'd cells, printed with aligned columns. */
typedef struct {
    int ncols, nrows, cap;
    char **cells; /* row-major, nrows x ncols */
} table_t;

static void table_init(table_t *t, int ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
}

static int table_add(table_t *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 32;
        char **nc = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof(char *));
        if (!nc)
            return -1;
        t->cells = nc;
        t->cap = cap;
    }
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = strdup(row[c] ? row[c] : "");
    t->nrows++;
    return 0;
}

static void table_free(table_t *t)
{
    for (int i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Row 0 is the header. */
static void table_print(const table_t *t, FILE *out, const char *indent)
{
    int w[32] = {0};
    int nc = t->ncols < 32 ? t->ncols : 32;

    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < nc; c++) {
            int cw = u8_width(t->cells[r * t->ncols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    for (int r = 0; r < t->nrows; r++) {
        fputs(indent, out);
        for (int c = 0; c < nc; c++) {
            const char *v = t->cells[r * t->ncols + c];
            fprintf(out, "%s%s", c ? "  " : "", v);
            if (c + 1 < nc)
                fprintf(out, "%*s", w[c] - u8_width(v), "");
        }
        fputc('\n', out);
        if (r == 0) {
            fputs(indent, out);
            for (int c = 0; c < nc; c++) {
                fprintf(out, "%s", c ? "  " : "");
                for (int i = 0; i < w[c]; i++)
                    fputc('-', out);
            }
            fputc('\n', out);
        }
    }
}

void report_print_table(PGresult *r, FILE *out)
{
    table_t t;
    int nf = PQnfields(r);
    const char *row[32];

    if (nf > 32)
        nf = 32;
    table_init(&t, nf);
    for (int f = 0; f < nf; f++)
        row[f] = PQfname(r, f);
    if (table_add(&t, row) != 0)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        for (int f = 0; f < nf; f++)
            row[f] = PQgetvalue(r, i, f);
        if (table_add(&t, row) != 0)
            goto out;
    }
    table_print(&t, out, "");
out:
    table_free(&t);
}

static void csv_field(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* One JSON value of a result cell: null, a bare number or boolean, or a string. */
static void json_cell(FILE *out, PGresult *r, int i, int f, int raw)
{
    if (PQgetisnull(r, i, f))
        fputs("null", out);
    else if (raw)
        fputs(strcmp(PQgetvalue(r, i, f), "t") == 0   ? "true"
              : strcmp(PQgetvalue(r, i, f), "f") == 0 ? "false"
                                                      : PQgetvalue(r, i, f),
              out);
    else
        json_string(out, PQgetvalue(r, i, f));
}

/* Result rows as CSV (header = column names) or a JSON array of objects. Columns whose
   name is in `raw` (space-separated) are numbers or booleans. */
static void print_machine(PGresult *r, int fmt, const char *raw, FILE *out)
{
    int nf = PQnfields(r), nt = PQntuples(r);
    char key[80], padded[300];

    if (fmt == FMT_CSV) {
        for (int f = 0; f < nf; f++) {
            fputs(f ? "," : "", out);
            csv_field(out, PQfname(r, f));
        }
        fputc('\n', out);
        for (int i = 0; i < nt; i++) {
            for (int f = 0; f < nf; f++) {
                fputs(f ? "," : "", out);
                csv_field(out, PQgetvalue(r, i, f));
            }
            fputc('\n', out);
        }
        return;
    }
    fputc('[', out);
    for (int i = 0; i < nt; i++) {
        fputs(i ? ",\n {" : "{", out);
        for (int f = 0; f < nf; f++) {
            snprintf(key, sizeof(key), " %s ", PQfname(r, f));
            snprintf(padded, sizeof(padded), " %s ", raw);
            fputs(f ? ", " : "", out);
            json_string(out, PQfname(r, f));
            fputs(": ", out);
            json_cell(out, r, i, f, strstr(padded, key) != NULL);
        }
        fputc('}', out);
    }
    fputs("]\n", out);
}

void report_print_csv(PGresult *r, FILE *out)
{
    print_machine(r, FMT_CSV, "", out);
}

static int parse_format(cli_t *cli)
{
    const char *f = cli_opt(cli, "--format");
    if (!f || strcmp(f, "table") == 0)
        return FMT_TABLE;
    if (strcmp(f, "csv") == 0)
        return FMT_CSV;
    if (strcmp(f, "json") == 0)
        return FMT_JSON;
    fprintf(stderr, "lienthong: --format is table, csv or json, not \"%s\"\n", f);
    return -1;
}

/* A number as officers read it: Vietnamese uses a decimal comma. */
static void fmt_num(char *out, size_t n, const char *v, int decimals, int en)
{
    snprintf(out, n, "%.*f", decimals, strtod(v, NULL));
    if (!en)
        for (char *p = out; *p; p++)
            if (*p == '.')
                *p = ',';
}

static void fmt_value(char *out, size_t n, const char *type, const char *v, int en)
{
    char num[48];
    if (!*v) {
        snprintf(out, n, "—");
        return;
    }
    if (strcmp(type, "count") == 0) {
        fmt_num(num, sizeof(num), v, 0, en);
        snprintf(out, n, "%s", num);
    } else if (strcmp(type, "per_1000") == 0) {
        fmt_num(num, sizeof(num), v, 2, en);
        snprintf(out, n, "%s‰", num);
    } else {
        fmt_num(num, sizeof(num), v, 1, en);
        snprintf(out, n, "%s%%", num);
    }
}

static const char *cmp_sign(const char *c)
{
    return strcmp(c, "<=") == 0 ? "≤" : strcmp(c, ">=") == 0 ? "≥" : c;
}

/* A name cut to max display columns, at a code-point boundary. */
static void fmt_name(char *out, size_t n, const char *s, int max)
{
    int w = 0;
    size_t o = 0;
    for (const char *p = s; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && ++w > max) {
            snprintf(out + o, n - o, "…");
            return;
        }
        if (o + 1 >= n - 4)
            break;
        out[o++] = *p;
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- report */

/* The report views are planned in tens of milliseconds and run in hundreds; PostgreSQL's
   JIT would spend seconds compiling them whenever an estimate runs high. */
static PGconn *report_connect(cli_t *cli)
{
    PGconn *db = cli_connect(cli);
    if (db && cli_exec(db, "SET jit = off", 0, NULL) != 0) {
        PQfinish(db);
        return NULL;
    }
    return db;
}

#define REPORT_SQL                                                                              \
    "SELECT u.code AS unit_code, coalesce(v.unit_name, (SELECT n.name FROM lt.unit n WHERE n.code = u.code " \
    "         AND lt.period_end($2) >= n.valid_from AND lt.period_end($2) < n.valid_to LIMIT 1), '') AS unit_name, " \
    "       i.code AS indicator, CASE WHEN $4 THEN i.name_en ELSE i.name_vi END AS name, i.ind_type, "  \
    "       v.numerator, v.denominator, v.value, v.comparison, v.target, v.met, v.plan, "          \
    "       to_char(v.freshness AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI') AS freshness " \
    "  FROM unnest($1::text[]) WITH ORDINALITY AS u(code, ord) "                                   \
    " CROSS JOIN lt.indicator i "                                                                  \
    "  LEFT JOIN lt_report.indicator_value v ON v.unit_code = u.code AND v.period = $2 "           \
    "        AND v.indicator = i.code AND v.unit_code = ANY ($1::text[]) "                         \
    " WHERE ($3 = '' OR i.code = $3) "                                                             \
    " ORDER BY u.ord, i.sort_order, i.code"

enum { R_UNIT, R_UNIT_NAME, R_IND, R_NAME, R_TYPE, R_NUM, R_DEN, R_VALUE, R_CMP, R_TARGET, R_MET, R_PLAN, R_FRESH };

static void print_report_table(PGresult *r, const char *period, int en, int with_targets)
{
    table_t t;
    const char *hdr_vi[] = {"Mã", "Chỉ tiêu", "Giá trị", "Mục tiêu", "Kết quả", "Tử số / mẫu số"};
    const char *hdr_en[] = {"Code", "Indicator", "Value", "Target", "Result", "Numerator / denominator"};
    int nt = PQntuples(r);

    for (int i = 0; i < nt;) {
        const char *unit = PQgetvalue(r, i, R_UNIT);
        char fresh[40] = "";
        int met = 0, notmet = 0, j;

        table_init(&t, 6);
        (void)table_add(&t, en ? hdr_en : hdr_vi);
        for (j = i; j < nt && strcmp(PQgetvalue(r, j, R_UNIT), unit) == 0; j++) {
            char name[400], value[96], target[128], nd[128], a[48], b[48];
            const char *type = PQgetvalue(r, j, R_TYPE);
            const char *result;
            int has_target = !PQgetisnull(r, j, R_TARGET);

            if (with_targets && !has_target)
                continue;
            if (!PQgetisnull(r, j, R_FRESH) && strcmp(PQgetvalue(r, j, R_FRESH), fresh) > 0)
                snprintf(fresh, sizeof(fresh), "%s", PQgetvalue(r, j, R_FRESH));
            fmt_name(name, sizeof(name), PQgetvalue(r, j, R_NAME), 64);
            fmt_value(value, sizeof(value), type, PQgetvalue(r, j, R_VALUE), en);
            if (has_target) {
                char tv[96];
                fmt_value(tv, sizeof(tv), type, PQgetvalue(r, j, R_TARGET), en);
                snprintf(target, sizeof(target), "%s %s", cmp_sign(PQgetvalue(r, j, R_CMP)), tv);
            } else {
                snprintf(target, sizeof(target), "—");
            }
            if (PQgetisnull(r, j, R_MET)) {
                result = "—";
            } else if (PQgetvalue(r, j, R_MET)[0] == 't') {
                result = en ? "met" : "Đạt";
                met++;
            } else {
                result = en ? "NOT MET" : "CHƯA ĐẠT";
                notmet++;
            }
            if (strcmp(type, "count") == 0 || PQgetisnull(r, j, R_NUM)) {
                snprintf(nd, sizeof(nd), "%s", "");
            } else {
                fmt_num(a, sizeof(a), PQgetvalue(r, j, R_NUM), 0, en);
                if (PQgetisnull(r, j, R_DEN))
                    snprintf(b, sizeof(b), "—");
                else
                    fmt_num(b, sizeof(b), PQgetvalue(r, j, R_DEN), 0, en);
                snprintf(nd, sizeof(nd), "%s / %s", a, b);
            }
            const char *row[6] = {PQgetvalue(r, j, R_IND), name, value, target, result, nd};
            (void)table_add(&t, row);
        }
        printf("%s %s — %s %s", unit, PQgetvalue(r, i, R_UNIT_NAME), en ? "period" : "kỳ", period);
        if (fresh[0])
            printf(" (%s %s)", en ? "data as of" : "số liệu đến", fresh);
        printf("\n");
        if (fresh[0] == '\0')
            printf("  %s\n", en ? "(no data for this period)" : "(chưa có số liệu của kỳ này)");
        else {
            if (met + notmet > 0)
                printf("  %s: %d/%d\n", en ? "targets met" : "đạt mục tiêu", met, met + notmet);
            table_print(&t, stdout, "  ");
        }
        printf("\n");
        table_free(&t);
        i = j;
    }
}

int cmd_report(cli_t *cli)
{
    const char *indicator = cli_opt(cli, "--indicator");
    int en = cli_flag(cli, "--en"), fmt = parse_format(cli);
    int depth = cli_opt(cli, "--depth") ? atoi(cli_opt(cli, "--depth")) : 1;
    char period[32];
    PGconn *db;
    PGresult *r;
    int rc = 2;

    if (cli_flag(cli, "--no-children"))
        depth = 0;
    if (fmt < 0 || depth < 0 || depth > 4) {
        if (depth < 0 || depth > 4)
            fprintf(stderr, "lienthong: --depth is 0 to 4\n");
        return 2;
    }
    if (!(db = report_connect(cli)))
        return 2;
    const char *unit = cli_opt(cli, "--unit") ? cli_opt(cli, "--unit") : cli->cfg.unit;
    if (cli_opt(cli, "--period")) {
        snprintf(period, sizeof(period), "%s", cli_opt(cli, "--period"));
    } else {
        /* the latest year with data at the unit */
        const char *p[1] = {unit};
        if (!(r = cli_query(db, "SELECT coalesce(max(period), to_char(now(), 'YYYY')) FROM lt.rollup_value "
                                "WHERE unit_code = $1 AND period ~ '^[0-9]{4}$' AND n_rows > 0", 1, p)))
            goto out;
        snprintf(period, sizeof(period), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    /* the unit and its children on the period's last day, inside this node's subtree */
    char dbuf[8];
    snprintf(dbuf, sizeof(dbuf), "%d", depth);
    const char *pu[3] = {unit, period, dbuf};
    r = cli_query(db,
                  "SELECT coalesce(array_agg(code ORDER BY depth, code), '{}') FROM ("
                  "  SELECT DISTINCT a.descendant AS code, a.depth FROM lt.unit_ancestor a "
                  "   WHERE a.ancestor = $1 AND a.depth <= $3::int "
                  "     AND lt.period_end($2) >= a.valid_from AND lt.period_end($2) < a.valid_to "
                  "     AND EXISTS (SELECT 1 FROM lt.rollup_path p WHERE p.descendant = a.descendant)) s",
                  3, pu);
    if (!r)
        goto out;
    char *units = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!units || strcmp(units, "{}") == 0) {
        fprintf(stderr, "lienthong: unit %s is not in this node's subtree in period %s\n", unit, period);
        free(units);
        goto out;
    }
    const char *p[4] = {units, period, indicator ? indicator : "", en ? "true" : "false"};
    r = cli_query(db, REPORT_SQL, 4, p);
    free(units);
    if (!r)
        goto out;
    if (fmt == FMT_TABLE)
        print_report_table(r, period, en, cli_flag(cli, "--with-targets"));
    else
        print_machine(r, fmt, "numerator denominator value target met", stdout);
    PQclear(r);
    rc = 0;
out:
    PQfinish(db);
    return rc;
}

/* ---------------------------------------------------------------- completeness */

/* The scope unit and its children; for each data set the period asked for, or the
   latest one whose deadline has passed. */
#define COMPLETENESS_SQL                                                                        \
    "WITH scope AS (SELECT DISTINCT a.descendant AS code, a.depth FROM lt.unit_ancestor a "       \
    "                WHERE a.ancestor = $1 AND a.depth <= 1 "                                    \
    "                  AND EXISTS (SELECT 1 FROM lt.rollup_path p WHERE p.descendant = a.descendant)), " \
    "     pick AS (SELECT ds.code AS data_set, CASE WHEN $4 THEN ds.name_en ELSE ds.name_vi END AS name, " \
    "                     CASE WHEN $2 <> '' THEN $2 ELSE "                                      \
    "                       (SELECT p.code FROM lt.period p WHERE p.period_type = ds.period_type "  \
    "                           AND lt.due_at(ds.code, p.code) <= now() AND p.end_date >= ds.active_from " \
    "                           AND EXISTS (SELECT 1 FROM lt.rollup_path a JOIN lt.unit u ON u.code = a.descendant " \
    "                                        AND p.end_date >= u.valid_from AND p.end_date < u.valid_to "  \
    "                                        AND u.level = ANY (ds.levels) "                     \
    "                                      WHERE a.ancestor = $1 AND a.descendant <> $1 "         \
    "                                        AND p.end_date >= a.valid_from AND p.end_date < a.valid_to) " \
    "                         ORDER BY p.end_date DESC LIMIT 1) END AS period "                 \
    "                FROM lt.data_set ds WHERE $3 = '' OR ds.code = $3) "

static int print_completeness(PGconn *db, const char *const *p, int en, int fmt)
{
    PGresult *s, *l;

    s = cli_query(db,
                  COMPLETENESS_SQL
                  "SELECT c.scope_unit, coalesce((SELECT n.name FROM lt.unit n WHERE n.code = c.scope_unit "
                  "         AND lt.period_end(c.period) >= n.valid_from AND lt.period_end(c.period) < n.valid_to "
                  "         LIMIT 1), '') AS scope_name, c.data_set, k.name, c.period, "
                  "       to_char(c.due_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY') AS due, "
                  "       c.expected, c.submitted, c.on_time, c.late, c.missing, c.overdue, c.approved, c.returned, "
                  "       c.submitted_percent, c.on_time_percent "
                  "  FROM pick k JOIN lt_report.completeness c ON c.data_set = k.data_set AND c.period = k.period "
                  "  JOIN scope sc ON sc.code = c.scope_unit "
                  " WHERE c.scope_unit IN (SELECT code FROM scope) "
                  " ORDER BY c.data_set, sc.depth, c.scope_unit",
                  4, p);
    if (!s)
        return -1;
    l = cli_query(db,
                  COMPLETENESS_SQL
                  "SELECT s.data_set, s.period, s.unit_code, s.unit_name, s.state, s.overdue, s.days_late, "
                  "       coalesce(s.status, '') AS status, "
                  "       coalesce(to_char(s.first_submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI'), '') "
                  "         AS submitted, coalesce(s.reason, '') AS reason "
                  "  FROM pick k JOIN lt_report.submission_status s ON s.data_set = k.data_set AND s.period = k.period "
                  " WHERE s.scope_unit = $1 AND s.state IN ('late', 'missing') "
                  " ORDER BY s.data_set, s.state, s.unit_code",
                  4, p);
    if (!l) {
        PQclear(s);
        return -1;
    }
    if (fmt != FMT_TABLE) {
        if (fmt == FMT_JSON)
            printf("{\"summary\": ");
        print_machine(s, fmt, "expected submitted on_time late missing overdue approved returned "
                              "submitted_percent on_time_percent", stdout);
        if (fmt == FMT_JSON)
            printf(", \"late_or_missing\": ");
        else
            printf("\n");
        print_machine(l, fmt, "overdue days_late", stdout);
        if (fmt == FMT_JSON)
            printf("}\n");
        PQclear(s);
        PQclear(l);
        return 0;
    }
    if (PQntuples(s) == 0)
        printf("%s\n", en ? "(no unit is expected to report in this scope and period)"
                          : "(không có đơn vị nào phải báo cáo trong phạm vi và kỳ này)");
    char prev[128] = "";
    for (int i = 0; i < PQntuples(s); i++) {
        char dsk[128];
        snprintf(dsk, sizeof(dsk), "%s/%s", PQgetvalue(s, i, 2), PQgetvalue(s, i, 4));
        if (strcmp(dsk, prev) != 0) {
            printf("%s%s (%s) — %s %s, %s %s\n", i ? "\n" : "", PQgetvalue(s, i, 3), PQgetvalue(s, i, 2),
                   en ? "period" : "kỳ", PQgetvalue(s, i, 4), en ? "due before" : "hạn: trước ngày",
                   PQgetvalue(s, i, 5)[0] ? PQgetvalue(s, i, 5) : "—");
            snprintf(prev, sizeof(prev), "%s", dsk);
        }
        char pct1[32], pct2[32];
        fmt_num(pct1, sizeof(pct1), PQgetvalue(s, i, 14), 1, en);
        fmt_num(pct2, sizeof(pct2), PQgetvalue(s, i, 15), 1, en);
        printf("  %s %s: %s %s, %s %s (%s%%), %s %s (%s%%), %s %s, %s %s, %s %s\n", PQgetvalue(s, i, 0),
               PQgetvalue(s, i, 1), en ? "expected" : "phải nộp", PQgetvalue(s, i, 6),
               en ? "submitted" : "đã nộp", PQgetvalue(s, i, 7), pct1, en ? "on time" : "đúng hạn",
               PQgetvalue(s, i, 8), pct2, en ? "late" : "muộn", PQgetvalue(s, i, 9),
               en ? "missing" : "chưa nộp", PQgetvalue(s, i, 10), en ? "approved" : "đã duyệt",
               PQgetvalue(s, i, 12));
    }
    if (PQntuples(l) > 0) {
        table_t t;
        const char *hdr_vi[] = {"Báo cáo", "Kỳ", "Đơn vị", "Tên", "Tình trạng", "Nộp lúc", "Ghi chú"};
        const char *hdr_en[] = {"Data set", "Period", "Unit", "Name", "State", "Submitted", "Note"};
        table_init(&t, 7);
        (void)table_add(&t, en ? hdr_en : hdr_vi);
        for (int i = 0; i < PQntuples(l); i++) {
            char state[96];
            const char *st = PQgetvalue(l, i, 4);
            if (strcmp(st, "late") == 0)
                snprintf(state, sizeof(state), en ? "late (%s days)" : "muộn %s ngày", PQgetvalue(l, i, 6));
            else if (strcmp(PQgetvalue(l, i, 7), "returned") == 0)
                snprintf(state, sizeof(state), "%s", en ? "returned" : "bị trả lại");
            else
                snprintf(state, sizeof(state), "%s",
                         PQgetvalue(l, i, 5)[0] == 't' ? (en ? "missing, overdue" : "chưa nộp, quá hạn")
                                                       : (en ? "not yet submitted" : "chưa nộp"));
            const char *row[7] = {PQgetvalue(l, i, 0), PQgetvalue(l, i, 1), PQgetvalue(l, i, 2),
                                  PQgetvalue(l, i, 3), state,  PQgetvalue(l, i, 8),
                                  PQgetvalue(l, i, 9)};
            (void)table_add(&t, row);
        }
        printf("\n%s %s:\n", en ? "Late or missing under" : "Nộp muộn hoặc chưa nộp, thuộc", p[0]);
        table_print(&t, stdout, "  ");
        table_free(&t);
    }
    PQclear(s);
    PQclear(l);
    return 0;
}

int cmd_completeness(cli_t *cli)
{
    int en = cli_flag(cli, "--en"), fmt = parse_format(cli);
    PGconn *db;

    if (fmt < 0)
        return 2;
    if (!(db = report_connect(cli)))
        return 2;
    const char *p[4] = {cli_opt(cli, "--unit") ? cli_opt(cli, "--unit") : cli->cfg.unit,
                        cli_opt(cli, "--period") ? cli_opt(cli, "--period") : "",
                        cli_opt(cli, "--data-set") ? cli_opt(cli, "--data-set") : "", en ? "true" : "false"};
    int rc = print_completeness(db, p, en, fmt);
    PQfinish(db);
    return rc ? 2 : 0;
}

/* ---------------------------------------------------------------- submit, decide */

int cmd_submit(cli_t *cli)
{
    const char *ds = cli_arg(cli, 0), *period = cli_arg(cli, 1);
    PGconn *db;
    PGresult *r;

    if (!ds || !period)
        return 2;
    if (!(db = cli_connect(cli)))
        return 2;
    const char *p[2] = {ds, period};
    if (!(r = cli_query(db, "SELECT lt.submit($1, $2)", 2, p))) {
        PQfinish(db);
        return 2;
    }
    printf("%s submitted %s for %s (version %s", cli->cfg.unit, ds, period, PQgetvalue(r, 0, 0));
    PQclear(r);
    r = cli_query(db,
                  "SELECT coalesce(to_char(lt.due_at($1, $2) AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY'), '-'), "
                  "       CASE WHEN lt.due_at($1, $2) IS NULL OR s.first_submitted_at < lt.due_at($1, $2) "
                  "            THEN 'on time' ELSE 'late' END "
                  "  FROM lt.submission s JOIN lt.node n ON s.unit_code = n.unit_code "
                  " WHERE s.data_set = $1 AND s.period = $2",
                  2, p);
    PQfinish(db);
    if (r && PQntuples(r) == 1)
        printf("; due before %s: %s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    printf(")\n");
    if (r)
        PQclear(r);
    return 0;
}

int cmd_decide(cli_t *cli)
{
    const char *unit = cli_arg(cli, 0), *ds = cli_arg(cli, 1), *period = cli_arg(cli, 2);
    const char *decision = cli_arg(cli, 3), *reason = cli_arg(cli, 4);
    PGconn *db;

    if (!unit || !ds || !period || !decision)
        return 2;
    if (!(db = cli_connect(cli)))
        return 2;
    const char *p[5] = {unit, ds, period, decision, reason};
    PGresult *r = cli_query(db, "SELECT lt.decide($1, $2, $3, $4, $5)", 5, p);
    PQfinish(db);
    if (!r)
        return 2;
    printf("%s %s %s of %s (version %s)\n", cli->cfg.unit, decision, ds, unit, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}
