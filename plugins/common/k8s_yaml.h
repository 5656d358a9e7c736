/* SPDX-License-Identifier: MIT */
/*
 * YAML documents -> cJSON, the way kubectl reads manifests (sigs.k8s.io/yaml
 * over go-yaml v2, YAML 1.1): plain scalars become null, booleans (true/false,
 * yes/no, on/off), integers and floats; quoted ones stay strings.
 */
#ifndef K8S_YAML_H
#define K8S_YAML_H

#include <cJSON.h>
#include <stddef.h>

/* Every non-empty document of TEXT, as a cJSON array; each document's first
 * line (1-based) goes into lines[i] when lines is not NULL (up to cap).
 * NULL on a syntax error, described in err as "LINE:COL: problem". */
cJSON *k8_yaml_docs(const char *text, size_t len, int *lines, size_t cap, char *err, size_t errcap);

/* Small helpers the plugin's files share. */
const char *k8_str(const cJSON *obj, const char *key); /* a string member, or NULL */

/* The whole file PATH read, or NULL (errno set). *len gets its length. */
char *k8_read_file(const char *path, size_t *len);

#endif /* K8S_YAML_H */
