/* SPDX-License-Identifier: MIT */
/*
 * console: step output on the terminal, each line prefixed with its step.
 *
 *   format: kiln        [step] line, and one line per step start and end
 *           cloudbuild  Cloud Build's own form: Starting Step #N - "id",
 *                       Step #N - "id": line, Finished Step #N - "id",
 *                       and ERROR: build step N "name" failed: ... at the end
 *   color:  auto (only on a terminal), always, never
 *   quiet:  no step output; starts, ends and failures only
 *
 * A partial line (a progress bar) is printed as it comes; when another step
 * speaks in between, the partial line is ended first.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

enum { FMT_KILN, FMT_CLOUDBUILD };
enum { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER };

static const char *const format_choices[] = {"kiln", "cloudbuild", NULL};
static const char *const color_choices[] = {"auto", "always", "never", NULL};

struct console_config {
    int format;
    int color;
    bool quiet;
    bool to_stderr;
};

static const kiln_option console_options[] = {
    {KILN_OPT_ENUM, "format", "kiln", 0, offsetof(struct console_config, format), 0, -1, format_choices,
     "Line format: kiln ([step] line) or cloudbuild (Step #N - \"id\": line)."},
    {KILN_OPT_ENUM, "color", "auto", 0, offsetof(struct console_config, color), 0, -1, color_choices,
     "Colour step prefixes: auto (on a terminal only), always, never."},
    {KILN_OPT_BOOL, "quiet", "false", 0, offsetof(struct console_config, quiet), 0, -1, NULL,
     "Hide step output; show starts, ends and failures."},
    {KILN_OPT_BOOL, "stderr", "false", 0, offsetof(struct console_config, to_stderr), 0, -1, NULL,
     "Write to standard error instead of standard output."},
    KILN_OPTIONS_END,
};

struct console {
    struct console_config cfg;
    FILE *out;
    bool color;
    bool midline;          /* the last thing printed was a partial line */
    char mid_build[64];
    int mid_step;
    int mid_stream;
};

static const char *const palette[] = {"\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m",
                                      "\033[96m", "\033[93m", "\033[92m"};
#define RESET "\033[0m"
#define RED "\033[31m"
#define BOLD "\033[1m"

static const char *colour_of(const char *key)
{
    unsigned h = 5381;
    for (const char *p = key; p && *p; p++)
        h = h * 33 + (unsigned char)*p;
    return palette[h % (sizeof palette / sizeof palette[0])];
}

static void prefix(struct console *c, const char *build_id, int depth, const char *step_id,
                   int step_index)
{
    if (c->cfg.format == FMT_CLOUDBUILD) {
        if (depth > 0)
            fprintf(c->out, "[%s] ", build_id);
        if (!step_id)
            return;
        if (step_id && strncmp(step_id, "step-", 5) != 0)
            fprintf(c->out, "Step #%d - \"%s\": ", step_index, step_id);
        else
            fprintf(c->out, "Step #%d: ", step_index);
        return;
    }
    const char *col = c->color ? colour_of(step_id ? step_id : "kiln") : "";
    if (depth > 0)
        fprintf(c->out, "%s[%.8s/%s]%s ", col, build_id, step_id ? step_id : "kiln",
                c->color ? RESET : "");
    else if (step_id)
        fprintf(c->out, "%s[%s]%s ", col, step_id, c->color ? RESET : "");
}

static void end_midline(struct console *c)
{
    if (c->midline) {
        fputc('\n', c->out);
        c->midline = false;
    }
}

static int console_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct console *c = kiln_api->sink_get_data(sink);
    bool system = b->stream == KILN_STREAM_SYSTEM;
    if (c->cfg.quiet && !(system && b->severity <= KILN_LOG_WARN))
        return 0;
    bool same = c->midline && strcmp(c->mid_build, b->build_id) == 0 &&
                c->mid_step == b->step_index && c->mid_stream == (int)b->stream &&
                (b->flags & KILN_BATCH_CONTINUED);
    if (!same)
        end_midline(c);
    size_t pos = 0;
    const char *line;
    size_t len;
    bool first = true;
    while (kiln_batch_next(b, &pos, &line, &len)) {
        if (!(first && same)) {
            prefix(c, b->build_id, b->depth, b->step_id, b->step_index);
            if (system) {
                const char *lvl = b->severity == KILN_LOG_ERROR ? "error: "
                                  : b->severity == KILN_LOG_WARN ? "warning: "
                                                                 : "";
                if (c->color && b->severity <= KILN_LOG_WARN)
                    fprintf(c->out, "%s%s%s", b->severity == KILN_LOG_ERROR ? RED : "\033[33m", lvl,
                            RESET);
                else
                    fputs(lvl, c->out);
                if (!b->step_id && c->cfg.format == FMT_KILN)
                    fputs("kiln: ", c->out);
            }
        }
        first = false;
        fwrite(line, 1, len, c->out);
        bool last_partial = pos >= b->len && (b->flags & KILN_BATCH_PARTIAL);
        if (last_partial) {
            c->midline = true;
            snprintf(c->mid_build, sizeof c->mid_build, "%s", b->build_id);
            c->mid_step = b->step_index;
            c->mid_stream = (int)b->stream;
        } else {
            fputc('\n', c->out);
            c->midline = false; /* a continued partial line is complete now */
        }
    }
    fflush(c->out);
    return 0;
}


static void console_event(kiln_sink *sink, const kiln_event *ev)
{
    struct console *c = kiln_api->sink_get_data(sink);
    if (ev->type == KILN_EVENT_STEP_PROGRESS)
        return; /* the step's own lines show its progress on a terminal */
    end_midline(c);
    char dur[32];
    double secs = (double)ev->duration_us / 1e6;
    snprintf(dur, sizeof dur, "%.2fs", secs);
    bool bad = ev->status != KILN_STATUS_SUCCESS;
    if (c->cfg.format == FMT_CLOUDBUILD) {
        const char *sfx = ev->step_id && strncmp(ev->step_id, "step-", 5) != 0 ? ev->step_id : NULL;
        switch (ev->type) {
        case KILN_EVENT_BUILD_START:
            if (ev->depth == 0)
                fprintf(c->out, "starting build \"%s\"\n\nBUILD\n", ev->build_id);
            else
                fprintf(c->out, "[%s] starting sub-build\n", ev->build_id);
            break;
        case KILN_EVENT_STEP_START:
            if (c->cfg.quiet)
                break;
            prefix(c, ev->build_id, ev->depth, NULL, -1);
            if (sfx)
                fprintf(c->out, "Starting Step #%d - \"%s\"\n", ev->step_index, sfx);
            else
                fprintf(c->out, "Starting Step #%d\n", ev->step_index);
            break;
        case KILN_EVENT_STEP_END:
            if (c->cfg.quiet && !bad)
                break;
            prefix(c, ev->build_id, ev->depth, NULL, -1);
            if (sfx)
                fprintf(c->out, "Finished Step #%d - \"%s\"\n", ev->step_index, sfx);
            else
                fprintf(c->out, "Finished Step #%d\n", ev->step_index);
            break;
        case KILN_EVENT_BUILD_END:
            prefix(c, ev->build_id, ev->depth, NULL, -1);
            if (!bad)
                fputs("DONE\n", c->out);
            else
                fprintf(c->out, "ERROR\nERROR: %s\n", ev->message ? ev->message : kiln_status_name(ev->status));
            break;
        default:
            break;
        }
        fflush(c->out);
        return;
    }
    const char *col = c->color ? (bad ? RED : "\033[32m") : "";
    const char *rst = c->color ? RESET : "";
    switch (ev->type) {
    case KILN_EVENT_BUILD_START:
        if (ev->depth > 0)
            fprintf(c->out, "kiln: sub-build %s started\n", ev->build_id);
        break;
    case KILN_EVENT_STEP_START:
        if (c->cfg.quiet)
            break;
        prefix(c, ev->build_id, ev->depth, ev->step_id, ev->step_index);
        fprintf(c->out, "starting (%s%s%s)\n", ev->plugin ? ev->plugin : "step",
                ev->image ? ", image " : "", ev->image ? ev->image : "");
        break;
    case KILN_EVENT_STEP_END:
        if (c->cfg.quiet && !bad)
            break;
        prefix(c, ev->build_id, ev->depth, ev->step_id, ev->step_index);
        fprintf(c->out, "%s%s%s in %s%s%s\n", col, kiln_status_name(ev->status), rst, dur,
                ev->message ? ": " : "", ev->message ? ev->message : "");
        break;
    case KILN_EVENT_BUILD_END:
        fprintf(c->out, "%s%s%s%s %sbuild %s in %s%s%s\n", c->color ? BOLD : "", col,
                kiln_status_name(ev->status), rst, ev->depth ? "sub-" : "", ev->build_id, dur,
                ev->message ? ": " : "", ev->message ? ev->message : "");
        break;
    default:
        break;
    }
    fflush(c->out);
}

static int console_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    struct console *c = calloc(1, sizeof *c);
    if (!c)
        return KILN_ENOMEM;
    c->cfg = *(const struct console_config *)config;
    c->out = c->cfg.to_stderr ? stderr : stdout;
    c->color = c->cfg.color == COLOR_ALWAYS ||
               (c->cfg.color == COLOR_AUTO && isatty(fileno(c->out)) && !getenv("NO_COLOR"));
    c->mid_step = -2;
    kiln_api->sink_set_data(sink, c);
    return 0;
}

static void console_close(kiln_sink *sink)
{
    struct console *c = kiln_api->sink_get_data(sink);
    if (c) {
        end_midline(c);
        fflush(c->out);
        free(c);
    }
    kiln_api->sink_closed(sink);
}

static int console_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops console_ops = {sizeof(kiln_sink_ops), console_open, console_write,
                                          console_event, console_close};

static const kiln_plugin console_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "console",
    .version = KILN_VERSION_STRING,
    .summary = "Step output on the terminal, prefixed with the step (kiln or Cloud Build format)",
    .options = console_options,
    .config_size = sizeof(struct console_config),
    .init = console_init,
    .sink = &console_ops,
};

KILN_PLUGIN_DEFINE(console_plugin)
