/* SPDX-License-Identifier: MIT */
/* kiln trigger (a push evaluated against the triggers file, each matching
 * build run). kiln hook install's hook runs it (cmd_hook.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"
#include "triggers.h"
#include "trigger_run.h"


/* ---- trigger, hook install ----------------------------------------------------- */

/* Run argv (no shell), collect stdout into out. Returns the exit status, or
 * -1 when it could not run. stderr goes to ours. */
static int capture(const char *const *argv, kiln__buf *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out)
            kiln__buf_add(out, chunk, (size_t)n);
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void chomp(kiln__buf *b)
{
    while (b->len && (b->buf[b->len - 1] == '\n' || b->buf[b->len - 1] == '\r'))
        b->buf[--b->len] = '\0';
}

static bool all_zeros(const char *sha)
{
    if (!sha || !*sha)
        return false;
    for (const char *p = sha; *p; p++)
        if (*p != '0')
            return false;
    return true;
}

int kiln__cli_load_triggers(const char *file, kiln__triggers *ts)
{
    kiln__diag d;
    kiln__diag_init(&d);
    int rc = kiln__triggers_load(ts, file, &d);
    if (d.text.len)
        fputs(d.text.buf, stderr);
    int errors = d.errors ? d.errors : rc ? 1 : 0; /* a failed load counts once */
    kiln__diag_release(&d);
    if (errors) {
        fprintf(stderr, "kiln: %s: %d error%s\n", file, errors, errors == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    return 0;
}

static int run_triggered(const kiln__cli_opts *o, const kiln__triggers *ts, const kiln__trigger *t,
                         const char *repo, const char *ref, const char *after, const char *base)
{
    bool is_tag = !strncmp(ref, "refs/tags/", 10);
    const char *name = is_tag ? ref + 10 : !strncmp(ref, "refs/heads/", 11) ? ref + 11 : ref;
    char short_sha[8];
    snprintf(short_sha, sizeof short_sha, "%.7s", after);
    char *dir = kiln__xasprintf("%s/%s-%s", base, t->name, short_sha);
    char *src = kiln__xasprintf("%s/src", dir);
    mkdir(dir, 0777);
    printf("\n== trigger %s: %s at %s (%s %s)\n", t->name, t->filename, short_sha,
           is_tag ? "tag" : "branch", name);
    fflush(stdout);
    kiln__buf gerr = KILN__BUF_INIT;
    int rc = kiln__checkout(repo, ref, after, src, false, &gerr);
    if (rc != 0) {
        fputs(gerr.buf ? gerr.buf : "", stderr);
        fprintf(stderr, "kiln: trigger %s: cannot check out %s at %s (git exit status %d)\n", t->name,
                repo, after, rc);
        kiln__buf_release(&gerr);
        free(dir);
        free(src);
        return EXIT_FAILED;
    }
    kiln__buf_release(&gerr);
    char *file = kiln__xasprintf("%s/%s", src, t->filename);
    if (access(file, R_OK) != 0) {
        fprintf(stderr, "kiln: trigger %s: the commit has no %s (filename:)\n", t->name, t->filename);
        free(file);
        free(dir);
        free(src);
        return EXIT_FAILED;
    }
    /* --substitutions, then the trigger's, then what Cloud Build sets for a push. */
    char **substs = NULL;
    size_t n = 0;
    for (size_t i = 0; i < o->n_substs; i++) {
        substs = kiln__xrealloc(substs, (n + 1) * sizeof *substs);
        substs[n++] = kiln__xstrdup(o->substs[i]);
    }
    kiln__triggered_substs(t, repo, ref, after, &substs, &n);
    char *logs = kiln__xasprintf("%s/logs", dir);
    char *report = kiln__xasprintf("%s/report.json", dir);
    kiln__cli_opts r = *o;
    r.file = file;
    r.workspace = src;
    r.log_dir = logs;
    r.report = report;
    r.plan_dir = dir;
    r.substs = substs;
    r.n_substs = n;
    r.triggered = true;
    r.only = NULL;
    rc = kiln__cmd_run(&r, false);
    printf("== trigger %s: %s; logs: %s/ report: %s\n", t->name,
           rc == 0 ? "SUCCESS" : rc == EXIT_USAGE ? "INVALID PIPELINE" : "FAILURE", logs, report);
    fflush(stdout);
    for (size_t i = 0; i < n; i++)
        free(substs[i]);
    free(substs);
    free(logs);
    free(report);
    free(file);
    free(dir);
    free(src);
    return rc;
}

int kiln__cmd_trigger(const kiln__cli_opts *o)
{
    if (!o->triggers)
        return kiln__usage_error("trigger: which triggers file? (--triggers FILE)");
    kiln__triggers ts;
    int rc = kiln__cli_load_triggers(o->triggers, &ts);
    if (rc) {
        kiln__triggers_free(&ts);
        return rc;
    }
    if (o->list) {
        printf("%-32s %-24s %-8s %-16s %-20s %s\n", "NAME", "REPO", "EVENT", "REGEX", "FILENAME",
               "SCHEDULE");
        for (size_t i = 0; i < ts.n; i++) {
            const kiln__trigger *t = &ts.v[i];
            printf("%-32s %-24s %-8s %s%-16s %-20s %s%s%s\n", t->name, t->repo ? t->repo : "(any)",
                   t->branch ? "branch" : t->tag ? "tag" : "-", t->invert ? "!" : "",
                   t->branch ? t->branch : t->tag ? t->tag : "-", t->filename,
                   t->schedule ? t->schedule : "-",
                   t->schedule ? " " : "", t->schedule ? (t->time_zone ? t->time_zone : "UTC") : "");
        }
        kiln__triggers_free(&ts);
        return 0;
    }
    if (!o->repo || !o->ref) {
        kiln__triggers_free(&ts);
        return kiln__usage_error("trigger: give --repo PATH and --ref REF (or --list)");
    }
    char *ref = strncmp(o->ref, "refs/", 5) ? kiln__xasprintf("refs/heads/%s", o->ref)
                                            : kiln__xstrdup(o->ref);
    if (all_zeros(o->after)) {
        printf("kiln: %s was deleted: nothing to build\n", ref);
        free(ref);
        kiln__triggers_free(&ts);
        return 0;
    }
    kiln__buf after = KILN__BUF_INIT;
    if (o->after) {
        kiln__buf_adds(&after, o->after);
    } else {
        char spec[1100];
        snprintf(spec, sizeof spec, "%s^{commit}", ref);
        const char *a[] = {"git", "-C", o->repo, "rev-parse", "--verify", "-q", spec, NULL};
        if (capture(a, &after) != 0) {
            fprintf(stderr, "kiln: trigger: %s has no ref %s\n", o->repo, ref);
            kiln__buf_release(&after);
            free(ref);
            kiln__triggers_free(&ts);
            return EXIT_USAGE;
        }
        chomp(&after);
    }
    /* Changed files: before..after, or the pushed commit's own changes. */
    kiln__buf files = KILN__BUF_INIT;
    int frc;
    if (o->before && !all_zeros(o->before)) {
        const char *a[] = {"git", "-C", o->repo, "diff", "--name-only", "--no-renames", o->before,
                           after.buf, NULL};
        frc = capture(a, &files);
    } else {
        const char *a[] = {"git", "-C", o->repo, "diff-tree", "--no-commit-id", "--name-only", "-r",
                           "--root", after.buf, NULL};
        frc = capture(a, &files);
    }
    const char **fv = NULL;
    size_t nf = 0;
    char *save = NULL;
    for (char *line = strtok_r(files.buf, "\n", &save); frc == 0 && line;
         line = strtok_r(NULL, "\n", &save)) {
        fv = kiln__xrealloc(fv, (nf + 1) * sizeof *fv);
        fv[nf++] = line;
    }
    kiln__push push = {o->repo, ref, fv, nf, frc == 0};
    printf("kiln: push to %s %s (%.7s), %zu changed file%s\n", o->repo, ref, after.buf, nf,
           nf == 1 ? "" : "s");
    bool *fired = kiln__xcalloc(ts.n ? ts.n : 1, sizeof *fired);
    size_t n_fired = 0;
    for (size_t i = 0; i < ts.n; i++) {
        char why[512];
        fired[i] = kiln__trigger_match(&ts, &ts.v[i], &push, why, sizeof why);
        n_fired += fired[i];
        printf("  %-9s %s: %s\n", fired[i] ? "fired" : "not fired", ts.v[i].name, why);
    }
    int result = 0;
    if (!n_fired) {
        printf("kiln: no trigger fired; nothing to build\n");
    } else {
        char base[PATH_MAX];
        if (o->out) {
            mkdir(o->out, 0777);
            if (!realpath(o->out, base))
                snprintf(base, sizeof base, "%s", o->out);
        } else {
            const char *tmp = getenv("TMPDIR");
            snprintf(base, sizeof base, "%s/kiln-trigger-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(base)) {
                fprintf(stderr, "kiln: cannot create a directory for the builds: %s\n", strerror(errno));
                result = EXIT_FAILED;
                n_fired = 0;
            }
        }
        char repo_abs[PATH_MAX];
        if (!realpath(o->repo, repo_abs))
            snprintf(repo_abs, sizeof repo_abs, "%s", o->repo);
        for (size_t i = 0; i < ts.n && n_fired; i++) {
            if (!fired[i])
                continue;
            int rc2 = run_triggered(o, &ts, &ts.v[i], repo_abs, ref, after.buf, base);
            if (rc2 && !result)
                result = EXIT_FAILED;
        }
    }
    free(fired);
    free(fv);
    kiln__buf_release(&files);
    kiln__buf_release(&after);
    free(ref);
    kiln__triggers_free(&ts);
    return result;
}
