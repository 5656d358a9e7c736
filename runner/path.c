/* SPDX-License-Identifier: MIT */
#include "path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int kiln__path_clean(const char *path, char *out, size_t cap)
{
    if (cap < 2)
        return -1;
    size_t n = 0;
    out[n++] = '/';
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 1 && out[n - 1] != '/')
                n--;
            if (n > 1)
                n--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (n + len + 2 > cap)
                return -1;
            if (n > 1)
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p = e;
    }
    out[n] = '\0';
    return 0;
}

bool kiln__path_under(const char *path, const char *dir)
{
    if (!strcmp(dir, "/"))
        return true;
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int kiln__path_depth(const char *path)
{
    int d = 0;
    for (const char *p = path; *p; p++)
        d += *p == '/';
    return strcmp(path, "/") ? d : 0;
}

int kiln__mkdir_p(const char *path)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", path) >= sizeof tmp)
        return -ENAMETOOLONG;
    for (char *q = tmp + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return -errno;
        *q = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}
