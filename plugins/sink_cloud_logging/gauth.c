/* SPDX-License-Identifier: MIT */
/* Google OAuth access tokens; see gauth.h. */
#include "gauth.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/base64.h"

struct mem {
    char *p;
    size_t n;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct mem *m = userp;
    size_t len = size * nmemb;
    if (m->n + len > (1u << 20))
        return 0; /* a token answer is small */
    char *p = realloc(m->p, m->n + len + 1);
    if (!p)
        return 0;
    memcpy(p + m->n, ptr, len);
    m->p = p;
    m->n += len;
    p[m->n] = '\0';
    return len;
}

static void fail(gauth_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(gauth_result *out, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(out->error);
    out->error = strdup(buf);
}

/* A JWT's parts are base64url without padding (RFC 7515 section 2). */
static char *b64url(const unsigned char *in, size_t n)
{
    return kp_base64(in, n, KP_BASE64_URL | KP_BASE64_NOPAD);
}

/* header.claims.signature, RS256 with the PEM key. */
static char *make_jwt(const char *email, const char *pem, const char *aud, const char *scope,
                      gauth_result *out)
{
    char claims[2048];
    time_t now = time(NULL);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "iss", email);
    cJSON_AddStringToObject(c, "scope", scope);
    cJSON_AddStringToObject(c, "aud", aud);
    cJSON_AddNumberToObject(c, "iat", (double)now);
    cJSON_AddNumberToObject(c, "exp", (double)(now + 3600));
    char *cj = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!cj)
        return NULL;
    static const char hdr[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char *h64 = b64url((const unsigned char *)hdr, sizeof hdr - 1);
    char *c64 = b64url((const unsigned char *)cj, strlen(cj));
    free(cj);
    snprintf(claims, sizeof claims, "%s.%s", h64 ? h64 : "", c64 ? c64 : "");
    free(h64);
    free(c64);

    char *jwt = NULL;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 0;
    unsigned char *sig = NULL;
    if (!key) {
        fail(out, "the key file's private_key is not a PEM private key");
    } else if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
               EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)claims, strlen(claims)) != 1 ||
               !(sig = malloc(siglen)) ||
               EVP_DigestSign(md, sig, &siglen, (const unsigned char *)claims, strlen(claims)) != 1) {
        fail(out, "cannot sign the token request with the key file's private_key");
    } else {
        char *s64 = b64url(sig, siglen);
        size_t n = strlen(claims) + 1 + (s64 ? strlen(s64) : 0) + 1;
        jwt = malloc(n);
        if (jwt && s64)
            snprintf(jwt, n, "%s.%s", claims, s64);
        free(s64);
    }
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return jwt;
}

/* POST (form non-NULL) or GET; the answer's access_token and expires_in. */
static void token_request(const char *url, const char *form, const char *header, gauth_result *out)
{
    CURL *c = curl_easy_init();
    struct mem m = {0};
    struct curl_slist *hl = header ? curl_slist_append(NULL, header) : NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    if (!c) {
        fail(out, "cannot start libcurl");
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (hl)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (form)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        fail(out, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else {
        cJSON *j = m.p ? cJSON_Parse(m.p) : NULL;
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
        if (status == 200 && cJSON_IsString(tok) && tok->valuestring[0]) {
            out->token = strdup(tok->valuestring);
            out->expires_in = cJSON_IsNumber(exp) ? (int64_t)exp->valuedouble : 3600;
        } else {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error_description");
            if (!cJSON_IsString(e))
                e = cJSON_GetObjectItemCaseSensitive(j, "error");
            fail(out, "%s: HTTP %ld%s%s", url, status, cJSON_IsString(e) ? ": " : "",
                 cJSON_IsString(e) ? e->valuestring : "");
        }
        cJSON_Delete(j);
    }
    free(m.p);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *p = realloc(buf, cap = cap ? 2 * cap : 8192);
            if (!p)
                break;
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0 || n > (1u << 20))
            break;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static void fetch(const char *key_file, const char *scope, gauth_result *out);

void gauth_fetch(const char *key_file, const char *scope, gauth_result *out)
{
    fetch(key_file, scope, out);
    /* The worker thread lives on (libuv's pool): free OpenSSL's state for
     * it now rather than never. */
    OPENSSL_thread_stop();
}

static void fetch(const char *key_file, const char *scope, gauth_result *out)
{
    memset(out, 0, sizeof *out);
    if (!key_file) {
        const char *host = getenv("GCE_METADATA_HOST");
        char url[512];
        snprintf(url, sizeof url,
                 "http://%s/computeMetadata/v1/instance/service-accounts/default/token",
                 host && *host ? host : "metadata.google.internal");
        token_request(url, NULL, "Metadata-Flavor: Google", out);
        return;
    }
    char *text = read_file(key_file);
    if (!text) {
        fail(out, "cannot read the key file '%s'", key_file);
        return;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(j, "client_email");
    const cJSON *pem = cJSON_GetObjectItemCaseSensitive(j, "private_key");
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(j, "token_uri");
    if (!cJSON_IsString(email) || !cJSON_IsString(pem)) {
        fail(out, "'%s' is not a service-account key file (no client_email or private_key)", key_file);
        cJSON_Delete(j);
        return;
    }
    const char *aud = cJSON_IsString(uri) ? uri->valuestring : "https://oauth2.googleapis.com/token";
    char *jwt = make_jwt(email->valuestring, pem->valuestring, aud, scope, out);
    if (jwt) {
        size_t n = strlen(jwt) + 128;
        char *form = malloc(n);
        if (form) {
            snprintf(form, n, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s",
                     jwt);
            token_request(aud, form, "Content-Type: application/x-www-form-urlencoded", out);
            free(form);
        }
        free(jwt);
    }
    cJSON_Delete(j);
}
