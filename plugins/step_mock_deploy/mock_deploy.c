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
    char *printed = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    /* Substituted options may hold any bytes: the plan file is UTF-8. */
    char *line = printed ? kp_utf8_sanitize(printed, strlen(printed), NULL) : NULL;
    cJSON_free(printed);
    if (!line)
        return KILN_ENOMEM;
    kiln_api->plan_add(step, line);
    if (t.plan_file) {
        FILE *f = fopen(t.plan_file, "a");
        if (!f || fprintf(f, "%s\n", line) < 0) {
            kiln_error(step, "mock-deploy: cannot write the plan file %s", t.plan_file);
            if (f)
                fclose(f);
            free(line);
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
    kiln_info(step, "would deploy with: %s", t.options_json);
    kiln_api->step_done(step, 0, NULL);
    return 0;
}

static int mock_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops mock_ops = {sizeof(kiln_step_ops), mock_start, NULL, NULL};

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
