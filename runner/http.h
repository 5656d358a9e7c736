/* SPDX-License-Identifier: MIT */
/*
 * kiln__http: HTTP requests on a libuv loop, through libcurl's multi-socket
 * API. This is the runner side of the host's http_request/http_abort entries;
 * the request and response types are the public ones of kiln/host.h.
 *
 * One client per loop: it owns a CURLM, one uv_timer for curl's timeout, one
 * uv_poll per socket curl asks to watch, and one uv_idle that runs deferred
 * work (adding and removing easy handles happens there, never inside a curl
 * callback). Everything runs on the loop thread; nothing here blocks.
 *
 * Lifecycle of a request (libuv's rule: a call that fails never calls back):
 *  - kiln__http_start() returns 0 and the callback fires exactly once, later,
 *    from the loop; or it returns a negative KILN_E* and never calls back.
 *  - After the callback returns, or after kiln__http_abort_quiet(), the
 *    kiln_http pointer is dead.
 *  - Once aborted, a request calls neither read_body nor on_data again.
 *
 * Request semantics beyond host.h:
 *  - method NULL means "GET" even with a body; say "POST" when you mean it.
 *    "HEAD" asks for no body.
 *  - body is sent with Content-Length; read_body is sent with
 *    "Transfer-Encoding: chunked". Setting both is KILN_EINVAL.
 *  - read_body is called synchronously on the loop and should return at once
 *    with what it has. KILN_EAGAIN pauses the upload (libcurl's
 *    CURL_READFUNC_PAUSE): read_body is not called again until
 *    kiln__http_resume(); the response side keeps running. Any other negative
 *    return aborts the request.
 *  - curl's default "Content-Type: application/x-www-form-urlencoded" and
 *    "Expect: 100-continue" are not sent unless the caller sets them.
 *  - Redirects are not followed; only http and https are allowed.
 *  - Headers and method must not contain CR or LF (KILN_EINVAL).
 *
 * Callback results: err 0 when a response arrived, whatever its status;
 * KILN_ETIMEDOUT when timeout_ms ran out; KILN_ECANCELED after
 * kiln__http_abort() or when read_body/on_data returned a negative value;
 * KILN_EHTTP for any other transport failure, with curl's error text in
 * resp->error. resp->status is whatever status line arrived (0 if none), also
 * on errors.
 */
#ifndef KILN_HTTP_H
#define KILN_HTTP_H

#include <uv.h>

#include "kiln/errors.h"
#include "kiln/host.h"

typedef struct kiln__http_client kiln__http_client;

/* Create a client on loop. 0 or KILN_ENOMEM/KILN_EHTTP (curl could not start).
 * Initializes libcurl globally on first use (once per process). */
int kiln__http_client_create(uv_loop_t *loop, kiln__http_client **out);

/* Abort every request still running WITHOUT calling callbacks and close all
 * handles. Memory is freed in close callbacks: the caller must run the loop
 * afterwards (uv_run NOWAIT or DEFAULT) until uv_loop_close() succeeds. May
 * be called from any callback of this client, including the request
 * callbacks; no kiln_http of the client may be used afterwards. */
void kiln__http_client_destroy(kiln__http_client *c);

/* Start a request. req and everything it points to is copied; data is given
 * back to cb. 0: cb is called exactly once, later, never inside this call;
 * *out (when out is not NULL) names the request until then. < 0 (KILN_EINVAL
 * for a malformed req, KILN_EHTTP if curl refuses an option): cb never called.
 * May be called from any callback, including on_data and read_body. */
int kiln__http_start(kiln__http_client *c, const kiln_http_req *req, kiln_http_cb cb, void *data,
                     kiln_http **out);

/* Stop a request; its callback fires later with KILN_ECANCELED (not inside
 * this call). Does nothing when the request is already finishing. */
void kiln__http_abort(kiln_http *h);

/* Continue an upload paused by read_body returning KILN_EAGAIN. Deferred to
 * the idle handler (read_body is called again from there, never inside this
 * call); safe from any callback, also from read_body itself before it returns
 * KILN_EAGAIN. Does nothing for a request that is not running. */
void kiln__http_resume(kiln_http *h);

/* The value of response header NAME (the last one of that name), or NULL.
 * Only inside the request's callback; borrowed until it returns. */
const char *kiln__http_header(kiln_http *h, const char *name);

/* Stop a request; its callback is never called and h is dead on return. */
void kiln__http_abort_quiet(kiln_http *h);
/* Stop (true) or resume (false) taking a streamed response (on_data): while
 * stopped curl reads nothing more from the socket. */
void kiln__http_pause_recv(kiln_http *h, bool pause);

#endif /* KILN_HTTP_H */
