/* SPDX-License-Identifier: MIT */
/* kiln graph: the step graph as text, dot or mermaid. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"
#include "dag.h"

static void graph_print(const kiln__pipeline *p, const char *fmt)
{
    kiln__dag g;
    kiln__dag_build(&g, p->steps, p->n_steps);
    bool dot = fmt && !strcmp(fmt, "dot"), mermaid = fmt && !strcmp(fmt, "mermaid");
    if (dot)
        printf("digraph pipeline {\n  rankdir=LR;\n");
    if (mermaid)
        printf("graph LR\n");
    for (size_t i = 0; i < p->n_steps; i++) {
        const kiln__step *s = &p->steps[i];
        const char *plugin = kiln__step_plugin_name(s);
        if (dot) {
            printf("  s%zu [label=\"%s\\n(%s)\"];\n", i, s->key, plugin);
            for (size_t k = 0; k < g.n_deps[i]; k++)
                printf("  s%d -> s%zu;\n", g.deps[i][k], i);
        } else if (mermaid) {
            printf("  s%zu[\"%s (%s)\"]\n", i, s->key, plugin);
            for (size_t k = 0; k < g.n_deps[i]; k++)
                printf("  s%d --> s%zu\n", g.deps[i][k], i);
        } else {
            printf("#%zu %s (%s)", i, s->key, plugin);
            if (g.n_deps[i]) {
                printf(" <- ");
                for (size_t k = 0; k < g.n_deps[i]; k++)
                    printf("%s%s", k ? ", " : "", p->steps[g.deps[i][k]].key);
            } else {
                printf(" <- start");
            }
            putchar('\n');
        }
    }
    for (size_t i = 0; i < p->n_finally; i++) {
        const kiln__step *s = &p->finally[i];
        if (dot)
            printf("  f%zu [label=\"finally: %s\", shape=box];\n", i, s->key);
        else if (mermaid)
            printf("  f%zu[/\"finally: %s\"/]\n", i, s->key);
        else
            printf("finally #%zu %s (%s)\n", i, s->key, kiln__step_plugin_name(s));
    }
    if (dot)
        printf("}\n");
    kiln__dag_release(&g);
}

int kiln__cmd_graph(const kiln__cli_opts *o)
{
    if (!o->file)
        return kiln__usage_error("graph: which pipeline file?");
    kiln__engine eng;
    kiln__engine_init(&eng);
    kiln__registry_init(&eng.reg, o->plugin_paths, o->n_plugin_paths);
    eng.reg.api = &kiln__host_api;
    char workspace[PATH_MAX];
    if (!realpath(o->workspace ? o->workspace : ".", workspace))
        snprintf(workspace, sizeof workspace, ".");
    kiln__pipeline p;
    kiln__subst *subst = NULL;
    char build_id[40];
    kiln__new_build_id(build_id, sizeof build_id);
    kiln__secrets secrets;
    int rc = kiln__cli_load_checked(&eng, o, &p, &subst, &secrets, build_id, workspace);
    if (!rc)
        graph_print(&p, o->format);
    kiln__engine_release(&eng);
    if (subst)
        kiln__subst_destroy(subst);
    kiln__secrets_release(&secrets);
    kiln__pipeline_free(&p);
    return rc;
}

/* ---- plugins ----------------------------------------------------------- */

/* J on standard output as UTF-8: plugin paths and descriptions are bytes. */
