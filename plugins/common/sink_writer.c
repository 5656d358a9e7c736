/* SPDX-License-Identifier: MIT */
/* A sink's bytes to one descriptor, on a worker thread; see sink_writer.h. */
#include "sink_writer.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

KILN_API_EXTERN;

/* The records of one step that a buffer holds: when a write fails, every
 * segment not wholly written is reported lost. */
struct kiln_sw_seg {
    char *build_id, *step_id; /* step_id NULL: the build's own messages */
    size_t end;               /* offset in the buffer just past the segment */
    uint64_t bytes, lines;    /* as the batches gave them */
};

char *kiln_sw_buf_reserve(kiln_sw_buf *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap - b->len < n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            abort();
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_abort(const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        abort();
    return d;
}

void kiln_sw_note(kiln_sw *w, const kiln_log_batch *lb)
{
    kiln_sw_buf *b = &w->active;
    struct kiln_sw_seg *last = b->n_segs ? &b->segs[b->n_segs - 1] : NULL;
    if (!last || !same(last->build_id, lb->build_id) || !same(last->step_id, lb->step_id)) {
        if (b->n_segs == b->cap_segs) {
            b->cap_segs = b->cap_segs ? 2 * b->cap_segs : 16;
            b->segs = realloc(b->segs, b->cap_segs * sizeof *b->segs);
            if (!b->segs)
                abort();
        }
        last = &b->segs[b->n_segs++];
        *last = (struct kiln_sw_seg){dup_or_abort(lb->build_id), dup_or_abort(lb->step_id), 0, 0, 0};
    }
    last->end = b->len;
    last->bytes += lb->len;
    last->lines += lb->n_lines;
}

/* Report the segments of B that end past WRITTEN bytes as lost (err 0:
 * none is), and forget them all. */
static void settle(kiln_sw *w, kiln_sw_buf *b, size_t written, int err)
{
    for (size_t i = 0; i < b->n_segs; i++) {
        struct kiln_sw_seg *g = &b->segs[i];
        if (err && g->end > written && KILN_API_HAS(kiln_api, sink_lost))
            kiln_api->sink_lost(w->sink, g->build_id, g->step_id, g->bytes, g->lines, strerror(err));
        free(g->build_id);
        free(g->step_id);
    }
    b->n_segs = 0;
}

void kiln_sw_buf_release(kiln_sw_buf *b)
{
    free(b->data);
    free(b->segs);
    memset(b, 0, sizeof *b);
}

void kiln_sw_init(kiln_sw *w, kiln_sink *sink, int fd, size_t high_water)
{
    memset(w, 0, sizeof *w);
    w->sink = sink;
    w->fd = fd;
    w->high_water = high_water;
}

/* On a worker thread: the whole flight buffer, in order. */
static void write_flight(void *data)
{
    kiln_sw *w = data;
    const char *p = w->flight.data;
    size_t left = w->flight.len;
    while (left) {
        ssize_t n = write(w->fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* Someone made the descriptor non-blocking: wait here. */
                struct pollfd pfd = {w->fd, POLLOUT, 0};
                poll(&pfd, 1, -1);
                continue;
            }
            w->flight_err = errno;
            w->flight_done = w->flight.len - left;
            return;
        }
        p += n;
        left -= (size_t)n;
    }
}

static void start(kiln_sw *w);

static void after_write(void *data, int err)
{
    (void)err;
    kiln_sw *w = data;
    w->in_flight = false;
    if (w->flight_err && !w->write_error) {
        w->write_error = w->flight_err;
        settle(w, &w->flight, w->flight_done, w->write_error);
        settle(w, &w->active, 0, w->write_error);
        w->active.len = 0;
        if (w->on_error)
            w->on_error(w->data, w->write_error);
    }
    settle(w, &w->flight, w->flight.len, 0);
    w->flight.len = 0;
    w->flight_err = 0;
    start(w);
    if (w->paused && w->active.len < w->high_water) {
        w->paused = false;
        kiln_api->sink_ready(w->sink);
    }
    if (w->closing && !w->in_flight && w->on_closed)
        w->on_closed(w->data);
}

static void start(kiln_sw *w)
{
    if (w->write_error) {
        settle(w, &w->active, 0, w->write_error);
        w->active.len = 0;
    }
    if (w->in_flight || !w->active.len)
        return;
    kiln_sw_buf tmp = w->flight;
    w->flight = w->active;
    w->active = tmp;
    w->in_flight = true;
    if (kiln_api->queue_work(KILN_OBJ(w->sink), write_flight, after_write, w) != 0) {
        write_flight(w); /* no worker: write here rather than lose it */
        after_write(w, 0);
    }
}

int kiln_sw_submit(kiln_sw *w)
{
    start(w);
    if (w->active.len >= w->high_water && !w->paused) {
        w->paused = true;
        return KILN_EAGAIN;
    }
    return 0;
}

bool kiln_sw_lost(kiln_sw *w, const kiln_log_batch *b)
{
    if (!w->write_error)
        return false;
    if (KILN_API_HAS(kiln_api, sink_lost))
        kiln_api->sink_lost(w->sink, b->build_id, b->step_id, b->len, b->n_lines,
                            strerror(w->write_error));
    return true;
}

void kiln_sw_close(kiln_sw *w)
{
    w->closing = true;
    start(w);
    if (!w->in_flight && w->on_closed)
        w->on_closed(w->data);
}

void kiln_sw_release(kiln_sw *w)
{
    settle(w, &w->active, 0, 0);
    settle(w, &w->flight, 0, 0);
    kiln_sw_buf_release(&w->active);
    kiln_sw_buf_release(&w->flight);
}
