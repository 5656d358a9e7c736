/* SPDX-License-Identifier: MIT */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

static const char std_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *kp_base64(const void *data, size_t n, unsigned flags)
{
    const char *tab = flags & KP_BASE64_URL ? url_tab : std_tab;
    const unsigned char *p = data;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
        if (i + 1 < n)
            out[k++] = tab[v >> 6 & 63];
        if (i + 2 < n)
            out[k++] = tab[v & 63];
    }
    if (!(flags & KP_BASE64_NOPAD))
        while (k % 4)
            out[k++] = '=';
    out[k] = '\0';
    return out;
}

static int value_of(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

char *kp_base64_decode(const char *in, size_t *len)
{
    size_t n = 0;
    while (in[n])
        n++;
    char *out = malloc(n / 4 * 3 + 4);
    if (!out)
        abort();
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        int v = value_of((unsigned char)*p);
        if (v < 0) {
            if (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
                continue;
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)(acc >> bits & 0xff);
        }
    }
    out[k] = '\0';
    if (len)
        *len = k;
    return out;
}
