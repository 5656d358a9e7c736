/* SPDX-License-Identifier: MIT */
/*
 * submit-sub-build: run another repository's pipeline as a child build, as
 * `gcloud builds submit --config CONFIG --substitutions ...` does in Cloud
 * Build (see README.md): fetch the repository at a ref (the same code as
 * git-checkout), then kiln_api->build_submit() on the same loop and sinks,
 * and end the step with the child's result (or at once with wait: false).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "../step_git_checkout/gitfetch.h"

KILN_API_DEFINE;

struct sub_config {
    const char *repo;
    const char *ref;
    const char *config;
    const kiln_kvv *substitutions;
    bool wait;
    const char *dir;
    int64_t depth;
    const char *username;
    const char *token_env;
    const char *token_file;
};

static const kiln_option sub_options[] = {
    {KILN_OPT_STRING, "repo", NULL, 0, offsetof(struct sub_config, repo), 0, -1, NULL,
     "Repository holding the pipeline (as git-checkout's repo); absent: the step's own directory."},
    {KILN_OPT_STRING, "ref", NULL, 0, offsetof(struct sub_config, ref), 0, -1, NULL,
     "Branch, tag or full commit SHA to fetch (default: the remote's default branch)."},
    {KILN_OPT_STRING, "config", "cloudbuild.yaml", 0, offsetof(struct sub_config, config), 0, -1,
     NULL, "Pipeline file, relative to the repository."},
    {KILN_OPT_STRING_MAP, "substitutions", NULL, 0, offsetof(struct sub_config, substitutions), 0,
     -1, NULL,
     "Substitutions for the child build (user keys and overridable built-ins such as BRANCH_NAME)."},
    {KILN_OPT_BOOL, "wait", "true", 0, offsetof(struct sub_config, wait), 0, -1, NULL,
     "Wait for the child build and fail when it fails; false: start it and succeed."},
    {KILN_OPT_STRING, "dir", NULL, 0, offsetof(struct sub_config, dir), 0, -1, NULL,
     "Where to check the repository out (default: .kiln/sub-builds/STEP_ID)."},
    {KILN_OPT_INT, "depth", "1", 0, offsetof(struct sub_config, depth), 0, 1000000, NULL,
     "History depth of the fetch; 0 fetches the whole history."},
    {KILN_OPT_STRING, "username", "x-access-token", 0, offsetof(struct sub_config, username), 0, -1,
     NULL, "User name sent with the token."},
    {KILN_OPT_STRING, "token-env", NULL, 0, offsetof(struct sub_config, token_env), 0, -1, NULL,
     "Environment variable holding an HTTP token."},
    {KILN_OPT_STRING, "token-file", NULL, 0, offsetof(struct sub_config, token_file), 0, -1, NULL,
     "File holding an HTTP token."},
    KILN_OPTIONS_END,
};

struct sub_run {
    struct gitfetch *g;
    char **substs;      /* K=V, NULL-terminated */
    char *config;
    bool wait;
};

static void run_free(kiln_step *step, struct sub_run *r)
{
    for (size_t i = 0; r->substs && r->substs[i]; i++)
        free(r->substs[i]);
    free(r->substs);
    free(r->config);
    free(r);
    kiln_api->step_set_data(step, NULL);
}

static void child_ended(kiln_step *step, void *data, const kiln_build_result *res)
{
    struct sub_run *r = data;
    run_free(step, r);
    static const char *const names[] = {"QUEUED", "WORKING", "SUCCESS", "FAILURE", "TIMEOUT",
                                        "CANCELLED", "INTERNAL_ERROR", "SKIPPED"};
    const char *st = (unsigned)res->status < 8 ? names[res->status] : "UNKNOWN";
    kiln_api->step_set_output(step, "status", st);
    if (res->status == KILN_STATUS_SUCCESS) {
        kiln_info(step, "sub-build %s: SUCCESS", res->build_id);
        kiln_api->step_done(step, 0, NULL);
        return;
    }
    char why[1024];
    snprintf(why, sizeof why, "sub-build %s ended %s%s%s", res->build_id, st,
             res->reason ? ": " : "", res->reason ? res->reason : "");
    kiln_api->step_done(step, res->status == KILN_STATUS_CANCELLED ? KILN_ECANCELED : KILN_ESTEPFAILED,
                        why);
}

static void submit(kiln_step *step, struct sub_run *r, const char *workspace)
{
    kiln_build_req req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.config = r->config;
    req.workspace = workspace;
    req.substitutions = (const char *const *)r->substs;
    req.wait = r->wait;
    const char *id = NULL;
    int rc = kiln_api->build_submit(step, &req, child_ended, r, &id);
    if (rc) {
        run_free(step, r);
        kiln_api->step_done(step, rc, rc == KILN_ELIMIT ? "sub-builds nested too deep"
                                                        : "the sub-build could not be started");
        return;
    }
    kiln_api->step_set_output(step, "build_id", id);
    if (!r->wait) {
        run_free(step, r);
        kiln_api->step_set_output(step, "status", "WORKING");
        kiln_api->step_done(step, 0, NULL);
    }
}

static void fetched(kiln_step *step, void *data, int err, const struct gitfetch_result *res)
{
    struct sub_run *r = data;
    r->g = NULL;
    if (err) {
        run_free(step, r);
        kiln_api->step_done(step, err, err == KILN_ECANCELED ? NULL : "fetching the sub-build's repository failed");
        return;
    }
    char short_sha[8];
    snprintf(short_sha, sizeof short_sha, "%.7s", res->commit);
    kiln_api->step_set_output(step, "COMMIT_SHA", res->commit);
    kiln_api->step_set_output(step, "SHORT_SHA", short_sha);
    kiln_api->step_set_output(step, "REF_NAME", res->ref_name ? res->ref_name : "");
    kiln_api->step_set_output(step, "dir", res->dir);
    submit(step, r, res->dir);
}

static int sub_start(kiln_step *step, const void *config, void *plugin_data)
{
    const struct sub_config *c = config;
    if (!KILN_API_HAS(kiln_api, build_submit)) {
        kiln_error(step, "submit-sub-build needs kiln with plugin ABI 1.1 or newer");
        return KILN_EABI;
    }
    int err = 0;
    char *token = gitfetch_read_token(step, c->token_env, c->token_file, &err);
    if (err)
        return err;
    struct sub_run *r = calloc(1, sizeof *r);
    r->config = strdup(c->config);
    r->wait = c->wait;
    r->substs = calloc(c->substitutions->n + 1, sizeof *r->substs);
    for (size_t i = 0; i < c->substitutions->n; i++) {
        size_t n = strlen(c->substitutions->keys[i]) + strlen(c->substitutions->values[i]) + 2;
        r->substs[i] = malloc(n);
        snprintf(r->substs[i], n, "%s=%s", c->substitutions->keys[i], c->substitutions->values[i]);
    }
    kiln_api->step_set_data(step, r);
    const char *base = kiln_api->step_dir(step);
    if (!c->repo) {
        free(token);
        submit(step, r, base);
        return 0;
    }
    char *dest;
    if (c->dir && c->dir[0] == '/') {
        dest = strdup(c->dir);
    } else {
        char tail[1200];
        if (c->dir)
            snprintf(tail, sizeof tail, "%s", c->dir);
        else
            snprintf(tail, sizeof tail, ".kiln/sub-builds/%s", kiln_api->step_id(step));
        dest = malloc(strlen(base) + strlen(tail) + 2);
        sprintf(dest, "%s/%s", base, tail);
    }
    struct gitfetch_opts o = {c->repo, c->ref, dest, c->depth, c->username, token};
    int rc = gitfetch_start(step, &o, fetched, r, &r->g);
    free(dest);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (rc)
        run_free(step, r);
    return rc;
}

static void sub_cancel(kiln_step *step, void *plugin_data)
{
    /* A running child build is cancelled by the host; its callback ends
     * the step. A fetch in progress is stopped here. */
    struct sub_run *r = kiln_api->step_get_data(step);
    if (r && r->g)
        gitfetch_cancel(r->g);
}

/* ABI 1.10: the host ended the step itself (a fetch or a child build that
 * outlived the kill grace): neither callback will come. */
static void sub_abandon(kiln_step *step, void *plugin_data)
{
    struct sub_run *r = kiln_api->step_get_data(step);
    if (!r)
        return;
    if (r->g)
        gitfetch_abandon(r->g);
    run_free(step, r);
}

static int sub_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const struct sub_config *c = config;
    if (c->ref && *c->ref && !c->repo) {
        kiln_api->diag(diag, "ref", "ref needs repo");
        return KILN_ECONFIG;
    }
    if (c->ref && c->ref[0] == '-') {
        kiln_api->diag(diag, "ref", "'%s' is not a ref name (it starts with '-')", c->ref);
        return KILN_ECONFIG;
    }
    return 0;
}

static int sub_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops sub_ops = {sizeof(kiln_step_ops), sub_start, sub_cancel, NULL, sub_abandon};

static const kiln_plugin sub_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "submit-sub-build",
    .version = KILN_VERSION_STRING,
    .summary = "Run another repository's pipeline as a child build (gcloud builds submit)",
    .options = sub_options,
    .config_size = sizeof(struct sub_config),
    .init = sub_init,
    .validate = sub_validate,
    .step = &sub_ops,
};

KILN_PLUGIN_DEFINE(sub_plugin)
