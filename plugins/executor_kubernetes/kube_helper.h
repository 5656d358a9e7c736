/* SPDX-License-Identifier: MIT */
/*
 * The Pod side of kiln-pod-helper (tools/kiln-pod-helper): an init
 * container, from the helper's image, copies the static helper into an
 * emptyDir; the step's container mounts it and runs its command under it,
 * so that its log is framed records (kube_frame.h). Pure: edits the Pod's
 * JSON only.
 */
#ifndef KILN_KUBE_HELPER_H
#define KILN_KUBE_HELPER_H

#include <stdbool.h>

#include <cJSON.h>
#include <kiln/plugin.h>

#define KUBE_HELPER_DIR "/kiln"                 /* the emptyDir in the step's container */
#define KUBE_HELPER_BIN KUBE_HELPER_DIR "/kiln-pod-helper"
#define KUBE_HELPER_OUTPUT KUBE_HELPER_DIR "/output" /* $KILN_OUTPUT when sent in the log */
#define KUBE_HELPER_INIT "kiln-helper"          /* the init container's name */

/* Can the step's command run under the helper? Not when the step runs its
 * image's own entrypoint (kiln does not know it without the registry). */
bool kube_helper_applies(const kiln_exec_spec *s);

/* Wraps the step container CTR of POD_SPEC: the init container from IMAGE,
 * the emptyDir, the mount, the command as the helper's arguments. With
 * SEND_OUTPUT, $KILN_OUTPUT is a file in the emptyDir that the helper sends
 * in the log after the command (for workspaces kiln cannot read). */
void kube_helper_wrap(cJSON *pod_spec, cJSON *ctr, const char *image, bool send_output);

#endif
