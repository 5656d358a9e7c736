/* SPDX-License-Identifier: MIT */
/*
 * cloudrun-deploy: deploy a container image to a Cloud Run service through
 * the Cloud Run Admin API v2, as `gcloud run deploy` does, from kiln's loop
 * (the host's HTTP service).
 *
 *  start     GET the service; create it (POST ?serviceId=) or update it
 *            (PATCH with the etag read) with the image, port, env-vars,
 *            resources, scaling, concurrency, request timeout, service
 *            account, labels and ingress the step gives, keeping the rest of
 *            what is deployed; poll the long-running operation until done;
 *            check the service's terminal condition; then, when asked,
 *            grant or revoke roles/run.invoker for allUsers (get, change,
 *            set the IAM policy). Outputs: url and revision.
 *  cancel    aborts the request in flight (the operation, already accepted
 *            by Cloud Run, goes on there).
 *  describe  (dry runs) plans the PATCH (allowMissing) and the IAM change.
 *
 * Cloud Build's `gcloud run deploy SERVICE --image ... --region ...` steps
 * run through it: their own arguments arrive as `args`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <kiln/kiln.h>

#include "../common/container_env.h"

KILN_API_DEFINE;

#define CR_POLL_MS 1000
#define CR_REQUEST_TIMEOUT_MS 60000
#define CR_ENDPOINT "https://run.googleapis.com"

static const char *const cr_unauth_choices[] = {"unchanged", "true", "false", NULL};
static const char *const cr_ingress_choices[] = {"", "all", "internal", "internal-and-cloud-load-balancing",
                                                 NULL};

typedef struct cr_config {
    const char *service, *image, *region, *project;
    int64_t port;
    int allow_unauth; /* index into cr_unauth_choices */
    const kiln_kvv *env_vars, *labels;
    const char *memory, *cpu, *service_account;
    int64_t min_instances, max_instances, concurrency;
    int64_t request_timeout_ms;
    int ingress;
    const char *endpoint, *token;
    int64_t wait_timeout_ms;
    const kiln_strv *args;
} cr_config;

#define OPT(type, name, def, flags, field, desc)                                                   \
    {(type), (name), (def), (flags), offsetof(cr_config, field), 1, 0, NULL, (desc)}
#define OPT_RANGE(type, name, def, field, lo, hi, desc)                                            \
    {(type), (name), (def), 0, offsetof(cr_config, field), (lo), (hi), NULL, (desc)}
#define OPT_ENUM(name, def, field, choices, desc)                                                  \
    {KILN_OPT_ENUM, (name), (def), 0, offsetof(cr_config, field), 1, 0, (choices), (desc)}

static const kiln_option cr_options[] = {
    OPT(KILN_OPT_STRING, "service", NULL, 0, service, "Cloud Run service name."),
    OPT(KILN_OPT_STRING, "image", NULL, 0, image, "Container image to deploy."),
    OPT(KILN_OPT_STRING, "region", NULL, 0, region, "Region (location) of the service, e.g. europe-west1."),
    OPT(KILN_OPT_STRING, "project", NULL, 0, project, "Project; default $PROJECT_ID."),
    OPT_RANGE(KILN_OPT_INT, "port", "0", port, 0, 65535, "Container port (0: leave as deployed, else 8080)."),
    OPT_ENUM("allow-unauthenticated", "unchanged", allow_unauth, cr_unauth_choices,
             "true: grant roles/run.invoker to allUsers; false: revoke it; unchanged: leave the policy."),
    OPT(KILN_OPT_STRING_MAP, "env-vars", NULL, 0, env_vars,
        "Environment variables to set (others already deployed are kept)."),
    OPT(KILN_OPT_STRING_MAP, "labels", NULL, 0, labels, "Labels to set on the service."),
    OPT(KILN_OPT_STRING, "memory", NULL, 0, memory, "Memory limit, e.g. 512Mi."),
    OPT(KILN_OPT_STRING, "cpu", NULL, 0, cpu, "CPU limit, e.g. 1."),
    OPT(KILN_OPT_STRING, "service-account", NULL, 0, service_account, "Service account the revision runs as."),
    OPT_RANGE(KILN_OPT_INT, "min-instances", "-1", min_instances, -1, 1000, "Minimum instances (-1: leave)."),
    OPT_RANGE(KILN_OPT_INT, "max-instances", "-1", max_instances, -1, 1000, "Maximum instances (-1: leave)."),
    OPT_RANGE(KILN_OPT_INT, "concurrency", "0", concurrency, 0, 1000, "Requests per instance (0: leave)."),
    OPT(KILN_OPT_DURATION, "request-timeout", NULL, 0, request_timeout_ms, "Request timeout of the revision."),
    OPT_ENUM("ingress", "", ingress, cr_ingress_choices, "Ingress: all, internal or internal-and-cloud-load-balancing."),
    OPT(KILN_OPT_STRING, "endpoint", NULL, 0, endpoint,
        "Cloud Run Admin API endpoint; default $CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN (gcloud's override), "
        "else " CR_ENDPOINT "."),
    OPT(KILN_OPT_STRING, "token", NULL, KILN_OPT_SECRET, token,
        "OAuth access token; default $GOOGLE_OAUTH_ACCESS_TOKEN or $CLOUDSDK_AUTH_ACCESS_TOKEN."),
    OPT(KILN_OPT_DURATION, "wait-timeout", "10m", 0, wait_timeout_ms, "How long to wait for the deployment."),
    OPT(KILN_OPT_STRING_LIST, "args", NULL, 0, args,
        "The arguments of `gcloud run deploy`, as Cloud Build steps give them; instead of the options above."),
    KILN_OPTIONS_END,
};

/* ---- effective options: `with:`, or gcloud's own args ----------------- */

typedef struct cr_eff {
    cr_config c;
    const char **env_keys, **env_values; /* from --set/--update-env-vars */
    kiln_kvv env;
    char *env_buf;
} cr_eff;

static int64_t parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double mult = !*end || !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? 60000 : !strcmp(end, "h") ? 3600000 : -1;
    return end == s || mult < 0 || v < 0 ? -1 : (int64_t)(v * mult);
}

/* --set-env-vars=A=1,B=2 (gcloud's list syntax, without ^DELIM^ escapes). */
static int parse_env_list(cr_eff *e, const char *list, char *err, size_t errcap)
{
    free(e->env_buf);
    e->env_buf = strdup(list);
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    e->env_keys = realloc(e->env_keys, n * sizeof *e->env_keys);
    e->env_values = realloc(e->env_values, n * sizeof *e->env_values);
    if (!e->env_buf || !e->env_keys || !e->env_values)
        abort();
    size_t k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(e->env_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(err, errcap, "args: --set-env-vars: expected KEY=VALUE, got '%s'", tok);
            return -1;
        }
        *eq = '\0';
        e->env_keys[k] = tok;
        e->env_values[k++] = eq + 1;
    }
    e->env.n = k;
    e->env.keys = e->env_keys;
    e->env.values = e->env_values;
    e->c.env_vars = &e->env;
    return 0;
}

static int cli_apply(cr_eff *e, kiln_step *log, char *err, size_t errcap)
{
    const kiln_strv *a = e->c.args;
    size_t i = 0;
    if (i < a->n && !strcmp(a->v[i], "run"))
        i++;
    if (i >= a->n || strcmp(a->v[i], "deploy") != 0) {
        snprintf(err, errcap, "args: expected `run deploy SERVICE --image IMAGE ...`");
        return -1;
    }
    for (i++; i < a->n; i++) {
        const char *arg = a->v[i], *val = NULL;
        char name[64];
        const char *eq = strchr(arg, '=');
        if (arg[0] != '-') {
            if (e->c.service) {
                snprintf(err, errcap, "args: a second service name '%s'", arg);
                return -1;
            }
            e->c.service = arg;
            continue;
        }
        if (!strncmp(arg, "--", 2) && eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        static const char *const flags[] = {"--allow-unauthenticated", "--no-allow-unauthenticated",
                                            "--quiet", "-q", "--async", NULL};
        bool is_flag = false;
        for (const char *const *f = flags; *f; f++)
            is_flag = is_flag || !strcmp(name, *f);
        if (!is_flag && !val) {
            if (i + 1 >= a->n) {
                snprintf(err, errcap, "args: %s needs a value", name);
                return -1;
            }
            val = a->v[++i];
        }
        int64_t n;
        if (!strcmp(name, "--image")) {
            e->c.image = val;
        } else if (!strcmp(name, "--region")) {
            e->c.region = val;
        } else if (!strcmp(name, "--project")) {
            e->c.project = val;
        } else if (!strcmp(name, "--port")) {
            e->c.port = atoll(val);
        } else if (!strcmp(name, "--allow-unauthenticated")) {
            e->c.allow_unauth = 1;
        } else if (!strcmp(name, "--no-allow-unauthenticated")) {
            e->c.allow_unauth = 2;
        } else if (!strcmp(name, "--set-env-vars") || !strcmp(name, "--update-env-vars")) {
            if (parse_env_list(e, val, err, errcap) < 0)
                return -1;
        } else if (!strcmp(name, "--memory")) {
            e->c.memory = val;
        } else if (!strcmp(name, "--cpu")) {
            e->c.cpu = val;
        } else if (!strcmp(name, "--service-account")) {
            e->c.service_account = val;
        } else if (!strcmp(name, "--min-instances")) {
            e->c.min_instances = atoll(val);
        } else if (!strcmp(name, "--max-instances")) {
            e->c.max_instances = atoll(val);
        } else if (!strcmp(name, "--concurrency")) {
            e->c.concurrency = atoll(val);
        } else if (!strcmp(name, "--timeout")) {
            if ((n = parse_seconds(val)) < 0) {
                snprintf(err, errcap, "args: --timeout: expected seconds or a duration such as 5m, got '%s'", val);
                return -1;
            }
            e->c.request_timeout_ms = n;
        } else if (!strcmp(name, "--platform") || !strcmp(name, "--quiet") || !strcmp(name, "-q")) {
            /* managed is the only platform; never interactive */
        } else if (!strcmp(name, "--async")) {
            kiln_warn(log, "args: --async is ignored: kiln waits for the deployment");
        } else {
            snprintf(err, errcap,
                     "args: %s is not supported by cloudrun-deploy (it takes --image, --region, --project, --port, "
                     "--[no-]allow-unauthenticated, --set-env-vars, --update-env-vars, --memory, --cpu, "
                     "--service-account, --min-instances, --max-instances, --concurrency, --timeout, --platform)",
                     name);
            return -1;
        }
    }
    return 0;
}

static int effective(const cr_config *c, kiln_step *step, cr_eff *e, char *err, size_t errcap)
{
    memset(e, 0, sizeof *e);
    e->c = *c;
    if (c->args && c->args->n && cli_apply(e, step, err, errcap) < 0)
        return -1;
    if (!e->c.project || !*e->c.project)
        e->c.project = kiln_api->subst_get(KILN_OBJ(step), "PROJECT_ID");
    if (!e->c.endpoint || !*e->c.endpoint) {
        const char *o = KILN_API_HAS(kiln_api, step_getenv)
                            ? kiln_api->step_getenv(step, "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN")
                            : NULL;
        if (!o)
            o = getenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN");
        e->c.endpoint = o && *o ? o : CR_ENDPOINT;
    }
    if ((!e->c.region || !*e->c.region) && KILN_API_HAS(kiln_api, step_getenv))
        e->c.region = kiln_api->step_getenv(step, "CLOUDSDK_RUN_REGION");
    const char *missing = !e->c.service || !*e->c.service ? "service"
                          : !e->c.image || !*e->c.image   ? "image"
                          : !e->c.region || !*e->c.region ? "region"
                          : !e->c.project || !*e->c.project ? "project"
                                                            : NULL;
    if (missing) {
        snprintf(err, errcap, "no %s: give %s:%s", missing, missing,
                 !strcmp(missing, "region") ? " (or CLOUDSDK_RUN_REGION in the step's env)" : "");
        return -1;
    }
    return 0;
}

static void eff_free(cr_eff *e)
{
    free(e->env_buf);
    free(e->env_keys);
    free(e->env_values);
}

/* ---- the Service body ------------------------------------------------------ */

static void set_str(cJSON *o, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddStringToObject(o, key, v);
}

static void set_num(cJSON *o, const char *key, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
}

/* What kiln sets, over SVC (the deployed service, or an empty object). */
static void apply_options(cJSON *svc, const cr_config *c)
{
    static const char *const output_only[] = {
        "name", "uid", "generation", "createTime", "updateTime", "deleteTime", "expireTime", "creator",
        "lastModifier", "observedGeneration", "terminalCondition", "conditions", "latestReadyRevision",
        "latestCreatedRevision", "trafficStatuses", "uri", "urls", "reconciling", "satisfiesPzs", NULL};
    for (const char *const *k = output_only; *k; k++)
        cJSON_DeleteItemFromObjectCaseSensitive(svc, *k);
    cJSON *tpl = kp_obj_at(svc, "template");
    cJSON_DeleteItemFromObjectCaseSensitive(tpl, "revision"); /* a new one is named by Cloud Run */
    cJSON *containers = kp_arr_at(tpl, "containers");
    cJSON *ctr = cJSON_GetArrayItem(containers, 0);
    if (!cJSON_IsObject(ctr)) {
        ctr = cJSON_CreateObject();
        cJSON_AddItemToArray(containers, ctr);
    }
    set_str(ctr, "image", c->image);
    if (c->port > 0) {
        cJSON *ports = cJSON_CreateArray(), *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "containerPort", (double)c->port);
        cJSON_AddItemToArray(ports, p);
        cJSON_DeleteItemFromObjectCaseSensitive(ctr, "ports");
        cJSON_AddItemToObject(ctr, "ports", ports);
    }
    if (c->env_vars && c->env_vars->n)
        kp_container_set_env(ctr, c->env_vars->keys, c->env_vars->values, c->env_vars->n);
    if (c->memory || c->cpu) {
        cJSON *limits = kp_obj_at(kp_obj_at(ctr, "resources"), "limits");
        if (c->memory)
            set_str(limits, "memory", c->memory);
        if (c->cpu)
            set_str(limits, "cpu", c->cpu);
    }
    if (c->min_instances >= 0)
        set_num(kp_obj_at(tpl, "scaling"), "minInstanceCount", (double)c->min_instances);
    if (c->max_instances >= 0)
        set_num(kp_obj_at(tpl, "scaling"), "maxInstanceCount", (double)c->max_instances);
    if (c->concurrency > 0)
        set_num(tpl, "maxInstanceRequestConcurrency", (double)c->concurrency);
    if (c->request_timeout_ms > 0) {
        char t[32];
        snprintf(t, sizeof t, "%gs", (double)c->request_timeout_ms / 1000);
        set_str(tpl, "timeout", t);
    }
    if (c->service_account)
        set_str(tpl, "serviceAccount", c->service_account);
    if (c->labels && c->labels->n) {
        cJSON *labels = kp_obj_at(svc, "labels");
        for (size_t i = 0; i < c->labels->n; i++)
            set_str(labels, c->labels->keys[i], c->labels->values[i]);
    }
    static const char *const ingress[] = {"", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY",
                                          "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"};
    if (c->ingress > 0)
        set_str(svc, "ingress", ingress[c->ingress]);
}

/* ---- the step ------------------------------------------------------------------ */

typedef struct cr_step {
    kiln_step *step;
    cr_eff eff;
    char *token;
    char *base;        /* ENDPOINT/v2/projects/P/locations/R */
    char *op_name;
    bool creating;
    bool waiting;      /* Cloud Run accepted the operation; polling it */
    kiln_http *req;
    kiln_timer *timer;
    int64_t deadline_ms;
    char *url, *revision;
    bool cancelled, ended;
} cr_step;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cr_free(cr_step *st)
{
    eff_free(&st->eff);
    free(st->token);
    free(st->base);
    free(st->op_name);
    free(st->url);
    free(st->revision);
    free(st);
}

static void finish(cr_step *st, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(cr_step *st, int status, const char *fmt, ...)
{
    if (st->ended)
        return;
    st->ended = true;
    char reason[1200] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
    }
    if (st->timer)
        kiln_api->timer_stop(st->timer);
    kiln_step *step = st->step;
    if (status != 0 && *reason)
        kiln_error(step, "%s", reason);
    kiln_api->step_set_data(step, NULL);
    cr_free(st);
    kiln_api->step_done(step, status, *reason ? reason : NULL);
}

/* Google's {"error": {"code", "message", "status"}}, or the body's start. */
static void error_message(const kiln_http_resp *resp, char *out, size_t cap)
{
    cJSON *j = resp->body ? cJSON_Parse(resp->body) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "status");
    if (cJSON_IsString(m))
        snprintf(out, cap, "%s%s%s", cJSON_IsString(s) ? s->valuestring : "", cJSON_IsString(s) ? ": " : "",
                 m->valuestring);
    else
        snprintf(out, cap, "%.200s", resp->body && *resp->body ? resp->body : "(no body)");
    cJSON_Delete(j);
}

static int send(cr_step *st, const char *method, const char *url, const char *body, kiln_http_cb cb)
{
    const char *headers[4];
    size_t h = 0;
    headers[h++] = "Accept: application/json";
    char *auth = NULL;
    if (st->token && asprintf(&auth, "Authorization: Bearer %s", st->token) < 0)
        abort();
    if (auth)
        headers[h++] = auth;
    if (body)
        headers[h++] = "Content-Type: application/json";
    headers[h] = NULL;
    kiln_http_req req = {
        .struct_size = sizeof req,
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = CR_REQUEST_TIMEOUT_MS,
    };
    int rc = kiln_api->http_request(st->step, &req, cb, st, &st->req);
    free(auth);
    if (rc < 0)
        finish(st, rc, "cannot send a request to %s: %s", st->eff.c.endpoint, kiln_api->strerror(rc));
    return rc;
}

static bool failed(cr_step *st, int err, const kiln_http_resp *resp, const char *doing)
{
    st->req = NULL;
    if (st->cancelled) {
        finish(st, KILN_ECANCELED, "cloudrun-deploy canceled while %s%s", doing,
               st->waiting ? " (Cloud Run goes on with the operation it accepted)" : "");
        return true;
    }
    if (err) {
        finish(st, KILN_EHTTP, "cannot reach the Cloud Run API at %s while %s: %s", st->eff.c.endpoint, doing,
               resp && resp->error ? resp->error : kiln_api->strerror(err));
        return true;
    }
    if (resp->status == 401 || resp->status == 403) {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EPERM, "the Cloud Run API refused %s (HTTP %d): %s%s", doing, resp->status, msg,
               resp->status == 401 ? "; check the access token (token:, GOOGLE_OAUTH_ACCESS_TOKEN)" : "");
        return true;
    }
    return false;
}

static void get_iam(cr_step *st);
static void poll_operation(cr_step *st);
static void get_service(cr_step *st);
static void on_deployed(kiln_http *h, void *data, int err, const kiln_http_resp *resp);
static void cr_done(cr_step *st);

static void on_got_service(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cr_step *st = data;
    char doing[400];
    snprintf(doing, sizeof doing, "reading service %s", st->eff.c.service);
    if (failed(st, err, resp, doing))
        return;
    cJSON *svc;
    if (resp->status == 404) {
        st->creating = true;
        svc = cJSON_CreateObject();
    } else if (resp->status == 200 && (svc = cJSON_Parse(resp->body ? resp->body : "")) != NULL) {
        st->creating = false;
    } else {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "%s: HTTP %d: %s", doing, resp->status, msg);
        return;
    }
    apply_options(svc, &st->eff.c);
    char *body = kp_json_print(svc);
    cJSON_Delete(svc);
    kiln_info(st->step, "Deploying container to Cloud Run service [%s] in project [%s] region [%s]",
              st->eff.c.service, st->eff.c.project, st->eff.c.region);
    kiln_info(st->step, "%s", st->creating ? "Deploying new service..." : "Deploying...");
    char *url = NULL;
    if (asprintf(&url, st->creating ? "%s/services?serviceId=%s" : "%s/services/%s", st->base,
                 st->eff.c.service) < 0)
        abort();
    send(st, st->creating ? "POST" : "PATCH", url, body, on_deployed);
    free(url);
    free(body);
}

static void take_operation(cr_step *st, const cJSON *op)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(op, "name");
    free(st->op_name);
    st->op_name = cJSON_IsString(name) ? strdup(name->valuestring) : NULL;
}

/* An operation that ended with an error, or not; true when it ended the step. */
static bool operation_failed(cr_step *st, const cJSON *op)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(op, "error");
    if (!cJSON_IsObject(e))
        return false;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    finish(st, KILN_ESTEPFAILED, "deployment of %s failed: %s", st->eff.c.service,
           cJSON_IsString(m) ? m->valuestring : "(no message)");
    return true;
}

static void on_deployed(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cr_step *st = data;
    char doing[400];
    snprintf(doing, sizeof doing, "%s service %s", st->creating ? "creating" : "updating", st->eff.c.service);
    if (failed(st, err, resp, doing))
        return;
    if (resp->status != 200) {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "%s: HTTP %d: %s", doing, resp->status, msg);
        return;
    }
    cJSON *op = cJSON_Parse(resp->body ? resp->body : "");
    take_operation(st, op);
    bool done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(op, "done"));
    bool ended = done && operation_failed(st, op);
    cJSON_Delete(op);
    if (ended)
        return;
    if (!st->op_name && !done) {
        finish(st, KILN_EHTTP, "%s: the answer is not a long-running operation", doing);
        return;
    }
    kiln_info(st->step, "  Creating Revision...");
    st->waiting = true;
    if (done)
        get_service(st);
    else
        poll_operation(st);
}

static void on_poll_timer(kiln_timer *t, void *data)
{
    cr_step *st = data;
    st->timer = NULL;
    poll_operation(st);
}

static void on_operation(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cr_step *st = data;
    if (failed(st, err, resp, "waiting for the deployment"))
        return;
    if (resp->status != 200) {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "waiting for the deployment: HTTP %d: %s", resp->status, msg);
        return;
    }
    cJSON *op = cJSON_Parse(resp->body ? resp->body : "");
    bool done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(op, "done"));
    bool ended = done && operation_failed(st, op);
    cJSON_Delete(op);
    if (ended)
        return;
    if (done) {
        get_service(st);
        return;
    }
    int64_t left = st->deadline_ms - now_ms();
    if (left <= 0) {
        finish(st, KILN_ETIMEDOUT, "service %s was not deployed within %gs (operation %s goes on in Cloud Run)",
               st->eff.c.service, (double)st->eff.c.wait_timeout_ms / 1000, st->op_name);
        return;
    }
    int rc = kiln_api->timer_start(st->step, left < CR_POLL_MS ? (uint64_t)left : CR_POLL_MS, on_poll_timer, st,
                                   &st->timer);
    if (rc < 0)
        finish(st, rc, "cannot start a timer: %s", kiln_api->strerror(rc));
}

static void poll_operation(cr_step *st)
{
    char *url = NULL;
    const char *slash = strstr(st->base, "/v2/");
    if (asprintf(&url, "%.*s/v2/%s", (int)(slash - st->base), st->base, st->op_name) < 0)
        abort();
    send(st, "GET", url, NULL, on_operation);
    free(url);
}

static void on_service_ready(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cr_step *st = data;
    if (failed(st, err, resp, "reading the deployed service"))
        return;
    cJSON *svc = resp->status == 200 ? cJSON_Parse(resp->body ? resp->body : "") : NULL;
    if (!svc) {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "reading the deployed service: HTTP %d: %s", resp->status, msg);
        return;
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(svc, "terminalCondition");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(tc, "state");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(tc, "message");
    if (cJSON_IsString(state) && strcmp(state->valuestring, "CONDITION_SUCCEEDED") != 0) {
        char m[900];
        snprintf(m, sizeof m, "service %s is not ready (%s): %s", st->eff.c.service, state->valuestring,
                 cJSON_IsString(msg) ? msg->valuestring : "(no message)");
        cJSON_Delete(svc);
        finish(st, KILN_ESTEPFAILED, "%s", m);
        return;
    }
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(svc, "uri");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(svc, "latestReadyRevision");
    st->url = cJSON_IsString(uri) ? strdup(uri->valuestring) : NULL;
    const char *r = cJSON_IsString(rev) ? rev->valuestring : NULL;
    const char *short_rev = r && strrchr(r, '/') ? strrchr(r, '/') + 1 : r;
    st->revision = short_rev ? strdup(short_rev) : NULL;
    cJSON_Delete(svc);
    kiln_info(st->step, "  Routing traffic...");
    if (st->eff.c.allow_unauth != 0) {
        get_iam(st);
        return;
    }
    cr_done(st);
}

static void cr_done(cr_step *st)
{
    kiln_info(st->step, "Done.");
    kiln_info(st->step, "Service [%s] revision [%s] has been deployed and is serving 100 percent of traffic.",
              st->eff.c.service, st->revision ? st->revision : "?");
    if (st->url) {
        kiln_info(st->step, "Service URL: %s", st->url);
        kiln_api->step_set_output(st->step, "url", st->url);
    }
    if (st->revision)
        kiln_api->step_set_output(st->step, "revision", st->revision);
    finish(st, 0, NULL);
}

static void get_service(cr_step *st)
{
    st->waiting = false; /* the operation is over */
    char *url = NULL;
    if (asprintf(&url, "%s/services/%s", st->base, st->eff.c.service) < 0)
        abort();
    send(st, "GET", url, NULL, on_service_ready);
    free(url);
}

/* ---- IAM: roles/run.invoker for allUsers --------------------------------------- */

/* Add or remove allUsers in the invoker binding; true when it changed. */
static bool change_policy(cJSON *policy, bool allow)
{
    cJSON *bindings = kp_arr_at(policy, "bindings"), *b, *inv = NULL;
    cJSON_ArrayForEach(b, bindings)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(b, "role");
        if (!inv && cJSON_IsString(role) && !strcmp(role->valuestring, "roles/run.invoker"))
            inv = b;
    }
    cJSON *members = inv ? kp_arr_at(inv, "members") : NULL, *m, *found = NULL;
    cJSON_ArrayForEach(m, members) if (!found && cJSON_IsString(m) && !strcmp(m->valuestring, "allUsers"))
        found = m;
    if (allow == (found != NULL))
        return false;
    if (allow) {
        if (!inv) {
            inv = cJSON_CreateObject();
            cJSON_AddStringToObject(inv, "role", "roles/run.invoker");
            members = cJSON_AddArrayToObject(inv, "members");
            cJSON_AddItemToArray(bindings, inv);
        }
        cJSON_AddItemToArray(members, cJSON_CreateString("allUsers"));
    } else {
        cJSON_Delete(cJSON_DetachItemViaPointer(members, found));
        if (cJSON_GetArraySize(members) == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(bindings, inv));
    }
    return true;
}

static void on_set_iam(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cr_step *st = data;
    if (failed(st, err, resp, "setting the IAM policy"))
        return;
    if (resp->status != 200) {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "setting the IAM policy of %s: HTTP %d: %s", st->eff.c.service, resp->status, msg);
        return;
    }
    cr_done(st);
}

static void on_get_iam(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cr_step *st = data;
    if (failed(st, err, resp, "reading the IAM policy"))
        return;
    cJSON *policy = resp->status == 200 ? cJSON_Parse(resp->body ? resp->body : "") : NULL;
    if (!policy) {
        char msg[800];
        error_message(resp, msg, sizeof msg);
        finish(st, KILN_EHTTP, "reading the IAM policy of %s: HTTP %d: %s", st->eff.c.service, resp->status, msg);
        return;
    }
    bool allow = st->eff.c.allow_unauth == 1;
    if (!change_policy(policy, allow)) {
        cJSON_Delete(policy);
        cr_done(st);
        return;
    }
    kiln_info(st->step, "  Setting IAM Policy... (%s unauthenticated invocations)", allow ? "allowing" : "refusing");
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "policy", policy);
    char *body = kp_json_print(req);
    cJSON_Delete(req);
    char *url = NULL;
    if (asprintf(&url, "%s/services/%s:setIamPolicy", st->base, st->eff.c.service) < 0)
        abort();
    send(st, "POST", url, body, on_set_iam);
    free(url);
    free(body);
}

static void get_iam(cr_step *st)
{
    char *url = NULL;
    if (asprintf(&url, "%s/services/%s:getIamPolicy", st->base, st->eff.c.service) < 0)
        abort();
    send(st, "GET", url, NULL, on_get_iam);
    free(url);
}

/* ---- plugin entry points ------------------------------------------------------------ */

static const char *token_of(const cr_eff *e, kiln_step *step)
{
    if (e->c.token && *e->c.token)
        return e->c.token;
    static const char *const vars[] = {"GOOGLE_OAUTH_ACCESS_TOKEN", "CLOUDSDK_AUTH_ACCESS_TOKEN", NULL};
    for (const char *const *v = vars; *v; v++) {
        const char *t = KILN_API_HAS(kiln_api, step_getenv) ? kiln_api->step_getenv(step, *v) : NULL;
        if (!t)
            t = getenv(*v);
        if (t && *t)
            return t;
    }
    return NULL;
}

static char *base_url(const cr_eff *e)
{
    char *b = NULL;
    size_t n = strlen(e->c.endpoint);
    while (n > 0 && e->c.endpoint[n - 1] == '/')
        n--;
    if (asprintf(&b, "%.*s/v2/projects/%s/locations/%s", (int)n, e->c.endpoint, e->c.project, e->c.region) < 0)
        abort();
    return b;
}

static int cr_start(kiln_step *step, const void *config, void *plugin_data)
{
    cr_step *st = calloc(1, sizeof *st);
    if (!st)
        return KILN_ENOMEM;
    st->step = step;
    kiln_api->step_set_data(step, st);
    char err[1200];
    if (effective(config, step, &st->eff, err, sizeof err) < 0) {
        finish(st, KILN_ECONFIG, "%s", err);
        return 0;
    }
    const char *token = token_of(&st->eff, step);
    if (!token && strncmp(st->eff.c.endpoint, "http://", 7) != 0) {
        finish(st, KILN_ECONFIG,
               "no access token for %s: give token: (from a secret, e.g. --secrets-command printing `gcloud auth "
               "print-access-token`) or set GOOGLE_OAUTH_ACCESS_TOKEN",
               st->eff.c.endpoint);
        return 0;
    }
    st->token = token ? strdup(token) : NULL;
    st->base = base_url(&st->eff);
    st->deadline_ms = now_ms() + st->eff.c.wait_timeout_ms;
    char *url = NULL;
    if (asprintf(&url, "%s/services/%s", st->base, st->eff.c.service) < 0)
        abort();
    send(st, "GET", url, NULL, on_got_service);
    free(url);
    return 0;
}

static void cr_cancel(kiln_step *step, void *plugin_data)
{
    cr_step *st = kiln_api->step_get_data(step);
    if (!st || st->ended)
        return;
    st->cancelled = true;
    if (st->req)
        kiln_api->http_abort(st->req);
    else
        finish(st, KILN_ECANCELED, "cloudrun-deploy canceled (Cloud Run goes on with the operation it accepted)");
}

/* ABI 1.10: the host ended the step itself; its request and timer are
 * released without their callbacks. */
static void cr_abandon(kiln_step *step, void *plugin_data)
{
    cr_step *st = kiln_api->step_get_data(step);
    if (!st)
        return;
    kiln_api->step_set_data(step, NULL);
    cr_free(st);
}

static int cr_describe(kiln_step *step, const void *config, void *plugin_data)
{
    cr_eff e;
    char err[1200];
    if (effective(config, step, &e, err, sizeof err) < 0) {
        kiln_error(step, "%s", err);
        eff_free(&e);
        return KILN_ECONFIG;
    }
    char *base = base_url(&e);
    cJSON *svc = cJSON_CreateObject();
    apply_options(svc, &e.c);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", "PATCH");
    char *url = NULL;
    if (asprintf(&url, "%s/services/%s?allowMissing=true", base, e.c.service) < 0)
        abort();
    cJSON_AddStringToObject(r, "url", url);
    cJSON_AddStringToObject(r, "note", "fields kiln sets; the rest of a deployed service is kept");
    cJSON_AddItemToObject(r, "body", svc);
    char *json = kp_json_print(r);
    int rc = json ? kiln_api->plan_add(step, json) : KILN_ENOMEM;
    free(json);
    cJSON_Delete(r);
    free(url);
    if (rc == 0 && e.c.allow_unauth != 0) {
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "method", "POST");
        if (asprintf(&url, "%s/services/%s:setIamPolicy", base, e.c.service) < 0)
            abort();
        cJSON_AddStringToObject(r, "url", url);
        cJSON_AddStringToObject(r, "change", e.c.allow_unauth == 1 ? "add allUsers to roles/run.invoker"
                                                                   : "remove allUsers from roles/run.invoker");
        json = kp_json_print(r);
        rc = json ? kiln_api->plan_add(step, json) : KILN_ENOMEM;
        free(json);
        cJSON_Delete(r);
        free(url);
    }
    free(base);
    eff_free(&e);
    return rc;
}

static int cr_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const cr_config *c = config;
    bool has_args = c->args && c->args->n;
    int bad = 0;
    if (!has_args && !c->service && ++bad)
        kiln_api->diag(diag, "service", "service: is required (or args: of gcloud run deploy)");
    if (!has_args && !c->image && ++bad)
        kiln_api->diag(diag, "image", "image: is required (or args: of gcloud run deploy)");
    if (has_args && (c->service || c->image) && ++bad)
        kiln_api->diag(diag, "args", "give service:/image: or args:, not both");
    if (c->endpoint && strncmp(c->endpoint, "https://", 8) && strncmp(c->endpoint, "http://", 7) && ++bad)
        kiln_api->diag(diag, "endpoint", "expected an http:// or https:// URL");
    if (c->min_instances >= 0 && c->max_instances >= 0 && c->min_instances > c->max_instances && ++bad)
        kiln_api->diag(diag, "min-instances", "min-instances is above max-instances");
    return bad ? KILN_ECONFIG : 0;
}

static int cr_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops cr_ops = {
    .struct_size = sizeof(kiln_step_ops),
    .start = cr_start,
    .cancel = cr_cancel,
    .describe = cr_describe,
    .abandon = cr_abandon,
};

static const kiln_plugin cr_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "cloudrun-deploy",
    .version = "0.1.0",
    .summary = "Deploy an image to a Cloud Run service (Admin API v2), as gcloud run deploy does",
    .options = cr_options,
    .config_size = sizeof(cr_config),
    .flags = KILN_PLUGIN_DEPLOYS,
    .init = cr_init,
    .validate = cr_validate,
    .step = &cr_ops,
};

KILN_PLUGIN_DEFINE(cr_plugin)
