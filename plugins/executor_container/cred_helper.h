/* SPDX-License-Identifier: MIT */
/*
 * Docker credential helpers: ~/.docker/config.json's "credsStore" (every
 * registry) and "credHelpers" ({REGISTRY: NAME}) name a program
 * docker-credential-NAME on PATH; `docker-credential-NAME get` reads the
 * registry on stdin and prints {"ServerURL", "Username", "Secret"}.
 */
#ifndef KILN_CX_CRED_HELPER_H
#define KILN_CX_CRED_HELPER_H

/* Blocking (a worker thread's). 0: *user and *secret (malloc'd); 1: the
 * helper has no credentials for server (pull without); -1: *err (malloc'd)
 * says why, naming the helper. */
int cx_cred_helper_get(const char *name, const char *server, char **user, char **secret, char **err);

#endif
