/* SPDX-License-Identifier: MIT */
#include "run_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int kp_run_capture(char *const argv[], char *const env[], kp_out_cb on_out, void *data, char *err, size_t errcap,
                   long timeout_ms, int *status, bool *timed_out)
{
    return kp_run_capture_in(argv, env, NULL, 0, on_out, data, err, errcap, timeout_ms, status, timed_out);
}

int kp_run_capture_in(char *const argv[], char *const env[], const char *in, size_t in_len, kp_out_cb on_out,
                      void *data, char *err, size_t errcap, long timeout_ms, int *status, bool *timed_out)
{
    size_t elen = 0;
    if (err && errcap)
        err[0] = '\0';
    *status = 0;
    if (timed_out)
        *timed_out = false;
    int po[2], pe[2], pi[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC))
        return errno;
    if (pipe2(pe, O_CLOEXEC)) {
        int e = errno;
        close(po[0]);
        close(po[1]);
        return e;
    }
    /* stdin a socket, not a pipe: send(MSG_NOSIGNAL) to a program that
     * stopped reading is EPIPE, not a SIGPIPE that would end the caller */
    if (in && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pi)) {
        int e = errno;
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in)
        posix_spawn_file_actions_adddup2(&fa, pi[1], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env ? env : environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (in) {
        close(pi[1]);
        if (!in_len) {
            close(pi[0]);
            pi[0] = -1;
        }
    }
    if (rc) {
        close(po[0]);
        close(pe[0]);
        if (pi[0] >= 0)
            close(pi[0]);
        return rc;
    }
    struct pollfd fds[3] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN},
                            {.fd = pi[0], .events = POLLOUT}};
    size_t in_off = 0;
    long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    int open_fds = 2;
    bool late = false;
    while (open_fds) {
        int wait_ms = -1;
        if (deadline) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                late = true;
                break;
            }
            wait_ms = left > 60000 ? 60000 : (int)left;
        }
        if (poll(fds, 3, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[2].fd >= 0 && fds[2].revents) {
            ssize_t w = send(fds[2].fd, in + in_off, in_len - in_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                in_off += (size_t)w;
            if ((w < 0 && errno != EINTR && errno != EAGAIN) || in_off == in_len) {
                close(fds[2].fd); /* all of it, or the program stopped reading: its end of file */
                fds[2].fd = -1;
            }
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            char buf[65536];
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                if (on_out)
                    on_out(data, buf, (size_t)r);
            } else if (err && elen + 1 < errcap) {
                size_t take = (size_t)r < errcap - 1 - elen ? (size_t)r : errcap - 1 - elen;
                memcpy(err + elen, buf, take);
                elen += take;
                err[elen] = '\0';
            }
        }
    }
    for (int i = 0; i < 3; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    if (late) {
        kill(pid, SIGKILL);
        if (timed_out)
            *timed_out = true;
    }
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    while (err && elen && (err[elen - 1] == '\n' || err[elen - 1] == '\r'))
        err[--elen] = '\0';
    return 0;
}
