/* SPDX-License-Identifier: MIT */
/*
 * The step graph (runner/dag.c): Cloud Build's ordering and the frontier
 * reduction of "after every earlier step", on pipelines parsed from YAML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dag.h"
#include "pipeline.h"

struct fixture {
    kiln__pipeline p;
    kiln__diag d;
    kiln__dag g;
};

static struct fixture *load(const char *yaml)
{
    struct fixture *f = calloc(1, sizeof *f);
    kiln__diag_init(&f->d);
    assert_int_equal(kiln__pipeline_parse(&f->p, "t.yaml", yaml, strlen(yaml), &f->d), 0);
    if (f->d.errors)
        fail_msg("unexpected errors:\n%s", f->d.text.buf);
    kiln__dag_build(&f->g, f->p.steps, f->p.n_steps);
    return f;
}

static void unload(struct fixture *f)
{
    kiln__dag_release(&f->g);
    kiln__pipeline_free(&f->p);
    kiln__diag_release(&f->d);
    free(f);
}

/* "i: a b c" with the deps of step i as indices, in stored order. */
static void assert_deps(const kiln__dag *g, size_t i, const char *want)
{
    kiln__buf got = KILN__BUF_INIT;
    for (size_t k = 0; k < g->n_deps[i]; k++)
        kiln__buf_addf(&got, "%s%d", k ? " " : "", g->deps[i][k]);
    if (strcmp(got.buf, want) != 0)
        fail_msg("step %zu waits for [%s], expected [%s]", i, got.buf, want);
    kiln__buf_release(&got);
}

static void test_default_is_a_chain(void **state)
{
    /* No waitFor: after every earlier step. Reduced, a chain needs only
     * the previous step: n-1 edges, not n*(n-1)/2. */
    kiln__buf y = KILN__BUF_INIT;
    kiln__buf_adds(&y, "steps:\n");
    for (int i = 0; i < 2000; i++)
        kiln__buf_addf(&y, "- script: echo %d\n", i);
    struct fixture *f = load(y.buf);
    kiln__buf_release(&y);
    size_t edges = 0;
    for (size_t i = 0; i < f->g.n; i++)
        edges += f->g.n_deps[i];
    assert_int_equal(edges, 1999);
    assert_deps(&f->g, 0, "");
    assert_deps(&f->g, 1, "0");
    assert_deps(&f->g, 1999, "1998");
    assert_true(kiln__dag_is_ancestor(&f->g, 0, 1999));
    assert_false(kiln__dag_is_ancestor(&f->g, 1999, 0));
    unload(f);
}

static void test_default_waits_for_the_frontier(void **state)
{
    struct fixture *f = load("steps:\n"
                             "- {id: a, script: x}\n"
                             "- {id: b, waitFor: ['-'], script: x}\n"
                             "- {id: c, waitFor: [a], script: x}\n"
                             "- {id: d, script: x}\n"
                             "- {id: e, waitFor: ['-'], script: x}\n"
                             "- {id: f, waitFor: [], script: x}\n");
    assert_deps(&f->g, 0, "");
    assert_deps(&f->g, 1, "");    /* '-': at the start */
    assert_deps(&f->g, 2, "0");
    /* d: every earlier step; a is covered by c, so b and c remain. */
    assert_deps(&f->g, 3, "1 2");
    assert_deps(&f->g, 4, "");
    /* f: an empty waitFor is the default too; d covers a, b, c. */
    assert_deps(&f->g, 5, "3 4");
    for (int i = 0; i < 5; i++)
        assert_true(kiln__dag_is_ancestor(&f->g, i, 5));
    assert_false(kiln__dag_is_ancestor(&f->g, 4, 3));
    unload(f);
}

static void test_diamond_and_duplicates(void **state)
{
    struct fixture *f = load("steps:\n"
                             "- {id: a, script: x}\n"
                             "- {id: b, waitFor: [a], script: x}\n"
                             "- {id: c, waitFor: [a, a, '-'], script: x}\n"
                             "- {id: d, waitFor: [b, c], script: x}\n");
    assert_deps(&f->g, 1, "0");
    assert_deps(&f->g, 2, "0"); /* a named twice, and '-' beside an id, count once */
    assert_deps(&f->g, 3, "1 2");
    assert_false(kiln__dag_is_ancestor(&f->g, 1, 2));
    assert_false(kiln__dag_is_ancestor(&f->g, 2, 1));
    assert_false(kiln__dag_is_ancestor(&f->g, 3, 3));
    unload(f);
}

static void test_closure_for_only(void **state)
{
    struct fixture *f = load("steps:\n"
                             "- {id: a, script: x}\n"
                             "- {id: b, waitFor: [a], script: x}\n"
                             "- {id: c, waitFor: [a], script: x}\n"
                             "- {id: d, waitFor: [b], script: x}\n"
                             "- {id: e, script: x}\n");
    bool keep[5] = {false};
    kiln__dag_closure(&f->g, 3, keep);
    assert_true(keep[0] && keep[1] && keep[3]);
    assert_false(keep[2] || keep[4]);
    memset(keep, 0, sizeof keep);
    kiln__dag_closure(&f->g, 4, keep); /* e waits for everything before it */
    for (int i = 0; i < 5; i++)
        assert_true(keep[i]);
    unload(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_a_chain),
        cmocka_unit_test(test_default_waits_for_the_frontier),
        cmocka_unit_test(test_diamond_and_duplicates),
        cmocka_unit_test(test_closure_for_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
