/* SPDX-License-Identifier: MIT */
/*
 * The kubernetes executor's close() (plugins/executor_kubernetes/kube.c)
 * and the fill's git lookup (kube_build.c) under a host written here: the
 * requests the executor sends are held, and the test answers them in the
 * order it wants. What a real API server makes of them is in
 * tests/integration/test_k8s_*.sh.
 *
 * The contract (docs/PLUGIN_API.md, close): close() removes what the build
 * made, then calls done; the host calls it again when it will not wait any
 * longer (kiln run: its loop ran dry; kiln serve: after 2 minutes), and
 * that call finishes at once. Each call is answered once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* kube.c itself, for its statics; the executor's other files are linked
 * (tests/CMakeLists.txt). Before cmocka.h, whose fail() macro would meet
 * kube.c's fail(). */
#include "../../plugins/executor_kubernetes/kube.c"

#include <cmocka.h>

/* ---- a host that holds every request until the test answers it ---------- */

#define MAX_REQ 64

struct req {
    char method[16], url[512];
    char *body;
    kiln_http_cb cb;
    void *data;
    bool answered;
};

static struct req reqs[MAX_REQ];
static int n_reqs;
/* queue_work: the one job held (the fill's git lookup) */
static kiln_work_cb held_work;
static kiln_after_work_cb held_after;
static void *held_data;

static bool h_log_enabled(const kiln_object *o, kiln_log_level l)
{
    (void)o;
    (void)l;
    return false;
}

static void h_log(const kiln_object *o, kiln_log_level l, const char *fmt, ...)
{
    (void)o;
    (void)l;
    (void)fmt;
}

static int h_http_request_obj(kiln_object *obj, const kiln_http_req *r, kiln_http_cb cb, void *data,
                              kiln_http **out)
{
    (void)obj;
    assert_true(n_reqs < MAX_REQ);
    struct req *q = &reqs[n_reqs++];
    memset(q, 0, sizeof *q);
    snprintf(q->method, sizeof q->method, "%s", r->method ? r->method : "GET");
    snprintf(q->url, sizeof q->url, "%s", r->url);
    q->body = r->body ? strdup(r->body) : NULL;
    q->cb = cb;
    q->data = data;
    if (out)
        *out = (kiln_http *)q;
    return 0;
}

static void h_http_abort(kiln_http *h)
{
    (void)h; /* the test answers every request itself */
}

static const char *h_strerror(int err)
{
    (void)err;
    return "error";
}

static int h_queue_work(kiln_object *obj, kiln_work_cb work, kiln_after_work_cb after, void *data)
{
    (void)obj;
    assert_null(held_work);
    held_work = work;
    held_after = after;
    held_data = data;
    return 0;
}

static kiln_host_api api;

static void answer(int i, int status, const char *body)
{
    assert_true(i < n_reqs);
    assert_false(reqs[i].answered);
    reqs[i].answered = true;
    kiln_http_resp resp = {.status = status, .body = body, .body_len = body ? strlen(body) : 0};
    reqs[i].cb((kiln_http *)&reqs[i], reqs[i].data, 0, &resp);
}

/* Every request sent so far and not answered yet (not those the answers
 * send): a GET gets list_body, a POST 201 with a uid, the rest 200. */
static void answer_all(const char *list_body)
{
    int n = n_reqs;
    for (int i = 0; i < n; i++)
        if (!reqs[i].answered)
            answer(i, !strcmp(reqs[i].method, "GET") ? 200 : !strcmp(reqs[i].method, "POST") ? 201 : 200,
                   !strcmp(reqs[i].method, "GET") ? list_body : "{\"metadata\":{\"uid\":\"u-1\"}}");
}

static int count(const char *method, const char *url_part)
{
    int n = 0;
    for (int i = 0; i < n_reqs; i++)
        n += !strcmp(reqs[i].method, method) && strstr(reqs[i].url, url_part) != NULL;
    return n;
}

static char dir[256];
static char kubeconfig[300];
static struct kx_config cfg;
static void *pd;
static int dones;

static void on_done(void *arg)
{
    (*(int *)arg)++;
}

static int setup(void **state)
{
    (void)state;
    memset(&api, 0, sizeof api);
    api.struct_size = sizeof api;
    api.log_enabled = h_log_enabled;
    api.log = h_log;
    api.http_request_obj = h_http_request_obj;
    api.http_abort = h_http_abort;
    api.strerror = h_strerror;
    api.queue_work = h_queue_work;
    api.exec_plugin_handle = (kiln_plugin_handle * (*)(const kiln_exec *)) 1; /* only its presence is checked */
    n_reqs = 0;
    dones = 0;
    held_work = NULL;
    snprintf(dir, sizeof dir, "/tmp/kiln-test-kube-close-XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("TMPDIR", dir, 1);
    snprintf(kubeconfig, sizeof kubeconfig, "%s/kubeconfig", dir);
    FILE *f = fopen(kubeconfig, "w");
    assert_non_null(f);
    fputs("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
          "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n"
          "users:\n- name: u\n  user:\n    token: tok\n"
          "contexts:\n- name: t\n  context:\n    cluster: c\n    user: u\n",
          f);
    fclose(f);
    memset(&cfg, 0, sizeof cfg);
    cfg.kubeconfig = kubeconfig;
    cfg.storage = "1Gi";
    cfg.fill_image = "alpine/git";
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_reqs; i++)
        free(reqs[i].body);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* init + open, with the open's sweeps and the owner answered. */
static void open_executor(void)
{
    assert_int_equal(kx_init(&api, (kiln_plugin_handle *)&api, &pd), 0);
    assert_int_equal(kx_open(pd, &cfg, "b1"), 0);
    answer_all("{\"items\":[]}");
}

/* ---- close() ---------------------------------------------------------------- */

static void close_once(void **state)
{
    (void)state;
    open_executor();
    int before = n_reqs;
    kx_close(pd, on_done, &dones);
    assert_int_equal(count("GET", "%3Db1"), 3); /* configmaps, secrets, pods */
    assert_int_equal(dones, 0);
    /* Each list finds one object, which is deleted; done after the last. */
    answer_all("{\"items\":[{\"metadata\":{\"name\":\"x\"}}]}");
    assert_int_equal(dones, 0);
    assert_int_equal(n_reqs - before, 6);
    answer_all(NULL);
    assert_int_equal(dones, 1);
    kx_destroy(pd);
}

/* Asked again while the deletes are in flight: done at once, nothing sent
 * again; the late answers call no done. A third call is answered too. */
static void close_again(void **state)
{
    (void)state;
    open_executor();
    kx_close(pd, on_done, &dones);
    int sent = n_reqs;
    assert_int_equal(dones, 0);
    kx_close(pd, on_done, &dones);
    assert_int_equal(dones, 1);
    assert_int_equal(n_reqs, sent); /* the sweeps are not sent twice */
    answer_all("{\"items\":[{\"metadata\":{\"name\":\"x\"}}]}");
    answer_all(NULL);
    assert_int_equal(dones, 1); /* the first call's sweeps end: no second done */
    kx_close(pd, on_done, &dones);
    assert_int_equal(dones, 2);
    assert_int_equal(n_reqs, sent + 3); /* only the three deletes of the first sweeps */
    kx_destroy(pd);
}

/* Asked again after done was called: answered at once, nothing sent. */
static void close_after_done(void **state)
{
    (void)state;
    open_executor();
    kx_close(pd, on_done, &dones);
    answer_all("{\"items\":[]}");
    assert_int_equal(dones, 1);
    int sent = n_reqs;
    kx_close(pd, on_done, &dones);
    assert_int_equal(dones, 2);
    assert_int_equal(n_reqs, sent);
    kx_destroy(pd);
}

/* A Pod still waiting for the build's owner when the build ends (its step
 * was cancelled): called back at close(), so that nothing of it is left. */
static int gate_calls;
static const char *gate_error;
static void on_gate_test(void *data, char *body, const char *error)
{
    (void)data;
    gate_calls++;
    gate_error = error;
    free(body);
}

static void close_releases_waiting_pod(void **state)
{
    (void)state;
    assert_int_equal(kx_init(&api, (kiln_plugin_handle *)&api, &pd), 0);
    assert_int_equal(kx_open(pd, &cfg, "b1"), 0);
    struct kx *kx = pd;
    gate_calls = 0;
    kb_when_ready(kx->kb, strdup("{\"metadata\":{}}"), 0, &gate_calls, on_gate_test, NULL);
    assert_int_equal(gate_calls, 0); /* the owner is not made yet */
    kx_close(pd, on_done, &dones);
    assert_int_equal(gate_calls, 1);
    assert_string_equal(gate_error, "the build ended");
    answer_all("{\"items\":[]}"); /* the owner's create comes late: deleted */
    answer_all(NULL);
    assert_int_equal(count("DELETE", "/configmaps/"), 1);
    assert_int_equal(count("POST", "/pods"), 0);
    assert_int_equal(dones, 1);
    kx_destroy(pd);
}

/* ---- fill=git: the git lookup answered after close() ------------------------- */

static void fill_lookup_after_close(void **state)
{
    (void)state;
    cfg.workspace = 1; /* pvc */
    cfg.fill = 1;      /* git */
    open_executor();   /* the owner and the claim */
    answer_all("{\"items\":[]}");
    struct kx *kx = pd;
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && git init -q . && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m one "
             "&& git remote add origin https://git.invalid/r.git",
             dir);
    assert_int_equal(system(cmd), 0);
    kb_fill(kx->kb, dir);
    assert_non_null(held_work);
    kx_close(pd, on_done, &dones);
    answer_all("{\"items\":[]}");
    assert_int_equal(dones, 1);
    /* The lookup ends after the build did: no fill Pod is made for it. */
    held_work(held_data);
    held_after(held_data, 0);
    assert_int_equal(count("POST", "/pods"), 0);
    kx_destroy(pd);
}

/* The fill Pod's create answered after close() listed the Pods: it is
 * deleted, not watched (it would outlive the build). */
static void fill_created_after_close(void **state)
{
    (void)state;
    cfg.workspace = 1;
    cfg.fill = 1;
    cfg.git_url = "https://git.invalid/r.git";
    cfg.git_commit = "0123456789abcdef0123456789abcdef01234567"; /* no lookup */
    open_executor();
    answer_all("{\"items\":[]}"); /* the claim */
    struct kx *kx = pd;
    kb_fill(kx->kb, dir);
    assert_int_equal(count("POST", "/pods"), 1);
    int create = n_reqs - 1;
    kx_close(pd, on_done, &dones);
    for (int i = 0; i < n_reqs; i++)
        if (i != create && !reqs[i].answered)
            answer(i, 200, "{\"items\":[]}");
    assert_int_equal(dones, 1);
    answer(create, 201, "{}");
    assert_int_equal(count("DELETE", "-fill"), 1);
    assert_int_equal(count("GET", "watch=true"), 0);
    answer_all(NULL);
    kx_destroy(pd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(close_once, setup, teardown),
        cmocka_unit_test_setup_teardown(close_again, setup, teardown),
        cmocka_unit_test_setup_teardown(close_after_done, setup, teardown),
        cmocka_unit_test_setup_teardown(close_releases_waiting_pod, setup, teardown),
        cmocka_unit_test_setup_teardown(fill_lookup_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(fill_created_after_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
