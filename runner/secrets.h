/* SPDX-License-Identifier: MIT */
/*
 * Secrets: Cloud Build's availableSecrets and secretEnv, resolved locally.
 *
 * A secretManager version "projects/P/secrets/NAME/versions/V" is looked up,
 * in order, in the --secrets-file (dotenv lines keyed by the full version
 * name, by NAME, or by the env name), in the environment variable
 * KILN_SECRET_<NAME> (NAME upper-cased, other characters as '_'), and
 * through the --secrets-command, run as `sh -c 'COMMAND "$1"' - VERSION`,
 * whose standard output (less one trailing newline) is the value. A secret
 * that none of them has is an error before anything runs. Every value is
 * handed to the masker.
 */
#ifndef KILN_SECRETS_H
#define KILN_SECRETS_H

#include "diag.h"
#include "mask.h"
#include "pipeline.h"
#include "subst.h"

typedef struct kiln__secrets {
    size_t n;
    char **env;    /* the variable name steps see */
    char **value;
} kiln__secrets;

typedef struct kiln__secret_opts {
    const char *file;
    const char *command;
} kiln__secret_opts;

/* Resolve and check (uniqueness, every step's secretEnv defined, every
 * secret used). Problems go to d. */
void kiln__secrets_resolve(const kiln__pipeline *p, kiln__subst *s, const kiln__secret_opts *o,
                           kiln__diag *d, kiln__masker *masker, kiln__secrets *out);
void kiln__secrets_release(kiln__secrets *sec);
const char *kiln__secrets_get(const kiln__secrets *sec, const char *env);

#endif /* KILN_SECRETS_H */
