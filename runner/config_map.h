/* SPDX-License-Identifier: MIT */
/*
 * A plugin's `with:` options, checked against the schema the plugin declares
 * (kiln_option[]) and stored into the zeroed config struct it asked for, as
 * Fluent Bit's config_map does. Unknown options, wrong types, bounds, enum
 * choices and missing required options are reported with the option's
 * FILE:LINE:COL; every problem is collected.
 *
 * String values go through an expand callback first (substitutions), except
 * for options flagged KILN_OPT_NO_SUBST.
 */
#ifndef KILN_CONFIG_MAP_H
#define KILN_CONFIG_MAP_H

#include <stdbool.h>

#include <kiln/kiln.h>

#include "buf.h"
#include "diag.h"
#include "yaml_tree.h"

typedef struct kiln__config {
    void *data;          /* the plugin's config struct */
    size_t size;
    void **allocs;       /* everything data points into */
    size_t n_allocs;
} kiln__config;

/* Expand a template taken from node `at` into out. Returns 0, or a negative
 * KILN_E* after reporting the problem itself. */
typedef int (*kiln__expand_fn)(void *ctx, const kiln__ynode *at, const char *in, kiln__buf *out);

/*
 * Fill a config for desc from with (a mapping, or NULL for none). Problems go
 * to d, prefixed with prefix (e.g. "build step #2 - \"train\": "). Returns 0
 * and *out (free with kiln__config_free) when there was no error.
 */
int kiln__config_fill(const kiln_plugin *desc, const kiln__ynode *with, kiln__diag *d,
                      const char *file, const kiln__ynode *step_node, const char *prefix,
                      kiln__expand_fn expand, void *ctx, void *plugin_data,
                      kiln__config **out);
void kiln__config_free(kiln__config *c);

/* The filled options as a JSON object (secrets replaced by "********"). */
char *kiln__config_to_json(const kiln_plugin *desc, const kiln__config *c);

/* A YAML node as JSON text (plain scalars that look like numbers, booleans or
 * null keep that type). Caller frees. */
char *kiln__ynode_to_json(const kiln__ynode *n);

/* Take the text cJSON printed (freed here with cJSON_free; NULL reads as
 * "null") and return it as UTF-8: cJSON copies bytes >= 0x80 unchanged, so
 * every ill-formed sequence in its strings becomes U+FFFD
 * (plugins/common/json_string.h). Caller frees with free(). */
char *kiln__json_take(char *printed);

const char *kiln__opt_type_name(kiln_opt_type t);

#endif /* KILN_CONFIG_MAP_H */
