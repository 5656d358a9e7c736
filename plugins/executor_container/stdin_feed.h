/* SPDX-License-Identifier: MIT */
/*
 * A step's input file to its container's stdin. The Engine API gives a
 * container's stdin through an attach that the engine hijacks into a raw
 * byte stream; the end of the input is the client's half-close of that
 * connection (with StdinOnce, the engine then closes the process's stdin).
 * libcurl cannot half-close, so this is a plain socket written from a worker
 * thread: blocking writes are the process's backpressure, as a pipe's are.
 */
#ifndef KILN_CX_STDIN_FEED_H
#define KILN_CX_STDIN_FEED_H

#include <stdbool.h>

#include "engine_sync.h"

typedef struct cx_feed cx_feed;

/* Takes file_fd (the open input file). The address and id are copied.
 * ready(arg, ok) is called once, on the worker thread, when the engine has
 * accepted the attach (ok: the container may start, its stdin is there) or
 * could not give it (!ok), before any byte is copied: the container must
 * not start before, or a process that reads its stdin at once may find it
 * closed and end, and the attach is then refused (409). */
cx_feed *cx_feed_new(const cx_addr *a, const char *container_id, int file_fd, void (*ready)(void *arg, bool ok),
                     void *arg);
/* On a worker thread: attach stdin=1, copy the file, half-close. */
void cx_feed_run(void *feed);
/* On the loop thread, at any time: stop a copy in progress (the process is
 * over, or the step was abandoned). */
void cx_feed_cancel(cx_feed *f);
/* After run: why the input could not be given (before any byte was sent:
 * no connection, the engine refused the attach), else NULL. Writes that fail
 * because the process ended without reading everything are not errors, as
 * with a pipe. */
const char *cx_feed_error(const cx_feed *f);
void cx_feed_free(cx_feed *f);

#endif
