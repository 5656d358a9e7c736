/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: kiln serve's API request parsing (serve_req.h): the
 * query string of GET /api/builds (percent-decoding, cursor, pageSize) and
 * the JSON body of POST /api/triggers/NAME:run. The first byte picks which.
 * Nothing crashes or leaks; accepted values are in range; a run request
 * names a branch, a tag or a hexadecimal commit, and substitutions K=V
 * with K in [A-Z0-9_]; a refusal says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char why[256] = "";
    if (data[0] & 1) {
        char *dec = kiln__url_decode(s, n, true);
        if (strlen(dec) > n)
            abort();
        free(dec);
        char *cur = kiln__query_get(s, n, "cursor"), *ps = kiln__query_get(s, n, "pageSize");
        char *st = kiln__query_get(s, n, "status");
        int64_t c;
        int limit;
        if (kiln__list_params(cur, ps, &c, &limit, why, sizeof why) == 0) {
            if (c < 0 || limit < 1 || limit > KILN__API_MAX_PAGE)
                abort();
        } else if (!why[0]) {
            abort();
        }
        free(cur);
        free(ps);
        free(st);
        return 0;
    }
    kiln__run_req r;
    if (kiln__run_req_parse(s, n, &r, why, sizeof why) == 0) {
        if (!r.branch && !r.tag && !r.commit)
            abort();
        if (r.branch && r.tag)
            abort();
        if (r.commit && strspn(r.commit, "0123456789abcdef") != strlen(r.commit))
            abort();
        for (size_t i = 0; i < r.n_substs; i++) {
            const char *eq = strchr(r.substs[i], '=');
            if (!eq || eq == r.substs[i] || strspn(r.substs[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                                                (size_t)(eq - r.substs[i]))
                abort();
        }
    } else if (!why[0]) {
        abort();
    }
    kiln__run_req_free(&r);
    return 0;
}
