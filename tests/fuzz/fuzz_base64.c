/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: plugins/common/base64.c. Any input either decodes or
 * is refused (no crash, no read past it); whatever is encoded, in either
 * alphabet, decodes back to the same bytes (the url alphabet after mapping
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

    for (int url = 0; url <= 1; url++) {
        char *e = kp_base64(data, size, url);
        if (strlen(e) != (size + 2) / 3 * 4)
            abort();
        for (char *p = e; *p; p++)
            if (url && (*p == '-' || *p == '_'))
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
