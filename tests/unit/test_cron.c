/* SPDX-License-Identifier: MIT */
/* Cron schedules: parsing, Vixie's day rule, the next minute in a time zone
 * across DST (Europe/Paris, America/New_York from the TZ database), and the
 * POSIX rules TZif files end with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

/* "2026-03-29 01:59" (UTC) -> seconds */
static int64_t utc(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_int_equal(sscanf(s, "%d-%d-%d %d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min), 5);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static int64_t next(const char *expr, const char *zone, const char *after)
{
    kiln__cron c;
    char why[256];
    assert_int_equal(kiln__cron_parse(expr, &c, why, sizeof why), 0);
    kiln__tz tz;
    if (kiln__tz_load(&tz, zone, why, sizeof why) != 0)
        fail_msg("%s", why);
    int64_t t = kiln__cron_next(&c, &tz, utc(after));
    kiln__tz_free(&tz);
    return t;
}

static void test_parse(void **state)
{
    (void)state;
    kiln__cron c;
    char why[256];
    assert_int_equal(kiln__cron_parse("*/15 0-23/2 1,15 JAN-JUN mon-fri", &c, why, sizeof why), 0);
    assert_true(c.minute == (1ull << 0 | 1ull << 15 | 1ull << 30 | 1ull << 45));
    assert_int_equal(c.hour, 0x555555);
    assert_int_equal(c.dom, (1u << 1) | (1u << 15));
    assert_int_equal(c.month, 0x7e);
    assert_int_equal(c.dow, 0x3e);
    assert_false(c.dom_star);
    assert_false(c.dow_star);
    assert_int_equal(kiln__cron_parse("0 0 * * 7", &c, why, sizeof why), 0);
    assert_int_equal(c.dow, 1); /* 7 is Sunday */
    assert_int_equal(kiln__cron_parse("0 0 * * 5-7", &c, why, sizeof why), 0);
    assert_int_equal(c.dow, 0x61);
    assert_int_equal(kiln__cron_parse("5/20 * * * *", &c, why, sizeof why), 0);
    assert_true(c.minute == (1ull << 5 | 1ull << 25 | 1ull << 45));
    assert_int_equal(kiln__cron_parse("@weekly", &c, why, sizeof why), 0);
    assert_int_equal(c.dow, 1);
    assert_true(c.dom_star);
    const char *bad[] = {"60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
                         "5-1 * * * *", "*/0 * * * *", "* * * FOO *", "1,,2 * * * *", "* * * *",
                         "* * * * * *", "@sometimes", "1- * * * *", "*/ * * * *", "", "MON * * * *"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        if (kiln__cron_parse(bad[i], &c, why, sizeof why) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(why[0] != '\0');
    }
    kiln__cron_parse("0 3 * * FUN", &c, why, sizeof why);
    assert_non_null(strstr(why, "field 5 (day of week) 'FUN'"));
}

static void test_next_utc(void **state)
{
    (void)state;
    /* The seed's weekly retraining: 2026-12-07 is a Monday. */
    assert_int_equal(next("0 3 * * MON", NULL, "2026-12-06 18:00"), utc("2026-12-07 03:00"));
    assert_int_equal(next("0 3 * * MON", "UTC", "2026-12-07 03:00"), utc("2026-12-14 03:00"));
    assert_int_equal(next("*/15 * * * *", NULL, "2026-12-31 23:59"), utc("2027-01-01 00:00"));
    assert_int_equal(next("30 9 * * *", NULL, "2026-12-06 09:30"), utc("2026-12-07 09:30"));
    /* Leap day: the next Feb 29 after 2026 is 2028's. */
    assert_int_equal(next("0 0 29 FEB *", NULL, "2026-03-01 00:00"), utc("2028-02-29 00:00"));
    /* Never: -1, not a loop. */
    assert_int_equal(next("0 0 30 FEB *", NULL, "2026-03-01 00:00"), -1);
    /* Vixie: both restricted -> either; 2026-12-13 is a Sunday. */
    assert_int_equal(next("0 0 15 * SUN", NULL, "2026-12-10 00:00"), utc("2026-12-13 00:00"));
    assert_int_equal(next("0 0 15 * SUN", NULL, "2026-12-13 00:00"), utc("2026-12-15 00:00"));
    /* One starred (even with a step) -> both: the 15th when a Sunday only. */
    assert_int_equal(next("0 0 */1 * SUN", NULL, "2026-12-10 00:00"), utc("2026-12-13 00:00"));
    assert_int_equal(next("0 0 15 * *", NULL, "2026-12-10 00:00"), utc("2026-12-15 00:00"));
    /* Month names and lists. */
    assert_int_equal(next("0 12 1 jan,jul *", NULL, "2026-02-01 00:00"), utc("2026-07-01 12:00"));
}

static void test_next_zones(void **state)
{
    (void)state;
    /* Paris is UTC+1 in winter: 03:00 local is 02:00 UTC. */
    assert_int_equal(next("0 3 * * MON", "Europe/Paris", "2026-12-06 18:00"), utc("2026-12-07 02:00"));
    /* ... and UTC+2 in summer. */
    assert_int_equal(next("0 3 * * *", "Europe/Paris", "2026-07-01 12:00"), utc("2026-07-02 01:00"));
    /* 2026-03-29: 02:00 -> 03:00 in Paris. 02:30 does not exist: no run
     * that day; the next is on the 30th (00:30 UTC, summer time). */
    assert_int_equal(next("30 2 * * *", "Europe/Paris", "2026-03-28 12:00"), utc("2026-03-30 00:30"));
    /* A run an hour later that day is there. */
    assert_int_equal(next("30 3 * * *", "Europe/Paris", "2026-03-28 12:00"), utc("2026-03-29 01:30"));
    /* 2026-10-25: 03:00 -> 02:00. 02:30 happens twice: it runs once, the
     * first time (00:30 UTC), and next on the 26th. */
    int64_t first = next("30 2 * * *", "Europe/Paris", "2026-10-24 12:00");
    assert_int_equal(first, utc("2026-10-25 00:30"));
    assert_int_equal(next("30 2 * * *", "Europe/Paris", "2026-10-25 00:30"), utc("2026-10-26 01:30"));
    /* Every 15 minutes through the repeated hour: 00:45 UTC (02:45 CEST),
     * then 01:00 UTC is 02:00 CET, lived already: the next new minute is
     * 03:00 CET = 02:00 UTC. */
    assert_int_equal(next("*/15 * * * *", "Europe/Paris", "2026-10-25 00:45"), utc("2026-10-25 02:00"));
    /* New York: 2026-03-08 02:00 -> 03:00; 2026-11-01 02:00 -> 01:00. */
    assert_int_equal(next("0 9 * * *", "America/New_York", "2026-03-07 15:00"), utc("2026-03-08 13:00"));
    assert_int_equal(next("30 1 * * *", "America/New_York", "2026-10-31 12:00"), utc("2026-11-01 05:30"));
    assert_int_equal(next("30 1 * * *", "America/New_York", "2026-11-01 05:30"), utc("2026-11-02 06:30"));
    /* Past the TZif file's transitions (2037), from its POSIX rule. */
    assert_int_equal(next("0 3 * * *", "Europe/Paris", "2050-07-01 12:00"), utc("2050-07-02 01:00"));
    assert_int_equal(next("0 3 * * *", "Europe/Paris", "2050-12-01 12:00"), utc("2050-12-02 02:00"));
    /* Half-hour zones. */
    assert_int_equal(next("0 9 * * *", "Asia/Kolkata", "2026-12-06 00:00"), utc("2026-12-06 03:30"));
}

static void test_zones(void **state)
{
    (void)state;
    kiln__tz tz;
    char why[320];
    assert_int_equal(kiln__tz_load(&tz, "Mars/Olympus", why, sizeof why), -1);
    assert_non_null(strstr(why, "unknown time zone 'Mars/Olympus'"));
    kiln__tz_free(&tz);
    assert_int_equal(kiln__tz_load(&tz, "../../etc/passwd", why, sizeof why), -1);
    assert_non_null(strstr(why, "not a time zone name"));
    kiln__tz_free(&tz);
    assert_int_equal(kiln__tz_load(&tz, "Europe/Paris", why, sizeof why), 0);
    assert_true(tz.has_rule);
    assert_int_equal(kiln__tz_offset(&tz, utc("2026-01-01 00:00")), 3600);
    assert_int_equal(kiln__tz_offset(&tz, utc("2026-07-01 00:00")), 7200);
    kiln__tz_free(&tz);

    kiln__tzrule r;
    assert_int_equal(kiln__tzrule_parse("CET-1CEST,M3.5.0,M10.5.0/3", &r), 0);
    assert_int_equal(r.std_off, 3600);
    assert_int_equal(r.dst_off, 7200);
    assert_int_equal(r.end.time, 3 * 3600);
    assert_int_equal(kiln__tzrule_parse("<+0530>-5:30", &r), 0);
    assert_int_equal(r.std_off, 19800);
    assert_false(r.has_dst);
    assert_int_equal(kiln__tzrule_parse("EST5EDT,M3.2.0,M11.1.0", &r), 0);
    assert_int_equal(r.std_off, -18000);
    assert_int_equal(kiln__tzrule_parse("AEST-10AEDT,M10.1.0,M4.1.0/3", &r), 0);
    assert_int_equal(kiln__tzrule_parse("X", &r), -1);
    assert_int_equal(kiln__tzrule_parse("CET-1CEST,M13.5.0,M10.5.0", &r), -1);
    /* Southern hemisphere from a rule alone: DST across the new year. */
    kiln__tz syd;
    memset(&syd, 0, sizeof syd);
    syd.has_rule = true;
    kiln__tzrule_parse("AEST-10AEDT,M10.1.0,M4.1.0/3", &syd.rule);
    assert_int_equal(kiln__tz_offset(&syd, utc("2030-01-15 00:00")), 11 * 3600);
    assert_int_equal(kiln__tz_offset(&syd, utc("2030-07-15 00:00")), 10 * 3600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_next_zones),
        cmocka_unit_test(test_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
