/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the secret masker. The input is split into secrets and a
 * text, and the text into pieces at fuzzer-chosen points. Whatever the
 * split, no secret may reach the output, and the streamed result must equal
 * masking the whole text at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 4096)
        return 0;
    /* Layout: n_secrets (1..4) | secrets separated by 0x00 | 0x01 | text,
     * with the first byte of the text choosing piece sizes. */
    const char *p = (const char *)data;
    size_t n = (size_t)(data[0] % 4) + 1;
    size_t pos = 1;
    kiln__masker *m = kiln__masker_create();
    char **secrets = calloc(n, sizeof *secrets);
    for (size_t i = 0; i < n && pos < size; i++) {
        size_t start = pos;
        while (pos < size && data[pos] != 0 && data[pos] != 1)
            pos++;
        secrets[i] = strndup(p + start, pos - start);
        /* Secrets with '*' or newlines would make the property below lie. */
        if (strchr(secrets[i], '*') || strchr(secrets[i], '\n') || strchr(secrets[i], '\r'))
            secrets[i][0] = '\0';
        kiln__masker_add(m, secrets[i]);
        if (pos < size && data[pos] == 0)
            pos++;
        else
            break;
    }
    while (pos < size && data[pos] != 1)
        pos++;
    if (pos >= size)
        goto out;
    pos++;
    const char *text = p + pos;
    size_t len = size - pos;

    kiln__buf whole = KILN__BUF_INIT;
    kiln__mask(m, text, len, &whole);

    kiln__mask_stream st;
    kiln__mask_stream_init(&st);
    kiln__buf out = KILN__BUF_INIT;
    size_t off = 0, step = (size_t)(data[0] >> 2) % 7 + 1;
    while (off < len) {
        size_t k = len - off < step ? len - off : step;
        kiln__mask_feed(m, &st, text + off, k, false, &out);
        off += k;
        step = step % 5 + 1;
    }
    kiln__mask_feed(m, &st, "", 0, true, &out);
    if (out.len != whole.len || memcmp(out.buf, whole.buf, out.len) != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        if (secrets[i] && strlen(secrets[i]) >= 3 && memmem(out.buf, out.len, secrets[i], strlen(secrets[i])))
            abort();
    kiln__buf_release(&out);
    kiln__buf_release(&whole);
    kiln__mask_stream_release(&st);
out:
    for (size_t i = 0; i < n; i++)
        free(secrets[i]);
    free(secrets);
    kiln__masker_destroy(m);
    return 0;
}
