/* SPDX-License-Identifier: MIT */
/*
 * The watchdog: no process of a step outlives kiln.
 *
 * kiln ends each step's process groups itself (proc_local.c), but a kiln
 * that is killed (SIGKILL, the OOM killer) or crashes cannot. So at the
 * first step process kiln starts kiln-watchdog (runner/watchdog/), one per
 * kiln process, and tells it through a pipe which process groups exist;
 * when kiln ends, for any reason, the pipe reaches end of file and the
 * watchdog sends SIGKILL to every group still registered.
 *
 * Per group this costs two write()s of four bytes on the loop thread, and
 * nothing else. Call these from the loop thread only: it is the main thread,
 * and the watchdog's PR_SET_PDEATHSIG fires when the thread that started it
 * ends, not the process.
 */
#ifndef KILN_WATCHDOG_H
#define KILN_WATCHDOG_H

/* PGID (a new process group, a process's pid after setsid) belongs to a
 * step. Starts the watchdog on first use; when it cannot be started, says
 * so once on stderr and goes on without it. */
void kiln__watchdog_watch(int pgid);

/* kiln has reaped PGID's leader and killed what was left of the group: the
 * id may be reused by anyone from now on, so the watchdog must forget it. */
void kiln__watchdog_forget(int pgid);

#endif /* KILN_WATCHDOG_H */
