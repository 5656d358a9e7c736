/* SPDX-License-Identifier: MIT */
/* A kubeconfig user's exec credential plugin, run (see k8s_exec_cred.c). */
#ifndef K8S_EXEC_CRED_H
#define K8S_EXEC_CRED_H

#include <cJSON.h>
#include <stddef.h>

/* Run the plugin described by EXEC (the user's `exec:` mapping) as COMMAND
 * (its path resolved by the caller). 0 with either *token or *cert_pem and
 * *key_pem set (the caller frees them) and *expires_at the credential's
 * end (Unix seconds, 0: none given), or -1 with a message in err. */
int k8_exec_credential(const cJSON *exec, const char *command, char **token, char **cert_pem, char **key_pem,
                       long long *expires_at, char *err, size_t errcap);

/* An RFC 3339 time ("2026-12-07T03:00:00Z", "...+01:00", fractions
 * ignored) as Unix seconds, or -1. */
long long k8_rfc3339(const char *s);

#endif /* K8S_EXEC_CRED_H */
