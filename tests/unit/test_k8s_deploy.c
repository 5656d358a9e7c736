/* SPDX-License-Identifier: MIT */
/*
 * k8s-deploy's pieces that need no server: YAML read as kubectl reads it,
 * manifests loaded and changed (image, env-vars, namespace, order), REST
 * paths, and kubeconfig contexts. The API side is in
 * tests/integration/test_k8s_deploy.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/common/container_env.c"
#include "../../plugins/common/base64.c"
#include "../../plugins/common/k8s_conn.c"
#include "../../plugins/common/k8s_exec_cred.c"
#include "../../plugins/common/run_capture.c"
#include "../../plugins/step_k8s_deploy/k8s_objects.c"
#include "../../plugins/common/k8s_yaml.c"
#include "../../plugins/common/xalloc.c"

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "%s/kiln-k8s-unit-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_yaml_scalars_as_kubectl(void **state)
{
    const char *y = "a: yes\nb: 'yes'\nc: 0755\nd: 80\ne: 1.5\nf: ~\ng: \"80\"\nh: Off\ni: v1.2\n"
                    "j: 1e3\nk: -7\nl: 0x1F\n";
    char err[200];
    int lines[4];
    cJSON *docs = k8_yaml_docs(y, strlen(y), lines, 4, err, sizeof err);
    assert_non_null(docs);
    cJSON *d = cJSON_GetArrayItem(docs, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "a")));
    assert_string_equal(cJSON_GetObjectItem(d, "b")->valuestring, "yes");
    assert_int_equal((int)cJSON_GetObjectItem(d, "c")->valuedouble, 0755);
    assert_int_equal((int)cJSON_GetObjectItem(d, "d")->valuedouble, 80);
    assert_true(cJSON_GetObjectItem(d, "e")->valuedouble == 1.5);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "f")));
    assert_string_equal(cJSON_GetObjectItem(d, "g")->valuestring, "80");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(d, "h")));
    assert_string_equal(cJSON_GetObjectItem(d, "i")->valuestring, "v1.2");
    assert_true(cJSON_GetObjectItem(d, "j")->valuedouble == 1000);
    assert_int_equal((int)cJSON_GetObjectItem(d, "k")->valuedouble, -7);
    assert_int_equal((int)cJSON_GetObjectItem(d, "l")->valuedouble, 31);
    cJSON_Delete(docs);
}

static void test_yaml_documents_and_errors(void **state)
{
    const char *y = "---\n---\nkind: A\n---\n# only a comment\n---\nkind: B\n";
    char err[200];
    int lines[4] = {0};
    cJSON *docs = k8_yaml_docs(y, strlen(y), lines, 4, err, sizeof err);
    assert_non_null(docs);
    assert_int_equal(cJSON_GetArraySize(docs), 2); /* empty documents are skipped */
    assert_int_equal(lines[0], 3);
    assert_int_equal(lines[1], 7);
    cJSON_Delete(docs);
    const char *bad = "a: [1, 2\nb: 3\n";
    assert_null(k8_yaml_docs(bad, strlen(bad), NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "2:")); /* LINE:COL */
}

static const char *deployment =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
    "      initContainers: [{name: init, image: 'localhost:5000/tools:1'}]\n"
    "      containers:\n      - {name: web, image: 'localhost:5000/web:1', env: [{name: A, value: old}]}\n"
    "      - {name: side, image: 'busybox@sha256:abc'}\n";

static void test_load_change_order_place(void **state)
{
    char sub[400];
    snprintf(sub, sizeof sub, "%s/k8s", dir);
    mkdir(sub, 0755);
    write_file("k8s/b-deploy.yaml", deployment);
    write_file("k8s/a-svc.yml",
               "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: web}}\n"
               "- {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg, namespace: other}}\n");
    write_file("k8s/c-ns.json", "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"x\"}}");
    write_file("k8s/notes.txt", "not a manifest");
    const char *paths[] = {"k8s"};
    kiln_strv pv = {1, paths};
    k8_set s;
    char err[600];
    assert_int_equal(k8_load(dir, &pv, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 4); /* List expanded, .txt ignored, files in name order */
    assert_string_equal(s.v[0].kind, "Service");
    assert_string_equal(s.v[0].file, "k8s/a-svc.yml");

    /* Same repository (registry with a port), tag replaced; others untouched. */
    assert_int_equal(k8_set_image(&s, "localhost:5000/web:2"), 1);
    const char *keys[] = {"A", "B"}, *values[] = {"new", "b"};
    k8_set_env(&s, keys, values, 2);
    k8_order(&s);
    assert_string_equal(s.v[0].kind, "Namespace"); /* namespaces first, the rest in order */
    assert_string_equal(s.v[1].kind, "Service");
    assert_string_equal(s.v[3].kind, "Deployment");
    char *text = cJSON_PrintUnformatted(s.v[3].json);
    assert_non_null(strstr(text, "\"image\":\"localhost:5000/web:2\""));
    assert_non_null(strstr(text, "\"image\":\"localhost:5000/tools:1\""));
    assert_non_null(strstr(text, "\"env\":[{\"name\":\"A\",\"value\":\"new\"},{\"name\":\"B\",\"value\":\"b\"}]"));
    assert_non_null(strstr(text, "\"image\":\"busybox@sha256:abc\""));
    cJSON_free(text);

    const char *plural;
    bool namespaced;
    assert_int_equal(k8_builtin_kind("apps/v1", "Deployment", &plural, &namespaced), 0);
    assert_int_equal(k8_place(&s.v[3], plural, namespaced, "prod", true, err, sizeof err), 0);
    assert_string_equal(s.v[3].path, "/apis/apps/v1/namespaces/prod/deployments/web");
    assert_string_equal(s.v[3].what, "deployment.apps/web");
    assert_int_equal(k8_builtin_kind("v1", "Namespace", &plural, &namespaced), 0);
    assert_int_equal(k8_place(&s.v[0], plural, namespaced, "prod", true, err, sizeof err), 0);
    assert_string_equal(s.v[0].path, "/api/v1/namespaces/x");
    /* The ConfigMap names namespace "other": refused when one is forced. */
    assert_int_equal(k8_builtin_kind("v1", "ConfigMap", &plural, &namespaced), 0);
    assert_int_equal(k8_place(&s.v[2], plural, namespaced, "prod", true, err, sizeof err), -1);
    assert_non_null(strstr(err, "k8s/a-svc.yml:1: the namespace from the provided object \"other\" does not match"));
    assert_int_equal(k8_place(&s.v[2], plural, namespaced, "prod", false, err, sizeof err), 0);
    assert_string_equal(s.v[2].path, "/api/v1/namespaces/other/configmaps/cfg");
    k8_set_free(&s);
}

static void test_load_errors(void **state)
{
    write_file("noname.yaml", "apiVersion: v1\nkind: Service\nmetadata: {}\n---\n");
    write_file("badname.yaml", "---\napiVersion: v1\nkind: Service\nmetadata: {name: Web_1}\n");
    write_file("empty.yaml", "# nothing\n");
    char err[600];
    k8_set s;
    const char *p1[] = {"noname.yaml"};
    kiln_strv v1 = {1, p1};
    assert_int_equal(k8_load(dir, &v1, &s, err, sizeof err), -1);
    assert_string_equal(err, "noname.yaml:1: the object has no metadata.name");
    const char *p2[] = {"badname.yaml"};
    kiln_strv v2 = {1, p2};
    assert_int_equal(k8_load(dir, &v2, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "badname.yaml:2: Service name \"Web_1\" is not valid"));
    const char *p3[] = {"missing.yaml"};
    kiln_strv v3 = {1, p3};
    assert_int_equal(k8_load(dir, &v3, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "the manifest missing.yaml does not exist"));
    const char *p4[] = {"empty.yaml"};
    kiln_strv v4 = {1, p4};
    assert_int_equal(k8_load(dir, &v4, &s, err, sizeof err), -1);
    assert_string_equal(err, "the manifests hold no objects");
}

static void test_kubeconfig(void **state)
{
    write_file("token", "tok-from-file\n");
    write_file("kubeconfig",
               "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
               "clusters:\n- name: c1\n  cluster: {server: 'https://10.0.0.1/', certificate-authority-data: "
               "'LS0tLS1CRUdJTg=='}\n"
               "- name: c2\n  cluster: {server: 'http://127.0.0.1:8080', certificate-authority: ca.pem}\n"
               "contexts:\n- name: dev\n  context: {cluster: c2, user: u2, namespace: team}\n"
               "- name: gke_proj_europe-west1-b_api\n  context: {cluster: c1, user: u1}\n"
               "- name: gke_proj_europe-west1-b_exec\n  context: {cluster: c1, user: u3}\n"
               "users:\n- name: u1\n  user: {token: tok1}\n- name: u2\n  user: {tokenFile: token}\n"
               "- name: u3\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: "
               "gke-gcloud-auth-plugin-absent, installHint: 'Install gke-gcloud-auth-plugin: gcloud components "
               "install gke-gcloud-auth-plugin'}}\n");
    char kc[400], err[1200];
    snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
    k8_conn c;
    k8_conn_opts o = {.kubeconfig = kc};
    assert_int_equal(k8_conn_resolve(&o, &c, err, sizeof err), 0);
    assert_string_equal(c.server, "http://127.0.0.1:8080");
    assert_string_equal(c.token, "tok-from-file");
    assert_string_equal(c.namespace_, "team");
    assert_non_null(strstr(c.ca_file, "/ca.pem"));
    assert_non_null(strstr(c.source, "context dev"));
    k8_conn_free(&c);

    k8_conn_opts g = {.kubeconfig = kc, .cluster = "api", .location = "europe-west1-b", .project = "proj"};
    assert_int_equal(k8_conn_resolve(&g, &c, err, sizeof err), 0);
    assert_string_equal(c.server, "https://10.0.0.1"); /* trailing '/' dropped */
    assert_string_equal(c.token, "tok1");
    assert_string_equal(c.ca_pem, "-----BEGIN");
    k8_conn_free(&c);

    g.cluster = "nope";
    assert_int_equal(k8_conn_resolve(&g, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "cluster nope: "));
    assert_non_null(strstr(err, "has no context named gke_proj_europe-west1-b_nope or nope (contexts: dev, "
                                "gke_proj_europe-west1-b_api, gke_proj_europe-west1-b_exec)"));

    g.cluster = "exec";
    assert_int_equal(k8_conn_resolve(&g, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "user u3: the credential plugin gke-gcloud-auth-plugin-absent is not installed "
                                "(not found in PATH): Install gke-gcloud-auth-plugin: gcloud components"));
    g.token = "given"; /* a token option makes it usable */
    assert_int_equal(k8_conn_resolve(&g, &c, err, sizeof err), 0);
    assert_string_equal(c.token, "given");
    k8_conn_free(&c);

    k8_conn_opts s = {.server = "127.0.0.1:6443"};
    assert_int_equal(k8_conn_resolve(&s, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected an http:// or https:// URL"));
    k8_conn_opts none = {.kubeconfig = "/nonexistent/kubeconfig"};
    assert_int_equal(k8_conn_resolve(&none, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "no cluster to deploy to: /nonexistent/kubeconfig: No such file or directory"));
}

/* A kubeconfig whose current context's user is USER (a flow mapping). */
static void user_kubeconfig(const char *user)
{
    char text[2000];
    snprintf(text, sizeof text,
             "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
             "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
             "contexts:\n- name: c\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n  user: %s\n",
             user);
    write_file("kc-user", text);
}

static int resolve_user(const char *user, k8_conn *c, char *err, size_t errcap)
{
    user_kubeconfig(user);
    char kc[400];
    snprintf(kc, sizeof kc, "%s/kc-user", dir);
    k8_conn_opts o = {.kubeconfig = kc};
    return k8_conn_resolve(&o, c, err, errcap);
}

static void test_kubeconfig_client_cert_and_exec(void **state)
{
    (void)state;
    char err[1200];
    k8_conn c;
    /* -data is base64 of the PEM; files are relative to the kubeconfig. */
    assert_int_equal(resolve_user("{client-certificate-data: Q0VSVA==, client-key-data: S0VZ}", &c, err,
                                  sizeof err), 0);
    assert_string_equal(c.cert_pem, "CERT");
    assert_string_equal(c.key_pem, "KEY");
    assert_null(c.token);
    assert_non_null(strstr(c.source, "context c, client certificate"));
    k8_conn_free(&c);
    write_file("client.crt", "CRT-FILE");
    write_file("client.key", "KEY-FILE");
    assert_int_equal(resolve_user("{client-certificate: client.crt, client-key: client.key}", &c, err, sizeof err),
                     0);
    assert_string_equal(c.cert_pem, "CRT-FILE");
    assert_string_equal(c.key_pem, "KEY-FILE");
    k8_conn_free(&c);
    assert_int_equal(resolve_user("{client-certificate: client.crt}", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "user u: a client certificate needs its key"));
    assert_int_equal(resolve_user("{client-certificate: nope.crt, client-key: client.key}", &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "user u: cannot read client-certificate "));
    assert_non_null(strstr(err, "/nope.crt: No such file or directory"));
    assert_int_equal(resolve_user("{auth-provider: {name: gcp}}", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "user u authenticates with auth-provider, which kiln does not support"));

    /* An exec plugin: a command with a slash is relative to the kubeconfig;
     * it gets KUBERNETES_EXEC_INFO and the env: entries. */
    write_file("cred.sh", "#!/bin/sh\n"
                          "case $KUBERNETES_EXEC_INFO in *'\"interactive\":false'*) ;; *) exit 9 ;; esac\n"
                          "[ \"$1\" = get-token ] || exit 8\n"
                          "echo '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\",'\n"
                          "echo '\"status\":{\"token\":\"'\"$CRED_TOKEN\"'\"}}'\n");
    char path[400];
    snprintf(path, sizeof path, "%s/cred.sh", dir);
    assert_int_equal(chmod(path, 0755), 0);
    const char *exec_user = "{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./cred.sh, "
                            "args: [get-token], env: [{name: CRED_TOKEN, value: tok-exec}]}}";
    assert_int_equal(resolve_user(exec_user, &c, err, sizeof err), 0);
    assert_string_equal(c.token, "tok-exec");
    assert_non_null(strstr(c.source, "exec plugin's token"));
    k8_conn_free(&c);
    write_file("cred-cert.sh", "#!/bin/sh\necho '{\"kind\":\"ExecCredential\",\"status\":{"
                               "\"clientCertificateData\":\"PEM-C\",\"clientKeyData\":\"PEM-K\"}}'\n");
    snprintf(path, sizeof path, "%s/cred-cert.sh", dir);
    assert_int_equal(chmod(path, 0755), 0);
    assert_int_equal(resolve_user("{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: "
                                  "./cred-cert.sh}}",
                                  &c, err, sizeof err),
                     0);
    assert_string_equal(c.cert_pem, "PEM-C");
    assert_string_equal(c.key_pem, "PEM-K");
    k8_conn_free(&c);
    write_file("cred-fail.sh", "#!/bin/sh\necho 'starting' >&2\necho 'error: not logged in; run gcloud auth "
                               "login' >&2\nexit 3\n");
    snprintf(path, sizeof path, "%s/cred-fail.sh", dir);
    assert_int_equal(chmod(path, 0755), 0);
    assert_int_equal(resolve_user("{exec: {apiVersion: client.authentication.k8s.io/v1, command: "
                                  "./cred-fail.sh}}",
                                  &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "user u: the credential plugin "));
    assert_non_null(strstr(err, "/cred-fail.sh exited 3: error: not logged in; run gcloud auth login"));
    assert_int_equal(resolve_user("{exec: {apiVersion: client.authentication.k8s.io/v1, command: echo, args: "
                                  "[hello]}}",
                                  &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "the credential plugin echo did not print an ExecCredential"));
    assert_int_equal(resolve_user("{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: echo}}", &c,
                                  err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "exec: apiVersion 'client.authentication.k8s.io/v1alpha1': expected "
                                "client.authentication.k8s.io/v1 or v1beta1"));
    assert_int_equal(resolve_user("{exec: {apiVersion: client.authentication.k8s.io/v1, command: echo, "
                                  "interactiveMode: Always}}",
                                  &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "needs a terminal (interactiveMode: Always)"));

    /* expirationTimestamp: kept, so that a long build asks again. */
    write_file("cred-exp.sh", "#!/bin/sh\necho '{\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\","
                              "\"expirationTimestamp\":\"'\"$EXP\"'\"}}'\n");
    snprintf(path, sizeof path, "%s/cred-exp.sh", dir);
    assert_int_equal(chmod(path, 0755), 0);
    const char *exp_user = "{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./cred-exp.sh, "
                           "env: [{name: EXP, value: '2026-12-07T03:00:00.5+01:00'}]}}";
    assert_int_equal(resolve_user(exp_user, &c, err, sizeof err), 0);
    assert_int_equal(c.expires_at, 1796612400LL - 3600);
    k8_conn_free(&c);
    assert_int_equal(resolve_user("{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./cred-exp.sh, "
                                  "env: [{name: EXP, value: 'tomorrow'}]}}",
                                  &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "returned an expirationTimestamp that is not an RFC 3339 time: 'tomorrow'"));
    assert_int_equal(resolve_user(exec_user, &c, err, sizeof err), 0);
    assert_int_equal(c.expires_at, 0); /* none given: never asked again */
    k8_conn_free(&c);
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(k8_rfc3339("1970-01-01T00:00:10Z"), 10);
    assert_int_equal(k8_rfc3339("1970-01-01T01:00:10+01:00"), 10);
    assert_int_equal(k8_rfc3339("1969-12-31T23:30:10-00:30"), 10);
    assert_int_equal(k8_rfc3339("2026-12-07T03:00:00.123456789Z"), 1796612400LL);
    assert_int_equal(k8_rfc3339("2026-12-07T03:00:00"), -1);  /* no zone */
    assert_int_equal(k8_rfc3339("2026-12-07T03:00:00Zx"), -1); /* trailing */
    assert_int_equal(k8_rfc3339("2026-12-07"), -1);
    assert_int_equal(k8_rfc3339(""), -1);
    assert_int_equal(k8_rfc3339(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_scalars_as_kubectl),
        cmocka_unit_test(test_yaml_documents_and_errors),
        cmocka_unit_test(test_load_change_order_place),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_kubeconfig),
        cmocka_unit_test(test_kubeconfig_client_cert_and_exec),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
