/* SPDX-License-Identifier: MIT */
#include "kube_frame.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A decimal number of at most 19 digits at *p, followed by a space. */
static int number(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    size_t k = 0;
    while (s + k < end && s[k] >= '0' && s[k] <= '9' && k < 19)
        x = x * 10 + (uint64_t)(s[k++] - '0');
    if (!k || s + k >= end || s[k] != ' ' || (k > 1 && s[0] == '0'))
        return -1;
    *v = x;
    *p = s + k + 1;
    return 0;
}

static int bad(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

int kube_frame_parse(const char *line, size_t n, kube_frame *f, char *out, const char **why)
{
    size_t ml = sizeof KUBE_FRAME_MAGIC - 1;
    if (n < ml || memcmp(line, KUBE_FRAME_MAGIC, ml))
        return 0;
    const char *p = line + ml, *end = line + n;
    uint64_t seq, len;
    if (number(&p, end, &seq) || seq == 0)
        return bad(why, "no sequence number");
    if (end - p < 2 || p[1] != ' ' || !p[0] || !strchr("oefx", p[0]))
        return bad(why, "no record type (o, e, f or x)");
    char type = p[0];
    p += 2;
    if (number(&p, end, &len) || len > (uint64_t)n)
        return bad(why, "no payload length");
    size_t k = 0;
    while (p < end) {
        if (k >= len)
            return bad(why, "payload longer than its length");
        char c = *p++;
        if (c != '\\') {
            out[k++] = c;
            continue;
        }
        if (p >= end)
            return bad(why, "payload cut inside an escape");
        c = *p++;
        if (c == '\\' || c == 'n' || c == 'r' || c == 't') {
            out[k++] = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : '\\';
        } else if (c == 'x' && end - p >= 2 && hexval(p[0]) >= 0 && hexval(p[1]) >= 0) {
            out[k++] = (char)(hexval(p[0]) << 4 | hexval(p[1]));
            p += 2;
        } else {
            return bad(why, "a bad escape in the payload");
        }
    }
    if (k != len)
        return bad(why, "payload shorter than its length (cut short)");
    f->seq = seq;
    f->type = type;
    f->len = k;
    f->status = -1;
    if (type == KUBE_FRAME_EXIT) {
        int st = 0;
        if (!k || k > 3)
            return bad(why, "an exit record without a status");
        for (size_t i = 0; i < k; i++) {
            if (out[i] < '0' || out[i] > '9')
                return bad(why, "an exit record without a status");
            st = st * 10 + (out[i] - '0');
        }
        if (st > 255)
            return bad(why, "an exit status above 255");
        f->status = st;
    }
    return 1;
}
