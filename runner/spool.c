/* SPDX-License-Identifier: MIT */
/* The shipping core's spool and `kiln logs flush`; see spool.h. */
#include "spool.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "internal.h"
#include "path.h"

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kiln__spool_write(const char *dir, const char *batch_id, const char *url,
                      const char *const *headers, size_t n_headers, const char *body, size_t len,
                      char **path_out)
{
    if (kiln__mkdir_p(dir) != 0)
        return KILN_EIO;
    chmod(dir, 0700);
    kiln__buf h = KILN__BUF_INIT;
    kiln__buf_addf(&h, "KILNSPOOL 1\nurl %s\n", url);
    for (size_t i = 0; i < n_headers; i++)
        kiln__buf_addf(&h, "header %s\n", headers[i]);
    /* So that a truncated or grown file is told from a whole one. */
    kiln__buf_addf(&h, "length %zu\n", len);
    kiln__buf_addch(&h, '\n');
    char *path = kiln__xasprintf("%s/%016" PRIx64 "-%s.req", dir, (uint64_t)kiln__now_us(), batch_id);
    char *tmp = kiln__xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0 || write_all(fd, h.buf, h.len) || write_all(fd, body, len) || fsync(fd) != 0)
        rc = KILN_EIO;
    if (fd >= 0 && close(fd) != 0)
        rc = KILN_EIO;
    if (!rc && rename(tmp, path) != 0)
        rc = KILN_EIO;
    if (rc)
        unlink(tmp);
    kiln__buf_release(&h);
    free(tmp);
    if (rc)
        free(path);
    else
        *path_out = path;
    return rc;
}

void kiln__spooled_release(kiln__spooled *s)
{
    free(s->url);
    for (size_t i = 0; i < s->n_headers; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s->body);
    memset(s, 0, sizeof *s);
}

/* A header or url value: no NUL or CR (it would end or split the header
 * line curl sends). */
static bool clean_value(const char *p, size_t n)
{
    return !memchr(p, '\0', n) && !memchr(p, '\r', n);
}

static int parse_error(char **err, const char *name, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int parse_error(char **err, const char *name, size_t off, const char *fmt, ...)
{
    if (err) {
        kiln__buf m = KILN__BUF_INIT;
        kiln__buf_addf(&m, "%s: offset %zu: ", name, off);
        va_list ap;
        va_start(ap, fmt);
        kiln__buf_vaddf(&m, fmt, ap);
        va_end(ap);
        free(*err);
        *err = kiln__buf_detach(&m);
    }
    return KILN_EINVAL;
}

int kiln__spool_parse(const char *name, const char *data, size_t len, kiln__spooled *out, char **err)
{
    memset(out, 0, sizeof *out);
    const char *p = data, *end = data + len;
    if (len < 12 || memcmp(p, "KILNSPOOL 1\n", 12) != 0)
        return parse_error(err, name, 0, "expected 'KILNSPOOL 1' (not a kiln spool file)");
    p += 12;
    bool have_len = false;
    uint64_t want = 0;
    int rc;
    for (;;) {
        size_t off = (size_t)(p - data);
        const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!nl) {
            rc = parse_error(err, name, off, "truncated: expected a header line or the blank line before the body");
            goto fail;
        }
        size_t n = (size_t)(nl - p);
        if (n == 0) { /* the blank line: the body follows */
            p = nl + 1;
            if (!out->url) {
                rc = parse_error(err, name, off, "expected a 'url' line before the body");
                goto fail;
            }
            out->body_len = (size_t)(end - p);
            if (have_len && want != out->body_len) {
                rc = parse_error(err, name, (size_t)(p - data),
                                 "expected a body of %" PRIu64 " bytes ('length'), found %zu%s", want,
                                 out->body_len, out->body_len < want ? " (truncated)" : "");
                goto fail;
            }
            out->body = kiln__xmalloc(out->body_len + 1);
            memcpy(out->body, p, out->body_len);
            out->body[out->body_len] = '\0';
            return 0;
        }
        if (n > 4 && !strncmp(p, "url ", 4)) {
            if (out->url) {
                rc = parse_error(err, name, off, "a second 'url' line");
                goto fail;
            }
            if (!clean_value(p + 4, n - 4)) {
                rc = parse_error(err, name, off, "expected a url without NUL or CR bytes");
                goto fail;
            }
            out->url = kiln__xstrndup(p + 4, n - 4);
        } else if (n > 7 && !strncmp(p, "header ", 7)) {
            const char *colon = memchr(p + 7, ':', n - 7);
            if (!colon || colon == p + 7 || !clean_value(p + 7, n - 7)) {
                rc = parse_error(err, name, off, "expected 'header NAME: VALUE' (no NUL or CR)");
                goto fail;
            }
            out->headers = kiln__xrealloc(out->headers, (out->n_headers + 1) * sizeof *out->headers);
            out->headers[out->n_headers++] = kiln__xstrndup(p + 7, n - 7);
        } else if (n > 7 && !strncmp(p, "length ", 7) && !have_len) {
            char num[24];
            size_t k = n - 7;
            if (k >= sizeof num || strspn(p + 7, "0123456789") != k) {
                rc = parse_error(err, name, off, "expected 'length DIGITS'");
                goto fail;
            }
            memcpy(num, p + 7, k);
            num[k] = '\0';
            want = strtoull(num, NULL, 10);
            have_len = true;
        } else {
            rc = parse_error(err, name, off, "expected 'url URL', 'header NAME: VALUE', 'length N' or a blank line");
            goto fail;
        }
        p = nl + 1;
    }
fail:
    kiln__spooled_release(out);
    return rc;
}

int kiln__spool_read(const char *path, kiln__spooled *out, char **err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err) {
            free(*err);
            *err = kiln__xasprintf("%s: %s", path, strerror(errno));
        }
        return KILN_EIO;
    }
    kiln__buf all = KILN__BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kiln__buf_add(&all, chunk, n);
    int ferr = ferror(f);
    fclose(f);
    if (ferr) {
        kiln__buf_release(&all);
        if (err) {
            free(*err);
            *err = kiln__xasprintf("%s: read error", path);
        }
        return KILN_EIO;
    }
    int rc = kiln__spool_parse(path, all.buf ? all.buf : "", all.len, out, err);
    kiln__buf_release(&all);
    return rc;
}

/* ---- kiln logs flush ------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .req file under DIR, but DIR/refused. */
static void collect(const char *dir, char ***files, size_t *n, bool top)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (top && !strcmp(e->d_name, "refused"))
            continue;
        char *p = kiln__xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            collect(p, files, n, false);
            free(p);
        } else if (strlen(e->d_name) > 4 && !strcmp(e->d_name + strlen(e->d_name) - 4, ".req")) {
            *files = kiln__xrealloc(*files, (*n + 1) * sizeof **files);
            (*files)[(*n)++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userp)
{
    kiln__buf *b = userp;
    if (b->len < 4096)
        kiln__buf_add(b, ptr, size * nmemb);
    return size * nmemb;
}

/* One POST: 0 delivered, 1 retry later, -1 refused (msg says why). */
static int post(const kiln__spooled *s, kiln__buf *msg)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 1;
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < s->n_headers; i++)
        hl = curl_slist_append(hl, s->headers[i]);
    kiln__buf resp = KILN__BUF_INIT;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    int out;
    kiln__buf_reset(msg);
    if (rc != CURLE_OK) {
        kiln__buf_addf(msg, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        out = 1;
    } else if (st >= 200 && st < 300) {
        out = 0;
    } else {
        size_t n = strcspn(resp.buf, "\r\n");
        kiln__buf_addf(msg, "HTTP %ld: %.*s", st, (int)(n > 300 ? 300 : n), resp.buf);
        out = st == 408 || st == 429 || st >= 500 ? 1 : -1;
    }
    kiln__buf_release(&resp);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return out;
}

int kiln__spool_flush(const char *dir, int64_t grace_ms)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kiln: logs flush: '%s' is not a directory\n", dir);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char **files = NULL;
    size_t n = 0, sent = 0, refused = 0, left = 0;
    uint64_t bytes = 0;
    collect(dir, &files, &n, true);
    /* Per sink directory, name order is sending order. */
    qsort(files, n, sizeof *files, cmp_str);
    int64_t deadline = kiln__now_us() + grace_ms * 1000;
    kiln__buf msg = KILN__BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        kiln__spooled s;
        char *err = NULL;
        if (kiln__spool_read(files[i], &s, &err) != 0) {
            fprintf(stderr, "kiln: logs flush: %s; left alone\n", err);
            free(err);
            left++;
            continue;
        }
        int64_t backoff = 250;
        int r;
        while ((r = post(&s, &msg)) == 1 && kiln__now_us() + backoff * 1000 < deadline) {
            usleep((useconds_t)(backoff * 1000));
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
        }
        if (r == 0) {
            unlink(files[i]);
            sent++;
            bytes += s.body_len;
        } else if (r < 0) {
            char *rdir = kiln__xasprintf("%s/refused", dir);
            const char *base = strrchr(files[i], '/');
            char *to = kiln__xasprintf("%s%s", rdir, base);
            kiln__mkdir_p(rdir);
            rename(files[i], to);
            fprintf(stderr, "kiln: logs flush: %s: the receiver refused it (%s); moved to %s\n", files[i],
                    msg.buf, to);
            free(rdir);
            free(to);
            refused++;
        } else {
            fprintf(stderr, "kiln: logs flush: %s: not delivered (%s); stopping, %zu left\n", files[i],
                    msg.buf, n - i);
            left += n - i;
            kiln__spooled_release(&s);
            break;
        }
        kiln__spooled_release(&s);
    }
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    kiln__buf_release(&msg);
    printf("kiln: logs flush: %zu batches (%" PRIu64 " bytes) sent from %s; %zu refused, %zu left\n", sent,
           bytes, dir, refused, left);
    return refused || left ? 1 : 0;
}
