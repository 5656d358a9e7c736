/* SPDX-License-Identifier: MIT */
/*
 * File globs as Cloud Build's includedFiles / ignoredFiles use them: Go's
 * filepath.Match extended with "**".
 *   *      any run of characters except '/'
 *   ?      one character except '/'
 *   [...]  a class: ranges a-z, negated with ^ or !; never matches '/'
 *   \x     x itself
 *   **     any run of characters, '/' included; "**" followed by '/' also
 *          matches no directory at all, so "**" then "/" then "*.md" matches README.md
 * The whole path must match. Paths are as git prints them: relative, '/'.
 */
#ifndef KILN_GLOB_H
#define KILN_GLOB_H

#include <stdbool.h>

bool kiln__glob_match(const char *pattern, const char *path);

#endif /* KILN_GLOB_H */
