/* SPDX-License-Identifier: MIT */
/*
 * docker-build: build an image and push its tags by speaking the Docker
 * Engine API (libcurl through the host's http_request, over a unix socket or
 * TCP). No docker CLI is involved.
 *
 *  start      resolve the engine address (with: host, else DOCKER_HOST, else
 *             unix:///var/run/docker.sock), check the options that need the
 *             file system, then GET /version: a missing engine is one line
 *             naming the address, before any work.
 *  build      POST /build with the context as a tar stream: a worker thread
 *             walks the context (honouring .dockerignore) and writes the tar
 *             with libarchive into a bounded ring (docker_context.c); the
 *             upload's read_body takes what is there and pauses the upload
 *             (KILN_EAGAIN, http_resume) when the ring is empty. The engine's
 *             JSON-lines progress goes to the step's log as it arrives; an
 *             errorDetail inside the HTTP 200 stream fails the step with the
 *             engine's message. Outputs: image_id, tags.
 *  push       (push: true) POST /images/{repo}/push?tag=T for each tag, with
 *             X-Registry-Auth from registry_auth or auth_env. Outputs: digest
 *             (the first tag's), digests (REF@DIGEST, comma-separated),
 *             image (the first tag pinned by digest).
 *  dry run    the build runs when an engine answers; when none does, one
 *             line says so and the build request is recorded with
 *             plan_add() instead. Pushes are not sent but recorded,
 *             exactly as they would be sent, without credentials.
 *             describe() records the same plan without touching anything.
 *  cancel     aborts the request in flight; the engine stops a build when the
 *             client drops the connection. The producer thread is stopped and
 *             joined (its after-work callback) before step_done().
 */
#include <kiln/kiln.h>

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "docker_args.h"
#include "docker_context.h"
#include "docker_util.h"
#include "../common/xalloc.h"

KILN_API_DEFINE;

#define DB_DEFAULT_HOST "unix:///var/run/docker.sock"
#define DB_MAX_API "1.41"
/* The first question to the engine. Generous: podman's API service answers
 * its first request slowly on a busy machine (seen: > 15 s), and an engine
 * that is not there fails at once (connection refused); the step's own
 * timeout stays the user's bound. */
#define DB_PING_TIMEOUT_MS 120000
#define DB_LINE_MAX (1u << 20)
#define DB_RING_SIZE (1u << 20)

/* ---- options ----------------------------------------------------------- */

typedef struct db_config {
    const char *host;
    const char *context;
    const char *dockerfile;
    const kiln_strv *tags;
    const kiln_kvv *build_args;
    const char *target;
    const kiln_kvv *labels;
    bool no_cache;
    bool pull;
    const char *platform;
    bool push;
    const char *auth_env;
    const kiln_kvv *registry_auth;
    const kiln_strv *args;
} db_config;

#define OPT(type, name, def, flags, field, desc)                                                   \
    {(type), (name), (def), (flags), offsetof(db_config, field), 1, 0, NULL, (desc)}

static const kiln_option db_options[] = {
    OPT(KILN_OPT_STRING, "host", NULL, 0, host,
        "Engine address: unix:///path or tcp://host:port; default $DOCKER_HOST, else unix:///var/run/docker.sock."),
    OPT(KILN_OPT_STRING, "context", ".", 0, context, "Build context directory, relative to the step's directory."),
    OPT(KILN_OPT_STRING, "dockerfile", NULL, 0, dockerfile,
        "Dockerfile path, relative to the step's directory (like docker build -f); default CONTEXT/Dockerfile."),
    OPT(KILN_OPT_STRING_LIST, "tags", NULL, 0, tags, "Image references to tag the result with (name:tag)."),
    OPT(KILN_OPT_STRING_MAP, "build_args", NULL, 0, build_args, "Build arguments (ARG values)."),
    OPT(KILN_OPT_STRING, "target", NULL, 0, target, "Build stage to stop at."),
    OPT(KILN_OPT_STRING_MAP, "labels", NULL, 0, labels, "Labels to set on the image."),
    OPT(KILN_OPT_BOOL, "no_cache", "false", 0, no_cache, "Do not use the build cache."),
    OPT(KILN_OPT_BOOL, "pull", "false", 0, pull, "Always try to pull newer versions of base images."),
    OPT(KILN_OPT_STRING, "platform", NULL, 0, platform, "Target platform, e.g. linux/amd64."),
    OPT(KILN_OPT_BOOL, "push", "false", 0, push, "Push every tag to its registry after the build."),
    OPT(KILN_OPT_STRING, "auth_env", NULL, 0, auth_env,
        "Environment variable holding registry credentials: JSON {\"username\",\"password\"} or user:password."),
    OPT(KILN_OPT_STRING_MAP, "registry_auth", NULL, KILN_OPT_SECRET, registry_auth,
        "Registry credentials: username, password (or identitytoken), optional serveraddress."),
    OPT(KILN_OPT_STRING_LIST, "args", NULL, 0, args,
        "The docker CLI's own arguments, as Cloud Build steps give them: [build, -t, TAG, ..., CONTEXT] "
        "or [push, TAG]; instead of the options above."),
    KILN_OPTIONS_END,
};

static const char *const db_auth_keys[] = {"username", "password", "serveraddress", "identitytoken",
                                           "email", "auth", NULL};

/* ---- step state -------------------------------------------------------- */

typedef enum { PH_PING, PH_BUILD, PH_PUSH, PH_END } db_phase;

typedef struct db_step {
    kiln_step *step;
    const db_config *cfg;
    db_config eff;  /* cfg with args (the docker CLI form) applied */
    dk_cli cli;
    bool push_only; /* args: [push, TAG] */
    dk_addr addr;
    const char *addr_src; /* where the address came from, for messages */
    char api[24];         /* "/v1.41", or "" */
    db_phase phase;
    kiln_http *req;
    dk_lines lines;
    bool dry;

    /* build */
    char *ctx_dir;
    char *dockerfile_rel;  /* inside the context */
    char *dockerfile_extra; /* outside: sent as .dockerfile.kiln */
    dk_ctx *ctx;
    bool worker_running;
    atomic_int posts;
    bool abandoned; /* the host ended the step: free once the worker is through */
    bool upload_done;
    char *image_id;
    dk_buf engine_error; /* errorDetail / error / message */
    dk_buf tail;         /* last non-JSON text, for error reports */

    /* push */
    dk_ref *refs;
    size_t n_refs, push_i;
    char (*digests)[72];
    cJSON *auth;          /* credentials, or NULL */
    const char *auth_src; /* "auth_env NAME" / "registry_auth" */

    /* the end */
    bool cancelled, finishing;
    int status;
    char *reason;
} db_step;

/* Options from args: the docker CLI form, as Cloud Build steps write it. */
static int apply_cli(const db_config *c, dk_cli *cli, db_config *eff, char *err, size_t cap)
{
    *eff = *c;
    memset(cli, 0, sizeof *cli);
    if (!c->args || !c->args->n)
        return 0;
    if (dk_cli_parse(c->args, cli, err, cap) < 0)
        return -1;
    if (cli->tags.n)
        eff->tags = &cli->tags;
    if (cli->push_only) {
        eff->push = true;
        return 0;
    }
    eff->context = cli->context;
    if (cli->dockerfile)
        eff->dockerfile = cli->dockerfile;
    if (cli->target)
        eff->target = cli->target;
    if (cli->platform)
        eff->platform = cli->platform;
    eff->no_cache = eff->no_cache || cli->no_cache;
    eff->pull = eff->pull || cli->pull;
    if (cli->build_args.n)
        eff->build_args = &cli->build_args;
    if (cli->labels.n)
        eff->labels = &cli->labels;
    return 0;
}

static void db_build_start(db_step *st);
static int plan_build(db_step *st);
static int db_describe_cfg(kiln_step *step, const db_config *c, char *err, size_t errcap);
static void db_push_next(db_step *st);
static void db_finish(db_step *st, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- helpers ----------------------------------------------------------- */

/* The engine address, and where it came from. */
static int resolve_addr(const db_config *c, dk_addr *a, const char **src, char *err, size_t errlen)
{
    const char *spec = c->host;
    *src = "with: host";
    if (!spec || !*spec) {
        spec = getenv("DOCKER_HOST");
        *src = "DOCKER_HOST";
    }
    if (!spec || !*spec) {
        spec = DB_DEFAULT_HOST;
        *src = "the default";
    }
    return dk_addr_parse(spec, a, err, errlen);
}

static int parse_refs(const db_config *c, dk_ref **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!c->tags || !c->tags->n)
        return 0;
    dk_ref *refs = calloc(c->tags->n, sizeof *refs);
    if (!refs)
        abort();
    for (size_t i = 0; i < c->tags->n; i++)
        if (dk_ref_parse(c->tags->v[i], &refs[i], err, errlen) < 0) {
            for (size_t k = 0; k < i; k++)
                dk_ref_free(&refs[k]);
            free(refs);
            return -1;
        }
    *out = refs;
    *n = c->tags->n;
    return 0;
}

static void free_refs(dk_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dk_ref_free(&refs[i]);
    free(refs);
}

/* Credentials as a JSON object, or NULL when none are configured. On error
 * returns NULL and fills err. */
static cJSON *load_auth(const db_config *c, const char **src, char *err, size_t errlen)
{
    *src = NULL;
    err[0] = '\0';
    if (c->registry_auth && c->registry_auth->n) {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < c->registry_auth->n; i++)
            cJSON_AddStringToObject(o, c->registry_auth->keys[i],
                                    c->registry_auth->values[i] ? c->registry_auth->values[i] : "");
        *src = "registry_auth";
        return o;
    }
    if (!c->auth_env || !*c->auth_env)
        return NULL;
    const char *v = getenv(c->auth_env);
    if (!v || !*v) {
        snprintf(err, errlen, "auth_env: the environment variable %s is not set", c->auth_env);
        return NULL;
    }
    cJSON *o = NULL;
    if (v[0] == '{') {
        o = cJSON_Parse(v);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            snprintf(err, errlen, "auth_env: %s is not a JSON object (want {\"username\": ..., \"password\": ...})",
                     c->auth_env);
            return NULL;
        }
    } else {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v) {
            snprintf(err, errlen, "auth_env: %s must hold JSON credentials or user:password", c->auth_env);
            return NULL;
        }
        o = cJSON_CreateObject();
        char *user = strndup(v, (size_t)(colon - v));
        cJSON_AddStringToObject(o, "username", user);
        cJSON_AddStringToObject(o, "password", colon + 1);
        free(user);
    }
    static __thread char srcbuf[300];
    snprintf(srcbuf, sizeof srcbuf, "auth_env %s", c->auth_env);
    *src = srcbuf;
    return o;
}

/* X-Registry-Auth for one registry: base64url(JSON); "{}" without credentials. */
static void auth_header(dk_buf *h, const cJSON *auth, const char *registry)
{
    dk_buf_adds(h, "X-Registry-Auth: ");
    if (!auth) {
        dk_buf_add_b64url(h, "{}", 2);
        return;
    }
    cJSON *o = cJSON_Duplicate(auth, 1);
    if (!cJSON_GetObjectItemCaseSensitive(o, "serveraddress"))
        cJSON_AddStringToObject(o, "serveraddress", registry);
    char *json = cJSON_PrintUnformatted(o);
    dk_buf_add_b64url(h, json, strlen(json));
    cJSON_free(json);
    cJSON_Delete(o);
}

static void push_url(dk_buf *u, const dk_addr *a, const char *api, const dk_ref *r)
{
    dk_buf_addf(u, "%s%s/images/", a->base, api);
    /* keep '/' and ':' of the repository readable, escape the rest */
    for (const char *p = r->repo; *p; p++) {
        if (*p == '/' || *p == ':') {
            dk_buf_add(u, p, 1);
        } else {
            char one[2] = {*p, 0};
            dk_buf_add_urlenc(u, one);
        }
    }
    dk_buf_adds(u, "/push?tag=");
    dk_buf_add_urlenc(u, r->tag);
}

/* Record the push requests in the plan (dry runs, describe). No credentials. */
static int plan_pushes(kiln_step *step, const dk_addr *a, const char *api, const dk_ref *refs, size_t n,
                       const char *auth_src)
{
    for (size_t i = 0; i < n; i++) {
        dk_buf url = {0};
        push_url(&url, a, api, &refs[i]);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", "docker-push");
        cJSON_AddStringToObject(o, "method", "POST");
        cJSON_AddStringToObject(o, "url", url.s);
        cJSON_AddStringToObject(o, "engine", a->display);
        if (a->socket)
            cJSON_AddStringToObject(o, "unix_socket", a->socket);
        dk_buf ref = {0};
        dk_buf_addf(&ref, "%s:%s", refs[i].repo, refs[i].tag);
        cJSON_AddStringToObject(o, "image", ref.s);
        cJSON_AddStringToObject(o, "registry", refs[i].registry);
        cJSON *h = cJSON_AddObjectToObject(o, "headers");
        dk_buf av = {0};
        if (auth_src)
            dk_buf_addf(&av, "<credentials from %s for %s>", auth_src, refs[i].registry);
        else
            dk_buf_adds(&av, "e30="); /* base64("{}"): no credentials, nothing to hide */
        cJSON_AddStringToObject(h, "X-Registry-Auth", av.s);
        char *json = cJSON_PrintUnformatted(o);
        int rc = kiln_api->plan_add(step, json);
        cJSON_free(json);
        cJSON_Delete(o);
        dk_buf_free(&url);
        dk_buf_free(&ref);
        dk_buf_free(&av);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- finishing --------------------------------------------------------- */

static void db_free(db_step *st)
{
    dk_addr_free(&st->addr);
    dk_buf_free(&st->lines.part);
    free(st->ctx_dir);
    free(st->dockerfile_rel);
    free(st->dockerfile_extra);
    dk_ctx_free(st->ctx);
    free(st->image_id);
    dk_buf_free(&st->engine_error);
    dk_buf_free(&st->tail);
    free_refs(st->refs, st->n_refs);
    free(st->digests);
    cJSON_Delete(st->auth);
    free(st->reason);
    dk_cli_free(&st->cli);
    free(st);
}

/* step_done once the producer thread and its posts are through. */
static void maybe_release(db_step *st)
{
    if (!st->finishing || st->worker_running || atomic_load(&st->posts) > 0)
        return;
    if (st->abandoned) {
        db_free(st); /* the host is done with the step: no call with it */
        return;
    }
    kiln_step *step = st->step;
    int status = st->status;
    char *reason = st->reason;
    st->reason = NULL;
    kiln_api->step_set_data(step, NULL);
    db_free(st);
    kiln_api->step_done(step, status, reason);
    free(reason);
}

static void db_finish(db_step *st, int status, const char *fmt, ...)
{
    if (st->finishing)
        return;
    st->finishing = true;
    st->phase = PH_END;
    st->status = st->cancelled && status != 0 ? KILN_ECANCELED : status;
    if (fmt) {
        dk_buf r = {0};
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *s = malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
        dk_one_line(s);
        st->reason = s;
        dk_buf_free(&r);
    }
    if (st->ctx)
        dk_ctx_cancel(st->ctx);
    maybe_release(st);
}

/* ---- the engine's JSON lines --------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void out(db_step *st, kiln_stream s, const char *p, size_t n)
{
    kiln_api->step_output(st->step, s, p, n);
}

static void keep_tail(db_step *st, const char *line, size_t len)
{
    if (st->tail.len > 4096)
        dk_buf_reset(&st->tail);
    if (st->tail.len)
        dk_buf_adds(&st->tail, " ");
    dk_buf_add(&st->tail, line, len > 2048 ? 2048 : len);
}

static int on_line(void *data, const char *line, size_t len)
{
    db_step *st = data;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len)
        return 0;
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        out(st, KILN_STREAM_STDOUT, line, len);
        out(st, KILN_STREAM_STDOUT, "\n", 1);
        keep_tail(st, line, len);
        return 0;
    }
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "errorDetail");
    const char *err = detail ? jstr(detail, "message") : NULL;
    if (!err)
        err = jstr(j, "error");
    const char *stream = jstr(j, "stream");
    const char *status = jstr(j, "status");
    const char *message = jstr(j, "message");
    const cJSON *aux = cJSON_GetObjectItemCaseSensitive(j, "aux");

    if (err) {
        if (!st->engine_error.len)
            dk_buf_adds(&st->engine_error, err);
        dk_buf m = {0};
        dk_buf_addf(&m, "ERROR: %s\n", err);
        out(st, KILN_STREAM_STDERR, m.s, m.len);
        dk_buf_free(&m);
    } else if (stream) {
        out(st, KILN_STREAM_STDOUT, stream, strlen(stream));
    } else if (status) {
        const char *id = jstr(j, "id");
        const char *progress = jstr(j, "progress");
        const cJSON *pd = cJSON_GetObjectItemCaseSensitive(j, "progressDetail");
        bool bar = (progress && *progress) || (cJSON_IsObject(pd) && pd->child);
        if (!bar) { /* like docker without a terminal: no progress bars */
            dk_buf m = {0};
            dk_buf_addf(&m, "%s%s%s\n", id ? id : "", id ? ": " : "", status);
            out(st, KILN_STREAM_STDOUT, m.s, m.len);
            dk_buf_free(&m);
        }
        char d[72];
        if (st->phase == PH_PUSH && st->push_i < st->n_refs && dk_find_digest(status, d))
            memcpy(st->digests[st->push_i], d, sizeof d);
    } else if (message && !aux) {
        /* an error body ({"message": ...}) of a non-200 answer */
        if (!st->engine_error.len)
            dk_buf_adds(&st->engine_error, message);
    }
    if (cJSON_IsObject(aux)) {
        const char *id = jstr(aux, "ID");
        const char *dg = jstr(aux, "Digest");
        char d[72];
        if (id && st->phase == PH_BUILD) {
            free(st->image_id);
            st->image_id = kp_xstrdup(id);
        }
        if (dg && st->phase == PH_PUSH && st->push_i < st->n_refs && dk_find_digest(dg, d))
            memcpy(st->digests[st->push_i], d, sizeof d);
    }
    cJSON_Delete(j);
    return 0;
}

static int on_data(void *data, const char *buf, size_t len)
{
    db_step *st = data;
    return dk_lines_feed(&st->lines, buf, len, DB_LINE_MAX, on_line, st);
}

/* What the engine said, for a failure reason. */
static const char *engine_said(db_step *st)
{
    if (st->engine_error.len)
        return st->engine_error.s;
    if (st->tail.len)
        return st->tail.s;
    return "no message";
}

/* ---- ping ------------------------------------------------------------------ */

static void on_ping(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    db_step *st = data;
    st->req = NULL;
    if (st->cancelled) {
        db_finish(st, KILN_ECANCELED, NULL);
        return;
    }
    if (err || resp->status != 200) {
        dk_buf why = {0};
        if (err)
            dk_buf_addf(&why, "%s", resp->error ? resp->error : kiln_api->strerror(err));
        else
            dk_buf_addf(&why, "GET /version answered HTTP %d, not a Docker engine", resp->status);
        if (st->dry) {
            /* A dry run goes on without an engine: what would have been
             * sent to it is recorded in the plan instead. */
            kiln_info(st->step, "dry run: no Docker engine answered at %s (%s): %s", st->addr.display,
                      st->addr_src, why.s);
            int rc = 0;
            if (!st->push_only) {
                rc = plan_build(st);
                if (st->n_refs)
                    kiln_info(st->step, "dry run: the build of %s:%s is recorded in the plan, not run",
                              st->refs[0].repo, st->refs[0].tag);
                else
                    kiln_info(st->step, "dry run: the build is recorded in the plan, not run");
            }
            if (rc == 0 && st->cfg->push) {
                rc = plan_pushes(st->step, &st->addr, "/v" DB_MAX_API, st->refs, st->n_refs, st->auth_src);
                for (size_t i = 0; i < st->n_refs; i++)
                    kiln_info(st->step, "dry run: the push of %s:%s is recorded in the plan, not sent",
                              st->refs[i].repo, st->refs[i].tag);
            }
            dk_buf_free(&why);
            db_finish(st, rc, rc ? "could not record the plan" : NULL);
            return;
        }
        db_finish(st, KILN_EHTTP, "no Docker engine at %s (%s): %s", st->addr.display, st->addr_src, why.s);
        dk_buf_free(&why);
        return;
    }
    /* API version: the engine's, capped at the one this plugin speaks. */
    cJSON *j = resp->body ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;
    const char *v = jstr(j, "ApiVersion");
    const char *name = NULL;
    const cJSON *comps = cJSON_GetObjectItemCaseSensitive(j, "Components");
    if (cJSON_IsArray(comps) && comps->child)
        name = jstr(comps->child, "Name");
    int maj = 0, min = 0;
    if (v && sscanf(v, "%d.%d", &maj, &min) == 2 && maj == 1)
        snprintf(st->api, sizeof st->api, "/v1.%d", min < 41 ? min : 41);
    else
        st->api[0] = '\0';
    kiln_info(st->step, "engine at %s: %s %s, API %s (using %s)", st->addr.display, name ? name : "Docker Engine",
              jstr(j, "Version") ? jstr(j, "Version") : "?", v ? v : "?", st->api[0] ? st->api + 1 : "unversioned");
    cJSON_Delete(j);
    if (!st->push_only) {
        db_build_start(st);
        return;
    }
    /* args: [push, TAG]: the image was built by an earlier step. */
    if (st->dry) {
        int rc = plan_pushes(st->step, &st->addr, st->api, st->refs, st->n_refs, st->auth_src);
        kiln_info(st->step, "dry run: push of %s:%s skipped (recorded in the plan)", st->refs[0].repo,
                  st->refs[0].tag);
        db_finish(st, rc, rc ? "could not record the push plan" : NULL);
        return;
    }
    st->phase = PH_PUSH;
    st->push_i = 0;
    db_push_next(st);
}

/* ---- build ----------------------------------------------------------------- */

static void on_wake_loop(void *data)
{
    db_step *st = data;
    atomic_fetch_sub(&st->posts, 1);
    if (!st->finishing && st->phase == PH_BUILD && st->req)
        kiln_api->http_resume(st->req);
    maybe_release(st);
}

/* producer thread: new tar bytes after the reader found none */
static void on_wake(void *data)
{
    db_step *st = data;
    atomic_fetch_add(&st->posts, 1);
    if (kiln_api->post(KILN_OBJ(st->step), on_wake_loop, st) < 0)
        atomic_fetch_sub(&st->posts, 1);
}

static void produce_work(void *data)
{
    db_step *st = data;
    dk_ctx_produce(st->ctx);
}

static void produce_after(void *data, int err)
{
    db_step *st = data;
    st->worker_running = false;
    maybe_release(st);
}

static long read_body(void *data, char *buf, size_t cap)
{
    db_step *st = data;
    long r = dk_ctx_read(st->ctx, buf, cap);
    if (r == KILN_EAGAIN && !KILN_API_HAS(kiln_api, http_resume)) {
        /* An old host cannot pause the upload: wait for the producer here. */
        for (int i = 0; i < 30000 && r == KILN_EAGAIN; i++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            r = dk_ctx_read(st->ctx, buf, cap);
        }
    }
    if (r > 0)
        kiln_api->step_progress(st->step, (int64_t)dk_ctx_bytes(st->ctx), 0, "sending the build context");
    if (r == 0 && !st->upload_done) {
        st->upload_done = true;
        uint64_t b = dk_ctx_bytes(st->ctx);
        kiln_info(st->step, "sent the build context: %.1f MiB, %llu entries, %llu left out by .dockerignore",
                  (double)b / (1024.0 * 1024.0), (unsigned long long)dk_ctx_files(st->ctx),
                  (unsigned long long)dk_ctx_ignored(st->ctx));
    }
    return r;
}

static void add_json_param(dk_buf *u, const char *name, const kiln_kvv *kv)
{
    if (!kv || !kv->n)
        return;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < kv->n; i++)
        cJSON_AddStringToObject(o, kv->keys[i], kv->values[i] ? kv->values[i] : "");
    char *json = cJSON_PrintUnformatted(o);
    dk_buf_addf(u, "&%s=", name);
    dk_buf_add_urlenc(u, json);
    cJSON_free(json);
    cJSON_Delete(o);
}

static void on_build_done(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    db_step *st = data;
    st->req = NULL;
    dk_lines_flush(&st->lines, on_line, st);
    if (st->cancelled) {
        db_finish(st, KILN_ECANCELED, "build canceled; the connection to the engine was dropped");
        return;
    }
    const char *perr = st->ctx ? dk_ctx_error(st->ctx) : NULL;
    if (perr) {
        db_finish(st, KILN_EIO, "%s", perr);
        return;
    }
    if (err) {
        db_finish(st, KILN_EHTTP, "the build request to %s failed: %s", st->addr.display,
                  resp->error ? resp->error : kiln_api->strerror(err));
        return;
    }
    if (resp->status != 200) {
        db_finish(st, KILN_ESTEPFAILED, "the engine refused the build (HTTP %d): %s", resp->status, engine_said(st));
        return;
    }
    if (st->engine_error.len) {
        db_finish(st, KILN_ESTEPFAILED, "build failed: %s", st->engine_error.s);
        return;
    }
    if (!st->image_id) {
        db_finish(st, KILN_ESTEPFAILED, "the engine reported no image id (%s)", engine_said(st));
        return;
    }
    kiln_api->step_set_output(st->step, "image_id", st->image_id);
    dk_buf tags = {0};
    for (size_t i = 0; i < st->n_refs; i++)
        dk_buf_addf(&tags, "%s%s:%s", i ? "," : "", st->refs[i].repo, st->refs[i].tag);
    kiln_api->step_set_output(st->step, "tags", tags.len ? tags.s : "");
    kiln_info(st->step, "built %s%s%s", st->image_id, tags.len ? " as " : "", tags.len ? tags.s : "");
    dk_buf_free(&tags);

    if (!st->cfg->push) {
        db_finish(st, 0, NULL);
        return;
    }
    if (st->dry) {
        int rc = plan_pushes(st->step, &st->addr, st->api, st->refs, st->n_refs, st->auth_src);
        for (size_t i = 0; i < st->n_refs; i++)
            kiln_info(st->step, "dry run: push of %s:%s skipped (recorded in the plan)", st->refs[i].repo,
                      st->refs[i].tag);
        db_finish(st, rc, rc ? "could not record the push plan" : NULL);
        return;
    }
    st->phase = PH_PUSH;
    st->push_i = 0;
    db_push_next(st);
}

/* POST /build's URL: tags, Dockerfile and the build options. */
static void build_url(const db_step *st, const char *api, dk_buf *url)
{
    const db_config *c = st->cfg;
    dk_buf_addf(url, "%s%s/build?rm=1&forcerm=1", st->addr.base, api);
    for (size_t i = 0; i < st->n_refs; i++) {
        dk_buf_adds(url, "&t=");
        dk_buf r = {0};
        dk_buf_addf(&r, "%s:%s", st->refs[i].repo, st->refs[i].tag);
        dk_buf_add_urlenc(url, r.s);
        dk_buf_free(&r);
    }
    dk_buf_adds(url, "&dockerfile=");
    dk_buf_add_urlenc(url, st->dockerfile_rel);
    add_json_param(url, "buildargs", c->build_args);
    add_json_param(url, "labels", c->labels);
    if (c->target && *c->target) {
        dk_buf_adds(url, "&target=");
        dk_buf_add_urlenc(url, c->target);
    }
    if (c->platform && *c->platform) {
        dk_buf_adds(url, "&platform=");
        dk_buf_add_urlenc(url, c->platform);
    }
    if (c->no_cache)
        dk_buf_adds(url, "&nocache=1");
    if (c->pull)
        dk_buf_adds(url, "&pull=1");
}

/* Dry run, no engine: the build request as it would be sent, in the plan. */
static int plan_build(db_step *st)
{
    dk_buf url = {0};
    build_url(st, "/v" DB_MAX_API, &url);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "docker-build");
    cJSON_AddStringToObject(o, "method", "POST");
    cJSON_AddStringToObject(o, "url", url.s);
    cJSON_AddStringToObject(o, "engine", st->addr.display);
    if (st->addr.socket)
        cJSON_AddStringToObject(o, "unix_socket", st->addr.socket);
    dk_buf ref = {0};
    if (st->n_refs)
        dk_buf_addf(&ref, "%s:%s", st->refs[0].repo, st->refs[0].tag);
    if (ref.len)
        cJSON_AddStringToObject(o, "image", ref.s);
    cJSON_AddStringToObject(o, "context", st->ctx_dir);
    cJSON_AddStringToObject(o, "dockerfile", st->dockerfile_extra ? st->dockerfile_extra : st->dockerfile_rel);
    cJSON_AddStringToObject(o, "note", "not run: no Docker engine answered");
    char *json = cJSON_PrintUnformatted(o);
    int rc = kiln_api->plan_add(st->step, json);
    cJSON_free(json);
    cJSON_Delete(o);
    dk_buf_free(&url);
    dk_buf_free(&ref);
    return rc;
}

static void db_build_start(db_step *st)
{
    dk_buf url = {0};
    st->phase = PH_BUILD;
    build_url(st, st->api, &url);

    /* Credentials for pulling base images: X-Registry-Config. */
    dk_buf regcfg = {0};
    if (st->auth) {
        cJSON *cfg = cJSON_CreateObject();
        const char *server = jstr(st->auth, "serveraddress");
        if (!server && st->n_refs)
            server = st->refs[0].registry;
        if (server) {
            cJSON_AddItemToObject(cfg, server, cJSON_Duplicate(st->auth, 1));
            char *json = cJSON_PrintUnformatted(cfg);
            dk_buf_adds(&regcfg, "X-Registry-Config: ");
            dk_buf_add_b64url(&regcfg, json, strlen(json));
            cJSON_free(json);
        }
        cJSON_Delete(cfg);
    }
    const char *headers[] = {"Content-Type: application/x-tar", regcfg.len ? regcfg.s : NULL, NULL};

    dk_ctx_opts o = {
        .dir = st->ctx_dir,
        .dockerfile_rel = st->dockerfile_extra ? NULL : st->dockerfile_rel,
        .extra_path = st->dockerfile_extra,
        .extra_name = st->dockerfile_extra ? st->dockerfile_rel : NULL,
        .ring_size = DB_RING_SIZE,
        .wake = on_wake,
        .wake_data = st,
    };
    st->ctx = dk_ctx_new(&o);
    kiln_debug(st->step, "POST %s", url.s);
    kiln_http_req req = {
        .struct_size = sizeof req,
        .method = "POST",
        .url = url.s,
        .unix_socket = st->addr.socket,
        .headers = headers,
        .read_body = read_body,
        .read_data = st,
        .on_data = on_data,
        .on_data_data = st,
    };
    int rc = kiln_api->http_request(st->step, &req, on_build_done, st, &st->req);
    dk_buf_free(&url);
    dk_buf_free(&regcfg);
    if (rc < 0) {
        db_finish(st, rc, "cannot send the build request: %s", kiln_api->strerror(rc));
        return;
    }
    st->worker_running = true;
    rc = kiln_api->queue_work(KILN_OBJ(st->step), produce_work, produce_after, st);
    if (rc < 0) {
        st->worker_running = false;
        kiln_api->http_abort(st->req);
        st->cancelled = false;
        dk_ctx_cancel(st->ctx);
        /* the request's callback ends the step (ECANCELED); say why first */
        kiln_error(st->step, "cannot start the build context thread: %s", kiln_api->strerror(rc));
    }
}

/* ---- push ------------------------------------------------------------------ */

static void on_push_done(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    db_step *st = data;
    st->req = NULL;
    dk_lines_flush(&st->lines, on_line, st);
    const dk_ref *r = &st->refs[st->push_i];
    if (st->cancelled) {
        db_finish(st, KILN_ECANCELED, "push of %s:%s canceled", r->repo, r->tag);
        return;
    }
    if (err) {
        db_finish(st, KILN_EHTTP, "the push request for %s:%s to %s failed: %s", r->repo, r->tag, st->addr.display,
                  resp->error ? resp->error : kiln_api->strerror(err));
        return;
    }
    if (resp->status != 200 || st->engine_error.len) {
        dk_buf m = {0};
        dk_explain_push_error(&m, engine_said(st), r, st->auth_src);
        db_finish(st, KILN_ESTEPFAILED, "%s", m.s);
        dk_buf_free(&m);
        return;
    }
    if (!st->digests[st->push_i][0]) {
        db_finish(st, KILN_ESTEPFAILED, "push of %s:%s: the engine reported no digest (%s)", r->repo, r->tag,
                  engine_said(st));
        return;
    }
    kiln_info(st->step, "pushed %s:%s@%s", r->repo, r->tag, st->digests[st->push_i]);
    st->push_i++;
    if (st->push_i < st->n_refs) {
        db_push_next(st);
        return;
    }
    kiln_api->step_set_output(st->step, "digest", st->digests[0]);
    dk_buf all = {0}, pinned = {0};
    for (size_t i = 0; i < st->n_refs; i++)
        dk_buf_addf(&all, "%s%s:%s@%s", i ? "," : "", st->refs[i].repo, st->refs[i].tag, st->digests[i]);
    dk_buf_addf(&pinned, "%s@%s", st->refs[0].repo, st->digests[0]);
    kiln_api->step_set_output(st->step, "digests", all.s);
    kiln_api->step_set_output(st->step, "image", pinned.s);
    dk_buf_free(&all);
    dk_buf_free(&pinned);
    db_finish(st, 0, NULL);
}

static void db_push_next(db_step *st)
{
    const dk_ref *r = &st->refs[st->push_i];
    dk_buf url = {0}, auth = {0};
    dk_buf_reset(&st->engine_error);
    dk_buf_reset(&st->tail);
    push_url(&url, &st->addr, st->api, r);
    auth_header(&auth, st->auth, r->registry);
    const char *headers[] = {auth.s, NULL};
    kiln_info(st->step, "pushing %s:%s to %s%s", r->repo, r->tag, r->registry,
              st->auth_src ? " with credentials" : "");
    kiln_http_req req = {
        .struct_size = sizeof req,
        .method = "POST",
        .url = url.s,
        .unix_socket = st->addr.socket,
        .headers = headers,
        .on_data = on_data,
        .on_data_data = st,
    };
    int rc = kiln_api->http_request(st->step, &req, on_push_done, st, &st->req);
    dk_buf_free(&url);
    dk_buf_free(&auth);
    if (rc < 0)
        db_finish(st, rc, "cannot send the push request: %s", kiln_api->strerror(rc));
}

/* ---- plugin entry points ----------------------------------------------------- */

static int db_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static int db_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const db_config *orig = config;
    int bad = 0;
    char err[512];
    if (orig->args && orig->args->n &&
        ((orig->tags && orig->tags->n) || orig->dockerfile || orig->target || orig->platform ||
         (orig->build_args && orig->build_args->n) || (orig->labels && orig->labels->n) ||
         (orig->context && strcmp(orig->context, ".") != 0))) {
        kiln_api->diag(diag, "args", "args is the docker command line; give tags, context, dockerfile, "
                                     "target, platform, build_args and labels there, not as options too");
        return KILN_ECONFIG;
    }
    dk_cli cli;
    db_config eff;
    if (apply_cli(orig, &cli, &eff, err, sizeof err) < 0) {
        kiln_api->diag(diag, "args", "%s", err);
        return KILN_ECONFIG;
    }
    const db_config *c = &eff;
    if (c->host && *c->host) {
        dk_addr a;
        if (dk_addr_parse(c->host, &a, err, sizeof err) < 0) {
            kiln_api->diag(diag, "host", "%s", err);
            bad++;
        }
        dk_addr_free(&a);
    }
    for (size_t i = 0; c->tags && i < c->tags->n; i++) {
        dk_ref r;
        if (dk_ref_parse(c->tags->v[i], &r, err, sizeof err) < 0) {
            kiln_api->diag(diag, "tags", "%s", err);
            bad++;
        }
        dk_ref_free(&r);
    }
    if (c->push && (!c->tags || !c->tags->n)) {
        kiln_api->diag(diag, "push", "needs at least one tag (tags: [registry/name:tag]) to push");
        bad++;
    }
    if (c->auth_env && *c->auth_env && c->registry_auth && c->registry_auth->n) {
        kiln_api->diag(diag, "auth_env", "give credentials either with auth_env or with registry_auth, not both");
        bad++;
    }
    for (size_t i = 0; c->registry_auth && i < c->registry_auth->n; i++) {
        bool ok = false;
        for (const char *const *k = db_auth_keys; *k; k++)
            ok = ok || strcmp(*k, c->registry_auth->keys[i]) == 0;
        if (!ok) {
            kiln_api->diag(diag, "registry_auth",
                           "unknown key \"%s\" (use username, password, identitytoken, serveraddress)",
                           c->registry_auth->keys[i]);
            bad++;
        }
    }
    for (size_t i = 0; c->build_args && i < c->build_args->n; i++)
        if (!c->build_args->keys[i][0]) {
            kiln_api->diag(diag, "build_args", "a build argument needs a name");
            bad++;
        }
    if (c->context && !*c->context) {
        kiln_api->diag(diag, "context", "is empty; use \".\" for the step's directory");
        bad++;
    }
    dk_cli_free(&cli);
    return bad ? KILN_ECONFIG : 0;
}

static char *join_path(const char *dir, const char *p)
{
    dk_buf b = {0};
    if (p[0] == '/')
        dk_buf_adds(&b, p);
    else
        dk_buf_addf(&b, "%s/%s", dir, p);
    return b.s;
}

/* Resolve the context and the Dockerfile. 0, or -1 with a reason. */
static int resolve_files(db_step *st, char *err, size_t errlen)
{
    const db_config *c = st->cfg;
    const char *dir = kiln_api->step_dir(st->step);
    char *ctx = join_path(dir, c->context ? c->context : ".");
    char real[PATH_MAX];
    struct stat sb;
    if (!realpath(ctx, real) || stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "the build context %s is not a directory", ctx);
        free(ctx);
        return -1;
    }
    free(ctx);
    st->ctx_dir = kp_xstrdup(real);
    char *df = c->dockerfile && *c->dockerfile ? join_path(dir, c->dockerfile) : join_path(st->ctx_dir, "Dockerfile");
    char dreal[PATH_MAX];
    if (!realpath(df, dreal) || stat(dreal, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "no Dockerfile at %s", df);
        free(df);
        return -1;
    }
    free(df);
    size_t n = strlen(st->ctx_dir);
    if (strncmp(dreal, st->ctx_dir, n) == 0 && dreal[n] == '/') {
        st->dockerfile_rel = kp_xstrdup(dreal + n + 1);
    } else {
        /* outside the context: sent inside the tar under a private name, as the docker CLI does */
        st->dockerfile_extra = kp_xstrdup(dreal);
        st->dockerfile_rel = kp_xstrdup(".dockerfile.kiln");
    }
    return 0;
}

static int db_start(kiln_step *step, const void *config, void *plugin_data)
{
    const db_config *c = config;
    db_step *st = calloc(1, sizeof *st);
    if (!st)
        return KILN_ENOMEM;
    st->step = step;
    st->dry = kiln_api->dry_run(KILN_OBJ(step));
    atomic_init(&st->posts, 0);
    kiln_api->step_set_data(step, st);
    char err[1024];
    if (apply_cli(c, &st->cli, &st->eff, err, sizeof err) < 0) {
        st->cfg = c;
        db_finish(st, KILN_ECONFIG, "%s", err);
        return 0;
    }
    st->cfg = c = &st->eff;
    st->push_only = st->cli.push_only;
    if (resolve_addr(c, &st->addr, &st->addr_src, err, sizeof err) < 0) {
        db_finish(st, KILN_ECONFIG, "engine address (%s): %s", st->addr_src, err);
        return 0;
    }
    if (parse_refs(c, &st->refs, &st->n_refs, err, sizeof err) < 0) {
        db_finish(st, KILN_ECONFIG, "tags: %s", err);
        return 0;
    }
    st->digests = calloc(st->n_refs ? st->n_refs : 1, sizeof *st->digests);
    if (c->push || (c->registry_auth && c->registry_auth->n) || (c->auth_env && *c->auth_env)) {
        st->auth = load_auth(c, &st->auth_src, err, sizeof err);
        if (!st->auth && err[0]) {
            db_finish(st, KILN_ECONFIG, "%s", err);
            return 0;
        }
    }
    if (!st->push_only && resolve_files(st, err, sizeof err) < 0) {
        db_finish(st, KILN_ECONFIG, "%s", err);
        return 0;
    }
    dk_buf url = {0};
    dk_buf_addf(&url, "%s/version", st->addr.base);
    kiln_http_req req = {
        .struct_size = sizeof req,
        .url = url.s,
        .unix_socket = st->addr.socket,
        .timeout_ms = DB_PING_TIMEOUT_MS,
    };
    st->phase = PH_PING;
    int rc = kiln_api->http_request(step, &req, on_ping, st, &st->req);
    dk_buf_free(&url);
    if (rc < 0)
        db_finish(st, rc, "cannot ask the engine at %s: %s", st->addr.display, kiln_api->strerror(rc));
    return 0;
}

static void db_cancel(kiln_step *step, void *plugin_data)
{
    db_step *st = kiln_api->step_get_data(step);
    if (!st || st->finishing)
        return;
    st->cancelled = true;
    if (st->ctx)
        dk_ctx_cancel(st->ctx);
    if (st->req)
        kiln_api->http_abort(st->req); /* its callback ends the step */
}

/* ABI 1.10: the host ended the step itself (the engine kept it past the
 * kill grace); its request is released without the callback. The producer
 * thread may still run: stop it, and free when it and its posts are in. */
static void db_abandon(kiln_step *step, void *plugin_data)
{
    db_step *st = kiln_api->step_get_data(step);
    if (!st)
        return;
    kiln_api->step_set_data(step, NULL);
    st->abandoned = true;
    st->finishing = true;
    st->req = NULL;
    if (st->ctx)
        dk_ctx_cancel(st->ctx);
    maybe_release(st);
}

static int db_describe(kiln_step *step, const void *config, void *plugin_data)
{
    dk_cli cli;
    db_config eff;
    char err[512];
    if (apply_cli(config, &cli, &eff, err, sizeof err) < 0)
        return KILN_ECONFIG;
    const db_config *c = &eff;
    int rc = db_describe_cfg(step, c, err, sizeof err);
    dk_cli_free(&cli);
    return rc;
}

static int db_describe_cfg(kiln_step *step, const db_config *c, char *err, size_t errcap)
{
    dk_addr a;
    const char *src;
    if (!c->push)
        return 0;
    if (resolve_addr(c, &a, &src, err, errcap) < 0)
        return KILN_ECONFIG;
    dk_ref *refs;
    size_t n;
    if (parse_refs(c, &refs, &n, err, errcap) < 0) {
        dk_addr_free(&a);
        return KILN_ECONFIG;
    }
    const char *auth_src = NULL;
    static __thread char srcbuf[300];
    if (c->registry_auth && c->registry_auth->n)
        auth_src = "registry_auth";
    else if (c->auth_env && *c->auth_env) {
        snprintf(srcbuf, sizeof srcbuf, "auth_env %s", c->auth_env);
        auth_src = srcbuf;
    }
    int rc = plan_pushes(step, &a, "/v" DB_MAX_API, refs, n, auth_src);
    free_refs(refs, n);
    dk_addr_free(&a);
    return rc;
}

static const kiln_step_ops db_step_ops = {
    .struct_size = sizeof(kiln_step_ops),
    .start = db_start,
    .cancel = db_cancel,
    .describe = db_describe,
    .abandon = db_abandon,
};

static const kiln_plugin db_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "docker-build",
    .version = "0.1.0",
    .summary = "Build and push images through the Docker Engine API (unix socket or TCP)",
    .options = db_options,
    .config_size = sizeof(db_config),
    /* Not KILN_PLUGIN_DEPLOYS: in a dry run the build still runs (when an
     * engine answers); only the push is a deployment, and the plugin records
     * it itself with plan_add() instead of sending it. */
    .flags = 0,
    .init = db_init,
    .validate = db_validate,
    .step = &db_step_ops,
};

KILN_PLUGIN_DEFINE(db_plugin)
