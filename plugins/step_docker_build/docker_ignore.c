/* SPDX-License-Identifier: MIT */
#include "docker_ignore.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker_util.h"

static void add_clean(dk_ignore *ig, const char *pat)
{
    while (*pat == ' ' || *pat == '\t' || *pat == '\r')
        pat++;
    size_t n = strlen(pat);
    while (n && (pat[n - 1] == ' ' || pat[n - 1] == '\t' || pat[n - 1] == '\r'))
        n--;
    if (!n)
        return;
    bool excl = pat[0] == '!';
    if (excl) {
        pat++, n--;
        while (n && (*pat == ' ' || *pat == '\t'))
            pat++, n--;
        if (!n)
            return;
    }
    char *raw = strndup(pat, n);
    if (!raw)
        abort();
    char *clean = dk_clean_path(raw);
    free(raw);
    dk_pattern *np = realloc(ig->pats, (ig->n + 1) * sizeof *np);
    if (!np)
        abort();
    ig->pats = np;
    dk_pattern *p = &ig->pats[ig->n++];
    memset(p, 0, sizeof *p);
    p->text = clean;
    p->exclusion = excl;
    ig->has_exclusions = ig->has_exclusions || excl;
    for (const char *s = clean; *s;) {
        size_t en = strcspn(s, "/");
        char **ne = realloc(p->elems, (p->n + 1) * sizeof *ne);
        if (!ne)
            abort();
        p->elems = ne;
        p->elems[p->n] = strndup(s, en);
        if (!p->elems[p->n++])
            abort();
        s += en;
        while (*s == '/')
            s++;
    }
}

void dk_ignore_add(dk_ignore *ig, const char *line)
{
    if (line[0] == '#')
        return;
    add_clean(ig, line);
}

void dk_ignore_parse(dk_ignore *ig, const char *text, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        char *line = strndup(text + i, n);
        if (!line)
            abort();
        dk_ignore_add(ig, line);
        free(line);
        i += n + 1;
    }
}

int dk_ignore_load(dk_ignore *ig, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.dockerignore", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    dk_buf b = {0};
    char tmp[8192];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0)
        dk_buf_add(&b, tmp, (size_t)r);
    int err = r < 0 ? -errno : 0;
    close(fd);
    if (!err)
        dk_ignore_parse(ig, b.s ? b.s : "", b.len);
    dk_buf_free(&b);
    return err;
}

/* elements of the pattern [pi..] against elements of the path [si..] */
static bool match_elems(char *const *pe, size_t pn, char *const *se, size_t sn)
{
    if (pn == 0)
        return sn == 0;
    if (strcmp(pe[0], "**") == 0) {
        for (size_t k = 0; k <= sn; k++)
            if (match_elems(pe + 1, pn - 1, se + k, sn - k))
                return true;
        return false;
    }
    if (sn == 0)
        return false;
    /* "**" inside an element behaves as '*' there */
    if (fnmatch(pe[0], se[0], 0) != 0)
        return false;
    return match_elems(pe + 1, pn - 1, se + 1, sn - 1);
}

static bool pattern_matches(const dk_pattern *p, char *const *se, size_t sn)
{
    if (p->n == 1 && strcmp(p->elems[0], ".") == 0)
        return true; /* "." or "/" matches everything */
    return match_elems(p->elems, p->n, se, sn);
}

bool dk_ignore_excluded(const dk_ignore *ig, const char *rel)
{
    if (!ig->n)
        return false;
    /* split rel once */
    char *copy = strdup(rel);
    if (!copy)
        abort();
    char *elems[256];
    size_t n = 0;
    for (char *s = copy; *s && n < 256;) {
        elems[n++] = s;
        char *sl = strchr(s, '/');
        if (!sl)
            break;
        *sl = '\0';
        s = sl + 1;
    }
    bool matched = false;
    for (size_t i = 0; i < ig->n; i++) {
        const dk_pattern *p = &ig->pats[i];
        if (p->exclusion != matched)
            continue; /* cannot change the outcome */
        bool m = pattern_matches(p, elems, n);
        for (size_t k = 1; !m && k < n; k++)
            m = pattern_matches(p, elems, k); /* a parent directory */
        if (m)
            matched = !p->exclusion;
    }
    free(copy);
    return matched;
}

void dk_ignore_free(dk_ignore *ig)
{
    for (size_t i = 0; i < ig->n; i++) {
        for (size_t k = 0; k < ig->pats[i].n; k++)
            free(ig->pats[i].elems[k]);
        free(ig->pats[i].elems);
        free(ig->pats[i].text);
    }
    free(ig->pats);
    memset(ig, 0, sizeof *ig);
}
