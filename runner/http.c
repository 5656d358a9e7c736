/* SPDX-License-Identifier: MIT */
/*
 * libcurl's multi-socket API on a libuv loop; contracts in http.h.
 *
 * curl tells us which sockets to watch (on_curl_socket) and when to wake it
 * (on_curl_timer); we call curl_multi_socket_action() from the uv_poll and
 * uv_timer callbacks (drive) and read finished transfers with
 * curl_multi_info_read() after every action.
 *
 * curl refuses multi calls made from inside its own callbacks, and the
 * plugin's read_body/on_data run inside them. So adding and removing easy
 * handles happens only in drive() after curl returned, or in on_idle(), where
 * everything queued by start and abort is handled. A destroy requested from
 * inside a curl callback is finished by drive() once curl has returned.
 */
#include "http.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "kiln/version.h"

/* The first version of kiln_http_req; a plugin built against a newer SDK may
 * pass a larger struct, whose extra fields we do not know. */
#define REQ_V1_SIZE (offsetof(kiln_http_req, timeout_ms) + sizeof(int64_t))

enum req_state {
    REQ_QUEUED,  /* waiting for on_idle to add it to the multi handle */
    REQ_RUNNING, /* in the multi handle */
    REQ_DONE,    /* removed, its callback is running */
};

struct kiln_http {
    kiln__http_client *client;
    struct kiln_http *prev, *next; /* client->reqs, while not REQ_DONE */
    struct kiln_http *todo_next;   /* client->todo, while in_todo */
    CURL *easy;
    struct curl_slist *headers;
    kiln_http_cb cb;
    void *data;
    kiln_http_read_cb read_body;
    void *read_data;
    kiln_http_data_cb on_data;
    void *on_data_data;
    void (*on_headers)(void *data, int status);
    void *on_headers_data;
    kiln__buf resp; /* the collected body, when on_data is NULL */
    enum req_state state;
    bool in_todo;
    bool aborted;     /* by kiln__http_abort*() or destroy: no more plugin calls */
    bool quiet;       /* and no final callback */
    bool paused;      /* read_body said KILN_EAGAIN: the upload waits for resume */
    bool resume;      /* kiln__http_resume() was called: on_idle unpauses */
    bool recv_hold;   /* kiln__http_pause_recv(h, true): refuse response data */
    int cb_err;       /* what read_body or on_data returned to stop the request */
    const char *cb_name;
    char *unix_socket; /* for error messages; curl has its own copy */
    char errbuf[CURL_ERROR_SIZE];
};

/* One per socket curl wants watched. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    kiln__http_client *client;
    struct sock *prev, *next;
};

struct kiln__http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_idle_t idle;
    struct kiln_http *reqs;
    struct kiln_http *todo, **todo_tail;
    struct sock *socks;
    unsigned in_curl;      /* > 0 while curl_multi_socket_action runs */
    bool destroy_pending;  /* destroy was called inside a curl callback */
    bool destroyed;
    unsigned open_handles; /* uv handles not yet through their close callback */
};

/* ---- helpers ----------------------------------------------------------- */

static const char *err_message(int err)
{
    switch (err) {
#define KILN__HTTP_ERRMSG(name, val, msg)                                                         \
    case (val):                                                                                    \
        return (msg);
        KILN_ERRNO_MAP(KILN__HTTP_ERRMSG)
#undef KILN__HTTP_ERRMSG
    default:
        return "unknown error";
    }
}

static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

static void reqs_link(kiln__http_client *c, kiln_http *h)
{
    h->prev = NULL;
    h->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = h;
    c->reqs = h;
}

static void reqs_unlink(kiln__http_client *c, kiln_http *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        c->reqs = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
}

static void req_free(kiln_http *h)
{
    curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
    kiln__buf_release(&h->resp);
    free(h->unix_socket);
    free(h);
}

static void maybe_free_client(kiln__http_client *c)
{
    if (c->destroyed && c->open_handles == 0)
        free(c);
}

static void on_handle_closed(uv_handle_t *handle)
{
    kiln__http_client *c = handle->data;
    c->open_handles--;
    maybe_free_client(c);
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct sock *sk = handle->data;
    kiln__http_client *c = sk->client;
    free(sk);
    c->open_handles--;
    maybe_free_client(c);
}

static void sock_close(struct sock *sk)
{
    kiln__http_client *c = sk->client;
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        c->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    /* uv_close stops the poll now, while curl's fd is still open, so epoll
     * forgets this fd before curl closes it and the number is reused. */
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

/* ---- completion -------------------------------------------------------- */

/* Deliver the final callback and free h, which is out of the multi handle
 * and out of client->reqs, so a destroy from inside cb does not see it. */
static void req_finish(kiln_http *h, int err, const char *error)
{
    kiln_http_resp resp = {0};
    long status = 0;
    char *ctype = NULL;

    h->state = REQ_DONE;
    if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        resp.status = (int)status;
    if (curl_easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK)
        resp.content_type = ctype;
    if (!h->on_data) {
        resp.body = h->resp.buf;
        resp.body_len = h->resp.len;
    }
    resp.error = err ? error : NULL;
    h->cb(h, h->data, err, &resp);
    req_free(h);
}

static void req_done(kiln_http *h, CURLcode rc)
{
    char msg[CURL_ERROR_SIZE + 128] = "";
    int err;

    if (rc == CURLE_OK) {
        err = 0;
    } else if (h->cb_err) {
        err = KILN_ECANCELED;
        snprintf(msg, sizeof msg, "request stopped by its %s callback: %s", h->cb_name,
                 err_message(h->cb_err));
    } else {
        err = rc == CURLE_OPERATION_TIMEDOUT ? KILN_ETIMEDOUT : KILN_EHTTP;
        /* curl names host and port, which mean little over a unix socket */
        snprintf(msg, sizeof msg, "%s%s%s%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
                 h->unix_socket ? " (unix socket \"" : "", h->unix_socket ? h->unix_socket : "",
                 h->unix_socket ? "\")" : "");
    }
    req_finish(h, err, msg);
}

/* Read what curl finished. Runs outside curl callbacks only. */
static void check_multi_info(kiln__http_client *c)
{
    CURLMsg *msg;
    int left;

    while (!c->destroyed && (msg = curl_multi_info_read(c->multi, &left))) {
        char *priv = NULL;
        kiln_http *h;
        CURLcode rc;

        if (msg->msg != CURLMSG_DONE)
            continue;
        rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        h = (kiln_http *)priv;
        if (h->aborted)
            continue; /* queued in todo; on_idle finishes it as canceled */
        /* msg is dead after this */
        curl_multi_remove_handle(c->multi, h->easy);
        reqs_unlink(c, h);
        req_done(h, rc);
    }
}

static void teardown(kiln__http_client *c);

static void drive(kiln__http_client *c, curl_socket_t fd, int flags)
{
    int running;

    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    if (c->destroy_pending) {
        teardown(c);
        return;
    }
    check_multi_info(c);
}

/* ---- curl's callbacks ----------------------------------------------------- */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    struct sock *sk = poll->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    drive(sk->client, sk->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
    drive(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    kiln__http_client *c = userp;
    struct sock *sk = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(sk);
        }
        return 0;
    }
    if (c->destroyed)
        return 0;
    if (!sk) {
        sk = kiln__xcalloc(1, sizeof *sk);
        if (uv_poll_init_socket(c->loop, &sk->poll, fd) < 0) {
            free(sk);
            return -1; /* curl fails the transfers on this socket */
        }
        sk->poll.data = sk;
        sk->fd = fd;
        sk->client = c;
        sk->next = c->socks;
        if (c->socks)
            c->socks->prev = sk;
        c->socks = sk;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, sk);
    }
    if (what != CURL_POLL_OUT)
        events |= UV_READABLE;
    if (what != CURL_POLL_IN)
        events |= UV_WRITABLE;
    return uv_poll_start(&sk->poll, events, on_poll) < 0 ? -1 : 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    kiln__http_client *c = userp;

    if (c->destroyed)
        return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        return 0;
    }
    /* 0 means "call socket_action as soon as possible", but not from inside
     * this callback. libuv 1.44 runs a 0 ms timer re-armed from its own
     * callback again in the same loop turn, which could starve I/O: wait 1 ms. */
    if (timeout_ms == 0)
        timeout_ms = 1;
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_curl_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    kiln_http *h = userp;
    size_t len = size * nmemb;

    if (h->aborted)
        return 0; /* CURLE_WRITE_ERROR; the request is finished elsewhere */
    if (!h->on_data) {
        kiln__buf_add(&h->resp, ptr, len);
        return len;
    }
    if (h->recv_hold) {
        /* curl keeps this chunk and stops reading the socket until
         * curl_easy_pause(CONT): the sender's writes block. */
        h->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    int r = h->on_data(h->on_data_data, ptr, len);
    if (r < 0) {
        h->cb_err = r;
        h->cb_name = "on_data";
        return 0;
    }
    return h->aborted ? 0 : len;
}

/* The end of a final (not 1xx) response's headers: tell on_headers. */
static size_t on_curl_header(char *buf, size_t size, size_t nitems, void *userp)
{
    kiln_http *h = userp;
    size_t len = size * nitems;
    if (h->on_headers && !h->aborted && (len == 2 || len == 1) && (buf[0] == '\r' || buf[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200) {
            void (*cb)(void *, int) = h->on_headers;
            h->on_headers = NULL;
            cb(h->on_headers_data, (int)code);
        }
    }
    return len;
}

static size_t on_curl_read(char *buf, size_t size, size_t nmemb, void *userp)
{
    kiln_http *h = userp;
    size_t cap = size * nmemb;

    if (h->aborted)
        return CURL_READFUNC_ABORT;
    long r = h->read_body(h->read_data, buf, cap);
    if (r == KILN_EAGAIN && !h->aborted) {
        /* Nothing to send yet: curl stops asking until kiln__http_resume(). */
        h->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (r < 0 || (size_t)r > cap) {
        h->cb_err = r < 0 ? (int)r : KILN_EINVAL;
        h->cb_name = "read_body";
        return CURL_READFUNC_ABORT;
    }
    return h->aborted ? CURL_READFUNC_ABORT : (size_t)r;
}

/* ---- deferred work ------------------------------------------------------ */

static void on_idle(uv_idle_t *idle);

static void todo_push(kiln_http *h)
{
    kiln__http_client *c = h->client;

    if (h->in_todo)
        return;
    h->in_todo = true;
    h->todo_next = NULL;
    *c->todo_tail = h;
    c->todo_tail = &h->todo_next;
    uv_idle_start(&c->idle, on_idle);
}

static kiln_http *todo_pop(kiln__http_client *c)
{
    kiln_http *h = c->todo;

    if (!h)
        return NULL;
    c->todo = h->todo_next;
    if (!c->todo)
        c->todo_tail = &c->todo;
    h->in_todo = false;
    return h;
}

static void on_idle(uv_idle_t *idle)
{
    kiln__http_client *c = idle->data;
    kiln_http *h;

    while (!c->destroyed && (h = todo_pop(c))) {
        if (h->aborted) {
            if (h->state == REQ_RUNNING)
                curl_multi_remove_handle(c->multi, h->easy);
            reqs_unlink(c, h);
            if (h->quiet)
                req_free(h);
            else
                req_finish(h, KILN_ECANCELED, "request aborted");
        } else if (h->state == REQ_QUEUED) {
            CURLMcode mc = curl_multi_add_handle(c->multi, h->easy);
            if (mc != CURLM_OK) {
                reqs_unlink(c, h);
                req_finish(h, KILN_EHTTP, curl_multi_strerror(mc));
            } else {
                h->state = REQ_RUNNING;
            }
        } else if (h->resume) {
            h->resume = false;
            if (h->state == REQ_RUNNING && h->paused) {
                h->paused = false;
                /* curl may call read_body/on_data from inside curl_easy_pause */
                c->in_curl++;
                curl_easy_pause(h->easy, CURLPAUSE_CONT);
                c->in_curl--;
                if (c->destroy_pending) {
                    teardown(c);
                    return;
                }
                check_multi_info(c);
            }
        }
    }
    if (!c->destroyed && !c->todo)
        uv_idle_stop(idle);
}

/* ---- client ------------------------------------------------------------- */

int kiln__http_client_create(uv_loop_t *loop, kiln__http_client **out)
{
    kiln__http_client *c;

    uv_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return KILN_EHTTP;
    c = kiln__xcalloc(1, sizeof *c);
    c->loop = loop;
    c->todo_tail = &c->todo;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return KILN_ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    c->open_handles = 2;
    *out = c;
    return 0;
}

static void teardown(kiln__http_client *c)
{
    c->destroyed = true;
    c->destroy_pending = false;
    while (c->reqs) {
        kiln_http *h = c->reqs;
        if (h->state == REQ_RUNNING)
            curl_multi_remove_handle(c->multi, h->easy);
        reqs_unlink(c, h);
        req_free(h);
    }
    c->todo = NULL;
    c->todo_tail = &c->todo;
    /* Sockets of connections curl keeps for reuse are still watched. */
    while (c->socks) {
        curl_multi_assign(c->multi, c->socks->fd, NULL);
        sock_close(c->socks);
    }
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

void kiln__http_client_destroy(kiln__http_client *c)
{
    if (!c || c->destroyed)
        return;
    if (c->in_curl) {
        /* curl refuses remove/cleanup from inside its callbacks: silence
         * everything now, and let drive() tear down when curl returns. */
        for (kiln_http *h = c->reqs; h; h = h->next)
            h->aborted = h->quiet = true;
        c->destroy_pending = true;
        return;
    }
    teardown(c);
}

/* ---- requests ----------------------------------------------------------- */

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static bool is_header(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';' || h[n] == ' ');
}

static int req_validate(const kiln_http_req *r, const char *method)
{
    if (!r->url || !*r->url || has_crlf(r->url))
        return KILN_EINVAL;
    if (!*method || strpbrk(method, "\r\n \t"))
        return KILN_EINVAL;
    if (r->body && r->read_body)
        return KILN_EINVAL;
    if (r->body_len && !r->body)
        return KILN_EINVAL;
    if (r->timeout_ms < 0)
        return KILN_EINVAL;
    if (strcmp(method, "HEAD") == 0 && (r->body || r->read_body))
        return KILN_EINVAL;
    for (const char *const *hp = r->headers; hp && *hp; hp++)
        if (has_crlf(*hp) || !strpbrk(*hp, ":;")) /* "Name;" sends an empty value */
            return KILN_EINVAL;
    return 0;
}

/* The header list: the caller's, then blanks that suppress curl's defaults. */
static int req_headers(kiln_http *h, const kiln_http_req *r)
{
    bool expect = false, ctype = false;
    struct curl_slist *l;

    for (const char *const *hp = r->headers; hp && *hp; hp++) {
        expect = expect || is_header(*hp, "Expect");
        ctype = ctype || is_header(*hp, "Content-Type");
        if (!(l = curl_slist_append(h->headers, *hp)))
            return KILN_ENOMEM;
        h->headers = l;
    }
    if (!expect && (r->body || r->read_body)) {
        if (!(l = curl_slist_append(h->headers, "Expect:")))
            return KILN_ENOMEM;
        h->headers = l;
    }
    if (!ctype && r->body) {
        if (!(l = curl_slist_append(h->headers, "Content-Type:")))
            return KILN_ENOMEM;
        h->headers = l;
    }
    return 0;
}

static int req_setup(kiln_http *h, const kiln_http_req *r, const char *method)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    int err;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, (opt), (val));                                                \
    } while (0)

    SET(CURLOPT_URL, r->url);
    if (r->unix_socket) {
        SET(CURLOPT_UNIX_SOCKET_PATH, r->unix_socket);
        h->unix_socket = kiln__xstrdup(r->unix_socket);
    }
    SET(CURLOPT_PRIVATE, (void *)h);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "kiln/" KILN_VERSION_STRING);
    SET(CURLOPT_WRITEFUNCTION, on_curl_write);
    SET(CURLOPT_WRITEDATA, (void *)h);
    if (h->on_headers) {
        SET(CURLOPT_HEADERFUNCTION, on_curl_header);
        SET(CURLOPT_HEADERDATA, (void *)h);
    }
    if (r->timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, r->timeout_ms > LONG_MAX ? LONG_MAX : (long)r->timeout_ms);
    if (r->ca_file)
        SET(CURLOPT_CAINFO, r->ca_file);
    if (r->ca_pem) {
        struct curl_blob blob = {(void *)r->ca_pem, strlen(r->ca_pem), CURL_BLOB_COPY};
        SET(CURLOPT_CAINFO_BLOB, &blob);
    }
    if (r->cert_pem && r->key_pem) {
        struct curl_blob cert = {(void *)r->cert_pem, strlen(r->cert_pem), CURL_BLOB_COPY};
        struct curl_blob key = {(void *)r->key_pem, strlen(r->key_pem), CURL_BLOB_COPY};
        SET(CURLOPT_SSLCERT_BLOB, &cert);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLKEY_BLOB, &key);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (r->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }

    if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (r->body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SET(CURLOPT_COPYPOSTFIELDS, (const char *)r->body);
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (r->read_body) {
        /* An upload of unknown size is sent chunked over HTTP/1.1. */
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_READFUNCTION, on_curl_read);
        SET(CURLOPT_READDATA, (void *)h);
        if (strcmp(method, "PUT") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
    if (rc != CURLE_OK)
        return KILN_EHTTP;
    if ((err = req_headers(h, r)) < 0)
        return err;
    SET(CURLOPT_HTTPHEADER, h->headers);
#undef SET
    return rc == CURLE_OK ? 0 : KILN_EHTTP;
}

int kiln__http_start(kiln__http_client *c, const kiln_http_req *req, kiln_http_cb cb, void *data,
                     kiln_http **out)
{
    kiln_http_req r = {0};
    const char *method;
    kiln_http *h;
    int err;

    if (!c || !req || !cb || c->destroyed || c->destroy_pending)
        return KILN_EINVAL;
    if (req->struct_size < REQ_V1_SIZE)
        return KILN_EINVAL;
    memcpy(&r, req, req->struct_size < sizeof r ? req->struct_size : sizeof r);
    method = r.method ? r.method : "GET";
    if ((err = req_validate(&r, method)) < 0)
        return err;

    h = kiln__xcalloc(1, sizeof *h);
    h->client = c;
    h->cb = cb;
    h->data = data;
    h->read_body = r.read_body;
    h->read_data = r.read_data;
    h->on_data = r.on_data;
    h->on_data_data = r.on_data_data;
    if (req->struct_size >= offsetof(kiln_http_req, on_headers_data) + sizeof(void *)) {
        h->on_headers = r.on_headers;
        h->on_headers_data = r.on_headers_data;
    }
    kiln__buf_init(&h->resp);
    if (!(h->easy = curl_easy_init())) {
        free(h);
        return KILN_ENOMEM;
    }
    if ((err = req_setup(h, &r, method)) < 0) {
        req_free(h);
        return err;
    }
    h->state = REQ_QUEUED;
    reqs_link(c, h);
    todo_push(h);
    if (out)
        *out = h;
    return 0;
}

static void req_abort(kiln_http *h, bool quiet)
{
    if (!h || h->state == REQ_DONE)
        return;
    if (h->aborted) {
        h->quiet = h->quiet || quiet; /* a later quiet abort still silences it */
        return;
    }
    h->aborted = true;
    h->quiet = quiet;
    todo_push(h);
}

void kiln__http_abort(kiln_http *h)
{
    req_abort(h, false);
}

void kiln__http_resume(kiln_http *h)
{
    if (!h || h->state != REQ_RUNNING || h->aborted || h->resume)
        return;
    h->resume = true;
    todo_push(h);
}

void kiln__http_pause_recv(kiln_http *h, bool pause)
{
    if (!h || h->state == REQ_DONE || h->aborted)
        return;
    h->recv_hold = pause;
    if (!pause && h->paused)
        kiln__http_resume(h);
}

void kiln__http_abort_quiet(kiln_http *h)
{
    req_abort(h, true);
}

const char *kiln__http_header(kiln_http *h, const char *name)
{
    struct curl_header *hd = NULL;
    if (!h || !h->easy || h->state != REQ_DONE)
        return NULL;
    if (curl_easy_header(h->easy, name, (size_t)-1, CURLH_HEADER, -1, &hd) != CURLHE_OK || !hd)
        return NULL;
    return hd->value;
}
