/* SPDX-License-Identifier: MIT */
/*
 * jsonl: every record and event as one JSON object per line, for tools that
 * read logs as data. A line record:
 *   {"time":"2026-11-27T18:45:53.553007Z","build_id":"...","step_id":"train",
 *    "step_index":1,"depth":0,"stream":"stdout","severity":"INFO","seq":42,
 *    "text":"Completed 3 out of 4 tasks"}
 * ("partial":true when the line was flushed before its newline); an event:
 *   {"time":...,"event":"step_end","build_id":...,"step_id":...,
 *    "status":"SUCCESS","exit_code":0,"duration_s":1.25}
 * Progress events carry "done", "total" and "what".
 *
 * Every line is valid JSON in UTF-8 whatever bytes a step prints: strings go
 * through kp_json_escape() (plugins/common/json_string.h), so ill-formed
 * UTF-8 reads as U+FFFD and control characters are escaped.
 *
 * Speed: a batch's fields but seq and text are formatted once per batch, the
 * text is escaped by copying the runs that need no escape, and lines are
 * appended to one buffer that a worker thread writes in large chunks while
 * the loop fills the next (as the file sink does). Above the high-water mark
 * write() says KILN_EAGAIN and kiln stops reading step output until the disk
 * has caught up; sink_ready() resumes it.
 *
 * A failed write (a full disk) ends the file there: it stays whole records
 * of a prefix, nothing more is written, and the records not on disk are
 * reported with sink_lost() per step. Loss is counted per batch: a batch
 * partly written counts whole, so the figures are at least what is missing.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "../common/json_string.h"
#include "../common/log_severity.h"
#include "../common/sink_writer.h"

KILN_API_DEFINE;

/* Bytes waiting above which write() says KILN_EAGAIN. Small on purpose:
 * with 8 MiB (the file sink's mark) the same 530 MB of JSON cost 2-3x the
 * system time on ext4 here than with 1-2 MiB (bench/sinks.sh), presumably
 * because a small chunk is still in the CPU's cache when the worker copies
 * it into the page cache. */
#define HIGH_WATER (1u << 20)

struct jsonl_config {
    const char *path;
};

static const kiln_option jsonl_options[] = {
    {KILN_OPT_STRING, "path", NULL, KILN_OPT_REQUIRED, offsetof(struct jsonl_config, path), 0, -1,
     NULL, "File to write (created or truncated); '-' is standard output."},
    KILN_OPTIONS_END,
};

typedef kiln_sw_buf buf_t;

struct jsonl {
    kiln_sink *sink;
    char *path;
    bool own;
    kiln_sw w;       /* the file's writer (sink_writer.h) */
    buf_t prefix;    /* the current batch's line start, up to "seq": */
    int64_t time_sec; /* the second base_time holds */
    char base_time[32];
};

static inline char *reserve(buf_t *b, size_t extra)
{
    return kiln_sw_buf_reserve(b, extra);
}

static void add(buf_t *b, const char *s, size_t n)
{
    memcpy(reserve(b, n), s, n);
    b->len += n;
}

static void adds(buf_t *b, const char *s)
{
    add(b, s, strlen(s));
}

static void add_string(buf_t *b, const char *s, size_t n)
{
    char *d = reserve(b, KP_JSON_ESCAPE_MAX(n) + 2);
    d[0] = '"';
    size_t w = kp_json_escape(d + 1, s, n);
    d[1 + w] = '"';
    b->len += w + 2;
}

static void add_strz(buf_t *b, const char *s)
{
    add_string(b, s, strlen(s));
}

static void addf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *d = reserve(b, 128);
    int n = vsnprintf(d, 128, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)(n < 128 ? n : 127);
}

/* Decimal digits of V at D; returns how many. */
static size_t put_u64(char *d, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        d[i] = tmp[n - 1 - i];
    return n;
}

static void add_time(struct jsonl *j, buf_t *b, int64_t us)
{
    int64_t sec = us / 1000000;
    if (sec != j->time_sec || !j->base_time[0]) {
        time_t s = (time_t)sec;
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(j->base_time, sizeof j->base_time, "%Y-%m-%dT%H:%M:%S", &tm);
        j->time_sec = sec;
    }
    adds(b, "{\"time\":\"");
    adds(b, j->base_time);
    char *d = reserve(b, 9);
    unsigned frac = (unsigned)(us % 1000000);
    d[0] = '.';
    for (int i = 6; i >= 1; i--, frac /= 10)
        d[i] = (char)('0' + frac % 10);
    d[7] = 'Z';
    d[8] = '"';
    b->len += 9;
}

static const char *stream_name(kiln_stream s)
{
    return s == KILN_STREAM_STDOUT ? "stdout" : s == KILN_STREAM_STDERR ? "stderr" : "system";
}

static void add_ids(buf_t *b, const char *build_id, const char *step_id, int step_index,
                    int depth)
{
    adds(b, ",\"build_id\":");
    add_strz(b, build_id);
    if (step_id) {
        adds(b, ",\"step_id\":");
        add_strz(b, step_id);
        addf(b, ",\"step_index\":%d", step_index);
    }
    addf(b, ",\"depth\":%d", depth);
}

static void finish_close(void *data)
{
    struct jsonl *j = data;
    if (j->own && close(j->w.fd) != 0 && !j->w.write_error)
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", j->path, strerror(errno));
    kiln_sw_release(&j->w);
    kiln_sw_buf_release(&j->prefix);
    free(j->path);
    kiln_sink *sink = j->sink;
    free(j);
    kiln_api->sink_closed(sink);
}

/* The file ends at the first failed write: what follows is reported lost. */
static void on_write_error(void *data, int err)
{
    struct jsonl *j = data;
    fprintf(stderr, "kiln: error: cannot write '%s': %s\n", j->path, strerror(err));
}

static int jsonl_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct jsonl *j = kiln_api->sink_get_data(sink);
    if (kiln_sw_lost(&j->w, b))
        return 0;
    buf_t *pre = &j->prefix;
    pre->len = 0;
    add_time(j, pre, b->time_us);
    add_ids(pre, b->build_id, b->step_id, b->step_index, b->depth);
    adds(pre, ",\"stream\":\"");
    adds(pre, stream_name(b->stream));
    adds(pre, "\",\"severity\":\"");
    adds(pre, kp_severity_name(b->severity));
    adds(pre, "\",\"seq\":");

    static const char text_key[] = ",\"text\":\"";
    static const char partial_end[] = "\",\"partial\":true}\n";
    buf_t *out = &j->w.active;
    size_t pos = 0;
    const char *line;
    size_t len;
    uint64_t seq = b->first_seq;
    while (kiln_batch_next(b, &pos, &line, &len)) {
        char *d = reserve(out, pre->len + 20 + sizeof text_key + KP_JSON_ESCAPE_MAX(len) +
                                   sizeof partial_end);
        char *start = d;
        memcpy(d, pre->data, pre->len);
        d += pre->len;
        d += put_u64(d, seq++);
        memcpy(d, text_key, sizeof text_key - 1);
        d += sizeof text_key - 1;
        d += kp_json_escape(d, line, len);
        if (pos >= b->len && (b->flags & KILN_BATCH_PARTIAL)) {
            memcpy(d, partial_end, sizeof partial_end - 1);
            d += sizeof partial_end - 1;
        } else {
            memcpy(d, "\"}\n", 3);
            d += 3;
        }
        out->len += (size_t)(d - start);
    }
    kiln_sw_note(&j->w, b);
    return kiln_sw_submit(&j->w);
}

static void jsonl_event(kiln_sink *sink, const kiln_event *ev)
{
    static const char *const names[] = {"",         "build_start", "step_start",
                                        "step_end", "build_end",   "step_progress"};
    struct jsonl *j = kiln_api->sink_get_data(sink);
    buf_t *b = &j->w.active;
    if ((unsigned)ev->type >= sizeof names / sizeof names[0] || j->w.write_error)
        return;
    add_time(j, b, ev->time_us);
    addf(b, ",\"event\":\"%s\"", names[ev->type]);
    add_ids(b, ev->build_id, ev->step_id, ev->step_index, ev->depth);
    if (ev->plugin) {
        adds(b, ",\"plugin\":");
        add_strz(b, ev->plugin);
    }
    if (ev->type == KILN_EVENT_STEP_END || ev->type == KILN_EVENT_BUILD_END) {
        addf(b, ",\"status\":\"%s\",\"duration_s\":%.6f", kiln_status_name(ev->status),
             (double)ev->duration_us / 1e6);
        if (ev->exit_code >= 0)
            addf(b, ",\"exit_code\":%d", ev->exit_code);
        if (ev->message) {
            adds(b, ",\"message\":");
            add_strz(b, ev->message);
        }
    }
    if (ev->type == KILN_EVENT_STEP_PROGRESS) {
        addf(b, ",\"done\":%lld,\"total\":%lld", (long long)ev->progress_done,
             (long long)ev->progress_total);
        if (ev->progress_what) {
            adds(b, ",\"what\":");
            add_strz(b, ev->progress_what);
        }
    }
    adds(b, "}\n");
    /* Readers following the file see a step's end when it ends. */
    if (ev->type == KILN_EVENT_BUILD_END || ev->type == KILN_EVENT_STEP_END)
        kiln_sw_submit(&j->w);
}

static int jsonl_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct jsonl_config *c = config;
    struct jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return KILN_ENOMEM;
    j->sink = sink;
    j->path = strdup(c->path);
    int fd;
    if (strcmp(c->path, "-") == 0) {
        fd = STDOUT_FILENO;
    } else {
        fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        j->own = true;
    }
    if (fd < 0 || !j->path) {
        int e = errno;
        fprintf(stderr, "kiln: error: cannot open '%s': %s\n", c->path, strerror(e));
        if (fd >= 0 && j->own)
            close(fd);
        free(j->path);
        free(j);
        return KILN_EIO;
    }
    kiln_sw_init(&j->w, sink, fd, HIGH_WATER);
    j->w.on_error = on_write_error;
    j->w.on_closed = finish_close;
    j->w.data = j;
    kiln_api->sink_set_data(sink, j);
    return 0;
}

static void jsonl_close(kiln_sink *sink)
{
    struct jsonl *j = kiln_api->sink_get_data(sink);
    kiln_sw_close(&j->w);
}

static int jsonl_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops jsonl_ops = {sizeof(kiln_sink_ops), jsonl_open, jsonl_write, jsonl_event,
                                        jsonl_close};

static const kiln_plugin jsonl_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "jsonl",
    .version = KILN_VERSION_STRING,
    .summary = "Every log record and event as one JSON object per line",
    .options = jsonl_options,
    .config_size = sizeof(struct jsonl_config),
    .init = jsonl_init,
    .sink = &jsonl_ops,
};

KILN_PLUGIN_DEFINE(jsonl_plugin)
