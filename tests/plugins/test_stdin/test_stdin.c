/* SPDX-License-Identifier: MIT */
/*
 * test-stdin: a step plugin that runs `sh -c SCRIPT` through spawn() with
 * its stdin read from a file (kiln_spawn_opts.stdin_path), the way a plugin
 * feeds a tool its input. In an image under an executor, the process runs
 * in the image; its output goes to the step's log, and the step ends with
 * the process's status.
 *
 * Options: input (required: the file, relative to the workspace),
 * script (required).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct stdin_config {
    const char *input;
    const char *script;
};

static const kiln_option stdin_options[] = {
    {KILN_OPT_STRING, "input", NULL, KILN_OPT_REQUIRED, offsetof(struct stdin_config, input), 0, -1, NULL,
     "The file given to the process's stdin, relative to the workspace."},
    {KILN_OPT_STRING, "script", NULL, KILN_OPT_REQUIRED, offsetof(struct stdin_config, script), 0, -1, NULL,
     "What sh -c runs."},
    KILN_OPTIONS_END,
};

static void on_exit_cb(kiln_proc *proc, void *data, int status)
{
    kiln_step *step = data;
    kiln_api->step_done(step, status, status ? "the process failed" : NULL);
}

static int stdin_start(kiln_step *step, const void *config, void *plugin_data)
{
    const struct stdin_config *c = config;
    char path[4096];
    if (c->input[0] == '/')
        snprintf(path, sizeof path, "%s", c->input);
    else
        snprintf(path, sizeof path, "%s/%s", kiln_api->workspace(KILN_OBJ(step)), c->input);
    const char *argv[] = {"sh", "-c", c->script, NULL};
    kiln_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.argv = argv;
    o.stdin_path = path;
    int rc = kiln_api->spawn(step, &o, on_exit_cb, step, NULL);
    if (rc)
        kiln_error(step, "test-stdin: cannot run the process with input %s: %s", path, kiln_api->strerror(rc));
    return rc;
}

static int stdin_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops stdin_ops = {sizeof(kiln_step_ops), stdin_start, NULL, NULL, NULL};

static const kiln_plugin stdin_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "test-stdin",
    .version = "0.0.1",
    .summary = "test plugin: one process with an input file on its stdin",
    .options = stdin_options,
    .config_size = sizeof(struct stdin_config),
    .init = stdin_init,
    .step = &stdin_ops,
};

KILN_PLUGIN_DEFINE(stdin_plugin)
