/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the pipeline loader. Bytes -> YAML tree -> pipeline
 * model (fields, types, ids, waitFor) -> substitution values and dynamic
 * substitutions -> the DAG. Plugins are not loaded. Whatever the input, the
 * loader must not crash, leak or read out of bounds, and a rejected input
 * must come with at least one diagnostic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "diag.h"
#include "pipeline.h"
#include "resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    kiln__diag d;
    kiln__diag_init(&d);
    kiln__pipeline p;
    int rc = kiln__pipeline_parse(&p, "fuzz.yaml", (const char *)data, size, &d);
    if (rc != 0 && d.errors == 0)
        abort(); /* a refusal without a message */
    if (rc == 0) {
        kiln__resolve_opts o = {NULL, 0, NULL, "fuzz-build", "fuzz-project", false};
        kiln__subst *s = NULL;
        kiln__resolve_subst(&p, &o, &d, &s);
        kiln__dag g;
        kiln__dag_build(&g, p.steps, p.n_steps);
        for (size_t i = 0; i < g.n; i++)
            for (size_t k = 0; k < g.n_deps[i]; k++)
                if (g.deps[i][k] < 0 || (size_t)g.deps[i][k] >= i)
                    abort(); /* only earlier steps can be waited for */
        kiln__dag_release(&g);
        if (s)
            kiln__subst_destroy(s);
    }
    kiln__pipeline_free(&p);
    kiln__diag_release(&d);
    return 0;
}
