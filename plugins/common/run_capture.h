/* SPDX-License-Identifier: MIT */
/*
 * Run a program to the end and take what it prints: for plugins that ask a
 * tool something synchronously or on a worker thread (git, tar, a kubeconfig
 * credential plugin). Not for a step's processes: those go through the
 * host's spawn, with their output framed and shipped.
 */
#ifndef KP_RUN_CAPTURE_H
#define KP_RUN_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

typedef void (*kp_out_cb)(void *data, const char *buf, size_t len);

/* argv[0] is looked up in PATH (unless it holds a '/'); env NULL: this
 * process's environment. Its stdin is /dev/null; its stdout goes to
 * on_out(data, ...) as it comes (on_out may be NULL); the first errcap-1
 * bytes of its stderr into err, NUL-terminated, trailing newlines dropped
 * (err may be NULL). timeout_ms > 0: past it the program is killed with
 * SIGKILL and *timed_out is set. Returns 0 with *status its wait status, or
 * an errno value when it could not be started (ENOENT: not found). */
int kp_run_capture(char *const argv[], char *const env[], kp_out_cb on_out, void *data, char *err, size_t errcap,
                   long timeout_ms, int *status, bool *timed_out);

/* kp_run_capture() with IN (IN_LEN bytes) on the program's stdin, then
 * end of file (IN NULL: /dev/null). Written as the program reads it, while
 * its output is taken; a program that exits without reading it all is not
 * an error here (its exit status says what it thought). */
int kp_run_capture_in(char *const argv[], char *const env[], const char *in, size_t in_len, kp_out_cb on_out,
                      void *data, char *err, size_t errcap, long timeout_ms, int *status, bool *timed_out);

#endif
