/* SPDX-License-Identifier: MIT */
/*
 * The shipping core's spool: batches a receiver has not taken yet, on disk,
 * one file per batch, so that a receiver that is down does not hold the
 * steps, and a kiln that is killed leaves its batches behind for
 * `kiln logs flush DIR`.
 *
 * A file is the request as it would be sent, encoded once (so a resent
 * batch has the same deduplication keys), less its credentials:
 *   KILNSPOOL 1\n
 *   url URL\n
 *   sink NAME\n               (the sink plugin that wrote it)
 *   header NAME: VALUE\n      (Content-Type and Content-Encoding only)
 *   needs NAME\n              (a header the request had, e.g. Authorization,
 *                             whose value is not written: it is set again
 *                             at send time from the sink's configuration)
 *   length N\n                (the body's size; absent in older files)
 *   \n
 *   BODY
 * Older files may hold other 'header' lines (a token): they are read as
 * they are. Names are "TIME-BATCHID.req" (TIME: 16 hex digits of
 * microseconds), so that name order is sending order, also across runs.
 * Files are written to a temporary name and renamed, mode 0600, in a
 * directory of mode 0700; a running kiln holds an flock on the sink
 * directory's .lock, and so does `kiln logs flush` while it sends.
 */
#ifndef KILN_SPOOL_H
#define KILN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln__spooled {
    char *url;
    char *sink;     /* or NULL (older files) */
    char **headers;
    size_t n_headers;
    char **needs;   /* header names whose values were not written */
    size_t n_needs;
    char *body;
    size_t body_len;
} kiln__spooled;

/* Write a batch to DIR (created, 0700); *path_out gets the file's path
 * (malloc'ed). Of HEADERS ("Name: value"), only Content-Type and
 * Content-Encoding are written; every other one is named in a 'needs'
 * line, its value left out (credentials stay off the disk). SINK: the
 * plugin's name, or NULL. 0 or a negative KILN_E*. */
int kiln__spool_write(const char *dir, const char *batch_id, const char *sink, const char *url,
                      const char *const *headers, size_t n_headers, const char *body, size_t len,
                      char **path_out);
/* True for the headers a spool file keeps (Content-Type, Content-Encoding). */
bool kiln__spool_keeps_header(const char *header);
/* Parse a spool file's bytes, without side effects (the fuzz target's
 * entry). 0, or KILN_EINVAL with *err (if err; malloc'ed) saying
 * "NAME: offset N: expected ...". A truncated or grown file is told by its
 * 'length' line. */
int kiln__spool_parse(const char *name, const char *data, size_t len, kiln__spooled *out, char **err);
/* Read one back: 0, KILN_EIO or KILN_EINVAL; *err (if err) as above. */
int kiln__spool_read(const char *path, kiln__spooled *out, char **err);
void kiln__spooled_release(kiln__spooled *s);

/* `kiln logs flush DIR`: DIR is a spool root (its sink directories are
 * sent one after the other) or one sink directory. Each sink directory's
 * .lock is flocked first; one a running kiln holds is left alone, and a
 * line says so. Every *.req is POSTed in name order; a delivered one is
 * removed; a refused one (a 4xx other than 408/429) is moved to
 * ROOT/refused/; retryable failures are retried with backoff for up to
 * grace_ms in all. The headers a file 'needs' come from SINKS ("NAME:
 * token=T" gives "Authorization: Bearer T"; "NAME:headers=A=b;C=d" gives
 * "A: b" and "C: d"), else, for cloud-logging, $GOOGLE_OAUTH_ACCESS_TOKEN;
 * a sink directory whose files need a header nobody gave is not sent, and
 * a line names the header and the option that gives it. Prints what it
 * did; returns 0 when nothing is left, 3 when a running kiln holds one of
 * the directories (whatever else), else 1 when something is left (refused,
 * not delivered, lacking a credential); 2 when DIR is not a directory or
 * SINKS is malformed. */
int kiln__spool_flush(const char *dir, int64_t grace_ms, const char *const *sinks, size_t n_sinks);

#endif /* KILN_SPOOL_H */
