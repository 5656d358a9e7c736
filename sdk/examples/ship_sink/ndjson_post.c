/* SPDX-License-Identifier: MIT */
/*
 * ndjson-post: a third-party log sink on kiln's shipping core (ABI 1.7).
 * Every batch of log lines is POSTed to `endpoint` as newline-delimited
 * JSON, one object per line:
 *   {"id":"BATCH-INDEX","build":"...","step":"...","stream":"stdout","seq":1,"text":"..."}
 * The host batches, retries (connection errors, 408, 429, 5xx), pauses the
 * steps when `memory` is full, spools under --log-dir when the receiver is
 * down, and reports what it could not deliver. This file is only the
 * encoder: the shape of a team's own receiver (Datadog, Splunk, an internal
 * service) goes here. "id" is the same on every retry of a batch, so the
 * receiver can drop a batch it already has.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct cfg {
    kiln_ship_conf ship;
};

static const kiln_option options[] = {
    KILN_SHIP_OPTIONS(struct cfg, ship, NULL, 500, 10000, 1048576, 8388608),
    KILN_OPTIONS_END,
};

struct out {
    char *p;
    size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->cap - o->n < n + 1) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap - o->n < n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p)
            abort();
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

/* A JSON string; bytes >= 0x80 are passed through (a real sink would check
 * UTF-8, as kiln's own sinks do). */
static void put_str(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, (const char *)&s[i], 1);
        }
    }
    put(o, "\"", 1);
}

static int encode(void *data, const kiln_ship_batch *b, char **body, size_t *len)
{
    (void)data;
    struct out o = {0};
    for (size_t i = 0; i < b->n; i++) {
        const kiln_ship_rec *r = &b->recs[i];
        char buf[160];
        snprintf(buf, sizeof buf, "%s-%zu", b->id, i);
        put(&o, "{\"id\":", 6);
        put_str(&o, buf, strlen(buf));
        put(&o, ",\"build\":", 9);
        put_str(&o, r->build_id, strlen(r->build_id));
        if (r->step_id) {
            put(&o, ",\"step\":", 8);
            put_str(&o, r->step_id, strlen(r->step_id));
        }
        snprintf(buf, sizeof buf, ",\"stream\":\"%s\",\"seq\":%llu,\"text\":",
                 r->stream == KILN_STREAM_STDERR ? "stderr" : r->stream == KILN_STREAM_STDOUT ? "stdout" : "system",
                 (unsigned long long)r->seq);
        put(&o, buf, strlen(buf));
        put_str(&o, r->text, r->len);
        put(&o, "}\n", 2);
    }
    *body = o.p;
    *len = o.n;
    return 0;
}

static int sink_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct cfg *c = config;
    (void)plugin_data;
    if (!KILN_API_HAS(kiln_api, ship_close)) {
        kiln_error(sink, "ndjson-post needs kiln's shipping core (plugin ABI 1.7)");
        return KILN_EABI;
    }
    kiln_ship_opts o = {
        .struct_size = sizeof o,
        .url = c->ship.endpoint,
        .content_type = "application/x-ndjson",
        .batch_records = c->ship.batch_records,
        .batch_bytes = c->ship.batch_bytes,
        .batch_delay_ms = c->ship.batch_delay_ms,
        .memory = c->ship.memory,
        .timeout_ms = c->ship.timeout_ms,
        .encode = encode,
    };
    kiln_ship *ship = NULL;
    int rc = kiln_api->ship_open(sink, &o, &ship);
    if (!rc)
        kiln_api->sink_set_data(sink, ship);
    return rc;
}

static int sink_write(kiln_sink *sink, const kiln_log_batch *b)
{
    return kiln_api->ship_write(kiln_api->sink_get_data(sink), b);
}

static void sink_close(kiln_sink *sink)
{
    kiln_api->ship_close(kiln_api->sink_get_data(sink)); /* calls sink_closed() */
}

static int init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    (void)self;
    (void)plugin_data;
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops ops = {sizeof(kiln_sink_ops), sink_open, sink_write, NULL, sink_close};

static const kiln_plugin plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "ndjson-post",
    .version = "1.0.0",
    .summary = "Log lines POSTed as newline-delimited JSON (the SDK's shipping-core example)",
    .options = options,
    .config_size = sizeof(struct cfg),
    .init = init,
    .sink = &ops,
};

KILN_PLUGIN_DEFINE(plugin)
