/* SPDX-License-Identifier: MIT */
/* JSON strings from arbitrary bytes; see json_string.h. */
#include "json_string.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 1 for the bytes that are not copied as they are: controls, '"', '\\',
 * DEL, and everything from 0x80 (checked as UTF-8). */
/* clang-format off */
static const unsigned char special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* 0x70: DEL */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};
/* clang-format on */

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether any byte of X is special: >= 0x80, < 0x20, '"', '\\' or DEL
 * (the usual bit tricks; "any" is exact, which byte is not needed). */
static inline int has_special(uint64_t x)
{
    uint64_t lt20 = (x - ONES * 0x20) & ~x;
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\'), d = x ^ (ONES * 0x7F);
    uint64_t zero = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((d - ONES) & ~d);
    return ((x | lt20 | zero) & HIGHS) != 0;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

size_t kp_utf8_next(const unsigned char *s, size_t n, int *ok)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF; /* the range of the next byte (Table 3-7) */
    size_t need;
    if (c < 0x80) {
        *ok = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *ok = 0; /* 80..BF alone, C0, C1, F5..FF: never a lead byte */
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *ok = 0;
            return i;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    *ok = 1;
    return need + 1;
}

size_t kp_json_escape(char *dst, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    char *d = dst;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        /* Eight bytes at a time while none is special (a log line is
         * mostly printable ASCII), then byte by byte. */
        while (n - run >= 8) {
            uint64_t x;
            memcpy(&x, s + run, 8);
            if (has_special(x))
                break;
            run += 8;
        }
        while (run < n && !special[s[run]])
            run++;
        if (run > i) {
            memcpy(d, s + i, run - i);
            d += run - i;
            i = run;
            if (i == n)
                break;
        }
        unsigned c = s[i];
        if (c >= 0x80) {
            int ok;
            size_t len = kp_utf8_next(s + i, n - i, &ok);
            if (ok)
                memcpy(d, s + i, len);
            else
                memcpy(d, replacement, 3);
            d += ok ? len : 3;
            i += len;
            continue;
        }
        *d++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *d++ = (char)c;
            break;
        case '\b':
            *d++ = 'b';
            break;
        case '\f':
            *d++ = 'f';
            break;
        case '\n':
            *d++ = 'n';
            break;
        case '\r':
            *d++ = 'r';
            break;
        case '\t':
            *d++ = 't';
            break;
        default:
            memcpy(d, "u00", 3);
            d[3] = hex[c >> 4];
            d[4] = hex[c & 15];
            d += 5;
        }
        i++;
    }
    return (size_t)(d - dst);
}

char *kp_utf8_sanitize(const char *src, size_t n, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)src;
    /* Each replaced byte grows to at most 3. */
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    char *d = out;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            *d++ = (char)s[i++];
            continue;
        }
        int ok;
        size_t len = kp_utf8_next(s + i, n - i, &ok);
        memcpy(d, ok ? (const char *)s + i : replacement, ok ? len : 3);
        d += ok ? len : 3;
        i += len;
    }
    *d = '\0';
    if (out_len)
        *out_len = (size_t)(d - out);
    return out;
}
