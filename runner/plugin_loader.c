/* SPDX-License-Identifier: MIT */
/* dlopen-based plugin loading and ABI checks; contracts in plugin_loader.h. */
#include "plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "internal.h"

#ifndef KILN_PLUGIN_INSTALL_DIR
#define KILN_PLUGIN_INSTALL_DIR "/usr/local/lib/kiln/plugins"
#endif

const char *kiln__kind_word(kiln_plugin_kind kind)
{
    return kind == KILN_PLUGIN_LOG_SINK ? "sink" : kind == KILN_PLUGIN_EXECUTOR ? "executor" : "step";
}

static void add_dir(kiln__registry *r, const char *dir)
{
    if (!dir || !*dir)
        return;
    for (size_t i = 0; i < r->n_dirs; i++)
        if (strcmp(r->dirs[i], dir) == 0)
            return;
    r->dirs = kiln__xrealloc(r->dirs, (r->n_dirs + 1) * sizeof *r->dirs);
    r->dirs[r->n_dirs++] = kiln__xstrdup(dir);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void kiln__registry_init(kiln__registry *r, const char *const *extra_dirs, size_t n_extra)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n_extra; i++)
        add_dir(r, extra_dirs[i]);
    const char *env = getenv("KILN_PLUGIN_PATH");
    if (env) {
        char *copy = kiln__xstrdup(env), *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
            add_dir(r, tok);
        free(copy);
    }
    /* Next to the executable: the build tree (build/runner/kiln -> build/plugins)
     * and an installation (bin/kiln -> lib/kiln/plugins). */
    char exe[PATH_MAX];
    if (kiln__exe_dir(exe, sizeof exe) == 0) {
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof cand, "%s/../plugins", exe);
        if (is_dir(cand))
            add_dir(r, cand);
        snprintf(cand, sizeof cand, "%s/../lib/kiln/plugins", exe);
        if (is_dir(cand))
            add_dir(r, cand);
    }
    add_dir(r, KILN_PLUGIN_INSTALL_DIR);
}

static void plugin_free(kiln__plugin *p)
{
    if (p->initialized && p->desc->destroy)
        p->desc->destroy(p->plugin_data);
    if (p->dl && !getenv("KILN_NO_DLCLOSE"))
        dlclose(p->dl);
    free(p->handle);
    free(p->name);
    free(p->path);
    free(p);
}

void kiln__registry_release(kiln__registry *r)
{
    for (size_t i = 0; i < r->n_loaded; i++)
        plugin_free(r->loaded[i]);
    free(r->loaded);
    for (size_t i = 0; i < r->n_dirs; i++)
        free(r->dirs[i]);
    free(r->dirs);
    memset(r, 0, sizeof *r);
}

int kiln__plugin_open(const char *path, kiln_plugin_kind kind, const char *name,
                      kiln__plugin **out, kiln__buf *err)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        kiln__buf_addf(err, "cannot load plugin '%s': %s", path, dlerror());
        return KILN_EPLUGIN;
    }
    typedef const kiln_plugin *(*entry_fn)(void);
    entry_fn entry;
    *(void **)&entry = dlsym(dl, KILN_PLUGIN_ENTRY_SYMBOL);
    const char *why = NULL;
    char whybuf[256];
    const kiln_plugin *d = NULL;
    if (!entry) {
        why = "it has no entry point " KILN_PLUGIN_ENTRY_SYMBOL "() (is it a kiln plugin?)";
    } else if (!(d = entry())) {
        why = "its entry point returned no descriptor";
    } else if (d->abi_major != KILN_ABI_MAJOR || d->abi_minor > KILN_ABI_MINOR) {
        snprintf(whybuf, sizeof whybuf,
                 "it was built for plugin ABI %u.%u, and this kiln supports %d.0 to %d.%d; "
                 "rebuild it against this kiln's SDK",
                 d->abi_major, d->abi_minor, KILN_ABI_MAJOR, KILN_ABI_MAJOR, KILN_ABI_MINOR);
        why = whybuf;
    } else if (d->struct_size < sizeof(kiln_plugin)) {
        snprintf(whybuf, sizeof whybuf, "its descriptor is %u bytes, smaller than the %zu of ABI %d.0",
                 d->struct_size, sizeof(kiln_plugin), KILN_ABI_MAJOR);
        why = whybuf;
    } else if (!d->name || strcmp(d->name, name) != 0) {
        snprintf(whybuf, sizeof whybuf, "it calls itself '%s' but the file name says '%s'",
                 d->name ? d->name : "(null)", name);
        why = whybuf;
    } else if (d->kind != kind) {
        snprintf(whybuf, sizeof whybuf, "it is a %s plugin but the file name says %s",
                 d->kind == KILN_PLUGIN_LOG_SINK  ? "sink"
                 : d->kind == KILN_PLUGIN_STEP    ? "step"
                 : d->kind == KILN_PLUGIN_EXECUTOR ? "executor"
                                                   : "unknown",
                 kiln__kind_word(kind));
        why = whybuf;
    } else if ((kind == KILN_PLUGIN_STEP && (!d->step || !d->step->start)) ||
               (kind == KILN_PLUGIN_LOG_SINK && (!d->sink || !d->sink->write || !d->sink->close)) ||
               (kind == KILN_PLUGIN_EXECUTOR &&
                (d->abi_minor < 6 || !d->executor || !d->executor->spawn || !d->executor->terminate ||
                 !d->executor->abandon))) {
        why = "its descriptor lacks the callbacks its kind needs";
    } else if (kind != KILN_PLUGIN_EXECUTOR && d->executor) {
        why = "its reserved descriptor slots are not NULL";
    } else {
        for (size_t i = 0; i < sizeof d->reserved / sizeof d->reserved[0]; i++)
            if (d->reserved[i])
                why = "its reserved descriptor slots are not NULL";
    }
    if (why) {
        kiln__buf_addf(err, "refusing plugin '%s': %s", path, why);
        /* d points into the library: read it before unloading. */
        int rc = d && d->abi_major != KILN_ABI_MAJOR ? KILN_EABI : KILN_EPLUGIN;
        if (!getenv("KILN_NO_DLCLOSE"))
            dlclose(dl);
        return rc;
    }
    kiln__plugin *p = kiln__xcalloc(1, sizeof *p);
    p->desc = d;
    p->dl = dl;
    p->name = kiln__xstrdup(name);
    p->path = kiln__xstrdup(path);
    *out = p;
    return 0;
}

struct names {
    kiln_plugin_kind kind;
    char **v;
    size_t n;
};

static void collect_name(void *data, const char *path, kiln_plugin_kind kind, const char *name)
{
    struct names *ns = data;
    if (kind != ns->kind)
        return;
    ns->v = kiln__xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
    ns->v[ns->n++] = kiln__xstrdup(name);
}

int kiln__registry_get(kiln__registry *r, kiln_plugin_kind kind, const char *name,
                       kiln__plugin **out, kiln__buf *err)
{
    for (size_t i = 0; i < r->n_loaded; i++)
        if (r->loaded[i]->desc->kind == kind && strcmp(r->loaded[i]->name, name) == 0) {
            *out = r->loaded[i];
            return 0;
        }
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_')) {
            kiln__buf_addf(err, "'%s' is not a plugin name (lowercase letters, digits, '-')", name);
            return KILN_EINVAL;
        }
    char path[PATH_MAX];
    for (size_t i = 0; i < r->n_dirs; i++) {
        snprintf(path, sizeof path, "%s/kiln-%s-%s.so", r->dirs[i], kiln__kind_word(kind), name);
        if (access(path, F_OK) != 0)
            continue;
        kiln__plugin *p;
        int rc = kiln__plugin_open(path, kind, name, &p, err);
        if (rc)
            return rc;
        p->handle = kiln__xcalloc(1, sizeof *p->handle);
        p->handle->obj.type = KILN__OBJ_PLUGIN;
        p->handle->plugin = p;
        if (p->desc->init) {
            rc = p->desc->init(r->api, p->handle, &p->plugin_data);
            if (rc) {
                kiln__buf_addf(err, "plugin '%s' failed to initialize: %s", path,
                               kiln__strerror(rc));
                p->initialized = false;
                plugin_free(p);
                return KILN_EPLUGIN;
            }
        }
        p->initialized = true;
        if (r->n_loaded == r->cap_loaded) {
            r->cap_loaded = r->cap_loaded ? r->cap_loaded * 2 : 8;
            r->loaded = kiln__xrealloc(r->loaded, r->cap_loaded * sizeof *r->loaded);
        }
        r->loaded[r->n_loaded++] = p;
        *out = p;
        return 0;
    }
    kiln__buf_addf(err, "no %s plugin named '%s'", kiln__kind_word(kind), name);
    struct names found = {kind, NULL, 0};
    kiln__registry_scan(r, collect_name, &found);
    found.v = kiln__xrealloc(found.v, (found.n + 1) * sizeof *found.v);
    found.v[found.n] = NULL;
    const char *hint = kiln__did_you_mean(name, (const char *const *)found.v);
    if (hint)
        kiln__buf_addf(err, " (did you mean '%s'?)", hint);
    for (size_t i = 0; i < found.n; i++)
        free(found.v[i]);
    free(found.v);
    kiln__buf_addf(err, " (looked for kiln-%s-%s.so in", kiln__kind_word(kind), name);
    for (size_t i = 0; i < r->n_dirs; i++)
        kiln__buf_addf(err, "%s %s", i ? "," : "", r->dirs[i]);
    kiln__buf_adds(err, "; see 'kiln plugins')");
    return KILN_ENOTFOUND;
}

void kiln__registry_scan(kiln__registry *r, kiln__plugin_each_cb cb, void *data)
{
    char **seen = NULL;
    size_t n_seen = 0;
    for (size_t i = 0; i < r->n_dirs; i++) {
        DIR *d = opendir(r->dirs[i]);
        if (!d)
            continue;
        struct dirent *e;
        char **names = NULL;
        size_t n = 0;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (strncmp(e->d_name, "kiln-", 5) != 0 || len < 9 || strcmp(e->d_name + len - 3, ".so"))
                continue;
            names = kiln__xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = kiln__xstrdup(e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof *names, kiln__strcmp_p);
        for (size_t j = 0; j < n; j++) {
            const char *f = names[j] + 5;
            kiln_plugin_kind kind;
            if (!strncmp(f, "step-", 5))
                kind = KILN_PLUGIN_STEP;
            else if (!strncmp(f, "sink-", 5))
                kind = KILN_PLUGIN_LOG_SINK;
            else if (!strncmp(f, "executor-", 9))
                kind = KILN_PLUGIN_EXECUTOR;
            else
                continue;
            bool dup = false;
            for (size_t k = 0; k < n_seen && !dup; k++)
                dup = strcmp(seen[k], names[j]) == 0;
            if (dup)
                continue;
            seen = kiln__xrealloc(seen, (n_seen + 1) * sizeof *seen);
            seen[n_seen++] = kiln__xstrdup(names[j]);
            char name[256];
            size_t kw = strlen(kiln__kind_word(kind)) + 1;
            snprintf(name, sizeof name, "%.*s", (int)(strlen(f) - kw - 3), f + kw);
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", r->dirs[i], names[j]);
            cb(data, path, kind, name);
        }
        for (size_t j = 0; j < n; j++)
            free(names[j]);
        free(names);
    }
    for (size_t k = 0; k < n_seen; k++)
        free(seen[k]);
    free(seen);
}

#ifndef KILN_LIBEXEC_DIR
#define KILN_LIBEXEC_DIR "/usr/local/libexec/kiln"
#endif

int kiln__helper_path(const char *name, char *out, size_t cap)
{
    char exe[PATH_MAX];
    if (kiln__exe_dir(exe, sizeof exe) == 0) {
        /* A build tree (build/runner/kiln-watchdog), then an installation
         * that was moved or installed under another prefix than the one
         * kiln was configured with (PREFIX/bin/kiln, PREFIX/libexec/kiln/). */
        if ((size_t)snprintf(out, cap, "%s/%s", exe, name) < cap && access(out, X_OK) == 0)
            return 0;
        if ((size_t)snprintf(out, cap, "%s/../libexec/kiln/%s", exe, name) < cap && access(out, X_OK) == 0)
            return 0;
    }
    if ((size_t)snprintf(out, cap, "%s/%s", KILN_LIBEXEC_DIR, name) < cap && access(out, X_OK) == 0)
        return 0;
    return -1;
}

int kiln__exe_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}
