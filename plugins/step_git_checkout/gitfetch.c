/* SPDX-License-Identifier: MIT */
/* See gitfetch.h. Each stage is one git process; the next starts from the
 * previous one's exit callback. */
#include "gitfetch.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/base64.h"
#include "../common/xalloc.h"

KILN_API_EXTERN;

enum stage { S_ORIGIN, S_INIT, S_REMOTE, S_LSREMOTE, S_FETCH, S_CHECKOUT, S_REVPARSE, S_DONE };
enum kind { K_NONE, K_BRANCH, K_TAG, K_COMMIT };

struct gitfetch {
    kiln_step *step;
    gitfetch_cb cb;
    void *data;
    enum stage stage;
    char *repo, *ref, *dest, *url, *user, *token;
    int64_t depth;
    char *cfg_file;     /* GIT_CONFIG_GLOBAL with the Authorization header */
    char *out_file;     /* where a plumbing command's stdout goes, not the log */
    kiln_proc *proc;
    bool cancelled;
    bool capturing;     /* the running command's stdout goes to out_file */
    /* collected stdout lines of the current stage */
    char **lines;
    size_t n_lines;
    /* what ls-remote found */
    enum kind kind;
    char *name;         /* branch or tag name */
    char commit[41];
};

static void next_stage(struct gitfetch *g);

void gitfetch_split_url(const char *url, char **clean, char **user, char **pass)
{
    *clean = strdup(url);
    *user = *pass = NULL;
    const char *scheme = strstr(url, "://");
    if (!scheme)
        return;
    const char *host = scheme + 3;
    const char *slash = strchr(host, '/');
    const char *at = memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host));
    if (!at)
        return;
    const char *colon = memchr(host, ':', (size_t)(at - host));
    if (colon) {
        *user = strndup(host, (size_t)(colon - host));
        *pass = strndup(colon + 1, (size_t)(at - colon - 1));
    } else {
        *user = strndup(host, (size_t)(at - host));
    }
    free(*clean);
    size_t pre = (size_t)(host - url);
    size_t len = pre + strlen(at + 1);
    *clean = malloc(len + 1);
    memcpy(*clean, url, pre);
    strcpy(*clean + pre, at + 1);
}

static const char *repo_base_name(const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "%s", url);
    size_t len = strlen(out);
    while (len && out[len - 1] == '/')
        out[--len] = '\0';
    if (len > 4 && strcmp(out + len - 4, ".git") == 0)
        out[len -= 4] = '\0';
    const char *b = strrchr(out, '/');
    b = b ? b + 1 : out;
    const char *c = strrchr(b, ':');
    return c ? c + 1 : b;
}

static int write_auth_config(struct gitfetch *g)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/kiln-git-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path); /* 0600 */
    if (fd < 0)
        return -errno;
    /* No fixed buffer: a long token is written whole, not cut. */
    char *cred = kp_xasprintf("%s:%s", g->user ? g->user : "x-access-token", g->token);
    char *enc = kp_base64(cred, strlen(cred), 0);
    char *text = kp_xasprintf("[http]\n\textraHeader = Authorization: Basic %s\n", enc);
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    explicit_bzero(cred, strlen(cred));
    explicit_bzero(enc, strlen(enc));
    explicit_bzero(text, n);
    free(cred);
    free(enc);
    free(text);
    close(fd);
    if (!ok) {
        unlink(path);
        return KILN_EIO;
    }
    g->cfg_file = strdup(path);
    return 0;
}

static void clear_lines(struct gitfetch *g)
{
    for (size_t i = 0; i < g->n_lines; i++)
        free(g->lines[i]);
    free(g->lines);
    g->lines = NULL;
    g->n_lines = 0;
}

static void gitfetch_free(struct gitfetch *g)
{
    if (g->cfg_file) {
        unlink(g->cfg_file);
        free(g->cfg_file);
    }
    if (g->out_file) {
        unlink(g->out_file);
        free(g->out_file);
    }
    clear_lines(g);
    free(g->repo);
    free(g->ref);
    free(g->dest);
    free(g->url);
    free(g->user);
    if (g->token) {
        memset(g->token, 0, strlen(g->token));
        free(g->token);
    }
    free(g->name);
    free(g);
}

static void finish(struct gitfetch *g, int err)
{
    struct gitfetch_result r;
    memset(&r, 0, sizeof r);
    char namebuf[1024];
    if (!err) {
        memcpy(r.commit, g->commit, sizeof r.commit);
        r.branch = g->kind == K_BRANCH ? g->name : NULL;
        r.tag = g->kind == K_TAG ? g->name : NULL;
        r.ref_name = g->kind == K_BRANCH || g->kind == K_TAG ? g->name : NULL;
        r.repo_name = (char *)repo_base_name(g->url, namebuf, sizeof namebuf);
        r.url = g->url;
        r.dir = g->dest;
    }
    if (!err) {
        /* The one line a user sees about the fetch; git's plumbing output
         * (ls-remote, rev-parse) was captured, never logged. */
        const char *ws = kiln_api->workspace(KILN_OBJ(g->step));
        const char *shown = g->dest;
        size_t wl = ws ? strlen(ws) : 0;
        if (wl && strncmp(g->dest, ws, wl) == 0 && g->dest[wl] == '/')
            shown = g->dest + wl + 1;
        const char *what = g->kind == K_BRANCH ? "branch " : g->kind == K_TAG ? "tag " : "commit";
        kiln_info(g->step, "fetched %s%s at %.7s from %s into %s%s", what,
                  g->kind == K_COMMIT ? "" : g->name, g->commit, g->url, shown,
                  g->depth ? " (shallow)" : "");
    }
    gitfetch_cb cb = g->cb;
    kiln_step *step = g->step;
    void *data = g->data;
    g->stage = S_DONE;
    cb(step, data, err, err ? NULL : &r);
    gitfetch_free(g);
}

/* The captured stdout of the command that just ended, as lines. */
static void read_captured(struct gitfetch *g)
{
    FILE *f = fopen(g->out_file, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        g->lines = realloc(g->lines, (g->n_lines + 1) * sizeof *g->lines);
        g->lines[g->n_lines++] = strdup(line);
    }
    free(line);
    fclose(f);
}

static void on_exit_cb(kiln_proc *proc, void *data, int status)
{
    struct gitfetch *g = data;
    g->proc = NULL;
    if (g->cancelled) {
        finish(g, KILN_ECANCELED);
        return;
    }
    if (g->capturing)
        read_captured(g);
    if (status != 0 && g->stage != S_ORIGIN) {
        static const char *const what[] = {"read the workspace's origin", "create the directory",
                                           "set the remote", "list the remote's refs",
                                           "fetch", "check out", "read the commit"};
        kiln_error(g->step, "git-checkout: git could not %s (%s, exit status %d)", what[g->stage],
                   g->url ? g->url : g->repo, status);
        finish(g, status > 0 ? KILN_EEXIT : status);
        return;
    }
    next_stage(g);
}

/* Run git. capture: its stdout is plumbing the plugin reads (a URL, refs,
 * a commit), so it goes to out_file and is read back into g->lines instead
 * of reaching the log; stderr (git's errors) still goes to the log. The
 * host's spawn() always logs stdout, hence sh's redirection; exec keeps
 * git the process the host signals. */
static int run_git(struct gitfetch *g, const char *const *args, bool capture)
{
    const char *argv[32];
    size_t k = 0;
    if (capture) {
        argv[k++] = "/bin/sh";
        argv[k++] = "-c";
        argv[k++] = "exec \"$@\" >\"$0\"";
        argv[k++] = g->out_file;
    }
    argv[k++] = "git";
    for (size_t i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    char cfg_env[4200];
    const char *extra[6];
    size_t e = 0;
    extra[e++] = "GIT_TERMINAL_PROMPT=0";
    extra[e++] = "GIT_ASKPASS=/bin/false";
    extra[e++] = "LC_ALL=C";
    if (g->cfg_file) {
        snprintf(cfg_env, sizeof cfg_env, "GIT_CONFIG_GLOBAL=%s", g->cfg_file);
        extra[e++] = cfg_env;
    }
    extra[e] = NULL;
    kiln_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.argv = argv;
    o.extra_env = extra;
    clear_lines(g);
    g->capturing = capture;
    int rc = kiln_api->spawn(g->step, &o, on_exit_cb, g, &g->proc);
    if (rc == KILN_ENOENT)
        kiln_error(g->step, "git-checkout: cannot run 'git': not found (is git installed and on PATH?)");
    else if (rc)
        kiln_error(g->step, "git-checkout: cannot run git: %s", kiln_api->strerror(rc));
    return rc;
}

static bool is_hex(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* ../x against base (URL or directory), as git submodule does. */
static char *resolve_relative(const char *base, const char *rel)
{
    char *b = strdup(base);
    size_t len = strlen(b);
    while (len > 1 && b[len - 1] == '/')
        b[--len] = '\0';
    while (1) {
        if (strncmp(rel, "./", 2) == 0) {
            rel += 2;
        } else if (strncmp(rel, "../", 3) == 0) {
            char *slash = strrchr(b, '/');
            char *colon = strrchr(b, ':');
            if (slash && (!colon || slash > colon))
                *slash = '\0';
            else if (colon)
                colon[1] = '\0';
            rel += 3;
        } else {
            break;
        }
    }
    size_t bl = strlen(b);
    char *out = malloc(bl + strlen(rel) + 2);
    sprintf(out, "%s%s%s", b, bl && b[bl - 1] == ':' ? "" : "/", rel);
    free(b);
    return out;
}

/* ls-remote output: find the ref. Returns 0 or logs and returns an error. */
static int pick_ref(struct gitfetch *g)
{
    const char *ref = g->ref;
    if (!ref) {
        for (size_t i = 0; i < g->n_lines; i++)
            if (strncmp(g->lines[i], "ref: refs/heads/", 16) == 0) {
                char *tab = strchr(g->lines[i], '\t');
                if (tab)
                    *tab = '\0';
                g->kind = K_BRANCH;
                g->name = strdup(g->lines[i] + 16);
                return 0;
            }
        kiln_error(g->step, "git-checkout: %s has no default branch (HEAD); give ref:", g->url);
        return KILN_ENOTFOUND;
    }
    const char *shortname = ref;
    if (strncmp(ref, "refs/heads/", 11) == 0)
        shortname = ref + 11;
    else if (strncmp(ref, "refs/tags/", 10) == 0)
        shortname = ref + 10;
    char want_b[1100], want_t[1100];
    snprintf(want_b, sizeof want_b, "refs/heads/%s", shortname);
    snprintf(want_t, sizeof want_t, "refs/tags/%s", shortname);
    bool tag_only = strncmp(ref, "refs/tags/", 10) == 0;
    bool branch_only = strncmp(ref, "refs/heads/", 11) == 0;
    enum kind found = K_NONE;
    for (size_t i = 0; i < g->n_lines; i++) {
        char *tab = strchr(g->lines[i], '\t');
        if (!tab)
            continue;
        const char *name = tab + 1;
        if (!tag_only && strcmp(name, want_b) == 0)
            found = K_BRANCH;
        else if (!branch_only && found != K_BRANCH && strcmp(name, want_t) == 0)
            found = K_TAG;
    }
    if (found != K_NONE) {
        g->kind = found;
        g->name = strdup(shortname);
        return 0;
    }
    if (is_hex(ref, 40, 40)) {
        g->kind = K_COMMIT;
        snprintf(g->commit, sizeof g->commit, "%s", ref);
        for (char *p = g->commit; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        return 0;
    }
    if (is_hex(ref, 4, 39))
        kiln_error(g->step,
                   "git-checkout: ref '%s' is not a branch or tag of %s; an abbreviated commit "
                   "cannot be fetched, give all 40 hex digits",
                   ref, g->url);
    else
        kiln_error(g->step, "git-checkout: ref '%s' is neither a branch nor a tag of %s", ref, g->url);
    return KILN_ENOTFOUND;
}

static void next_stage(struct gitfetch *g)
{
    char depth[32];
    snprintf(depth, sizeof depth, "--depth=%lld", (long long)g->depth);
    for (;;) {
        int rc = 0;
        switch (g->stage) {
        case S_ORIGIN: {
            /* The workspace's origin URL (or the workspace) is the base. */
            const char *base = g->n_lines && g->lines[0][0] ? g->lines[0]
                                                            : kiln_api->workspace(KILN_OBJ(g->step));
            char *abs = resolve_relative(base, g->repo);
            char *clean, *user, *pass;
            gitfetch_split_url(abs, &clean, &user, &pass);
            free(abs);
            free(g->url);
            g->url = clean;
            free(user);
            free(pass); /* a base URL's own credentials are not reused */
            g->stage = S_INIT;
            continue;
        }
        case S_INIT: {
            char gitdir[4200];
            snprintf(gitdir, sizeof gitdir, "%s/.git", g->dest);
            struct stat st;
            g->stage = S_REMOTE;
            if (stat(gitdir, &st) == 0)
                continue; /* fetch into the existing checkout */
            const char *a[] = {"init", "-q", "--", g->dest, NULL};
            rc = run_git(g, a, false);
            break;
        }
        case S_REMOTE: {
            g->stage = S_LSREMOTE;
            const char *a[] = {"-C", g->dest, "config", "remote.origin.url", g->url, NULL};
            rc = run_git(g, a, false);
            break;
        }
        case S_LSREMOTE: {
            g->stage = S_FETCH;
            char b[1100], t[1100];
            const char *r = g->ref;
            if (r && strncmp(r, "refs/", 5) != 0) {
                snprintf(b, sizeof b, "refs/heads/%s", r);
                snprintf(t, sizeof t, "refs/tags/%s", r);
            } else {
                snprintf(b, sizeof b, "%s", r ? r : "HEAD");
                t[0] = '\0';
            }
            const char *a[] = {"-C", g->dest, "ls-remote", "--symref", "origin", b, t[0] ? t : NULL,
                               NULL};
            rc = run_git(g, a, true);
            break;
        }
        case S_FETCH: {
            rc = pick_ref(g);
            if (rc)
                break;
            g->stage = S_CHECKOUT;
            char spec[2300];
            if (g->kind == K_BRANCH)
                snprintf(spec, sizeof spec, "+refs/heads/%s:refs/remotes/origin/%s", g->name, g->name);
            else if (g->kind == K_TAG)
                snprintf(spec, sizeof spec, "+refs/tags/%s:refs/tags/%s", g->name, g->name);
            else
                snprintf(spec, sizeof spec, "%s", g->commit);
            const char *a[] = {"-C", g->dest, "fetch", "-q", "--no-tags", "origin", spec,
                               g->depth ? depth : NULL, NULL};
            rc = run_git(g, a, false);
            break;
        }
        case S_CHECKOUT: {
            g->stage = S_REVPARSE;
            char target[2300];
            if (g->kind == K_BRANCH) {
                snprintf(target, sizeof target, "refs/remotes/origin/%s", g->name);
                const char *a[] = {"-C", g->dest, "checkout", "-q", "-f", "-B", g->name, target, NULL};
                rc = run_git(g, a, false);
            } else {
                if (g->kind == K_TAG)
                    snprintf(target, sizeof target, "refs/tags/%s^{commit}", g->name);
                else
                    snprintf(target, sizeof target, "%s", g->commit);
                const char *a[] = {"-C", g->dest, "checkout", "-q", "-f", "--detach", target, NULL};
                rc = run_git(g, a, false);
            }
            break;
        }
        case S_REVPARSE: {
            g->stage = S_DONE;
            const char *a[] = {"-C", g->dest, "rev-parse", "HEAD", NULL};
            rc = run_git(g, a, true);
            break;
        }
        case S_DONE:
            if (!g->n_lines || !is_hex(g->lines[0], 40, 40)) {
                kiln_error(g->step, "git-checkout: cannot read the commit checked out in %s", g->dest);
                finish(g, KILN_EIO);
                return;
            }
            snprintf(g->commit, sizeof g->commit, "%s", g->lines[0]);
            finish(g, 0);
            return;
        }
        if (rc) {
            finish(g, rc);
        }
        return;
    }
}

int gitfetch_start(kiln_step *step, const struct gitfetch_opts *o, gitfetch_cb cb, void *data,
                   struct gitfetch **out)
{
    if (!o->repo || !*o->repo || !o->dest)
        return KILN_EINVAL;
    struct gitfetch *g = calloc(1, sizeof *g);
    if (!g)
        return KILN_ENOMEM;
    g->step = step;
    g->cb = cb;
    g->data = data;
    g->repo = strdup(o->repo);
    g->ref = o->ref && *o->ref ? strdup(o->ref) : NULL;
    g->dest = strdup(o->dest);
    g->depth = o->depth;
    char *user = NULL, *pass = NULL;
    gitfetch_split_url(o->repo, &g->url, &user, &pass);
    g->user = user ? user : kp_xstrdup0(o->username); /* the URL's user name wins */
    g->token = o->token && *o->token ? strdup(o->token) : pass;
    if (g->token && pass && g->token != pass) {
        memset(pass, 0, strlen(pass));
        free(pass);
    }
    if (g->token) {
        int rc = write_auth_config(g);
        if (rc) {
            kiln_error(step, "git-checkout: cannot write the credentials file: %s",
                       kiln_api->strerror(rc));
            gitfetch_free(g);
            return rc;
        }
    }
    {
        const char *tmp = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/kiln-git-out-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        int fd = mkstemp(path);
        if (fd < 0) {
            int rc = -errno;
            kiln_error(step, "git-checkout: cannot create a temporary file in %s: %s",
                       tmp && *tmp ? tmp : "/tmp", kiln_api->strerror(rc));
            gitfetch_free(g);
            return rc;
        }
        close(fd);
        g->out_file = strdup(path);
    }
    if (out)
        *out = g; /* valid until the callback, which may come before this returns */
    bool relative = strncmp(o->repo, "./", 2) == 0 || strncmp(o->repo, "../", 3) == 0;
    if (relative) {
        g->stage = S_ORIGIN;
        const char *ws = kiln_api->workspace(KILN_OBJ(step));
        const char *a[] = {"-C", ws, "config", "--get", "remote.origin.url", NULL};
        int rc = run_git(g, a, true);
        if (rc) {
            if (out)
                *out = NULL;
            gitfetch_free(g);
            return rc;
        }
    } else {
        g->stage = S_INIT;
        /* A local path given relative to nothing else: make it absolute. */
        if (!strstr(g->url, "://") && g->url[0] != '/' && !strchr(g->url, ':')) {
            char *abs = resolve_relative(kiln_api->workspace(KILN_OBJ(step)), g->url);
            free(g->url);
            g->url = abs;
        }
        next_stage(g);
        /* next_stage may have finished already (callback called). */
    }
    return 0;
}

void gitfetch_cancel(struct gitfetch *g)
{
    g->cancelled = true;
    if (g->proc)
        kiln_api->proc_signal(g->proc, SIGTERM);
}

void gitfetch_abandon(struct gitfetch *g)
{
    gitfetch_free(g);
}

/* Read the token named by the options; NULL when none. Logs problems. */
char *gitfetch_read_token(kiln_step *step, const char *env, const char *file, int *err)
{
    *err = 0;
    if (env) {
        /* The step's environment holds its secretEnv values; kiln's own
         * environment is the fallback for hosts older than ABI 1.3. */
        const char *v = KILN_API_HAS(kiln_api, step_getenv) ? kiln_api->step_getenv(step, env) : NULL;
        if (!v)
            v = getenv(env);
        if (!v || !*v) {
            kiln_error(step, "git-checkout: token-env: the environment variable %s is not set", env);
            *err = KILN_ECONFIG;
            return NULL;
        }
        return strdup(v);
    }
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            kiln_error(step, "git-checkout: token-file: cannot read '%s'", file);
            *err = KILN_ECONFIG;
            return NULL;
        }
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            buf[--n] = '\0';
        char *t = strdup(buf);
        memset(buf, 0, sizeof buf);
        return t;
    }
    return NULL;
}

