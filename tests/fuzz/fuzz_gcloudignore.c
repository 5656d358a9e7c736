/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: fill=upload's ignore rules (plugins/common/
 * gcloudignore.c). The input is an ignore file, then a NUL, then paths one
 * a line. Whatever the input:
 *  - parsing ends, either with rules or with an error that starts with
 *    "fuzz:LINE:COL: " (LINE within the file's lines, COL at least 1);
 *  - parsing the same text again gives the same rules;
 *  - for each path, matching ends, and a path its rules exclude is also
 *    excluded with its parents looked at (gi_path_excluded), and a path
 *    under an excluded directory is excluded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcloudignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(data, '\0', size);
    size_t tlen = nul ? (size_t)(nul - text) : size;
    gi_rules g = {0}, h = {0};
    char err[1024] = "", err2[1024] = "";
    int rc = gi_parse(&g, NULL, "fuzz", text, tlen, err, sizeof err);
    int rc2 = gi_parse(&h, NULL, "fuzz", text, tlen, err2, sizeof err2);
    if (rc != rc2 || strcmp(err, err2) != 0 || g.n != h.n)
        abort();
    for (size_t i = 0; i < g.n; i++)
        if (strcmp(g.r[i].pat, h.r[i].pat) != 0 || g.r[i].negate != h.r[i].negate ||
            g.r[i].dir_only != h.r[i].dir_only || g.r[i].anchored != h.r[i].anchored)
            abort();
    gi_free(&h);
    if (rc) {
        size_t lines = 1;
        for (size_t i = 0; i < tlen; i++)
            lines += text[i] == '\n';
        unsigned long line = 0, col = 0;
        if (sscanf(err, "fuzz:%lu:%lu: ", &line, &col) != 2 || line < 1 || line > lines || col < 1)
            abort();
        gi_free(&g);
        return 0;
    }
    const char *p = nul ? nul + 1 : text + size, *end = text + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *path = malloc(n + 1);
        if (!path)
            abort();
        memcpy(path, p, n);
        path[n] = '\0';
        p += n + 1;
        if (!*path || strlen(path) != n) {
            free(path);
            continue;
        }
        for (int dir = 0; dir < 2; dir++) {
            bool own = gi_excluded(&g, path, dir);
            bool whole = gi_path_excluded(&g, path, dir);
            if (own && !whole)
                abort();
            char *child = malloc(n + 3);
            if (!child)
                abort();
            snprintf(child, n + 3, "%s/c", path);
            if (dir && whole && !gi_path_excluded(&g, child, false))
                abort();
            free(child);
        }
        free(path);
    }
    gi_free(&g);
    return 0;
}
