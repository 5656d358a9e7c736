/* SPDX-License-Identifier: MIT */
/*
 * kiln__http against a real server: tests/unit/http_test_server.py, started
 * once for the whole file, serving TCP on 127.0.0.1 and a unix socket. Each
 * test runs on its own uv loop and ends by closing it (uv_loop_close() == 0),
 * so a leaked handle fails the test; the ASan build catches leaked memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"

extern char **environ;

/* ---- the server ----------------------------------------------------------- */

static struct {
    pid_t pid;
    int stdin_fd; /* closing it stops the server */
    int port;
    char dir[64];
    char sock[128];
    char base[64]; /* http://127.0.0.1:PORT */
} srv = {.pid = -1, .stdin_fd = -1};

static int server_start(void **state)
{
    const char *src = getenv("KILN_SOURCE_DIR");
    char script[4096], line[64] = "";
    int in[2], out[2];
    posix_spawn_file_actions_t fa;
    size_t len = 0;

    if (!src) {
        fprintf(stderr, "KILN_SOURCE_DIR is not set\n");
        return -1;
    }
    snprintf(script, sizeof script, "%s/tests/unit/http_test_server.py", src);
    snprintf(srv.dir, sizeof srv.dir, "/tmp/kiln-http-XXXXXX");
    if (!mkdtemp(srv.dir))
        return -1;
    snprintf(srv.sock, sizeof srv.sock, "%s/http.sock", srv.dir);
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {"python3", script, srv.sock, NULL};
    if (posix_spawnp(&srv.pid, "python3", &fa, NULL, argv, environ) != 0)
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    srv.stdin_fd = in[1];
    /* The server prints its port once both listeners are bound. */
    while (len < sizeof line - 1 && !strchr(line, '\n')) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 10000) <= 0)
            break;
        n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
    close(out[0]);
    srv.port = atoi(line);
    if (srv.port <= 0) {
        fprintf(stderr, "test server did not start (read \"%s\")\n", line);
        return -1;
    }
    snprintf(srv.base, sizeof srv.base, "http://127.0.0.1:%d", srv.port);
    return 0;
}

static int server_stop(void **state)
{
    if (srv.stdin_fd >= 0)
        close(srv.stdin_fd);
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    unlink(srv.sock);
    rmdir(srv.dir);
    return 0;
}

/* ---- fixture: a loop and a client -------------------------------------- */

struct fx {
    uv_loop_t loop;
    uv_timer_t wake; /* unref'd: makes UV_RUN_ONCE return now and then */
    kiln__http_client *c;
};

static void on_wake(uv_timer_t *t) {}

static int fx_setup(void **state)
{
    struct fx *f = kiln__xcalloc(1, sizeof *f);
    if (uv_loop_init(&f->loop) < 0)
        return -1;
    uv_timer_init(&f->loop, &f->wake);
    uv_timer_start(&f->wake, on_wake, 100, 100);
    uv_unref((uv_handle_t *)&f->wake);
    if (kiln__http_client_create(&f->loop, &f->c) < 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->c)
        kiln__http_client_destroy(f->c);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* How long a test waits for something that should happen before it calls it
 * hung: far above what a loaded machine needs, so that it only catches hangs.
 * Tests check order, events and lower bounds, never that something was quick;
 * a request that must end early (abort, timeout, teardown) is made to a
 * server that would otherwise take ten minutes. */
#define HANG_MS 120000
#define SLOW_SERVER "600000" /* ms; /delay of a request that must not complete */

/* Run the loop until *count reaches want; false after ms or when the loop
 * has nothing left to do. */
static bool run_until(struct fx *f, const int *count, int want, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (*count < want) {
        if (now_ms() > end)
            return false;
        if (!uv_run(&f->loop, UV_RUN_ONCE) && *count < want)
            return false;
    }
    return true;
}

/* Run the loop for ms, whatever happens. */
static void run_for(struct fx *f, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
}

/* ---- results ------------------------------------------------------------ */

struct result {
    int calls;
    int err;
    int status;
    char *body; /* copy, or NULL */
    size_t body_len;
    char *ctype;
    char *error;
    uint64_t t_done;
    bool forbid; /* set while a call that must not call back runs */
};

static void on_done(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct result *r = data;
    assert_false(r->forbid);
    r->calls++;
    r->err = err;
    r->status = resp->status;
    r->body_len = resp->body_len;
    if (resp->body) {
        assert_int_equal(resp->body[resp->body_len], '\0');
        r->body = kiln__xmalloc(resp->body_len + 1);
        memcpy(r->body, resp->body, resp->body_len + 1);
    }
    r->ctype = resp->content_type ? kiln__xstrdup(resp->content_type) : NULL;
    r->error = resp->error ? kiln__xstrdup(resp->error) : NULL;
    r->t_done = now_ms();
}

static void result_release(struct result *r)
{
    free(r->body);
    free(r->ctype);
    free(r->error);
    memset(r, 0, sizeof *r);
}

static kiln_http_req req_init(const char *path)
{
    static char url[256];
    kiln_http_req r = {.struct_size = sizeof r};
    snprintf(url, sizeof url, "%s%s", srv.base, path);
    r.url = url; /* copied by kiln__http_start */
    return r;
}

static kiln_http *start_ok(struct fx *f, const kiln_http_req *req, struct result *r)
{
    kiln_http *h = NULL;
    r->forbid = true;
    assert_int_equal(kiln__http_start(f->c, req, on_done, r, &h), 0);
    r->forbid = false;
    assert_non_null(h);
    return h;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static cJSON *parse_body(const struct result *r)
{
    assert_non_null(r->body);
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    return j;
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    }
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- tests -------------------------------------------------------------- */

static void test_get_echo(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    const char *headers[] = {"X-Kiln-Test: hello there", "Accept: application/json", "X-Empty;",
                             NULL};
    kiln_http_req req = req_init("/echo?x=1");
    req.headers = headers;

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, 0);
    assert_null(r.error);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    cJSON *j = parse_body(&r);
    assert_string_equal(json_str(j, "method"), "GET");
    assert_string_equal(json_str(j, "path"), "/echo?x=1");
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "headers");
    assert_string_equal(json_str(hd, "x-kiln-test"), "hello there");
    assert_string_equal(json_str(hd, "accept"), "application/json");
    assert_string_equal(json_str(hd, "x-empty"), "");
    assert_ptr_equal(strstr(json_str(hd, "user-agent"), "kiln/"), json_str(hd, "user-agent"));
    assert_string_equal(json_str(j, "via"), "tcp");
    cJSON_Delete(j);
    result_release(&r);
}

static void test_post_body(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char body[] = "a=1\0b\xff";
    const char *headers[] = {"Content-Type: application/x-kiln", NULL};
    kiln_http_req req = req_init("/echo");
    req.method = "POST";
    req.headers = headers;
    req.body = body;
    req.body_len = 6;

    start_ok(f, &req, &r);
    memset(body, 'X', sizeof body); /* the host copied it */
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    cJSON *j = parse_body(&r);
    assert_string_equal(json_str(j, "method"), "POST");
    assert_int_equal(json_num(j, "body_len"), 6);
    assert_int_equal((uint32_t)json_num(j, "crc32"),
                     crc32_update(0, (const unsigned char *)"a=1\0b\xff", 6));
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "headers");
    assert_string_equal(json_str(hd, "content-type"), "application/x-kiln");
    assert_string_equal(json_str(hd, "content-length"), "6");
    assert_null(json_str(hd, "expect"));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "chunked")));
    cJSON_Delete(j);
    result_release(&r);

    /* Another method with a body; curl's default form Content-Type is gone. */
    req.method = "PUT";
    req.headers = NULL;
    req.body = "{}";
    req.body_len = 2;
    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    j = parse_body(&r);
    assert_string_equal(json_str(j, "method"), "PUT");
    assert_string_equal(json_str(j, "body"), "{}");
    assert_null(json_str(cJSON_GetObjectItemCaseSensitive(j, "headers"), "content-type"));
    cJSON_Delete(j);
    result_release(&r);
}

static void test_status_codes(void **state)
{
    struct fx *f = *state;
    struct result r404 = {0}, r500 = {0};
    kiln_http_req req = req_init("/status/404");
    start_ok(f, &req, &r404);
    req = req_init("/status/500");
    req.method = "DELETE";
    start_ok(f, &req, &r500);
    assert_true(run_until(f, &r404.calls, 1, HANG_MS));
    assert_true(run_until(f, &r500.calls, 1, HANG_MS));
    assert_int_equal(r404.err, 0);
    assert_int_equal(r404.status, 404);
    assert_string_equal(r404.body, "{\"status\": 404}");
    assert_int_equal(r500.err, 0);
    assert_int_equal(r500.status, 500);
    result_release(&r404);
    result_release(&r500);
}

static void test_unix_socket(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    kiln_http_req req = {.struct_size = sizeof req};
    req.url = "http://localhost/echo";
    req.unix_socket = srv.sock;
    req.method = "POST";
    req.body = "over the socket";
    req.body_len = strlen(req.body);

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    cJSON *j = parse_body(&r);
    assert_string_equal(json_str(j, "via"), "unix");
    assert_string_equal(json_str(j, "body"), "over the socket");
    cJSON_Delete(j);
    result_release(&r);
}

/* A producer of n pseudo-random bytes in uneven pieces. */
struct producer {
    size_t left;
    uint32_t seed;
    uint32_t crc;
    unsigned calls;
};

static long produce(void *data, char *buf, size_t cap)
{
    struct producer *p = data;
    size_t n = 1 + (p->calls++ * 7919u) % cap; /* uneven, sometimes tiny */
    if (n > p->left)
        n = p->left;
    for (size_t i = 0; i < n; i++) {
        p->seed = p->seed * 1103515245u + 12345u;
        buf[i] = (char)(p->seed >> 16);
    }
    p->crc = crc32_update(p->crc, (unsigned char *)buf, n);
    p->left -= n;
    return (long)n;
}

static void test_chunked_upload_50mib(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    const size_t total = 50u << 20;
    struct producer p = {.left = total, .seed = 42};
    const char *headers[] = {"Content-Type: application/x-tar", NULL};
    kiln_http_req req = req_init("/upload");
    req.method = "POST";
    req.headers = headers;
    req.read_body = produce;
    req.read_data = &p;

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(p.left, 0);
    assert_true(p.calls > 100);
    cJSON *j = parse_body(&r);
    assert_int_equal((size_t)json_num(j, "bytes"), total);
    assert_int_equal((uint32_t)json_num(j, "crc32"), p.crc);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "chunked")));
    cJSON_Delete(j);
    result_release(&r);
}

static void test_download_50mib(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    const size_t total = 50u << 20;
    kiln_http_req req = req_init("/large?bytes=52428800");

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/octet-stream");
    assert_int_equal(r.body_len, total);
    for (size_t i = 0; i < total; i++)
        if ((unsigned char)r.body[i] != i % 251)
            fail_msg("byte %zu is %u, expected %zu", i, (unsigned char)r.body[i], i % 251);
    result_release(&r);
}

/* ---- streaming response ---- */

struct stream {
    kiln__buf text;
    int chunks;
    uint64_t t_first;
    size_t first_len;
    char first[64];
    int stop_after; /* return an error from this call on (0: never) */
    kiln__http_client *destroy; /* destroy this client on the first call */
    struct fx *fx;
};

static int on_stream_data(void *data, const char *buf, size_t len)
{
    struct stream *s = data;
    if (!s->chunks++) {
        s->t_first = now_ms();
        s->first_len = len < sizeof s->first - 1 ? len : sizeof s->first - 1;
        memcpy(s->first, buf, s->first_len);
    }
    kiln__buf_add(&s->text, buf, len);
    if (s->destroy) {
        kiln__http_client_destroy(s->destroy);
        s->destroy = NULL;
        s->fx->c = NULL;
    }
    if (s->stop_after && s->chunks >= s->stop_after)
        return KILN_EPIPE;
    return 0;
}

static void test_stream_on_data(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct stream s = {.text = KILN__BUF_INIT};
    kiln_http_req req = req_init("/stream?n=5&delay_ms=300");
    req.on_data = on_stream_data;
    req.on_data_data = &s;

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_null(r.body); /* streamed, not collected */
    assert_string_equal(r.ctype, "application/x-ndjson");
    assert_string_equal(s.text.buf, "{\"i\": 0}\n{\"i\": 1}\n{\"i\": 2}\n{\"i\": 3}\n{\"i\": 4}\n");
    /* The first line came on its own, as soon as the server wrote it, before
     * the four delays of 300 ms were over. */
    assert_memory_equal(s.first, "{\"i\": 0}\n", 9);
    assert_true(s.chunks >= 5);
    assert_true(r.t_done - s.t_first >= 900);
    kiln__buf_release(&s.text);
    result_release(&r);
}

static void test_on_data_error_aborts(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct stream s = {.text = KILN__BUF_INIT, .stop_after = 1};
    /* The rest of the stream would take 30 minutes: ending at all shows that
     * the request did not wait for it. */
    kiln_http_req req = req_init("/stream?n=4&delay_ms=" SLOW_SERVER);
    req.on_data = on_stream_data;
    req.on_data_data = &s;

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_ECANCELED);
    assert_int_equal(r.status, 200);
    assert_int_equal(s.chunks, 1);
    assert_non_null(strstr(r.error, "on_data"));
    run_for(f, 300);
    assert_int_equal(r.calls, 1);
    assert_int_equal(s.chunks, 1);
    kiln__buf_release(&s.text);
    result_release(&r);
}

static long fail_read(void *data, char *buf, size_t cap)
{
    int *calls = data;
    if ((*calls)++)
        return KILN_EIO;
    memset(buf, 'x', cap);
    return (long)cap;
}

static void test_read_body_error_aborts(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    int calls = 0;
    kiln_http_req req = req_init("/upload");
    req.method = "POST";
    req.read_body = fail_read;
    req.read_data = &calls;

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_ECANCELED);
    assert_int_equal(calls, 2);
    assert_non_null(strstr(r.error, "read_body"));
    result_release(&r);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    kiln_http_req req = req_init("/delay?ms=" SLOW_SERVER);
    req.timeout_ms = 300;
    uint64_t t0 = now_ms();

    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_ETIMEDOUT);
    assert_int_equal(r.status, 0);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "imed out"));
    assert_true(r.t_done - t0 >= 290);
    result_release(&r);
}

/* ---- abort ---- */

struct aborter {
    uv_timer_t timer;
    kiln_http *h;
    bool quiet;
    struct result *r;
};

static void on_abort_timer(uv_timer_t *t)
{
    struct aborter *a = t->data;
    a->r->forbid = true;
    if (a->quiet)
        kiln__http_abort_quiet(a->h);
    else
        kiln__http_abort(a->h);
    a->r->forbid = false;
    uv_close((uv_handle_t *)t, NULL);
}

static void abort_later(struct fx *f, struct aborter *a, kiln_http *h, struct result *r,
                        bool quiet, uint64_t ms)
{
    a->h = h;
    a->r = r;
    a->quiet = quiet;
    uv_timer_init(&f->loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, on_abort_timer, ms, 0);
}

static void test_abort(void **state)
{
    struct fx *f = *state;
    struct result r = {0}, r2 = {0};
    struct aborter a;
    kiln_http_req req = req_init("/delay?ms=" SLOW_SERVER);
    uint64_t t0 = now_ms();

    abort_later(f, &a, start_ok(f, &req, &r), &r, false, 200);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_ECANCELED);
    assert_string_equal(r.error, "request aborted");
    assert_true(r.t_done - t0 >= 190); /* at the abort, not before */

    /* Aborted before it was even sent, and twice. */
    kiln_http *h = start_ok(f, &req, &r2);
    r2.forbid = true;
    kiln__http_abort(h);
    kiln__http_abort(h);
    r2.forbid = false;
    assert_true(run_until(f, &r2.calls, 1, HANG_MS));
    assert_int_equal(r2.err, KILN_ECANCELED);

    run_for(f, 300);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r2.calls, 1);
    result_release(&r);
    result_release(&r2);
}

struct self_abort {
    kiln_http *h;
    int chunks;
    bool quiet;
};

static int abort_self(void *data, const char *buf, size_t len)
{
    struct self_abort *sa = data;
    sa->chunks++;
    if (sa->quiet)
        kiln__http_abort_quiet(sa->h);
    else
        kiln__http_abort(sa->h);
    return 0;
}

/* A plugin aborts its request from its own on_data: curl is inside a
 * callback, the transfer fails at once, and still only one callback comes. */
static void test_abort_from_on_data(void **state)
{
    struct fx *f = *state;
    struct result r = {0}, r2 = {0};
    struct self_abort sa = {0}, sa2 = {.quiet = true};
    kiln_http_req req = req_init("/stream?n=3&delay_ms=200");
    req.on_data = abort_self;
    req.on_data_data = &sa;

    sa.h = start_ok(f, &req, &r);
    req.on_data_data = &sa2;
    sa2.h = start_ok(f, &req, &r2);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_ECANCELED);
    assert_string_equal(r.error, "request aborted");
    run_for(f, 700);
    assert_int_equal(r.calls, 1);
    assert_int_equal(sa.chunks, 1);
    assert_int_equal(r2.calls, 0);
    assert_int_equal(sa2.chunks, 1);
    result_release(&r);
}

static void test_abort_quiet(void **state)
{
    struct fx *f = *state;
    struct result r = {0}, r2 = {0}, r3 = {0};
    struct aborter a;
    kiln_http_req req = req_init("/delay?ms=1000");

    abort_later(f, &a, start_ok(f, &req, &r), &r, true, 200);
    kiln__http_abort_quiet(start_ok(f, &req, &r2));
    /* abort, then abort_quiet before the callback: stays quiet */
    kiln_http *h = start_ok(f, &req, &r3);
    kiln__http_abort(h);
    kiln__http_abort_quiet(h);
    run_for(f, 1500); /* past the server's reply */
    assert_int_equal(r.calls, 0);
    assert_int_equal(r2.calls, 0);
    assert_int_equal(r3.calls, 0);
    /* The client still works. */
    req = req_init("/echo");
    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, 0);
    result_release(&r);
}

static void test_connection_refused(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t slen = sizeof sa;
    char url[64];

    /* A port that was free a moment ago and has no listener. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", ntohs(sa.sin_port));

    kiln_http_req req = {.struct_size = sizeof req, .url = url};
    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_EHTTP);
    assert_int_equal(r.status, 0);
    assert_non_null(r.error);
    print_message("refused: %s\n", r.error);
    assert_non_null(strstr(r.error, "127.0.0.1"));
    assert_non_null(strstr(r.error, "onnect"));
    result_release(&r);

    /* A unix socket nobody listens on. */
    req.url = "http://localhost/echo";
    req.unix_socket = "/nonexistent/kiln.sock";
    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_EHTTP);
    assert_non_null(r.error);
    print_message("no socket: %s\n", r.error);
    assert_non_null(strstr(r.error, "onnect"));
    assert_non_null(strstr(r.error, "/nonexistent/kiln.sock"));
    result_release(&r);
}

static void test_concurrent(void **state)
{
    struct fx *f = *state;
    enum { N = 10 };
    struct result r[N] = {{0}};
    char hdr[N][32];
    const char *headers[N][2];
    int done = 0;
    uint64_t t0 = now_ms();

    for (int i = 0; i < N; i++) {
        kiln_http_req req = req_init("/delay?ms=600&group=concurrent");
        snprintf(hdr[i], sizeof hdr[i], "X-Id: req-%d", i);
        headers[i][0] = hdr[i];
        headers[i][1] = NULL;
        req.headers = headers[i];
        start_ok(f, &req, &r[i]);
    }
    while (done < N) {
        assert_true(now_ms() - t0 < HANG_MS);
        uv_run(&f->loop, UV_RUN_ONCE);
        done = 0;
        for (int i = 0; i < N; i++)
            done += r[i].calls;
    }
    /* In parallel: while one of them was in the server's hands, so was
     * another ("peak": the most requests of its group in progress at once
     * during its life), which one at a time never happens. */
    int peak = 0;
    for (int i = 0; i < N; i++) {
        char want[32];
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, 0);
        assert_int_equal(r[i].status, 200);
        cJSON *j = parse_body(&r[i]);
        snprintf(want, sizeof want, "req-%d", i);
        assert_string_equal(json_str(j, "id"), want);
        cJSON *pk = cJSON_GetObjectItemCaseSensitive(j, "peak");
        assert_true(cJSON_IsNumber(pk));
        if (pk->valueint > peak)
            peak = pk->valueint;
        cJSON_Delete(j);
        result_release(&r[i]);
    }
    assert_true(peak > 1);
}

static long endless(void *data, char *buf, size_t cap)
{
    memset(buf, 'z', cap);
    return (long)cap;
}

static int count_bytes(void *data, const char *buf, size_t len)
{
    *(uint64_t *)data += len;
    return 0;
}

static void destroy_client(uv_timer_t *t)
{
    struct fx *f = t->data;
    kiln__http_client_destroy(f->c);
    f->c = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void test_destroy_in_flight(void **state)
{
    struct fx *f = *state;
    struct result r[5] = {{0}};
    struct stream s = {.text = KILN__BUF_INIT};
    uint64_t got = 0;
    uv_timer_t t;
    kiln_http_req req;

    /* Requests that would run for minutes: uv_run returning at all shows
     * that destroying the client ended them. */
    req = req_init("/delay?ms=" SLOW_SERVER);
    start_ok(f, &req, &r[0]);
    start_ok(f, &req, &r[1]);
    req = req_init("/stream?n=50&delay_ms=" SLOW_SERVER);
    req.on_data = on_stream_data;
    req.on_data_data = &s;
    start_ok(f, &req, &r[2]);
    req = req_init("/upload");
    req.method = "POST";
    req.read_body = endless;
    start_ok(f, &req, &r[3]);
    req = req_init("/large?bytes=21474836480"); /* 20 GiB, streamed */
    req.on_data = count_bytes;
    req.on_data_data = &got;
    start_ok(f, &req, &r[4]);

    uv_timer_init(&f->loop, &t);
    t.data = f;
    uv_timer_start(&t, destroy_client, 300, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns once every handle is closed */
    assert_null(f->c);
    assert_true(s.chunks > 0); /* they were running */
    assert_true(got > 0);
    for (int i = 0; i < 5; i++) {
        if (r[i].calls)
            fail_msg("request %d completed: err %d status %d", i, r[i].err, r[i].status);
    }
    kiln__buf_release(&s.text);
}

struct chain {
    struct fx *f;
    struct result inner;
    int calls;
    bool destroy;
};

static void on_chain_done(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    struct chain *ch = data;
    ch->calls++;
    if (ch->destroy) {
        kiln__http_client_destroy(ch->f->c);
        ch->f->c = NULL;
        return;
    }
    /* Start another request from the callback. */
    kiln_http_req req = req_init("/echo");
    ch->inner.forbid = true;
    assert_int_equal(kiln__http_start(ch->f->c, &req, on_done, &ch->inner, NULL), 0);
    ch->inner.forbid = false;
}

static void test_destroy_from_callbacks(void **state)
{
    struct fx *f = *state;
    struct result r[3] = {{0}};
    struct stream s = {.text = KILN__BUF_INIT};
    struct chain ch = {.f = f, .destroy = true};
    kiln_http_req req;

    /* From on_data, that is from inside curl_multi_socket_action. */
    req = req_init("/stream?n=20&delay_ms=100");
    req.on_data = on_stream_data;
    req.on_data_data = &s;
    s.destroy = f->c;
    s.fx = f;
    start_ok(f, &req, &r[0]);
    req = req_init("/delay?ms=3000");
    start_ok(f, &req, &r[1]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_null(f->c);
    assert_int_equal(s.chunks, 1);
    assert_int_equal(r[0].calls, 0);
    assert_int_equal(r[1].calls, 0);
    kiln__buf_release(&s.text);

    /* From a completion callback, with another request in flight. */
    assert_int_equal(kiln__http_client_create(&f->loop, &f->c), 0);
    req = req_init("/echo");
    assert_int_equal(kiln__http_start(f->c, &req, on_chain_done, &ch, NULL), 0);
    req = req_init("/delay?ms=3000");
    start_ok(f, &req, &r[2]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_null(f->c);
    assert_int_equal(ch.calls, 1);
    assert_int_equal(r[2].calls, 0);
}

static void test_start_from_callback(void **state)
{
    struct fx *f = *state;
    struct chain ch = {.f = f};
    kiln_http_req req = req_init("/echo");

    assert_int_equal(kiln__http_start(f->c, &req, on_chain_done, &ch, NULL), 0);
    assert_true(run_until(f, &ch.inner.calls, 1, HANG_MS));
    assert_int_equal(ch.calls, 1);
    assert_int_equal(ch.inner.err, 0);
    assert_int_equal(ch.inner.status, 200);
    result_release(&ch.inner);
}

static void test_invalid_requests(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    kiln_http *h = NULL;
    const char *bad_header[] = {"X-Evil: a\r\nX-Injected: b", NULL};
    kiln_http_req req;

    req = (kiln_http_req){.struct_size = sizeof req};
    assert_int_equal(kiln__http_start(f->c, &req, on_done, &r, &h), KILN_EINVAL); /* no url */
    req = req_init("/echo");
    req.struct_size = 8;
    assert_int_equal(kiln__http_start(f->c, &req, on_done, &r, &h), KILN_EINVAL);
    req = req_init("/echo");
    req.body = "x";
    req.body_len = 1;
    req.read_body = endless;
    assert_int_equal(kiln__http_start(f->c, &req, on_done, &r, &h), KILN_EINVAL);
    req = req_init("/echo");
    req.headers = bad_header;
    assert_int_equal(kiln__http_start(f->c, &req, on_done, &r, &h), KILN_EINVAL);
    req = req_init("/echo");
    req.method = "GET /x HTTP/1.1\r\n";
    assert_int_equal(kiln__http_start(f->c, &req, on_done, &r, &h), KILN_EINVAL);
    req = req_init("/echo");
    req.url = "file:///etc/passwd";
    /* Accepted by start (curl checks schemes when it runs): fails, not read. */
    start_ok(f, &req, &r);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_EHTTP);
    assert_int_equal(r.body_len, 0);
    print_message("file url: %s\n", r.error);
    result_release(&r);
    assert_null(h); /* failed starts leave *out alone */
}

/* ---- paused uploads (read_body -> KILN_EAGAIN, kiln__http_resume) -------- */

/* A producer that has data only when a timer gave it some, as a worker
 * thread feeding a bounded buffer would. */
struct slow_producer {
    kiln_http *h;
    uv_timer_t timer;
    size_t avail;  /* bytes the timer made available */
    size_t left;   /* bytes still to produce in total */
    size_t sent;
    uint32_t crc;
    uint32_t seed;
    int pauses;
    int resumes;
    bool paused;
    bool resume_inside; /* resume from read_body itself before saying EAGAIN */
};

static long slow_read(void *data, char *buf, size_t cap)
{
    struct slow_producer *p = data;
    if (p->left == 0)
        return 0;
    if (p->avail == 0) {
        p->pauses++;
        p->paused = true;
        if (p->resume_inside && p->pauses % 2) {
            /* a producer that got data between its check and its return */
            p->avail = 1000;
            p->paused = false;
            p->resumes++;
            kiln__http_resume(p->h);
        }
        return KILN_EAGAIN;
    }
    size_t n = cap < p->avail ? cap : p->avail;
    if (n > p->left)
        n = p->left;
    for (size_t i = 0; i < n; i++) {
        p->seed = p->seed * 1103515245u + 12345u;
        buf[i] = (char)(p->seed >> 16);
    }
    p->crc = crc32_update(p->crc, (unsigned char *)buf, n);
    p->avail -= n;
    p->left -= n;
    p->sent += n;
    return (long)n;
}

static void slow_tick(uv_timer_t *t)
{
    struct slow_producer *p = t->data;
    p->avail += 48 * 1024;
    if (p->paused && p->h) {
        p->paused = false;
        p->resumes++;
        kiln__http_resume(p->h);
    }
    if (p->left == 0)
        uv_timer_stop(t);
}

static void paused_upload(struct fx *f, bool resume_inside)
{
    struct result r = {0};
    const size_t total = 2u << 20;
    struct slow_producer p = {.left = total, .seed = 7, .resume_inside = resume_inside};
    kiln_http_req req = req_init("/upload");
    req.method = "POST";
    req.read_body = slow_read;
    req.read_data = &p;
    uv_timer_init(&f->loop, &p.timer);
    p.timer.data = &p;
    p.h = start_ok(f, &req, &r);
    uv_timer_start(&p.timer, slow_tick, 2, 2);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    uv_timer_stop(&p.timer);
    uv_close((uv_handle_t *)&p.timer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* p.timer lives on this stack */
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(p.left, 0);
    assert_true(p.pauses > 10);
    assert_true(p.resumes > 10);
    cJSON *j = parse_body(&r);
    assert_int_equal((size_t)json_num(j, "bytes"), total);
    assert_int_equal((uint32_t)json_num(j, "crc32"), p.crc);
    cJSON_Delete(j);
    result_release(&r);
}

static void test_paused_upload(void **state)
{
    paused_upload(*state, false);
}

static void test_paused_upload_resume_inside(void **state)
{
    paused_upload(*state, true);
}

static long never_read(void *data, char *buf, size_t cap)
{
    (*(int *)data)++;
    return KILN_EAGAIN;
}

/* Aborting a paused upload ends it as canceled; resume after that is a no-op. */
static void test_paused_upload_abort(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    int calls = 0;
    kiln_http_req req = req_init("/upload");
    req.method = "POST";
    req.read_body = never_read;
    req.read_data = &calls;
    kiln_http *h = start_ok(f, &req, &r);
    run_for(f, 200);
    assert_int_equal(r.calls, 0);
    assert_true(calls >= 1);
    int before = calls;
    run_for(f, 100);
    assert_int_equal(calls, before); /* paused: not polled */
    kiln__http_resume(h);
    run_for(f, 50);
    assert_int_equal(calls, before + 1); /* asked once more, paused again */
    kiln__http_abort(h);
    assert_true(run_until(f, &r.calls, 1, HANG_MS));
    assert_int_equal(r.err, KILN_ECANCELED);
    result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_echo, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_post_body, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_status_codes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_upload_50mib, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_download_50mib, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_on_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_on_data_error_aborts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_read_body_error_aborts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_paused_upload, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_paused_upload_resume_inside, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_paused_upload_abort, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_timeout, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_abort, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_abort_from_on_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_abort_quiet, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_in_flight, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_callbacks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_start_from_callback, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, fx_setup, fx_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
