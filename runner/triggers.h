/* SPDX-License-Identifier: MIT */
/*
 * Triggers: which pushes start which builds, with Cloud Build's field names
 * (shared/reference/cloudbuild.md §2.1).
 *
 *   triggers:
 *   - name: api-staging            # [A-Za-z0-9-], 1-64, starts and ends alphanumeric
 *     repo: purchase_predict_api   # a path or URL; see kiln__trigger_match
 *     branch: ^staging$            # or tag:, a regex (see below)
 *     invertRegex: false
 *     includedFiles: [src/...]     # globs with ** (glob.h)
 *     ignoredFiles: [docs/...]
 *     filename: cloudbuild.yaml    # the pipeline, in the pushed commit
 *     substitutions: {_ENV: staging}
 *     schedule: "0 3 * * 1"        # cron (cron.h): kiln serve starts it then
 *     timeZone: Europe/Paris       # the schedule's (IANA name; default UTC)
 *     cancelPrevious: true         # a newer build of the same branch cancels the older
 *
 * Regexes are POSIX extended (regcomp REG_EXTENDED) searched anywhere in the
 * name, as RE2's are; \d \w \s \D \W \S are translated. RE2-only syntax
 * (flags such as (?i), non-greedy *?, named groups) is an error naming the
 * position, not silently different.
 */
#ifndef KILN_TRIGGERS_H
#define KILN_TRIGGERS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "cron.h"
#include "diag.h"
#include "yaml_tree.h"

typedef struct kiln__trigger {
    const char *name;
    const char *repo;           /* NULL: any repository */
    const char *branch, *tag;   /* the regex as written; at most one */
    regex_t re;
    bool has_re;
    bool invert;
    const char **included, **ignored;
    size_t n_included, n_ignored;
    const char *filename;       /* default cloudbuild.yaml */
    const char **subst;         /* "K=V" */
    size_t n_subst;
    const char *schedule;       /* or NULL */
    kiln__cron cron;            /* parsed schedule */
    const char *time_zone;      /* or NULL: UTC */
    bool cancel_previous;
    bool disabled;
    const kiln__ynode *node;
} kiln__trigger;

typedef struct kiln__triggers {
    kiln__ydoc doc;
    const char *file;
    char *dir;                  /* the file's directory, for relative repo paths */
    kiln__trigger *v;
    size_t n;
} kiln__triggers;

/* Load and check FILE; every problem goes to d. Returns 0 when the file
 * could be read (check d->errors). */
int kiln__triggers_load(kiln__triggers *t, const char *file, kiln__diag *d);
void kiln__triggers_free(kiln__triggers *t);

/* A push (or a ref given on the command line). */
typedef struct kiln__push {
    const char *repo;           /* path or URL of the repository pushed to */
    const char *ref;            /* refs/heads/X, refs/tags/X, or X (a branch) */
    const char *const *files;   /* changed files */
    size_t n_files;
    bool files_known;           /* false: the file filters are not applied */
} kiln__push;

/* Whether t fires for push; why (either way) is one line for the user. */
bool kiln__trigger_match(const kiln__triggers *ts, const kiln__trigger *t, const kiln__push *p,
                         char *why, size_t cap);

/* Check a cron expression: five fields (minute hour day-of-month month
 * day-of-week; names JAN-DEC and SUN-SAT; * a-b a-b/n * /n lists) or @hourly,
 * @daily, @weekly, @monthly, @yearly. Returns 0, or -1 with why. */
int kiln__cron_check(const char *expr, char *why, size_t cap);

/* Translate an RE2 regex to POSIX ERE and compile it. Returns 0, or -1 with
 * why. */
int kiln__regex_compile(regex_t *re, const char *re2, char *why, size_t cap);

#endif /* KILN_TRIGGERS_H */
