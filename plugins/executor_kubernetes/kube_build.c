/* SPDX-License-Identifier: MIT */
#include "kube_build.h"

#include <cJSON.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gcloudignore.h"
#include "../common/run_capture.h"
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
    /* fill=git, fill=upload */
    int fill;               /* FILL_* */
    char *ws, *claim, *fill_image, *git_url, *git_commit, *git_secret, *fill_error;
    kiln_http *watch;       /* the fill Pod's watch */
    char *wbuf;             /* its partial line */
    size_t wlen;
    int fill_exit, fill_watches;
    /* fill=upload: the workspace's gzip'd tar (pack_total counts past the
     * limit, where pack stops growing), cut into chunks ConfigMaps */
    unsigned char *pack;
    size_t pack_len, pack_cap, pack_total, n_chunks, chunks_sent, chunks_made;
    char *pack_warn;
    char *upload_ignore;    /* the uploadIgnore option, or NULL */
    char *ignore_source;    /* what the ignore rules came from, or NULL: none applied */
    uint64_t left_files, left_bytes, kept_files;
    unsigned chunks_inflight;
    bool chunks_deleted;
};

enum { FILL_NONE, FILL_FINDING, FILL_FOUND, FILL_UPLOADING, FILL_RUNNING, FILL_DONE };
#define CHUNKS_IN_FLIGHT 4 /* ConfigMap creates at once: each is up to ~1 MiB */

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
    kb->git_secret = c->git_secret && *c->git_secret ? kp_xstrdup(c->git_secret) : NULL;
    kb->upload_ignore = c->upload_ignore ? kp_xstrdup(c->upload_ignore) : NULL;
    /* the config is borrowed: kb's own copies are used from here on */
    kb->c.fill_image = kb->c.git_url = kb->c.git_commit = kb->c.git_secret = kb->c.upload_ignore = NULL;
    const char *image = c->fill == KB_FILL_UPLOAD ? "busybox" : "alpine/git";
    kb->fill_image = c->fill ? kp_xstrdup(c->fill_image && *c->fill_image ? c->fill_image : image) : NULL;
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

struct first_line {
    char *out;
    size_t len, cap;
};

static void take_output(void *data, const char *buf, size_t len)
{
    struct first_line *f = data;
    size_t take = len < f->cap - 1 - f->len ? len : f->cap - 1 - f->len;
    memcpy(f->out + f->len, buf, take);
    f->len += take;
    f->out[f->len] = '\0';
}

/* git -C ws ARG1 ARG2 ARG3: its first line of output into out; 0 or -1. Runs
 * on a worker thread. */
static int git_line(const char *ws, const char *a1, const char *a2, const char *a3, char *out, size_t cap)
{
    char *argv[] = {"git", "-C", (char *)ws, (char *)a1, (char *)a2, (char *)a3, NULL};
    struct first_line f = {out, 0, cap};
    int st = 0;
    out[0] = '\0';
    if (kp_run_capture(argv, NULL, take_output, &f, NULL, 0, 0, &st, NULL))
        return -1;
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

/* ---- fill=upload: the workspace as it is ------------------------------------ */

static void human(size_t n, char *out, size_t cap)
{
    if (n >= 1024 * 1024)
        snprintf(out, cap, "%zu bytes (%.1f MiB)", n, (double)n / (1024.0 * 1024.0));
    else
        snprintf(out, cap, "%zu bytes", n);
}

/* tar's output: kept up to the limit, counted past it. */
static void take_pack(void *data, const char *buf, size_t len)
{
    kbuild *kb = data;
    kb->pack_total += len;
    if (kb->pack_total > kb->c.upload_limit)
        return; /* counted only */
    if (kb->pack_len + len > kb->pack_cap) {
        kb->pack_cap = kb->pack_cap ? 2 * kb->pack_cap : 1 << 20;
        while (kb->pack_cap < kb->pack_len + len)
            kb->pack_cap *= 2;
        kb->pack = realloc(kb->pack, kb->pack_cap);
        if (!kb->pack)
            abort();
    }
    memcpy(kb->pack + kb->pack_len, buf, len);
    kb->pack_len += len;
}

/* On a worker thread: the workspace walked with gcloud's ignore rules
 * (gcloudignore.h), excluded directories not entered, and the kept paths
 * given to tar on its stdin, so that tar reads nothing that is left out.
 * Past the limit the bytes are only counted, so the error can say the
 * size. */
static void pack_workspace(void *data)
{
    kbuild *kb = data;
    gi_rules g = {0};
    gi_walk w = {0};
    char ebuf[1200];
    if (gi_choose(&g, kb->ws, kb->upload_ignore, ebuf, sizeof ebuf) ||
        gi_walk_tree(&g, kb->ws, &w, ebuf, sizeof ebuf)) {
        kb->fill_error = kp_xasprintf("fill=upload: %s%s", kb->upload_ignore ? "uploadIgnore=" : "", ebuf);
        gi_free(&g);
        gi_walk_free(&w);
        return;
    }
    kb->ignore_source = g.source ? kp_xstrdup(g.source) : NULL;
    kb->left_files = w.left_files;
    kb->left_bytes = w.left_bytes;
    kb->kept_files = w.kept_files;
    gi_free(&g);
    /* --verbatim-files-from: a name that starts with '-' is a name */
    char *argv[] = {"tar", "-czf", "-", "-C", kb->ws, "--null", "--no-recursion", "--verbatim-files-from", "-T", "-",
                    NULL};
    int st = 0;
    int rc = kp_run_capture_in(argv, NULL, w.list, w.len, take_pack, kb, ebuf, sizeof ebuf, 0, &st, NULL);
    gi_walk_free(&w);
    if (rc) {
        kb->fill_error = rc == ENOENT ? kp_xasprintf("fill=upload: cannot run tar to pack the workspace %s: tar is "
                                                     "not installed",
                                                     kb->ws)
                                      : kp_xasprintf("fill=upload: cannot start tar: %s", strerror(rc));
        return;
    }
    size_t elen = strlen(ebuf);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char size[64], limit[64];
    human(kb->pack_total, size, sizeof size);
    human(kb->c.upload_limit, limit, sizeof limit);
    if (code == 127) {
        kb->fill_error = kp_xasprintf("fill=upload: cannot run tar to pack the workspace %s", kb->ws);
    } else if (code > 1) {
        /* GNU tar's 1 is "some files differ" (changed while read): the
         * archive is whole, said as a warning */
        kb->fill_error = kp_xasprintf("fill=upload: tar could not pack the workspace %s (exit code %d): %s", kb->ws,
                                      code, elen ? ebuf : "no message");
    } else if (kb->pack_total > kb->c.upload_limit) {
        /* gcloud's default is no file to add to: a .gcloudignore replaces it */
        bool dflt = kb->ignore_source && strncmp(kb->ignore_source, "gcloud's default", 16) == 0;
        char *how = kb->ignore_source
                        ? kp_xasprintf("%s left out %llu files; list more %s", kb->ignore_source,
                                       (unsigned long long)kb->left_files,
                                       dflt ? "in a .gcloudignore (it replaces the default: start it with .git, "
                                              ".gitignore and #!include:.gitignore)"
                                            : "there")
                        : kp_xasprintf("no ignore file applied%s: list what the steps do not need in a "
                                       ".gcloudignore",
                                       kb->upload_ignore ? " (uploadIgnore=none)" : "");
        kb->fill_error = kp_xasprintf("fill=upload: the workspace %s is %s as a gzip'd tar, over uploadLimit=%zu "
                                      "(%s): nothing was uploaded (%s, raise uploadLimit, or use fill=git)",
                                      kb->ws, size, kb->c.upload_limit / (1024 * 1024), limit, how);
        free(how);
    } else if (code == 1 || elen) {
        kb->pack_warn = kp_xasprintf("tar packed the workspace %s with a warning: %s", kb->ws,
                                     elen ? ebuf : "some files changed while they were read");
    }
    if (kb->fill_error) {
        free(kb->pack);
        kb->pack = NULL;
        kb->pack_len = 0;
    }
}

static void found_source(void *data, int err);

static void packed(void *data, int err)
{
    kbuild *kb = data;
    if (!kb->fill_error && !kb->pack_len)
        kb->fill_error = kp_xasprintf("fill=upload: tar gave no output for the workspace %s", kb->ws);
    if (kb->ignore_source) {
        char left[64];
        human((size_t)kb->left_bytes, left, sizeof left);
        kiln_info(kb->c.self, "executor kubernetes: fill=upload: %s left out %llu file%s (%s), %llu kept",
                  kb->ignore_source, (unsigned long long)kb->left_files, kb->left_files == 1 ? "" : "s", left,
                  (unsigned long long)kb->kept_files);
    }
    if (kb->pack_warn)
        kiln_warn(kb->c.self, "executor kubernetes: %s", kb->pack_warn);
    kb->n_chunks = (kb->pack_len + KUBE_CHUNK_BYTES - 1) / KUBE_CHUNK_BYTES;
    found_source(kb, err);
}

static void chunks_delete(kbuild *kb)
{
    if (kb->chunks_deleted)
        return;
    kb->chunks_deleted = true;
    for (size_t i = 0; i < kb->chunks_sent; i++) {
        char *name = kube_chunk_name(kb->build_id, i);
        delete_late(kb, "configmaps", name);
        free(name);
    }
}

static void fill_failed(kbuild *kb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fill_pod(kbuild *kb);
static void chunks_send(kbuild *kb);

struct kb_chunk {
    kbuild *kb;
    size_t i;
};

static void on_chunk(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct kb_chunk *ch = data;
    kbuild *kb = ch->kb;
    char m[400];
    kb->chunks_inflight--;
    bool made = !err && resp->status == 201;
    if (made && (kb->closing || kb->chunks_deleted)) {
        char *name = kube_chunk_name(kb->build_id, ch->i);
        delete_late(kb, "configmaps", name); /* the fill is over: no longer wanted */
        free(name);
    }
    if (kb->closing) {
        /* the build ends: no more parts, no fill Pod (close() is deleting
         * what it listed; the answers still to come delete their own) */
        free(ch);
        return;
    }
    if (!made && kb->fill == FILL_UPLOADING) {
        char *name = kube_chunk_name(kb->build_id, ch->i);
        fill_failed(kb, "cannot create the ConfigMap %s (part %zu of %zu of the workspace's upload): %s", name,
                    ch->i + 1, kb->n_chunks, message(err, resp, m, sizeof m));
        free(name);
    } else if (made && kb->fill == FILL_UPLOADING && ++kb->chunks_made == kb->n_chunks) {
        free(kb->pack); /* in the cluster now */
        kb->pack = NULL;
        fill_pod(kb);
    } else if (kb->fill == FILL_UPLOADING) {
        chunks_send(kb);
    }
    free(ch);
}

static void chunks_send(kbuild *kb)
{
    while (kb->fill == FILL_UPLOADING && kb->chunks_sent < kb->n_chunks && kb->chunks_inflight < CHUNKS_IN_FLIGHT) {
        size_t i = kb->chunks_sent++;
        size_t off = i * KUBE_CHUNK_BYTES;
        size_t len = kb->pack_len - off < KUBE_CHUNK_BYTES ? kb->pack_len - off : KUBE_CHUNK_BYTES;
        char *name = kube_chunk_name(kb->build_id, i);
        char *body = kube_chunk_body(name, kb->ns, kb->build_id, kb->owner, kb->owner_name, kb->owner_uid,
                                     kb->pack + off, len);
        char *url = kp_xasprintf("%s/configmaps", kb->api);
        struct kb_chunk *ch = calloc(1, sizeof *ch);
        if (!ch)
            abort();
        ch->kb = kb;
        ch->i = i;
        int rc = kb->c.request(kb->c.ctx, "POST", url, body, NULL, NULL, NULL, on_chunk, ch, NULL);
        free(url);
        free(body);
        if (rc) {
            free(ch);
            fill_failed(kb, "cannot send the create of the ConfigMap %s", name);
            free(name);
            return;
        }
        kb->chunks_inflight++;
        free(name);
    }
}

void kb_fill(kbuild *kb, const char *ws)
{
    if (!kb->c.fill || kb->fill != FILL_NONE)
        return;
    kb->ws = kp_xstrdup(ws);
    kb->fill = FILL_FINDING;
    if (kb->c.fill == KB_FILL_UPLOAD) {
        if (kiln_api->queue_work(KILN_OBJ(kb->c.self), pack_workspace, packed, kb)) {
            pack_workspace(kb); /* no worker: on the loop, once */
            packed(kb, 0);
        }
        return;
    }
    if (kb->git_url && kb->git_commit) {
        found_source(kb, 0);
        return;
    }
    if (kiln_api->queue_work(KILN_OBJ(kb->c.self), find_source, found_source, kb)) {
        find_source(kb); /* no worker: a few milliseconds on the loop */
        found_source(kb, 0);
    }
}

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
    chunks_delete(kb);
    pump(kb);
}

static void on_fill_deleted(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
}

static void fill_remove(kbuild *kb)
{
    chunks_delete(kb);
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
        if (kb->c.fill == KB_FILL_UPLOAD)
            fill_failed(kb, "filling the workspace claim from the upload of %s failed (Pod %s-fill, exit code %d): %.*s",
                        kb->ws, kb->owner_name, kb->fill_exit, (int)(n - start), log + start);
        else
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
    } else if (wr && !strcmp(wr, "CreateContainerConfigError")) {
        /* the kubelet could not resolve the env (gitSecret's Secret or a
         * key) or a volume (a part of the upload deleted meanwhile) */
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "waiting"), "message"));
        char hint[400] = "";
        if (kb->git_secret)
            snprintf(hint, sizeof hint, " (gitSecret=%s must name a Secret of namespace %s with the key%s)",
                     kb->git_secret, kb->ns,
                     kube_git_url_is_ssh(kb->git_url) ? " ssh-privatekey" : "s username and password");
        fill_failed(kb, "the fill Pod %s-fill cannot start: %s%s%s%s", kb->owner_name, wr, msg ? ": " : "",
                    msg ? msg : "", hint);
        fill_remove(kb);
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
    if (kb->c.fill == KB_FILL_GIT)
        kiln_info(kb->c.self, "executor kubernetes: filling the workspace claim from %s at %s (image %s%s%s)",
                  kb->git_url, kb->git_commit, kb->fill_image, kb->git_secret ? ", credentials from Secret " : "",
                  kb->git_secret ? kb->git_secret : "");
    fill_watch(kb);
}

static void fill_create(kbuild *kb)
{
    if (kb->closing)
        return; /* the source was found or packed after the build ended */
    if (kb->c.fill == KB_FILL_UPLOAD) {
        char size[64];
        human(kb->pack_len, size, sizeof size);
        kiln_info(kb->c.self, "executor kubernetes: uploading the workspace %s into the claim: %s of gzip'd tar "
                              "in %zu ConfigMap%s %s-src-N (image %s unpacks it)",
                  kb->ws, size, kb->n_chunks, kb->n_chunks == 1 ? "" : "s", kb->owner_name, kb->fill_image);
        kb->fill = FILL_UPLOADING;
        chunks_send(kb);
        return;
    }
    fill_pod(kb);
}

static void fill_pod(kbuild *kb)
{
    kb->fill = FILL_RUNNING;
    char *name = kp_xasprintf("%s-fill", kb->owner_name);
    char **chunks = calloc(kb->n_chunks + 1, sizeof *chunks);
    if (!chunks)
        abort();
    for (size_t i = 0; i < kb->n_chunks; i++)
        chunks[i] = kube_chunk_name(kb->build_id, i);
    kube_fill f = {.name = name, .ns = kb->ns, .build_id = kb->build_id, .owner = kb->owner, .claim = kb->claim,
                   .image = kb->fill_image, .url = kb->c.fill == KB_FILL_GIT ? kb->git_url : NULL,
                   .commit = kb->git_commit, .git_secret = kb->git_secret,
                   .chunks = (const char *const *)chunks, .n_chunks = kb->n_chunks, .from = kb->ws,
                   .bytes = kb->pack_len};
    char *body = kube_fill_body(&f);
    for (size_t i = 0; i < kb->n_chunks; i++)
        free(chunks[i]);
    free(chunks);
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
    free(kb->git_secret);
    free(kb->fill_error);
    free(kb->upload_ignore);
    free(kb->ignore_source);
    free(kb->pack);
    free(kb->pack_warn);
    free(kb->wbuf);
    free(kb);
}
