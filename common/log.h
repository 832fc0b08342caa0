/*
 * log.h — levelled, structured logging for every lienthong program.
 *
 * Lines go to stderr, either human ("2026-11-22T10:00:00.123Z INFO  [07840] msg")
 * or logfmt ("ts=... level=info node=07840 msg=\"...\""), so journald and log
 * shippers can both read them. The level is tested before the arguments are
 * evaluated, so a disabled debug line costs one comparison.
 */
#ifndef LT_LOG_H
#define LT_LOG_H

#include <stdarg.h>

typedef enum {
    LT_LOG_ERROR = 0,
    LT_LOG_WARN = 1,
    LT_LOG_INFO = 2,
    LT_LOG_DEBUG = 3,
} lt_log_level_t;

extern lt_log_level_t lt_log_level;

/* "error" | "warn" | "info" | "debug" -> level; returns -1 when unknown. */
int lt_log_parse_level(const char *name);
/* Set the node label printed on every line and the output format. */
void lt_log_setup(const char *node, int logfmt);

void lt_log_write(lt_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define lt_log(level, ...)                                                     \
    do {                                                                       \
        if ((level) <= lt_log_level)                                           \
            lt_log_write((level), __VA_ARGS__);                                \
    } while (0)
#define log_error(...) lt_log(LT_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) lt_log(LT_LOG_WARN, __VA_ARGS__)
#define log_info(...) lt_log(LT_LOG_INFO, __VA_ARGS__)
#define log_debug(...) lt_log(LT_LOG_DEBUG, __VA_ARGS__)

#endif
