/* SPDX-License-Identifier: MIT */
/*
 * test-recorder: an executor plugin that runs nothing, but writes the life
 * of each of its instances to a file, one line per call, so that a test
 * sees how the host uses them (kiln serve: one instance per build):
 *
 *   init INST
 *   open INST BUILD            (or "open-refused INST BUILD")
 *   spawn INST BUILD STEP      (BUILD: the spec's build id; "MISMATCH"
 *                               is added when it is not the one of open())
 *   close INST BUILD
 *   destroy INST BUILD
 *
 *   close-work-after INST      (close_work=true: after the job close() queued)
 *
 * INST is the instance's plugin_data address: the plugin keeps no state
 * outside it. A process prints "recorder ran STEP in IMAGE for BUILD" and
 * exits 0 on the loop's next turn (post()). Options: log (the file),
 * open_limit (N: open() fails once the file holds N successful opens, so
 * a test makes a later build's open fail), lines (N: the process prints
 * "1" to "N" first, one line a turn; pause() holds them and resume()
 * delivers the next one inside the call, as an executor that drains what
 * it buffered does), close_work (close() queues a job on a worker thread
 * that outlives it: the host must not destroy the instance before the
 * job's `after` ran).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct rec_config {
    const char *log;
    int64_t open_limit;
    int64_t lines;
    bool close_work;
};

static const kiln_option rec_options[] = {
    {KILN_OPT_STRING, "log", NULL, KILN_OPT_REQUIRED, offsetof(struct rec_config, log), 0, -1, NULL,
     "The file each instance's calls are appended to."},
    {KILN_OPT_INT, "open_limit", "0", 0, offsetof(struct rec_config, open_limit), 0, 1000000, NULL,
     "open() fails once the file holds this many successful opens (0: never)."},
    {KILN_OPT_INT, "lines", "0", 0, offsetof(struct rec_config, lines), 0, 1000000, NULL,
     "Lines \"1\"..\"N\" each process prints before its own line, one a turn, held while paused."},
    {KILN_OPT_BOOL, "close_work", "false", 0, offsetof(struct rec_config, close_work), 0, -1, NULL,
     "close() queues a job on a worker thread and calls done before it ends."},
    KILN_OPTIONS_END,
};

struct rec {
    kiln_plugin_handle *self;
    char *log;
    char build[64];
    int64_t lines;
    bool close_work;
};

struct proc {
    kiln_exec *x;       /* NULL once abandoned */
    char *line;
    struct rec *r;
    int64_t next;       /* lines=N: the next numbered line */
    bool paused, posted;
};

static void say(struct rec *r, const char *fmt, const char *a, const char *b)
{
    FILE *f = r->log ? fopen(r->log, "a") : NULL;
    if (!f)
        return;
    fprintf(f, "%s %p", fmt, (void *)r);
    if (a)
        fprintf(f, " %s", a);
    if (b)
        fprintf(f, " %s", b);
    fputc('\n', f);
    fclose(f);
}

static long opens_so_far(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    long n = 0;
    while (f && fgets(line, sizeof line, f))
        n += !strncmp(line, "open ", 5);
    if (f)
        fclose(f);
    return n;
}

static int rec_open(void *plugin_data, const void *config, const char *build_id)
{
    struct rec *r = plugin_data;
    const struct rec_config *c = config;
    r->log = strdup(c->log);
    snprintf(r->build, sizeof r->build, "%s", build_id);
    if (c->open_limit && opens_so_far(c->log) >= c->open_limit) {
        say(r, "open-refused", build_id, NULL);
        kiln_error(r->self, "executor test-recorder: open refused for %s (open_limit %lld)", build_id,
                   (long long)c->open_limit);
        return KILN_EIO;
    }
    r->lines = c->lines;
    r->close_work = c->close_work;
    say(r, "open", build_id, NULL);
    kiln_info(r->self, "executor test-recorder: opened for %s", build_id);
    return 0;
}

static void on_posted(void *data);

/* One numbered line, or the last one and the end. False: p is gone. */
static bool emit(struct proc *p)
{
    if (p->next <= p->r->lines) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld\n", (long long)p->next++);
        kiln_api->exec_output(p->x, KILN_STREAM_STDOUT, buf, (size_t)n);
        return true;
    }
    kiln_api->exec_output(p->x, KILN_STREAM_STDOUT, p->line, strlen(p->line));
    kiln_api->exec_exited(p->x, 0, NULL);
    p->x = NULL;
    return false;
}

static void on_posted(void *data)
{
    struct proc *p = data;
    p->posted = false;
    if (p->x && !p->paused && emit(p) && p->x && !p->paused) {
        p->posted = kiln_api->post(KILN_OBJ(p->r->self), on_posted, p) == 0;
        return;
    }
    if (!p->x) {
        free(p->line);
        free(p);
    }
}

static int rec_spawn(kiln_exec *x, const kiln_exec_spec *s, void *plugin_data)
{
    struct rec *r = plugin_data;
    char what[256];
    snprintf(what, sizeof what, "%s%s", s->step_id, strcmp(s->build_id, r->build) ? " MISMATCH" : "");
    say(r, "spawn", s->build_id, what);
    struct proc *p = calloc(1, sizeof *p);
    if (!p)
        return KILN_ENOMEM;
    p->x = x;
    p->r = r;
    p->next = 1;
    size_t n = strlen(s->step_id) + strlen(s->image ? s->image : "") + strlen(s->build_id) + 64;
    p->line = malloc(n);
    if (!p->line) {
        free(p);
        return KILN_ENOMEM;
    }
    snprintf(p->line, n, "recorder ran %s in %s for %s\n", s->step_id, s->image ? s->image : "-", s->build_id);
    kiln_api->exec_set_data(x, p);
    /* The end comes on a later turn: never inside spawn(). */
    if (kiln_api->post(KILN_OBJ(r->self), on_posted, p) != 0) {
        free(p->line);
        free(p);
        return KILN_EIO;
    }
    p->posted = true;
    return 0;
}

static void rec_pause(kiln_exec *x)
{
    struct proc *p = kiln_api->exec_get_data(x);
    p->paused = true;
}

/* What a paused process held comes out inside resume(). */
static void rec_resume(kiln_exec *x)
{
    struct proc *p = kiln_api->exec_get_data(x);
    if (!p->paused)
        return;
    p->paused = false;
    if (!emit(p)) {
        if (!p->posted) {
            free(p->line);
            free(p);
        }
        return;
    }
    if (!p->posted && !p->paused)
        p->posted = kiln_api->post(KILN_OBJ(p->r->self), on_posted, p) == 0;
}

static void rec_terminate(kiln_exec *x)
{
    (void)x; /* it ends on its own, at once */
}

static void rec_abandon(kiln_exec *x)
{
    struct proc *p = kiln_api->exec_get_data(x);
    if (!p)
        return;
    p->x = NULL;
    if (!p->posted) {
        free(p->line);
        free(p);
    }
}

static void close_job(void *data)
{
    (void)data;
    usleep(300000); /* long enough for a host that does not wait to destroy first */
}

static void close_job_after(void *data, int err)
{
    (void)err;
    struct rec *r = data;
    say(r, "close-work-after", r->build, NULL);
}

static void rec_close(void *plugin_data, void (*done)(void *), void *arg)
{
    struct rec *r = plugin_data;
    say(r, "close", r->build, NULL);
    if (r->close_work && kiln_api->queue_work(KILN_OBJ(r->self), close_job, close_job_after, r) != 0)
        say(r, "close-work-refused", r->build, NULL);
    done(arg);
}

static int rec_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    if (!KILN_API_HAS(api, exec_plugin_handle))
        return KILN_EABI;
    struct rec *r = calloc(1, sizeof *r);
    if (!r)
        return KILN_ENOMEM;
    r->self = self;
    *plugin_data = r;
    return 0;
}

static void rec_destroy(void *plugin_data)
{
    struct rec *r = plugin_data;
    if (r->log) /* an instance that was opened */
        say(r, "destroy", r->build, NULL);
    free(r->log);
    free(r);
}

static const kiln_executor_ops rec_ops = {
    sizeof(kiln_executor_ops), rec_open, rec_spawn, NULL, rec_terminate, rec_abandon, rec_pause, rec_resume, rec_close,
};

static const kiln_plugin rec_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_EXECUTOR,
    .name = "test-recorder",
    .version = "1.0.0",
    .summary = "Records how the host uses executor instances (tests only)",
    .options = rec_options,
    .config_size = sizeof(struct rec_config),
    .init = rec_init,
    .destroy = rec_destroy,
    .executor = &rec_ops,
};

KILN_PLUGIN_DEFINE(rec_plugin)
