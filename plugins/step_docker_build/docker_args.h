/* SPDX-License-Identifier: MIT */
/*
 * The docker CLI's own arguments, as Cloud Build steps write them
 * (`name: gcr.io/cloud-builders/docker`, `args: [build, -t, TAG, .]` or
 * `args: [push, TAG]`), read into docker-build's options. Only what the
 * Engine API build and push can do is accepted; anything else is one clear
 * error naming the flag.
 */
#ifndef KILN_DOCKER_ARGS_H
#define KILN_DOCKER_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include <kiln/kiln.h>

typedef struct dk_cli {
    bool push_only; /* `push TAG`: no build */
    const char *context, *dockerfile, *target, *platform;
    bool no_cache, pull;
    kiln_strv tags;
    kiln_kvv build_args, labels;
    /* storage behind the views above */
    const char **tag_v, **arg_k, **arg_v, **label_k, **label_v;
    char **owned;
    size_t n_owned;
} dk_cli;

/* 0, or -1 with err filled. */
int dk_cli_parse(const kiln_strv *args, dk_cli *out, char *err, size_t cap);
void dk_cli_free(dk_cli *c);

#endif /* KILN_DOCKER_ARGS_H */
