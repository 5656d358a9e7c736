/* SPDX-License-Identifier: MIT */
/*
 * Google OAuth access tokens for the cloud-logging sink, fetched with
 * blocking libcurl calls: call gauth_fetch() on a worker thread only.
 *  - a service-account key file (JSON: client_email, private_key,
 *    token_uri): a JWT (RS256, signed with OpenSSL) exchanged at token_uri
 *    (RFC 7523's jwt-bearer grant), as Google's client libraries do;
 *  - else the metadata server (GCE, Cloud Run, GKE):
 *    http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token
 *    with "Metadata-Flavor: Google" (host default metadata.google.internal).
 */
#ifndef KILN_GAUTH_H
#define KILN_GAUTH_H

#include <stdint.h>

typedef struct gauth_result {
    char *token;        /* malloc'ed, or NULL */
    int64_t expires_in; /* seconds */
    char *error;        /* malloc'ed message when token is NULL */
} gauth_result;

/* key_file NULL: the metadata server. scope: the OAuth scope asked for. */
void gauth_fetch(const char *key_file, const char *scope, gauth_result *out);

#endif
