/* SPDX-License-Identifier: MIT */
/*
 * Cloud Build volumes: `volumes: [{name, path}]` on steps and in options.
 *
 * Each name is a directory of the build's, created empty when the build is
 * set up and removed when it is destroyed. The processes of a step that
 * names volumes start through kiln-mount-exec, which mounts each directory
 * at its path in a mount namespace of their own; other steps, and this
 * machine, do not see it there.
 */
#ifndef KILN_VOLUMES_H
#define KILN_VOLUMES_H

#include "buf.h"
#include "diag.h"
#include "pipeline.h"

typedef struct kiln__build kiln__build;
typedef struct kiln_step kiln__rstep;

/* Cloud Build's rules (names, absolute and unreserved paths, no duplicates,
 * no clash with options.volumes, each name used by two steps or more), with
 * cloud-build-local's wording, at the position of the volume. */
void kiln__volumes_check(kiln__diag *d, const kiln__pipeline *p);

/* When the build names volumes: find kiln-mount-exec, check once that this
 * machine allows the namespaces, check that no volume hides the workspace
 * or kiln's temporary directory, and create the directories. */
int kiln__volumes_setup(kiln__build *b, kiln__buf *err);
/* Remove the build's volume directories and what the steps left in them. */
void kiln__volumes_remove(kiln__build *b);

/* The argv that runs ARGV for step s in its volumes, working directory CWD,
 * or NULL when s names none. Free with kiln__volumes_free_argv(). */
char **kiln__volumes_wrap(const kiln__rstep *s, const char *const *argv, const char *cwd);
void kiln__volumes_free_argv(char **argv);

/* Does an entry of PATH_ENV (a $PATH value) lie in one of s's volumes? A
 * program found only there is looked up by kiln-mount-exec, not by kiln. */
bool kiln__volumes_in_path(const kiln__rstep *s, const char *path_env);

/* Where PATH, as step s sees it, is on this machine when it lies in one of
 * the step's volumes (malloc'd), else NULL. */
char *kiln__volumes_host_path(const kiln__rstep *s, const char *path);

#endif /* KILN_VOLUMES_H */
