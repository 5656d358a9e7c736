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
#include <strings.h>
#include <sys/file.h>
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

bool kiln__spool_keeps_header(const char *h)
{
    return !strncasecmp(h, "Content-Type:", 13) || !strncasecmp(h, "Content-Encoding:", 17);
}

int kiln__spool_write(const char *dir, const char *batch_id, const char *sink, const char *url,
                      const char *const *headers, size_t n_headers, const char *body, size_t len,
                      char **path_out)
{
    if (kiln__mkdir_p(dir) != 0)
        return KILN_EIO;
    chmod(dir, 0700);
    kiln__buf h = KILN__BUF_INIT;
    kiln__buf_addf(&h, "KILNSPOOL 1\nurl %s\n", url);
    if (sink)
        kiln__buf_addf(&h, "sink %s\n", sink);
    for (size_t i = 0; i < n_headers; i++) {
        if (kiln__spool_keeps_header(headers[i]))
            kiln__buf_addf(&h, "header %s\n", headers[i]);
        else
            kiln__buf_addf(&h, "needs %.*s\n", (int)strcspn(headers[i], ":"), headers[i]);
    }
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
    free(s->sink);
    for (size_t i = 0; i < s->n_headers; i++)
        free(s->headers[i]);
    free(s->headers);
    for (size_t i = 0; i < s->n_needs; i++)
        free(s->needs[i]);
    free(s->needs);
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
        } else if (n > 5 && !strncmp(p, "sink ", 5) && !out->sink) {
            if (!clean_value(p + 5, n - 5) || memchr(p + 5, '/', n - 5)) {
                rc = parse_error(err, name, off, "expected 'sink NAME' (no NUL, CR or '/')");
                goto fail;
            }
            out->sink = kiln__xstrndup(p + 5, n - 5);
        } else if (n > 6 && !strncmp(p, "needs ", 6)) {
            if (!clean_value(p + 6, n - 6) || memchr(p + 6, ':', n - 6)) {
                rc = parse_error(err, name, off, "expected 'needs HEADER-NAME' (no NUL, CR or ':')");
                goto fail;
            }
            out->needs = kiln__xrealloc(out->needs, (out->n_needs + 1) * sizeof *out->needs);
            out->needs[out->n_needs++] = kiln__xstrndup(p + 6, n - 6);
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
            rc = parse_error(err, name, off, "expected 'url URL', 'sink NAME', 'header NAME: VALUE', 'needs NAME', 'length N' or a blank line");
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

/* Entries of DIR, in name order: the *.req files (dirs false) or the
 * subdirectories but refused/ (dirs true). */
static size_t list_dir(const char *dir, bool dirs, char ***out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = kiln__xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        size_t l = strlen(e->d_name);
        bool is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        bool take = dirs ? is_dir && strcmp(e->d_name, "refused")
                         : !is_dir && l > 4 && !strcmp(e->d_name + l - 4, ".req");
        if (take) {
            *out = kiln__xrealloc(*out, (n + 1) * sizeof **out);
            (*out)[n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    if (n)
        qsort(*out, n, sizeof **out, cmp_str);
    return n;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userp)
{
    kiln__buf *b = userp;
    if (b->len < 4096)
        kiln__buf_add(b, ptr, size * nmemb);
    return size * nmemb;
}

/* One POST, with the file's headers and EXTRA: 0 delivered, 1 retry later,
 * -1 refused (msg says why). */
static int post(const kiln__spooled *s, char *const *extra, size_t n_extra, kiln__buf *msg)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 1;
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < s->n_headers; i++)
        hl = curl_slist_append(hl, s->headers[i]);
    for (size_t i = 0; i < n_extra; i++)
        hl = curl_slist_append(hl, extra[i]);
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

/* A credential header given to flush: for the sink NAME. */
struct cred {
    char *sink, *header; /* header: "Name: value" */
};

struct flush {
    struct cred *creds;
    size_t n_creds;
    char *refused_dir;
    int64_t deadline;
    size_t sent, refused, left, locked;
    uint64_t bytes;
    bool stop;
};

static void add_cred(struct flush *f, const char *sink, size_t sink_len, char *header)
{
    f->creds = kiln__xrealloc(f->creds, (f->n_creds + 1) * sizeof *f->creds);
    f->creds[f->n_creds++] = (struct cred){kiln__xstrndup(sink, sink_len), header};
}

/* "NAME:token=T,headers=A=b;C=d,..." (the --sink syntax; other keys, such
 * as endpoint, mean nothing here and are skipped). 0 or -1 (said). */
static int parse_spec(struct flush *f, const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec) {
        fprintf(stderr, "kiln: logs flush: --sink '%s': expected NAME:token=T or NAME:headers=A=b;C=d\n", spec);
        return -1;
    }
    size_t nl = (size_t)(colon - spec);
    for (const char *p = colon + 1; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 6 && !strncmp(p, "token=", 6)) {
            add_cred(f, spec, nl, kiln__xasprintf("Authorization: Bearer %.*s", (int)(n - 6), p + 6));
        } else if (n > 8 && !strncmp(p, "headers=", 8)) {
            for (const char *h = p + 8, *end = p + n; h < end;) {
                size_t hn = strcspn(h, ";");
                if (h + hn > end)
                    hn = (size_t)(end - h);
                size_t k = strcspn(h, "=:");
                if (k == 0 || k >= hn) {
                    fprintf(stderr, "kiln: logs flush: --sink '%s': headers: expected 'Name=value' items "
                            "separated by ';'\n", spec);
                    return -1;
                }
                const char *v = h + k + 1;
                v += strspn(v, " ");
                add_cred(f, spec, nl, kiln__xasprintf("%.*s: %.*s", (int)k, h, (int)(h + hn - v), v));
                h += hn + 1;
            }
        }
        p += n + (p[n] ? 1 : 0);
    }
    return 0;
}

/* The header line that gives NAME for SINK's file, or NULL. */
static const char *cred_for(struct flush *f, const char *sink, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < f->n_creds; i++)
        if ((!sink || !strcmp(f->creds[i].sink, sink)) && !strncasecmp(f->creds[i].header, name, nl) &&
            f->creds[i].header[nl] == ':')
            return f->creds[i].header;
    /* What the cloud-logging sink itself reads when it has no token. */
    const char *env = getenv("GOOGLE_OAUTH_ACCESS_TOKEN");
    if (sink && !strcmp(sink, "cloud-logging") && !strcasecmp(name, "Authorization") && env && *env) {
        add_cred(f, sink, strlen(sink), kiln__xasprintf("Authorization: Bearer %s", env));
        return f->creds[f->n_creds - 1].header;
    }
    return NULL;
}

/* One sink directory: locked, then its files in name order. */
static void flush_dir(struct flush *f, const char *dir)
{
    char **files;
    size_t n = list_dir(dir, false, &files);
    if (!n)
        return;
    char *lock = kiln__xasprintf("%s/.lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (fd >= 0 && (errno == EWOULDBLOCK || errno == EAGAIN)) {
            fprintf(stderr, "kiln: logs flush: %s: a running kiln holds %s (it sends these %zu batches "
                    "itself); not flushed: try again when it has ended\n", dir, lock, n);
            f->locked += n;
        } else {
            fprintf(stderr, "kiln: logs flush: %s: %s; not flushed\n", lock, strerror(errno));
            f->left += n;
        }
        if (fd >= 0)
            close(fd);
        free(lock);
        free_list(files, n);
        return;
    }
    free(lock);
    kiln__buf msg = KILN__BUF_INIT;
    for (size_t i = 0; i < n && !f->stop; i++) {
        kiln__spooled s;
        char *err = NULL;
        if (kiln__spool_read(files[i], &s, &err) != 0) {
            fprintf(stderr, "kiln: logs flush: %s; left alone\n", err);
            free(err);
            f->left++;
            continue;
        }
        char **extra = kiln__xcalloc(s.n_needs + 1, sizeof *extra);
        const char *missing = NULL;
        for (size_t k = 0; k < s.n_needs && !missing; k++)
            if (!(extra[k] = (char *)cred_for(f, s.sink, s.needs[k])))
                missing = s.needs[k];
        if (missing) {
            const char *sk = s.sink ? s.sink : "NAME";
            bool gcl = !strcmp(sk, "cloud-logging") && !strcasecmp(missing, "Authorization");
            kiln__buf how = KILN__BUF_INIT;
            if (gcl)
                kiln__buf_addf(&how, "--sink %s:token=TOKEN (or $GOOGLE_OAUTH_ACCESS_TOKEN)", sk);
            else
                kiln__buf_addf(&how, "--sink %s:headers=%s=VALUE", sk, missing);
            fprintf(stderr, "kiln: logs flush: %s: its batches need the header '%s', which kiln does not "
                    "write to the spool: give it with %s; %zu batches not sent\n", dir, missing, how.buf, n - i);
            kiln__buf_release(&how);
            f->left += n - i;
            free(extra);
            kiln__spooled_release(&s);
            break;
        }
        int64_t backoff = 250;
        int r;
        while ((r = post(&s, extra, s.n_needs, &msg)) == 1 && kiln__now_us() + backoff * 1000 < f->deadline) {
            usleep((useconds_t)(backoff * 1000));
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
        }
        free(extra);
        if (r == 0) {
            unlink(files[i]);
            f->sent++;
            f->bytes += s.body_len;
        } else if (r < 0) {
            const char *base = strrchr(files[i], '/');
            char *to = kiln__xasprintf("%s%s", f->refused_dir, base);
            kiln__mkdir_p(f->refused_dir);
            rename(files[i], to);
            fprintf(stderr, "kiln: logs flush: %s: the receiver refused it (%s); moved to %s\n", files[i],
                    msg.buf, to);
            free(to);
            f->refused++;
        } else {
            fprintf(stderr, "kiln: logs flush: %s: not delivered (%s); stopping, %zu left in %s\n", files[i],
                    msg.buf, n - i, dir);
            f->left += n - i;
            f->stop = true;
        }
        kiln__spooled_release(&s);
    }
    kiln__buf_release(&msg);
    close(fd); /* drops the flock */
    free_list(files, n);
}

int kiln__spool_flush(const char *dir, int64_t grace_ms, const char *const *sinks, size_t n_sinks)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kiln: logs flush: '%s' is not a directory\n", dir);
        return 2;
    }
    struct flush f = {.deadline = kiln__now_us() + grace_ms * 1000};
    int rc = 0;
    for (size_t i = 0; i < n_sinks && !rc; i++)
        rc = parse_spec(&f, sinks[i]);
    if (!rc) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        char *lock = kiln__xasprintf("%s/.lock", dir);
        char **files;
        size_t nf = list_dir(dir, false, &files);
        free_list(files, nf);
        bool one = nf || access(lock, F_OK) == 0; /* DIR is one sink's directory */
        free(lock);
        if (one) {
            char *parent = kiln__xstrdup(dir);
            char *slash = strrchr(parent, '/');
            if (slash && slash != parent)
                *slash = '\0';
            else
                strcpy(parent, ".");
            f.refused_dir = kiln__xasprintf("%s/refused", parent);
            free(parent);
            flush_dir(&f, dir);
        } else {
            f.refused_dir = kiln__xasprintf("%s/refused", dir);
            char **dirs;
            size_t nd = list_dir(dir, true, &dirs);
            for (size_t i = 0; i < nd; i++) {
                if (!f.stop) {
                    flush_dir(&f, dirs[i]);
                    continue;
                }
                size_t nr = list_dir(dirs[i], false, &files);
                f.left += nr;
                free_list(files, nr);
            }
            free_list(dirs, nd);
        }
        printf("kiln: logs flush: %zu batches (%" PRIu64 " bytes) sent from %s; %zu refused, %zu left%s\n", f.sent,
               f.bytes, dir, f.refused, f.left + f.locked, f.locked ? " (a running kiln holds some)" : "");
        rc = f.locked ? 3 : f.refused || f.left ? 1 : 0;
    } else {
        rc = 2;
    }
    for (size_t i = 0; i < f.n_creds; i++) {
        free(f.creds[i].sink);
        free(f.creds[i].header);
    }
    free(f.creds);
    free(f.refused_dir);
    return rc;
}
