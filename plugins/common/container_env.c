/* SPDX-License-Identifier: MIT */
#include "container_env.h"

#include <stdlib.h>
#include <string.h>

#include "json_string.h"

char *kp_json_print(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    char *text = s ? kp_utf8_sanitize(s, strlen(s), NULL) : NULL;
    cJSON_free(s);
    return text;
}

cJSON *kp_obj_at(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsObject(v)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        v = cJSON_AddObjectToObject(o, key);
    }
    return v;
}

cJSON *kp_arr_at(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(v)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        v = cJSON_AddArrayToObject(o, key);
    }
    return v;
}

void kp_container_set_env(cJSON *container, const char *const *keys, const char *const *values, size_t n)
{
    cJSON *env = kp_arr_at(container, "env");
    for (size_t i = 0; i < n; i++) {
        cJSON *e, *found = NULL;
        cJSON_ArrayForEach(e, env)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (!found && cJSON_IsString(name) && !strcmp(name->valuestring, keys[i]))
                found = e;
        }
        cJSON *nv = cJSON_CreateObject();
        cJSON_AddStringToObject(nv, "name", keys[i]);
        cJSON_AddStringToObject(nv, "value", values[i]);
        if (found)
            cJSON_ReplaceItemViaPointer(env, found, nv);
        else
            cJSON_AddItemToArray(env, nv);
    }
}
