/* SPDX-License-Identifier: MIT */
/*
 * gitfetch: bring a repository at a branch, tag or commit into a directory,
 * shallow by default, with the step's spawn() (so git's messages reach the
 * log sinks). Shared by git-checkout and submit-sub-build.
 *
 * Credentials (a token, or user:password written in an http(s) URL) never
 * reach git's command line, the log or the step outputs: the URL is used
 * without them, and the Authorization header goes to git through a
 * temporary 0600 config file named by GIT_CONFIG_GLOBAL, removed when the
 * fetch ends.
 *
 * A repo starting with ./ or ../ is relative, as git submodule URLs are: to
 * the workspace's remote.origin.url when it has one, else to the workspace
 * directory.
 */
#ifndef KILN_GITFETCH_H
#define KILN_GITFETCH_H

#include <kiln/kiln.h>

struct gitfetch_opts {
    const char *repo;     /* path, file://, git://, http(s)://, or ./ ../ relative */
    const char *ref;      /* branch, tag, full commit, refs/...; NULL: the remote's HEAD */
    const char *dest;     /* absolute directory */
    int64_t depth;        /* 0: full history */
    const char *username; /* for a token; default "x-access-token" */
    const char *token;    /* NULL: none */
};

struct gitfetch_result {
    char commit[41];
    char *branch;    /* or NULL */
    char *tag;       /* or NULL */
    char *ref_name;  /* branch or tag, or NULL for a bare commit */
    char *repo_name; /* last path component without .git */
    char *url;       /* without credentials */
    const char *dir;
};

struct gitfetch;
/* err: 0, or a negative KILN_E* after the reason was logged to the step. r
 * is borrowed for the call. The gitfetch is freed after the callback. */
typedef void (*gitfetch_cb)(kiln_step *step, void *data, int err, const struct gitfetch_result *r);

/* Returns 0 (cb comes later, once) or a negative KILN_E* (no callback). */
int gitfetch_start(kiln_step *step, const struct gitfetch_opts *o, gitfetch_cb cb, void *data,
                   struct gitfetch **out);
/* The step is being cancelled: stop (the callback still comes, with an error). */
void gitfetch_cancel(struct gitfetch *g);
/* The host ended the step without us (kiln_step_ops.abandon, ABI 1.10): its
 * process is released without a callback. Remove the credentials file and
 * free g; the callback never comes. */
void gitfetch_abandon(struct gitfetch *g);

/* The token named by token-env (an environment variable) or token-file;
 * NULL when neither is given or on error (*err set, reason logged). */
char *gitfetch_read_token(kiln_step *step, const char *env, const char *file, int *err);

/* "https://u:p@host/x" -> "https://host/x" and the credentials, for tests. */
void gitfetch_split_url(const char *url, char **clean, char **user, char **pass);

#endif /* KILN_GITFETCH_H */
