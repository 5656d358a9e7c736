/* SPDX-License-Identifier: MIT */
#include "kedro_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *kt_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

char *kt_strndup(const char *s, size_t n)
{
    char *d = kt_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *kt_strdup(const char *s)
{
    return s ? kt_strndup(s, strlen(s)) : NULL;
}

static char *kt_vasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        abort();
    char *s = kt_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *kt_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = kt_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

void kt_strv_push(kt_strv *sv, char *owned)
{
    if (sv->n + 2 > sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof(*v));
        if (!v)
            abort();
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = owned;
    sv->v[sv->n] = NULL;
}

void kt_strv_pushf(kt_strv *sv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kt_strv_push(sv, kt_vasprintf(fmt, ap));
    va_end(ap);
}

void kt_strv_free(kt_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}
