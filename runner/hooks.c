/* SPDX-License-Identifier: MIT */
/*
 * Webhook payloads into one push (hooks.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "buf.h"
#include "hooks.h"

const char *kiln__hook_provider_name(kiln__hook_provider p)
{
    switch (p) {
    case KILN__HOOK_GITHUB: return "github";
    case KILN__HOOK_GITLAB: return "gitlab";
    case KILN__HOOK_GITEA: return "gitea";
    case KILN__HOOK_GIT: return "git";
    }
    return "?";
}

void kiln__hook_push_free(kiln__hook_push *push)
{
    free(push->repo);
    free(push->ref);
    free(push->before);
    free(push->after);
    for (size_t i = 0; i < push->n_files; i++)
        free(push->files[i]);
    free(push->files);
    memset(push, 0, sizeof *push);
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s && *s ? s : NULL;
}

static bool all_zeros(const char *s)
{
    return s && *s && strspn(s, "0") == strlen(s);
}

static void add_file(kiln__hook_push *p, const char *f)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (!strcmp(p->files[i], f))
            return;
    p->files = kiln__xrealloc(p->files, (p->n_files + 1) * sizeof *p->files);
    p->files[p->n_files++] = kiln__xstrdup(f);
}

static void add_files(kiln__hook_push *p, const cJSON *list)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (cJSON_IsString(it) && *it->valuestring)
            add_file(p, it->valuestring);
}

/* commits[].added/removed/modified; known when the payload lists every
 * commit: its total says so, or (GitHub: no total) fewer than its cap of 20. */
static void commit_files(kiln__hook_push *p, const cJSON *body, const char *total_key)
{
    const cJSON *commits = cJSON_GetObjectItemCaseSensitive(body, "commits");
    if (!cJSON_IsArray(commits))
        return;
    int n = cJSON_GetArraySize(commits);
    const cJSON *c;
    cJSON_ArrayForEach(c, commits)
    {
        add_files(p, cJSON_GetObjectItemCaseSensitive(c, "added"));
        add_files(p, cJSON_GetObjectItemCaseSensitive(c, "removed"));
        add_files(p, cJSON_GetObjectItemCaseSensitive(c, "modified"));
    }
    const cJSON *total = total_key ? cJSON_GetObjectItemCaseSensitive(body, total_key) : NULL;
    if (cJSON_IsNumber(total))
        p->files_known = n > 0 && total->valuedouble == (double)n;
    else
        p->files_known = n > 0 && n < 20;
}

/* The first URL-ish field of o among keys. */
static const char *first_of(const cJSON *o, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++) {
        const char *s = str(o, keys[i]);
        if (s)
            return s;
    }
    return NULL;
}

int kiln__hook_parse(kiln__hook_provider prov, const char *event, const char *body, size_t len,
                     kiln__hook_push *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    why[0] = '\0';
    if (!event || !*event) {
        snprintf(why, cap, "no event header");
        return KILN__HOOK_BAD;
    }
    bool push;
    switch (prov) {
    case KILN__HOOK_GITHUB:
        if (!strcmp(event, "ping"))
            return KILN__HOOK_PING;
        push = !strcmp(event, "push");
        break;
    case KILN__HOOK_GITLAB:
        push = !strcmp(event, "Push Hook") || !strcmp(event, "Tag Push Hook");
        break;
    default:
        push = !strcmp(event, "push");
    }
    /* Even an event kiln ignores must be JSON: a garbled body is 400. */
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(why, cap, "the body is not a JSON object");
        return KILN__HOOK_BAD;
    }
    if (!push) {
        cJSON_Delete(j);
        snprintf(why, cap, "%s events start nothing", event);
        return KILN__HOOK_OTHER;
    }
    const char *ref = str(j, "ref"), *before = str(j, "before"), *after = str(j, "after");
    const char *repo = NULL;
    static const char *const gh_keys[] = {"clone_url", "git_url", "ssh_url", "html_url", "url", NULL};
    static const char *const gl_keys[] = {"git_http_url", "http_url", "git_ssh_url", "web_url", "url",
                                          NULL};
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "repository");
    switch (prov) {
    case KILN__HOOK_GITHUB:
    case KILN__HOOK_GITEA:
        repo = first_of(r, gh_keys);
        commit_files(out, j, prov == KILN__HOOK_GITEA ? "total_commits" : NULL);
        break;
    case KILN__HOOK_GITLAB:
        repo = first_of(cJSON_GetObjectItemCaseSensitive(j, "project"), gl_keys);
        if (!repo)
            repo = first_of(r, gl_keys);
        commit_files(out, j, "total_commits_count");
        break;
    case KILN__HOOK_GIT: {
        repo = cJSON_IsString(r) && *r->valuestring ? r->valuestring : NULL;
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files");
        if (cJSON_IsArray(files)) {
            add_files(out, files);
            out->files_known = true;
        }
        break;
    }
    }
    if (!ref || !after || !repo || (strncmp(ref, "refs/heads/", 11) && strncmp(ref, "refs/tags/", 10))) {
        snprintf(why, cap, "a push needs ref (refs/heads/... or refs/tags/...), after and the repository%s",
                 prov == KILN__HOOK_GITLAB ? " (project.git_http_url)"
                 : prov == KILN__HOOK_GIT  ? " (a path or URL)"
                                           : " (repository.clone_url)");
        cJSON_Delete(j);
        kiln__hook_push_free(out);
        return KILN__HOOK_BAD;
    }
    if (strspn(after, "0123456789abcdef") != strlen(after) ||
        (before && strspn(before, "0123456789abcdef") != strlen(before))) {
        snprintf(why, cap, "before and after must be hexadecimal commit ids");
        cJSON_Delete(j);
        kiln__hook_push_free(out);
        return KILN__HOOK_BAD;
    }
    out->repo = kiln__xstrdup(repo);
    out->ref = kiln__xstrdup(ref);
    out->before = before ? kiln__xstrdup(before) : NULL;
    out->after = kiln__xstrdup(after);
    out->deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "deleted")) || all_zeros(after);
    cJSON_Delete(j);
    return KILN__HOOK_PUSH;
}
