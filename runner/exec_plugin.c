/* SPDX-License-Identifier: MIT */
/*
 * Executor plugins (kiln-executor-NAME.so, ABI 1.6) behind the engine's
 * executor seam (engine.h).
 *
 * --executor NAME[:key=value,...] loads the plugin and fills its options
 * like a step's `with:`; "local" is the built-in executor and the default.
 * Under an executor plugin a step that has an image (Cloud Build's name:)
 * runs its processes through the plugin; a step without one runs them on
 * this machine as before. The host keeps what a local process has: the
 * framers (lines, masking, sinks), the step's process list and the list of
 * readers that sinks' backpressure pauses. The plugin only moves bytes and
 * reports the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "yaml_tree.h"

struct kiln_exec {
    kiln__proc_base base;        /* first: the engine reaches the executor */
    kiln__rstep *step;
    kiln__plugin *plugin;
    kiln_exit_cb cb;
    void *data;
    kiln__framer fout, ferr;
    void *pdata;                 /* the plugin's slot */
    bool done;                   /* exec_exited() or abandoned: the host is finished with it */
};

#define AS_PROC(x) ((kiln_proc *)(void *)(x))
#define AS_EXEC(p) ((kiln_exec *)(void *)(p))

const kiln__executor *kiln__step_executor(const kiln__rstep *s)
{
    return s->b->eng->exec_plugin && s->image ? &kiln__plugin_executor : &kiln__local_executor;
}

static const kiln_executor_ops *ops_of(const kiln__plugin *pl)
{
    return pl->desc->executor;
}

static void release(kiln_exec *x)
{
    kiln__framer_finish(&x->fout);
    kiln__framer_finish(&x->ferr);
    kiln__engine_remove_reader(x->step->b->eng, AS_PROC(x));
    kiln__step_untrack_proc(x->step, AS_PROC(x));
}

static int px_spawn(kiln__rstep *step, const kiln_spawn_opts *opts, kiln_exit_cb cb, void *data,
                    kiln_proc **out)
{
    if (!opts || !opts->argv || !opts->argv[0])
        return KILN_EINVAL;
    kiln__engine *eng = step->b->eng;
    kiln__plugin *pl = eng->exec_plugin;
    kiln_exec *x = kiln__xcalloc(1, sizeof *x);
    x->base.exec = &kiln__plugin_executor;
    x->step = step;
    x->plugin = pl;
    x->cb = cb;
    x->data = data;
    kiln__framer_init(&x->fout, step, KILN_STREAM_STDOUT);
    kiln__framer_init(&x->ferr, step, KILN_STREAM_STDERR);
    x->fout.on_line = x->ferr.on_line = opts->on_line;
    x->fout.line_data = x->ferr.line_data = opts->line_data;

    char **env = kiln__spawn_env(step, opts);
    kiln__build *top = step->b;
    while (top->parent)
        top = top->parent;
    kiln_exec_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.struct_size = sizeof spec;
    spec.build_id = top->id;
    spec.step_id = step->def->key;
    spec.image = step->image;
    spec.argv = opts->argv;
    spec.image_entrypoint = opts->struct_size > offsetof(kiln_spawn_opts, image_entrypoint) &&
                            opts->image_entrypoint;
    spec.env = (const char *const *)env;
    spec.cwd = opts->cwd ? opts->cwd : step->dir;
    spec.workspace = step->b->workspace;
    spec.output_file = step->output_file;
    spec.stdin_path = opts->stdin_path;
    spec.kill_grace_ms = eng->kill_grace_ms;
    /* Cloud Build volumes: NAME=/path, the build's and the step's. */
    const kiln__pipeline *p = step->b->p;
    size_t nv = p->options.volumes.n + step->def->volumes.n, k = 0;
    char **vols = kiln__xcalloc(nv + 1, sizeof *vols);
    for (size_t i = 0; i < p->options.volumes.n; i++)
        vols[k++] = kiln__xasprintf("%s=%s", p->options.volumes.v[i].name, p->options.volumes.v[i].path);
    for (size_t i = 0; i < step->def->volumes.n; i++)
        vols[k++] = kiln__xasprintf("%s=%s", step->def->volumes.v[i].name, step->def->volumes.v[i].path);
    spec.volumes = (const char *const *)vols;
    /* secretEnv names (the build's, the step's): their values are in env. */
    size_t ns = p->options.secret_env.n + step->def->secret_env.n, j = 0;
    const char **secret = kiln__xcalloc(ns + 1, sizeof *secret);
    for (size_t i = 0; i < p->options.secret_env.n; i++)
        secret[j++] = p->options.secret_env.v[i];
    for (size_t i = 0; i < step->def->secret_env.n; i++)
        secret[j++] = step->def->secret_env.v[i];
    spec.secret_env = secret;

    kiln__step_track_proc(step, AS_PROC(x));
    kiln__engine_add_reader(eng, AS_PROC(x));
    int rc = ops_of(pl)->spawn(x, &spec, pl->plugin_data);
    for (size_t i = 0; i < k; i++)
        free(vols[i]);
    free(vols);
    free(secret);
    free(env);
    if (rc) {
        release(x);
        free(x);
        return rc;
    }
    if (eng->paused_sinks && ops_of(pl)->pause)
        ops_of(pl)->pause(x);
    *out = AS_PROC(x);
    return 0;
}

static int px_signal(kiln_proc *p, int signum)
{
    kiln_exec *x = AS_EXEC(p);
    if (x->done || !ops_of(x->plugin)->signal)
        return KILN_EINVAL;
    return ops_of(x->plugin)->signal(x, signum);
}

static int px_pid(const kiln_proc *p)
{
    (void)p;
    return 0; /* not a process of this machine */
}

static void px_terminate(kiln_proc *p)
{
    kiln_exec *x = AS_EXEC(p);
    if (!x->done)
        ops_of(x->plugin)->terminate(x);
}

static void px_abandon(kiln_proc *p)
{
    kiln_exec *x = AS_EXEC(p);
    if (x->done)
        return;
    x->done = true;
    ops_of(x->plugin)->abandon(x);
    release(x);
    free(x);
}

static void px_pause(kiln_proc *p)
{
    kiln_exec *x = AS_EXEC(p);
    if (!x->done && ops_of(x->plugin)->pause)
        ops_of(x->plugin)->pause(x);
}

static void px_resume(kiln_proc *p)
{
    kiln_exec *x = AS_EXEC(p);
    if (!x->done && ops_of(x->plugin)->resume)
        ops_of(x->plugin)->resume(x);
}

const kiln__executor kiln__plugin_executor = {
    "plugin", px_spawn, px_signal, px_pid, px_terminate, px_abandon, px_pause, px_resume,
};

/* ---- host entries (host_api.c puts them in the table) ---------------- */

int kiln__exec_output(kiln_exec *x, kiln_stream stream, const void *buf, size_t len)
{
    if (!x || x->done)
        return KILN_EINVAL;
    kiln__framer_feed(stream == KILN_STREAM_STDERR ? &x->ferr : &x->fout, buf, len);
    return 0;
}

void kiln__exec_exited(kiln_exec *x, int status, const char *reason)
{
    if (!x || x->done)
        return;
    x->done = true;
    release(x);
    if (reason && *reason)
        kiln__sys_log(x->step->b, x->step, KILN_LOG_ERROR, "%s", reason);
    if (x->cb)
        x->cb(AS_PROC(x), x->data, status);
    free(x);
}

void kiln__exec_set_data(kiln_exec *x, void *data)
{
    x->pdata = data;
}

void *kiln__exec_get_data(const kiln_exec *x)
{
    return x->pdata;
}

kiln_plugin_handle *kiln__exec_handle(const kiln_exec *x)
{
    return x->plugin->handle;
}

/* ---- choosing ---------------------------------------------------------- */

static kiln__ynode *scalar(kiln__ydoc *doc, const char *v)
{
    kiln__ynode *n = kiln__ydoc_alloc(doc, sizeof *n);
    n->kind = KILN__Y_SCALAR;
    n->quoted = true;
    n->value = v;
    n->len = strlen(v);
    return n;
}

int kiln__executor_select(kiln__engine *eng, const char *spec, const char *build_id, kiln__buf *err)
{
    if (!spec || !*spec)
        return 0;
    kiln__ydoc doc;
    memset(&doc, 0, sizeof doc);
    char *copy = kiln__ydoc_strdup(&doc, spec);
    char *colon = strchr(copy, ':');
    kiln__ynode *map = kiln__ydoc_alloc(&doc, sizeof *map);
    map->kind = KILN__Y_MAP;
    size_t n_kv = 0;
    if (colon) {
        *colon = '\0';
        for (const char *c = colon + 1; *c; c++)
            n_kv += *c == ',';
        map->items = kiln__ydoc_alloc(&doc, (2 * (n_kv + 1) + 1) * sizeof *map->items);
        char *save = NULL;
        for (char *tok = strtok_r(colon + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq) {
                kiln__buf_addf(err, "--executor %s: '%s' is not key=value", spec, tok);
                kiln__ydoc_free(&doc);
                return KILN_EINVAL;
            }
            *eq = '\0';
            map->items[2 * map->n] = scalar(&doc, tok);
            map->items[2 * map->n + 1] = scalar(&doc, eq + 1);
            map->n++;
        }
    }
    int rc = 0;
    if (strcmp(copy, "local") == 0) {
        if (map->n) {
            kiln__buf_addf(err, "--executor %s: the local executor has no options", spec);
            rc = KILN_EINVAL;
        }
        kiln__ydoc_free(&doc);
        return rc;
    }
    kiln__plugin *pl;
    rc = kiln__registry_get(&eng->reg, KILN_PLUGIN_EXECUTOR, copy, &pl, err);
    if (rc) {
        kiln__ydoc_free(&doc);
        return rc;
    }
    kiln__diag d;
    kiln__diag_init(&d);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "executor '%s': ", copy);
    rc = kiln__config_fill(pl->desc, map, &d, "--executor", NULL, prefix, NULL, NULL, pl->plugin_data,
                           &eng->exec_cfg);
    if (rc)
        kiln__buf_add(err, d.text.buf, d.text.len ? d.text.len - 1 : 0);
    kiln__diag_release(&d);
    kiln__ydoc_free(&doc);
    if (rc)
        return rc;
    if (ops_of(pl)->open) {
        rc = ops_of(pl)->open(pl->plugin_data, eng->exec_cfg->data, build_id);
        if (rc) /* open() said why, in one line */
            return rc;
    }
    eng->exec_plugin = pl;
    eng->exec_opened = true;
    return 0;
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

void kiln__executor_close(kiln__engine *eng)
{
    if (!eng->exec_plugin || !eng->exec_opened)
        return;
    eng->exec_opened = false;
    bool closed = false;
    if (ops_of(eng->exec_plugin)->close) {
        ops_of(eng->exec_plugin)->close(eng->exec_plugin->plugin_data, on_closed, &closed);
        while (!closed && uv_run(eng->loop, UV_RUN_ONCE))
            ;
        /* The loop ran dry first: the second call finishes at once. */
        if (!closed)
            ops_of(eng->exec_plugin)->close(eng->exec_plugin->plugin_data, on_closed, &closed);
    }
}
