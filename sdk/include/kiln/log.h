/* SPDX-License-Identifier: MIT */
/*
 * Log records as log-sink plugins see them.
 *
 * Logically every line a step prints is one record: build id, step id,
 * stream, sequence number, timestamp, severity, text. Physically the host
 * hands records to sinks in batches: one batch holds consecutive lines of one
 * stream of one step that arrived together, stored contiguously, so that a
 * sink which only copies bytes (a file) does no per-line work, and a sink that
 * needs lines walks them with kiln_batch_next().
 *
 * Everything a sink receives is borrowed for the duration of the call.
 */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_log_level {
    KILN_LOG_ERROR = 1,
    KILN_LOG_WARN = 2,
    KILN_LOG_INFO = 3,
    KILN_LOG_DEBUG = 4,
    KILN_LOG_TRACE = 5
} kiln_log_level;

typedef enum kiln_stream {
    KILN_STREAM_STDOUT = 1,
    KILN_STREAM_STDERR = 2,
    KILN_STREAM_SYSTEM = 3 /* kiln's and plugins' own messages about a step or build */
} kiln_stream;

/* The last line of the batch has no newline: it was flushed because no
 * newline came in time (a progress bar) or because it exceeded the line
 * buffer. The rest of that line, if any, follows in a later batch that has
 * KILN_BATCH_CONTINUED set. */
#define KILN_BATCH_PARTIAL (1u << 0)
/* The first line of the batch continues the previous batch's partial line. */
#define KILN_BATCH_CONTINUED (1u << 1)

typedef struct kiln_log_batch {
    const char *build_id;    /* never NULL */
    const char *step_id;     /* NULL for build-level messages */
    int step_index;          /* position in steps[]; -1 for build-level messages */
    int depth;               /* 0 for the top build, 1 for a sub-build, ... */
    kiln_stream stream;
    kiln_log_level severity; /* INFO for stdout, WARN for stderr unless a plugin says */
    uint64_t first_seq;      /* sequence number of the first line, per step, from 1 */
    uint32_t n_lines;        /* number of records in this batch, >= 1 */
    uint32_t flags;          /* KILN_BATCH_* */
    int64_t time_us;         /* when the bytes were read, microseconds since the epoch */
    const char *text;        /* n_lines lines, each ending in '\n' but a PARTIAL last one */
    size_t len;              /* bytes in text */
} kiln_log_batch;

/*
 * Walk the lines of a batch. *pos starts at 0. On each call returns 1 and sets
 * *line and *len (without the newline), or returns 0 when the batch is done.
 */
static inline int kiln_batch_next(const kiln_log_batch *b, size_t *pos, const char **line,
                                  size_t *len)
{
    if (*pos >= b->len)
        return 0;
    const char *start = b->text + *pos;
    const char *nl = (const char *)memchr(start, '\n', b->len - *pos);
    size_t n = nl ? (size_t)(nl - start) : b->len - *pos;
    *line = start;
    *len = n;
    *pos += n + (nl ? 1 : 0);
    return 1;
}

typedef enum kiln_event_type {
    KILN_EVENT_BUILD_START = 1,
    KILN_EVENT_STEP_START = 2,
    KILN_EVENT_STEP_END = 3,
    KILN_EVENT_BUILD_END = 4,
    KILN_EVENT_STEP_PROGRESS = 5 /* a plugin's step_progress(); sinks may ignore it */
} kiln_event_type;

/* Step and build statuses, as Cloud Build names them. */
typedef enum kiln_status {
    KILN_STATUS_QUEUED = 0,
    KILN_STATUS_WORKING = 1,
    KILN_STATUS_SUCCESS = 2,
    KILN_STATUS_FAILURE = 3,
    KILN_STATUS_TIMEOUT = 4,
    KILN_STATUS_CANCELLED = 5,
    KILN_STATUS_INTERNAL_ERROR = 6,
    KILN_STATUS_SKIPPED = 7 /* kiln: not run because of --only or a failed dependency */
} kiln_status;

/* The status as Cloud Build spells it ("SUCCESS", "FAILURE", ...). */
static inline const char *kiln_status_name(kiln_status s)
{
    static const char *const names[] = {"QUEUED",  "WORKING",   "SUCCESS",        "FAILURE",
                                        "TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "SKIPPED"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "STATUS_UNKNOWN";
}

typedef struct kiln_event {
    kiln_event_type type;
    const char *build_id;
    const char *step_id;     /* NULL for build events */
    int step_index;          /* -1 for build events */
    int depth;
    const char *plugin;      /* step events: the plugin running the step */
    const char *image;       /* step events: Cloud Build's `name:`, or NULL */
    kiln_status status;      /* END events */
    int exit_code;           /* STEP_END: the process status, or -1 */
    int64_t time_us;
    int64_t duration_us;     /* END events */
    const char *message;     /* END events: why it failed, or NULL */
    int64_t progress_done;   /* STEP_PROGRESS (and STEP_END: the last values) */
    int64_t progress_total;
    const char *progress_what;
} kiln_event;

#ifdef __cplusplus
}
#endif
#endif /* KILN_LOG_H */
