/* SPDX-License-Identifier: MIT */
/*
 * The engine: one libuv loop that runs a build's steps as a DAG.
 *
 * A kiln__engine owns the loop, the plugin registry, the log sinks and the
 * executor; a kiln__build is one run of one pipeline on it (a sub-build is
 * another kiln__build on the same engine). Steps move QUEUED -> WORKING ->
 * SUCCESS | FAILURE | TIMEOUT | CANCELLED; a step starts when every step it
 * waits for has ended successfully (or failed with allowFailure), at most
 * max_parallel at a time, in pipeline order among the ready ones.
 *
 * Plugins report the end of a step with step_done(); the engine reacts on
 * the next turn of the loop (never inside the plugin's call), so a plugin
 * may call step_done() from within start().
 */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

/* Steps running at once when neither --max-parallel nor options.maxParallel
 * says: Cloud Build starts every ready step, so a file written for it (a
 * server step, a step polling it, ...) must not stall here; 32 covers the
 * widest fan-outs of the Cloud Build corpus while keeping a graph of
 * thousands of independent steps from forking them all at once. */
#define KILN__DEFAULT_MAX_PARALLEL 32

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config_map.h"
#include "mask.h"
#include "secrets.h"
#include "internal.h"
#include "pipeline.h"
#include "plugin_loader.h"
#include "subst.h"

typedef struct kiln__engine kiln__engine;
typedef struct kiln__build kiln__build;
typedef struct kiln_step kiln__rstep;
typedef struct kiln__framer kiln__framer;

/* ---- the executor seam ---------------------------------------------- */

/* How a step's processes run. The local executor runs them on this machine
 * in their own process group; a Kubernetes executor would run them as Pods
 * and stream their logs back into the same framers.
 *
 * Every executor promises that nothing it started outlives kiln, however
 * kiln ends: the local one registers each group with the watchdog
 * (watchdog.h); one that runs things elsewhere labels them with the build id
 * and its owner (host, kiln's pid and start time) and, at its first spawn,
 * removes what an owner that is no longer running left behind. */
typedef struct kiln__executor {
    const char *name;
    int (*spawn)(kiln__rstep *step, const kiln_spawn_opts *opts, kiln_exit_cb cb, void *data,
                 kiln_proc **out);
    int (*signal)(kiln_proc *proc, int signum);
    int (*pid)(const kiln_proc *proc);
    /* SIGTERM to the group, then SIGKILL after the grace period. The exit
     * callback still fires. */
    void (*terminate)(kiln_proc *proc);
    /* The step is over: no more callbacks; kill whatever is left. */
    void (*abandon)(kiln_proc *proc);
    /* Stop and resume reading output (backpressure). */
    void (*pause)(kiln_proc *proc);
    void (*resume)(kiln_proc *proc);
} kiln__executor;

extern const kiln__executor kiln__local_executor;
/* Steps' processes under an executor plugin (exec_plugin.c). */
extern const kiln__executor kiln__plugin_executor;

/* Every executor's kiln_proc starts with this, so that the engine reaches
 * the executor of any process (a step in an image under the container
 * executor, a plugin step without one on this machine, in the same build). */
typedef struct kiln__proc_base {
    const kiln__executor *exec;
} kiln__proc_base;
#define KILN__PROC_EXEC(p) (((const kiln__proc_base *)(const void *)(p))->exec)

/* The executor a step's processes go through: the chosen executor plugin
 * when the step has an image (or the plugin runs everything), else local. */
const kiln__executor *kiln__step_executor(const kiln__rstep *s);

/* An executor plugin instance: a plugin_data of its own from the plugin's
 * init(), open()ed with one build id, close()d when that build has ended,
 * then destroy()ed. A top build has one (its sub-builds use it); kiln run
 * opens one per run (eng->exec_inst), kiln serve one per build
 * (build->exec_inst), several at once. */
typedef struct kiln__exec_inst kiln__exec_inst;

/* --executor NAME[:key=value,...] (or KILN_EXECUTOR): load the plugin and
 * check the options against its schema, nothing opened. "local" is built
 * in (eng->exec_plugin stays NULL). Errors: one line in err, a negative
 * KILN_E*. */
int kiln__executor_choose(kiln__engine *eng, const char *spec, kiln__buf *err);
/* kiln run: choose, then open the run's instance (eng->exec_inst) for
 * build_id. What open() says goes to stderr as before; an error return
 * means open() said why. */
struct kiln__ydoc;
int kiln__executor_select(kiln__engine *eng, const char *spec, const char *build_id, kiln__buf *err);
/* A new instance of the chosen executor for build_id: init(), then open()
 * (which may block). With capture, the lines the plugin logs meanwhile are
 * kept: on success kiln__exec_inst_attach() puts them in the build's log;
 * on failure they are appended to why, joined by "; ". */
int kiln__executor_open(kiln__engine *eng, const char *build_id, bool capture, kiln__exec_inst **out,
                        kiln__buf *why);
/* Line i of what a captured open() said (not yet attached), or NULL. */
const char *kiln__exec_inst_said(const kiln__exec_inst *inst, size_t i);
/* The started top build b runs its steps (and sub-builds' steps) through
 * inst; the instance's log lines go to b's log from now on. */
void kiln__exec_inst_attach(kiln__exec_inst *inst, kiln__build *b);
/* b has ended and none of its processes is watched any more: close inst
 * (remove what it made), then done(arg), on a later turn of the loop or
 * inside. inst is destroyed once close() is over and none of its requests
 * is in flight; b->exec_inst is cleared before done() is called. */
void kiln__exec_inst_close(kiln__exec_inst *inst, void (*done)(void *), void *arg);
/* The same, running the loop until it is over (kiln run, serve's check at
 * startup): if the loop runs dry first, close() is called again. */
void kiln__exec_inst_close_sync(kiln__engine *eng, kiln__exec_inst *inst);
/* kiln run: the build ended; close the run's instance. Also called from
 * kiln__engine_release(), which closes any instance still open. */
void kiln__executor_close(kiln__engine *eng);
/* kiln__engine_release(), after the HTTP client's shutdown: destroy the
 * instances whose requests never answered. */
void kiln__executor_free_all(kiln__engine *eng);
/* host_api.c: a request of an instance (http_request_obj on its handle)
 * was started / has delivered its callback. */
void kiln__exec_inst_count_http(kiln__exec_inst *inst);
void kiln__exec_inst_http_done(kiln__exec_inst *inst);
/* host_api.c: an instance's log line while its open() is captured.
 * Returns true when it was taken. */
bool kiln__exec_inst_capture(kiln__exec_inst *inst, kiln_log_level level, const char *text);
/* exec_plugin.c: the host entries of ABI 1.6. */
int kiln__exec_output(kiln_exec *x, kiln_stream stream, const void *buf, size_t len);
void kiln__exec_exited(kiln_exec *x, int status, const char *reason);
void kiln__exec_set_data(kiln_exec *x, void *data);
void *kiln__exec_get_data(const kiln_exec *x);
kiln_plugin_handle *kiln__exec_handle(const kiln_exec *x);
/* The environment of a spawn: the step's (or opts->env) with extra_env
 * over it. The strings are borrowed; free only the array. */
char **kiln__spawn_env(kiln__rstep *step, const kiln_spawn_opts *opts);

/* ---- log framing ---------------------------------------------------- */

/* Turns a byte stream into line records and hands them to the sinks. */
struct kiln__framer {
    kiln__rstep *step;
    kiln_stream stream;
    char *buf;
    size_t len, cap;
    bool continued;            /* the next record continues a partial line */
    uv_timer_t *partial_timer; /* flushes a partial line after a delay */
    kiln_line_cb on_line;
    void *line_data;
    kiln__mask_stream mask;    /* secrets split across early-flushed pieces */
    bool premasked;
    bool chatty;               /* a read filled the buffer: it grew to 256 KiB */
};

void kiln__framer_init(kiln__framer *f, kiln__rstep *step, kiln_stream stream);
/* Append bytes: complete lines go out now; a trailing partial line waits
 * for its newline or the flush delay. */
void kiln__framer_feed(kiln__framer *f, const char *data, size_t len);
/* For read callbacks that fill the buffer directly. */
void kiln__framer_space(kiln__framer *f, char **base, size_t *len);
void kiln__framer_commit(kiln__framer *f, size_t n);
/* Deliver whatever is left (end of stream) and release the buffer. */
void kiln__framer_finish(kiln__framer *f);

/* ---- sinks ---------------------------------------------------------- */

struct kiln_sink {
    struct kiln_object obj;
    kiln__engine *eng;
    kiln__plugin *plugin;
    kiln__config *cfg;
    void *data;
    bool paused;
    bool closed;
    bool required;               /* a loss fails the build (--sink NAME:required=true) */
    bool warned;                 /* the one warning about a loss was printed */
    int index;                   /* position in eng->sinks */
    char *broken;                /* open() failed: why; every record counts as lost */
};

/* Open a sink plugin NAME with options given as a mapping node (or NULL).
 * When open() fails, a required sink is an error; any other is kept as
 * broken: the build runs and what it would have received is counted lost. */
int kiln__sink_add(kiln__engine *eng, const char *name, const kiln__ynode *with, const char *origin,
                   bool required, kiln__buf *err);
void kiln__sinks_write(kiln__engine *eng, const kiln_log_batch *b);

/* An in-process observer of every batch and event, called before the
 * sinks on the loop thread (kiln serve's record store, serve_logs.c).
 * What it receives is borrowed for the call; it cannot push back. */
typedef struct kiln__tap {
    void (*write)(void *data, const kiln_log_batch *b);
    void (*event)(void *data, const kiln_event *ev);
    void *data;
} kiln__tap;
void kiln__sinks_event(kiln__engine *eng, const kiln_event *ev);
/* The build's steps ended: kill the processes they left outside their
 * process groups, found by their KILN_PROCESS_TAG (strays.h), and say so. */
void kiln__strays_end_build(kiln__build *b);
/* A build-level or step-level SYSTEM message to every sink. */
void kiln__sys_log(kiln__build *b, kiln__rstep *step, kiln_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kiln__sinks_close(kiln__engine *eng);

/* ---- steps and builds ----------------------------------------------- */

typedef enum kiln__cancel_why { KILN__RUNNING = 0, KILN__CANCEL, KILN__TIMEOUT } kiln__cancel_why;

typedef struct kiln__kv {
    char *key, *value;
} kiln__kv;

struct kiln_step {
    struct kiln_object obj;
    kiln__build *b;
    const kiln__step *def;
    int ordinal;                 /* index into b->steps (main, then finally) */
    kiln__plugin *plugin;
    kiln__config *cfg;
    void *data;                  /* the plugin's slot */
    const char *image;           /* Cloud Build name:, resolved */

    kiln_status status;
    bool allowed_failure;        /* failed, but allowFailure/allowExitCodes let the build go on */
    bool skipped;                /* not part of --only */
    int exit_code;               /* -1 when none */
    char *reason;
    int attempts;
    int64_t start_us, end_us;

    int *deps;                   /* ordinals this step waits for (reduced) */
    size_t n_deps;
    int *rdeps;                  /* ordinals waiting for this one */
    size_t n_rdeps, cap_rdeps;
    size_t n_pending;            /* deps not yet ended */

    /* while WORKING */
    bool done_called;            /* plugin called step_done */
    bool forced;                 /* the host ended it for the plugin (force_timer) */
    int done_status;
    char *done_reason;
    kiln__cancel_why cancelling;
    uv_timer_t *timeout_timer;
    uv_timer_t *force_timer;
    uv_timer_t *retry_timer;
    kiln_proc **procs;
    size_t n_procs, cap_procs;
    kiln_timer **timers;
    size_t n_timers, cap_timers;
    struct kiln__http_track **https; /* the step's requests in flight (host_api.c) */
    size_t n_https, cap_https;
    char **env;                  /* NULL-terminated K=V */
    char *dir;
    char *output_file;           /* $KILN_OUTPUT */
    kiln__framer out_framer, err_framer; /* step_output() */
    uint64_t seq;

    kiln__kv *outputs;
    size_t n_outputs;
    int64_t progress_done, progress_total;
    char *progress_what;
    kiln__buf plan;              /* JSON texts from plan_add(), one per line */
    struct kiln_step *next_done; /* completion list */

    /* dry runs: the step runs mock-deploy (plugin) in place of real */
    bool mocked;
    kiln__plugin *real;          /* the deploying plugin, or NULL when not installed */
    char *mock_options;          /* resolved options as JSON, secrets masked */
    char *mock_requests;         /* JSON array from the real plugin's describe() */

    /* sub-builds this step started (build_submit), in order */
    kiln__build **children;
    size_t n_children;
};

typedef enum kiln__phase { KILN__PHASE_MAIN, KILN__PHASE_FINALLY, KILN__PHASE_DONE } kiln__phase;

struct kiln__build {
    struct kiln_object obj;
    kiln__engine *eng;
    kiln__build *parent;
    int depth;
    char id[40];
    kiln__pipeline *p;
    kiln__subst *subst;
    const kiln__secrets *secrets; /* availableSecrets values, or NULL */
    char *workspace;
    kiln__rstep *steps;          /* n_main + n_finally */
    size_t n_main, n_total;
    int max_parallel;
    bool default_cap;            /* max_parallel is KILN__DEFAULT_MAX_PARALLEL, not asked for */
    bool cap_noted;              /* the note about steps waiting for that cap was logged */

    kiln__phase phase;
    kiln_status status;          /* build status; WORKING while running */
    char *fail_reason;
    int running;
    size_t ended;
    int *queue;                  /* ready ordinals, FIFO */
    size_t q_head, q_tail, q_cap;
    kiln__rstep *done_head, *done_tail;
    char **spare_outputs;        /* $KILN_OUTPUT files of ended steps, for reuse */
    size_t n_spare_outputs, cap_spare_outputs;
    char **dead_outputs;         /* ... of steps that may have left writers behind */
    size_t n_dead_outputs, cap_dead_outputs;
    uv_idle_t pump;
    bool pump_active;
    bool finally_cancelled;
    bool draining;               /* the top build's steps ended; sinks are still writing */
    int closing;
    uv_timer_t timeout_timer;
    int64_t start_us, end_us;

    void (*on_end)(kiln__build *b, void *data); /* when the build has ended */
    void *on_end_data;

    /* a sub-build: started by parent_step, owns its pipeline and values */
    kiln__rstep *parent_step;
    bool owns_pipeline;
    bool waited;                 /* the parent step waits for it */
    kiln_build_cb cb;
    void *cb_data;
    char *plan_file;             /* dry runs: where mock-deploy records this build's deploys */
    char *volume_dir;            /* the build's volumes (volumes.h), or NULL */
    bool local_procs;            /* a process was started on this machine (strays.h) */
    kiln__exec_inst *exec_inst;  /* a top build's executor instance (kiln serve), or NULL */
};

struct kiln__engine {
    uv_loop_t *loop;
    kiln__registry reg;
    const kiln__executor *exec;
    kiln__plugin *exec_plugin;   /* --executor NAME (not local), or NULL */
    kiln__config *exec_cfg;      /* its options, shared by every instance */
    kiln__exec_inst *exec_inst;  /* kiln run's instance, or NULL */
    kiln__exec_inst *exec_insts; /* every instance not yet destroyed */
    struct kiln_sink **sinks;
    size_t n_sinks;
    int paused_sinks;
    /* processes whose output is being read; paused: by the sinks'
     * backpressure (only those are resumed, logpipe.c) */
    struct kiln__reader {
        kiln_proc *p;
        bool paused;
    } *readers;
    size_t n_readers, cap_readers;
    struct kiln__http_client *http;
    kiln__masker *masker;        /* every secret of every build */
    int64_t kill_grace_ms;
    int64_t partial_flush_ms;
    bool dry_run;
    int max_parallel;
    bool max_parallel_forced;    /* --max-parallel beats options.maxParallel */
    kiln_log_level log_level;
    int signal_count;
    int last_signal;
    int late_signals;            /* after the top build's steps ended (on_signal) */
    kiln__build *top;
    const char *open_workspace;  /* the workspace while the executor is opened (before top exists) */
    const kiln__tap *tap;        /* or NULL */
    struct kiln__loss *losses;   /* sinkloss.h: log records sinks lost, per sink and step */
    size_t n_losses;
    char *loss_fail_reason;      /* a required sink lost records: why the build fails */
    int sink_work;               /* sinks' queue_work() requests not yet completed */
    char *plan_dir;              /* dry runs: plan files go here (created on first use) */
    char **plan_files;           /* plan files written, for the summary */
    size_t n_plan_files;
    uv_signal_t sig_int, sig_term;
    uv_async_t post_async;       /* post() from other threads */
    uv_mutex_t post_mutex;
    struct kiln__post *posts;
};

int kiln__engine_init(kiln__engine *eng);
/* Runs the loop until every handle is gone, then releases everything. */
void kiln__engine_release(kiln__engine *eng);

/* The host services table every plugin receives. */
extern const kiln_host_api kiln__host_api;

/* Set up a build of a loaded and resolved pipeline (see resolve.h). */
int kiln__build_create(kiln__engine *eng, kiln__pipeline *p, kiln__subst *subst,
                       const char *workspace, const char *only, kiln__buf *err, kiln__build **out);
void kiln__build_start(kiln__build *b);
void kiln__build_cancel(kiln__build *b, const char *why);
void kiln__build_destroy(kiln__build *b);
void kiln__build_kick(kiln__build *b);
/* The sinks have no work in flight: a draining top build ends now. */
void kiln__build_sinks_idle(kiln__build *b);
/* Cancel a build and the sub-builds it started (Ctrl-C). */
void kiln__build_cancel_all(kiln__build *b, const char *why);
void kiln__engine_watch_signals(kiln__engine *eng, bool on);

/* subbuild.c: sub-builds (kiln_api->build_submit) and build ids. */
#define KILN__MAX_BUILD_DEPTH 5
void kiln__new_build_id(char *out, size_t cap);
int kiln__build_submit(kiln__rstep *s, const kiln_build_req *req, kiln_build_cb cb, void *data,
                       const char **build_id);

/* dryrun.c: mock-deploy in place of deploying plugins (see dryrun.c). */
#define KILN__MOCK_PLUGIN "mock-deploy"
/* Deploy plugins kiln knows by name, mocked in a dry run even when they are
 * not installed. NULL-terminated. */
extern const char *const kiln__known_deploys[];
bool kiln__is_known_deploy(const char *name);
/* Append the requests a step recorded (plan_add: one JSON text per line) to
 * ARR, each parsed, or as a string when it is not JSON. */
struct cJSON;
void kiln__plan_to_json(const kiln__rstep *s, struct cJSON *arr);
/* At build creation: swap a deploying plugin for mock-deploy. */
int kiln__dryrun_bind(kiln__rstep *s, const char *pname, kiln__buf *err);
/* At step start: the options mock-deploy records. Problems go to d. */
void kiln__dryrun_prepare(kiln__rstep *s, kiln__expand_fn expand, void *ctx, kiln__diag *d);
int kiln__deploy_target(kiln__rstep *s, kiln_deploy_target *out);
/* At the end of a step that is not mocked: what it recorded with plan_add()
 * (docker-build's build and push) goes to the plan file, as one entry shaped
 * like mock-deploy's. */
void kiln__dryrun_record(kiln__rstep *s);
/* Validation: expand every string under n (a kiln__expand_ctx) to report
 * substitution errors in the `with:` of a deploy plugin not installed. */
void kiln__dryrun_check_node(void *ctx, const kiln__ynode *n, kiln__buf *tmp);

/* Host side of step_done() and friends. */
void kiln__step_done(kiln__rstep *s, int status, const char *reason);
/* A step's start, end or progress, to every sink. */
void kiln__step_event(kiln__rstep *s, kiln_event_type type);
int kiln__step_set_output(kiln__rstep *s, const char *key, const char *value);
void kiln__step_release_timers(kiln__rstep *s);
void kiln__step_release_https(kiln__rstep *s);
void kiln__step_track_proc(kiln__rstep *s, kiln_proc *p);
void kiln__step_untrack_proc(kiln__rstep *s, kiln_proc *p);
void kiln__engine_add_reader(kiln__engine *eng, kiln_proc *p);
void kiln__engine_remove_reader(kiln__engine *eng, kiln_proc *p);

/* host_api.c */
void kiln__host_attach(kiln__engine *eng);  /* post() machinery; the engine plugins talk to */
void kiln__host_detach(kiln__engine *eng);
void kiln__http_shutdown(kiln__engine *eng);
void kiln__sink_ready(kiln_sink *s);
void kiln__sink_closed(kiln_sink *s);

#endif /* KILN_ENGINE_H */
