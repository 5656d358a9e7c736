/* SPDX-License-Identifier: MIT */
/*
 * The shipping core's spool: batches a receiver has not taken yet, on disk,
 * one file per batch, so that a receiver that is down does not hold the
 * steps, and a kiln that is killed leaves its batches behind for
 * `kiln logs flush DIR`.
 *
 * A file is the request as it would be sent, encoded once (so a resent
 * batch has the same deduplication keys):
 *   KILNSPOOL 1\n
 *   url URL\n
 *   header NAME: VALUE\n      (zero or more; Content-Type among them)
 *   length N\n                (the body's size; absent in older files)
 *   \n
 *   BODY
 * Names are "TIME-BATCHID.req" (TIME: 16 hex digits of microseconds), so
 * that name order is sending order, also across runs. Files are written
 * to a temporary name and renamed, mode 0600 (headers may hold tokens).
 */
#ifndef KILN_SPOOL_H
#define KILN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln__spooled {
    char *url;
    char **headers;
    size_t n_headers;
    char *body;
    size_t body_len;
} kiln__spooled;

/* Write a batch to DIR (created, 0700); *path_out gets the file's path
 * (malloc'ed). 0 or a negative KILN_E*. */
int kiln__spool_write(const char *dir, const char *batch_id, const char *url,
                      const char *const *headers, size_t n_headers, const char *body, size_t len,
                      char **path_out);
/* Parse a spool file's bytes, without side effects (the fuzz target's
 * entry). 0, or KILN_EINVAL with *err (if err; malloc'ed) saying
 * "NAME: offset N: expected ...". A truncated or grown file is told by its
 * 'length' line. */
int kiln__spool_parse(const char *name, const char *data, size_t len, kiln__spooled *out, char **err);
/* Read one back: 0, KILN_EIO or KILN_EINVAL; *err (if err) as above. */
int kiln__spool_read(const char *path, kiln__spooled *out, char **err);
void kiln__spooled_release(kiln__spooled *s);

/* `kiln logs flush DIR`: every *.req under DIR (recursively, in name order)
 * is POSTed; a delivered one is removed; a refused one (a 4xx other than
 * 408/429) is moved to DIR/refused/; retryable failures are retried with
 * backoff for up to grace_ms in all. Prints what it did; returns 0 when
 * nothing is left, 1 otherwise. */
int kiln__spool_flush(const char *dir, int64_t grace_ms);

#endif /* KILN_SPOOL_H */
