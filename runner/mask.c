/* SPDX-License-Identifier: MIT */
/* Secret masking; see mask.h. */
#include "mask.h"

#include <stdlib.h>
#include <string.h>

struct kiln__masker {
    char **secrets;
    size_t *lens;
    size_t n;
    size_t max_len;
};

kiln__masker *kiln__masker_create(void)
{
    return kiln__xcalloc(1, sizeof(kiln__masker));
}

void kiln__masker_destroy(kiln__masker *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->secrets[i]);
    free(m->secrets);
    free(m->lens);
    free(m);
}

static void add_one(kiln__masker *m, const char *v, size_t len)
{
    while (len && (v[len - 1] == '\r'))
        len--;
    if (len < 3)
        return;
    for (size_t i = 0; i < m->n; i++)
        if (m->lens[i] == len && memcmp(m->secrets[i], v, len) == 0)
            return;
    m->secrets = kiln__xrealloc(m->secrets, (m->n + 1) * sizeof *m->secrets);
    m->lens = kiln__xrealloc(m->lens, (m->n + 1) * sizeof *m->lens);
    m->secrets[m->n] = kiln__xstrndup(v, len);
    m->lens[m->n] = len;
    m->n++;
    if (len > m->max_len)
        m->max_len = len;
}

void kiln__masker_add(kiln__masker *m, const char *value)
{
    const char *p = value;
    for (;;) {
        const char *nl = strchr(p, '\n');
        add_one(m, p, nl ? (size_t)(nl - p) : strlen(p));
        if (!nl)
            break;
        p = nl + 1;
    }
}

bool kiln__masker_empty(const kiln__masker *m)
{
    return !m || m->n == 0;
}

/* The longest secret starting at p (within len), or 0. */
static size_t match_at(const kiln__masker *m, const char *p, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->lens[i] <= len && m->lens[i] > best && memcmp(p, m->secrets[i], m->lens[i]) == 0)
            best = m->lens[i];
    return best;
}

void kiln__mask(const kiln__masker *m, const char *text, size_t len, kiln__buf *out)
{
    if (kiln__masker_empty(m)) {
        kiln__buf_add(out, text, len);
        return;
    }
    size_t i = 0, copied = 0;
    while (i < len) {
        size_t hit = match_at(m, text + i, len - i);
        if (hit) {
            kiln__buf_add(out, text + copied, i - copied);
            kiln__buf_adds(out, KILN__MASK_TEXT);
            i += hit;
            copied = i;
        } else {
            i++;
        }
    }
    kiln__buf_add(out, text + copied, len - copied);
}

/* Length of the longest suffix of text that is a proper prefix of a secret. */
static size_t risky_tail(const kiln__masker *m, const char *text, size_t len)
{
    size_t limit = m->max_len ? m->max_len - 1 : 0;
    if (limit > len)
        limit = len;
    for (size_t k = limit; k > 0; k--) {
        const char *suffix = text + len - k;
        for (size_t i = 0; i < m->n; i++)
            if (m->lens[i] > k && memcmp(m->secrets[i], suffix, k) == 0)
                return k;
    }
    return 0;
}

void kiln__mask_stream_init(kiln__mask_stream *s)
{
    kiln__buf_init(&s->held);
}

void kiln__mask_stream_release(kiln__mask_stream *s)
{
    kiln__buf_release(&s->held);
}

void kiln__mask_feed(const kiln__masker *m, kiln__mask_stream *s, const char *text, size_t len,
                     bool final, kiln__buf *out)
{
    if (kiln__masker_empty(m)) {
        kiln__buf_add(out, s->held.buf, s->held.len);
        kiln__buf_reset(&s->held);
        kiln__buf_add(out, text, len);
        return;
    }
    kiln__buf_add(&s->held, text, len);
    if (final) {
        kiln__mask(m, s->held.buf, s->held.len, out);
        kiln__buf_reset(&s->held);
        return;
    }
    /* Mask what is certain; keep a tail that could still grow into a secret.
     * A secret that starts before the tail and runs into it is found by
     * kiln__mask only if whole, so the cut must not split a match: masking
     * the whole held text first and cutting the masked result would show a
     * half secret. Instead find the cut in the raw text and move it back
     * before any match that crosses it. */
    size_t keep = risky_tail(m, s->held.buf, s->held.len);
    size_t cut = s->held.len - keep;
    for (size_t i = 0; i < cut; i++) {
        size_t hit = match_at(m, s->held.buf + i, s->held.len - i);
        if (hit) {
            if (i + hit > cut)
                cut = i + hit; /* the match is whole: emit it masked */
            i += hit - 1;
        }
    }
    kiln__mask(m, s->held.buf, cut, out);
    memmove(s->held.buf, s->held.buf + cut, s->held.len - cut);
    s->held.len -= cut;
    s->held.buf[s->held.len] = '\0';
}
