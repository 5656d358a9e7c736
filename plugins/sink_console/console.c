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
 *
 * Each batch is prefixed line by line into one buffer (the prefix is the
 * same for every line of a batch, so it is formatted once) and the buffer
 * goes out in one write() on a worker thread; what arrives while a write is
 * under way joins the next one. A console that is slow to take output (a
 * pipe nobody reads yet, a paused terminal) blocks only that worker: above
 * the high-water mark write() says KILN_EAGAIN and kiln stops reading step
 * output until the console caught up, so nothing is lost and the loop keeps
 * running (timeouts, other sinks, Ctrl-C).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <kiln/kiln.h>

#include "../common/sink_writer.h"

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

/* Above this many bytes waiting, write() says KILN_EAGAIN: kiln stops
 * reading step output until the console has taken what it has. */
#define HIGH_WATER (1u << 20)

struct console {
    struct console_config cfg;
    kiln_sink *sink;
    bool color;
    bool midline;          /* the last thing printed was a partial line */
    char mid_build[64];
    int mid_step;
    int mid_stream;
    kiln_sw w;             /* the console's writer (sink_writer.h) */
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

static void put(struct console *c, const char *p, size_t n)
{
    if (!n)
        return; /* an empty prefix: the buffer may not exist yet */
    memcpy(kiln_sw_buf_reserve(&c->w.active, n), p, n);
    c->w.active.len += n;
}

static void puts_(struct console *c, const char *s)
{
    put(c, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) putf(struct console *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    char *d = kiln_sw_buf_reserve(&c->w.active, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->w.active.len += (size_t)n;
}

/* The step prefix ("[step] ", coloured, or Cloud Build's "Step #N: ")
 * into out; returns its length. */
static size_t prefix(const struct console *c, const char *build_id, int depth, const char *step_id,
                     int step_index, char *out, size_t cap)
{
    int n = 0;
    if (c->cfg.format == FMT_CLOUDBUILD) {
        if (depth > 0)
            n += snprintf(out + n, cap - (size_t)n, "[%s] ", build_id);
        if (!step_id || (size_t)n >= cap)
            return (size_t)n < cap ? (size_t)n : cap - 1;
        if (strncmp(step_id, "step-", 5) != 0)
            n += snprintf(out + n, cap - (size_t)n, "Step #%d - \"%s\": ", step_index, step_id);
        else
            n += snprintf(out + n, cap - (size_t)n, "Step #%d: ", step_index);
        return (size_t)n < cap ? (size_t)n : cap - 1;
    }
    const char *col = c->color ? colour_of(step_id ? step_id : "kiln") : "";
    if (depth > 0)
        n = snprintf(out, cap, "%s[%.8s/%s]%s ", col, build_id, step_id ? step_id : "kiln",
                     c->color ? RESET : "");
    else if (step_id)
        n = snprintf(out, cap, "%s[%s]%s ", col, step_id, c->color ? RESET : "");
    else
        out[0] = '\0';
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static void put_prefix(struct console *c, const char *build_id, int depth, const char *step_id,
                       int step_index)
{
    char pre[512];
    put(c, pre, prefix(c, build_id, depth, step_id, step_index, pre, sizeof pre));
}

static void end_midline(struct console *c)
{
    if (c->midline) {
        put(c, "\n", 1);
        c->midline = false;
    }
}

/* ---- writing ------------------------------------------------------------ */

static void finish_close(void *data)
{
    struct console *c = data;
    kiln_sink *sink = c->sink;
    kiln_sw_release(&c->w);
    free(c);
    kiln_api->sink_closed(sink);
}

/* One line (n bytes at p, its newline included if it has one) after the
 * prefix, at *d; grows the buffer when the room reserved runs out. */
static inline void put_line(kiln_sw_buf *o, char **d, const char *pre, size_t pre_len, bool with_pre,
                            const char *p, size_t n)
{
    if ((size_t)(o->data + o->cap - *d) < pre_len + n + 1) {
        o->len = (size_t)(*d - o->data);
        kiln_sw_buf_reserve(o, pre_len + n + 1);
        *d = o->data + o->len;
    }
    if (with_pre) {
        memcpy(*d, pre, pre_len);
        *d += pre_len;
    }
    memcpy(*d, p, n);
    *d += n;
}

/* Every line of the batch, prefixed, appended to the active buffer; the
 * first without the prefix when it continues a partial line. A last line
 * without a newline gets one unless the batch is PARTIAL. This is the
 * console's per-line cost, so the newlines are found 16 bytes at a time
 * and the room is reserved once per batch. */
static void put_lines(struct console *c, const kiln_log_batch *b, const char *pre, size_t pre_len,
                      bool continues)
{
    kiln_sw_buf *o = &c->w.active;
    const char *t = b->text;
    size_t n = b->len, i = 0, start = 0;
    kiln_sw_buf_reserve(o, n + ((size_t)b->n_lines + 1) * (pre_len + 1));
    char *d = o->data + o->len;
    bool with_pre = !continues;
#ifdef __SSE2__
    const __m128i nl = _mm_set1_epi8('\n');
    for (; i + 16 <= n; i += 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(t + i)), nl));
        while (m) {
            size_t e = i + (size_t)__builtin_ctz(m) + 1;
            m &= m - 1;
            put_line(o, &d, pre, pre_len, with_pre, t + start, e - start);
            with_pre = true;
            start = e;
        }
    }
#endif
    for (;;) {
        const char *q = memchr(t + start, '\n', n - start);
        if (!q)
            break;
        size_t e = (size_t)(q - t) + 1;
        put_line(o, &d, pre, pre_len, with_pre, t + start, e - start);
        with_pre = true;
        start = e;
    }
    if (start < n) {
        put_line(o, &d, pre, pre_len, with_pre, t + start, n - start);
        if (!(b->flags & KILN_BATCH_PARTIAL))
            *d++ = '\n'; /* put_line left room for it */
    }
    o->len = (size_t)(d - o->data);
}

/* ---- the sink ------------------------------------------------------------ */

static int console_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct console *c = kiln_api->sink_get_data(sink);
    bool system = b->stream == KILN_STREAM_SYSTEM;
    if (c->cfg.quiet && !(system && b->severity <= KILN_LOG_WARN))
        return 0;
    if (kiln_sw_lost(&c->w, b))
        return 0; /* the console is gone (EPIPE, ...): counted, not shown */
    bool same = c->midline && strcmp(c->mid_build, b->build_id) == 0 &&
                c->mid_step == b->step_index && c->mid_stream == (int)b->stream &&
                (b->flags & KILN_BATCH_CONTINUED);
    if (!same)
        end_midline(c);
    if (!b->len)
        return 0;
    /* One prefix for the whole batch: same step, same stream, same level. */
    char pre[640];
    size_t pre_len = prefix(c, b->build_id, b->depth, b->step_id, b->step_index, pre, 512);
    if (system) {
        const char *lvl = b->severity == KILN_LOG_ERROR ? "error: "
                          : b->severity == KILN_LOG_WARN ? "warning: "
                                                         : "";
        int n;
        if (c->color && b->severity <= KILN_LOG_WARN)
            n = snprintf(pre + pre_len, sizeof pre - pre_len, "%s%s%s",
                         b->severity == KILN_LOG_ERROR ? RED : "\033[33m", lvl, RESET);
        else
            n = snprintf(pre + pre_len, sizeof pre - pre_len, "%s", lvl);
        pre_len += (size_t)n;
        if (!b->step_id && c->cfg.format == FMT_KILN)
            pre_len += (size_t)snprintf(pre + pre_len, sizeof pre - pre_len, "kiln: ");
    }
    put_lines(c, b, pre, pre_len, same);
    if (!(b->text[b->len - 1] == '\n') && (b->flags & KILN_BATCH_PARTIAL)) {
        /* A progress bar: the rest of the line may follow. */
        c->midline = true;
        snprintf(c->mid_build, sizeof c->mid_build, "%s", b->build_id);
        c->mid_step = b->step_index;
        c->mid_stream = (int)b->stream;
    } else {
        c->midline = false; /* a continued partial line is complete now */
    }
    kiln_sw_note(&c->w, b);
    return kiln_sw_submit(&c->w);
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
                putf(c, "starting build \"%s\"\n\nBUILD\n", ev->build_id);
            else
                putf(c, "[%s] starting sub-build\n", ev->build_id);
            break;
        case KILN_EVENT_STEP_START:
            if (c->cfg.quiet)
                break;
            put_prefix(c, ev->build_id, ev->depth, NULL, -1);
            if (sfx)
                putf(c, "Starting Step #%d - \"%s\"\n", ev->step_index, sfx);
            else
                putf(c, "Starting Step #%d\n", ev->step_index);
            break;
        case KILN_EVENT_STEP_END:
            if (c->cfg.quiet && !bad)
                break;
            put_prefix(c, ev->build_id, ev->depth, NULL, -1);
            if (sfx)
                putf(c, "Finished Step #%d - \"%s\"\n", ev->step_index, sfx);
            else
                putf(c, "Finished Step #%d\n", ev->step_index);
            break;
        case KILN_EVENT_BUILD_END:
            put_prefix(c, ev->build_id, ev->depth, NULL, -1);
            if (!bad)
                puts_(c, "DONE\n");
            else
                putf(c, "ERROR\nERROR: %s\n", ev->message ? ev->message : kiln_status_name(ev->status));
            break;
        default:
            break;
        }
        kiln_sw_submit(&c->w);
        return;
    }
    const char *col = c->color ? (bad ? RED : "\033[32m") : "";
    const char *rst = c->color ? RESET : "";
    switch (ev->type) {
    case KILN_EVENT_BUILD_START:
        if (ev->depth > 0)
            putf(c, "kiln: sub-build %s started\n", ev->build_id);
        break;
    case KILN_EVENT_STEP_START:
        if (c->cfg.quiet)
            break;
        put_prefix(c, ev->build_id, ev->depth, ev->step_id, ev->step_index);
        putf(c, "starting (%s%s%s)\n", ev->plugin ? ev->plugin : "step",
             ev->image ? ", image " : "", ev->image ? ev->image : "");
        break;
    case KILN_EVENT_STEP_END:
        if (c->cfg.quiet && !bad)
            break;
        put_prefix(c, ev->build_id, ev->depth, ev->step_id, ev->step_index);
        putf(c, "%s%s%s in %s%s%s\n", col, kiln_status_name(ev->status), rst, dur,
             ev->message ? ": " : "", ev->message ? ev->message : "");
        break;
    case KILN_EVENT_BUILD_END:
        putf(c, "%s%s%s%s %sbuild %s in %s%s%s\n", c->color ? BOLD : "", col,
             kiln_status_name(ev->status), rst, ev->depth ? "sub-" : "", ev->build_id, dur,
             ev->message ? ": " : "", ev->message ? ev->message : "");
        break;
    default:
        break;
    }
    kiln_sw_submit(&c->w);
}

static int console_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    struct console *c = calloc(1, sizeof *c);
    if (!c)
        return KILN_ENOMEM;
    c->cfg = *(const struct console_config *)config;
    FILE *out = c->cfg.to_stderr ? stderr : stdout;
    /* From here on the console writes to the descriptor; what kiln printed
     * through stdio before goes first. */
    fflush(out);
    c->sink = sink;
    kiln_sw_init(&c->w, sink, fileno(out), HIGH_WATER);
    c->w.on_closed = finish_close;
    c->w.data = c;
    c->color = c->cfg.color == COLOR_ALWAYS ||
               (c->cfg.color == COLOR_AUTO && isatty(c->w.fd) && !getenv("NO_COLOR"));
    c->mid_step = -2;
    kiln_api->sink_set_data(sink, c);
    return 0;
}

/* Everything printed so far reaches the console before the sink says it is
 * closed (kiln runs the loop until then). */
static void console_close(kiln_sink *sink)
{
    struct console *c = kiln_api->sink_get_data(sink);
    if (!c) {
        kiln_api->sink_closed(sink);
        return;
    }
    end_midline(c);
    kiln_sw_close(&c->w);
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
