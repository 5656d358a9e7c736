/* SPDX-License-Identifier: MIT */
/*
 * The build context as a tar stream, produced on a worker thread into a
 * bounded ring buffer and consumed on the loop by the upload's read_body.
 *
 *   worker:  dk_ctx_produce() walks the context directory (honouring
 *            .dockerignore), writes the tar with libarchive, and blocks while
 *            the ring is full. When the reader found the ring empty, the
 *            producer calls wake() once new bytes are in (from its thread).
 *   loop:    dk_ctx_read() copies what is there: > 0 bytes, 0 at the end,
 *            KILN_EAGAIN when empty (the caller pauses the upload and resumes
 *            it on wake), or a negative KILN_E* when the producer failed
 *            (dk_ctx_error() says why, in one line).
 *   either:  dk_ctx_cancel() makes a blocked or running producer return soon.
 *
 * Memory stays bounded by the ring size plus libarchive's block buffer and
 * one file read buffer, whatever the size of the context.
 */
#ifndef DK_CONTEXT_H
#define DK_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct dk_ctx dk_ctx;

typedef struct dk_ctx_opts {
    const char *dir;             /* the context directory, absolute */
    const char *dockerfile_rel;  /* the Dockerfile's path inside the context, or NULL */
    const char *extra_path;      /* a Dockerfile outside the context, added as extra_name */
    const char *extra_name;
    size_t ring_size;            /* bytes; 0: 1 MiB */
    void (*wake)(void *data);    /* called on the producer thread */
    void *wake_data;
} dk_ctx_opts;

dk_ctx *dk_ctx_new(const dk_ctx_opts *o);
/* The worker: runs to the end of the tar, an error or a cancel. */
void dk_ctx_produce(dk_ctx *c);
long dk_ctx_read(dk_ctx *c, char *buf, size_t cap);
void dk_ctx_cancel(dk_ctx *c);
const char *dk_ctx_error(dk_ctx *c); /* NULL while no error */
uint64_t dk_ctx_bytes(dk_ctx *c);     /* tar bytes handed to the reader */
uint64_t dk_ctx_files(dk_ctx *c);     /* entries written */
uint64_t dk_ctx_ignored(dk_ctx *c);   /* entries left out by .dockerignore */
void dk_ctx_free(dk_ctx *c);          /* after dk_ctx_produce() returned */

#endif
