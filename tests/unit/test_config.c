/*
 * test_config.c — the settings table, parser, cross-checks, reload, dump and
 * the generated reference. Each test writes its config to a mkstemp file.
 * Also keeps deploy/CONFIG.md from drifting from the table.
 */
#include "config.h"
#include "log.h"
#include "unit.h"

#include <unistd.h>

/* A minimal valid node: required settings, plaintext so no key files. */
#define MINIMAL "[node]\nunit = 07840\ndatabase = dbname=lt\n[security]\nmode = plaintext\n"

static char conf_path[64];

static const char *conf_write(const char *text)
{
    snprintf(conf_path, sizeof(conf_path), "/tmp/lt-test-config-XXXXXX");
    int fd = mkstemp(conf_path);
    CHECK(fd >= 0);
    size_t n = strlen(text);
    CHECK(write(fd, text, n) == (ssize_t)n);
    close(fd);
    return conf_path;
}

/* Load text; expect failure with every needle in the message. */
static void expect_error(const char *text, const char *needle1, const char *needle2)
{
    lt_config_t cfg;
    char err[512] = "";
    const char *path = conf_write(text);
    int rc = lt_config_load(path, &cfg, err, sizeof(err));
    unlink(path);
    if (rc == 0 || !strstr(err, needle1) || (needle2 && !strstr(err, needle2))) {
        fprintf(stderr, "  rc=%d err=\"%s\", wanted \"%s\" and \"%s\"\n", rc, err, needle1,
                needle2 ? needle2 : "");
        exit(1);
    }
    CHECK(cfg.unit == NULL && cfg.batch_rows == 0); /* left empty */
    lt_config_free(&cfg);
}

static void load_ok(const char *text, lt_config_t *cfg)
{
    char err[512] = "";
    const char *path = conf_write(text);
    int rc = lt_config_load(path, cfg, err, sizeof(err));
    unlink(path);
    if (rc != 0) {
        fprintf(stderr, "  unexpected error: %s\n", err);
        exit(1);
    }
}

static char *dump(const lt_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f);
    lt_config_dump(cfg, f);
    fclose(f);
    return buf;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK(m);
    int c;
    while ((c = getc(f)) != EOF)
        putc(c, m);
    fclose(m);
    fclose(f);
    return buf;
}

/* Tests run from the repo root; fall back for runs from build/tests. */
static const char *repo_file(const char *rel, char *buf, size_t len)
{
    if (access(rel, R_OK) == 0)
        return rel;
    snprintf(buf, len, "../../%s", rel);
    return buf;
}

TEST(defaults_applied)
{
    lt_config_t cfg;
    load_ok(MINIMAL, &cfg);
    CHECK_EQ_STR(cfg.unit, "07840");
    CHECK_EQ_STR(cfg.database, "dbname=lt");
    CHECK_EQ_STR(cfg.name, "");
    CHECK_EQ_STR(cfg.parent_endpoint, "");
    CHECK_EQ_STR(cfg.children_bind, "");
    CHECK_EQ_INT(cfg.batch_rows, 2000);
    CHECK_EQ_INT(cfg.batch_bytes, 1048576);
    CHECK_EQ_INT(cfg.max_inflight, 4);
    CHECK_EQ_INT(cfg.ack_timeout_ms, 30000);
    CHECK_EQ_INT(cfg.rescan_ms, 1000);
    CHECK_EQ_INT(cfg.apply_queue_bytes, 67108864L);
    CHECK_EQ_INT(cfg.heartbeat_ivl_ms, 5000);
    CHECK_EQ_INT(cfg.heartbeat_timeout_ms, 15000);
    CHECK_EQ_INT(cfg.reconnect_min_ms, 200);
    CHECK_EQ_INT(cfg.reconnect_max_ms, 30000);
    CHECK_EQ_INT(cfg.max_message_bytes, 4194304);
    CHECK_EQ_INT(cfg.hwm, 1000);
    CHECK_EQ_INT(cfg.security_mode, LT_SECURITY_PLAINTEXT);
    CHECK_EQ_STR(cfg.secret_key_file, "");
    CHECK_EQ_STR(cfg.children_keys_file, "");
    CHECK_EQ_INT(cfg.log_level, LT_LOG_INFO);
    CHECK_EQ_INT(cfg.log_format, LT_LOG_FORMAT_TEXT);
    CHECK_EQ_STR(cfg.metrics_listen, "");
    CHECK_EQ_INT(cfg.stats_interval_ms, 60000);
    lt_config_free(&cfg);
    lt_config_free(&cfg); /* idempotent */
    CHECK(cfg.unit == NULL);
}

TEST(every_type_parsed)
{
    lt_config_t cfg;
    load_ok("; comment\n# comment\n"
            "[node]\r\n"
            "  unit = 001\r\n"                      /* indented, CRLF */
            "\tdatabase = host=db port=5433 dbname=lt\n"
            "name = Quận Ba Đình ; inline comment\n"
            "[sync]\n"
            "batch_rows = 10000\n"
            "apply_queue_bytes = 1073741824\n"      /* long, at its max */
            "rescan_ms = +50\n"
            "[security]\nmode = PlainText\n"
            "[log]\nlevel = DEBUG\nformat = logfmt\n"
            "[status]\nmetrics_listen = 127.0.0.1:9187\n",
            &cfg);
    CHECK_EQ_STR(cfg.unit, "001");
    CHECK_EQ_STR(cfg.database, "host=db port=5433 dbname=lt");
    CHECK_EQ_STR(cfg.name, "Quận Ba Đình");
    CHECK_EQ_INT(cfg.batch_rows, 10000);
    CHECK_EQ_INT(cfg.apply_queue_bytes, 1073741824L);
    CHECK_EQ_INT(cfg.rescan_ms, 50);
    CHECK_EQ_INT(cfg.security_mode, LT_SECURITY_PLAINTEXT);
    CHECK_EQ_INT(cfg.log_level, LT_LOG_DEBUG);
    CHECK_EQ_INT(cfg.log_format, LT_LOG_FORMAT_LOGFMT);
    CHECK_EQ_STR(cfg.metrics_listen, "127.0.0.1:9187");
    lt_config_free(&cfg);
}

TEST(log_levels_match_log_h)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        char text[256];
        lt_config_t cfg;
        snprintf(text, sizeof(text), MINIMAL "[log]\nlevel = %s\n", names[i]);
        load_ok(text, &cfg);
        CHECK_EQ_INT(cfg.log_level, lt_log_parse_level(names[i]));
        lt_config_free(&cfg);
    }
}

TEST(int_rejected)
{
    expect_error(MINIMAL "[sync]\nbatch_rows = 0\n", ":7: sync.batch_rows = '0' is out of range",
                 "1 .. 10000");
    expect_error(MINIMAL "[sync]\nbatch_rows = 10001\n", "sync.batch_rows", "out of range");
    expect_error(MINIMAL "[sync]\napply_queue_bytes = 1073741825\n", "sync.apply_queue_bytes",
                 "1048576 .. 1073741824");
    expect_error(MINIMAL "[net]\nhwm = 12abc\n", "net.hwm = '12abc' is not an integer",
                 "10 .. 1000000");
    expect_error(MINIMAL "[net]\nhwm =\n", "net.hwm = '' is not an integer", NULL);
    expect_error(MINIMAL "[net]\nhwm = 99999999999999999999999\n", "is not an integer", NULL);
}

TEST(unknown_key_names_file_and_line)
{
    const char *text = MINIMAL "[sync]\nbatch_row = 5\n";
    char want[128];
    lt_config_t cfg;
    char err[512];
    const char *path = conf_write(text);
    CHECK(lt_config_load(path, &cfg, err, sizeof(err)) < 0);
    snprintf(want, sizeof(want), "%s:7: unknown setting sync.batch_row", path);
    unlink(path);
    CHECK_EQ_STR(err, want);

    expect_error(MINIMAL "[snyc]\nbatch_rows = 5\n", ":7: unknown section [snyc]",
                 "did you mean sync.batch_rows?");
    expect_error(MINIMAL "[sync]\nhwm = 5\n", "unknown setting sync.hwm", "did you mean net.hwm?");
    expect_error("unit = 07840\n" MINIMAL, ":1: setting 'unit' outside any [section]", NULL);
}

TEST(syntax_errors)
{
    expect_error(MINIMAL "[sync\n", ":6: expected '[section]' or 'key = value'", NULL);
    expect_error(MINIMAL "[sync]\njust words\n", ":7: expected", NULL);
    expect_error(MINIMAL "[sync]\nbatch_rows = 5\nbatch_rows = 6\n",
                 ":8: sync.batch_rows is set twice (first on line 7)", NULL);

    char text[600];
    char pad[300];
    memset(pad, 'a', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(text, sizeof(text), MINIMAL "[node]\nname = %s\n", pad);
    expect_error(text, ":7: line longer than 199 characters", NULL);
    lt_config_t cfg; /* a 199-character line still fits */
    snprintf(text, sizeof(text), MINIMAL "[node]\nname = %.192s\n[log]\nlevel = warn\n", pad);
    load_ok(text, &cfg);
    CHECK_EQ_INT(strlen(cfg.name), 192);
    CHECK_EQ_INT(cfg.log_level, LT_LOG_WARN);
    lt_config_free(&cfg);
}

TEST(missing_file)
{
    lt_config_t cfg;
    char err[256];
    CHECK(lt_config_load("/nonexistent/lienthong.conf", &cfg, err, sizeof(err)) < 0);
    CHECK(strstr(err, "/nonexistent/lienthong.conf: cannot open"));
}

TEST(required_settings)
{
    expect_error("[node]\ndatabase = dbname=lt\n[security]\nmode = plaintext\n",
                 ": node.unit is required", NULL);
    expect_error("[node]\nunit = 07840\n[security]\nmode = plaintext\n",
                 "node.database is required", NULL);
    expect_error("[node]\nunit = 07840\ndatabase =\n[security]\nmode = plaintext\n",
                 ":3: node.database is required", NULL);
    expect_error("[node]\nunit = 1\ndatabase = dbname=lt\n[security]\nmode = plaintext\n",
                 ":2: node.unit = '1' is not a unit code (2 to 5 digits)", NULL);
    expect_error("[node]\nunit = 123456\ndatabase = dbname=lt\n", "is not a unit code", NULL);
    expect_error("[node]\nunit = 07a40\ndatabase = dbname=lt\n", "is not a unit code", NULL);
    expect_error("[node]\nunit = 07840\ndatabase = hots=db\n",
                 ":3: node.database is not a valid libpq connection string", "hots");
}

TEST(enum_bad_value)
{
    expect_error(MINIMAL "[log]\nlevel = verbose\n",
                 "log.level = 'verbose' is not allowed (allowed error, warn, info, debug)", NULL);
    expect_error("[node]\nunit = 07840\ndatabase = dbname=lt\n[security]\nmode = tls\n",
                 ":5: security.mode = 'tls' is not allowed (allowed curve, plaintext)", NULL);
}

TEST(network_cross_checks)
{
    expect_error(MINIMAL "[net]\nreconnect_min_ms = 500\nreconnect_max_ms = 100\n",
                 ":8: net.reconnect_max_ms (100) must be at least net.reconnect_min_ms (500)",
                 NULL);
    expect_error(MINIMAL "[net]\nheartbeat_ivl_ms = 20000\n",
                 "net.heartbeat_timeout_ms (15000) must be at least", NULL);
    expect_error(MINIMAL "[parent]\nendpoint = host:7100\n",
                 "parent.endpoint = 'host:7100' is not a ZeroMQ endpoint", NULL);

    lt_config_t cfg; /* equal bounds, and a standalone node with no endpoints */
    load_ok(MINIMAL "[net]\nreconnect_min_ms = 500\nreconnect_max_ms = 500\n", &cfg);
    CHECK_EQ_INT(cfg.reconnect_max_ms, 500);
    lt_config_free(&cfg);
}

#define CURVE_NODE "[node]\nunit = 001\ndatabase = dbname=lt\n[security]\nmode = curve\n"
#define OWN_KEYS "secret_key_file = /k/s\npublic_key_file = /k/p\n"

TEST(curve_cross_checks)
{
    lt_config_t cfg;

    /* curve is the default mode */
    expect_error("[node]\nunit = 001\ndatabase = dbname=lt\n",
                 "security.secret_key_file is required when security.mode = curve", NULL);
    expect_error(CURVE_NODE "secret_key_file = /k/s\n",
                 ":5: security.public_key_file is required", NULL);
    expect_error(CURVE_NODE OWN_KEYS "[parent]\nendpoint = tcp://p:7100\n",
                 "security.parent_public_key_file is required", "parent.endpoint is set");
    expect_error(CURVE_NODE OWN_KEYS "[children]\nbind = tcp://*:7100\n",
                 "security.children_keys_file is required", "children.bind is set");

    load_ok(CURVE_NODE OWN_KEYS, &cfg); /* standalone */
    CHECK_EQ_INT(cfg.security_mode, LT_SECURITY_CURVE);
    lt_config_free(&cfg);
    load_ok(CURVE_NODE OWN_KEYS "parent_public_key_file = /k/pp\n"
                                "children_keys_file = /k/c\n"
                                "[parent]\nendpoint = tcp://p:7100\n"
                                "[children]\nbind = tcp://*:7100\n",
            &cfg);
    CHECK_EQ_STR(cfg.parent_public_key_file, "/k/pp");
    CHECK_EQ_STR(cfg.children_bind, "tcp://*:7100");
    lt_config_free(&cfg);

    /* plaintext needs no keys, even with both endpoints */
    load_ok(MINIMAL "[parent]\nendpoint = tcp://p:7100\n[children]\nbind = tcp://*:7100\n", &cfg);
    lt_config_free(&cfg);
}

TEST(reload_copies_reloadable_only)
{
    lt_config_t cfg;
    char changed[256], restart[256], err[256];
    load_ok(MINIMAL "[sync]\nbatch_rows = 100\n", &cfg);

    const char *path = conf_write("[node]\nunit = 07840\ndatabase = dbname=lt\nname = x\n"
                                  "[security]\nmode = plaintext\n"
                                  "[sync]\nbatch_rows = 300\napply_queue_bytes = 2097152\n"
                                  "[net]\nhwm = 50\n[log]\nlevel = debug\n");
    CHECK_EQ_INT(lt_config_reload(path, &cfg, changed, sizeof(changed), restart,
                                  sizeof(restart), err, sizeof(err)),
                 0);
    CHECK_EQ_STR(changed, "sync.batch_rows sync.apply_queue_bytes log.level");
    CHECK_EQ_STR(restart, "node.name net.hwm");
    CHECK_EQ_INT(cfg.batch_rows, 300);
    CHECK_EQ_INT(cfg.apply_queue_bytes, 2097152L);
    CHECK_EQ_INT(cfg.log_level, LT_LOG_DEBUG);
    CHECK_EQ_STR(cfg.name, ""); /* restart-only: kept */
    CHECK_EQ_INT(cfg.hwm, 1000);

    /* Same file again: nothing changes, restart list unchanged. */
    CHECK_EQ_INT(lt_config_reload(path, &cfg, changed, sizeof(changed), restart,
                                  sizeof(restart), err, sizeof(err)),
                 0);
    CHECK_EQ_STR(changed, "");
    CHECK_EQ_STR(restart, "node.name net.hwm");
    unlink(path);

    /* A bad file changes nothing. */
    path = conf_write(MINIMAL "[sync]\nbatch_rows = 7\n[log]\nlevel = loud\n");
    CHECK(lt_config_reload(path, &cfg, changed, sizeof(changed), restart, sizeof(restart), err,
                           sizeof(err)) < 0);
    unlink(path);
    CHECK(strstr(err, ":9: log.level = 'loud'"));
    CHECK_EQ_INT(cfg.batch_rows, 300);
    CHECK_EQ_INT(cfg.log_level, LT_LOG_DEBUG);

    /* Small output buffers truncate the lists, never overflow. */
    path = conf_write(MINIMAL);
    char tiny[20];
    CHECK_EQ_INT(lt_config_reload(path, &cfg, tiny, sizeof(tiny), NULL, 0, err, sizeof(err)), 0);
    unlink(path);
    CHECK_EQ_STR(tiny, "sync.batch_rows");
    CHECK_EQ_INT(cfg.batch_rows, 2000);
    CHECK_EQ_INT(cfg.log_level, LT_LOG_INFO);
    lt_config_free(&cfg);
}

TEST(dump_masks_password)
{
    lt_config_t cfg;
    load_ok("[node]\nunit = 07840\ndatabase = host=db password=s3cret user=lt "
            "application_name='a b'\n[security]\nmode = plaintext\n",
            &cfg);
    char *out = dump(&cfg);
    CHECK(!strstr(out, "s3cret"));
    CHECK(strstr(out, "node.database = "));
    CHECK(strstr(out, "password=****"));
    CHECK(strstr(out, "host=db"));
    CHECK(strstr(out, "application_name='a b'"));
    CHECK(strstr(out, "\nsync.batch_rows = 2000\n"));
    CHECK(strstr(out, "\nsync.apply_queue_bytes = 67108864\n"));
    CHECK(strstr(out, "\nsecurity.mode = plaintext\n"));
    CHECK(strstr(out, "\nlog.level = info\n"));
    CHECK(strstr(out, "\nnode.name = \n"));
    CHECK(strncmp(out, "node.unit = 07840\n", 18) == 0);
    free(out);
    lt_config_free(&cfg);

    load_ok("[node]\nunit = 07840\ndatabase = postgresql://lt:s3cret@db:5433/lt\n"
            "[security]\nmode = plaintext\n",
            &cfg);
    out = dump(&cfg);
    CHECK(!strstr(out, "s3cret"));
    CHECK(strstr(out, "password=****"));
    CHECK(strstr(out, "port=5433"));
    free(out);
    lt_config_free(&cfg);
}

TEST(example_file_parses)
{
    char buf[128], err[512];
    lt_config_t cfg;
    const char *path = repo_file("deploy/lienthong.conf.example", buf, sizeof(buf));
    if (lt_config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "  %s\n", err);
        exit(1);
    }
    CHECK_EQ_STR(cfg.unit, "001");
    CHECK(*cfg.parent_endpoint && *cfg.children_bind);
    CHECK_EQ_INT(cfg.security_mode, LT_SECURITY_CURVE);
    lt_config_free(&cfg);
}

TEST(doc_matches_table)
{
    char buf[128], *table = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&table, &len);
    CHECK(f);
    lt_config_doc_markdown(f);
    fclose(f);

    char *doc = read_file(repo_file("deploy/CONFIG.md", buf, sizeof(buf)));
    CHECK(doc);
    if (!strstr(doc, table)) {
        fprintf(stderr, "  deploy/CONFIG.md is out of date; regenerate its table from "
                        "lt_config_doc_markdown():\n%s",
                table);
        exit(1);
    }
    /* Every row has the same number of cells: no '|' inside a doc string. */
    for (char *line = table; *line; line = strchr(line, '\n') + 1) {
        int bars = 0;
        for (char *c = line; *c != '\n'; c++)
            bars += *c == '|';
        CHECK_EQ_INT(bars, 7);
    }
    free(doc);
    free(table);
}
