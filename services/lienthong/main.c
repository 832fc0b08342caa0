/*
 * main.c — `lienthong`, the operator's and the commune officer's command:
 * dispatches a table of subcommands (PgBouncer's admin show_map[] is the model).
 * Exit status: 0 success, 1 the command ran and found a problem (verify), 2 usage
 * or runtime error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"


static const cli_command_t commands[] = {
    {"init", cmd_init, "init -c CONF [--units vn2025|vn2024|all]",
     "create or upgrade this node's schema, record its unit and load the unit tree"},
    {"migrate", cmd_migrate, "migrate -c CONF", "apply pending schema migrations"},
    {"set", cmd_set, "set -c CONF ELEMENT PERIOD VALUE [--disagg D] [--unit U]",
     "write one data value for this node's unit"},
    {"delete", cmd_delete, "delete -c CONF ELEMENT PERIOD [--disagg D]",
     "delete one data value (a versioned tombstone that travels up)"},
    {"case", cmd_case, "case -c CONF key=value ...",
     "create or update a case (keys: case_id sex birth_ym ethnicity village categories status "
     "notified_at assessed_at emergency_at plan_drafted_at plan_approved_at reviewed_at closed_at "
     "services deleted, personal: full_name guardian_name address phone notes)"},
    {"import", cmd_import, "import -c CONF FILE.csv",
     "write data values from a CSV (element,period,disagg,value) in one transaction"},
    {"status", cmd_status, "status -c CONF [--json]",
     "links to the parent and children: last contact, lag in rows and seconds, outbox depth, errors"},
    {"verify", cmd_verify, "verify -c CONF",
     "recompute every roll-up from the leaf rows and compare; exit 1 on any difference"},
    {"digest", cmd_digest, "digest -c CONF UNIT",
     "row counts and a digest of the leaf rows of UNIT's subtree (compare parent and child)"},
    {"rollup", cmd_rollup, "rollup -c CONF [--period P] [--element E] [--depth N]",
     "print this node's roll-ups per unit of its subtree"},
    {"held", cmd_held, "held -c CONF [--unit U] [--csv]",
     "rows a restored unit's full resync set aside here (missing there, or older there); with --csv, "
     "U's lost values as an import file (element,period,disagg,value) for U to review and re-enter"},
    {"generate", cmd_generate, "generate -c CONF [--seed N] [--year Y] [--months N] [--cases N]",
     "write realistic synthetic data at a commune (values and cases)"},
    {"show-config", cmd_show_config, "show-config -c CONF", "print the effective configuration"},
    {"meta", cmd_meta,
     "meta -c CONF load DIR [--replace] | set-target PLAN INDICATOR SCOPE PERIOD CMP VALUE [NOTE] | "
     "delete-target PLAN INDICATOR SCOPE PERIOD | put KIND JSON | delete KIND KEY | show [KIND]",
     "the metadata catalogue (edited at the top node; flows down to every node)"},
    {"report", cmd_report,
     "report -c CONF [--unit U] [--period P] [--en] [--format table|csv|json] [--indicator CODE] "
     "[--with-targets] [--depth N | --no-children]",
     "indicators against targets for a unit and each unit below it down to --depth (default 1: its children)"},
    {"completeness", cmd_completeness,
     "completeness -c CONF [--unit U] [--period P] [--data-set D] [--en] [--format table|csv|json]",
     "who reported on time, late or not at all (default: each data set's latest due period)"},
    {"submit", cmd_submit, "submit -c CONF DATA_SET PERIOD",
     "declare this node's unit's report for a period complete (travels up)"},
    {"decide", cmd_decide, "decide -c CONF UNIT DATA_SET PERIOD approved|returned|reopened [REASON]",
     "approve, return or reopen a submission of a unit below (travels down; approval locks the period)"},
    {"keygen", cmd_keygen, "keygen DIR | keygen --secret FILE --public FILE",
     "write a new CURVE key pair (secret 0600, never overwritten); prints the public key"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: lienthong COMMAND [-c CONFIG] [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-12s %s\n  %-12s   %s\n", commands[i].name, commands[i].help, "",
                commands[i].usage);
}

int main(int argc, char **argv)
{
    cli_t cli = {0};
    const cli_command_t *cmd = NULL;
    char err[512];
    int rc;

    lt_log_setup("cli", 0);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "lienthong: unknown command \"%s\"\n", argv[1]);
        usage(stderr);
        return 2;
    }
    /* -c CONFIG may stand anywhere after the command; the rest is the command's. */
    cli.argv = argv + 2;
    cli.argc = argc - 2;
    for (int i = 0; i < cli.argc; i++) {
        if ((strcmp(cli.argv[i], "-c") == 0 || strcmp(cli.argv[i], "--config") == 0) &&
            i + 1 < cli.argc) {
            cli.config_path = cli.argv[i + 1];
            memmove(&cli.argv[i], &cli.argv[i + 2], (size_t)(cli.argc - i - 2) * sizeof(char *));
            cli.argc -= 2;
            break;
        }
    }
    if (!cli.config_path)
        cli.config_path = getenv("LIENTHONG_CONFIG");
    if (cli.config_path) {
        if (lt_config_load(cli.config_path, &cli.cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "lienthong: %s\n", err);
            return 2;
        }
        cli.have_cfg = 1;
        lt_log_setup(cli.cfg.unit, 0);
    }
    rc = cmd->run(&cli);
    if (rc == 2 && !cli.have_cfg && !cli.config_path)
        fprintf(stderr, "usage: lienthong %s\n", cmd->usage);
    if (cli.have_cfg)
        lt_config_free(&cli.cfg);
    return rc;
}
