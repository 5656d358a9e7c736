/* SPDX-License-Identifier: MIT */
/*
 * The plugin descriptor, its option schema, and the async contract.
 *
 * A plugin is a shared object named kiln-step-NAME.so, kiln-sink-NAME.so or
 * (ABI 1.6) kiln-executor-NAME.so
 * that exports exactly one function, kiln_plugin_entry_v1(), returning a
 * pointer to a const descriptor (use KILN_PLUGIN_DEFINE). The host checks the
 * ABI numbers, the struct size, that the name matches the file and that the
 * reserved slots are NULL, and refuses the plugin with one line otherwise.
 *
 * Async contract (libuv's rules):
 *  1. start() returning 0 means the step was accepted, and the plugin calls
 *     kiln_api->step_done() exactly once later (it may do so inside start()).
 *  2. start() returning a negative KILN_E* means the step failed at once, and
 *     step_done() must not be called.
 *  3. cancel() is a request. It may come at any time after start() returned 0
 *     and before step_done(); the step still ends with one step_done(),
 *     normally with KILN_ECANCELED. Processes the step spawned through the
 *     host are stopped by the host (SIGTERM to the process group, a grace
 *     period, SIGKILL); a plugin that only runs processes may leave cancel
 *     NULL.
 *  4. After step_done() the host makes no further call for that step and
 *     releases every host object created for it (processes, timers, HTTP
 *     requests) without calling their callbacks. The plugin frees its own
 *     step data before calling step_done(). When a cancelled step does not
 *     end within the kill grace, the host ends it itself, releases its
 *     objects the same way, and then calls kiln_step_ops.abandon() (ABI 1.10)
 *     so that the plugin frees its step data there instead.
 *  5. Every callback runs on the loop thread and must not block. Blocking
 *     work goes through queue_work(); post() is the only entry a plugin
 *     thread may call.
 *  6. Sinks: write() copies what it needs and returns 0, or KILN_EAGAIN to say
 *     "accepted, but I am above my high-water mark": the host stops reading
 *     step output until the sink calls sink_ready(). Any other negative
 *     KILN_E* means the batch was not accepted: the host counts it as lost.
 *     Records accepted and lost later (a full disk) are reported with
 *     kiln_api->sink_lost() (ABI 1.5). close() completes with sink_closed(),
 *     which the sink may call from inside close().
 */
#ifndef KILN_PLUGIN_H
#define KILN_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/version.h"
#include "kiln/log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_host_api kiln_host_api;
typedef struct kiln_object kiln_object; /* base of the host objects below */
typedef struct kiln_plugin_handle kiln_plugin_handle;
typedef struct kiln_step kiln_step;
typedef struct kiln_sink kiln_sink;
typedef struct kiln_diag kiln_diag;

typedef struct kiln_exec kiln_exec; /* ABI 1.6: one process an executor runs */

/* ABI 1.6 adds executors (kiln-executor-NAME.so): how a step's processes
 * run (on this machine, in a container, in a Pod). */
typedef enum kiln_plugin_kind {
    KILN_PLUGIN_STEP = 1,
    KILN_PLUGIN_LOG_SINK = 2,
    KILN_PLUGIN_EXECUTOR = 3
} kiln_plugin_kind;

/* Option types and what the host stores at `offset` in the config struct. */
typedef enum kiln_opt_type {
    KILN_OPT_STRING = 1,  /* const char *, NULL when absent without default */
    KILN_OPT_INT,         /* int64_t */
    KILN_OPT_BOOL,        /* bool */
    KILN_OPT_DURATION,    /* int64_t milliseconds; accepts "90s", "1.5s", "10m", "2h", "250ms" */
    KILN_OPT_ENUM,        /* int, index into choices */
    KILN_OPT_STRING_LIST, /* const kiln_strv *, never NULL (n == 0 when absent); 'a' = ['a'] */
    KILN_OPT_STRING_MAP,  /* const kiln_kvv *, never NULL (n == 0 when absent) */
    KILN_OPT_JSON         /* const char *: any YAML value rendered as JSON text, or NULL */
} kiln_opt_type;

#define KILN_OPT_REQUIRED (1u << 0)
#define KILN_OPT_SECRET (1u << 1)     /* never logged; masked in dry-run plans */
#define KILN_OPT_DEPRECATED (1u << 2) /* accepted with a warning */
#define KILN_OPT_NO_SUBST (1u << 3)   /* substitutions are not applied to this value */
#define KILN_OPT_NO_OFFSET ((size_t)-1) /* validate only, store nothing */

typedef struct kiln_strv {
    size_t n;
    const char *const *v;
} kiln_strv;

typedef struct kiln_kvv {
    size_t n;
    const char *const *keys;
    const char *const *values;
} kiln_kvv;

typedef struct kiln_option {
    kiln_opt_type type;
    const char *name;          /* as written under `with:` */
    const char *default_value; /* parsed exactly like user input; NULL = none */
    uint32_t flags;            /* KILN_OPT_* */
    size_t offset;             /* offsetof(struct my_config, field), or KILN_OPT_NO_OFFSET */
    int64_t min, max;          /* INT and DURATION bounds; min > max means unbounded */
    const char *const *choices; /* ENUM: NULL-terminated */
    const char *description;   /* one sentence, shown by `kiln plugins NAME` */
} kiln_option;

#define KILN_OPTIONS_END {(kiln_opt_type)0, NULL, NULL, 0, 0, 0, 0, NULL, NULL}

/* Descriptor flags. */
#define KILN_PLUGIN_DEPLOYS (1u << 0) /* replaced by mock-deploy in a dry run */

typedef struct kiln_step_ops {
    uint32_t struct_size;
    /* Start the step. config is the filled option struct, valid until
     * step_done(). See the async contract above. */
    int (*start)(kiln_step *step, const void *config, void *plugin_data);
    /* Ask a started step to stop. May be NULL (see contract, rule 3). */
    void (*cancel)(kiln_step *step, void *plugin_data);
    /* Optional: describe, without side effects, the requests the step would
     * send, through kiln_api->plan_add(). Used by dry runs. */
    int (*describe)(kiln_step *step, const void *config, void *plugin_data);
    /* ABI 1.10, optional (the host reads it only when struct_size covers it):
     * the host ended the step itself, without the plugin's step_done(),
     * because the step was still running --kill-grace (plus a margin) after
     * cancel(): typically a process of the step that never reported its end
     * (its output held open outside its process group, an executor that
     * cannot reach it). Rule 4 holds as for step_done(): by now every host
     * object of the step is released without its callback, so the plugin's
     * exit, timer and HTTP callbacks for the step will never run. Free the
     * step's data (step_get_data() still returns it) and undo what the step
     * made outside the host (temporary files); make no other call with the
     * step, and do not call step_done(). Work queued with queue_work() still
     * runs its after() callback: keep what it uses until then. Called once,
     * on the loop thread; the user already saw the step end. */
    void (*abandon)(kiln_step *step, void *plugin_data);
} kiln_step_ops;

typedef struct kiln_sink_ops {
    uint32_t struct_size;
    int (*open)(kiln_sink *sink, const void *config, void *plugin_data);
    int (*write)(kiln_sink *sink, const kiln_log_batch *batch);
    void (*event)(kiln_sink *sink, const kiln_event *ev); /* may be NULL */
    void (*close)(kiln_sink *sink);                         /* ends with sink_closed() */
} kiln_sink_ops;

/* ABI 1.6: what one process of a step is, as an executor receives it.
 * Everything is borrowed for the duration of spawn(). Paths are the host's. */
typedef struct kiln_exec_spec {
    uint32_t struct_size;         /* sizeof(kiln_exec_spec) */
    const char *build_id;         /* the top build's id: label what you create with it */
    const char *step_id;
    const char *image;            /* Cloud Build's name:, or NULL */
    /* argv[0] is the program (the image's entrypoint is replaced), unless
     * image_entrypoint: then argv is the command given to the image's own
     * entrypoint (Cloud Build's args without entrypoint). */
    const char *const *argv;
    bool image_entrypoint;
    const char *const *env;       /* "K=V", NULL-terminated: the whole environment */
    const char *cwd;              /* absolute, on the host; under workspace for steps */
    const char *workspace;        /* absolute, on the host */
    const char *output_file;      /* $KILN_OUTPUT on the host, or NULL */
    const char *stdin_path;       /* NULL: no input */
    const char *const *volumes;   /* "NAME=/path", NULL-terminated, or NULL */
    int64_t kill_grace_ms;        /* terminate(): SIGTERM, this long, SIGKILL */
    /* ABI 1.8 (check struct_size): the names of env entries whose values
     * are secrets (secretEnv), NULL-terminated, or NULL. Their values are in
     * env too; an executor that can keep them out of what others read (a
     * Kubernetes Secret) should. */
    const char *const *secret_env;
} kiln_exec_spec;

/* ABI 1.6: an executor plugin. Every callback runs on the loop thread.
 *  - spawn() returns 0 and later reports the process's output with
 *    kiln_api->exec_output() and its end, once, with exec_exited(); or it
 *    returns a negative KILN_E* and reports nothing.
 *  - After exec_exited(), or after the host called abandon(), the kiln_exec
 *    is dead: the executor makes no call with it (its own cleanup goes on).
 *  - pause(): stop reading the process's output until resume() (a sink is
 *    above its high-water mark): let the backpressure reach the process.
 *  - Nothing the executor started may outlive the build: close() removes
 *    what is left and calls done(arg) when it has (it may do so inside).
 *    An executor that runs things elsewhere labels them with the build id
 *    and an owner (host, pid, start time) and, at open(), removes what an
 *    owner no longer running left behind. */
typedef struct kiln_executor_ops {
    uint32_t struct_size;
    /* Before the build runs, with the filled --executor options. A negative
     * KILN_E* stops kiln before anything runs (exit 2); say why with
     * kiln_api->log() on the plugin handle, in one line. */
    int (*open)(void *plugin_data, const void *config, const char *build_id);
    int (*spawn)(kiln_exec *x, const kiln_exec_spec *spec, void *plugin_data);
    int (*signal)(kiln_exec *x, int signum);
    void (*terminate)(kiln_exec *x);   /* SIGTERM, grace, SIGKILL; exec_exited() still comes */
    void (*abandon)(kiln_exec *x);     /* the step is over: kill and release, no more calls */
    void (*pause)(kiln_exec *x);
    void (*resume)(kiln_exec *x);
    void (*close)(void *plugin_data, void (*done)(void *arg), void *arg);
} kiln_executor_ops;

typedef struct kiln_plugin {
    uint32_t abi_major, abi_minor, struct_size; /* KILN_PLUGIN_HEADER */
    kiln_plugin_kind kind;
    const char *name;        /* must match the file: kiln-step-NAME.so */
    const char *version;     /* the plugin's own version */
    const char *summary;     /* one line, shown by `kiln plugins` */
    const kiln_option *options; /* KILN_OPTIONS_END-terminated, or NULL */
    size_t config_size;      /* the host allocates a zeroed struct this big */
    uint32_t flags;          /* KILN_PLUGIN_* */

    /* Once after loading. May be NULL. *plugin_data is passed back later. */
    int (*init)(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data);
    /* Checks that span several options, before anything runs; report with
     * kiln_api->diag(). May be NULL. Returns 0 or KILN_ECONFIG. */
    int (*validate)(void *plugin_data, const void *config, kiln_diag *diag);
    const kiln_step_ops *step; /* kind == KILN_PLUGIN_STEP */
    const kiln_sink_ops *sink; /* kind == KILN_PLUGIN_LOG_SINK */
    void (*destroy)(void *plugin_data); /* may be NULL */

    /* ABI 1.6: kind == KILN_PLUGIN_EXECUTOR (was the first reserved slot,
     * so older plugins have NULL here and the size is unchanged). */
    const kiln_executor_ops *executor;
    void *reserved[7]; /* must be NULL */
} kiln_plugin;

#define KILN_PLUGIN_HEADER KILN_ABI_MAJOR, KILN_ABI_MINOR, (uint32_t)sizeof(kiln_plugin)

#if defined(__GNUC__)
#define KILN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define KILN_PLUGIN_EXPORT
#endif

#define KILN_PLUGIN_ENTRY_SYMBOL "kiln_plugin_entry_v1"

#define KILN_PLUGIN_DEFINE(desc)                                                                   \
    KILN_PLUGIN_EXPORT const kiln_plugin *kiln_plugin_entry_v1(void);                              \
    KILN_PLUGIN_EXPORT const kiln_plugin *kiln_plugin_entry_v1(void)                               \
    {                                                                                              \
        return &(desc);                                                                            \
    }

#ifdef __cplusplus
}
#endif
#endif /* KILN_PLUGIN_H */
