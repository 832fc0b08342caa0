/*
 * config.c — see config.h. The settings[] table below is the only list of
 * settings; everything else here walks it. Invariant: a value reaches
 * lt_config_t only through setting_set(), which checks it against its table
 * row, and a load succeeds only if every line and every cross-check passed.
 *
 * Files are read by libinih through parse_read_line(), which counts lines,
 * strips leading blanks (so an indented key is not taken for a continuation
 * of the previous value) and rejects lines too long for libinih's buffer
 * instead of letting libinih split them in two.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    CFG_STRING,
    CFG_CONNINFO, /* a string libpq must accept; passwords masked in dumps */
    CFG_INT,
    CFG_LONG,
    CFG_BOOL,
    CFG_ENUM, /* stored as the index into values[] */
} cfg_type_t;

typedef struct {
    const char *section, *key;
    cfg_type_t type;
    size_t offset;              /* of the field in lt_config_t */
    const char *def;            /* default, written as in the file; NULL: required */
    long min, max;              /* CFG_INT, CFG_LONG */
    const char *const *values;  /* CFG_ENUM: allowed names, NULL-terminated */
    bool reload;                /* SIGHUP applies it; otherwise it needs a restart */
    const char *doc;
} cfg_setting_t;

/* offsetof(lt_config_t, f), and a compile error unless field f has C type T. */
#define FIELD(f, T)                                                            \
    (offsetof(lt_config_t, f) + 0 * sizeof(_Generic(((lt_config_t *)0)->f, T : 1)))

#define S_STR(sec, key, f, def, rl, doc)                                       \
    {sec, key, CFG_STRING, FIELD(f, char *), def, 0, 0, NULL, rl, doc}
#define S_CONNINFO(sec, key, f, def, rl, doc)                                  \
    {sec, key, CFG_CONNINFO, FIELD(f, char *), def, 0, 0, NULL, rl, doc}
#define S_INT(sec, key, f, def, lo, hi, rl, doc)                               \
    {sec, key, CFG_INT, FIELD(f, int), def, lo, hi, NULL, rl, doc}
#define S_LONG(sec, key, f, def, lo, hi, rl, doc)                              \
    {sec, key, CFG_LONG, FIELD(f, long), def, lo, hi, NULL, rl, doc}
#define S_BOOL(sec, key, f, def, rl, doc)                                      \
    {sec, key, CFG_BOOL, FIELD(f, bool), def, 0, 1, NULL, rl, doc}
#define S_ENUM(sec, key, f, def, vals, rl, doc)                                \
    {sec, key, CFG_ENUM, FIELD(f, int), def, 0, 0, vals, rl, doc}

#define REQUIRED NULL
#define RELOAD true
#define RESTART false

static const char *const security_modes[] = {"curve", "plaintext", NULL};
/* Same order as lt_log_level_t, so the index is the level. */
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "logfmt", NULL};

/* Docs are one line of markdown each and must not contain '|'. */
static const cfg_setting_t settings[] = {
    S_STR("node", "unit", unit, REQUIRED, RESTART,
          "Administrative unit code of this node: 2-digit province, 3-digit district "
          "or 5-digit commune (2 to 5 digits)."),
    S_CONNINFO("node", "database", database, REQUIRED, RESTART,
               "libpq connection string of this node's own database."),
    S_STR("node", "name", name, "", RESTART, "Label for logs."),
    S_STR("parent", "endpoint", parent_endpoint, "", RESTART,
          "ZeroMQ endpoint of the parent (`tcp://host:port`); empty on the top node."),
    S_STR("children", "bind", children_bind, "", RESTART,
          "Endpoint this node binds for its children (`tcp://*:port`); empty on a leaf "
          "(commune)."),
    S_INT("sync", "batch_rows", batch_rows, "2000", 1, 10000, RELOAD,
          "Maximum records per batch. On a link too slow for its batches a child halves "
          "them (down to 16 records and 4096 bytes) and grows them back as acknowledgements "
          "come."),
    S_INT("sync", "batch_bytes", batch_bytes, "1048576", 4096, 4194304, RELOAD,
          "Maximum encoded bytes per batch (adapted to the link like `sync.batch_rows`)."),
    S_INT("sync", "max_inflight", max_inflight, "4", 1, 64, RELOAD,
          "Batches sent but not yet acknowledged."),
    S_INT("sync", "ack_timeout_ms", ack_timeout_ms, "30000", 1000, 600000, RELOAD,
          "When no acknowledgement arrives for this long, resend from the last one; counted "
          "from when the batch has left the send queue, so a slow link is not taken for a dead one."),
    S_INT("sync", "rescan_ms", rescan_ms, "1000", 50, 60000, RELOAD,
          "Outbox rescan interval when no notification arrives."),
    S_LONG("sync", "apply_queue_bytes", apply_queue_bytes, "67108864", 1048576,
           1073741824, RELOAD,
           "Parent: cap on received, not yet applied batch bytes; beyond it batches "
           "are dropped and the child resends them later."),
    S_INT("net", "heartbeat_ivl_ms", heartbeat_ivl_ms, "5000", 100, 600000, RESTART,
          "Interval between heartbeats on every link (`ZMQ_HEARTBEAT_IVL`)."),
    S_INT("net", "heartbeat_timeout_ms", heartbeat_timeout_ms, "15000", 100, 3600000,
          RESTART,
          "A link silent this long is dropped (`ZMQ_HEARTBEAT_TIMEOUT` and "
          "`ZMQ_HEARTBEAT_TTL`), and a connect attempt nobody answers is abandoned "
          "(`ZMQ_CONNECT_TIMEOUT`); must be at least `net.heartbeat_ivl_ms`."),
    S_INT("net", "reconnect_min_ms", reconnect_min_ms, "200", 10, 60000, RESTART,
          "First delay before reconnecting (`ZMQ_RECONNECT_IVL`), plus up to half as much "
          "again drawn at random per socket; also the first delay before a HELLO is retried."),
    S_INT("net", "reconnect_max_ms", reconnect_max_ms, "30000", 10, 3600000, RESTART,
          "The reconnect delay doubles up to this (`ZMQ_RECONNECT_IVL_MAX`); HELLO retries "
          "double up to this or 5 s, whichever is less, with jitter; must be "
          "at least `net.reconnect_min_ms`."),
    S_INT("net", "max_message_bytes", max_message_bytes, "4194304", 65536, 67108864,
          RESTART,
          "Largest message accepted on any socket (`ZMQ_MAXMSGSIZE`); a peer sending "
          "a larger one is disconnected."),
    S_INT("net", "hwm", hwm, "1000", 10, 1000000, RESTART,
          "Send and receive high-water marks, in messages."),
    S_ENUM("security", "mode", security_mode, "curve", security_modes, RESTART,
           "`curve` encrypts and authenticates every link; `plaintext` is for local "
           "demos only and is logged loudly at start."),
    S_STR("security", "secret_key_file", secret_key_file, "", RESTART,
          "This node's CURVE secret key file (z85, written by `lienthong keygen`); "
          "required in curve mode."),
    S_STR("security", "public_key_file", public_key_file, "", RESTART,
          "This node's CURVE public key file; required in curve mode."),
    S_STR("security", "parent_public_key_file", parent_public_key_file, "", RESTART,
          "Child side: the parent's public key file; required in curve mode when "
          "`parent.endpoint` is set."),
    S_STR("security", "children_keys_file", children_keys_file, "", RESTART,
          "Parent side: allow-list file, one `<unit code> <z85 public key>` per line; "
          "required in curve mode when `children.bind` is set."),
    S_ENUM("log", "level", log_level, "info", log_levels, RELOAD,
           "Least severe level written."),
    S_ENUM("log", "format", log_format, "text", log_formats, RELOAD,
           "`text` for people, `logfmt` for log shippers."),
    S_STR("status", "metrics_listen", metrics_listen, "", RESTART,
          "`host:port` of the Prometheus `/metrics` HTTP endpoint; empty disables it."),
    S_INT("status", "stats_interval_ms", stats_interval_ms, "60000", 1000, 3600000,
          RELOAD,
          "Period of the one-line `stats:` log and of the link-state write to the "
          "database."),
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* ---- field access ---------------------------------------------------- */

static void *field(lt_config_t *cfg, const cfg_setting_t *s)
{
    return (char *)cfg + s->offset;
}

static const void *field_c(const lt_config_t *cfg, const cfg_setting_t *s)
{
    return (const char *)cfg + s->offset;
}

static bool is_string(const cfg_setting_t *s)
{
    return s->type == CFG_STRING || s->type == CFG_CONNINFO;
}

static const char *str_get(const lt_config_t *cfg, const cfg_setting_t *s)
{
    return *(char *const *)field_c(cfg, s);
}

/* Value of an int, long, bool or enum setting. */
static long num_get(const lt_config_t *cfg, const cfg_setting_t *s)
{
    const void *p = field_c(cfg, s);
    switch (s->type) {
    case CFG_LONG:
        return *(const long *)p;
    case CFG_BOOL:
        return *(const bool *)p;
    default:
        return *(const int *)p;
    }
}

static void num_set(lt_config_t *cfg, const cfg_setting_t *s, long v)
{
    void *p = field(cfg, s);
    switch (s->type) {
    case CFG_LONG:
        *(long *)p = v;
        break;
    case CFG_BOOL:
        *(bool *)p = v != 0;
        break;
    default:
        *(int *)p = (int)v;
        break;
    }
}

static const cfg_setting_t *setting_find(const char *section, const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

/* "a, b, c" from an enum's values, each wrapped in quote (for markdown: "`"). */
static void enum_list(const cfg_setting_t *s, const char *quote, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; s->values[i] && n < len; i++) {
        int w = snprintf(buf + n, len - n, "%s%s%s%s", i ? ", " : "", quote, s->values[i],
                         quote);
        n += w > 0 ? (size_t)w : 0;
    }
}

/* libpq's messages end in a newline; copy without it. */
static void copy_line(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
    dst[strcspn(dst, "\n")] = '\0';
}

/* Parse text as the value of s and store it in cfg. On failure -1 and why
 * ("sync.batch_rows = '0' is out of range (allowed 1 .. 10000)"). */
static int setting_set(lt_config_t *cfg, const cfg_setting_t *s, const char *text, char *why,
                       size_t whylen)
{
    long v = 0;
    char *end, list[128], msg[256];

    switch (s->type) {
    case CFG_CONNINFO: {
        char *pqerr = NULL;
        PQconninfoOption *opts = PQconninfoParse(text, &pqerr);
        if (!opts) {
            copy_line(msg, sizeof(msg), pqerr ? pqerr : "out of memory");
            PQfreemem(pqerr);
            snprintf(why, whylen, "%s.%s is not a valid libpq connection string: %s",
                     s->section, s->key, msg);
            return -1;
        }
        PQconninfoFree(opts);
    }
        /* fall through */
    case CFG_STRING: {
        char *copy = strdup(text);
        if (!copy) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        char **p = field(cfg, s);
        free(*p);
        *p = copy;
        return 0;
    }
    case CFG_INT:
    case CFG_LONG:
        errno = 0;
        v = strtol(text, &end, 10);
        if (end == text || *end || errno) {
            snprintf(why, whylen, "%s.%s = '%s' is not an integer (allowed %ld .. %ld)",
                     s->section, s->key, text, s->min, s->max);
            return -1;
        }
        if (v < s->min || v > s->max) {
            snprintf(why, whylen, "%s.%s = '%s' is out of range (allowed %ld .. %ld)",
                     s->section, s->key, text, s->min, s->max);
            return -1;
        }
        break;
    case CFG_BOOL:
        if (!strcasecmp(text, "yes") || !strcasecmp(text, "true") || !strcasecmp(text, "on") ||
            !strcmp(text, "1"))
            v = 1;
        else if (!strcasecmp(text, "no") || !strcasecmp(text, "false") ||
                 !strcasecmp(text, "off") || !strcmp(text, "0"))
            v = 0;
        else {
            snprintf(why, whylen, "%s.%s = '%s' is not a boolean (allowed yes, no)",
                     s->section, s->key, text);
            return -1;
        }
        break;
    case CFG_ENUM:
        for (v = 0; s->values[v]; v++)
            if (strcasecmp(text, s->values[v]) == 0)
                break;
        if (!s->values[v]) {
            enum_list(s, "", list, sizeof(list));
            snprintf(why, whylen, "%s.%s = '%s' is not allowed (allowed %s)", s->section,
                     s->key, text, list);
            return -1;
        }
        break;
    }
    num_set(cfg, s, v);
    return 0;
}

/* ---- parsing --------------------------------------------------------- */

typedef struct {
    FILE *f;
    lt_config_t *cfg;
    int lineno;             /* of the line parse_read_line last returned */
    int set_at[NSETTINGS];  /* line each setting was set on; 0: default */
    bool failed;            /* the first error found, and its line (0: none) */
    int err_line;
    char err[512];
} cfg_parse_t;

__attribute__((format(printf, 3, 4))) static void parse_fail(cfg_parse_t *p, int line,
                                                             const char *fmt, ...)
{
    va_list ap;
    if (p->failed)
        return;
    p->failed = true;
    p->err_line = line;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
}

static int line_of(const cfg_parse_t *p, const char *section, const char *key)
{
    const cfg_setting_t *s = setting_find(section, key);
    return s ? p->set_at[s - settings] : 0;
}

static char *parse_read_line(char *buf, int size, void *stream)
{
    cfg_parse_t *p = stream;
    size_t n;

    if (!fgets(buf, size, p->f))
        return NULL;
    p->lineno++;
    n = strlen(buf);
    if (n > 0 && buf[n - 1] != '\n') {
        int c = getc(p->f);
        if (c != EOF && c != '\n') {
            while (c != EOF && c != '\n')
                c = getc(p->f);
            parse_fail(p, p->lineno, "line longer than %d characters", size - 1);
            buf[0] = '\0';
            return buf;
        }
    }
    size_t skip = strspn(buf, " \t");
    memmove(buf, buf + skip, n - skip + 1);
    return buf;
}

static int parse_handler(void *user, const char *section, const char *key, const char *value)
{
    cfg_parse_t *p = user;
    const cfg_setting_t *s = setting_find(section, key);
    char why[400];

    if (!s) {
        const cfg_setting_t *hint = NULL;
        bool known_section = false;
        for (size_t i = 0; i < NSETTINGS; i++) {
            known_section |= strcmp(settings[i].section, section) == 0;
            if (!hint && strcmp(settings[i].key, key) == 0)
                hint = &settings[i];
        }
        if (!*section)
            snprintf(why, sizeof(why), "setting '%s' outside any [section]", key);
        else if (!known_section)
            snprintf(why, sizeof(why), "unknown section [%s] (setting '%s')", section, key);
        else
            snprintf(why, sizeof(why), "unknown setting %s.%s", section, key);
        if (hint)
            parse_fail(p, p->lineno, "%s (did you mean %s.%s?)", why, hint->section,
                       hint->key);
        else
            parse_fail(p, p->lineno, "%s", why);
        return 0;
    }
    if (p->set_at[s - settings]) {
        parse_fail(p, p->lineno, "%s.%s is set twice (first on line %d)", s->section, s->key,
                   p->set_at[s - settings]);
        return 0;
    }
    p->set_at[s - settings] = p->lineno;
    if (setting_set(p->cfg, s, value, why, sizeof(why)) < 0) {
        parse_fail(p, p->lineno, "%s", why);
        return 0;
    }
    return 1;
}

static bool is_unit_code(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && n <= 5 && strspn(s, "0123456789") == n;
}

/* Rules that involve more than one setting, or more than a value's syntax. */
static void cross_check(cfg_parse_t *p)
{
    const lt_config_t *c = p->cfg;

    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting_t *s = &settings[i];
        if (s->def || !is_string(s))
            continue;
        if (!str_get(c, s) || !*str_get(c, s))
            parse_fail(p, p->set_at[i], "%s.%s is required", s->section, s->key);
    }
    if (p->failed)
        return;
    if (!is_unit_code(c->unit))
        parse_fail(p, line_of(p, "node", "unit"),
                   "node.unit = '%s' is not a unit code (2 to 5 digits)", c->unit);
    if (*c->parent_endpoint && !strstr(c->parent_endpoint, "://"))
        parse_fail(p, line_of(p, "parent", "endpoint"),
                   "parent.endpoint = '%s' is not a ZeroMQ endpoint (tcp://host:port)",
                   c->parent_endpoint);
    if (*c->children_bind && !strstr(c->children_bind, "://"))
        parse_fail(p, line_of(p, "children", "bind"),
                   "children.bind = '%s' is not a ZeroMQ endpoint (tcp://*:port)",
                   c->children_bind);
    if (c->reconnect_max_ms < c->reconnect_min_ms)
        parse_fail(p, line_of(p, "net", "reconnect_max_ms"),
                   "net.reconnect_max_ms (%d) must be at least net.reconnect_min_ms (%d)",
                   c->reconnect_max_ms, c->reconnect_min_ms);
    if (c->heartbeat_timeout_ms < c->heartbeat_ivl_ms)
        parse_fail(p, line_of(p, "net", "heartbeat_timeout_ms"),
                   "net.heartbeat_timeout_ms (%d) must be at least net.heartbeat_ivl_ms (%d)",
                   c->heartbeat_timeout_ms, c->heartbeat_ivl_ms);
    if (c->security_mode == LT_SECURITY_CURVE) {
        int mode_line = line_of(p, "security", "mode");
        if (!*c->secret_key_file)
            parse_fail(p, mode_line,
                       "security.secret_key_file is required when security.mode = curve");
        if (!*c->public_key_file)
            parse_fail(p, mode_line,
                       "security.public_key_file is required when security.mode = curve");
        if (*c->parent_endpoint && !*c->parent_public_key_file)
            parse_fail(p, mode_line,
                       "security.parent_public_key_file is required when security.mode = "
                       "curve and parent.endpoint is set");
        if (*c->children_bind && !*c->children_keys_file)
            parse_fail(p, mode_line,
                       "security.children_keys_file is required when security.mode = curve "
                       "and children.bind is set");
    }
}

static void say(char *err, size_t errlen, const char *path, int line, const char *msg)
{
    if (!err || !errlen)
        return;
    if (line > 0)
        snprintf(err, errlen, "%s:%d: %s", path, line, msg);
    else
        snprintf(err, errlen, "%s: %s", path, msg);
}

int lt_config_load(const char *path, lt_config_t *cfg, char *err, size_t errlen)
{
    cfg_parse_t p = {.cfg = cfg};
    char why[400];
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].def && setting_set(cfg, &settings[i], settings[i].def, why,
                                           sizeof(why)) < 0) {
            say(err, errlen, path, 0, why); /* a bad default is a bug; out of memory */
            goto fail;
        }
    }

    p.f = fopen(path, "r");
    if (!p.f) {
        snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
        say(err, errlen, path, 0, why);
        goto fail;
    }
    rc = ini_parse_stream(parse_read_line, &p, parse_handler, &p);
    if (ferror(p.f))
        parse_fail(&p, 0, "cannot read: %s", strerror(errno));
    fclose(p.f);

    if (rc > 0 && (!p.failed || rc < p.err_line)) {
        say(err, errlen, path, rc, "expected '[section]' or 'key = value'");
        goto fail;
    }
    if (rc < 0)
        parse_fail(&p, 0, "out of memory");
    if (!p.failed)
        cross_check(&p);
    if (p.failed) {
        say(err, errlen, path, p.err_line, p.err);
        goto fail;
    }
    return 0;
fail:
    lt_config_free(cfg);
    return -1;
}

void lt_config_free(lt_config_t *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (is_string(&settings[i]))
            free(*(char **)field(cfg, &settings[i]));
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- reload ---------------------------------------------------------- */

static bool setting_equal(const lt_config_t *a, const lt_config_t *b, const cfg_setting_t *s)
{
    if (is_string(s))
        return strcmp(str_get(a, s), str_get(b, s)) == 0;
    return num_get(a, s) == num_get(b, s);
}

/* Append name to a space-separated list; a name that does not fit is left out. */
static void list_add(char *buf, size_t len, const cfg_setting_t *s)
{
    size_t n;
    if (!buf || !len)
        return;
    n = strlen(buf);
    if (n + strlen(s->section) + strlen(s->key) + 3 > len)
        return;
    snprintf(buf + n, len - n, "%s%s.%s", n ? " " : "", s->section, s->key);
}

int lt_config_reload(const char *path, lt_config_t *cfg, char *changed, size_t changedlen,
                     char *restart_needed, size_t rnlen, char *err, size_t errlen)
{
    lt_config_t next;

    if (lt_config_load(path, &next, err, errlen) < 0)
        return -1;
    if (changed && changedlen)
        changed[0] = '\0';
    if (restart_needed && rnlen)
        restart_needed[0] = '\0';
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting_t *s = &settings[i];
        if (setting_equal(cfg, &next, s))
            continue;
        if (!s->reload) {
            list_add(restart_needed, rnlen, s);
            continue;
        }
        if (is_string(s)) { /* swap: next's old string is freed with next */
            char **a = field(cfg, s), **b = field(&next, s), *t = *a;
            *a = *b;
            *b = t;
        } else {
            num_set(cfg, s, num_get(&next, s));
        }
        list_add(changed, changedlen, s);
    }
    lt_config_free(&next);
    return 0;
}

/* ---- show config and docs -------------------------------------------- */

/* A conninfo value, quoted the way libpq reads it back. */
static void conninfo_value_print(const char *v, FILE *out)
{
    if (*v && !strpbrk(v, " \t\n'\\")) {
        fputs(v, out);
        return;
    }
    fputc('\'', out);
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            fputc('\\', out);
        fputc(*v, out);
    }
    fputc('\'', out);
}

/* The options of a connection string as keyword=value, passwords masked. */
static void conninfo_print_masked(const char *conninfo, FILE *out)
{
    char *pqerr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &pqerr);
    const char *sep = "";

    if (!opts) {
        PQfreemem(pqerr);
        fputs("(not a valid connection string)", out);
        return;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        fprintf(out, "%s%s=", sep, o->keyword);
        if (strstr(o->keyword, "password"))
            fputs("****", out);
        else
            conninfo_value_print(o->val, out);
        sep = " ";
    }
    PQconninfoFree(opts);
}

void lt_config_dump(const lt_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting_t *s = &settings[i];
        const char *str = is_string(s) ? str_get(cfg, s) : NULL;
        long v = is_string(s) ? 0 : num_get(cfg, s);

        fprintf(out, "%s.%s = ", s->section, s->key);
        switch (s->type) {
        case CFG_CONNINFO:
            if (str && *str)
                conninfo_print_masked(str, out);
            break;
        case CFG_STRING:
            fputs(str ? str : "", out);
            break;
        case CFG_INT:
        case CFG_LONG:
            fprintf(out, "%ld", v);
            break;
        case CFG_BOOL:
            fputs(v ? "yes" : "no", out);
            break;
        case CFG_ENUM:
            fputs(v >= 0 && s->values[v] ? s->values[v] : "?", out);
            break;
        }
        fputc('\n', out);
    }
}

void lt_config_doc_markdown(FILE *out)
{
    static const char *const type_names[] = {
        [CFG_STRING] = "string", [CFG_CONNINFO] = "conninfo", [CFG_INT] = "integer",
        [CFG_LONG] = "integer",  [CFG_BOOL] = "bool",         [CFG_ENUM] = "enum",
    };
    char list[128];

    fputs("| Setting | Type | Default | Allowed | Takes effect | Description |\n"
          "|---|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting_t *s = &settings[i];

        fprintf(out, "| `%s.%s` | %s | ", s->section, s->key, type_names[s->type]);
        if (!s->def)
            fputs("**required**", out);
        else if (!*s->def)
            fputs("empty", out);
        else
            fprintf(out, "`%s`", s->def);
        fputs(" | ", out);
        if (s->type == CFG_INT || s->type == CFG_LONG)
            fprintf(out, "%ld .. %ld", s->min, s->max);
        else if (s->type == CFG_BOOL)
            fputs("`yes`, `no`", out);
        else if (s->type == CFG_ENUM) {
            enum_list(s, "`", list, sizeof(list));
            fputs(list, out);
        }
        fprintf(out, " | %s | %s |\n", s->reload ? "on SIGHUP" : "on restart", s->doc);
    }
}
