/* SPDX-License-Identifier: MIT */
/*
 * The step graph, with Cloud Build's ordering: no waitFor (or an empty one)
 * = after every earlier step; ['-'] = at the start; ids = after those.
 *
 * "After every earlier step" is stored reduced: it is enough to wait for the
 * earlier steps that no other earlier step waits for (the frontier), since a
 * step only ends successfully after everything it waits for did. A
 * 2,000-step chain in the default form then has 1,999 edges, not 2 million.
 */
#ifndef KILN_DAG_H
#define KILN_DAG_H

#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

typedef struct kiln__dag {
    size_t n;         /* steps in the list */
    int **deps;       /* deps[i]: indices step i waits for */
    size_t *n_deps;
} kiln__dag;

/* Build the graph of one step list (main steps or finally steps). ids in
 * waitFor that do not resolve are ignored here (pipeline.c reports them). */
void kiln__dag_build(kiln__dag *g, const kiln__step *steps, size_t n);
void kiln__dag_release(kiln__dag *g);
/* Is a (transitively) waited for by b? */
bool kiln__dag_is_ancestor(const kiln__dag *g, int a, int b);
/* Mark in keep[] the step with index `target` and all it waits for. */
void kiln__dag_closure(const kiln__dag *g, int target, bool *keep);

#endif /* KILN_DAG_H */
