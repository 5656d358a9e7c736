/* SPDX-License-Identifier: MIT */
/*
 * The kubernetes executor's objects (plugins/executor_kubernetes/kube_pod.c):
 * label values, the Pod of a step process in both workspace modes, the
 * build's claim. What the API server and kubelet make of them is in
 * tests/integration/test_k8s_executor.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/executor_kubernetes/kube_helper.c"
#include "../../plugins/executor_kubernetes/kube_pod.c"

static void label_values(void **state)
{
    char v[64];
    kube_label_value("build-and push", v, sizeof v);
    assert_string_equal(v, "build-and-push");
    kube_label_value("--x.y_", v, sizeof v);
    assert_string_equal(v, "x.y");
    kube_label_value("::", v, sizeof v);
    assert_string_equal(v, "x");
    kube_label_value("", v, sizeof v);
    assert_string_equal(v, "x");
    char long_id[200];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    long_id[62] = '-'; /* would end the cut value: dropped */
    kube_label_value(long_id, v, sizeof v);
    assert_int_equal(strlen(v), 62);
}

#include "json_path.h"

static void pod_hostpath(void **state)
{
    const char *argv[] = {"sh", "-c", "echo hi", NULL};
    const char *env[] = {"GREET=hello", "EMPTY=", "=bad", "KILN_BUILD_ID=b1", NULL};
    const char *vols[] = {"cache=/cache", NULL};
    kiln_exec_spec s = {.struct_size = sizeof s,
                        .build_id = "b1",
                        .step_id = "Build It!",
                        .image = "busybox",
                        .argv = argv,
                        .env = env,
                        .cwd = "/ws/sub",
                        .workspace = "/ws",
                        .output_file = "/tmp/out-1",
                        .volumes = vols,
                        .kill_grace_ms = 2500};
    kube_build b = {.build_id = "b1", .owner = "h.1.2", .ns = "builds", .memory = "64Mi",
                    .workspace_mode = KW_HOSTPATH, .host_dir = "/tmp/kiln-k8s-b1"};
    char *body = kube_pod_body(&b, &s, "kiln-b1-build-it-1");
    cJSON *p = cJSON_Parse(body);
    free(body);
    assert_non_null(p);
    assert_string_equal(str(p, "metadata name"), "kiln-b1-build-it-1");
    assert_string_equal(str(p, "metadata labels kiln.dev/step"), "Build-It");
    assert_string_equal(str(p, "metadata annotations kiln.dev/step-id"), "Build It!");
    assert_null(get(p, "metadata labels kiln.dev/sub-build")); /* the top build's own step */
    assert_string_equal(str(p, "spec restartPolicy"), "Never");
    assert_int_equal(get(p, "spec terminationGracePeriodSeconds")->valueint, 3); /* rounded up */
    assert_true(cJSON_IsFalse(get(p, "spec automountServiceAccountToken")));
    const cJSON *c = get(p, "spec containers 0");
    assert_string_equal(str(c, "command 0"), "sh");
    assert_string_equal(str(c, "args 0"), "-c");
    assert_string_equal(str(c, "args 1"), "echo hi");
    assert_string_equal(str(c, "workingDir"), "/workspace/sub");
    assert_string_equal(str(c, "resources limits memory"), "64Mi");
    assert_string_equal(str(c, "env 0 name"), "GREET");
    assert_string_equal(str(c, "env 1 value"), "");
    assert_string_equal(str(c, "env 2 name"), "KILN_BUILD_ID"); /* "=bad" skipped */
    assert_string_equal(str(c, "env 3 name"), "HOME");          /* added */
    assert_string_equal(str(c, "env 3 value"), "/builder/home");
    /* workspace, home, $KILN_OUTPUT, the volume */
    assert_string_equal(str(p, "spec volumes 0 hostPath path"), "/ws");
    assert_string_equal(str(p, "spec volumes 1 hostPath path"), "/tmp/kiln-k8s-b1/home");
    assert_string_equal(str(p, "spec volumes 2 hostPath path"), "/tmp/out-1");
    assert_string_equal(str(p, "spec volumes 2 hostPath type"), "FileOrCreate");
    assert_string_equal(str(p, "spec volumes 3 hostPath path"), "/tmp/kiln-k8s-b1/vol-cache");
    assert_string_equal(str(c, "volumeMounts 3 mountPath"), "/cache");
    cJSON_Delete(p);
}

static void pod_pvc_image_entrypoint(void **state)
{
    const char *argv[] = {"build", "--flag", NULL};
    const char *env[] = {"KILN_BUILD_ID=sub-9", NULL}; /* a sub-build's step */
    kiln_exec_spec s = {.struct_size = sizeof s,
                        .build_id = "b2",
                        .step_id = "s",
                        .image = "gcr.io/x/y",
                        .argv = argv,
                        .env = env,
                        .image_entrypoint = true,
                        .cwd = "/elsewhere",
                        .workspace = "/ws",
                        .kill_grace_ms = 0};
    kube_build b = {.build_id = "b2", .owner = "h.1.2", .ns = "n", .service_account = "kiln",
                    .workspace_mode = KW_PVC, .claim = "kiln-b2-ws"};
    char *body = kube_pod_body(&b, &s, "kiln-b2-s-1");
    cJSON *p = cJSON_Parse(body);
    free(body);
    const cJSON *c = get(p, "spec containers 0");
    assert_null(get(c, "command")); /* the image's own entrypoint */
    assert_string_equal(str(p, "metadata labels kiln.dev/build"), "b2");
    assert_string_equal(str(p, "metadata labels kiln.dev/sub-build"), "sub-9");
    assert_string_equal(str(c, "args 0"), "build");
    assert_string_equal(str(c, "workingDir"), "/workspace");
    assert_string_equal(str(p, "spec serviceAccountName"), "kiln");
    assert_string_equal(str(p, "spec volumes 0 persistentVolumeClaim claimName"), "kiln-b2-ws");
    assert_string_equal(str(c, "volumeMounts 0 subPath"), "workspace");
    assert_string_equal(str(c, "volumeMounts 1 subPath"), "home");
    assert_null(get(c, "resources"));
    cJSON_Delete(p);

    char *claim = kube_claim_body(&b, NULL, "fast", false);
    cJSON *cl = cJSON_Parse(claim);
    free(claim);
    assert_string_equal(str(cl, "spec accessModes 0"), "ReadWriteOnce");
    assert_string_equal(str(cl, "spec resources requests storage"), "1Gi");
    assert_string_equal(str(cl, "spec storageClassName"), "fast");
    assert_string_equal(str(cl, "metadata labels kiln.dev/owner"), "h.1.2");
    cJSON_Delete(cl);
}

/* secretEnv: the Pod names the Secret's key, never the value; other env
 * stays plain. */
static void pod_secret_refs(void **state)
{
    const char *argv[] = {"sh", NULL};
    const char *env[] = {"PLAIN=1", "TOKEN=s3cr3t", "OTHER=x", NULL};
    kiln_exec_spec s = {.struct_size = sizeof s, .build_id = "b3", .step_id = "s", .image = "i",
                        .argv = argv, .env = env, .cwd = "/ws", .workspace = "/ws"};
    const char *keys[] = {"TOKEN=TOKEN.2", NULL};
    kube_build b = {.build_id = "b3", .owner = "h.1.2", .ns = "n", .workspace_mode = KW_HOSTPATH,
                    .host_dir = "/tmp/d", .secret = "kiln-build-b3-env", .secret_keys = keys};
    char *body = kube_pod_body(&b, &s, "kiln-b3-s-1");
    assert_null(strstr(body, "s3cr3t"));
    cJSON *p = cJSON_Parse(body);
    free(body);
    const cJSON *c = get(p, "spec containers 0");
    assert_string_equal(str(c, "env 0 value"), "1");
    assert_string_equal(str(c, "env 1 name"), "TOKEN");
    assert_null(get(c, "env 1 value"));
    assert_string_equal(str(c, "env 1 valueFrom secretKeyRef name"), "kiln-build-b3-env");
    assert_string_equal(str(c, "env 1 valueFrom secretKeyRef key"), "TOKEN.2");
    assert_string_equal(str(c, "env 2 value"), "x");
    assert_null(get(c, "env 2 valueFrom"));
    cJSON_Delete(p);
    /* No Secret named: the keys are ignored (and the value is plain). */
    b.secret = NULL;
    body = kube_pod_body(&b, &s, "kiln-b3-s-2");
    assert_non_null(strstr(body, "s3cr3t"));
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(label_values),
        cmocka_unit_test(pod_hostpath),
        cmocka_unit_test(pod_pvc_image_entrypoint),
        cmocka_unit_test(pod_secret_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
