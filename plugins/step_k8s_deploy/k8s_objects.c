/* SPDX-License-Identifier: MIT */
#include "k8s_objects.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/container_env.h"
#include "../common/k8s_yaml.h"
#include "../common/xalloc.h"

void k8_set_free(k8_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        k8_obj *o = &s->v[i];
        cJSON_Delete(o->json);
        free(o->file);
        free(o->ns);
        free(o->plural);
        free(o->what);
        free(o->path);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int add_object(k8_set *s, cJSON *j, const char *file, int line, char *err, size_t errcap)
{
    if (!cJSON_IsObject(j)) {
        snprintf(err, errcap, "%s:%d: expected a Kubernetes object (a mapping with apiVersion, kind "
                              "and metadata), got %s",
                 file, line, cJSON_IsArray(j) ? "a list" : "a scalar");
        cJSON_Delete(j);
        return -1;
    }
    const char *av = k8_str(j, "apiVersion"), *kind = k8_str(j, "kind");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const char *name = cJSON_IsObject(meta) ? k8_str(meta, "name") : NULL;
    const char *missing = !av || !*av ? "apiVersion" : !kind || !*kind ? "kind" : !name || !*name
                                                                                   ? "metadata.name"
                                                                                   : NULL;
    if (missing) {
        snprintf(err, errcap, "%s:%d: the object has no %s", file, line, missing);
        cJSON_Delete(j);
        return -1;
    }
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.' ||
              *p == ':')) {
            snprintf(err, errcap,
                     "%s:%d: %s name \"%s\" is not valid: lowercase letters, digits, '-' and '.' only",
                     file, line, kind, name);
            cJSON_Delete(j);
            return -1;
        }
    k8_obj *v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        abort();
    s->v = v;
    k8_obj *o = &s->v[s->n++];
    memset(o, 0, sizeof *o);
    o->json = j;
    o->file = kp_xstrdup0(file);
    o->line = line;
    o->api_version = av;
    o->kind = kind;
    o->name = name;
    return 0;
}

static int load_file(k8_set *s, const char *path, const char *shown, char *err, size_t errcap)
{
    size_t len;
    char *text = k8_read_file(path, &len);
    if (!text) {
        snprintf(err, errcap, "cannot read the manifest %s: %s", shown, strerror(errno));
        return -1;
    }
    enum { MAXDOCS = 4096 };
    int *lines = calloc(MAXDOCS, sizeof *lines);
    char perr[400];
    cJSON *docs = lines ? k8_yaml_docs(text, len, lines, MAXDOCS, perr, sizeof perr) : NULL;
    free(text);
    if (!docs) {
        snprintf(err, errcap, "%s:%s", shown, lines ? perr : " out of memory");
        free(lines);
        return -1;
    }
    int rc = 0, i = 0;
    while (rc == 0 && cJSON_GetArraySize(docs) > 0) {
        cJSON *d = cJSON_DetachItemFromArray(docs, 0);
        int line = i < MAXDOCS ? lines[i] : 0;
        i++;
        const char *kind = cJSON_IsObject(d) ? k8_str(d, "kind") : NULL;
        cJSON *items = cJSON_GetObjectItemCaseSensitive(d, "items");
        if (kind && !strcmp(kind, "List") && cJSON_IsArray(items)) {
            while (rc == 0 && cJSON_GetArraySize(items) > 0)
                rc = add_object(s, cJSON_DetachItemFromArray(items, 0), shown, line, err, errcap);
            cJSON_Delete(d);
        } else {
            rc = add_object(s, d, shown, line, err, errcap);
        }
    }
    cJSON_Delete(docs);
    free(lines);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool manifest_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")) ||
                           (l > 5 && !strcmp(n + l - 5, ".json")));
}

int k8_load(const char *dir, const kiln_strv *paths, k8_set *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (!paths || paths->n == 0) {
        snprintf(err, errcap, "no manifests: give manifests: (files or directories)");
        return -1;
    }
    for (size_t i = 0; i < paths->n; i++) {
        const char *p = paths->v[i];
        char *full = p[0] == '/' ? kp_xstrdup0(p) : kp_xasprintf("%s/%s", dir, p);
        struct stat st;
        int rc = 0;
        if (stat(full, &st) != 0) {
            snprintf(err, errcap, "the manifest %s does not exist (looked at %s)", p, full);
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(full);
            char **names = NULL;
            size_t n = 0;
            struct dirent *e;
            while (d && (e = readdir(d)))
                if (manifest_name(e->d_name)) {
                    names = realloc(names, (n + 1) * sizeof *names);
                    if (!names)
                        abort();
                    names[n++] = kp_xstrdup0(e->d_name);
                }
            if (d)
                closedir(d);
            qsort(names, n, sizeof *names, by_name);
            if (n == 0) {
                snprintf(err, errcap, "the directory %s has no *.yaml, *.yml or *.json manifests", p);
                rc = -1;
            }
            for (size_t k = 0; k < n; k++) {
                char *f = kp_xasprintf("%s/%s", full, names[k]);
                char *shown = kp_xasprintf("%s/%s", p, names[k]);
                if (rc == 0)
                    rc = load_file(out, f, shown, err, errcap);
                free(f);
                free(shown);
                free(names[k]);
            }
            free(names);
        } else {
            rc = load_file(out, full, p, err, errcap);
        }
        free(full);
        if (rc) {
            k8_set_free(out);
            return -1;
        }
    }
    if (out->n == 0) {
        snprintf(err, errcap, "the manifests hold no objects");
        return -1;
    }
    return 0;
}

/* ---- changes ------------------------------------------------------------ */

/* The pod spec of a workload, or NULL. */
static cJSON *pod_spec(cJSON *obj, const char *kind)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (!strcmp(kind, "Pod"))
        return spec;
    if (!strcmp(kind, "CronJob"))
        spec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "jobTemplate"), "spec");
    static const char *const workloads[] = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                                            "Job", "CronJob", "ReplicationController", NULL};
    for (const char *const *w = workloads; *w; w++)
        if (!strcmp(kind, *w))
            return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "template"),
                                                    "spec");
    return NULL;
}

/* Repository of an image reference: without :tag (after the last '/') or @digest. */
static size_t repo_len(const char *image)
{
    size_t n = strcspn(image, "@");
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(image, ':');
    if (colon && (!slash || colon > slash) && (size_t)(colon - image) < n)
        n = (size_t)(colon - image);
    return n;
}

typedef void (*container_fn)(cJSON *container, void *data);

static void each_container(k8_set *s, container_fn fn, void *data)
{
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t i = 0; i < s->n; i++) {
        cJSON *ps = pod_spec(s->v[i].json, s->v[i].kind);
        for (int l = 0; ps && l < 2; l++) {
            cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ps, lists[l]))
                if (cJSON_IsObject(c))
                    fn(c, data);
        }
    }
}

struct image_ctx {
    const char *image;
    int count;
};

static void set_image(cJSON *c, void *data)
{
    struct image_ctx *x = data;
    const char *cur = k8_str(c, "image");
    size_t n = repo_len(x->image);
    if (cur && repo_len(cur) == n && !strncmp(cur, x->image, n)) {
        cJSON_ReplaceItemInObjectCaseSensitive(c, "image", cJSON_CreateString(x->image));
        x->count++;
    }
}

int k8_set_image(k8_set *s, const char *image)
{
    struct image_ctx x = {image, 0};
    each_container(s, set_image, &x);
    return x.count;
}

struct env_ctx {
    const char *const *keys, *const *values;
    size_t n;
};

static void set_env(cJSON *c, void *data)
{
    struct env_ctx *x = data;
    kp_container_set_env(c, x->keys, x->values, x->n);
}

void k8_set_env(k8_set *s, const char *const *keys, const char *const *values, size_t n)
{
    struct env_ctx x = {keys, values, n};
    if (n)
        each_container(s, set_env, &x);
}

static int rank(const k8_obj *o)
{
    return !strcmp(o->kind, "Namespace") ? 0 : !strcmp(o->kind, "CustomResourceDefinition") ? 1 : 2;
}

void k8_order(k8_set *s)
{
    /* A stable insertion sort: manifests are short. */
    for (size_t i = 1; i < s->n; i++) {
        k8_obj t = s->v[i];
        size_t j = i;
        while (j > 0 && rank(&s->v[j - 1]) > rank(&t)) {
            s->v[j] = s->v[j - 1];
            j--;
        }
        s->v[j] = t;
    }
}

/* ---- REST paths ----------------------------------------------------------- */

static const struct {
    const char *group, *kind, *plural;
    bool namespaced;
} builtin_kinds[] = {
    {"", "Namespace", "namespaces", false},
    {"", "Service", "services", true},
    {"", "ConfigMap", "configmaps", true},
    {"", "Secret", "secrets", true},
    {"", "ServiceAccount", "serviceaccounts", true},
    {"", "Pod", "pods", true},
    {"", "PersistentVolumeClaim", "persistentvolumeclaims", true},
    {"", "PersistentVolume", "persistentvolumes", false},
    {"apps", "Deployment", "deployments", true},
    {"apps", "StatefulSet", "statefulsets", true},
    {"apps", "DaemonSet", "daemonsets", true},
    {"apps", "ReplicaSet", "replicasets", true},
    {"batch", "Job", "jobs", true},
    {"batch", "CronJob", "cronjobs", true},
    {"networking.k8s.io", "Ingress", "ingresses", true},
    {"networking.k8s.io", "NetworkPolicy", "networkpolicies", true},
    {"autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true},
    {"policy", "PodDisruptionBudget", "poddisruptionbudgets", true},
    {"rbac.authorization.k8s.io", "Role", "roles", true},
    {"rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true},
    {"rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false},
    {"rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false},
    {"apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false},
    {"storage.k8s.io", "StorageClass", "storageclasses", false},
};

static void group_of(const char *api_version, char *out, size_t cap)
{
    const char *slash = strchr(api_version, '/');
    size_t n = slash ? (size_t)(slash - api_version) : 0;
    snprintf(out, cap, "%.*s", (int)n, api_version);
}

int k8_builtin_kind(const char *api_version, const char *kind, const char **plural, bool *namespaced)
{
    char group[128];
    group_of(api_version, group, sizeof group);
    for (size_t i = 0; i < sizeof builtin_kinds / sizeof *builtin_kinds; i++)
        if (!strcmp(builtin_kinds[i].group, group) && !strcmp(builtin_kinds[i].kind, kind)) {
            *plural = builtin_kinds[i].plural;
            *namespaced = builtin_kinds[i].namespaced;
            return 0;
        }
    return -1;
}

void k8_group_path(const char *api_version, char *out, size_t cap)
{
    if (!strchr(api_version, '/'))
        snprintf(out, cap, "/api/%s", api_version);
    else
        snprintf(out, cap, "/apis/%s", api_version);
}

int k8_place(k8_obj *o, const char *plural, bool namespaced, const char *namespace_, bool force_ns,
             char *err, size_t errcap)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
    const char *own = k8_str(meta, "namespace");
    free(o->plural);
    free(o->ns);
    free(o->what);
    free(o->path);
    o->plural = kp_xstrdup0(plural);
    o->namespaced = namespaced;
    o->ns = NULL;
    if (namespaced) {
        if (own && *own && force_ns && strcmp(own, namespace_) != 0) {
            snprintf(err, errcap,
                     "%s:%d: the namespace from the provided object \"%s\" does not match the "
                     "namespace \"%s\" given to the step",
                     o->file, o->line, own, namespace_);
            return -1;
        }
        o->ns = kp_xstrdup0(own && *own ? own : namespace_);
        if (!own || !*own)
            cJSON_AddStringToObject(meta, "namespace", o->ns);
    }
    char group[128], gp[200];
    group_of(o->api_version, group, sizeof group);
    k8_group_path(o->api_version, gp, sizeof gp);
    char *lower = kp_xstrdup0(o->kind);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    o->what = *group ? kp_xasprintf("%s.%s/%s", lower, group, o->name) : kp_xasprintf("%s/%s", lower, o->name);
    free(lower);
    o->path = namespaced ? kp_xasprintf("%s/namespaces/%s/%s/%s", gp, o->ns, plural, o->name)
                         : kp_xasprintf("%s/%s/%s", gp, plural, o->name);
    return 0;
}
