/* SPDX-License-Identifier: MIT */
/* Processes that left their step's process group; see strays.h. */
#include "strays.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned long long kiln__proc_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: count the fields
     * after its last ')'. starttime is field 22; the state is field 3. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* The whole of /proc/PID/environ in *buf (grown as needed); its length, or
 * -1 when it cannot be read (gone, another user's, a kernel thread's). */
static ssize_t read_environ(pid_t pid, char **buf, size_t *cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        if (len + 4096 > *cap) {
            size_t ncap = *cap ? *cap * 2 : 16384;
            char *nb = realloc(*buf, ncap);
            if (!nb)
                break;
            *buf = nb;
            *cap = ncap;
        }
        ssize_t n = read(fd, *buf + len, *cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    return (ssize_t)len;
}

/* The tag's value in env[0..len) when it starts with prefix, else NULL. */
static const char *tag_in(const char *env, size_t len, const char *prefix)
{
    static const char var[] = KILN__TAG_VAR "=";
    size_t vl = sizeof var - 1, pl = strlen(prefix);
    for (size_t i = 0; i < len;) {
        const char *e = env + i;
        size_t el = strnlen(e, len - i);
        if (el >= vl + pl && memcmp(e, var, vl) == 0 && memcmp(e + vl, prefix, pl) == 0)
            return e + vl;
        i += el + 1;
    }
    return NULL;
}

static void comm_of(pid_t pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n <= 0)
        n = 0;
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

/* The pids killed so far: one that is still dying is seen again by the next
 * pass and is not counted twice. */
struct seen {
    pid_t *pids;
    size_t n, cap;
};

static bool seen_has(const struct seen *s, pid_t pid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->pids[i] == pid)
            return true;
    return false;
}

static void seen_add(struct seen *s, pid_t pid)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        pid_t *np = realloc(s->pids, ncap * sizeof *np);
        if (!np)
            return;
        s->pids = np;
        s->cap = ncap;
    }
    s->pids[s->n++] = pid;
}

/* PID is dying already: SIGKILL pending (a group kill that has not been
 * acted on yet), or a zombie. Its tag is still readable then, but it is not
 * a stray: it is in the group that was just killed. */
static bool dying(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    const char *st = strstr(buf, "\nState:\t");
    if (st && (st[8] == 'Z' || st[8] == 'X'))
        return true;
    static const char *const pending[] = {"\nSigPnd:\t", "\nShdPnd:\t"};
    for (size_t i = 0; i < 2; i++) {
        const char *p = strstr(buf, pending[i]);
        if (p && (strtoull(p + strlen(pending[i]), NULL, 16) & (1ull << (SIGKILL - 1))))
            return true;
    }
    return false;
}

static size_t one_pass(const char *prefix, kiln__stray_fn fn, void *arg, char **buf, size_t *cap,
                       struct seen *seen)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t self = getpid();
    size_t killed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == self)
            continue;
        ssize_t n = read_environ((pid_t)pid, buf, cap);
        if (n <= 0)
            continue;
        (*buf)[n] = '\0';
        const char *tag = tag_in(*buf, (size_t)n, prefix);
        if (!tag)
            continue;
        if (dying((pid_t)pid))
            continue;
        if (seen_has(seen, (pid_t)pid)) {
            kill((pid_t)pid, SIGKILL);
            continue;
        }
        char comm[64];
        comm_of((pid_t)pid, comm, sizeof comm);
        if (kill((pid_t)pid, SIGKILL) != 0)
            continue; /* gone meanwhile */
        seen_add(seen, (pid_t)pid);
        killed++;
        if (fn)
            fn(arg, (pid_t)pid, tag, comm);
    }
    closedir(d);
    return killed;
}

size_t kiln__strays_kill(const char *prefix, kiln__stray_fn fn, void *arg)
{
    char *buf = NULL;
    size_t cap = 0, total = 0;
    struct seen seen = {0};
    for (int pass = 0; pass < 8; pass++) {
        size_t k = one_pass(prefix, fn, arg, &buf, &cap, &seen);
        total += k;
        if (!k)
            break;
    }
    free(seen.pids);
    free(buf);
    return total;
}
