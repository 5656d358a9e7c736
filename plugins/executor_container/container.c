/* SPDX-License-Identifier: MIT */
/*
 * container: the executor that runs each step's processes in the step's
 * image, as Cloud Build does, on a Docker-compatible Engine API (Docker,
 * podman's API service).
 *
 *   engine  unix:///path or tcp://host:port; else DOCKER_HOST, CONTAINER_HOST,
 *           /var/run/docker.sock, /run/podman/podman.sock, then the user's
 *           rootless podman socket: the first that answers /_ping
 *   pull    missing (default) | always | never
 *   auth    user:password for pulls (X-Registry-Auth); without it the
 *           user's $DOCKER_CONFIG/config.json or ~/.docker/config.json
 *
 * A process: image looked up (and pulled, progress lines in the step's
 * log), container created with the workspace at /workspace, the build's
 * home volume at /builder/home (HOME), the engine's socket at
 * /var/run/docker.sock, $KILN_OUTPUT bound at its own path, the build's
 * volumes, on the build's network with the step id as alias; attached to
 * (the multiplexed stream decoded into stdout and stderr), started once the
 * attach is in place, its end waited for; then removed. Everything carries the labels
 * kiln.build=ID and kiln.owner=HOST:PID:START; open() removes what owners no
 * longer running left behind, close() what this build made.
 */
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "../common/base64.h"
#include "../common/xalloc.h"
#include "cred_helper.h"
#include "engine_sync.h"
#include "stdin_feed.h"

KILN_API_DEFINE;

#define CX_PING_MS 120000 /* podman's first answer can be slow on a busy machine */

enum { PULL_MISSING, PULL_ALWAYS, PULL_NEVER };
static const char *const pull_choices[] = {"missing", "always", "never", NULL};

struct cx_config {
    const char *engine;
    int pull;
    const char *auth;
};

#define OPT(t, n, d, f, field, desc)                                                               \
    {t, n, d, f, offsetof(struct cx_config, field), 0, -1, NULL, desc}
static const kiln_option cx_options[] = {
    OPT(KILN_OPT_STRING, "engine", NULL, 0, engine,
        "Engine API address: unix:///path or tcp://host:port (default: DOCKER_HOST, CONTAINER_HOST, "
        "/var/run/docker.sock, podman's sockets)."),
    {KILN_OPT_ENUM, "pull", "missing", 0, offsetof(struct cx_config, pull), 0, -1, pull_choices,
     "When to pull a step's image: missing, always or never."},
    OPT(KILN_OPT_STRING, "auth", NULL, KILN_OPT_SECRET, auth,
        "user:password for the registry the images come from."),
    KILN_OPTIONS_END,
};

/* The executor's state: one build per kiln process. */
struct cx {
    kiln_plugin_handle *self;
    cx_addr addr;
    char build_id[64];
    char owner[256];
    char net[96];
    char home[96];
    int pull;
    char *auth_header;  /* X-Registry-Auth: ..., from auth=, or NULL */
    cJSON *docker_config; /* ~/.docker/config.json, when auth= is not given */
    char **vols;        /* engine volumes made for the build */
    size_t n_vols;
    unsigned seq;
    struct cx_cred {    /* what a credential helper gave, per registry, this build */
        char *reg;
        char *hdr;      /* X-Registry-Auth: ..., or NULL: pull without */
    } *creds;
    size_t n_creds;
    char **images;      /* images seen on the engine in this build (pull=missing): no inspect again */
    size_t n_images;
    int live;           /* containers not yet removed */
    void (*close_done)(void *); /* close() waits for the removals in flight */
    void *close_arg;
};

/* One process: a container's life. */
typedef struct cxp {
    struct cx *cx;
    kiln_exec *x;       /* NULL once exited or abandoned */
    char *image;
    char *create_body;  /* JSON, made at spawn */
    char name[200];
    char id[128];
    kiln_http *req;     /* inspect, pull, create, start */
    kiln_http *logs;
    kiln_http *wait;
    int pending;        /* requests in flight */
    int exit_code;
    int64_t grace_ms;   /* --kill-grace */
    bool logs_done, wait_done, started, start_sent, stop_asked, paused, removing;
    bool wait_old;      /* the engine knows no wait?condition=next-exit: not-running after the start */
    bool image_again;   /* create said the image is gone: looked up once more */
    char *fail;         /* why the process could not run */
    int fail_status;
    /* the multiplexed log stream: 8-byte headers, then payload */
    unsigned char hdr[8];
    size_t hdr_len;
    size_t left;
    int stream;
    uint64_t got;       /* payload bytes delivered */
    uint64_t skip;      /* of the second reading: already delivered */
    bool reread;
    char *pull_line;    /* partial JSON line of the pull's progress */
    size_t pull_len;
    char last_status[400];
    int in_fd;          /* the input file (stdin_path) until the feed takes it, or -1 */
    cx_feed *feed;      /* the input on its way, on a worker thread */
    bool has_feed;      /* the start waits for the feed's attach too */
    bool out_attached, in_attached;
} cxp;

static char *esc(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *d = kp_xstrdup(e);
    curl_free(e);
    return d;
}

/* ---- images seen in this build ------------------------------------------ */

/* With pull=missing, an image found (or pulled) once in a build is not
 * looked up again: one Engine API request less a step. A step may remove
 * it (docker rmi through the socket): the create then answers 404, and the
 * image is looked up, and pulled, once more. */
static bool images_have(const struct cx *cx, const char *image)
{
    for (size_t i = 0; i < cx->n_images; i++)
        if (!strcmp(cx->images[i], image))
            return true;
    return false;
}

static void images_add(struct cx *cx, const char *image)
{
    if (cx->pull != PULL_MISSING || images_have(cx, image))
        return;
    cx->images = realloc(cx->images, (cx->n_images + 1) * sizeof *cx->images);
    if (!cx->images)
        abort();
    cx->images[cx->n_images++] = kp_xstrdup(image);
}

/* Forget one image, or all of them (image NULL). */
static void images_forget(struct cx *cx, const char *image)
{
    size_t k = 0;
    for (size_t i = 0; i < cx->n_images; i++) {
        if (!image || !strcmp(cx->images[i], image))
            free(cx->images[i]);
        else
            cx->images[k++] = cx->images[i];
    }
    cx->n_images = k;
    if (!k) {
        free(cx->images);
        cx->images = NULL;
    }
}

static void creds_forget(struct cx *cx)
{
    for (size_t i = 0; i < cx->n_creds; i++) {
        free(cx->creds[i].reg);
        free(cx->creds[i].hdr);
    }
    free(cx->creds);
    cx->creds = NULL;
    cx->n_creds = 0;
}

/* ---- owner labels and leftovers ----------------------------------------- */

static long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* fields after the command: state is field 3, starttime field 22 */
    long long v = -1;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
        if (++field == 22) {
            v = atoll(tok);
            break;
        }
    return v;
}

/* Is the kiln named by owner HOST:PID:START still running? Owners of other
 * hosts are assumed alive (an engine shared by several machines). */
static bool owner_alive(const char *owner, const char *host)
{
    const char *c1 = strrchr(owner, ':');
    if (!c1)
        return true;
    const char *c0 = c1 - 1;
    while (c0 > owner && *c0 != ':')
        c0--;
    if (c0 <= owner || (size_t)(c0 - owner) != strlen(host) || strncmp(owner, host, strlen(host)))
        return true;
    long pid = atol(c0 + 1);
    long long start = atoll(c1 + 1);
    return pid > 0 && proc_start(pid) == start;
}

static int sweep(struct cx *cx, const char *what, const char *list_path, const char *id_key,
                 const char *del_prefix, const char *del_suffix, const char *only_build)
{
    long st;
    char *body = NULL;
    if (cx_sync(&cx->addr, "GET", list_path, NULL, 60000, &st, &body) || st != 200) {
        free(body);
        return 0;
    }
    cJSON *j = cJSON_Parse(body);
    free(body);
    cJSON *arr = cJSON_IsArray(j) ? j : cJSON_GetObjectItem(j, "Volumes");
    char host[128];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    int n = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        cJSON *labels = cJSON_GetObjectItem(it, "Labels");
        const char *owner = cJSON_GetStringValue(cJSON_GetObjectItem(labels, "kiln.owner"));
        const char *bid = cJSON_GetStringValue(cJSON_GetObjectItem(labels, "kiln.build"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(it, id_key));
        if (!owner || !id)
            continue;
        if (only_build ? !bid || strcmp(bid, only_build) : owner_alive(owner, host))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s%s%s", del_prefix, id, del_suffix);
        /* A network or volume still held by a container the engine is
         * removing answers 409 or 500 for a moment: try again. */
        for (int attempt = 0; attempt < 40; attempt++) {
            long ds = 0;
            if (cx_sync(&cx->addr, "DELETE", path, NULL, 60000, &ds, NULL) == 0 && (ds < 300 || ds == 404))
                break;
            usleep(250000);
        }
        n++;
    }
    cJSON_Delete(j);
    (void)what;
    return n;
}

#define LABEL_FILTER "%7B%22label%22%3A%5B%22kiln.owner%22%5D%7D" /* {"label":["kiln.owner"]} */

static int sweep_all(struct cx *cx, const char *only_build)
{
    int n = sweep(cx, "container", "/containers/json?all=1&filters=" LABEL_FILTER, "Id",
                  "/containers/", "?force=1&v=1", only_build);
    n += sweep(cx, "network", "/networks?filters=" LABEL_FILTER, "Name", "/networks/", "", only_build);
    n += sweep(cx, "volume", "/volumes?filters=" LABEL_FILTER, "Name", "/volumes/", "?force=1", only_build);
    return n;
}

static cJSON *labels_json(struct cx *cx)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "kiln.build", cx->build_id);
    cJSON_AddStringToObject(l, "kiln.owner", cx->owner);
    return l;
}

static int make_volume(struct cx *cx, const char *name)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "Name", name);
    cJSON_AddItemToObject(b, "Labels", labels_json(cx));
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    long st;
    int rc = cx_sync(&cx->addr, "POST", "/volumes/create", body, 60000, &st, NULL);
    free(body);
    return rc || st >= 300 ? -1 : 0;
}

/* "X-Registry-Auth: " + base64url of the JSON credentials, as the Engine
 * API wants them. */
static char *auth_header_of(const char *js)
{
    char *b = kp_base64(js, strlen(js), KP_BASE64_URL);
    char *h = kp_xasprintf("X-Registry-Auth: %s", b);
    free(b);
    return h;
}

/* The registry an image comes from: its first component when that looks
 * like a host (a dot, a colon, localhost), else Docker Hub. */
static char *registry_of(const char *image)
{
    size_t n = strcspn(image, "/");
    if (image[n] == '/' && (memchr(image, '.', n) || memchr(image, ':', n) || !strncmp(image, "localhost", n)))
        return kp_xasprintf("%.*s", (int)n, image);
    return kp_xstrdup("https://index.docker.io/v1/");
}

/* X-Registry-Auth for a pull of image from the user's docker config, or
 * NULL. The "auth" value is base64 of user:password. */
static char *config_auth(struct cx *cx, const char *image)
{
    cJSON *auths = cJSON_GetObjectItem(cx->docker_config, "auths");
    if (!auths)
        return NULL;
    char *reg = registry_of(image);
    cJSON *e = cJSON_GetObjectItem(auths, reg);
    if (!e) { /* written with a scheme: https://REGISTRY */
        cJSON *it;
        cJSON_ArrayForEach(it, auths)
        {
            const char *k = it->string, *p = strstr(k, "://");
            p = p ? p + 3 : k;
            if (!strncmp(p, reg, strlen(reg)) && (p[strlen(reg)] == '\0' || p[strlen(reg)] == '/'))
                e = it;
        }
    }
    free(reg);
    const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(e, "auth"));
    if (!b64)
        return NULL;
    char *plain = kp_base64_decode(b64, NULL);
    if (!plain)
        return NULL; /* not base64: as if there were none */
    char *colon = strchr(plain, ':');
    char *hdr = NULL;
    if (colon) {
        *colon = '\0';
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "username", plain);
        cJSON_AddStringToObject(a, "password", colon + 1);
        char *js = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
        hdr = auth_header_of(js);
        free(js);
    }
    free(plain);
    return hdr;
}

/* ---- open and close ---------------------------------------------------- */

static int cx_open(void *plugin_data, const void *config, const char *build_id)
{
    struct cx *cx = plugin_data;
    const struct cx_config *c = config;
    char rootless[256];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg)
        snprintf(rootless, sizeof rootless, "unix://%s/podman/podman.sock", xdg);
    else
        snprintf(rootless, sizeof rootless, "unix:///run/user/%u/podman/podman.sock", (unsigned)getuid());
    const char *cands[] = {c->engine, getenv("DOCKER_HOST"), getenv("CONTAINER_HOST"),
                           "unix:///var/run/docker.sock", "unix:///run/podman/podman.sock", rootless};
    char tried[2048] = "";
    bool found = false;
    for (size_t i = 0; i < sizeof cands / sizeof cands[0] && !found; i++) {
        if (!cands[i] || !*cands[i])
            continue;
        cx_addr a;
        if (cx_addr_parse(cands[i], &a)) {
            kiln_error(cx->self, "executor container: engine address '%s': expected unix:///path or tcp://host:port",
                       cands[i]);
            return KILN_EINVAL;
        }
        /* A socket file that is not there needs no question. */
        struct stat sb;
        long st = 0;
        if ((!a.sock || stat(a.sock, &sb) == 0) && cx_sync(&a, "GET", "/_ping", NULL, CX_PING_MS, &st, NULL) == 0 &&
            st == 200) {
            cx->addr = a;
            found = true;
            break;
        }
        size_t tl = strlen(tried);
        snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? ", " : "", cands[i]);
        cx_addr_free(&a);
    }
    if (!found) {
        kiln_error(cx->self,
                   "executor container: no container engine answers (tried %s); start one (podman system "
                   "service, dockerd) or give --executor container:engine=URL",
                   tried);
        return KILN_ENOTFOUND;
    }
    snprintf(cx->build_id, sizeof cx->build_id, "%s", build_id);
    char host[128];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(cx->owner, sizeof cx->owner, "%s:%ld:%lld", host, (long)getpid(), proc_start(getpid()));
    cx->pull = c->pull;
    images_forget(cx, NULL); /* a new build: images are looked up again */
    creds_forget(cx);
    if (!(c->auth && *c->auth)) {
        /* The user's docker login: $DOCKER_CONFIG/config.json, else
         * ~/.docker/config.json ("auths": {REGISTRY: {"auth": base64}}). */
        const char *dc = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
        char *path = dc && *dc ? kp_xasprintf("%s/config.json", dc)
                     : home    ? kp_xasprintf("%s/.docker/config.json", home)
                               : NULL;
        FILE *f = path ? fopen(path, "r") : NULL;
        if (f) {
            char buf[65536];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
            cx->docker_config = cJSON_Parse(buf);
        }
        free(path);
    }
    if (c->auth && *c->auth) {
        const char *colon = strchr(c->auth, ':');
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "username", colon ? "" : c->auth);
        if (colon) {
            char *u = kp_xasprintf("%.*s", (int)(colon - c->auth), c->auth);
            cJSON_ReplaceItemInObject(a, "username", cJSON_CreateString(u));
            free(u);
            cJSON_AddStringToObject(a, "password", colon + 1);
        }
        char *js = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
        cx->auth_header = auth_header_of(js);
        free(js);
    }
    int old = sweep_all(cx, NULL);
    if (old)
        kiln_warn(cx->self, "executor container: removed %d container(s), network(s) and volume(s) left by "
                            "builds no longer running",
                  old);
    /* The build's network: steps reach each other by step id. */
    snprintf(cx->net, sizeof cx->net, "kiln-%s", build_id);
    snprintf(cx->home, sizeof cx->home, "kiln-%s-home", build_id);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "Name", cx->net);
    cJSON_AddItemToObject(b, "Labels", labels_json(cx));
    cJSON_AddBoolToObject(b, "CheckDuplicate", true);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    long st;
    char *resp = NULL;
    int rc = cx_sync(&cx->addr, "POST", "/networks/create", body, 60000, &st, &resp);
    free(body);
    if (rc || st >= 300) {
        kiln_error(cx->self, "executor container: cannot create the build's network %s: %s", cx->net,
                   resp ? resp : "no answer");
        free(resp);
        return KILN_EIO;
    }
    free(resp);
    if (make_volume(cx, cx->home)) {
        kiln_error(cx->self, "executor container: cannot create the build's home volume %s", cx->home);
        sweep_all(cx, cx->build_id);
        return KILN_EIO;
    }
    return 0;
}

static void close_now(struct cx *cx)
{
    void (*done)(void *) = cx->close_done;
    cx->close_done = NULL;
    /* Until a pass finds nothing: a create the engine finished after kiln
     * gave up on it (a cancelled step) shows up late, holding the network. */
    for (int pass = 0; pass < 10 && cx->addr.base && cx->build_id[0]; pass++) {
        if (sweep_all(cx, cx->build_id) == 0)
            break;
        if (pass)
            sleep(1);
    }
    if (done)
        done(cx->close_arg);
}

/* Containers being removed still hold the network and volumes: wait for
 * those removals, then remove everything labelled with the build. Called
 * again while waiting (the host's loop ran dry), it sweeps at once. */
static void cx_close(void *plugin_data, void (*done)(void *), void *arg)
{
    struct cx *cx = plugin_data;
    bool again = cx->close_done != NULL;
    cx->close_done = done;
    cx->close_arg = arg;
    if (cx->live <= 0 || again)
        close_now(cx);
}

/* ---- one container ------------------------------------------------------ */

static int inspect(cxp *p);
static void wait_not_running(cxp *p);
static void feed_start(cxp *p);

static void p_maybe_free(cxp *p)
{
    if (p->x || p->pending)
        return;
    if (p->in_fd >= 0)
        close(p->in_fd);
    free(p->image);
    free(p->create_body);
    free(p->fail);
    free(p->pull_line);
    free(p);
}

static int request_h(cxp *p, const char *method, const char *path, const char *body, kiln_http_data_cb on_data,
                     void (*on_headers)(void *, int), kiln_http_cb cb, kiln_http **out, const char *hdr);

static int request(cxp *p, const char *method, const char *path, const char *body, kiln_http_data_cb on_data,
                   kiln_http_cb cb, kiln_http **out, bool auth)
{
    (void)auth; /* the pull gives its header through request_h */
    return request_h(p, method, path, body, on_data, NULL, cb, out, NULL);
}

static int request_h(cxp *p, const char *method, const char *path, const char *body, kiln_http_data_cb on_data,
                     void (*on_headers)(void *, int), kiln_http_cb cb, kiln_http **out, const char *hdr)
{
    struct cx *cx = p->cx;
    char *url = kp_xasprintf("%s%s", cx->addr.base, path);
    const char *hdrs[3] = {NULL, NULL, NULL};
    size_t nh = 0;
    if (body)
        hdrs[nh++] = "Content-Type: application/json";
    if (hdr)
        hdrs[nh++] = hdr;
    kiln_http_req r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.method = method;
    r.url = url;
    r.unix_socket = cx->addr.sock;
    r.headers = hdrs;
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    r.on_data = on_data;
    r.on_data_data = p;
    r.on_headers = on_headers;
    r.on_headers_data = p;
    kiln_http *h = NULL;
    int rc = kiln_api->http_request_obj(KILN_OBJ(cx->self), &r, cb, p, &h);
    free(url);
    if (rc == 0) {
        p->pending++;
        if (out)
            *out = h;
    }
    return rc;
}

static void close_now(struct cx *cx);

static void on_removed(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    struct cx *cx = p->cx;
    p->pending--;
    cx->live--;
    p_maybe_free(p);
    if (cx->close_done && cx->live <= 0)
        close_now(cx);
}

static void remove_container(cxp *p)
{
    if (p->removing || !p->id[0])
        return;
    p->removing = true;
    char path[300];
    snprintf(path, sizeof path, "/containers/%s?force=1", p->id);
    if (request(p, "DELETE", path, NULL, NULL, on_removed, NULL, false))
        p->cx->live--;
}

/* The process is over for the host: report once, then remove. */
static void finish(cxp *p)
{
    if (!p->x)
        return;
    kiln_exec *x = p->x;
    p->x = NULL;
    if (p->feed) /* the process is over: input it did not read goes nowhere */
        cx_feed_cancel(p->feed);
    int status = p->fail ? p->fail_status : p->exit_code;
    kiln_api->exec_exited(x, status, p->fail);
    remove_container(p);
    p_maybe_free(p);
}

/* fmt NULL: the process was stopped before it ran; no message. */
static void fail(cxp *p, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(cxp *p, int status, const char *fmt, ...)
{
    if (!p->fail && !fmt) {
        p->fail = kp_xstrdup(""); /* stopped before it ran: nothing to explain */
        p->fail_status = status;
    } else if (!p->fail) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&p->fail, fmt, ap) < 0)
            abort();
        va_end(ap);
        p->fail_status = status;
    }
    if (p->req)
        kiln_api->http_abort(p->req);
    if (p->logs)
        kiln_api->http_abort(p->logs);
    if (p->wait)
        kiln_api->http_abort(p->wait);
    if (!p->req && !p->logs && !p->wait)
        finish(p);
}

/* The engine's message in a JSON error body, else the body. */
static const char *engine_message(const kiln_http_resp *resp, char *buf, size_t cap)
{
    if (!resp || !resp->body)
        return resp && resp->error ? resp->error : "no answer";
    cJSON *j = cJSON_Parse(resp->body);
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
    snprintf(buf, cap, "%s", m ? m : resp->body);
    cJSON_Delete(j);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

/* After a request of the chain ended: is the process still wanted? */
static bool chain_over(cxp *p, kiln_http **slot)
{
    p->pending--;
    *slot = NULL;
    if (!p->x) {
        p_maybe_free(p);
        return true;
    }
    if (p->fail || p->stop_asked) {
        if (!p->fail)
            fail(p, 128 + SIGTERM, NULL);
        else if (!p->req && !p->logs && !p->wait)
            finish(p);
        return true;
    }
    return false;
}


/* The output stream ended and the exit code is in. */
static void both_done(cxp *p)
{
    if (p->logs_done && p->wait_done)
        finish(p);
}

/* Logs: frames of [stream, 0, 0, 0, size (4 bytes, big-endian)] + payload. */
static int on_logs_data(void *data, const char *buf, size_t len)
{
    cxp *p = data;
    if (!p->x)
        return KILN_ECANCELED;
    while (len) {
        if (p->left == 0) {
            size_t take = 8 - p->hdr_len < len ? 8 - p->hdr_len : len;
            memcpy(p->hdr + p->hdr_len, buf, take);
            p->hdr_len += take;
            buf += take;
            len -= take;
            if (p->hdr_len < 8)
                break;
            p->hdr_len = 0;
            p->stream = p->hdr[0] == 2 ? KILN_STREAM_STDERR : KILN_STREAM_STDOUT;
            p->left = (size_t)p->hdr[4] << 24 | (size_t)p->hdr[5] << 16 | (size_t)p->hdr[6] << 8 | p->hdr[7];
            continue;
        }
        size_t take = p->left < len ? p->left : len;
        size_t dup = p->skip < take ? (size_t)p->skip : take;
        p->skip -= dup;
        if (take > dup) {
            kiln_api->exec_output(p->x, (kiln_stream)p->stream, buf + dup, take - dup);
            p->got += take - dup;
        }
        p->left -= take;
        buf += take;
        len -= take;
    }
    return 0;
}

static void on_logs(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    p->pending--;
    p->logs = NULL;
    if (!p->x) {
        p_maybe_free(p);
        return;
    }
    if (err || resp->status >= 300) {
        char m[512];
        if (!p->fail && !p->stop_asked)
            kiln_warn(p->cx->self, "container %s: reading its output: %s", p->name,
                      err ? kiln_api->strerror(err) : engine_message(resp, m, sizeof m));
    }
    p->logs_done = true;
    if (!p->start_sent && !p->fail) {
        char m2[512];
        fail(p, KILN_ESPAWN, "cannot attach to the container of image %s: %s", p->image,
             err ? kiln_api->strerror(err) : engine_message(resp, m2, sizeof m2));
        return;
    }
    if (p->fail && !p->wait)
        finish(p);
    else
        both_done(p);
}

static void on_wait(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    p->pending--;
    p->wait = NULL;
    if (!p->x) {
        p_maybe_free(p);
        return;
    }
    char m[512];
    if (!err && resp->status == 400 && !p->wait_old) {
        /* An engine without wait conditions before the start (API < 1.30):
         * wait for "not-running" once the start is answered. */
        p->wait_old = true;
        if (p->started)
            wait_not_running(p);
        return;
    }
    if (err || resp->status != 200) {
        fail(p, KILN_EIO, "container %s: waiting for its end: %s", p->name,
             err ? kiln_api->strerror(err) : engine_message(resp, m, sizeof m));
        return;
    }
    cJSON *j = cJSON_Parse(resp->body);
    cJSON *sc = cJSON_GetObjectItem(j, "StatusCode");
    p->exit_code = cJSON_IsNumber(sc) ? sc->valueint : 1;
    cJSON_Delete(j);
    p->wait_done = true;
    both_done(p);
}

/* Engines without next-exit: after the start, "not-running" of a container
 * that already ended answers at once with its code. */
static void wait_not_running(cxp *p)
{
    char path[300];
    snprintf(path, sizeof path, "/containers/%s/wait?condition=not-running", p->id);
    if (request(p, "POST", path, NULL, NULL, on_wait, &p->wait, false))
        fail(p, KILN_EIO, "container %s: cannot wait for its end", p->name);
}

static void on_started(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    if (chain_over(p, &p->req))
        return;
    char m[512];
    if (err || (resp->status != 204 && resp->status != 304)) {
        fail(p, KILN_ESPAWN, "cannot start the container of image %s: %s", p->image,
             err ? kiln_api->strerror(err) : engine_message(resp, m, sizeof m));
        return;
    }
    p->started = true;
    if (p->wait_old && !p->wait)
        wait_not_running(p);
}

/* The engine answered the attach: it is in place, so nothing the process
 * prints is missed. Start it now. podman's followed logs lose lines
 * (4.3), an attach does not, and its socket is the process's pipe: when
 * kiln stops reading, the process blocks on its writes (backpressure). */
/* Once the output's attach (and the input's, if any) is there. */
static void maybe_start(cxp *p)
{
    if (!p->x || p->fail || p->start_sent || !p->out_attached || (p->has_feed && !p->in_attached))
        return;
    if (p->stop_asked) {
        fail(p, 128 + SIGTERM, NULL);
        return;
    }
    char path[300];
    snprintf(path, sizeof path, "/containers/%s/start", p->id);
    p->start_sent = true;
    if (request(p, "POST", path, NULL, NULL, on_started, &p->req, false))
        fail(p, KILN_ESPAWN, "cannot start the container of image %s", p->image);
}

static void on_attached(void *data, int status)
{
    cxp *p = data;
    if (!p->x || p->fail || status != 200)
        return; /* on_logs says why */
    p->out_attached = true;
    /* The input's attach only now: podman initializes a created container
     * on its first attach, and a second attach racing the first fails that
     * (409 "preparing container for attach"). */
    if (p->in_fd >= 0)
        feed_start(p);
    maybe_start(p);
}

static void on_created(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    char m[512];
    if (!err && resp->status == 201) {
        cJSON *j = cJSON_Parse(resp->body);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Id"));
        snprintf(p->id, sizeof p->id, "%s", id ? id : "");
        cJSON_Delete(j);
        p->cx->live++;
    }
    if (chain_over(p, &p->req))
        return;
    if (!err && resp->status == 404 && !p->image_again && p->cx->pull != PULL_ALWAYS) {
        /* The image seen earlier in the build is gone (a step removed
         * it): look it up, and pull it, once more. */
        p->image_again = true;
        images_forget(p->cx, p->image);
        if (inspect(p))
            fail(p, KILN_EIO, "cannot look up image %s", p->image);
        return;
    }
    if (err || resp->status != 201 || !p->id[0]) {
        fail(p, KILN_ESPAWN, "cannot create a container of image %s: %s", p->image,
             err ? kiln_api->strerror(err) : engine_message(resp, m, sizeof m));
        return;
    }
    char path[300];
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdout=1&stderr=1", p->id);
    if (request_h(p, "POST", path, NULL, on_logs_data, on_attached, on_logs, &p->logs, NULL)) {
        fail(p, KILN_ESPAWN, "cannot attach to the container of image %s", p->image);
        return;
    }
    if (p->paused)
        kiln_api->http_pause_recv(p->logs, true);
    /* The wait goes with the attach, before the start: "next-exit" answers
     * when the container has run and ended, and its answer does not cost a
     * round trip after the start's (docker run does the same). */
    snprintf(path, sizeof path, "/containers/%s/wait?condition=next-exit", p->id);
    if (request(p, "POST", path, NULL, NULL, on_wait, &p->wait, false))
        fail(p, KILN_EIO, "container %s: cannot wait for its end", p->name);
}

/* The input's copy ended: only a failure before any byte went is the
 * process's failure (as an input file that cannot be opened). */
static void on_fed(void *data, int err)
{
    cxp *p = data;
    cx_feed *f = p->feed;
    p->feed = NULL;
    const char *e = err ? "the worker could not run" : cx_feed_error(f);
    if (e && p->x) /* p stays: this job is still counted in p->pending */
        fail(p, KILN_EIO, "container %s: cannot give it its input: %s", p->name, e);
    cx_feed_free(f);
    p->pending--;
    p_maybe_free(p);
}

/* On a worker thread: p->feed is set before and cleared only after. */
static void feed_run(void *data)
{
    cx_feed_run(((cxp *)data)->feed);
}

struct feed_note {
    cxp *p;
    bool ok;
};

/* On the loop: the feed's attach was answered (its failure is on_fed's). */
static void on_feed_note(void *data)
{
    struct feed_note *n = data;
    cxp *p = n->p;
    bool ok = n->ok;
    free(n);
    p->pending--;
    if (ok)
        p->in_attached = true;
    if (!p->x) {
        p_maybe_free(p);
        return;
    }
    maybe_start(p);
}

/* On the worker thread (cx_feed's ready): to the loop. p stays, as the
 * note is counted in p->pending. */
static void feed_ready(void *arg, bool ok)
{
    cxp *p = arg;
    struct feed_note *n = malloc(sizeof *n);
    if (!n)
        abort();
    n->p = p;
    n->ok = ok;
    if (kiln_api->post(KILN_OBJ(p->cx->self), on_feed_note, n))
        free(n); /* the host is going away: nothing will start */
}

static void feed_start(cxp *p)
{
    p->feed = cx_feed_new(&p->cx->addr, p->id, p->in_fd, feed_ready, p);
    p->in_fd = -1;
    if (kiln_api->queue_work(KILN_OBJ(p->cx->self), feed_run, on_fed, p)) {
        cx_feed_free(p->feed);
        p->feed = NULL;
        fail(p, KILN_EIO, "container %s: cannot give it its input", p->name);
        return;
    }
    p->has_feed = true;
    p->pending += 2; /* the job and its note */
}

static int create_req(cxp *p)
{
    char *nm = esc(p->name);
    char *path = kp_xasprintf("/containers/create?name=%s", nm);
    free(nm);
    int rc = request(p, "POST", path, p->create_body, NULL, on_created, &p->req, false);
    free(path);
    return rc;
}

static void create(cxp *p)
{
    if (create_req(p))
        fail(p, KILN_ESPAWN, "cannot create a container of image %s", p->image);
}

/* Pull progress: JSON lines; a line with "error" is the engine's refusal. */
static int on_pull_data(void *data, const char *buf, size_t len)
{
    cxp *p = data;
    if (!p->x)
        return KILN_ECANCELED;
    p->pull_line = realloc(p->pull_line, p->pull_len + len + 1);
    if (!p->pull_line)
        abort();
    memcpy(p->pull_line + p->pull_len, buf, len);
    p->pull_len += len;
    p->pull_line[p->pull_len] = '\0';
    char *nl;
    while ((nl = memchr(p->pull_line, '\n', p->pull_len))) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(p->pull_line);
        const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
        if (e && !p->fail) {
            p->fail = kp_xasprintf("cannot pull image %s: %s", p->image, e);
            p->fail_status = KILN_ENOTFOUND;
        } else if (s) {
            char line[400];
            snprintf(line, sizeof line, "pull %s: %s%s%s\n", p->image, s, id ? " " : "", id ? id : "");
            /* one line per change, not per progress tick */
            if (strcmp(line, p->last_status)) {
                snprintf(p->last_status, sizeof p->last_status, "%s", line);
                kiln_api->exec_output(p->x, KILN_STREAM_STDERR, line, strlen(line));
            }
        }
        cJSON_Delete(j);
        size_t used = (size_t)(nl - p->pull_line) + 1;
        memmove(p->pull_line, nl + 1, p->pull_len - used);
        p->pull_len -= used;
    }
    return 0;
}

static void on_pulled(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    char m[512];
    if (!p->fail && !err && resp->status >= 300)
        fail(p, KILN_ENOTFOUND, "cannot pull image %s: %s", p->image, engine_message(resp, m, sizeof m));
    if (chain_over(p, &p->req))
        return;
    if (err) {
        fail(p, KILN_ENOTFOUND, "cannot pull image %s: %s", p->image, kiln_api->strerror(err));
        return;
    }
    images_add(p->cx, p->image);
    create(p);
}

static struct cx_cred *cred_find(struct cx *cx, const char *reg)
{
    for (size_t i = 0; i < cx->n_creds; i++)
        if (!strcmp(cx->creds[i].reg, reg))
            return &cx->creds[i];
    return NULL;
}

/* The credential helper for a registry: credHelpers' entry, else credsStore. */
static const char *helper_for(struct cx *cx, const char *reg)
{
    const char *h = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cx->docker_config, "credHelpers"), reg));
    if (!h || !*h)
        h = cJSON_GetStringValue(cJSON_GetObjectItem(cx->docker_config, "credsStore"));
    return h && *h ? h : NULL;
}

static void pull_now(cxp *p)
{
    struct cx *cx = p->cx;
    char *hdr = NULL;
    if (cx->auth_header) {
        hdr = kp_xstrdup(cx->auth_header);
    } else if (cx->docker_config) {
        char *reg = registry_of(p->image);
        struct cx_cred *c = helper_for(cx, reg) ? cred_find(cx, reg) : NULL;
        hdr = c ? (c->hdr ? kp_xstrdup(c->hdr) : NULL) : config_auth(cx, p->image);
        free(reg);
    }
    char *img = esc(p->image);
    char *path = kp_xasprintf("/images/create?fromImage=%s", img);
    free(img);
    if (request_h(p, "POST", path, NULL, on_pull_data, NULL, on_pulled, &p->req, hdr))
        fail(p, KILN_ENOTFOUND, "cannot pull image %s", p->image);
    free(path);
    free(hdr);
}

/* A credential helper's run, on a worker thread. */
struct cred_job {
    cxp *p;
    char *helper, *reg, *hdr, *err;
};

static void cred_run(void *data)
{
    struct cred_job *j = data;
    char *user = NULL, *secret = NULL;
    if (cx_cred_helper_get(j->helper, j->reg, &user, &secret, &j->err) != 0)
        return; /* 1: none stored, pull without; -1: j->err */
    cJSON *a = cJSON_CreateObject();
    if (!strcmp(user, "<token>")) { /* docker's marker of an identity token */
        cJSON_AddStringToObject(a, "identitytoken", secret);
    } else {
        cJSON_AddStringToObject(a, "username", user);
        cJSON_AddStringToObject(a, "password", secret);
    }
    cJSON_AddStringToObject(a, "serveraddress", j->reg);
    char *js = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    j->hdr = auth_header_of(js);
    free(js);
    free(user);
    free(secret);
}

static void cred_done(void *data, int err)
{
    struct cred_job *j = data;
    cxp *p = j->p;
    struct cx *cx = p->cx;
    /* p stays until the end: this job is still counted in p->pending */
    if (p->x && !p->fail && !p->stop_asked) {
        if (err || j->err) {
            fail(p, KILN_ENOTFOUND, "cannot pull image %s: %s", p->image,
                 j->err ? j->err : "the credential helper could not run");
        } else {
            if (!cred_find(cx, j->reg)) {
                cx->creds = realloc(cx->creds, (cx->n_creds + 1) * sizeof *cx->creds);
                if (!cx->creds)
                    abort();
                cx->creds[cx->n_creds].reg = j->reg;
                cx->creds[cx->n_creds++].hdr = j->hdr;
                j->reg = j->hdr = NULL;
            }
            pull_now(p);
        }
    } else if (p->x) {
        fail(p, 128 + SIGTERM, NULL);
    }
    free(j->helper);
    free(j->reg);
    free(j->hdr);
    free(j->err);
    free(j);
    p->pending--;
    p_maybe_free(p);
}

/* Credentials first: a helper runs once per registry and build, off the
 * loop (it may be slow: a cloud SDK). */
static void pull(cxp *p)
{
    struct cx *cx = p->cx;
    if (!cx->auth_header && cx->docker_config) {
        char *reg = registry_of(p->image);
        const char *helper = helper_for(cx, reg);
        if (helper && !cred_find(cx, reg)) {
            struct cred_job *j = calloc(1, sizeof *j);
            if (!j)
                abort();
            j->p = p;
            j->helper = kp_xstrdup(helper);
            j->reg = reg;
            if (kiln_api->queue_work(KILN_OBJ(cx->self), cred_run, cred_done, j)) {
                free(j->helper);
                free(j->reg);
                free(j);
                fail(p, KILN_ENOTFOUND, "cannot pull image %s: cannot run credential helper %s", p->image, helper);
                return;
            }
            p->pending++;
            return;
        }
        free(reg);
    }
    pull_now(p);
}

static void on_inspected(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    if (chain_over(p, &p->req))
        return;
    char m[512];
    if (!err && resp->status == 200) {
        images_add(p->cx, p->image);
        create(p);
    } else if (!err && resp->status == 404) {
        if (p->cx->pull == PULL_NEVER)
            fail(p, KILN_ENOTFOUND, "image %s is not on the engine, and pull=never", p->image);
        else
            pull(p);
    } else {
        fail(p, KILN_EIO, "cannot look up image %s: %s", p->image,
             err ? kiln_api->strerror(err) : engine_message(resp, m, sizeof m));
    }
}

static int inspect(cxp *p)
{
    char *img = esc(p->image);
    char *path = kp_xasprintf("/images/%s/json", img);
    free(img);
    int rc = request(p, "GET", path, NULL, NULL, on_inspected, &p->req, false);
    free(path);
    return rc;
}

/* The container's definition, Cloud Build's way. */
static char *create_body(struct cx *cx, const kiln_exec_spec *s, const char *alias)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "Image", s->image);
    size_t i = 0;
    if (!s->image_entrypoint) {
        cJSON *ep = cJSON_AddArrayToObject(b, "Entrypoint");
        cJSON_AddItemToArray(ep, cJSON_CreateString(s->argv[0]));
        i = 1;
    }
    cJSON *cmd = cJSON_AddArrayToObject(b, "Cmd");
    for (; s->argv[i]; i++)
        cJSON_AddItemToArray(cmd, cJSON_CreateString(s->argv[i]));
    cJSON *env = cJSON_AddArrayToObject(b, "Env");
    bool home = false;
    for (size_t k = 0; s->env && s->env[k]; k++) {
        home |= !strncmp(s->env[k], "HOME=", 5);
        cJSON_AddItemToArray(env, cJSON_CreateString(s->env[k]));
    }
    if (!home)
        cJSON_AddItemToArray(env, cJSON_CreateString("HOME=/builder/home"));
    /* dir: the workspace's place is /workspace */
    size_t wl = strlen(s->workspace);
    char *wd = !strncmp(s->cwd, s->workspace, wl) && (s->cwd[wl] == '/' || !s->cwd[wl])
                   ? kp_xasprintf("/workspace%s", s->cwd + wl)
                   : kp_xstrdup(s->cwd);
    cJSON_AddStringToObject(b, "WorkingDir", wd);
    free(wd);
    cJSON_AddItemToObject(b, "Labels", labels_json(cx));
    cJSON_AddBoolToObject(b, "AttachStdout", true);
    cJSON_AddBoolToObject(b, "AttachStderr", true);
    if (s->stdin_path) {
        /* stdin open until the input's attach half-closes (StdinOnce) */
        cJSON_AddBoolToObject(b, "AttachStdin", true);
        cJSON_AddBoolToObject(b, "OpenStdin", true);
        cJSON_AddBoolToObject(b, "StdinOnce", true);
    }
    cJSON_AddBoolToObject(b, "Tty", false);
    cJSON *hc = cJSON_AddObjectToObject(b, "HostConfig");
    cJSON *binds = cJSON_AddArrayToObject(hc, "Binds");
    char *v = kp_xasprintf("%s:/workspace", s->workspace);
    cJSON_AddItemToArray(binds, cJSON_CreateString(v));
    free(v);
    /* Also at its own path: step plugins (git-checkout, kedro-train) give
     * their processes host paths of the workspace. */
    if (strcmp(s->workspace, "/workspace") && strlen(s->workspace) > 1) {
        v = kp_xasprintf("%s:%s", s->workspace, s->workspace);
        cJSON_AddItemToArray(binds, cJSON_CreateString(v));
        free(v);
    }
    v = kp_xasprintf("%s:/builder/home", cx->home);
    cJSON_AddItemToArray(binds, cJSON_CreateString(v));
    free(v);
    if (cx->addr.sock) {
        v = kp_xasprintf("%s:/var/run/docker.sock", cx->addr.sock);
        cJSON_AddItemToArray(binds, cJSON_CreateString(v));
        free(v);
    }
    if (s->output_file) {
        v = kp_xasprintf("%s:%s", s->output_file, s->output_file);
        cJSON_AddItemToArray(binds, cJSON_CreateString(v));
        free(v);
    }
    for (size_t k = 0; s->volumes && s->volumes[k]; k++) {
        const char *eq = strchr(s->volumes[k], '=');
        if (!eq)
            continue;
        v = kp_xasprintf("kiln-%s-vol-%.*s:%s", cx->build_id, (int)(eq - s->volumes[k]), s->volumes[k], eq + 1);
        cJSON_AddItemToArray(binds, cJSON_CreateString(v));
        free(v);
    }
    cJSON_AddStringToObject(hc, "NetworkMode", cx->net);
    cJSON *lc = cJSON_AddObjectToObject(hc, "LogConfig");
    cJSON_AddStringToObject(lc, "Type", "json-file");
    cJSON *nc = cJSON_AddObjectToObject(b, "NetworkingConfig");
    cJSON *ec = cJSON_AddObjectToObject(nc, "EndpointsConfig");
    cJSON *ep = cJSON_AddObjectToObject(ec, cx->net);
    cJSON *al = cJSON_AddArrayToObject(ep, "Aliases");
    cJSON_AddItemToArray(al, cJSON_CreateString(alias));
    char *out = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return out;
}

/* Cloud Build volumes become engine volumes of the build, made once. */
static int ensure_volumes(struct cx *cx, const kiln_exec_spec *s)
{
    for (size_t k = 0; s->volumes && s->volumes[k]; k++) {
        const char *eq = strchr(s->volumes[k], '=');
        if (!eq)
            continue;
        char *name = kp_xasprintf("kiln-%s-vol-%.*s", cx->build_id, (int)(eq - s->volumes[k]), s->volumes[k]);
        bool have = false;
        for (size_t i = 0; i < cx->n_vols && !have; i++)
            have = !strcmp(cx->vols[i], name);
        if (have) {
            free(name);
            continue;
        }
        if (make_volume(cx, name)) {
            free(name);
            return KILN_EIO;
        }
        cx->vols = realloc(cx->vols, (cx->n_vols + 1) * sizeof *cx->vols);
        if (!cx->vols)
            abort();
        cx->vols[cx->n_vols++] = name;
    }
    return 0;
}

static int cx_spawn(kiln_exec *x, const kiln_exec_spec *s, void *plugin_data)
{
    struct cx *cx = plugin_data;
    if (!s->image || !s->argv || (!s->argv[0] && !s->image_entrypoint))
        return KILN_EINVAL;
    int in_fd = -1;
    if (s->stdin_path && (in_fd = open(s->stdin_path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno == -ENOENT ? KILN_ENOTFOUND : KILN_EIO;
    if (ensure_volumes(cx, s)) {
        if (in_fd >= 0)
            close(in_fd);
        return KILN_EIO;
    }
    cxp *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->in_fd = in_fd;
    p->cx = cx;
    p->x = x;
    p->image = kp_xstrdup(s->image);
    p->grace_ms = s->kill_grace_ms;
    /* Container names: the step id, made safe, unique in the build. */
    char safe[80];
    size_t k = 0;
    for (const char *c = s->step_id; *c && k < sizeof safe - 1; c++)
        safe[k++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                            *c == '-' || *c == '_' || *c == '.'
                        ? *c
                        : '-';
    safe[k] = '\0';
    snprintf(p->name, sizeof p->name, "kiln-%s-%s-%u", cx->build_id, safe, ++cx->seq);
    p->create_body = create_body(cx, s, safe[0] ? safe : "step");
    kiln_api->exec_set_data(x, p);
    int rc = 0;
    if (cx->pull == PULL_ALWAYS)
        pull(p);
    else if (images_have(cx, p->image))
        rc = create_req(p);
    else
        rc = inspect(p);
    if (rc) {
        p->x = NULL;
        p_maybe_free(p);
        return KILN_EIO;
    }
    return 0;
}

static void on_signalled(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    cxp *p = data;
    p->pending--;
    p_maybe_free(p);
}

static int cx_signal(kiln_exec *x, int signum)
{
    cxp *p = kiln_api->exec_get_data(x);
    if (!p->id[0] || !p->started)
        return signum == SIGKILL || signum == SIGTERM ? (fail(p, 128 + signum, NULL), 0) : KILN_EINVAL;
    char path[300];
    snprintf(path, sizeof path, "/containers/%s/kill?signal=%d", p->id, signum);
    return request(p, "POST", path, NULL, NULL, on_signalled, NULL, false);
}

/* SIGTERM, the grace period, SIGKILL: the engine's stop does exactly that. */
static void cx_terminate(kiln_exec *x)
{
    cxp *p = kiln_api->exec_get_data(x);
    if (p->stop_asked)
        return;
    p->stop_asked = true;
    if (!p->started) {
        /* Not running yet: the chain stops at its next answer. */
        if (p->req)
            kiln_api->http_abort(p->req);
        return;
    }
    char path[300];
    /* The engine counts whole seconds: round up, so that a grace is never
     * shorter than asked. */
    snprintf(path, sizeof path, "/containers/%s/stop?t=%lld", p->id, (long long)((p->grace_ms + 999) / 1000));
    request(p, "POST", path, NULL, NULL, on_signalled, NULL, false);
}

static void cx_abandon(kiln_exec *x)
{
    cxp *p = kiln_api->exec_get_data(x);
    p->x = NULL;
    if (p->feed)
        cx_feed_cancel(p->feed);
    if (p->req)
        kiln_api->http_abort(p->req);
    if (p->logs)
        kiln_api->http_abort(p->logs);
    if (p->wait)
        kiln_api->http_abort(p->wait);
    remove_container(p);
    p_maybe_free(p);
}

static void cx_pause(kiln_exec *x)
{
    cxp *p = kiln_api->exec_get_data(x);
    p->paused = true;
    if (p->logs)
        kiln_api->http_pause_recv(p->logs, true);
}

static void cx_resume(kiln_exec *x)
{
    cxp *p = kiln_api->exec_get_data(x);
    p->paused = false;
    if (p->logs)
        kiln_api->http_pause_recv(p->logs, false);
}

static int cx_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    if (!KILN_API_HAS(api, exec_plugin_handle))
        return KILN_EABI;
    struct cx *cx = calloc(1, sizeof *cx);
    if (!cx)
        return KILN_ENOMEM;
    cx->self = self;
    *plugin_data = cx;
    return 0;
}

static void cx_destroy(void *plugin_data)
{
    struct cx *cx = plugin_data;
    cx_addr_free(&cx->addr);
    free(cx->auth_header);
    cJSON_Delete(cx->docker_config);
    for (size_t i = 0; i < cx->n_vols; i++)
        free(cx->vols[i]);
    free(cx->vols);
    images_forget(cx, NULL);
    creds_forget(cx);
    free(cx);
}

static const kiln_executor_ops cx_ops = {
    sizeof(kiln_executor_ops), cx_open, cx_spawn, cx_signal, cx_terminate, cx_abandon, cx_pause, cx_resume,
    cx_close,
};

static const kiln_plugin cx_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_EXECUTOR,
    .name = "container",
    .version = "0.1.0",
    .summary = "Runs each step in its image on a Docker-compatible engine, as Cloud Build does",
    .options = cx_options,
    .config_size = sizeof(struct cx_config),
    .init = cx_init,
    .destroy = cx_destroy,
    .executor = &cx_ops,
};

KILN_PLUGIN_DEFINE(cx_plugin)
