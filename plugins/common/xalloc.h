/* SPDX-License-Identifier: MIT */
/*
 * Allocation that cannot fail, for the plugins: on out-of-memory they
 * abort(), as the plugins did each with its own static copy. Compiled into
 * each plugin that lists plugins/common/xalloc.c, so nothing crosses the
 * plugin boundary.
 */
#ifndef KILN_PLUGINS_XALLOC_H
#define KILN_PLUGINS_XALLOC_H

#include <stddef.h>

/* A copy of S; NULL is copied as "". */
char *kp_xstrdup(const char *s);

/* A copy of S; NULL stays NULL. */
char *kp_xstrdup0(const char *s);

/* realloc() that cannot fail (N == 0 may return NULL). */
void *kp_xrealloc(void *p, size_t n);

/* A copy of the N bytes at S, NUL-terminated. */
char *kp_xstrndup(const char *s, size_t n);

/* printf into a new string. */
char *kp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
