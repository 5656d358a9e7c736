/* SPDX-License-Identifier: MIT */
/* kiln serve's API requests without HTTP around them (serve_req.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "buf.h"
#include "serve_req.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *kiln__url_decode(const char *s, size_t n, bool in_query)
{
    char *out = kiln__xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = in_query && s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = '\0';
    return out;
}

char *kiln__query_get(const char *q, size_t n, const char *name)
{
    const char *end = q + n;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        if (eq && (size_t)(eq - q) == nl && !memcmp(q, name, nl))
            return kiln__url_decode(eq + 1, (size_t)(stop - eq - 1), true);
        q = stop + 1;
    }
    return NULL;
}

int kiln__list_params(const char *cursor, const char *page_size, int64_t *cur, int *limit, char *why,
                      size_t cap)
{
    *cur = 0;
    *limit = KILN__API_DEFAULT_PAGE;
    char *end;
    if (cursor && *cursor) {
        long long v = strtoll(cursor, &end, 10);
        if (*end || v < 0 || cursor[0] == '-' || cursor[0] == '+' || cursor[0] == ' ') {
            snprintf(why, cap, "cursor: expected what nextCursor said, got '%.64s'", cursor);
            return -1;
        }
        *cur = v;
    }
    if (page_size && *page_size) {
        long v = strtol(page_size, &end, 10);
        if (*end || v < 1 || v > KILN__API_MAX_PAGE) {
            snprintf(why, cap, "pageSize: expected 1 to %d, got '%.64s'", KILN__API_MAX_PAGE, page_size);
            return -1;
        }
        *limit = (int)v;
    }
    return 0;
}

static bool subst_key_ok(const char *k)
{
    if (!*k || !(*k == '_' || (*k >= 'A' && *k <= 'Z')))
        return false;
    for (; *k; k++)
        if (!(*k == '_' || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9')))
            return false;
    return true;
}

void kiln__run_req_free(kiln__run_req *r)
{
    free(r->branch);
    free(r->tag);
    free(r->commit);
    for (size_t i = 0; i < r->n_substs; i++)
        free(r->substs[i]);
    free(r->substs);
    memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s)
{
    return s ? kiln__xstrdup(s) : NULL;
}

int kiln__run_req_parse(const char *body, size_t len, kiln__run_req *r, char *why, size_t cap)
{
    memset(r, 0, sizeof *r);
    cJSON *j = len ? cJSON_ParseWithLength(body, len) : cJSON_CreateObject();
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(why, cap, "the body is not a JSON object");
        return -1;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "branch");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tag");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "commit");
    if (!c)
        c = cJSON_GetObjectItemCaseSensitive(j, "commitSha");
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(j, "substitutions");
    const char *branch = cJSON_GetStringValue(b), *tag = cJSON_GetStringValue(t),
               *commit = cJSON_GetStringValue(c);
    const char *bad = NULL;
    if ((b && !cJSON_IsString(b)) || (t && !cJSON_IsString(t)) || (c && !cJSON_IsString(c)))
        bad = "branch, tag and commit: expected strings";
    else if ((branch && !*branch) || (tag && !*tag) || (branch && tag))
        bad = "give one of branch and tag (and commit, or not)";
    else if (!branch && !tag && !(commit && *commit))
        bad = "give a branch, a tag or a commit";
    else if (commit && strspn(commit, "0123456789abcdef") != strlen(commit))
        bad = "commit: expected a hexadecimal commit id";
    else if (subs && !cJSON_IsObject(subs))
        bad = "substitutions: expected an object of strings";
    const cJSON *it;
    if (!bad && subs) {
        cJSON_ArrayForEach(it, subs)
        {
            if (!cJSON_IsString(it) || !it->string || !subst_key_ok(it->string)) {
                bad = "substitutions: expected KEY: \"value\" pairs, keys in [A-Z0-9_]";
                break;
            }
            r->substs = kiln__xrealloc(r->substs, (r->n_substs + 1) * sizeof *r->substs);
            r->substs[r->n_substs++] = kiln__xasprintf("%s=%s", it->string, it->valuestring);
        }
    }
    if (!bad) {
        r->branch = dup_or_null(branch);
        r->tag = dup_or_null(tag);
        r->commit = commit && *commit ? kiln__xstrdup(commit) : NULL;
    }
    cJSON_Delete(j);
    if (bad) {
        snprintf(why, cap, "%s", bad);
        return -1;
    }
    return 0;
}
