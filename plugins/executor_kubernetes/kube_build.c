/* SPDX-License-Identifier: MIT */
#include "kube_build.h"

#include <cJSON.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"
#include "kube_objects.h"

KILN_API_EXTERN;

struct kb_secret {
    char *env, *value, *key;
};

struct kb_wait {
    struct kb_wait *next;
    char *body;
    unsigned need;
    void *token;
    kb_ready_cb cb;
    void *data;
};

struct kbuild {
    kb_conf c;
    char *api, *ns, *build_id, *owner, *claim_body;
    char *owner_name, *owner_uid, *secret_name;
    char *error;            /* the owner or claim could not be made */
    bool owner_sent, claim_pending, closing;
    /* the Secret: keys known, keys the server holds, one apply at a time */
    struct kb_secret *sec;
    unsigned n_sec, cap_sec, applied, applying;
    char *secret_error;
    /* pvc-rwo */
    char *node;
    void *scout;            /* the Pod whose node the others wait for */
    struct kb_wait *waits, **tail;
    bool pumping, again;    /* a callback of pump() may come back into it */
    /* fill=git */
    int fill;               /* FILL_* */
    char *ws, *claim, *fill_image, *git_url, *git_commit, *fill_error;
    kiln_http *watch;       /* the fill Pod's watch */
    char *wbuf;             /* its partial line */
    size_t wlen;
    int fill_exit, fill_watches;
};

enum { FILL_NONE, FILL_FINDING, FILL_FOUND, FILL_RUNNING, FILL_DONE };

static const char *message(int err, const kiln_http_resp *resp, char *buf, size_t cap)
{
    if (err)
        return resp && resp->error ? resp->error : kiln_api->strerror(err);
    cJSON *j = resp->body ? cJSON_Parse(resp->body) : NULL;
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
    snprintf(buf, cap, "HTTP %d: %s", resp->status, m ? m : resp->body ? resp->body : "no body");
    cJSON_Delete(j);
    return buf;
}

static void pump(kbuild *kb);
static void fill_create(kbuild *kb);

/* ---- the owner and the claim ---------------------------------------------- */

static void on_late_delete(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
}

/* An object whose create was answered after close() listed the build's
 * objects: deleted here, or it would outlive the build. */
static void delete_late(kbuild *kb, const char *what, const char *name)
{
    char *url = kp_xasprintf("%s/%s/%s", kb->api, what, name);
    kb->c.request(kb->c.ctx, "DELETE", url, NULL, NULL, NULL, NULL, on_late_delete, kb, NULL);
    free(url);
}

static void on_claim(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    char m[400];
    kb->claim_pending = false;
    if (kb->closing && !err && resp->status == 201)
        delete_late(kb, "persistentvolumeclaims", kb->claim);
    if (err || (resp->status != 201 && resp->status != 409))
        kb->error = kp_xasprintf("cannot create the workspace claim: %s", message(err, resp, m, sizeof m));
    pump(kb);
}

static void on_owner(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    char m[400];
    cJSON *j = !err && resp->status == 201 ? cJSON_Parse(resp->body) : NULL;
    const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "uid"));
    if (uid && kb->closing) {
        delete_late(kb, "configmaps", kb->owner_name);
        kb->error = kp_xasprintf("the build ended before its owner %s was made", kb->owner_name);
    } else if (uid) {
        kb->owner_uid = kp_xstrdup(uid);
    } else {
        kb->error = kp_xasprintf("cannot create the build's owner %s %s: %s", KUBE_OWNER_KIND, kb->owner_name,
                            j ? "no uid in the answer" : message(err, resp, m, sizeof m));
    }
    cJSON_Delete(j);
    if (kb->owner_uid && kb->claim_body) {
        char *body = kube_own(kb->claim_body, kb->owner_name, kb->owner_uid, NULL);
        kb->claim_body = NULL;
        char *url = kp_xasprintf("%s/persistentvolumeclaims", kb->api);
        if (body && kb->c.request(kb->c.ctx, "POST", url, body, NULL, NULL, NULL, on_claim, kb, NULL) == 0)
            kb->claim_pending = true;
        else
            kb->error = kp_xasprintf("cannot send the workspace claim's create");
        free(url);
        free(body);
    }
    pump(kb);
}

kbuild *kb_open(const kb_conf *c)
{
    kbuild *kb = calloc(1, sizeof *kb);
    if (!kb)
        return NULL;
    kb->c = *c;
    kb->api = kp_xstrdup(c->api);
    kb->ns = kp_xstrdup(c->ns);
    kb->build_id = kp_xstrdup(c->build_id);
    kb->owner = kp_xstrdup(c->owner);
    kb->claim_body = c->claim_body ? kp_xstrdup(c->claim_body) : NULL;
    kb->claim = c->claim ? kp_xstrdup(c->claim) : NULL;
    kb->git_url = c->git_url && *c->git_url ? kp_xstrdup(c->git_url) : NULL;
    kb->git_commit = c->git_commit && *c->git_commit ? kp_xstrdup(c->git_commit) : NULL;
    kb->c.fill_image = NULL; /* the config is borrowed: kb->fill_image is the copy */
    kb->fill_image = c->fill ? kp_xstrdup(c->fill_image && *c->fill_image ? c->fill_image : "alpine/git") : NULL;
    kb->owner_name = kube_owner_name(c->build_id);
    kb->secret_name = kube_secret_name(c->build_id);
    kb->tail = &kb->waits;
    char *body = kube_owner_body(kb->owner_name, kb->ns, kb->build_id, kb->owner);
    char *url = kp_xasprintf("%s/configmaps", kb->api);
    if (c->request(c->ctx, "POST", url, body, NULL, NULL, NULL, on_owner, kb, NULL))
        kb->error = kp_xasprintf("cannot send the create of the build's owner %s", kb->owner_name);
    free(url);
    free(body);
    return kb;
}

/* ---- the Secret ------------------------------------------------------------ */

const char *kb_secret_name(const kbuild *kb)
{
    return kb->secret_name;
}

const char *kb_error(const kbuild *kb)
{
    return kb->error;
}

const char *kb_owner_name(const kbuild *kb)
{
    return kb->owner_name;
}

/* The key of env NAME with VALUE, registered when new. */
static const char *secret_key(kbuild *kb, const char *name, const char *value)
{
    unsigned same_name = 0;
    for (unsigned i = 0; i < kb->n_sec; i++)
        if (!strcmp(kb->sec[i].env, name)) {
            if (!strcmp(kb->sec[i].value, value))
                return kb->sec[i].key;
            same_name++;
        }
    if (kb->n_sec == kb->cap_sec) {
        kb->cap_sec = kb->cap_sec ? 2 * kb->cap_sec : 8;
        kb->sec = realloc(kb->sec, kb->cap_sec * sizeof *kb->sec);
        if (!kb->sec)
            abort();
    }
    char key[256];
    kube_secret_key(name, same_name + 1, key, sizeof key);
    struct kb_secret *s = &kb->sec[kb->n_sec++];
    s->env = kp_xstrdup(name);
    s->value = kp_xstrdup(value);
    s->key = kp_xstrdup(key);
    return s->key;
}

char **kb_secret_keys(kbuild *kb, const kiln_exec_spec *spec, unsigned *need)
{
    *need = 0;
    const char *const *names =
        spec->struct_size > offsetof(kiln_exec_spec, secret_env) ? spec->secret_env : NULL;
    size_t n = 0;
    while (names && names[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        const char *value = NULL;
        for (size_t e = 0; spec->env && spec->env[e]; e++)
            if (!strncmp(spec->env[e], names[i], nl) && spec->env[e][nl] == '=')
                value = spec->env[e] + nl + 1; /* the last one wins, as in the Pod */
        if (!value)
            continue;
        const char *key = secret_key(kb, names[i], value);
        for (unsigned s = 0; s < kb->n_sec; s++)
            if (kb->sec[s].key == key && s + 1 > *need)
                *need = s + 1;
        out[k++] = kp_xasprintf("%s=%s", names[i], key);
    }
    return out;
}

void kb_keys_free(char **keys)
{
    for (size_t i = 0; keys && keys[i]; i++)
        free(keys[i]);
    free(keys);
}

static void on_secret(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    char m[400];
    if (err || (resp->status != 200 && resp->status != 201)) {
        free(kb->secret_error);
        kb->secret_error = kp_xasprintf("cannot apply the build's Secret %s: %s", kb->secret_name,
                                   message(err, resp, m, sizeof m));
    } else {
        kb->applied = kb->applying;
    }
    kb->applying = 0;
    pump(kb);
}

static void apply_secret(kbuild *kb)
{
    const char **keys = calloc(kb->n_sec + 1, sizeof *keys), **values = calloc(kb->n_sec + 1, sizeof *values);
    if (!keys || !values)
        abort();
    for (unsigned i = 0; i < kb->n_sec; i++) {
        keys[i] = kb->sec[i].key;
        values[i] = kb->sec[i].value;
    }
    char *body = kube_secret_body(kb->secret_name, kb->ns, kb->build_id, kb->owner, kb->owner_name,
                                  kb->owner_uid, keys, values, kb->n_sec);
    free(keys);
    free(values);
    /* Server-side apply: the first creates it, the next ones grow it. */
    char *url = kp_xasprintf("%s/secrets/%s?fieldManager=kiln&force=true", kb->api, kb->secret_name);
    kb->applying = kb->n_sec;
    if (kb->c.request(kb->c.ctx, "PATCH", url, body, "Content-Type: application/apply-patch+yaml", NULL,
                      NULL, on_secret, kb, NULL)) {
        kb->applying = 0;
        free(kb->secret_error);
        kb->secret_error = kp_xasprintf("cannot send the build's Secret %s", kb->secret_name);
    }
    explicit_bzero(body, strlen(body)); /* it held the values */
    free(body);
    free(url);
}

/* ---- fill=git ------------------------------------------------------------------ */

/* git -C ws ARG1 ARG2 ARG3: its first line of output into out; 0 or -1. Runs
 * on a worker thread (fork+exec only). */
static int git_line(const char *ws, const char *a1, const char *a2, const char *a3, char *out, size_t cap)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        close(fd[0]);
        execlp("git", "git", "-C", ws, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    out[strcspn(out, "\n")] = '\0';
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && out[0] ? 0 : -1;
}

/* Where the workspace came from: origin's URL and HEAD (what a real
 * cluster can fetch is the remote, not this machine's directory). */
static void find_source(void *data)
{
    kbuild *kb = data;
    char buf[4096];
    if (!kb->git_url) {
        if (git_line(kb->ws, "remote", "get-url", "origin", buf, sizeof buf) == 0)
            kb->git_url = kp_xstrdup(buf);
        else
            kb->fill_error = kp_xasprintf("fill=git: the workspace %s has no remote 'origin' (set gitUrl=)", kb->ws);
    }
    if (!kb->git_commit && !kb->fill_error) {
        if (git_line(kb->ws, "rev-parse", "--verify", "HEAD", buf, sizeof buf) == 0)
            kb->git_commit = kp_xstrdup(buf);
        else
            kb->fill_error = kp_xasprintf("fill=git: the workspace %s has no commit checked out (set gitCommit=)", kb->ws);
    }
}

static void found_source(void *data, int err)
{
    kbuild *kb = data;
    if (kb->fill_error && !kb->error) {
        kb->error = kb->fill_error;
        kb->fill_error = NULL;
    }
    kb->fill = FILL_FOUND;
    pump(kb);
}

void kb_fill(kbuild *kb, const char *ws)
{
    if (!kb->c.fill || kb->fill != FILL_NONE)
        return;
    kb->ws = kp_xstrdup(ws);
    kb->fill = FILL_FINDING;
    if (kb->git_url && kb->git_commit) {
        found_source(kb, 0);
        return;
    }
    if (kiln_api->queue_work(KILN_OBJ(kb->c.self), find_source, found_source, kb)) {
        find_source(kb); /* no worker: a few milliseconds on the loop */
        found_source(kb, 0);
    }
}

static void fill_failed(kbuild *kb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fill_unwatch(kbuild *kb)
{
    if (kb->watch) {
        kiln_http *w = kb->watch;
        kb->watch = NULL; /* its callback sees the fill is no longer running */
        kiln_api->http_abort(w);
    }
}

static void fill_failed(kbuild *kb, const char *fmt, ...)
{
    if (kb->fill == FILL_DONE)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (!kb->error)
        kb->error = m;
    else
        free(m);
    kb->fill = FILL_DONE;
    pump(kb);
}

static void on_fill_deleted(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
}

static void fill_remove(kbuild *kb)
{
    char *url = kp_xasprintf("%s/pods/%s-fill?gracePeriodSeconds=0", kb->api, kb->owner_name);
    kb->c.request(kb->c.ctx, "DELETE", url, NULL, NULL, NULL, NULL, on_fill_deleted, kb, NULL);
    free(url);
}

/* The fill Pod's log, read once it ended: its lines go to kiln's console
 * (success) or into the build's error (failure). */
static void on_fill_log(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    const char *log = !err && resp->status == 200 && resp->body ? resp->body : "";
    if (kb->fill_exit == 0) {
        char *copy = kp_xstrdup(log), *save = NULL;
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            kiln_info(kb->c.self, "executor kubernetes: %s", l);
        free(copy);
        kb->fill = FILL_DONE;
        if (kb->scout == kb)
            kb->scout = NULL; /* no node seen: the first step's Pod finds it */
        pump(kb);
    } else {
        size_t n = strlen(log);
        while (n && log[n - 1] == '\n')
            n--;
        size_t start = n > 400 ? n - 400 : 0;
        fill_failed(kb, "filling the workspace claim from %s at %s failed (Pod %s-fill, exit code %d): %.*s",
                    kb->git_url, kb->git_commit, kb->owner_name, kb->fill_exit, (int)(n - start), log + start);
    }
    fill_remove(kb);
}

static void fill_event(kbuild *kb, const char *line)
{
    cJSON *j = cJSON_Parse(line);
    const cJSON *obj = cJSON_GetObjectItem(j, "object");
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "type"));
    if (!type || kb->fill != FILL_RUNNING) {
        cJSON_Delete(j);
        return;
    }
    kb_pod_node(kb, cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "nodeName")));
    const cJSON *st = cJSON_GetObjectItem(cJSON_GetArrayItem(
                                              cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "status"), "containerStatuses"), 0),
                                          "state");
    const cJSON *term = cJSON_GetObjectItem(st, "terminated");
    const char *wr = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "waiting"), "reason"));
    if (!strcmp(type, "DELETED") && !term) {
        fill_failed(kb, "the fill Pod %s-fill was deleted before it ended", kb->owner_name);
    } else if (term) {
        const cJSON *ec = cJSON_GetObjectItem(term, "exitCode");
        kb->fill_exit = cJSON_IsNumber(ec) ? ec->valueint : 1;
        kb->fill = FILL_DONE + 1; /* reading its log; the watch is stopped by on_fill_data */
        char *url = kp_xasprintf("%s/pods/%s-fill/log?container=fill", kb->api, kb->owner_name);
        if (kb->c.request(kb->c.ctx, "GET", url, NULL, NULL, NULL, NULL, on_fill_log, kb, NULL))
            on_fill_log(NULL, kb, KILN_EIO, NULL);
        free(url);
    } else if (kube_start_failure(wr)) {
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "waiting"), "message"));
        fill_failed(kb, "the fill image %s cannot be used: %s%s%s", kb->fill_image, wr, msg ? ": " : "",
                    msg ? msg : "");
        fill_remove(kb);
    }
    cJSON_Delete(j);
}

static int on_fill_data(void *data, const char *buf, size_t len)
{
    kbuild *kb = data;
    kb->wbuf = realloc(kb->wbuf, kb->wlen + len + 1);
    if (!kb->wbuf)
        abort();
    memcpy(kb->wbuf + kb->wlen, buf, len);
    kb->wlen += len;
    kb->wbuf[kb->wlen] = '\0';
    char *start = kb->wbuf, *nl;
    while (kb->fill == FILL_RUNNING && (nl = strchr(start, '\n'))) {
        *nl = '\0';
        fill_event(kb, start);
        start = nl + 1;
    }
    if (kb->fill != FILL_RUNNING) {
        /* Over: no more events wanted; the request goes (no callback into
         * a running watch any more: on_fill_watch sees the state). */
        kb->wlen = 0;
        kb->watch = NULL;
        return KILN_ECANCELED;
    }
    kb->wlen -= (size_t)(start - kb->wbuf);
    memmove(kb->wbuf, start, kb->wlen);
    return 0;
}

static void fill_watch(kbuild *kb);

static void on_fill_watch(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    kb->watch = NULL;
    kb->wlen = 0;
    if (kb->fill != FILL_RUNNING)
        return;
    if (++kb->fill_watches > 20) {
        char m[300];
        fill_failed(kb, "lost the watch on the fill Pod: %s", message(err, resp, m, sizeof m));
        return;
    }
    fill_watch(kb); /* timeoutSeconds, or a dropped connection: from the start again */
}

static void fill_watch(kbuild *kb)
{
    char *url = kp_xasprintf("%s/pods?fieldSelector=metadata.name%%3D%s-fill&watch=true&timeoutSeconds=300", kb->api,
                        kb->owner_name);
    if (kb->c.request(kb->c.ctx, "GET", url, NULL, NULL, on_fill_data, kb, on_fill_watch, kb, &kb->watch))
        fill_failed(kb, "cannot send the watch of the fill Pod");
    free(url);
}

static void on_fill_created(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    char m[400];
    if (err || resp->status != 201) {
        fill_failed(kb, "cannot create the fill Pod %s-fill: %s", kb->owner_name, message(err, resp, m, sizeof m));
        return;
    }
    if (kb->closing) { /* made after close() listed the build's Pods: it would outlive the build */
        fill_failed(kb, "the build ended before its workspace was filled");
        fill_remove(kb);
        return;
    }
    kiln_info(kb->c.self, "executor kubernetes: filling the workspace claim from %s at %s (image %s)",
              kb->git_url, kb->git_commit, kb->fill_image);
    fill_watch(kb);
}

static void fill_create(kbuild *kb)
{
    kb->fill = FILL_RUNNING;
    char *name = kp_xasprintf("%s-fill", kb->owner_name);
    char *body = kube_fill_body(name, kb->ns, kb->build_id, kb->owner, kb->claim, kb->fill_image, kb->git_url,
                                kb->git_commit);
    body = kube_own(body, kb->owner_name, kb->owner_uid, NULL);
    if (kb->c.pin_node)
        kb->scout = kb; /* the fill Pod finds the build's node */
    char *url = kp_xasprintf("%s/pods", kb->api);
    if (!body || kb->c.request(kb->c.ctx, "POST", url, body, NULL, NULL, NULL, on_fill_created, kb, NULL))
        fill_failed(kb, "cannot send the fill Pod's create");
    free(url);
    free(body);
    free(name);
}

/* ---- the gate ---------------------------------------------------------------- */

void kb_when_ready(kbuild *kb, char *body, unsigned need, void *token, kb_ready_cb cb, void *data)
{
    struct kb_wait *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->body = body;
    w->need = need;
    w->token = token;
    w->cb = cb;
    w->data = data;
    *kb->tail = w;
    kb->tail = &w->next;
    pump(kb);
}

static void pump_once(kbuild *kb);

/* Release every waiter that may go (in order), fail them on an error. */
static void pump(kbuild *kb)
{
    if (kb->pumping) {
        kb->again = true;
        return;
    }
    kb->pumping = true;
    do {
        kb->again = false;
        pump_once(kb);
    } while (kb->again);
    kb->pumping = false;
}

static void pump_once(kbuild *kb)
{
    bool owner_ready = kb->owner_uid && !kb->claim_pending;
    if (owner_ready && kb->fill == FILL_FOUND && !kb->error && !kb->closing) /* no fill once the build ended */
        fill_create(kb);
    if (kb->c.fill && kb->fill != FILL_DONE)
        owner_ready = false; /* the claim is not filled yet */
    if (!owner_ready && !kb->error)
        return;
    struct kb_wait **pw = &kb->waits;
    unsigned want = 0;
    while (*pw) {
        struct kb_wait *w = *pw;
        const char *error = kb->error;
        if (!error && w->need > kb->applied && kb->secret_error)
            error = kb->secret_error;
        if (!error && w->need > kb->applied) {
            want = w->need > want ? w->need : want;
            pw = &w->next;
            continue;
        }
        bool pinned_wait = !error && kb->c.pin_node && !kb->node && kb->scout && kb->scout != w->token;
        if (pinned_wait) {
            pw = &w->next;
            continue;
        }
        *pw = w->next;
        if (kb->tail == &w->next)
            kb->tail = pw;
        char *body = NULL;
        if (!error) {
            if (kb->c.pin_node && !kb->node)
                kb->scout = w->token; /* this one finds the node */
            body = kube_own(w->body, kb->owner_name, kb->owner_uid, kb->c.pin_node ? kb->node : NULL);
            if (!body) {
                free(w->body);
                error = "the Pod's body is not a JSON object";
            }
        } else {
            free(w->body);
        }
        w->cb(w->data, body, error);
        free(w);
    }
    if (want && !kb->applying && !kb->secret_error && !kb->error)
        apply_secret(kb);
    if (kb->secret_error && !want) {
        /* reported to the Pods that needed it; a later Pod tries again */
        free(kb->secret_error);
        kb->secret_error = NULL;
    }
}

void kb_pod_node(kbuild *kb, const char *node)
{
    if (!kb || !kb->c.pin_node || kb->node || !node || !*node)
        return;
    kb->node = kp_xstrdup(node);
    kiln_info(kb->c.self, "executor kubernetes: workspace=pvc-rwo: the build's Pods run on node %s", node);
    pump(kb);
}

const char *kb_node(const kbuild *kb)
{
    return kb && kb->c.pin_node ? kb->node : NULL;
}

void kb_node_gone(kbuild *kb, const char *why)
{
    if (!kb || kb->error)
        return;
    kb->error = kp_xstrdup(why);
    pump(kb);
}

void kb_forget(kbuild *kb, void *token)
{
    if (kb && kb->scout == token) {
        kb->scout = NULL;
        pump(kb);
    }
}

void kb_close(kbuild *kb)
{
    if (!kb)
        return;
    kb->closing = true;
    /* Pods still waiting here belong to steps that are over (cancelled
     * while the owner, Secret, fill or node was awaited): let them go, or
     * their state outlives the build. No pump meanwhile: nothing new is
     * sent for a build that ended. */
    kb->pumping = true;
    struct kb_wait *w;
    while ((w = kb->waits)) {
        kb->waits = w->next;
        if (!kb->waits)
            kb->tail = &kb->waits;
        free(w->body);
        w->cb(w->data, NULL, "the build ended");
        free(w);
    }
    kb->pumping = false;
    kb->again = false;
}

void kb_free(kbuild *kb)
{
    if (!kb)
        return;
    fill_unwatch(kb);
    for (unsigned i = 0; i < kb->n_sec; i++) {
        explicit_bzero(kb->sec[i].value, strlen(kb->sec[i].value));
        free(kb->sec[i].env);
        free(kb->sec[i].value);
        free(kb->sec[i].key);
    }
    free(kb->sec);
    struct kb_wait *next;
    for (struct kb_wait *w = kb->waits; w; w = next) {
        next = w->next;
        free(w->body);
        free(w);
    }
    free(kb->api);
    free(kb->ns);
    free(kb->build_id);
    free(kb->owner);
    free(kb->claim_body);
    free(kb->owner_name);
    free(kb->owner_uid);
    free(kb->secret_name);
    free(kb->error);
    free(kb->secret_error);
    free(kb->node);
    free(kb->ws);
    free(kb->claim);
    free(kb->fill_image);
    free(kb->git_url);
    free(kb->git_commit);
    free(kb->fill_error);
    free(kb->wbuf);
    free(kb);
}
