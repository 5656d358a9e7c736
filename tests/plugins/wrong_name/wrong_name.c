/* SPDX-License-Identifier: MIT */
/* File kiln-step-wrong-name.so, descriptor name "renamed": kiln must refuse
 * it rather than run a plugin under a name it does not answer to. */
#include <stddef.h>

#include <kiln/kiln.h>

static int start(kiln_step *step, const void *config, void *plugin_data)
{
    return KILN_ENOSYS;
}

static const kiln_step_ops ops = {sizeof(kiln_step_ops), start, NULL, NULL, NULL};

static const kiln_plugin desc = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "renamed",
    .version = "0.0.1",
    .summary = "test plugin: descriptor name differs from the file name",
    .step = &ops,
};

KILN_PLUGIN_DEFINE(desc)
