/* SPDX-License-Identifier: MIT */
/*
 * kiln serve: one process, one libuv loop, the engine of `kiln run`, an
 * HTTP server (libh2o's libuv flavour) and a build history in SQLite.
 *
 *   serve.c        options, the queue, a build's life (fetch into the
 *                  repository's mirror, checkout, load, run, record), SIGTERM
 *   serve_db.c     the history: builds (QUEUED ... SUCCESS) and GitHub
 *                  deliveries, in DATA/kiln.db (WAL)
 *   serve_http.c   the JSON API and POST /hooks/github
 *   serve_sched.c  the triggers' cron schedules (cron.h), an injectable clock
 *   builds_client.c  kiln builds list|show|cancel, kiln trigger --server
 *
 * A build is QUEUED (persisted) until one of the --max-builds slots is
 * free, then WORKING: its commit is fetched into DATA/mirrors/NAME.git on a
 * worker thread (one fetch at a time per server), cloned with --shared into
 * DATA/builds/ID/src, then loaded and run on the engine like a build of
 * `kiln trigger` (trigger_run.h). Its step logs go to DATA/builds/ID/logs/,
 * its report to DATA/builds/ID/report.json.
 */
#ifndef KILN_SERVE_H
#define KILN_SERVE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cJSON.h>

#include "buf.h"
#include "engine.h"
#include "triggers.h"

typedef struct kiln__server kiln__server;
typedef struct sqlite3 sqlite3;

/* A build request, queued or running. */
typedef struct kiln__job {
    struct kiln__job *next;
    kiln__server *srv;
    int64_t seq;                 /* the history's row: arrival order */
    char id[40];
    char *trigger;
    char *repo;                  /* where the commit is fetched from */
    char *ref;                   /* refs/heads/B, refs/tags/T, or "" */
    char *commit;                /* the commit, or NULL: what ref points at */
    char **substs;               /* "K=V" asked for (API), owned */
    size_t n_substs;

    /* while WORKING */
    bool cancel_requested;
    bool preparing;              /* on a worker thread: fetch, checkout */
    uv_work_t work;
    int prep_rc;
    kiln__buf prep_err;
    char *dir;                   /* DATA/builds/ID */
    char *mirror;
    kiln__pipeline p;
    kiln__subst *subst;
    kiln__secrets secrets;
    bool loaded;
    kiln__build *b;
    uv_timer_t *reap_timer;      /* waits for the build's processes, then frees */
    bool exec_closing;           /* its executor instance is being closed */
    bool exec_closed;            /* ... and is: the build can go */
    uint64_t exec_close_t0;      /* uv_hrtime() when its close began */
    bool exec_asked_twice;       /* close() called again: it took too long */
} kiln__job;

struct kiln__server {
    kiln__engine eng;
    uv_loop_t *loop;
    kiln__triggers triggers;
    bool triggers_loaded;
    char *data_dir;              /* absolute */
    char *token;                 /* --token-file, or NULL: writes refused */
    char *webhook_secret;        /* --webhook-secret-file, or NULL: hooks refused */
    char *repos_dir;             /* --repos: where repositories named by name are */
    void *sched;                 /* serve_sched.c's state */
    int max_builds;
    int64_t grace_ms;
    long keep_builds, keep_days;  /* retention; 0: keep */
    int n_cleaning;              /* directory removals under way */
    sqlite3 *db;

    kiln__job *queue_head, *queue_tail; /* QUEUED, arrival order */
    kiln__job *running;          /* WORKING (preparing or running) */
    int n_running;
    uv_mutex_t fetch_mutex;      /* one git fetch into the mirrors at a time */

    bool stopping;
    bool grace_over;
    uv_signal_t sig_term, sig_int;
    uv_timer_t grace_timer;
    void *http;                  /* serve_http.c's state */
    void *logs;                  /* serve_logs.c's record store and followers */
    char *base_path;             /* --base-path: "" or "/prefix" (pages behind a proxy) */
};

/* What kiln serve was asked (cmd_serve.c parses it). */
typedef struct kiln__serve_opts {
    const char *triggers, *listen, *data, *token_file, *secret_file, *repos;
    const char *base_path;         /* --base-path, or NULL */
    const char *executor;          /* --executor NAME[:k=v,...] or KILN_EXECUTOR, or NULL */
    const char **plugin_paths;
    size_t n_plugin_paths;
    const char **sinks;            /* --sink NAME[:K=V,...]: remote sinks spool in DATA/spool */
    size_t n_sinks;
    int64_t sink_grace_ms;         /* --sink-grace, or -1 */
    int max_builds, max_parallel;
    int64_t grace_ms, kill_grace_ms;
    long keep_builds, keep_days;   /* 0: keep all */
    bool verbose, dry_run;
} kiln__serve_opts;

/* cmd_serve.c */
int kiln__serve_main(int argc, char **argv);
/* A file's text without trailing blanks, or NULL (said on stderr). */
char *kiln__read_secret_file(const char *path, const char *what);

/* serve.c */
int kiln__serve_run(const kiln__serve_opts *o);
/* A job for trigger t (checked by the caller), QUEUED now; takes none of
 * the arguments. Returns the job (its id is the build's), or NULL with
 * why. source: "api", "github", ... */
kiln__job *kiln__serve_submit(kiln__server *srv, const kiln__trigger *t, const char *repo,
                              const char *ref, const char *commit, const char *const *substs,
                              size_t n_substs, const char *source, kiln__buf *why);
/* Cancel a QUEUED or WORKING build. Returns 0, KILN_ENOTFOUND (no such
 * build), or KILN_EINVAL (it has ended already). */
int kiln__serve_cancel(kiln__server *srv, const char *id);
/* A new build of what build id built: its trigger, repository, ref,
 * commit (when it had one) and asked-for substitutions. Returns the job,
 * or NULL with why and *status (404: no such build, 409: its trigger is
 * gone, 503: stopping). */
kiln__job *kiln__serve_retry(kiln__server *srv, const char *id, int *status, kiln__buf *why);
/* How long webhook deliveries are remembered at least (days). */
#define KILN__DELIVERY_DAYS 8
/* Retention: remove the finished builds --keep-builds/--keep-days let go,
 * rows then directories (on a worker thread, with the directories of their
 * sub-builds), and the webhook deliveries older than KILN__DELIVERY_DAYS
 * (or --keep-days when longer). "Now" is the serve clock. Runs at startup,
 * after each build and each hour of the serve clock. */
void kiln__serve_retention(kiln__server *srv);
/* The tap saw sub-build id start: its top build lists it (retention
 * removes its directory with the top build's). */
void kiln__serve_subbuild_started(kiln__server *srv, const char *id);
/* The repository a trigger's `repo` names, as a path or URL kiln can fetch
 * from (relative paths are relative to the triggers file), or NULL when it
 * names a repository only by name. Caller frees. */
char *kiln__serve_trigger_source(const kiln__server *srv, const kiln__trigger *t);
/* One line on the server's stderr, with a timestamp. */
void kiln__serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* serve_db.c: every call on the loop thread. */
int kiln__db_open(kiln__server *srv, const char *path, kiln__buf *err);
void kiln__db_close(kiln__server *srv);
int kiln__db_add(kiln__server *srv, kiln__job *j, const char *source);
void kiln__db_started(kiln__server *srv, const kiln__job *j);
void kiln__db_commit(kiln__server *srv, const kiln__job *j, const char *commit);
void kiln__db_finished(kiln__server *srv, const char *id, const char *status, const char *reason,
                       const char *report_json);
/* WORKING rows of a server that died: INTERNAL_ERROR. Returns how many. */
int kiln__db_cut_off(kiln__server *srv);
/* The QUEUED rows, oldest first, as jobs. */
kiln__job *kiln__db_queued(kiln__server *srv);
/* The build id as a job (not queued), or NULL. */
kiln__job *kiln__db_job(kiln__server *srv, const char *id);
/* Remove from the history the finished builds past the newest keep (0:
 * no limit) or finished before before_us (0: no limit); *ids (n, owned)
 * are the removed ones. */
int kiln__db_expired(kiln__server *srv, long keep, int64_t before_us, char ***ids, size_t *n);
const char *kiln__db_status(kiln__server *srv, const char *id, char *buf, size_t cap);
/* GET /api/builds: newest first; any filter may be NULL; cursor 0: from the
 * newest. Returns {"builds": [...], "nextCursor": "N"|absent}. */
cJSON *kiln__db_list(kiln__server *srv, const char *status, const char *trigger,
                     const char *branch, int64_t cursor, int limit);
/* One build with its steps, or NULL. */
cJSON *kiln__db_get(kiln__server *srv, const char *id);
/* Remember a webhook delivery id: 1 when it was seen before, 0 when new. */
int kiln__db_delivery_seen(kiln__server *srv, const char *delivery, const char *event);
/* Forget the deliveries received before before_us. Returns how many, or a
 * negative KILN_E*. */
int kiln__db_forget_deliveries(kiln__server *srv, int64_t before_us);

/* A scheduled trigger's last run (UTC seconds), or -1: never. */
int64_t kiln__db_sched_last(kiln__server *srv, const char *trigger);
void kiln__db_sched_set(kiln__server *srv, const char *trigger, int64_t last_run);

/* Prometheus text: builds by status, deliveries remembered. */
void kiln__db_metrics(kiln__server *srv, kiln__buf *out);

/* serve_sched.c: the triggers' schedules. */
/* Every scheduled trigger names one branch or tag (a literal such as
 * ^main$): each one that does not is an error at its position in d.
 * Returns how many. */
int kiln__sched_check(const kiln__triggers *ts, kiln__diag *d);
int kiln__sched_start(kiln__server *srv);
void kiln__sched_stop(kiln__server *srv);
void kiln__sched_free(kiln__server *srv);
/* The next run of trigger name (UTC seconds), or -1. */
int64_t kiln__sched_next(const kiln__server *srv, const char *name);
/* Now, in UTC seconds: time(), or the test clock (KILN_TEST_CLOCK). */
int64_t kiln__serve_clock(void);

/* serve_http.c */
int kiln__http_listen(kiln__server *srv, const char *listen, kiln__buf *err);
void kiln__http_stop_listening(kiln__server *srv);
/* Stop listening, close h2o's handles (the loop finishes closing them). */
void kiln__http_dispose(kiln__server *srv);
/* After the loop has run dry. */
void kiln__http_free(kiln__server *srv);

/* builds_client.c: kiln builds ..., kiln trigger --server URL NAME */
int kiln__builds_main(int argc, char **argv);
int kiln__trigger_remote_main(int argc, char **argv);
/* cmd_hook.c: kiln hook install --server URL REPO.git, kiln hook post */
int kiln__hook_remote_main(int argc, char **argv);

#endif /* KILN_SERVE_H */
