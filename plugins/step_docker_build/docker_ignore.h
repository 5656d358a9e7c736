/* SPDX-License-Identifier: MIT */
/*
 * .dockerignore as Docker reads it (moby/patternmatcher): one pattern a line,
 * '#' at the start of a line is a comment, blanks around a pattern are
 * dropped, a leading '!' re-includes, patterns are cleaned like Go's
 * filepath.Clean and a leading '/' is dropped. '*' and '?' do not cross '/',
 * "**" as a whole path element matches any number of elements, [...] and '\'
 * escapes as fnmatch. A path is excluded when the last pattern that matches
 * it or one of its parent directories is not a '!' pattern.
 */
#ifndef DK_IGNORE_H
#define DK_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dk_pattern {
    char *text;   /* cleaned, without '!' */
    char **elems; /* split on '/' */
    size_t n;
    bool exclusion; /* a '!' pattern */
} dk_pattern;

typedef struct dk_ignore {
    dk_pattern *pats;
    size_t n;
    bool has_exclusions; /* any '!' pattern: excluded directories must still be walked */
} dk_ignore;

/* Parse the text of a .dockerignore. Never fails. */
void dk_ignore_parse(dk_ignore *ig, const char *text, size_t len);
/* Read DIR/.dockerignore; a missing file is no patterns. 0, or -errno. */
int dk_ignore_load(dk_ignore *ig, const char *dir);
/* Add one pattern line (as in the file). */
void dk_ignore_add(dk_ignore *ig, const char *line);
/* Is the context-relative path (cleaned, '/'-separated) excluded? */
bool dk_ignore_excluded(const dk_ignore *ig, const char *rel);
void dk_ignore_free(dk_ignore *ig);

#endif
