/* SPDX-License-Identifier: MIT */
/* Error names and texts from the one table in kiln/errors.h; small shared
 * helpers for time. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "internal.h"

const char *kiln__strerror(int err)
{
    switch (err) {
#define XX(name, val, msg)                                                                         \
    case val:                                                                                      \
        return msg;
        KILN_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "success";
    }
    return "unknown error";
}

const char *kiln__err_name(int err)
{
    switch (err) {
#define XX(name, val, msg)                                                                         \
    case val:                                                                                      \
        return "KILN_" #name;
        KILN_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "KILN_OK";
    }
    return "KILN_UNKNOWN";
}

int kiln__strcmp_p(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int64_t kiln__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void kiln__format_time(int64_t us, char *out, size_t cap)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%06dZ", base, (int)(us % 1000000));
}

void kiln__format_duration(int64_t us, char *out, size_t cap)
{
    if (us < 0)
        us = 0;
    if (us < 60 * 1000000LL)
        snprintf(out, cap, "%.2fs", (double)us / 1e6);
    else if (us < 3600 * 1000000LL)
        snprintf(out, cap, "%dm%02ds", (int)(us / 60000000), (int)(us / 1000000 % 60));
    else
        snprintf(out, cap, "%dh%02dm", (int)(us / 3600000000LL), (int)(us / 60000000 % 60));
}
