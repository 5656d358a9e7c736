/* SPDX-License-Identifier: MIT */
/*
 * hello: the smallest complete kiln step plugin.
 *
 *   steps:
 *   - uses: hello
 *     with: {name: world}
 *
 * prints "hello, world" into the step's log, sets the step output
 * `greeting` (read by later steps as ${{ steps.ID.outputs.greeting }}) and
 * succeeds. It calls step_done() inside start(), which the async contract
 * allows (see kiln/plugin.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct hello_config {
    const char *name;
};

static const kiln_option hello_options[] = {
    {KILN_OPT_STRING, "name", "world", 0, offsetof(struct hello_config, name), 0, -1, NULL,
     "Who to greet."},
    KILN_OPTIONS_END,
};

static int hello_start(kiln_step *step, const void *config, void *plugin_data)
{
    (void)plugin_data;
    const struct hello_config *c = config;
    char greeting[256];
    snprintf(greeting, sizeof greeting, "hello, %s", c->name);
    kiln_api->step_output(step, KILN_STREAM_STDOUT, greeting, strlen(greeting));
    kiln_api->step_output(step, KILN_STREAM_STDOUT, "\n", 1);
    kiln_api->step_set_output(step, "greeting", greeting);
    kiln_api->step_done(step, 0, NULL);
    return 0;
}

static int hello_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    (void)self;
    (void)plugin_data;
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops hello_ops = {sizeof(kiln_step_ops), hello_start, NULL, NULL, NULL};

static const kiln_plugin hello_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "hello",
    .version = "1.0.0",
    .summary = "Greet someone (the SDK's example plugin)",
    .options = hello_options,
    .config_size = sizeof(struct hello_config),
    .init = hello_init,
    .step = &hello_ops,
};

KILN_PLUGIN_DEFINE(hello_plugin)
