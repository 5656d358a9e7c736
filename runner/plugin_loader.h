/* SPDX-License-Identifier: MIT */
/*
 * Finding, loading and checking plugins.
 *
 * A plugin is kiln-KIND-NAME.so in one of the search directories, in order:
 * --plugin-path (repeatable), KILN_PLUGIN_PATH (colon-separated), the
 * build tree's plugins/ or the installed lib/kiln/plugins next to the kiln
 * executable, then the compiled-in install directory. Loading is
 * dlopen(RTLD_NOW | RTLD_LOCAL); a refusal is one line naming the file and
 * the reason (missing entry point, ABI, name, kind, reserved slots). Plugins
 * stay loaded until the registry is released.
 */
#ifndef KILN_PLUGIN_LOADER_H
#define KILN_PLUGIN_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <kiln/kiln.h>

#include "buf.h"

typedef struct kiln__plugin {
    const kiln_plugin *desc;
    char *name;
    char *path;
    void *dl;
    void *plugin_data;
    bool initialized;
    struct kiln_plugin_handle *handle;
} kiln__plugin;

typedef struct kiln__registry {
    char **dirs;
    size_t n_dirs;
    kiln__plugin **loaded;
    size_t n_loaded, cap_loaded;
    const kiln_host_api *api;
    /* A dry run: deploying plugins are replaced by mock-deploy, and deploy
     * plugins kiln knows by name are accepted even when not installed. */
    bool mock_deploys;
} kiln__registry;

/* extra_dirs: --plugin-path values (may be NULL / 0). */
void kiln__registry_init(kiln__registry *r, const char *const *extra_dirs, size_t n_extra);
/* Calls destroy() of every initialized plugin and unloads them (dlclose is
 * skipped when KILN_NO_DLCLOSE is set, for leak reports with plugin frames). */
void kiln__registry_release(kiln__registry *r);

/*
 * Load (once) and initialize the plugin KIND/NAME, KIND being KILN_PLUGIN_STEP
 * or KILN_PLUGIN_LOG_SINK. On failure returns a negative KILN_E* and appends
 * one line (no position, no newline) to err.
 */
int kiln__registry_get(kiln__registry *r, kiln_plugin_kind kind, const char *name,
                       kiln__plugin **out, kiln__buf *err);

/* Load one file and check it; name is what the file name says. */
int kiln__plugin_open(const char *path, kiln_plugin_kind kind, const char *name,
                      kiln__plugin **out, kiln__buf *err);

typedef void (*kiln__plugin_each_cb)(void *data, const char *path, kiln_plugin_kind kind,
                                     const char *name);
/* Every plugin file in the search path, first directory wins for a name. */
void kiln__registry_scan(kiln__registry *r, kiln__plugin_each_cb cb, void *data);

const char *kiln__kind_word(kiln_plugin_kind kind); /* "step" / "sink" */

#endif /* KILN_PLUGIN_LOADER_H */
