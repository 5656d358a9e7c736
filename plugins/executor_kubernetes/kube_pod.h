/* SPDX-License-Identifier: MIT */
/*
 * The kubernetes executor's objects: the Pod of one step process and the
 * build's workspace claim, as JSON bodies, and the names and labels they
 * carry. Pure functions (no I/O), so that the unit test and the plugin
 * build the same bodies.
 */
#ifndef KILN_KUBE_POD_H
#define KILN_KUBE_POD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/plugin.h>

enum { KW_HOSTPATH, KW_PVC };

/* What every Pod of the build shares. */
typedef struct kube_build {
    const char *build_id;   /* label-safe (a UUID) */
    const char *owner;      /* label-safe HOST.PID.START */
    const char *ns;
    const char *service_account; /* or NULL */
    const char *memory, *cpu;    /* limits (and requests), or NULL */
    int workspace_mode;          /* KW_* */
    const char *claim;           /* KW_PVC: the build's claim */
    const char *host_dir;        /* KW_HOSTPATH: the build's home and volumes live under it */
    /* secretEnv: "ENV=KEY" entries; env ENV is taken from key KEY of the
     * Secret named secret (valueFrom.secretKeyRef), its value never put in
     * the Pod. NULL: none. */
    const char *secret;
    const char *const *secret_keys;
    const char *helper_image;    /* kiln-pod-helper's image (kube_helper.h), or NULL: no framing */
} kube_build;

#define KUBE_LABEL_BUILD "kiln.dev/build"
#define KUBE_LABEL_STEP "kiln.dev/step"
#define KUBE_LABEL_OWNER "kiln.dev/owner"
#define KUBE_LABEL_SUB_BUILD "kiln.dev/sub-build" /* a sub-build's step: its own build's id */

/* A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends)
 * made from S, into out[cap]; "x" when nothing of S is usable. */
void kube_label_value(const char *s, char *out, size_t cap);

/* The Pod for spec, named NAME, as JSON text (malloc'd). */
char *kube_pod_body(const kube_build *b, const kiln_exec_spec *spec, const char *name);

/* The build's workspace claim (KW_PVC), as JSON text (malloc'd). */
char *kube_claim_body(const kube_build *b, const char *storage, const char *storage_class, bool rwx);

#endif
