/*
 * cli.c — the helpers every subcommand uses: connection, queries that report the
 * server's error in full, COPY, file reading and argument lookup.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGconn *cli_connect(cli_t *cli)
{
    PGconn *db;

    if (!cli->have_cfg) {
        fprintf(stderr, "lienthong: no configuration: pass -c CONFIG or set LIENTHONG_CONFIG\n");
        return NULL;
    }
    db = PQconnectdb(cli->cfg.database);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "lienthong: cannot connect to the node database: %s", PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    PQsetClientEncoding(db, "UTF8");
    return db;
}

PGresult *cli_query(PGconn *db, const char *sql, int nparams, const char *const *params)
{
    /* no parameters: the simple protocol, which also runs several statements */
    PGresult *res = nparams ? PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0)
                            : PQexec(db, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "lienthong: %s\n", msg ? msg : PQerrorMessage(db));
    PQclear(res);
    return NULL;
}

int cli_exec(PGconn *db, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = cli_query(db, sql, nparams, params);

    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

int cli_copy_in(PGconn *db, const char *copy_sql, const char *data, size_t len)
{
    PGresult *res = PQexec(db, copy_sql);

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        fprintf(stderr, "lienthong: %s", PQerrorMessage(db));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    if (PQputCopyData(db, data, (int)len) != 1 || PQputCopyEnd(db, NULL) != 1) {
        fprintf(stderr, "lienthong: COPY failed: %s", PQerrorMessage(db));
        return -1;
    }
    int rc = 0;
    while ((res = PQgetResult(db)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
            fprintf(stderr, "lienthong: %s%s%s\n", msg ? msg : PQerrorMessage(db),
                    ctx ? " — " : "", ctx ? ctx : "");
            rc = -1;
        }
        PQclear(res);
    }
    return rc;
}

char *cli_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) {
        fprintf(stderr, "lienthong: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    buf[n] = '\0';
    fclose(f);
    if (len_out)
        *len_out = (size_t)n;
    return buf;
fail:
    fprintf(stderr, "lienthong: cannot read %s\n", path);
    free(buf);
    fclose(f);
    return NULL;
}

const char *cli_opt(cli_t *cli, const char *name)
{
    for (int i = 0; i + 1 < cli->argc; i++)
        if (strcmp(cli->argv[i], name) == 0)
            return cli->argv[i + 1];
    return NULL;
}

int cli_flag(cli_t *cli, const char *name)
{
    for (int i = 0; i < cli->argc; i++)
        if (strcmp(cli->argv[i], name) == 0)
            return 1;
    return 0;
}

/* Options that take a value; every other "--x" is a flag. */
static int takes_value(const char *opt)
{
    static const char *const with_value[] = {"--disagg", "--unit", "--units", "--period",
                                             "--element", "--depth", "--seed", "--year",
                                             "--months", "--cases", "--rounds", NULL};
    for (int i = 0; with_value[i]; i++)
        if (strcmp(opt, with_value[i]) == 0)
            return 1;
    return 0;
}

const char *cli_arg(cli_t *cli, int want)
{
    int pos = 0;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (a[0] == '-' && a[1] == '-') {
            if (takes_value(a))
                i++;
            continue;
        }
        if (pos++ == want)
            return a;
    }
    return NULL;
}

const char *cli_schema_dir(void)
{
    const char *env = getenv("LT_SCHEMA_DIR");
    return env && *env ? env : LT_SCHEMA_DIR;
}
