/* SPDX-License-Identifier: MIT */
/*
 * otlp: every log record to an OpenTelemetry receiver over OTLP/HTTP in the
 * protobuf JSON mapping (POST /v1/logs), through the host's shipping core
 * (batches, retries, backpressure; kiln/host.h, ABI 1.7). This file is only
 * the encoder.
 *
 * One request holds one resourceLogs per build (consecutive records of the
 * same build id): resource attributes service.name=kiln and
 * cicd.pipeline.run.id=BUILD_ID (OpenTelemetry's CI/CD semantic
 * conventions), one scopeLogs (scope "kiln"), and per record:
 * timeUnixNano and observedTimeUnixNano (when kiln read the line),
 * severityNumber/severityText, body.stringValue, and the attributes
 * cicd.pipeline.task.name (the step id; absent for the build's own
 * messages), log.iostream (stdout/stderr; "system" for kiln's messages),
 * kiln.seq (the line's number in its step) and kiln.record.id (the batch id
 * and the record's index: the same on every retry, so a receiver or query
 * can drop duplicates), kiln.partial when the line had no newline.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "../common/ship_json.h"

KILN_API_DEFINE;

struct otlp_config {
    kiln_ship_conf ship;
    const char *headers;
    bool gzip;
    const char *ca_file;
    bool insecure;
};

static const kiln_option otlp_options[] = {
    KILN_SHIP_OPTIONS(struct otlp_config, ship, "http://127.0.0.1:4318/v1/logs", 2000, 1000000,
                      4194304, 67108864),
    {KILN_OPT_STRING, "headers", NULL, KILN_OPT_SECRET, offsetof(struct otlp_config, headers), 0, -1,
     NULL, "Extra request headers, 'Name=value;Name2=value2' (e.g. Authorization=Bearer T)."},
    {KILN_OPT_BOOL, "gzip", "false", 0, offsetof(struct otlp_config, gzip), 0, -1, NULL,
     "Compress request bodies (Content-Encoding: gzip)."},
    {KILN_OPT_STRING, "ca_file", NULL, 0, offsetof(struct otlp_config, ca_file), 0, -1, NULL,
     "PEM file of the CAs that verify an https receiver."},
    {KILN_OPT_BOOL, "insecure", "false", 0, offsetof(struct otlp_config, insecure), 0, -1, NULL,
     "Do not verify an https receiver's certificate."},
    KILN_OPTIONS_END,
};

struct otlp {
    kiln_ship *ship;
};

static const char *iostream(kiln_stream s)
{
    return s == KILN_STREAM_STDOUT ? "stdout" : s == KILN_STREAM_STDERR ? "stderr" : "system";
}

/* OpenTelemetry's SeverityNumber and its short name. */
static void severity(kiln_log_level l, int *num, const char **text)
{
    switch (l) {
    case KILN_LOG_ERROR:
        *num = 17, *text = "ERROR";
        break;
    case KILN_LOG_WARN:
        *num = 13, *text = "WARN";
        break;
    case KILN_LOG_DEBUG:
        *num = 5, *text = "DEBUG";
        break;
    case KILN_LOG_TRACE:
        *num = 1, *text = "TRACE";
        break;
    default:
        *num = 9, *text = "INFO";
    }
}

static void attr_str(sj_buf *b, const char *key, const char *v, size_t n, bool first)
{
    if (!first)
        sj_adds(b, ",");
    sj_adds(b, "{\"key\":\"");
    sj_adds(b, key);
    sj_adds(b, "\",\"value\":{\"stringValue\":");
    sj_string(b, v, n);
    sj_adds(b, "}}");
}

static void resource_open(sj_buf *b, const char *build_id, bool first)
{
    if (!first)
        sj_adds(b, "]}]},");
    sj_adds(b, "{\"resource\":{\"attributes\":[");
    attr_str(b, "service.name", "kiln", 4, true);
    attr_str(b, "cicd.pipeline.run.id", build_id, strlen(build_id), false);
    sj_adds(b, "]},\"scopeLogs\":[{\"scope\":{\"name\":\"kiln\",\"version\":\"" KILN_VERSION_STRING
               "\"},\"logRecords\":[");
}

static int otlp_encode(void *data, const kiln_ship_batch *kb, char **body, size_t *len)
{
    sj_buf b = {0};
    size_t idlen = strlen(kb->id);
    /* About 400 bytes of JSON a record besides its text: one allocation
     * for most batches instead of a dozen reallocs (bench/ship.sh). */
    sj_reserve(&b, kb->bytes + kb->n * 448 + 1024);
    sj_adds(&b, "{\"resourceLogs\":[");
    const char *build = NULL;
    for (size_t i = 0; i < kb->n; i++) {
        const kiln_ship_rec *r = &kb->recs[i];
        bool new_build = !build || strcmp(build, r->build_id) != 0;
        if (new_build) {
            resource_open(&b, r->build_id, !build);
            build = r->build_id;
        } else {
            sj_adds(&b, ",");
        }
        int sevnum;
        const char *sevtext;
        severity(r->severity, &sevnum, &sevtext);
        uint64_t ns = (uint64_t)r->time_us * 1000u;
        sj_adds(&b, "{\"timeUnixNano\":\"");
        sj_u64(&b, ns);
        sj_adds(&b, "\",\"observedTimeUnixNano\":\"");
        sj_u64(&b, ns);
        sj_adds(&b, "\",\"severityNumber\":");
        sj_u64(&b, (uint64_t)sevnum);
        sj_adds(&b, ",\"severityText\":\"");
        sj_adds(&b, sevtext);
        sj_adds(&b, "\",\"body\":{\"stringValue\":");
        sj_string(&b, r->text, r->len);
        sj_adds(&b, "},\"attributes\":[");
        bool first = true;
        if (r->step_id) {
            attr_str(&b, "cicd.pipeline.task.name", r->step_id, strlen(r->step_id), true);
            first = false;
        }
        attr_str(&b, "log.iostream", iostream(r->stream), strlen(iostream(r->stream)), first);
        sj_adds(&b, ",{\"key\":\"kiln.seq\",\"value\":{\"intValue\":\"");
        sj_u64(&b, r->seq);
        sj_adds(&b, "\"}}");
        /* kiln.record.id: BATCH-INDEX (the id is plain ASCII: no escaping). */
        sj_adds(&b, ",{\"key\":\"kiln.record.id\",\"value\":{\"stringValue\":\"");
        sj_add(&b, kb->id, idlen);
        sj_add(&b, "-", 1);
        sj_u64(&b, i);
        sj_adds(&b, "\"}}");
        if (r->partial)
            sj_adds(&b, ",{\"key\":\"kiln.partial\",\"value\":{\"boolValue\":true}}");
        sj_adds(&b, "]}");
    }
    if (build)
        sj_adds(&b, "]}]}");
    sj_adds(&b, "]}");
    *body = b.data;
    *len = b.len;
    return 0;
}

static void otlp_closed(void *data)
{
    free(data);
}

/* "A=b;C=d" (or "A: b") into "A: b" header lines. */
static int add_headers(kiln_ship *ship, const char *spec)
{
    if (!spec)
        return 0;
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
        return KILN_ENOMEM;
    int rc = 0;
    for (char *tok = strtok_r(copy, ";", &save); tok && !rc; tok = strtok_r(NULL, ";", &save)) {
        tok += strspn(tok, " \t");
        size_t k = strcspn(tok, "=:");
        if (!tok[k] || k == 0) {
            rc = KILN_EINVAL;
            break;
        }
        char line[4096];
        snprintf(line, sizeof line, "%.*s: %s", (int)k, tok, tok + k + 1 + strspn(tok + k + 1, " "));
        rc = kiln_api->ship_set_header(ship, line);
    }
    free(copy);
    return rc;
}

static int otlp_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const struct otlp_config *c = config;
    const char *h = c->headers;
    while (h && *h) {
        size_t n = strcspn(h, ";");
        size_t k = strcspn(h, "=:");
        if (k >= n || k == 0) {
            kiln_api->diag(diag, "headers", "expected 'Name=value' items separated by ';'");
            return KILN_ECONFIG;
        }
        h += n + (h[n] ? 1 : 0);
    }
    return 0;
}

static int otlp_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct otlp_config *c = config;
    if (!KILN_API_HAS(kiln_api, ship_close)) {
        kiln_error(sink, "otlp: this kiln has no shipping core (needs ABI 1.7)");
        return KILN_EABI;
    }
    struct otlp *o = calloc(1, sizeof *o);
    if (!o)
        return KILN_ENOMEM;
    kiln_ship_opts so = {
        .struct_size = sizeof so,
        .url = c->ship.endpoint,
        .gzip = c->gzip,
        .batch_records = c->ship.batch_records,
        .batch_bytes = c->ship.batch_bytes,
        .batch_delay_ms = c->ship.batch_delay_ms,
        .memory = c->ship.memory,
        .timeout_ms = c->ship.timeout_ms,
        .ca_file = c->ca_file,
        .insecure = c->insecure,
        .encode = otlp_encode,
        .data = o,
        .on_closed = otlp_closed,
    };
    int rc = kiln_api->ship_open(sink, &so, &o->ship);
    if (rc) {
        free(o);
        return rc;
    }
    rc = add_headers(o->ship, c->headers);
    kiln_api->sink_set_data(sink, o);
    if (rc) {
        kiln_api->ship_close(o->ship);
        return rc;
    }
    return 0;
}

static int otlp_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct otlp *o = kiln_api->sink_get_data(sink);
    return kiln_api->ship_write(o->ship, b);
}

static void otlp_close(kiln_sink *sink)
{
    struct otlp *o = kiln_api->sink_get_data(sink);
    kiln_api->ship_close(o->ship);
}

static int otlp_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops otlp_ops = {sizeof(kiln_sink_ops), otlp_open, otlp_write, NULL,
                                       otlp_close};

static const kiln_plugin otlp_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "otlp",
    .version = KILN_VERSION_STRING,
    .summary = "Log records to an OpenTelemetry receiver (OTLP/HTTP JSON): Loki 3, the Collector, ...",
    .options = otlp_options,
    .config_size = sizeof(struct otlp_config),
    .init = otlp_init,
    .validate = otlp_validate,
    .sink = &otlp_ops,
};

KILN_PLUGIN_DEFINE(otlp_plugin)
