/*
 * cli.h — what the `lienthong` command's subcommands share: the parsed common
 * options, a blocking database connection (the CLI is not an event loop), and
 * small query helpers that print a clear error and return -1.
 */
#ifndef LT_CLI_H
#define LT_CLI_H

#include <libpq-fe.h>

#include "config.h"

typedef struct {
    const char *config_path;
    lt_config_t cfg;
    int have_cfg;
    int argc;      /* the subcommand's own arguments, after the options */
    char **argv;
} cli_t;

typedef struct {
    const char *name;
    int (*run)(cli_t *cli);
    const char *usage;
    const char *help;
} cli_command_t;

/* Connect to the node's database (node.database of the config). NULL on failure, reported. */
PGconn *cli_connect(cli_t *cli);
/* Run a statement with text params; prints the server's message on failure. Returns the
   result (caller PQclear) or NULL. */
PGresult *cli_query(PGconn *db, const char *sql, int nparams, const char *const *params);
/* Same, for statements whose result is not needed: 0 or -1. */
int cli_exec(PGconn *db, const char *sql, int nparams, const char *const *params);
/* Send a buffer through COPY ... FROM STDIN. 0 or -1. */
int cli_copy_in(PGconn *db, const char *copy_sql, const char *data, size_t len);
/* Read a whole file into a malloc'd NUL-terminated buffer. NULL on failure (reported). */
char *cli_read_file(const char *path, size_t *len_out);
/* Option lookup in the subcommand's argv: "--name value" -> value, else NULL. */
const char *cli_opt(cli_t *cli, const char *name);
int cli_flag(cli_t *cli, const char *name);
/* The i-th positional argument (skipping --options and their values); NULL if absent. */
const char *cli_arg(cli_t *cli, int i);

/* Subcommands (one file per concern). */
int cmd_init(cli_t *cli);
int cmd_migrate(cli_t *cli);
int cmd_set(cli_t *cli);
int cmd_delete(cli_t *cli);
int cmd_case(cli_t *cli);
int cmd_import(cli_t *cli);
int cmd_status(cli_t *cli);
int cmd_verify(cli_t *cli);
int cmd_digest(cli_t *cli);
int cmd_rollup(cli_t *cli);
int cmd_held(cli_t *cli);
int cmd_generate(cli_t *cli);
int cmd_show_config(cli_t *cli);
int cmd_keygen(cli_t *cli);
int cmd_meta(cli_t *cli);
int cmd_report(cli_t *cli);
int cmd_completeness(cli_t *cli);
int cmd_submit(cli_t *cli);
int cmd_decide(cli_t *cli);
/* A query result as an aligned text table, or as CSV with a header (cmd_report.c). */
void report_print_table(PGresult *r, FILE *out);
void report_print_csv(PGresult *r, FILE *out);

/* Migrations: apply every schemas/migrations/NNNN_*.sql not yet applied, in order,
   each in its own transaction. Returns the number applied, or -1. */
int cli_migrate(PGconn *db, const char *schema_dir);
/* The directory holding migrations/ and units/: $LT_SCHEMA_DIR, else the build-time path. */
const char *cli_schema_dir(void);

#endif
