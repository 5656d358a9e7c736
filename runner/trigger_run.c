/* SPDX-License-Identifier: MIT */
/*
 * A triggered build's preparation (trigger_run.h): checkout, the push's
 * substitutions, load and check. `kiln trigger` and `kiln serve` both go
 * through here, so a build started by a hook, the command line or the
 * server sees the same values.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "builders.h"
#include "resolve.h"
#include "trigger_run.h"

int kiln__run_capture(const char *const *argv, kiln__buf *out, kiln__buf *err)
{
    int fo[2], fe[2] = {-1, -1};
    if (pipe2(fo, O_CLOEXEC) != 0)
        return -1;
    if (err && pipe2(fe, O_CLOEXEC) != 0) {
        close(fo[0]);
        close(fo[1]);
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fo[0]);
        close(fo[1]);
        if (err) {
            close(fe[0]);
            close(fe[1]);
        }
        return -1;
    }
    if (pid == 0) {
        dup2(fo[1], 1);
        if (err)
            dup2(fe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fo[1]);
    if (err)
        close(fe[1]);
    /* Read both pipes without deadlock: stderr of git is small, so read
     * stdout to the end, then stderr. A child writing more than a pipe's
     * worth to stderr first would block; git does not. */
    char chunk[4096];
    ssize_t n;
    while ((n = read(fo[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out)
            kiln__buf_add(out, chunk, (size_t)n);
    close(fo[0]);
    if (err) {
        while ((n = read(fe[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
            if (n > 0)
                kiln__buf_add(err, chunk, (size_t)n);
        close(fe[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int kiln__checkout(const char *from, const char *ref, const char *after, const char *src,
                   bool shared, kiln__buf *err)
{
    bool is_tag = !strncmp(ref, "refs/tags/", 10);
    const char *name = is_tag ? ref + 10 : !strncmp(ref, "refs/heads/", 11) ? ref + 11 : ref;
    const char *clone[] = {"git", "clone", "-q", "--no-checkout", shared ? "--shared" : "-q",
                           from, src, NULL};
    const char *co_b[] = {"git", "-C", src, "checkout", "-q", "-B", name, after, NULL};
    const char *co_d[] = {"git", "-C", src, "checkout", "-q", "--detach", after, NULL};
    int rc = kiln__run_capture(clone, NULL, err);
    if (rc == 0)
        rc = kiln__run_capture(is_tag || !*name || !strcmp(name, after) ? co_d : co_b, NULL, err);
    return rc;
}

static void push_subst(char ***v, size_t *n, const char *k, const char *val)
{
    *v = kiln__xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = kiln__xasprintf("%s=%s", k, val ? val : "");
}

void kiln__triggered_substs(const kiln__trigger *t, const char *repo, const char *ref,
                            const char *after, char ***v, size_t *n)
{
    bool is_tag = !strncmp(ref, "refs/tags/", 10);
    const char *name = is_tag ? ref + 10 : !strncmp(ref, "refs/heads/", 11) ? ref + 11 : ref;
    char short_sha[8];
    snprintf(short_sha, sizeof short_sha, "%.7s", after);
    for (size_t i = 0; i < t->n_subst; i++) {
        *v = kiln__xrealloc(*v, (*n + 1) * sizeof **v);
        (*v)[(*n)++] = kiln__xstrdup(t->subst[i]);
    }
    char rname[PATH_MAX];
    snprintf(rname, sizeof rname, "%s", repo);
    size_t rl = strlen(rname);
    while (rl > 1 && rname[rl - 1] == '/')
        rname[--rl] = '\0';
    if (rl > 4 && !strcmp(rname + rl - 4, ".git"))
        rname[rl -= 4] = '\0';
    const char *rbase = strrchr(rname, '/') ? strrchr(rname, '/') + 1 : rname;
    push_subst(v, n, "TRIGGER_NAME", t->name);
    push_subst(v, n, "TRIGGER_BUILD_CONFIG_PATH", t->filename);
    push_subst(v, n, "COMMIT_SHA", after);
    push_subst(v, n, "REVISION_ID", after);
    push_subst(v, n, "SHORT_SHA", short_sha);
    if (*name && strcmp(name, after)) {
        push_subst(v, n, is_tag ? "TAG_NAME" : "BRANCH_NAME", name);
        push_subst(v, n, "REF_NAME", name);
    }
    push_subst(v, n, "REPO_NAME", rbase);
}

int kiln__load_checked(kiln__engine *eng, const kiln__load_opts *o, kiln__pipeline *p,
                       kiln__subst **subst, kiln__secrets *secrets, const char *build_id,
                       const char *workspace, kiln__buf *text)
{
    memset(secrets, 0, sizeof *secrets);
    kiln__diag d;
    kiln__diag_init(&d);
    static kiln__builders builders;
    kiln__builders_release(&builders);
    const char *bfile = o->builders ? o->builders : getenv("KILN_BUILDERS");
    kiln__builders_load(&builders, bfile && *bfile ? bfile : NULL, &d);
    kiln__resolve_set_builders(&builders);
    d.cloudbuild_strict = o->cloudbuild_strict;
    int rc = kiln__pipeline_load(p, o->file, &d);
    if (rc == 0) {
        const char *project = o->project ? o->project : getenv("GOOGLE_CLOUD_PROJECT");
        kiln__resolve_opts ro = {o->substs, o->n_substs, workspace, build_id,
                                 project ? project : "local", o->triggered};
        kiln__resolve_subst(p, &ro, &d, subst);
        kiln__secret_opts so = {o->secrets_file, o->secrets_command};
        kiln__secrets_resolve(p, *subst, &so, &d, eng->masker, secrets);
        if (!d.errors || p->n_steps)
            kiln__resolve_check(p, *subst, &eng->reg, &d);
    }
    if (d.text.len)
        kiln__buf_add(text, d.text.buf, d.text.len);
    int errors = d.errors;
    kiln__diag_release(&d);
    return errors;
}
