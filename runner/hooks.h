/* SPDX-License-Identifier: MIT */
/*
 * Webhook payloads: one push, whichever forge sent it. Each provider's
 * body becomes the same (repository, ref, before, after, changed files),
 * which kiln serve matches against the triggers as `kiln trigger` does.
 *
 *   github   X-GitHub-Event: push     repository.clone_url, commits[].added/modified/removed
 *   gitlab   X-Gitlab-Event: Push Hook / Tag Push Hook
 *                                     project.git_http_url, commits[], total_commits_count
 *   gitea    X-Gitea-Event: push      (Forgejo too) repository.clone_url, commits[], total_commits
 *   git      X-Kiln-Event: push       what `kiln hook post` sends: repository (a path or
 *                                     URL), files (when it knows them)
 *
 * Pure: no I/O, so that the fuzzer (tests/fuzz/fuzz_hooks.c) calls it as is.
 */
#ifndef KILN_HOOKS_H
#define KILN_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum kiln__hook_provider {
    KILN__HOOK_GITHUB,
    KILN__HOOK_GITLAB,
    KILN__HOOK_GITEA,
    KILN__HOOK_GIT,
} kiln__hook_provider;

typedef struct kiln__hook_push {
    char *repo;                 /* clone URL or path */
    char *ref;                  /* refs/heads/B or refs/tags/T */
    char *before, *after;
    char **files;               /* changed files, each once */
    size_t n_files;
    bool files_known;           /* false: the payload cannot tell them all */
    bool deleted;               /* the ref was deleted: nothing to build */
} kiln__hook_push;

enum {
    KILN__HOOK_PUSH = 0,        /* *out is a push */
    KILN__HOOK_PING = 1,        /* a ping (GitHub): answer 200 */
    KILN__HOOK_OTHER = 2,       /* an event kiln does not handle: 202 */
    KILN__HOOK_BAD = -1,        /* malformed: 400, why says what */
};

/* The push in body (len bytes) of event (the provider's event header).
 * Returns one of the KILN__HOOK_ values; free *out with
 * kiln__hook_push_free whatever it returned. */
int kiln__hook_parse(kiln__hook_provider p, const char *event, const char *body, size_t len,
                     kiln__hook_push *out, char *why, size_t cap);
void kiln__hook_push_free(kiln__hook_push *push);

/* "github", "gitlab", ... */
const char *kiln__hook_provider_name(kiln__hook_provider p);

#endif /* KILN_HOOKS_H */
