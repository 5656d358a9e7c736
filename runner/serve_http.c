/* SPDX-License-Identifier: MIT */
/*
 * kiln serve's HTTP side: libh2o (its libuv flavour) on the engine's loop.
 * Every request is answered from the loop thread, at once: the history is
 * in SQLite, starting a build only queues it.
 *
 *   GET  /api/builds[?status=&trigger=&branch=&pageSize=&cursor=]  newest first
 *   GET  /api/builds/ID                        one build, with its steps
 *   GET  /api/builds/ID/logs[/STEP]            the step log files (names; one as text)
 *   GET  /api/builds/ID/log?step=&from=&limit= records from a sequence number; with
 *                                              Accept: text/event-stream, live (serve_logs.c)
 *   POST /api/builds/ID:cancel                 (token)
 *   GET  /api/triggers                         the triggers file's triggers
 *   POST /api/triggers/NAME:run                (token) {"branch"|"tag"|"commit", "substitutions"}
 *   POST /hooks/github                         X-Hub-Signature-256 checked
 *   GET  /metrics                              Prometheus text
 *
 * Reading is open to loopback peers; any other peer, and every write,
 * needs "Authorization: Bearer TOKEN" (--token-file). Answers are JSON;
 * errors are {"error": {"code": N, "message": "..."}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hooks.h"
#include "serve.h"
#include "serve_logs.h"
#include "serve_req.h"

/* Webhook bodies larger than this are refused (413) with a log line;
 * h2o itself refuses bodies past H2O_BODY_LIMIT. */
#define HOOK_BODY_LIMIT (25u << 20)
#define H2O_BODY_LIMIT (32u << 20)

struct http {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    bool listening, ctx_up;
};

struct handler {
    h2o_handler_t super;
    kiln__server *srv;
};

/* ---- helpers ---------------------------------------------------------- */

static int send_json(h2o_req_t *req, int status, const char *reason, cJSON *body)
{
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    size_t len = strlen(text);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, text, len);
    copy[len] = '\n';
    cJSON_free(text);
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, copy, len + 1);
    return 0;
}

static int send_error(h2o_req_t *req, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int send_error(h2o_req_t *req, int status, const char *reason, const char *fmt, ...)
{
    kiln__buf m = KILN__BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(&m, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", m.buf);
    kiln__buf_release(&m);
    return send_json(req, status, reason, o);
}

static bool method_is(const h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* A request header's value as a string in the request's pool, or NULL. */
static const char *header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    char *s = h2o_mem_alloc_pool(&req->pool, v.len + 1);
    memcpy(s, v.base, v.len);
    s[v.len] = '\0';
    return s;
}

static bool from_loopback(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t n = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (n == 0)
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

static bool has_token(kiln__server *srv, h2o_req_t *req)
{
    const char *auth = header(req, "authorization");
    if (!srv->token || !auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    return same_secret(auth + 7, strlen(auth + 7), srv->token, strlen(srv->token));
}

static int refuse_auth(kiln__server *srv, h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"kiln\""));
    if (!srv->token)
        return send_error(req, 401, "Unauthorized",
                          "this server has no --token-file: its API takes no writes");
    return send_error(req, 401, "Unauthorized", "a bearer token is required (Authorization: Bearer TOKEN)");
}

/* A string of the request's pool (freed with the request). */
static char *pooled(h2o_mem_pool_t *pool, char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = h2o_mem_alloc_pool(pool, n + 1);
    memcpy(out, s, n + 1);
    free(s);
    return out;
}

/* Percent-decode s[0..n) into a new string of the pool (serve_req.h). */
static char *decode(h2o_mem_pool_t *pool, const char *s, size_t n, bool in_query)
{
    return pooled(pool, kiln__url_decode(s, n, in_query));
}

/* The query parameter NAME, decoded, or NULL. */
static const char *query(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1;
    return pooled(&req->pool, kiln__query_get(q, req->path.len - req->query_at - 1, name));
}

/* ---- the API ---------------------------------------------------------- */

static int api_list(kiln__server *srv, h2o_req_t *req)
{
    int64_t cursor;
    int page;
    char why[160];
    if (kiln__list_params(query(req, "cursor"), query(req, "pageSize"), &cursor, &page, why, sizeof why) != 0)
        return send_error(req, 400, "Bad Request", "%s", why);
    const char *status = query(req, "status"), *trigger = query(req, "trigger"),
               *branch = query(req, "branch");
    cJSON *o = kiln__db_list(srv, status && *status ? status : NULL, trigger && *trigger ? trigger : NULL,
                             branch && *branch ? branch : NULL, cursor, page);
    return send_json(req, 200, "OK", o);
}

static int api_show(kiln__server *srv, h2o_req_t *req, const char *id)
{
    cJSON *o = kiln__db_get(srv, id);
    if (!o)
        return send_error(req, 404, "Not Found", "no build '%s'", id);
    kiln__web_build_json(srv, id, o);
    return send_json(req, 200, "OK", o);
}

/* GET /api/builds/ID/logs: the log files; .../logs/STEP: one, as text
 * (as the file sink named it: '/' and control characters as '_'). */
static int api_logs(kiln__server *srv, h2o_req_t *req, const char *id, const char *step)
{
    cJSON *b = kiln__db_get(srv, id);
    if (!b)
        return send_error(req, 404, "Not Found", "no build '%s'", id);
    cJSON_Delete(b);
    char *dir = kiln__xasprintf("%s/builds/%s/logs", srv->data_dir, id);
    int rc;
    if (!step) {
        cJSON *o = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(o, "logs");
        uv_fs_t fs;
        if (uv_fs_scandir(srv->loop, &fs, dir, 0, NULL) >= 0) {
            uv_dirent_t ent;
            while (uv_fs_scandir_next(&fs, &ent) != UV_EOF) {
                size_t n = strlen(ent.name);
                if (ent.type == UV_DIRENT_FILE && n > 4 && !strcmp(ent.name + n - 4, ".log")) {
                    char *name = kiln__xstrndup(ent.name, n - 4);
                    cJSON_AddItemToArray(a, cJSON_CreateString(name));
                    free(name);
                }
            }
        }
        uv_fs_req_cleanup(&fs);
        rc = send_json(req, 200, "OK", o);
    } else {
        char *name = kiln__xstrdup(step);
        for (char *p = name; *p; p++)
            if (*p == '/' || (unsigned char)*p < 32)
                *p = '_';
        if (name[0] == '.')
            name[0] = '_';
        char *path = kiln__xasprintf("%s/%s.log", dir, name);
        if (access(path, R_OK) != 0)
            rc = send_error(req, 404, "Not Found", "build '%s' has no log of step '%s'", id, step);
        else
            rc = h2o_file_send(req, 200, "OK", path, h2o_iovec_init(H2O_STRLIT("text/plain; charset=utf-8")), 0);
        free(path);
        free(name);
    }
    free(dir);
    return rc;
}

static int api_cancel(kiln__server *srv, h2o_req_t *req, const char *id)
{
    int rc = kiln__serve_cancel(srv, id);
    if (rc == KILN_ENOTFOUND)
        return send_error(req, 404, "Not Found", "no build '%s'", id);
    if (rc == KILN_EINVAL)
        return send_error(req, 409, "Conflict", "build '%s' has ended or is being cancelled already", id);
    kiln__serve_log("build %s: cancel asked through the API", id);
    cJSON *o = kiln__db_get(srv, id);
    return send_json(req, 200, "OK", o ? o : cJSON_CreateObject());
}

static int api_retry(kiln__server *srv, h2o_req_t *req, const char *id)
{
    int status = 500;
    kiln__buf why = KILN__BUF_INIT;
    kiln__job *j = kiln__serve_retry(srv, id, &status, &why);
    int rc;
    if (!j) {
        rc = send_error(req, status, status == 404 ? "Not Found" : status == 409 ? "Conflict" : "Service Unavailable",
                        "%s", why.buf ? why.buf : "cannot retry");
    } else {
        cJSON *o = kiln__db_get(srv, j->id);
        rc = send_json(req, 201, "Created", o ? o : cJSON_CreateObject());
    }
    kiln__buf_release(&why);
    return rc;
}

/* POST /api/builds/ID:retry, or 0 when path is another route. */
static int route_builds_action(kiln__server *srv, h2o_req_t *req, char *rest, bool post, bool *done)
{
    size_t n = strlen(rest);
    *done = false;
    if (n > 6 && !strcmp(rest + n - 6, ":retry")) {
        *done = true;
        if (!post)
            return send_error(req, 405, "Method Not Allowed", "POST /api/builds/ID:retry");
        rest[n - 6] = '\0';
        return api_retry(srv, req, rest);
    }
    return 0;
}

/* A trigger's schedule, time zone, next run (UTC), cancelPrevious. */
static void add_schedule(kiln__server *srv, const kiln__trigger *t, cJSON *j)
{
    if (t->cancel_previous)
        cJSON_AddBoolToObject(j, "cancelPrevious", true);
    if (!t->schedule)
        return;
    cJSON_AddStringToObject(j, "schedule", t->schedule);
    cJSON_AddStringToObject(j, "timeZone", t->time_zone ? t->time_zone : "UTC");
    int64_t next = kiln__sched_next(srv, t->name);
    if (next >= 0) {
        char when[64];
        kiln__format_time(next * 1000000, when, sizeof when);
        cJSON_AddStringToObject(j, "nextRun", when);
    }
}

static int api_triggers(kiln__server *srv, h2o_req_t *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "triggers");
    for (size_t i = 0; i < srv->triggers.n; i++) {
        const kiln__trigger *t = &srv->triggers.v[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", t->name);
        if (t->repo)
            cJSON_AddStringToObject(j, "repo", t->repo);
        if (t->branch)
            cJSON_AddStringToObject(j, "branch", t->branch);
        if (t->tag)
            cJSON_AddStringToObject(j, "tag", t->tag);
        cJSON_AddStringToObject(j, "filename", t->filename);
        cJSON_AddBoolToObject(j, "disabled", t->disabled);
        add_schedule(srv, t, j);
        cJSON_AddItemToArray(a, j);
    }
    return send_json(req, 200, "OK", o);
}

static int api_run(kiln__server *srv, h2o_req_t *req, const char *name)
{
    const kiln__trigger *t = NULL;
    for (size_t i = 0; i < srv->triggers.n; i++)
        if (!strcmp(srv->triggers.v[i].name, name))
            t = &srv->triggers.v[i];
    if (!t)
        return send_error(req, 404, "Not Found", "no trigger '%s' in the triggers file", name);
    kiln__run_req r;
    char why[160];
    if (kiln__run_req_parse(req->entity.base, req->entity.len, &r, why, sizeof why) != 0) {
        kiln__run_req_free(&r);
        return send_error(req, 400, "Bad Request", "%s", why);
    }
    char *repo = kiln__serve_trigger_source(srv, t);
    int rc;
    if (!repo) {
        rc = send_error(req, 400, "Bad Request",
                        "the trigger names its repository by name only (repo:), not by a path or URL kiln "
                        "can fetch from (or start kiln serve with --repos DIR)");
    } else {
        char *ref = r.branch ? kiln__xasprintf("refs/heads/%s", r.branch)
                    : r.tag  ? kiln__xasprintf("refs/tags/%s", r.tag)
                             : kiln__xstrdup("");
        kiln__buf err = KILN__BUF_INIT;
        kiln__job *j = kiln__serve_submit(srv, t, repo, ref, r.commit, (const char *const *)r.substs,
                                          r.n_substs, "api", &err);
        if (!j) {
            rc = send_error(req, 503, "Service Unavailable", "%s", err.buf);
        } else {
            cJSON *o = kiln__db_get(srv, j->id);
            rc = send_json(req, 201, "Created", o ? o : cJSON_CreateObject());
        }
        kiln__buf_release(&err);
        free(ref);
    }
    free(repo);
    kiln__run_req_free(&r);
    return rc;
}

/* ---- webhooks ----------------------------------------------------------
 * One path per forge; each is verified before anything else is read, then
 * its body becomes one push (hooks.h), matched and queued by one dispatch.
 * Every answer leaves one log line. */

typedef struct hook_kind {
    kiln__hook_provider prov;
    const char *event_header, *delivery_header, *delivery_header2;
    const char *sig_header, *sig_header2; /* what carries the secret's proof */
    enum { SIG_SHA256_PREFIXED, SIG_SHA256_HEX, SIG_TOKEN } sig;
} hook_kind;

static const hook_kind hook_kinds[] = {
    {KILN__HOOK_GITHUB, "x-github-event", "x-github-delivery", NULL, "x-hub-signature-256", NULL,
     SIG_SHA256_PREFIXED},
    {KILN__HOOK_GITLAB, "x-gitlab-event", "x-gitlab-event-uuid", "x-gitlab-webhook-uuid", "x-gitlab-token",
     NULL, SIG_TOKEN},
    {KILN__HOOK_GITEA, "x-gitea-event", "x-gitea-delivery", "x-forgejo-delivery", "x-gitea-signature",
     "x-forgejo-signature", SIG_SHA256_HEX},
    {KILN__HOOK_GIT, "x-kiln-event", "x-kiln-delivery", NULL, "x-kiln-signature-256", NULL,
     SIG_SHA256_PREFIXED},
};

static const char *sig_name(const hook_kind *k)
{
    return k->sig == SIG_TOKEN ? "X-Gitlab-Token"
           : k->prov == KILN__HOOK_GITEA ? "X-Gitea-Signature"
           : k->prov == KILN__HOOK_GIT   ? "X-Kiln-Signature-256"
                                         : "X-Hub-Signature-256";
}

/* Whether the request proves it knows the secret, in constant time. */
static bool hook_verified(kiln__server *srv, h2o_req_t *req, const hook_kind *k)
{
    const char *sig = header(req, k->sig_header);
    if (!sig && k->sig_header2)
        sig = header(req, k->sig_header2);
    if (!sig)
        return false;
    const char *secret = srv->webhook_secret;
    if (k->sig == SIG_TOKEN)
        return same_secret(sig, strlen(sig), secret, strlen(secret));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)req->entity.base, req->entity.len,
         mac, &mac_len);
    char want[7 + 2 * EVP_MAX_MD_SIZE + 1] = "sha256=";
    size_t off = k->sig == SIG_SHA256_PREFIXED ? 7 : 0;
    for (unsigned i = 0; i < mac_len; i++)
        snprintf(want + off + 2 * i, 3, "%02x", mac[i]);
    return same_secret(sig, strlen(sig), want, strlen(want));
}

/* A push: the triggers that match start builds. */
static int hook_dispatch(kiln__server *srv, h2o_req_t *req, const char *who, const kiln__hook_push *hp,
                         const char *source)
{
    if (hp->deleted) {
        kiln__serve_log("%s: %s deleted in %s: nothing to build", who, hp->ref, hp->repo);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddArrayToObject(o, "builds");
        return send_json(req, 200, "OK", o);
    }
    kiln__push push = {hp->repo, hp->ref, (const char *const *)hp->files, hp->n_files, hp->files_known};
    cJSON *o = cJSON_CreateObject();
    cJSON *builds = cJSON_AddArrayToObject(o, "builds");
    cJSON *verdicts = cJSON_AddArrayToObject(o, "triggers");
    kiln__buf line = KILN__BUF_INIT;
    int started = 0;
    for (size_t i = 0; i < srv->triggers.n; i++) {
        const kiln__trigger *t = &srv->triggers.v[i];
        char why[512];
        bool fired = kiln__trigger_match(&srv->triggers, t, &push, why, sizeof why);
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", t->name);
        cJSON_AddBoolToObject(v, "fired", fired);
        cJSON_AddStringToObject(v, "why", why);
        cJSON_AddItemToArray(verdicts, v);
        if (!fired)
            continue;
        kiln__buf err = KILN__BUF_INIT;
        kiln__job *j = kiln__serve_submit(srv, t, hp->repo, hp->ref, hp->after, NULL, 0, source, &err);
        if (j) {
            cJSON_AddItemToArray(builds, cJSON_CreateString(j->id));
            kiln__buf_addf(&line, " %s=%s", t->name, j->id);
            started++;
        } else {
            kiln__buf_addf(&line, " %s: %s", t->name, err.buf);
        }
        kiln__buf_release(&err);
    }
    kiln__serve_log("%s: push %s %s (%.12s), %zu file%s%s: %d build%s%s", who, hp->repo, hp->ref, hp->after,
                    hp->n_files, hp->n_files == 1 ? "" : "s", hp->files_known ? "" : " (not all known)",
                    started, started == 1 ? "" : "s", line.len ? line.buf : "");
    kiln__buf_release(&line);
    return send_json(req, 200, "OK", o);
}

static int hook_handle(kiln__server *srv, h2o_req_t *req, const hook_kind *k)
{
    const char *name = kiln__hook_provider_name(k->prov);
    const char *delivery = header(req, k->delivery_header);
    if (!delivery && k->delivery_header2)
        delivery = header(req, k->delivery_header2);
    const char *event = header(req, k->event_header);
    char who[160];
    snprintf(who, sizeof who, "%s delivery %.100s", name, delivery ? delivery : "(none)");
    if (!method_is(req, "POST")) {
        kiln__serve_log("%s: method not allowed: 405", who);
        return send_error(req, 405, "Method Not Allowed", "POST a %s webhook here", name);
    }
    if (req->entity.len > HOOK_BODY_LIMIT) {
        kiln__serve_log("%s: body of %zu bytes is over 25 MiB: 413", who, req->entity.len);
        return send_error(req, 413, "Payload Too Large", "the body is over 25 MiB");
    }
    if (!srv->webhook_secret) {
        kiln__serve_log("%s: no --webhook-secret-file: 401", who);
        return send_error(req, 401, "Unauthorized", "this server has no webhook secret (--webhook-secret-file)");
    }
    if (!hook_verified(srv, req, k)) {
        bool none = !header(req, k->sig_header) && !(k->sig_header2 && header(req, k->sig_header2));
        kiln__serve_log("%s: %s %s: 401", who, none ? "no" : "bad", sig_name(k));
        return send_error(req, 401, "Unauthorized", "%s does not match", sig_name(k));
    }
    if (!event) {
        kiln__serve_log("%s: no %s header: 400", who, k->event_header);
        return send_error(req, 400, "Bad Request", "no %s header", k->event_header);
    }
    kiln__hook_push hp;
    char why[256];
    int kind = kiln__hook_parse(k->prov, event, req->entity.base, req->entity.len, &hp, why, sizeof why);
    int rc;
    cJSON *o;
    switch (kind) {
    case KILN__HOOK_BAD:
        kiln__serve_log("%s: %s event: %s: 400", who, event, why);
        rc = send_error(req, 400, "Bad Request", "%s", why);
        break;
    case KILN__HOOK_PING:
        kiln__serve_log("%s: ping: 200", who);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "pong", "kiln");
        rc = send_json(req, 200, "OK", o);
        break;
    case KILN__HOOK_OTHER:
        kiln__serve_log("%s: %s events start nothing: 202", who, event);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ignored", event);
        cJSON_AddStringToObject(o, "note", "kiln builds on push events only");
        rc = send_json(req, 202, "Accepted", o);
        break;
    default: {
        /* Deliveries are remembered per forge: ids of two forges may meet. */
        char key[160];
        snprintf(key, sizeof key, "%s%s%.100s", k->prov == KILN__HOOK_GITHUB ? "" : name,
                 k->prov == KILN__HOOK_GITHUB ? "" : ":", delivery ? delivery : "");
        if (delivery && kiln__db_delivery_seen(srv, key, event)) {
            kiln__serve_log("%s: seen before (a redelivery): nothing started", who);
            o = cJSON_CreateObject();
            cJSON_AddBoolToObject(o, "duplicate", true);
            cJSON_AddArrayToObject(o, "builds");
            rc = send_json(req, 200, "OK", o);
        } else {
            rc = hook_dispatch(srv, req, who, &hp, name);
        }
    }
    }
    kiln__hook_push_free(&hp);
    return rc;
}

/* POST /hooks/FORGE, or 404. */
static int hooks_route(kiln__server *srv, h2o_req_t *req, const char *forge)
{
    for (size_t i = 0; i < sizeof hook_kinds / sizeof hook_kinds[0]; i++)
        if (!strcmp(forge, kiln__hook_provider_name(hook_kinds[i].prov)))
            return hook_handle(srv, req, &hook_kinds[i]);
    kiln__serve_log("webhook to /hooks/%.60s: no such forge: 404", forge);
    return send_error(req, 404, "Not Found", "no webhook /hooks/%s (github, gitlab, gitea, git)", forge);
}

/* ---- metrics ---------------------------------------------------------- */

static int metrics(kiln__server *srv, h2o_req_t *req)
{
    kiln__buf b = KILN__BUF_INIT;
    kiln__db_metrics(srv, &b);
    int queued = 0;
    for (kiln__job *j = srv->queue_head; j; j = j->next)
        queued++;
    kiln__buf_addf(&b, "# HELP kiln_queue_length Builds waiting for a slot.\n"
                       "# TYPE kiln_queue_length gauge\nkiln_queue_length %d\n"
                       "# HELP kiln_builds_running Builds holding a slot (fetching or running).\n"
                       "# TYPE kiln_builds_running gauge\nkiln_builds_running %d\n"
                       "# HELP kiln_build_slots --max-builds.\n"
                       "# TYPE kiln_build_slots gauge\nkiln_build_slots %d\n",
                   queued, srv->n_running, srv->max_builds);
    char *body = h2o_mem_alloc_pool(&req->pool, b.len);
    memcpy(body, b.buf, b.len);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_send_inline(req, body, b.len);
    kiln__buf_release(&b);
    return 0;
}

/* ---- routing ---------------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    kiln__server *srv = ((struct handler *)self)->srv;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *path = decode(&req->pool, req->path.base, plen, false);
    bool get = method_is(req, "GET") || method_is(req, "HEAD"), post = method_is(req, "POST");
    /* --base-path: a proxy may pass the prefix on or strip it. */
    size_t bl = srv->base_path ? strlen(srv->base_path) : 0;
    if (bl && !strncmp(path, srv->base_path, bl) && (path[bl] == '/' || !path[bl]))
        path = path[bl] ? path + bl : "/";
    if (get && strncmp(path, "/api/", 5) != 0) {
        int rc = kiln__web_handle(srv, req, path);
        if (rc >= 0)
            return rc;
    }
    if (!strncmp(path, "/hooks/", 7))
        return hooks_route(srv, req, path + 7);
    if (!strcmp(path, "/metrics")) {
        if (!get)
            return send_error(req, 405, "Method Not Allowed", "GET /metrics");
        if (!(from_loopback(req) || has_token(srv, req)))
            return refuse_auth(srv, req);
        return metrics(srv, req);
    }
    if (strncmp(path, "/api/", 5) != 0)
        return send_error(req, 404, "Not Found", "no such path: the API is under /api/");
    bool reading = get;
    if (reading ? !(from_loopback(req) || has_token(srv, req)) : !has_token(srv, req))
        return refuse_auth(srv, req);
    const char *rest;
    if (!strcmp(path, "/api/builds")) {
        if (!get)
            return send_error(req, 405, "Method Not Allowed", "GET /api/builds");
        return api_list(srv, req);
    }
    if (!strcmp(path, "/api/triggers")) {
        if (!get)
            return send_error(req, 405, "Method Not Allowed", "GET /api/triggers");
        return api_triggers(srv, req);
    }
    if (!strncmp(path, "/api/builds/", 12) && *(rest = path + 12)) {
        bool done;
        int arc = route_builds_action(srv, req, (char *)rest, post, &done);
        if (done)
            return arc;
        size_t n = strlen(rest);
        if (n > 7 && !strcmp(rest + n - 7, ":cancel")) {
            if (!post)
                return send_error(req, 405, "Method Not Allowed", "POST /api/builds/ID:cancel");
            ((char *)rest)[n - 7] = '\0';
            return api_cancel(srv, req, rest);
        }
        char *slash = strchr(rest, '/');
        if (get && slash && !strcmp(slash, "/log")) {
            *slash = '\0';
            return kiln__logs_handle(srv, req, rest, query(req, "step"), query(req, "from"),
                                     query(req, "limit"));
        }
        if (get && slash && (!strcmp(slash, "/logs") || !strncmp(slash, "/logs/", 6))) {
            *slash = '\0';
            return api_logs(srv, req, rest, slash[5] == '/' && slash[6] ? slash + 6 : NULL);
        }
        if (!get || strchr(rest, '/') || strchr(rest, ':'))
            return send_error(req, 405, "Method Not Allowed", "GET /api/builds/ID");
        return api_show(srv, req, rest);
    }
    if (!strncmp(path, "/api/triggers/", 14) && *(rest = path + 14)) {
        size_t n = strlen(rest);
        if (n > 4 && !strcmp(rest + n - 4, ":run")) {
            if (!post)
                return send_error(req, 405, "Method Not Allowed", "POST /api/triggers/NAME:run");
            ((char *)rest)[n - 4] = '\0';
            return api_run(srv, req, rest);
        }
    }
    return send_error(req, 404, "Not Found", "no such endpoint: %s", path);
}

/* ---- the listener ----------------------------------------------------- */

static void on_conn_close(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    kiln__server *srv = listener->data;
    struct http *h = srv->http;
    if (status != 0)
        return;
    uv_tcp_t *conn = kiln__xmalloc(sizeof *conn);
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_conn_close);
        return;
    }
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_close);
    h2o_accept(&h->accept_ctx, sock);
}

int kiln__http_listen(kiln__server *srv, const char *listen, kiln__buf *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == listen || !end || *end || port < 0 || port > 65535 ||
        (size_t)(colon - listen) >= sizeof host) {
        kiln__buf_addf(err, "--listen: expected HOST:PORT, got '%s'", listen);
        return KILN_EINVAL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
        kiln__buf_addf(err, "--listen: '%s' is not an IP address", host);
        return KILN_EINVAL;
    }
    struct http *h = kiln__xcalloc(1, sizeof *h);
    srv->http = h;
    h2o_config_init(&h->config);
    h->config.max_request_entity_size = H2O_BODY_LIMIT;
    h2o_hostconf_t *hc = h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    struct handler *hd = (struct handler *)h2o_create_handler(pc, sizeof *hd);
    hd->super.on_req = on_req;
    hd->srv = srv;
    h2o_context_init(&h->ctx, srv->loop, &h->config);
    h->ctx_up = true;
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;
    uv_tcp_init(srv->loop, &h->listener);
    h->listener.data = srv;
    h->listening = true;
    int rc = uv_tcp_bind(&h->listener, (struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, on_accept);
    if (rc) {
        kiln__buf_addf(err, "cannot listen on %s: %s", listen, uv_strerror(rc));
        kiln__http_dispose(srv);
        return KILN_EIO;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    char name[INET6_ADDRSTRLEN] = "?";
    int gport = (int)port;
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&got, &len) == 0) {
        if (got.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&got, name, sizeof name);
            gport = ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&got, name, sizeof name);
            gport = ntohs(((struct sockaddr_in *)&got)->sin_port);
        }
    }
    kiln__serve_log("listening on http://%s%s%s:%d (builds at once: %d; data: %s)",
                    got.ss_family == AF_INET6 ? "[" : "", name, got.ss_family == AF_INET6 ? "]" : "", gport,
                    srv->max_builds, srv->data_dir);
    return 0;
}

void kiln__http_stop_listening(kiln__server *srv)
{
    struct http *h = srv->http;
    if (h && h->listening) {
        h->listening = false;
        uv_close((uv_handle_t *)&h->listener, NULL);
    }
}

void kiln__http_dispose(kiln__server *srv)
{
    struct http *h = srv->http;
    if (!h)
        return;
    kiln__http_stop_listening(srv);
    kiln__logs_dispose(srv);
    if (h->ctx_up)
        h2o_context_dispose(&h->ctx);
    h->ctx_up = false;
}

void kiln__http_free(kiln__server *srv)
{
    struct http *h = srv->http;
    if (!h)
        return;
    h2o_config_dispose(&h->config);
    free(h);
    srv->http = NULL;
}
