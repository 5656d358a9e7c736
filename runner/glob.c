/* SPDX-License-Identifier: MIT */
/* Globs with "**"; see glob.h. */
#include "glob.h"

#include <string.h>

/* [...] at p (after '['), against c. Sets *end past the ']'. A class that
 * is not closed matches nothing. */
static bool class_match(const char *p, char c, const char **end)
{
    bool neg = false, hit = false;
    if (*p == '^' || *p == '!') {
        neg = true;
        p++;
    }
    bool first = true;
    while (*p && (*p != ']' || first)) {
        first = false;
        char lo = *p == '\\' && p[1] ? *++p : *p;
        p++;
        char hi = lo;
        if (*p == '-' && p[1] && p[1] != ']') {
            p++;
            hi = *p == '\\' && p[1] ? *++p : *p;
            p++;
        }
        if (lo <= c && c <= hi)
            hit = true;
    }
    if (*p != ']') {
        *end = NULL;
        return false;
    }
    *end = p + 1;
    return c != '/' && hit != neg;
}

static bool match(const char *p, const char *s)
{
    while (*p) {
        if (p[0] == '*' && p[1] == '*') {
            while (*p == '*')
                p++;
            if (*p == '/') {
                /* zero directories, or any prefix ending in '/' */
                if (match(p + 1, s))
                    return true;
                for (const char *q = s; *q; q++)
                    if (*q == '/' && match(p + 1, q + 1))
                        return true;
                return false;
            }
            for (const char *q = s;; q++) {
                if (match(p, q))
                    return true;
                if (!*q)
                    return false;
            }
        }
        switch (*p) {
        case '*':
            p++;
            for (const char *q = s;; q++) {
                if (match(p, q))
                    return true;
                if (!*q || *q == '/')
                    return false;
            }
        case '?':
            if (!*s || *s == '/')
                return false;
            p++;
            s++;
            break;
        case '[': {
            const char *end;
            if (!*s || !class_match(p + 1, *s, &end))
                return false;
            p = end;
            s++;
            break;
        }
        case '\\':
            if (p[1])
                p++;
            /* fall through */
        default:
            if (*p != *s)
                return false;
            p++;
            s++;
        }
    }
    return *s == '\0';
}

bool kiln__glob_match(const char *pattern, const char *path)
{
    return match(pattern, path);
}
