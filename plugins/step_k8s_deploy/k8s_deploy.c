/* SPDX-License-Identifier: MIT */
/*
 * k8s-deploy: apply Kubernetes manifests with server-side apply and wait for
 * Deployments to roll out, over the Kubernetes API (the host's HTTP service:
 * libcurl on kiln's loop), as `kubectl apply --server-side` followed by
 * `kubectl rollout status` would.
 *
 *  start     reads the manifests (files or directories, multi-document YAML
 *            or JSON, `kind: List` expanded), applies the step's namespace,
 *            image and env-vars, and resolves the API server (options, or a
 *            kubeconfig context: by name, by GKE cluster and location, or the
 *            current one) on a worker thread: a kubeconfig user's exec
 *            credential plugin may take its time. Then, on the loop:
 *            discovery for each apiVersion
 *            (kind -> resource and scope), one PATCH per object
 *            (application/apply-patch+yaml, fieldManager, force), namespaces
 *            and CRDs first; then each Deployment is polled until
 *            observedGeneration reaches generation and every replica is
 *            updated and available, its progress deadline passes, or the
 *            step's timeout does. An exec plugin's credential with an
 *            expirationTimestamp is renewed (on a worker thread) before a
 *            request made within 60 s of its end, as the kubernetes
 *            executor renews it (k8_conn_renew).
 *  cancel    aborts the request in flight and stops polling; a credential
 *            plugin that is running is waited for.
 *  describe  (dry runs) plans each PATCH, path and body, without a request.
 *
 * Cloud Build's `kubectl apply -f ...` and `gke-deploy run|apply ...` steps
 * run through it: their own arguments arrive as `args`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <kiln/kiln.h>

#include "../common/container_env.h"
#include "../common/k8s_conn.h"
#include "../common/xalloc.h"
#include "k8s_objects.h"

KILN_API_DEFINE;

#define K8_POLL_MS 500
#define K8_REQUEST_TIMEOUT_MS 30000

typedef struct k8_config {
    const kiln_strv *manifests;
    const char *namespace_;
    const char *image;
    const kiln_kvv *env_vars;
    const char *cluster, *location, *context, *kubeconfig;
    const char *server, *token, *ca_file;
    bool insecure;
    const char *field_manager;
    bool force_conflicts;
    bool wait;
    int64_t timeout_ms;
    const kiln_strv *args;
} k8_config;

#define OPT(type, name, def, flags, field, desc)                                                   \
    {(type), (name), (def), (flags), offsetof(k8_config, field), 1, 0, NULL, (desc)}

static const kiln_option k8_options[] = {
    OPT(KILN_OPT_STRING_LIST, "manifests", NULL, 0, manifests,
        "Manifest files or directories (*.yaml, *.yml, *.json), relative to the step's directory."),
    OPT(KILN_OPT_STRING, "namespace", NULL, 0, namespace_,
        "Namespace of objects that name none; an object naming another one is an error."),
    OPT(KILN_OPT_STRING, "image", NULL, 0, image,
        "Image reference set on every container whose image has the same repository (gke-deploy -i)."),
    OPT(KILN_OPT_STRING_MAP, "env-vars", NULL, 0, env_vars,
        "Environment variables set on every container of every workload."),
    OPT(KILN_OPT_STRING, "cluster", NULL, 0, cluster,
        "GKE cluster: use the kubeconfig context gke_PROJECT_LOCATION_CLUSTER (or one named CLUSTER)."),
    OPT(KILN_OPT_STRING, "location", NULL, 0, location, "GKE cluster location, with cluster."),
    OPT(KILN_OPT_STRING, "context", NULL, 0, context, "kubeconfig context; default: the current one."),
    OPT(KILN_OPT_STRING, "kubeconfig", NULL, 0, kubeconfig,
        "kubeconfig file; default $KUBECONFIG (its first file), else ~/.kube/config."),
    OPT(KILN_OPT_STRING, "server", NULL, 0, server,
        "API server URL (http:// or https://) instead of a kubeconfig."),
    OPT(KILN_OPT_STRING, "token", NULL, KILN_OPT_SECRET, token,
        "Bearer token; overrides the kubeconfig user's. Use a secret."),
    OPT(KILN_OPT_STRING, "ca_file", NULL, 0, ca_file, "PEM file of the CA that signed the server's certificate."),
    OPT(KILN_OPT_BOOL, "insecure_skip_tls_verify", "false", 0, insecure,
        "Do not verify the server's certificate."),
    OPT(KILN_OPT_STRING, "field_manager", "kiln", 0, field_manager, "Server-side apply field manager."),
    OPT(KILN_OPT_BOOL, "force_conflicts", "false", 0, force_conflicts,
        "Take over fields another field manager owns (kubectl --force-conflicts)."),
    OPT(KILN_OPT_BOOL, "wait", "true", 0, wait, "Wait for each Deployment to roll out."),
    OPT(KILN_OPT_DURATION, "timeout", "5m", 0, timeout_ms, "How long to wait for the rollouts."),
    OPT(KILN_OPT_STRING_LIST, "args", NULL, 0, args,
        "The arguments of `kubectl apply` or `gke-deploy run|apply`, as Cloud Build steps give them; "
        "instead of the options above."),
    KILN_OPTIONS_END,
};

/* ---- the effective options: `with:`, or the CLI's own args ------------- */

typedef struct k8_eff {
    const char **manifests;
    size_t n_manifests;
    kiln_strv mv;
    const char *namespace_, *image, *cluster, *location, *context, *kubeconfig, *field_manager;
    bool force, wait;
    int64_t timeout_ms;
    bool namespace_forced; /* -n / namespace: objects may not name another */
} k8_eff;

static int parse_duration(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    double mult = !strcmp(end, "s") || !*end ? 1000 : !strcmp(end, "m") ? 60000 : !strcmp(end, "h") ? 3600000
                                                                                   : !strcmp(end, "ms") ? 1 : -1;
    if (end == s || mult < 0 || v < 0)
        return -1;
    *ms = (int64_t)(v * mult);
    return 0;
}

/* kubectl/gke-deploy flags: --name=value, --name value, -n value. */
static int cli_apply(const k8_config *c, k8_eff *e, kiln_step *log, char *err, size_t errcap)
{
    const kiln_strv *a = c->args;
    const char *sub = a->v[0];
    if (strcmp(sub, "apply") != 0 && strcmp(sub, "run") != 0) {
        snprintf(err, errcap, "args: expected `apply ...` (kubectl, gke-deploy) or `run ...` (gke-deploy), got '%s'",
                 sub);
        return -1;
    }
    e->manifests = calloc(a->n, sizeof *e->manifests);
    if (!e->manifests)
        abort();
    for (size_t i = 1; i < a->n; i++) {
        const char *arg = a->v[i], *val = NULL;
        char name[64];
        const char *eq = strchr(arg, '=');
        if (!strncmp(arg, "--", 2) && eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        static const char *const with_value[] = {"-f", "--filename", "-n", "--namespace", "-i", "--image",
                                                 "-c", "--cluster", "-l", "--location", "--context",
                                                 "--kubeconfig", "--field-manager", "--timeout", "-o",
                                                 "--output", "-a", "--app", "-v", "--version", "--validate",
                                                 "-p", "--project", NULL};
        bool takes = false;
        for (const char *const *w = with_value; *w; w++)
            takes = takes || !strcmp(name, *w);
        if (takes && !val) {
            if (i + 1 >= a->n) {
                snprintf(err, errcap, "args: %s needs a value", name);
                return -1;
            }
            val = a->v[++i];
        }
        if (!strcmp(name, "-f") || !strcmp(name, "--filename")) {
            e->manifests[e->n_manifests++] = val;
        } else if (!strcmp(name, "-n") || !strcmp(name, "--namespace")) {
            e->namespace_ = val;
            e->namespace_forced = true;
        } else if (!strcmp(name, "-i") || !strcmp(name, "--image")) {
            e->image = val;
        } else if (!strcmp(name, "-c") || !strcmp(name, "--cluster")) {
            e->cluster = val;
        } else if (!strcmp(name, "-l") || !strcmp(name, "--location")) {
            e->location = val;
        } else if (!strcmp(name, "--context")) {
            e->context = val;
        } else if (!strcmp(name, "--kubeconfig")) {
            e->kubeconfig = val;
        } else if (!strcmp(name, "--field-manager")) {
            e->field_manager = val;
        } else if (!strcmp(name, "--force-conflicts")) {
            e->force = !val || !strcmp(val, "true");
        } else if (!strcmp(name, "--timeout")) {
            if (parse_duration(val, &e->timeout_ms) != 0) {
                snprintf(err, errcap, "args: --timeout: expected a duration such as 5m or 300s, got '%s'", val);
                return -1;
            }
        } else if (!strcmp(name, "--server-side") || !strcmp(name, "--validate") ||
                   !strcmp(name, "-p") || !strcmp(name, "--project")) {
            /* always server-side; validation is the server's */
        } else if (!strcmp(name, "-o") || !strcmp(name, "--output") || !strcmp(name, "-a") ||
                   !strcmp(name, "--app") || !strcmp(name, "-v") || !strcmp(name, "--version") ||
                   !strcmp(name, "-x") || !strcmp(name, "--expose") || !strcmp(name, "-R") ||
                   !strcmp(name, "--recursive")) {
            kiln_warn(log, "args: %s is ignored by k8s-deploy", name);
        } else {
            snprintf(err, errcap, "args: %s is not supported by k8s-deploy (it takes -f, -n, -i, -c, -l, "
                                  "--context, --kubeconfig, --field-manager, --force-conflicts, --timeout)",
                     name);
            return -1;
        }
    }
    if (e->n_manifests == 0) {
        snprintf(err, errcap, "args: no -f/--filename: nothing to apply");
        return -1;
    }
    return 0;
}

static int effective(const k8_config *c, kiln_step *step, k8_eff *e, char *err, size_t errcap)
{
    memset(e, 0, sizeof *e);
    e->namespace_ = c->namespace_;
    e->namespace_forced = c->namespace_ != NULL;
    e->image = c->image;
    e->cluster = c->cluster;
    e->location = c->location;
    e->context = c->context;
    e->kubeconfig = c->kubeconfig;
    e->field_manager = c->field_manager;
    e->force = c->force_conflicts;
    e->wait = c->wait;
    e->timeout_ms = c->timeout_ms;
    if (c->args && c->args->n) {
        if (cli_apply(c, e, step, err, errcap) < 0)
            return -1;
        e->mv.n = e->n_manifests;
        e->mv.v = e->manifests;
    } else {
        e->mv = *c->manifests;
    }
    if (!e->cluster && KILN_API_HAS(kiln_api, step_getenv)) {
        /* Cloud Build's kubectl builder names its cluster so. */
        e->cluster = kiln_api->step_getenv(step, "CLOUDSDK_CONTAINER_CLUSTER");
        if (!e->location)
            e->location = kiln_api->step_getenv(step, "CLOUDSDK_COMPUTE_REGION");
        if (!e->location)
            e->location = kiln_api->step_getenv(step, "CLOUDSDK_COMPUTE_ZONE");
    }
    return 0;
}

/* Objects read and changed as the options say; namespaces not placed yet. */
static int prepare_objects(const k8_config *c, const k8_eff *e, kiln_step *step, k8_set *objs,
                           char *err, size_t errcap)
{
    if (k8_load(kiln_api->step_dir(step), &e->mv, objs, err, errcap) < 0)
        return -1;
    if (e->image && *e->image && k8_set_image(objs, e->image) == 0)
        kiln_warn(step, "image %s: no container in the manifests has that repository; nothing changed",
                  e->image);
    if (c->env_vars)
        k8_set_env(objs, c->env_vars->keys, c->env_vars->values, c->env_vars->n);
    k8_order(objs);
    return 0;
}

/* ---- the step -------------------------------------------------------------- */

/* What the connection is resolved from, owned: a worker resolves it, and the
 * step's config is gone once the host has abandoned the step. */
typedef struct k8_conn_src {
    char *server, *token, *ca_file, *kubeconfig, *kubeconfig_env, *home, *context, *cluster, *location,
        *project;
    bool insecure;
} k8_conn_src;

/* A request put off until the credential is renewed. */
typedef struct k8_held {
    const char *method, *ctype; /* literals */
    char *path, *body;
    kiln_http_cb cb;
} k8_held;

typedef struct k8_step {
    kiln_step *step;
    k8_eff eff;
    k8_conn_src src;
    k8_conn conn;
    bool have_conn;       /* the first resolve is through */
    bool working;         /* a worker resolves or renews conn: nothing else touches it */
    bool abandoned;       /* the host ended the step meanwhile: the worker's after() frees */
    int work_rc;
    char work_err[2048];
    k8_held held;
    k8_set objs;
    const char *namespace_;
    char **gvs;           /* distinct apiVersions, in order */
    cJSON **gv_resources; /* their discovery lists */
    size_t n_gvs, gv_i;
    size_t obj_i;
    kiln_http *req;
    kiln_timer *timer;
    int64_t deadline_ms;
    char *last_wait;      /* the last progress line, said once */
    int created, configured;
    bool cancelled, ended;
} k8_step;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void src_free(k8_conn_src *s)
{
    free(s->server);
    free(s->token);
    free(s->ca_file);
    free(s->kubeconfig);
    free(s->kubeconfig_env);
    free(s->home);
    free(s->context);
    free(s->cluster);
    free(s->location);
    free(s->project);
    memset(s, 0, sizeof *s);
}

static void held_free(k8_held *h)
{
    free(h->path);
    free(h->body);
    memset(h, 0, sizeof *h);
}

static void st_free(k8_step *st)
{
    k8_set_free(&st->objs);
    k8_conn_free(&st->conn);
    src_free(&st->src);
    held_free(&st->held);
    for (size_t i = 0; i < st->n_gvs; i++) {
        free(st->gvs[i]);
        cJSON_Delete(st->gv_resources[i]);
    }
    free(st->gvs);
    free(st->gv_resources);
    free(st->eff.manifests);
    free(st->last_wait);
    free(st);
}

static void finish(k8_step *st, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(k8_step *st, int status, const char *fmt, ...)
{
    if (st->ended)
        return;
    st->ended = true;
    char reason[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
    }
    if (st->timer)
        kiln_api->timer_stop(st->timer);
    st->timer = NULL;
    kiln_step *step = st->step;
    if (status != 0 && *reason)
        kiln_error(step, "%s", reason);
    kiln_api->step_set_data(step, NULL);
    st_free(st);
    kiln_api->step_done(step, status, *reason ? reason : NULL);
}

/* The message of a Kubernetes Status body, or the start of the body. */
static void status_message(const kiln_http_resp *resp, char *out, size_t cap)
{
    cJSON *j = resp->body ? cJSON_Parse(resp->body) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(m))
        snprintf(out, cap, "%s", m->valuestring);
    else
        snprintf(out, cap, "%.200s", resp->body && *resp->body ? resp->body : "(no body)");
    cJSON_Delete(j);
}

static int send_now(k8_step *st, const char *method, const char *path, const char *body,
                    const char *ctype, kiln_http_cb cb)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", st->conn.server, path);
    const char *headers[4];
    size_t h = 0;
    headers[h++] = "Accept: application/json";
    char *auth = NULL;
    if (st->conn.token && asprintf(&auth, "Authorization: Bearer %s", st->conn.token) < 0)
        abort();
    if (auth)
        headers[h++] = auth;
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        headers[h++] = ct;
    }
    headers[h] = NULL;
    kiln_http_req req = {
        .struct_size = sizeof req,
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = K8_REQUEST_TIMEOUT_MS,
        .ca_file = st->conn.ca_file,
        .ca_pem = st->conn.ca_pem,
        .cert_pem = st->conn.cert_pem,
        .key_pem = st->conn.key_pem,
        .insecure = st->conn.insecure,
    };
    int rc = kiln_api->http_request(st->step, &req, cb, st, &st->req);
    free(auth);
    return rc;
}

static int start_conn_work(k8_step *st);

/* A request; first, when the credential ends within the margin, a renewal
 * on a worker thread, with the request held until it is through. */
static int send(k8_step *st, const char *method, const char *path, const char *body,
                const char *ctype, kiln_http_cb cb)
{
    if (!k8_conn_expiring(&st->conn, (long long)time(NULL)))
        return send_now(st, method, path, body, ctype, cb);
    held_free(&st->held);
    st->held = (k8_held){.method = method, .ctype = ctype, .path = kp_xstrdup0(path),
                         .body = kp_xstrdup0(body), .cb = cb};
    return start_conn_work(st);
}

/* A transport error or a refusal common to every request; true when it ended the step. */
static bool failed(k8_step *st, int err, const kiln_http_resp *resp, const char *doing)
{
    st->req = NULL;
    if (st->cancelled) {
        finish(st, KILN_ECANCELED, "k8s-deploy canceled while %s", doing);
        return true;
    }
    if (err) {
        finish(st, KILN_EHTTP, "cannot reach the Kubernetes API at %s while %s: %s (%s)", st->conn.server,
               doing, resp && resp->error ? resp->error : kiln_api->strerror(err), st->conn.source);
        return true;
    }
    if (resp->status == 401) {
        finish(st, KILN_EPERM, "the Kubernetes API at %s refused the credentials (401 Unauthorized) while "
                               "%s; check the token (%s)",
               st->conn.server, doing, st->conn.source);
        return true;
    }
    if (resp->status == 403) {
        char msg[600];
        status_message(resp, msg, sizeof msg);
        finish(st, KILN_EPERM, "forbidden while %s: %s", doing, msg);
        return true;
    }
    return false;
}

static void apply_next(k8_step *st);
static void wait_next(k8_step *st);

/* ---- discovery ------------------------------------------------------------- */

static void discover_next(k8_step *st);

static void on_discovery(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    k8_step *st = data;
    char doing[300];
    snprintf(doing, sizeof doing, "asking which resources %s has", st->gvs[st->gv_i]);
    if (failed(st, err, resp, doing))
        return;
    if (resp->status == 200) {
        st->gv_resources[st->gv_i] = cJSON_Parse(resp->body ? resp->body : "");
    } else if (resp->status != 404) {
        char msg[600];
        status_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "%s: HTTP %d: %s", doing, resp->status, msg);
        return;
    }
    st->gv_i++;
    discover_next(st);
}

/* Plural and scope of KIND from the discovery list of its apiVersion. */
static int lookup(k8_step *st, const k8_obj *o, const char **plural, bool *namespaced)
{
    for (size_t i = 0; i < st->n_gvs; i++) {
        if (strcmp(st->gvs[i], o->api_version) != 0)
            continue;
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(st->gv_resources[i], "resources"))
        {
            const cJSON *kind = cJSON_GetObjectItemCaseSensitive(r, "kind");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
            if (cJSON_IsString(kind) && cJSON_IsString(name) && !strcmp(kind->valuestring, o->kind) &&
                !strchr(name->valuestring, '/')) {
                *plural = name->valuestring;
                *namespaced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "namespaced"));
                return 0;
            }
        }
    }
    return -1;
}

static void discover_next(k8_step *st)
{
    if (st->gv_i < st->n_gvs) {
        char path[300];
        k8_group_path(st->gvs[st->gv_i], path, sizeof path);
        int rc = send(st, "GET", path, NULL, NULL, on_discovery);
        if (rc < 0)
            finish(st, rc, "cannot ask %s: %s", st->conn.server, kiln_api->strerror(rc));
        return;
    }
    char err[1200];
    for (size_t i = 0; i < st->objs.n; i++) {
        k8_obj *o = &st->objs.v[i];
        const char *plural;
        bool namespaced;
        /* A CRD applied by this very step defines kinds discovery cannot know yet. */
        if (lookup(st, o, &plural, &namespaced) != 0 &&
            k8_builtin_kind(o->api_version, o->kind, &plural, &namespaced) != 0) {
            finish(st, KILN_ECONFIG, "%s:%d: no matches for kind \"%s\" in version \"%s\" on the cluster at %s",
                   o->file, o->line, o->kind, o->api_version, st->conn.server);
            return;
        }
        if (k8_place(o, plural, namespaced, st->namespace_, st->eff.namespace_forced, err, sizeof err) < 0) {
            finish(st, KILN_ECONFIG, "%s", err);
            return;
        }
    }
    st->obj_i = 0;
    apply_next(st);
}

/* ---- apply ------------------------------------------------------------------ */

static void on_applied(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    k8_step *st = data;
    k8_obj *o = &st->objs.v[st->obj_i];
    char doing[600];
    snprintf(doing, sizeof doing, "applying %s", o->what);
    if (failed(st, err, resp, doing))
        return;
    if (resp->status != 200 && resp->status != 201) {
        char msg[800];
        status_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "%s:%d: apply %s%s%s: %s (HTTP %d)%s", o->file, o->line, o->what,
               o->ns ? " in namespace " : "", o->ns ? o->ns : "", msg, resp->status,
               resp->status == 409 ? "; set force_conflicts: true to take those fields over" : "");
        return;
    }
    kiln_info(st->step, "%s %s", o->what, resp->status == 201 ? "created" : "serverside-applied");
    resp->status == 201 ? st->created++ : st->configured++;
    st->obj_i++;
    apply_next(st);
}

static char *apply_query(const k8_step *st, const k8_obj *o)
{
    char *q = NULL;
    if (asprintf(&q, "%s?fieldManager=%s&force=%s", o->path, st->eff.field_manager,
                 st->eff.force ? "true" : "false") < 0)
        abort();
    return q;
}

static void apply_next(k8_step *st)
{
    if (st->obj_i >= st->objs.n) {
        char n[32];
        snprintf(n, sizeof n, "%zu", st->objs.n);
        kiln_api->step_set_output(st->step, "applied", n);
        st->obj_i = 0;
        st->deadline_ms = now_ms() + st->eff.timeout_ms;
        wait_next(st);
        return;
    }
    k8_obj *o = &st->objs.v[st->obj_i];
    char *body = kp_json_print(o->json);
    char *path = apply_query(st, o);
    int rc = body ? send(st, "PATCH", path, body, "application/apply-patch+yaml", on_applied) : KILN_ENOMEM;
    free(path);
    free(body);
    if (rc < 0)
        finish(st, rc, "cannot send %s to %s: %s", o->what, st->conn.server, kiln_api->strerror(rc));
}

/* ---- rollout ------------------------------------------------------------------ */

static double num_at(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void on_poll(kiln_timer *t, void *data)
{
    k8_step *st = data;
    st->timer = NULL;
    wait_next(st);
}

static void say_waiting(k8_step *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say_waiting(k8_step *st, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (st->last_wait && !strcmp(st->last_wait, line))
        return;
    free(st->last_wait);
    st->last_wait = strdup(line);
    kiln_info(st->step, "%s", line);
}

/* kubectl's rollout status for a Deployment; true when it rolled out. */
static bool deployment_done(k8_step *st, const cJSON *d, char *fail, size_t cap)
{
    const char *name = st->objs.v[st->obj_i].name;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(d, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(d, "status");
    double gen = num_at(meta, "generation", 0), observed = num_at(status, "observedGeneration", -1);
    if (observed < gen) {
        say_waiting(st, "Waiting for deployment spec update to be observed...");
        return false;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "type");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(c, "reason");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "Progressing") && cJSON_IsString(reason) &&
            !strcmp(reason->valuestring, "ProgressDeadlineExceeded")) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "message");
            snprintf(fail, cap, "deployment \"%s\" exceeded its progress deadline%s%s", name,
                     cJSON_IsString(m) ? ": " : "", cJSON_IsString(m) ? m->valuestring : "");
            return false;
        }
    }
    long want = (long)num_at(spec, "replicas", 1), updated = (long)num_at(status, "updatedReplicas", 0);
    long replicas = (long)num_at(status, "replicas", 0), available = (long)num_at(status, "availableReplicas", 0);
    kiln_api->step_progress(st->step, available, want, name);
    if (updated < want) {
        say_waiting(st, "Waiting for deployment \"%s\" rollout to finish: %ld out of %ld new replicas have been updated...",
                    name, updated, want);
        return false;
    }
    if (replicas > updated) {
        say_waiting(st, "Waiting for deployment \"%s\" rollout to finish: %ld old replicas are pending termination...",
                    name, replicas - updated);
        return false;
    }
    if (available < updated) {
        say_waiting(st, "Waiting for deployment \"%s\" rollout to finish: %ld of %ld updated replicas are available...",
                    name, available, updated);
        return false;
    }
    kiln_info(st->step, "deployment \"%s\" successfully rolled out", name);
    return true;
}

static void on_status(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    k8_step *st = data;
    k8_obj *o = &st->objs.v[st->obj_i];
    char doing[600];
    snprintf(doing, sizeof doing, "waiting for %s to roll out", o->what);
    if (failed(st, err, resp, doing))
        return;
    if (resp->status != 200) {
        char msg[800];
        status_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "%s: HTTP %d: %s", doing, resp->status, msg);
        return;
    }
    cJSON *d = cJSON_Parse(resp->body ? resp->body : "");
    char fail[800] = "";
    bool done = d && deployment_done(st, d, fail, sizeof fail);
    cJSON_Delete(d);
    if (*fail) {
        finish(st, KILN_ESTEPFAILED, "%s", fail);
        return;
    }
    if (done) {
        free(st->last_wait);
        st->last_wait = NULL;
        st->obj_i++;
        wait_next(st);
        return;
    }
    if (now_ms() >= st->deadline_ms) {
        finish(st, KILN_ETIMEDOUT, "deployment \"%s\" did not roll out within %gs (last: %s)", o->name,
               (double)st->eff.timeout_ms / 1000, st->last_wait ? st->last_wait : "no status");
        return;
    }
    int rc = kiln_api->timer_start(st->step, K8_POLL_MS, on_poll, st, &st->timer);
    if (rc < 0)
        finish(st, rc, "cannot start a timer: %s", kiln_api->strerror(rc));
}

static void wait_next(k8_step *st)
{
    while (st->obj_i < st->objs.n && (!st->eff.wait || strcmp(st->objs.v[st->obj_i].kind, "Deployment") != 0))
        st->obj_i++;
    if (st->obj_i >= st->objs.n) {
        kiln_info(st->step, "%d created, %d configured (%s)", st->created, st->configured, st->conn.source);
        finish(st, 0, NULL);
        return;
    }
    int rc = send(st, "GET", st->objs.v[st->obj_i].path, NULL, NULL, on_status);
    if (rc < 0)
        finish(st, rc, "cannot ask %s: %s", st->conn.server, kiln_api->strerror(rc));
}

/* ---- plugin entry points -------------------------------------------------------- */

static void conn_src(const k8_config *c, const k8_eff *e, kiln_step *step, k8_conn_src *s)
{
    *s = (k8_conn_src){
        .server = kp_xstrdup0(c->server),
        .token = kp_xstrdup0(c->token),
        .ca_file = kp_xstrdup0(c->ca_file),
        .insecure = c->insecure,
        .kubeconfig = kp_xstrdup0(e->kubeconfig),
        .kubeconfig_env = kp_xstrdup0(getenv("KUBECONFIG")),
        .home = kp_xstrdup0(getenv("HOME")),
        .context = kp_xstrdup0(e->context),
        .cluster = kp_xstrdup0(e->cluster),
        .location = kp_xstrdup0(e->location),
        .project = kp_xstrdup0(kiln_api->subst_get(KILN_OBJ(step), "PROJECT_ID")),
    };
}

static k8_conn_opts src_opts(const k8_conn_src *s)
{
    return (k8_conn_opts){
        .server = s->server,
        .token = s->token,
        .ca_file = s->ca_file,
        .insecure = s->insecure,
        .kubeconfig = s->kubeconfig,
        .kubeconfig_env = s->kubeconfig_env,
        .home = s->home,
        .context = s->context,
        .cluster = s->cluster,
        .location = s->location,
        .project = s->project,
    };
}

/* 0, or -1 with a message: what this host cannot do with the connection. */
static int conn_usable(const k8_conn *conn, char *err, size_t errcap)
{
    if (conn->cert_pem && kiln_api->abi_minor < 9) {
        snprintf(err, errcap, "%s: a client certificate needs kiln 1.9's host (this one is ABI 1.%u)",
                 conn->source, (unsigned)kiln_api->abi_minor);
        return -1;
    }
    return 0;
}

/* Synchronously (dry runs only: nothing runs then but the plan). */
static int resolve_conn(const k8_config *c, const k8_eff *e, kiln_step *step, k8_conn *conn, char *err,
                        size_t errcap)
{
    k8_conn_src s;
    conn_src(c, e, step, &s);
    k8_conn_opts co = src_opts(&s);
    int rc = k8_conn_resolve(&co, conn, err, errcap);
    src_free(&s);
    if (rc < 0)
        return -1;
    if (conn_usable(conn, err, errcap) < 0) {
        k8_conn_free(conn);
        return -1;
    }
    return 0;
}

/* ---- the connection, resolved and renewed on a worker thread ------------------- */

/* On the worker: runs the credential plugin, if any. Touches only src, conn
 * and the work fields; the loop leaves them alone while `working`. */
static void conn_work(void *data)
{
    k8_step *st = data;
    k8_conn_opts o = src_opts(&st->src);
    st->work_rc = st->have_conn ? k8_conn_renew(&o, &st->conn, st->work_err, sizeof st->work_err)
                                : k8_conn_resolve(&o, &st->conn, st->work_err, sizeof st->work_err);
}

static void connected(k8_step *st);

static void conn_after(void *data, int err)
{
    k8_step *st = data;
    st->working = false;
    if (st->abandoned) {
        st_free(st);
        return;
    }
    if (!st->have_conn) {
        if (st->cancelled) {
            finish(st, KILN_ECANCELED, "k8s-deploy canceled while resolving the connection to the cluster");
            return;
        }
        if (st->work_rc < 0 || conn_usable(&st->conn, st->work_err, sizeof st->work_err) < 0) {
            finish(st, KILN_ECONFIG, "%s", st->work_err);
            return;
        }
        st->have_conn = true;
        connected(st);
        return;
    }
    if (st->work_rc < 0)
        kiln_warn(st->step, "cannot renew the credentials that expire now: %s", st->work_err);
    else
        kiln_info(st->step, "credentials renewed (%s)", st->conn.source);
    k8_held h = st->held;
    memset(&st->held, 0, sizeof st->held);
    if (st->cancelled) {
        held_free(&h);
        finish(st, KILN_ECANCELED, "k8s-deploy canceled while renewing the credentials");
        return;
    }
    int rc = send_now(st, h.method, h.path, h.body, h.ctype, h.cb);
    held_free(&h);
    if (rc < 0)
        finish(st, rc, "cannot ask %s: %s", st->conn.server, kiln_api->strerror(rc));
}

static int start_conn_work(k8_step *st)
{
    int rc = kiln_api->queue_work(KILN_OBJ(st->step), conn_work, conn_after, st);
    if (rc == 0)
        st->working = true;
    return rc;
}

static int k8_start(kiln_step *step, const void *config, void *plugin_data)
{
    const k8_config *c = config;
    k8_step *st = calloc(1, sizeof *st);
    if (!st)
        return KILN_ENOMEM;
    st->step = step;
    kiln_api->step_set_data(step, st);
    char err[2048];
    if (effective(c, step, &st->eff, err, sizeof err) < 0 ||
        prepare_objects(c, &st->eff, step, &st->objs, err, sizeof err) < 0) {
        finish(st, KILN_ECONFIG, "%s", err);
        return 0;
    }
    conn_src(c, &st->eff, step, &st->src);
    int rc = start_conn_work(st);
    if (rc < 0)
        finish(st, rc, "cannot resolve the connection to the cluster: %s", kiln_api->strerror(rc));
    return 0;
}

/* The connection is there: discovery, then the applies. */
static void connected(k8_step *st)
{
    kiln_step *step = st->step;
    st->namespace_ = st->eff.namespace_ && *st->eff.namespace_ ? st->eff.namespace_
                     : st->conn.namespace_                      ? st->conn.namespace_
                                                                : "default";
    kiln_info(step, "applying %zu object%s to %s (%s)", st->objs.n, st->objs.n == 1 ? "" : "s",
              st->conn.server, st->conn.source);
    /* Distinct apiVersions, for discovery. */
    st->gvs = calloc(st->objs.n, sizeof *st->gvs);
    st->gv_resources = calloc(st->objs.n, sizeof *st->gv_resources);
    if (!st->gvs || !st->gv_resources)
        abort();
    for (size_t i = 0; i < st->objs.n; i++) {
        bool seen = false;
        for (size_t k = 0; k < st->n_gvs && !seen; k++)
            seen = !strcmp(st->gvs[k], st->objs.v[i].api_version);
        if (!seen)
            st->gvs[st->n_gvs++] = strdup(st->objs.v[i].api_version);
    }
    discover_next(st);
}

/* ABI 1.10: the host ended the step itself; its request and timer are
 * released without their callbacks. */
static void k8_abandon(kiln_step *step, void *plugin_data)
{
    k8_step *st = kiln_api->step_get_data(step);
    if (!st)
        return;
    kiln_api->step_set_data(step, NULL);
    if (st->working) {
        st->abandoned = true; /* the worker's after() frees it */
        return;
    }
    st_free(st);
}

static void k8_cancel(kiln_step *step, void *plugin_data)
{
    k8_step *st = kiln_api->step_get_data(step);
    if (!st || st->ended)
        return;
    st->cancelled = true;
    if (st->req) {
        kiln_api->http_abort(st->req); /* its callback ends the step */
        return;
    }
    /* A credential plugin cannot be stopped: the worker's after() ends the
     * step once it is through (past --kill-grace, the host abandons it). */
    if (st->working)
        return;
    finish(st, KILN_ECANCELED, "k8s-deploy canceled");
}

/* Dry runs: the PATCH of each object, as it would be sent, without asking
 * the server (kinds from kubectl's built-in table). */
static int k8_describe(kiln_step *step, const void *config, void *plugin_data)
{
    const k8_config *c = config;
    k8_eff e;
    k8_set objs;
    char err[2048];
    if (effective(c, step, &e, err, sizeof err) < 0) {
        kiln_error(step, "%s", err);
        free(e.manifests);
        return KILN_ECONFIG;
    }
    if (prepare_objects(c, &e, step, &objs, err, sizeof err) < 0) {
        kiln_error(step, "%s", err);
        free(e.manifests);
        return KILN_ECONFIG;
    }
    /* The server and namespace a real run would use, when the kubeconfig says. */
    k8_conn conn;
    char cerr[1024];
    bool have_conn = resolve_conn(c, &e, step, &conn, cerr, sizeof cerr) == 0;
    const char *ns = e.namespace_ && *e.namespace_ ? e.namespace_
                     : have_conn && conn.namespace_ ? conn.namespace_
                                                    : "default";
    int rc = 0;
    for (size_t i = 0; i < objs.n && rc == 0; i++) {
        k8_obj *o = &objs.v[i];
        const char *plural;
        bool namespaced;
        if (k8_builtin_kind(o->api_version, o->kind, &plural, &namespaced) != 0) {
            plural = NULL;
            namespaced = true; /* custom kinds: asked of the server in a real run */
        }
        char guess[200];
        if (!plural) {
            snprintf(guess, sizeof guess, "%s", o->kind);
            for (char *p = guess; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            strncat(guess, "s", sizeof guess - strlen(guess) - 1);
            plural = guess;
        }
        if (k8_place(o, plural, namespaced, ns, e.namespace_forced, err, sizeof err) < 0) {
            kiln_error(step, "%s", err);
            rc = KILN_ECONFIG;
            break;
        }
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "method", "PATCH");
        if (have_conn)
            cJSON_AddStringToObject(r, "server", conn.server);
        else
        {
            /* Why no server is named: a real run would stop there. */
            char note[1200];
            snprintf(note, sizeof note, "server not known here: %s", cerr);
            cJSON_AddStringToObject(r, "note", note);
        }
        k8_step tmp = {.eff = e};
        char *q = apply_query(&tmp, o);
        cJSON_AddStringToObject(r, "path", q);
        free(q);
        cJSON_AddStringToObject(r, "contentType", "application/apply-patch+yaml");
        cJSON_AddStringToObject(r, "object", o->what);
        cJSON_AddItemToObject(r, "body", cJSON_Duplicate(o->json, true));
        char *json = kp_json_print(r);
        cJSON_Delete(r);
        rc = json ? kiln_api->plan_add(step, json) : KILN_ENOMEM;
        free(json);
    }
    if (have_conn)
        k8_conn_free(&conn);
    k8_set_free(&objs);
    free(e.manifests);
    return rc;
}

static int k8_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const k8_config *c = config;
    bool has_args = c->args && c->args->n;
    int bad = 0;
    if (has_args && c->manifests->n && ++bad)
        kiln_api->diag(diag, "args", "give manifests: or args:, not both");
    if (!has_args && c->manifests->n == 0 && ++bad)
        kiln_api->diag(diag, "manifests", "nothing to apply: give manifests: (files or directories)");
    if (c->location && !c->cluster && ++bad)
        kiln_api->diag(diag, "location", "location: needs cluster:");
    if (c->server && (c->context || c->kubeconfig || c->cluster) && ++bad)
        kiln_api->diag(diag, "server", "server: replaces the kubeconfig; drop context:, kubeconfig: and cluster:");
    return bad ? KILN_ECONFIG : 0;
}

static int k8_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops k8_ops = {
    .struct_size = sizeof(kiln_step_ops),
    .start = k8_start,
    .cancel = k8_cancel,
    .describe = k8_describe,
    .abandon = k8_abandon,
};

static const kiln_plugin k8_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "k8s-deploy",
    .version = "0.1.0",
    .summary = "Apply Kubernetes manifests (server-side apply) and wait for Deployments to roll out",
    .options = k8_options,
    .config_size = sizeof(k8_config),
    .flags = KILN_PLUGIN_DEPLOYS,
    .init = k8_init,
    .validate = k8_validate,
    .step = &k8_ops,
};

KILN_PLUGIN_DEFINE(k8_plugin)
