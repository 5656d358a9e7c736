/* SPDX-License-Identifier: MIT */
/*
 * The shipping core; the contract is in kiln/host.h (kiln_ship_opts).
 *
 * Records are copied into the batch being filled (`cur`): their text and
 * ids go into one arena per batch, so a batch is one allocation of text plus
 * one array of records, and it is freed as a whole when the receiver has it.
 * A batch closes at batch_records, batch_bytes or batch_delay after its first
 * record, and joins a FIFO. Exactly one batch is on the wire at a time: that
 * is what keeps every step's lines in order at the receiver, whatever fails
 * and is retried. The batch's body is encoded once, on its first attempt, so
 * a retry sends the same bytes with the same deduplication keys.
 *
 * Memory: `held` counts the arena, record and body bytes of every batch not
 * yet delivered. Past `memory` write() says KILN_EAGAIN (the host stops
 * reading step output); below half of it, sink_ready() resumes the steps.
 *
 * Closing: what is held is sent; a grace timer (--sink-grace) bounds the
 * wait, after which the request on the wire is dropped and every record not
 * delivered is reported lost, per step, with the last error as the reason.
 */
#include "ship.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "engine.h"
#include "http.h"
#include "path.h"
#include "sinkloss.h"
#include "spool.h"

#define DEF_RECORDS 1000
#define DEF_BYTES (1 << 20)
#define DEF_DELAY_MS 1000
#define DEF_MEMORY (16 << 20)
#define DEF_TIMEOUT_MS 30000
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000
#define RETRY_AFTER_MAX_MS (3600 * 1000)
#define NO_STEP SIZE_MAX

static int64_t g_grace_ms = 30000;
static char *g_spool_root; /* NULL: no spool */

void kiln__ship_set_spool_root(const char *dir)
{
    free(g_spool_root);
    g_spool_root = dir ? kiln__xstrdup(dir) : NULL;
}

char *kiln__ship_default_spool_root(void)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        return kiln__xasprintf("%s/kiln/spool", xdg);
    if (home && home[0] == '/')
        return kiln__xasprintf("%s/.local/state/kiln/spool", home);
    return NULL;
}

void kiln__ship_set_grace_ms(int64_t ms)
{
    g_grace_ms = ms < 0 ? 0 : ms;
}

int64_t kiln__ship_grace_ms(void)
{
    return g_grace_ms;
}

/* A record with offsets into its batch's arena (the arena moves as it grows). */
struct srec {
    size_t text, len;
    size_t build, step; /* step NO_STEP: the build's own messages */
    int step_index, depth;
    kiln_stream stream;
    kiln_log_level severity;
    bool partial;
    uint64_t seq;
    int64_t time_us;
};

/* What a batch held, per step, once its records left memory for the spool. */
struct seg {
    char *build, *step;
    uint64_t bytes, lines;
};

struct sbatch {
    struct sbatch *next;
    char *file;                 /* in the spool, or NULL */
    struct seg *segs;           /* when recs were freed */
    size_t n_segs;
    char id[48];
    struct srec *recs;
    size_t n, cap;
    kiln__buf arena;
    size_t text_bytes;
    size_t spooled_n;           /* records, once they left memory */
    size_t build_off, step_off; /* the last record's ids, reused while equal */
    char *body;                 /* encoded on the first attempt */
    size_t body_len;
    int attempts;
    bool earlier;               /* an earlier run's, adopted from the spool */
};

struct kiln_ship {
    kiln_sink *sink;
    kiln__engine *eng;
    kiln_ship_opts o;
    char *url, *content_type, *ca_file;
    char **headers; /* "Name: value" */
    size_t n_headers;
    struct sbatch *cur;
    struct sbatch *head, **tail;
    size_t held;
    uint64_t nonce, counter;
    uv_timer_t delay_timer, retry_timer, grace_timer;
    int open_handles;
    kiln_http *inflight;
    bool paused, closing, waiting, finished, hold;
    bool failing;     /* the last attempt failed: sealed batches go to the spool */
    char *spool_dir;  /* g_spool_root/NAME-INDEX, or NULL */
    int lock_fd;      /* flock on spool_dir/.lock: one kiln adopts its leftovers */
    char **more_dirs; /* NAME-HASH.K directories no other kiln held: adopted too */
    int *more_fds;    /* their flocks, held as long as lock_fd */
    size_t n_more;
    uint64_t spooled_records, spooled_bytes; /* left on disk at the end */
    char *last_error;
};

/* ---- batches ----------------------------------------------------------- */

static size_t batch_cost(const struct sbatch *b)
{
    return b->arena.alloc + b->cap * sizeof(struct srec) + b->body_len;
}

static void batch_free(struct sbatch *b)
{
    for (size_t i = 0; i < b->n_segs; i++) {
        free(b->segs[i].build);
        free(b->segs[i].step);
    }
    free(b->segs);
    free(b->file);
    kiln__buf_release(&b->arena);
    free(b->recs);
    free(b->body);
    free(b);
}

static struct sbatch *batch_new(kiln_ship *s)
{
    struct sbatch *b = kiln__xcalloc(1, sizeof *b);
    kiln__buf_init(&b->arena);
    snprintf(b->id, sizeof b->id, "%016" PRIx64 "-%d-%" PRIu64, s->nonce, s->sink->index,
             ++s->counter);
    b->build_off = b->step_off = NO_STEP;
    return b;
}

static bool arena_eq(const struct sbatch *b, size_t off, const char *s)
{
    return off != NO_STEP && strcmp(b->arena.buf + off, s) == 0;
}

static size_t arena_str(struct sbatch *b, const char *s)
{
    size_t off = b->arena.len;
    kiln__buf_add(&b->arena, s, strlen(s) + 1);
    return off;
}

/* ---- the queue ----------------------------------------------------------- */

static void pump(kiln_ship *s);
static void finish(kiln_ship *s);
static void seal(kiln_ship *s);
static int offload(kiln_ship *s, struct sbatch *b);
static int encode(kiln_ship *s, struct sbatch *b);

static void on_delay(uv_timer_t *t)
{
    kiln_ship *s = t->data;
    if (s->cur && s->cur->n) {
        seal(s);
        pump(s);
    }
}

static void seal(kiln_ship *s)
{
    struct sbatch *b = s->cur;
    if (!b || !b->n)
        return;
    uv_timer_stop(&s->delay_timer);
    s->cur = NULL;
    *s->tail = b;
    s->tail = &b->next;
    if (s->failing)
        offload(s, b);
    else if (b != s->head)
        /* Encoded now, while the batch ahead of it is on the wire, rather
         * than after its answer: the receiver's time and the encoder's
         * overlap (bench/ship.sh). A failure is met again in pump(). */
        encode(s, b);
}

/* The head batch is done with (delivered or failed). */
static void pop(kiln_ship *s)
{
    struct sbatch *b = s->head;
    s->head = b->next;
    if (!s->head)
        s->tail = &s->head;
    size_t c = batch_cost(b);
    s->held = s->held > c ? s->held - c : 0;
    if (b->file)
        unlink(b->file);
    batch_free(b);
    if (s->paused && s->held < (size_t)s->o.memory / 2 && !s->closing) {
        s->paused = false;
        kiln__sink_ready(s->sink);
    }
}

/* Every record of B is lost: one sink_lost() per run of the same step. */
static void batch_lost(kiln_ship *s, struct sbatch *b, const char *reason)
{
    for (size_t k = 0; k < b->n_segs; k++)
        kiln__sink_lost(s->sink, b->segs[k].build, b->segs[k].step, b->segs[k].bytes, b->segs[k].lines,
                        reason);
    size_t i = 0;
    while (i < b->n) {
        const struct srec *r = &b->recs[i];
        uint64_t bytes = 0, lines = 0;
        size_t j = i;
        for (; j < b->n && b->recs[j].build == r->build && b->recs[j].step == r->step; j++) {
            bytes += b->recs[j].len + (b->recs[j].partial ? 0 : 1);
            lines++;
        }
        kiln__sink_lost(s->sink, b->arena.buf + r->build,
                        r->step == NO_STEP ? NULL : b->arena.buf + r->step, bytes, lines, reason);
        i = j;
    }
}

static void set_error(kiln_ship *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(kiln_ship *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__buf m = KILN__BUF_INIT;
    kiln__buf_vaddf(&m, fmt, ap);
    va_end(ap);
    free(s->last_error);
    s->last_error = kiln__buf_detach(&m);
}

/* ---- encoding ------------------------------------------------------------ */

static int gzip_body(char **body, size_t *len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return KILN_ENOMEM;
    uLong cap = deflateBound(&z, (uLong)*len);
    char *out = kiln__xmalloc(cap);
    z.next_in = (Bytef *)*body;
    z.avail_in = (uInt)*len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(out);
        return KILN_EIO;
    }
    free(*body);
    /* deflateBound() is about the input's size: give the rest back, or
     * every queued batch keeps a buffer its uncompressed size (RSS). */
    char *small = realloc(out, n ? n : 1);
    *body = small ? small : out;
    *len = n;
    return 0;
}

static int encode(kiln_ship *s, struct sbatch *b)
{
    kiln_ship_rec *view = kiln__xmalloc((b->n ? b->n : 1) * sizeof *view);
    for (size_t i = 0; i < b->n; i++) {
        const struct srec *r = &b->recs[i];
        view[i] = (kiln_ship_rec){
            .build_id = b->arena.buf + r->build,
            .step_id = r->step == NO_STEP ? NULL : b->arena.buf + r->step,
            .step_index = r->step_index,
            .depth = r->depth,
            .stream = r->stream,
            .severity = r->severity,
            .seq = r->seq,
            .time_us = r->time_us,
            .partial = r->partial,
            .text = b->arena.buf + r->text,
            .len = r->len,
        };
    }
    kiln_ship_batch kb = {b->id, view, b->n, b->text_bytes};
    char *body = NULL;
    size_t len = 0;
    int rc = s->o.encode(s->o.data, &kb, &body, &len);
    free(view);
    if (rc) {
        free(body);
        return rc;
    }
    if (!body)
        return KILN_EPLUGIN;
    if (s->o.gzip && (rc = gzip_body(&body, &len)) != 0) {
        free(body);
        return rc;
    }
    b->body = body;
    b->body_len = len;
    s->held += len;
    return 0;
}

/* ---- the spool ----------------------------------------------------------------- */

static void request_headers(kiln_ship *s, const char **hdrs, size_t *nh, char *ctype, size_t cap)
{
    *nh = 0;
    snprintf(ctype, cap, "Content-Type: %s", s->content_type);
    hdrs[(*nh)++] = ctype;
    if (s->o.gzip)
        hdrs[(*nh)++] = "Content-Encoding: gzip";
    for (size_t i = 0; i < s->n_headers; i++)
        hdrs[(*nh)++] = s->headers[i];
}

/* Move B's records out of memory into the spool: encoded, written, then
 * only a per-step summary is kept (for loss accounting). 0, or < 0 (B stays
 * in memory). */
static int offload(kiln_ship *s, struct sbatch *b)
{
    if (!s->spool_dir || b->file)
        return b->file ? 0 : KILN_ENOENT;
    if (!b->body) {
        int rc = encode(s, b);
        if (rc)
            return rc;
    }
    const char **hdrs = kiln__xcalloc(s->n_headers + 3, sizeof *hdrs);
    size_t nh;
    char ctype[256];
    request_headers(s, hdrs, &nh, ctype, sizeof ctype);
    int rc = kiln__spool_write(s->spool_dir, b->id, s->sink->plugin->desc->name, s->url, hdrs, nh, b->body, b->body_len, &b->file);
    free(hdrs);
    if (rc) {
        if (!s->eng->log_level || s->eng->log_level >= KILN_LOG_WARN)
            fprintf(stderr, "kiln: warning: log sink '%s': cannot write to the spool %s: %s\n",
                    s->sink->plugin->desc->name, s->spool_dir, kiln__strerror(rc));
        return rc;
    }
    size_t before = batch_cost(b);
    for (size_t i = 0; i < b->n;) {
        const struct srec *r = &b->recs[i];
        struct seg g = {kiln__xstrdup(b->arena.buf + r->build),
                        r->step == NO_STEP ? NULL : kiln__xstrdup(b->arena.buf + r->step), 0, 0};
        size_t j = i;
        for (; j < b->n && b->recs[j].build == r->build && b->recs[j].step == r->step; j++) {
            g.bytes += b->recs[j].len + (b->recs[j].partial ? 0 : 1);
            g.lines++;
        }
        b->segs = kiln__xrealloc(b->segs, (b->n_segs + 1) * sizeof *b->segs);
        b->segs[b->n_segs++] = g;
        i = j;
    }
    b->spooled_n = b->n;
    kiln__buf_release(&b->arena);
    free(b->recs);
    b->recs = NULL;
    b->cap = 0;
    b->n = 0;
    free(b->body); /* the request on the wire has its own copy */
    b->body = NULL;
    b->body_len = 0;
    size_t after = batch_cost(b);
    s->held -= before - after;
    return 0;
}

static void offload_all(kiln_ship *s)
{
    for (struct sbatch *b = s->head; b; b = b->next)
        if (offload(s, b) != 0)
            break;
    if (s->paused && s->held < (size_t)s->o.memory / 2 && !s->closing) {
        s->paused = false;
        kiln__sink_ready(s->sink);
    }
}

/* ---- sending ---------------------------------------------------------------- */

/* A 4xx's message: Google's {"error":{"message"}}, OTLP's {"message"}, or
 * the body's first line. */
static void receiver_message(const kiln_http_resp *resp, kiln__buf *out)
{
    if (!resp->body || !resp->body_len)
        return;
    cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e && cJSON_IsObject(e) ? e : j, "message");
    if (cJSON_IsString(m) && m->valuestring[0]) {
        kiln__buf_adds(out, m->valuestring);
    } else {
        size_t n = strcspn(resp->body, "\r\n");
        kiln__buf_add(out, resp->body, n > 300 ? 300 : n);
    }
    cJSON_Delete(j);
}

/* Retry-After as milliseconds (seconds or an HTTP date), or -1. */
static int64_t retry_after_ms(kiln_http *h)
{
    const char *v = kiln__http_header(h, "Retry-After");
    if (!v || !*v)
        return -1;
    char *end;
    double sec = strtod(v, &end);
    if (end != v && *end == '\0' && sec >= 0)
        return sec * 1000 > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (int64_t)(sec * 1000);
    time_t t = curl_getdate(v, NULL);
    if (t < 0)
        return -1;
    int64_t ms = ((int64_t)t * 1000000 - kiln__now_us()) / 1000;
    return ms < 0 ? 0 : ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}

static uint64_t jitter(uint64_t max)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)kiln__now_us() * 6364136223846793005ULL;
    return max ? r % max : 0;
}

static void on_retry(uv_timer_t *t)
{
    kiln_ship *s = t->data;
    s->waiting = false;
    pump(s);
}

static void retry_later(kiln_ship *s, int64_t after_ms)
{
    struct sbatch *b = s->head;
    int64_t ms = after_ms;
    if (ms < 0) {
        /* Exponential backoff with "equal jitter": half fixed, half random. */
        int shift = b->attempts > 16 ? 16 : b->attempts - 1;
        uint64_t base = (uint64_t)BACKOFF_FIRST_MS << (shift < 0 ? 0 : shift);
        if (base > BACKOFF_MAX_MS)
            base = BACKOFF_MAX_MS;
        ms = (int64_t)(base / 2 + jitter(base / 2 + 1));
    }
    /* Not through the sinks: this one would be told about itself. */
    if (s->eng->log_level >= KILN_LOG_DEBUG)
        fprintf(stderr, "kiln: debug: log sink '%s': batch %s: %s; retry in %" PRId64 " ms\n",
                s->sink->plugin->desc->name, b->id, s->last_error, ms);
    s->waiting = true;
    uv_timer_start(&s->retry_timer, on_retry, (uint64_t)ms, 0);
}

static void on_response(kiln_http *h, void *data, int err, const kiln_http_resp *resp)
{
    kiln_ship *s = data;
    struct sbatch *b = s->head;
    s->inflight = NULL;
    int st = resp ? resp->status : 0;
    if (!err && st >= 200 && st < 300) {
        s->failing = false;
        pop(s);
        free(s->last_error);
        s->last_error = NULL;
    } else if (err || st == 408 || st == 429 || st >= 500) {
        if (err)
            set_error(s, "%s: %s", s->url, resp && resp->error ? resp->error : kiln__strerror(err));
        else
            set_error(s, "%s: HTTP %d", s->url, st);
        int64_t after = err ? -1 : retry_after_ms(h);
        if (!s->failing && s->spool_dir) {
            /* The receiver is not taking records: what waits goes to disk,
             * where a killed kiln does not lose it, and the steps go on. */
            s->failing = true;
            offload_all(s);
        }
        retry_later(s, after);
        return;
    } else {
        kiln__buf m = KILN__BUF_INIT;
        kiln__buf_addf(&m, "the receiver refused the records: HTTP %d", st);
        size_t before = m.len;
        kiln__buf_adds(&m, ": ");
        receiver_message(resp, &m);
        if (m.len == before + 2)
            m.len = before, m.buf[m.len] = '\0';
        batch_lost(s, b, m.buf);
        if (b->earlier && b->file) {
            /* Not this build's records: no loss to report, but not thrown
             * away either; kept where `kiln logs flush` puts refused ones. */
            char *rdir = kiln__xasprintf("%s/refused", g_spool_root);
            const char *base = strrchr(b->file, '/');
            char *to = kiln__xasprintf("%s%s", rdir, base ? base : "/x.req");
            kiln__mkdir_p(rdir);
            if (rename(b->file, to) == 0) {
                free(b->file);
                b->file = NULL;
            }
            fprintf(stderr, "kiln: warning: log sink '%s': an earlier run's batch was refused (%s); moved to %s\n",
                    s->sink->plugin->desc->name, m.buf, to);
            free(rdir);
            free(to);
        }
        kiln__buf_release(&m);
        pop(s);
    }
    if (s->closing && !s->head)
        finish(s);
    else
        pump(s);
}

static void pump(kiln_ship *s)
{
    while (s->head && !s->inflight && !s->waiting && !s->finished && !s->hold) {
        struct sbatch *b = s->head;
        if (!b->body && b->file) {
            kiln__spooled sp;
            char *err = NULL;
            int rc = kiln__spool_read(b->file, &sp, &err);
            if (rc) {
                fprintf(stderr, "kiln: warning: log sink '%s': %s; left alone\n", s->sink->plugin->desc->name,
                        err);
                free(err);
                batch_lost(s, b, "the spool file cannot be read back");
                free(b->file); /* kept on disk for a look */
                b->file = NULL;
                pop(s);
                continue;
            }
            b->body = sp.body;
            b->body_len = sp.body_len;
            sp.body = NULL;
            kiln__spooled_release(&sp);
            s->held += b->body_len;
        } else if (!b->body) {
            int rc = encode(s, b);
            if (rc) {
                batch_lost(s, b, kiln__strerror(rc));
                pop(s);
                continue;
            }
        }
        if (!s->eng->http) {
            int rc = kiln__http_client_create(s->eng->loop, &s->eng->http);
            if (rc) {
                set_error(s, "cannot start HTTP: %s", kiln__strerror(rc));
                b->attempts++;
                retry_later(s, -1);
                return;
            }
        }
        const char **hdrs = kiln__xcalloc(s->n_headers + 3, sizeof *hdrs);
        size_t nh;
        char ctype[256];
        request_headers(s, hdrs, &nh, ctype, sizeof ctype);
        kiln_http_req req = {
            .struct_size = sizeof req,
            .method = "POST",
            .url = s->url,
            .headers = hdrs,
            .body = b->body,
            .body_len = b->body_len,
            .timeout_ms = s->o.timeout_ms,
            .ca_file = s->ca_file,
            .insecure = s->o.insecure,
        };
        b->attempts++;
        int rc = kiln__http_start(s->eng->http, &req, on_response, s, &s->inflight);
        free(hdrs);
        if (rc) {
            /* The request itself is malformed: it will not get better. */
            s->inflight = NULL;
            batch_lost(s, b, kiln__strerror(rc));
            pop(s);
            continue;
        }
    }
}

/* ---- closing ------------------------------------------------------------------ */

/* A spool directory this ship holds, left with no batch: removed (with
 * its .lock, while the flock is still held), so that every endpoint a sink
 * ever used does not leave an empty directory behind. */
static void drop_if_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) && empty)
        empty = e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".lock"));
    closedir(d);
    if (!empty)
        return;
    char *lock = kiln__xasprintf("%s/.lock", dir);
    unlink(lock);
    free(lock);
    rmdir(dir);
}

static void on_handle_closed(uv_handle_t *h)
{
    kiln_ship *s = h->data;
    if (--s->open_handles)
        return;
    kiln_sink *sink = s->sink;
    if (s->o.on_closed)
        s->o.on_closed(s->o.data);
    for (size_t i = 0; i < s->n_headers; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s->url);
    free(s->content_type);
    free(s->ca_file);
    free(s->last_error);
    if (s->lock_fd >= 0) {
        drop_if_empty(s->spool_dir);
        close(s->lock_fd); /* drops the flock */
    }
    free(s->spool_dir);
    for (size_t i = 0; i < s->n_more; i++) {
        drop_if_empty(s->more_dirs[i]);
        free(s->more_dirs[i]);
        close(s->more_fds[i]);
    }
    free(s->more_dirs);
    free(s->more_fds);
    free(s);
    kiln__sink_closed(sink);
}

static void finish(kiln_ship *s)
{
    if (s->finished)
        return;
    s->finished = true;
    uv_close((uv_handle_t *)&s->delay_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->grace_timer, on_handle_closed);
}

static void on_grace(uv_timer_t *t)
{
    kiln_ship *s = t->data;
    if (s->inflight) {
        kiln__http_abort_quiet(s->inflight);
        s->inflight = NULL;
    }
    uint64_t records = 0, spooled = 0, bytes = 0, earlier = 0;
    kiln__buf m = KILN__BUF_INIT, sp = KILN__BUF_INIT;
    kiln__buf_addf(&m, "not delivered within the %.3gs sink grace", (double)g_grace_ms / 1000);
    if (s->last_error)
        kiln__buf_addf(&m, " (last error: %s)", s->last_error);
    if (s->spool_dir)
        kiln__buf_addf(&sp, "%s; left in the spool %s (send it with: kiln logs flush %s)", m.buf,
                       g_spool_root, g_spool_root);
    while (s->head) {
        struct sbatch *b = s->head;
        if (b->earlier) {
            earlier++;
            free(b->file); /* it stays in the spool */
            b->file = NULL;
            pop(s);
            continue;
        }
        records += b->file ? b->spooled_n : b->n;
        if (offload(s, b) == 0) {
            struct stat st;
            if (stat(b->file, &st) == 0)
                bytes += (uint64_t)st.st_size;
            spooled += b->spooled_n;
            batch_lost(s, b, sp.buf);
            /* The file stays for `kiln logs flush`. */
            free(b->file);
            b->file = NULL;
        } else {
            batch_lost(s, b, m.buf);
        }
        pop(s);
    }
    if (earlier)
        fprintf(stderr, "kiln: warning: log sink '%s': %" PRIu64 " batches an earlier run left are still in %s: "
                "send them with 'kiln logs flush %s'\n", s->sink->plugin->desc->name, earlier, s->spool_dir,
                g_spool_root);
    if (spooled)
        fprintf(stderr, "kiln: warning: log sink '%s': %" PRIu64 " records not delivered; %" PRIu64
                " records (%" PRIu64 " bytes) left in %s: send them with 'kiln logs flush %s'\n",
                s->sink->plugin->desc->name, records, spooled, bytes, s->spool_dir, g_spool_root);
    else if (records || !earlier)
        fprintf(stderr, "kiln: warning: log sink '%s': %" PRIu64 " records %s\n",
                s->sink->plugin->desc->name, records, m.buf);
    kiln__buf_release(&m);
    kiln__buf_release(&sp);
    finish(s);
}

/* ---- an earlier run's leftovers ------------------------------------------------ */

/* The Content-Encoding and Content-Type headers of a list, joined: a spooled body is
 * only sent with this run's headers when they say the same (gzip or not,
 * the same type); the others (a token) may be newer. */
static char *content_headers(const char *const *h, size_t n)
{
    kiln__buf b = KILN__BUF_INIT;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++)
            if (!strncasecmp(h[i], pass ? "Content-Type:" : "Content-Encoding:", pass ? 13 : 17))
                kiln__buf_addf(&b, "%s\n", h[i]);
    kiln__buf_addch(&b, '\0');
    return kiln__buf_detach(&b);
}

static int cmp_name(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    const char *bx = strrchr(x, '/'), *by = strrchr(y, '/');
    return strcmp(bx ? bx + 1 : x, by ? by + 1 : y);
}

/* .req files directly in DIR. */
static size_t count_req(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > 4 && !strcmp(e->d_name + l - 4, ".req");
    }
    closedir(d);
    return n;
}

/* Batches in this plugin's other spool directories (another endpoint's, an
 * older kiln's NAME-INDEX, or a running kiln's) are not this sink's to
 * send; one line says they are there, so they are not forgotten. */
static void tell_other_dirs(kiln_ship *s)
{
    const char *name = s->sink->plugin->desc->name;
    size_t nl = strlen(name);
    DIR *d = opendir(g_spool_root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, name, nl) || e->d_name[nl] != '-')
            continue;
        char *dir = kiln__xasprintf("%s/%s", g_spool_root, e->d_name);
        bool mine = !strcmp(dir, s->spool_dir);
        for (size_t k = 0; k < s->n_more && !mine; k++)
            mine = !strcmp(dir, s->more_dirs[k]);
        size_t n = mine ? 0 : count_req(dir);
        if (n)
            fprintf(stderr, "kiln: log sink '%s': %zu batches in %s (another endpoint's, or a running "
                    "kiln's) are not sent by this run; send them with 'kiln logs flush %s'\n", name, n, dir,
                    g_spool_root);
        free(dir);
    }
    closedir(d);
}

/* FNV-1a, 64 bits: a spool directory's name from the sink's endpoint. */
static uint64_t fnv1a(const char *p)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* The NAME-HASH.K directories after FROM that exist and no kiln holds (a
 * kiln that ran beside another one left them): locked and adopted too, so
 * the same sink and endpoint find all their leftovers. */
static void claim_more(kiln_ship *s, uint64_t h, int from)
{
    for (int k = from; k < 64; k++) {
        char *dir = kiln__xasprintf("%s/%s-%016" PRIx64 ".%d", g_spool_root, s->sink->plugin->desc->name, h, k);
        char *lock = kiln__xasprintf("%s/.lock", dir);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        free(lock);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            s->more_dirs = kiln__xrealloc(s->more_dirs, (s->n_more + 1) * sizeof *s->more_dirs);
            s->more_fds = kiln__xrealloc(s->more_fds, (s->n_more + 1) * sizeof *s->more_fds);
            s->more_dirs[s->n_more] = dir;
            s->more_fds[s->n_more++] = fd;
            continue;
        }
        if (fd >= 0)
            close(fd);
        free(dir);
    }
}

/* This sink's spool directory: ROOT/NAME-HASH, HASH from the endpoint, so
 * that the same sink and endpoint find their leftovers whatever their place
 * in the --sink list. The directory is this ship's while it holds an flock
 * on its .lock (for the ship's life: a kiln started meanwhile, or `kiln
 * logs flush`, must not take this one's files for leftovers). When another
 * kiln (or a second identical sink in the same list) holds it, the next of
 * NAME-HASH.1, .2, ... that is free is taken. 0, or -1: no spool. */
static int claim_dir(kiln_ship *s)
{
    const char *name = s->sink->plugin->desc->name;
    uint64_t h = fnv1a(s->url);
    for (int k = 0; k < 64; k++) {
        char *dir = k ? kiln__xasprintf("%s/%s-%016" PRIx64 ".%d", g_spool_root, name, h, k)
                      : kiln__xasprintf("%s/%s-%016" PRIx64, g_spool_root, name, h);
        if (kiln__mkdir_p(dir) != 0) {
            fprintf(stderr, "kiln: warning: log sink '%s': cannot create the spool %s: %s; batches the "
                    "receiver does not take wait in memory\n", name, dir, strerror(errno));
            free(dir);
            return -1;
        }
        chmod(dir, 0700);
        char *lock = kiln__xasprintf("%s/.lock", dir);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        free(lock);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            s->spool_dir = dir;
            s->lock_fd = fd;
            claim_more(s, h, k + 1);
            return 0;
        }
        if (fd >= 0)
            close(fd);
        free(dir);
    }
    return -1;
}

/* What an earlier kiln left in this sink's spool directory (killed, or cut
 * off by --sink-grace) is queued first, in name order (= its sending order),
 * so it reaches the receiver before this build's records. Only a batch for
 * the same url and Content-Type/-Encoding is taken (it is sent with this
 * run's headers, so a refreshed token is used); one for another url or
 * encoding, or a file that does not parse, stays for
 * `kiln logs flush`, and a line says so. */
static void adopt_leftovers(kiln_ship *s)
{
    const char *name = s->sink->plugin->desc->name;
    char **files = NULL;
    size_t n = 0;
    for (size_t k = 0; k <= s->n_more; k++) {
        const char *dir = k ? s->more_dirs[k - 1] : s->spool_dir;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l > 4 && !strcmp(e->d_name + l - 4, ".req")) {
                files = kiln__xrealloc(files, (n + 1) * sizeof *files);
                files[n++] = kiln__xasprintf("%s/%s", dir, e->d_name);
            }
        }
        closedir(d);
    }
    if (!n)
        return;
    /* By file name (TIME-ID), whichever directory: the sending order. */
    qsort(files, n, sizeof *files, cmp_name);
    const char **hdrs = kiln__xcalloc(s->n_headers + 3, sizeof *hdrs);
    size_t nh;
    char ctype[256];
    request_headers(s, hdrs, &nh, ctype, sizeof ctype);
    char *mine = content_headers(hdrs, nh);
    free(hdrs);
    size_t taken = 0, other = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        kiln__spooled sp;
        char *err = NULL;
        if (kiln__spool_read(files[i], &sp, &err) != 0) {
            fprintf(stderr, "kiln: warning: log sink '%s': %s; left alone\n", name, err);
            free(err);
            free(files[i]);
            continue;
        }
        char *theirs = content_headers((const char *const *)sp.headers, sp.n_headers);
        bool same = !strcmp(sp.url, s->url) && !strcmp(theirs, mine);
        free(theirs);
        if (!same) {
            other++;
            kiln__spooled_release(&sp);
            free(files[i]);
            continue;
        }
        struct sbatch *b = kiln__xcalloc(1, sizeof *b);
        kiln__buf_init(&b->arena);
        const char *base = strrchr(files[i], '/') + 1;
        snprintf(b->id, sizeof b->id, "%.*s", (int)(strlen(base) - 4), base);
        b->build_off = b->step_off = NO_STEP;
        b->file = files[i]; /* read again when it is its turn: memory stays bounded */
        b->earlier = true;
        *s->tail = b;
        s->tail = &b->next;
        bytes += sp.body_len;
        taken++;
        kiln__spooled_release(&sp);
    }
    free(files);
    free(mine);
    if (taken)
        fprintf(stderr, "kiln: log sink '%s': sending first %zu batches (%" PRIu64 " bytes) an earlier run "
                "left in %s\n", name, taken, bytes, s->spool_dir);
    if (other)
        fprintf(stderr, "kiln: log sink '%s': %zu batches in %s are for another endpoint or encoding; left for "
                "'kiln logs flush %s'\n", name, other, s->spool_dir, g_spool_root);
}

/* ---- entries -------------------------------------------------------------------- */

int kiln__ship_open(kiln_sink *sink, const kiln_ship_opts *opts, kiln_ship **out)
{
    if (!sink || !opts || !out || opts->struct_size < offsetof(kiln_ship_opts, on_closed) ||
        !opts->url || !*opts->url || !opts->encode)
        return KILN_EINVAL;
    kiln_ship *s = kiln__xcalloc(1, sizeof *s);
    size_t n = opts->struct_size < sizeof s->o ? opts->struct_size : sizeof s->o;
    memcpy(&s->o, opts, n);
    s->sink = sink;
    s->eng = sink->eng;
    s->url = kiln__xstrdup(opts->url);
    s->content_type = kiln__xstrdup(opts->content_type ? opts->content_type : "application/json");
    s->ca_file = opts->ca_file ? kiln__xstrdup(opts->ca_file) : NULL;
    s->o.url = s->o.content_type = s->o.ca_file = NULL;
    s->o.headers = NULL;
    for (const char *const *h = opts->headers; h && *h; h++)
        kiln__ship_set_header(s, *h);
    if (s->o.batch_records <= 0)
        s->o.batch_records = DEF_RECORDS;
    if (s->o.batch_bytes <= 0)
        s->o.batch_bytes = DEF_BYTES;
    if (s->o.batch_delay_ms <= 0)
        s->o.batch_delay_ms = DEF_DELAY_MS;
    if (s->o.memory <= 0)
        s->o.memory = DEF_MEMORY;
    if (s->o.timeout_ms <= 0)
        s->o.timeout_ms = DEF_TIMEOUT_MS;
    s->tail = &s->head;
    s->lock_fd = -1;
    if (g_spool_root && claim_dir(s) == 0) {
        adopt_leftovers(s);
        tell_other_dirs(s);
    }
    if (getrandom(&s->nonce, sizeof s->nonce, 0) != (ssize_t)sizeof s->nonce)
        s->nonce = (uint64_t)kiln__now_us() ^ ((uint64_t)getpid() << 40);
    uv_timer_init(s->eng->loop, &s->delay_timer);
    uv_timer_init(s->eng->loop, &s->retry_timer);
    uv_timer_init(s->eng->loop, &s->grace_timer);
    s->delay_timer.data = s->retry_timer.data = s->grace_timer.data = s;
    /* The build's loop ends when its steps are done, not when a receiver
     * is: until ship_close() the timers keep no loop turning. */
    uv_unref((uv_handle_t *)&s->delay_timer);
    uv_unref((uv_handle_t *)&s->retry_timer);
    uv_unref((uv_handle_t *)&s->grace_timer);
    s->open_handles = 3;
    if (s->head) {
        /* Leftovers go out on the loop's next turn, not only when a record
         * comes (kiln serve may wait long for a build); not from here: the
         * sink may still hold the ship (a token being fetched). */
        s->waiting = true;
        uv_timer_start(&s->retry_timer, on_retry, 0, 0);
    }
    *out = s;
    return 0;
}

int kiln__ship_write(kiln_ship *s, const kiln_log_batch *lb)
{
    if (!s || !lb || s->closing)
        return KILN_EINVAL;
    size_t pos = 0;
    const char *line;
    size_t len;
    uint64_t seq = lb->first_seq;
    while (kiln_batch_next(lb, &pos, &line, &len)) {
        if (!s->cur) {
            s->cur = batch_new(s);
            uv_timer_start(&s->delay_timer, on_delay, (uint64_t)s->o.batch_delay_ms, 0);
        }
        struct sbatch *b = s->cur;
        size_t before = batch_cost(b);
        if (b->n == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 64;
            b->recs = kiln__xrealloc(b->recs, b->cap * sizeof *b->recs);
        }
        if (!arena_eq(b, b->build_off, lb->build_id))
            b->build_off = arena_str(b, lb->build_id);
        if (!lb->step_id)
            b->step_off = NO_STEP;
        else if (!arena_eq(b, b->step_off, lb->step_id))
            b->step_off = arena_str(b, lb->step_id);
        struct srec *r = &b->recs[b->n++];
        *r = (struct srec){
            .text = b->arena.len,
            .len = len,
            .build = b->build_off,
            .step = b->step_off,
            .step_index = lb->step_index,
            .depth = lb->depth,
            .stream = lb->stream,
            .severity = lb->severity,
            .partial = pos >= lb->len && (lb->flags & KILN_BATCH_PARTIAL),
            .seq = seq++,
            .time_us = lb->time_us,
        };
        kiln__buf_add(&b->arena, line, len);
        b->text_bytes += len;
        s->held += batch_cost(b) - before;
        if ((int64_t)b->n >= s->o.batch_records || (int64_t)b->text_bytes >= s->o.batch_bytes)
            seal(s);
    }
    pump(s);
    if (s->held > (size_t)s->o.memory && !s->paused) {
        s->paused = true;
        return KILN_EAGAIN;
    }
    return 0;
}

int kiln__ship_set_header(kiln_ship *s, const char *header)
{
    const char *colon = header ? strchr(header, ':') : NULL;
    if (!s || !colon || colon == header || strpbrk(header, "\r\n"))
        return KILN_EINVAL;
    size_t nlen = (size_t)(colon - header);
    const char *v = colon + 1;
    v += strspn(v, " \t");
    for (size_t i = 0; i < s->n_headers; i++)
        if (strncasecmp(s->headers[i], header, nlen) == 0 && s->headers[i][nlen] == ':') {
            free(s->headers[i]);
            if (*v) {
                s->headers[i] = kiln__xstrdup(header);
            } else {
                s->headers[i] = s->headers[--s->n_headers];
            }
            return 0;
        }
    if (!*v)
        return 0;
    s->headers = kiln__xrealloc(s->headers, (s->n_headers + 1) * sizeof *s->headers);
    s->headers[s->n_headers++] = kiln__xstrdup(header);
    return 0;
}

void kiln__ship_close(kiln_ship *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    uv_ref((uv_handle_t *)&s->retry_timer);
    uv_ref((uv_handle_t *)&s->grace_timer);
    seal(s);
    uv_timer_stop(&s->delay_timer);
    if (!s->head) {
        finish(s);
        return;
    }
    uv_timer_start(&s->grace_timer, on_grace, (uint64_t)g_grace_ms, 0);
    pump(s);
}

void kiln__ship_hold(kiln_ship *s, bool hold)
{
    if (!s || s->finished)
        return;
    s->hold = hold;
    if (!hold)
        pump(s);
}
