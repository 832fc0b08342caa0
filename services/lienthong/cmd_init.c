/*
 * cmd_init.c — a node's database from nothing: versioned migrations, the node's
 * identity, and the unit tree with validity dates (schemas/units/).
 *
 * Migrations are files schemas/migrations/NNNN_name.sql applied in order, each in
 * one transaction with its row in lt.schema_migrations, so a half-applied
 * migration never exists. The daemon refuses to start on an older schema.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int cli_migrate(PGconn *db, const char *schema_dir)
{
    char dirpath[1024], path[1200], vbuf[16];
    char *names[256];
    int n = 0, applied = 0;
    DIR *d;
    struct dirent *e;

    if (cli_exec(db, "SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS lt; "
                     "CREATE TABLE IF NOT EXISTS lt.schema_migrations (version int PRIMARY KEY, "
                     "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL) != 0)
        return -1;
    snprintf(dirpath, sizeof(dirpath), "%s/migrations", schema_dir);
    if (!(d = opendir(dirpath))) {
        fprintf(stderr, "lienthong: cannot open %s\n", dirpath);
        return -1;
    }
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 9 && e->d_name[4] == '_' && strcmp(e->d_name + len - 4, ".sql") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp_str);

    for (int i = 0; i < n; i++) {
        int version = atoi(names[i]);
        snprintf(vbuf, sizeof(vbuf), "%d", version);
        const char *p[1] = {vbuf};
        PGresult *r = cli_query(db, "SELECT 1 FROM lt.schema_migrations WHERE version = $1", 1, p);
        if (!r)
            goto fail;
        int done = PQntuples(r) > 0;
        PQclear(r);
        if (done)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dirpath, names[i]);
        char *sql = cli_read_file(path, NULL);
        if (!sql)
            goto fail;
        const char *p2[2] = {vbuf, names[i]};
        int rc = cli_exec(db, "BEGIN", 0, NULL);
        if (rc == 0) {
            PGresult *res = PQexec(db, sql); /* a file holds many statements */
            if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "lienthong: migration %s failed: %s", names[i], PQerrorMessage(db));
                rc = -1;
            }
            PQclear(res);
        }
        if (rc == 0)
            rc = cli_exec(db, "INSERT INTO lt.schema_migrations (version, name) VALUES ($1, $2)", 2,
                          p2);
        rc = rc == 0 ? cli_exec(db, "COMMIT", 0, NULL) : (cli_exec(db, "ROLLBACK", 0, NULL), -1);
        free(sql);
        if (rc != 0)
            goto fail;
        printf("applied migration %s\n", names[i]);
        applied++;
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    return applied;
fail:
    for (int i = 0; i < n; i++)
        free(names[i]);
    return -1;
}

int cmd_migrate(cli_t *cli)
{
    PGconn *db = cli_connect(cli);
    if (!db)
        return 2;
    int n = cli_migrate(db, cli_schema_dir());
    PQfinish(db);
    if (n < 0)
        return 2;
    printf("schema up to date (%d migration%s applied)\n", n, n == 1 ? "" : "s");
    return 0;
}

/* Load one CSV into a temporary table of text columns named like its header. */
static int load_csv(PGconn *db, const char *table, const char *columns, const char *file)
{
    char path[1200], sql[1400];
    size_t len;

    snprintf(path, sizeof(path), "%s/units/%s", cli_schema_dir(), file);
    char *data = cli_read_file(path, &len);
    if (!data)
        return -1;
    snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN WITH (FORMAT csv, HEADER true)", table,
             columns);
    int rc = cli_copy_in(db, sql, data, len);
    free(data);
    return rc;
}

/* The 1 March 2025 three-tier list stands for 2021-01-01 .. 2025-06-30; the two-tier
   list is valid from 2025-07-01 (valid_to is exclusive). */
static int load_units(PGconn *db, const char *which)
{
    int all = strcmp(which, "all") == 0;

    if (cli_exec(db,
                 "CREATE TEMP TABLE u3 (province_code text, province_name text, province_type text, "
                 "district_code text, district_name text, district_type text, commune_code text, "
                 "commune_name text, commune_type text);"
                 "CREATE TEMP TABLE p2 (province_code text, full_name text, name text, name_en text, "
                 "unit_type text);"
                 "CREATE TEMP TABLE c2 (commune_code text, province_code text, full_name text, "
                 "name text, name_en text, unit_type text, note text)",
                 0, NULL) != 0)
        return -1;
    if (cli_exec(db, "DELETE FROM lt.unit", 0, NULL) != 0)
        return -1;
    if (all || strcmp(which, "vn2024") == 0) {
        if (load_csv(db, "u3",
                     "province_code, province_name, province_type, district_code, district_name, "
                     "district_type, commune_code, commune_name, commune_type",
                     "vn_pre2025_3level_20250301.csv") != 0)
            return -1;
        if (cli_exec(db,
                     "INSERT INTO lt.unit (code, valid_from, valid_to, level, name, unit_type, parent_code) "
                     "SELECT DISTINCT province_code, date '2021-01-01', date '2025-07-01', 'province', "
                     "       normalize(province_name, NFC), province_type, NULL::text FROM u3 "
                     "UNION "
                     "SELECT DISTINCT district_code, date '2021-01-01', date '2025-07-01', 'district', "
                     "       normalize(district_name, NFC), district_type, province_code FROM u3 "
                     "UNION "
                     "SELECT commune_code, date '2021-01-01', date '2025-07-01', 'commune', "
                     "       normalize(commune_name, NFC), commune_type, district_code FROM u3",
                     0, NULL) != 0)
            return -1;
    }
    if (all || strcmp(which, "vn2025") == 0) {
        if (load_csv(db, "p2", "province_code, full_name, name, name_en, unit_type",
                     "vn_2025_provinces.csv") != 0 ||
            load_csv(db, "c2", "commune_code, province_code, full_name, name, name_en, unit_type, note",
                     "vn_2025_communes.csv") != 0)
            return -1;
        if (cli_exec(db,
                     "INSERT INTO lt.unit (code, valid_from, valid_to, level, name, unit_type, parent_code) "
                     "SELECT province_code, date '2025-07-01', date 'infinity', 'province', "
                     "       normalize(full_name, NFC), unit_type, NULL FROM p2 "
                     "UNION ALL "
                     "SELECT commune_code, date '2025-07-01', date 'infinity', 'commune', "
                     "       normalize(full_name, NFC), unit_type, province_code FROM c2",
                     0, NULL) != 0)
            return -1;
    }
    return cli_exec(db, "DROP TABLE u3, p2, c2", 0, NULL);
}

int cmd_init(cli_t *cli)
{
    const char *units = cli_opt(cli, "--units");
    PGconn *db;
    PGresult *r;
    int rc = 2;

    if (!units)
        units = "all";
    if (strcmp(units, "all") != 0 && strcmp(units, "vn2024") != 0 && strcmp(units, "vn2025") != 0) {
        fprintf(stderr, "lienthong: --units takes vn2025, vn2024 or all, not \"%s\"\n", units);
        return 2;
    }
    if (!(db = cli_connect(cli)))
        return 2;
    if (cli_migrate(db, cli_schema_dir()) < 0)
        goto out;
    const char *p[2] = {cli->cfg.unit, cli->cfg.parent_endpoint[0] ? "true" : "false"};
    if (cli_exec(db, "BEGIN", 0, NULL) != 0)
        goto out;
    r = cli_query(db, "SELECT unit_code FROM lt.node", 0, NULL);
    if (!r)
        goto rollback;
    if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), cli->cfg.unit) != 0) {
        fprintf(stderr,
                "lienthong: this database belongs to unit %s, the configuration says %s; "
                "refusing to relabel a node's data\n",
                PQgetvalue(r, 0, 0), cli->cfg.unit);
        PQclear(r);
        goto rollback;
    }
    PQclear(r);
    if (cli_exec(db,
                 "INSERT INTO lt.node (unit_code, has_parent) VALUES ($1, $2) "
                 "ON CONFLICT (singleton) DO UPDATE SET has_parent = EXCLUDED.has_parent",
                 2, p) != 0 ||
        load_units(db, units) != 0 || cli_exec(db, "SELECT lt.rebuild_unit_tree()", 0, NULL) != 0)
        goto rollback;
    r = cli_query(db,
                  "SELECT (SELECT count(*) FROM lt.unit), "
                  "       (SELECT count(DISTINCT descendant) FROM lt.rollup_path), "
                  "       (SELECT string_agg(DISTINCT name, ' / ') FROM lt.unit WHERE code = $1)",
                  1, p);
    if (!r)
        goto rollback;
    if (atoi(PQgetvalue(r, 0, 1)) == 0) {
        fprintf(stderr, "lienthong: unit %s is not in the unit list (%s)\n", cli->cfg.unit, units);
        PQclear(r);
        goto rollback;
    }
    if (cli_exec(db, "COMMIT", 0, NULL) != 0) {
        PQclear(r);
        goto out;
    }
    printf("node %s (%s): %s units loaded, %s in this node's subtree\n", cli->cfg.unit,
           PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    rc = 0;
    goto out;
rollback:
    (void)cli_exec(db, "ROLLBACK", 0, NULL);
out:
    PQfinish(db);
    return rc;
}
