/* SPDX-License-Identifier: MIT */
/*
 * A growing byte buffer for the shipping sinks' encoders (kiln_ship_encode_cb):
 * the body is built with malloc() because the host frees it with free().
 * Memory exhaustion aborts, as everywhere in kiln.
 */
#ifndef KILN_PLUGINS_SHIP_JSON_H
#define KILN_PLUGINS_SHIP_JSON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_string.h"

typedef struct sj_buf {
    char *data;
    size_t len, cap;
} sj_buf;

static inline char *sj_reserve(sj_buf *b, size_t extra)
{
    if (b->cap - b->len < extra + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < extra + 1)
            cap *= 2;
        char *d = (char *)realloc(b->data, cap);
        if (!d)
            abort();
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

/* The buffer stays NUL-terminated (sj_reserve keeps a byte for it). */
static inline void sj_add(sj_buf *b, const char *s, size_t n)
{
    memcpy(sj_reserve(b, n), s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void sj_adds(sj_buf *b, const char *s)
{
    sj_add(b, s, strlen(s));
}

/* A JSON string, quoted, from N arbitrary bytes. */
static inline void sj_string(sj_buf *b, const char *s, size_t n)
{
    char *d = sj_reserve(b, KP_JSON_ESCAPE_MAX(n) + 2);
    d[0] = '"';
    size_t w = kp_json_escape(d + 1, s, n);
    d[w + 1] = '"';
    b->len += w + 2;
}

static inline void sj_strz(sj_buf *b, const char *s)
{
    sj_string(b, s, strlen(s));
}

/* Digits without snprintf(): an encoder writes a few numbers per record. */
static inline void sj_u64(sj_buf *b, uint64_t v)
{
    char t[24];
    char *p = t + sizeof t;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sj_add(b, p, (size_t)(t + sizeof t - p));
}

#endif /* KILN_PLUGINS_SHIP_JSON_H */
