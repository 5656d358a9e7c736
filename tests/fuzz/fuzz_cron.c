/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: cron schedules and POSIX TZ rules (cron.h). The input
 * is "EXPR\nTZRULE\nSECONDS". Whatever it is, nothing crashes, and when
 * EXPR parses, the next run is a whole minute after SECONDS whose local
 * time (under TZRULE when it parses, else UTC) matches every field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 512)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *rule = strchr(s, '\n');
    char *secs = NULL;
    if (rule) {
        *rule++ = '\0';
        secs = strchr(rule, '\n');
        if (secs)
            *secs++ = '\0';
    }
    kiln__tz tz;
    memset(&tz, 0, sizeof tz);
    if (rule && kiln__tzrule_parse(rule, &tz.rule) == 0)
        tz.has_rule = true;
    kiln__cron c;
    char why[256];
    if (kiln__cron_parse(s, &c, why, sizeof why) == 0) {
        /* Between 1900 and 2200: gmtime's range and then some. */
        int64_t after = secs ? strtoll(secs, NULL, 10) % (int64_t)7e9 : 0;
        if (after < -2208988800ll)
            after = -2208988800ll;
        int64_t t = kiln__cron_next(&c, &tz, after);
        if (t != -1) {
            if (t <= after || t % 60 != 0)
                abort();
            time_t lt = (time_t)(t + kiln__tz_offset(&tz, t));
            struct tm tm;
            gmtime_r(&lt, &tm);
            bool dom = c.dom >> tm.tm_mday & 1, dow = c.dow >> tm.tm_wday & 1;
            bool day = c.dom_star || c.dow_star ? dom && dow : dom || dow;
            if (!(c.minute >> tm.tm_min & 1) || !(c.hour >> tm.tm_hour & 1) ||
                !(c.month >> (tm.tm_mon + 1) & 1) || !day)
                abort();
        }
    } else if (!why[0]) {
        abort(); /* a refusal always says why */
    }
    free(s);
    return 0;
}
