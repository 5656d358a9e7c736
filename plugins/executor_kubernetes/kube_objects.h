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

/* The fill Pod: a first Pod that fills the claim's workspace subPath (at
 * /workspace) before any step runs, labelled as every object of the build
 * (kiln.dev/step: kiln-fill). */
typedef struct kube_fill {
    const char *name, *ns, *build_id, *owner, *claim, *image;
    /* fill=git: image's git clones url and checks commit out (both reach
     * the script as env, never as shell text). git_secret, when set, names
     * a Secret of the namespace whose values reach the script through
     * valueFrom.secretKeyRef (never as values in the Pod's spec): for an
     * HTTP(S) url a kubernetes.io/basic-auth one (username, password; git
     * gets them from a credential helper), for an ssh url a
     * kubernetes.io/ssh-auth one (ssh-privatekey, and known_hosts if it
     * has it; git's ssh gets them as files in the Pod's /tmp). */
    const char *url, *commit, *git_secret;
    /* fill=upload (url NULL): the gzip'd tar of the workspace cut into the
     * ConfigMaps chunks[0..n_chunks) (binaryData key KUBE_CHUNK_KEY), all
     * mounted by one projected volume and unpacked in order; from and bytes
     * only go into the Pod's log line. */
    const char *const *chunks;
    size_t n_chunks;
    const char *from;
    size_t bytes;
} kube_fill;

char *kube_fill_body(const kube_fill *f);

/* Does git reach url over ssh (ssh://, git+ssh://, or scp-like
 * [user@]host:path)? Then gitSecret is an ssh key. */
bool kube_git_url_is_ssh(const char *url);

/* fill=upload: the part of the workspace's tar a ConfigMap holds. A
 * ConfigMap holds at most 1 MiB (data and binaryData together, counted
 * decoded); 700 KiB leave room for the metadata and the base64 of the
 * request. */
#define KUBE_CHUNK_BYTES (700u * 1024u)
#define KUBE_CHUNK_KEY "part"

/* "kiln-build-ID-src-I", malloc'd. */
char *kube_chunk_name(const char *build_id, size_t i);

/* The ConfigMap NAME holding len bytes of data (base64'd into binaryData),
 * labelled as every object of the build and owned by the owner (uid). */
char *kube_chunk_body(const char *name, const char *ns, const char *build_id, const char *owner,
                      const char *owner_name, const char *owner_uid, const void *data, size_t len);

/* A Secret key made from an env name: [-._a-zA-Z0-9], at most 200 bytes,
 * "x" when nothing is usable; suffix > 1 appends ".N" (the same name with
 * another value in a sub-build). */
void kube_secret_key(const char *env_name, unsigned suffix, char *out, size_t cap);

/* A container's waiting reason that means its image or its container
 * cannot start (ErrImagePull, ImagePullBackOff, CreateContainerError, ...):
 * the step (or the fill) fails instead of waiting. */
bool kube_start_failure(const char *reason);

#endif
