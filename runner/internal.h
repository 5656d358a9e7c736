/* SPDX-License-Identifier: MIT */
/*
 * The runner's shared internals: host objects behind the SDK's opaque
 * types, the run-time build and step, and the kiln__ functions shared across
 * files. Nothing here crosses the plugin boundary.
 */
#ifndef KILN_INTERNAL_H
#define KILN_INTERNAL_H

#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <kiln/kiln.h>

#include "buf.h"

typedef enum kiln__objtype {
    KILN__OBJ_PLUGIN = 1,
    KILN__OBJ_STEP,
    KILN__OBJ_SINK,
    KILN__OBJ_BUILD
} kiln__objtype;

/* Every host object starts with this, as every libuv handle starts with
 * UV_HANDLE_FIELDS; KILN_OBJ() casts to it. */
struct kiln_object {
    kiln__objtype type;
};

struct kiln__plugin;
struct kiln__build;
struct kiln__exec_inst;
/* What a plugin gets as `self` in init(). The registry makes one per loaded
 * plugin; an executor instance (exec_plugin.c) has its own, so that what
 * the plugin logs on it lands in its build's log, and its requests are
 * counted to know when its plugin_data may be destroyed. */
struct kiln_plugin_handle {
    struct kiln_object obj;
    struct kiln__plugin *plugin;
    struct kiln__build *build;      /* an executor instance's build, or NULL */
    struct kiln__exec_inst *inst;   /* the executor instance it belongs to, or NULL */
};

/* errors.c */
const char *kiln__strerror(int err);
const char *kiln__err_name(int err);
int kiln__strcmp_p(const void *a, const void *b); /* qsort over char * */

/* plugin_loader.c: the directory of the running kiln (plugins and
 * kiln-mount-exec are looked for next to it). 0, or -1. */
int kiln__exe_dir(char *out, size_t cap);
/* kiln's helper program NAME (kiln-watchdog, kiln-mount-exec): next to kiln,
 * then in ../libexec/kiln/ from it, then where it was installed; 0 or -1. */
int kiln__helper_path(const char *name, char *out, size_t cap);

/* proc_local.c: a process spawned with AT starts a session (and process
 * group) of its own, default signal dispositions, no signal blocked:
 * whatever kiln ignores or blocks, a step or helper does not inherit it. */
void kiln__spawnattr_new_session(posix_spawnattr_t *at);

/* time */
int64_t kiln__now_us(void); /* wall clock, microseconds since the epoch */
void kiln__format_time(int64_t us, char *out, size_t cap); /* RFC 3339, UTC, microseconds */
void kiln__format_duration(int64_t us, char *out, size_t cap); /* "1.2s", "3m04s" */

#endif /* KILN_INTERNAL_H */
