/* SPDX-License-Identifier: MIT */
/*
 * The pipeline model: a cloudbuild.yaml (or kiln's superset) read into
 * structs, every field keeping its YAML node for error positions.
 *
 * Loading checks the shape only (known fields in either camelCase or
 * snake_case, types, durations, ids and waitFor). Substitutions, plugins and
 * the `with:` options are checked later (resolve.c, config_map.c), all errors
 * collected into one kiln__diag.
 */
#ifndef KILN_PIPELINE_H
#define KILN_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "yaml_tree.h"

typedef struct kiln__strlist {
    size_t n;
    const char **v;           /* arena strings (the YAML text) */
    const kiln__ynode *node;  /* the sequence, or NULL when absent */
} kiln__strlist;

typedef struct kiln__retry {
    int limit;                /* extra attempts; 0 = no retry */
    int64_t backoff_ms;       /* delay before the first retry */
    double factor;            /* each later delay is multiplied by this */
    size_t n_codes;
    int *on_exit_codes;       /* retry only on these exit codes; none = any failure */
} kiln__retry;

/* A Cloud Build volume: {name, path}. Checked by kiln__volumes_check(). */
typedef struct kiln__volume {
    const char *name, *path;      /* "" when absent */
    const kiln__ynode *node, *name_node, *path_node;
} kiln__volume;

typedef struct kiln__vollist {
    size_t n;
    kiln__volume *v;
    const kiln__ynode *node;      /* the list, or NULL */
} kiln__vollist;

typedef struct kiln__step {
    int index;                /* position in steps[] (or finally[]) */
    bool is_finally;
    const kiln__ynode *node;
    const char *id;           /* NULL when the step has none */
    const char *label;        /* for messages: `build step #N - "id"` / `build step #N` */
    const char *key;          /* for log files and the report: id, or "step-N" */
    const char *name;         /* Cloud Build builder image, or NULL */
    const char *uses;         /* plugin name, or NULL for the exec plugin */
    const kiln__ynode *with;  /* mapping or NULL */
    kiln__strlist args, env, wait_for, secret_env;
    const char *entrypoint, *script, *dir;
    const kiln__ynode *entrypoint_node, *dir_node, *name_node;
    int64_t timeout_ms;       /* 0 = none */
    bool allow_failure;
    size_t n_allow_codes;
    int *allow_exit_codes;
    int automap;              /* -1 unset, 0, 1 */
    kiln__retry retry;
    kiln__vollist volumes;
    bool invalid;             /* what it runs is malformed (already reported) */
} kiln__step;

typedef enum kiln__subst_mode { KILN__MUST_MATCH = 0, KILN__ALLOW_LOOSE = 1 } kiln__subst_mode;

typedef struct kiln__options {
    kiln__strlist env, secret_env;
    kiln__subst_mode subst_mode;
    bool subst_mode_set;
    bool dynamic_substitutions;
    bool automap_substitutions;
    int max_parallel;         /* 0 = not set */
    kiln__vollist volumes;
} kiln__options;

typedef struct kiln__pipeline {
    kiln__ydoc doc;
    const char *file;
    size_t n_steps, n_finally;
    kiln__step *steps;
    kiln__step *finally;
    int64_t timeout_ms;       /* 0 = Cloud Build's default, 60 minutes */
    kiln__options options;
    const kiln__ynode *substitutions; /* mapping or NULL */
    kiln__strlist images, tags;
    const kiln__ynode *available_secrets;
    bool images_added;        /* the images: push steps were appended (resolve.c) */
} kiln__pipeline;

/* Load and check the shape of FILE. Returns 0 when it could be read at all
 * (problems are in d; check d->errors), or a negative KILN_E* when the file
 * is unreadable or not YAML (also reported in d). */
int kiln__pipeline_load(kiln__pipeline *p, const char *file, kiln__diag *d);
int kiln__pipeline_parse(kiln__pipeline *p, const char *file, const char *text, size_t len,
                         kiln__diag *d);
void kiln__pipeline_free(kiln__pipeline *p);

/* Find a step by id among steps[] (not finally); NULL when absent. */
kiln__step *kiln__pipeline_find(const kiln__pipeline *p, const char *id);

/* Cloud Build durations: "30s", "1.5s". kiln's own fields also take ms, m, h.
 * Returns 0 and *ms, or -1. */
int kiln__parse_duration(const char *s, bool cloudbuild_strict, int64_t *ms);

#endif /* KILN_PIPELINE_H */
