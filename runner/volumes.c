/* SPDX-License-Identifier: MIT */
/*
 * Cloud Build volumes: the checks of the config, and a build's volume
 * directories (see volumes.h and runner/mount_exec/kiln-mount-exec.c).
 */
#include "volumes.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kiln/errors.h>

#include "engine.h"
#include "path.h"

#ifndef KILN_LIBEXEC_DIR
#define KILN_LIBEXEC_DIR "/usr/local/libexec/kiln"
#endif

#define MOUNT_EXEC "kiln-mount-exec"

/* ---- the config ------------------------------------------------------ */

/* cloud-build-local: ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ */
static bool name_valid(const char *s)
{
    if (!s[0] || !s[1] || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                            (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

static const char *clean(const char *path, char *buf)
{
    if (path[0] != '/' || kiln__path_clean(path, buf, PATH_MAX) != 0)
        return NULL;
    return buf;
}

static const kiln__ynode *at_name(const kiln__volume *v)
{
    return v->name_node ? v->name_node : v->node;
}

static const kiln__ynode *at_path(const kiln__volume *v)
{
    return v->path_node ? v->path_node : v->node;
}

/* The checks cloud-build-local makes of each list, global or a step's. */
static void check_list(kiln__diag *d, const char *file, const char *prefix, const kiln__vollist *l)
{
    static const char *const reserved[] = {"/workspace", "/builder/home", "/var/run/docker.sock"};
    for (size_t i = 0; i < l->n; i++) {
        const kiln__volume *v = &l->v[i];
        char cp[PATH_MAX];
        if (!v->name_node || !v->path_node) {
            kiln__diag_at(d, KILN__DIAG_ERROR, file, v->node,
                          "%sa volume needs both a name and a path, such as {name: cache, path: /cache}",
                          prefix);
            continue;
        }
        if (!name_valid(v->name))
            kiln__diag_at(d, KILN__DIAG_ERROR, file, at_name(v),
                          "%svolume name \"%s\" does not match \"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$\"%s",
                          prefix, v->name,
                          strlen(v->name) == 1 ? " (a name has two characters or more)" : "");
        const char *p = clean(v->path, cp);
        if (!p) {
            kiln__diag_at(d, KILN__DIAG_ERROR, file, at_path(v),
                          "%spath \"%s\" is not valid, must be absolute", prefix, v->path);
            continue;
        }
        bool is_reserved = false;
        for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
            is_reserved = is_reserved || !strcmp(p, reserved[k]);
        if (is_reserved)
            kiln__diag_at(d, KILN__DIAG_ERROR, file, at_path(v), "%spath \"%s\" is reserved", prefix,
                          v->path);
        else if (!strncmp(p, "/cloudbuild/", 12))
            kiln__diag_at(d, KILN__DIAG_ERROR, file, at_path(v),
                          "%svolume path \"%s\" cannot start with /cloudbuild/", prefix, v->path);
        else if (!strcmp(p, "/"))
            kiln__diag_at(d, KILN__DIAG_ERROR, file, at_path(v),
                          "%svolume path \"%s\" would hide the whole file tree", prefix, v->path);
        for (size_t j = 0; j < i; j++) {
            char cq[PATH_MAX];
            const char *q = clean(l->v[j].path, cq);
            if (!strcmp(l->v[j].name, v->name))
                kiln__diag_at(d, KILN__DIAG_ERROR, file, at_name(v),
                              "%svolume name \"%s\" is defined in more than one volume entry",
                              prefix, v->name);
            if (q && !strcmp(p, q))
                kiln__diag_at(d, KILN__DIAG_ERROR, file, at_path(v),
                              "%svolume path \"%s\" is defined in more than one volume entry",
                              prefix, p);
        }
    }
}

static void check_steps(kiln__diag *d, const kiln__pipeline *p, const kiln__step *steps, size_t n)
{
    const kiln__vollist *g = &p->options.volumes;
    for (size_t i = 0; i < n; i++) {
        const kiln__step *s = &steps[i];
        char prefix[300];
        snprintf(prefix, sizeof prefix, "%s: ", s->label);
        check_list(d, p->file, prefix, &s->volumes);
        for (size_t k = 0; k < s->volumes.n; k++) {
            const kiln__volume *v = &s->volumes.v[k];
            char cv[PATH_MAX], cg[PATH_MAX];
            const char *vp = clean(v->path, cv);
            for (size_t j = 0; j < g->n; j++) {
                const char *gp = clean(g->v[j].path, cg);
                if (!strcmp(g->v[j].name, v->name))
                    kiln__diag_at(d, KILN__DIAG_ERROR, p->file, at_name(v),
                                  "%svolume name \"%s\" conflicts with global volume", prefix,
                                  v->name);
                if (vp && gp && !strcmp(vp, gp))
                    kiln__diag_at(d, KILN__DIAG_ERROR, p->file, at_path(v),
                                  "%svolume path \"%s\" conflicts with global volume", prefix,
                                  v->path);
            }
        }
    }
}

/* Steps (main and finally) whose own list names NAME. */
static size_t uses_of(const kiln__pipeline *p, const char *name, const kiln__volume **first)
{
    size_t uses = 0;
    const kiln__step *lists[2] = {p->steps, p->finally};
    size_t counts[2] = {p->n_steps, p->n_finally};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++)
            for (size_t k = 0; k < lists[l][i].volumes.n; k++)
                if (!strcmp(lists[l][i].volumes.v[k].name, name)) {
                    if (!uses++)
                        *first = &lists[l][i].volumes.v[k];
                    break;
                }
    return uses;
}

void kiln__volumes_check(kiln__diag *d, const kiln__pipeline *p)
{
    const kiln__vollist *g = &p->options.volumes;
    if (g->n && p->n_steps < 2)
        kiln__diag_at(d, KILN__DIAG_ERROR, p->file, g->node,
                      "Global volumes defined but there are fewer than two steps");
    check_list(d, p->file, "invalid .options.volumes: ", g);
    check_steps(d, p, p->steps, p->n_steps);
    check_steps(d, p, p->finally, p->n_finally);
    /* "Using a named volume in only one step is not valid." */
    const kiln__step *lists[2] = {p->steps, p->finally};
    size_t counts[2] = {p->n_steps, p->n_finally};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++)
            for (size_t k = 0; k < lists[l][i].volumes.n; k++) {
                const kiln__volume *v = &lists[l][i].volumes.v[k], *first = NULL;
                if (uses_of(p, v->name, &first) == 1 && first == v && *v->name)
                    kiln__diag_at(d, KILN__DIAG_ERROR, p->file, at_name(v),
                                  "Volume \"%s\" is only used by one step", v->name);
            }
}

/* ---- a build's directories ------------------------------------------- */

static bool uses_volumes(const kiln__pipeline *p)
{
    if (p->options.volumes.n)
        return true;
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].volumes.n)
            return true;
    for (size_t i = 0; i < p->n_finally; i++)
        if (p->finally[i].volumes.n)
            return true;
    return false;
}

/* kiln-mount-exec next to kiln, or installed (kiln__helper_path). */
static const char *mount_exec_path(void)
{
    static char path[PATH_MAX];
    static bool looked;
    if (looked)
        return path[0] ? path : NULL;
    looked = true;
    if (kiln__helper_path(MOUNT_EXEC, path, sizeof path) == 0)
        return path;
    path[0] = '\0';
    return NULL;
}

/* Run `kiln-mount-exec --probe` once per process; its stderr is the reason. */
static int probe(const char *file, const char *helper, const char *root, kiln__buf *err)
{
    static int result = 1; /* 1: not yet */
    static char reason[512];
    if (result == 1) {
        int fd[2];
        if (pipe2(fd, O_CLOEXEC) != 0)
            return -errno;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
        char *argv[] = {(char *)helper, "--probe", "--root", (char *)root, NULL};
        pid_t pid;
        int e = posix_spawn(&pid, helper, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(fd[1]);
        size_t len = 0;
        ssize_t r;
        while (len + 1 < sizeof reason &&
               ((r = read(fd[0], reason + len, sizeof reason - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
            if (r > 0)
                len += (size_t)r;
        close(fd[0]);
        reason[len] = '\0';
        while (len && reason[len - 1] == '\n')
            reason[--len] = '\0';
        int st = 0;
        if (!e)
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
        if (e)
            snprintf(reason, sizeof reason, "kiln: volumes: cannot run %.300s: %s", helper, strerror(e));
        result = !e && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
    }
    if (result == 0)
        return 0;
    const char *msg = strncmp(reason, "kiln: ", 6) ? reason : reason + 6;
    kiln__buf_addf(err, "%s: %s", file, *msg ? msg : "volumes: kiln-mount-exec failed");
    return KILN_EPERM;
}

/* Volume paths that would hide the workspace, or the directory where kiln
 * keeps step files ($KILN_OUTPUT) and the volumes themselves. */
static void check_hiding(kiln__diag *d, const kiln__pipeline *p, const kiln__vollist *l,
                         const char *label, const char *ws, const char *tmp)
{
    for (size_t i = 0; i < l->n; i++) {
        char cp[PATH_MAX];
        const char *path = clean(l->v[i].path, cp);
        if (!path)
            continue;
        if (ws && kiln__path_under(ws, path))
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, at_path(&l->v[i]),
                          "%s: volume path \"%s\" would hide the workspace %s from the step", label,
                          l->v[i].path, ws);
        else if (tmp && kiln__path_under(tmp, path))
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, at_path(&l->v[i]),
                          "%s: volume path \"%s\" would hide kiln's directory for step files %s "
                          "(TMPDIR); set TMPDIR to a directory outside it",
                          label, l->v[i].path, tmp);
    }
}

static int mkdir_p(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(path, 0755) != 0 && errno != EEXIST ? -errno : 0;
        *p = c;
        if (rc)
            return rc;
        if (!c)
            return 0;
    }
}

/* A directory per name; and under the workspace the mount point is made in
 * it, as Docker makes it in /workspace. */
static int make_dirs(const kiln__build *b, const kiln__vollist *l, const char *ws, kiln__buf *err)
{
    for (size_t i = 0; i < l->n; i++) {
        char dir[PATH_MAX], cp[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/volumes/%s", b->volume_dir, l->v[i].name);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            kiln__buf_addf(err, "volumes: cannot create %s: %s", dir, strerror(e));
            return -e;
        }
        const char *path = clean(l->v[i].path, cp);
        int rc = ws && path && kiln__path_under(path, ws) ? mkdir_p(cp) : 0;
        if (rc) {
            kiln__buf_addf(err, "volumes: cannot create %s: %s", cp, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

int kiln__volumes_setup(kiln__build *b, kiln__buf *err)
{
    const kiln__pipeline *p = b->p;
    if (!uses_volumes(p))
        return 0;
    const char *helper = mount_exec_path();
    if (!helper) {
        kiln__buf_addf(err, "volumes: " MOUNT_EXEC " is neither next to kiln nor in %s; "
                            "reinstall kiln",
                       KILN_LIBEXEC_DIR);
        return KILN_ENOENT;
    }
    char ws[PATH_MAX], tmp[PATH_MAX];
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    bool have_ws = realpath(b->workspace, ws) != NULL, have_tmp = realpath(tmpdir, tmp) != NULL;
    kiln__diag d;
    kiln__diag_init(&d);
    check_hiding(&d, p, &p->options.volumes, "options.volumes", have_ws ? ws : NULL,
                 have_tmp ? tmp : NULL);
    for (size_t o = 0; o < b->n_total; o++)
        check_hiding(&d, p, &b->steps[o].def->volumes, b->steps[o].def->label, have_ws ? ws : NULL,
                     have_tmp ? tmp : NULL);
    if (d.errors) {
        kiln__buf_add(err, d.text.buf, d.text.len - 1);
        kiln__diag_release(&d);
        return KILN_ECONFIG;
    }
    kiln__diag_release(&d);

    char *dir = kiln__xasprintf("%s/kiln-volumes-XXXXXX", tmpdir);
    if (!mkdtemp(dir)) {
        int e = errno;
        kiln__buf_addf(err, "volumes: cannot create a directory in %s: %s", tmpdir, strerror(e));
        free(dir);
        return -e;
    }
    b->volume_dir = dir;
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/volumes", dir);
    if (mkdir(sub, 0700) != 0 || (snprintf(sub, sizeof sub, "%s/root", dir), mkdir(sub, 0700)) != 0) {
        int e = errno;
        kiln__buf_addf(err, "volumes: cannot create %s: %s", sub, strerror(e));
        return -e;
    }
    int rc = probe(p->file, helper, sub, err);
    for (size_t o = 0; !rc && o < b->n_total; o++)
        rc = make_dirs(b, &b->steps[o].def->volumes, have_ws ? ws : NULL, err);
    if (!rc)
        rc = make_dirs(b, &p->options.volumes, have_ws ? ws : NULL, err);
    return rc;
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *f)
{
    if (type == FTW_D || type == FTW_DNR)
        chmod(path, 0700);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    if (remove(path) != 0 && errno != ENOENT)
        return errno;
    return 0;
}

void kiln__volumes_remove(kiln__build *b)
{
    if (!b->volume_dir)
        return;
    /* Steps may leave read-only directories behind (Go's module cache). */
    int rc = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        nftw(b->volume_dir, make_writable, 16, FTW_PHYS | FTW_MOUNT);
        rc = nftw(b->volume_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (rc == 0 || access(b->volume_dir, F_OK) != 0)
            break;
    }
    if (access(b->volume_dir, F_OK) == 0)
        fprintf(stderr, "kiln: could not remove the build's volumes in %s: %s\n", b->volume_dir,
                strerror(rc > 0 ? rc : errno));
    free(b->volume_dir);
    b->volume_dir = NULL;
}

/* ---- a step's processes ---------------------------------------------- */

char **kiln__volumes_wrap(const kiln__rstep *s, const char *const *argv, const char *cwd)
{
    const kiln__build *b = s->b;
    const kiln__vollist *lists[2] = {&b->p->options.volumes, &s->def->volumes};
    size_t nv = lists[0]->n + lists[1]->n, na = 0;
    if (!b->volume_dir || nv == 0)
        return NULL;
    while (argv[na])
        na++;
    char **out = kiln__xcalloc(6 + 3 * nv + na + 1, sizeof *out);
    size_t k = 0;
    out[k++] = kiln__xstrdup(mount_exec_path());
    out[k++] = kiln__xstrdup("--root");
    out[k++] = kiln__xasprintf("%s/root", b->volume_dir);
    out[k++] = kiln__xstrdup("--cwd");
    out[k++] = kiln__xstrdup(cwd);
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->n; i++) {
            out[k++] = kiln__xstrdup("--vol");
            out[k++] = kiln__xasprintf("%s/volumes/%s", b->volume_dir, lists[l]->v[i].name);
            out[k++] = kiln__xstrdup(lists[l]->v[i].path);
        }
    out[k++] = kiln__xstrdup("--");
    for (size_t i = 0; i < na; i++)
        out[k++] = kiln__xstrdup(argv[i]);
    out[k] = NULL;
    return out;
}

void kiln__volumes_free_argv(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

char *kiln__volumes_host_path(const kiln__rstep *s, const char *path)
{
    const kiln__build *b = s->b;
    const kiln__vollist *lists[2] = {&b->p->options.volumes, &s->def->volumes};
    char cp[PATH_MAX];
    if (!b->volume_dir || !clean(path, cp))
        return NULL;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->n; i++) {
            char cv[PATH_MAX];
            const char *vp = clean(lists[l]->v[i].path, cv);
            if (vp && kiln__path_under(cp, vp))
                return kiln__xasprintf("%s/volumes/%s%s", b->volume_dir, lists[l]->v[i].name,
                                       cp + strlen(vp));
        }
    return NULL;
}

bool kiln__volumes_in_path(const kiln__rstep *s, const char *path_env)
{
    for (const char *d = path_env; d && *d;) {
        const char *end = strchr(d, ':');
        size_t len = end ? (size_t)(end - d) : strlen(d);
        char dir[PATH_MAX];
        if (len && len < sizeof dir && d[0] == '/') {
            memcpy(dir, d, len);
            dir[len] = '\0';
            char *host = kiln__volumes_host_path(s, dir);
            free(host);
            if (host)
                return true;
        }
        if (!end)
            break;
        d = end + 1;
    }
    return false;
}
