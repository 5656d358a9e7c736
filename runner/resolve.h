/* SPDX-License-Identifier: MIT */
/*
 * From a loaded pipeline to a checked one: substitution values (built-ins,
 * the file's, the command line's), every template expanded once to find its
 * errors, every step's plugin loaded and its `with:` checked against the
 * plugin's schema. All problems land in one kiln__diag.
 *
 * Steps without `uses:` run through the exec plugin: their Cloud Build
 * fields (name, entrypoint, args, script) become the exec plugin's options.
 *
 * Step outputs: ${{ steps.ID.outputs.KEY }} in any substituted field reads
 * the output KEY of step ID, which must be a step this one waits for
 * (directly or not). It is replaced when the step starts.
 */
#ifndef KILN_RESOLVE_H
#define KILN_RESOLVE_H

#include <stdbool.h>

#include "dag.h"
#include "diag.h"
#include "pipeline.h"
#include "plugin_loader.h"
#include "subst.h"

typedef struct kiln__resolve_opts {
    const char *const *overrides; /* "K=V" from --substitutions */
    size_t n_overrides;
    const char *workspace;        /* absolute */
    const char *build_id;
    const char *project_id;
    bool triggered;               /* ALLOW_LOOSE and dynamic substitutions forced */
} kiln__resolve_opts;

/* Built-ins, the workspace's git facts, the file's substitutions and the
 * overrides, checked and (when enabled) dynamically evaluated. */
int kiln__resolve_subst(kiln__pipeline *p, const kiln__resolve_opts *o, kiln__diag *d,
                        kiln__subst **out);

struct kiln__builders;
/* The builder-image table used by kiln__resolve_check (builders.h). */
void kiln__resolve_set_builders(const struct kiln__builders *b);

/* Check everything that depends on plugins and substitutions. */
void kiln__resolve_check(kiln__pipeline *p, kiln__subst *s, kiln__registry *reg, kiln__diag *d);

/* Expansion context for a step's fields. */
typedef struct kiln__expand_ctx {
    kiln__subst *subst;
    kiln__diag *d;
    const char *file;
    const kiln__step *step;
    const kiln__dag *dag;         /* for the ancestor check at validation */
    const kiln__pipeline *p;
    /* At run time: reads another step's output; NULL while validating. */
    const char *(*output)(void *data, const char *step_id, const char *key);
    void *output_data;
    int errors;
} kiln__expand_ctx;

/* A kiln__expand_fn (config_map.h). */
int kiln__expand(void *ctx, const kiln__ynode *at, const char *in, kiln__buf *out);

/* The plugin a step runs: uses:, or "exec". */
const char *kiln__step_plugin_name(const kiln__step *s);

/* Facts from the git repository at dir (COMMIT_SHA, SHORT_SHA, REVISION_ID,
 * BRANCH_NAME, TAG_NAME, REF_NAME, REPO_NAME); none when not a repository. */
void kiln__git_facts(const char *dir, kiln__subst *s);

#endif /* KILN_RESOLVE_H */
