/* SPDX-License-Identifier: MIT */
/* docker-build: small pure helpers (no kiln host calls), unit-tested on their own. */
#ifndef DK_UTIL_H
#define DK_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* A growable NUL-terminated string. */
typedef struct dk_buf {
    char *s;
    size_t len, cap;
} dk_buf;

void dk_buf_add(dk_buf *b, const char *p, size_t n);
void dk_buf_adds(dk_buf *b, const char *s);
void dk_buf_addf(dk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dk_buf_reset(dk_buf *b);
void dk_buf_free(dk_buf *b);
/* Append s percent-encoded for a URL query value. */
void dk_buf_add_urlenc(dk_buf *b, const char *s);
/* Append base64url (with padding) of p, as X-Registry-Auth wants. */
void dk_buf_add_b64url(dk_buf *b, const void *p, size_t n);

/* Where the engine is. */
typedef struct dk_addr {
    char *socket;  /* unix socket path, or NULL for TCP */
    char *base;    /* "http://docker" or "http://HOST:PORT" (no trailing slash) */
    char *display; /* as the user gave it, normalized: unix:///p, tcp://h:p */
} dk_addr;

/* Parse "unix:///path", "/path", "tcp://host:port", "http://host:port",
 * "https://host:port". 0, or -1 with a one-line reason in err. */
int dk_addr_parse(const char *spec, dk_addr *out, char *err, size_t errlen);
void dk_addr_free(dk_addr *a);

/* An image reference split for /images/{repo}/push?tag={tag}. */
typedef struct dk_ref {
    char *repo;     /* "127.0.0.1:5000/team/app" */
    char *tag;      /* "1.2" ("latest" when none was written) */
    char *registry; /* "127.0.0.1:5000", or "docker.io" */
} dk_ref;

/* 0, or -1 with a reason (empty, digest reference, blanks, upper case...). */
int dk_ref_parse(const char *ref, dk_ref *out, char *err, size_t errlen);
void dk_ref_free(dk_ref *r);

/* Find "sha256:<64 hex>" after "digest: " in a push status line; copy it to
 * out (72 bytes). */
bool dk_find_digest(const char *status, char out[72]);

/* One line explaining a failed push, from the engine's message. auth_src
 * names where the credentials came from ("auth_env REGISTRY_AUTH",
 * "registry_auth"), or is NULL when none were given. */
void dk_explain_push_error(dk_buf *out, const char *engine_msg, const dk_ref *ref,
                           const char *auth_src);

/* Collapse a message to one line (newlines and tabs become blanks, trailing
 * blanks dropped), in place. */
void dk_one_line(char *s);

/* Splits a byte stream into lines (JSON-lines progress). */
typedef struct dk_lines {
    dk_buf part;
} dk_lines;

/* Feed bytes; fn is called for each complete line (without '\n'). A line
 * longer than max is passed on in pieces. Returns fn's first non-zero. */
int dk_lines_feed(dk_lines *l, const char *p, size_t n, size_t max,
                  int (*fn)(void *data, const char *line, size_t len), void *data);
/* The unterminated rest, if any. */
int dk_lines_flush(dk_lines *l, int (*fn)(void *data, const char *line, size_t len), void *data);

/* Lexically clean a relative path like Go's filepath.Clean ("a/./b/../c//"
 * -> "a/c"; "" -> "."). Leading "/" are dropped. Returns a malloc'd string. */
char *dk_clean_path(const char *p);

#endif
