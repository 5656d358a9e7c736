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
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct jsonl_config {
    const char *path;
};

static const kiln_option jsonl_options[] = {
    {KILN_OPT_STRING, "path", NULL, KILN_OPT_REQUIRED, offsetof(struct jsonl_config, path), 0, -1,
     NULL, "File to write (created or truncated); '-' is standard output."},
    KILN_OPTIONS_END,
};

struct jsonl {
    FILE *f;
    bool own;
};

static void put_string(FILE *f, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

static void put_time(FILE *f, int64_t us)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "{\"time\":\"%s.%06dZ\"", base, (int)(us % 1000000));
}

static const char *stream_name(kiln_stream s)
{
    return s == KILN_STREAM_STDOUT ? "stdout" : s == KILN_STREAM_STDERR ? "stderr" : "system";
}

static const char *severity_name(kiln_log_level l)
{
    switch (l) {
    case KILN_LOG_ERROR:
        return "ERROR";
    case KILN_LOG_WARN:
        return "WARNING";
    case KILN_LOG_DEBUG:
    case KILN_LOG_TRACE:
        return "DEBUG";
    default:
        return "INFO";
    }
}

static void put_ids(FILE *f, const char *build_id, const char *step_id, int step_index, int depth)
{
    fputs(",\"build_id\":", f);
    put_string(f, build_id, strlen(build_id));
    if (step_id) {
        fputs(",\"step_id\":", f);
        put_string(f, step_id, strlen(step_id));
        fprintf(f, ",\"step_index\":%d", step_index);
    }
    fprintf(f, ",\"depth\":%d", depth);
}

static int jsonl_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct jsonl *j = kiln_api->sink_get_data(sink);
    size_t pos = 0;
    const char *line;
    size_t len;
    uint64_t seq = b->first_seq;
    while (kiln_batch_next(b, &pos, &line, &len)) {
        put_time(j->f, b->time_us);
        put_ids(j->f, b->build_id, b->step_id, b->step_index, b->depth);
        fprintf(j->f, ",\"stream\":\"%s\",\"severity\":\"%s\",\"seq\":%llu,\"text\":",
                stream_name(b->stream), severity_name(b->severity), (unsigned long long)seq++);
        put_string(j->f, line, len);
        if (pos >= b->len && (b->flags & KILN_BATCH_PARTIAL))
            fputs(",\"partial\":true", j->f);
        fputs("}\n", j->f);
    }
    return 0;
}

static void jsonl_event(kiln_sink *sink, const kiln_event *ev)
{
    static const char *const names[] = {"", "build_start", "step_start", "step_end", "build_end",
                                        "step_progress"};
    struct jsonl *j = kiln_api->sink_get_data(sink);
    if ((unsigned)ev->type >= sizeof names / sizeof names[0])
        return;
    put_time(j->f, ev->time_us);
    fprintf(j->f, ",\"event\":\"%s\"", names[ev->type]);
    put_ids(j->f, ev->build_id, ev->step_id, ev->step_index, ev->depth);
    if (ev->plugin) {
        fputs(",\"plugin\":", j->f);
        put_string(j->f, ev->plugin, strlen(ev->plugin));
    }
    if (ev->type == KILN_EVENT_STEP_END || ev->type == KILN_EVENT_BUILD_END) {
        fprintf(j->f, ",\"status\":\"%s\",\"duration_s\":%.6f", kiln_status_name(ev->status),
                (double)ev->duration_us / 1e6);
        if (ev->exit_code >= 0)
            fprintf(j->f, ",\"exit_code\":%d", ev->exit_code);
        if (ev->message) {
            fputs(",\"message\":", j->f);
            put_string(j->f, ev->message, strlen(ev->message));
        }
    }
    if (ev->type == KILN_EVENT_STEP_PROGRESS) {
        fprintf(j->f, ",\"done\":%lld,\"total\":%lld", (long long)ev->progress_done,
                (long long)ev->progress_total);
        if (ev->progress_what) {
            fputs(",\"what\":", j->f);
            put_string(j->f, ev->progress_what, strlen(ev->progress_what));
        }
    }
    fputs("}\n", j->f);
    if (ev->type == KILN_EVENT_BUILD_END || ev->type == KILN_EVENT_STEP_END)
        fflush(j->f);
}

static int jsonl_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct jsonl_config *c = config;
    struct jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return KILN_ENOMEM;
    if (strcmp(c->path, "-") == 0) {
        j->f = stdout;
    } else {
        j->f = fopen(c->path, "w");
        j->own = true;
    }
    if (!j->f) {
        free(j);
        return KILN_EIO;
    }
    kiln_api->sink_set_data(sink, j);
    return 0;
}

static void jsonl_close(kiln_sink *sink)
{
    struct jsonl *j = kiln_api->sink_get_data(sink);
    if (j->own)
        fclose(j->f);
    else
        fflush(j->f);
    free(j);
    kiln_api->sink_closed(sink);
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
