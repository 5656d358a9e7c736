/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the kubernetes executor's reader of kiln-pod-helper
 * records (plugins/executor_kubernetes/kube_frame.c): every line of the
 * input is parsed. Nothing may crash or read out of bounds, a record's
 * payload never exceeds its line, and a record re-encoded as the helper
 * writes it parses back to the same thing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/executor_kubernetes/kube_frame.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t encode(const kube_frame *f, const char *p, char *line)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = (size_t)sprintf(line, "@kf1 %llu %c %zu ", (unsigned long long)f->seq, f->type, f->len);
    for (size_t i = 0; i < f->len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            line[k++] = '\\';
            line[k++] = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            line[k++] = '\\';
            line[k++] = 'x';
            line[k++] = hex[c >> 4];
            line[k++] = hex[c & 15];
        } else {
            line[k++] = (char)c;
        }
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *end = s + size;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        char *line = malloc(n + 1), *out = malloc(n + 1);
        memcpy(line, s, n); /* its own allocation: ASan sees any read past it */
        kube_frame f;
        const char *why = NULL;
        int r = kube_frame_parse(line, n, &f, out, &why);
        if (r < 0 && !why)
            abort();
        if (r == 1) {
            if (f.len > n || f.seq == 0 || !strchr("oefx", f.type))
                abort();
            char *again = malloc(64 + 4 * f.len), *out2 = malloc(64 + 4 * f.len);
            size_t k = encode(&f, out, again);
            kube_frame g;
            if (kube_frame_parse(again, k, &g, out2, &why) != 1 || g.seq != f.seq || g.type != f.type ||
                g.len != f.len || g.status != f.status || memcmp(out, out2, f.len))
                abort();
            free(again);
            free(out2);
        }
        free(line);
        free(out);
        s += n + (nl != NULL);
    }
    return 0;
}
