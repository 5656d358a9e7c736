/* SPDX-License-Identifier: MIT */
/* Substitutions and plugin option checks for a loaded pipeline; see resolve.h. */
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "builders.h"
#include "config_map.h"
#include "engine.h"
#include "internal.h"

const char *kiln__step_plugin_name(const kiln__step *s)
{
    return s->uses ? s->uses : "exec";
}

/* ---- git facts ------------------------------------------------------ */

/* The three git questions run at once, each git spawned directly (no
 * shell): in a repository they were most of `kiln validate`'s time. */
struct git_job {
    const char *argv[10];
    pid_t pid;
    int fd;
    char *out; /* trimmed stdout when git exited 0, else NULL */
};

static void run_gits(struct git_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct git_job *j = &jobs[i];
        int fd[2];
        j->pid = -1;
        j->fd = -1;
        j->out = NULL;
        if (pipe2(fd, O_CLOEXEC) != 0)
            continue;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&j->pid, "git", &fa, NULL, (char *const *)j->argv, environ) != 0)
            j->pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        close(fd[1]);
        if (j->pid < 0)
            close(fd[0]);
        else
            j->fd = fd[0];
    }
    for (size_t i = 0; i < n; i++) {
        struct git_job *j = &jobs[i];
        if (j->pid < 0)
            continue;
        kiln__buf b = KILN__BUF_INIT;
        char chunk[1024];
        ssize_t r;
        while ((r = read(j->fd, chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR))
            if (r > 0)
                kiln__buf_add(&b, chunk, (size_t)r);
        close(j->fd);
        int st = 0;
        while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            kiln__buf_release(&b);
            continue;
        }
        while (b.len && (b.buf[b.len - 1] == '\n' || b.buf[b.len - 1] == '\r'))
            b.buf[--b.len] = '\0';
        j->out = b.buf ? kiln__buf_detach(&b) : kiln__xstrdup("");
    }
}

/* Whether git could find a repository at DIR: a `.git` in DIR or above it,
 * DIR a bare repository, or GIT_DIR set. A few stat()s that spare a
 * workspace outside any repository three git processes (~10-20 ms). */
static bool maybe_in_repo(const char *dir)
{
    if (getenv("GIT_DIR"))
        return true;
    char *p = realpath(dir, NULL);
    if (!p)
        return true; /* let git say what it makes of it */
    struct stat st;
    bool found = false;
    kiln__buf b = KILN__BUF_INIT;
    for (;;) {
        kiln__buf_reset(&b);
        kiln__buf_addf(&b, "%s/.git", strcmp(p, "/") ? p : "");
        found = stat(b.buf, &st) == 0;
        if (!found) {
            kiln__buf_reset(&b);
            kiln__buf_addf(&b, "%s/objects", p);
            bool objects = stat(b.buf, &st) == 0 && S_ISDIR(st.st_mode);
            kiln__buf_reset(&b);
            kiln__buf_addf(&b, "%s/HEAD", p);
            found = objects && stat(b.buf, &st) == 0;
        }
        char *slash = strrchr(p, '/');
        if (found || !slash || (slash == p && !p[1]))
            break;
        slash[slash == p] = '\0';
    }
    kiln__buf_release(&b);
    free(p);
    return found;
}

void kiln__git_facts(const char *dir, kiln__subst *s)
{
    if (!maybe_in_repo(dir))
        return;
    struct git_job jobs[3] = {
        {{"git", "-C", dir, "rev-parse", "HEAD", "--abbrev-ref", "HEAD", "--show-toplevel", NULL}, 0, 0, NULL},
        {{"git", "-C", dir, "describe", "--tags", "--exact-match", "HEAD", NULL}, 0, 0, NULL},
        {{"git", "-C", dir, "config", "--get", "remote.origin.url", NULL}, 0, 0, NULL},
    };
    run_gits(jobs, 3);
    char *out = jobs[0].out, *tag = jobs[1].out, *url = jobs[2].out;
    if (!out) {
        free(tag);
        free(url);
        return;
    }
    char *save = NULL;
    char *sha = strtok_r(out, "\n", &save);
    char *branch = strtok_r(NULL, "\n", &save);
    char *top = strtok_r(NULL, "\n", &save);
    if (sha && strlen(sha) >= 7) {
        char short_sha[8];
        memcpy(short_sha, sha, 7);
        short_sha[7] = '\0';
        kiln__subst_set(s, "COMMIT_SHA", sha);
        kiln__subst_set(s, "REVISION_ID", sha);
        kiln__subst_set(s, "SHORT_SHA", short_sha);
    }
    if (branch && strcmp(branch, "HEAD") != 0) {
        kiln__subst_set(s, "BRANCH_NAME", branch);
        kiln__subst_set(s, "REF_NAME", branch);
    }
    if (tag && *tag) {
        kiln__subst_set(s, "TAG_NAME", tag);
        if (!branch || strcmp(branch, "HEAD") == 0)
            kiln__subst_set(s, "REF_NAME", tag);
    }
    free(tag);
    const char *name_src = url && *url ? url : top;
    if (name_src) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", name_src);
        size_t len = strlen(tmp);
        while (len && tmp[len - 1] == '/')
            tmp[--len] = '\0';
        if (len > 4 && strcmp(tmp + len - 4, ".git") == 0)
            tmp[len -= 4] = '\0';
        const char *base = strrchr(tmp, '/');
        base = base ? base + 1 : tmp;
        const char *colon = strrchr(base, ':');
        if (colon)
            base = colon + 1;
        if (*base)
            kiln__subst_set(s, "REPO_NAME", base);
    }
    free(url);
    free(out);
}

/* ---- substitution values --------------------------------------------- */

int kiln__resolve_subst(kiln__pipeline *p, const kiln__resolve_opts *o, kiln__diag *d,
                        kiln__subst **out)
{
    kiln__subst *s = kiln__subst_create();
    kiln__subst_set(s, "PROJECT_ID", o->project_id ? o->project_id : "");
    kiln__subst_set(s, "PROJECT_NUMBER", "");
    kiln__subst_set(s, "BUILD_ID", o->build_id ? o->build_id : "");
    kiln__subst_set(s, "LOCATION", "local");
    if (o->workspace)
        kiln__git_facts(o->workspace, s);
    int errors = 0;
    const kiln__ynode *subs = p->substitutions;
    for (size_t i = 0; subs && i < subs->n; i++) {
        const kiln__ynode *k = subs->items[2 * i], *v = subs->items[2 * i + 1];
        char *msg = kiln__subst_check_key(k->value, false);
        if (msg) {
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, k, "invalid .substitutions field: %s", msg);
            free(msg);
            errors++;
            continue;
        }
        kiln__subst_set(s, k->value, v->kind == KILN__Y_SCALAR && !kiln__ynode_is_null(v) ? v->value : "");
    }
    for (size_t i = 0; i < o->n_overrides; i++) {
        const char *kv = o->overrides[i];
        const char *eq = strchr(kv, '=');
        if (!eq) {
            kiln__diag_at(d, KILN__DIAG_ERROR, "--substitutions", NULL,
                          "'%s' is not KEY=VALUE", kv);
            errors++;
            continue;
        }
        char *key = kiln__xstrndup(kv, (size_t)(eq - kv));
        char *msg = kiln__subst_check_key(key, true);
        if (msg) {
            kiln__diag_at(d, KILN__DIAG_ERROR, "--substitutions", NULL,
                          "invalid value for 'build.substitutions': %s", msg);
            free(msg);
            errors++;
        } else {
            kiln__subst_set(s, key, eq + 1);
        }
        free(key);
    }
    if (p->options.dynamic_substitutions || o->triggered) {
        char *msg = NULL;
        if (kiln__subst_dynamic(s, &msg) != 0) {
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, p->substitutions,
                          "invalid value for 'build.substitutions': %s", msg ? msg : "bad substitution");
            free(msg);
            errors++;
        }
    }
    if (o->triggered) {
        p->options.subst_mode = KILN__ALLOW_LOOSE;
        p->options.dynamic_substitutions = true;
    }
    *out = s;
    return errors ? KILN_ECONFIG : 0;
}

/* ---- expansion -------------------------------------------------------- */

/* ${{ steps.ID.outputs.KEY }}: parse at p (which points at "${{"). Returns the
 * length consumed, 0 when it is not such a reference. */
static size_t parse_output_ref(const char *p, char *id, size_t id_cap, char *key, size_t key_cap)
{
    const char *q = p + 3;
    while (*q == ' ')
        q++;
    if (strncmp(q, "steps.", 6) != 0)
        return 0;
    q += 6;
    const char *id_start = q;
    const char *marker = strstr(q, ".outputs.");
    const char *end = strstr(q, "}}");
    if (!marker || !end || marker > end)
        return 0;
    size_t idl = (size_t)(marker - id_start);
    q = marker + 9;
    const char *key_start = q;
    while (q < end && *q != ' ')
        q++;
    size_t kl = (size_t)(q - key_start);
    while (q < end && *q == ' ')
        q++;
    if (q != end || !idl || !kl || idl >= id_cap || kl >= key_cap)
        return 0;
    memcpy(id, id_start, idl);
    id[idl] = '\0';
    memcpy(key, key_start, kl);
    key[kl] = '\0';
    return (size_t)(end + 2 - p);
}

static int expand_outputs(kiln__expand_ctx *c, const kiln__ynode *at, const char *in,
                          kiln__buf *out)
{
    const char *p = in;
    int rc = 0;
    while (*p) {
        const char *hit = strstr(p, "${{");
        if (!hit) {
            kiln__buf_adds(out, p);
            break;
        }
        kiln__buf_add(out, p, (size_t)(hit - p));
        char id[256], key[256];
        size_t n = parse_output_ref(hit, id, sizeof id, key, sizeof key);
        if (!n) {
            kiln__buf_add(out, hit, 3);
            p = hit + 3;
            continue;
        }
        p = hit + n;
        if (!c->output) {
            /* Validation: the step must be one this step waits for. */
            const kiln__step *src = kiln__pipeline_find(c->p, id);
            if (!src) {
                kiln__diag_at(c->d, KILN__DIAG_ERROR, c->file, at,
                              "%s: ${{ steps.%s.outputs.%s }} names no step with id \"%s\"",
                              c->step->label, id, key, id);
                rc = KILN_ECONFIG;
            } else if (!c->step->is_finally &&
                       !kiln__dag_is_ancestor(c->dag, src->index, c->step->index)) {
                kiln__diag_at(c->d, KILN__DIAG_ERROR, c->file, at,
                              "%s: reads an output of step \"%s\", which it does not wait for; add "
                              "\"%s\" to its waitFor",
                              c->step->label, id, id);
                rc = KILN_ECONFIG;
            }
            kiln__buf_addf(out, "${{ steps.%s.outputs.%s }}", id, key);
            continue;
        }
        const char *v = c->output(c->output_data, id, key);
        if (!v) {
            kiln__diag_at(c->d, KILN__DIAG_ERROR, c->file, at, "%s: step \"%s\" has no output \"%s\"",
                          c->step->label, id, key);
            rc = KILN_ECONFIG;
            continue;
        }
        kiln__buf_adds(out, v);
    }
    return rc;
}

int kiln__expand(void *ctx, const kiln__ynode *at, const char *in, kiln__buf *out)
{
    kiln__expand_ctx *c = ctx;
    kiln__buf errs = KILN__BUF_INIT, warns = KILN__BUF_INIT, tmp = KILN__BUF_INIT;
    int hard = kiln__subst_expand(c->subst, in, &tmp, &errs, &warns);
    int rc = 0;
    /* One diagnostic per message line. */
    kiln__buf *lists[2] = {&errs, &warns};
    for (int li = 0; li < 2; li++) {
        bool is_err = li == 0 || c->p->options.subst_mode == KILN__MUST_MATCH;
        char *save = NULL;
        for (char *line = strtok_r(lists[li]->buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            if (li == 1 && !is_err)
                continue; /* ALLOW_LOOSE: Cloud Build ignores these */
            kiln__diag_at(c->d, KILN__DIAG_ERROR, c->file, at, "invalid value for 'build.substitutions': %s",
                          line);
            rc = KILN_ECONFIG;
        }
    }
    (void)hard;
    if (!rc)
        rc = expand_outputs(c, at, tmp.buf, out);
    kiln__buf_release(&errs);
    kiln__buf_release(&warns);
    kiln__buf_release(&tmp);
    if (rc)
        c->errors++;
    return rc;
}

/* ---- exec steps -------------------------------------------------------- */

static kiln__ynode *mk_scalar(kiln__pipeline *p, const kiln__ynode *pos, const char *v)
{
    kiln__ynode *n = kiln__ydoc_alloc(&p->doc, sizeof *n);
    n->kind = KILN__Y_SCALAR;
    n->line = pos ? pos->line : 0;
    n->col = pos ? pos->col : 0;
    n->quoted = true;
    n->value = v;
    n->len = strlen(v);
    return n;
}

/* An empty list or mapping at pos's position, with room for cap items
 * (a mapping's pairs take two). The caller fills items and sets n. */
static kiln__ynode *mk_node(kiln__pipeline *p, kiln__ykind kind, const kiln__ynode *pos, size_t cap)
{
    kiln__ynode *m = kiln__ydoc_alloc(&p->doc, sizeof *m);
    m->kind = kind;
    m->line = pos->line;
    m->col = pos->col;
    m->items = kiln__ydoc_alloc(&p->doc, cap * sizeof *m->items);
    return m;
}

/* True the first time key is seen (notes said once per build, not per step). */
static bool first_time(kiln__buf *seen, const char *key)
{
    kiln__buf k = KILN__BUF_INIT;
    kiln__buf_addf(&k, "|%s|", key);
    bool first = !strstr(seen->buf, k.buf);
    if (first)
        kiln__buf_add(seen, k.buf, k.len);
    kiln__buf_release(&k);
    return first;
}

static const kiln__builders *g_builders;

void kiln__resolve_set_builders(const kiln__builders *b)
{
    g_builders = b;
}

static bool plugin_takes_args(const kiln_plugin *d)
{
    for (const kiln_option *o = d->options; o && o->name; o++)
        if (!strcmp(o->name, "args") && o->type == KILN_OPT_STRING_LIST)
            return true;
    return false;
}

/* A Cloud Build step whose program the builder table maps to a plugin: the
 * plugin takes over when installed and able to read the tool's own args;
 * else the step runs on this machine and says which plugin it waits for. */
static bool map_builder(kiln__pipeline *p, kiln__step *s, kiln__registry *reg, kiln__diag *d,
                        kiln__buf *noted)
{
    if (!g_builders || s->script)
        return false;
    char buf[128];
    size_t used = 0;
    const char *prog = kiln__builder_program(s->name, s->entrypoint, s->args.v, s->args.n, buf,
                                             sizeof buf, &used);
    if (!prog)
        return false;
    const char *plugin = kiln__builders_match(g_builders, prog, s->args.v + used, s->args.n - used);
    if (!plugin)
        return false;
    kiln__plugin *pl = NULL;
    kiln__buf err = KILN__BUF_INIT;
    int rc = kiln__registry_get(reg, KILN_PLUGIN_STEP, plugin, &pl, &err);
    kiln__buf_release(&err);
    const kiln__ynode *at = s->name_node ? s->name_node : s->node;
    const char *sub = s->args.n > used ? s->args.v[used] : "";
    char what[256];
    snprintf(what, sizeof what, "%s %s", prog, sub);
    bool say = first_time(noted, what); /* one note per command, not per step */
    if (rc || !plugin_takes_args(pl->desc) || used) {
        if (say)
            kiln__diag_at(d, KILN__DIAG_NOTE, p->file, at,
                          "%s: '%s' maps to plugin '%s', which %s; such steps run on this machine",
                          s->label, what, plugin,
                          rc ? "is not installed" : "does not take the tool's arguments");
        return false;
    }
    kiln__ynode *m = mk_node(p, KILN__Y_MAP, s->node, 2);
    m->items[0] = mk_scalar(p, s->args.node, "args");
    m->items[1] = (kiln__ynode *)s->args.node;
    m->n = 1;
    s->with = m;
    s->uses = plugin;
    if (say)
        kiln__diag_at(d, KILN__DIAG_NOTE, p->file, at, "%s: '%s' runs through plugin '%s'", s->label,
                      what, plugin);
    return true;
}

/* Cloud Build's fields of a step without uses: as exec's options. */
static void synthesize_exec_with(kiln__pipeline *p, kiln__step *s, kiln__registry *reg,
                                 kiln__diag *d, kiln__buf *noted)
{
    if (s->uses || map_builder(p, s, reg, d, noted))
        return;
    kiln__ynode *m = mk_node(p, KILN__Y_MAP, s->node, 8);
    size_t k = 0;
    if (s->name) {
        m->items[k++] = mk_scalar(p, s->name_node, "image");
        m->items[k++] = (kiln__ynode *)s->name_node;
    }
    if (s->entrypoint) {
        m->items[k++] = mk_scalar(p, s->entrypoint_node, "entrypoint");
        m->items[k++] = (kiln__ynode *)s->entrypoint_node;
    }
    if (s->args.node) {
        m->items[k++] = mk_scalar(p, s->args.node, "args");
        m->items[k++] = (kiln__ynode *)s->args.node;
    }
    if (s->script) {
        const kiln__ynode *sn = kiln__ymap_get(s->node, "script");
        m->items[k++] = mk_scalar(p, sn, "script");
        m->items[k++] = (kiln__ynode *)sn;
    }
    m->n = k / 2;
    s->with = m;
}

/*
 * Cloud Build pushes the top-level `images:` after every step succeeded:
 * here that is one more step per image at the end of the list (so after all
 * the others), `docker-build` with args [push, IMAGE]. In a dry run the push
 * is recorded in the plan, not sent.
 */
static void add_image_pushes(kiln__pipeline *p, kiln__registry *reg, kiln__diag *d)
{
    if (!p->images.n || p->images_added)
        return;
    p->images_added = true;
    kiln__plugin *pl = NULL;
    kiln__buf err = KILN__BUF_INIT;
    if (kiln__registry_get(reg, KILN_PLUGIN_STEP, "docker-build", &pl, &err) != 0) {
        kiln__diag_at(d, KILN__DIAG_ERROR, p->file, p->images.node,
                      "images: pushing them needs the docker-build plugin: %s", err.buf);
        kiln__buf_release(&err);
        return;
    }
    kiln__buf_release(&err);
    size_t base = p->n_steps;
    p->steps = kiln__xrealloc(p->steps, (base + p->images.n) * sizeof *p->steps);
    for (size_t i = 0; i < p->images.n; i++) {
        const kiln__ynode *img = p->images.node->items[i];
        kiln__step *st = &p->steps[base + i];
        memset(st, 0, sizeof *st);
        char buf[64];
        snprintf(buf, sizeof buf, "images[%zu]", i);
        st->index = (int)(base + i);
        st->node = img;
        st->id = st->key = kiln__ydoc_strdup(&p->doc, buf);
        snprintf(buf, sizeof buf, "images[%zu] (push)", i);
        st->label = kiln__ydoc_strdup(&p->doc, buf);
        st->uses = "docker-build";
        st->automap = -1;
        st->retry.backoff_ms = 1000;
        st->retry.factor = 2.0;
        kiln__ynode *args = mk_node(p, KILN__Y_SEQ, img, 2);
        args->items[0] = mk_scalar(p, img, "push");
        args->items[1] = (kiln__ynode *)img;
        args->n = 2;
        kiln__ynode *m = mk_node(p, KILN__Y_MAP, img, 2);
        m->items[0] = mk_scalar(p, img, "args");
        m->items[1] = args;
        m->n = 1;
        st->with = m;
    }
    p->n_steps = base + p->images.n;
}

/* Cloud Build's tag format: [\w][\w.-]{0,127} */
static bool valid_build_tag(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!word && (i == 0 || (c != '.' && c != '-')))
            return false;
    }
    return true;
}

void kiln__resolve_check(kiln__pipeline *p, kiln__subst *s, kiln__registry *reg, kiln__diag *d)
{
    add_image_pushes(p, reg, d);
    kiln__buf noted = KILN__BUF_INIT; /* plugins already named in a builder note */
    kiln__dag dag, fdag;
    kiln__dag_build(&dag, p->steps, p->n_steps);
    kiln__dag_build(&fdag, p->finally, p->n_finally);
    for (size_t list = 0; list < 2; list++) {
        kiln__step *steps = list ? p->finally : p->steps;
        size_t n = list ? p->n_finally : p->n_steps;
        for (size_t i = 0; i < n; i++) {
            kiln__step *st = &steps[i];
            synthesize_exec_with(p, st, reg, d, &noted);
            kiln__expand_ctx c = {s, d, p->file, st, list ? &fdag : &dag, p, NULL, NULL, 0};
            kiln__buf tmp = KILN__BUF_INIT;
            for (size_t e = 0; e < st->env.n; e++) {
                kiln__expand(&c, st->env.node->items[e], st->env.v[e], &tmp);
                kiln__buf_reset(&tmp);
            }
            if (st->dir)
                kiln__expand(&c, st->dir_node, st->dir, &tmp);
            kiln__buf_release(&tmp);
            kiln__plugin *pl = NULL;
            kiln__buf err = KILN__BUF_INIT;
            const char *pname = kiln__step_plugin_name(st);
            int lrc = kiln__registry_get(reg, KILN_PLUGIN_STEP, pname, &pl, &err);
            if (lrc == KILN_ENOTFOUND && reg->mock_deploys && kiln__is_known_deploy(pname)) {
                /* dryrun.c: recorded by mock-deploy from `with:` as written. */
                kiln__diag_at(d, KILN__DIAG_NOTE, p->file, kiln__ymap_get(st->node, "uses"),
                              "%s: deploy plugin '%s' is not installed; this dry run records its "
                              "options as written",
                              st->label, pname);
                kiln__buf_release(&err);
                kiln__buf etmp = KILN__BUF_INIT;
                for (size_t w = 0; st->with && w < st->with->n; w++)
                    kiln__dryrun_check_node(&c, st->with->items[2 * w + 1], &etmp);
                kiln__buf_release(&etmp);
                continue;
            }
            if (lrc != 0) {
                const kiln__ynode *at = st->uses ? kiln__ymap_get(st->node, "uses") : st->node;
                kiln__diag_at(d, KILN__DIAG_ERROR, p->file, at, "%s: %s", st->label, err.buf);
                kiln__buf_release(&err);
                continue;
            }
            kiln__buf_release(&err);
            /* Its options were built from fields already reported as wrong:
             * checking them again would only repeat those errors. */
            if (st->invalid)
                continue;
            char prefix[300];
            snprintf(prefix, sizeof prefix, "%s: ", st->label);
            kiln__config *cfg = NULL;
            if (kiln__config_fill(pl->desc, st->with, d, p->file, st->node, prefix, kiln__expand, &c,
                                  pl->plugin_data, &cfg) == 0)
                kiln__config_free(cfg);
        }
    }
    kiln__buf tmp = KILN__BUF_INIT;
    kiln__expand_ctx c = {s, d, p->file, NULL, &dag, p, NULL, NULL, 0};
    kiln__step top = {0};
    top.label = "build";
    c.step = &top;
    for (size_t i = 0; i < p->options.env.n; i++) {
        kiln__expand(&c, p->options.env.node->items[i], p->options.env.v[i], &tmp);
        kiln__buf_reset(&tmp);
    }
    for (size_t i = 0; i < p->images.n; i++) {
        kiln__expand(&c, p->images.node->items[i], p->images.v[i], &tmp);
        kiln__buf_reset(&tmp);
    }
    for (size_t i = 0; i < p->tags.n; i++) {
        if (kiln__expand(&c, p->tags.node->items[i], p->tags.v[i], &tmp) == 0 && tmp.len &&
            !valid_build_tag(tmp.buf))
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, p->tags.node->items[i],
                          "invalid build tag \"%s\": must match format \"^[\\w][\\w.-]{0,127}$\"",
                          tmp.buf);
        kiln__buf_reset(&tmp);
    }
    /* Step images, after substitution, as Cloud Build checks them. */
    for (size_t i = 0; i < p->n_steps; i++) {
        const kiln__step *st = &p->steps[i];
        if (!st->name || !st->name_node)
            continue;
        kiln__expand_ctx sc = {s, d, p->file, st, &dag, p, NULL, NULL, 0};
        if (kiln__expand(&sc, st->name_node, st->name, &tmp) == 0) {
            /* Only the repository must be lowercase, not a tag or digest. */
            size_t repo_len = strcspn(tmp.buf, "@");
            const char *slash = memrchr(tmp.buf, '/', repo_len);
            const char *colon = memrchr(tmp.buf, ':', repo_len);
            if (colon && (!slash || colon > slash))
                repo_len = (size_t)(colon - tmp.buf);
            for (const char *q = tmp.buf; q < tmp.buf + repo_len; q++)
                if (*q >= 'A' && *q <= 'Z') {
                    kiln__diag_at(d, KILN__DIAG_ERROR, p->file, st->name_node,
                                  "%s: invalid image name \"%s\" contains uppercase letters",
                                  st->label, tmp.buf);
                    break;
                }
        }
        kiln__buf_reset(&tmp);
    }
    kiln__buf_release(&tmp);
    /* Defined but never used: an error under MUST_MATCH. */
    if (p->options.subst_mode == KILN__MUST_MATCH) {
        kiln__buf w = KILN__BUF_INIT;
        kiln__subst_unused(s, &w);
        char *save = NULL;
        for (char *line = strtok_r(w.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            /* Point at the key in the file when it came from there; else
             * it came from --substitutions. */
            const kiln__ynode *at = NULL;
            const char *q1 = strchr(line, '"');
            if (q1 && p->substitutions) {
                const char *q2 = strchr(q1 + 1, '"');
                for (size_t i = 0; q2 && i < p->substitutions->n; i++) {
                    const kiln__ynode *k = p->substitutions->items[2 * i];
                    if (strlen(k->value) == (size_t)(q2 - q1 - 1) &&
                        !strncmp(k->value, q1 + 1, (size_t)(q2 - q1 - 1)))
                        at = k;
                }
            }
            kiln__diag_at(d, KILN__DIAG_ERROR, at ? p->file : "--substitutions", at,
                          "invalid value for 'build.substitutions': %s (or set options: "
                          "substitution_option: ALLOW_LOOSE)",
                          line);
        }
        kiln__buf_release(&w);
    }
    kiln__buf_release(&noted);
    kiln__dag_release(&dag);
    kiln__dag_release(&fdag);
}
