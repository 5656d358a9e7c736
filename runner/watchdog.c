/* SPDX-License-Identifier: MIT */
/*
 * kiln's side of the watchdog (see watchdog.h and
 * runner/watchdog/kiln-watchdog.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "internal.h"
#include "watchdog.h"


#define WATCHDOG "kiln-watchdog"

extern char **environ;

static int wd_fd = -1;    /* write end of the record pipe; -1: not started */
static pid_t wd_pid;
static bool wd_failed;    /* could not start: said so once, do without */

/* The groups registered and not forgotten, to register again with a new
 * watchdog when the first one was killed. As many as running processes. */
static int32_t *live;
static size_t n_live, cap_live;

/* kiln-watchdog next to kiln, or installed (kiln__helper_path). */
static int helper_path(char *out, size_t cap)
{
    return kiln__helper_path(WATCHDOG, out, cap) == 0 ? 0 : ENOENT;
}

/* Start kiln-watchdog on a new pipe; 0 or an errno value. */
static int start(void)
{
    char path[PATH_MAX];
    int e = helper_path(path, sizeof path);
    if (e)
        return e;
    int fd[2];
    if (pipe2(fd, O_CLOEXEC) != 0)
        return errno;
    for (int i = 0; i < 2; i++) {
        /* Above 0-2 (kiln may have been started with them closed), so that
         * the dup2 below clears close-on-exec on the watchdog's copy only. */
        if (fd[i] <= 2) {
            int nfd = fcntl(fd[i], F_DUPFD_CLOEXEC, 3);
            close(fd[i]);
            fd[i] = nfd;
        }
    }
    if (fd[0] < 0 || fd[1] < 0) {
        e = errno;
        if (fd[0] >= 0)
            close(fd[0]);
        if (fd[1] >= 0)
            close(fd[1]);
        return e;
    }
    char pid_arg[24];
    snprintf(pid_arg, sizeof pid_arg, "%ld", (long)getpid());
    char *argv[] = {path, pid_arg, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fd[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    /* Its own session: the terminal's signals (Ctrl-C, hangup) and a kill
     * of kiln's process group do not reach it. Default dispositions and no
     * blocked signals, whatever kiln has. */
    kiln__spawnattr_new_session(&at);
    pid_t pid;
    e = posix_spawn(&pid, path, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fd[0]);
    if (e) {
        close(fd[1]);
        return e;
    }
    wd_fd = fd[1];
    wd_pid = pid;
    return 0;
}

/* All of buf to the watchdog; false when it is gone. */
static bool send_all(const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(wd_fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* The watchdog died (someone killed it): start another one and tell it
 * every live group again. False when that failed too. */
static bool restart(void)
{
    close(wd_fd);
    wd_fd = -1;
    int st;
    while (waitpid(wd_pid, &st, WNOHANG) < 0 && errno == EINTR) {
    }
    int e = start();
    if (e) {
        fprintf(stderr, "kiln: warning: the watchdog ended and cannot be started again (%s); "
                        "step processes will outlive kiln if it is killed\n",
                strerror(e));
        wd_failed = true;
        return false;
    }
    fprintf(stderr, "kiln: warning: the watchdog ended; started another one (pid %ld)\n", (long)wd_pid);
    if (n_live == 0 || send_all(live, n_live * sizeof *live))
        return true;
    fprintf(stderr, "kiln: warning: the new watchdog ended at once; step processes will outlive kiln "
                    "if it is killed\n");
    return false;
}

static void send_record(int32_t r)
{
    if (wd_failed)
        return;
    if (wd_fd < 0) {
        int e = start();
        if (e) {
            fprintf(stderr, "kiln: warning: cannot start " WATCHDOG " (%s); step processes will outlive "
                            "kiln if it is killed\n",
                    strerror(e));
            wd_failed = true;
            return;
        }
    }
    /* A new watchdog learns the live groups, r's included when r registers
     * one; a group being forgotten it never knew. */
    if (!send_all(&r, sizeof r) && !restart())
        wd_failed = true;
}

void kiln__watchdog_watch(int pgid)
{
    if (pgid <= 1)
        return;
    if (n_live == cap_live) {
        cap_live = cap_live ? cap_live * 2 : 64;
        live = kiln__xrealloc(live, cap_live * sizeof *live);
    }
    live[n_live++] = pgid;
    send_record(pgid);
}

void kiln__watchdog_forget(int pgid)
{
    if (pgid <= 1)
        return;
    for (size_t i = n_live; i-- > 0;)
        if (live[i] == pgid) {
            live[i] = live[--n_live];
            send_record(-pgid);
            return;
        }
}
