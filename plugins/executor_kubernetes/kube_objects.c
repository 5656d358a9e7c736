/* SPDX-License-Identifier: MIT */
#include "kube_objects.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/base64.h"
#include "../common/json_string.h"
#include "kube_pod.h"

static char *build_name(const char *build_id, const char *suffix)
{
    size_t n = strlen("kiln-build-") + strlen(build_id) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (!s)
        abort();
    snprintf(s, n, "kiln-build-%s%s", build_id, suffix);
    return s;
}

char *kube_owner_name(const char *build_id)
{
    return build_name(build_id, "");
}

char *kube_secret_name(const char *build_id)
{
    return build_name(build_id, "-env");
}

/* The text of j, which is freed; not-UTF-8 bytes replaced (the API server
 * wants valid UTF-8). */
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

static cJSON *meta_of(cJSON *obj, const char *name, const char *ns, const char *build_id, const char *owner)
{
    cJSON *meta = cJSON_AddObjectToObject(obj, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", ns);
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "kiln");
    cJSON_AddStringToObject(labels, KUBE_LABEL_BUILD, build_id);
    cJSON_AddStringToObject(labels, KUBE_LABEL_OWNER, owner);
    return meta;
}

static void add_owner_ref(cJSON *meta, const char *owner_name, const char *owner_uid)
{
    cJSON_DeleteItemFromObject(meta, "ownerReferences");
    cJSON *refs = cJSON_AddArrayToObject(meta, "ownerReferences");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "apiVersion", "v1");
    cJSON_AddStringToObject(r, "kind", KUBE_OWNER_KIND);
    cJSON_AddStringToObject(r, "name", owner_name);
    cJSON_AddStringToObject(r, "uid", owner_uid);
    cJSON_AddItemToArray(refs, r);
}

char *kube_owner_body(const char *name, const char *ns, const char *build_id, const char *owner)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "apiVersion", "v1");
    cJSON_AddStringToObject(c, "kind", KUBE_OWNER_KIND);
    cJSON *meta = meta_of(c, name, ns, build_id, owner);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"), "kiln.dev/what",
                            "the build's owner: deleting it removes the build's Pods, Secret and claim");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "data"), "build", build_id);
    return print(c);
}

char *kube_secret_body(const char *name, const char *ns, const char *build_id, const char *owner,
                       const char *owner_name, const char *owner_uid, const char *const *keys,
                       const char *const *values, size_t n)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "apiVersion", "v1");
    cJSON_AddStringToObject(s, "kind", "Secret");
    cJSON *meta = meta_of(s, name, ns, build_id, owner);
    if (owner_uid)
        add_owner_ref(meta, owner_name, owner_uid);
    cJSON_AddStringToObject(s, "type", "Opaque");
    cJSON *data = cJSON_AddObjectToObject(s, "data");
    for (size_t i = 0; i < n; i++) {
        char *b = kp_base64(values[i], strlen(values[i]), 0);
        cJSON_AddStringToObject(data, keys[i], b);
        free(b);
    }
    return print(s);
}

char *kube_own(char *body, const char *owner_name, const char *owner_uid, const char *node)
{
    cJSON *j = cJSON_Parse(body);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    if (!cJSON_IsObject(meta)) {
        cJSON_Delete(j);
        return NULL;
    }
    if (owner_uid)
        add_owner_ref(meta, owner_name, owner_uid);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    if (node && cJSON_IsObject(spec)) {
        /* nodeName, not nodeAffinity: the node is known, and a Pod bound by
         * name skips the scheduler (as Tekton's affinity assistant's Pods
         * end up on the assistant's node). */
        cJSON_DeleteItemFromObject(spec, "nodeName");
        cJSON_AddStringToObject(spec, "nodeName", node);
    }
    free(body);
    return print(j);
}

/* Clone into the (empty) mount, then the commit: from the clone, or fetched
 * by id when no branch has it (a server that allows it). Never a prompt:
 * without credentials git fails saying why. With gitSecret, git asks a
 * credential helper that reads the Secret's values from the env (nothing
 * on disk but the helper's text, nothing in the URL), and the output goes
 * through awk, which masks the password should git ever print it. */
static const char git_script[] =
    "export GIT_TERMINAL_PROMPT=0\n"
    "fill() {\n"
    "  git clone -q --template= --no-checkout \"$KILN_GIT_URL\" /workspace || return 1\n"
    "  cd /workspace || return 1\n"
    "  if ! git checkout -q --detach \"$KILN_GIT_COMMIT\" 2>/dev/null; then\n"
    "    git fetch -q origin \"$KILN_GIT_COMMIT\" || return 1\n"
    "    git checkout -q --detach \"$KILN_GIT_COMMIT\" || return 1\n"
    "  fi\n"
    "  echo \"kiln: filled /workspace from $KILN_GIT_URL at $(git rev-parse HEAD)\"\n"
    "}\n"
    "if [ -n \"${KILN_GIT_SSH_KEY:-}\" ]; then\n"
    "  umask 077\n"
    "  printf '%s\\n' \"$KILN_GIT_SSH_KEY\" >/tmp/kiln-ssh-key || exit 1\n"
    "  if [ -n \"${KILN_GIT_KNOWN_HOSTS:-}\" ]; then\n"
    "    printf '%s\\n' \"$KILN_GIT_KNOWN_HOSTS\" >/tmp/kiln-known-hosts || exit 1\n"
    "    check='-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/tmp/kiln-known-hosts'\n"
    "  else\n"
    "    echo 'kiln: the gitSecret has no known_hosts: the remote host key is not checked'\n"
    "    check='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
    "  fi\n"
    "  export GIT_SSH_COMMAND=\"ssh -i /tmp/kiln-ssh-key -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR $check\"\n"
    "  fill; exit $?\n"
    "fi\n"
    "if [ -z \"${KILN_GIT_PASSWORD:-}\" ]; then fill; exit $?; fi\n"
    "git config --global credential.helper "
    "'!f() { test \"$1\" = get || exit 0; echo \"username=$KILN_GIT_USERNAME\"; "
    "echo \"password=$KILN_GIT_PASSWORD\"; }; f' || exit 1\n"
    "{ fill; echo $? >/tmp/kiln-fill-rc; } 2>&1 | awk '{ p = ENVIRON[\"KILN_GIT_PASSWORD\"]; "
    "while ((i = index($0, p)) > 0) $0 = substr($0, 1, i - 1) \"***\" substr($0, i + length(p)); print }'\n"
    "exit \"$(cat /tmp/kiln-fill-rc 2>/dev/null || echo 1)\"\n";

/* The parts in order (their names sort), one stream through gzip and tar;
 * gzip's CRC and length catch a part missing or cut. -o: the files belong
 * to the Pod's user, not to uids of this machine. */
static const char upload_script[] =
    "set -e\n"
    "cat /kiln/src/* | tar -xzof - -C /workspace\n"
    "echo \"kiln: filled /workspace from the upload of $KILN_UPLOAD_FROM ($KILN_UPLOAD_BYTES bytes of gzip'd tar "
    "in $KILN_UPLOAD_PARTS ConfigMaps)\"\n";

static void add_env(cJSON *env, const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "value", value);
    cJSON_AddItemToArray(env, e);
}

static void add_secret_env(cJSON *env, const char *name, const char *secret, const char *key, bool optional)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON *ref = cJSON_AddObjectToObject(cJSON_AddObjectToObject(e, "valueFrom"), "secretKeyRef");
    cJSON_AddStringToObject(ref, "name", secret);
    cJSON_AddStringToObject(ref, "key", key);
    if (optional)
        cJSON_AddBoolToObject(ref, "optional", true);
    cJSON_AddItemToArray(env, e);
}

bool kube_git_url_is_ssh(const char *url)
{
    if (!url)
        return false;
    if (!strncmp(url, "ssh://", 6) || !strncmp(url, "git+ssh://", 10) || !strncmp(url, "ssh+git://", 10))
        return true;
    if (strstr(url, "://"))
        return false;
    /* scp-like user@host:path: a colon before any slash */
    size_t colon = strcspn(url, ":/");
    return colon > 0 && url[colon] == ':';
}

static void add_mount(cJSON *ctr, const char *name, const char *path, const char *sub, bool ro)
{
    cJSON *mounts = cJSON_GetObjectItem(ctr, "volumeMounts");
    if (!mounts)
        mounts = cJSON_AddArrayToObject(ctr, "volumeMounts");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "mountPath", path);
    if (sub)
        cJSON_AddStringToObject(m, "subPath", sub);
    if (ro)
        cJSON_AddBoolToObject(m, "readOnly", true);
    cJSON_AddItemToArray(mounts, m);
}

char *kube_fill_body(const kube_fill *f)
{
    cJSON *pod = cJSON_CreateObject();
    cJSON_AddStringToObject(pod, "apiVersion", "v1");
    cJSON_AddStringToObject(pod, "kind", "Pod");
    cJSON *meta = meta_of(pod, f->name, f->ns, f->build_id, f->owner);
    cJSON_AddStringToObject(cJSON_GetObjectItem(meta, "labels"), KUBE_LABEL_STEP, "kiln-fill");
    cJSON *spec = cJSON_AddObjectToObject(pod, "spec");
    cJSON_AddStringToObject(spec, "restartPolicy", "Never");
    cJSON_AddBoolToObject(spec, "automountServiceAccountToken", false);
    cJSON *ctr = cJSON_CreateObject();
    cJSON_AddStringToObject(ctr, "name", "fill");
    cJSON_AddStringToObject(ctr, "image", f->image);
    cJSON *cmd = cJSON_AddArrayToObject(ctr, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("sh"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString(f->url ? git_script : upload_script));
    cJSON *env = cJSON_AddArrayToObject(ctr, "env");
    cJSON *vols = cJSON_AddArrayToObject(spec, "volumes");
    if (f->url) {
        add_env(env, "KILN_GIT_URL", f->url);
        add_env(env, "KILN_GIT_COMMIT", f->commit ? f->commit : "");
        if (f->git_secret && kube_git_url_is_ssh(f->url)) {
            add_secret_env(env, "KILN_GIT_SSH_KEY", f->git_secret, "ssh-privatekey", false);
            add_secret_env(env, "KILN_GIT_KNOWN_HOSTS", f->git_secret, "known_hosts", true);
        } else if (f->git_secret) {
            add_secret_env(env, "KILN_GIT_USERNAME", f->git_secret, "username", false);
            add_secret_env(env, "KILN_GIT_PASSWORD", f->git_secret, "password", false);
        }
    } else {
        char n[32];
        add_env(env, "KILN_UPLOAD_FROM", f->from ? f->from : "");
        snprintf(n, sizeof n, "%zu", f->bytes);
        add_env(env, "KILN_UPLOAD_BYTES", n);
        snprintf(n, sizeof n, "%zu", f->n_chunks);
        add_env(env, "KILN_UPLOAD_PARTS", n);
        /* One projected volume: every part in one directory, named so that
         * they sort in order. */
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", "src");
        cJSON *sources = cJSON_AddArrayToObject(cJSON_AddObjectToObject(v, "projected"), "sources");
        for (size_t i = 0; i < f->n_chunks; i++) {
            cJSON *src = cJSON_CreateObject();
            cJSON *cm = cJSON_AddObjectToObject(src, "configMap");
            cJSON_AddStringToObject(cm, "name", f->chunks[i]);
            cJSON *item = cJSON_CreateObject();
            char path[32];
            snprintf(path, sizeof path, "%06zu", i);
            cJSON_AddStringToObject(item, "key", KUBE_CHUNK_KEY);
            cJSON_AddStringToObject(item, "path", path);
            cJSON_AddItemToArray(cJSON_AddArrayToObject(cm, "items"), item);
            cJSON_AddItemToArray(sources, src);
        }
        cJSON_AddItemToArray(vols, v);
        add_mount(ctr, "src", "/kiln/src", NULL, true);
    }
    add_env(env, "HOME", "/tmp");
    add_mount(ctr, "build", "/workspace", "workspace", false);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "containers"), ctr);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", "build");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(v, "persistentVolumeClaim"), "claimName", f->claim);
    cJSON_AddItemToArray(vols, v);
    return print(pod);
}

char *kube_chunk_name(const char *build_id, size_t i)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, "-src-%zu", i);
    return build_name(build_id, suffix);
}

char *kube_chunk_body(const char *name, const char *ns, const char *build_id, const char *owner,
                      const char *owner_name, const char *owner_uid, const void *data, size_t len)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "apiVersion", "v1");
    cJSON_AddStringToObject(c, "kind", "ConfigMap");
    cJSON *meta = meta_of(c, name, ns, build_id, owner);
    if (owner_uid)
        add_owner_ref(meta, owner_name, owner_uid);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"), "kiln.dev/what",
                            "a part of the workspace's gzip'd tar (fill=upload), deleted once unpacked");
    char *b = kp_base64(data, len, 0);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "binaryData"), KUBE_CHUNK_KEY, b);
    free(b);
    return print(c);
}

void kube_secret_key(const char *env_name, unsigned suffix, char *out, size_t cap)
{
    size_t max = cap > 201 ? 200 : cap - 1, k = 0;
    if (suffix > 1 && max > 12)
        max -= 12;
    for (const char *c = env_name; c && *c && k < max; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '_' || *c == '.';
        out[k++] = ok ? *c : '_';
    }
    out[k] = '\0';
    if (!k || !strcmp(out, ".") || !strcmp(out, ".."))
        snprintf(out, cap, "x");
    if (suffix > 1) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, ".%u", suffix);
    }
}

bool kube_start_failure(const char *reason)
{
    static const char *const bad[] = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                      "ErrImageNeverPull", "CreateContainerConfigError",
                                      "CreateContainerError", "RunContainerError", NULL};
    for (const char *const *b = bad; reason && *b; b++)
        if (!strcmp(reason, *b))
            return true;
    return false;
}
