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
 *
 * Instances: the plugin keeps its state in the plugin_data of init(), so
 * every top build gets its own by calling init() again (kiln__exec_inst):
 * a handle of its own as `self`, open() with the build's id, close() and
 * destroy() when the build is over. kiln run has one; kiln serve one per
 * running build. Sub-builds run through their top build's instance. An
 * instance is destroyed only once its close() is over and none of the
 * requests it made on its handle is in flight, so no callback of the
 * plugin meets freed state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "yaml_tree.h"

struct said {
    kiln_log_level level;
    char *text;
};

struct kiln__exec_inst {
    struct kiln_plugin_handle handle; /* the plugin's `self` */
    kiln__engine *eng;
    kiln__plugin *plugin;
    void *pdata;                 /* from this instance's init() */
    bool initialized;            /* init() returned 0: destroy() is owed */
    bool opened;                 /* open() returned 0 */
    bool closing, closed;        /* close() called / over (or never owed) */
    bool in_call;                /* inside open() or close(): not freed meanwhile */
    bool capturing;
    int n_http;                  /* requests on its handle not yet called back */
    void (*done)(void *);
    void *done_arg;
    struct said *said;           /* captured during open() */
    size_t n_said;
    kiln__exec_inst *next;       /* eng->exec_insts */
};

struct kiln_exec {
    kiln__proc_base base;        /* first: the engine reaches the executor */
    kiln__rstep *step;
    kiln__exec_inst *inst;
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

/* The instance a build's steps run through: its top build's (serve), else
 * the run's. */
static kiln__exec_inst *inst_of(const kiln__build *b)
{
    while (b->parent)
        b = b->parent;
    return b->exec_inst ? b->exec_inst : b->eng->exec_inst;
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
    kiln__exec_inst *inst = inst_of(step->b);
    if (!inst || !inst->opened || inst->closing)
        return KILN_EIO; /* the build's executor is not open: nothing to run it on */
    kiln__plugin *pl = inst->plugin;
    kiln_exec *x = kiln__xcalloc(1, sizeof *x);
    x->base.exec = &kiln__plugin_executor;
    x->step = step;
    x->inst = inst;
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
    int rc = ops_of(pl)->spawn(x, &spec, inst->pdata);
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
    return &x->inst->handle;
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

int kiln__executor_choose(kiln__engine *eng, const char *spec, kiln__buf *err)
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
    eng->exec_plugin = pl;
    return 0;
}

/* ---- instances ----------------------------------------------------------- */

static void inst_free(kiln__exec_inst *inst)
{
    for (kiln__exec_inst **pp = &inst->eng->exec_insts; *pp; pp = &(*pp)->next)
        if (*pp == inst) {
            *pp = inst->next;
            break;
        }
    if (inst->eng->exec_inst == inst)
        inst->eng->exec_inst = NULL;
    if (inst->initialized && inst->plugin->desc->destroy)
        inst->plugin->desc->destroy(inst->pdata);
    for (size_t i = 0; i < inst->n_said; i++)
        free(inst->said[i].text);
    free(inst->said);
    free(inst);
}

/* Destroyed once nothing of the plugin can still call back into it. */
static void inst_maybe_free(kiln__exec_inst *inst)
{
    if (inst->closed && !inst->in_call && inst->n_http <= 0)
        inst_free(inst);
}

bool kiln__exec_inst_capture(kiln__exec_inst *inst, kiln_log_level level, const char *text)
{
    if (!inst->capturing)
        return false;
    inst->said = kiln__xrealloc(inst->said, (inst->n_said + 1) * sizeof *inst->said);
    inst->said[inst->n_said].level = level;
    inst->said[inst->n_said].text = kiln__xstrdup(text);
    inst->n_said++;
    return true;
}

void kiln__exec_inst_count_http(kiln__exec_inst *inst)
{
    inst->n_http++;
}

void kiln__exec_inst_http_done(kiln__exec_inst *inst)
{
    inst->n_http--;
    inst_maybe_free(inst);
}

int kiln__executor_open(kiln__engine *eng, const char *build_id, bool capture, kiln__exec_inst **out,
                        kiln__buf *why)
{
    kiln__plugin *pl = eng->exec_plugin;
    *out = NULL;
    if (!pl)
        return 0;
    kiln__exec_inst *inst = kiln__xcalloc(1, sizeof *inst);
    inst->handle.obj.type = KILN__OBJ_PLUGIN;
    inst->handle.plugin = pl;
    inst->handle.inst = inst;
    inst->eng = eng;
    inst->plugin = pl;
    inst->next = eng->exec_insts;
    eng->exec_insts = inst;
    inst->capturing = capture;
    inst->in_call = true;
    int rc = 0;
    if (pl->desc->init) {
        rc = pl->desc->init(eng->reg.api, &inst->handle, &inst->pdata);
        if (rc && why)
            kiln__buf_addf(why, "executor '%s' failed to initialize: %s", pl->name, kiln__strerror(rc));
    }
    inst->initialized = rc == 0;
    if (!rc && ops_of(pl)->open)
        rc = ops_of(pl)->open(inst->pdata, eng->exec_cfg ? eng->exec_cfg->data : NULL, build_id);
    inst->capturing = false;
    inst->in_call = false;
    if (rc) {
        /* open() said why; no close() is owed. Requests it already made
         * keep the instance until they are called back. */
        for (size_t i = 0; why && i < inst->n_said; i++)
            if (inst->said[i].level <= KILN_LOG_WARN || i + 1 == inst->n_said)
                kiln__buf_addf(why, "%s%s", why->len ? "; " : "", inst->said[i].text);
        if (why && !why->len && capture)
            kiln__buf_addf(why, "executor '%s' could not be opened: %s", pl->name, kiln__strerror(rc));
        inst->closed = true;
        inst_maybe_free(inst);
        return rc;
    }
    inst->opened = true;
    *out = inst;
    return 0;
}

const char *kiln__exec_inst_said(const kiln__exec_inst *inst, size_t i)
{
    return i < inst->n_said ? inst->said[i].text : NULL;
}

void kiln__exec_inst_attach(kiln__exec_inst *inst, kiln__build *b)
{
    inst->handle.build = b;
    b->exec_inst = inst;
    for (size_t i = 0; i < inst->n_said; i++) {
        kiln__sys_log(b, NULL, inst->said[i].level, "%s", inst->said[i].text);
        free(inst->said[i].text);
    }
    free(inst->said);
    inst->said = NULL;
    inst->n_said = 0;
}

static void on_inst_closed(void *arg)
{
    kiln__exec_inst *inst = arg;
    if (inst->closed)
        return;
    inst->closed = true;
    if (inst->handle.build && inst->handle.build->exec_inst == inst)
        inst->handle.build->exec_inst = NULL;
    inst->handle.build = NULL; /* what it may still log goes to kiln's stderr */
    void (*done)(void *) = inst->done;
    inst->done = NULL;
    if (done)
        done(inst->done_arg);
    inst_maybe_free(inst);
}

void kiln__exec_inst_close(kiln__exec_inst *inst, void (*done)(void *), void *arg)
{
    if (inst->closing) /* the loop ran dry: the second call finishes at once */
        goto again;
    inst->closing = true;
    inst->done = done;
    inst->done_arg = arg;
    if (!ops_of(inst->plugin)->close) {
        on_inst_closed(inst);
        return;
    }
again:
    if (inst->closed)
        return;
    inst->in_call = true;
    ops_of(inst->plugin)->close(inst->pdata, on_inst_closed, inst);
    inst->in_call = false;
    inst_maybe_free(inst);
}

static void on_closed_flag(void *arg)
{
    *(bool *)arg = true;
}

void kiln__exec_inst_close_sync(kiln__engine *eng, kiln__exec_inst *inst)
{
    if (!inst || inst->closing)
        return;
    /* On the heap: the instance keeps the pointer until done is called. */
    bool *closed = kiln__xcalloc(1, sizeof *closed);
    kiln__exec_inst_close(inst, on_closed_flag, closed);
    while (!*closed && uv_run(eng->loop, UV_RUN_ONCE))
        ;
    /* The loop ran dry first: the second call finishes at once. */
    if (!*closed)
        kiln__exec_inst_close(inst, on_closed_flag, closed);
    if (!*closed) /* a plugin that never called done: it must not write here later */
        inst->done = NULL;
    free(closed);
}

int kiln__executor_select(kiln__engine *eng, const char *spec, const char *build_id, kiln__buf *err)
{
    int rc = kiln__executor_choose(eng, spec, err);
    if (rc || !eng->exec_plugin)
        return rc;
    /* open() says why it failed, on stderr (no sink is open yet). */
    return kiln__executor_open(eng, build_id, false, &eng->exec_inst, err);
}

void kiln__executor_close(kiln__engine *eng)
{
    /* kiln run's, then any other still open (an engine released early). */
    kiln__exec_inst_close_sync(eng, eng->exec_inst);
    for (;;) {
        kiln__exec_inst *open = NULL;
        for (kiln__exec_inst *i = eng->exec_insts; i && !open; i = i->next)
            if (i->opened && !i->closing)
                open = i;
        if (!open)
            break;
        kiln__exec_inst_close_sync(eng, open);
    }
}

void kiln__executor_free_all(kiln__engine *eng)
{
    while (eng->exec_insts) {
        kiln__exec_inst *inst = eng->exec_insts;
        inst->closed = true;
        inst->in_call = false;
        inst->n_http = 0; /* the HTTP client is gone: no callback will come */
        inst_free(inst);
    }
}
