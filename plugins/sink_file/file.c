/* SPDX-License-Identifier: MIT */
/*
 * file: one log file per step, DIR/STEP.log (a sub-build's steps go to
 * DIR/BUILD_ID/STEP.log; with per_build set, every build's steps go to
 * DIR/BUILD_ID/PER_BUILD/STEP.log, as `kiln serve` keeps them). The file holds the step's output as printed,
 * stdout and stderr in arrival order, and kiln's messages about the step
 * prefixed with "kiln: ".
 *
 * Writes happen on a worker thread, one batch of writes at a time, so the
 * loop never waits for the disk and the order of lines is kept. When more
 * than the high-water mark is waiting, write() says KILN_EAGAIN and kiln
 * stops reading step output until the disk has caught up: a fast step is
 * slowed down, never cut short.
 *
 * A step's file that cannot be opened or written (ENOSPC, EIO, EDQUOT)
 * stops there: what did not reach it, and every later batch of that step,
 * is reported to the host as lost (sink_lost), so the file is always a
 * prefix of the step's log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

#define HIGH_WATER (1u << 20)

struct file_config {
    const char *dir;
    const char *per_build;
};

static const kiln_option file_options[] = {
    {KILN_OPT_STRING, "dir", NULL, KILN_OPT_REQUIRED, offsetof(struct file_config, dir), 0, -1, NULL,
     "Directory for the log files (created when missing)."},
    {KILN_OPT_STRING, "per_build", NULL, 0, offsetof(struct file_config, per_build), 0, -1, NULL,
     "Give every build (sub-builds too) its own DIR/BUILD_ID/PER_BUILD/ (kiln serve: logs)."},
    KILN_OPTIONS_END,
};

struct seg {
    int fd;
    size_t off, len;
    bool close_after; /* the step ended: close the file once written */
    size_t file;      /* index into fsink.files */
    size_t done;      /* bytes written */
    int err;          /* errno: the rest of the segment is lost (or not tried) */
};

/* Bytes waiting to be written, as (file, range) segments over one buffer. */
struct chunk {
    char *data;
    size_t len, cap;
    struct seg *segs;
    size_t n_segs, cap_segs;
    int err;
};

struct fsink;
struct open_file {
    char *key; /* build id + '/' + step id */
    char *build_id, *step_id; /* step_id NULL: the build's own messages */
    int fd;
    bool midline; /* the last output ended without a newline */
    int err;      /* errno: the file stopped; later output is lost */
};

struct fsink {
    kiln_sink *sink;
    char *dir;
    char *per_build; /* or NULL */
    struct open_file *files;
    size_t n_files, cap_files;
    struct chunk active, flight;
    bool in_flight;
    bool paused;
    bool closing;
    char *top_build;
    int write_error;
};

static void chunk_add(struct chunk *c, int fd, size_t file, const char *p, size_t n)
{
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + n)
            cap *= 2;
        char *d = realloc(c->data, cap);
        if (!d)
            abort();
        c->data = d;
        c->cap = cap;
    }
    if (n)
        memcpy(c->data + c->len, p, n);
    if (c->n_segs && c->segs[c->n_segs - 1].fd == fd && !c->segs[c->n_segs - 1].close_after &&
        c->segs[c->n_segs - 1].off + c->segs[c->n_segs - 1].len == c->len) {
        c->segs[c->n_segs - 1].len += n;
    } else {
        if (c->n_segs == c->cap_segs) {
            c->cap_segs = c->cap_segs ? c->cap_segs * 2 : 64;
            struct seg *s = realloc(c->segs, c->cap_segs * sizeof *s);
            if (!s)
                abort();
            c->segs = s;
        }
        c->segs[c->n_segs++] = (struct seg){fd, c->len, n, false, file, 0, 0};
    }
    c->len += n;
}

/* On a worker thread: write the chunk in flight, in order. */
static void write_all(void *data)
{
    struct chunk *c = &((struct fsink *)data)->flight;
    for (size_t i = 0; i < c->n_segs; i++) {
        struct seg *sg = &c->segs[i];
        const char *p = c->data + sg->off;
        size_t left = sg->err ? 0 : sg->len;
        if (sg->err)
            c->err = sg->err; /* its file stopped: reported as lost in after_write */
        while (left) {
            ssize_t n = write(sg->fd, p, left);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                sg->err = c->err = errno;
                /* No later piece of this file after a gap. */
                for (size_t j = i + 1; j < c->n_segs; j++)
                    if (c->segs[j].file == sg->file)
                        c->segs[j].err = sg->err;
                break;
            }
            p += n;
            left -= (size_t)n;
            sg->done += (size_t)n;
        }
        if (c->segs[i].close_after)
            close(c->segs[i].fd);
    }
}


static void submit(struct fsink *f);

static void finish_close(struct fsink *f)
{
    for (size_t i = 0; i < f->n_files; i++) {
        if (f->files[i].fd >= 0)
            close(f->files[i].fd);
        free(f->files[i].key);
        free(f->files[i].build_id);
        free(f->files[i].step_id);
    }
    free(f->files);
    free(f->active.data);
    free(f->active.segs);
    free(f->flight.data);
    free(f->flight.segs);
    free(f->dir);
    free(f->per_build);
    free(f->top_build);
    kiln_sink *sink = f->sink;
    free(f);
    kiln_api->sink_closed(sink);
}

/* Lines a lost range touches: a line partly kept counts as lost. */
static uint64_t lines_in(const char *p, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == '\n';
    return n + (len && p[len - 1] != '\n');
}

/* len bytes at p of file `file` did not reach the disk (err): the file
 * stops there, and the host counts them. */
static void lose(struct fsink *f, size_t file, const char *p, size_t len, uint64_t lines, int err)
{
    struct open_file *of = &f->files[file];
    if (!of->err) {
        of->err = err;
        for (size_t j = 0; j < f->active.n_segs; j++)
            if (f->active.segs[j].file == file)
                f->active.segs[j].err = err; /* queued before the error was known */
    }
    if (!len)
        return;
    if (KILN_API_HAS(kiln_api, sink_lost)) {
        kiln_api->sink_lost(f->sink, of->build_id, of->step_id, len, p ? lines_in(p, len) : lines,
                            strerror(err));
    } else if (!f->write_error) {
        f->write_error = err;
        fprintf(stderr, "kiln: error: cannot write step logs under '%s': %s\n", f->dir, strerror(err));
    }
}

static void after_write(void *data, int err)
{
    struct fsink *f = data;
    f->in_flight = false;
    for (size_t i = 0; f->flight.err && i < f->flight.n_segs; i++) {
        const struct seg *sg = &f->flight.segs[i];
        if (sg->err)
            lose(f, sg->file, f->flight.data + sg->off + sg->done, sg->len - sg->done, 0, sg->err);
    }
    f->flight.len = 0;
    f->flight.n_segs = 0;
    f->flight.err = 0;
    if (f->active.len)
        submit(f);
    if (f->paused && f->active.len < HIGH_WATER) {
        f->paused = false;
        kiln_api->sink_ready(f->sink);
    }
    if (f->closing && !f->in_flight)
        finish_close(f);
}

static void submit(struct fsink *f)
{
    if (f->in_flight || !f->active.len)
        return;
    struct chunk tmp = f->flight;
    f->flight = f->active;
    f->active = tmp;
    f->in_flight = true;
    if (kiln_api->queue_work(KILN_OBJ(f->sink), write_all, after_write, f) != 0) {
        write_all(f); /* no worker: write here rather than lose it */
        after_write(f, 0);
    }
}

static void sanitize(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '/' || (unsigned char)*p < 32)
            *p = '_';
    if (s[0] == '.')
        s[0] = '_';
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The open file of the batch's step (opened on first use). When it cannot
 * be opened, its err says why. */
static struct open_file *file_for(struct fsink *f, const kiln_log_batch *b)
{
    const char *step = b->step_id ? b->step_id : "build";
    char key[1024];
    snprintf(key, sizeof key, "%s/%s", b->build_id, step);
    bool reopen = false;
    size_t slot = f->n_files;
    for (size_t i = f->n_files; i-- > 0;)
        if (strcmp(f->files[i].key, key) == 0) {
            if (f->files[i].fd >= 0 || f->files[i].err)
                return &f->files[i];
            reopen = true; /* output after the step ended: append */
            slot = i;
            break;
        }
    if (!f->top_build)
        f->top_build = strdup(b->build_id);
    char name[512];
    snprintf(name, sizeof name, "%s", step);
    sanitize(name);
    char dir[4096], path[4096 + 512 + 8];
    int fd = -1, err = 0;
    if (f->per_build) {
        char bid[128];
        snprintf(bid, sizeof bid, "%s", b->build_id);
        sanitize(bid);
        snprintf(dir, sizeof dir, "%s/%s/%s", f->dir, bid, f->per_build);
        err = -mkdirs(dir);
    } else if (b->depth > 0 && f->top_build && strcmp(f->top_build, b->build_id) != 0) {
        char bid[128];
        snprintf(bid, sizeof bid, "%s", b->build_id);
        sanitize(bid);
        snprintf(dir, sizeof dir, "%s/%s", f->dir, bid);
        err = -mkdirs(dir);
    } else {
        snprintf(dir, sizeof dir, "%s", f->dir);
    }
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    if (!err) {
        fd = open(path, O_WRONLY | O_CREAT | (reopen ? 0 : O_TRUNC) | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            err = errno;
    }
    if (err && !KILN_API_HAS(kiln_api, sink_lost) && !f->write_error) {
        f->write_error = err;
        fprintf(stderr, "kiln: error: cannot open log file '%s': %s\n", path, strerror(err));
    }
    if (reopen) {
        f->files[slot].fd = fd;
        f->files[slot].err = err;
        return &f->files[slot];
    }
    if (f->n_files == f->cap_files) {
        f->cap_files = f->cap_files ? f->cap_files * 2 : 16;
        struct open_file *nf = realloc(f->files, f->cap_files * sizeof *nf);
        if (!nf)
            abort();
        f->files = nf;
    }
    f->files[f->n_files].key = strdup(key);
    f->files[f->n_files].build_id = strdup(b->build_id);
    f->files[f->n_files].step_id = b->step_id ? strdup(b->step_id) : NULL;
    f->files[f->n_files].fd = fd;
    f->files[f->n_files].midline = false;
    f->files[f->n_files].err = err;
    return &f->files[f->n_files++];
}

static int file_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct fsink *f = kiln_api->sink_get_data(sink);
    struct open_file *of = file_for(f, b);
    size_t file = (size_t)(of - f->files);
    if (of->err) {
        /* As it would have been written: kiln's lines get "kiln: " and a newline. */
        size_t len = b->len;
        if (b->stream == KILN_STREAM_SYSTEM)
            len += 6 * (size_t)b->n_lines + (b->len && b->text[b->len - 1] != '\n');
        lose(f, file, NULL, len, b->n_lines, of->err);
        return 0;
    }
    int fd = of->fd;
    if (b->stream == KILN_STREAM_SYSTEM) {
        size_t pos = 0;
        const char *line;
        size_t len;
        if (of->midline) {
            /* kiln's message goes on a line of its own, after a partial line. */
            chunk_add(&f->active, fd, file, "\n", 1);
            of->midline = false;
        }
        while (kiln_batch_next(b, &pos, &line, &len)) {
            chunk_add(&f->active, fd, file, "kiln: ", 6);
            chunk_add(&f->active, fd, file, line, len);
            chunk_add(&f->active, fd, file, "\n", 1);
        }
    } else {
        chunk_add(&f->active, fd, file, b->text, b->len);
        if (b->len)
            of->midline = b->text[b->len - 1] != '\n';
    }
    submit(f);
    if (f->active.len >= HIGH_WATER && !f->paused) {
        f->paused = true;
        return KILN_EAGAIN;
    }
    return 0;
}

/* A step ended: its file is closed once what was written for it is out, so
 * that a build of thousands of steps does not hold thousands of files. */
static void file_event(kiln_sink *sink, const kiln_event *ev)
{
    struct fsink *f = kiln_api->sink_get_data(sink);
    if (ev->type != KILN_EVENT_STEP_END || !ev->step_id)
        return;
    char key[1024];
    snprintf(key, sizeof key, "%s/%s", ev->build_id, ev->step_id);
    for (size_t i = f->n_files; i-- > 0;) {
        if (strcmp(f->files[i].key, key) != 0 || f->files[i].fd < 0)
            continue;
        chunk_add(&f->active, f->files[i].fd, i, "", 0);
        f->active.segs[f->active.n_segs - 1].close_after = true;
        f->files[i].fd = -1;
        submit(f);
        return;
    }
}

static int file_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct file_config *c = config;
    int rc = mkdirs(c->dir);
    if (rc) {
        fprintf(stderr, "kiln: error: cannot create log directory '%s': %s\n", c->dir,
                strerror(-rc));
        return rc;
    }
    struct fsink *f = calloc(1, sizeof *f);
    if (!f)
        return KILN_ENOMEM;
    f->sink = sink;
    f->dir = strdup(c->dir);
    f->per_build = c->per_build && *c->per_build ? strdup(c->per_build) : NULL;
    kiln_api->sink_set_data(sink, f);
    return 0;
}

static void file_close(kiln_sink *sink)
{
    struct fsink *f = kiln_api->sink_get_data(sink);
    f->closing = true;
    submit(f);
    if (!f->in_flight)
        finish_close(f);
}

static int file_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops file_ops = {sizeof(kiln_sink_ops), file_open, file_write, file_event,
                                       file_close};

static const kiln_plugin file_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "file",
    .version = KILN_VERSION_STRING,
    .summary = "One log file per step under a directory (--log-dir)",
    .options = file_options,
    .config_size = sizeof(struct file_config),
    .init = file_init,
    .sink = &file_ops,
};

KILN_PLUGIN_DEFINE(file_plugin)
