/* SPDX-License-Identifier: MIT */
/*
 * kiln-pod-helper: runs a step's command inside its Pod and frames what it
 * writes, so that kiln can tell stdout from stderr and resume a broken
 * pods/log stream without losing or repeating a line (issue 15).
 *
 *   kiln-pod-helper --install DEST
 *       copies this program to DEST (mode 0755): what the Pod's init
 *       container does, into an emptyDir that the step's container mounts
 *       (the helper's image is FROM scratch: no cp there).
 *   kiln-pod-helper [--output FILE] -- COMMAND [ARG...]
 *       runs COMMAND with its stdout and stderr on two pipes and writes one
 *       record per read to its own stdout (what the kubelet logs and
 *       pods/log returns); after the command, the content of FILE (the
 *       step's $KILN_OUTPUT, when kiln cannot read it itself), then the
 *       exit record. Exits with the command's status (128+n for signal n).
 *       SIGTERM, SIGINT, SIGHUP and SIGQUIT are passed on to the command's
 *       process group (the kubelet's grace period on a deletion).
 *
 * A record is one line that the kubelet's line-based log file keeps whole
 * (well under its 16 KiB partial-line limit), the format read by
 * plugins/executor_kubernetes/kube_frame.c:
 *
 *   @kf1 SEQ TYPE LEN PAYLOAD\n
 *
 * SEQ counts records from 1; TYPE is o (stdout), e (stderr), f (output
 * file content), x (exit: PAYLOAD is the status in decimal); LEN is the
 * payload's length once unescaped. PAYLOAD escapes backslash, the control
 * bytes and DEL (\\ \n \r \t \xHH); other bytes go as they are.
 *
 * Static, no libraries beyond libc: it must run in any step image.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 2048 /* raw bytes per record: at most 4x escaped, < 16 KiB a line */

static unsigned long long seq;
static volatile sig_atomic_t pending_sig;
static int sig_pipe[2] = {-1, -1};

static void write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nobody reads the log: nothing else to do with it */
        }
        b += w;
        n -= (size_t)w;
    }
}

static void record(char type, const char *data, size_t n)
{
    static char line[64 + 4 * CHUNK + 2];
    static const char hex[] = "0123456789abcdef";
    size_t k = (size_t)snprintf(line, 64, "@kf1 %llu %c %zu ", ++seq, type, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\\') {
            line[k++] = '\\';
            line[k++] = '\\';
        } else if (c == '\n') {
            line[k++] = '\\';
            line[k++] = 'n';
        } else if (c == '\r') {
            line[k++] = '\\';
            line[k++] = 'r';
        } else if (c == '\t') {
            line[k++] = '\\';
            line[k++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            line[k++] = '\\';
            line[k++] = 'x';
            line[k++] = hex[c >> 4];
            line[k++] = hex[c & 15];
        } else {
            line[k++] = (char)c;
        }
    }
    line[k++] = '\n';
    write_all(1, line, k);
}

static void records(char type, const char *data, size_t n)
{
    do {
        size_t m = n < CHUNK ? n : CHUNK;
        record(type, data, m);
        data += m;
        n -= m;
    } while (n);
}

static void say(const char *fmt, const char *a, const char *b)
{
    char msg[1024];
    int n = snprintf(msg, sizeof msg, fmt, a, b);
    records('e', msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

static int install(const char *dest)
{
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (in < 0 || out < 0) {
        fprintf(stderr, "kiln-pod-helper: cannot install to %s: %s\n", dest, strerror(errno));
        return 1;
    }
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)r) != r) {
            fprintf(stderr, "kiln-pod-helper: writing %s: %s\n", dest, strerror(errno));
            return 1;
        }
    if (r < 0 || fchmod(out, 0755) || close(out)) {
        fprintf(stderr, "kiln-pod-helper: installing %s: %s\n", dest, strerror(errno));
        return 1;
    }
    close(in);
    return 0;
}

static void on_signal(int sig)
{
    int e = errno;
    if (sig != SIGCHLD)
        pending_sig = sig;
    char c = (char)sig;
    if (write(sig_pipe[1], &c, 1) < 0) {
        /* full: a wake-up is pending already */
    }
    errno = e;
}

static void send_output_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* the step wrote no outputs */
    char buf[CHUNK];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            records('f', buf, (size_t)r);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--install"))
        return install(argv[2]);
    const char *output = NULL;
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--output")) {
        output = argv[i + 1];
        i += 2;
    }
    if (i >= argc || strcmp(argv[i], "--") || i + 1 >= argc) {
        fprintf(stderr, "usage: kiln-pod-helper --install DEST\n"
                        "       kiln-pod-helper [--output FILE] -- COMMAND [ARG...]\n");
        return 2;
    }
    char **cmd = argv + i + 1;
    int out[2], err[2];
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
        say("kiln-pod-helper: pipe: %s%s\n", strerror(errno), "");
        records('x', "125", 3);
        return 125;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    const int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD};
    for (size_t k = 0; k < sizeof fwd / sizeof fwd[0]; k++)
        sigaction(fwd[k], &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        say("kiln-pod-helper: fork: %s%s\n", strerror(errno), "");
        records('x', "125", 3);
        return 125;
    }
    if (pid == 0) {
        /* Its own process group, so that a forwarded signal reaches what
         * the command started too; default dispositions again. */
        setpgid(0, 0);
        for (size_t k = 0; k < sizeof fwd / sizeof fwd[0]; k++)
            signal(fwd[k], SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execvp(cmd[0], cmd);
        int e = errno;
        dprintf(2, "kiln-pod-helper: cannot run %s: %s\n", cmd[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    setpgid(pid, pid);
    close(out[1]);
    close(err[1]);
    struct pollfd pf[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
    int status = -1, open_pipes = 2;
    char buf[CHUNK];
    for (;;) {
        /* Once the command is over, what it started may hold the pipes:
         * read what is there, then stop after a quiet half second. */
        int timeout = status >= 0 ? 500 : -1;
        if (status >= 0 && !open_pipes)
            break;
        int n = poll(pf, 3, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n == 0)
            break;
        if (pending_sig) {
            int s = pending_sig;
            pending_sig = 0;
            if (status < 0)
                kill(-pid, s);
        }
        if (pf[2].revents) {
            char drain[64];
            while (read(sig_pipe[0], drain, sizeof drain) > 0) {
            }
        }
        int ws;
        pid_t w;
        /* PID 1 in the container: reap whatever ends, keep the command's. */
        while ((w = waitpid(-1, &ws, WNOHANG)) > 0)
            if (w == pid)
                status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
        for (int k = 0; k < 2; k++) {
            if (pf[k].fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(pf[k].fd, buf, sizeof buf);
            if (r > 0) {
                records(k ? 'e' : 'o', buf, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(pf[k].fd);
                pf[k].fd = -1;
                open_pipes--;
            }
        }
    }
    while (status < 0) {
        int ws;
        pid_t w = waitpid(pid, &ws, 0);
        if (w == pid)
            status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
        else if (w < 0 && errno != EINTR)
            status = 1;
    }
    if (output)
        send_output_file(output);
    char st[16];
    int n = snprintf(st, sizeof st, "%d", status);
    records('x', st, (size_t)n);
    return status;
}
