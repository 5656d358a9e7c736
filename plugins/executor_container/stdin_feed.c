/* SPDX-License-Identifier: MIT */
/* A step's input file to its container's stdin; see stdin_feed.h. */
#include "stdin_feed.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct cx_feed {
    char *sock;          /* unix socket path, or NULL */
    char *host, *port;   /* tcp */
    char *request;
    int file_fd;
    pthread_mutex_t mu;  /* guards conn and cancelled */
    int conn;
    bool cancelled;
    char error[400];
    void (*ready)(void *arg, bool ok);
    void *ready_arg;
    bool notified;       /* ready was called (worker thread only) */
};

static void notify(cx_feed *f, bool ok)
{
    if (!f->notified && f->ready) {
        f->notified = true;
        f->ready(f->ready_arg, ok);
    }
}

cx_feed *cx_feed_new(const cx_addr *a, const char *container_id, int file_fd, void (*ready)(void *arg, bool ok),
                     void *arg)
{
    cx_feed *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->ready = ready;
    f->ready_arg = arg;
    f->file_fd = file_fd;
    f->conn = -1;
    pthread_mutex_init(&f->mu, NULL);
    const char *hp = "d";
    size_t hl = 1;
    if (a->sock) {
        f->sock = strdup(a->sock);
    } else { /* base: http://HOST:PORT/v1.41 */
        hp = a->base + 7;
        hl = strcspn(hp, "/");
        const char *colon = memchr(hp, ':', hl);
        f->host = strndup(hp, colon ? (size_t)(colon - hp) : hl);
        f->port = colon ? strndup(colon + 1, hl - (size_t)(colon + 1 - hp)) : strdup("80");
    }
    /* Upgrade: the engine answers 101 and the connection is the stream. */
    if (asprintf(&f->request,
                 "POST /v1.41/containers/%s/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: %.*s\r\n"
                 "Content-Type: text/plain\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
                 container_id, (int)hl, hp) < 0)
        abort();
    return f;
}

static int dial(cx_feed *f)
{
    if (f->sock) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(f->sock) >= sizeof sa.sun_path)
            return -1;
        memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (!f->host || !f->port || getaddrinfo(f->host, f->port, &hints, &res))
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

void cx_feed_run(void *feed)
{
    cx_feed *f = feed;
    int fd = dial(f);
    pthread_mutex_lock(&f->mu);
    f->conn = fd;
    bool cancelled = f->cancelled;
    pthread_mutex_unlock(&f->mu);
    if (cancelled)
        goto out;
    if (fd < 0) {
        snprintf(f->error, sizeof f->error, "cannot connect to the engine");
        goto out;
    }
    if (!send_all(fd, f->request, strlen(f->request))) {
        snprintf(f->error, sizeof f->error, "the engine closed the connection");
        goto out;
    }
    /* The answer's head, one byte at a time: what follows it is the stream. */
    char head[2048];
    size_t n = 0;
    while (n < sizeof head - 1 && (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4))) {
        ssize_t r = recv(fd, head + n, 1, 0);
        if (r <= 0)
            break;
        n++;
    }
    head[n] = '\0';
    int status = 0;
    if (sscanf(head, "HTTP/%*s %d", &status) != 1 || (status != 101 && status != 200)) {
        head[strcspn(head, "\r\n")] = '\0';
        /* The engine's reason: the start of the body ({"message": ...}). */
        char body[200] = "";
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (n && poll(&pf, 1, 1000) == 1) {
            ssize_t b = recv(fd, body, sizeof body - 1, MSG_DONTWAIT);
            body[b > 0 ? b : 0] = '\0';
            body[strcspn(body, "\r\n")] = '\0';
        }
        pthread_mutex_lock(&f->mu);
        if (!f->cancelled)
            snprintf(f->error, sizeof f->error, "the engine refused the attach: %.80s%s%.150s", n ? head : "no answer",
                     *body ? ": " : "", body);
        pthread_mutex_unlock(&f->mu);
        goto out;
    }
    notify(f, true);
    char buf[65536];
    ssize_t r;
    while ((r = read(f->file_fd, buf, sizeof buf)) > 0)
        if (!send_all(fd, buf, (size_t)r))
            break; /* the process ended without reading all of it */
    shutdown(fd, SHUT_WR);
out:
    notify(f, false);
    pthread_mutex_lock(&f->mu);
    if (f->conn >= 0)
        close(f->conn);
    f->conn = -1;
    pthread_mutex_unlock(&f->mu);
}

void cx_feed_cancel(cx_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->cancelled = true;
    if (f->conn >= 0)
        shutdown(f->conn, SHUT_RDWR);
    pthread_mutex_unlock(&f->mu);
}

const char *cx_feed_error(const cx_feed *f)
{
    return f->error[0] ? f->error : NULL;
}

void cx_feed_free(cx_feed *f)
{
    if (!f)
        return;
    if (f->file_fd >= 0)
        close(f->file_fd);
    pthread_mutex_destroy(&f->mu);
    free(f->sock);
    free(f->host);
    free(f->port);
    free(f->request);
    free(f);
}
