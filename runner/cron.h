/* SPDX-License-Identifier: MIT */
/*
 * Cron schedules in a time zone, for the `schedule:` of a trigger (kiln
 * serve starts the build at each matching minute).
 *
 *   minute hour day-of-month month day-of-week
 *   *  N  A-B  (star)/S  A-B/S  N/S (= N-max/S)  lists with commas
 *   month names JAN-DEC, day names SUN-SAT (case-insensitive), 7 = Sunday
 *   @yearly @annually @monthly @weekly @daily @midnight @hourly
 *
 * Days follow Vixie cron: when both day-of-month and day-of-week are
 * restricted (neither field starts with '*'), a day matches if EITHER
 * does; otherwise both must.
 *
 * Time zones are IANA names read from the TZ database's compiled files
 * (TZif, $TZDIR or /usr/share/zoneinfo), explicit transitions then the
 * file's POSIX rule for later years: no setenv("TZ") in a threaded server.
 * Across DST: a local minute that does not exist (clocks forward) does not
 * run; one that happens twice (clocks back) runs the first time only.
 */
#ifndef KILN_CRON_H
#define KILN_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln__cron {
    uint64_t minute;            /* bit m: minute m (0-59) */
    uint32_t hour;              /* bit h (0-23) */
    uint32_t dom;               /* bit d (1-31) */
    uint16_t month;             /* bit m (1-12) */
    uint8_t dow;                /* bit d (0-6, Sunday 0) */
    bool dom_star, dow_star;    /* the field starts with '*' (Vixie's rule) */
} kiln__cron;

/* Parse expr. Returns 0, or -1 with why (one line naming the field). */
int kiln__cron_parse(const char *expr, kiln__cron *c, char *why, size_t cap);

/* A POSIX TZ rule: std offset, and DST between two dates of each year. */
typedef struct kiln__tzrule {
    int32_t std_off, dst_off;   /* seconds east of UTC */
    bool has_dst;
    struct {
        char kind;              /* 'J' (1-365, no Feb 29), 'D' (0-365), 'M' */
        int a, b, c;            /* J/D: a = day; M: month a, week b, weekday c */
        int32_t time;           /* seconds after local midnight */
    } start, end;
} kiln__tzrule;

typedef struct kiln__tz {
    char name[64];
    size_t n;                   /* transitions */
    int64_t *at;                /* UTC seconds, ascending */
    int32_t *off;               /* the offset from at[i] on */
    int32_t first_off;          /* before at[0] */
    bool has_rule;              /* after the last transition */
    kiln__tzrule rule;
} kiln__tz;

/* Load an IANA zone ("Europe/Paris"); NULL, "" and "UTC" need no file.
 * Returns 0, or -1 with why. kiln__tz_free after either. */
int kiln__tz_load(kiln__tz *tz, const char *name, char *why, size_t cap);
void kiln__tz_free(kiln__tz *tz);
/* Seconds east of UTC at UTC instant t. */
int32_t kiln__tz_offset(const kiln__tz *tz, int64_t t);
/* Parse a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"). Returns 0 or -1. */
int kiln__tzrule_parse(const char *s, kiln__tzrule *r);

/* The first minute strictly after `after` (UTC seconds) at which c fires
 * in tz, as UTC seconds; -1 when none within ten years (such as 30 FEB). */
int64_t kiln__cron_next(const kiln__cron *c, const kiln__tz *tz, int64_t after);

#endif /* KILN_CRON_H */
