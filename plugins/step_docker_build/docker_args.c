/* SPDX-License-Identifier: MIT */
/* docker build/push command lines into docker-build's options; see docker_args.h. */
#include "docker_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *keep(dk_cli *c, char *s)
{
    char **o = realloc(c->owned, (c->n_owned + 1) * sizeof *o);
    if (!o || !s)
        abort();
    c->owned = o;
    c->owned[c->n_owned++] = s;
    return s;
}

/* "--flag=value" or "--flag value": the value, or NULL when this is not flag. */
static const char *flag_value(const kiln_strv *a, size_t *i, const char *shortf, const char *longf,
                              bool *missing)
{
    const char *w = a->v[*i];
    size_t ll = strlen(longf);
    if (strncmp(w, longf, ll) == 0 && w[ll] == '=')
        return w + ll + 1;
    if ((shortf && strcmp(w, shortf) == 0) || strcmp(w, longf) == 0) {
        if (*i + 1 >= a->n) {
            *missing = true;
            return NULL;
        }
        return a->v[++*i];
    }
    return NULL;
}

static int add_kv(dk_cli *c, kiln_kvv *kv, const char ***k, const char ***v, const char *item,
                  const char *flag, char *err, size_t cap)
{
    const char *eq = strchr(item, '=');
    if (!eq || eq == item) {
        snprintf(err, cap, "docker build %s '%s': expected KEY=VALUE", flag, item);
        return -1;
    }
    const char **nk = realloc((void *)*k, (kv->n + 1) * sizeof *nk);
    const char **nv = realloc((void *)*v, (kv->n + 1) * sizeof *nv);
    if (!nk || !nv)
        abort();
    *k = nk;
    *v = nv;
    nk[kv->n] = keep(c, strndup(item, (size_t)(eq - item)));
    nv[kv->n] = eq + 1;
    kv->n++;
    kv->keys = nk;
    kv->values = nv;
    return 0;
}

static void add_tag(dk_cli *c, const char *t)
{
    const char **n = realloc((void *)c->tag_v, (c->tags.n + 1) * sizeof *n);
    if (!n)
        abort();
    c->tag_v = n;
    n[c->tags.n++] = t;
    c->tags.v = n;
}

int dk_cli_parse(const kiln_strv *a, dk_cli *c, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    if (!a->n) {
        snprintf(err, cap, "args: empty; expected [build, ...] or [push, IMAGE]");
        return -1;
    }
    if (strcmp(a->v[0], "push") == 0) {
        if (a->n != 2 || a->v[1][0] == '-') {
            snprintf(err, cap, "args: expected [push, IMAGE:TAG]");
            return -1;
        }
        c->push_only = true;
        add_tag(c, a->v[1]);
        return 0;
    }
    if (strcmp(a->v[0], "build") != 0) {
        snprintf(err, cap, "args: 'docker %s' is not something docker-build does (build, push); "
                           "run it with entrypoint: docker instead", a->v[0]);
        return -1;
    }
    for (size_t i = 1; i < a->n; i++) {
        const char *w = a->v[i], *v;
        bool missing = false;
        if ((v = flag_value(a, &i, "-t", "--tag", &missing)))
            add_tag(c, v);
        else if (!missing && (v = flag_value(a, &i, "-f", "--file", &missing)))
            c->dockerfile = v;
        else if (!missing && (v = flag_value(a, &i, NULL, "--build-arg", &missing))) {
            if (add_kv(c, &c->build_args, &c->arg_k, &c->arg_v, v, "--build-arg", err, cap))
                return -1;
        } else if (!missing && (v = flag_value(a, &i, NULL, "--label", &missing))) {
            if (add_kv(c, &c->labels, &c->label_k, &c->label_v, v, "--label", err, cap))
                return -1;
        } else if (!missing && (v = flag_value(a, &i, NULL, "--target", &missing)))
            c->target = v;
        else if (!missing && (v = flag_value(a, &i, NULL, "--platform", &missing)))
            c->platform = v;
        else if (missing) {
            snprintf(err, cap, "docker build %s: a value is missing", w);
            return -1;
        } else if (strcmp(w, "--no-cache") == 0)
            c->no_cache = true;
        else if (strcmp(w, "--pull") == 0)
            c->pull = true;
        else if (strcmp(w, "-q") == 0 || strcmp(w, "--quiet") == 0 || strcmp(w, "--rm") == 0 ||
                 strcmp(w, "--force-rm") == 0)
            ; /* what docker-build does anyway, or only affects the CLI's output */
        else if (w[0] == '-' && w[1]) {
            snprintf(err, cap, "docker build %s is not supported by docker-build; run the step with "
                               "entrypoint: docker to use the docker CLI",
                     w);
            return -1;
        } else if (c->context) {
            snprintf(err, cap, "docker build: two build contexts ('%s' and '%s')", c->context, w);
            return -1;
        } else
            c->context = w;
    }
    if (!c->context) {
        snprintf(err, cap, "docker build: no build context (such as '.') in args");
        return -1;
    }
    return 0;
}

void dk_cli_free(dk_cli *c)
{
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free((void *)c->tag_v);
    free((void *)c->arg_k);
    free((void *)c->arg_v);
    free((void *)c->label_k);
    free((void *)c->label_v);
    memset(c, 0, sizeof *c);
}
