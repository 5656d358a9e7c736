/* SPDX-License-Identifier: MIT */
/*
 * kiln serve's record store and live log followers (serve_logs.h).
 *
 * A record file is opened at a step's first record and closed when its
 * build is over; later records of the step (a note after its end) open it
 * again for appending, so a step's records are always 1..N without a gap.
 * Followers are h2o generators: at most one write in flight each; when it
 * completes (proceed) or a record arrives (wake), the next piece is read
 * from the store from the follower's next sequence number. Nothing is
 * queued in memory per follower, so a slow browser costs no memory and a
 * resumed one starts exactly where it asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o.h>

#include "json_string.h"
#include "path.h"
#include "serve_logs.h"

#define KEEPALIVE_MS 15000
#define CHUNK_RECORDS 5000 /* per SSE write / default JSON page */
#define CHUNK_BYTES (256u << 10)
#define MAX_LIMIT 20000

struct rfile {
    struct rfile *next;
    char *build_id;
    char *name;   /* file name stem: the encoded step, or "@build" */
    int fd, ifd;  /* -1 until the first record */
    uint64_t n;   /* records stored: the last sequence number */
    uint64_t off; /* bytes in the .jsonl */
    bool ended;   /* STEP_END seen */
    bool broken;  /* a write failed: said once, nothing more stored */
};

struct live {
    struct live *next;
    char *id;
};

struct follower {
    h2o_generator_t gen; /* first: h2o hands it back to us */
    struct follower *next, *prev;
    struct store *st;
    h2o_req_t *req;
    char *build_id, *name;
    uint64_t next_seq;
    bool inflight;
    kiln__buf out; /* what is being written, kept until proceed */
};

struct store {
    kiln__server *srv;
    kiln__tap tap;
    struct rfile *files; /* of builds not over yet */
    struct live *live;   /* builds between BUILD_START and BUILD_END */
    struct follower *followers;
    uv_timer_t keepalive;
    bool timer_up;
    kiln__buf tmp;
    kiln__buf idx;
};

/* ---- names ------------------------------------------------------------ */

static bool id_ok(const char *id)
{
    if (!*id || strlen(id) > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* A step id as a file name: bytes outside [A-Za-z0-9_-] and a leading '.'
 * percent-encoded, so two steps never share a file; NULL: "@build". */
static char *encode_step(const char *step)
{
    if (!step)
        return kiln__xstrdup("@build");
    kiln__buf b = KILN__BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)step; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_' || *p == '-' || (*p == '.' && p != (const unsigned char *)step))
            kiln__buf_addch(&b, (char)*p);
        else
            kiln__buf_addf(&b, "%%%02X", *p);
    }
    if (!b.len)
        kiln__buf_adds(&b, "%");
    return kiln__buf_detach(&b);
}

static char *record_path(const struct store *st, const char *build_id, const char *name,
                         const char *ext)
{
    return kiln__xasprintf("%s/builds/%s/records/%s.%s", st->srv->data_dir, build_id, name, ext);
}

/* ---- liveness --------------------------------------------------------- */

static bool is_live(const struct store *st, const char *id)
{
    for (const struct live *l = st->live; l; l = l->next)
        if (!strcmp(l->id, id))
            return true;
    const kiln__server *srv = st->srv;
    for (const kiln__job *j = srv->queue_head; j; j = j->next)
        if (!strcmp(j->id, id))
            return true;
    for (const kiln__job *j = srv->running; j; j = j->next)
        if (!strcmp(j->id, id))
            return !j->reap_timer && !(j->b && j->b->phase == KILN__PHASE_DONE);
    return false;
}

static struct rfile *find_file(struct store *st, const char *build_id, const char *name)
{
    for (struct rfile *f = st->files; f; f = f->next)
        if (!strcmp(f->build_id, build_id) && !strcmp(f->name, name))
            return f;
    return NULL;
}

static struct rfile *get_file(struct store *st, const char *build_id, const char *name)
{
    struct rfile *f = find_file(st, build_id, name);
    if (f)
        return f;
    f = kiln__xcalloc(1, sizeof *f);
    f->build_id = kiln__xstrdup(build_id);
    f->name = kiln__xstrdup(name);
    f->fd = f->ifd = -1;
    f->next = st->files;
    st->files = f;
    return f;
}

static void close_file(struct rfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->ifd >= 0)
        close(f->ifd);
    f->fd = f->ifd = -1;
}

/* Open (or reopen) f's two files for appending; n and off from their sizes. */
static int open_file(struct store *st, struct rfile *f)
{
    char *dir = kiln__xasprintf("%s/builds/%s/records", st->srv->data_dir, f->build_id);
    kiln__mkdir_p(dir);
    free(dir);
    char *data = record_path(st, f->build_id, f->name, "jsonl");
    char *idx = record_path(st, f->build_id, f->name, "idx");
    int rc = 0;
    f->fd = open(data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    f->ifd = f->fd >= 0 ? open(idx, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    struct stat a, b;
    if (f->fd < 0 || f->ifd < 0 || fstat(f->fd, &a) != 0 || fstat(f->ifd, &b) != 0) {
        kiln__serve_log("error: cannot open %s: %s (its live log stops here)", data,
                        strerror(errno));
        close_file(f);
        rc = KILN_EIO;
    } else {
        f->off = (uint64_t)a.st_size;
        f->n = (uint64_t)b.st_size / 8;
    }
    free(data);
    free(idx);
    return rc;
}

static void wake(struct store *st, const char *build_id, const char *name);

static void drop_build(struct store *st, const char *id)
{
    for (struct rfile **pp = &st->files; *pp;) {
        struct rfile *f = *pp;
        if (strcmp(f->build_id, id)) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        close_file(f);
        free(f->build_id);
        free(f->name);
        free(f);
    }
    for (struct live **pp = &st->live; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->id, id)) {
            struct live *l = *pp;
            *pp = l->next;
            free(l->id);
            free(l);
            break;
        }
    wake(st, id, NULL);
}

/* ---- the tap ---------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *stream_name(kiln_stream s)
{
    return s == KILN_STREAM_STDERR ? "stderr" : s == KILN_STREAM_SYSTEM ? "kiln" : "stdout";
}

static const char *level_name(kiln_log_level l)
{
    return l == KILN_LOG_ERROR   ? "error"
           : l == KILN_LOG_WARN  ? "warning"
           : l == KILN_LOG_DEBUG ? "debug"
                                 : "info";
}

static void tap_write(void *data, const kiln_log_batch *b)
{
    struct store *st = data;
    if (!id_ok(b->build_id))
        return;
    char *name = encode_step(b->step_id);
    struct rfile *f = get_file(st, b->build_id, name);
    free(name);
    if (f->broken || (f->fd < 0 && open_file(st, f) != 0)) {
        f->broken = true;
        return;
    }
    char t[64];
    kiln__format_time(b->time_us, t, sizeof t);
    kiln__buf *out = &st->tmp, *idx = &st->idx;
    kiln__buf_reset(out);
    kiln__buf_reset(idx);
    kiln__buf_grow(out, KP_JSON_ESCAPE_MAX(b->len) + (size_t)b->n_lines * 128);
    size_t pos = 0, ll, i = 0;
    const char *line;
    while (kiln_batch_next(b, &pos, &line, &ll)) {
        uint64_t at = f->off + out->len;
        kiln__buf_add(idx, &at, sizeof at);
        kiln__buf_addf(out, "{\"seq\":%llu,\"stream\":\"%s\",\"time\":\"%s\"",
                       (unsigned long long)(f->n + i + 1), stream_name(b->stream), t);
        if (b->stream == KILN_STREAM_SYSTEM)
            kiln__buf_addf(out, ",\"level\":\"%s\"", level_name(b->severity));
        if (i == 0 && (b->flags & KILN_BATCH_CONTINUED))
            kiln__buf_adds(out, ",\"continued\":true");
        bool last = pos >= b->len;
        if (last && (b->flags & KILN_BATCH_PARTIAL))
            kiln__buf_adds(out, ",\"partial\":true");
        kiln__buf_adds(out, ",\"text\":\"");
        kiln__buf_grow(out, KP_JSON_ESCAPE_MAX(ll) + 3);
        out->len += kp_json_escape(out->buf + out->len, line, ll);
        kiln__buf_add(out, "\"}\n", 3);
        i++;
    }
    if (write_all(f->fd, out->buf, out->len) != 0 || write_all(f->ifd, idx->buf, idx->len) != 0) {
        kiln__serve_log(
            "error: build %s: cannot store the records of %s: %s (its live log stops here)",
            f->build_id, f->name, strerror(errno));
        f->broken = true;
        close_file(f);
        return;
    }
    f->off += out->len;
    f->n += i;
    wake(st, f->build_id, f->name);
    /* A note after the build's end: stored, but nothing stays open. */
    if (!is_live(st, b->build_id))
        drop_build(st, b->build_id);
}

static void tap_event(void *data, const kiln_event *ev)
{
    struct store *st = data;
    if (!id_ok(ev->build_id))
        return;
    if (ev->type == KILN_EVENT_BUILD_START) {
        if (ev->depth > 0)
            kiln__serve_subbuild_started(st->srv, ev->build_id);
        struct live *l = kiln__xcalloc(1, sizeof *l);
        l->id = kiln__xstrdup(ev->build_id);
        l->next = st->live;
        st->live = l;
    } else if (ev->type == KILN_EVENT_BUILD_END) {
        if (ev->depth == 0)
            kiln__web_build_end(st->srv, ev->build_id);
        drop_build(st, ev->build_id);
    } else if (ev->type == KILN_EVENT_STEP_END && ev->step_id) {
        char *name = encode_step(ev->step_id);
        struct rfile *f = get_file(st, ev->build_id, name);
        f->ended = true;
        close_file(f);
        wake(st, ev->build_id, name);
        free(name);
    }
}

/* ---- reading ---------------------------------------------------------- */

struct range {
    uint64_t total; /* records stored */
    bool complete;  /* and no more will come */
};

/* Read records [from, ...) of (build, name), at most max_n of them and
 * about max_bytes, into out as their JSON lines. Returns how many. */
static uint64_t read_records(struct store *st, const char *build_id, const char *name,
                             uint64_t from, uint64_t max_n, size_t max_bytes, kiln__buf *out,
                             struct range *r)
{
    struct rfile *f = find_file(st, build_id, name);
    r->complete = f ? f->ended || f->broken : !is_live(st, build_id);
    char *data = record_path(st, build_id, name, "jsonl");
    char *idxp = record_path(st, build_id, name, "idx");
    int fd = open(data, O_RDONLY | O_CLOEXEC), ifd = open(idxp, O_RDONLY | O_CLOEXEC);
    free(data);
    free(idxp);
    uint64_t got = 0;
    r->total = 0;
    struct stat a, b;
    if (fd < 0 || ifd < 0 || fstat(fd, &a) != 0 || fstat(ifd, &b) != 0)
        goto out;
    uint64_t size = (uint64_t)a.st_size, total = (uint64_t)b.st_size / 8;
    if (f && f->fd >= 0) {
        /* What this process wrote, not a torn tail of another's. */
        size = f->off;
        total = f->n;
    }
    r->total = total;
    if (from < 1 || from > total || !max_n)
        goto out;
    uint64_t n = total - from + 1;
    if (n > max_n)
        n = max_n;
    uint64_t *offs = kiln__xmalloc((size_t)(n + 1) * sizeof *offs);
    size_t want = (size_t)(n + (from - 1 + n < total ? 1 : 0)) * sizeof *offs;
    if (pread(ifd, offs, want, (off_t)((from - 1) * 8)) != (ssize_t)want) {
        free(offs);
        goto out;
    }
    if (from - 1 + n >= total)
        offs[n] = size;
    /* Keep to about max_bytes, but always at least one record. */
    while (n > 1 && offs[n] - offs[0] > max_bytes)
        n = n / 2;
    size_t len = (size_t)(offs[n] - offs[0]);
    kiln__buf_grow(out, len);
    if (offs[n] >= offs[0] && pread(fd, out->buf + out->len, len, (off_t)offs[0]) == (ssize_t)len) {
        out->len += len;
        out->buf[out->len] = '\0';
        got = n;
    }
    free(offs);
out:
    if (fd >= 0)
        close(fd);
    if (ifd >= 0)
        close(ifd);
    return got;
}

/* ---- followers -------------------------------------------------------- */

static void follower_unlink(struct follower *f)
{
    struct store *st = f->st;
    if (f->prev)
        f->prev->next = f->next;
    else
        st->followers = f->next;
    if (f->next)
        f->next->prev = f->prev;
    kiln__buf_release(&f->out);
    free(f->build_id);
    free(f->name);
    free(f);
}

static void follower_pump(struct follower *f)
{
    if (f->inflight)
        return;
    struct store *st = f->st;
    kiln__buf lines = KILN__BUF_INIT;
    struct range r;
    uint64_t n =
        read_records(st, f->build_id, f->name, f->next_seq, CHUNK_RECORDS, CHUNK_BYTES, &lines, &r);
    kiln__buf_reset(&f->out);
    const char *p = lines.buf;
    for (uint64_t i = 0; i < n; i++) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        kiln__buf_addf(&f->out, "id: %llu\ndata: ", (unsigned long long)(f->next_seq + i));
        kiln__buf_add(&f->out, p, ll);
        kiln__buf_add(&f->out, "\n\n", 2);
        p += ll + (nl ? 1 : 0);
    }
    kiln__buf_release(&lines);
    f->next_seq += n;
    h2o_req_t *req = f->req;
    if (n) {
        f->inflight = true;
        h2o_iovec_t v = h2o_iovec_init(f->out.buf, f->out.len);
        h2o_send(req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    if (!r.complete)
        return; /* wait for wake() */
    char *end = h2o_mem_alloc_pool(&req->pool, 96);
    int len = snprintf(end, 96, "event: end\ndata: {\"next\":%llu,\"total\":%llu}\n\n",
                       (unsigned long long)f->next_seq, (unsigned long long)r.total);
    follower_unlink(f);
    h2o_iovec_t v = h2o_iovec_init(end, (size_t)len);
    h2o_send(req, &v, 1, H2O_SEND_STATE_FINAL);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    struct follower *f = (struct follower *)g;
    f->inflight = false;
    follower_pump(f);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    follower_unlink((struct follower *)g);
}

/* name NULL: every follower of the build. */
static void wake(struct store *st, const char *build_id, const char *name)
{
    for (struct follower *f = st->followers, *next; f; f = next) {
        next = f->next; /* f may finish and go */
        if (!strcmp(f->build_id, build_id) && (!name || !strcmp(f->name, name)))
            follower_pump(f);
    }
}

static void on_keepalive(uv_timer_t *t)
{
    static char ping[] = ": keep-alive\n\n";
    struct store *st = t->data;
    for (struct follower *f = st->followers; f; f = f->next) {
        if (f->inflight)
            continue;
        f->inflight = true;
        h2o_iovec_t v = h2o_iovec_init(ping, sizeof ping - 1);
        h2o_send(f->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
    }
}

/* ---- the API ---------------------------------------------------------- */

static int send_err(h2o_req_t *req, int status, const char *reason, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", msg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t n = strlen(text);
    char *copy = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(copy, text, n);
    copy[n] = '\n';
    cJSON_free(text);
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, copy, n + 1);
    return 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || *s == '-')
        return false;
    *out = v;
    return true;
}

static const char *req_header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    char *s = h2o_mem_alloc_pool(&req->pool, v.len + 1);
    memcpy(s, v.base, v.len);
    s[v.len] = '\0';
    return s;
}

int kiln__logs_handle(kiln__server *srv, h2o_req_t *req, const char *id, const char *step,
                      const char *from_s, const char *limit_s)
{
    struct store *st = srv->logs;
    if (!id_ok(id))
        return send_err(req, 404, "Not Found", "no such build");
    char *dir = kiln__xasprintf("%s/builds/%s", srv->data_dir, id);
    char stbuf[32];
    bool known =
        access(dir, F_OK) == 0 || kiln__db_status(srv, id, stbuf, sizeof stbuf) || is_live(st, id);
    free(dir);
    if (!known)
        return send_err(req, 404, "Not Found", "no such build");
    uint64_t from = 1, limit = CHUNK_RECORDS;
    if (from_s && *from_s && !parse_u64(from_s, &from))
        return send_err(req, 400, "Bad Request",
                        "from: expected a sequence number (1 is the first record)");
    if (limit_s && *limit_s && (!parse_u64(limit_s, &limit) || limit > MAX_LIMIT))
        return send_err(req, 400, "Bad Request", "limit: expected 0 to 20000 records");
    if (from < 1)
        from = 1;
    char *name = encode_step(step && *step ? step : NULL);
    const char *accept = req_header(req, "accept");
    if (accept && strstr(accept, "text/event-stream")) {
        /* EventSource sends the last id it saw when it reconnects: that
         * wins over the from= of the URL it reconnects to. */
        const char *last = req_header(req, "last-event-id");
        uint64_t l;
        if (last && parse_u64(last, &l))
            from = l + 1;
        struct follower *f = kiln__xcalloc(1, sizeof *f);
        f->gen.proceed = on_proceed;
        f->gen.stop = on_stop;
        f->st = st;
        f->req = req;
        f->build_id = kiln__xstrdup(id);
        f->name = name;
        f->next_seq = from;
        f->next = st->followers;
        if (f->next)
            f->next->prev = f;
        st->followers = f;
        req->res.status = 200;
        req->res.reason = "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("text/event-stream"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("no-cache"));
        /* nginx would otherwise hold the stream back in its buffers. */
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0,
                              NULL, H2O_STRLIT("no"));
        h2o_start_response(req, &f->gen);
        /* An empty first write sends the headers now. */
        static char hello[] = "retry: 1000\n\n";
        f->inflight = true;
        h2o_iovec_t v = h2o_iovec_init(hello, sizeof hello - 1);
        h2o_send(req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
        return 0;
    }
    kiln__buf lines = KILN__BUF_INIT;
    struct range r;
    uint64_t n = read_records(st, id, name, from, limit, 64u << 20, &lines, &r);
    free(name);
    kiln__buf body = KILN__BUF_INIT;
    kiln__buf_adds(&body, "{\"records\":[");
    for (size_t i = 0; i < lines.len; i++)
        if (lines.buf[i] == '\n')
            lines.buf[i] = i + 1 == lines.len ? ' ' : ',';
    if (lines.len)
        kiln__buf_add(&body, lines.buf, lines.len - 1);
    kiln__buf_release(&lines);
    kiln__buf_addf(&body, "],\"from\":%llu,\"next\":%llu,\"total\":%llu,\"complete\":%s}\n",
                   (unsigned long long)from, (unsigned long long)(from + n),
                   (unsigned long long)r.total,
                   r.complete && from + n > r.total ? "true" : "false");
    char *copy = h2o_mem_alloc_pool(&req->pool, body.len);
    memcpy(copy, body.buf, body.len);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, copy, body.len);
    kiln__buf_release(&body);
    return 0;
}

/* ---- life ------------------------------------------------------------- */

void kiln__logs_init(kiln__server *srv)
{
    struct store *st = kiln__xcalloc(1, sizeof *st);
    st->srv = srv;
    st->tap.write = tap_write;
    st->tap.event = tap_event;
    st->tap.data = st;
    srv->eng.tap = &st->tap;
    srv->logs = st;
    uv_timer_init(srv->loop, &st->keepalive);
    st->keepalive.data = st;
    uv_timer_start(&st->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    st->timer_up = true;
}

void kiln__logs_build_over(kiln__server *srv, const char *id)
{
    struct store *st = srv->logs;
    if (st)
        drop_build(st, id);
}

void kiln__logs_dispose(kiln__server *srv)
{
    struct store *st = srv->logs;
    if (st && st->timer_up) {
        st->timer_up = false;
        uv_close((uv_handle_t *)&st->keepalive, NULL);
    }
}

void kiln__logs_free(kiln__server *srv)
{
    struct store *st = srv->logs;
    if (!st)
        return;
    while (st->followers)
        follower_unlink(st->followers);
    while (st->files)
        drop_build(st, st->files->build_id);
    while (st->live)
        drop_build(st, st->live->id);
    kiln__buf_release(&st->tmp);
    kiln__buf_release(&st->idx);
    srv->eng.tap = NULL;
    free(st);
    srv->logs = NULL;
}
