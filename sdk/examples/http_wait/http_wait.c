/* SPDX-License-Identifier: MIT */
/*
 * http-wait: an asynchronous kiln step plugin. It polls a URL until it
 * answers the expected status (200 by default), or until its own deadline.
 *
 *   steps:
 *   - id: ready
 *     uses: http-wait
 *     with: {url: "http://127.0.0.1:8080/healthz", interval: 500ms, timeout: 60s}
 *
 * What it shows (docs/PLUGIN_API.md):
 *  - start() returns at once; the step lives on in host objects: one HTTP
 *    request at a time (http_request) and two timers (the next poll, the
 *    deadline). Every callback runs on the loop thread.
 *  - exactly one step_done(), from whichever callback ends the step: the
 *    answer, the deadline, or a cancel.
 *  - cancel() (build timeout, step timeout, a failing sibling, Ctrl-C)
 *    stops both timers and aborts the request in flight; the request's
 *    callback then fires with KILN_ECANCELED and ends the step.
 *  - a step output (`status`, `attempts`) for later steps.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct wait_config {
    const char *url;
    int64_t expect;      /* the status that ends the wait */
    int64_t interval_ms; /* between the end of one request and the next */
    int64_t timeout_ms;  /* the whole wait; 0: none (the step's timeout still applies) */
    int64_t request_timeout_ms;
};

static const kiln_option wait_options[] = {
    {KILN_OPT_STRING, "url", NULL, KILN_OPT_REQUIRED, offsetof(struct wait_config, url), 0, -1, NULL,
     "URL to poll (http or https)."},
    {KILN_OPT_INT, "expect", "200", 0, offsetof(struct wait_config, expect), 100, 599, NULL,
     "HTTP status that ends the wait."},
    {KILN_OPT_DURATION, "interval", "1s", 0, offsetof(struct wait_config, interval_ms), 10, 3600000, NULL,
     "Pause between two requests."},
    {KILN_OPT_DURATION, "timeout", "60s", 0, offsetof(struct wait_config, timeout_ms), 0, 86400000, NULL,
     "Give up after this long (0: wait until the step's own timeout)."},
    {KILN_OPT_DURATION, "request_timeout", "5s", 0, offsetof(struct wait_config, request_timeout_ms), 1,
     3600000, NULL, "Limit for one request."},
    KILN_OPTIONS_END,
};

/* Per step, allocated in start(), freed just before step_done(). */
struct wait {
    kiln_step *step;
    const struct wait_config *cfg; /* the host's, valid until step_done() */
    kiln_http *req;                /* the request in flight, or NULL */
    kiln_timer *next;              /* the pause before the next poll, or NULL */
    kiln_timer *deadline;          /* the whole wait's limit, or NULL */
    int attempts;
    int last_status;               /* to log a change once, not every poll */
    bool cancelled;
};

static void poll_once(struct wait *w);

/* The one way out: stop what is still running, free, step_done(). */
static void finish(struct wait *w, int status, const char *reason)
{
    kiln_step *step = w->step;
    if (w->next)
        kiln_api->timer_stop(w->next);
    if (w->deadline)
        kiln_api->timer_stop(w->deadline);
    /* A request still in flight (the deadline path) is left to the host:
     * step_done() releases it without calling its callback (rule 4). */
    char n[32];
    snprintf(n, sizeof n, "%d", w->attempts);
    kiln_api->step_set_output(step, "attempts", n);
    kiln_api->step_set_data(step, NULL);
    free(w);
    kiln_api->step_done(step, status, reason); /* host objects are released here */
}

/* ABI 1.10: the host ended the step itself (it outlived --kill-grace after
 * cancel) and has already released our timers and request: only our own
 * memory is left. */
static void wait_abandon(kiln_step *step, void *plugin_data)
{
    (void)plugin_data;
    free(kiln_api->step_get_data(step));
}

static void on_next(kiln_timer *t, void *data)
{
    (void)t;
    struct wait *w = data;
    w->next = NULL; /* a one-shot timer is gone after its callback */
    poll_once(w);
}

static void on_deadline(kiln_timer *t, void *data)
{
    (void)t;
    struct wait *w = data;
    w->deadline = NULL;
    char why[512];
    snprintf(why, sizeof why, "%s did not answer %d within the timeout (%d requests, last: %s%d)",
             w->cfg->url, (int)w->cfg->expect, w->attempts, w->last_status ? "HTTP " : "no answer ",
             w->last_status);
    /* A request may be in flight: after step_done() its callback is never
     * called (contract rule 4), so the step ends exactly once. */
    finish(w, KILN_ETIMEDOUT, why);
}

static void on_response(kiln_http *req, void *data, int err, const kiln_http_resp *resp)
{
    (void)req;
    struct wait *w = data;
    w->req = NULL; /* released by the host after this callback */
    if (w->cancelled) {
        finish(w, KILN_ECANCELED, "canceled while waiting for an answer");
        return;
    }
    int status = err ? 0 : resp->status;
    if (status == w->cfg->expect) {
        char s[8];
        snprintf(s, sizeof s, "%d", status);
        kiln_api->step_set_output(w->step, "status", s);
        kiln_info(w->step, "%s answered %d after %d request%s", w->cfg->url, status, w->attempts,
                  w->attempts == 1 ? "" : "s");
        finish(w, 0, NULL);
        return;
    }
    if (status != w->last_status || w->attempts == 1) {
        if (err)
            kiln_info(w->step, "waiting for %s: %s", w->cfg->url, resp->error ? resp->error : kiln_api->strerror(err));
        else
            kiln_info(w->step, "waiting for %s: HTTP %d", w->cfg->url, status);
    }
    w->last_status = status;
    int rc = kiln_api->timer_start(w->step, (uint64_t)w->cfg->interval_ms, on_next, w, &w->next);
    if (rc < 0)
        finish(w, rc, "cannot arm the poll timer");
}

static void poll_once(struct wait *w)
{
    w->attempts++;
    kiln_http_req r = {
        .struct_size = sizeof r,
        .method = "GET",
        .url = w->cfg->url,
        .timeout_ms = w->cfg->request_timeout_ms,
    };
    int rc = kiln_api->http_request(w->step, &r, on_response, w, &w->req);
    if (rc < 0) /* an error return means no callback: end here */
        finish(w, rc, "cannot send the request");
}

static int wait_start(kiln_step *step, const void *config, void *plugin_data)
{
    (void)plugin_data;
    const struct wait_config *c = config;
    struct wait *w = calloc(1, sizeof *w);
    if (!w)
        return KILN_ENOMEM; /* an error return: no step_done() */
    w->step = step;
    w->cfg = c;
    kiln_api->step_set_data(step, w);
    if (c->timeout_ms > 0) {
        int rc = kiln_api->timer_start(step, (uint64_t)c->timeout_ms, on_deadline, w, &w->deadline);
        if (rc < 0) {
            kiln_api->step_set_data(step, NULL);
            free(w);
            return rc;
        }
    }
    poll_once(w); /* may end the step already; start() still returns 0 */
    return 0;
}

static void wait_cancel(kiln_step *step, void *plugin_data)
{
    (void)plugin_data;
    struct wait *w = kiln_api->step_get_data(step);
    if (!w || w->cancelled)
        return;
    w->cancelled = true;
    if (w->req) {
        /* The callback fires with KILN_ECANCELED and ends the step. Stop
         * the timers first so nothing else runs meanwhile. */
        if (w->deadline) {
            kiln_api->timer_stop(w->deadline);
            w->deadline = NULL;
        }
        kiln_api->http_abort(w->req);
        return;
    }
    finish(w, KILN_ECANCELED, "canceled between two requests"); /* a timer was pending */
}

static int wait_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    (void)plugin_data;
    const struct wait_config *c = config;
    if (c->url && strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        kiln_api->diag(diag, "url", "'%s' is not an http:// or https:// URL", c->url);
        return KILN_ECONFIG;
    }
    return 0;
}

static int wait_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    (void)self;
    (void)plugin_data;
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops wait_ops = {
    .struct_size = sizeof(kiln_step_ops),
    .start = wait_start,
    .cancel = wait_cancel,
    .abandon = wait_abandon,
};

static const kiln_plugin wait_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "http-wait",
    .version = "1.0.0",
    .summary = "Poll a URL until it answers 200 (the SDK's asynchronous example)",
    .options = wait_options,
    .config_size = sizeof(struct wait_config),
    .init = wait_init,
    .validate = wait_validate,
    .step = &wait_ops,
};

KILN_PLUGIN_DEFINE(wait_plugin)
