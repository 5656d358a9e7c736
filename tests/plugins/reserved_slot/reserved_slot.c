/* SPDX-License-Identifier: MIT */
/* A descriptor with a reserved slot set, as a plugin built for a future ABI
 * that gave the slot a meaning would have it. kiln must refuse it. */
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
    .name = "reserved-slot",
    .version = "0.0.1",
    .summary = "test plugin: reserved slot set",
    .step = &ops,
    .reserved = {NULL, NULL, NULL, (void *)&ops},
};

KILN_PLUGIN_DEFINE(desc)
