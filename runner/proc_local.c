/* SPDX-License-Identifier: MIT */
/*
 * The local executor: a step's processes on this machine.
 *
 * Each process starts in its own session (so its own process group) with
 * stdin from /dev/null (or a file) and stdout/stderr on pipes that feed the
 * step's framers. Stopping is Neovim's: SIGTERM to the group, a grace timer,
 * SIGKILL. A process has ended for its plugin only when it exited AND both
 * pipes reached end of file, so no output is lost; when the leader exits but
 * others of its group still hold the pipes, they get the same TERM/KILL
 * treatment, so no child outlives its step.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

struct kiln_proc {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t kill_timer;
    kiln__framer fout, ferr;
    kiln__rstep *step;
    kiln_exit_cb cb;
    void *data;
    int pid;
    int status;
    int open_handles;
    bool exited, out_eof, err_eof, reported, abandoned, term_sent, kill_sent, reading;
};

static void proc_maybe_free(kiln_proc *p)
{
    if (p->open_handles == 0)
        free(p);
}

static void on_close(uv_handle_t *h)
{
    kiln_proc *p = h->data;
    p->open_handles--;
    proc_maybe_free(p);
}

static void close_all(kiln_proc *p)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->out, (uv_handle_t *)&p->err,
                         (uv_handle_t *)&p->kill_timer};
    for (size_t i = 0; i < 4; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_close);
}

static void group_kill(kiln_proc *p, int sig)
{
    if (p->pid > 0)
        kill(-p->pid, sig);
}

static bool group_alive(kiln_proc *p)
{
    return p->pid > 0 && kill(-p->pid, 0) == 0;
}

static void on_kill_timer(uv_timer_t *t)
{
    kiln_proc *p = t->data;
    if (!p->kill_sent) {
        p->kill_sent = true;
        group_kill(p, SIGKILL);
    }
}

static void start_term(kiln_proc *p)
{
    if (p->term_sent)
        return;
    p->term_sent = true;
    group_kill(p, SIGTERM);
    uint64_t grace = (uint64_t)p->step->b->eng->kill_grace_ms;
    uv_timer_start(&p->kill_timer, on_kill_timer, grace, 0);
}

/* Exit seen and both pipes drained: report once, then release. */
static void maybe_finish(kiln_proc *p)
{
    if (!p->exited || !p->out_eof || !p->err_eof || p->reported)
        return;
    p->reported = true;
    kiln__framer_finish(&p->fout);
    kiln__framer_finish(&p->ferr);
    kiln__engine_remove_reader(p->step->b->eng, p);
    uv_timer_stop(&p->kill_timer);
    if (group_alive(p))
        group_kill(p, SIGKILL); /* stragglers that closed their output */
    kiln__rstep *s = p->step;
    kiln__step_untrack_proc(s, p);
    if (!p->abandoned && p->cb)
        p->cb(p, p->data, p->status);
    close_all(p);
}

static void on_exit_cb(uv_process_t *h, int64_t exit_status, int term_signal)
{
    kiln_proc *p = h->data;
    p->exited = true;
    p->status = term_signal ? 128 + term_signal : (int)exit_status;
    /* Others of the group may still hold the pipes open. */
    if ((!p->out_eof || !p->err_eof) && group_alive(p))
        start_term(p);
    maybe_finish(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    kiln_proc *p = h->data;
    kiln__framer *f = h == (uv_handle_t *)&p->out ? &p->fout : &p->ferr;
    size_t len;
    kiln__framer_space(f, &buf->base, &len);
    buf->len = len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    kiln_proc *p = s->data;
    bool is_out = s == (uv_stream_t *)&p->out;
    kiln__framer *f = is_out ? &p->fout : &p->ferr;
    if (nread > 0) {
        kiln__framer_commit(f, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* EOF or error: this pipe is done. */
    uv_read_stop(s);
    if (is_out)
        p->out_eof = true;
    else
        p->err_eof = true;
    maybe_finish(p);
}

static void set_reading(kiln_proc *p, bool on)
{
    if (p->reading == on)
        return;
    p->reading = on;
    if (!p->out_eof) {
        if (on)
            uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
        else
            uv_read_stop((uv_stream_t *)&p->out);
    }
    if (!p->err_eof) {
        if (on)
            uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
        else
            uv_read_stop((uv_stream_t *)&p->err);
    }
}

static int local_spawn(kiln__rstep *step, const kiln_spawn_opts *opts, kiln_exit_cb cb, void *data,
                       kiln_proc **out)
{
    if (!opts || !opts->argv || !opts->argv[0])
        return KILN_EINVAL;
    kiln__engine *eng = step->b->eng;
    kiln_proc *p = kiln__xcalloc(1, sizeof *p);
    p->step = step;
    p->cb = cb;
    p->data = data;
    kiln__framer_init(&p->fout, step, KILN_STREAM_STDOUT);
    kiln__framer_init(&p->ferr, step, KILN_STREAM_STDERR);
    p->fout.on_line = p->ferr.on_line = opts->on_line;
    p->fout.line_data = p->ferr.line_data = opts->line_data;

    /* Environment: the step's, or the one given, plus extra_env. */
    const char *const *base = opts->env ? opts->env : (const char *const *)step->env;
    size_t nb = 0, ne = 0;
    while (base && base[nb])
        nb++;
    while (opts->extra_env && opts->extra_env[ne])
        ne++;
    char **env = kiln__xcalloc(nb + ne + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < nb; i++) {
        const char *eq = strchr(base[i], '=');
        size_t kl = eq ? (size_t)(eq - base[i]) : strlen(base[i]);
        bool overridden = false;
        for (size_t j = 0; j < ne && !overridden; j++)
            overridden = strncmp(opts->extra_env[j], base[i], kl) == 0 && opts->extra_env[j][kl] == '=';
        if (!overridden)
            env[k++] = (char *)base[i];
    }
    for (size_t j = 0; j < ne; j++)
        env[k++] = (char *)opts->extra_env[j];
    env[k] = NULL;

    uv_pipe_init(eng->loop, &p->out, 0);
    uv_pipe_init(eng->loop, &p->err, 0);
    uv_timer_init(eng->loop, &p->kill_timer);
    p->out.data = p->err.data = p->kill_timer.data = p->proc.data = p;
    p->open_handles = 3; /* the process handle is counted once it exists */

    int in_fd = -1;
    uv_stdio_container_t stdio[3];
    if (opts->stdin_path) {
        in_fd = open(opts->stdin_path, O_RDONLY | O_CLOEXEC);
        if (in_fd < 0) {
            free(env);
            close_all(p);
            return -errno;
        }
        stdio[0].flags = UV_INHERIT_FD;
        stdio[0].data.fd = in_fd;
    } else {
        stdio[0].flags = UV_IGNORE;
    }
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&p->err;

    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.exit_cb = on_exit_cb;
    po.file = opts->argv[0];
    po.args = (char **)opts->argv;
    po.env = env;
    po.cwd = opts->cwd ? opts->cwd : step->dir;
    po.flags = UV_PROCESS_DETACHED; /* setsid(): a process group of its own */
    po.stdio_count = 3;
    po.stdio = stdio;
    int rc = uv_spawn(eng->loop, &p->proc, &po);
    free(env);
    if (in_fd >= 0)
        close(in_fd);
    if (rc) {
        /* libuv leaves the process handle initialized even on failure. */
        p->open_handles++;
        close_all(p);
        return rc == UV_ENOENT ? KILN_ENOENT : rc == UV_EACCES ? KILN_EACCES : KILN_ESPAWN;
    }
    p->open_handles++;
    p->pid = p->proc.pid;
    kiln__step_track_proc(step, p);
    kiln__engine_add_reader(eng, p);
    set_reading(p, eng->paused_sinks == 0);
    *out = p;
    return 0;
}

static int local_signal(kiln_proc *p, int signum)
{
    if (p->reported)
        return KILN_EINVAL;
    return kill(-p->pid, signum) == 0 ? 0 : -errno;
}

static int local_pid(const kiln_proc *p)
{
    return p->pid;
}

static void local_terminate(kiln_proc *p)
{
    if (!p->reported)
        start_term(p);
}

static void local_abandon(kiln_proc *p)
{
    p->abandoned = true;
    if (p->reported)
        return;
    if (!p->exited || group_alive(p))
        start_term(p);
}

static void local_pause(kiln_proc *p)
{
    set_reading(p, false);
}

static void local_resume(kiln_proc *p)
{
    set_reading(p, true);
}

const kiln__executor kiln__local_executor = {
    "local", local_spawn, local_signal, local_pid, local_terminate, local_abandon, local_pause,
    local_resume,
};
