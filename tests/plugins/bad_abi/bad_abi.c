/* SPDX-License-Identifier: MIT */
/* A plugin that claims plugin ABI 2.0: the numbers are written by hand, as a
 * plugin built against a future SDK would carry them. kiln must refuse it. */
#include <stddef.h>

#include <kiln/kiln.h>

static int start(kiln_step *step, const void *config, void *plugin_data)
{
    return KILN_ENOSYS;
}

static const kiln_step_ops ops = {sizeof(kiln_step_ops), start, NULL, NULL, NULL};

static const kiln_plugin desc = {
    2, 0, (uint32_t)sizeof(kiln_plugin),
    .kind = KILN_PLUGIN_STEP,
    .name = "bad-abi",
    .version = "2.0.0",
    .summary = "test plugin: wrong ABI major",
    .step = &ops,
};

KILN_PLUGIN_DEFINE(desc)
