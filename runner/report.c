/* SPDX-License-Identifier: MIT */
/* The JSON build report; see report.h. */
#include "report.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_string.h"
#include "resolve.h"
#include "sinkloss.h"

static void add_time(cJSON *o, const char *name, int64_t us)
{
    if (!us)
        return;
    char t[48];
    kiln__format_time(us, t, sizeof t);
    cJSON_AddStringToObject(o, name, t);
}

static cJSON *build_json(const kiln__build *b);

static cJSON *step_json(const kiln__rstep *s)
{
    cJSON *o = cJSON_CreateObject();
    if (s->def->id)
        cJSON_AddStringToObject(o, "id", s->def->id);
    else
        cJSON_AddNullToObject(o, "id");
    cJSON_AddNumberToObject(o, "index", s->def->index);
    cJSON_AddStringToObject(o, "key", s->def->key);
    if (s->def->name)
        cJSON_AddStringToObject(o, "name", s->def->name);
    cJSON_AddStringToObject(o, "uses", kiln__step_plugin_name(s->def));
    cJSON_AddStringToObject(o, "status", kiln_status_name(s->status));
    if (s->allowed_failure)
        cJSON_AddTrueToObject(o, "allowed_failure");
    if (s->exit_code >= 0)
        cJSON_AddNumberToObject(o, "exit_code", s->exit_code);
    else
        cJSON_AddNullToObject(o, "exit_code");
    cJSON_AddNumberToObject(o, "attempts", s->attempts);
    if (s->start_us) {
        cJSON *timing = cJSON_AddObjectToObject(o, "timing");
        add_time(timing, "startTime", s->start_us);
        add_time(timing, "endTime", s->end_us);
        if (s->end_us)
            cJSON_AddNumberToObject(o, "duration_s", (double)(s->end_us - s->start_us) / 1e6);
    }
    if (s->reason)
        cJSON_AddStringToObject(o, "reason", s->reason);
    cJSON *outs = cJSON_AddObjectToObject(o, "outputs");
    for (size_t i = 0; i < s->n_outputs; i++)
        cJSON_AddStringToObject(outs, s->outputs[i].key, s->outputs[i].value);
    if (s->progress_total || s->progress_done) {
        cJSON *pr = cJSON_AddObjectToObject(o, "progress");
        cJSON_AddNumberToObject(pr, "done", (double)s->progress_done);
        cJSON_AddNumberToObject(pr, "total", (double)s->progress_total);
        if (s->progress_what)
            cJSON_AddStringToObject(pr, "what", s->progress_what);
    }
    if (s->plan.len) {
        kiln__plan_to_json(s, cJSON_AddArrayToObject(o, "plan"));
    }
    if (s->mocked)
        cJSON_AddStringToObject(o, "mockedBy", KILN__MOCK_PLUGIN);
    cJSON_AddItemToObject(o, "logLoss", kiln__losses_json(s->b->eng, s->b->id, s->def->key));
    if (s->n_children) {
        cJSON *subs = cJSON_AddArrayToObject(o, "builds");
        for (size_t i = 0; i < s->n_children; i++)
            cJSON_AddItemToArray(subs, build_json(s->children[i]));
    }
    return o;
}

static void subst_one(void *data, const char *key, const char *value)
{
    cJSON_AddStringToObject(data, key, value);
}

static cJSON *build_json(const kiln__build *b)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", b->id);
    cJSON_AddNumberToObject(r, "depth", b->depth);
    const char *project = kiln__subst_get(b->subst, "PROJECT_ID");
    cJSON_AddStringToObject(r, "projectId", project ? project : "");
    cJSON_AddStringToObject(r, "status", kiln_status_name(b->status));
    if (b->fail_reason)
        cJSON_AddStringToObject(r, "statusDetail", b->fail_reason);
    cJSON_AddStringToObject(r, "pipeline", b->p->file);
    cJSON_AddStringToObject(r, "workspace", b->workspace);
    add_time(r, "startTime", b->start_us);
    add_time(r, "finishTime", b->end_us);
    if (b->end_us)
        cJSON_AddNumberToObject(r, "duration_s", (double)(b->end_us - b->start_us) / 1e6);
    cJSON *steps = cJSON_AddArrayToObject(r, "steps");
    for (size_t o = 0; o < b->n_main; o++)
        cJSON_AddItemToArray(steps, step_json(&b->steps[o]));
    cJSON *fin = cJSON_AddArrayToObject(r, "finally");
    for (size_t o = b->n_main; o < b->n_total; o++)
        cJSON_AddItemToArray(fin, step_json(&b->steps[o]));
    cJSON *subs = cJSON_AddObjectToObject(r, "substitutions");
    kiln__subst_foreach(b->subst, subst_one, subs);
    if (b->plan_file)
        cJSON_AddStringToObject(r, "plan", b->plan_file);
    if (!b->parent) /* every build's, including the build's own messages */
        cJSON_AddItemToObject(r, "logLoss", kiln__losses_json(b->eng, NULL, NULL));
    return r;
}

char *kiln__report_json(const kiln__build *b)
{
    cJSON *r = build_json(b);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    /* Reasons and outputs may quote a secret: mask the whole text. */
    kiln__buf masked = KILN__BUF_INIT;
    kiln__mask(b->eng->masker, s, strlen(s), &masked);
    cJSON_free(s);
    /* Step output, outputs, paths and substitutions are bytes: the report is
     * UTF-8 (ill-formed sequences read as U+FFFD). */
    char *text = kp_utf8_sanitize(masked.buf, masked.len, NULL);
    kiln__buf_release(&masked);
    if (!text)
        abort();
    return text;
}

int kiln__report_write(const kiln__build *b, const char *path)
{
    char *json = kiln__report_json(b);
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        free(json);
        return -e;
    }
    fputs(json, f);
    fputc('\n', f);
    int bad = fclose(f);
    free(json);
    return bad ? KILN_EIO : 0;
}
