/* SPDX-License-Identifier: MIT */
/*
 * The secret masker: every secret value is replaced by "********" in step
 * output before any sink sees a byte.
 *
 * Whole lines reach the masker contiguous (the framer keeps partial lines
 * until their newline), so a secret inside a line is always found. The one
 * split case is a partial line flushed early (a progress bar, a line longer
 * than the framer's buffer): there the masker holds back the tail that could
 * be the start of a secret until the next piece arrives or the stream ends.
 * A secret that spans several lines is masked line by line.
 */
#ifndef KILN_MASK_H
#define KILN_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define KILN__MASK_TEXT "********"

typedef struct kiln__masker kiln__masker;

kiln__masker *kiln__masker_create(void);
void kiln__masker_destroy(kiln__masker *m);
/* Add a secret value (copied). Each line of it is masked on its own; lines
 * shorter than 3 bytes are ignored (masking every "a" would hide output, not
 * secrets). */
void kiln__masker_add(kiln__masker *m, const char *value);
bool kiln__masker_empty(const kiln__masker *m);

/* Mask text (no newline handling) into out. */
void kiln__mask(const kiln__masker *m, const char *text, size_t len, kiln__buf *out);

/* Streaming form for one stream: feed pieces; what can safely be shown is
 * appended to out, masked. `final` says no more text follows on this line
 * (a newline is in or ends the piece, or the stream ends). */
typedef struct kiln__mask_stream {
    kiln__buf held; /* a tail that may be the start of a secret */
} kiln__mask_stream;

void kiln__mask_stream_init(kiln__mask_stream *s);
void kiln__mask_stream_release(kiln__mask_stream *s);
void kiln__mask_feed(const kiln__masker *m, kiln__mask_stream *s, const char *text, size_t len,
                     bool final, kiln__buf *out);

#endif /* KILN_MASK_H */
