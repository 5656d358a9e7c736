/* SPDX-License-Identifier: MIT */
#include "docker_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/base64.h"
#include "../common/xalloc.h"

/* ---- dk_buf ------------------------------------------------------------ */

static void buf_reserve(dk_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->s = kp_xrealloc(b->s, cap);
    b->cap = cap;
}

void dk_buf_add(dk_buf *b, const char *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void dk_buf_adds(dk_buf *b, const char *s)
{
    dk_buf_add(b, s, strlen(s));
}

void dk_buf_addf(dk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dk_buf_reset(dk_buf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

void dk_buf_free(dk_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

void dk_buf_add_urlenc(dk_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            dk_buf_add(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            dk_buf_add(b, e, 3);
        }
    }
}

void dk_buf_add_b64url(dk_buf *b, const void *data, size_t n)
{
    char *e = kp_base64(data, n, KP_BASE64_URL);
    dk_buf_adds(b, e);
    free(e);
}

/* ---- addresses ------------------------------------------------------------ */

int dk_addr_parse(const char *spec, dk_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) {
        snprintf(err, errlen, "empty engine address");
        return -1;
    }
    const char *path = NULL;
    if (strncmp(spec, "unix://", 7) == 0)
        path = spec + 7;
    else if (spec[0] == '/')
        path = spec;
    if (path) {
        if (path[0] != '/') {
            snprintf(err, errlen, "\"%s\": a unix socket address needs an absolute path (unix:///var/run/docker.sock)",
                     spec);
            return -1;
        }
        out->socket = kp_xstrdup(path);
        out->base = kp_xstrdup("http://docker");
        dk_buf d = {0};
        dk_buf_addf(&d, "unix://%s", path);
        out->display = d.s;
        return 0;
    }
    const char *hostport = NULL, *scheme = "http";
    if (strncmp(spec, "tcp://", 6) == 0)
        hostport = spec + 6;
    else if (strncmp(spec, "http://", 7) == 0)
        hostport = spec + 7;
    else if (strncmp(spec, "https://", 8) == 0)
        hostport = spec + 8, scheme = "https";
    if (!hostport) {
        const char *colon = strstr(spec, "://");
        snprintf(err, errlen, "\"%s\": unsupported engine address%s%.*s%s (use unix:///path or tcp://host:port)", spec,
                 colon ? " scheme \"" : "", colon ? (int)(colon - spec) : 0, spec, colon ? "\"" : "");
        return -1;
    }
    size_t n = strcspn(hostport, "/?#");
    if (n == 0 || strpbrk(hostport, " \t\r\n")) {
        snprintf(err, errlen, "\"%s\": no host in the engine address", spec);
        return -1;
    }
    char *hp = kp_xstrndup(hostport, n);
    /* Docker's default port for tcp:// without one is 2375 (2376 with TLS). */
    bool has_port = strrchr(hp, ':') && (hp[0] != '[' || strstr(hp, "]:"));
    dk_buf base = {0}, disp = {0};
    dk_buf_addf(&base, "%s://%s%s", scheme, hp, has_port ? "" : strcmp(scheme, "https") ? ":2375" : ":2376");
    dk_buf_addf(&disp, "%s://%s%s", strcmp(scheme, "https") ? "tcp" : "https", hp,
                has_port ? "" : strcmp(scheme, "https") ? ":2375" : ":2376");
    free(hp);
    out->base = base.s;
    out->display = disp.s;
    return 0;
}

void dk_addr_free(dk_addr *a)
{
    free(a->socket);
    free(a->base);
    free(a->display);
    memset(a, 0, sizeof *a);
}

/* ---- references --------------------------------------------------------- */

int dk_ref_parse(const char *ref, dk_ref *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!ref || !*ref) {
        snprintf(err, errlen, "empty image reference");
        return -1;
    }
    if (strpbrk(ref, " \t\r\n\"'\\")) {
        snprintf(err, errlen, "\"%s\" is not an image reference (blanks or quotes)", ref);
        return -1;
    }
    if (strchr(ref, '@')) {
        snprintf(err, errlen, "\"%s\" is a digest reference; give a tag (name:tag) to build and push", ref);
        return -1;
    }
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(ref, ':');
    size_t repo_len = strlen(ref);
    const char *tag = "latest";
    if (colon && (!slash || colon > slash)) {
        repo_len = (size_t)(colon - ref);
        tag = colon + 1;
        if (!*tag) {
            snprintf(err, errlen, "\"%s\" has an empty tag", ref);
            return -1;
        }
    }
    if (repo_len == 0 || ref[repo_len - 1] == '/' || ref[0] == '/' || strstr(ref, "//")) {
        snprintf(err, errlen, "\"%s\" is not an image reference", ref);
        return -1;
    }
    out->repo = kp_xstrndup(ref, repo_len);
    out->tag = kp_xstrdup(tag);
    /* The path part (after a registry host) must be lower case. */
    const char *first_slash = strchr(out->repo, '/');
    bool has_registry = false;
    if (first_slash) {
        size_t hn = (size_t)(first_slash - out->repo);
        has_registry = memchr(out->repo, '.', hn) || memchr(out->repo, ':', hn) ||
                       (hn == 9 && strncmp(out->repo, "localhost", 9) == 0);
        out->registry = has_registry ? kp_xstrndup(out->repo, hn) : kp_xstrdup("docker.io");
    } else {
        out->registry = kp_xstrdup("docker.io");
    }
    const char *path = has_registry ? first_slash + 1 : out->repo;
    for (const char *p = path; *p; p++)
        if (isupper((unsigned char)*p)) {
            snprintf(err, errlen, "\"%s\": repository names must be lower case", ref);
            dk_ref_free(out);
            return -1;
        }
    return 0;
}

void dk_ref_free(dk_ref *r)
{
    free(r->repo);
    free(r->tag);
    free(r->registry);
    memset(r, 0, sizeof *r);
}

bool dk_find_digest(const char *status, char out[72])
{
    const char *p;
    if (!status)
        return false;
    if ((p = strstr(status, "digest: sha256:")))
        p += 8;
    else if (strncmp(status, "sha256:", 7) == 0)
        p = status;
    else
        return false;
    for (int i = 7; i < 71; i++)
        if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
            return false;
    if (isxdigit((unsigned char)p[71]))
        return false;
    memcpy(out, p, 71);
    out[71] = '\0';
    return true;
}

static bool has(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

void dk_explain_push_error(dk_buf *out, const char *msg, const dk_ref *ref, const char *auth_src)
{
    char *m = kp_xstrdup(msg && *msg ? msg : "unknown error");
    dk_one_line(m);
    const char *reg = ref->registry;
    if (has(m, "unauthorized") || has(m, "authentication required") || has(m, "denied") ||
        has(m, "401 Unauthorized") || has(m, "incorrect username or password")) {
        if (auth_src)
            dk_buf_addf(out, "push of %s:%s refused by registry %s: the credentials from %s were rejected (%s)",
                        ref->repo, ref->tag, reg, auth_src, m);
        else
            dk_buf_addf(out,
                        "push of %s:%s refused by registry %s: it needs credentials; give them with auth_env or "
                        "registry_auth (%s)",
                        ref->repo, ref->tag, reg, m);
    } else if (has(m, "server gave HTTP response to HTTPS client")) {
        dk_buf_addf(out,
                    "registry %s answers plain HTTP but the engine speaks HTTPS to it: serve it over TLS, or list it "
                    "as insecure in the engine (Docker: \"insecure-registries\" in daemon.json; Podman: "
                    "registries.conf [[registry]] insecure = true)",
                    reg);
    } else if (has(m, "no such host") || has(m, "connection refused") || has(m, "dial tcp") ||
               has(m, "i/o timeout") || has(m, "no route to host") || has(m, "lookup ")) {
        dk_buf_addf(out, "cannot reach registry %s to push %s:%s: %s", reg, ref->repo, ref->tag, m);
    } else if (has(m, "x509") || has(m, "certificate")) {
        dk_buf_addf(out, "TLS failure talking to registry %s: %s", reg, m);
    } else if (has(m, "image not known") || has(m, "no such image") || has(m, "does not exist")) {
        dk_buf_addf(out, "the engine has no image %s:%s to push: %s", ref->repo, ref->tag, m);
    } else {
        dk_buf_addf(out, "push of %s:%s to %s failed: %s", ref->repo, ref->tag, reg, m);
    }
    free(m);
}

void dk_one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
}

/* ---- lines ------------------------------------------------------------ */

int dk_lines_feed(dk_lines *l, const char *p, size_t n, size_t max,
                  int (*fn)(void *data, const char *line, size_t len), void *data)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        int rc = 0;
        if (nl && l->part.len == 0) {
            rc = fn(data, p, take);
        } else {
            dk_buf_add(&l->part, p, take);
            if (nl || l->part.len >= max) {
                rc = fn(data, l->part.s, l->part.len);
                dk_buf_reset(&l->part);
            }
        }
        if (rc)
            return rc;
        p += take + (nl ? 1 : 0);
        n -= take + (nl ? 1 : 0);
    }
    return 0;
}

int dk_lines_flush(dk_lines *l, int (*fn)(void *data, const char *line, size_t len), void *data)
{
    int rc = 0;
    if (l->part.len)
        rc = fn(data, l->part.s, l->part.len);
    dk_buf_free(&l->part);
    return rc;
}

/* ---- paths ------------------------------------------------------------ */

char *dk_clean_path(const char *p)
{
    dk_buf out = {0};
    size_t *starts = NULL, n_starts = 0;
    while (*p == '/')
        p++;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (n_starts) {
                out.len = starts[--n_starts];
                out.s[out.len] = '\0';
            } else {
                if (out.len)
                    dk_buf_adds(&out, "/");
                dk_buf_adds(&out, "..");
            }
        } else {
            starts = kp_xrealloc(starts, (n_starts + 1) * sizeof *starts);
            starts[n_starts++] = out.len;
            if (out.len)
                dk_buf_adds(&out, "/");
            dk_buf_add(&out, p, n);
        }
        p += n;
        while (*p == '/')
            p++;
    }
    free(starts);
    if (!out.len)
        dk_buf_adds(&out, ".");
    return out.s;
}
