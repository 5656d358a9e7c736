/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers the deploying plugins share (compiled into each plugin that
 * lists it; plugins/common/ has no CMakeLists.txt, so it is no plugin).
 * Kubernetes and Cloud Run v2 describe containers the same way.
 */
#ifndef KILN_PLUGINS_CONTAINER_ENV_H
#define KILN_PLUGINS_CONTAINER_ENV_H

#include <cJSON.h>
#include <stddef.h>

/* The member KEY of O as an object / array, made (replacing anything else). */
cJSON *kp_obj_at(cJSON *o, const char *key);
cJSON *kp_arr_at(cJSON *o, const char *key);

/* J as unformatted JSON text in UTF-8 (ill-formed sequences in its strings
 * read as U+FFFD, json_string.h), for request bodies and plan entries.
 * Caller frees with free(); NULL when memory ran out. Plugins that use it
 * also list ../common/json_string.c. */
char *kp_json_print(const cJSON *j);

/* Set or replace each KEY=VALUE in a container's env list ({name, value}). */
void kp_container_set_env(cJSON *container, const char *const *keys, const char *const *values, size_t n);

#endif /* KILN_PLUGINS_CONTAINER_ENV_H */
