/* SPDX-License-Identifier: MIT */
/*
 * The records kiln-pod-helper (tools/kiln-pod-helper) writes into a Pod's
 * log, one a line:
 *
 *   @kf1 SEQ TYPE LEN PAYLOAD
 *
 * SEQ: 1, 2, ... (decimal, no leading zero); TYPE: one of o e f x; LEN: the
 * payload's length once unescaped; PAYLOAD: bytes with \\ \n \r \t \xHH
 * escapes. Pure (no I/O, no allocation), so that the unit test, the fuzzer
 * and the plugin read the same lines.
 */
#ifndef KILN_KUBE_FRAME_H
#define KILN_KUBE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define KUBE_FRAME_MAGIC "@kf1 "

enum {
    KUBE_FRAME_STDOUT = 'o',
    KUBE_FRAME_STDERR = 'e',
    KUBE_FRAME_OUTPUT = 'f', /* the content of the step's $KILN_OUTPUT */
    KUBE_FRAME_EXIT = 'x',   /* payload: the command's status, 0..255 */
};

typedef struct kube_frame {
    uint64_t seq;
    char type;  /* KUBE_FRAME_* */
    size_t len; /* of the decoded payload */
    int status; /* KUBE_FRAME_EXIT: the status */
} kube_frame;

/* Reads LINE[0..n) (without its newline). Returns 1 and fills F, with the
 * payload decoded into OUT (room for n bytes always suffices), when it is
 * a record; 0 when the line does not start with KUBE_FRAME_MAGIC (output
 * that did not come through the helper); -1 when it starts like a record
 * but is not one (cut short, a bad escape, a length that does not match):
 * WHY, when not NULL, then says what was wrong. */
int kube_frame_parse(const char *line, size_t n, kube_frame *f, char *out, const char **why);

#endif
