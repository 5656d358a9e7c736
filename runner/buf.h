/* SPDX-License-Identifier: MIT */
/*
 * kiln__buf: a growable byte buffer (after git's strbuf).
 *
 * Invariants: b->buf is never NULL and b->buf[b->len] is always '\0', so a
 * buffer can always be read as a C string. A buffer that was only initialized
 * points at a shared empty string and owns nothing. Memory exhaustion aborts
 * (kiln__xmalloc): kiln is a command-line tool and has nothing better to do.
 */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct kiln__buf {
    char *buf;
    size_t len;
    size_t alloc;
} kiln__buf;

extern char kiln__buf_empty[];
#define KILN__BUF_INIT {kiln__buf_empty, 0, 0}

void kiln__buf_init(kiln__buf *b);
/* Free the memory and re-initialize. */
void kiln__buf_release(kiln__buf *b);
/* Empty the buffer, keeping its memory. */
void kiln__buf_reset(kiln__buf *b);
/* Make room for extra more bytes (plus the NUL). */
void kiln__buf_grow(kiln__buf *b, size_t extra);
void kiln__buf_add(kiln__buf *b, const void *data, size_t len);
void kiln__buf_adds(kiln__buf *b, const char *s);
void kiln__buf_addch(kiln__buf *b, char c);
void kiln__buf_addf(kiln__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kiln__buf_vaddf(kiln__buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hand the string to the caller, who frees it with free(); the buffer is
 * re-initialized. Never returns NULL. */
char *kiln__buf_detach(kiln__buf *b);

/* Allocation that aborts on failure. */
void *kiln__xmalloc(size_t n);
void *kiln__xcalloc(size_t n, size_t size);
void *kiln__xrealloc(void *p, size_t n);
char *kiln__xstrdup(const char *s);
char *kiln__xstrndup(const char *s, size_t n);
char *kiln__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* KILN_BUF_H */
