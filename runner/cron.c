/* SPDX-License-Identifier: MIT */
/*
 * Cron schedules and time zones (cron.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cron.h"

/* ---- parsing ------------------------------------------------------------- */

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG",
                                          "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct {
    const char *what;
    int lo, hi;
    const char *const *names;
} fields[5] = {{"minute", 0, 59, NULL},
               {"hour", 0, 23, NULL},
               {"day of month", 1, 31, NULL},
               {"month", 1, 12, month_names},
               {"day of week", 0, 7, day_names}};

static int value(const char **p, int f, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v <= 1000)
            v = v * 10 + (*s++ - '0');
        if (v < fields[f].lo || v > fields[f].hi)
            return -1;
        *out = (int)v;
        *p = s;
        return 0;
    }
    const char *const *names = fields[f].names;
    if (names && isalpha((unsigned char)*s))
        for (int i = 0; names[i]; i++)
            if (!strncasecmp(s, names[i], 3) && !isalpha((unsigned char)s[3])) {
                /* months are 1-based, days 0-based: i + lo in both */
                *out = i + fields[f].lo;
                *p = s + 3;
                return 0;
            }
    return -1;
}

/* One field into a bit set (bit v for value v). */
static int field(const char *s, int f, uint64_t *bits, bool *star)
{
    int lo = fields[f].lo, hi = fields[f].hi;
    *bits = 0;
    *star = *s == '*';
    for (;;) {
        int a = lo, b = hi;
        bool single = false;
        if (*s == '*') {
            s++;
        } else {
            if (value(&s, f, &a) != 0)
                return -1;
            b = a;
            single = true;
            if (*s == '-') {
                s++;
                if (value(&s, f, &b) != 0 || b < a)
                    return -1;
                single = false;
            }
        }
        int step = 1;
        if (*s == '/') {
            s++;
            if (!isdigit((unsigned char)*s))
                return -1;
            long v = 0;
            while (isdigit((unsigned char)*s) && v <= 1000)
                v = v * 10 + (*s++ - '0');
            if (v < 1 || v > hi)
                return -1;
            step = (int)v;
            if (single)
                b = hi; /* N/S: from N to the end, every S (cronie) */
        }
        for (int v = a; v <= b; v += step)
            *bits |= 1ull << v;
        if (*s == ',') {
            s++;
            continue;
        }
        return *s ? -1 : 0;
    }
}

int kiln__cron_parse(const char *expr, kiln__cron *c, char *why, size_t cap)
{
    static const struct {
        const char *name, *expr;
    } macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    memset(c, 0, sizeof *c);
    while (*expr == ' ' || *expr == '\t')
        expr++;
    if (*expr == '@') {
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (!strcmp(expr, macros[i].name))
                return kiln__cron_parse(macros[i].expr, c, why, cap);
        snprintf(why, cap, "unknown schedule '%s' (expected @hourly, @daily, @weekly, @monthly, "
                 "@yearly or five cron fields)", expr);
        return -1;
    }
    char copy[256];
    if (strlen(expr) >= sizeof copy) {
        snprintf(why, cap, "schedule longer than %zu characters", sizeof copy - 1);
        return -1;
    }
    memcpy(copy, expr, strlen(expr) + 1);
    uint64_t bits[5];
    bool star[5];
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save), n++) {
        if (n >= 5) {
            snprintf(why, cap, "'%s' has more than five fields (minute hour day-of-month month "
                     "day-of-week)", expr);
            return -1;
        }
        if (field(tok, n, &bits[n], &star[n]) != 0) {
            snprintf(why, cap, "field %d (%s) '%s' is not valid: expected *, N, A-B, */N or a list, "
                     "N from %d to %d%s", n + 1, fields[n].what, tok, fields[n].lo, fields[n].hi,
                     n == 3 ? " or JAN-DEC" : n == 4 ? " or SUN-SAT" : "");
            return -1;
        }
    }
    if (n != 5) {
        snprintf(why, cap, "'%s' has %d field%s; a cron schedule has five (minute hour "
                 "day-of-month month day-of-week)", expr, n, n == 1 ? "" : "s");
        return -1;
    }
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->month = (uint16_t)bits[3];
    c->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
    c->dom_star = star[2];
    c->dow_star = star[4];
    return 0;
}

/* ---- civil dates ------------------------------------------------------- */

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian; Hinnant's method). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

static int weekday(int64_t days)
{
    int w = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    return w < 0 ? w + 7 : w;
}

/* ---- POSIX TZ rules ---------------------------------------------------- */

static const char *tz_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    const char *b = s;
    while (isalpha((unsigned char)*s))
        s++;
    return s - b >= 3 ? s : NULL;
}

/* [+-]h[h][:mm[:ss]] into seconds; hours up to 167 (RFC 8536). */
static const char *tz_hms(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s))
        return NULL;
    int32_t v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i && *s != ':')
            break;
        if (i)
            s++;
        if (!isdigit((unsigned char)*s))
            return NULL;
        int32_t x = 0;
        for (int k = 0; k < 3 && isdigit((unsigned char)*s); k++)
            x = x * 10 + (*s++ - '0');
        v[i] = x;
    }
    if (v[0] > 167 || v[1] > 59 || v[2] > 59)
        return NULL;
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    return s;
}

static const char *tz_num(const char *s, int lo, int hi, int *out)
{
    if (!isdigit((unsigned char)*s))
        return NULL;
    int v = 0;
    while (isdigit((unsigned char)*s) && v <= 1000)
        v = v * 10 + (*s++ - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = v;
    return s;
}

static const char *tz_date(const char *s, char *kind, int *a, int *b, int *c, int32_t *time)
{
    if (*s == 'J') {
        *kind = 'J';
        s = tz_num(s + 1, 1, 365, a);
    } else if (*s == 'M') {
        *kind = 'M';
        s = tz_num(s + 1, 1, 12, a);
        if (s && *s == '.')
            s = tz_num(s + 1, 1, 5, b);
        else
            s = NULL;
        if (s && *s == '.')
            s = tz_num(s + 1, 0, 6, c);
        else
            s = NULL;
    } else {
        *kind = 'D';
        s = tz_num(s, 0, 365, a);
    }
    *time = 7200;
    if (s && *s == '/')
        s = tz_hms(s + 1, time);
    return s;
}

int kiln__tzrule_parse(const char *s, kiln__tzrule *r)
{
    memset(r, 0, sizeof *r);
    int32_t off;
    if (!(s = tz_name(s)) || !(s = tz_hms(s, &off)))
        return -1;
    r->std_off = -off; /* POSIX counts west of Greenwich */
    if (!*s)
        return 0;
    if (!(s = tz_name(s)))
        return -1;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = tz_hms(s, &off)))
            return -1;
        r->dst_off = -off;
    }
    if (!*s) { /* no rule: the US's, as glibc does */
        r->start.kind = r->end.kind = 'M';
        r->start.a = 3, r->start.b = 2, r->start.c = 0, r->start.time = 7200;
        r->end.a = 11, r->end.b = 1, r->end.c = 0, r->end.time = 7200;
        return 0;
    }
    if (*s != ',' ||
        !(s = tz_date(s + 1, &r->start.kind, &r->start.a, &r->start.b, &r->start.c, &r->start.time)) ||
        *s != ',' ||
        !(s = tz_date(s + 1, &r->end.kind, &r->end.a, &r->end.b, &r->end.c, &r->end.time)))
        return -1;
    return *s ? -1 : 0;
}

/* Local midnight (as seconds since the epoch of the local clock) of a
 * rule's date in year y, plus its time. */
static int64_t rule_local(int64_t y, char kind, int a, int b, int c, int32_t time)
{
    int64_t day;
    if (kind == 'J')
        day = days_from_civil(y, 1, 1) + a - 1 + (leap(y) && a >= 60);
    else if (kind == 'D')
        day = days_from_civil(y, 1, 1) + a;
    else {
        int64_t first = days_from_civil(y, a, 1);
        day = first + (c - weekday(first) + 7) % 7 + (int64_t)(b - 1) * 7;
        while (day >= first + month_days(y, a))
            day -= 7;
    }
    return day * 86400 + time;
}

static int32_t rule_offset(const kiln__tzrule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    time_t lt = (time_t)(t + r->std_off);
    struct tm tm;
    if (!gmtime_r(&lt, &tm))
        return r->std_off;
    int64_t y = (int64_t)tm.tm_year + 1900;
    int64_t s = rule_local(y, r->start.kind, r->start.a, r->start.b, r->start.c, r->start.time) - r->std_off;
    int64_t e = rule_local(y, r->end.kind, r->end.a, r->end.b, r->end.c, r->end.time) - r->dst_off;
    bool dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? r->dst_off : r->std_off;
}

/* ---- TZif -------------------------------------------------------------- */

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

static bool zone_name_ok(const char *s)
{
    if (!*s || *s == '/' || strlen(s) >= 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
            return false;
    return !strstr(s, "..") && !strstr(s, "//");
}

static int tzif_parse(kiln__tz *tz, const unsigned char *d, size_t len)
{
    if (len < 44 || memcmp(d, "TZif", 4))
        return -1;
    int tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (len < 44 || memcmp(d, "TZif", 4))
            return -1;
        uint32_t isut = (uint32_t)be(d + 20, 4), isstd = (uint32_t)be(d + 24, 4);
        uint32_t leapn = (uint32_t)be(d + 28, 4), timen = (uint32_t)be(d + 32, 4);
        uint32_t typen = (uint32_t)be(d + 36, 4), charn = (uint32_t)be(d + 40, 4);
        if (timen > 100000 || typen == 0 || typen > 256 || charn > 100000 || leapn > 100000 ||
            isut > 256 || isstd > 256)
            return -1;
        size_t body = (size_t)timen * (size_t)(tsize + 1) + typen * 6u + charn +
                      leapn * (size_t)(tsize + 4) + isstd + isut;
        if (44 + body > len)
            return -1;
        if (pass == 0 && d[4] >= '2') { /* skip the 32-bit block */
            d += 44 + body;
            len -= 44 + body;
            tsize = 8;
            continue;
        }
        const unsigned char *times = d + 44, *idx = times + (size_t)timen * tsize;
        const unsigned char *types = idx + timen;
        for (uint32_t i = 0; i < timen; i++)
            if (idx[i] >= typen)
                return -1;
        tz->n = timen;
        tz->at = calloc(timen ? timen : 1, sizeof *tz->at);
        tz->off = calloc(timen ? timen : 1, sizeof *tz->off);
        if (!tz->at || !tz->off)
            return -1;
        for (uint32_t i = 0; i < timen; i++) {
            tz->at[i] = be(times + (size_t)i * tsize, tsize);
            tz->off[i] = (int32_t)be(types + idx[i] * 6u, 4);
        }
        tz->first_off = (int32_t)be(types, 4);
        if (tsize == 8) {
            const unsigned char *foot = d + 44 + body, *end = d + len;
            if (foot < end && *foot == '\n') {
                const unsigned char *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
                if (nl && nl > foot + 1 && nl - foot < 128) {
                    char rule[128];
                    memcpy(rule, foot + 1, (size_t)(nl - foot - 1));
                    rule[nl - foot - 1] = '\0';
                    tz->has_rule = kiln__tzrule_parse(rule, &tz->rule) == 0;
                }
            }
        }
        return 0;
    }
    return -1;
}

int kiln__tz_load(kiln__tz *tz, const char *name, char *why, size_t cap)
{
    memset(tz, 0, sizeof *tz);
    if (!name || !*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
        snprintf(tz->name, sizeof tz->name, "UTC");
        return 0;
    }
    if (!zone_name_ok(name)) {
        snprintf(why, cap, "'%s' is not a time zone name (expected an IANA name such as Europe/Paris)",
                 name);
        return -1;
    }
    snprintf(tz->name, sizeof tz->name, "%s", name);
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "unknown time zone '%s' (%s: %s)", name, path, strerror(errno));
        return -1;
    }
    unsigned char *buf = malloc(1 << 20);
    size_t len = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    int rc = buf ? tzif_parse(tz, buf, len) : -1;
    free(buf);
    if (rc) {
        snprintf(why, cap, "time zone '%s': %s is not a TZif file", name, path);
        kiln__tz_free(tz);
    }
    return rc;
}

void kiln__tz_free(kiln__tz *tz)
{
    free(tz->at);
    free(tz->off);
    tz->at = NULL;
    tz->off = NULL;
    tz->n = 0;
}

int32_t kiln__tz_offset(const kiln__tz *tz, int64_t t)
{
    if (tz->n == 0)
        return tz->has_rule ? rule_offset(&tz->rule, t) : tz->first_off;
    if (t < tz->at[0])
        return tz->first_off;
    if (t >= tz->at[tz->n - 1] && tz->has_rule)
        return rule_offset(&tz->rule, t);
    size_t lo = 0, hi = tz->n; /* the last at[i] <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

/* ---- the next minute --------------------------------------------------- */

static bool day_matches(const kiln__cron *c, const struct tm *tm)
{
    bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* Whether the local minute at t was already lived through before t (the
 * clocks went back): then it ran, or did not match, the first time. */
static bool repeated(const kiln__tz *tz, int64_t t, int32_t off)
{
    int32_t before = kiln__tz_offset(tz, t - 3 * 3600);
    if (before <= off)
        return false;
    int64_t first = t - (before - off);
    return kiln__tz_offset(tz, first) == before;
}

/* From t, jump `ahead` local seconds; when the offset changes on the way,
 * land on the same local time anyway. Always moves forward. */
static int64_t jump(const kiln__tz *tz, int64_t t, int32_t off, int64_t ahead)
{
    int64_t to = t + ahead;
    int32_t o2 = kiln__tz_offset(tz, to);
    if (o2 != off && to + (off - o2) > t)
        to += off - o2;
    return to > t ? to : t + 60;
}

int64_t kiln__cron_next(const kiln__cron *c, const kiln__tz *tz, int64_t after)
{
    int64_t t = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;
    int64_t limit = t + 10 * 366 * 86400ll;
    while (t < limit) {
        int32_t off = kiln__tz_offset(tz, t);
        time_t lt = (time_t)(t + off);
        struct tm tm;
        if (!gmtime_r(&lt, &tm))
            return -1;
        int into_day = tm.tm_hour * 3600 + tm.tm_min * 60;
        if (!(c->month >> (tm.tm_mon + 1) & 1) || !day_matches(c, &tm)) {
            t = jump(tz, t, off, 86400 - into_day);
            continue;
        }
        if (!(c->hour >> tm.tm_hour & 1)) {
            t = jump(tz, t, off, 3600 - tm.tm_min * 60);
            continue;
        }
        if (!(c->minute >> tm.tm_min & 1) || repeated(tz, t, off)) {
            t += 60;
            continue;
        }
        return t;
    }
    return -1;
}
