/* SPDX-License-Identifier: MIT */
/* Step graph with frontier reduction; see dag.h. */
#include "dag.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static int find_earlier(const kiln__step *steps, size_t before, const char *id)
{
    for (size_t j = before; j-- > 0;)
        if (steps[j].id && strcmp(steps[j].id, id) == 0)
            return (int)j;
    return -1;
}

void kiln__dag_build(kiln__dag *g, const kiln__step *steps, size_t n)
{
    g->n = n;
    g->deps = kiln__xcalloc(n ? n : 1, sizeof *g->deps);
    g->n_deps = kiln__xcalloc(n ? n : 1, sizeof *g->n_deps);
    /* The frontier: earlier steps nobody waits for yet. */
    int *frontier = kiln__xmalloc((n ? n : 1) * sizeof *frontier);
    bool *in_frontier = kiln__xcalloc(n ? n : 1, sizeof *in_frontier);
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        const kiln__step *s = &steps[i];
        bool only_dash = s->wait_for.n > 0;
        for (size_t w = 0; w < s->wait_for.n; w++)
            if (strcmp(s->wait_for.v[w], "-") != 0)
                only_dash = false;
        int *d = NULL;
        size_t nd = 0;
        if (s->wait_for.n == 0) {
            d = kiln__xmalloc((nf ? nf : 1) * sizeof *d);
            for (size_t k = 0; k < nf; k++)
                d[nd++] = frontier[k];
        } else if (!only_dash) {
            d = kiln__xmalloc(s->wait_for.n * sizeof *d);
            for (size_t w = 0; w < s->wait_for.n; w++) {
                if (strcmp(s->wait_for.v[w], "-") == 0)
                    continue;
                int j = find_earlier(steps, i, s->wait_for.v[w]);
                bool dup = false;
                for (size_t k = 0; k < nd && !dup; k++)
                    dup = d[k] == j;
                if (j >= 0 && !dup)
                    d[nd++] = j;
            }
        }
        g->deps[i] = d;
        g->n_deps[i] = nd;
        /* Whatever i waits for is covered by i from now on. */
        for (size_t k = 0; k < nd; k++)
            in_frontier[d[k]] = false;
        size_t w = 0;
        for (size_t k = 0; k < nf; k++)
            if (in_frontier[frontier[k]])
                frontier[w++] = frontier[k];
        nf = w;
        frontier[nf++] = (int)i;
        in_frontier[i] = true;
    }
    free(frontier);
    free(in_frontier);
}

void kiln__dag_release(kiln__dag *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->deps[i]);
    free(g->deps);
    free(g->n_deps);
    memset(g, 0, sizeof *g);
}

void kiln__dag_closure(const kiln__dag *g, int target, bool *keep)
{
    if (target < 0 || (size_t)target >= g->n || keep[target])
        return;
    int *stack = kiln__xmalloc(g->n * sizeof *stack);
    size_t top = 0;
    stack[top++] = target;
    keep[target] = true;
    while (top) {
        int i = stack[--top];
        for (size_t k = 0; k < g->n_deps[i]; k++) {
            int j = g->deps[i][k];
            if (!keep[j]) {
                keep[j] = true;
                stack[top++] = j;
            }
        }
    }
    free(stack);
}

bool kiln__dag_is_ancestor(const kiln__dag *g, int a, int b)
{
    if (a == b)
        return false;
    bool *seen = kiln__xcalloc(g->n, sizeof *seen);
    kiln__dag_closure(g, b, seen);
    bool r = seen[a];
    free(seen);
    return r;
}
