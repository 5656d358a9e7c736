/* SPDX-License-Identifier: MIT */
/*
 * Dry runs: in `kiln run --dry-run` every step whose plugin is flagged
 * KILN_PLUGIN_DEPLOYS runs the mock-deploy plugin instead. The step keeps its
 * real plugin (rstep.real) for three things: its options are checked and
 * filled against the real schema, they are recorded resolved and with
 * secrets masked, and the real plugin's describe() (when it has one) plans
 * the exact requests through kiln_api->plan_add().
 *
 * Deploy plugins that are not installed yet but that kiln knows by name
 * (kiln__known_deploys) are mocked too, so that a pipeline written for them
 * can be dry-run today: mock-deploy records the step's `with:` as written,
 * substitutions applied, and says the plugin is not installed. A plugin
 * name that is neither installed nor known stays an error, dry run or not:
 * a typo must not pass as a deploy.
 */
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "path.h"
#include "resolve.h"

const char *const kiln__known_deploys[] = {
    "cloudrun-deploy", /* gcloud run deploy */
    "k8s-deploy",      /* kubectl apply / gke-deploy run */
    NULL,
};

bool kiln__is_known_deploy(const char *name)
{
    for (size_t i = 0; kiln__known_deploys[i]; i++)
        if (strcmp(kiln__known_deploys[i], name) == 0)
            return true;
    return false;
}

int kiln__dryrun_bind(kiln__rstep *s, const char *pname, kiln__buf *err)
{
    kiln__engine *eng = s->b->eng;
    s->real = s->plugin;
    s->mocked = true;
    kiln__buf e = KILN__BUF_INIT;
    int rc = kiln__registry_get(&eng->reg, KILN_PLUGIN_STEP, KILN__MOCK_PLUGIN, &s->plugin, &e);
    if (rc)
        kiln__buf_addf(err, "%s: a dry run replaces the deploying plugin '%s' with %s: %s",
                       s->def->label, pname, KILN__MOCK_PLUGIN, e.buf);
    kiln__buf_release(&e);
    return rc;
}


void kiln__plan_to_json(const kiln__rstep *s, cJSON *arr)
{
    char *copy = kiln__xstrdup(s->plan.buf), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        cJSON_AddItemToArray(arr, j ? j : cJSON_CreateString(line));
    }
    free(copy);
}
/* Option names whose values a plan must not show, for plugins whose schema
 * (and so their KILN_OPT_SECRET flags) is unknown. */
static bool looks_secret(const char *key)
{
    static const char *const words[] = {"secret", "token", "password", "passwd", "credential",
                                        "apikey", "api_key", "api-key", "private", NULL};
    char low[128];
    size_t n = 0;
    for (; key[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)key[n]);
    low[n] = '\0';
    for (size_t i = 0; words[i]; i++)
        if (strstr(low, words[i]))
            return true;
    return false;
}

/* A `with:` node as JSON, every string expanded. */
static cJSON *raw_json(const kiln__ynode *n, bool secret, kiln__expand_fn expand, void *ctx)
{
    if (!n || kiln__ynode_is_null(n))
        return cJSON_CreateNull();
    if (n->kind == KILN__Y_MAP) {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < n->n; i++) {
            const kiln__ynode *k = n->items[2 * i];
            cJSON_AddItemToObject(o, k->value,
                                  raw_json(n->items[2 * i + 1], secret || looks_secret(k->value),
                                           expand, ctx));
        }
        return o;
    }
    if (n->kind == KILN__Y_SEQ) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n->n; i++)
            cJSON_AddItemToArray(a, raw_json(n->items[i], secret, expand, ctx));
        return a;
    }
    if (secret)
        return cJSON_CreateString("********");
    if (!n->quoted) {
        /* Keep YAML's plain numbers and booleans typed. */
        char *j = kiln__ynode_to_json(n);
        cJSON *v = cJSON_Parse(j);
        free(j);
        if (v && !cJSON_IsString(v))
            return v;
        cJSON_Delete(v);
    }
    kiln__buf out = KILN__BUF_INIT;
    expand(ctx, n, n->value, &out);
    cJSON *v = cJSON_CreateString(out.buf);
    kiln__buf_release(&out);
    return v;
}

void kiln__dryrun_prepare(kiln__rstep *s, kiln__expand_fn expand, void *ctx, kiln__diag *d)
{
    const kiln__pipeline *p = s->b->p;
    free(s->mock_options);
    s->mock_options = NULL;
    if (s->real) {
        char prefix[300];
        snprintf(prefix, sizeof prefix, "%s: ", s->def->label);
        if (kiln__config_fill(s->real->desc, s->def->with, d, p->file, s->def->node, prefix, expand,
                              ctx, s->real->plugin_data, &s->cfg) == 0)
            s->mock_options = kiln__config_to_json(s->real->desc, s->cfg);
        return;
    }
    int before = d->errors;
    cJSON *j = s->def->with ? raw_json(s->def->with, false, expand, ctx) : cJSON_CreateObject();
    if (d->errors == before) {
        s->mock_options = kiln__json_take(cJSON_PrintUnformatted(j));
    }
    cJSON_Delete(j);
}

static const char *plan_file(kiln__build *b)
{
    kiln__engine *eng = b->eng;
    if (b->plan_file)
        return b->plan_file;
    const char *dir = eng->plan_dir ? eng->plan_dir : b->workspace;
    if (kiln__mkdir_p(dir) != 0)
        return NULL;
    b->plan_file = kiln__xasprintf("%s/plan-%s.jsonl", dir, b->id);
    FILE *f = fopen(b->plan_file, "w"); /* one file per build, started afresh */
    if (f)
        fclose(f);
    eng->plan_files = kiln__xrealloc(eng->plan_files, (eng->n_plan_files + 1) * sizeof *eng->plan_files);
    eng->plan_files[eng->n_plan_files++] = kiln__xstrdup(b->plan_file);
    return b->plan_file;
}

int kiln__deploy_target(kiln__rstep *s, kiln_deploy_target *out)
{
    if (!out || out->struct_size < sizeof(uint32_t) || !s->mocked ||
        s->status != KILN_STATUS_WORKING)
        return KILN_EINVAL;
    if (!s->mock_requests) {
        cJSON *arr = cJSON_CreateArray();
        const kiln_step_ops *ops = s->real ? s->real->desc->step : NULL;
        if (ops && ops->struct_size >= offsetof(kiln_step_ops, describe) + sizeof ops->describe &&
            ops->describe && s->cfg) {
            /* What describe() plans lands in s->plan; take it out. */
            kiln__buf saved = s->plan;
            kiln__buf_init(&s->plan);
            int rc = ops->describe(s, s->cfg->data, s->real->plugin_data);
            if (rc)
                kiln__sys_log(s->b, s, KILN_LOG_WARN, "plugin '%s' could not describe its requests: %s",
                              s->real->name, kiln__strerror(rc));
            char *copy = kiln__xstrdup(s->plan.buf), *save = NULL;
            for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                cJSON *j = cJSON_Parse(line);
                cJSON_AddItemToArray(arr, j ? j : cJSON_CreateString(line));
            }
            free(copy);
            kiln__buf_release(&s->plan);
            s->plan = saved;
        }
        s->mock_requests = kiln__json_take(cJSON_PrintUnformatted(arr));
        cJSON_Delete(arr);
    }
    kiln_deploy_target t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.plugin = kiln__step_plugin_name(s->def);
    t.installed = s->real != NULL;
    t.options_json = s->mock_options ? s->mock_options : "{}";
    t.requests_json = s->mock_requests;
    t.plan_file = plan_file(s->b);
    size_t n = out->struct_size < sizeof t ? out->struct_size : sizeof t;
    memcpy((char *)out + sizeof(uint32_t), (char *)&t + sizeof(uint32_t), n - sizeof(uint32_t));
    return 0;
}

void kiln__dryrun_record(kiln__rstep *s)
{
    const char *file = plan_file(s->b);
    if (!file)
        return;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "build", s->b->id);
    cJSON_AddStringToObject(e, "step", s->def->key);
    cJSON_AddStringToObject(e, "plugin", kiln__step_plugin_name(s->def));
    cJSON_AddBoolToObject(e, "installed", true);
    cJSON_AddStringToObject(e, "status", kiln_status_name(s->status));
    kiln__plan_to_json(s, cJSON_AddArrayToObject(e, "requests"));
    char *t = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    FILE *f = fopen(file, "a");
    if (!f || fprintf(f, "%s\n", t) < 0)
        kiln__sys_log(s->b, s, KILN_LOG_WARN, "cannot write the plan file %s", file);
    if (f)
        fclose(f);
    cJSON_free(t);
}

void kiln__dryrun_check_node(void *ctx, const kiln__ynode *n, kiln__buf *tmp)
{
    if (!n)
        return;
    if (n->kind == KILN__Y_SCALAR) {
        kiln__buf_reset(tmp);
        kiln__expand(ctx, n, n->value, tmp);
        return;
    }
    size_t k = n->kind == KILN__Y_MAP ? 2 * n->n : n->n;
    for (size_t i = 0; i < k; i++)
        if (n->kind == KILN__Y_SEQ || i % 2 == 1)
            kiln__dryrun_check_node(ctx, n->items[i], tmp);
}
