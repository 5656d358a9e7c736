/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the JSON string escaper (plugins/common/json_string.c)
 * on arbitrary bytes. Whatever the input:
 *  - kp_json_escape() writes at most KP_JSON_ESCAPE_MAX(n) bytes of valid
 *    JSON string contents (no raw control character or '"', only the escapes
 *    JSON defines) that are valid UTF-8;
 *  - decoding those contents gives what an independent reference decoder
 *    gives (well-formed sequences kept, each maximal subpart of an ill-formed
 *    one replaced by U+FFFD): so valid UTF-8 comes back unchanged;
 *  - kp_utf8_sanitize() gives the same text, and is idempotent.
 * The reference below shares no code with the escaper: it decodes by bit
 * patterns and finds maximal subparts by trying completions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_string.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length a lead byte announces by its bit pattern, 0 for none. */
static size_t announced(uint8_t b)
{
    return b < 0x80             ? 1
           : (b & 0xE0) == 0xC0 ? 2
           : (b & 0xF0) == 0xE0 ? 3
           : (b & 0xF8) == 0xF0 ? 4
                                : 0;
}

/* Is S (L bytes, L = announced(S[0])) a well-formed UTF-8 character? */
static int well_formed(const uint8_t *s, size_t l)
{
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t cp = l == 1 ? s[0] : l == 2 ? s[0] & 0x1Fu : l == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    return cp >= min[l] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

/* Are the K bytes at S the start of some well-formed character? */
static int is_prefix(const uint8_t *s, size_t k)
{
    static const uint8_t second[] = {0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF};
    size_t l = announced(s[0]);
    if (!l || k > l)
        return 0;
    for (size_t c = 0; c < sizeof second; c++) {
        uint8_t t[4] = {s[0], second[c], 0x80, 0x80};
        memcpy(t, s, k);
        if (k < 2)
            t[1] = second[c];
        if (well_formed(t, l))
            return 1;
    }
    return 0;
}

static size_t reference(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = announced(s[i]);
        if (l && i + l <= n && well_formed(s + i, l)) {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
            continue;
        }
        size_t k = 1;
        while (l && k + 1 < l && i + k + 1 <= n && is_prefix(s + i, k + 1))
            k++;
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += k;
    }
    return o;
}

static int hexval(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decode JSON string contents; abort on anything JSON forbids. */
static size_t json_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == '"')
            abort();
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        if (++i >= n)
            abort();
        switch (s[i]) {
        case '"':
        case '\\':
        case '/':
            out[o++] = s[i];
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            if (n - i < 5)
                abort();
            uint32_t cp = 0;
            for (int k = 1; k <= 4; k++) {
                int h = hexval(s[i + k]);
                if (h < 0)
                    abort();
                cp = cp << 4 | (uint32_t)h;
            }
            if (cp >= 0x80) /* the escaper only escapes ASCII */
                abort();
            out[o++] = (uint8_t)cp;
            i += 4;
            break;
        }
        default:
            abort();
        }
    }
    return o;
}

static int valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = announced(s[i]);
        if (!l || i + l > n || !well_formed(s + i, l))
            return 0;
        i += l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *esc = malloc(KP_JSON_ESCAPE_MAX(size) + 1);
    uint8_t *want = malloc(3 * size + 1), *got = malloc(3 * size + 1);
    size_t w = kp_json_escape(esc, (const char *)data, size);
    if (w > KP_JSON_ESCAPE_MAX(size) || !valid_utf8((const uint8_t *)esc, w))
        abort();
    size_t nwant = reference(data, size, want);
    size_t ngot = json_decode((const uint8_t *)esc, w, got);
    if (ngot != nwant || memcmp(got, want, ngot) != 0)
        abort();
    if (valid_utf8(data, size) && (ngot != size || memcmp(got, data, size) != 0))
        abort();
    size_t ns, ns2;
    char *san = kp_utf8_sanitize((const char *)data, size, &ns);
    if (!san || ns != nwant || memcmp(san, want, ns) != 0 || san[ns] != '\0')
        abort();
    char *san2 = kp_utf8_sanitize(san, ns, &ns2);
    if (!san2 || ns2 != ns || memcmp(san2, san, ns) != 0)
        abort();
    free(san2);
    free(san);
    free(got);
    free(want);
    free(esc);
    return 0;
}
