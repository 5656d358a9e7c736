/* SPDX-License-Identifier: MIT */
/*
 * git-checkout: clone or fetch a repository at a branch, tag or commit into a
 * directory of the workspace (see README.md). Outputs: COMMIT_SHA,
 * SHORT_SHA, REVISION_ID, BRANCH_NAME, TAG_NAME, REF_NAME, REPO_NAME, dir.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "gitfetch.h"

KILN_API_DEFINE;

struct checkout_config {
    const char *repo;
    const char *ref;
    const char *dir;
    int64_t depth;
    const char *username;
    const char *token_env;
    const char *token_file;
};

static const kiln_option checkout_options[] = {
    {KILN_OPT_STRING, "repo", NULL, KILN_OPT_REQUIRED, offsetof(struct checkout_config, repo), 0, -1,
     NULL, "Repository: a path, file://, git://, http(s)://, or ./ ../ relative to the workspace's origin."},
    {KILN_OPT_STRING, "ref", NULL, 0, offsetof(struct checkout_config, ref), 0, -1, NULL,
     "Branch, tag or full commit SHA (default: the remote's default branch)."},
    {KILN_OPT_STRING, "dir", NULL, 0, offsetof(struct checkout_config, dir), 0, -1, NULL,
     "Directory to check out into, relative to the step's directory (default: the repository's name)."},
    {KILN_OPT_INT, "depth", "1", 0, offsetof(struct checkout_config, depth), 0, 1000000, NULL,
     "History depth; 0 fetches the whole history."},
    {KILN_OPT_STRING, "username", "x-access-token", 0, offsetof(struct checkout_config, username), 0,
     -1, NULL, "User name sent with the token (HTTP basic auth)."},
    {KILN_OPT_STRING, "token-env", NULL, 0, offsetof(struct checkout_config, token_env), 0, -1, NULL,
     "Name of an environment variable holding an HTTP token (where secretEnv puts secrets)."},
    {KILN_OPT_STRING, "token-file", NULL, 0, offsetof(struct checkout_config, token_file), 0, -1,
     NULL, "File holding an HTTP token (a mounted secret)."},
    KILN_OPTIONS_END,
};

struct checkout_run {
    struct gitfetch *g;
};

static void set_out(kiln_step *step, const char *k, const char *v)
{
    kiln_api->step_set_output(step, k, v ? v : "");
}

static void fetched(kiln_step *step, void *data, int err, const struct gitfetch_result *r)
{
    struct checkout_run *run = data;
    free(run);
    kiln_api->step_set_data(step, NULL);
    if (err) {
        kiln_api->step_done(step, err, err == KILN_ECANCELED ? NULL : "git-checkout failed");
        return;
    }
    char short_sha[8];
    snprintf(short_sha, sizeof short_sha, "%.7s", r->commit);
    set_out(step, "COMMIT_SHA", r->commit);
    set_out(step, "REVISION_ID", r->commit);
    set_out(step, "SHORT_SHA", short_sha);
    set_out(step, "BRANCH_NAME", r->branch);
    set_out(step, "TAG_NAME", r->tag);
    set_out(step, "REF_NAME", r->ref_name);
    set_out(step, "REPO_NAME", r->repo_name);
    set_out(step, "dir", r->dir);
    kiln_api->step_done(step, 0, NULL);
}

static int checkout_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const struct checkout_config *c = config;
    if (c->ref && c->ref[0] == '-') {
        kiln_api->diag(diag, "ref", "'%s' is not a ref name (it starts with '-')", c->ref);
        return KILN_ECONFIG;
    }
    if (c->token_env && c->token_file) {
        kiln_api->diag(diag, "token-file", "give token-env or token-file, not both");
        return KILN_ECONFIG;
    }
    return 0;
}

static int checkout_start(kiln_step *step, const void *config, void *plugin_data)
{
    const struct checkout_config *c = config;
    int err = 0;
    char *token = gitfetch_read_token(step, c->token_env, c->token_file, &err);
    if (err)
        return err;
    const char *base = kiln_api->step_dir(step);
    char name[1024], *dest;
    if (c->dir && c->dir[0] == '/') {
        dest = strdup(c->dir);
    } else {
        const char *d = c->dir;
        if (!d) {
            /* the repository's name */
            snprintf(name, sizeof name, "%s", c->repo);
            size_t len = strlen(name);
            while (len && name[len - 1] == '/')
                name[--len] = '\0';
            if (len > 4 && !strcmp(name + len - 4, ".git"))
                name[len -= 4] = '\0';
            char *slash = strrchr(name, '/');
            d = slash ? slash + 1 : name;
        }
        dest = malloc(strlen(base) + strlen(d) + 2);
        sprintf(dest, "%s/%s", base, d);
    }
    struct checkout_run *run = calloc(1, sizeof *run);
    kiln_api->step_set_data(step, run);
    struct gitfetch_opts o = {c->repo, c->ref, dest, c->depth, c->username, token};
    int rc = gitfetch_start(step, &o, fetched, run, &run->g);
    free(dest);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (rc) {
        free(run);
        kiln_api->step_set_data(step, NULL);
    }
    return rc;
}

static void checkout_cancel(kiln_step *step, void *plugin_data)
{
    struct checkout_run *run = kiln_api->step_get_data(step);
    if (run && run->g)
        gitfetch_cancel(run->g);
}

/* ABI 1.10: the host ended the step itself; git's process is gone without
 * its callback, so the fetch (and its credentials file) is ours to free. */
static void checkout_abandon(kiln_step *step, void *plugin_data)
{
    struct checkout_run *run = kiln_api->step_get_data(step);
    if (!run)
        return;
    if (run->g)
        gitfetch_abandon(run->g);
    free(run);
    kiln_api->step_set_data(step, NULL);
}

static int checkout_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops checkout_ops = {sizeof(kiln_step_ops), checkout_start, checkout_cancel,
                                           NULL, checkout_abandon};

static const kiln_plugin checkout_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "git-checkout",
    .version = KILN_VERSION_STRING,
    .summary = "Clone or fetch a git repository at a branch, tag or commit (shallow by default)",
    .options = checkout_options,
    .config_size = sizeof(struct checkout_config),
    .init = checkout_init,
    .validate = checkout_validate,
    .step = &checkout_ops,
};

KILN_PLUGIN_DEFINE(checkout_plugin)
