/* SPDX-License-Identifier: MIT */
/*
 * kiln-watchdog: kills what the steps of a dead kiln left running.
 *
 * kiln starts one per kiln process, at its first step process, in a session
 * of its own, with the read end of a pipe as standard input; only kiln holds
 * the write end (close-on-exec, so no step inherits it). kiln writes one
 * record per process group it creates and one when it has reaped the group
 * and killed what was left of it (so that a recycled group id is never hit).
 * When the pipe reaches end of file, kiln has ended: exited, crashed, or
 * been killed by SIGKILL or the OOM killer. The watchdog then sends SIGKILL
 * to every group still registered and exits. PR_SET_PDEATHSIG is the second
 * signal, for a pipe kept open by a forked child of kiln that never exec'd.
 *
 * Usage: kiln-watchdog KILN_PID   (records on standard input)
 *
 * A record is a native int32: a positive process group id is registered, its
 * negation is forgotten. The watchdog ignores SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT: Ctrl-C is kiln's to handle (it cancels the build, which ends each
 * group by itself); only kiln's end makes the watchdog act.
 *
 * Then it kills the processes that left their group (setsid, a daemon) but
 * still carry kiln's KILN_PROCESS_TAG (strays.h): kiln kills a build's at
 * the build's end, so at a normal end none is left.
 *
 * No libraries beyond libc, and nothing on kiln's path per step but the
 * record's write().
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "strays.h"

static volatile sig_atomic_t parent_died;

static void on_parent_death(int sig)
{
    (void)sig;
    parent_died = 1;
}

/* The registered groups: few at a time (the running steps' processes). */
static int32_t *groups;
static size_t n_groups, cap_groups;

static void add(int32_t pgid)
{
    for (size_t i = 0; i < n_groups; i++)
        if (groups[i] == pgid)
            return; /* told again by a kiln that restarted its watchdog */
    if (n_groups == cap_groups) {
        size_t cap = cap_groups ? cap_groups * 2 : 64;
        int32_t *g = realloc(groups, cap * sizeof *g);
        if (!g) {
            fprintf(stderr, "kiln: watchdog: out of memory; process group %d is not watched\n", (int)pgid);
            return;
        }
        groups = g;
        cap_groups = cap;
    }
    groups[n_groups++] = pgid;
}

static void forget(int32_t pgid)
{
    for (size_t i = n_groups; i-- > 0;)
        if (groups[i] == pgid) {
            groups[i] = groups[--n_groups];
            return;
        }
}

/* Apply whole records of buf[0..len); returns how many bytes were used. */
static size_t apply(const char *buf, size_t len)
{
    size_t used = 0;
    for (; len - used >= sizeof(int32_t); used += sizeof(int32_t)) {
        int32_t r;
        memcpy(&r, buf + used, sizeof r);
        if (r > 1)
            add(r);
        else if (r < -1)
            forget(-r);
    }
    return used;
}

struct stray_list {
    size_t n, len;
    char text[256];
};

static void note_stray(void *arg, pid_t pid, const char *tag, const char *comm)
{
    (void)tag;
    struct stray_list *l = arg;
    l->n++;
    if (l->len < sizeof l->text - 32)
        l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s%ld (%s)",
                                   l->n > 1 ? ", " : "", (long)pid, comm);
}

/* What kiln's steps left outside their groups, found by their tag. */
static void kill_strays(long kiln, unsigned long long start)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%ld.%llu:", kiln, start);
    struct stray_list l = {0};
    kiln__strays_kill(prefix, note_stray, &l);
    if (l.n)
        fprintf(stderr, "kiln: watchdog: kiln (pid %ld) ended; killed %zu process%s that had left "
                        "their step's process group: %s\n",
                kiln, l.n, l.n == 1 ? "" : "es", l.text);
}

int main(int argc, char **argv)
{
    char *end;
    long kiln = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || kiln <= 1) {
        fprintf(stderr, "usage: kiln-watchdog KILN_PID\n"
                        "kiln runs this itself; it is not meant to be run by hand.\n");
        return 2;
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_parent_death; /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() != (pid_t)kiln)
        parent_died = 1; /* before the prctl */
#ifdef SYS_close_range
    syscall(SYS_close_range, 3U, ~0U, 0U); /* anything kiln leaked without O_CLOEXEC */
#endif
    /* kiln's start time, read while kiln lives: the tags of its processes
     * begin with PID.START (strays.h). */
    unsigned long long kiln_start = parent_died ? 0 : kiln__proc_start_ticks((pid_t)kiln);
    if (chdir("/") != 0) {
        /* only so as not to hold a directory busy */
    }

    char buf[4096];
    size_t have = 0;
    for (;;) {
        if (parent_died && getppid() != (pid_t)kiln) {
            /* Take what kiln wrote before it died, without waiting for the
             * end of file a lingering fork of kiln may hold back. */
            fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
        }
        ssize_t n = read(0, buf + have, sizeof buf - have);
        if (n > 0) {
            have += (size_t)n;
            size_t used = apply(buf, have);
            memmove(buf, buf + used, have - used);
            have -= used;
            /* Records only matter at the end: let them gather for 10 ms
             * rather than wake up for each of kiln's writes. 64 KiB of
             * pipe holds 16,384 of them, far more than kiln writes in
             * that time, and a signal cuts the nap short. */
            struct timespec nap = {0, 10 * 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break; /* end of file, EAGAIN after kiln's death, or an error */
    }

    size_t killed = 0;
    char list[256];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n_groups; i++) {
        if (kill(-groups[i], SIGKILL) != 0)
            continue; /* already gone */
        killed++;
        if (len < sizeof list - 16)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", killed > 1 ? " " : "",
                                    (int)groups[i]);
    }
    if (killed)
        fprintf(stderr, "kiln: watchdog: kiln (pid %ld) ended while steps were running; killed %zu "
                        "process group%s: %s\n",
                kiln, killed, killed == 1 ? "" : "s", list);
    free(groups);
    if (kiln_start)
        kill_strays(kiln, kiln_start);
    _exit(0); /* no exit handlers: a leak checker must not change anything here */
}
