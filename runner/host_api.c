/* SPDX-License-Identifier: MIT */
/*
 * The host services table (kiln/host.h) and the host objects behind it:
 * timers, work requests, posts from threads, HTTP requests. Step-scoped
 * objects are released when their step ends (contract rule 4).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http.h"
#include "ship.h"
#include "sinkloss.h"

/* The engine plugins talk to. kiln runs one engine per process. */
static kiln__engine *g_eng;

/* ---- objects ---------------------------------------------------------- */

static kiln__build *obj_build(const kiln_object *obj)
{
    if (!obj)
        return g_eng ? g_eng->top : NULL;
    switch (obj->type) {
    case KILN__OBJ_STEP:
        return ((const kiln__rstep *)obj)->b;
    case KILN__OBJ_BUILD:
        return (kiln__build *)obj;
    case KILN__OBJ_PLUGIN:
        /* An executor instance speaks for its build (kiln serve runs several). */
        if (((const kiln_plugin_handle *)obj)->build)
            return ((const kiln_plugin_handle *)obj)->build;
        return g_eng ? g_eng->top : NULL;
    default:
        return g_eng ? g_eng->top : NULL;
    }
}

static kiln__rstep *obj_step(const kiln_object *obj)
{
    return obj && obj->type == KILN__OBJ_STEP ? (kiln__rstep *)obj : NULL;
}

/* ---- logging ---------------------------------------------------------- */

static bool h_log_enabled(const kiln_object *obj, kiln_log_level level)
{
    return g_eng ? level <= g_eng->log_level : level <= KILN_LOG_INFO;
}

static void h_log(const kiln_object *obj, kiln_log_level level, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static void h_log(const kiln_object *obj, kiln_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__buf m = KILN__BUF_INIT;
    kiln__buf_vaddf(&m, fmt, ap);
    va_end(ap);
    kiln__build *b = obj_build(obj);
    kiln__rstep *s = obj_step(obj);
    const kiln_plugin_handle *ph = obj && obj->type == KILN__OBJ_PLUGIN ? (const kiln_plugin_handle *)obj : NULL;
    if (ph && ph->inst && kiln__exec_inst_capture(ph->inst, level, m.buf)) {
        /* an executor's open() under kiln serve: kept for the build's log or its status */
    } else if (b && g_eng && g_eng->n_sinks)
        kiln__sys_log(b, s, level, "%s", m.buf);
    else
        fprintf(stderr, "kiln: %s\n", m.buf);
    kiln__buf_release(&m);
}

/* ---- steps ------------------------------------------------------------ */

static void h_step_set_data(kiln_step *s, void *data)
{
    s->data = data;
}

static void *h_step_get_data(const kiln_step *s)
{
    return s->data;
}

static const char *h_step_id(const kiln_step *s)
{
    return s->def->key;
}

static const char *h_step_dir(const kiln_step *s)
{
    return s->dir;
}

static const char *h_step_getenv(const kiln_step *s, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    for (char **e = s->env; n && e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int h_step_output(kiln_step *s, kiln_stream stream, const void *buf, size_t len)
{
    if (s->status != KILN_STATUS_WORKING)
        return KILN_EINVAL;
    kiln__framer *f = stream == KILN_STREAM_STDERR ? &s->err_framer : &s->out_framer;
    if (!f->step)
        kiln__framer_init(f, s, stream == KILN_STREAM_STDERR ? KILN_STREAM_STDERR : KILN_STREAM_STDOUT);
    kiln__framer_feed(f, buf, len);
    return 0;
}

int kiln__step_set_output(kiln__rstep *s, const char *key, const char *value)
{
    if (!key || !*key || !value)
        return KILN_EINVAL;
    for (size_t i = 0; i < s->n_outputs; i++)
        if (strcmp(s->outputs[i].key, key) == 0) {
            free(s->outputs[i].value);
            s->outputs[i].value = kiln__xstrdup(value);
            return 0;
        }
    s->outputs = kiln__xrealloc(s->outputs, (s->n_outputs + 1) * sizeof *s->outputs);
    s->outputs[s->n_outputs].key = kiln__xstrdup(key);
    s->outputs[s->n_outputs].value = kiln__xstrdup(value);
    s->n_outputs++;
    return 0;
}

static int h_step_set_output(kiln_step *s, const char *key, const char *value)
{
    return kiln__step_set_output(s, key, value);
}

static void h_step_progress(kiln_step *s, int64_t done, int64_t total, const char *what)
{
    s->progress_done = done;
    s->progress_total = total;
    free(s->progress_what);
    s->progress_what = what ? kiln__xstrdup(what) : NULL;
    kiln__step_event(s, KILN_EVENT_STEP_PROGRESS);
}

static void h_step_done(kiln_step *s, int status, const char *reason)
{
    kiln__step_done(s, status, reason);
}

/* ---- processes ---------------------------------------------------------- */

static int h_spawn(kiln_step *s, const kiln_spawn_opts *opts, kiln_exit_cb cb, void *data,
                   kiln_proc **out)
{
    if (s->status != KILN_STATUS_WORKING || s->done_called)
        return KILN_EINVAL;
    kiln_proc *p = NULL;
    int rc = kiln__step_executor(s)->spawn(s, opts, cb, data, &p);
    if (!rc && out)
        *out = p;
    return rc;
}

static int h_proc_signal(kiln_proc *p, int signum)
{
    return KILN__PROC_EXEC(p)->signal(p, signum);
}

static int h_proc_pid(const kiln_proc *p)
{
    return KILN__PROC_EXEC(p)->pid(p);
}

/* ---- timers ------------------------------------------------------------- */

struct kiln_timer {
    uv_timer_t t;
    kiln__rstep *step;
    kiln_timer_cb cb;
    void *data;
};

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void untrack_timer(kiln_timer *t)
{
    kiln__rstep *s = t->step;
    for (size_t i = 0; i < s->n_timers; i++)
        if (s->timers[i] == t) {
            s->timers[i] = s->timers[--s->n_timers];
            break;
        }
    uv_timer_stop(&t->t);
    uv_close((uv_handle_t *)&t->t, timer_closed);
}

static void on_timer(uv_timer_t *h)
{
    kiln_timer *t = h->data;
    kiln_timer_cb cb = t->cb;
    void *data = t->data;
    untrack_timer(t); /* one-shot: released after its final callback */
    cb(t, data);
}

static int h_timer_start(kiln_step *s, uint64_t ms, kiln_timer_cb cb, void *data, kiln_timer **out)
{
    if (!cb || s->status != KILN_STATUS_WORKING)
        return KILN_EINVAL;
    kiln_timer *t = kiln__xcalloc(1, sizeof *t);
    t->step = s;
    t->cb = cb;
    t->data = data;
    uv_timer_init(s->b->eng->loop, &t->t);
    t->t.data = t;
    uv_timer_start(&t->t, on_timer, ms, 0);
    if (s->n_timers == s->cap_timers) {
        s->cap_timers = s->cap_timers ? s->cap_timers * 2 : 4;
        s->timers = kiln__xrealloc(s->timers, s->cap_timers * sizeof *s->timers);
    }
    s->timers[s->n_timers++] = t;
    if (out)
        *out = t;
    return 0;
}

static void h_timer_stop(kiln_timer *t)
{
    if (t)
        untrack_timer(t);
}

void kiln__step_release_timers(kiln__rstep *s)
{
    while (s->n_timers)
        untrack_timer(s->timers[0]);
}

/* ---- HTTP ---------------------------------------------------------------- */

/* A request's callback and its data, between the plugin and the HTTP
 * client; a step's are listed in its https until their callback, so that
 * those still in flight when the step ends are freed with it. */
struct kiln__http_track {
    kiln__rstep *step;
    kiln_http *req;
    kiln_http_cb cb;
    void *data;
    kiln__exec_inst *inst;       /* a request of an executor instance */
};

static void untrack_http(kiln__rstep *s, kiln_http *h)
{
    for (size_t i = 0; i < s->n_https; i++)
        if (s->https[i]->req == h) {
            s->https[i] = s->https[--s->n_https];
            return;
        }
}

static void on_http_done(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct kiln__http_track *t = data;
    untrack_http(t->step, h);
    kiln_http_cb cb = t->cb;
    void *cb_data = t->data;
    free(t);
    cb(h, cb_data, err, resp);
}

static int h_http_request(kiln_step *s, const kiln_http_req *req, kiln_http_cb cb, void *data,
                          kiln_http **out)
{
    if (!cb || !req || s->status != KILN_STATUS_WORKING)
        return KILN_EINVAL;
    kiln__engine *eng = s->b->eng;
    if (!eng->http) {
        int rc = kiln__http_client_create(eng->loop, &eng->http);
        if (rc)
            return rc;
    }
    struct kiln__http_track *t = kiln__xcalloc(1, sizeof *t);
    t->step = s;
    t->cb = cb;
    t->data = data;
    kiln_http *h = NULL;
    int rc = kiln__http_start(eng->http, req, on_http_done, t, &h);
    if (rc) {
        free(t);
        return rc;
    }
    if (s->n_https == s->cap_https) {
        s->cap_https = s->cap_https ? s->cap_https * 2 : 4;
        s->https = kiln__xrealloc(s->https, s->cap_https * sizeof *s->https);
    }
    t->req = h;
    s->https[s->n_https++] = t;
    if (out)
        *out = h;
    return 0;
}

static void h_http_abort(kiln_http *h)
{
    kiln__http_abort(h);
}

static void h_http_resume(kiln_http *h)
{
    kiln__http_resume(h);
}

/* ABI 1.6: requests of a plugin (an executor removing a container after
 * its step), not aborted when a step ends; the HTTP client's shutdown at
 * the engine's release ends those still running. */
static void on_obj_http_done(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct kiln__http_track *t = data;
    kiln_http_cb cb = t->cb;
    void *cb_data = t->data;
    kiln__exec_inst *inst = t->inst;
    free(t);
    cb(h, cb_data, err, resp);
    if (inst) /* after the callback, which may use the instance's state */
        kiln__exec_inst_http_done(inst);
}

static int h_http_request_obj(kiln_object *obj, const kiln_http_req *req, kiln_http_cb cb, void *data,
                              kiln_http **out)
{
    if (!cb || !req || !g_eng)
        return KILN_EINVAL;
    if (obj && obj->type == KILN__OBJ_STEP)
        return h_http_request((kiln_step *)obj, req, cb, data, out);
    if (!g_eng->http) {
        int rc = kiln__http_client_create(g_eng->loop, &g_eng->http);
        if (rc)
            return rc;
    }
    struct kiln__http_track *t = kiln__xcalloc(1, sizeof *t);
    t->cb = cb;
    t->data = data;
    if (obj && obj->type == KILN__OBJ_PLUGIN)
        t->inst = ((kiln_plugin_handle *)obj)->inst;
    kiln_http *h = NULL;
    int rc = kiln__http_start(g_eng->http, req, on_obj_http_done, t, &h);
    if (rc) {
        free(t);
        return rc;
    }
    if (t->inst)
        kiln__exec_inst_count_http(t->inst);
    if (out)
        *out = h;
    return 0;
}

static void h_http_pause_recv(kiln_http *h, bool pause)
{
    kiln__http_pause_recv(h, pause);
}

static const char *h_step_image(const kiln_step *s)
{
    return kiln__step_executor(s) == &kiln__local_executor ? NULL : s->image;
}

void kiln__step_release_https(kiln__rstep *s)
{
    /* Quietly: no callback will free their tracks (a step ended with a
     * request in flight, by step_done() or by the host, leaked them). */
    while (s->n_https) {
        struct kiln__http_track *t = s->https[--s->n_https];
        kiln__http_abort_quiet(t->req);
        free(t);
    }
}

void kiln__http_shutdown(kiln__engine *eng)
{
    if (eng->http) {
        kiln__http_client_destroy(eng->http);
        eng->http = NULL;
    }
}

/* ---- threads ------------------------------------------------------------- */

struct work {
    uv_work_t req;
    kiln_work_cb work;
    kiln_after_work_cb after;
    void *data;
    bool sink; /* a sink's: the top build's end waits for it (kiln__build_sinks_idle) */
    kiln__exec_inst *inst; /* an executor instance's: not destroyed before `after` ran */
};

static void work_run(uv_work_t *r)
{
    struct work *w = r->data;
    w->work(w->data);
}

static void work_after(uv_work_t *r, int status)
{
    struct work *w = r->data;
    if (w->after)
        w->after(w->data, status == UV_ECANCELED ? KILN_ECANCELED : 0);
    /* After the callback, which may have queued the sink's next write. */
    if (w->sink && g_eng && --g_eng->sink_work == 0 && g_eng->top)
        kiln__build_sinks_idle(g_eng->top);
    if (w->inst) /* after the callback, which may use the instance's state */
        kiln__exec_inst_http_done(w->inst);
    free(w);
}

static int h_queue_work(kiln_object *obj, kiln_work_cb work, kiln_after_work_cb after, void *data)
{
    if (!work || !g_eng)
        return KILN_EINVAL;
    struct work *w = kiln__xcalloc(1, sizeof *w);
    w->work = work;
    w->after = after;
    w->data = data;
    w->req.data = w;
    w->sink = obj && obj->type == KILN__OBJ_SINK;
    int rc = uv_queue_work(g_eng->loop, &w->req, work_run, work_after);
    if (rc) {
        free(w);
        return KILN_EIO;
    }
    if (w->sink)
        g_eng->sink_work++;
    /* An executor's work (the kubernetes fill's git lookup) holds its
     * instance as its requests do: destroy() waits for `after`. */
    if (obj && obj->type == KILN__OBJ_PLUGIN && ((kiln_plugin_handle *)obj)->inst) {
        w->inst = ((kiln_plugin_handle *)obj)->inst;
        kiln__exec_inst_count_http(w->inst);
    }
    return 0;
}

struct kiln__post {
    struct kiln__post *next;
    kiln_post_cb cb;
    void *data;
};

static void on_post(uv_async_t *a)
{
    kiln__engine *eng = a->data;
    uv_mutex_lock(&eng->post_mutex);
    struct kiln__post *list = eng->posts;
    eng->posts = NULL;
    uv_mutex_unlock(&eng->post_mutex);
    /* The list is newest first; run in posting order. */
    struct kiln__post *rev = NULL;
    while (list) {
        struct kiln__post *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        struct kiln__post *n = rev->next;
        rev->cb(rev->data);
        free(rev);
        rev = n;
    }
}

static int h_post(kiln_object *obj, kiln_post_cb cb, void *data)
{
    if (!cb || !g_eng)
        return KILN_EINVAL;
    struct kiln__post *p = malloc(sizeof *p);
    if (!p)
        return KILN_ENOMEM;
    p->cb = cb;
    p->data = data;
    uv_mutex_lock(&g_eng->post_mutex);
    p->next = g_eng->posts;
    g_eng->posts = p;
    uv_mutex_unlock(&g_eng->post_mutex);
    uv_async_send(&g_eng->post_async);
    return 0;
}

void kiln__host_attach(kiln__engine *eng)
{
    g_eng = eng;
    uv_mutex_init(&eng->post_mutex);
    uv_async_init(eng->loop, &eng->post_async, on_post);
    eng->post_async.data = eng;
    uv_unref((uv_handle_t *)&eng->post_async);
}

void kiln__host_detach(kiln__engine *eng)
{
    on_post(&eng->post_async); /* run what is left */
    uv_close((uv_handle_t *)&eng->post_async, NULL);
}

/* ---- build context ----------------------------------------------------- */

static const char *h_subst_get(const kiln_object *obj, const char *key)
{
    kiln__build *b = obj_build(obj);
    return b && key ? kiln__subst_get(b->subst, key) : NULL;
}

static const char *h_workspace(const kiln_object *obj)
{
    kiln__build *b = obj_build(obj);
    /* an executor's open() comes before the build: it may check files of
     * the workspace there, so that a mistake stops kiln before anything ran */
    return b ? b->workspace : g_eng ? g_eng->open_workspace : NULL;
}

static const char *h_build_id(const kiln_object *obj)
{
    kiln__build *b = obj_build(obj);
    return b ? b->id : NULL;
}

static bool h_dry_run(const kiln_object *obj)
{
    return g_eng && g_eng->dry_run;
}

/* ---- sinks ----------------------------------------------------------------- */

static void h_sink_ready(kiln_sink *s)
{
    kiln__sink_ready(s);
}

static void h_sink_closed(kiln_sink *s)
{
    kiln__sink_closed(s);
}

static void *h_sink_get_data(const kiln_sink *s)
{
    return s->data;
}

static void h_sink_set_data(kiln_sink *s, void *data)
{
    s->data = data;
}

static void h_sink_lost(kiln_sink *s, const char *build_id, const char *step_id, uint64_t bytes,
                        uint64_t lines, const char *reason)
{
    kiln__sink_lost(s, build_id, step_id, bytes, lines, reason);
}

/* ---- dry runs, errors ----------------------------------------------------- */

static int h_plan_add(kiln_step *s, const char *json)
{
    if (!json)
        return KILN_EINVAL;
    kiln__buf_adds(&s->plan, json);
    kiln__buf_addch(&s->plan, '\n');
    return 0;
}

static const char *h_strerror(int err)
{
    return kiln__strerror(err);
}

static void h_diag(kiln_diag *d, const char *option, const char *fmt, ...) KILN_PRINTF(3, 4);
static void h_diag(kiln_diag *d, const char *option, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__buf m = KILN__BUF_INIT;
    kiln__buf_vaddf(&m, fmt, ap);
    va_end(ap);
    kiln__diag_option(d, option, "%s", m.buf);
    kiln__buf_release(&m);
}

/* ---- sub-builds, dry runs (ABI 1.1) ------------------------------------------ */

static int h_build_submit(kiln_step *s, const kiln_build_req *req, kiln_build_cb cb, void *data,
                          const char **build_id)
{
    return kiln__build_submit(s, req, cb, data, build_id);
}

static int h_deploy_target(kiln_step *s, kiln_deploy_target *out)
{
    return kiln__deploy_target(s, out);
}

const kiln_host_api kiln__host_api = {
    KILN_ABI_MAJOR,
    KILN_ABI_MINOR,
    (uint32_t)sizeof(kiln_host_api),
    h_log_enabled,
    h_log,
    h_step_set_data,
    h_step_get_data,
    h_step_id,
    h_step_dir,
    h_step_output,
    h_step_set_output,
    h_step_progress,
    h_step_done,
    h_spawn,
    h_proc_signal,
    h_proc_pid,
    h_timer_start,
    h_timer_stop,
    h_http_request,
    h_http_abort,
    h_queue_work,
    h_post,
    h_subst_get,
    h_workspace,
    h_build_id,
    h_dry_run,
    h_sink_ready,
    h_sink_closed,
    h_sink_get_data,
    h_sink_set_data,
    h_plan_add,
    h_strerror,
    h_diag,
    h_build_submit,
    h_deploy_target,
    h_http_resume,
    h_step_getenv,
    h_sink_lost,
    kiln__exec_output,
    kiln__exec_exited,
    kiln__exec_set_data,
    kiln__exec_get_data,
    h_http_request_obj,
    h_http_pause_recv,
    h_step_image,
    kiln__exec_handle,
    /* ABI 1.7 */
    kiln__ship_open,
    kiln__ship_write,
    kiln__ship_set_header,
    kiln__ship_close,
    kiln__ship_hold,
};
