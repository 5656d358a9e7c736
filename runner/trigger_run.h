/* SPDX-License-Identifier: MIT */
/*
 * A triggered build's preparation, shared by `kiln trigger` (main.c) and
 * `kiln serve` (serve.c): check out the pushed commit, compute what Cloud
 * Build sets for a push (TRIGGER_NAME, COMMIT_SHA, BRANCH_NAME, ...), then
 * load, resolve and check the pipeline as `kiln run` does.
 */
#ifndef KILN_TRIGGER_RUN_H
#define KILN_TRIGGER_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "engine.h"
#include "triggers.h"

/* Run argv (no shell); stdout into out, stderr into err (either may be
 * NULL: stdout is dropped, stderr goes to ours). Returns the exit status,
 * or -1 when it could not run. Safe to call from a worker thread. */
int kiln__run_capture(const char *const *argv, kiln__buf *out, kiln__buf *err);

/* Clone `from` (a path or URL) into dir src without a checkout (shared:
 * objects borrowed through alternates, for a local mirror), then check out
 * commit `after`: on a branch named after ref for refs/heads/ and plain
 * names, detached for tags. Returns 0, or the git exit status with the
 * reason in err. */
int kiln__checkout(const char *from, const char *ref, const char *after, const char *src,
                   bool shared, kiln__buf *err);

/* Append to *v (n entries, "K=V", owned) the trigger's substitutions, then
 * the values Cloud Build sets for a push of ref at commit `after` to repo. */
void kiln__triggered_substs(const kiln__trigger *t, const char *repo, const char *ref,
                            const char *after, char ***v, size_t *n);

/* What kiln__load_checked needs besides the engine. */
typedef struct kiln__load_opts {
    const char *file;               /* the pipeline */
    const char *const *substs;      /* "K=V" overrides */
    size_t n_substs;
    const char *project;            /* NULL: $GOOGLE_CLOUD_PROJECT or "local" */
    bool triggered;                 /* ALLOW_LOOSE, dynamic substitutions */
    bool cloudbuild_strict;
    const char *builders;           /* NULL: $KILN_BUILDERS */
    const char *secrets_file, *secrets_command;
} kiln__load_opts;

/* Load, resolve and check a pipeline as `kiln run` does. Every note,
 * warning and error goes to text (FILE:LINE:COL lines). Returns the number
 * of errors: nothing may run unless it is 0. *subst is set (free it with
 * kiln__subst_destroy) when the file could be read; p and secrets always
 * need their release. Loop thread only (the builder table is global). */
int kiln__load_checked(kiln__engine *eng, const kiln__load_opts *o, kiln__pipeline *p,
                       kiln__subst **subst, kiln__secrets *secrets, const char *build_id,
                       const char *workspace, kiln__buf *text);

#endif /* KILN_TRIGGER_RUN_H */
