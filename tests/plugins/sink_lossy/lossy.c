/* SPDX-License-Identifier: MIT */
/*
 * Test-only sink "lossy": loses step output on purpose, in each of the ways
 * the host must account for (ABI 1.5).
 *  - lose_step: every stdout batch of that step is accepted and then
 *    reported lost with kiln_api->sink_lost(), later, from a queue_work()
 *    callback (as a sink writing on a thread would), reason "dropped on
 *    purpose";
 *  - fail_step: every stdout batch of that step is refused: write() returns
 *    KILN_EIO, which the host counts itself;
 *  - fail_open: open() fails with KILN_EACCES.
 * Everything else is accepted and kept (nowhere).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct lossy_config {
    const char *lose_step;
    const char *fail_step;
    bool fail_open;
};

static const kiln_option lossy_options[] = {
    {KILN_OPT_STRING, "lose_step", NULL, 0, offsetof(struct lossy_config, lose_step), 0, -1, NULL,
     "Step whose stdout is accepted, then reported lost (sink_lost)."},
    {KILN_OPT_STRING, "fail_step", NULL, 0, offsetof(struct lossy_config, fail_step), 0, -1, NULL,
     "Step whose stdout write() refuses with KILN_EIO."},
    {KILN_OPT_BOOL, "fail_open", "false", 0, offsetof(struct lossy_config, fail_open), 0, -1, NULL,
     "open() fails with KILN_EACCES."},
    KILN_OPTIONS_END,
};

struct lossy {
    kiln_sink *sink;
    char *lose_step, *fail_step;
    unsigned pending; /* losses not yet reported */
    bool closing;
};

static void finish_close(struct lossy *l)
{
    kiln_sink *sink = l->sink;
    free(l->lose_step);
    free(l->fail_step);
    free(l);
    kiln_api->sink_closed(sink);
}

/* One accepted batch, lost on the loop's next turns. */
struct loss {
    struct lossy *l;
    char *build_id, *step_id;
    uint64_t bytes, lines;
};

static void nothing(void *data)
{
    (void)data;
}

static void report_loss(void *data, int err)
{
    struct loss *x = data;
    (void)err;
    struct lossy *l = x->l;
    kiln_api->sink_lost(l->sink, x->build_id, x->step_id, x->bytes, x->lines, "dropped on purpose");
    free(x->build_id);
    free(x->step_id);
    free(x);
    if (--l->pending == 0 && l->closing)
        finish_close(l);
}

static bool is(const char *want, const kiln_log_batch *b)
{
    return want && b->step_id && b->stream == KILN_STREAM_STDOUT && strcmp(want, b->step_id) == 0;
}

static int lossy_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct lossy *l = kiln_api->sink_get_data(sink);
    if (is(l->fail_step, b))
        return KILN_EIO;
    if (!is(l->lose_step, b))
        return 0;
    struct loss *x = calloc(1, sizeof *x);
    if (!x)
        return KILN_ENOMEM;
    x->l = l;
    x->build_id = strdup(b->build_id);
    x->step_id = strdup(b->step_id);
    x->bytes = b->len;
    x->lines = b->n_lines;
    l->pending++;
    if (kiln_api->queue_work(KILN_OBJ(sink), nothing, report_loss, x) != 0)
        report_loss(x, 0);
    return 0;
}

static int lossy_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct lossy_config *c = config;
    if (!KILN_API_HAS(kiln_api, sink_lost))
        return KILN_ENOSYS;
    if (c->fail_open)
        return KILN_EACCES;
    struct lossy *l = calloc(1, sizeof *l);
    if (!l)
        return KILN_ENOMEM;
    l->sink = sink;
    l->lose_step = c->lose_step ? strdup(c->lose_step) : NULL;
    l->fail_step = c->fail_step ? strdup(c->fail_step) : NULL;
    kiln_api->sink_set_data(sink, l);
    return 0;
}

static void lossy_close(kiln_sink *sink)
{
    struct lossy *l = kiln_api->sink_get_data(sink);
    l->closing = true;
    if (!l->pending)
        finish_close(l);
}

static int lossy_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops lossy_ops = {sizeof(kiln_sink_ops), lossy_open, lossy_write, NULL,
                                        lossy_close};

static const kiln_plugin lossy_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "lossy",
    .version = "1.0.0",
    .summary = "Test sink that loses step output on purpose (sink_lost, failing write and open)",
    .options = lossy_options,
    .config_size = sizeof(struct lossy_config),
    .init = lossy_init,
    .sink = &lossy_ops,
};

KILN_PLUGIN_DEFINE(lossy_plugin)
