/* SPDX-License-Identifier: MIT */
/*
 * deaf: another step plugin (the .so named by $KILN_TEST_DEAF_TARGET) with
 * its options, start, describe and abandon, but a cancel() that does
 * nothing: the step goes on after its timeout or Ctrl-C, so the host ends
 * it itself after --kill-grace and calls the real plugin's abandon()
 * (kiln_step_ops.abandon, ABI 1.10) while its requests and timers are in
 * flight. Plugins whose own cancel always ends the step (docker-build,
 * cloudrun-deploy) can have their abandon path tested through the real
 * host this way (tests/integration/test_abandon_deploy.sh).
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

static const kiln_plugin *target;
static kiln_plugin desc;
static kiln_step_ops ops;

static int deaf_start(kiln_step *step, const void *config, void *plugin_data)
{
    return target->step->start(step, config, plugin_data);
}

static void deaf_cancel(kiln_step *step, void *plugin_data)
{
    kiln_warn(step, "deaf: cancel not passed on to %s", target->name);
}

static int deaf_describe(kiln_step *step, const void *config, void *plugin_data)
{
    return target->step->describe ? target->step->describe(step, config, plugin_data) : 0;
}

static void deaf_abandon(kiln_step *step, void *plugin_data)
{
    const kiln_step_ops *t = target->step;
    if (t->struct_size >= offsetof(kiln_step_ops, abandon) + sizeof t->abandon && t->abandon)
        t->abandon(step, plugin_data);
}

static int deaf_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return target->init ? target->init(api, self, plugin_data) : 0;
}

KILN_PLUGIN_EXPORT const kiln_plugin *kiln_plugin_entry_v1(void);
KILN_PLUGIN_EXPORT const kiln_plugin *kiln_plugin_entry_v1(void)
{
    if (target)
        return &desc;
    const char *path = getenv("KILN_TEST_DEAF_TARGET");
    void *dl = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL; /* kept open for the process */
    const kiln_plugin *(*entry)(void) = NULL;
    if (dl)
        *(void **)&entry = dlsym(dl, KILN_PLUGIN_ENTRY_SYMBOL);
    const kiln_plugin *t = entry ? entry() : NULL;
    if (!t || t->kind != KILN_PLUGIN_STEP || !t->step)
        return NULL; /* the host says: no descriptor */
    target = t;
    desc = *t;
    desc.name = "deaf";
    desc.summary = "Another step plugin ($KILN_TEST_DEAF_TARGET) that ignores cancel (tests)";
    desc.init = deaf_init;
    desc.destroy = t->destroy;
    ops = (kiln_step_ops){
        .struct_size = sizeof ops,
        .start = deaf_start,
        .cancel = deaf_cancel,
        .describe = deaf_describe,
        .abandon = deaf_abandon,
    };
    desc.step = &ops;
    return &desc;
}
