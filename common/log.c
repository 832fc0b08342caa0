/*
 * log.c — see log.h. One write(2) per line so lines from several processes
 * sharing a terminal or a file do not interleave.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

lt_log_level_t lt_log_level = LT_LOG_INFO;

static char log_node[32] = "-";
static int log_logfmt;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int lt_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void lt_log_setup(const char *node, int logfmt)
{
    snprintf(log_node, sizeof(log_node), "%s", node ? node : "-");
    log_logfmt = logfmt;
}

void lt_log_write(lt_log_level_t level, const char *fmt, ...)
{
    char line[2048], msg[1600], ts[40];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03dZ", (int)(tv.tv_usec / 1000));

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (log_logfmt) {
        /* logfmt: quote the message, escape quotes and backslashes. */
        char esc[sizeof(msg) * 2];
        size_t j = 0;
        for (size_t i = 0; msg[i] && j + 2 < sizeof(esc); i++) {
            if (msg[i] == '"' || msg[i] == '\\')
                esc[j++] = '\\';
            esc[j++] = msg[i] == '\n' ? ' ' : msg[i];
        }
        esc[j] = '\0';
        n = snprintf(line, sizeof(line), "ts=%s level=%s node=%s msg=\"%s\"\n", ts,
                     level_names[level], log_node, esc);
    } else {
        n = snprintf(line, sizeof(line), "%s %-5s [%s] %s\n", ts, level_names[level],
                     log_node, msg);
    }
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* Nowhere left to report it. */
    }
}
