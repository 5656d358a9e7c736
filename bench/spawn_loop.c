/* SPDX-License-Identifier: MIT */
/*
 * The bare limit for the DAG benchmarks: run COUNT copies of a program with
 * posix_spawn, keeping JOBS in flight (JOBS = 1 is a chain), and nothing
 * else: no graph, no logs, no environment work.
 *
 *   spawn_loop [-p] COUNT JOBS PROG [ARG...]
 *
 * -p gives each child a stdout and a stderr pipe that the loop drains with
 * poll() until both reach end of file, then reaps the child: the least a
 * runner that captures output (kiln, ninja) must do. Without -p the children
 * inherit the loop's stdout/stderr and are only reaped.
 *
 * Exit status 0 when every child exited 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct slot {
    pid_t pid;
    int fd[2]; /* stdout, stderr read ends; -1 once at end of file */
};

static void die(const char *what)
{
    fprintf(stderr, "spawn_loop: %s: %s\n", what, strerror(errno));
    exit(2);
}

static pid_t start(char **argv, bool pipes, int fd_out[2])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int p[2][2];
    if (pipes) {
        for (int i = 0; i < 2; i++)
            if (pipe2(p[i], O_CLOEXEC) != 0)
                die("pipe2");
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, p[0][1], 1);
        posix_spawn_file_actions_adddup2(&fa, p[1][1], 2);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        die(argv[0]);
    }
    if (pipes) {
        close(p[0][1]);
        close(p[1][1]);
        fd_out[0] = p[0][0];
        fd_out[1] = p[1][0];
    } else {
        fd_out[0] = fd_out[1] = -1;
    }
    return pid;
}

static bool reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
    bool pipes = false;
    int a = 1;
    if (a < argc && strcmp(argv[a], "-p") == 0) {
        pipes = true;
        a++;
    }
    if (argc - a < 3) {
        fprintf(stderr, "usage: spawn_loop [-p] COUNT JOBS PROG [ARG...]\n");
        return 2;
    }
    long count = strtol(argv[a], NULL, 10);
    int jobs = atoi(argv[a + 1]);
    char **prog = argv + a + 2;
    if (count < 0 || jobs < 1)
        return 2;
    struct slot *slots = calloc((size_t)jobs, sizeof *slots);
    struct pollfd *pfd = calloc(2 * (size_t)jobs, sizeof *pfd);
    int *pslot = calloc(2 * (size_t)jobs, sizeof *pslot);
    long started = 0, done = 0;
    int running = 0;
    bool ok = true;
    while (done < count) {
        for (int i = 0; i < jobs && running < jobs && started < count; i++) {
            if (slots[i].pid)
                continue;
            slots[i].pid = start(prog, pipes, slots[i].fd);
            started++;
            running++;
        }
        if (!pipes) {
            int st;
            pid_t pid = waitpid(-1, &st, 0);
            if (pid < 0) {
                if (errno == EINTR)
                    continue;
                die("waitpid");
            }
            ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
            for (int i = 0; i < jobs; i++)
                if (slots[i].pid == pid)
                    slots[i].pid = 0;
            running--;
            done++;
            continue;
        }
        nfds_t n = 0;
        for (int i = 0; i < jobs; i++)
            for (int k = 0; k < 2; k++)
                if (slots[i].pid && slots[i].fd[k] >= 0) {
                    pfd[n].fd = slots[i].fd[k];
                    pfd[n].events = POLLIN;
                    pslot[n++] = i;
                }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        char buf[65536];
        for (nfds_t j = 0; j < n; j++) {
            if (!pfd[j].revents)
                continue;
            struct slot *s = &slots[pslot[j]];
            int k = s->fd[0] == pfd[j].fd ? 0 : 1;
            ssize_t r = read(pfd[j].fd, buf, sizeof buf);
            if (r > 0 || (r < 0 && errno == EINTR))
                continue;
            close(s->fd[k]);
            s->fd[k] = -1;
            if (s->fd[0] < 0 && s->fd[1] < 0) {
                ok = reap(s->pid) && ok;
                s->pid = 0;
                running--;
                done++;
            }
        }
    }
    free(slots);
    free(pfd);
    free(pslot);
    return ok ? 0 : 1;
}
