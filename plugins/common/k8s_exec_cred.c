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
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "k8s_yaml.h"

extern char **environ;

#define K8_EXEC_TIMEOUT_MS 60000
#define K8_EXEC_MAX_OUT (1 << 20)

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

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
            env[k++] = k8_asprintf("%s=%s", name, value ? value : "");
    }
    env[k++] = k8_asprintf("KUBERNETES_EXEC_INFO={\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\","
                           "\"spec\":{\"interactive\":false}}",
                           api_version);
    /* Ours last: the user's entries win (the first of a name is what
     * getenv() finds). */
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21))
            env[k++] = k8_strdup(environ[i]);
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

/* Run argv with env; its stdout and stderr collected. 0, or -1 with err. */
static int run_plugin(char **argv, char **env, grow *out, grow *errout, int *status, const char *hint,
                      char *err, size_t errcap)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (rc) {
        close(po[0]);
        close(pe[0]);
        if (rc == ENOENT)
            snprintf(err, errcap, "the credential plugin %s is not installed (not found%s)%s%.400s", argv[0],
                     strchr(argv[0], '/') ? "" : " in PATH", hint && *hint ? ": " : "", hint ? hint : "");
        else
            snprintf(err, errcap, "cannot run the credential plugin %s: %s", argv[0], strerror(rc));
        return -1;
    }
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    long long deadline = now_ms() + K8_EXEC_TIMEOUT_MS;
    int open_fds = 2;
    bool timed_out = false;
    while (open_fds) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (poll(fds, 2, (int)left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            char buf[8192];
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            grow *g = i == 0 ? out : errout;
            if (g->len < K8_EXEC_MAX_OUT)
                grow_add(g, buf, (size_t)r);
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    if (timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        snprintf(err, errcap, "the credential plugin %s did not answer within %d s", argv[0],
                 K8_EXEC_TIMEOUT_MS / 1000);
        return -1;
    }
    return 0;
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
    grow out = {0}, errout = {0};
    int status = 0;
    int rc = run_plugin(argv, env, &out, &errout, &status, k8_str(exec, "installHint"), err, errcap);
    free(argv);
    free_strv(env);
    char tail[320];
    last_line(errout.buf, tail, sizeof tail);
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
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
            *token = k8_strdup(t);
        } else if (c && *c && key && *key) {
            *cert_pem = k8_strdup(c);
            *key_pem = k8_strdup(key);
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
    free(errout.buf);
    return rc;
}
