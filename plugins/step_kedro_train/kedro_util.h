/* SPDX-License-Identifier: MIT */
/* kedro-train: small string helpers shared by the plugin's files. */
#ifndef KEDRO_UTIL_H
#define KEDRO_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define KT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KT_PRINTF(fmt, args)
#endif

/* A growable NULL-terminated array of owned strings. */
typedef struct kt_strv {
    char **v;
    size_t n, cap;
} kt_strv;

void kt_strv_push(kt_strv *sv, char *owned);
void kt_strv_pushf(kt_strv *sv, const char *fmt, ...) KT_PRINTF(2, 3);
void kt_strv_free(kt_strv *sv);

/* malloc-or-abort wrappers: a plugin that cannot allocate a few bytes
 * cannot report anything either. */
void *kt_xmalloc(size_t n);
char *kt_strdup(const char *s);
char *kt_strndup(const char *s, size_t n);
char *kt_asprintf(const char *fmt, ...) KT_PRINTF(1, 2);

#endif /* KEDRO_UTIL_H */
