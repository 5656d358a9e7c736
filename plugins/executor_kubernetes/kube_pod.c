/* SPDX-License-Identifier: MIT */
#include "kube_pod.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_string.h"
#include "kube_helper.h"

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void kube_label_value(const char *s, char *out, size_t cap)
{
    size_t max = cap - 1 < 63 ? cap - 1 : 63, k = 0;
    for (; s && *s && k < max; s++)
        out[k++] = label_char(*s) ? *s : '-';
    out[k] = '\0';
    size_t start = 0;
    while (out[start] && !alnum(out[start]))
        start++;
    memmove(out, out + start, k - start + 1);
    k -= start;
    while (k && !alnum(out[k - 1]))
        out[--k] = '\0';
    if (!k)
        snprintf(out, cap, "x");
}

static void add_mount(cJSON *mounts, const char *vol, const char *path, const char *sub)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", vol);
    cJSON_AddStringToObject(m, "mountPath", path);
    if (sub)
        cJSON_AddStringToObject(m, "subPath", sub);
    cJSON_AddItemToArray(mounts, m);
}

static void add_host_volume(cJSON *vols, const char *name, const char *path, const char *type)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", name);
    cJSON *h = cJSON_AddObjectToObject(v, "hostPath");
    cJSON_AddStringToObject(h, "path", path);
    cJSON_AddStringToObject(h, "type", type);
    cJSON_AddItemToArray(vols, v);
}

/* The Secret key holding env NAME's value, or NULL (not a secret). */
static const char *secret_key_of(const kube_build *b, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; b->secret && b->secret_keys && b->secret_keys[i]; i++)
        if (!strncmp(b->secret_keys[i], name, nl) && b->secret_keys[i][nl] == '=')
            return b->secret_keys[i] + nl + 1;
    return NULL;
}

static void add_secret_ref(cJSON *e, const char *secret, const char *key)
{
    cJSON *ref = cJSON_AddObjectToObject(cJSON_AddObjectToObject(e, "valueFrom"), "secretKeyRef");
    cJSON_AddStringToObject(ref, "name", secret);
    cJSON_AddStringToObject(ref, "key", key);
}

/* The value of NAME in a "K=V" list, or NULL. */
static const char *env_value(const char *const *env, const char *name)
{
    size_t nl = strlen(name);
    for (size_t k = 0; env && env[k]; k++)
        if (!strncmp(env[k], name, nl) && env[k][nl] == '=')
            return env[k] + nl + 1;
    return NULL;
}

/* The JSON text, with anything that is not UTF-8 replaced: a Pod's strings
 * must be valid UTF-8 for the API server. */
static char *print(cJSON *j)
{
    char *raw = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!raw)
        abort();
    char *out = kp_utf8_sanitize(raw, strlen(raw), NULL);
    free(raw);
    if (!out)
        abort();
    return out;
}

char *kube_pod_body(const kube_build *b, const kiln_exec_spec *s, const char *name)
{
    char step_label[64];
    kube_label_value(s->step_id, step_label, sizeof step_label);
    cJSON *pod = cJSON_CreateObject();
    cJSON_AddStringToObject(pod, "apiVersion", "v1");
    cJSON_AddStringToObject(pod, "kind", "Pod");
    cJSON *meta = cJSON_AddObjectToObject(pod, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", b->ns);
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "kiln");
    cJSON_AddStringToObject(labels, KUBE_LABEL_BUILD, b->build_id);
    cJSON_AddStringToObject(labels, KUBE_LABEL_STEP, step_label);
    cJSON_AddStringToObject(labels, KUBE_LABEL_OWNER, b->owner);
    /* A sub-build's step: kiln.dev/build stays the top build's (its owner
     * and sweep cover the sub-builds), and the step's own build (the host's
     * KILN_BUILD_ID) is said too, so that kubectl tells it from the top
     * build's step of the same id. */
    const char *own = env_value(s->env, "KILN_BUILD_ID");
    if (own && *own && strcmp(own, b->build_id)) {
        char sub[64];
        kube_label_value(own, sub, sizeof sub);
        cJSON_AddStringToObject(labels, KUBE_LABEL_SUB_BUILD, sub);
    }
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_AddStringToObject(ann, "kiln.dev/step-id", s->step_id); /* the id as written */

    cJSON *spec = cJSON_AddObjectToObject(pod, "spec");
    /* kiln's retry applies on every executor: none inside Kubernetes. */
    cJSON_AddStringToObject(spec, "restartPolicy", "Never");
    cJSON_AddNumberToObject(spec, "terminationGracePeriodSeconds", (double)((s->kill_grace_ms + 999) / 1000));
    if (b->service_account && *b->service_account)
        cJSON_AddStringToObject(spec, "serviceAccountName", b->service_account);
    else
        cJSON_AddBoolToObject(spec, "automountServiceAccountToken", false);

    cJSON *ctr = cJSON_CreateObject();
    cJSON_AddStringToObject(ctr, "name", "step");
    cJSON_AddStringToObject(ctr, "image", s->image);
    size_t i = 0;
    if (!s->image_entrypoint) {
        cJSON *cmd = cJSON_AddArrayToObject(ctr, "command");
        cJSON_AddItemToArray(cmd, cJSON_CreateString(s->argv[0]));
        i = 1;
    }
    cJSON *args = cJSON_AddArrayToObject(ctr, "args");
    for (; s->argv[i]; i++)
        cJSON_AddItemToArray(args, cJSON_CreateString(s->argv[i]));
    cJSON *env = cJSON_AddArrayToObject(ctr, "env");
    bool home = false;
    for (size_t k = 0; s->env && s->env[k]; k++) {
        const char *eq = strchr(s->env[k], '=');
        if (!eq || eq == s->env[k])
            continue;
        cJSON *e = cJSON_CreateObject();
        char *n = strndup(s->env[k], (size_t)(eq - s->env[k]));
        if (!n)
            abort();
        home |= !strcmp(n, "HOME");
        cJSON_AddStringToObject(e, "name", n);
        const char *key = secret_key_of(b, n);
        free(n);
        if (key)
            add_secret_ref(e, b->secret, key);
        else
            cJSON_AddStringToObject(e, "value", eq + 1);
        cJSON_AddItemToArray(env, e);
    }
    if (!home) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", "HOME");
        cJSON_AddStringToObject(e, "value", "/builder/home");
        cJSON_AddItemToArray(env, e);
    }
    /* dir: the workspace is /workspace in the Pod, as in Cloud Build. */
    size_t wl = strlen(s->workspace);
    char wd[4096];
    if (!strncmp(s->cwd, s->workspace, wl) && (s->cwd[wl] == '/' || !s->cwd[wl]))
        snprintf(wd, sizeof wd, "/workspace%s", s->cwd + wl);
    else
        snprintf(wd, sizeof wd, "/workspace");
    cJSON_AddStringToObject(ctr, "workingDir", wd);
    if (b->memory || b->cpu) {
        cJSON *res = cJSON_AddObjectToObject(ctr, "resources");
        cJSON *lim = cJSON_AddObjectToObject(res, "limits");
        cJSON *req = cJSON_AddObjectToObject(res, "requests");
        if (b->memory) {
            cJSON_AddStringToObject(lim, "memory", b->memory);
            cJSON_AddStringToObject(req, "memory", b->memory);
        }
        if (b->cpu) {
            cJSON_AddStringToObject(lim, "cpu", b->cpu);
            cJSON_AddStringToObject(req, "cpu", b->cpu);
        }
    }
    cJSON *mounts = cJSON_AddArrayToObject(ctr, "volumeMounts");
    cJSON *vols = cJSON_AddArrayToObject(spec, "volumes");
    char path[4096], vname[64], sub[128];
    if (b->workspace_mode == KW_PVC) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", "build");
        cJSON *pvc = cJSON_AddObjectToObject(v, "persistentVolumeClaim");
        cJSON_AddStringToObject(pvc, "claimName", b->claim);
        cJSON_AddItemToArray(vols, v);
        add_mount(mounts, "build", "/workspace", "workspace");
        add_mount(mounts, "build", "/builder/home", "home");
    } else {
        add_host_volume(vols, "workspace", s->workspace, "Directory");
        add_mount(mounts, "workspace", "/workspace", NULL);
        snprintf(path, sizeof path, "%s/home", b->host_dir);
        add_host_volume(vols, "home", path, "DirectoryOrCreate");
        add_mount(mounts, "home", "/builder/home", NULL);
        if (s->output_file) {
            /* $KILN_OUTPUT at its own path: kiln reads the file back. */
            add_host_volume(vols, "kiln-output", s->output_file, "FileOrCreate");
            add_mount(mounts, "kiln-output", s->output_file, NULL);
        }
    }
    for (size_t k = 0; s->volumes && s->volumes[k]; k++) {
        const char *eq = strchr(s->volumes[k], '=');
        if (!eq)
            continue;
        char label[48];
        snprintf(sub, sizeof sub, "%.*s", (int)(eq - s->volumes[k]), s->volumes[k]);
        kube_label_value(sub, label, sizeof label);
        snprintf(vname, sizeof vname, "vol-%zu", k);
        snprintf(sub, sizeof sub, "vol-%s", label);
        if (b->workspace_mode == KW_PVC) {
            add_mount(mounts, "build", eq + 1, sub);
        } else {
            snprintf(path, sizeof path, "%s/%s", b->host_dir, sub);
            add_host_volume(vols, vname, path, "DirectoryOrCreate");
            add_mount(mounts, vname, eq + 1, NULL);
        }
    }
    if (b->helper_image && kube_helper_applies(s))
        kube_helper_wrap(spec, ctr, b->helper_image, b->workspace_mode == KW_PVC && s->output_file);
    cJSON *ctrs = cJSON_AddArrayToObject(spec, "containers");
    cJSON_AddItemToArray(ctrs, ctr);
    return print(pod);
}

char *kube_claim_body(const kube_build *b, const char *storage, const char *storage_class, bool rwx)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "apiVersion", "v1");
    cJSON_AddStringToObject(c, "kind", "PersistentVolumeClaim");
    cJSON *meta = cJSON_AddObjectToObject(c, "metadata");
    cJSON_AddStringToObject(meta, "name", b->claim);
    cJSON_AddStringToObject(meta, "namespace", b->ns);
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "kiln");
    cJSON_AddStringToObject(labels, KUBE_LABEL_BUILD, b->build_id);
    cJSON_AddStringToObject(labels, KUBE_LABEL_OWNER, b->owner);
    cJSON *spec = cJSON_AddObjectToObject(c, "spec");
    cJSON *modes = cJSON_AddArrayToObject(spec, "accessModes");
    cJSON_AddItemToArray(modes, cJSON_CreateString(rwx ? "ReadWriteMany" : "ReadWriteOnce"));
    if (storage_class && *storage_class)
        cJSON_AddStringToObject(spec, "storageClassName", storage_class);
    cJSON *res = cJSON_AddObjectToObject(spec, "resources");
    cJSON *req = cJSON_AddObjectToObject(res, "requests");
    cJSON_AddStringToObject(req, "storage", storage && *storage ? storage : "1Gi");
    return print(c);
}
