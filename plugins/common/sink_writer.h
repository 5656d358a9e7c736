/* SPDX-License-Identifier: MIT */
/*
 * A sink's bytes to one descriptor, written on a worker thread: the console
 * and JSON-lines sinks.
 *
 * The sink appends to the active buffer on the loop thread and calls
 * kiln_sw_submit(); one worker write()s the other buffer (the one in flight),
 * so what arrives during a write goes out in the next, bigger one. A slow
 * reader (a pipe nobody reads yet, a paused terminal, a slow disk) blocks
 * only that worker: above the high-water mark kiln_sw_submit() says
 * KILN_EAGAIN, kiln stops reading step output, and sink_ready() follows when
 * the writer has caught up. Nothing is dropped while the descriptor takes it.
 *
 * Each buffer knows whose records it holds (kiln_sw_note() after a batch is
 * appended). When a write fails (EPIPE: the reader is gone; ENOSPC), nothing
 * more is written, so the output stays a prefix of the records, and what was
 * not written is reported lost per step with sink_lost(), as is every later
 * batch (kiln_sw_lost()). The host then warns once and counts the loss in
 * the report; the build's result stands unless the sink is required.
 */
#ifndef KILN_SINK_WRITER_H
#define KILN_SINK_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

struct kiln_sw_seg;

typedef struct kiln_sw_buf {
    char *data;
    size_t len, cap;
    struct kiln_sw_seg *segs; /* whose records, for loss accounting */
    size_t n_segs, cap_segs;
} kiln_sw_buf;

/* Room for n more bytes after len (the caller adds to len); memory
 * exhaustion aborts, as everywhere in the sinks' output path. */
char *kiln_sw_buf_reserve(kiln_sw_buf *b, size_t n);
void kiln_sw_buf_release(kiln_sw_buf *b);

typedef struct kiln_sw {
    kiln_sink *sink;
    int fd;
    size_t high_water;
    /* Once, on the loop, after the first failed write; may be NULL (the
     * host's loss warning then says it). */
    void (*on_error)(void *data, int err);
    /* After kiln_sw_close(), when the last write has ended. */
    void (*on_closed)(void *data);
    void *data;
    kiln_sw_buf active, flight; /* filled on the loop / being written */
    int flight_err;
    size_t flight_done;         /* bytes of flight written before flight_err */
    bool in_flight, paused, closing;
    int write_error;            /* errno of the first failed write */
} kiln_sw;

void kiln_sw_init(kiln_sw *w, kiln_sink *sink, int fd, size_t high_water);
/* The bytes appended to w->active since the last note are B's records. */
void kiln_sw_note(kiln_sw *w, const kiln_log_batch *b);
/* Start a write if none is under way. KILN_EAGAIN the first time the
 * waiting bytes pass the high-water mark (sink_ready() will follow), else 0. */
int kiln_sw_submit(kiln_sw *w);
/* After a failed write: report B lost and return true; else false. */
bool kiln_sw_lost(kiln_sw *w, const kiln_log_batch *b);
/* Write what is waiting, then call on_closed (perhaps at once). */
void kiln_sw_close(kiln_sw *w);
void kiln_sw_release(kiln_sw *w);

#endif /* KILN_SINK_WRITER_H */
