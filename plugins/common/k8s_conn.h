/* SPDX-License-Identifier: MIT */
/*
 * Which API server kiln talks to, and as whom: explicit server/token
 * options, or a kubeconfig context (chosen by name, by the GKE cluster and
 * location, or the current one). Shared by the k8s-deploy step and the
 * kubernetes executor, which build it into their plugins.
 */
#ifndef K8S_CONN_H
#define K8S_CONN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct k8_conn_opts {
    const char *server, *token, *ca_file;
    bool insecure;
    const char *kubeconfig;   /* option, else $KUBECONFIG, else ~/.kube/config */
    const char *kubeconfig_env, *home;
    const char *context;
    const char *cluster, *location, *project; /* GKE: context gke_PROJECT_LOCATION_CLUSTER */
} k8_conn_opts;

typedef struct k8_conn {
    char *server;             /* no trailing '/' */
    char *token;              /* or NULL */
    char *ca_file, *ca_pem;   /* or NULL */
    char *cert_pem, *key_pem; /* the client certificate and its key (PEM), or NULL */
    const char *source_auth;  /* for messages: how the user authenticates, or NULL */
    long long expires_at;     /* an exec plugin's credential ends then (Unix seconds), or 0 */
    bool insecure;
    char *namespace_;         /* the context's, or NULL */
    char *source;             /* for messages: "kubeconfig F, context C" */
} k8_conn;

/* 0, or -1 with a message in err. */
int k8_conn_resolve(const k8_conn_opts *o, k8_conn *out, char *err, size_t errcap);
void k8_conn_free(k8_conn *c);

/* ---- renewing an exec plugin's credential ---------------------------------
 * Shared by the kubernetes executor and k8s-deploy, so that both renew the
 * same way: a credential with an expirationTimestamp is asked for again
 * before any request made within K8_RENEW_MARGIN_S of its end (GKE's last an
 * hour; kubectl renews on expiry). */
#define K8_RENEW_MARGIN_S 60

/* Does C's credential end within the margin of NOW (Unix seconds)? */
bool k8_conn_expiring(const k8_conn *c, long long now);

/* Resolve the connection again from O (what it was resolved from) and, on
 * success, put the fresh one in C's place: 0. On failure C is kept and no
 * longer counts as expiring (a plugin that failed is not asked again: the
 * requests go on with the old credential and their 401s say the rest): -1
 * with a message in err. It runs the plugin synchronously and touches
 * nothing but O and C, so it may run on a worker thread while nothing else
 * uses C. */
int k8_conn_renew(const k8_conn_opts *o, k8_conn *c, char *err, size_t errcap);

#endif /* K8S_CONN_H */
