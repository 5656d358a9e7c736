/* SPDX-License-Identifier: MIT */
/*
 * kubernetes: the executor that runs each step process as a Pod (issue 15).
 *
 * The cluster comes from a kubeconfig context exactly as k8s-deploy finds it
 * (plugins/common/k8s_conn.c). A process is one Pod (restartPolicy Never,
 * the step's image, command, env, workingDir, labels kiln.dev/build,
 * kiln.dev/step, kiln.dev/owner), created with POST; its course is followed
 * by ONE watch on the build's Pods (list, then watch from the list's
 * resourceVersion; the watch is re-opened where it ended and re-listed on
 * 410 Gone); its output comes from pods/log?follow=true&timestamps=true
 * (stdout and stderr as the API server merges them: all of it reaches the
 * step's stdout; a broken stream is read on with sinceTime, the lines
 * already seen skipped by timestamp); its
 * end from the container's terminated state (exit code; OOMKilled = 137
 * with a reason), or a failure that says why: an image that cannot be
 * pulled, an eviction, a Pod deleted by someone else. terminate() deletes
 * the Pod with the grace period; close() deletes what the build left, and
 * open() what owners no longer running left.
 *
 * Every request goes through the host's HTTP service on the loop
 * (http_request_obj: the executor's requests outlive steps).
 */
#include <cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "../common/k8s_conn.h"
#include "../common/gcloudignore.h"
#include "../common/xalloc.h"
#include "kube_build.h"
#include "kube_frame.h"
#include "kube_helper.h"
#include "kube_objects.h"
#include "kube_pod.h"

KILN_API_DEFINE;

#define WATCH_RETRIES 20 /* failed (re)connections in a row before the Pods are given up */

static const char *const ws_choices[] = {"hostpath", "pvc", "pvc-rwo", NULL};
static const char *const fill_choices[] = {"none", "git", "upload", NULL}; /* KB_FILL_* */

struct kx_config {
    const char *context, *ns, *service_account, *kubeconfig;
    const char *memory, *cpu;
    int workspace;
    const char *storage, *storage_class;
    bool rwx;
    int fill;
    const char *fill_image, *git_url, *git_commit, *git_secret;
    int64_t upload_limit_mib;
    const char *upload_ignore;
    const char *helper_image;
};

#define OPT(n, d, f, field, desc) {KILN_OPT_STRING, n, d, f, offsetof(struct kx_config, field), 0, -1, NULL, desc}
static const kiln_option kx_options[] = {
    OPT("context", NULL, 0, context, "kubeconfig context to use (default: the current context)."),
    OPT("namespace", NULL, 0, ns, "Namespace of the build's Pods (default: the context's, else default)."),
    OPT("serviceAccount", NULL, 0, service_account,
        "Service account the Pods run as (default: none mounted)."),
    OPT("kubeconfig", NULL, 0, kubeconfig, "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."),
    OPT("memory", NULL, 0, memory, "Memory limit and request of every step's container (e.g. 256Mi)."),
    OPT("cpu", NULL, 0, cpu, "CPU limit and request of every step's container (e.g. 500m)."),
    {KILN_OPT_ENUM, "workspace", "hostpath", 0, offsetof(struct kx_config, workspace), 0, -1, ws_choices,
     "How the workspace reaches the Pods: hostpath (kiln's workspace directory, on a node that is this "
     "machine), pvc (a claim per build) or pvc-rwo (a ReadWriteOnce claim, every Pod of the build on "
     "the first one's node); see docs/KUBERNETES.md."},
    OPT("storage", "1Gi", 0, storage, "workspace=pvc, pvc-rwo: the claim's size."),
    OPT("storageClass", NULL, 0, storage_class, "workspace=pvc, pvc-rwo: the claim's storage class."),
    {KILN_OPT_BOOL, "readWriteMany", "true", 0, offsetof(struct kx_config, rwx), 0, -1, NULL,
     "workspace=pvc: ask for ReadWriteMany (false: ReadWriteOnce; pvc-rwo always does)."},
    {KILN_OPT_ENUM, "fill", "none", 0, offsetof(struct kx_config, fill), 0, -1, fill_choices,
     "workspace=pvc, pvc-rwo: none (the claim starts empty), git (a first Pod clones the workspace's "
     "origin at its HEAD into the claim) or upload (kiln sends the workspace as it is on this machine, "
     ".git and uncommitted files included, as a gzip'd tar in ConfigMaps that a first Pod unpacks)."},
    OPT("fillImage", NULL, 0, fill_image,
        "The fill Pod's image (default: alpine/git for fill=git, needs sh and git; busybox for fill=upload, "
        "needs sh, cat, tar and gzip)."),
    OPT("gitUrl", NULL, 0, git_url, "fill=git: the repository to clone (default: the workspace's origin)."),
    OPT("gitCommit", NULL, 0, git_commit, "fill=git: the commit to check out (default: the workspace's HEAD)."),
    OPT("gitSecret", NULL, 0, git_secret,
        "fill=git: a Secret of the namespace whose values the fill Pod gives git (secretKeyRef: kiln never "
        "reads it): for an http(s) remote kubernetes.io/basic-auth (keys username, password: a credential "
        "helper), for an ssh remote kubernetes.io/ssh-auth (key ssh-privatekey, optional known_hosts)."),
    {KILN_OPT_INT, "uploadLimit", "64", 0, offsetof(struct kx_config, upload_limit_mib), 1, 4096, NULL,
     "fill=upload: the largest gzip'd tar of the workspace to send, in MiB (refused above it, before any "
     "part is sent)."},
    OPT("uploadIgnore", NULL, 0, upload_ignore,
        "fill=upload: what is left out of the upload, as `gcloud builds submit --ignore-file` (gitignore's "
        "syntax and #!include:FILE): a file relative to the workspace, or none to send everything (default: "
        "the workspace's .gcloudignore, else with a .git or .gitignore gcloud's default: .git, .gitignore and "
        "what .gitignore lists; see docs/KUBERNETES.md)."),
    OPT("helperImage", NULL, 0, helper_image,
        "Image of kiln-pod-helper (make pod-helper-image): steps run under it, their stdout and stderr "
        "apart and a broken log stream resumed exactly; unset: the merged log (docs/KUBERNETES.md)."),
    KILN_OPTIONS_END,
};

typedef struct kpod kpod;

/* The executor's state: one build per kiln process. */
struct kx {
    kiln_plugin_handle *self;
    k8_conn conn;
    char *ns, *sa, *memory, *cpu, *claim, *host_dir;
    char *helper_image; /* or NULL: no framing */
    int ws_mode;
    char build_id[64];
    char owner[128]; /* a label value: at most 63 used */
    char *auth;          /* "Authorization: Bearer ...", or NULL */
    /* what the connection was resolved from, to resolve it again when an
     * exec plugin's credential is about to expire */
    char *kubeconfig, *kubeconfig_env, *home, *context;
    char *pods_url;      /* .../namespaces/NS/pods */
    kpod *pods;          /* Pods whose events still matter */
    kbuild *kb;          /* the build's owner, Secret, claim, node (kube_build.c) */
    unsigned seq;
    /* the build's watch */
    kiln_http *watch;
    char *wbuf;
    size_t wlen;
    char rv[32];
    bool relist, watching;
    unsigned lists_sent;  /* numbers the lists, to tell a Pod created after one was asked for */
    int watch_fails;
    char watch_error[300];
    /* close() */
    bool closing;
    int close_pending;
    void (*close_done)(void *);
    void *close_arg;
};

/* One process: a Pod's life. */
struct kpod {
    struct kx *kx;
    kpod *next;
    bool listed;          /* in kx->pods */
    kiln_exec *x;         /* NULL once exited or abandoned */
    char name[128];
    char *image;
    kiln_http *create, *logs;
    kiln_http *deadline;  /* after terminate(): a request whose timeout is the grace period */
    int pending;          /* requests in flight whose callback holds this pod */
    int64_t grace_ms;
    bool created, logs_started, logs_done, terminated, deleted, delete_asked, paused;
    bool deleted_by_other; /* a deletionTimestamp we did not ask for */
    bool spawning;         /* inside kx_spawn: a failure is its return, not exec_exited() */
    bool gated;            /* waiting in kb_when_ready(): no Pod yet */
    bool stop_posted;      /* stopped while gated: its end is posted */
    unsigned created_at;   /* kx->lists_sent when its creation was answered */
    /* The log, read with timestamps=true so that a broken stream resumes
     * with sinceTime: lines up to the last timestamp seen are skipped (the
     * first last_n of those that carry it exactly), nothing repeated. */
    char *lbuf;
    size_t llen;
    char last_ts[48];      /* the newest line's timestamp, or "" */
    unsigned last_n;       /* lines seen that carry last_ts */
    char skip_ts[48];      /* resuming: skip lines older than this... */
    unsigned skip_n;       /* ...and this many that carry it */
    bool catchup;          /* the request after the container's end */
    int resumes;           /* in a row without a line */
    int exit_code;
    char term_reason[64];
    char *fail;
    int fail_status;
    /* framed (under kiln-pod-helper): records, resumed by sequence number */
    bool framed, got_exit, output_started, bad_warned;
    bool held_end;         /* the log request ended while paused with lines waiting */
    int held_err, held_status;
    char held_msg[400];
    uint64_t last_seq;     /* the newest record delivered */
    uint64_t lost;         /* records the log no longer had when read again */
    char *output_file;     /* $KILN_OUTPUT on the host, when the helper sends it */
    char *fbuf;            /* a record's decoded payload */
    size_t fcap;
};

/* ---- owners -------------------------------------------------------------- */

static long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    long long v = -1;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (++field == 22) {
            v = atoll(tok);
            break;
        }
    return v;
}

static void host_label(char *out, size_t cap)
{
    char host[128];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    host[30] = '\0'; /* HOST.PID.START stays within a label's 63 */
    kube_label_value(host, out, cap);
}

/* Owner labels are HOST.PID.START. Is that kiln still running? Owners of
 * other hosts are taken as alive: a cluster is shared by many machines. */
static bool owner_alive(const char *owner)
{
    char host[64];
    host_label(host, sizeof host);
    size_t hl = strlen(host);
    if (strncmp(owner, host, hl) || owner[hl] != '.')
        return true;
    const char *p = owner + hl + 1;
    char *end;
    long pid = strtol(p, &end, 10);
    if (*end != '.')
        return true;
    long long start = atoll(end + 1);
    return pid > 0 && proc_start(pid) == start;
}

/* ---- requests -------------------------------------------------------------- */

static k8_conn_opts conn_opts(const struct kx *kx)
{
    k8_conn_opts o;
    memset(&o, 0, sizeof o);
    o.kubeconfig = kx->kubeconfig;
    o.kubeconfig_env = kx->kubeconfig_env;
    o.home = kx->home;
    o.context = kx->context;
    return o;
}

static void set_auth(struct kx *kx)
{
    free(kx->auth);
    kx->auth = kx->conn.token ? kp_xasprintf("Authorization: Bearer %s", kx->conn.token) : NULL;
}

/* Before a request: an exec plugin's credential that ends within the margin
 * is asked for again (k8_conn_renew, as k8s-deploy does; here synchronously,
 * as kubectl does: once an hour for GKE's). A plugin that fails then is said
 * once and not asked again. */
static void renew_credentials(struct kx *kx)
{
    if (!k8_conn_expiring(&kx->conn, (long long)time(NULL)))
        return;
    k8_conn_opts o = conn_opts(kx);
    char err[1200];
    if (k8_conn_renew(&o, &kx->conn, err, sizeof err) < 0) {
        kiln_warn(kx->self, "executor kubernetes: cannot renew the credentials that expire now: %s", err);
        return;
    }
    set_auth(kx);
    kiln_info(kx->self, "executor kubernetes: credentials renewed (%s)", kx->conn.source);
}

/* The connection's TLS settings and client certificate, into r. */
static void req_conn(const struct kx *kx, kiln_http_req *r)
{
    r->ca_file = kx->conn.ca_file;
    r->ca_pem = kx->conn.ca_pem;
    r->cert_pem = kx->conn.cert_pem;
    r->key_pem = kx->conn.key_pem;
    r->insecure = kx->conn.insecure;
}

static int request(struct kx *kx, const char *method, const char *url, const char *body,
                   const char *ctype, kiln_http_data_cb on_data, void *on_data_data, kiln_http_cb cb,
                   void *data, kiln_http **out)
{
    renew_credentials(kx);
    const char *hdrs[4] = {NULL, NULL, NULL, NULL};
    size_t nh = 0;
    hdrs[nh++] = "Accept: application/json";
    if (body)
        hdrs[nh++] = ctype ? ctype : "Content-Type: application/json";
    if (kx->auth)
        hdrs[nh++] = kx->auth;
    kiln_http_req r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.method = method;
    r.url = url;
    r.headers = hdrs;
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    r.on_data = on_data;
    r.on_data_data = on_data_data;
    req_conn(kx, &r);
    return kiln_api->http_request_obj(KILN_OBJ(kx->self), &r, cb, data, out);
}

/* The message of a Status body, else the body, else the transport error. */
static const char *api_message(int err, const kiln_http_resp *resp, char *buf, size_t cap)
{
    if (err)
        return resp && resp->error ? resp->error : kiln_api->strerror(err);
    cJSON *j = resp->body ? cJSON_Parse(resp->body) : NULL;
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
    snprintf(buf, cap, "HTTP %d: %s", resp->status, m ? m : resp->body ? resp->body : "no body");
    cJSON_Delete(j);
    return buf;
}

/* ---- one Pod ---------------------------------------------------------------- */

static void unlist(kpod *p)
{
    if (!p->listed)
        return;
    for (kpod **pp = &p->kx->pods; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->listed = false;
}

static void stop_watch(struct kx *kx)
{
    kx->watching = false;
    kx->wlen = 0;
    if (kx->watch) {
        kiln_http *w = kx->watch;
        kx->watch = NULL; /* its callback, with KILN_ECANCELED, is ignored */
        kiln_api->http_abort(w);
    }
}

/* No process left to follow: the watch goes, so that kiln's loop can end
 * with the build; the next spawn lists again. */
static void maybe_idle(struct kx *kx)
{
    for (kpod *p = kx->pods; p; p = p->next)
        if (p->x)
            return;
    stop_watch(kx);
}

static void p_maybe_free(kpod *p)
{
    if (p->x || p->pending)
        return;
    unlist(p);
    kb_forget(p->kx->kb, p);
    free(p->image);
    free(p->fail);
    free(p->lbuf);
    free(p->fbuf);
    free(p->output_file);
    free(p);
}

static kpod *find_pod(struct kx *kx, const char *name)
{
    for (kpod *p = kx->pods; p; p = p->next)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

static void on_deleted(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kpod *p = data;
    char m[400];
    /* 404: it is gone already, which is what was wanted. */
    if (err || (resp->status >= 300 && resp->status != 404))
        kiln_warn(p->kx->self, "executor kubernetes: cannot delete Pod %s: %s", p->name,
                  api_message(err, resp, m, sizeof m));
    p->pending--;
    if (!p->x)
        unlist(p); /* its later events do not matter any more */
    p_maybe_free(p);
}

static void delete_pod(kpod *p, int64_t grace_s)
{
    if (p->delete_asked || p->deleted)
        return;
    p->delete_asked = true;
    if (!p->created)
        return; /* on_created deletes it */
    char *url = kp_xasprintf("%s/%s?gracePeriodSeconds=%lld", p->kx->pods_url, p->name, (long long)grace_s);
    if (request(p->kx, "DELETE", url, NULL, NULL, NULL, NULL, on_deleted, p, NULL) == 0)
        p->pending++;
    free(url);
}

/* A log request's end held by a pause (on_logs) no longer matters. */
static void release_held(kpod *p)
{
    if (p->held_end) {
        p->held_end = false;
        p->pending--;
    }
}

/* The process is over for the host: report once, then delete the Pod. */
static void finish(kpod *p)
{
    if (!p->x)
        return;
    kiln_exec *x = p->x;
    p->x = NULL;
    release_held(p);
    if (p->logs)
        kiln_api->http_abort(p->logs);
    if (p->deadline)
        kiln_api->http_abort(p->deadline);
    int status = p->exit_code;
    char reason[600] = "";
    if (p->fail) {
        status = p->fail_status;
        snprintf(reason, sizeof reason, "%s", p->fail);
    } else if (p->deleted_by_other) {
        /* The kubelet stopped it because someone deleted the Pod: not
         * the step's own end, whatever its exit code says. */
        status = KILN_EIO;
        snprintf(reason, sizeof reason,
                 "Pod %s was deleted by someone else while it ran (its container ended with exit code %d)",
                 p->name, p->exit_code);
    } else if (!strcmp(p->term_reason, "OOMKilled")) {
        status = 137;
        snprintf(reason, sizeof reason,
                 "Pod %s: the container was OOMKilled (over its memory limit): exit code 137", p->name);
    }
    kiln_api->exec_exited(x, status, reason[0] ? reason : NULL);
    delete_pod(p, 0);
    maybe_idle(p->kx);
    if (p->deleted || !p->created)
        unlist(p);
    p_maybe_free(p);
}

static void fail(kpod *p, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(kpod *p, int status, const char *fmt, ...)
{
    if (!p->fail) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&p->fail, fmt, ap) < 0)
            abort();
        va_end(ap);
        p->fail_status = status;
    }
    finish(p);
}

static void maybe_done(kpod *p)
{
    if (p->x && p->terminated && (p->logs_done || !p->logs_started))
        finish(p);
}

/* RFC 3339 timestamps, as the kubelet writes them (fraction optional):
 * <0, 0, >0. Compared as seconds, then the fraction padded to 9 digits. */
static int ts_cmp(const char *a, const char *b)
{
    size_t la = strcspn(a, ".Z"), lb = strcspn(b, ".Z");
    int c = strncmp(a, b, la < lb ? la : lb);
    if (c || la != lb)
        return c ? c : (la < lb ? -1 : 1);
    char fa[10] = "000000000", fb[10] = "000000000";
    if (a[la] == '.')
        memcpy(fa, a + la + 1, strspn(a + la + 1, "0123456789") < 9 ? strspn(a + la + 1, "0123456789") : 9);
    if (b[lb] == '.')
        memcpy(fb, b + lb + 1, strspn(b + lb + 1, "0123456789") < 9 ? strspn(b + lb + 1, "0123456789") : 9);
    return strcmp(fa, fb);
}

/* The payload of a KUBE_FRAME_OUTPUT record: appended to $KILN_OUTPUT,
 * which the first one empties. */
static void output_record(kpod *p, const char *b, size_t n)
{
    if (!p->output_file)
        return;
    FILE *f = fopen(p->output_file, p->output_started ? "ab" : "wb");
    p->output_started = true;
    if (!f || fwrite(b, 1, n, f) != n)
        kiln_warn(p->kx->self, "executor kubernetes: Pod %s: cannot write its outputs to %s: %s", p->name,
                  p->output_file, strerror(errno));
    if (f)
        fclose(f);
}

/* One line of a framed log (kube_frame.h): a record is delivered once, in
 * sequence order; one seen before a broken stream was read again is
 * skipped; a gap (the kubelet rotated the log file away while the stream
 * was reconnecting) is said on the step's stderr with the number of
 * records lost. A line that is not a record goes to stdout as it is. */
static void frame_line(kpod *p, const char *text, size_t len, bool nl)
{
    if (p->fcap < len + 1) {
        p->fcap = len + 1 > 4096 ? len + 1 : 4096;
        free(p->fbuf);
        p->fbuf = malloc(p->fcap);
        if (!p->fbuf)
            abort();
    }
    kube_frame f;
    const char *why = NULL;
    int r = kube_frame_parse(text, len, &f, p->fbuf, &why);
    if (r <= 0) {
        if (r < 0 && !p->bad_warned) {
            p->bad_warned = true;
            kiln_warn(p->kx->self, "executor kubernetes: Pod %s: a log line that is not a whole record (%s): "
                      "passed on as it is", p->name, why);
        }
        kiln_api->exec_output(p->x, KILN_STREAM_STDOUT, text, len + nl);
        return;
    }
    if (f.seq <= p->last_seq)
        return; /* delivered before the stream broke */
    if (f.seq > p->last_seq + 1) {
        uint64_t gap = f.seq - p->last_seq - 1;
        p->lost += gap;
        char msg[300];
        int m = snprintf(msg, sizeof msg,
                         "kiln: %llu records of this step's output (records %llu to %llu) were no longer in Pod "
                         "%s's log when its stream was read again (the kubelet rotated the log file)\n",
                         (unsigned long long)gap, (unsigned long long)p->last_seq + 1,
                         (unsigned long long)f.seq - 1, p->name);
        kiln_warn(p->kx->self, "executor kubernetes: Pod %s: %llu records of output lost to a log rotation",
                  p->name, (unsigned long long)gap);
        kiln_api->exec_output(p->x, KILN_STREAM_STDERR, msg, (size_t)m);
    }
    p->last_seq = f.seq;
    p->resumes = 0; /* a new record: the stream moves on */
    switch (f.type) {
    case KUBE_FRAME_STDOUT:
        kiln_api->exec_output(p->x, KILN_STREAM_STDOUT, p->fbuf, f.len);
        break;
    case KUBE_FRAME_STDERR:
        kiln_api->exec_output(p->x, KILN_STREAM_STDERR, p->fbuf, f.len);
        break;
    case KUBE_FRAME_OUTPUT:
        output_record(p, p->fbuf, f.len);
        break;
    default:
        p->got_exit = true;
        break;
    }
}

/* One line "TIMESTAMP TEXT\n" (nl: it ended with a newline). */
static void log_line(kpod *p, char *line, size_t len, bool nl)
{
    char *sp = memchr(line, ' ', len);
    if (!sp || (size_t)(sp - line) >= sizeof p->last_ts) {
        if (p->framed)
            frame_line(p, line, len, nl); /* a record the server sent without its timestamp */
        else
            kiln_api->exec_output(p->x, KILN_STREAM_STDOUT, line, len + nl); /* no timestamp: as is */
        return;
    }
    char ts[48];
    memcpy(ts, line, (size_t)(sp - line));
    ts[sp - line] = '\0';
    if (p->skip_ts[0]) {
        int c = ts_cmp(ts, p->skip_ts);
        if (c < 0 || (c == 0 && p->skip_n > 0)) {
            if (c == 0)
                p->skip_n--;
            return; /* already delivered before the stream broke */
        }
        p->skip_ts[0] = '\0';
    }
    if (!strcmp(ts, p->last_ts)) {
        p->last_n++;
    } else {
        snprintf(p->last_ts, sizeof p->last_ts, "%s", ts);
        p->last_n = 1;
    }
    if (p->framed) {
        frame_line(p, sp + 1, len - (size_t)(sp + 1 - line), nl);
        return;
    }
    p->resumes = 0;
    kiln_api->exec_output(p->x, KILN_STREAM_STDOUT, sp + 1, len - (size_t)(sp + 1 - line) + nl);
}

/* The whole lines of lbuf to the host, until a sink is above its
 * high-water mark (pause() sets paused from inside exec_output): the rest
 * waits in lbuf, the request is held (http_pause_recv), and what it holds
 * comes, after resume(), behind it. FORCE: the stream is over, all of it. */
static void drain_lines(kpod *p, bool force)
{
    size_t start = 0;
    char *nl;
    while (p->x && (force || !p->paused) && (nl = memchr(p->lbuf + start, '\n', p->llen - start))) {
        size_t n = (size_t)(nl - (p->lbuf + start));
        log_line(p, p->lbuf + start, n, true);
        start += n + 1;
    }
    memmove(p->lbuf, p->lbuf + start, p->llen - start);
    p->llen -= start;
}

static int on_log_data(void *data, const char *buf, size_t len)
{
    kpod *p = data;
    if (!p->x)
        return KILN_ECANCELED;
    /* pods/log merges the container's stdout and stderr. */
    p->lbuf = realloc(p->lbuf, p->llen + len + 1);
    if (!p->lbuf)
        abort();
    memcpy(p->lbuf + p->llen, buf, len);
    p->llen += len;
    drain_lines(p, false);
    return 0;
}

static void open_logs(kpod *p, bool follow);

static void logs_ended(kpod *p, int err, int status, const char *msg);

static void on_logs(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kpod *p = data;
    p->logs = NULL;
    char m[400];
    const char *msg = api_message(err, resp, m, sizeof m);
    if (p->x && p->paused && memchr(p->lbuf, '\n', p->llen)) {
        /* A sink is above its mark and whole lines wait: what this end
         * means is decided after resume() has delivered them. */
        p->held_end = true;
        p->held_err = err;
        p->held_status = resp ? resp->status : 0;
        snprintf(p->held_msg, sizeof p->held_msg, "%s", msg);
        return; /* the request still counts in pending */
    }
    logs_ended(p, err, resp ? resp->status : 0, msg);
}

/* The end of one log request (ERR, STATUS and MSG as its answer said):
 * read on, once more after the container's end, or done. */
static void logs_ended(kpod *p, int err, int status, const char *msg)
{
    if (p->x && p->llen)
        drain_lines(p, true); /* whole lines a pause left */
    if (p->x) {
        bool broke = (err && err != KILN_ECANCELED) || status >= 300;
        if (p->framed && p->got_exit) {
            /* the helper's last record: the log is whole */
        } else if (status >= 300 || p->resumes >= 10) {
            /* refused, or ten ends in a row without a line */
            if (broke)
                kiln_warn(p->kx->self, "executor kubernetes: Pod %s: reading its log: %s", p->name, msg);
        } else if (!p->catchup) {
            /* A follow ends with the container, or breaks (an API server
             * restart, the kubelet's log rotation): read on from the last
             * line seen. After the container's end, once more without
             * follow, in case the follow stopped early. */
            p->llen = 0; /* a partial line comes again, whole */
            p->resumes++;
            if (!p->terminated) {
                open_logs(p, true);
            } else {
                p->catchup = true;
                open_logs(p, false);
            }
            if (p->logs) {
                p->pending--;
                return;
            }
        }
        if (p->llen && p->x)
            log_line(p, p->lbuf, p->llen, false); /* the last line had no newline */
        if (p->framed && !p->got_exit && p->x && !p->fail && !p->delete_asked)
            kiln_warn(p->kx->self, "executor kubernetes: Pod %s: its log ended before kiln-pod-helper's exit "
                      "record: the end of its output may be missing", p->name);
        p->llen = 0;
        p->logs_done = true;
        maybe_done(p); /* p stays: this request still counts in pending */
    }
    p->pending--;
    p_maybe_free(p);
}

static void open_logs(kpod *p, bool follow)
{
    char since[80] = "";
    if (p->last_ts[0] && p->framed) {
        /* Framed: from the newest record's own timestamp, to the
         * nanosecond (a server that keeps only the second sends a little
         * more); records already delivered are known by their number. */
        snprintf(since, sizeof since, "&sinceTime=%s", p->last_ts);
    } else if (p->last_ts[0]) {
        /* sinceTime in whole seconds (what every server accepts); the
         * lines of that second already seen are skipped by timestamp. */
        snprintf(since, sizeof since, "&sinceTime=%.*sZ", (int)strcspn(p->last_ts, ".Z"), p->last_ts);
        snprintf(p->skip_ts, sizeof p->skip_ts, "%s", p->last_ts);
        p->skip_n = p->last_n;
    }
    char *url = kp_xasprintf("%s/%s/log?container=step&timestamps=true%s%s", p->kx->pods_url, p->name,
                          follow ? "&follow=true" : "", since);
    int rc = request(p->kx, "GET", url, NULL, NULL, on_log_data, p, on_logs, p, &p->logs);
    free(url);
    if (rc == 0) {
        p->pending++;
        if (p->paused)
            kiln_api->http_pause_recv(p->logs, true);
    }
}

static void start_logs(kpod *p)
{
    if (p->logs_started || !p->x)
        return;
    p->logs_started = true;
    open_logs(p, true);
    if (!p->logs)
        p->logs_done = true;
}

static int on_discard(void *data, const char *buf, size_t len)
{
    return 0;
}

/* The helper's init container could not run: the step fails saying so. */
static bool helper_failed(kpod *p, const cJSON *status)
{
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(status, "initContainerStatuses"))
    {
        const char *cn = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "name"));
        if (!cn || strcmp(cn, KUBE_HELPER_INIT))
            continue;
        const cJSON *state = cJSON_GetObjectItem(cs, "state");
        const cJSON *w = cJSON_GetObjectItem(state, "waiting");
        const cJSON *t = cJSON_GetObjectItem(state, "terminated");
        const char *wr = cJSON_GetStringValue(cJSON_GetObjectItem(w, "reason"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(w ? w : t, "message"));
        const cJSON *ec = cJSON_GetObjectItem(t, "exitCode");
        if (kube_start_failure(wr)) {
            fail(p, KILN_ENOTFOUND,
                 "Pod %s: the helper image %s cannot be used: %s%s%s (publish it where the cluster pulls "
                 "from: make pod-helper-image, docs/KUBERNETES.md; or leave helperImage unset)",
                 p->name, p->kx->helper_image, wr, msg ? ": " : "", msg ? msg : "");
            return true;
        }
        if (cJSON_IsNumber(ec) && ec->valueint != 0) {
            fail(p, KILN_ESPAWN, "Pod %s: the helper's init container (image %s) failed with exit code %d%s%s",
                 p->name, p->kx->helper_image, ec->valueint, msg ? ": " : "", msg ? msg : "");
            return true;
        }
    }
    return false;
}

/* What a watch event (or a listed object) says about one of our Pods. */
/* Why the Pod went with its node, or NULL: the node lifecycle controller's
 * NodeLost, the Pod garbage collector's or the taint manager's
 * DisruptionTarget condition (orphaned by a node that no longer exists,
 * evicted from one unreachable); or, for a Pod pinned to the build's node
 * (pvc-rwo), a delete by someone else before a kubelet wrote any container
 * status: a Pod bound to a node that left stays Pending, untouched, until
 * PodGC removes it. */
static const char *node_gone(const kpod *p, const cJSON *obj, const char *node, bool pinned, char *buf,
                             size_t cap)
{
    const cJSON *status = cJSON_GetObjectItem(obj, "status");
    const char *preason = cJSON_GetStringValue(cJSON_GetObjectItem(status, "reason"));
    if (preason && !strcmp(preason, "NodeLost"))
        return "NodeLost";
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(status, "conditions"))
    {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"));
        const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(c, "reason"));
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(c, "message"));
        if (t && r && !strcmp(t, "DisruptionTarget") &&
            (!strcmp(r, "DeletionByPodGC") || !strcmp(r, "DeletionByTaintManager"))) {
            snprintf(buf, cap, "%s%s%s", r, m ? ": " : "", m ? m : "");
            return buf;
        }
    }
    if (pinned && node && p->deleted_by_other && !cJSON_GetObjectItem(status, "containerStatuses"))
        return "deleted by someone else before any kubelet took it up";
    return NULL;
}

static void pod_event(struct kx *kx, const char *type, const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItem(obj, "metadata");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "name"));
    kpod *p = name ? find_pod(kx, name) : NULL;
    if (!p)
        return;
    p->created = true; /* the watch may come before the POST's answer */
    kb_pod_node(kx->kb, cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "nodeName")));
    if (!strcmp(type, "DELETED"))
        p->deleted = true;
    if ((p->deleted || cJSON_GetObjectItem(meta, "deletionTimestamp")) && !p->delete_asked)
        p->deleted_by_other = true;
    if (!p->x) {
        if (p->deleted)
            unlist(p);
        p_maybe_free(p);
        return;
    }
    const cJSON *status = cJSON_GetObjectItem(obj, "status");
    const cJSON *cs;
    const cJSON *ctr = NULL;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(status, "containerStatuses"))
    {
        const char *cn = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "name"));
        if (cn && !strcmp(cn, "step"))
            ctr = cs;
    }
    if (p->framed && helper_failed(p, status))
        return;
    if (p->terminated) {
        maybe_done(p); /* only its log is still awaited */
        return;
    }
    const cJSON *state = cJSON_GetObjectItem(ctr, "state");
    const cJSON *term = cJSON_GetObjectItem(state, "terminated");
    const cJSON *waiting = cJSON_GetObjectItem(state, "waiting");
    if (term) {
        const cJSON *ec = cJSON_GetObjectItem(term, "exitCode");
        const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(term, "reason"));
        if (!p->terminated) {
            p->terminated = true;
            p->exit_code = cJSON_IsNumber(ec) ? ec->valueint : 1;
            snprintf(p->term_reason, sizeof p->term_reason, "%s", r ? r : "");
            start_logs(p); /* a Pod that ended before we looked: its whole log */
            maybe_done(p);
        }
        return;
    }
    if (cJSON_GetObjectItem(state, "running"))
        start_logs(p);
    const char *wr = cJSON_GetStringValue(cJSON_GetObjectItem(waiting, "reason"));
    if (kube_start_failure(wr)) {
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(waiting, "message"));
        fail(p, KILN_ENOTFOUND, "Pod %s: image %s cannot be used: %s%s%s", p->name, p->image, wr,
             msg ? ": " : "", msg ? msg : "");
        return;
    }
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "nodeName"));
    const char *build_node = kb_node(kx->kb);
    bool pinned = build_node && node && !strcmp(node, build_node);
    char why[300];
    const char *gone = node ? node_gone(p, obj, node, pinned, why, sizeof why) : NULL;
    if (gone && pinned) {
        /* Every later Pod of the build would wait for that node for good. */
        char *m = kp_xasprintf("the build's node %s is gone (Pod %s: %s): workspace=pvc-rwo keeps the build's "
                               "Pods on the node of its ReadWriteOnce claim, so the build cannot go on",
                               node, p->name, gone);
        kb_node_gone(kx->kb, m);
        fail(p, KILN_EIO, "%s", m);
        free(m);
        return;
    }
    if (gone && (p->deleted || p->deleted_by_other)) {
        fail(p, KILN_EIO, "Pod %s: its node %s is gone (%s)", p->name, node, gone);
        return;
    }
    const char *phase = cJSON_GetStringValue(cJSON_GetObjectItem(status, "phase"));
    const char *preason = cJSON_GetStringValue(cJSON_GetObjectItem(status, "reason"));
    /* A phase may come before the container's terminated state (Woodpecker
     * met it): only a Pod failed for a reason of its own (Evicted,
     * DeadlineExceeded, NodeLost...) ends the process here. */
    if (phase && !strcmp(phase, "Failed") && preason) {
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(status, "message"));
        fail(p, KILN_EIO, "Pod %s failed before its container ended: %s%s%s", p->name, preason,
             msg ? ": " : "", msg ? msg : "");
        return;
    }
    if (p->deleted) {
        if (p->delete_asked)
            fail(p, 128 + SIGTERM, "Pod %s was deleted before its container's end was seen", p->name);
        else
            fail(p, KILN_EIO, "Pod %s was deleted by someone else before its container ended", p->name);
    }
}

static void on_created(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kpod *p = data;
    p->pending--;
    p->create = NULL;
    char m[400];
    bool ok = !err && resp->status == 201;
    if (ok) {
        p->created = true;
        p->created_at = p->kx->lists_sent;
    }
    if (!p->x) {
        if (ok) {
            p->delete_asked = false;
            delete_pod(p, 0);
        }
        p_maybe_free(p);
        return;
    }
    if (!ok) {
        fail(p, KILN_ESPAWN, "cannot create Pod %s (image %s) in namespace %s: %s", p->name, p->image,
             p->kx->ns, api_message(err, resp, m, sizeof m));
        return;
    }
    if (p->delete_asked) {
        p->delete_asked = false;
        delete_pod(p, (p->grace_ms + 999) / 1000);
    }
}

/* ---- the build's watch --------------------------------------------------- */

static void start_watch(struct kx *kx);
static void start_list(struct kx *kx);

/* The watch cannot be had any more: every Pod still followed fails. */
static void watch_lost(struct kx *kx)
{
    kx->watching = false;
    kpod *next;
    for (kpod *p = kx->pods; p; p = next) {
        next = p->next;
        if (p->x)
            fail(p, KILN_EIO, "lost the watch on the API server (%s) while Pod %s ran", kx->watch_error,
                 p->name);
    }
}

static void watch_line(struct kx *kx, const char *line)
{
    cJSON *j = cJSON_Parse(line);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "type"));
    const cJSON *obj = cJSON_GetObjectItem(j, "object");
    if (!type || !obj) {
        cJSON_Delete(j);
        return;
    }
    if (!strcmp(type, "ERROR")) {
        const cJSON *code = cJSON_GetObjectItem(obj, "code");
        if (cJSON_IsNumber(code) && code->valueint == 410)
            kx->relist = true; /* too old a resourceVersion: list again */
        cJSON_Delete(j);
        return;
    }
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "resourceVersion"));
    if (rv)
        snprintf(kx->rv, sizeof kx->rv, "%s", rv);
    kx->watch_fails = 0;
    if (strcmp(type, "BOOKMARK"))
        pod_event(kx, type, obj);
    cJSON_Delete(j);
}

static int on_watch_data(void *data, const char *buf, size_t len)
{
    struct kx *kx = data;
    kx->wbuf = realloc(kx->wbuf, kx->wlen + len + 1);
    if (!kx->wbuf)
        abort();
    memcpy(kx->wbuf + kx->wlen, buf, len);
    kx->wlen += len;
    kx->wbuf[kx->wlen] = '\0';
    kiln_http *mine = kx->watch;
    char *start = kx->wbuf, *nl;
    while ((nl = memchr(start, '\n', kx->wlen - (size_t)(start - kx->wbuf)))) {
        *nl = '\0';
        watch_line(kx, start);
        /* The last Pod ended inside: this watch was stopped (and maybe a
         * new list started by the next spawn); its buffer is not ours. */
        if (kx->watch != mine)
            return 0;
        start = nl + 1;
    }
    size_t left = kx->wlen - (size_t)(start - kx->wbuf);
    memmove(kx->wbuf, start, left);
    kx->wlen = left;
    return 0;
}

static void on_watch(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct kx *kx = data;
    if (h != kx->watch)
        return; /* stopped */
    kx->watch = NULL;
    kx->wlen = 0;
    if (kx->closing)
        return;
    char m[300];
    if ((err && err != KILN_ECANCELED) || resp->status >= 300) {
        snprintf(kx->watch_error, sizeof kx->watch_error, "%s", api_message(err, resp, m, sizeof m));
        kx->watch_fails++;
        if (resp && resp->status == 410)
            kx->relist = true;
    }
    if (kx->watch_fails >= WATCH_RETRIES) {
        watch_lost(kx);
        return;
    }
    /* A watch ends (timeoutSeconds, an API server restart): pick it up
     * where it was, or list again when the server forgot that version. */
    if (kx->relist)
        start_list(kx);
    else
        start_watch(kx);
}

static void start_watch(struct kx *kx)
{
    char *url = kp_xasprintf("%s?labelSelector=" KUBE_LABEL_BUILD "%%3D%s&watch=true&resourceVersion=%s"
                          "&allowWatchBookmarks=true&timeoutSeconds=300",
                          kx->pods_url, kx->build_id, kx->rv);
    if (request(kx, "GET", url, NULL, NULL, on_watch_data, kx, on_watch, kx, &kx->watch)) {
        snprintf(kx->watch_error, sizeof kx->watch_error, "cannot send the watch request");
        watch_lost(kx);
    }
    free(url);
}

static void on_list(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct kx *kx = data;
    if (h != kx->watch)
        return; /* stopped */
    kx->watch = NULL;
    if (kx->closing)
        return;
    char m[300];
    cJSON *j = !err && resp->status == 200 ? cJSON_Parse(resp->body) : NULL;
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "resourceVersion"));
    if (!rv) {
        snprintf(kx->watch_error, sizeof kx->watch_error, "listing Pods: %s",
                 j ? "no resourceVersion" : api_message(err, resp, m, sizeof m));
        cJSON_Delete(j);
        if (++kx->watch_fails >= WATCH_RETRIES)
            watch_lost(kx);
        else
            start_list(kx);
        return;
    }
    snprintf(kx->rv, sizeof kx->rv, "%s", rv);
    kx->relist = false;
    kx->watch_fails = 0;
    /* Every Pod as it is now; a Pod we made that the list lacks is gone. */
    kpod *next;
    for (kpod *p = kx->pods; p; p = next) {
        next = p->next;
        const cJSON *it, *found = NULL;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "items"))
        {
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(it, "metadata"), "name"));
            if (n && !strcmp(n, p->name))
                found = it;
        }
        if (found) {
            pod_event(kx, "MODIFIED", found);
        } else if (p->created && p->created_at < kx->lists_sent) {
            /* Created before this list was asked for, and not in it: gone.
             * (One created since may simply be newer than the list.) */
            cJSON *fake = cJSON_CreateObject();
            cJSON_AddStringToObject(cJSON_AddObjectToObject(fake, "metadata"), "name", p->name);
            pod_event(kx, "DELETED", fake);
            cJSON_Delete(fake);
        }
    }
    cJSON_Delete(j);
    /* Unless the last Pod ended above (and maybe a next spawn listed). */
    if (kx->watching && !kx->watch)
        start_watch(kx);
}

static void start_list(struct kx *kx)
{
    kx->watching = true;
    kx->lists_sent++;
    char *url = kp_xasprintf("%s?labelSelector=" KUBE_LABEL_BUILD "%%3D%s", kx->pods_url, kx->build_id);
    if (request(kx, "GET", url, NULL, NULL, NULL, NULL, on_list, kx, &kx->watch)) {
        snprintf(kx->watch_error, sizeof kx->watch_error, "cannot send the list request");
        watch_lost(kx);
    }
    free(url);
}

/* ---- leftovers ----------------------------------------------------------- */

struct sweep {
    struct kx *kx;
    char *what;   /* pods, persistentvolumeclaims */
    bool dead_owners; /* else: this build's */
    bool counts_for_close;
};

static void on_swept_one(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct kx *kx = data;
    if (--kx->close_pending == 0 && kx->close_done) {
        void (*done)(void *) = kx->close_done;
        kx->close_done = NULL;
        done(kx->close_arg);
    }
}

static void on_sweep_list(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct sweep *sw = data;
    struct kx *kx = sw->kx;
    cJSON *j = !err && resp->status == 200 ? cJSON_Parse(resp->body) : NULL;
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "items"))
    {
        const cJSON *meta = cJSON_GetObjectItem(it, "metadata");
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "name"));
        const char *owner =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "labels"), KUBE_LABEL_OWNER));
        if (!name || (sw->dead_owners && (!owner || owner_alive(owner))))
            continue;
        char *url = kp_xasprintf("%s/api/v1/namespaces/%s/%s/%s?gracePeriodSeconds=0", kx->conn.server, kx->ns,
                              sw->what, name);
        if (request(kx, "DELETE", url, NULL, NULL, NULL, NULL, on_swept_one, kx, NULL) == 0)
            kx->close_pending++;
        free(url);
        n++;
    }
    if (n && sw->dead_owners)
        kiln_warn(kx->self, "executor kubernetes: removing %d %s left by builds no longer running", n, sw->what);
    cJSON_Delete(j);
    free(sw->what);
    free(sw);
    on_swept_one(h, kx, 0, NULL); /* the list itself counted as one */
}

static void sweep(struct kx *kx, const char *what, bool dead_owners)
{
    struct sweep *sw = calloc(1, sizeof *sw);
    if (!sw)
        abort();
    sw->kx = kx;
    sw->what = kp_xstrdup(what);
    sw->dead_owners = dead_owners;
    char *url = dead_owners
                    ? kp_xasprintf("%s/api/v1/namespaces/%s/%s?labelSelector=" KUBE_LABEL_OWNER, kx->conn.server,
                                kx->ns, what)
                    : kp_xasprintf("%s/api/v1/namespaces/%s/%s?labelSelector=" KUBE_LABEL_BUILD "%%3D%s",
                                kx->conn.server, kx->ns, what, kx->build_id);
    if (request(kx, "GET", url, NULL, NULL, NULL, NULL, on_sweep_list, sw, NULL) == 0) {
        kx->close_pending++;
    } else {
        free(sw->what);
        free(sw);
    }
    free(url);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* hostpath mode: the build directories ($TMPDIR/kiln-k8s-BUILD, holding
 * an "owner" file) of kilns of this host that no longer run. */
static void sweep_host_dirs(const char *tmp)
{
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/kiln-k8s-*/owner", tmp);
    glob_t g;
    if (glob(pat, 0, NULL, &g))
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "r");
        char owner[128] = "";
        if (!f)
            continue;
        bool got = fgets(owner, sizeof owner, f) != NULL;
        fclose(f);
        owner[strcspn(owner, "\n")] = '\0';
        if (!got || !owner[0] || owner_alive(owner))
            continue;
        char *dir = strndup(g.gl_pathv[i], strlen(g.gl_pathv[i]) - strlen("/owner"));
        if (dir)
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
    }
    globfree(&g);
}

/* ---- open and close --------------------------------------------------------- */

/* kube_build.c's requests go out as the executor's. */
static int kb_request(void *ctx, const char *method, const char *url, const char *body, const char *ctype,
                      kiln_http_data_cb on_data, void *on_data_data, kiln_http_cb cb, void *data,
                      kiln_http **out)
{
    return request(ctx, method, url, body, ctype, on_data, on_data_data, cb, data, out);
}

/* fill=upload: the ignore file read now, when the workspace is known
 * (the host gives it to open(), under kiln run and kiln serve), so that a
 * missing or malformed one stops the build before anything runs; the
 * pack reads it again. -1 when it is wrong (said). */
static int check_ignore(struct kx *kx, const char *which)
{
    const char *ws = kiln_api->workspace(KILN_OBJ(kx->self));
    if (!ws)
        return 0; /* not known yet: the fill says it */
    gi_rules g = {0};
    char err[1200];
    int rc = gi_choose(&g, ws, which, err, sizeof err);
    if (rc)
        kiln_error(kx->self, "executor kubernetes: %s%s", which && *which ? "uploadIgnore=" : "", err);
    gi_free(&g);
    return rc;
}

static int kx_open(void *plugin_data, const void *config, const char *build_id)
{
    struct kx *kx = plugin_data;
    const struct kx_config *c = config;
    kx->kubeconfig = c->kubeconfig ? kp_xstrdup(c->kubeconfig) : NULL;
    kx->kubeconfig_env = getenv("KUBECONFIG") ? kp_xstrdup(getenv("KUBECONFIG")) : NULL;
    kx->home = getenv("HOME") ? kp_xstrdup(getenv("HOME")) : NULL;
    kx->context = c->context ? kp_xstrdup(c->context) : NULL;
    k8_conn_opts o = conn_opts(kx);
    char err[1200];
    if (k8_conn_resolve(&o, &kx->conn, err, sizeof err)) {
        kiln_error(kx->self, "executor kubernetes: %s", err);
        return KILN_ECONFIG;
    }
    if (kx->conn.cert_pem && kiln_api->abi_minor < 9) {
        kiln_error(kx->self, "executor kubernetes: %s: a client certificate needs kiln 1.9's host (this one "
                             "is ABI 1.%u)",
                   kx->conn.source, (unsigned)kiln_api->abi_minor);
        return KILN_ECONFIG;
    }
    kx->ns = kp_xstrdup(c->ns && *c->ns ? c->ns : kx->conn.namespace_ ? kx->conn.namespace_ : "default");
    kx->sa = c->service_account ? kp_xstrdup(c->service_account) : NULL;
    kx->memory = c->memory ? kp_xstrdup(c->memory) : NULL;
    kx->cpu = c->cpu ? kp_xstrdup(c->cpu) : NULL;
    kx->ws_mode = c->workspace >= 1 ? KW_PVC : KW_HOSTPATH;
    if (c->fill != KB_FILL_NONE && kx->ws_mode != KW_PVC) {
        kiln_error(kx->self, "executor kubernetes: fill=%s needs workspace=pvc or pvc-rwo (with hostpath the "
                             "Pods use kiln's own workspace directory)", fill_choices[c->fill]);
        return KILN_ECONFIG;
    }
    if (c->git_secret && *c->git_secret && c->fill != KB_FILL_GIT) {
        kiln_error(kx->self, "executor kubernetes: gitSecret is for fill=git (the fill Pod's clone)");
        return KILN_ECONFIG;
    }
    if (c->upload_ignore && c->fill != KB_FILL_UPLOAD) {
        kiln_error(kx->self, "executor kubernetes: uploadIgnore is for fill=upload (what is left out of the upload)");
        return KILN_ECONFIG;
    }
    if (c->fill == KB_FILL_UPLOAD && check_ignore(kx, c->upload_ignore))
        return KILN_ECONFIG;
    kx->helper_image = c->helper_image && *c->helper_image ? kp_xstrdup(c->helper_image) : NULL;
    set_auth(kx);
    snprintf(kx->build_id, sizeof kx->build_id, "%s", build_id);
    char host[64];
    host_label(host, sizeof host);
    snprintf(kx->owner, sizeof kx->owner, "%.30s.%ld.%lld", host, (long)getpid(), proc_start(getpid()));
    kx->pods_url = kp_xasprintf("%s/api/v1/namespaces/%s/pods", kx->conn.server, kx->ns);
    /* What dead kilns left; runs as soon as the loop does. */
    sweep(kx, "pods", true);
    sweep(kx, "secrets", true);
    sweep(kx, "configmaps", true);
    char *claim_body = NULL;
    if (kx->ws_mode == KW_PVC) {
        sweep(kx, "persistentvolumeclaims", true);
        kx->claim = kp_xasprintf("kiln-%s-ws", build_id);
        kube_build b = {.build_id = kx->build_id, .owner = kx->owner, .ns = kx->ns, .claim = kx->claim};
        claim_body = kube_claim_body(&b, c->storage, c->storage_class, c->rwx && c->workspace != 2);
    } else {
        const char *tmp = getenv("TMPDIR");
        sweep_host_dirs(tmp && *tmp ? tmp : "/tmp");
        kx->host_dir = kp_xasprintf("%s/kiln-k8s-%s", tmp && *tmp ? tmp : "/tmp", build_id);
        if (mkdir(kx->host_dir, 0755) && errno != EEXIST) {
            kiln_error(kx->self, "executor kubernetes: cannot make %s: %s", kx->host_dir, strerror(errno));
            return KILN_EIO;
        }
        char *of = kp_xasprintf("%s/owner", kx->host_dir);
        FILE *f = fopen(of, "w");
        if (f) {
            fprintf(f, "%s\n", kx->owner);
            fclose(f);
        }
        free(of);
    }
    /* The owner first, then the claim; Pods wait for them (kube_build.c). */
    char *api = kp_xasprintf("%s/api/v1/namespaces/%s", kx->conn.server, kx->ns);
    kb_conf kc = {.self = kx->self, .api = api, .ns = kx->ns, .build_id = kx->build_id, .owner = kx->owner,
                  .request = kb_request, .ctx = kx, .claim_body = claim_body, .claim = kx->claim,
                  .pin_node = c->workspace == 2, .fill = c->fill, .fill_image = c->fill_image,
                  .git_url = c->git_url, .git_commit = c->git_commit, .git_secret = c->git_secret,
                  .upload_limit = (size_t)c->upload_limit_mib * 1024 * 1024, .upload_ignore = c->upload_ignore};
    kx->kb = kb_open(&kc);
    free(api);
    free(claim_body);
    if (!kx->kb)
        return KILN_ENOMEM;
    kiln_info(kx->self, "executor kubernetes: %s, namespace %s, workspace %s", kx->conn.source, kx->ns,
              ws_choices[c->workspace]);
    return 0;
}

static void kx_close(void *plugin_data, void (*done)(void *), void *arg)
{
    struct kx *kx = plugin_data;
    if (!kx->pods_url || kx->closing) {
        /* Never opened; or asked again (the host's loop ran dry, or kiln
         * serve waited long enough): finish now, as the container executor
         * does. The sweeps already sent go on; their answers no longer
         * call a done, so each close() is answered once: an earlier one
         * still waiting is replaced by this one (the host passes the same
         * done and arg), one after done was called is answered at once. */
        kx->close_done = NULL;
        done(arg);
        return;
    }
    kx->closing = true;
    kb_close(kx->kb);
    stop_watch(kx);
    kx->close_done = done;
    kx->close_arg = arg;
    kx->close_pending++; /* held until every sweep is sent */
    /* The owner's delete alone would do on a real cluster (its garbage
     * collector removes what the owner owns), but in its own time: the
     * explicit deletes make the end prompt and work where GC is slow. */
    sweep(kx, "configmaps", false);
    sweep(kx, "secrets", false);
    sweep(kx, "pods", false);
    if (kx->ws_mode == KW_PVC)
        sweep(kx, "persistentvolumeclaims", false);
    if (kx->host_dir)
        nftw(kx->host_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    on_swept_one(NULL, kx, 0, NULL);
}

/* ---- the executor's entries --------------------------------------------------- */

static void on_gate(void *data, char *body, const char *error)
{
    kpod *p = data;
    p->pending--;
    p->gated = false;
    if (!p->x) {
        free(body);
        p_maybe_free(p);
        return;
    }
    if (error && p->spawning) {
        p->fail = kp_xasprintf("cannot create Pod %s: %s", p->name, error);
        return;
    }
    if (error) {
        fail(p, KILN_ESPAWN, "cannot create Pod %s: %s", p->name, error);
        return;
    }
    if (p->delete_asked) {
        free(body);
        fail(p, 128 + SIGTERM, "Pod %s was stopped before it was created", p->name);
        return;
    }
    int rc = request(p->kx, "POST", p->kx->pods_url, body, NULL, NULL, NULL, on_created, p, &p->create);
    free(body);
    if (rc && p->spawning) {
        p->fail = kp_xasprintf("cannot send the create of Pod %s", p->name);
        return;
    }
    if (rc) {
        fail(p, KILN_ESPAWN, "cannot send the create of Pod %s", p->name);
        return;
    }
    p->pending++;
}

static int kx_spawn(kiln_exec *x, const kiln_exec_spec *s, void *plugin_data)
{
    struct kx *kx = plugin_data;
    if (!s->image || !s->argv || (!s->argv[0] && !s->image_entrypoint))
        return KILN_EINVAL;
    kb_fill(kx->kb, s->workspace); /* the first spawn starts it */
    const char *broken = kb_error(kx->kb);
    if (broken) {
        /* Said once per step: a spawn refused here reports nothing else. */
        kiln_error(kx->self, "executor kubernetes: step %s: %s", s->step_id, broken);
        return KILN_ESPAWN;
    }
    if (s->stdin_path)
        kiln_warn(kx->self, "executor kubernetes: step %s: its input file does not reach a Pod", s->step_id);
    kpod *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->kx = kx;
    p->x = x;
    p->image = kp_xstrdup(s->image);
    p->grace_ms = s->kill_grace_ms;
    /* A DNS-1123 name: kiln-BUILD8-STEP-N */
    char step[40];
    size_t k = 0;
    for (const char *c = s->step_id; *c && k < 24; c++) {
        char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (ok || (k && step[k - 1] != '-'))
            step[k++] = ok ? ch : '-';
    }
    while (k && step[k - 1] == '-')
        k--;
    step[k] = '\0';
    snprintf(p->name, sizeof p->name, "kiln-%.8s-%s%s%u", kx->build_id, step, k ? "-" : "", ++kx->seq);
    unsigned need = 0;
    char **keys = kb_secret_keys(kx->kb, s, &need);
    kube_build b = {.build_id = kx->build_id,
                    .owner = kx->owner,
                    .ns = kx->ns,
                    .service_account = kx->sa,
                    .memory = kx->memory,
                    .cpu = kx->cpu,
                    .workspace_mode = kx->ws_mode,
                    .claim = kx->claim,
                    .host_dir = kx->host_dir,
                    .secret = kb_secret_name(kx->kb),
                    .secret_keys = (const char *const *)keys,
                    .helper_image = kx->helper_image};
    p->framed = kx->helper_image && kube_helper_applies(s);
    if (p->framed && kx->ws_mode == KW_PVC && s->output_file)
        p->output_file = kp_xstrdup(s->output_file);
    char *body = kube_pod_body(&b, s, p->name);
    kb_keys_free(keys);
    p->next = kx->pods;
    kx->pods = p;
    p->listed = true;
    kiln_api->exec_set_data(x, p);
    /* Created once the build's owner (and Secret, fill, node) allow: on_gate,
     * maybe at once. */
    p->pending++;
    p->spawning = true;
    p->gated = true;
    kb_when_ready(kx->kb, body, need, p, on_gate, p);
    p->spawning = false;
    if (p->fail) {
        kiln_error(kx->self, "executor kubernetes: step %s: %s", s->step_id, p->fail);
        p->x = NULL;
        kiln_api->exec_set_data(x, NULL);
        p_maybe_free(p);
        return KILN_ESPAWN;
    }
    if (!kx->watching) {
        kx->watch_fails = 0;
        start_list(kx);
    }
    return 0;
}

static void on_deadline(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kpod *p = data;
    p->deadline = NULL;
    if (p->x && err == KILN_ETIMEDOUT)
        fail(p, 128 + SIGKILL, "Pod %s did not end within the grace period; the kubelet goes on stopping it",
             p->name);
    p->pending--;
    p_maybe_free(p);
}

/* SIGTERM, the grace period, SIGKILL: what the kubelet does when a Pod is
 * deleted with a grace period. Its end still comes from the watch; the
 * host gives it the grace period and a little more, so the process ends
 * here when the grace is over, whatever the kubelet reported by then (a
 * watch on this Pod whose client timeout is the grace: the executor has no
 * timer of its own). */
static void on_stopped_unmade(void *data)
{
    kpod *p = data;
    p->pending--;
    if (p->x && !p->created && !p->create)
        fail(p, 128 + SIGTERM,
             "Pod %s was stopped before it was created (it was waiting for the build's claim to be filled, or for "
             "the build's owner, Secret or node): nothing ran",
             p->name);
    p_maybe_free(p);
}

/* Stopped while it waits at the gate (the fill of the claim, most often):
 * no Pod, so no grace to give; its end is posted, not reported inside the
 * host's terminate() or signal(). The gate's answer, when it comes, finds
 * the Pod ended (on_gate) and creates nothing. True when so. */
static bool stop_unmade(kpod *p)
{
    if (!p->gated)
        return false;
    if (!p->stop_posted && kiln_api->post(KILN_OBJ(p->kx->self), on_stopped_unmade, p) == 0) {
        p->stop_posted = true;
        p->pending++;
    }
    return p->stop_posted;
}

static void kx_terminate(kiln_exec *x)
{
    kpod *p = kiln_api->exec_get_data(x);
    delete_pod(p, (p->grace_ms + 999) / 1000);
    if (p->deadline || stop_unmade(p))
        return;
    char *url = kp_xasprintf("%s?fieldSelector=metadata.name%%3D%s&watch=true&timeoutSeconds=%lld", p->kx->pods_url,
                          p->name, (long long)(p->grace_ms / 1000 + 5));
    renew_credentials(p->kx);
    kiln_http_req r;
    memset(&r, 0, sizeof r);
    const char *hdrs[2] = {p->kx->auth, NULL};
    r.struct_size = sizeof r;
    r.url = url;
    r.headers = hdrs;
    r.on_data = on_discard;
    r.timeout_ms = p->grace_ms > 0 ? p->grace_ms : 1;
    req_conn(p->kx, &r);
    if (kiln_api->http_request_obj(KILN_OBJ(p->kx->self), &r, on_deadline, p, &p->deadline) == 0)
        p->pending++;
    free(url);
}

static int kx_signal(kiln_exec *x, int signum)
{
    kpod *p = kiln_api->exec_get_data(x);
    if (signum == SIGTERM) {
        kx_terminate(x);
        return 0;
    }
    if (signum == SIGKILL) {
        /* 1 s: a grace of 0 would only remove the object, not the container. */
        p->delete_asked = false;
        delete_pod(p, 1);
        stop_unmade(p);
        return 0;
    }
    return KILN_EINVAL; /* no other signal reaches a Pod's process */
}

static void kx_abandon(kiln_exec *x)
{
    kpod *p = kiln_api->exec_get_data(x);
    p->x = NULL;
    release_held(p);
    if (p->logs)
        kiln_api->http_abort(p->logs);
    p->delete_asked = false;
    delete_pod(p, 1);
    if (p->deleted || !p->created)
        unlist(p);
    maybe_idle(p->kx);
    p_maybe_free(p);
}

static void kx_pause(kiln_exec *x)
{
    kpod *p = kiln_api->exec_get_data(x);
    p->paused = true;
    if (p->logs)
        kiln_api->http_pause_recv(p->logs, true);
}

static void kx_resume(kiln_exec *x)
{
    kpod *p = kiln_api->exec_get_data(x);
    p->paused = false;
    drain_lines(p, false); /* what the pause left in lbuf, first */
    if (p->held_end && !p->paused && p->x) {
        p->held_end = false;
        logs_ended(p, p->held_err, p->held_status, p->held_msg);
        return;
    }
    if (p->logs && !p->paused)
        kiln_api->http_pause_recv(p->logs, false);
}

static int kx_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    if (!KILN_API_HAS(api, exec_plugin_handle))
        return KILN_EABI;
    struct kx *kx = calloc(1, sizeof *kx);
    if (!kx)
        return KILN_ENOMEM;
    kx->self = self;
    *plugin_data = kx;
    return 0;
}

static void kx_destroy(void *plugin_data)
{
    struct kx *kx = plugin_data;
    kb_free(kx->kb);
    k8_conn_free(&kx->conn);
    free(kx->ns);
    free(kx->sa);
    free(kx->memory);
    free(kx->cpu);
    free(kx->claim);
    free(kx->host_dir);
    free(kx->helper_image);
    free(kx->auth);
    free(kx->kubeconfig);
    free(kx->kubeconfig_env);
    free(kx->home);
    free(kx->context);
    free(kx->pods_url);
    free(kx->wbuf);
    /* Pods still listed are those whose delete never answered. */
    kpod *next;
    for (kpod *p = kx->pods; p; p = next) {
        next = p->next;
        free(p->image);
        free(p->fail);
        free(p->lbuf);
        free(p->fbuf);
        free(p->output_file);
        free(p);
    }
    free(kx);
}

static const kiln_executor_ops kx_ops = {
    sizeof(kiln_executor_ops), kx_open, kx_spawn, kx_signal, kx_terminate, kx_abandon, kx_pause, kx_resume,
    kx_close,
};

static const kiln_plugin kx_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_EXECUTOR,
    .name = "kubernetes",
    .version = "0.1.0",
    .summary = "Runs each step as a Pod on a Kubernetes cluster (kubeconfig context, namespace)",
    .options = kx_options,
    .config_size = sizeof(struct kx_config),
    .init = kx_init,
    .destroy = kx_destroy,
    .executor = &kx_ops,
};

KILN_PLUGIN_DEFINE(kx_plugin)
