/*
 * cmd_ops.c — what an operator asks a node: status of its links, verify (roll-ups
 * equal a from-scratch recomputation), digests of a subtree's leaf rows, the
 * roll-ups themselves, the rows a full resync set aside (held), and the effective
 * configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_table(PGresult *r, FILE *out)
{
    int nf = PQnfields(r), nt = PQntuples(r);
    int w[32] = {0};

    if (nf > 32)
        nf = 32;
    for (int f = 0; f < nf; f++) {
        w[f] = (int)strlen(PQfname(r, f));
        for (int t = 0; t < nt; t++) {
            /* display width: count UTF-8 lead bytes only */
            int len = 0;
            for (const char *s = PQgetvalue(r, t, f); *s; s++)
                len += ((unsigned char)*s & 0xC0) != 0x80;
            if (len > w[f])
                w[f] = len;
        }
    }
    for (int f = 0; f < nf; f++)
        fprintf(out, "%s%-*s", f ? "  " : "", w[f], PQfname(r, f));
    fputc('\n', out);
    for (int f = 0; f < nf; f++) {
        fprintf(out, "%s", f ? "  " : "");
        for (int i = 0; i < w[f]; i++)
            fputc('-', out);
    }
    fputc('\n', out);
    for (int t = 0; t < nt; t++) {
        for (int f = 0; f < nf; f++) {
            const char *v = PQgetvalue(r, t, f);
            int len = 0;
            for (const char *s = v; *s; s++)
                len += ((unsigned char)*s & 0xC0) != 0x80;
            fprintf(out, "%s%s%*s", f ? "  " : "", v, w[f] - len, "");
        }
        fputc('\n', out);
    }
}

static int show(PGconn *db, const char *title, const char *sql, int nparams,
                const char *const *params, int json)
{
    PGresult *r = cli_query(db, sql, nparams, params);
    if (!r)
        return -1;
    if (json) {
        /* the query itself produced one JSON value in one cell */
        printf("%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "null");
    } else {
        if (title)
            printf("%s\n", title);
        if (PQntuples(r) == 0)
            printf("  (none)\n");
        else
            print_table(r, stdout);
        printf("\n");
    }
    PQclear(r);
    return 0;
}

#define UPSTREAM_SQL                                                                       \
    "SELECT n.unit_code AS node, coalesce(u.parent_unit, '-') AS parent, u.state, "        \
    "       (SELECT count(*) FROM lt.outbox) AS outbox_rows, "                              \
    "       coalesce(round(extract(epoch FROM now() - (SELECT min(queued_at) FROM lt.outbox)))::text, '0') " \
    "         AS lag_seconds, "                                                            \
    "       u.acked_seq, coalesce(to_char(u.last_contact, 'YYYY-MM-DD HH24:MI:SS'), 'never') " \
    "         AS last_contact, "                                                           \
    "       coalesce(round(extract(epoch FROM now() - u.last_contact))::text, '-') AS contact_age_s, " \
    "       u.resyncs, coalesce(u.last_error, '') AS last_error, "                          \
    "       coalesce(to_char(u.last_resync_at, 'YYYY-MM-DD HH24:MI:SS') || ': ' || u.last_resync, '') " \
    "         AS last_resync "                                                             \
    "  FROM lt.node n CROSS JOIN lt.upstream u"

#define CHILDREN_SQL                                                                       \
    "SELECT l.child_unit AS child, coalesce((SELECT max(name) FROM lt.unit WHERE code = l.child_unit), '') AS name, " \
    "       l.state, l.last_applied_seq AS applied_seq, "                                  \
    "       greatest(coalesce(l.child_max_seq, 0) - l.last_applied_seq, 0) AS lag_seq, "   \
    "       coalesce(to_char(l.last_contact, 'YYYY-MM-DD HH24:MI:SS'), 'never') AS last_contact, " \
    "       coalesce(round(extract(epoch FROM now() - l.last_contact))::text, '-') AS contact_age_s, " \
    "       l.batches, l.applied_rows, l.rejected_rows, "                                  \
    "       l.resyncs, coalesce(l.resync_unit, '') AS resyncing, l.held_rows AS set_aside_rows, " \
    "       coalesce(l.last_error, '') AS last_error "                                     \
    "  FROM lt.child_link l ORDER BY l.child_unit"

int cmd_status(cli_t *cli)
{
    int json = cli_flag(cli, "--json");
    PGconn *db = cli_connect(cli);
    int rc = 0;

    if (!db)
        return 2;
    if (json) {
        printf("{\"upstream\":");
        rc |= show(db, NULL, "SELECT coalesce(json_agg(s), '[]') FROM (" UPSTREAM_SQL ") s", 0, NULL, 1);
        printf(",\"children\":");
        rc |= show(db, NULL, "SELECT coalesce(json_agg(s), '[]') FROM (" CHILDREN_SQL ") s", 0, NULL, 1);
        printf("}\n");
    } else {
        rc |= show(db, "upstream link (this node -> its parent)", UPSTREAM_SQL, 0, NULL, 0);
        rc |= show(db, "child links (children -> this node)", CHILDREN_SQL, 0, NULL, 0);
        rc |= show(db, "refused records (latest 5)",
                   "SELECT to_char(received_at, 'YYYY-MM-DD HH24:MI:SS') AS received, child_unit, seq, code, reason "
                   "FROM lt.rejected_delta ORDER BY id DESC LIMIT 5",
                   0, NULL, 0);
    }
    PQfinish(db);
    return rc ? 2 : 0;
}

int cmd_verify(cli_t *cli)
{
    PGconn *db = cli_connect(cli);
    PGresult *r, *s;

    if (!db)
        return 2;
    /* one snapshot for the check and the counts */
    if (cli_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL) != 0 ||
        !(r = cli_query(db, "SELECT * FROM lt.verify() LIMIT 1000", 0, NULL))) {
        PQfinish(db);
        return 2;
    }
    s = cli_query(db,
                  "SELECT (SELECT count(*) FROM lt.data_value), (SELECT count(*) FROM lt.case_record), "
                  "(SELECT count(*) FROM lt.rollup_value), (SELECT count(*) FROM lt.rollup_case)",
                  0, NULL);
    (void)cli_exec(db, "COMMIT", 0, NULL);
    PQfinish(db);
    if (!s) {
        PQclear(r);
        return 2;
    }
    int bad = PQntuples(r);
    if (bad) {
        print_table(r, stdout);
        printf("verify: node %s: %d difference%s between maintained and recomputed roll-ups\n",
               cli->cfg.unit, bad, bad == 1 ? "" : "s");
    } else {
        printf("verify: node %s: consistent (%s values, %s cases; %s value and %s case roll-ups "
               "equal a recomputation)\n",
               cli->cfg.unit, PQgetvalue(s, 0, 0), PQgetvalue(s, 0, 1), PQgetvalue(s, 0, 2),
               PQgetvalue(s, 0, 3));
    }
    PQclear(r);
    PQclear(s);
    return bad ? 1 : 0;
}

int cmd_digest(cli_t *cli)
{
    const char *unit = cli_arg(cli, 0);
    PGconn *db;

    if (!unit)
        return 2;
    if (!(db = cli_connect(cli)))
        return 2;
    const char *p[1] = {unit};
    PGresult *r = cli_query(db, "SELECT * FROM lt.leaf_digest($1)", 1, p);
    PQfinish(db);
    if (!r)
        return 2;
    printf("%s values=%s cases=%s digest=%s\n", unit, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
           PQgetvalue(r, 0, 2));
    PQclear(r);
    return 0;
}

int cmd_rollup(cli_t *cli)
{
    const char *period = cli_opt(cli, "--period"), *element = cli_opt(cli, "--element");
    const char *depth = cli_opt(cli, "--depth");
    PGconn *db = cli_connect(cli);
    int rc;

    if (!db)
        return 2;
    const char *p[4] = {cli->cfg.unit, period ? period : "", element ? element : "",
                        depth ? depth : "1"};
    /* Units of the subtree down to --depth, as of the period (or today), then their sums. */
    rc = show(db, "value roll-ups",
              "WITH me AS (SELECT unit_code FROM lt.node), "
              "units AS (SELECT DISTINCT a.descendant AS code, a.depth FROM lt.unit_ancestor a, me "
              "           WHERE a.ancestor = me.unit_code AND a.depth <= $4::int) "
              "SELECT repeat('  ', u.depth) || r.unit_code AS unit, "
              "       (SELECT string_agg(DISTINCT n.name, ' / ') FROM lt.unit n WHERE n.code = r.unit_code) AS name, "
              "       r.element, r.period, r.disagg, r.total, r.n_rows AS rows "
              "  FROM lt.rollup_value r JOIN units u ON u.code = r.unit_code "
              " WHERE ($2 = '' OR r.period = $2) AND ($3 = '' OR r.element = $3) AND r.n_rows > 0 "
              " ORDER BY r.element, r.period, u.depth, r.unit_code, r.disagg",
              4, p, 0);
    if (rc == 0)
        rc = show(db, "case roll-ups (all categories, by status)",
                  "WITH me AS (SELECT unit_code FROM lt.node), "
                  "units AS (SELECT DISTINCT a.descendant AS code, a.depth FROM lt.unit_ancestor a, me "
                  "           WHERE a.ancestor = me.unit_code AND a.depth <= $4::int) "
                  "SELECT repeat('  ', u.depth) || r.unit_code AS unit, r.period, r.status, r.n "
                  "  FROM lt.rollup_case r JOIN units u ON u.code = r.unit_code "
                  " WHERE ($2 = '' OR r.period LIKE $2 || '%') AND r.category = 0 AND r.n > 0 "
                  "   AND ($3 = '' OR $3 IS NOT NULL) AND $1 IS NOT NULL "
                  " ORDER BY r.period, u.depth, r.unit_code, r.status",
                  4, p, 0);
    PQfinish(db);
    return rc ? 2 : 0;
}

int cmd_show_config(cli_t *cli)
{
    if (!cli->have_cfg) {
        fprintf(stderr, "lienthong: show-config needs -c CONFIG\n");
        return 2;
    }
    lt_config_dump(&cli->cfg, stdout);
    return 0;
}

/* Rows a full resync set aside (0009): the operator's way from "N rows set aside" in
   `status` to the rows themselves, and for values a file the unit can re-enter with
   `lienthong import` after review. Only holds with an outcome are listed (a resync
   under way has not decided yet); --csv keeps each key's latest hold, and only where
   what this node holds now differs from it (a key re-entered since is done). */
int cmd_held(cli_t *cli)
{
    const char *unit = cli_opt(cli, "--unit");
    int csv = cli_flag(cli, "--csv");
    PGconn *db;
    PGresult *r;

    if (csv && !unit) {
        fprintf(stderr, "lienthong: held --csv needs --unit U: an import file is for one unit\n");
        return 2;
    }
    if (!(db = cli_connect(cli)))
        return 2;
    const char *p[1] = {unit ? unit : ""};
    if (csv) {
        r = cli_query(db,
                      "SELECT h.held_row ->> 'element' AS element, h.held_row ->> 'period' AS period, "
                      "       h.held_row ->> 'disagg' AS disagg, h.held_row ->> 'value' AS value "
                      "  FROM (SELECT DISTINCT ON (h.key) h.* FROM lt.resync_held h "
                      "         WHERE h.kind = 'value' AND h.unit_code = $1 AND h.outcome IS NOT NULL "
                      "         ORDER BY h.key, h.held_at DESC, h.id DESC) h "
                      "  LEFT JOIN lt.data_value d ON d.unit_code = h.unit_code "
                      "       AND d.element = h.held_row ->> 'element' AND d.period = h.held_row ->> 'period' "
                      "       AND d.disagg = h.held_row ->> 'disagg' "
                      " WHERE h.held_row ->> 'value' IS NOT NULL "
                      "   AND d.value IS DISTINCT FROM (h.held_row ->> 'value')::numeric "
                      " ORDER BY 1, 2, 3",
                      1, p);
        if (r)
            report_print_csv(r, stdout);
    } else {
        r = cli_query(db,
                      "SELECT to_char(h.held_at, 'YYYY-MM-DD HH24:MI:SS') AS held_at, h.child_unit AS via, "
                      "       h.resync_unit, h.outcome, h.kind, h.unit_code AS unit, h.key, h.version AS held_version, "
                      "       coalesce(h.held_row ->> 'value', h.held_row ->> 'status', '') AS held, "
                      "       coalesce(CASE h.kind WHEN 'value' THEN d.version ELSE c.version END::text, '-') "
                      "         AS version_here_now "
                      "  FROM lt.resync_held h "
                      "  LEFT JOIN lt.data_value d ON h.kind = 'value' AND d.unit_code = h.unit_code "
                      "       AND d.element = h.held_row ->> 'element' AND d.period = h.held_row ->> 'period' "
                      "       AND d.disagg = h.held_row ->> 'disagg' "
                      "  LEFT JOIN lt.case_record c ON h.kind = 'case' AND c.case_id::text = h.key "
                      " WHERE h.outcome IS NOT NULL AND ($1 = '' OR h.unit_code = $1) "
                      " ORDER BY h.held_at, h.unit_code, h.kind, h.key",
                      1, p);
        if (r) {
            printf("rows set aside by full resyncs%s%s\n", unit ? " of unit " : "", unit ? unit : "");
            if (PQntuples(r) == 0)
                printf("  (none)\n");
            else
                print_table(r, stdout);
        }
    }
    PQfinish(db);
    if (!r)
        return 2;
    PQclear(r);
    return 0;
}
