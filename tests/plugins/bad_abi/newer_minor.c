/* SPDX-License-Identifier: MIT */
/* A plugin built for a newer minor of this ABI major than the host has: it
 * may call host entries this kiln lacks, so kiln must refuse it. */
#include <stddef.h>

#include <kiln/kiln.h>

static int start(kiln_step *step, const void *config, void *plugin_data)
{
    return KILN_ENOSYS;
}

static const kiln_step_ops ops = {sizeof(kiln_step_ops), start, NULL, NULL, NULL};

static const kiln_plugin desc = {
    KILN_ABI_MAJOR, KILN_ABI_MINOR + 7, (uint32_t)sizeof(kiln_plugin),
    .kind = KILN_PLUGIN_STEP,
    .name = "newer-minor",
    .version = "1.7.0",
    .summary = "test plugin: newer ABI minor",
    .step = &ops,
};

KILN_PLUGIN_DEFINE(desc)
