/*
 * pgtext.h — building text for PostgreSQL: a growable buffer, fields in COPY text
 * format, numbers that read back exactly, and timestamps. The parent formats every
 * received record with these before COPYing it into staging, so what a commune typed
 * (0.1, 12.5) is what the parent stores.
 */
#ifndef LT_PGTEXT_H
#define LT_PGTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf; /* NUL-terminated; owned; free() it */
    size_t len, cap;
    int oom; /* set once an allocation failed; later appends are ignored */
} pgtext_buf_t;

void pgtext_add(pgtext_buf_t *b, const char *p, size_t n);
void pgtext_str(pgtext_buf_t *b, const char *s);
void pgtext_fmt(pgtext_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A COPY text field: backslash, tab, newline and carriage return escaped. */
void pgtext_copy_field(pgtext_buf_t *b, const char *s);
/* \N, COPY's NULL. */
void pgtext_copy_null(pgtext_buf_t *b);

/* Shortest decimal that reads back as exactly v: "%.15g" when it round-trips, else
   "%.17g". 0.1 stays "0.1"; 1e15 is "1e+15" (PostgreSQL's numeric reads both). */
void pgtext_format_double(double v, char *out, size_t n);
/* Unix milliseconds -> "YYYY-MM-DD HH:MM:SS.mmm+00". */
void pgtext_format_ts(int64_t ms, char *out, size_t n);

#endif
