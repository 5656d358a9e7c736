/* SPDX-License-Identifier: MIT */
/*
 * kiln serve (serve.h): options, the queue and a build's life.
 *
 * Every build goes QUEUED (a row in the history) -> WORKING when a slot of
 * --max-builds is free -> its end. WORKING starts on a worker thread: one
 * `git fetch` of the repository's branches and tags into its mirror under
 * DATA/mirrors/, then a --shared clone of the mirror into
 * DATA/builds/ID/src at the commit. Back on the loop, the pipeline is
 * loaded and checked as `kiln trigger` does (trigger_run.h) and run on the
 * engine; when the build has ended its report is written and recorded,
 * and once its last process is gone the build is freed and the next one
 * starts.
 *
 * SIGTERM (or SIGINT): the listener closes and nothing new starts; running
 * builds have --grace to end, then they are cancelled; queued builds stay
 * QUEUED for the next start. Exit status 0. A server killed without that
 * leaves WORKING rows, which the next start marks INTERNAL_ERROR.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ship.h"
#include "path.h"
#include "report.h"
#include "serve.h"
#include "serve_logs.h"
#include "trigger_run.h"

#define REAP_INTERVAL_MS 50
/* How long a build's executor close() may wait before it is asked again
 * (the "loop ran dry" call of the contract): 2 minutes. */
#define EXEC_CLOSE_PATIENCE_NS (120ull * 1000000000ull)

void kiln__serve_log(const char *fmt, ...)
{
    char t[64];
    kiln__format_time(kiln__now_us(), t, sizeof t);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s kiln serve: ", t);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- jobs ------------------------------------------------------------- */

static void job_free(kiln__job *j)
{
    free(j->trigger);
    free(j->repo);
    free(j->ref);
    free(j->commit);
    for (size_t i = 0; i < j->n_substs; i++)
        free(j->substs[i]);
    free(j->substs);
    kiln__buf_release(&j->prep_err);
    free(j->dir);
    free(j->mirror);
    free(j);
}

static const kiln__trigger *find_trigger(const kiln__server *srv, const char *name)
{
    for (size_t i = 0; i < srv->triggers.n; i++)
        if (!strcmp(srv->triggers.v[i].name, name))
            return &srv->triggers.v[i];
    return NULL;
}

char *kiln__serve_trigger_source(const kiln__server *srv, const kiln__trigger *t)
{
    if (!t->repo || (!strchr(t->repo, '/') && !strchr(t->repo, ':') && !srv->repos_dir))
        return NULL;
    if (t->repo[0] == '/' || strstr(t->repo, "://") || strchr(t->repo, ':'))
        return kiln__xstrdup(t->repo);
    if (!strchr(t->repo, '/') && srv->repos_dir) {
        /* By name, under --repos: NAME.git, else NAME. */
        for (int i = 0; i < 2; i++) {
            char *p = kiln__xasprintf("%s/%s%s", srv->repos_dir, t->repo, i ? "" : ".git");
            if (access(p, F_OK) == 0)
                return p;
            free(p);
        }
        return NULL;
    }
    char *rel = kiln__xasprintf("%s/%s", srv->triggers.dir, t->repo);
    char abs[PATH_MAX];
    if (realpath(rel, abs)) {
        free(rel);
        return kiln__xstrdup(abs);
    }
    return rel;
}

static void pump(kiln__server *srv);
static void maybe_exit(kiln__server *srv);
static void cancel_previous(kiln__server *srv, const kiln__job *newer);

static void unlink_running(kiln__server *srv, kiln__job *j)
{
    for (kiln__job **pp = &srv->running; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    srv->n_running--;
}

static void on_reap_close(uv_handle_t *h)
{
    free(h);
}

/* Whether any process of b is still being watched, or a sub-build of it
 * (one nobody waits for) has not ended. */
static bool build_busy(const kiln__build *b)
{
    for (size_t o = 0; o < b->n_total; o++) {
        if (b->steps[o].n_procs)
            return true;
        for (size_t i = 0; i < b->steps[o].n_children; i++)
            if (b->steps[o].children[i]->phase != KILN__PHASE_DONE || build_busy(b->steps[o].children[i]))
                return true;
    }
    return false;
}

static void on_exec_closed(void *arg)
{
    kiln__job *j = arg;
    j->exec_closed = true; /* the reap timer's next tick frees the build */
    kiln__serve_log("build %s (%s): executor closed in %.0f ms (what the build made on it is removed)", j->id,
                    j->trigger, (double)(uv_hrtime() - j->exec_close_t0) / 1e6);
}

/* The job is over: free it once nothing of its build runs any more and
 * its executor instance has removed what it made (containers, network,
 * volumes; Pods), whatever ended the build. */
static void on_reap(uv_timer_t *t)
{
    kiln__job *j = t->data;
    if (j->b && build_busy(j->b))
        return;
    if (j->b && j->b->exec_inst && !j->exec_closing) {
        j->exec_closing = true;
        j->exec_close_t0 = uv_hrtime();
        kiln__exec_inst_close(j->b->exec_inst, on_exec_closed, j);
    }
    if (j->exec_closing && !j->exec_closed) {
        /* The loop of kiln serve never runs dry: when the close waits too
         * long (removals the engine never answers), ask again, which the
         * contract says finishes at once. */
        if (!j->exec_asked_twice && uv_hrtime() - j->exec_close_t0 > EXEC_CLOSE_PATIENCE_NS && j->b->exec_inst) {
            j->exec_asked_twice = true;
            kiln__serve_log("build %s (%s): the executor's close takes long; finishing it now", j->id, j->trigger);
            kiln__exec_inst_close(j->b->exec_inst, on_exec_closed, j);
        }
        return;
    }
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, on_reap_close);
    kiln__server *srv = j->srv;
    if (j->b)
        kiln__build_destroy(j->b);
    if (j->loaded) {
        if (j->subst)
            kiln__subst_destroy(j->subst);
        kiln__secrets_release(&j->secrets);
        kiln__pipeline_free(&j->p);
    }
    unlink_running(srv, j);
    job_free(j);
    kiln__serve_retention(srv);
    pump(srv);
    maybe_exit(srv);
}

static void job_end(kiln__job *j, const char *status, const char *reason, const char *report)
{
    kiln__db_finished(j->srv, j->id, status, reason, report);
    kiln__serve_log("build %s (%s): %s%s%s", j->id, j->trigger, status, reason ? ": " : "",
                    reason ? reason : "");
    j->reap_timer = kiln__xmalloc(sizeof *j->reap_timer);
    uv_timer_init(j->srv->loop, j->reap_timer);
    j->reap_timer->data = j;
    uv_timer_start(j->reap_timer, on_reap, 0, REAP_INTERVAL_MS);
    kiln__logs_build_over(j->srv, j->id);
}

static void on_build_end(kiln__build *b, void *data)
{
    kiln__job *j = data;
    char *path = kiln__xasprintf("%s/report.json", j->dir);
    int rc = kiln__report_write(b, path);
    if (rc)
        kiln__serve_log("error: cannot write %s: %s", path, kiln__strerror(rc));
    free(path);
    char *json = kiln__report_json(b);
    job_end(j, kiln_status_name(b->status), b->fail_reason, json);
    free(json);
}

/* Worker thread: fetch into the mirror, resolve the commit, check out. */
static void prepare_work(uv_work_t *w)
{
    kiln__job *j = w->data;
    kiln__server *srv = j->srv;
    kiln__buf *err = &j->prep_err;
    char *src = kiln__xasprintf("%s/src", j->dir);
    uv_mutex_lock(&srv->fetch_mutex);
    int rc = 0;
    struct stat st;
    if (stat(j->mirror, &st) != 0) {
        const char *init[] = {"git", "init", "-q", "--bare", j->mirror, NULL};
        /* Builds borrow the mirror's objects (clone --shared): never gc it. */
        const char *nogc[] = {"git", "-C", j->mirror, "config", "gc.auto", "0", NULL};
        rc = kiln__run_capture(init, NULL, err);
        if (rc == 0)
            rc = kiln__run_capture(nogc, NULL, err);
    }
    if (rc == 0) {
        const char *fetch[] = {"git", "-C", j->mirror, "fetch", "-q", "--prune", "--force", j->repo,
                               "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", NULL};
        rc = kiln__run_capture(fetch, NULL, err);
        if (rc)
            kiln__buf_addf(err, "git fetch %s: exit status %d\n", j->repo, rc);
    }
    if (rc == 0 && j->commit) {
        char *spec = kiln__xasprintf("%s^{commit}", j->commit);
        const char *have[] = {"git", "-C", j->mirror, "cat-file", "-e", spec, NULL};
        if (kiln__run_capture(have, NULL, NULL) != 0) {
            /* Not on any branch or tag: ask for the commit itself. */
            const char *one[] = {"git", "-C", j->mirror, "fetch", "-q", j->repo, j->commit, NULL};
            rc = kiln__run_capture(one, NULL, err);
            if (rc)
                kiln__buf_addf(err, "commit %s not found in %s\n", j->commit, j->repo);
        }
        free(spec);
    } else if (rc == 0) {
        char *spec = kiln__xasprintf("%s^{commit}", j->ref);
        const char *rp[] = {"git", "-C", j->mirror, "rev-parse", "--verify", "-q", spec, NULL};
        kiln__buf out = KILN__BUF_INIT;
        rc = kiln__run_capture(rp, &out, err);
        while (out.len && (out.buf[out.len - 1] == '\n'))
            out.buf[--out.len] = '\0';
        if (rc == 0 && out.len)
            j->commit = kiln__xstrdup(out.buf);
        else
            kiln__buf_addf(err, "%s has no %s\n", j->repo, j->ref);
        rc = rc ? rc : out.len ? 0 : 1;
        kiln__buf_release(&out);
        free(spec);
    }
    uv_mutex_unlock(&srv->fetch_mutex);
    if (rc == 0)
        rc = kiln__checkout(j->mirror, j->ref, j->commit, src, true, err);
    if (rc == 0) {
        /* origin is where the commit came from, not the mirror: what a
         * pipeline finds relative to it (a sub-build's ../api.git) is
         * beside the pushed repository. The objects stay borrowed. */
        const char *seturl[] = {"git", "-C", src, "remote", "set-url", "origin", j->repo, NULL};
        rc = kiln__run_capture(seturl, NULL, err);
    }
    j->prep_rc = rc;
    free(src);
}

/* The last line of git's complaint, for statusDetail. */
static const char *last_line(kiln__buf *b, char *out, size_t cap)
{
    while (b->len && (b->buf[b->len - 1] == '\n' || b->buf[b->len - 1] == ' '))
        b->buf[--b->len] = '\0';
    const char *nl = b->len ? strrchr(b->buf, '\n') : NULL;
    snprintf(out, cap, "%s", nl ? nl + 1 : b->len ? b->buf : "git failed");
    return out;
}

static void prepare_done(uv_work_t *w, int status)
{
    kiln__job *j = w->data;
    kiln__server *srv = j->srv;
    j->preparing = false;
    if (j->cancel_requested || status == UV_ECANCELED) {
        job_end(j, "CANCELLED", srv->stopping ? "kiln serve stopped" : "cancelled", NULL);
        return;
    }
    char line[512];
    if (j->prep_rc != 0) {
        char *why = kiln__xasprintf("cannot fetch the source: %s", last_line(&j->prep_err, line, sizeof line));
        job_end(j, "FAILURE", why, NULL);
        free(why);
        return;
    }
    kiln__db_commit(srv, j, j->commit);
    const kiln__trigger *t = find_trigger(srv, j->trigger);
    if (!t) {
        job_end(j, "INTERNAL_ERROR", "the trigger is no longer in the triggers file", NULL);
        return;
    }
    char *src = kiln__xasprintf("%s/src", j->dir);
    char *file = kiln__xasprintf("%s/%s", src, t->filename);
    if (access(file, R_OK) != 0) {
        char *why = kiln__xasprintf("the commit has no %s (filename:)", t->filename);
        job_end(j, "FAILURE", why, NULL);
        free(why);
        free(file);
        free(src);
        return;
    }
    /* The substitutions asked for, then the trigger's, then the push's. */
    char **substs = NULL;
    size_t n = 0;
    for (size_t i = 0; i < j->n_substs; i++) {
        substs = kiln__xrealloc(substs, (n + 1) * sizeof *substs);
        substs[n++] = kiln__xstrdup(j->substs[i]);
    }
    kiln__triggered_substs(t, j->repo, j->ref, j->commit, &substs, &n);
    kiln__load_opts lo = {file, (const char *const *)substs, n, NULL, true, false, NULL, NULL, NULL};
    kiln__buf text = KILN__BUF_INIT;
    j->loaded = true;
    int errors = kiln__load_checked(&srv->eng, &lo, &j->p, &j->subst, &j->secrets, j->id, src, &text);
    for (size_t i = 0; i < n; i++)
        free(substs[i]);
    free(substs);
    if (text.len) {
        char *vpath = kiln__xasprintf("%s/validate.txt", j->dir);
        FILE *f = fopen(vpath, "w");
        if (f) {
            fputs(text.buf, f);
            fclose(f);
        }
        free(vpath);
    }
    kiln__buf err = KILN__BUF_INIT;
    int rc = errors ? KILN_ECONFIG : kiln__build_create(&srv->eng, &j->p, j->subst, src, NULL, &err, &j->b);
    /* The build's own executor instance (--executor): open() may block
     * for the engine's answers (network, volumes, leftovers of dead
     * owners). Lines it says go to the build's log once it has started. */
    kiln__exec_inst *inst = NULL;
    kiln__buf xwhy = KILN__BUF_INIT;
    uint64_t t0 = uv_hrtime();
    srv->eng.open_workspace = src; /* open() may check the build's files, as under kiln run */
    int xrc = rc ? 0 : kiln__executor_open(&srv->eng, j->id, true, &inst, &xwhy);
    srv->eng.open_workspace = NULL;
    char opened[96] = "";
    if (inst) /* the time the server's loop was held by open() */
        snprintf(opened, sizeof opened, " (executor %s opened in %.0f ms)", srv->eng.exec_plugin->name,
                 (double)(uv_hrtime() - t0) / 1e6);
    if (xrc) {
        job_end(j, "INTERNAL_ERROR", xwhy.buf ? xwhy.buf : "the executor could not be opened", NULL);
    } else if (rc) {
        char *why = errors ? kiln__xasprintf("invalid pipeline %s: %d error%s (validate.txt)", t->filename,
                                             errors, errors == 1 ? "" : "s")
                           : kiln__xasprintf("%s", err.buf ? err.buf : "cannot create the build");
        job_end(j, "FAILURE", why, NULL);
        free(why);
    } else {
        j->b->secrets = &j->secrets;
        j->b->on_end = on_build_end;
        j->b->on_end_data = j;
        kiln__serve_log("build %s (%s): WORKING at %.12s%s", j->id, j->trigger, j->commit, opened);
        kiln__build_start(j->b);
        if (inst) /* before the pump's first turn starts a step */
            kiln__exec_inst_attach(inst, j->b);
    }
    kiln__buf_release(&xwhy);
    kiln__buf_release(&err);
    kiln__buf_release(&text);
    free(file);
    free(src);
}

/* "/srv/x/app.git" -> "app-<hash>.git": one mirror per source. */
static char *mirror_path(const kiln__server *srv, const char *repo)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = repo; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    char name[128];
    size_t n = strlen(repo);
    while (n > 1 && repo[n - 1] == '/')
        n--;
    const char *end = repo + n;
    if (n > 4 && !strncmp(end - 4, ".git", 4))
        end -= 4;
    const char *b = end;
    while (b > repo && b[-1] != '/' && b[-1] != ':')
        b--;
    size_t k = 0;
    for (const char *p = b; p < end && k < 64; p++)
        name[k++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.') ? *p : '_';
    name[k] = '\0';
    return kiln__xasprintf("%s/mirrors/%s-%016llx.git", srv->data_dir, k ? name : "repo",
                           (unsigned long long)h);
}

static void job_start(kiln__server *srv, kiln__job *j)
{
    j->next = srv->running;
    srv->running = j;
    srv->n_running++;
    kiln__db_started(srv, j);
    j->dir = kiln__xasprintf("%s/builds/%s", srv->data_dir, j->id);
    mkdir(j->dir, 0777);
    j->mirror = mirror_path(srv, j->repo);
    j->preparing = true;
    j->work.data = j;
    kiln__serve_log("build %s (%s): fetching %s %s", j->id, j->trigger, j->repo,
                    j->commit ? j->commit : j->ref);
    uv_queue_work(srv->loop, &j->work, prepare_work, prepare_done);
}

static void pump(kiln__server *srv)
{
    while (!srv->stopping && srv->n_running < srv->max_builds && srv->queue_head) {
        kiln__job *j = srv->queue_head;
        srv->queue_head = j->next;
        if (!srv->queue_head)
            srv->queue_tail = NULL;
        j->next = NULL;
        job_start(srv, j);
    }
}

kiln__job *kiln__serve_submit(kiln__server *srv, const kiln__trigger *t, const char *repo,
                              const char *ref, const char *commit, const char *const *substs,
                              size_t n_substs, const char *source, kiln__buf *why)
{
    if (srv->stopping) {
        kiln__buf_adds(why, "kiln serve is stopping");
        return NULL;
    }
    kiln__job *j = kiln__xcalloc(1, sizeof *j);
    j->srv = srv;
    kiln__new_build_id(j->id, sizeof j->id);
    j->trigger = kiln__xstrdup(t->name);
    j->repo = kiln__xstrdup(repo);
    j->ref = kiln__xstrdup(ref ? ref : "");
    j->commit = commit && *commit ? kiln__xstrdup(commit) : NULL;
    for (size_t i = 0; i < n_substs; i++) {
        j->substs = kiln__xrealloc(j->substs, (j->n_substs + 1) * sizeof *j->substs);
        j->substs[j->n_substs++] = kiln__xstrdup(substs[i]);
    }
    if (kiln__db_add(srv, j, source) != 0) {
        kiln__buf_adds(why, "cannot record the build in the history");
        job_free(j);
        return NULL;
    }
    kiln__serve_log("build %s (%s): QUEUED (%s, %s%s%s)", j->id, j->trigger, source,
                    *j->ref ? j->ref : "", *j->ref && j->commit ? " " : "", j->commit ? j->commit : "");
    if (srv->queue_tail)
        srv->queue_tail->next = j;
    else
        srv->queue_head = j;
    srv->queue_tail = j;
    if (t->cancel_previous && *j->ref)
        cancel_previous(srv, j);
    pump(srv);
    return j;
}

int kiln__serve_cancel(kiln__server *srv, const char *id)
{
    kiln__job *prev = NULL;
    for (kiln__job *j = srv->queue_head; j; prev = j, j = j->next) {
        if (strcmp(j->id, id))
            continue;
        if (prev)
            prev->next = j->next;
        else
            srv->queue_head = j->next;
        if (srv->queue_tail == j)
            srv->queue_tail = prev;
        kiln__db_finished(srv, j->id, "CANCELLED", "cancelled while queued", NULL);
        kiln__serve_log("build %s (%s): CANCELLED while queued", j->id, j->trigger);
        kiln__logs_build_over(srv, id);
        job_free(j);
        return 0;
    }
    for (kiln__job *j = srv->running; j; j = j->next) {
        if (strcmp(j->id, id))
            continue;
        if (j->reap_timer || j->cancel_requested)
            return KILN_EINVAL;
        j->cancel_requested = true;
        if (j->b)
            kiln__build_cancel_all(j->b, "cancelled through the API");
        return 0;
    }
    char st[32];
    return kiln__db_status(srv, id, st, sizeof st) ? KILN_EINVAL : KILN_ENOTFOUND;
}

/* ---- retry, cancelPrevious, retention ----------------------------------- */

kiln__job *kiln__serve_retry(kiln__server *srv, const char *id, int *status, kiln__buf *why)
{
    kiln__job *old = kiln__db_job(srv, id);
    if (!old) {
        *status = 404;
        kiln__buf_addf(why, "no build '%s'", id);
        return NULL;
    }
    const kiln__trigger *t = find_trigger(srv, old->trigger);
    kiln__job *j = NULL;
    if (!t) {
        *status = 409;
        kiln__buf_addf(why, "build %s's trigger '%s' is no longer in the triggers file", id, old->trigger);
    } else {
        j = kiln__serve_submit(srv, t, old->repo, old->ref, old->commit, (const char *const *)old->substs,
                               old->n_substs, "retry", why);
        *status = j ? 201 : 503;
        if (j)
            kiln__serve_log("build %s (%s): a retry of %s", j->id, j->trigger, id);
    }
    job_free(old);
    return j;
}

/* cancelPrevious: the trigger's older builds of the same ref give way. */
static void cancel_previous(kiln__server *srv, const kiln__job *newer)
{
    char why[128];
    snprintf(why, sizeof why, "cancelled: a newer build %s of %s (cancelPrevious)", newer->id, newer->ref);
    for (kiln__job *prev = NULL, *j = srv->queue_head, *next; j; j = next) {
        next = j->next;
        if (j == newer || strcmp(j->trigger, newer->trigger) || strcmp(j->ref, newer->ref)) {
            prev = j;
            continue;
        }
        if (prev)
            prev->next = next;
        else
            srv->queue_head = next;
        if (srv->queue_tail == j)
            srv->queue_tail = prev;
        kiln__db_finished(srv, j->id, "CANCELLED", why, NULL);
        kiln__serve_log("build %s (%s): CANCELLED while queued: %s", j->id, j->trigger, why);
        job_free(j);
    }
    for (kiln__job *j = srv->running; j; j = j->next) {
        if (strcmp(j->trigger, newer->trigger) || strcmp(j->ref, newer->ref) || j->reap_timer ||
            j->cancel_requested)
            continue;
        kiln__serve_log("build %s (%s): %s", j->id, j->trigger, why);
        j->cancel_requested = true;
        if (j->b)
            kiln__build_cancel_all(j->b, why);
    }
}

/* ---- sub-builds' directories -------------------------------------------- */

static bool tree_has(const kiln__build *b, const char *id)
{
    if (!strcmp(b->id, id))
        return true;
    for (size_t o = 0; o < b->n_total; o++)
        for (size_t i = 0; i < b->steps[o].n_children; i++)
            if (tree_has(b->steps[o].children[i], id))
                return true;
    return false;
}

void kiln__serve_subbuild_started(kiln__server *srv, const char *id)
{
    /* A sub-build's logs and records are under DATA/builds/SUB (the sinks
     * know builds, not trees): its top build lists it in
     * DATA/builds/TOP/subbuilds, at once, so that retention removes them
     * together even after a crash. */
    for (kiln__job *j = srv->running; j; j = j->next) {
        if (!j->b || !j->dir || !tree_has(j->b, id))
            continue;
        char *path = kiln__xasprintf("%s/subbuilds", j->dir);
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f, "%s\n", id);
            fclose(f);
        } else {
            kiln__serve_log("warning: cannot write %s: %s", path, strerror(errno));
        }
        free(path);
        return;
    }
}

typedef struct cleaning {
    uv_work_t work;
    kiln__server *srv;
    char *builds_dir;            /* DATA/builds */
    char **dirs;
    size_t n;
} cleaning;

/* A build id as a directory name: nothing that leaves DATA/builds. */
static bool plain_id(const char *id)
{
    return *id && strlen(id) < 64 && strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(id);
}

/* Worker thread: a build's directory, and those of the sub-builds it
 * lists (DATA/builds/ID/subbuilds). */
static void clean_work(uv_work_t *w)
{
    cleaning *c = w->data;
    for (size_t i = 0; i < c->n; i++) {
        char *list = kiln__xasprintf("%s/subbuilds", c->dirs[i]);
        FILE *f = fopen(list, "r");
        char line[128];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            if (!plain_id(line))
                continue;
            char *sub = kiln__xasprintf("%s/%s", c->builds_dir, line);
            const char *rm[] = {"rm", "-rf", "--", sub, NULL};
            kiln__run_capture(rm, NULL, NULL);
            free(sub);
        }
        if (f)
            fclose(f);
        free(list);
        const char *rm[] = {"rm", "-rf", "--", c->dirs[i], NULL};
        kiln__run_capture(rm, NULL, NULL);
    }
}

static void clean_done(uv_work_t *w, int status)
{
    (void)status;
    cleaning *c = w->data;
    kiln__server *srv = c->srv;
    for (size_t i = 0; i < c->n; i++)
        free(c->dirs[i]);
    free(c->dirs);
    free(c->builds_dir);
    free(c);
    srv->n_cleaning--;
    maybe_exit(srv);
}

void kiln__serve_retention(kiln__server *srv)
{
    /* The serve clock: a test moves it with KILN_TEST_CLOCK. */
    int64_t now_us = kiln__serve_clock() * 1000000;
    /* Deliveries are only remembered to ignore a redelivery, which GitHub
     * allows for 3 days (GitHub Enterprise Server: 7): they are kept
     * KILN__DELIVERY_DAYS, or --keep-days when longer. */
    long ddays = srv->keep_days > KILN__DELIVERY_DAYS ? srv->keep_days : KILN__DELIVERY_DAYS;
    int forgot = kiln__db_forget_deliveries(srv, now_us - (int64_t)ddays * 86400 * 1000000);
    if (forgot > 0)
        kiln__serve_log("retention: %d webhook deliver%s older than %ld days forgotten", forgot,
                        forgot == 1 ? "y" : "ies", ddays);
    if (!srv->keep_builds && !srv->keep_days)
        return;
    int64_t before = srv->keep_days ? now_us - (int64_t)srv->keep_days * 86400 * 1000000 : 0;
    char **ids;
    size_t n;
    if (kiln__db_expired(srv, srv->keep_builds, before, &ids, &n) != 0 || !n) {
        free(ids);
        return;
    }
    kiln__serve_log("retention: %zu finished build%s removed (--keep-builds %ld, --keep-days %ld)", n,
                    n == 1 ? "" : "s", srv->keep_builds, srv->keep_days);
    cleaning *c = kiln__xcalloc(1, sizeof *c);
    c->srv = srv;
    c->builds_dir = kiln__xasprintf("%s/builds", srv->data_dir);
    c->dirs = ids;
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        char *dir = kiln__xasprintf("%s/builds/%s", srv->data_dir, ids[i]);
        free(ids[i]);
        ids[i] = dir;
    }
    c->work.data = c;
    srv->n_cleaning++;
    uv_queue_work(srv->loop, &c->work, clean_work, clean_done);
}

/* ---- stopping --------------------------------------------------------- */

static void close_cb_none(uv_handle_t *h)
{
    (void)h;
}

static void maybe_exit(kiln__server *srv)
{
    if (!srv->stopping || srv->running || srv->n_cleaning)
        return;
    if (uv_is_closing((uv_handle_t *)&srv->grace_timer))
        return;
    kiln__serve_log("no build is running; exiting");
    uv_close((uv_handle_t *)&srv->grace_timer, close_cb_none);
    uv_close((uv_handle_t *)&srv->sig_term, close_cb_none);
    uv_close((uv_handle_t *)&srv->sig_int, close_cb_none);
    kiln__http_dispose(srv);
    kiln__sched_stop(srv);
    uv_stop(srv->loop);
}

static void cancel_running(kiln__server *srv, const char *why)
{
    for (kiln__job *j = srv->running; j; j = j->next) {
        if (j->reap_timer)
            continue;
        j->cancel_requested = true;
        if (j->b && j->b->phase != KILN__PHASE_DONE)
            kiln__build_cancel_all(j->b, why);
    }
}

static void on_grace(uv_timer_t *t)
{
    kiln__server *srv = t->data;
    srv->grace_over = true;
    kiln__serve_log("grace period over: cancelling %d running build%s", srv->n_running,
                    srv->n_running == 1 ? "" : "s");
    cancel_running(srv, "kiln serve stopped");
}

static void on_signal(uv_signal_t *h, int signum)
{
    kiln__server *srv = h->data;
    if (srv->stopping) {
        if (!srv->grace_over) {
            kiln__serve_log("second signal: cancelling the running builds now");
            uv_timer_stop(&srv->grace_timer);
            on_grace(&srv->grace_timer);
        } else {
            srv->eng.signal_count = 2; /* no more kill grace either */
            cancel_running(srv, "kiln serve stopped");
        }
        return;
    }
    srv->stopping = true;
    char g[32];
    kiln__format_duration(srv->grace_ms * 1000, g, sizeof g);
    kiln__serve_log("%s: taking no more work; %d running build%s may go on for %s", strsignal(signum),
                    srv->n_running, srv->n_running == 1 ? "" : "s", g);
    kiln__http_stop_listening(srv);
    uv_timer_start(&srv->grace_timer, on_grace, (uint64_t)srv->grace_ms, 0);
    maybe_exit(srv);
}

/* ---- main ------------------------------------------------------------- */

/* --executor: its options are checked once, here, and it is opened and
 * closed once with an id of its own, so that an engine that does not
 * answer stops kiln serve before it listens (exit 2, as kiln run), and
 * what a killed kiln serve left on the engine is removed at once. Every
 * build then opens an instance of its own. */
static int check_executor(kiln__server *srv, const char *spec)
{
    if (!spec || !*spec)
        return 0;
    kiln__buf err = KILN__BUF_INIT;
    int rc = kiln__executor_choose(&srv->eng, spec, &err);
    if (rc) {
        fprintf(stderr, "kiln: serve: %s\n", err.buf ? err.buf : "bad --executor");
        kiln__buf_release(&err);
        return rc;
    }
    if (!srv->eng.exec_plugin) /* local */
        return 0;
    char id[40];
    kiln__new_build_id(id, sizeof id);
    kiln__exec_inst *inst = NULL;
    rc = kiln__executor_open(&srv->eng, id, true, &inst, &err);
    if (rc) {
        /* The name only: the options may hold a secret (auth=). */
        fprintf(stderr, "kiln: serve: --executor %s: %s\n", srv->eng.exec_plugin->name,
                err.buf ? err.buf : kiln__strerror(rc));
        kiln__buf_release(&err);
        return rc;
    }
    kiln__buf_release(&err);
    const char *line;
    for (size_t i = 0; (line = kiln__exec_inst_said(inst, i)); i++)
        kiln__serve_log("%s", line);
    kiln__exec_inst_close_sync(&srv->eng, inst);
    kiln__serve_log("executor %s: ready; every build runs its steps with an image through an instance of its own",
                    srv->eng.exec_plugin->name);
    return 0;
}

int kiln__serve_run(const kiln__serve_opts *o)
{
    int max_builds = o->max_builds, max_parallel = o->max_parallel;
    int64_t kill_grace_ms = o->kill_grace_ms;
    const char *triggers = o->triggers, *data = o->data, *listen = o->listen;
    int rc;
    /* Fetches wait on libuv's thread pool (one at a time, the others
     * queued behind a mutex): give the pool room for them besides the
     * file sink's writes, unless the user chose its size. */
    char pool[16];
    snprintf(pool, sizeof pool, "%d", max_builds + 4 < 128 ? max_builds + 4 : 128);
    setenv("UV_THREADPOOL_SIZE", pool, 0);
    kiln__server *srv = kiln__xcalloc(1, sizeof *srv);
    srv->max_builds = max_builds;
    srv->grace_ms = o->grace_ms;
    srv->keep_builds = o->keep_builds;
    srv->keep_days = o->keep_days;
    srv->base_path = kiln__xstrdup(o->base_path ? o->base_path : "");
    while (*srv->base_path && srv->base_path[strlen(srv->base_path) - 1] == '/')
        srv->base_path[strlen(srv->base_path) - 1] = '\0';
    kiln__diag d;
    kiln__diag_init(&d);
    rc = kiln__triggers_load(&srv->triggers, triggers, &d);
    srv->triggers_loaded = true;
    if (rc == 0 && d.errors == 0)
        kiln__sched_check(&srv->triggers, &d);
    if (d.text.len)
        fputs(d.text.buf, stderr);
    int errors = d.errors + (rc ? 1 : 0);
    kiln__diag_release(&d);
    char abs[PATH_MAX];
    rc = 0;
    if (errors) {
        fprintf(stderr, "kiln: %s: %d error%s\n", triggers, errors, errors == 1 ? "" : "s");
        rc = 2;
    } else if (kiln__mkdir_p(data) != 0 || !realpath(data, abs)) {
        fprintf(stderr, "kiln: serve: --data '%s': %s\n", data, strerror(errno));
        rc = 2;
    }
    if (!rc && o->token_file && !(srv->token = kiln__read_secret_file(o->token_file, "--token-file")))
        rc = 2;
    if (!rc && o->secret_file &&
        !(srv->webhook_secret = kiln__read_secret_file(o->secret_file, "--webhook-secret-file")))
        rc = 2;
    if (!rc && o->repos) {
        char rabs[PATH_MAX];
        if (!realpath(o->repos, rabs)) {
            fprintf(stderr, "kiln: serve: --repos '%s': %s\n", o->repos, strerror(errno));
            rc = 2;
        } else {
            srv->repos_dir = kiln__xstrdup(rabs);
        }
    }
    kiln__buf err = KILN__BUF_INIT;
    bool engine_up = false;
    if (!rc) {
        srv->data_dir = kiln__xstrdup(abs);
        char *p = kiln__xasprintf("%s/builds", abs);
        mkdir(p, 0777);
        free(p);
        p = kiln__xasprintf("%s/mirrors", abs);
        mkdir(p, 0777);
        free(p);
        p = kiln__xasprintf("%s/kiln.db", abs);
        rc = kiln__db_open(srv, p, &err) ? 1 : 0;
        if (rc)
            fprintf(stderr, "kiln: serve: %s\n", err.buf);
        free(p);
    }
    if (!rc) {
        if (kiln__engine_init(&srv->eng) != 0) {
            fprintf(stderr, "kiln: cannot start the event loop\n");
            rc = 1;
        } else {
            engine_up = true;
        }
    }
    kiln__ydoc sinkdoc;
    memset(&sinkdoc, 0, sizeof sinkdoc);
    if (!rc) {
        srv->loop = srv->eng.loop;
        kiln__registry_init(&srv->eng.reg, o->plugin_paths, o->n_plugin_paths);
        srv->eng.reg.api = &kiln__host_api;
        if (o->dry_run) {
            /* As kiln trigger --dry-run: deploys recorded, plans per build. */
            srv->eng.dry_run = true;
            srv->eng.reg.mock_deploys = true;
            srv->eng.plan_dir = kiln__xasprintf("%s/plans", srv->data_dir);
            kiln__mkdir_p(srv->eng.plan_dir);
        }
        if (max_parallel) {
            srv->eng.max_parallel = max_parallel;
            srv->eng.max_parallel_forced = true;
        }
        if (kill_grace_ms)
            srv->eng.kill_grace_ms = kill_grace_ms;
        if (check_executor(srv, o->executor) != 0)
            rc = 2;
    }
    if (!rc) {
        /* Sinks: the console (build and step ends; output with --verbose),
         * and one directory of step logs per build. */
        kiln__ynode *m = kiln__ydoc_alloc(&sinkdoc, sizeof *m);
        const char *ckv[] = {"quiet", o->verbose ? "false" : "true", "color", "never"};
        char *bdir = kiln__xasprintf("%s/builds", srv->data_dir);
        const char *fkv[] = {"dir", bdir, "per_build", "logs"};
        for (int s = 0; s < 2 && !rc; s++) {
            const char **kv = s ? fkv : ckv;
            m = kiln__ydoc_alloc(&sinkdoc, sizeof *m);
            m->kind = KILN__Y_MAP;
            m->items = kiln__ydoc_alloc(&sinkdoc, 5 * sizeof *m->items);
            for (int i = 0; i < 4; i++) {
                kiln__ynode *n = kiln__ydoc_alloc(&sinkdoc, sizeof *n);
                n->kind = KILN__Y_SCALAR;
                n->quoted = true;
                char *v = kiln__ydoc_alloc(&sinkdoc, strlen(kv[i]) + 1);
                memcpy(v, kv[i], strlen(kv[i]) + 1);
                n->value = v;
                n->len = strlen(v);
                m->items[i] = n;
            }
            m->n = 2;
            if (kiln__sink_add(&srv->eng, s ? "file" : "console", m, "kiln serve", false, &err) != 0) {
                fprintf(stderr, "kiln: serve: %s\n", err.buf);
                rc = 1;
            }
        }
        free(bdir);
        /* Remote sinks (--sink): one for the server's life, spooling in
         * DATA/spool, so what a stopped or killed server left there is sent
         * now, at startup, before any build's records. */
        char *spool = kiln__xasprintf("%s/spool", srv->data_dir);
        kiln__ship_set_spool_root(spool);
        free(spool);
        if (o->sink_grace_ms >= 0)
            kiln__ship_set_grace_ms(o->sink_grace_ms);
        for (size_t i = 0; i < o->n_sinks && !rc; i++) {
            if (kiln__cli_add_sink(&srv->eng, &sinkdoc, o->sinks[i], &err) != 0) {
                fprintf(stderr, "kiln: serve: %s\n", err.buf);
                rc = 2;
            }
        }
    }
    if (!rc)
        kiln__logs_init(srv);
    if (!rc && kiln__http_listen(srv, listen, &err) != 0) {
        fprintf(stderr, "kiln: serve: %s\n", err.buf);
        rc = 2;
    }
    kiln__buf_release(&err);
    if (!rc) {
        uv_mutex_init(&srv->fetch_mutex);
        uv_timer_init(srv->loop, &srv->grace_timer);
        srv->grace_timer.data = srv;
        uv_signal_init(srv->loop, &srv->sig_term);
        uv_signal_init(srv->loop, &srv->sig_int);
        srv->sig_term.data = srv->sig_int.data = srv;
        uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
        uv_signal_start(&srv->sig_int, on_signal, SIGINT);
        int cut = kiln__db_cut_off(srv);
        if (cut)
            kiln__serve_log("%d build%s cut off by the last stop: INTERNAL_ERROR", cut, cut == 1 ? " was" : "s were");
        kiln__job *q = kiln__db_queued(srv);
        int nq = 0;
        for (kiln__job *j = q; j; j = j->next, nq++)
            j->srv = srv, srv->queue_tail = j;
        srv->queue_head = q;
        if (nq)
            kiln__serve_log("%d queued build%s from the history", nq, nq == 1 ? "" : "s");
        kiln__serve_retention(srv);
        pump(srv);
        kiln__sched_start(srv);
        fflush(stdout);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        uv_mutex_destroy(&srv->fetch_mutex);
        for (kiln__job *j = srv->queue_head, *next; j; j = next) {
            next = j->next;
            job_free(j);
        }
        kiln__serve_log("stopped");
    }
    if (srv->http)
        kiln__http_dispose(srv);
    kiln__logs_dispose(srv);
    if (engine_up)
        kiln__engine_release(&srv->eng);
    kiln__http_free(srv);
    kiln__logs_free(srv);
    kiln__ydoc_free(&sinkdoc);
    kiln__db_close(srv);
    if (srv->triggers_loaded)
        kiln__triggers_free(&srv->triggers);
    free(srv->data_dir);
    free(srv->token);
    free(srv->webhook_secret);
    free(srv->base_path);
    free(srv->repos_dir);
    kiln__sched_free(srv);
    free(srv);
    return rc;
}
