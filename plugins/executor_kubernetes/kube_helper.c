/* SPDX-License-Identifier: MIT */
#include "kube_helper.h"

#include <string.h>

bool kube_helper_applies(const kiln_exec_spec *s)
{
    return !s->image_entrypoint && s->argv && s->argv[0];
}

static cJSON *mount(const char *vol, const char *path)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", vol);
    cJSON_AddStringToObject(m, "mountPath", path);
    return m;
}

void kube_helper_wrap(cJSON *spec, cJSON *ctr, const char *image, bool send_output)
{
    cJSON *vols = cJSON_GetObjectItem(spec, "volumes");
    if (!vols)
        vols = cJSON_AddArrayToObject(spec, "volumes");
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", "kiln-helper");
    cJSON_AddObjectToObject(v, "emptyDir");
    cJSON_AddItemToArray(vols, v);

    /* The image is FROM scratch: the helper installs itself. */
    cJSON *init = cJSON_CreateObject();
    cJSON_AddStringToObject(init, "name", KUBE_HELPER_INIT);
    cJSON_AddStringToObject(init, "image", image);
    cJSON *icmd = cJSON_AddArrayToObject(init, "command");
    cJSON_AddItemToArray(icmd, cJSON_CreateString("/kiln-pod-helper"));
    cJSON_AddItemToArray(icmd, cJSON_CreateString("--install"));
    cJSON_AddItemToArray(icmd, cJSON_CreateString(KUBE_HELPER_BIN));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(init, "volumeMounts"), mount("kiln-helper", KUBE_HELPER_DIR));
    cJSON *inits = cJSON_GetObjectItem(spec, "initContainers");
    if (!inits)
        inits = cJSON_AddArrayToObject(spec, "initContainers");
    cJSON_InsertItemInArray(inits, 0, init); /* first: before any other init container */

    cJSON *mounts = cJSON_GetObjectItem(ctr, "volumeMounts");
    if (!mounts)
        mounts = cJSON_AddArrayToObject(ctr, "volumeMounts");
    cJSON_AddItemToArray(mounts, mount("kiln-helper", KUBE_HELPER_DIR));

    /* command [c0], args [a...]  ->  command [helper, (--output F), --], args [c0, a...] */
    cJSON *old_cmd = cJSON_DetachItemFromObject(ctr, "command");
    cJSON *old_args = cJSON_DetachItemFromObject(ctr, "args");
    cJSON *cmd = cJSON_AddArrayToObject(ctr, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString(KUBE_HELPER_BIN));
    if (send_output) {
        cJSON_AddItemToArray(cmd, cJSON_CreateString("--output"));
        cJSON_AddItemToArray(cmd, cJSON_CreateString(KUBE_HELPER_OUTPUT));
    }
    cJSON_AddItemToArray(cmd, cJSON_CreateString("--"));
    cJSON *args = cJSON_AddArrayToObject(ctr, "args");
    cJSON *it;
    cJSON_ArrayForEach(it, old_cmd) cJSON_AddItemToArray(args, cJSON_Duplicate(it, true));
    cJSON_ArrayForEach(it, old_args) cJSON_AddItemToArray(args, cJSON_Duplicate(it, true));
    cJSON_Delete(old_cmd);
    cJSON_Delete(old_args);

    if (send_output) {
        cJSON *env = cJSON_GetObjectItem(ctr, "env");
        if (!env)
            env = cJSON_AddArrayToObject(ctr, "env");
        cJSON_ArrayForEach(it, env)
        {
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(it, "name"));
            if (n && !strcmp(n, "KILN_OUTPUT")) {
                cJSON_ReplaceItemInObject(it, "value", cJSON_CreateString(KUBE_HELPER_OUTPUT));
                return;
            }
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", "KILN_OUTPUT");
        cJSON_AddStringToObject(e, "value", KUBE_HELPER_OUTPUT);
        cJSON_AddItemToArray(env, e);
    }
}
