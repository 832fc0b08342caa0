/*
 * cmd_data.c — writing leaf data at a node for its own unit: one value, a tombstone,
 * a case, or a CSV of values. Every write goes through the schema's functions
 * (lt.put_value, lt.put_case), which version the row and fill the outbox in the
 * same transaction; nothing here touches the tables directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_set(cli_t *cli)
{
    const char *element = cli_arg(cli, 0), *period = cli_arg(cli, 1), *value = cli_arg(cli, 2);
    const char *disagg = cli_opt(cli, "--disagg");
    PGconn *db;

    if (!element || !period || !value)
        return 2;
    if (!(db = cli_connect(cli)))
        return 2;
    const char *unit = cli_opt(cli, "--unit") ? cli_opt(cli, "--unit") : cli->cfg.unit;
    const char *p[5] = {unit, element, period, disagg ? disagg : "", value};
    PGresult *r = cli_query(db, "SELECT lt.put_value($1, $2, $3, $4, $5::numeric)", 5, p);
    PQfinish(db);
    if (!r)
        return 2;
    printf("%s %s %s%s%s = %s (version %s)\n", unit, element, period, disagg ? " " : "",
           disagg ? disagg : "", value, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int cmd_delete(cli_t *cli)
{
    const char *element = cli_arg(cli, 0), *period = cli_arg(cli, 1);
    const char *disagg = cli_opt(cli, "--disagg");
    PGconn *db;

    if (!element || !period)
        return 2;
    if (!(db = cli_connect(cli)))
        return 2;
    const char *p[4] = {cli->cfg.unit, element, period, disagg ? disagg : ""};
    PGresult *r = cli_query(db, "SELECT lt.delete_value($1, $2, $3, $4)", 4, p);
    PQfinish(db);
    if (!r)
        return 2;
    printf("deleted %s %s (version %s)\n", element, period, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* A growing string for building a JSON document. */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} jbuf_t;

static void jb_putc(jbuf_t *j, char c)
{
    if (j->failed)
        return;
    if (j->len + 2 > j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 1024;
        char *nb = realloc(j->buf, cap);
        if (!nb) {
            j->failed = 1;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
    j->buf[j->len++] = c;
    j->buf[j->len] = '\0';
}

static void jb_puts(jbuf_t *j, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jb_putc(j, s[i]);
}

/* A JSON string literal of s[0..n). */
static void jb_string(jbuf_t *j, const char *s, size_t n)
{
    char esc[8];
    jb_putc(j, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            jb_putc(j, '\\');
            jb_putc(j, (char)c);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jb_puts(j, esc, strlen(esc));
        } else {
            jb_putc(j, (char)c);
        }
    }
    jb_putc(j, '"');
}

/* key=value arguments become a JSON document for lt.put_case; the server parses and
   checks every field, so the CLI only quotes. categories=a,b becomes an array of codes
   (a number stays a bitmask). */
int cmd_case(cli_t *cli)
{
    jbuf_t j = {0};
    PGconn *db;

    jb_putc(&j, '{');
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i], *eq = strchr(a, '=');
        if (!eq || eq == a) {
            fprintf(stderr, "lienthong: case arguments are key=value, not \"%s\"\n", a);
            free(j.buf);
            return 2;
        }
        if (i)
            jb_putc(&j, ',');
        jb_string(&j, a, (size_t)(eq - a));
        jb_putc(&j, ':');
        const char *v = eq + 1;
        if (strncmp(a, "categories=", 11) == 0 && !(v[0] >= '0' && v[0] <= '9')) {
            jb_putc(&j, '[');
            for (const char *s = v;;) {
                const char *comma = strchr(s, ',');
                size_t n = comma ? (size_t)(comma - s) : strlen(s);
                jb_string(&j, s, n);
                if (!comma)
                    break;
                jb_putc(&j, ',');
                s = comma + 1;
            }
            jb_putc(&j, ']');
        } else {
            jb_string(&j, v, strlen(v));
        }
    }
    jb_putc(&j, '}');
    if (j.failed || !(db = cli_connect(cli))) {
        free(j.buf);
        return 2;
    }
    const char *p[1] = {j.buf};
    PGresult *r = cli_query(db, "SELECT lt.put_case($1::jsonb)", 1, p);
    PQfinish(db);
    free(j.buf);
    if (!r)
        return 2;
    printf("case %s\n", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* CSV import: header element,period,disagg,value. The file goes to the server with
   COPY into a staging table, then every row through lt.put_value in ONE transaction:
   the import lands whole or not at all, and a bad line is named. */
int cmd_import(cli_t *cli)
{
    const char *file = cli_arg(cli, 0);
    size_t len;
    char *data;
    PGconn *db;
    PGresult *r;
    int rc = 2;

    if (!file)
        return 2;
    if (!(data = cli_read_file(file, &len)))
        return 2;
    if (!(db = cli_connect(cli))) {
        free(data);
        return 2;
    }
    if (cli_exec(db,
                 "BEGIN; CREATE TEMP TABLE import_rows (element text, period text, disagg text, "
                 "value text, line bigint GENERATED ALWAYS AS IDENTITY (START WITH 2)) ON COMMIT DROP",
                 0, NULL) != 0 ||
        cli_copy_in(db,
                    "COPY import_rows (element, period, disagg, value) FROM STDIN "
                    "WITH (FORMAT csv, HEADER true)",
                    data, len) != 0)
        goto rollback;
    /* Name the first bad line before writing anything. */
    r = cli_query(db,
                  "SELECT line, CASE "
                  " WHEN element IS NULL OR NOT EXISTS (SELECT 1 FROM lt.data_element e WHERE e.code = element) "
                  "   THEN format('unknown data element \"%s\"', element) "
                  " WHEN lt.period_end(period) IS NULL THEN format('period \"%s\" is not a period', period) "
                  " WHEN value IS NOT NULL AND value !~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' "
                  "   THEN format('value \"%s\" is not a number', value) END "
                  "FROM import_rows ORDER BY line",
                  0, NULL);
    if (!r)
        goto rollback;
    for (int i = 0; i < PQntuples(r); i++) {
        if (!PQgetisnull(r, i, 1)) {
            fprintf(stderr, "lienthong: %s line %s: %s; nothing imported\n", file,
                    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            PQclear(r);
            goto rollback;
        }
    }
    PQclear(r);
    const char *p[1] = {cli->cfg.unit};
    r = cli_query(db,
                  "SELECT count(lt.put_value($1, element, period, coalesce(disagg, ''), value::numeric)) "
                  "FROM (SELECT * FROM import_rows ORDER BY line) s",
                  1, p);
    if (!r)
        goto rollback;
    if (cli_exec(db, "COMMIT", 0, NULL) == 0) {
        printf("imported %s values from %s\n", PQgetvalue(r, 0, 0), file);
        rc = 0;
    }
    PQclear(r);
    goto out;
rollback:
    (void)cli_exec(db, "ROLLBACK", 0, NULL);
out:
    PQfinish(db);
    free(data);
    return rc;
}
