/* SPDX-License-Identifier: MIT */
/*
 * The kubernetes executor's per-build objects
 * (plugins/executor_kubernetes/kube_objects.c): the owner ConfigMap, the
 * Secret of the build's secretEnv values, the ownerReference and node put
 * into a Pod, Secret keys, the fill Pod (git, gitSecret, upload) and
 * the upload's ConfigMaps. What the API server makes of them is in
 * tests/integration/test_k8s_objects.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/common/base64.c"
#include "../../plugins/executor_kubernetes/kube_objects.c"

#include "json_path.h"

static void names_and_keys(void **state)
{
    char *n = kube_owner_name("0b1c");
    assert_string_equal(n, "kiln-build-0b1c");
    free(n);
    n = kube_secret_name("0b1c");
    assert_string_equal(n, "kiln-build-0b1c-env");
    free(n);
    char k[64];
    kube_secret_key("API_TOKEN", 1, k, sizeof k);
    assert_string_equal(k, "API_TOKEN");
    kube_secret_key("API_TOKEN", 2, k, sizeof k);
    assert_string_equal(k, "API_TOKEN.2");
    kube_secret_key("a b/c", 1, k, sizeof k);
    assert_string_equal(k, "a_b_c");
    kube_secret_key("..", 1, k, sizeof k);
    assert_string_equal(k, "x");
    kube_secret_key("", 3, k, sizeof k);
    assert_string_equal(k, "x.3");
}

static void owner_and_secret(void **state)
{
    char *body = kube_owner_body("kiln-build-b", "builds", "b", "h.1.2");
    cJSON *o = cJSON_Parse(body);
    free(body);
    assert_string_equal(str(o, "kind"), "ConfigMap");
    assert_string_equal(str(o, "metadata name"), "kiln-build-b");
    assert_string_equal(str(o, "metadata labels kiln.dev/build"), "b");
    assert_string_equal(str(o, "metadata labels kiln.dev/owner"), "h.1.2");
    cJSON_Delete(o);

    const char *keys[] = {"TOKEN", "TOKEN.2"}, *values[] = {"foobar", "f"};
    body = kube_secret_body("kiln-build-b-env", "builds", "b", "h.1.2", "kiln-build-b", "uid-1", keys, values, 2);
    assert_null(strstr(body, "foobar"));
    o = cJSON_Parse(body);
    free(body);
    assert_string_equal(str(o, "kind"), "Secret");
    assert_string_equal(str(o, "type"), "Opaque");
    assert_string_equal(str(o, "data TOKEN"), "Zm9vYmFy");
    assert_string_equal(str(o, "data TOKEN.2"), "Zg==");
    assert_string_equal(str(o, "metadata ownerReferences 0 kind"), "ConfigMap");
    assert_string_equal(str(o, "metadata ownerReferences 0 name"), "kiln-build-b");
    assert_string_equal(str(o, "metadata ownerReferences 0 uid"), "uid-1");
    assert_string_equal(str(o, "metadata labels kiln.dev/build"), "b");
    cJSON_Delete(o);
}

static void own_a_pod(void **state)
{
    char *body = strdup("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[]}}");
    body = kube_own(body, "kiln-build-b", "uid-1", NULL);
    cJSON *o = cJSON_Parse(body);
    assert_string_equal(str(o, "metadata ownerReferences 0 uid"), "uid-1");
    assert_null(get(o, "spec nodeName"));
    cJSON_Delete(o);
    body = kube_own(body, "kiln-build-b", "uid-2", "node-a"); /* replaced, not added */
    o = cJSON_Parse(body);
    free(body);
    assert_int_equal(cJSON_GetArraySize(get(o, "metadata ownerReferences")), 1);
    assert_string_equal(str(o, "metadata ownerReferences 0 uid"), "uid-2");
    assert_string_equal(str(o, "spec nodeName"), "node-a");
    cJSON_Delete(o);
    char *bad = strdup("[1]");
    assert_null(kube_own(bad, "o", "u", NULL));
    free(bad);
}

/* The fill Pod: the URL and commit reach the script as env, never as
 * shell text; the claim's workspace subPath at /workspace. */
static void fill_pod(void **state)
{
    kube_fill f = {.name = "kiln-build-b-fill", .ns = "n", .build_id = "b", .owner = "h.1.2", .claim = "kiln-b-ws",
                   .image = "alpine/git", .url = "https://x/$(reboot).git", .commit = "abc"};
    char *body = kube_fill_body(&f);
    cJSON *o = cJSON_Parse(body);
    assert_string_equal(str(o, "metadata labels kiln.dev/step"), "kiln-fill");
    assert_string_equal(str(o, "spec restartPolicy"), "Never");
    const cJSON *c = get(o, "spec containers 0");
    assert_string_equal(str(c, "image"), "alpine/git");
    assert_string_equal(str(c, "command 0"), "sh");
    assert_non_null(strstr(str(c, "command 2"), "git clone"));
    assert_non_null(strstr(str(c, "command 2"), "GIT_TERMINAL_PROMPT=0")); /* no prompt: git's own failure */
    assert_null(strstr(str(c, "command 2"), "reboot")); /* the script reads $KILN_GIT_URL */
    assert_string_equal(str(c, "env 0 name"), "KILN_GIT_URL");
    assert_string_equal(str(c, "env 0 value"), "https://x/$(reboot).git");
    assert_string_equal(str(c, "env 1 value"), "abc");
    assert_string_equal(str(c, "env 2 name"), "HOME"); /* no credentials without gitSecret */
    assert_null(get(c, "env 3"));
    assert_string_equal(str(c, "volumeMounts 0 mountPath"), "/workspace");
    assert_string_equal(str(c, "volumeMounts 0 subPath"), "workspace");
    assert_string_equal(str(o, "spec volumes 0 persistentVolumeClaim claimName"), "kiln-b-ws");
    cJSON_Delete(o);
    free(body);
}

/* gitSecret: the credentials come from the Secret by reference, never as
 * values; git asks a credential helper reading the env. */
static void fill_pod_git_secret(void **state)
{
    kube_fill f = {.name = "kiln-build-b-fill", .ns = "n", .build_id = "b", .owner = "h.1.2", .claim = "kiln-b-ws",
                   .image = "alpine/git", .url = "https://forge/x.git", .commit = "abc", .git_secret = "forge-creds"};
    char *body = kube_fill_body(&f);
    cJSON *o = cJSON_Parse(body);
    const cJSON *c = get(o, "spec containers 0");
    assert_string_equal(str(c, "env 2 name"), "KILN_GIT_USERNAME");
    assert_null(get(c, "env 2 value"));
    assert_string_equal(str(c, "env 2 valueFrom secretKeyRef name"), "forge-creds");
    assert_string_equal(str(c, "env 2 valueFrom secretKeyRef key"), "username");
    assert_string_equal(str(c, "env 3 name"), "KILN_GIT_PASSWORD");
    assert_null(get(c, "env 3 value"));
    assert_string_equal(str(c, "env 3 valueFrom secretKeyRef name"), "forge-creds");
    assert_string_equal(str(c, "env 3 valueFrom secretKeyRef key"), "password");
    assert_null(get(c, "env 3 valueFrom secretKeyRef optional")); /* a missing Secret stops the Pod */
    const char *script = str(c, "command 2");
    assert_non_null(strstr(script, "credential.helper"));
    assert_non_null(strstr(script, "ENVIRON[\"KILN_GIT_PASSWORD\"]")); /* the output is masked */
    assert_null(strstr(body, "forge-creds@"));
    cJSON_Delete(o);
    free(body);
}

/* An ssh remote: gitSecret is an ssh key (kubernetes.io/ssh-auth), by
 * reference; known_hosts optional. */
static void fill_pod_ssh_secret(void **state)
{
    assert_true(kube_git_url_is_ssh("ssh://git@forge:2222/x.git"));
    assert_true(kube_git_url_is_ssh("git+ssh://forge/x.git"));
    assert_true(kube_git_url_is_ssh("git@github.com:o/r.git"));
    assert_true(kube_git_url_is_ssh("forge:r.git"));
    assert_false(kube_git_url_is_ssh("https://forge/x.git"));
    assert_false(kube_git_url_is_ssh("http://u@forge:80/x.git"));
    assert_false(kube_git_url_is_ssh("git://forge/x.git"));
    assert_false(kube_git_url_is_ssh("/srv/x.git"));
    assert_false(kube_git_url_is_ssh("./a:b"));
    assert_false(kube_git_url_is_ssh(NULL));
    kube_fill f = {.name = "kiln-build-b-fill", .ns = "n", .build_id = "b", .owner = "h.1.2", .claim = "kiln-b-ws",
                   .image = "alpine/git", .url = "git@forge:o/r.git", .commit = "abc", .git_secret = "deploy-key"};
    char *body = kube_fill_body(&f);
    cJSON *o = cJSON_Parse(body);
    const cJSON *c = get(o, "spec containers 0");
    assert_string_equal(str(c, "env 2 name"), "KILN_GIT_SSH_KEY");
    assert_null(get(c, "env 2 value"));
    assert_string_equal(str(c, "env 2 valueFrom secretKeyRef name"), "deploy-key");
    assert_string_equal(str(c, "env 2 valueFrom secretKeyRef key"), "ssh-privatekey");
    assert_null(get(c, "env 2 valueFrom secretKeyRef optional"));
    assert_string_equal(str(c, "env 3 name"), "KILN_GIT_KNOWN_HOSTS");
    assert_string_equal(str(c, "env 3 valueFrom secretKeyRef key"), "known_hosts");
    assert_true(cJSON_IsTrue(get(c, "env 3 valueFrom secretKeyRef optional")));
    assert_string_equal(str(c, "env 4 name"), "HOME");
    assert_non_null(strstr(str(c, "command 2"), "GIT_SSH_COMMAND"));
    cJSON_Delete(o);
    free(body);
}

/* fill=upload: one projected volume with every part, in order, read-only
 * at /kiln/src; the claim's workspace at /workspace; no git. */
static void fill_pod_upload(void **state)
{
    const char *parts[] = {"kiln-build-b-src-0", "kiln-build-b-src-1", "kiln-build-b-src-2"};
    kube_fill f = {.name = "kiln-build-b-fill", .ns = "n", .build_id = "b", .owner = "h.1.2", .claim = "kiln-b-ws",
                   .image = "busybox", .chunks = parts, .n_chunks = 3, .from = "/w s", .bytes = 1500000};
    char *body = kube_fill_body(&f);
    cJSON *o = cJSON_Parse(body);
    const cJSON *c = get(o, "spec containers 0");
    assert_string_equal(str(c, "image"), "busybox");
    const char *script = str(c, "command 2");
    assert_non_null(strstr(script, "cat /kiln/src/* | tar -xzof - -C /workspace"));
    assert_null(strstr(script, "git"));
    assert_string_equal(str(c, "env 0 name"), "KILN_UPLOAD_FROM");
    assert_string_equal(str(c, "env 0 value"), "/w s");
    assert_string_equal(str(c, "env 1 value"), "1500000");
    assert_string_equal(str(c, "env 2 value"), "3");
    assert_string_equal(str(c, "volumeMounts 0 name"), "src");
    assert_string_equal(str(c, "volumeMounts 0 mountPath"), "/kiln/src");
    assert_true(cJSON_IsTrue(get(c, "volumeMounts 0 readOnly")));
    assert_string_equal(str(c, "volumeMounts 1 subPath"), "workspace");
    const cJSON *v = get(o, "spec volumes 0");
    assert_string_equal(str(v, "name"), "src");
    assert_int_equal(cJSON_GetArraySize(get(v, "projected sources")), 3);
    for (int i = 0; i < 3; i++) {
        char path[64], want[16];
        snprintf(path, sizeof path, "projected sources %d configMap name", i);
        assert_string_equal(str(v, path), parts[i]);
        snprintf(path, sizeof path, "projected sources %d configMap items 0 key", i);
        assert_string_equal(str(v, path), "part");
        snprintf(path, sizeof path, "projected sources %d configMap items 0 path", i);
        snprintf(want, sizeof want, "%06d", i); /* they sort in order */
        assert_string_equal(str(v, path), want);
    }
    assert_string_equal(str(o, "spec volumes 1 persistentVolumeClaim claimName"), "kiln-b-ws");
    cJSON_Delete(o);
    free(body);
}

/* A part: binaryData (base64 of the bytes, any byte), labels and owner. */
static void chunk_configmap(void **state)
{
    char *n = kube_chunk_name("0b1c", 12);
    assert_string_equal(n, "kiln-build-0b1c-src-12");
    const char bytes[] = {'\x1f', '\x8b', '\0', '\xff', 'a'};
    char *body = kube_chunk_body(n, "ns", "0b1c", "h.1.2", "kiln-build-0b1c", "uid-1", bytes, sizeof bytes);
    cJSON *o = cJSON_Parse(body);
    assert_string_equal(str(o, "kind"), "ConfigMap");
    assert_string_equal(str(o, "metadata name"), "kiln-build-0b1c-src-12");
    assert_string_equal(str(o, "metadata labels kiln.dev/build"), "0b1c");
    assert_string_equal(str(o, "metadata labels kiln.dev/owner"), "h.1.2");
    assert_string_equal(str(o, "metadata ownerReferences 0 kind"), "ConfigMap");
    assert_string_equal(str(o, "metadata ownerReferences 0 uid"), "uid-1");
    assert_string_equal(str(o, "binaryData part"), "H4sA/2E=");
    assert_null(get(o, "data"));
    cJSON_Delete(o);
    free(body);
    free(n);
    /* a full part fits a ConfigMap (1 MiB) */
    assert_true(KUBE_CHUNK_BYTES < 1024 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_keys),
        cmocka_unit_test(owner_and_secret),
        cmocka_unit_test(own_a_pod),
        cmocka_unit_test(fill_pod),
        cmocka_unit_test(fill_pod_git_secret),
        cmocka_unit_test(fill_pod_ssh_secret),
        cmocka_unit_test(fill_pod_upload),
        cmocka_unit_test(chunk_configmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
