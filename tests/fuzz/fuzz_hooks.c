/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the webhook payload parsers (hooks.h), GitHub's,
 * GitLab's, Gitea's and kiln's own. The first byte picks the forge and the
 * event; the rest is the body. Nothing crashes or leaks; a push names a
 * refs/heads/ or refs/tags/ ref, a hexadecimal after, a repository, and no
 * changed file twice; a refusal says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    static const char *const events[] = {"push", "ping", "Push Hook", "Tag Push Hook", "issues", ""};
    kiln__hook_provider p = (kiln__hook_provider)(data[0] & 3);
    const char *event = events[(data[0] >> 2) % 6];
    kiln__hook_push push;
    char why[256];
    int rc = kiln__hook_parse(p, event, (const char *)data + 1, size - 1, &push, why, sizeof why);
    if (rc == KILN__HOOK_PUSH) {
        if (!push.repo || !*push.repo || !push.after || !push.ref ||
            (strncmp(push.ref, "refs/heads/", 11) && strncmp(push.ref, "refs/tags/", 10)) ||
            strspn(push.after, "0123456789abcdef") != strlen(push.after))
            abort();
        for (size_t i = 0; i < push.n_files; i++)
            for (size_t k = i + 1; k < push.n_files; k++)
                if (!strcmp(push.files[i], push.files[k]))
                    abort();
    } else if (rc == KILN__HOOK_BAD && !why[0]) {
        abort();
    } else if (rc != KILN__HOOK_BAD && rc != KILN__HOOK_PING && rc != KILN__HOOK_OTHER) {
        abort();
    }
    kiln__hook_push_free(&push);
    return 0;
}
