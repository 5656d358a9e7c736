/* SPDX-License-Identifier: MIT */
/*
 * The build's own objects on the cluster, and the gate every Pod passes
 * before it is created (kube.c calls these; the bodies are kube_objects.c):
 *
 *  1. the owner ConfigMap kiln-build-ID, created at open(); its uid goes
 *     into every other object's ownerReferences, so that deleting it
 *     removes the whole build (the cluster's garbage collector);
 *  2. the workspace claim (workspace=pvc, pvc-rwo), created once the owner
 *     is, owned by it;
 *  3. the Secret kiln-build-ID-env: the values of the secretEnv entries the
 *     build's steps used so far, applied (server-side apply, so created or
 *     grown) before the first Pod that needs a new one; Pods reference the
 *     keys with secretKeyRef, so no value is in a Pod's spec;
 *  4. fill=git or fill=upload: the claim filled by a first Pod (with
 *     upload, from ConfigMaps kiln-build-ID-src-N holding the workspace's
 *     gzip'd tar, deleted once it is unpacked);
 *  5. workspace=pvc-rwo: the first Pod goes where the scheduler puts it,
 *     the others are pinned to its node (spec.nodeName) once the watch has
 *     reported it, as Tekton's affinity assistant does for a RWO claim.
 *
 * A Pod's body waits in kb_when_ready() until 1-5 allow it, then comes back
 * with its ownerReference (and node) set. All state lives in the kbuild the
 * executor's plugin_data holds: nothing static.
 */
#ifndef KILN_KUBE_BUILD_H
#define KILN_KUBE_BUILD_H

#include <stdbool.h>

#include <kiln/kiln.h>

typedef struct kbuild kbuild;

/* Send one request (the executor's, with its auth and CA); 0 or KILN_E*.
 * ctype: a whole "Content-Type: ..." header or NULL for JSON. */
typedef int (*kb_request_fn)(void *ctx, const char *method, const char *url, const char *body,
                             const char *ctype, kiln_http_data_cb on_data, void *on_data_data, kiln_http_cb cb,
                             void *data, kiln_http **out);

typedef struct kb_conf {
    kiln_plugin_handle *self;     /* for log lines */
    const char *api;              /* SERVER/api/v1/namespaces/NS */
    const char *ns, *build_id, *owner;
    kb_request_fn request;
    void *ctx;
    const char *claim_body;       /* the claim to make (JSON), or NULL */
    const char *claim;            /* its name */
    bool pin_node;                /* pvc-rwo: one node for every Pod */
    /* Before the first Pod, a Pod fills the claim: KB_FILL_GIT clones
     * git_url at git_commit (NULL: found from the workspace's origin and
     * HEAD), with git_secret's credentials when set; KB_FILL_UPLOAD
     * unpacks the workspace's gzip'd tar, sent in ConfigMaps, refused when
     * over upload_limit bytes, without what upload_ignore leaves out (the
     * uploadIgnore option: NULL as gcloud chooses, "none", or a file of
     * the workspace; gcloudignore.h). fill_image NULL: alpine/git or
     * busybox. */
    int fill;
    const char *fill_image, *git_url, *git_commit, *git_secret;
    size_t upload_limit;
    const char *upload_ignore;
} kb_conf;

enum { KB_FILL_NONE, KB_FILL_GIT, KB_FILL_UPLOAD };

/* ready(data, body, error): body is the object to create (malloc'd, the
 * callee's), or NULL with error saying why it cannot be. */
typedef void (*kb_ready_cb)(void *data, char *body, const char *error);

/* Make the build's state and send the owner's create. NULL only when out
 * of memory. */
kbuild *kb_open(const kb_conf *c);

/* The Secret's name, and the keys for spec's secretEnv entries as "ENV=KEY"
 * (NULL-terminated, malloc'd: kb_keys_free), registering new values; *need
 * is how many keys the Secret must hold before this Pod can be created. */
const char *kb_secret_name(const kbuild *kb);
char **kb_secret_keys(kbuild *kb, const kiln_exec_spec *spec, unsigned *need);
void kb_keys_free(char **keys);

/* Hand body over until the build's objects allow the Pod: cb is called
 * once, maybe inside. token identifies the Pod for kb_forget(). */
void kb_when_ready(kbuild *kb, char *body, unsigned need, void *token, kb_ready_cb cb, void *data);

/* A Pod is about to be made from the workspace WS (on this machine): the
 * first call starts the fill (fill=git: origin and HEAD read; fill=upload:
 * the workspace packed by tar, both on a worker thread); the gate holds
 * every Pod until it has succeeded. */
void kb_fill(kbuild *kb, const char *ws);

/* The watch saw a Pod of the build on NODE (spec.nodeName). */
void kb_pod_node(kbuild *kb, const char *node);

/* pvc-rwo: the build's node, once known (else NULL). */
const char *kb_node(const kbuild *kb);

/* pvc-rwo: the build's node is gone; why (copied) fails every Pod still
 * waiting and every later one, as kb_error() says. */
void kb_node_gone(kbuild *kb, const char *why);

/* The Pod of token is gone (freed): if it was the one whose node the
 * others wait for and it never got one, the next Pod is tried. */
void kb_forget(kbuild *kb, void *token);

/* Why no Pod of the build can be made (the owner or claim failed), or
 * NULL. A spawn checks it first: kb_when_ready() would then call back
 * inside the spawn. */
const char *kb_error(const kbuild *kb);

/* The owner's name (for messages and the close-time delete). */
const char *kb_owner_name(const kbuild *kb);

/* The build ends (close() is listing what to delete): an owner or claim
 * whose create is answered from now on is deleted at once; a Pod still
 * waiting in kb_when_ready() is called back with an error (inside). */
void kb_close(kbuild *kb);

/* Drop the state (no callbacks; values wiped). */
void kb_free(kbuild *kb);

#endif
