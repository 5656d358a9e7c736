/* SPDX-License-Identifier: MIT */
/*
 * Allocation that cannot fail, for the plugins: on out-of-memory they
 * abort(), as the plugins did each with its own static copy. Compiled into
 * each plugin that lists plugins/common/xalloc.c, so nothing crosses the
 * plugin boundary.
 */
#ifndef KILN_PLUGINS_XALLOC_H
#define KILN_PLUGINS_XALLOC_H

/* A copy of S; NULL is copied as "". */
char *kp_xstrdup(const char *s);

/* A copy of S; NULL stays NULL. */
char *kp_xstrdup0(const char *s);

/* printf into a new string. */
char *kp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
