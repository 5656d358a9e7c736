/* SPDX-License-Identifier: MIT */
/* kiln__buf and the aborting allocators; contracts in buf.h. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char kiln__buf_empty[1];

static void die_oom(size_t n)
{
    fprintf(stderr, "kiln: fatal: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *kiln__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom(n);
    return p;
}

void *kiln__xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die_oom(n * size);
    return p;
}

void *kiln__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_oom(n);
    return q;
}

char *kiln__xstrdup(const char *s)
{
    return kiln__xstrndup(s, strlen(s));
}

char *kiln__xstrndup(const char *s, size_t n)
{
    char *p = kiln__xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *kiln__xasprintf(const char *fmt, ...)
{
    kiln__buf b = KILN__BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(&b, fmt, ap);
    va_end(ap);
    return kiln__buf_detach(&b);
}

void kiln__buf_init(kiln__buf *b)
{
    b->buf = kiln__buf_empty;
    b->len = 0;
    b->alloc = 0;
}

void kiln__buf_release(kiln__buf *b)
{
    if (b->alloc)
        free(b->buf);
    kiln__buf_init(b);
}

void kiln__buf_reset(kiln__buf *b)
{
    b->len = 0;
    if (b->alloc)
        b->buf[0] = '\0';
}

void kiln__buf_grow(kiln__buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need)
        n = n * 2;
    if (!b->alloc) {
        b->buf = kiln__xmalloc(n);
        b->buf[0] = '\0';
    } else {
        b->buf = kiln__xrealloc(b->buf, n);
    }
    b->alloc = n;
}

void kiln__buf_add(kiln__buf *b, const void *data, size_t len)
{
    if (!len)
        return;
    kiln__buf_grow(b, len);
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    b->buf[b->len] = '\0';
}

void kiln__buf_adds(kiln__buf *b, const char *s)
{
    kiln__buf_add(b, s, strlen(s));
}

void kiln__buf_addch(kiln__buf *b, char c)
{
    kiln__buf_grow(b, 1);
    b->buf[b->len++] = c;
    b->buf[b->len] = '\0';
}

void kiln__buf_vaddf(kiln__buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n <= 0)
        return;
    kiln__buf_grow(b, (size_t)n);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void kiln__buf_addf(kiln__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(b, fmt, ap);
    va_end(ap);
}

char *kiln__buf_detach(kiln__buf *b)
{
    char *s = b->alloc ? b->buf : kiln__xstrdup("");
    kiln__buf_init(b);
    return s;
}
