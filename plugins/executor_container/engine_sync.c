/* SPDX-License-Identifier: MIT */
/* Blocking Engine API calls for open() and close(); see engine_sync.h. */
#include "engine_sync.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct body {
    char *p;
    size_t n;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct body *b = userp;
    size_t len = size * nmemb;
    char *np = realloc(b->p, b->n + len + 1);
    if (!np)
        return 0;
    memcpy(np + b->n, ptr, len);
    b->p = np;
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

int cx_sync(const cx_addr *a, const char *method, const char *path, const char *json, long timeout_ms,
            long *status, char **body)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[4096];
    snprintf(url, sizeof url, "%s%s", a->base, path);
    struct body b = {NULL, 0};
    struct curl_slist *h = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (a->sock)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, a->sock);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (json) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (body)
        *body = b.p;
    else
        free(b.p);
    return rc == CURLE_OK ? 0 : -1;
}

int cx_addr_parse(const char *spec, cx_addr *a)
{
    memset(a, 0, sizeof *a);
    if (!strncmp(spec, "unix://", 7)) {
        a->sock = strdup(spec + 7);
        a->base = strdup("http://d/v1.41");
    } else if (!strncmp(spec, "tcp://", 6) || !strncmp(spec, "http://", 7)) {
        const char *hp = strstr(spec, "://") + 3;
        size_t n = strlen(hp) + 32;
        a->base = malloc(n);
        if (a->base)
            snprintf(a->base, n, "http://%.*s/v1.41", (int)strcspn(hp, "/"), hp);
    } else if (spec[0] == '/') {
        a->sock = strdup(spec);
        a->base = strdup("http://d/v1.41");
    } else {
        return -1;
    }
    a->spec = strdup(spec);
    return a->base ? 0 : -1;
}

void cx_addr_free(cx_addr *a)
{
    free(a->sock);
    free(a->base);
    free(a->spec);
    memset(a, 0, sizeof *a);
}
