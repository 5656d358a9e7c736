/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: builds, steps, the ready queue, failure, timeouts,
 * cancellation, retries and finally steps. See engine.h for the model.
 */
#include "engine.h"
#include "sinkloss.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag.h"
#include "resolve.h"
#include "volumes.h"

extern char **environ;

#define FORCE_SLACK_MS 2000

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void timer_discard(uv_timer_t **t)
{
    if (*t) {
        uv_timer_stop(*t);
        uv_close((uv_handle_t *)*t, free_handle);
        *t = NULL;
    }
}

static uv_timer_t *timer_new(kiln__engine *eng, void *data)
{
    uv_timer_t *t = kiln__xmalloc(sizeof *t);
    uv_timer_init(eng->loop, t);
    t->data = data;
    return t;
}

/* ---- the ready queue ----------------------------------------------- */

static void enqueue(kiln__build *b, int ordinal)
{
    if (b->q_tail == b->q_cap) {
        if (b->q_head > 0) {
            memmove(b->queue, b->queue + b->q_head, (b->q_tail - b->q_head) * sizeof *b->queue);
            b->q_tail -= b->q_head;
            b->q_head = 0;
        } else {
            b->q_cap = b->q_cap ? b->q_cap * 2 : 64;
            b->queue = kiln__xrealloc(b->queue, b->q_cap * sizeof *b->queue);
        }
    }
    b->queue[b->q_tail++] = ordinal;
}

/* ---- events ---------------------------------------------------------- */

void kiln__step_event(kiln__rstep *s, kiln_event_type type)
{
    kiln_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.build_id = s->b->id;
    ev.step_id = s->def->key;
    ev.step_index = s->def->index;
    ev.depth = s->b->depth;
    ev.plugin = kiln__step_plugin_name(s->def);
    ev.image = s->def->name;
    ev.status = s->status;
    ev.exit_code = s->exit_code;
    ev.time_us = type == KILN_EVENT_STEP_START ? s->start_us : s->end_us;
    ev.duration_us = s->end_us - s->start_us;
    ev.message = s->reason;
    ev.progress_done = s->progress_done;
    ev.progress_total = s->progress_total;
    ev.progress_what = s->progress_what;
    if (type == KILN_EVENT_STEP_PROGRESS)
        ev.time_us = kiln__now_us();
    kiln__sinks_event(s->b->eng, &ev);
}

static void build_event(kiln__build *b, kiln_event_type type)
{
    kiln_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.build_id = b->id;
    ev.step_index = -1;
    ev.depth = b->depth;
    ev.status = b->status;
    ev.exit_code = -1;
    ev.time_us = type == KILN_EVENT_BUILD_START ? b->start_us : b->end_us;
    ev.duration_us = b->end_us - b->start_us;
    ev.message = b->fail_reason;
    kiln__sinks_event(b->eng, &ev);
}

/* ---- building ------------------------------------------------------- */

static void add_rdep(kiln__rstep *s, int ordinal)
{
    if (s->n_rdeps == s->cap_rdeps) {
        s->cap_rdeps = s->cap_rdeps ? s->cap_rdeps * 2 : 4;
        s->rdeps = kiln__xrealloc(s->rdeps, s->cap_rdeps * sizeof *s->rdeps);
    }
    s->rdeps[s->n_rdeps++] = ordinal;
}

static void on_pump(uv_idle_t *h);

int kiln__build_create(kiln__engine *eng, kiln__pipeline *p, kiln__subst *subst,
                       const char *workspace, const char *only, kiln__buf *err, kiln__build **out)
{
    kiln__build *b = kiln__xcalloc(1, sizeof *b);
    b->obj.type = KILN__OBJ_BUILD;
    b->eng = eng;
    b->p = p;
    b->subst = subst;
    b->workspace = kiln__xstrdup(workspace);
    const char *id = kiln__subst_get(subst, "BUILD_ID");
    snprintf(b->id, sizeof b->id, "%s", id ? id : "local");
    b->n_main = p->n_steps;
    b->n_total = p->n_steps + p->n_finally;
    b->steps = kiln__xcalloc(b->n_total ? b->n_total : 1, sizeof *b->steps);
    b->max_parallel = p->options.max_parallel ? p->options.max_parallel : eng->max_parallel;
    b->default_cap = !p->options.max_parallel && !eng->max_parallel_forced;
    if (eng->max_parallel_forced)
        b->max_parallel = eng->max_parallel;
    b->status = KILN_STATUS_QUEUED;
    /* Before anything can fail: kiln__build_destroy() closes these. */
    uv_idle_init(eng->loop, &b->pump);
    b->pump.data = b;
    uv_timer_init(eng->loop, &b->timeout_timer);
    b->timeout_timer.data = b;

    kiln__dag dags[2];
    kiln__dag_build(&dags[0], p->steps, p->n_steps);
    kiln__dag_build(&dags[1], p->finally, p->n_finally);
    for (size_t o = 0; o < b->n_total; o++) {
        kiln__rstep *s = &b->steps[o];
        bool fin = o >= b->n_main;
        size_t i = fin ? o - b->n_main : o;
        size_t base = fin ? b->n_main : 0;
        kiln__dag *g = &dags[fin];
        s->obj.type = KILN__OBJ_STEP;
        s->b = b;
        s->def = fin ? &p->finally[i] : &p->steps[i];
        s->ordinal = (int)o;
        s->exit_code = -1;
        s->status = KILN_STATUS_QUEUED;
        s->n_deps = g->n_deps[i];
        s->deps = kiln__xmalloc((s->n_deps ? s->n_deps : 1) * sizeof *s->deps);
        for (size_t k = 0; k < s->n_deps; k++) {
            s->deps[k] = (int)base + g->deps[i][k];
            add_rdep(&b->steps[s->deps[k]], (int)o);
        }
        s->n_pending = s->n_deps;
        kiln__buf_init(&s->plan);
        const char *pname = kiln__step_plugin_name(s->def);
        kiln__buf lerr = KILN__BUF_INIT;
        int lrc = kiln__registry_get(&eng->reg, KILN_PLUGIN_STEP, pname, &s->plugin, &lerr);
        if (eng->dry_run && ((lrc == 0 && (s->plugin->desc->flags & KILN_PLUGIN_DEPLOYS)) ||
                             (lrc == KILN_ENOTFOUND && kiln__is_known_deploy(pname)))) {
            kiln__buf_reset(&lerr);
            if (lrc != 0)
                s->plugin = NULL;
            lrc = kiln__dryrun_bind(s, pname, &lerr);
        }
        if (lrc != 0)
            kiln__buf_add(err, lerr.buf, lerr.len);
        kiln__buf_release(&lerr);
        if (lrc != 0) {
            kiln__dag_release(&dags[0]);
            kiln__dag_release(&dags[1]);
            kiln__build_destroy(b);
            return KILN_EPLUGIN;
        }
    }
    if (only) {
        kiln__step *t = kiln__pipeline_find(p, only);
        if (!t) {
            kiln__buf_addf(err, "--only: no step with id \"%s\" in %s", only, p->file);
            kiln__dag_release(&dags[0]);
            kiln__dag_release(&dags[1]);
            kiln__build_destroy(b);
            return KILN_ENOTFOUND;
        }
        bool *keep = kiln__xcalloc(p->n_steps ? p->n_steps : 1, sizeof *keep);
        kiln__dag_closure(&dags[0], t->index, keep);
        for (size_t i = 0; i < p->n_steps; i++) {
            if (keep[i])
                continue;
            b->steps[i].skipped = true;
            b->steps[i].status = KILN_STATUS_SKIPPED;
        }
        free(keep);
    }
    kiln__dag_release(&dags[0]);
    kiln__dag_release(&dags[1]);
    int vrc = kiln__volumes_setup(b, err);
    if (vrc) {
        kiln__build_destroy(b);
        return vrc;
    }
    *out = b;
    return 0;
}

static void free_env(kiln__rstep *s)
{
    for (size_t i = 0; s->env && s->env[i]; i++)
        free(s->env[i]);
    free(s->env);
    s->env = NULL;
}

static void on_build_close(uv_handle_t *h)
{
    kiln__build *b = h->data;
    if (--b->closing == 0)
        free(b);
}

void kiln__build_destroy(kiln__build *b)
{
    for (size_t o = 0; o < b->n_total; o++) {
        kiln__rstep *s = &b->steps[o];
        free(s->deps);
        free(s->rdeps);
        free(s->reason);
        free(s->done_reason);
        free(s->procs);
        free(s->timers);
        free(s->https);
        free_env(s);
        free(s->dir);
        free((char *)s->image);
        s->image = NULL;
        if (s->output_file) {
            unlink(s->output_file);
            free(s->output_file);
        }
        for (size_t i = 0; i < s->n_outputs; i++) {
            free(s->outputs[i].key);
            free(s->outputs[i].value);
        }
        free(s->outputs);
        free(s->progress_what);
        kiln__config_free(s->cfg);
        kiln__buf_release(&s->plan);
        free(s->mock_options);
        free(s->mock_requests);
        for (size_t i = 0; i < s->n_children; i++)
            kiln__build_destroy(s->children[i]);
        free(s->children);
    }
    for (size_t i = 0; i < b->n_spare_outputs; i++) {
        unlink(b->spare_outputs[i]);
        free(b->spare_outputs[i]);
    }
    free(b->spare_outputs);
    for (size_t i = 0; i < b->n_dead_outputs; i++) {
        unlink(b->dead_outputs[i]);
        free(b->dead_outputs[i]);
    }
    free(b->dead_outputs);
    if (b->owns_pipeline) {
        kiln__pipeline_free(b->p);
        free(b->p);
        kiln__subst_destroy(b->subst);
    }
    kiln__volumes_remove(b);
    free(b->plan_file);
    free(b->steps);
    free(b->queue);
    free(b->workspace);
    free(b->fail_reason);
    b->closing = 2;
    uv_close((uv_handle_t *)&b->pump, on_build_close);
    uv_close((uv_handle_t *)&b->timeout_timer, on_build_close);
}

/* ---- starting a step ------------------------------------------------ */

static const char *read_output(void *data, const char *id, const char *key)
{
    kiln__build *b = data;
    for (size_t o = 0; o < b->n_total; o++) {
        kiln__rstep *s = &b->steps[o];
        if (!s->def->id || strcmp(s->def->id, id) != 0)
            continue;
        for (size_t i = 0; i < s->n_outputs; i++)
            if (strcmp(s->outputs[i].key, key) == 0)
                return s->outputs[i].value;
    }
    return NULL;
}

static void env_set(char ***env, size_t *n, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < *n; i++)
        if (strncmp((*env)[i], kv, kl) == 0 && (*env)[i][kl] == '=') {
            free((*env)[i]);
            (*env)[i] = kiln__xstrdup(kv);
            return;
        }
    *env = kiln__xrealloc(*env, (*n + 2) * sizeof **env);
    (*env)[(*n)++] = kiln__xstrdup(kv);
    (*env)[*n] = NULL;
}

struct automap_ctx {
    char ***env;
    size_t *n;
};

static void automap_one(void *data, const char *key, const char *value)
{
    struct automap_ctx *a = data;
    char *kv = kiln__xasprintf("%s=%s", key, value);
    env_set(a->env, a->n, kv);
    free(kv);
}

/* An empty private file for a step's $KILN_OUTPUT, or NULL. Files of ended
 * steps are emptied and reused: creating a file costs far more than a step
 * that runs `true` on some file systems (0.2-0.3 ms per file on an ext4
 * /tmp that sees much churn), and a build of thousands of steps then holds
 * max_parallel files instead of thousands. A file the step replaced (by a
 * symlink, a hard link, anything but a plain file of its own) is not
 * reused. */
static char *take_output_file(kiln__build *b)
{
    while (b->n_spare_outputs) {
        char *path = b->spare_outputs[--b->n_spare_outputs];
        int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
                  st.st_uid == geteuid() && (st.st_size == 0 || ftruncate(fd, 0) == 0);
        if (fd >= 0)
            close(fd);
        if (ok)
            return path;
        unlink(path);
        free(path);
    }
    const char *tmpdir = getenv("TMPDIR");
    char *path = kiln__xasprintf("%s/kiln-output-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

static void push_path(char ***v, size_t *n, size_t *cap, char *path)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = kiln__xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = path;
}

/* The step's outputs are read. Its file serves another step only when no
 * process of this one can still write to it (all of them ended on their
 * own); otherwise it stays unused until the build ends, as every file did. */
static void give_back_output_file(kiln__rstep *s, bool clean)
{
    kiln__build *b = s->b;
    if (!s->output_file)
        return;
    if (clean)
        push_path(&b->spare_outputs, &b->n_spare_outputs, &b->cap_spare_outputs, s->output_file);
    else
        push_path(&b->dead_outputs, &b->n_dead_outputs, &b->cap_dead_outputs, s->output_file);
    s->output_file = NULL;
}

/* Environment, directory, output file and options of a step about to run.
 * Problems (e.g. a missing output) are returned as a message. */
static int prepare_step(kiln__rstep *s, kiln__buf *why)
{
    kiln__build *b = s->b;
    const kiln__pipeline *p = b->p;
    kiln__diag d;
    kiln__diag_init(&d);
    kiln__expand_ctx c = {b->subst, &d, p->file, s->def, NULL, p, read_output, b, 0};

    char **env = NULL;
    size_t n = 0;
    kiln__buf tmp = KILN__BUF_INIT;
    /* The image its processes run in under an executor plugin (name:). */
    free((char *)s->image);
    s->image = NULL;
    if (s->def->name && s->def->name_node && kiln__expand(&c, s->def->name_node, s->def->name, &tmp) == 0)
        s->image = kiln__xstrdup(tmp.buf);
    kiln__buf_reset(&tmp);
    /* kiln's environment is the host's: it does not enter an image. */
    if (kiln__step_executor(s) == &kiln__local_executor)
        for (char **e = environ; e && *e; e++)
            env_set(&env, &n, *e);
    for (size_t i = 0; i < p->options.env.n; i++) {
        kiln__expand(&c, p->options.env.node->items[i], p->options.env.v[i], &tmp);
        env_set(&env, &n, tmp.buf);
        kiln__buf_reset(&tmp);
    }
    if (s->def->automap == 1 || (s->def->automap == -1 && p->options.automap_substitutions)) {
        struct automap_ctx a = {&env, &n};
        kiln__subst_foreach(b->subst, automap_one, &a);
    }
    for (size_t i = 0; i < s->def->env.n; i++) {
        kiln__expand(&c, s->def->env.node->items[i], s->def->env.v[i], &tmp);
        env_set(&env, &n, tmp.buf);
        kiln__buf_reset(&tmp);
    }
    /* secretEnv: the build's, then the step's (checked before the run). */
    const kiln__strlist *secret_lists[2] = {&p->options.secret_env, &s->def->secret_env};
    for (int li = 0; li < 2; li++)
        for (size_t i = 0; i < secret_lists[li]->n; i++) {
            const char *name = secret_lists[li]->v[i];
            const char *value = kiln__secrets_get(b->secrets, name);
            if (!value)
                continue;
            char *skv = kiln__xasprintf("%s=%s", name, value);
            env_set(&env, &n, skv);
            free(skv);
        }
    /* $KILN_OUTPUT: key=value lines become the step's outputs. */
    give_back_output_file(s, false);
    s->output_file = take_output_file(b);
    if (s->output_file) {
        char *kv = kiln__xasprintf("KILN_OUTPUT=%s", s->output_file);
        env_set(&env, &n, kv);
        free(kv);
    }
    char *kv = kiln__xasprintf("KILN_BUILD_ID=%s", b->id);
    env_set(&env, &n, kv);
    free(kv);
    kv = kiln__xasprintf("KILN_STEP_ID=%s", s->def->key);
    env_set(&env, &n, kv);
    free(kv);
    free_env(s);
    s->env = env ? env : kiln__xcalloc(1, sizeof *env);

    free(s->dir);
    if (s->def->dir) {
        kiln__expand(&c, s->def->dir_node, s->def->dir, &tmp);
        s->dir = tmp.buf[0] == '/' ? kiln__xstrdup(tmp.buf)
                                   : kiln__xasprintf("%s/%s", b->workspace, tmp.buf);
        kiln__buf_reset(&tmp);
    } else {
        s->dir = kiln__xstrdup(b->workspace);
    }
    kiln__buf_release(&tmp);
    struct stat st;
    char *in_volume = kiln__volumes_host_path(s, s->dir); /* dir: in a volume */
    if (stat(in_volume ? in_volume : s->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        kiln__diag_at(&d, KILN__DIAG_ERROR, p->file, s->def->dir_node,
                      "%s: working directory '%s' does not exist%s", s->def->label, s->dir,
                      in_volume ? " in its volume" : "");
    free(in_volume);

    kiln__config_free(s->cfg);
    s->cfg = NULL;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s: ", s->def->label);
    if (s->mocked) {
        /* Checked against the real plugin's schema when it is installed. */
        kiln__dryrun_prepare(s, kiln__expand, &c, &d);
    } else {
        kiln__config_fill(s->plugin->desc, s->def->with, &d, p->file, s->def->node, prefix,
                          kiln__expand, &c, s->plugin->plugin_data, &s->cfg);
    }
    int rc = d.errors ? KILN_ECONFIG : 0;
    if (rc)
        kiln__buf_add(why, d.text.buf, d.text.len ? d.text.len - 1 : 0);
    kiln__diag_release(&d);
    return rc;
}

static void on_step_timeout(uv_timer_t *t);
static void finish_step(kiln__rstep *s, int status, const char *reason);

static void start_step(kiln__rstep *s)
{
    kiln__build *b = s->b;
    s->status = KILN_STATUS_WORKING;
    s->attempts++;
    s->done_called = false;
    s->forced = false;
    s->cancelling = KILN__RUNNING;
    free(s->done_reason);
    s->done_reason = NULL;
    if (s->attempts == 1) {
        s->start_us = kiln__now_us();
        kiln__step_event(s, KILN_EVENT_STEP_START);
    }
    b->running++;
    kiln__buf why = KILN__BUF_INIT;
    int rc = prepare_step(s, &why);
    if (rc) {
        kiln__sys_log(b, s, KILN_LOG_ERROR, "%s", why.buf);
        kiln__step_done(s, rc, "the step's options could not be resolved");
        kiln__buf_release(&why);
        return;
    }
    kiln__buf_release(&why);
    if (s->def->timeout_ms > 0) {
        s->timeout_timer = timer_new(b->eng, s);
        uv_timer_start(s->timeout_timer, on_step_timeout, (uint64_t)s->def->timeout_ms, 0);
    }
    rc = s->plugin->desc->step->start(s, s->cfg ? s->cfg->data : NULL, s->plugin->plugin_data);
    if (rc) {
        /* Synchronous failure: no step_done will come. */
        char msg[256];
        snprintf(msg, sizeof msg, "plugin '%s' could not start the step: %s", s->plugin->name,
                 kiln__strerror(rc));
        if (!s->done_called)
            kiln__step_done(s, rc, msg);
    }
}

/* ---- cancelling ------------------------------------------------------ */

static void on_force_timer(uv_timer_t *t)
{
    kiln__rstep *s = t->data;
    if (s->done_called || s->status != KILN_STATUS_WORKING)
        return;
    kiln__sys_log(s->b, s, KILN_LOG_ERROR, "plugin '%s' did not complete step '%s' after cancel",
                  s->plugin->name, s->def->key);
    s->forced = true;
    kiln__step_done(s, KILN_ECANCELED, "the plugin did not stop after cancel");
}

static void cancel_step(kiln__rstep *s, kiln__cancel_why why)
{
    if (s->status != KILN_STATUS_WORKING || s->cancelling)
        return;
    if (s->retry_timer) {
        /* Waiting to retry: nothing runs, end it now. done_called is still
         * set from the attempt that failed. */
        s->cancelling = why;
        timer_discard(&s->retry_timer);
        s->done_called = false;
        kiln__step_done(s, KILN_ECANCELED, NULL);
        return;
    }
    if (s->done_called)
        return;
    s->cancelling = why;
    if (s->plugin->desc->step->cancel)
        s->plugin->desc->step->cancel(s, s->plugin->plugin_data);
    /* Sub-builds the step waits for end cancelled, and their callback ends
     * the step. */
    for (size_t i = 0; i < s->n_children; i++)
        if (s->children[i]->phase != KILN__PHASE_DONE)
            kiln__build_cancel(s->children[i], "the step that started it was cancelled");
    for (size_t i = 0; i < s->n_procs; i++)
        KILN__PROC_EXEC(s->procs[i])->terminate(s->procs[i]);
    if (!s->done_called && !s->force_timer) {
        s->force_timer = timer_new(s->b->eng, s);
        uv_timer_start(s->force_timer, on_force_timer,
                       (uint64_t)(s->b->eng->kill_grace_ms + FORCE_SLACK_MS), 0);
    }
}

static void on_step_timeout(uv_timer_t *t)
{
    kiln__rstep *s = t->data;
    char d[32];
    kiln__format_duration(s->def->timeout_ms * 1000, d, sizeof d);
    kiln__sys_log(s->b, s, KILN_LOG_ERROR, "step timed out after %s", d);
    cancel_step(s, KILN__TIMEOUT);
}

/* Stop the main phase: nothing new starts, running steps are cancelled. */
static void fail_build(kiln__build *b, kiln_status status, const char *reason)
{
    if (b->status == KILN_STATUS_WORKING) {
        b->status = status;
        free(b->fail_reason);
        b->fail_reason = reason ? kiln__xstrdup(reason) : NULL;
    }
    if (b->phase != KILN__PHASE_MAIN)
        return;
    for (size_t o = 0; o < b->n_main; o++)
        cancel_step(&b->steps[o], KILN__CANCEL);
    kiln__build_kick(b);
}

void kiln__build_cancel_all(kiln__build *b, const char *why)
{
    kiln__engine *eng = b->eng;
    if (eng->signal_count >= 2 && b->phase == KILN__PHASE_MAIN) {
        /* A second interrupt while steps are still stopping: no more grace. */
        for (size_t o = 0; o < b->n_main; o++)
            for (size_t i = 0; i < b->steps[o].n_procs; i++)
                KILN__PROC_EXEC(b->steps[o].procs[i])->signal(b->steps[o].procs[i], SIGKILL);
    }
    kiln__build_cancel(b, why);
    /* Sub-builds too, also those nobody waits for (wait: false). */
    for (size_t o = 0; o < b->n_total; o++)
        for (size_t i = 0; i < b->steps[o].n_children; i++)
            if (b->steps[o].children[i]->phase != KILN__PHASE_DONE)
                kiln__build_cancel_all(b->steps[o].children[i], why);
}

void kiln__build_cancel(kiln__build *b, const char *why)
{
    if (b->phase == KILN__PHASE_MAIN) {
        kiln__sys_log(b, NULL, KILN_LOG_WARN, "cancelling the build: %s", why);
        fail_build(b, KILN_STATUS_CANCELLED, why);
    } else if (b->phase == KILN__PHASE_FINALLY) {
        kiln__sys_log(b, NULL, KILN_LOG_WARN, "cancelling the finally steps: %s", why);
        for (size_t o = b->n_main; o < b->n_total; o++)
            cancel_step(&b->steps[o], KILN__CANCEL);
        b->finally_cancelled = true;
        kiln__build_kick(b);
    }
}

static void on_build_timeout(uv_timer_t *t)
{
    kiln__build *b = t->data;
    char d[32];
    kiln__format_duration(b->p->timeout_ms * 1000, d, sizeof d);
    char msg[128];
    snprintf(msg, sizeof msg, "build timed out after %s", d);
    kiln__sys_log(b, NULL, KILN_LOG_ERROR, "%s", msg);
    if (b->phase == KILN__PHASE_MAIN)
        fail_build(b, KILN_STATUS_TIMEOUT, msg);
}

/* ---- step completion ------------------------------------------------- */

void kiln__step_done(kiln__rstep *s, int status, const char *reason)
{
    if (s->done_called || s->status != KILN_STATUS_WORKING)
        return;
    s->done_called = true;
    s->done_status = status;
    free(s->done_reason);
    s->done_reason = reason ? kiln__xstrdup(reason) : NULL;
    s->next_done = NULL;
    kiln__build *b = s->b;
    if (b->done_tail)
        b->done_tail->next_done = s;
    else
        b->done_head = s;
    b->done_tail = s;
    kiln__build_kick(b);
}

static bool code_in(int code, const int *codes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (codes[i] == code)
            return true;
    return false;
}

static void read_outputs_file(kiln__rstep *s)
{
    if (!s->output_file)
        return;
    FILE *f = fopen(s->output_file, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            continue;
        *eq = '\0';
        kiln__step_set_output(s, line, eq + 1);
    }
    free(line);
    fclose(f);
}

static void on_retry_timer(uv_timer_t *t)
{
    kiln__rstep *s = t->data;
    timer_discard(&s->retry_timer);
    /* A new attempt starts clean: what a failed attempt set is not an output. */
    for (size_t i = 0; i < s->n_outputs; i++) {
        free(s->outputs[i].key);
        free(s->outputs[i].value);
    }
    s->n_outputs = 0;
    s->b->running--; /* start_step counts it again */
    start_step(s);
}

/* Release what the step's plugin left behind (contract rule 4). */
static void release_step_objects(kiln__rstep *s)
{
    timer_discard(&s->timeout_timer);
    timer_discard(&s->force_timer);
    /* abandon() may untrack procs as they finish; walk a copy. */
    size_t np = s->n_procs;
    kiln_proc **procs = np ? kiln__xmalloc(np * sizeof *procs) : NULL;
    if (np)
        memcpy(procs, s->procs, np * sizeof *procs);
    for (size_t i = 0; i < np; i++)
        KILN__PROC_EXEC(procs[i])->abandon(procs[i]);
    free(procs);
    kiln__step_release_timers(s);
    kiln__step_release_https(s);
    kiln__framer_finish(&s->out_framer);
    kiln__framer_finish(&s->err_framer);
}

/* ABI 1.10: the host ended the step for a plugin that did not: tell it, once
 * its host objects are gone, so that it frees what it kept for the step. */
static void tell_abandoned(kiln__rstep *s)
{
    const kiln_step_ops *ops = s->plugin->desc->step;
    if (ops->struct_size >= offsetof(kiln_step_ops, abandon) + sizeof ops->abandon && ops->abandon)
        ops->abandon(s, s->plugin->plugin_data);
    s->data = NULL; /* a retry starts as the first attempt did */
}

static void finish_step(kiln__rstep *s, int status, const char *reason)
{
    kiln__build *b = s->b;
    bool procs_ended = s->n_procs == 0;
    release_step_objects(s);
    if (s->forced)
        tell_abandoned(s);
    read_outputs_file(s);
    give_back_output_file(s, procs_ended && s->cancelling == KILN__RUNNING);
    kiln_status st;
    bool allowed = false;
    if (s->cancelling == KILN__TIMEOUT)
        st = KILN_STATUS_TIMEOUT;
    else if (s->cancelling == KILN__CANCEL)
        st = KILN_STATUS_CANCELLED;
    else if (status == 0)
        st = KILN_STATUS_SUCCESS;
    else
        st = KILN_STATUS_FAILURE;
    s->exit_code = status >= 0 ? status : -1;
    if (st == KILN_STATUS_FAILURE && status > 0 &&
        code_in(status, s->def->allow_exit_codes, s->def->n_allow_codes))
        allowed = true;
    if (st == KILN_STATUS_FAILURE && s->def->allow_failure)
        allowed = true;

    /* Retry? Not when cancelled, and not once the build is failing. */
    const kiln__retry *r = &s->def->retry;
    bool retryable = (st == KILN_STATUS_FAILURE || st == KILN_STATUS_TIMEOUT) && !allowed &&
                     s->attempts <= r->limit && b->status == KILN_STATUS_WORKING &&
                     !(b->phase == KILN__PHASE_FINALLY && b->finally_cancelled) &&
                     (r->n_codes == 0 || (status > 0 && code_in(status, r->on_exit_codes, r->n_codes)));
    if (retryable) {
        double delay = (double)r->backoff_ms;
        for (int i = 1; i < s->attempts; i++)
            delay *= r->factor;
        char d[32], code[64];
        kiln__format_duration((int64_t)delay * 1000, d, sizeof d);
        /* A process step gives no reason of its own; say what the user
         * would see had it not been retried. */
        if (!reason && st == KILN_STATUS_FAILURE && status > 0) {
            snprintf(code, sizeof code, "step exited with non-zero status: %d", status);
            reason = code;
        }
        kiln__sys_log(b, s, KILN_LOG_WARN, "attempt %d of %d %s%s%s; retrying in %s", s->attempts,
                      r->limit + 1, st == KILN_STATUS_TIMEOUT ? "timed out" : "failed",
                      reason ? ": " : "", reason ? reason : "", d);
        s->retry_timer = timer_new(b->eng, s);
        uv_timer_start(s->retry_timer, on_retry_timer, (uint64_t)delay, 0);
        return;
    }

    b->running--;
    b->ended++;
    /* Only spawns read the environment: a build of thousands of steps need
     * not keep a copy of it per ended step (~4 KiB each). */
    free_env(s);
    s->status = st;
    s->allowed_failure = allowed;
    if (b->eng->dry_run && !s->mocked && s->plan.len)
        kiln__dryrun_record(s);
    s->end_us = kiln__now_us();
    free(s->reason);
    if (reason)
        s->reason = kiln__xstrdup(reason);
    else if (st == KILN_STATUS_FAILURE && status > 0)
        s->reason = kiln__xasprintf("step exited with non-zero status: %d", status);
    else if (st == KILN_STATUS_FAILURE)
        s->reason = kiln__xstrdup(kiln__strerror(status));
    else if (st == KILN_STATUS_TIMEOUT) {
        char d[32];
        kiln__format_duration(s->def->timeout_ms * 1000, d, sizeof d);
        s->reason = kiln__xasprintf("step timed out after %s", d);
    } else
        s->reason = NULL;
    kiln__step_event(s, KILN_EVENT_STEP_END);

    bool ok = st == KILN_STATUS_SUCCESS || allowed;
    if (ok) {
        for (size_t i = 0; i < s->n_rdeps; i++) {
            kiln__rstep *r2 = &b->steps[s->rdeps[i]];
            if (--r2->n_pending == 0 && !r2->skipped)
                enqueue(b, r2->ordinal);
        }
    } else if (st != KILN_STATUS_CANCELLED && b->phase == KILN__PHASE_MAIN) {
        char msg[512];
        const char *img = s->def->name ? s->def->name : kiln__step_plugin_name(s->def);
        snprintf(msg, sizeof msg, "build step %d \"%s\" failed: %s", s->def->index, img,
                 s->reason ? s->reason : "failed");
        fail_build(b, st == KILN_STATUS_TIMEOUT ? KILN_STATUS_TIMEOUT : KILN_STATUS_FAILURE, msg);
    } else if (st != KILN_STATUS_CANCELLED && b->phase == KILN__PHASE_FINALLY &&
               b->status == KILN_STATUS_WORKING) {
        char msg[512];
        snprintf(msg, sizeof msg, "finally step %d \"%s\" failed: %s", s->def->index, s->def->key,
                 s->reason ? s->reason : "failed");
        b->status = KILN_STATUS_FAILURE;
        b->fail_reason = kiln__xstrdup(msg);
    }
}

/* ---- the pump -------------------------------------------------------- */

static void finish_build(kiln__build *b)
{
    if (b->status == KILN_STATUS_WORKING)
        b->status = KILN_STATUS_SUCCESS;
    if (b == b->eng->top && b->eng->loss_fail_reason && b->status == KILN_STATUS_SUCCESS) {
        b->status = KILN_STATUS_FAILURE;
        free(b->fail_reason);
        b->fail_reason = kiln__xstrdup(b->eng->loss_fail_reason);
    }
    b->end_us = kiln__now_us();
    build_event(b, KILN_EVENT_BUILD_END);
    if (b->on_end)
        b->on_end(b, b->on_end_data);
}

static void end_build(kiln__build *b)
{
    b->phase = KILN__PHASE_DONE;
    kiln__strays_end_build(b);
    uv_timer_stop(&b->timeout_timer);
    uv_idle_stop(&b->pump);
    b->pump_active = false;
    if (b == b->eng->top && b->eng->sink_work > 0) {
        /* A sink still writing may yet lose records (a full disk): the
         * build's result waits for it (kiln__build_sinks_idle). */
        b->draining = true;
        return;
    }
    finish_build(b);
}

void kiln__build_sinks_idle(kiln__build *b)
{
    if (!b->draining)
        return;
    b->draining = false;
    finish_build(b);
}

static void start_finally(kiln__build *b)
{
    b->phase = KILN__PHASE_FINALLY;
    b->q_head = b->q_tail = 0;
    for (size_t o = b->n_main; o < b->n_total; o++)
        if (b->steps[o].n_pending == 0)
            enqueue(b, (int)o);
}

static void on_pump(uv_idle_t *h)
{
    kiln__build *b = h->data;
    while (b->done_head) {
        kiln__rstep *s = b->done_head;
        b->done_head = s->next_done;
        if (!b->done_head)
            b->done_tail = NULL;
        finish_step(s, s->done_status, s->done_reason);
    }
    if (b == b->eng->top && b->eng->loss_fail_reason && b->status == KILN_STATUS_WORKING)
        fail_build(b, KILN_STATUS_FAILURE, b->eng->loss_fail_reason); /* a required sink lost records */
    bool stopping = b->status != KILN_STATUS_WORKING && b->phase == KILN__PHASE_MAIN;
    bool fin_stopping = b->phase == KILN__PHASE_FINALLY && b->finally_cancelled;
    while (!stopping && !fin_stopping && b->q_head < b->q_tail && b->running < b->max_parallel) {
        kiln__rstep *s = &b->steps[b->queue[b->q_head++]];
        start_step(s);
    }
    if (b->default_cap && !b->cap_noted && !stopping && !fin_stopping && b->q_head < b->q_tail) {
        /* Cloud Build starts every ready step; say why this one waits. */
        b->cap_noted = true;
        kiln__sys_log(b, NULL, KILN_LOG_INFO,
                      "%zu ready steps wait for a free slot: kiln runs at most %d steps at once "
                      "by default (--max-parallel N or options.maxParallel to change it)",
                      b->q_tail - b->q_head, b->max_parallel);
    }
    if (b->running == 0 && !b->done_head && (b->q_head == b->q_tail || stopping || fin_stopping)) {
        if (b->phase == KILN__PHASE_MAIN && b->n_total > b->n_main) {
            start_finally(b);
            kiln__build_kick(b);
            return;
        }
        end_build(b);
        return;
    }
    if (!b->done_head && (b->q_head == b->q_tail || b->running >= b->max_parallel || stopping ||
                          fin_stopping)) {
        uv_idle_stop(&b->pump);
        b->pump_active = false;
    }
}

void kiln__build_kick(kiln__build *b)
{
    if (!b->pump_active && b->phase != KILN__PHASE_DONE) {
        b->pump_active = true;
        uv_idle_start(&b->pump, on_pump);
    }
}

void kiln__build_start(kiln__build *b)
{
    b->status = KILN_STATUS_WORKING;
    b->start_us = kiln__now_us();
    build_event(b, KILN_EVENT_BUILD_START);
    int64_t timeout = b->p->timeout_ms ? b->p->timeout_ms : 60 * 60 * 1000;
    uv_timer_start(&b->timeout_timer, on_build_timeout, (uint64_t)timeout, 0);
    for (size_t o = 0; o < b->n_main; o++)
        if (b->steps[o].n_pending == 0 && !b->steps[o].skipped)
            enqueue(b, (int)o);
    kiln__build_kick(b);
}

/* ---- tracking host objects ------------------------------------------- */

void kiln__step_track_proc(kiln__rstep *s, kiln_proc *p)
{
    if (s->n_procs == s->cap_procs) {
        s->cap_procs = s->cap_procs ? s->cap_procs * 2 : 2;
        s->procs = kiln__xrealloc(s->procs, s->cap_procs * sizeof *s->procs);
    }
    s->procs[s->n_procs++] = p;
}

void kiln__step_untrack_proc(kiln__rstep *s, kiln_proc *p)
{
    for (size_t i = 0; i < s->n_procs; i++)
        if (s->procs[i] == p) {
            s->procs[i] = s->procs[--s->n_procs];
            return;
        }
}

/* ---- signals and the engine ------------------------------------------ */

static void on_signal(uv_signal_t *h, int signum)
{
    kiln__engine *eng = h->data;
    eng->signal_count++;
    eng->last_signal = signum;
    if (!eng->top)
        return;
    if (eng->top->phase == KILN__PHASE_DONE) {
        /* The steps are over; kiln waits for the sinks and writes the
         * report. One signal (often the second copy of the first, as
         * timeout(1) sends) is not worth losing the report; two end kiln. */
        if (++eng->late_signals >= 2) {
            signal(signum, SIG_DFL);
            raise(signum);
        }
        return;
    }
    const char *name = signum == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
    kiln__build_cancel_all(eng->top, name);
}

int kiln__engine_init(kiln__engine *eng)
{
    memset(eng, 0, sizeof *eng);
    eng->loop = kiln__xmalloc(sizeof *eng->loop);
    int rc = uv_loop_init(eng->loop);
    if (rc) {
        free(eng->loop);
        return KILN_EIO;
    }
    eng->exec = &kiln__local_executor;
    eng->kill_grace_ms = 10000;
    eng->partial_flush_ms = 100;
    eng->log_level = KILN_LOG_INFO;
    eng->max_parallel = KILN__DEFAULT_MAX_PARALLEL;
    eng->reg.api = &kiln__host_api;
    eng->masker = kiln__masker_create();
    uv_signal_init(eng->loop, &eng->sig_int);
    uv_signal_init(eng->loop, &eng->sig_term);
    eng->sig_int.data = eng->sig_term.data = eng;
    kiln__host_attach(eng);
    return 0;
}

void kiln__engine_watch_signals(kiln__engine *eng, bool on)
{
    if (on) {
        uv_signal_start(&eng->sig_int, on_signal, SIGINT);
        uv_signal_start(&eng->sig_term, on_signal, SIGTERM);
    } else {
        uv_signal_stop(&eng->sig_int);
        uv_signal_stop(&eng->sig_term);
    }
}

void kiln__engine_release(kiln__engine *eng)
{
    kiln__executor_close(eng); /* what it created goes, however the build ended */
    kiln__engine_watch_signals(eng, false);
    kiln__sinks_close(eng);
    kiln__http_shutdown(eng);
    uv_close((uv_handle_t *)&eng->sig_int, NULL);
    uv_close((uv_handle_t *)&eng->sig_term, NULL);
    kiln__host_detach(eng);
    uv_run(eng->loop, UV_RUN_DEFAULT);
    kiln__executor_free_all(eng); /* before their code is unloaded */
    kiln__config_free(eng->exec_cfg);
    eng->exec_cfg = NULL;
    kiln__registry_release(&eng->reg);
    free(eng->readers);
    free(eng->plan_dir);
    for (size_t i = 0; i < eng->n_plan_files; i++)
        free(eng->plan_files[i]);
    free(eng->plan_files);
    kiln__losses_release(eng);
    kiln__masker_destroy(eng->masker);
    if (uv_loop_close(eng->loop) != 0)
        fprintf(stderr, "kiln: warning: handles left open at exit\n");
    free(eng->loop);
}
