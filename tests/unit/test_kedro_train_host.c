/* SPDX-License-Identifier: MIT */
/*
 * Runs the built kedro-train plugin (KILN_PLUGIN_PATH) under a minimal host
 * written here with libuv, against the stand-in kedro (tests/kedro), until the
 * real runner can run it: spawn (own process group, line framing), queue_work,
 * timers, outputs, progress and step_done. Only what kedro-train calls exists.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <kiln/kiln.h>
#include <uv.h>

extern char **environ;

/* ---- a tiny host ------------------------------------------------------ */

struct kiln_step {
    char dir[4096];
    void *data;
    int done_calls, status;
    char reason[1024];
    char outputs[16][2][1024];
    int n_outputs;
    int64_t done, total;
    char log[65536];
    size_t log_len;
    const char *branch;
};

struct kiln_proc {
    uv_process_t proc;
    uv_pipe_t out, err;
    int open_handles;
    int status;
    bool exited;
    kiln_exit_cb cb;
    void *data;
    kiln_line_cb on_line;
    void *line_data;
    char buf[2][8192];
    size_t len[2];
};

struct kiln_timer {
    uv_timer_t t;
    kiln_timer_cb cb;
    void *data;
};

static uv_loop_t *loop;

static void log_append(kiln_step *s, const char *prefix, const char *text, size_t n)
{
    int w = snprintf(s->log + s->log_len, sizeof(s->log) - s->log_len, "%s%.*s\n", prefix, (int)n, text);
    if (w > 0 && (size_t)w < sizeof(s->log) - s->log_len)
        s->log_len += (size_t)w;
}

static bool h_log_enabled(const kiln_object *o, kiln_log_level l) { return true; }
static void h_log(const kiln_object *o, kiln_log_level l, const char *fmt, ...)
{
    char b[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    log_append((kiln_step *)o, "[kiln] ", b, strlen(b));
}
static void h_set_data(kiln_step *s, void *d) { s->data = d; }
static void *h_get_data(const kiln_step *s) { return s->data; }
static const char *h_step_id(const kiln_step *s) { return "train"; }
static const char *h_step_dir(const kiln_step *s) { return s->dir; }
static int h_set_output(kiln_step *s, const char *k, const char *v)
{
    for (int i = 0; i < s->n_outputs; i++)
        if (strcmp(s->outputs[i][0], k) == 0) {
            snprintf(s->outputs[i][1], 1024, "%s", v);
            return 0;
        }
    snprintf(s->outputs[s->n_outputs][0], 1024, "%s", k);
    snprintf(s->outputs[s->n_outputs++][1], 1024, "%s", v);
    return 0;
}
static void h_progress(kiln_step *s, int64_t d, int64_t t, const char *what)
{
    s->done = d;
    s->total = t;
}
static void h_done(kiln_step *s, int status, const char *reason)
{
    s->done_calls++;
    s->status = status;
    snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
    uv_stop(loop);
}

static void p_close_cb(uv_handle_t *h)
{
    kiln_proc *p = h->data;
    if (--p->open_handles == 0) {
        p->cb(p, p->data, p->status);
        free(p);
    }
}
static void p_exit_cb(uv_process_t *h, int64_t st, int sig)
{
    kiln_proc *p = h->data;
    p->status = sig ? 128 + sig : (int)st;
    uv_close((uv_handle_t *)h, p_close_cb);
}
static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char tmp[65536];
    b->base = tmp;
    b->len = sizeof(tmp);
}
static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    kiln_proc *p = st->data;
    int i = st == (uv_stream_t *)&p->out ? 0 : 1;
    if (n < 0) {
        if (p->len[i])
            p->on_line(p->line_data, (kiln_stream)(i + 1), p->buf[i], p->len[i]);
        uv_close((uv_handle_t *)st, p_close_cb);
        return;
    }
    for (ssize_t k = 0; k < n; k++) {
        char c = b->base[k];
        if (c == '\n' || p->len[i] == sizeof(p->buf[i])) {
            kiln_step *s = ((kiln_step **)p->line_data)[0]; /* kt_step starts with kiln_step* */
            log_append(s, i ? "[err] " : "[out] ", p->buf[i], p->len[i]);
            p->on_line(p->line_data, (kiln_stream)(i + 1), p->buf[i], p->len[i]);
            p->len[i] = 0;
            if (c == '\n')
                continue;
        }
        p->buf[i][p->len[i]++] = c;
    }
}
static int h_spawn(kiln_step *s, const kiln_spawn_opts *o, kiln_exit_cb cb, void *data, kiln_proc **out)
{
    kiln_proc *p = calloc(1, sizeof(*p));
    p->cb = cb;
    p->data = data;
    p->on_line = o->on_line;
    p->line_data = o->line_data;
    static char *env[512];
    size_t n = 0;
    for (char **e = environ; *e && n < 400; e++)
        env[n++] = *e;
    for (const char *const *e = o->extra_env; e && *e; e++)
        env[n++] = (char *)*e;
    env[n] = NULL;
    uv_pipe_init(loop, &p->out, 0);
    uv_pipe_init(loop, &p->err, 0);
    p->out.data = p->err.data = p->proc.data = p;
    uv_stdio_container_t io[3] = {{.flags = UV_IGNORE},
                                  {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
                                  {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err}};
    uv_process_options_t po = {.exit_cb = p_exit_cb, .file = o->argv[0], .args = (char **)o->argv,
                               .env = env, .cwd = o->cwd ? o->cwd : s->dir, .flags = UV_PROCESS_DETACHED,
                               .stdio_count = 3, .stdio = io};
    int rc = uv_spawn(loop, &p->proc, &po);
    if (rc < 0)
        return KILN_ESPAWN;
    p->open_handles = 3;
    uv_read_start((uv_stream_t *)&p->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&p->err, alloc_cb, read_cb);
    *out = p;
    return 0;
}
static int h_signal(kiln_proc *p, int sig) { return kill(-p->proc.pid, sig) ? -1 : 0; }
static void t_cb(uv_timer_t *t)
{
    kiln_timer *k = t->data;
    k->cb(k, k->data);
}
static int h_timer_start(kiln_step *s, uint64_t ms, kiln_timer_cb cb, void *data, kiln_timer **out)
{
    kiln_timer *k = calloc(1, sizeof(*k));
    k->cb = cb;
    k->data = data;
    uv_timer_init(loop, &k->t);
    k->t.data = k;
    uv_timer_start(&k->t, t_cb, ms, 0);
    *out = k;
    return 0;
}
static void h_timer_stop(kiln_timer *k) { uv_timer_stop(&k->t); }

struct work { uv_work_t w; kiln_work_cb work; kiln_after_work_cb after; void *data; };
static void w_cb(uv_work_t *w) { struct work *x = w->data; x->work(x->data); }
static void w_after(uv_work_t *w, int st)
{
    struct work *x = w->data;
    x->after(x->data, st);
    free(x);
}
static int h_queue_work(kiln_object *o, kiln_work_cb work, kiln_after_work_cb after, void *data)
{
    struct work *x = calloc(1, sizeof(*x));
    x->work = work;
    x->after = after;
    x->data = data;
    x->w.data = x;
    return uv_queue_work(loop, &x->w, w_cb, w_after);
}
static const char *h_subst_get(const kiln_object *o, const char *key)
{
    return strcmp(key, "BRANCH_NAME") == 0 ? ((const kiln_step *)o)->branch : NULL;
}
static const char *h_strerror(int e) { return "error"; }

static kiln_host_api api = {
    KILN_ABI_MAJOR, KILN_ABI_MINOR, sizeof(kiln_host_api),
    .log_enabled = h_log_enabled, .log = h_log, .step_set_data = h_set_data, .step_get_data = h_get_data,
    .step_id = h_step_id, .step_dir = h_step_dir, .step_set_output = h_set_output, .step_progress = h_progress,
    .step_done = h_done, .spawn = h_spawn, .proc_signal = h_signal, .timer_start = h_timer_start,
    .timer_stop = h_timer_stop, .queue_work = h_queue_work, .subst_get = h_subst_get, .strerror = h_strerror,
};

/* ---- the plugin and its config -------------------------------------------- */

static const kiln_plugin *plugin;
static void *pdata;

static void *new_config(void)
{
    char *cfg = calloc(1, plugin->config_size);
    static const kiln_strv empty_sv = {0, NULL};
    static const kiln_kvv empty_kv = {0, NULL, NULL};
    for (const kiln_option *o = plugin->options; o->name; o++) {
        void *at = cfg + o->offset;
        switch (o->type) {
        case KILN_OPT_STRING: *(const char **)at = o->default_value; break;
        case KILN_OPT_BOOL: *(bool *)at = o->default_value && strcmp(o->default_value, "true") == 0; break;
        case KILN_OPT_STRING_LIST: *(const kiln_strv **)at = &empty_sv; break;
        case KILN_OPT_STRING_MAP: *(const kiln_kvv **)at = &empty_kv; break;
        default: break;
        }
    }
    return cfg;
}
static void *opt_at(void *cfg, const char *name)
{
    for (const kiln_option *o = plugin->options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return (char *)cfg + o->offset;
    fail_msg("no option %s", name);
    return NULL;
}

static void run_step(kiln_step *s, void *cfg)
{
    int rc = plugin->step->start(s, cfg, pdata);
    assert_int_equal(rc, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(s->done_calls, 1);
    uv_run(loop, UV_RUN_NOWAIT);
}
static const char *output(kiln_step *s, const char *k)
{
    for (int i = 0; i < s->n_outputs; i++)
        if (strcmp(s->outputs[i][0], k) == 0)
            return s->outputs[i][1];
    return NULL;
}
static char made_dirs[16][4096];
static kiln_step *made_steps[16];
static int n_steps;
static int n_made;

static kiln_step *new_step(void)
{
    static char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "%s/kiln-kt-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(tmpl));
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "cp -r '%s/tests/data/kedro_project' '%s/kedro_project'", getenv("KILN_SOURCE_DIR"), tmpl);
    assert_int_equal(system(cmd), 0);
    if (n_made < 16)
        snprintf(made_dirs[n_made++], sizeof(made_dirs[0]), "%s", tmpl);
    kiln_step *s = calloc(1, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", tmpl);
    if (n_steps < 16)
        made_steps[n_steps++] = s; /* freed after the group */
    return s;
}

static int free_steps(void **state)
{
    for (int i = 0; i < n_steps; i++)
        free(made_steps[i]);
    n_steps = 0;
    return 0;
}

static void test_good_run(void **state)
{
    kiln_step *s = new_step();
    void *cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "./kedro_project";
    s->branch = "staging";
    static const char *pk[] = {"model.n_epochs", "model.learning_rate"}, *pv[] = {"7", "0.2"};
    static const kiln_kvv params = {2, pk, pv};
    *(const kiln_kvv **)opt_at(cfg, "params") = &params;
    static const char *ok[] = {"model", "metrics"}, *ov[] = {"data/06_models/model.json", "data/08_reporting/metrics.json"};
    static const kiln_kvv outs = {2, ok, ov};
    *(const kiln_kvv **)opt_at(cfg, "outputs") = &outs;
    run_step(s, cfg);
    if (s->status != 0)
        fprintf(stderr, "%s\nreason: %s\n", s->log, s->reason);
    assert_int_equal(s->status, 0);
    assert_int_equal(s->done, 4);
    assert_int_equal(s->total, 4);
    assert_string_equal(output(s, "env"), "staging");
    assert_non_null(strstr(output(s, "model"), "/kedro_project/data/06_models/model.json"));
    assert_non_null(strstr(s->log, "--env=staging"));
    assert_non_null(strstr(s->log, "[out] INFO kedro.runner.sequential_runner: Completed 4 out of 4 tasks"));
    assert_non_null(strstr(s->log, "Model accuracy"));
    char path[4200];
    snprintf(path, sizeof(path), "%s/kedro_project/data/08_reporting/metrics.json", s->dir);
    FILE *f = fopen(path, "r");
    char buf[1024] = {0};
    assert_non_null(f);
    assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
    fclose(f);
    assert_non_null(strstr(buf, "\"n_epochs\": 7"));
    free(cfg);
}

static void test_failing_node(void **state)
{
    kiln_step *s = new_step();
    void *cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "kedro_project";
    *(const char **)opt_at(cfg, "env") = "production";
    static const char *pk[] = {"model.learning_rate"}, *pv[] = {"-1"};
    static const kiln_kvv params = {1, pk, pv};
    *(const kiln_kvv **)opt_at(cfg, "params") = &params;
    run_step(s, cfg);
    assert_int_equal(s->status, 1);
    assert_int_equal(s->done, 2);
    assert_int_equal(s->total, 4);
    assert_string_equal(s->reason, "node train_model failed after 2 of 4 nodes: model.learning_rate must be positive, "
                                   "got -1.0; resume with --from-nodes \"train_model\"");
    assert_string_equal(output(s, "failed_node"), "train_model");
    free(cfg);
}

static void test_missing_env_and_kedro(void **state)
{
    kiln_step *s = new_step();
    void *cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "kedro_project";
    s->branch = "feature/x";
    run_step(s, cfg);
    assert_int_equal(s->status, KILN_ECONFIG);
    assert_string_equal(s->reason, "kedro project check failed: kedro_project/conf/feature/x/ is missing: no "
                                   "configuration for environment \"feature/x\" (from BRANCH_NAME=feature/x; set env: "
                                   "to choose another)");
    free(cfg);

    s = new_step();
    cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "kedro_project";
    *(const char **)opt_at(cfg, "env") = "staging";
    *(const char **)opt_at(cfg, "command") = "kedro";
    static const char *ek[] = {"PATH"}, *ev[] = {"/usr/bin:/bin"};
    static const kiln_kvv envv = {1, ek, ev};
    *(const kiln_kvv **)opt_at(cfg, "env-vars") = &envv;
    run_step(s, cfg);
    assert_int_equal(s->status, KILN_ENOTFOUND);
    assert_non_null(strstr(s->reason, "kedro executable \"kedro\" not found in PATH: install Kedro"));
    free(cfg);
}

static void test_outputs_missing_and_usage(void **state)
{
    kiln_step *s = new_step();
    void *cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "kedro_project";
    *(const char **)opt_at(cfg, "env") = "staging";
    static const char *ok[] = {"model", "report"}, *ov[] = {"data/06_models/model.json", "data/nope.html"};
    static const kiln_kvv outs = {2, ok, ov};
    *(const kiln_kvv **)opt_at(cfg, "outputs") = &outs;
    run_step(s, cfg);
    assert_int_equal(s->status, KILN_ESTEPFAILED);
    assert_non_null(strstr(s->reason, "declared output report was not produced: kedro_project/data/nope.html does not exist"));
    assert_non_null(output(s, "model"));
    free(cfg);

    s = new_step();
    cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "kedro_project";
    *(const char **)opt_at(cfg, "env") = "staging";
    static const char *av[] = {"--bogus"};
    static const kiln_strv args = {1, av};
    *(const kiln_strv **)opt_at(cfg, "args") = &args;
    run_step(s, cfg);
    assert_int_equal(s->status, 2);
    assert_string_equal(s->reason, "kedro run usage error (exit 2): Error: No such option: --bogus");
    free(cfg);
}

static kiln_step *cancel_target;
static void cancel_cb(uv_timer_t *t) { plugin->step->cancel(cancel_target, pdata); }

static void test_cancel_stops_tree(void **state)
{
    kiln_step *s = new_step();
    void *cfg = new_config();
    *(const char **)opt_at(cfg, "project") = "kedro_project";
    *(const char **)opt_at(cfg, "env") = "staging";
    *(const char **)opt_at(cfg, "runner") = "ParallelRunner";
    static const char *pk[] = {"model.slow_seconds"}, *pv[] = {"3600"};
    static const kiln_kvv params = {1, pk, pv};
    *(const kiln_kvv **)opt_at(cfg, "params") = &params;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    cancel_target = s;
    uv_timer_start(&t, cancel_cb, 1500, 0);
    uint64_t t0 = uv_now(loop);
    run_step(s, cfg);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(s->status, KILN_ECANCELED);
    /* Ended at the cancel, not after the hour-long training (which would
     * run into ctest's TIMEOUT, the only limit on time here). */
    assert_true(uv_now(loop) - t0 >= 1500);
    free(cfg);
}

int main(void)
{
    const char *dir = getenv("KILN_PLUGIN_PATH"), *src = getenv("KILN_SOURCE_DIR");
    if (!dir || !src) {
        fprintf(stderr, "KILN_PLUGIN_PATH and KILN_SOURCE_DIR must be set\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/kiln-step-kedro-train.so", dir);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    const kiln_plugin *(*entry)(void) = (const kiln_plugin *(*)(void))dlsym(h, KILN_PLUGIN_ENTRY_SYMBOL);
    plugin = entry();
    char newpath[8192];
    snprintf(newpath, sizeof(newpath), "%s/tests/kedro:%s", src, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", newpath, 1);
    loop = uv_default_loop();
    if (plugin->init(&api, NULL, &pdata) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_run), cmocka_unit_test(test_failing_node),
        cmocka_unit_test(test_missing_env_and_kedro), cmocka_unit_test(test_outputs_missing_and_usage),
        cmocka_unit_test(test_cancel_stops_tree),
    };
    int failed = cmocka_run_group_tests(tests, NULL, free_steps);
    for (int i = 0; i < n_made; i++) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%.4000s'", made_dirs[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", made_dirs[i]);
    }
    return failed;
}
