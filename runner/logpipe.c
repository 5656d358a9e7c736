/* SPDX-License-Identifier: MIT */
/*
 * Step output -> line records -> every sink.
 *
 * The framer reads straight into its own buffer, hands every complete line
 * to the sinks as one batch per read, and keeps the partial tail. The buffer
 * starts at 64 KiB (the size of a pipe); a read that fills it says the step
 * is chatty, and the buffer grows to 256 KiB (the executor then grows the
 * pipe to match): per read, not per line, is where kiln pays a wake-up, a
 * batch, a sink call and a write, so a chatty step costs up to 4 times
 * fewer of them. A tail that waits longer than the flush delay (a progress bar, a
 * prompt) goes out as a PARTIAL record; a line longer than the buffer goes
 * out in PARTIAL pieces. When a sink says it is full (KILN_EAGAIN), every
 * process's pipes stop being read until the sink says it is ready again:
 * output waits in the kernel's pipe buffers and the writers block, nothing is
 * dropped.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "engine.h"
#include "sinkloss.h"

#define FRAMER_CAP (64 * 1024)
#define FRAMER_CAP_CHATTY (256 * 1024) /* 1 MiB measured slower: the data leaves the caches */

void kiln__framer_init(kiln__framer *f, kiln__rstep *step, kiln_stream stream)
{
    memset(f, 0, sizeof *f);
    f->step = step;
    f->stream = stream;
    kiln__mask_stream_init(&f->mask);
}

/* Newlines in p[0..n). Every byte of every read passes here: the plain byte
 * loop was a quarter of kiln's CPU time when a step prints fast in an -O2
 * build. With SSE2, 64 bytes a round are compared into byte-wide counters
 * that are summed every 63 rounds (~0.15 instructions a byte); elsewhere,
 * counting 64-byte blocks into a byte-wide sum lets the compiler vectorize
 * it (~0.6 a byte). */
static size_t count_lines(const char *p, size_t n)
{
    size_t c = 0, i = 0;
#ifdef __SSE2__
    const __m128i nl = _mm_set1_epi8('\n');
    while (i + 64 <= n) {
        /* At most 4 a round per byte counter: 63 rounds fit in a byte. */
        size_t rounds = (n - i) / 64;
        if (rounds > 63)
            rounds = 63;
        __m128i acc = _mm_setzero_si128();
        for (size_t k = 0; k < rounds; k++, i += 64) {
            const __m128i *q = (const __m128i *)(p + i);
            __m128i a = _mm_add_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q), nl),
                                     _mm_cmpeq_epi8(_mm_loadu_si128(q + 1), nl));
            __m128i b = _mm_add_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q + 2), nl),
                                     _mm_cmpeq_epi8(_mm_loadu_si128(q + 3), nl));
            acc = _mm_sub_epi8(acc, _mm_add_epi8(a, b));
        }
        __m128i sum = _mm_sad_epu8(acc, _mm_setzero_si128());
        c += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
    }
#else
    for (; i + 64 <= n; i += 64) {
        unsigned char k = 0;
        for (size_t j = 0; j < 64; j++)
            k += p[i + j] == '\n';
        c += k;
    }
#endif
    for (; i < n; i++)
        c += p[i] == '\n';
    return c;
}

static void deliver(kiln__framer *f, const char *text, size_t len, uint32_t n_lines, bool partial)
{
    kiln__rstep *s = f->step;
    kiln__build *b = s->b;
    kiln__buf masked = KILN__BUF_INIT;
    if (!kiln__masker_empty(b->eng->masker) && !f->premasked) {
        /* Secrets never reach a sink; a partial piece may hold back a tail. */
        kiln__mask_feed(b->eng->masker, &f->mask, text, len, !partial, &masked);
        if (!masked.len)
            return;
        text = masked.buf;
        len = masked.len;
    }
    kiln_log_batch batch;
    batch.build_id = b->id;
    batch.step_id = s->def->key;
    batch.step_index = s->def->index;
    batch.depth = b->depth;
    batch.stream = f->stream;
    batch.severity = f->stream == KILN_STREAM_STDERR ? KILN_LOG_WARN : KILN_LOG_INFO;
    batch.first_seq = s->seq + 1;
    batch.n_lines = n_lines;
    batch.flags = (partial ? KILN_BATCH_PARTIAL : 0) | (f->continued ? KILN_BATCH_CONTINUED : 0);
    batch.time_us = kiln__now_us();
    batch.text = text;
    batch.len = len;
    s->seq += n_lines;
    f->continued = partial;
    kiln__sinks_write(b->eng, &batch);
    if (f->on_line) {
        size_t pos = 0;
        const char *line;
        size_t ll;
        while (kiln_batch_next(&batch, &pos, &line, &ll))
            f->on_line(f->line_data, f->stream, line, ll);
    }
    kiln__buf_release(&masked);
}

static void on_partial_close(uv_handle_t *h)
{
    free(h);
}

static void stop_partial_timer(kiln__framer *f)
{
    if (f->partial_timer)
        uv_timer_stop(f->partial_timer);
}

static void on_partial_timer(uv_timer_t *t)
{
    kiln__framer *f = t->data;
    kiln__engine *eng = f->step->b->eng;
    if (eng->paused_sinks > 0) {
        /* A sink is full: the partial line waits like everything else. */
        uv_timer_start(t, on_partial_timer, (uint64_t)eng->partial_flush_ms, 0);
        return;
    }
    if (f->len) {
        deliver(f, f->buf, f->len, 1, true);
        f->len = 0;
    }
}

static void arm_partial_timer(kiln__framer *f)
{
    kiln__engine *eng = f->step->b->eng;
    if (!f->partial_timer) {
        f->partial_timer = kiln__xmalloc(sizeof *f->partial_timer);
        uv_timer_init(eng->loop, f->partial_timer);
        f->partial_timer->data = f;
    }
    if (!uv_is_active((uv_handle_t *)f->partial_timer))
        uv_timer_start(f->partial_timer, on_partial_timer, (uint64_t)eng->partial_flush_ms, 0);
}

void kiln__framer_space(kiln__framer *f, char **base, size_t *len)
{
    if (!f->buf) {
        f->cap = FRAMER_CAP;
        f->buf = kiln__xmalloc(f->cap);
        f->len = 0;
    }
    if (f->len == f->cap) {
        /* One line fills the whole buffer: send it on as a piece. */
        stop_partial_timer(f);
        deliver(f, f->buf, f->len, 1, true);
        f->len = 0;
    }
    *base = f->buf + f->len;
    *len = f->cap - f->len;
}

void kiln__framer_commit(kiln__framer *f, size_t n)
{
    const char *fresh = f->buf + f->len;
    bool filled = f->len + n == f->cap;
    f->len += n;
    const char *last = memrchr(fresh, '\n', n);
    if (!last) {
        arm_partial_timer(f);
        return;
    }
    size_t upto = (size_t)(last - f->buf) + 1;
    stop_partial_timer(f);
    deliver(f, f->buf, upto, (uint32_t)count_lines(f->buf, upto), false);
    size_t rest = f->len - upto;
    if (rest)
        memmove(f->buf, f->buf + upto, rest);
    f->len = rest;
    if (rest)
        arm_partial_timer(f);
    if (filled && f->cap < FRAMER_CAP_CHATTY) {
        /* More was waiting than the buffer took: read bigger pieces. */
        f->cap = FRAMER_CAP_CHATTY;
        f->buf = kiln__xrealloc(f->buf, f->cap);
        f->chatty = true;
    }
}

void kiln__framer_feed(kiln__framer *f, const char *data, size_t len)
{
    while (len) {
        char *base;
        size_t room;
        kiln__framer_space(f, &base, &room);
        size_t n = len < room ? len : room;
        memcpy(base, data, n);
        kiln__framer_commit(f, n);
        data += n;
        len -= n;
    }
}

void kiln__framer_finish(kiln__framer *f)
{
    if (f->len) {
        stop_partial_timer(f);
        deliver(f, f->buf, f->len, 1, true);
        f->len = 0;
    }
    if (f->partial_timer) {
        uv_timer_stop(f->partial_timer);
        uv_close((uv_handle_t *)f->partial_timer, on_partial_close);
        f->partial_timer = NULL;
    }
    if (f->mask.held.len && f->step) {
        /* What the masker held back was no secret after all. */
        kiln__buf rest = KILN__BUF_INIT;
        kiln__mask_feed(f->step->b->eng->masker, &f->mask, "", 0, true, &rest);
        if (rest.len) {
            f->premasked = true;
            deliver(f, rest.buf, rest.len, 1, true);
            f->premasked = false;
        }
        kiln__buf_release(&rest);
    }
    kiln__mask_stream_release(&f->mask);
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
}

/* ---- sinks ----------------------------------------------------------- */

/* Pause every reader, or resume those the sinks paused. A resume may
 * deliver output inside the call (an executor handing over what it held
 * while paused): that output may fill a sink again, which pauses every
 * reader (the loop stops: none is resumed while a sink is over), or end
 * the process, which leaves the list (the loop looks again from the
 * start rather than skip the reader moved into its place). */
static void pause_readers(kiln__engine *eng, bool pause)
{
    if (pause) {
        for (size_t i = 0; i < eng->n_readers; i++)
            if (!eng->readers[i].paused) {
                eng->readers[i].paused = true;
                KILN__PROC_EXEC(eng->readers[i].p)->pause(eng->readers[i].p);
            }
        return;
    }
    for (size_t i = 0; i < eng->n_readers && eng->paused_sinks == 0;) {
        if (!eng->readers[i].paused) {
            i++;
            continue;
        }
        kiln_proc *p = eng->readers[i].p;
        eng->readers[i].paused = false;
        KILN__PROC_EXEC(p)->resume(p);
        i = i < eng->n_readers && eng->readers[i].p == p ? i + 1 : 0;
    }
}

void kiln__engine_add_reader(kiln__engine *eng, kiln_proc *p)
{
    if (eng->n_readers == eng->cap_readers) {
        eng->cap_readers = eng->cap_readers ? eng->cap_readers * 2 : 16;
        eng->readers = kiln__xrealloc(eng->readers, eng->cap_readers * sizeof *eng->readers);
    }
    /* Paused already when a sink is over: its spawner does not start it
     * reading (proc_local.c) or pauses it (exec_plugin.c). */
    eng->readers[eng->n_readers].p = p;
    eng->readers[eng->n_readers].paused = eng->paused_sinks > 0;
    eng->n_readers++;
}

void kiln__engine_remove_reader(kiln__engine *eng, kiln_proc *p)
{
    for (size_t i = 0; i < eng->n_readers; i++)
        if (eng->readers[i].p == p) {
            eng->readers[i] = eng->readers[--eng->n_readers];
            return;
        }
}

void kiln__sinks_write(kiln__engine *eng, const kiln_log_batch *b)
{
    if (eng->tap)
        eng->tap->write(eng->tap->data, b);
    for (size_t i = 0; i < eng->n_sinks; i++) {
        struct kiln_sink *s = eng->sinks[i];
        if (s->closed)
            continue;
        if (s->broken) {
            kiln__sink_lost(s, b->build_id, b->step_id, b->len, b->n_lines, s->broken);
            continue;
        }
        int rc = s->plugin->desc->sink->write(s, b);
        if (rc == KILN_EAGAIN && !s->paused) {
            s->paused = true;
            if (eng->paused_sinks++ == 0)
                pause_readers(eng, true);
        } else if (rc < 0 && rc != KILN_EAGAIN) {
            kiln__sink_lost(s, b->build_id, b->step_id, b->len, b->n_lines, kiln__strerror(rc));
        }
    }
}

void kiln__sinks_event(kiln__engine *eng, const kiln_event *ev)
{
    if (eng->tap)
        eng->tap->event(eng->tap->data, ev);
    for (size_t i = 0; i < eng->n_sinks; i++) {
        struct kiln_sink *s = eng->sinks[i];
        if (!s->closed && !s->broken && s->plugin->desc->sink->event)
            s->plugin->desc->sink->event(s, ev);
    }
}

/* kiln_api->sink_ready() */
void kiln__sink_ready(kiln_sink *s)
{
    if (!s->paused)
        return;
    s->paused = false;
    if (--s->eng->paused_sinks == 0)
        pause_readers(s->eng, false);
}

void kiln__sys_log(kiln__build *b, kiln__rstep *step, kiln_log_level lvl, const char *fmt, ...)
{
    kiln__buf m = KILN__BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(&m, fmt, ap);
    va_end(ap);
    if (!kiln__masker_empty(b->eng->masker)) {
        kiln__buf clean = KILN__BUF_INIT;
        kiln__mask(b->eng->masker, m.buf, m.len, &clean);
        kiln__buf_release(&m);
        m = clean;
    }
    kiln__buf_addch(&m, '\n');
    kiln_log_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.build_id = b->id;
    batch.step_id = step ? step->def->key : NULL;
    batch.step_index = step ? step->def->index : -1;
    batch.depth = b->depth;
    batch.stream = KILN_STREAM_SYSTEM;
    batch.severity = lvl;
    batch.first_seq = step ? ++step->seq : 0;
    batch.n_lines = 1;
    batch.time_us = kiln__now_us();
    batch.text = m.buf;
    batch.len = m.len;
    kiln__sinks_write(b->eng, &batch);
    kiln__buf_release(&m);
}

int kiln__sink_add(kiln__engine *eng, const char *name, const kiln__ynode *with, const char *origin,
                   bool required, kiln__buf *err)
{
    kiln__plugin *pl;
    int rc = kiln__registry_get(&eng->reg, KILN_PLUGIN_LOG_SINK, name, &pl, err);
    if (rc)
        return rc;
    kiln__diag d;
    kiln__diag_init(&d);
    kiln__config *cfg = NULL;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "sink '%s': ", name);
    rc = kiln__config_fill(pl->desc, with, &d, origin, NULL, prefix, NULL, NULL, pl->plugin_data, &cfg);
    if (rc) {
        kiln__buf_add(err, d.text.buf, d.text.len ? d.text.len - 1 : 0);
        kiln__diag_release(&d);
        return rc;
    }
    kiln__diag_release(&d);
    struct kiln_sink *s = kiln__xcalloc(1, sizeof *s);
    s->obj.type = KILN__OBJ_SINK;
    s->eng = eng;
    s->plugin = pl;
    s->cfg = cfg;
    s->required = required;
    s->index = (int)eng->n_sinks;
    rc = pl->desc->sink->open(s, cfg->data, pl->plugin_data);
    if (rc && required) {
        kiln__buf_addf(err, "cannot open required log sink '%s': %s", name, kiln__strerror(rc));
        kiln__config_free(cfg);
        free(s);
        return rc;
    }
    if (rc) {
        /* Logs are not the build: it runs, and the loss is counted. */
        s->broken = kiln__xasprintf("cannot open the sink: %s", kiln__strerror(rc));
        s->warned = true;
        fprintf(stderr, "kiln: warning: cannot open log sink '%s': %s; what it would receive is counted as lost\n",
                name, kiln__strerror(rc));
    }
    eng->sinks = kiln__xrealloc(eng->sinks, (eng->n_sinks + 1) * sizeof *eng->sinks);
    eng->sinks[eng->n_sinks++] = s;
    return 0;
}

/* kiln_api->sink_closed() */
void kiln__sink_closed(kiln_sink *s)
{
    s->closed = true;
}

void kiln__sinks_close(kiln__engine *eng)
{
    for (size_t i = 0; i < eng->n_sinks; i++) {
        struct kiln_sink *s = eng->sinks[i];
        if (s->broken)
            s->closed = true; /* never opened: nothing to close */
        else
            s->plugin->desc->sink->close(s);
    }
    /* Sinks that finish asynchronously do so on the loop. */
    bool all;
    do {
        all = true;
        for (size_t i = 0; i < eng->n_sinks; i++)
            all = all && eng->sinks[i]->closed;
        if (!all && !uv_run(eng->loop, UV_RUN_ONCE))
            break; /* nothing left that could complete them */
    } while (!all);
    for (size_t i = 0; i < eng->n_sinks; i++) {
        kiln__config_free(eng->sinks[i]->cfg);
        free(eng->sinks[i]->broken);
        free(eng->sinks[i]);
    }
    free(eng->sinks);
    eng->sinks = NULL;
    eng->n_sinks = 0;
}
