/* SPDX-License-Identifier: MIT */
#include "k8s_conn.h"

#include <cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "k8s_exec_cred.h"
#include "k8s_yaml.h"
#include "xalloc.h"

void k8_conn_free(k8_conn *c)
{
    free(c->server);
    free(c->token);
    free(c->ca_file);
    free(c->ca_pem);
    if (c->key_pem)
        explicit_bzero(c->key_pem, strlen(c->key_pem));
    free(c->cert_pem);
    free(c->key_pem);
    free(c->namespace_);
    free(c->source);
    memset(c, 0, sizeof *c);
}

static void set_server(k8_conn *c, const char *server)
{
    c->server = kp_xstrdup0(server);
    size_t n = strlen(c->server);
    while (n > 0 && c->server[n - 1] == '/')
        c->server[--n] = '\0';
}

/* The `what` of the entry named NAME in a kubeconfig list. */
static const cJSON *named(const cJSON *cfg, const char *list, const char *name, const char *what)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cfg, list))
    {
        const char *n = k8_str(e, "name");
        if (n && name && !strcmp(n, name))
            return cJSON_GetObjectItemCaseSensitive(e, what);
    }
    return NULL;
}

/* PATH as written in the kubeconfig: relative to its directory. */
static char *relative_to(const char *kubeconfig, const char *path)
{
    if (path[0] == '/')
        return kp_xstrdup0(path);
    const char *slash = strrchr(kubeconfig, '/');
    char *r = NULL;
    if (asprintf(&r, "%.*s/%s", slash ? (int)(slash - kubeconfig) : 1, slash ? kubeconfig : ".",
                 path) < 0)
        abort();
    return r;
}

static void list_contexts(const cJSON *cfg, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cfg, "contexts"))
    {
        const char *name = k8_str(e, "name");
        if (name && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", name);
    }
    if (!n)
        snprintf(buf, cap, "none");
}

/* A PEM given as PATH (relative to the kubeconfig) or as base64 DATA, into
 * *out. 0 (nothing given is fine), or -1 with a message. */
static int pem_of(const char *kubeconfig, const char *user_name, const cJSON *user, const char *key,
                  char **out, char *err, size_t errcap)
{
    char data_key[64];
    snprintf(data_key, sizeof data_key, "%s-data", key);
    const char *file = k8_str(user, key), *data = k8_str(user, data_key);
    if (data && *data) {
        if (!(*out = kp_base64_decode(data, NULL))) {
            snprintf(err, errcap, "%s: user %s: %s is not base64", kubeconfig, user_name, data_key);
            return -1;
        }
    } else if (file && *file) {
        char *f = relative_to(kubeconfig, file);
        size_t len;
        if (!(*out = k8_read_file(f, &len))) {
            snprintf(err, errcap, "%s: user %s: cannot read %s %s: %s", kubeconfig, user_name, key, f,
                     strerror(errno));
            free(f);
            return -1;
        }
        free(f);
    }
    return 0;
}

/* The user's credentials: a token or tokenFile, a client certificate and
 * key (files or -data), or an exec plugin's (k8s_exec_cred.c). */
static int user_credentials(const char *path, const char *user_name, const cJSON *user, k8_conn *c, char *err,
                            size_t errcap)
{
    const char *token = k8_str(user, "token"), *token_file = k8_str(user, "tokenFile");
    if (token && *token) {
        c->token = kp_xstrdup0(token);
    } else if (token_file) {
        char *tf = relative_to(path, token_file);
        size_t tl;
        char *t = k8_read_file(tf, &tl);
        if (!t) {
            snprintf(err, errcap, "%s: user %s: cannot read tokenFile %s: %s", path, user_name, tf,
                     strerror(errno));
            free(tf);
            return -1;
        }
        free(tf);
        while (tl && (t[tl - 1] == '\n' || t[tl - 1] == '\r'))
            t[--tl] = '\0';
        c->token = t;
    }
    if (pem_of(path, user_name, user, "client-certificate", &c->cert_pem, err, errcap) < 0 ||
        pem_of(path, user_name, user, "client-key", &c->key_pem, err, errcap) < 0)
        return -1;
    if (!c->cert_pem != !c->key_pem) {
        snprintf(err, errcap, "%s: user %s: a client certificate needs its key (client-certificate and "
                              "client-key, or their -data forms, go together)",
                 path, user_name);
        return -1;
    }
    const cJSON *exec = cJSON_GetObjectItemCaseSensitive(user, "exec");
    if (!c->token && !c->cert_pem && exec) {
        const char *cmd = k8_str(exec, "command");
        if (!cmd || !*cmd) {
            snprintf(err, errcap, "%s: user %s: exec has no command", path, user_name);
            return -1;
        }
        /* As kubectl does: a command with a slash is relative to the
         * kubeconfig's directory; a bare name is looked up in PATH. */
        char *command = strchr(cmd, '/') ? relative_to(path, cmd) : kp_xstrdup0(cmd);
        char msg[900];
        int rc = k8_exec_credential(exec, command, &c->token, &c->cert_pem, &c->key_pem, &c->expires_at,
                                    msg, sizeof msg);
        free(command);
        if (rc < 0) {
            snprintf(err, errcap, "%s: user %s: %s", path, user_name, msg);
            return -1;
        }
        c->source_auth = c->token ? "exec plugin's token" : "exec plugin's client certificate";
    } else if (c->cert_pem && !c->token) {
        c->source_auth = "client certificate";
    }
    if (!c->token && !c->cert_pem) {
        static const char *const other[] = {"auth-provider", "username", NULL};
        for (const char *const *k = other; *k; k++)
            if (cJSON_GetObjectItemCaseSensitive(user, *k)) {
                snprintf(err, errcap,
                         "%s: user %s authenticates with %s, which kiln does not support; use a token, "
                         "a client certificate or an exec plugin (for GKE: gke-gcloud-auth-plugin)",
                         path, user_name, *k);
                return -1;
            }
    }
    return 0;
}

static int from_kubeconfig(const k8_conn_opts *o, k8_conn *c, char *err, size_t errcap)
{
    char path[4096];
    if (o->kubeconfig && *o->kubeconfig)
        snprintf(path, sizeof path, "%s", o->kubeconfig);
    else if (o->kubeconfig_env && *o->kubeconfig_env)
        snprintf(path, sizeof path, "%.*s", (int)strcspn(o->kubeconfig_env, ":"), o->kubeconfig_env);
    else
        snprintf(path, sizeof path, "%s/.kube/config", o->home ? o->home : "");
    size_t len;
    char *text = k8_read_file(path, &len);
    if (!text) {
        snprintf(err, errcap,
                 "no cluster to deploy to: %s: %s (give server: and token:, or kubeconfig:, or set "
                 "KUBECONFIG)",
                 path, strerror(errno));
        return -1;
    }
    char perr[300];
    cJSON *docs = k8_yaml_docs(text, len, NULL, 0, perr, sizeof perr);
    free(text);
    cJSON *cfg = docs ? cJSON_GetArrayItem(docs, 0) : NULL;
    if (!cfg || !cJSON_IsObject(cfg)) {
        snprintf(err, errcap, "%s:%s", path, docs ? " not a kubeconfig (expected a mapping)" : perr);
        cJSON_Delete(docs);
        return -1;
    }
    char gke[600] = "", avail[1000];
    const char *ctx_name = o->context && *o->context ? o->context : NULL;
    if (!ctx_name && o->cluster && *o->cluster) {
        /* gcloud container clusters get-credentials names contexts so. */
        snprintf(gke, sizeof gke, "gke_%s_%s_%s", o->project ? o->project : "",
                 o->location ? o->location : "", o->cluster);
        if (named(cfg, "contexts", gke, "context"))
            ctx_name = gke;
        else if (named(cfg, "contexts", o->cluster, "context"))
            ctx_name = o->cluster;
        else {
            list_contexts(cfg, avail, sizeof avail);
            snprintf(err, errcap,
                     "cluster %s: %s has no context named %s or %s (contexts: %s); give context: or "
                     "server:",
                     o->cluster, path, gke, o->cluster, avail);
            cJSON_Delete(docs);
            return -1;
        }
    }
    if (!ctx_name)
        ctx_name = k8_str(cfg, "current-context");
    const cJSON *ctx = ctx_name ? named(cfg, "contexts", ctx_name, "context") : NULL;
    if (!ctx) {
        list_contexts(cfg, avail, sizeof avail);
        snprintf(err, errcap, "%s: %s (contexts: %s)", path,
                 ctx_name ? "the context is not defined" : "no current-context", avail);
        if (ctx_name)
            snprintf(err, errcap, "%s: no context named %s (contexts: %s)", path, ctx_name, avail);
        cJSON_Delete(docs);
        return -1;
    }
    const char *cluster_name = k8_str(ctx, "cluster"), *user_name = k8_str(ctx, "user");
    const cJSON *cl = named(cfg, "clusters", cluster_name, "cluster");
    const char *server = cl ? k8_str(cl, "server") : NULL;
    if (!server || !*server) {
        snprintf(err, errcap, "%s: context %s: cluster %s has no server", path, ctx_name,
                 cluster_name ? cluster_name : "(none)");
        cJSON_Delete(docs);
        return -1;
    }
    set_server(c, server);
    c->namespace_ = kp_xstrdup0(k8_str(ctx, "namespace"));
    const char *ca = k8_str(cl, "certificate-authority"), *ca_data = k8_str(cl, "certificate-authority-data");
    if (ca)
        c->ca_file = relative_to(path, ca);
    if (ca_data && !(c->ca_pem = kp_base64_decode(ca_data, NULL))) {
        snprintf(err, errcap, "%s: cluster %s: certificate-authority-data is not base64", path, cluster_name);
        cJSON_Delete(docs);
        return -1;
    }
    c->insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify"));
    const cJSON *user = user_name ? named(cfg, "users", user_name, "user") : NULL;
    if (user && !o->token && user_credentials(path, user_name, user, c, err, errcap) < 0) {
        cJSON_Delete(docs);
        return -1;
    }
    if (asprintf(&c->source, "kubeconfig %s, context %s%s%s", path, ctx_name, c->source_auth ? ", " : "",
                 c->source_auth ? c->source_auth : "") < 0)
        abort();
    cJSON_Delete(docs);
    return 0;
}

int k8_conn_resolve(const k8_conn_opts *o, k8_conn *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    if (o->server && *o->server) {
        set_server(out, o->server);
        out->source = kp_xstrdup0("the step's server option");
    } else {
        rc = from_kubeconfig(o, out, err, errcap);
    }
    if (rc == 0) {
        if (o->token && *o->token) {
            free(out->token);
            out->token = kp_xstrdup0(o->token);
        }
        if (o->ca_file && *o->ca_file) {
            free(out->ca_file);
            free(out->ca_pem);
            out->ca_pem = NULL;
            out->ca_file = kp_xstrdup0(o->ca_file);
        }
        out->insecure = out->insecure || o->insecure;
        if (strncmp(out->server, "http://", 7) && strncmp(out->server, "https://", 8)) {
            snprintf(err, errcap, "server %s: expected an http:// or https:// URL (%s)", out->server,
                     out->source);
            rc = -1;
        }
    }
    if (rc)
        k8_conn_free(out);
    return rc;
}
