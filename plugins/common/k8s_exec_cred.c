/* SPDX-License-Identifier: MIT */
/*
 * A kubeconfig user's `exec:` credential plugin (client.authentication.k8s.io,
 * the way gke-gcloud-auth-plugin, aws eks get-token and kubelogin hand out
 * credentials): run the command with KUBERNETES_EXEC_INFO in its environment,
 * read an ExecCredential on its stdout, take its token or its client
 * certificate and key.
 *
 * It runs synchronously, as kubectl runs it: the callers resolve the
 * connection before their requests (the executor in open(), before the loop
 * turns; k8s-deploy when its step starts). A plugin that does not answer in
 * K8_EXEC_TIMEOUT_MS is killed.
 */
#include "k8s_exec_cred.h"

#include <cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "k8s_yaml.h"
#include "run_capture.h"
#include "xalloc.h"

extern char **environ;

#define K8_EXEC_TIMEOUT_MS 60000
#define K8_EXEC_MAX_OUT (1 << 20)

typedef struct grow {
    char *buf;
    size_t len, cap;
} grow;

static void grow_add(grow *g, const char *p, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        g->cap = (g->len + n + 1) * 2;
        if (!(g->buf = realloc(g->buf, g->cap)))
            abort();
    }
    memcpy(g->buf + g->len, p, n);
    g->len += n;
    g->buf[g->len] = '\0';
}

/* The environment of the plugin: ours, the user's env: entries, and
 * KUBERNETES_EXEC_INFO. Entries are "K=V" strings the caller frees. */
static char **plugin_env(const cJSON *exec, const char *api_version)
{
    size_t n = 0;
    while (environ[n])
        n++;
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(exec, "env");
    size_t ne = (size_t)cJSON_GetArraySize(extra);
    char **env = calloc(n + ne + 2, sizeof *env);
    if (!env)
        abort();
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, extra)
    {
        const char *name = k8_str(e, "name"), *value = k8_str(e, "value");
        if (name && *name)
            env[k++] = kp_xasprintf("%s=%s", name, value ? value : "");
    }
    env[k++] = kp_xasprintf("KUBERNETES_EXEC_INFO={\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\","
                           "\"spec\":{\"interactive\":false}}",
                           api_version);
    /* Ours last: the user's entries win (the first of a name is what
     * getenv() finds). */
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21))
            env[k++] = kp_xstrdup0(environ[i]);
    env[k] = NULL;
    return env;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* The last non-empty line of TEXT, at most 300 bytes of it, into buf. */
static void last_line(const char *text, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!text)
        return;
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    size_t s = n;
    while (s && text[s - 1] != '\n')
        s--;
    snprintf(buf, cap, "%.*s", (int)(n - s > 300 ? 300 : n - s), text + s);
}

static void collect(void *data, const char *buf, size_t len)
{
    grow *g = data;
    if (g->len < K8_EXEC_MAX_OUT)
        grow_add(g, buf, len);
}

long long k8_rfc3339(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return -1;
    if (*p == '.')
        while (*++p >= '0' && *p <= '9')
            ;
    long long off = 0;
    if (*p == '+' || *p == '-') {
        int h, m;
        if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2)
            return -1;
        off = (*p == '+' ? 1 : -1) * (h * 3600LL + m * 60LL);
        p += 6;
    } else if (*p == 'Z' || *p == 'z') {
        p++;
    } else {
        return -1;
    }
    return *p ? -1 : (long long)timegm(&tm) - off;
}

int k8_exec_credential(const cJSON *exec, const char *command, char **token, char **cert_pem, char **key_pem,
                       long long *expires_at, char *err, size_t errcap)
{
    *token = *cert_pem = *key_pem = NULL;
    *expires_at = 0;
    const char *api = k8_str(exec, "apiVersion");
    if (!api || (strcmp(api, "client.authentication.k8s.io/v1") &&
                 strcmp(api, "client.authentication.k8s.io/v1beta1"))) {
        snprintf(err, errcap,
                 "exec: apiVersion %s%s%s: expected client.authentication.k8s.io/v1 or v1beta1",
                 api ? "'" : "", api ? api : "is missing", api ? "'" : "");
        return -1;
    }
    const char *mode = k8_str(exec, "interactiveMode");
    if (mode && !strcmp(mode, "Always")) {
        snprintf(err, errcap, "exec: %s needs a terminal (interactiveMode: Always), and kiln runs without one; "
                              "log in first, or use a plugin that can run unattended",
                 command);
        return -1;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(exec, "args");
    size_t na = (size_t)cJSON_GetArraySize(args);
    char **argv = calloc(na + 2, sizeof *argv);
    if (!argv)
        abort();
    size_t k = 0;
    argv[k++] = (char *)command;
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        if (cJSON_IsString(a))
            argv[k++] = a->valuestring;
    }
    char **env = plugin_env(exec, api);
    grow out = {0};
    char errout[4096], tail[320];
    int status = 0;
    bool late = false;
    int rc = kp_run_capture(argv, env, collect, &out, errout, sizeof errout, K8_EXEC_TIMEOUT_MS, &status, &late);
    free(argv);
    free_strv(env);
    last_line(rc ? NULL : errout, tail, sizeof tail);
    const char *hint = k8_str(exec, "installHint");
    if (rc == ENOENT) {
        snprintf(err, errcap, "the credential plugin %s is not installed (not found%s)%s%.400s", command,
                 strchr(command, '/') ? "" : " in PATH", hint && *hint ? ": " : "", hint ? hint : "");
        rc = -1;
    } else if (rc) {
        snprintf(err, errcap, "cannot run the credential plugin %s: %s", command, strerror(rc));
        rc = -1;
    } else if (late) {
        snprintf(err, errcap, "the credential plugin %s did not answer within %d s", command,
                 K8_EXEC_TIMEOUT_MS / 1000);
        rc = -1;
    } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        if (WIFEXITED(status))
            snprintf(err, errcap, "the credential plugin %s exited %d%s%s", command, WEXITSTATUS(status),
                     *tail ? ": " : " (it said nothing on stderr)", tail);
        else
            snprintf(err, errcap, "the credential plugin %s was killed by signal %d%s%s", command,
                     WTERMSIG(status), *tail ? ": " : "", tail);
        rc = -1;
    }
    cJSON *cred = rc == 0 ? cJSON_Parse(out.buf ? out.buf : "") : NULL;
    if (rc == 0 && (!cJSON_IsObject(cred) || !k8_str(cred, "kind") || strcmp(k8_str(cred, "kind"), "ExecCredential"))) {
        snprintf(err, errcap, "the credential plugin %s did not print an ExecCredential (JSON with kind: "
                              "ExecCredential) on stdout%s%s",
                 command, *tail ? "; it said: " : "", tail);
        rc = -1;
    }
    if (rc == 0) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(cred, "status");
        const char *t = k8_str(st, "token"), *c = k8_str(st, "clientCertificateData"),
                   *key = k8_str(st, "clientKeyData");
        const char *exp = k8_str(st, "expirationTimestamp");
        if (exp && (*expires_at = k8_rfc3339(exp)) < 0) {
            snprintf(err, errcap, "the credential plugin %s returned an expirationTimestamp that is not an "
                                  "RFC 3339 time: '%.60s'",
                     command, exp);
            rc = -1;
        } else if (t && *t) {
            *token = kp_xstrdup0(t);
        } else if (c && *c && key && *key) {
            *cert_pem = kp_xstrdup0(c);
            *key_pem = kp_xstrdup0(key);
        } else {
            snprintf(err, errcap, "the credential plugin %s returned an ExecCredential without status.token "
                                  "or status.clientCertificateData and clientKeyData",
                     command);
            rc = -1;
        }
    }
    cJSON_Delete(cred);
    if (out.buf)
        explicit_bzero(out.buf, out.len); /* it held the credential */
    free(out.buf);
    return rc;
}
