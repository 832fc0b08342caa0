/*
 * config.h — the daemon's settings, read from an INI file.
 *
 * One table in config.c lists every setting (section, key, type, default,
 * allowed range or values, whether SIGHUP reloads it, one line of doc); the
 * parser, the defaults, the range checks, `show config`, the markdown
 * reference (deploy/CONFIG.md) and reload are all driven from it. Invariant:
 * after a successful load every field holds a checked value and every string
 * is non-NULL; a file with any unknown key, bad value or failed cross-check is
 * rejected as a whole and changes nothing.
 */
#ifndef LT_CONFIG_H
#define LT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* security.mode */
enum { LT_SECURITY_CURVE = 0, LT_SECURITY_PLAINTEXT = 1 };
/* log.format; the value is what lt_log_setup() takes as `logfmt`. */
enum { LT_LOG_FORMAT_TEXT = 0, LT_LOG_FORMAT_LOGFMT = 1 };

typedef struct {
    /* [node] */
    char *unit, *database, *name;
    /* [parent], [children] */
    char *parent_endpoint, *children_bind;
    /* [sync] */
    int batch_rows, batch_bytes, max_inflight, ack_timeout_ms, rescan_ms;
    long apply_queue_bytes;
    /* [net] */
    int heartbeat_ivl_ms, heartbeat_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    int max_message_bytes, hwm;
    /* [security] */
    int security_mode; /* LT_SECURITY_CURVE / LT_SECURITY_PLAINTEXT */
    char *secret_key_file, *public_key_file, *parent_public_key_file, *children_keys_file;
    /* [log] */
    int log_level;  /* lt_log_level_t: 0 error .. 3 debug */
    int log_format; /* LT_LOG_FORMAT_TEXT / LT_LOG_FORMAT_LOGFMT */
    /* [status] */
    char *metrics_listen;
    int stats_interval_ms;
} lt_config_t;

/* Apply the defaults, then the file at path, then the cross-checks.
 * 0 on success: free cfg with lt_config_free. On failure -1, a message
 * "file:line: ..." in err (no ":line" when the file as a whole is at fault)
 * and cfg left empty (lt_config_free on it is harmless). */
int lt_config_load(const char *path, lt_config_t *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Free the strings and zero *cfg. Safe to call twice. */
void lt_config_free(lt_config_t *cfg);

/* SIGHUP: load path into a new config. If that fails, return -1 with err set
 * and *cfg untouched. Otherwise copy the reloadable settings that changed into
 * *cfg and name them in changed ("sync.batch_rows log.level", space-separated,
 * "" when none); settings that changed but need a restart are named the same
 * way in restart_needed and left as they were in *cfg. Returns 0. */
int lt_config_reload(const char *path, lt_config_t *cfg, char *changed, size_t changedlen,
                     char *restart_needed, size_t rnlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* `show config`: one "section.key = value" line per setting, in table order;
 * passwords inside node.database are printed as "****". */
void lt_config_dump(const lt_config_t *cfg, FILE *out);

/* The reference table in markdown, as it appears in deploy/CONFIG.md. */
void lt_config_doc_markdown(FILE *out);

#endif
