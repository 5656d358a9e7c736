/* SPDX-License-Identifier: MIT */
/* The build context tar producer; see docker_context.h. */
#include "docker_context.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/errors.h>

#include "docker_ignore.h"
#include "docker_util.h"

#define IO_SIZE (64 * 1024)

struct dk_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    char *ring;
    size_t cap, head, len;
    bool done, cancelled, starved;
    int err;
    char errmsg[600];
    uint64_t bytes_out, files, ignored;

    char *dir, *dockerfile_rel, *extra_path, *extra_name;
    void (*wake)(void *);
    void *wake_data;
    dk_ignore ig;
    struct archive *a;
    struct archive_entry *entry;
    char *io;
};

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

dk_ctx *dk_ctx_new(const dk_ctx_opts *o)
{
    dk_ctx *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->cap = o->ring_size ? o->ring_size : (1u << 20);
    c->ring = malloc(c->cap);
    c->io = malloc(IO_SIZE);
    if (!c->ring || !c->io)
        abort();
    c->dir = dup_or_null(o->dir);
    c->dockerfile_rel = dup_or_null(o->dockerfile_rel);
    c->extra_path = dup_or_null(o->extra_path);
    c->extra_name = dup_or_null(o->extra_name);
    c->wake = o->wake;
    c->wake_data = o->wake_data;
    return c;
}

void dk_ctx_free(dk_ctx *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c->ring);
    free(c->io);
    free(c->dir);
    free(c->dockerfile_rel);
    free(c->extra_path);
    free(c->extra_name);
    dk_ignore_free(&c->ig);
    free(c);
}

/* ---- the ring ---------------------------------------------------------- */

static la_ssize_t on_write(struct archive *a, void *data, const void *buf, size_t n)
{
    dk_ctx *c = data;
    const char *p = buf;
    size_t left = n;

    pthread_mutex_lock(&c->mu);
    while (left) {
        while (c->len == c->cap && !c->cancelled)
            pthread_cond_wait(&c->cond, &c->mu);
        if (c->cancelled) {
            pthread_mutex_unlock(&c->mu);
            archive_set_error(a, ECANCELED, "canceled");
            return -1;
        }
        size_t tail = (c->head + c->len) % c->cap;
        size_t chunk = c->cap - c->len;
        if (chunk > c->cap - tail)
            chunk = c->cap - tail;
        if (chunk > left)
            chunk = left;
        memcpy(c->ring + tail, p, chunk);
        c->len += chunk;
        p += chunk;
        left -= chunk;
        if (c->starved) {
            c->starved = false;
            pthread_mutex_unlock(&c->mu);
            c->wake(c->wake_data);
            pthread_mutex_lock(&c->mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return (la_ssize_t)n;
}

long dk_ctx_read(dk_ctx *c, char *buf, size_t cap)
{
    long r;
    pthread_mutex_lock(&c->mu);
    if (c->err) {
        r = c->err;
    } else if (c->len == 0) {
        if (c->done) {
            r = 0;
        } else {
            c->starved = true;
            r = KILN_EAGAIN;
        }
    } else {
        size_t n = cap < c->len ? cap : c->len;
        size_t first = c->cap - c->head;
        if (first > n)
            first = n;
        memcpy(buf, c->ring + c->head, first);
        if (n > first)
            memcpy(buf + first, c->ring, n - first);
        c->head = (c->head + n) % c->cap;
        c->len -= n;
        c->bytes_out += n;
        pthread_cond_signal(&c->cond);
        r = (long)n;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

void dk_ctx_cancel(dk_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    c->cancelled = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

const char *dk_ctx_error(dk_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    const char *m = c->err ? c->errmsg : NULL;
    pthread_mutex_unlock(&c->mu);
    return m;
}

uint64_t dk_ctx_bytes(dk_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->bytes_out;
    pthread_mutex_unlock(&c->mu);
    return n;
}

uint64_t dk_ctx_files(dk_ctx *c)
{
    return c->files; /* read after the producer finished */
}

uint64_t dk_ctx_ignored(dk_ctx *c)
{
    return c->ignored;
}

static bool is_cancelled(dk_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    bool x = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return x;
}

/* Record the first error (one line). */
static int fail(dk_ctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(dk_ctx *c, int err, const char *fmt, ...)
{
    pthread_mutex_lock(&c->mu);
    if (!c->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
        va_end(ap);
        dk_one_line(c->errmsg);
        c->err = err;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

static int archive_fail(dk_ctx *c, const char *what, const char *rel)
{
    if (is_cancelled(c))
        return fail(c, KILN_ECANCELED, "canceled");
    return fail(c, KILN_EIO, "build context: %s %s: %s", what, rel,
                archive_error_string(c->a) ? archive_error_string(c->a) : "archive error");
}

/* ---- entries ------------------------------------------------------------- */

static int write_file(dk_ctx *c, const char *abs, const char *rel, const struct stat *lst)
{
    struct archive_entry *e = archive_entry_clear(c->entry);
    int fd = -1;
    struct stat st = *lst;

    if (S_ISREG(lst->st_mode)) {
        fd = open(abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return fail(c, KILN_EIO, "build context: cannot read %s: %s", rel, strerror(errno));
        if (fstat(fd, &st) < 0) {
            int e2 = errno;
            close(fd);
            return fail(c, KILN_EIO, "build context: cannot stat %s: %s", rel, strerror(e2));
        }
    }
    archive_entry_copy_stat(e, &st);
    archive_entry_set_pathname(e, rel);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_uname(e, NULL);
    archive_entry_set_gname(e, NULL);
    archive_entry_set_nlink(e, 1);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(abs, target, sizeof target - 1);
        if (n < 0)
            return fail(c, KILN_EIO, "build context: cannot read link %s: %s", rel, strerror(errno));
        target[n] = '\0';
        archive_entry_set_symlink(e, target);
        archive_entry_set_size(e, 0);
    } else if (!S_ISREG(st.st_mode)) {
        archive_entry_set_size(e, 0);
    }
    if (archive_write_header(c->a, e) < ARCHIVE_WARN) {
        if (fd >= 0)
            close(fd);
        return archive_fail(c, "cannot add", rel);
    }
    if (fd >= 0) {
        int64_t left = st.st_size;
        while (left > 0) {
            ssize_t n = read(fd, c->io, left < IO_SIZE ? (size_t)left : IO_SIZE);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int e2 = errno;
                close(fd);
                return fail(c, KILN_EIO, "build context: cannot read %s: %s", rel, strerror(e2));
            }
            if (n == 0)
                break; /* shrank while we read: finish_entry pads with zeros */
            if (archive_write_data(c->a, c->io, (size_t)n) < 0) {
                close(fd);
                return archive_fail(c, "cannot add", rel);
            }
            left -= n;
        }
        close(fd);
    }
    if (archive_write_finish_entry(c->a) < ARCHIVE_WARN)
        return archive_fail(c, "cannot add", rel);
    c->files++;
    return 0;
}

static int skip_dots(const struct dirent *d)
{
    return !(d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])));
}

static int walk(dk_ctx *c, dk_buf *abs, dk_buf *rel)
{
    struct dirent **names = NULL;
    int n = scandir(abs->s, &names, skip_dots, alphasort);
    int rc = 0;
    if (n < 0)
        return fail(c, KILN_EIO, "build context: cannot list %s: %s", rel->len ? rel->s : ".", strerror(errno));
    for (int i = 0; i < n; i++) {
        size_t alen = abs->len, rlen = rel->len;
        if (rc == 0 && is_cancelled(c))
            rc = fail(c, KILN_ECANCELED, "canceled");
        if (rc == 0) {
            dk_buf_addf(abs, "/%s", names[i]->d_name);
            if (rel->len)
                dk_buf_adds(rel, "/");
            dk_buf_adds(rel, names[i]->d_name);
            struct stat st;
            if (lstat(abs->s, &st) < 0) {
                rc = fail(c, KILN_EIO, "build context: cannot stat %s: %s", rel->s, strerror(errno));
            } else {
                bool excluded = dk_ignore_excluded(&c->ig, rel->s);
                if (S_ISDIR(st.st_mode)) {
                    if (excluded && !c->ig.has_exclusions) {
                        c->ignored++;
                    } else {
                        if (!excluded)
                            rc = write_file(c, abs->s, rel->s, &st);
                        else
                            c->ignored++;
                        if (rc == 0)
                            rc = walk(c, abs, rel);
                    }
                } else if (excluded) {
                    c->ignored++;
                } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
                    rc = write_file(c, abs->s, rel->s, &st);
                } else {
                    c->ignored++; /* sockets, fifos, devices: Docker leaves them out too */
                }
            }
        }
        abs->len = alen;
        abs->s[alen] = '\0';
        rel->len = rlen;
        if (rel->s)
            rel->s[rlen] = '\0';
        free(names[i]);
    }
    free(names);
    return rc;
}

static int write_extra(dk_ctx *c)
{
    struct stat st;
    if (stat(c->extra_path, &st) < 0)
        return fail(c, KILN_EIO, "cannot read the Dockerfile %s: %s", c->extra_path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(c, KILN_EIO, "the Dockerfile %s is not a regular file", c->extra_path);
    st.st_mode = S_IFREG | 0644;
    return write_file(c, c->extra_path, c->extra_name, &st);
}

void dk_ctx_produce(dk_ctx *c)
{
    int rc = dk_ignore_load(&c->ig, c->dir);
    if (rc < 0) {
        fail(c, KILN_EIO, "cannot read %s/.dockerignore: %s", c->dir, strerror(-rc));
    } else {
        /* Like the Docker CLI: the Dockerfile and .dockerignore are sent even
         * when .dockerignore names them (the engine needs the Dockerfile). */
        if (dk_ignore_excluded(&c->ig, ".dockerignore"))
            dk_ignore_add(&c->ig, "!.dockerignore");
        if (c->dockerfile_rel && dk_ignore_excluded(&c->ig, c->dockerfile_rel)) {
            dk_buf b = {0};
            dk_buf_addf(&b, "!%s", c->dockerfile_rel);
            dk_ignore_add(&c->ig, b.s);
            dk_buf_free(&b);
        }
        c->a = archive_write_new();
        c->entry = archive_entry_new();
        if (!c->a || !c->entry || archive_write_set_format_pax_restricted(c->a) != ARCHIVE_OK ||
            archive_write_add_filter_none(c->a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(c->a, 1) != ARCHIVE_OK ||
            archive_write_open(c->a, c, NULL, on_write, NULL) != ARCHIVE_OK) {
            rc = fail(c, KILN_EIO, "build context: cannot start the tar stream: %s",
                      c->a && archive_error_string(c->a) ? archive_error_string(c->a) : "out of memory");
        } else {
            dk_buf abs = {0}, rel = {0};
            dk_buf_adds(&abs, c->dir);
            rc = walk(c, &abs, &rel);
            dk_buf_free(&abs);
            dk_buf_free(&rel);
            if (rc == 0 && c->extra_path)
                rc = write_extra(c);
            if (rc == 0 && archive_write_close(c->a) != ARCHIVE_OK)
                rc = archive_fail(c, "cannot finish", "the tar stream");
        }
        if (c->a)
            archive_write_free(c->a);
        if (c->entry)
            archive_entry_free(c->entry);
        c->a = NULL;
        c->entry = NULL;
    }
    pthread_mutex_lock(&c->mu);
    c->done = true;
    bool wake = c->starved;
    c->starved = false;
    pthread_mutex_unlock(&c->mu);
    if (wake)
        c->wake(c->wake_data);
}
