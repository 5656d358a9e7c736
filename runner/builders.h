/* SPDX-License-Identifier: MIT */
/*
 * Cloud Build builder images mapped onto plugins.
 *
 * A step in Cloud Build's form (`name:` an image, `args:`) runs some program:
 * its entrypoint, or for gcr.io/cloud-builders/TOOL images TOOL, or args[0].
 * The table maps a program and its leading arguments to a plugin:
 * `docker build` -> docker-build, `gcloud run deploy` -> cloudrun-deploy,
 * `gcloud builds submit` -> submit-sub-build, `kubectl apply` and
 * `gke-deploy run` -> k8s-deploy, `git clone` -> git-checkout. Users add rows
 * with a YAML file (--builders FILE):
 *
 *   builders:
 *   - {program: helm, args: [upgrade], plugin: helm-deploy}
 *
 * A mapped plugin takes the step over when it is installed and accepts the
 * builder's arguments as its `args` option (the tool's own command-line
 * form); otherwise the program runs on this machine and the step says which
 * plugin it is waiting for.
 */
#ifndef KILN_BUILDERS_H
#define KILN_BUILDERS_H

#include <stddef.h>

#include "diag.h"

typedef struct kiln__builder_rule {
    char *program;
    char **args; /* leading arguments to match */
    size_t n_args;
    char *plugin;
} kiln__builder_rule;

typedef struct kiln__builders {
    kiln__builder_rule *rules;
    size_t n;
} kiln__builders;

/* The built-in rules, then those of file (may be NULL); file rules win.
 * Problems in the file go to d. */
void kiln__builders_load(kiln__builders *b, const char *file, kiln__diag *d);
void kiln__builders_release(kiln__builders *b);

/* The program a Cloud Build step runs: entrypoint, the cloud-builders tool
 * of image, or args[0]; NULL when none. *args_used says how many of args
 * were consumed by that choice (1 when args[0] is the program). */
const char *kiln__builder_program(const char *image, const char *entrypoint, const char *const *args,
                                  size_t n_args, char *buf, size_t cap, size_t *args_used);

/* The plugin for program + args, or NULL. */
const char *kiln__builders_match(const kiln__builders *b, const char *program,
                                 const char *const *args, size_t n_args);

#endif /* KILN_BUILDERS_H */
