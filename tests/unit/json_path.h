/* SPDX-License-Identifier: MIT */
/* The unit tests' way into a JSON body: get(o, "spec containers 0 image"),
 * keys and array indexes separated by spaces (label keys hold dots). */
#ifndef KILN_TEST_JSON_PATH_H
#define KILN_TEST_JSON_PATH_H

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const cJSON *get(const cJSON *o, const char *path)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, " ", &save); k && o; k = strtok_r(NULL, " ", &save))
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, atoi(k)) : cJSON_GetObjectItemCaseSensitive(o, k);
    return o;
}

static inline const char *str(const cJSON *o, const char *path)
{
    return cJSON_GetStringValue(get(o, path));
}

#endif
