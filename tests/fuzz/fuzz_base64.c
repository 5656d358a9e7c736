/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: plugins/common/base64.c. Any input either decodes or
 * is refused (no crash, no read past it); whatever is encoded, in either
 * alphabet, padded or not, decodes back to the same bytes (the url alphabet after mapping
 * '-' and '_' back).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/common/base64.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    size_t n = 0;
    char *d = kp_base64_decode(s, &n);
    if (d && n > size)
        abort();
    free(d);
    free(s);

    for (unsigned flags = 0; flags < 4; flags++) {
        char *e = kp_base64(data, size, flags);
        size_t want = flags & KP_BASE64_NOPAD ? (size * 4 + 2) / 3 : (size + 2) / 3 * 4;
        if (strlen(e) != want)
            abort();
        for (char *p = e; *p; p++)
            if (flags & KP_BASE64_URL && (*p == '-' || *p == '_'))
                *p = *p == '-' ? '+' : '/';
        size_t m = 0;
        char *back = kp_base64_decode(e, &m);
        if (!back || m != size || memcmp(back, data, size))
            abort();
        free(back);
        free(e);
    }
    return 0;
}
