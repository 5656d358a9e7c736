/* SPDX-License-Identifier: MIT */
/*
 * Strays: processes that left their step's process group.
 *
 * kiln ends a step by its process group (proc_local.c) and, when kiln dies,
 * kiln-watchdog kills the groups still registered (watchdog.h). A process
 * that calls setsid() or setpgid() (a daemon, `setsid server &`) leaves the
 * group and escapes both. So every process kiln starts on this machine
 * carries KILN_PROCESS_TAG=PID.START:BUILD:STEP in its environment, which
 * its children inherit (as GitHub's runner does with RUNNER_TRACKING_ID):
 *  - PID.START is kiln's pid and start time (clock ticks after boot, field
 *    22 of /proc/PID/stat), so a recycled pid never matches;
 *  - when a build ends, kiln kills what is left with its BUILD;
 *  - when kiln dies, the watchdog kills what is left with its PID.START.
 * A process meant to outlive the build removes the variable.
 *
 * Only libc: kiln-watchdog is built from this file too.
 */
#ifndef KILN_STRAYS_H
#define KILN_STRAYS_H

#include <stddef.h>
#include <sys/types.h>

#define KILN__TAG_VAR "KILN_PROCESS_TAG"

/* The start time of PID, in clock ticks after boot; 0 when unknown. */
unsigned long long kiln__proc_start_ticks(pid_t pid);

/* Called for each process killed: its pid, the tag's value and its command
 * name (from /proc/PID/comm, without the newline). */
typedef void (*kiln__stray_fn)(void *arg, pid_t pid, const char *tag, const char *comm);

/* SIGKILL every process but this one whose environment holds
 * KILN_PROCESS_TAG=PREFIX..., calling fn (may be NULL) for each. Passes are
 * repeated while one kills something (a stray may fork while /proc is read),
 * at most 8. Returns how many processes were killed. */
size_t kiln__strays_kill(const char *prefix, kiln__stray_fn fn, void *arg);

#endif /* KILN_STRAYS_H */
