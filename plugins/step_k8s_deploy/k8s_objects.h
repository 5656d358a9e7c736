/* SPDX-License-Identifier: MIT */
/*
 * The objects a k8s-deploy step applies: read from manifest files, changed
 * the way the step's options say (namespace, image, env-vars), ordered, and
 * given the REST path server-side apply uses.
 */
#ifndef K8S_OBJECTS_H
#define K8S_OBJECTS_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include <kiln/plugin.h>

typedef struct k8_obj {
    cJSON *json;            /* owned */
    char *file;             /* where it was read, for messages */
    int line;
    const char *api_version, *kind, *name; /* borrowed from json */
    char *ns;               /* NULL for cluster-scoped objects */
    char *plural;           /* "deployments", once known */
    bool namespaced;
    char *what;             /* "deployment.apps/web", as kubectl names it */
    char *path;             /* /apis/apps/v1/namespaces/x/deployments/web */
} k8_obj;

typedef struct k8_set {
    k8_obj *v;
    size_t n;
} k8_set;

/* Every object of PATHS (files, or directories of *.yaml, *.yml, *.json),
 * relative to DIR; `kind: List` documents are expanded. 0, or -1 with err
 * naming the file and line. */
int k8_load(const char *dir, const kiln_strv *paths, k8_set *out, char *err, size_t errcap);
void k8_set_free(k8_set *s);

/* Containers whose image has IMAGE's repository get IMAGE; returns how many. */
int k8_set_image(k8_set *s, const char *image);
/* Set (or replace) each variable in every container of every workload. */
void k8_set_env(k8_set *s, const char *const *keys, const char *const *values, size_t n);
/* Namespaces first, then CustomResourceDefinitions, then the rest in order. */
void k8_order(k8_set *s);

/* What kubectl knows of common kinds without asking the server: plural
 * and scope. 0 when found. */
int k8_builtin_kind(const char *api_version, const char *kind, const char **plural, bool *namespaced);

/* Plural and scope known: fill ns (NAMESPACE when the object has none),
 * what and path. -1 when the object names another namespace than the one
 * forced with FORCE_NS. */
int k8_place(k8_obj *o, const char *plural, bool namespaced, const char *namespace_,
             bool force_ns, char *err, size_t errcap);

/* The API group path of an apiVersion: "/api/v1" or "/apis/apps/v1". */
void k8_group_path(const char *api_version, char *out, size_t cap);

#endif /* K8S_OBJECTS_H */
