/*
 * test_pgtext.c — numbers and timestamps as the parent writes them into COPY text:
 * what a commune typed must come back exactly, and COPY escapes must hold.
 */
#include <math.h>
#include <stdlib.h>

#include "pgtext.h"
#include "unit.h"

static const char *dbl(double v)
{
    static char out[64];
    pgtext_format_double(v, out, sizeof(out));
    return out;
}

TEST(doubles_read_back_exactly_and_short)
{
    CHECK_EQ_STR(dbl(0.1), "0.1");
    CHECK_EQ_STR(dbl(12.5), "12.5");
    CHECK_EQ_STR(dbl(12), "12");
    CHECK_EQ_STR(dbl(-3), "-3");
    CHECK_EQ_STR(dbl(0), "0");
    CHECK_EQ_STR(dbl(999999999999999.0), "999999999999999");
    CHECK_EQ_STR(dbl(1e15), "1e+15");
    /* needs 17 digits: must still read back exactly */
    double tricky = 0.1 + 0.2;
    CHECK(strtod(dbl(tricky), NULL) == tricky);
    CHECK_EQ_STR(dbl(tricky), "0.30000000000000004");
    for (int i = 0; i < 100000; i++) {
        double v = (double)rand() / RAND_MAX * pow(10, rand() % 15);
        CHECK(strtod(dbl(v), NULL) == v);
    }
}

TEST(timestamps_are_utc_milliseconds)
{
    char out[40];
    pgtext_format_ts(0, out, sizeof(out));
    CHECK_EQ_STR(out, "1970-01-01 00:00:00.000+00");
    pgtext_format_ts(1709607600123LL, out, sizeof(out));
    CHECK_EQ_STR(out, "2024-03-05 03:00:00.123+00");
    pgtext_format_ts(-1, out, sizeof(out));
    CHECK_EQ_STR(out, "1969-12-31 23:59:59.999+00");
}

TEST(copy_fields_escape_what_copy_would_misread)
{
    pgtext_buf_t b = {0};
    pgtext_copy_field(&b, "a\tb\nc\\d\re");
    pgtext_add(&b, "\t", 1);
    pgtext_copy_null(&b);
    CHECK_EQ_STR(b.buf, "a\\tb\\nc\\\\d\\re\t\\N");
    CHECK(!b.oom);
    free(b.buf);
}

TEST(buffer_grows_past_its_first_allocation)
{
    pgtext_buf_t b = {0};
    for (int i = 0; i < 10000; i++)
        pgtext_fmt(&b, "%d\t", i);
    CHECK(b.len > 40000);
    CHECK(b.buf[b.len] == '\0');
    CHECK(strncmp(b.buf, "0\t1\t2\t", 6) == 0);
    free(b.buf);
}
