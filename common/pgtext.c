/*
 * pgtext.c — see pgtext.h.
 */
#include "pgtext.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pgtext_add(pgtext_buf_t *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

void pgtext_str(pgtext_buf_t *b, const char *s)
{
    pgtext_add(b, s, strlen(s));
}

void pgtext_fmt(pgtext_buf_t *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        pgtext_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void pgtext_copy_field(pgtext_buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': pgtext_add(b, "\\\\", 2); break;
        case '\t': pgtext_add(b, "\\t", 2); break;
        case '\n': pgtext_add(b, "\\n", 2); break;
        case '\r': pgtext_add(b, "\\r", 2); break;
        default: pgtext_add(b, s, 1);
        }
    }
}

void pgtext_copy_null(pgtext_buf_t *b)
{
    pgtext_add(b, "\\N", 2);
}

void pgtext_format_double(double v, char *out, size_t n)
{
    snprintf(out, n, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, n, "%.17g", v);
}

void pgtext_format_ts(int64_t ms, char *out, size_t n)
{
    int64_t sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03d+00", (int)rem);
}
