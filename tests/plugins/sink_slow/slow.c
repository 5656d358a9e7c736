/* SPDX-License-Identifier: MIT */
/*
 * Test-only sink "slow": a sink slower than the step that feeds it. Every
 * write is accepted with KILN_EAGAIN (above the high-water mark); a worker
 * thread then sleeps `delay_us` before the sink says it is ready again. It
 * checks that stdout lines arrive complete and in order ("1", "2", ...) and,
 * at close, writes "<lines> <in_order> <max_pending>" to `report`.
 * max_pending counts writes that arrived while the sink was still paused:
 * it must stay 0 if kiln honours backpressure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct slow_config {
    const char *report;
    int64_t delay_us;
};

static const kiln_option slow_options[] = {
    {KILN_OPT_STRING, "report", NULL, KILN_OPT_REQUIRED, offsetof(struct slow_config, report), 0, -1,
     NULL, "File to write the counts to at close."},
    {KILN_OPT_INT, "delay_us", "200", 0, offsetof(struct slow_config, delay_us), 0, 1000000, NULL,
     "How long the sink is busy after each write."},
    KILN_OPTIONS_END,
};

struct slow {
    kiln_sink *sink;
    struct slow_config cfg;
    unsigned long long lines, expect;
    bool in_order, paused;
    unsigned long long writes_while_paused;
};

static void busy(void *data)
{
    struct slow *s = data;
    usleep((useconds_t)s->cfg.delay_us);
}

static void ready(void *data, int err)
{
    struct slow *s = data;
    s->paused = false;
    kiln_api->sink_ready(s->sink);
}

static int slow_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct slow *s = kiln_api->sink_get_data(sink);
    if (b->stream != KILN_STREAM_STDOUT)
        return 0;
    if (s->paused)
        s->writes_while_paused++;
    size_t pos = 0;
    const char *line;
    size_t len;
    while (kiln_batch_next(b, &pos, &line, &len)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", s->expect + 1);
        if (len != strlen(buf) || memcmp(line, buf, len) != 0)
            s->in_order = false;
        s->expect++;
        s->lines++;
    }
    if (s->paused)
        return 0;
    s->paused = true;
    if (kiln_api->queue_work(KILN_OBJ(sink), busy, ready, s) != 0) {
        s->paused = false;
        return 0;
    }
    return KILN_EAGAIN;
}

static int slow_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    struct slow *s = calloc(1, sizeof *s);
    if (!s)
        return KILN_ENOMEM;
    s->sink = sink;
    s->cfg = *(const struct slow_config *)config;
    s->cfg.report = strdup(s->cfg.report);
    s->in_order = true;
    kiln_api->sink_set_data(sink, s);
    return 0;
}

static void slow_close(kiln_sink *sink)
{
    struct slow *s = kiln_api->sink_get_data(sink);
    FILE *f = fopen(s->cfg.report, "w");
    if (f) {
        fprintf(f, "%llu %d %llu\n", s->lines, s->in_order ? 1 : 0, s->writes_while_paused);
        fclose(f);
    }
    free((char *)s->cfg.report);
    free(s);
    kiln_api->sink_closed(sink);
}

static int slow_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops slow_ops = {sizeof(kiln_sink_ops), slow_open, slow_write, NULL, slow_close};

static const kiln_plugin slow_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "slow",
    .version = "1.0.0",
    .summary = "Test sink that is always busy (backpressure)",
    .options = slow_options,
    .config_size = sizeof(struct slow_config),
    .init = slow_init,
    .sink = &slow_ops,
};

KILN_PLUGIN_DEFINE(slow_plugin)
