/* SPDX-License-Identifier: MIT */
#include "kube_build.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    bool owner_sent, claim_pending;
    /* the Secret: keys known, keys the server holds, one apply at a time */
    struct kb_secret *sec;
    unsigned n_sec, cap_sec, applied, applying;
    char *secret_error;
    /* pvc-rwo */
    char *node;
    void *scout;            /* the Pod whose node the others wait for */
    struct kb_wait *waits, **tail;
    bool pumping, again;    /* a callback of pump() may come back into it */
};

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

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

/* ---- the owner and the claim ---------------------------------------------- */

static void on_claim(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    char m[400];
    kb->claim_pending = false;
    if (err || (resp->status != 201 && resp->status != 409))
        kb->error = xprintf("cannot create the workspace claim: %s", message(err, resp, m, sizeof m));
    pump(kb);
}

static void on_owner(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kbuild *kb = data;
    char m[400];
    cJSON *j = !err && resp->status == 201 ? cJSON_Parse(resp->body) : NULL;
    const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "uid"));
    if (uid) {
        kb->owner_uid = xstrdup(uid);
    } else {
        kb->error = xprintf("cannot create the build's owner %s %s: %s", KUBE_OWNER_KIND, kb->owner_name,
                            j ? "no uid in the answer" : message(err, resp, m, sizeof m));
    }
    cJSON_Delete(j);
    if (kb->owner_uid && kb->claim_body) {
        char *body = kube_own(kb->claim_body, kb->owner_name, kb->owner_uid, NULL);
        kb->claim_body = NULL;
        char *url = xprintf("%s/persistentvolumeclaims", kb->api);
        if (body && kb->c.request(kb->c.ctx, "POST", url, body, NULL, on_claim, kb) == 0)
            kb->claim_pending = true;
        else
            kb->error = xprintf("cannot send the workspace claim's create");
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
    kb->api = xstrdup(c->api);
    kb->ns = xstrdup(c->ns);
    kb->build_id = xstrdup(c->build_id);
    kb->owner = xstrdup(c->owner);
    kb->claim_body = c->claim_body ? xstrdup(c->claim_body) : NULL;
    kb->owner_name = kube_owner_name(c->build_id);
    kb->secret_name = kube_secret_name(c->build_id);
    kb->tail = &kb->waits;
    char *body = kube_owner_body(kb->owner_name, kb->ns, kb->build_id, kb->owner);
    char *url = xprintf("%s/configmaps", kb->api);
    if (c->request(c->ctx, "POST", url, body, NULL, on_owner, kb))
        kb->error = xprintf("cannot send the create of the build's owner %s", kb->owner_name);
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
    s->env = xstrdup(name);
    s->value = xstrdup(value);
    s->key = xstrdup(key);
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
        out[k++] = xprintf("%s=%s", names[i], key);
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
        kb->secret_error = xprintf("cannot apply the build's Secret %s: %s", kb->secret_name,
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
    char *url = xprintf("%s/secrets/%s?fieldManager=kiln&force=true", kb->api, kb->secret_name);
    kb->applying = kb->n_sec;
    if (kb->c.request(kb->c.ctx, "PATCH", url, body, "Content-Type: application/apply-patch+yaml", on_secret,
                      kb)) {
        kb->applying = 0;
        free(kb->secret_error);
        kb->secret_error = xprintf("cannot send the build's Secret %s", kb->secret_name);
    }
    explicit_bzero(body, strlen(body)); /* it held the values */
    free(body);
    free(url);
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
    kb->node = xstrdup(node);
    kiln_info(kb->c.self, "executor kubernetes: workspace=pvc-rwo: the build's Pods run on node %s", node);
    pump(kb);
}

void kb_forget(kbuild *kb, void *token)
{
    if (kb && kb->scout == token) {
        kb->scout = NULL;
        pump(kb);
    }
}

void kb_free(kbuild *kb)
{
    if (!kb)
        return;
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
    free(kb);
}
