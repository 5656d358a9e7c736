/* SPDX-License-Identifier: MIT */
/*
 * test-echo: a step plugin that exercises the host services a real plugin
 * uses, in the order a user can check in the log:
 *
 *   "test-echo: MESSAGE"        step_output, stdout
 *   "partial ... completed"     step_output with a partial line, completed
 *                               from a timer (timer_start)
 *   "test-echo: on stderr"      step_output, stderr
 *   output KEY=MESSAGE          set_output, from a post() made on a worker
 *                               thread of queue_work()
 *   "test-echo: sum=N"          the worker's result, after_work on the loop
 *   progress 3/3 "done"         step_progress
 *
 * Options: message (required), key (default "echoed"), exit (default 0:
 * success; else the step ends with that status), delay (default 50ms: the
 * timer before the work; a long delay lets a test cancel the step).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct echo_config {
    const char *message;
    const char *key;
    int64_t exit_code;
    int64_t delay_ms;
};

static const kiln_option echo_options[] = {
    {KILN_OPT_STRING, "message", NULL, KILN_OPT_REQUIRED, offsetof(struct echo_config, message), 0,
     -1, NULL, "What to print and to set as the output."},
    {KILN_OPT_STRING, "key", "echoed", 0, offsetof(struct echo_config, key), 0, -1, NULL,
     "The output's name."},
    {KILN_OPT_INT, "exit", "0", 0, offsetof(struct echo_config, exit_code), 0, 255, NULL,
     "The status to end with."},
    {KILN_OPT_DURATION, "delay", "50ms", 0, offsetof(struct echo_config, delay_ms), 0, 3600000, NULL,
     "How long the timer waits before the work starts."},
    KILN_OPTIONS_END,
};

struct echo_run {
    kiln_step *step;
    char *message, *key;
    int exit_code;
    kiln_timer *timer;
    long sum;       /* written by the worker, read after it */
    bool working, posted, worked, cancelled;
};

static void run_free(struct echo_run *r)
{
    free(r->message);
    free(r->key);
    free(r);
}

static void out(kiln_step *step, kiln_stream stream, const char *text)
{
    kiln_api->step_output(step, stream, text, strlen(text));
}

static void maybe_done(struct echo_run *r)
{
    if (!r->posted || !r->worked)
        return;
    kiln_step *step = r->step;
    char line[64];
    snprintf(line, sizeof line, "test-echo: sum=%ld\n", r->sum);
    out(step, KILN_STREAM_STDOUT, line);
    kiln_api->step_progress(step, 3, 3, "done");
    bool cancelled = r->cancelled;
    int code = r->exit_code;
    run_free(r);
    kiln_api->step_set_data(step, NULL);
    if (cancelled)
        kiln_api->step_done(step, KILN_ECANCELED, "test-echo was cancelled");
    else
        kiln_api->step_done(step, code, code ? "test-echo was asked to fail" : NULL);
}

/* On the loop thread, posted from the worker. */
static void on_posted(void *data)
{
    struct echo_run *r = data;
    kiln_api->step_set_output(r->step, r->key, r->message);
    kiln_api->step_progress(r->step, 2, 3, "posted");
    r->posted = true;
    maybe_done(r);
}

/* On a worker thread: only post() may be called here. */
static void work(void *data)
{
    struct echo_run *r = data;
    long sum = 0;
    for (long i = 1; i <= 1000; i++)
        sum += i;
    r->sum = sum;
    if (kiln_api->post(KILN_OBJ(r->step), on_posted, r) != 0)
        abort();
}

static void after_work(void *data, int err)
{
    struct echo_run *r = data;
    r->worked = true;
    maybe_done(r);
}

static void on_timer(kiln_timer *t, void *data)
{
    struct echo_run *r = data;
    r->timer = NULL;
    out(r->step, KILN_STREAM_STDOUT, " completed\n");
    out(r->step, KILN_STREAM_STDERR, "test-echo: on stderr\n");
    kiln_api->step_progress(r->step, 1, 3, "timer");
    r->working = true;
    int rc = kiln_api->queue_work(KILN_OBJ(r->step), work, after_work, r);
    if (rc) {
        kiln_step *step = r->step;
        run_free(r);
        kiln_api->step_set_data(step, NULL);
        kiln_api->step_done(step, rc, "test-echo: queue_work failed");
    }
}

static int echo_start(kiln_step *step, const void *config, void *plugin_data)
{
    const struct echo_config *c = config;
    struct echo_run *r = calloc(1, sizeof *r);
    if (!r)
        return KILN_ENOMEM;
    r->step = step;
    r->message = strdup(c->message);
    r->key = strdup(c->key);
    r->exit_code = (int)c->exit_code;
    kiln_info(step, "test-echo starting in %s", kiln_api->step_dir(step));
    char line[512];
    snprintf(line, sizeof line, "test-echo: %s\n", c->message);
    out(step, KILN_STREAM_STDOUT, line);
    out(step, KILN_STREAM_STDOUT, "partial");
    int rc = kiln_api->timer_start(step, (uint64_t)c->delay_ms, on_timer, r, &r->timer);
    if (rc) {
        run_free(r);
        return rc;
    }
    kiln_api->step_set_data(step, r);
    return 0;
}

static void echo_cancel(kiln_step *step, void *plugin_data)
{
    struct echo_run *r = kiln_api->step_get_data(step);
    if (!r)
        return;
    r->cancelled = true;
    if (r->working)
        return; /* the work cannot be stopped; maybe_done() ends the step */
    kiln_api->timer_stop(r->timer);
    run_free(r);
    kiln_api->step_set_data(step, NULL);
    kiln_api->step_done(step, KILN_ECANCELED, "test-echo was cancelled");
}

static int echo_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops echo_ops = {sizeof(kiln_step_ops), echo_start, echo_cancel, NULL, NULL};

static const kiln_plugin echo_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "test-echo",
    .version = "0.0.1",
    .summary = "test plugin: exercises timers, output, outputs, work and posts",
    .options = echo_options,
    .config_size = sizeof(struct echo_config),
    .init = echo_init,
    .step = &echo_ops,
};

KILN_PLUGIN_DEFINE(echo_plugin)
