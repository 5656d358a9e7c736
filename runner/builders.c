/* SPDX-License-Identifier: MIT */
/* The builder-image table; see builders.h. */
#include "builders.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static const struct {
    const char *program;
    const char *args[3];
    const char *plugin;
} builtin[] = {
    {"docker", {"build", NULL}, "docker-build"},
    {"docker", {"push", NULL}, "docker-build"},
    {"gcloud", {"run", "deploy", NULL}, "cloudrun-deploy"},
    {"gcloud", {"builds", "submit", NULL}, "submit-sub-build"},
    {"kubectl", {"apply", NULL}, "k8s-deploy"},
    {"gke-deploy", {"run", NULL}, "k8s-deploy"},
    {"gke-deploy", {"apply", NULL}, "k8s-deploy"},
    {"git", {"clone", NULL}, "git-checkout"},
};

static void add_rule(kiln__builders *b, const char *program, const char *const *args, size_t n,
                     const char *plugin)
{
    b->rules = kiln__xrealloc(b->rules, (b->n + 1) * sizeof *b->rules);
    kiln__builder_rule *r = &b->rules[b->n++];
    r->program = kiln__xstrdup(program);
    r->args = kiln__xcalloc(n + 1, sizeof *r->args);
    for (size_t i = 0; i < n; i++)
        r->args[i] = kiln__xstrdup(args[i]);
    r->n_args = n;
    r->plugin = kiln__xstrdup(plugin);
}

void kiln__builders_load(kiln__builders *b, const char *file, kiln__diag *d)
{
    memset(b, 0, sizeof *b);
    if (file) {
        kiln__ydoc doc;
        kiln__buf err = KILN__BUF_INIT;
        if (kiln__ydoc_load(&doc, file, &err) != 0) {
            kiln__diag_add_raw(d, err.buf, 1);
        } else {
            const kiln__ynode *list = kiln__ymap_get(doc.root, "builders");
            if (!list || list->kind != KILN__Y_SEQ)
                kiln__diag_at(d, KILN__DIAG_ERROR, file, doc.root,
                              "expected 'builders:' with a list of {program, args, plugin}");
            for (size_t i = 0; list && list->kind == KILN__Y_SEQ && i < list->n; i++) {
                const kiln__ynode *e = list->items[i];
                const kiln__ynode *prog = kiln__ymap_get(e, "program");
                const kiln__ynode *args = kiln__ymap_get(e, "args");
                const kiln__ynode *plugin = kiln__ymap_get(e, "plugin");
                if (!prog || prog->kind != KILN__Y_SCALAR || !plugin || plugin->kind != KILN__Y_SCALAR ||
                    (args && args->kind != KILN__Y_SEQ)) {
                    kiln__diag_at(d, KILN__DIAG_ERROR, file, e,
                                  "a builder rule needs program (a string), plugin (a string) and "
                                  "optionally args (a list)");
                    continue;
                }
                const char *av[16];
                size_t n = 0;
                for (size_t k = 0; args && k < args->n && n < 16; k++)
                    if (args->items[k]->kind == KILN__Y_SCALAR)
                        av[n++] = args->items[k]->value;
                add_rule(b, prog->value, av, n, plugin->value);
            }
        }
        kiln__buf_release(&err);
        kiln__ydoc_free(&doc);
    }
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        size_t n = 0;
        while (n < 3 && builtin[i].args[n])
            n++;
        add_rule(b, builtin[i].program, builtin[i].args, n, builtin[i].plugin);
    }
}

void kiln__builders_release(kiln__builders *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->rules[i].program);
        for (size_t k = 0; k < b->rules[i].n_args; k++)
            free(b->rules[i].args[k]);
        free(b->rules[i].args);
        free(b->rules[i].plugin);
    }
    free(b->rules);
    memset(b, 0, sizeof *b);
}

const char *kiln__builder_program(const char *image, const char *entrypoint, const char *const *args,
                                  size_t n_args, char *buf, size_t cap, size_t *args_used)
{
    *args_used = 0;
    const char *prog = entrypoint;
    if (!prog && image) {
        const char *p = strstr(image, "/cloud-builders/");
        if (p) {
            p += strlen("/cloud-builders/");
            size_t n = strcspn(p, ":@/");
            if (n && n < cap) {
                memcpy(buf, p, n);
                buf[n] = '\0';
                prog = buf;
            }
        }
    }
    if (!prog && n_args) {
        prog = args[0];
        *args_used = 1;
    }
    if (!prog)
        return NULL;
    const char *slash = strrchr(prog, '/');
    return slash ? slash + 1 : prog;
}

const char *kiln__builders_match(const kiln__builders *b, const char *program,
                                 const char *const *args, size_t n_args)
{
    for (size_t i = 0; i < b->n; i++) {
        const kiln__builder_rule *r = &b->rules[i];
        if (strcmp(r->program, program) != 0 || r->n_args > n_args)
            continue;
        size_t k = 0;
        while (k < r->n_args && strcmp(r->args[k], args[k]) == 0)
            k++;
        if (k == r->n_args)
            return r->plugin;
    }
    return NULL;
}
