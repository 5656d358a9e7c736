/* SPDX-License-Identifier: MIT */
/*
 * The build's own Kubernetes objects, as JSON bodies (pure: no I/O, so the
 * unit test and the plugin build the same bodies; kube_build.c sends them):
 *
 *  - the owner, a ConfigMap kiln-build-ID made first; every other object of
 *    the build carries an ownerReference to it, so deleting it makes the
 *    cluster's garbage collector remove the build's Pods, Secret and claim;
 *  - the Secret kiln-build-ID-env holding the values of the secretEnv
 *    entries the build's steps used so far (the Pods reference them with
 *    valueFrom.secretKeyRef: no value is in a Pod's spec);
 *  - the ownerReference and the node pin (workspace=pvc-rwo) put into a
 *    Pod's or claim's body once the owner's uid and the node are known.
 */
#ifndef KILN_KUBE_OBJECTS_H
#define KILN_KUBE_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>

#define KUBE_OWNER_KIND "ConfigMap"

/* "kiln-build-ID" and "kiln-build-ID-env", malloc'd. */
char *kube_owner_name(const char *build_id);
char *kube_secret_name(const char *build_id);

/* The owner ConfigMap (labels as every object of the build). */
char *kube_owner_body(const char *name, const char *ns, const char *build_id, const char *owner);

/* The Secret NAME with keys[i] = values[i] (n of them, values base64'd into
 * data), owned by the owner (uid). For server-side apply: apiVersion, kind
 * and the whole wanted content. */
char *kube_secret_body(const char *name, const char *ns, const char *build_id, const char *owner,
                       const char *owner_name, const char *owner_uid, const char *const *keys,
                       const char *const *values, size_t n);

/* BODY (a JSON object, malloc'd) with metadata.ownerReferences set to the
 * owner, and, when node is not NULL, spec.nodeName = node (a Pod kept on
 * the node of the build's claim). Returns the new text (malloc'd) and
 * frees body; NULL if body is not a JSON object (body is then kept). */
char *kube_own(char *body, const char *owner_name, const char *owner_uid, const char *node);

/* The fill Pod NAME: image's git clones url into the claim's workspace
 * subPath (at /workspace) and checks commit out (url and commit reach the
 * script as env, never as shell text); labels as every object of the build
 * (kiln.dev/step: kiln-fill). */
char *kube_fill_body(const char *name, const char *ns, const char *build_id, const char *owner,
                     const char *claim, const char *image, const char *url, const char *commit);

/* A Secret key made from an env name: [-._a-zA-Z0-9], at most 200 bytes,
 * "x" when nothing is usable; suffix > 1 appends ".N" (the same name with
 * another value in a sub-build). */
void kube_secret_key(const char *env_name, unsigned suffix, char *out, size_t cap);

/* Base64 (RFC 4648, padded) of len bytes, malloc'd. */
char *kube_base64(const char *s, size_t len);

/* A container's waiting reason that means its image or its container
 * cannot start (ErrImagePull, ImagePullBackOff, CreateContainerError, ...):
 * the step (or the fill) fails instead of waiting. */
bool kube_start_failure(const char *reason);

#endif
