/* SPDX-License-Identifier: MIT */
/*
 * no_userns UID GID CMD [ARG]...: run CMD as UID:GID on a machine that
 * refuses unprivileged user namespaces, without changing this machine.
 *
 * Needs root. CMD runs in a user namespace of its own (ids 0-65535 mapped
 * to themselves, so UID is the same user as outside) whose
 * user.max_user_namespaces is 0: there, unshare(CLONE_NEWUSER) fails with
 * ENOSPC, as it does where an administrator or a policy turned user
 * namespaces off. The tests use it to see what kiln says then.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: no_userns UID GID CMD [ARG]...\n");
        return 2;
    }
    uid_t uid = (uid_t)atoi(argv[1]);
    gid_t gid = (gid_t)atoi(argv[2]);
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char c = 0;
        if (unshare(CLONE_NEWUSER) != 0) {
            perror("no_userns: unshare");
            _exit(1);
        }
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1 || c != 1)
            _exit(1);
        if (write_file("/proc/sys/user/max_user_namespaces", "0") != 0) {
            perror("no_userns: max_user_namespaces");
            _exit(1);
        }
        if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
            perror("no_userns: setuid");
            _exit(1);
        }
        execvp(argv[3], argv + 3);
        perror("no_userns: exec");
        _exit(127);
    }
    char c;
    if (pid < 0 || read(ready[0], &c, 1) != 1)
        return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    int ok = write_file(path, "0 0 65536\n") == 0;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    ok = ok && write_file(path, "0 0 65536\n") == 0;
    if (!ok)
        perror("no_userns: id maps (run as root)");
    c = ok ? 1 : 0;
    if (write(go[1], &c, 1) != 1)
        return 1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
