/* SPDX-License-Identifier: MIT */
/*
 * mock-deploy: what a deploying step would have done, in a dry run.
 *
 * The host runs this plugin in place of every plugin flagged
 * KILN_PLUGIN_DEPLOYS (and of deploy plugins kiln knows by name that are not
 * installed yet). The step's options were already checked against the real
 * plugin's schema; kiln_api->deploy_target() hands over the real plugin's
 * name, the resolved options with secrets masked and the requests the real
 * plugin describes (step_ops.describe + plan_add). mock-deploy appends one
 * JSON line per step to the build's plan file, adds the same entry to the
 * report (plan_add), and prints a short summary. It knows nothing of any
 * particular deploy plugin: new ones plug in without changing it.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "../common/json_string.h"

KILN_API_DEFINE;

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One line per planned request: method, where it goes (url, or server and
 * path) and what it is about (object, image or change), then each distinct
 * note of the plugin once. A request is any JSON the plugin chose; these
 * fields are the conventional ones (docs/PLUGIN_API.md, "Dry runs").
 * Returns how many requests it showed. */
static int say_requests(kiln_step *step, const cJSON *reqs)
{
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        if (!cJSON_IsObject(r))
            continue;
        const char *method = jstr(r, "method"), *url = jstr(r, "url"), *server = jstr(r, "server");
        const char *path = jstr(r, "path");
        const char *about = jstr(r, "object");
        if (!about)
            about = jstr(r, "image");
        if (!about)
            about = jstr(r, "change");
        if (!method && !url && !path)
            continue;
        kiln_info(step, "would send %s %s%s%s%s%s", method ? method : "GET", url ? url : server ? server : "",
                  url ? "" : path ? path : "", about ? " (" : "", about ? about : "", about ? ")" : "");
        n++;
    }
    cJSON_ArrayForEach(r, reqs)
    {
        const char *note = jstr(r, "note");
        bool dup = false;
        for (const cJSON *p = reqs->child; p && p != r && !dup; p = p->next)
            dup = jstr(p, "note") && note && strcmp(jstr(p, "note"), note) == 0;
        if (note && !dup)
            kiln_info(step, "note: %s", note);
    }
    return n;
}

static int mock_start(kiln_step *step, const void *config, void *plugin_data)
{
    if (!KILN_API_HAS(kiln_api, deploy_target)) {
        kiln_error(step, "mock-deploy needs kiln with plugin ABI 1.1 or newer");
        return KILN_EABI;
    }
    kiln_deploy_target t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    int rc = kiln_api->deploy_target(step, &t);
    if (rc) {
        kiln_error(step, "mock-deploy runs only in place of a deploying plugin in a dry run");
        return rc;
    }
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "build", kiln_api->build_id(KILN_OBJ(step)));
    cJSON_AddStringToObject(e, "step", kiln_api->step_id(step));
    cJSON_AddStringToObject(e, "plugin", t.plugin);
    cJSON_AddBoolToObject(e, "installed", t.installed);
    cJSON *opts = cJSON_Parse(t.options_json);
    cJSON_AddItemToObject(e, "options", opts ? opts : cJSON_CreateObject());
    cJSON *reqs = cJSON_Parse(t.requests_json ? t.requests_json : "[]");
    int n_reqs = reqs ? cJSON_GetArraySize(reqs) : 0;
    cJSON_AddItemToObject(e, "requests", reqs ? reqs : cJSON_CreateArray());
    const cJSON *e_reqs = cJSON_GetObjectItemCaseSensitive(e, "requests");
    char *printed = cJSON_PrintUnformatted(e);
    /* Substituted options may hold any bytes: the plan file is UTF-8. */
    char *line = printed ? kp_utf8_sanitize(printed, strlen(printed), NULL) : NULL;
    cJSON_free(printed);
    if (!line) {
        cJSON_Delete(e);
        return KILN_ENOMEM;
    }
    kiln_api->plan_add(step, line);
    if (t.plan_file) {
        FILE *f = fopen(t.plan_file, "a");
        if (!f || fprintf(f, "%s\n", line) < 0) {
            kiln_error(step, "mock-deploy: cannot write the plan file %s", t.plan_file);
            if (f)
                fclose(f);
            free(line);
            cJSON_Delete(e);
            return KILN_EIO;
        }
        fclose(f);
    }
    free(line);
    if (t.installed)
        kiln_info(step, "dry run: %s not run; %d request%s recorded in %s", t.plugin, n_reqs,
                  n_reqs == 1 ? "" : "s", t.plan_file ? t.plan_file : "the report");
    else
        kiln_info(step, "dry run: %s is not installed; its options, resolved, are recorded in %s",
                  t.plugin, t.plan_file ? t.plan_file : "the report");
    int n_reqs_shown = say_requests(step, e_reqs);
    cJSON_Delete(e);
    /* The options say what the step was given; the requests, when the real
     * plugin planned them, say what it would really send (a Cloud Build
     * `kubectl apply -f F -n NS` step has its objects and namespace only in
     * args). Show the requests then, and the options only without them. */
    if (!n_reqs_shown)
        kiln_info(step, "would deploy with: %s", t.options_json);
    kiln_api->step_done(step, 0, NULL);
    return 0;
}

static int mock_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops mock_ops = {sizeof(kiln_step_ops), mock_start, NULL, NULL, NULL};

static const kiln_plugin mock_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "mock-deploy",
    .version = KILN_VERSION_STRING,
    .summary = "Dry runs: records what a deploying step would have done in a plan file",
    .options = NULL,
    .config_size = 0,
    .init = mock_init,
    .step = &mock_ops,
};

KILN_PLUGIN_DEFINE(mock_plugin)
