/* SPDX-License-Identifier: MIT */
/*
 * The services the host hands to every plugin, as one table of function
 * pointers. Plugins never link against the runner: they call through the
 * `kiln_api` pointer that KILN_API_BIND() stores in init().
 *
 * Ownership (see docs/PLUGIN_API.md):
 *  - Everything the host passes into a plugin callback is borrowed for the
 *    duration of that call; copy what you keep.
 *  - Everything a plugin passes into the host (argv, buffers, strings) is
 *    copied before the call returns; stack buffers are fine.
 *  - Host objects (kiln_proc, kiln_timer, kiln_http) belong to the host. Each
 *    is released after its final callback or at step_done(), whichever comes
 *    first; do not touch one after that.
 *
 * Threads: every entry must be called on the loop thread, except post().
 *
 * THIS STRUCT IS APPEND-ONLY. ADD NEW ENTRIES AT THE END, AND BUMP
 * KILN_ABI_MINOR. A PLUGIN CHECKS KILN_API_HAS() BEFORE USING AN ENTRY NEWER
 * THAN THE MINOR IT WAS BUILT FOR.
 */
#ifndef KILN_HOST_H
#define KILN_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KILN_PRINTF(fmt, args)
#endif

typedef struct kiln_proc kiln_proc;
typedef struct kiln_timer kiln_timer;
typedef struct kiln_http kiln_http;

/* Cast any host object (plugin handle, step, sink) for log() and post(). */
#define KILN_OBJ(x) ((kiln_object *)(x))

/* ---- processes ------------------------------------------------------ */

/* Called for each complete line the process prints (and each flushed
 * partial line), after it went to the log sinks. line is not NUL-terminated. */
typedef void (*kiln_line_cb)(void *data, kiln_stream stream, const char *line, size_t len);
/* status: the exit code, 128+N when killed by signal N, or a negative KILN_E*
 * when the process could not be run to the end. */
typedef void (*kiln_exit_cb)(kiln_proc *proc, void *data, int status);

typedef struct kiln_spawn_opts {
    uint32_t struct_size;           /* sizeof(kiln_spawn_opts) */
    const char *const *argv;        /* NULL-terminated; argv[0] is searched in PATH */
    const char *cwd;                /* NULL: the step's directory */
    const char *const *env;         /* NULL: the step's environment; else "K=V", NULL-terminated */
    const char *const *extra_env;   /* added to (and overriding) env; NULL-terminated or NULL */
    kiln_line_cb on_line;           /* may be NULL */
    void *line_data;
    const char *stdin_path;         /* NULL: /dev/null */
    /* ABI 1.6: argv is the command for the image's own entrypoint when the
     * step runs in its image (kiln_api->step_image() is not NULL); ignored
     * on the host. Check kiln_api->abi_minor >= 6 before relying on it. */
    bool image_entrypoint;
} kiln_spawn_opts;

/* ---- HTTP ------------------------------------------------------------ */

/* Streaming request body: fill up to cap bytes; return the count, 0 at the
 * end, or a negative KILN_E* to abort. Runs on the loop thread and must not
 * block. Since ABI 1.2, KILN_EAGAIN means "nothing yet": the upload pauses
 * until the plugin calls kiln_api->http_resume() (check KILN_API_HAS first;
 * an older host aborts the request instead). */
typedef long (*kiln_http_read_cb)(void *data, char *buf, size_t cap);
/* Streaming response body: called as chunks arrive. Return 0, or a negative
 * KILN_E* to abort the request. */
typedef int (*kiln_http_data_cb)(void *data, const char *buf, size_t len);

typedef struct kiln_http_req {
    uint32_t struct_size;          /* sizeof(kiln_http_req) */
    const char *method;            /* "GET" when NULL */
    const char *url;
    const char *unix_socket;       /* connect through this socket, or NULL */
    const char *const *headers;    /* "Name: value", NULL-terminated, or NULL */
    const void *body;              /* copied by the host */
    size_t body_len;
    kiln_http_read_cb read_body;   /* instead of body; chunked upload */
    void *read_data;
    kiln_http_data_cb on_data;     /* NULL: the body is collected into resp->body */
    void *on_data_data;
    int64_t timeout_ms;            /* 0: none */
    /* ABI 1.4: TLS for https URLs; by default the system's CAs verify the
     * server. A host older than 1.4 (kiln_api->abi_minor < 4) ignores these. */
    const char *ca_file;           /* PEM file of the CAs to trust instead, or NULL */
    const char *ca_pem;            /* PEM text of the CAs to trust instead, or NULL */
    bool insecure;                 /* do not verify the server's certificate at all */
    /* ABI 1.6: called once when the response's status line and headers
     * have arrived, before any of its body (a streamed response that
     * starts only when something else happens: an Engine API attach). A
     * host older than 1.6 ignores it. */
    void (*on_headers)(void *data, int status);
    void *on_headers_data;
    /* ABI 1.9: a client certificate for https URLs (a kubeconfig user's
     * client-certificate-data and client-key-data), PEM text, both or
     * neither. A host older than 1.9 ignores them: check abi_minor. */
    const char *cert_pem;
    const char *key_pem;
} kiln_http_req;

typedef struct kiln_http_resp {
    int status;               /* HTTP status, 0 when no response */
    const char *body;         /* collected body (NUL-terminated), or NULL when streamed */
    size_t body_len;
    const char *content_type; /* or NULL */
    const char *error;        /* transport error text when err != 0, else NULL */
} kiln_http_resp;

/* err is 0 when a response arrived (whatever its status), else KILN_EHTTP,
 * KILN_ETIMEDOUT or KILN_ECANCELED. resp is borrowed. */
typedef void (*kiln_http_cb)(kiln_http *req, void *data, int err, const kiln_http_resp *resp);

/* ---- timers, threads -------------------------------------------------- */

typedef void (*kiln_timer_cb)(kiln_timer *timer, void *data);
typedef void (*kiln_work_cb)(void *data);               /* on a worker thread */
typedef void (*kiln_after_work_cb)(void *data, int err); /* on the loop thread */
typedef void (*kiln_post_cb)(void *data);               /* on the loop thread */

/* ---- sub-builds (ABI 1.1) ----------------------------------------------- */

/* Another pipeline run as a child build of the step's build, in-process, on
 * the same loop and the same log sinks (records carry the child's build id
 * and depth). Substitutions follow Cloud Build's manual builds: MUST_MATCH
 * unless the file says otherwise, no dynamic substitutions, and trigger
 * built-ins (BRANCH_NAME, COMMIT_SHA, ...) only from the workspace's git
 * checkout or from `substitutions`. */
typedef struct kiln_build_req {
    uint32_t struct_size;                 /* sizeof(kiln_build_req) */
    const char *config;                   /* pipeline file; relative to workspace */
    const char *workspace;                /* the child's working directory (absolute) */
    const char *const *substitutions;     /* "K=V", NULL-terminated, or NULL */
    bool wait;                            /* false: the callback is never called */
} kiln_build_req;

typedef struct kiln_build_result {
    const char *build_id;
    kiln_status status;                   /* SUCCESS, FAILURE, TIMEOUT, CANCELLED */
    const char *reason;                   /* why it failed, or NULL */
} kiln_build_result;

/* Called once when a waited-for child build ends, unless the step ended
 * first (contract rule 4). res is borrowed. */
typedef void (*kiln_build_cb)(kiln_step *step, void *data, const kiln_build_result *res);

/* ---- dry runs (ABI 1.1) -------------------------------------------------- */

/* What a step replaced by mock-deploy would have done. Everything is
 * borrowed until step_done(). */
typedef struct kiln_deploy_target {
    uint32_t struct_size;      /* sizeof(kiln_deploy_target), set by the caller */
    const char *plugin;        /* the real plugin's name */
    bool installed;            /* false: not installed, options are the raw `with:` */
    const char *options_json;  /* resolved options as a JSON object, secrets masked */
    const char *requests_json; /* JSON array of what describe() planned ("[]" when none) */
    const char *plan_file;     /* where this build's plan goes (JSON lines) */
} kiln_deploy_target;

/* ---- shipping to a remote receiver (ABI 1.7) ------------------------------
 *
 * A sink that sends records over HTTP hands them to the host's shipping core
 * and supplies an encoder: the core batches records (by count, bytes and
 * delay), sends one batch at a time in order, retries on connection errors,
 * 408, 429 (after Retry-After) and 5xx with exponential backoff and jitter,
 * fails a batch at once on any other 4xx (reported with sink_lost(), the
 * receiver's message as the reason), pauses the steps' output (KILN_EAGAIN)
 * when the records it holds pass `memory`, and at the end of the build waits
 * up to the sink grace time (--sink-grace) before counting what is left as
 * lost. Records reach the core with secrets already masked. */
typedef struct kiln_ship kiln_ship;

/* One record as an encoder sees it. Borrowed during encode(). */
typedef struct kiln_ship_rec {
    const char *build_id;
    const char *step_id;     /* NULL: the build's own messages */
    int step_index;          /* -1 for build-level messages */
    int depth;
    kiln_stream stream;
    kiln_log_level severity;
    uint64_t seq;            /* per step, from 1 */
    int64_t time_us;         /* when kiln read the line */
    bool partial;            /* the line was flushed before its newline */
    const char *text;        /* without the newline; not NUL-terminated */
    size_t len;
} kiln_ship_rec;

typedef struct kiln_ship_batch {
    /* Unique to this batch across runs and the same on every attempt to send
     * it: encoders derive the receiver's deduplication key from it and the
     * record's index (Cloud Logging's insertId: "ID-INDEX"). */
    const char *id;
    const kiln_ship_rec *recs;
    size_t n;
    size_t bytes;            /* sum of the records' len */
} kiln_ship_batch;

/* Turn a batch into a request body: *body from malloc() (the host frees it),
 * *len its size. Return 0, or a negative KILN_E* to fail the batch (its
 * records are counted lost). Runs on the loop thread. */
typedef int (*kiln_ship_encode_cb)(void *data, const kiln_ship_batch *b, char **body, size_t *len);

typedef struct kiln_ship_opts {
    uint32_t struct_size;          /* sizeof(kiln_ship_opts) */
    const char *url;               /* where every batch is POSTed */
    const char *const *headers;    /* "Name: value", NULL-terminated, or NULL */
    const char *content_type;      /* NULL: application/json */
    bool gzip;                     /* Content-Encoding: gzip */
    int64_t batch_records;         /* a batch closes at this many records (0: 1000) */
    int64_t batch_bytes;           /* ... or this many bytes of text (0: 1 MiB) */
    int64_t batch_delay_ms;        /* ... or this long after its first record (0: 1000) */
    int64_t memory;                /* bytes held before write() says KILN_EAGAIN (0: 16 MiB) */
    int64_t timeout_ms;            /* one request's limit (0: 30 s) */
    const char *ca_file;           /* as in kiln_http_req */
    bool insecure;
    kiln_ship_encode_cb encode;    /* required */
    void *data;                    /* given to encode() and on_closed() */
    /* After ship_close() has sent or given up on everything: the core calls
     * this (the sink frees its own data), then sink_closed(). May be NULL. */
    void (*on_closed)(void *data);
} kiln_ship_opts;

/* The option names every shipping sink shares, for its kiln_option table:
 * KILN_SHIP_OPTIONS(struct my_config, ship, "https://logs.example/v1", 1000, 100000,
 *                   1048576, 67108864): default and highest batch_records and
 *                   batch_bytes (numbers, not expressions: the defaults are
 *                   their text)
 * with a `kiln_ship_conf ship;` member. Endpoint may be NULL (required). */
typedef struct kiln_ship_conf {
    const char *endpoint;
    int64_t batch_records, batch_bytes, batch_delay_ms, memory, timeout_ms;
} kiln_ship_conf;

#define KILN_SHIP_OPTIONS(type, member, endpoint_default, records, records_max, bytes, bytes_max) \
    {KILN_OPT_STRING, "endpoint", (endpoint_default), (endpoint_default) ? 0 : KILN_OPT_REQUIRED,  \
     offsetof(type, member.endpoint), 0, -1, NULL, "The receiver's URL."},                       \
    {KILN_OPT_INT, "batch_records", #records, 0, offsetof(type, member.batch_records), 1,         \
     (records_max), NULL, "A batch is sent when it holds this many records."},                   \
    {KILN_OPT_INT, "batch_bytes", #bytes, 0, offsetof(type, member.batch_bytes), 1024,            \
     (bytes_max), NULL, "... or this many bytes of log text."},                                  \
    {KILN_OPT_DURATION, "batch_delay", "1s", 0, offsetof(type, member.batch_delay_ms), 1,         \
     3600000, NULL, "... or this long after its first record."},                                 \
    {KILN_OPT_INT, "memory", "16777216", 0, offsetof(type, member.memory), 65536,                 \
     (int64_t)1 << 40, NULL,                                                                     \
     "Bytes of records held in memory before the steps' output is paused."},                     \
    {KILN_OPT_DURATION, "timeout", "30s", 0, offsetof(type, member.timeout_ms), 1, 3600000, NULL, \
     "How long one request may take before it is retried."}

struct kiln_host_api {
    uint32_t abi_major, abi_minor, struct_size;

    /* -- logging. obj: a plugin handle, step or sink. Messages about a step
     * become SYSTEM records of that step and reach every sink. */
    bool (*log_enabled)(const kiln_object *obj, kiln_log_level level);
    void (*log)(const kiln_object *obj, kiln_log_level level, const char *fmt, ...)
        KILN_PRINTF(3, 4);

    /* -- steps */
    void (*step_set_data)(kiln_step *step, void *data); /* the libuv-style data slot */
    void *(*step_get_data)(const kiln_step *step);
    const char *(*step_id)(const kiln_step *step);
    const char *(*step_dir)(const kiln_step *step); /* absolute working directory */
    /* Text the step prints: it is framed into lines and goes to the sinks. */
    int (*step_output)(kiln_step *step, kiln_stream stream, const void *buf, size_t len);
    /* A step output, readable by later steps as ${{ steps.ID.outputs.KEY }}. */
    int (*step_set_output)(kiln_step *step, const char *key, const char *value);
    /* Progress of a long step, shown by sinks and kept in the report. */
    void (*step_progress)(kiln_step *step, int64_t done, int64_t total, const char *what);
    /* End the step. status: 0 success; > 0 an exit code (allowExitCodes
     * applies); < 0 a KILN_E*. reason: one line for the user, or NULL. */
    void (*step_done)(kiln_step *step, int status, const char *reason);

    /* -- processes: new process group, output framed into the step's log. */
    int (*spawn)(kiln_step *step, const kiln_spawn_opts *opts, kiln_exit_cb cb, void *data,
                 kiln_proc **out);
    int (*proc_signal)(kiln_proc *proc, int signum); /* to the whole process group */
    int (*proc_pid)(const kiln_proc *proc);

    /* -- timers */
    int (*timer_start)(kiln_step *step, uint64_t ms, kiln_timer_cb cb, void *data,
                       kiln_timer **out);
    void (*timer_stop)(kiln_timer *timer);

    /* -- HTTP on the loop (libcurl multi-socket) */
    int (*http_request)(kiln_step *step, const kiln_http_req *req, kiln_http_cb cb, void *data,
                        kiln_http **out);
    void (*http_abort)(kiln_http *req); /* the callback fires with KILN_ECANCELED */

    /* -- threads */
    int (*queue_work)(kiln_object *obj, kiln_work_cb work, kiln_after_work_cb after, void *data);
    int (*post)(kiln_object *obj, kiln_post_cb cb, void *data); /* THE ONLY THREAD-SAFE ENTRY */

    /* -- build context */
    const char *(*subst_get)(const kiln_object *obj, const char *key); /* NULL when unset */
    const char *(*workspace)(const kiln_object *obj);
    const char *(*build_id)(const kiln_object *obj);
    bool (*dry_run)(const kiln_object *obj);

    /* -- sinks */
    void (*sink_ready)(kiln_sink *sink);
    void (*sink_closed)(kiln_sink *sink);
    void *(*sink_get_data)(const kiln_sink *sink);
    void (*sink_set_data)(kiln_sink *sink, void *data);

    /* -- dry runs: record one request the step would send (JSON text). */
    int (*plan_add)(kiln_step *step, const char *json);

    /* -- errors and validation */
    const char *(*strerror)(int err);
    void (*diag)(kiln_diag *diag, const char *option, const char *fmt, ...) KILN_PRINTF(3, 4);

    /* ---- APPEND NEW ENTRIES BELOW THIS LINE ONLY ---- */

    /* -- ABI 1.1: sub-builds. Loads, resolves and checks req->config, then
     * starts it as a child build of the step's build. Returns 0 (the child
     * runs; *build_id, borrowed until step_done(), names it), or a negative
     * KILN_E* after logging every problem to the step: KILN_ECONFIG (the
     * pipeline is invalid), KILN_ELIMIT (sub-builds nested too deep), ... */
    int (*build_submit)(kiln_step *step, const kiln_build_req *req, kiln_build_cb cb, void *data,
                        const char **build_id);
    /* -- ABI 1.1: dry runs. For a step that mock-deploy runs in place of a
     * deploying plugin: fills *out (set out->struct_size first). Runs the
     * real plugin's describe() when it has one. KILN_EINVAL otherwise. */
    int (*deploy_target)(kiln_step *step, kiln_deploy_target *out);

    /* -- ABI 1.2: continue an upload paused by read_body returning
     * KILN_EAGAIN. Loop thread only (a producer thread post()s to the loop
     * first). read_body is called again later, never inside this call. */
    void (*http_resume)(kiln_http *req);

    /* -- ABI 1.3: a variable of the environment the step's processes get
     * (options.env, the step's env, automapped substitutions and its
     * secretEnv values), or NULL. Borrowed until the step ends. Secret values
     * read here are masked in every sink like any other. */
    const char *(*step_getenv)(const kiln_step *step, const char *name);

    /* -- ABI 1.5: this sink accepted records it could not keep (a full disk,
     * an I/O error, a failed upload). The host adds the losses up per sink
     * and step, warns once per sink, lists them in the report (logLoss) and
     * the end-of-run summary, and fails the build when the sink is required
     * (--sink NAME:required=true). The build's result stands otherwise.
     *
     * build_id, step_id: the lost records' batch->build_id and
     * batch->step_id (build_id NULL: the top build; step_id NULL: the
     * build's own messages). bytes, lines: how much of that step's log
     * did not reach the sink's destination, counted in what the sink
     * would have stored (a sink that stores batches as delivered counts
     * batch->len and batch->n_lines); a line partly kept counts as lost.
     * reason: one line for the user, e.g. strerror(errno), copied; NULL
     * when unknown. Report each lost byte once; calls with nothing lost,
     * or after sink_closed(), are ignored.
     *
     * Loop thread only; allowed inside write(), event() and close(), and
     * from any later callback until sink_closed(). A write() that returns
     * a negative KILN_E* other than KILN_EAGAIN has not accepted its
     * batch: the host counts that batch as lost itself (reason: the
     * error's text), so do not report it here as well. */
    void (*sink_lost)(kiln_sink *sink, const char *build_id, const char *step_id, uint64_t bytes,
                      uint64_t lines, const char *reason);

    /* -- ABI 1.6: executors (kiln-executor-NAME.so; see kiln_executor_ops).
     * Output of the process x: framed into lines, masked and sent to the
     * sinks like a host process's. */
    int (*exec_output)(kiln_exec *x, kiln_stream stream, const void *buf, size_t len);
    /* x ended: status as kiln_exit_cb's (exit code, 128+N for signal N, or a
     * negative KILN_E* with reason, one line, logged to the step). Once,
     * after its last exec_output(). */
    void (*exec_exited)(kiln_exec *x, int status, const char *reason);
    void (*exec_set_data)(kiln_exec *x, void *data);
    void *(*exec_get_data)(const kiln_exec *x);
    /* An HTTP request owned by obj (a plugin handle) rather than a step: it
     * is not aborted when a step ends (an executor removing a container
     * after the step). Same contract as http_request otherwise. */
    int (*http_request_obj)(kiln_object *obj, const kiln_http_req *req, kiln_http_cb cb,
                            void *data, kiln_http **out);
    /* Stop (true) and resume (false) reading a streamed response: libcurl
     * stops reading the socket, so the sender's writes block. */
    void (*http_pause_recv)(kiln_http *req, bool pause);
    /* The image the step's processes run in under the chosen executor, or
     * NULL when they run on this machine. */
    const char *(*step_image)(const kiln_step *step);
    /* The plugin handle of the executor, to log from open() and close(). */
    kiln_plugin_handle *(*exec_plugin_handle)(const kiln_exec *x);
    /* -- ABI 1.7: the shipping core (see kiln_ship_opts above). ship_open()
     * from the sink's open(): 0 and *out, or KILN_EINVAL (no url or encode).
     * ship_write() from write(): the batch is copied; 0, or KILN_EAGAIN when
     * the core holds more than `memory` (it calls sink_ready() later).
     * ship_set_header() adds or replaces ("Name: value") or removes ("Name:")
     * a header for the following requests (a refreshed token).
     * ship_close() from close(): sends what is left, waits up to the sink
     * grace time, counts the rest lost, calls on_closed() then
     * sink_closed(); the ship is dead afterwards. ship_hold(ship, true)
     * keeps batches from being sent (they queue and count against memory)
     * until ship_hold(ship, false): a sink waiting for its first token.
     * Loop thread only. */
    int (*ship_open)(kiln_sink *sink, const kiln_ship_opts *opts, kiln_ship **out);
    int (*ship_write)(kiln_ship *ship, const kiln_log_batch *batch);
    int (*ship_set_header)(kiln_ship *ship, const char *header);
    void (*ship_close)(kiln_ship *ship);
    void (*ship_hold)(kiln_ship *ship, bool hold);
};

#define KILN_API_HAS(api, field)                                                                   \
    (offsetof(kiln_host_api, field) < (size_t)(api)->struct_size)

/* In exactly one .c file of a plugin: KILN_API_DEFINE; then KILN_API_BIND(api)
 * in init(). Other files of the same plugin: KILN_API_EXTERN. */
#if defined(__GNUC__)
#define KILN__HIDDEN __attribute__((visibility("hidden")))
#else
#define KILN__HIDDEN
#endif
#define KILN_API_DEFINE KILN__HIDDEN const kiln_host_api *kiln_api = NULL
#define KILN_API_EXTERN extern KILN__HIDDEN const kiln_host_api *kiln_api
#define KILN_API_BIND(api) (kiln_api = (api))

#define kiln__log(obj, lvl, ...)                                                                   \
    do {                                                                                           \
        if (kiln_api->log_enabled(KILN_OBJ(obj), (lvl)))                                           \
            kiln_api->log(KILN_OBJ(obj), (lvl), __VA_ARGS__);                                      \
    } while (0)
#define kiln_error(obj, ...) kiln__log((obj), KILN_LOG_ERROR, __VA_ARGS__)
#define kiln_warn(obj, ...) kiln__log((obj), KILN_LOG_WARN, __VA_ARGS__)
#define kiln_info(obj, ...) kiln__log((obj), KILN_LOG_INFO, __VA_ARGS__)
#define kiln_debug(obj, ...) kiln__log((obj), KILN_LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* KILN_HOST_H */
