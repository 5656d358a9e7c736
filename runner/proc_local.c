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
 * treatment, so no child outlives its step. Each group is registered with
 * the watchdog (watchdog.h) from its spawn until it is reaped and empty or
 * killed, so none outlives kiln either.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "strays.h"
#include "volumes.h"
#include "watchdog.h"

void kiln__spawnattr_new_session(posix_spawnattr_t *at)
{
    sigset_t dfl, none;
    sigemptyset(&dfl);
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaddset(&dfl, sig);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(at, &dfl);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

/* Processes start with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), no
 * copy of kiln's page tables) on plain pipes, and their exit is watched
 * through a pidfd. libuv's uv_spawn forks, and the loop waits in uv_spawn
 * until the child has exec'd, which includes tearing down the child's copy
 * of kiln's address space: that was most of kiln's cost per step. Where
 * pidfds or the glibc extensions are missing, uv_spawn is used. */
#if defined(__linux__) && defined(__GLIBC__) && defined(SYS_pidfd_open) && \
    defined(POSIX_SPAWN_SETSID) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define KILN_PIDFD_SPAWN 1
#else
#define KILN_PIDFD_SPAWN 0
#endif

struct kiln_proc {
    kiln__proc_base base;        /* first: the engine reaches the executor */
    uv_process_t proc;           /* uv_spawn'd */
    uv_poll_t exit_watch;        /* posix_spawn'd: readable once the process exited */
    int pidfd;                   /* -1 when uv_spawn'd */
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
    if (h == (uv_handle_t *)&p->exit_watch && p->pidfd >= 0) {
        close(p->pidfd);
        p->pidfd = -1;
    }
    p->open_handles--;
    proc_maybe_free(p);
}

static void close_all(kiln_proc *p)
{
    uv_handle_t *exit_handle = p->pidfd >= 0 ? (uv_handle_t *)&p->exit_watch : (uv_handle_t *)&p->proc;
    uv_handle_t *hs[] = {exit_handle, (uv_handle_t *)&p->out, (uv_handle_t *)&p->err,
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
    /* Reaped, and whatever was left is dying: from here the id may be
     * recycled, so the watchdog must not kill it any more. */
    kiln__watchdog_forget(p->pid);
    kiln__rstep *s = p->step;
    kiln__step_untrack_proc(s, p);
    if (!p->abandoned && p->cb)
        p->cb(p, p->data, p->status);
    close_all(p);
}

static void process_exited(kiln_proc *p, int status)
{
    p->exited = true;
    p->status = status;
    /* Others of the group may still hold the pipes open. */
    if ((!p->out_eof || !p->err_eof) && group_alive(p))
        start_term(p);
    maybe_finish(p);
}

static void on_exit_cb(uv_process_t *h, int64_t exit_status, int term_signal)
{
    process_exited(h->data, term_signal ? 128 + term_signal : (int)exit_status);
}

#if KILN_PIDFD_SPAWN
static void on_pidfd(uv_poll_t *h, int status, int events)
{
    kiln_proc *p = h->data;
    int st;
    pid_t r;
    do
        r = waitpid(p->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return; /* not yet */
    uv_poll_stop(h);
    if (r < 0)
        process_exited(p, 128 + SIGKILL); /* reaped by someone else: cause unknown */
    else
        process_exited(p, WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
}
#endif

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
        bool chatty = f->chatty;
        kiln__framer_commit(f, (size_t)nread);
        if (f->chatty && !chatty) {
            /* The framer now takes 256 KiB a read: let the pipe hold as
             * much, so that a fast step wakes kiln up to 4 times less often.
             * Best effort: past the user's pipe quota it stays as it is. */
            uv_os_fd_t fd;
            if (uv_fileno((uv_handle_t *)s, &fd) == 0)
                (void)fcntl(fd, F_SETPIPE_SZ, 256 << 10);
        }
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

/* Environment: the step's, or the one given, plus extra_env. The strings are
 * borrowed; free only the array. */
char **kiln__spawn_env(kiln__rstep *step, const kiln_spawn_opts *opts)
{
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
    return env;
}

static void init_handles(kiln__engine *eng, kiln_proc *p)
{
    uv_pipe_init(eng->loop, &p->out, 0);
    uv_pipe_init(eng->loop, &p->err, 0);
    uv_timer_init(eng->loop, &p->kill_timer);
    p->out.data = p->err.data = p->kill_timer.data = p->proc.data = p->exit_watch.data = p;
    p->open_handles = 3; /* the exit handle is counted once it exists */
}

/* The process runs: track it and read its output. */
static void started(kiln__rstep *step, kiln_proc *p, kiln_proc **out)
{
    kiln__engine *eng = step->b->eng;
    kiln__step_track_proc(step, p);
    kiln__engine_add_reader(eng, p);
    set_reading(p, eng->paused_sinks == 0);
    *out = p;
}

static int spawn_error(int e)
{
    return e == ENOENT ? KILN_ENOENT : e == EACCES ? KILN_EACCES : KILN_ESPAWN;
}

/* libuv's way: fork, socketpairs for output, SIGCHLD. */
static int spawn_uv(kiln__rstep *step, const kiln_spawn_opts *opts, kiln_proc *p, char **env,
                    kiln_proc **out)
{
    kiln__engine *eng = step->b->eng;
    init_handles(eng, p);

    int in_fd = -1;
    uv_stdio_container_t stdio[3];
    if (opts->stdin_path) {
        in_fd = open(opts->stdin_path, O_RDONLY | O_CLOEXEC);
        if (in_fd < 0) {
            int e = -errno;
            close_all(p);
            return e;
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
    kiln__watchdog_watch(p->pid);
    started(step, p, out);
    return 0;
}

#if KILN_PIDFD_SPAWN
static bool pidfd_usable(void)
{
    static int usable = -1;
    if (usable < 0) {
        /* Kernels before 5.3, or a seccomp filter, say no. */
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        usable = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    return usable;
}

/* "PID.START": the start of every tag this kiln gives (strays.h). */
static const char *tag_base(void)
{
    static char base[48];
    if (!base[0])
        snprintf(base, sizeof base, "%ld.%llu", (long)getpid(), kiln__proc_start_ticks(getpid()));
    return base;
}

/* env with KILN_PROCESS_TAG=PID.START:BUILD:STEP in place of any it had (a
 * kiln run by a step of another kiln has that one's); TAG holds the text. */
static char **tagged_env(char **env, kiln__rstep *step, char **tag)
{
    kiln__buf t = KILN__BUF_INIT;
    kiln__buf_addf(&t, KILN__TAG_VAR "=%s:%s:%d", tag_base(), step->b->id, step->ordinal);
    *tag = kiln__buf_detach(&t);
    size_t n = 0;
    bool replaced = false;
    for (; env[n]; n++)
        if (strncmp(env[n], KILN__TAG_VAR "=", sizeof KILN__TAG_VAR) == 0) {
            env[n] = *tag;
            replaced = true;
        }
    if (!replaced) {
        env = kiln__xrealloc(env, (n + 2) * sizeof *env);
        env[n] = *tag;
        env[n + 1] = NULL;
    }
    step->b->local_procs = true;
    return env;
}

struct strays_ctx {
    kiln__build *b;
};

static void report_stray(void *arg, pid_t pid, const char *tag, const char *comm)
{
    kiln__build *b = ((struct strays_ctx *)arg)->b;
    const char *colon = strrchr(tag, ':');
    long ord = colon ? strtol(colon + 1, NULL, 10) : -1;
    const char *step = ord >= 0 && (size_t)ord < b->n_total ? b->steps[ord].def->key : "?";
    kiln__sys_log(b, NULL, KILN_LOG_WARN,
                  "step '%s' left process %ld (%s) running outside its process group; killed it at "
                  "the end of the build",
                  step, (long)pid, comm);
}

void kiln__strays_end_build(kiln__build *b)
{
    if (!b->local_procs)
        return;
    kiln__buf prefix = KILN__BUF_INIT;
    kiln__buf_addf(&prefix, "%s:%s:", tag_base(), b->id);
    struct strays_ctx ctx = {b};
    kiln__strays_kill(prefix.buf, report_stray, &ctx);
    kiln__buf_release(&prefix);
}

/* The variable NAME=... of env, or NULL. */
static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* execvp()'s search, in the parent: FILE in the child's PATH, relative
 * entries from the child's directory CWD. Returns 0 with the path to exec in
 * buf (relative ones are resolved by the child, after its chdir), or the
 * errno value execvp would have failed with. */
static int find_program(const char *file, char *const *env, const char *cwd, char *buf, size_t cap)
{
    if (strchr(file, '/')) {
        if ((size_t)snprintf(buf, cap, "%s", file) >= cap)
            return ENAMETOOLONG;
        return 0;
    }
    if (!*file)
        return ENOENT;
    const char *path = env_get(env, "PATH");
    if (!path)
        path = "/bin:/usr/bin"; /* glibc's default */
    int err = ENOENT;
    for (const char *d = path;; d++) {
        const char *end = strchr(d, ':');
        size_t dl = end ? (size_t)(end - d) : strlen(d);
        int n = dl ? snprintf(buf, cap, "%.*s/%s", (int)dl, d, file) : snprintf(buf, cap, "./%s", file);
        char at[PATH_MAX];
        const char *check = buf;
        if (buf[0] != '/') {
            if ((size_t)snprintf(at, sizeof at, "%s/%s", cwd, buf) >= sizeof at)
                n = -1;
            check = at;
        }
        struct stat st;
        if (n > 0 && (size_t)n < cap && stat(check, &st) == 0 && !S_ISDIR(st.st_mode)) {
            if (faccessat(AT_FDCWD, check, X_OK, AT_EACCESS) == 0)
                return 0;
            err = EACCES; /* execvp goes on, and says EACCES if nothing else is found */
        }
        if (!end)
            break;
        d = end;
    }
    return err;
}

/* The program of a kiln-mount-exec argv: the word after "--". */
static const char *wrapped_program(char **argv)
{
    while (strcmp(*argv, "--") != 0)
        argv++;
    return argv[1];
}

/* fd moved to 3 or above, so that dup2 onto 0-2 cannot clobber another. */
static int above_stdio(int fd)
{
    if (fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

static int spawn_posix(kiln__rstep *step, const kiln_spawn_opts *opts, kiln_proc *p, char **env,
                       kiln_proc **out)
{
    kiln__engine *eng = step->b->eng;
    const char *cwd = opts->cwd ? opts->cwd : step->dir;
    char file[PATH_MAX];
    int e = find_program(opts->argv[0], env, cwd, file, sizeof file);
    if (e)
        return spawn_error(e);

    int in_fd = -1, fo[2] = {-1, -1}, fe[2] = {-1, -1};
    if (opts->stdin_path) {
        in_fd = open(opts->stdin_path, O_RDONLY | O_CLOEXEC);
        if (in_fd < 0)
            return -errno;
    }
    if (pipe2(fo, O_CLOEXEC) != 0 || pipe2(fe, O_CLOEXEC) != 0) {
        e = errno;
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        fo[i] = above_stdio(fo[i]);
        fe[i] = above_stdio(fe[i]);
    }
    in_fd = in_fd >= 0 ? above_stdio(in_fd) : -1;
    if (fo[0] < 0 || fo[1] < 0 || fe[0] < 0 || fe[1] < 0 || (opts->stdin_path && in_fd < 0)) {
        e = EMFILE;
        goto fail;
    }

    /* What libuv's child does: a session of its own, stdin from /dev/null
     * or the file, default signal handlers (kiln ignores SIGPIPE), nothing
     * blocked, then the step's directory. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    if (in_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fo[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fe[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, cwd);
    kiln__spawnattr_new_session(&at);
    pid_t pid;
    e = posix_spawn(&pid, file, &fa, &at, (char *const *)opts->argv, env);
    if (e == ENOEXEC) {
        /* execvp runs a file without #! with the shell; so did uv_spawn. */
        size_t n = 0;
        while (opts->argv[n])
            n++;
        const char **sh = kiln__xcalloc(n + 2, sizeof *sh);
        sh[0] = "/bin/sh";
        sh[1] = file;
        for (size_t i = 1; i < n; i++)
            sh[i + 1] = opts->argv[i];
        e = posix_spawn(&pid, "/bin/sh", &fa, &at, (char *const *)sh, env);
        free(sh);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fo[1]);
    close(fe[1]);
    fo[1] = fe[1] = -1;
    if (in_fd >= 0)
        close(in_fd);
    in_fd = -1;
    if (e)
        goto fail;
    kiln__watchdog_watch(pid);

    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0) {
        /* Cannot watch it: do not leave it running unseen. */
        e = errno;
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        kiln__watchdog_forget(pid);
        goto fail;
    }
    init_handles(eng, p);
    uv_pipe_open(&p->out, fo[0]);
    uv_pipe_open(&p->err, fe[0]);
    uv_poll_init(eng->loop, &p->exit_watch, p->pidfd);
    p->exit_watch.data = p;
    p->open_handles++;
    uv_poll_start(&p->exit_watch, UV_READABLE, on_pidfd);
    started(step, p, out);
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (fo[i] >= 0)
            close(fo[i]);
        if (fe[i] >= 0)
            close(fe[i]);
    }
    if (in_fd >= 0)
        close(in_fd);
    return e == ENOENT || e == EACCES ? spawn_error(e) : e == EMFILE || e == ENFILE ? -e : KILN_ESPAWN;
}
#endif

static int local_spawn(kiln__rstep *step, const kiln_spawn_opts *opts, kiln_exit_cb cb, void *data,
                       kiln_proc **out)
{
    if (!opts || !opts->argv || !opts->argv[0])
        return KILN_EINVAL;
    kiln_proc *p = kiln__xcalloc(1, sizeof *p);
    p->base.exec = &kiln__local_executor;
    p->step = step;
    p->cb = cb;
    p->data = data;
    p->pidfd = -1;
    kiln__framer_init(&p->fout, step, KILN_STREAM_STDOUT);
    kiln__framer_init(&p->ferr, step, KILN_STREAM_STDERR);
    p->fout.on_line = p->ferr.on_line = opts->on_line;
    p->fout.line_data = p->ferr.line_data = opts->line_data;
    char *tag;
    char **env = tagged_env(kiln__spawn_env(step, opts), step, &tag);
    int rc;
    /* A step with volumes: its processes start through kiln-mount-exec, from
     * "/" as its working directory may exist only in a volume. */
    const char *cwd = opts->cwd ? opts->cwd : step->dir;
    char **wrapped = kiln__volumes_wrap(step, opts->argv, cwd);
    kiln_spawn_opts wopts;
    if (wrapped) {
        wopts = *opts;
        wopts.argv = (const char *const *)wrapped;
        wopts.cwd = "/";
        opts = &wopts;
    }
#if KILN_PIDFD_SPAWN
    if (pidfd_usable()) {
        /* As for any step, a program not found is the spawn's error. */
        char file[PATH_MAX];
        int e = wrapped && !strchr(wrapped_program(wrapped), '/')
                    ? find_program(wrapped_program(wrapped), env, cwd, file, sizeof file)
                    : 0;
        if (e == ENOENT && kiln__volumes_in_path(step, env_get(env, "PATH")))
            e = 0; /* it may be in a volume: kiln-mount-exec will tell */
        rc = e ? spawn_error(e) : spawn_posix(step, opts, p, env, out);
        if (rc) {
            kiln__framer_finish(&p->fout);
            kiln__framer_finish(&p->ferr);
            free(p);
        }
        free(env);
        free(tag);
        kiln__volumes_free_argv(wrapped);
        return rc;
    }
#endif
    rc = spawn_uv(step, opts, p, env, out);
    free(env);
    free(tag);
    kiln__volumes_free_argv(wrapped);
    return rc;
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
