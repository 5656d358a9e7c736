/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648 section 4) and base64url (section 5) for the plugins:
 * Kubernetes Secrets and ConfigMaps, kubeconfig *-data fields, the Engine
 * API's X-Registry-Auth, ~/.docker/config.json's "auth", git's Basic
 * header, a service account's JWT.
 * Compiled into each plugin that lists plugins/common/base64.c.
 */
#ifndef KILN_PLUGINS_BASE64_H
#define KILN_PLUGINS_BASE64_H

#include <stddef.h>

enum {
    KP_BASE64_URL = 1u,   /* base64url's alphabet: '-' and '_' */
    KP_BASE64_NOPAD = 2u, /* no '=' at the end (a JWT's parts) */
};

/* The base64 of N bytes at DATA, padded unless FLAGS say otherwise,
 * NUL-terminated, in new memory (abort() on out-of-memory). */
char *kp_base64(const void *data, size_t n, unsigned flags);

/* The bytes that standard base64 IN stands for, NUL-terminated (the
 * length in *LEN when LEN is not NULL), in new memory. Line breaks and
 * spaces are skipped (PEM, a wrapped kubeconfig); the first '=' ends the
 * input. NULL when IN holds another character. */
char *kp_base64_decode(const char *in, size_t *len);

#endif
