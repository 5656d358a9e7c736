/* SPDX-License-Identifier: MIT */
/* Log records lost by sinks; see sinkloss.h. */
#include "sinkloss.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Text for the user's terminal: secrets masked, one line. */
static void put_masked(const kiln__engine *eng, FILE *out, const kiln__buf *m)
{
    kiln__buf clean = KILN__BUF_INIT;
    kiln__mask(eng->masker, m->buf, m->len, &clean);
    fprintf(out, "%s\n", clean.buf ? clean.buf : "");
    kiln__buf_release(&clean);
}

/* "step 'ID'", "step 'ID' of build B" (a sub-build), "the build's own messages" */
static void add_where(const kiln__engine *eng, kiln__buf *m, const char *build_id,
                      const char *step_id)
{
    bool sub = eng->top && strcmp(build_id, eng->top->id) != 0;
    if (step_id)
        kiln__buf_addf(m, "step '%s'", step_id);
    else
        kiln__buf_adds(m, "the build's own messages");
    if (sub)
        kiln__buf_addf(m, " of build %s", build_id);
}

void kiln__sink_lost(kiln_sink *s, const char *build_id, const char *step_id, uint64_t bytes,
                     uint64_t lines, const char *reason)
{
    if (!s || s->closed || (!bytes && !lines))
        return;
    kiln__engine *eng = s->eng;
    if (!build_id)
        build_id = eng->top ? eng->top->id : "";
    kiln__loss *l = NULL;
    for (size_t i = 0; i < eng->n_losses && !l; i++)
        if (eng->losses[i].sink == s->index && strcmp(eng->losses[i].build_id, build_id) == 0 &&
            same(eng->losses[i].step_id, step_id))
            l = &eng->losses[i];
    if (!l) {
        eng->losses = kiln__xrealloc(eng->losses, (eng->n_losses + 1) * sizeof *eng->losses);
        l = &eng->losses[eng->n_losses++];
        memset(l, 0, sizeof *l);
        l->sink = s->index;
        l->sink_name = kiln__xstrdup(s->plugin->desc->name);
        l->required = s->required;
        l->build_id = kiln__xstrdup(build_id);
        l->step_id = step_id ? kiln__xstrdup(step_id) : NULL;
    }
    l->bytes += bytes;
    l->lines += lines;
    if (!l->reason && reason)
        l->reason = kiln__xstrdup(reason);

    if (!s->warned) {
        /* Once per sink: a full disk loses every later batch of every step. */
        s->warned = true;
        kiln__buf m = KILN__BUF_INIT;
        kiln__buf_addf(&m, "kiln: %s: %slog sink '%s' is losing records (", s->required ? "error" : "warning",
                       s->required ? "required " : "", l->sink_name);
        add_where(eng, &m, build_id, step_id);
        kiln__buf_addf(&m, ": %s); the report and the summary count what is lost",
                       reason ? reason : "no reason given");
        put_masked(eng, stderr, &m);
        kiln__buf_release(&m);
    }
    if (s->required && !eng->loss_fail_reason) {
        kiln__buf m = KILN__BUF_INIT;
        kiln__buf_addf(&m, "required log sink '%s' lost records of ", l->sink_name);
        add_where(eng, &m, build_id, step_id);
        if (reason)
            kiln__buf_addf(&m, ": %s", reason);
        eng->loss_fail_reason = kiln__buf_detach(&m);
        /* The build fails on the loop's next turn, not inside the sink's call. */
        if (eng->top)
            kiln__build_kick(eng->top);
    }
}

static cJSON *loss_json(const kiln__engine *eng, const kiln__loss *l, bool where)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sink", l->sink_name);
    if (where) {
        if (!eng->top || strcmp(l->build_id, eng->top->id) != 0)
            cJSON_AddStringToObject(o, "build", l->build_id);
        if (l->step_id)
            cJSON_AddStringToObject(o, "step", l->step_id);
        else
            cJSON_AddNullToObject(o, "step");
    }
    cJSON_AddNumberToObject(o, "bytes", (double)l->bytes);
    cJSON_AddNumberToObject(o, "lines", (double)l->lines);
    if (l->reason)
        cJSON_AddStringToObject(o, "reason", l->reason);
    else
        cJSON_AddNullToObject(o, "reason");
    cJSON_AddBoolToObject(o, "required", l->required);
    return o;
}

struct cJSON *kiln__losses_json(const kiln__engine *eng, const char *build_id, const char *step_id)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < eng->n_losses; i++) {
        const kiln__loss *l = &eng->losses[i];
        if (build_id && (strcmp(l->build_id, build_id) != 0 || !same(l->step_id, step_id)))
            continue;
        cJSON_AddItemToArray(a, loss_json(eng, l, !build_id));
    }
    return a;
}

void kiln__losses_print(const kiln__engine *eng, FILE *out)
{
    for (size_t i = 0; i < eng->n_losses; i++) {
        const kiln__loss *l = &eng->losses[i];
        kiln__buf m = KILN__BUF_INIT;
        kiln__buf_addf(&m, "kiln: %s: %slog sink '%s' lost %" PRIu64 " bytes (%" PRIu64 " line%s) of ",
                       l->required ? "error" : "warning", l->required ? "required " : "", l->sink_name,
                       l->bytes, l->lines, l->lines == 1 ? "" : "s");
        add_where(eng, &m, l->build_id, l->step_id);
        kiln__buf_addf(&m, ": %s", l->reason ? l->reason : "no reason given");
        put_masked(eng, out, &m);
        kiln__buf_release(&m);
    }
}

void kiln__losses_release(kiln__engine *eng)
{
    for (size_t i = 0; i < eng->n_losses; i++) {
        free(eng->losses[i].sink_name);
        free(eng->losses[i].build_id);
        free(eng->losses[i].step_id);
        free(eng->losses[i].reason);
    }
    free(eng->losses);
    eng->losses = NULL;
    eng->n_losses = 0;
    free(eng->loss_fail_reason);
    eng->loss_fail_reason = NULL;
}
