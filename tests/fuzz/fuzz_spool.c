/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the spool file parser (runner/spool.c), which reads
 * what a killed or cut-off kiln left on disk. Whatever the bytes, it must
 * not crash; a refusal must say "NAME: offset N: ..." with N inside the
 * input; an accepted file must come out the same when written again the
 * way kiln__spool_write() writes it (url, sink, headers, needs, length,
 * body).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const kiln__spooled *a, const kiln__spooled *b)
{
    if (strcmp(a->url, b->url) || a->n_headers != b->n_headers || a->n_needs != b->n_needs ||
        !a->sink != !b->sink || (a->sink && strcmp(a->sink, b->sink)) || a->body_len != b->body_len ||
        memcmp(a->body, b->body, a->body_len))
        abort();
    for (size_t i = 0; i < a->n_headers; i++)
        if (strcmp(a->headers[i], b->headers[i]))
            abort();
    for (size_t i = 0; i < a->n_needs; i++)
        if (strcmp(a->needs[i], b->needs[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    kiln__spooled s;
    char *err = NULL;
    int rc = kiln__spool_parse("f.req", (const char *)data, size, &s, &err);
    if (rc) {
        unsigned long long off;
        if (!err || sscanf(err, "f.req: offset %llu: ", &off) != 1 || off > size || s.url || s.body)
            abort();
        free(err);
        return 0;
    }
    if (err || !s.url || !*s.url || !s.body || s.body_len > size || s.body[s.body_len] != '\0')
        abort();
    kiln__buf w = KILN__BUF_INIT;
    kiln__buf_addf(&w, "KILNSPOOL 1\nurl %s\n", s.url);
    if (s.sink)
        kiln__buf_addf(&w, "sink %s\n", s.sink);
    for (size_t i = 0; i < s.n_headers; i++) {
        if (!strchr(s.headers[i], ':') || strpbrk(s.headers[i], "\r\n"))
            abort();
        kiln__buf_addf(&w, "header %s\n", s.headers[i]);
    }
    for (size_t i = 0; i < s.n_needs; i++) {
        if (strpbrk(s.needs[i], ":\r\n"))
            abort();
        kiln__buf_addf(&w, "needs %s\n", s.needs[i]);
    }
    kiln__buf_addf(&w, "length %zu\n\n", s.body_len);
    kiln__buf_add(&w, s.body, s.body_len);
    kiln__spooled t;
    if (kiln__spool_parse("g.req", w.buf, w.len, &t, &err) != 0)
        abort();
    same(&s, &t);
    /* Cut short by one byte, the rewritten file must be refused. */
    kiln__spooled u;
    if (kiln__spool_parse("h.req", w.buf, w.len - 1, &u, &err) == 0)
        abort();
    free(err);
    kiln__spooled_release(&t);
    kiln__spooled_release(&s);
    kiln__buf_release(&w);
    return 0;
}
