/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics: every problem found while loading and checking a pipeline,
 * collected so that the user sees all of them at once, each as
 * "FILE:LINE:COL: error: what was wrong, what was expected".
 *
 * struct kiln_diag is the SDK's opaque kiln_diag: a plugin's validate()
 * reports through kiln_api->diag(), which lands here with the position of the
 * option it names.
 */
#ifndef KILN_DIAG_H
#define KILN_DIAG_H

#include <stdbool.h>

#include <kiln/plugin.h>

#include "buf.h"
#include "yaml_tree.h"

typedef enum kiln__diag_level { KILN__DIAG_ERROR, KILN__DIAG_WARNING, KILN__DIAG_NOTE } kiln__diag_level;

struct kiln_diag {
    kiln__buf text;      /* all lines so far */
    int errors, warnings, notes;
    /* Context for plugin validate(): positions of `with:` options. */
    const char *file;
    const kiln__ynode *with;  /* the step's `with:` mapping, or NULL */
    const kiln__ynode *step;  /* the step node, for options that are absent */
    const char *prefix;       /* e.g. "step 'train': " */
    /* --cloudbuild-strict: what Cloud Build would reject (its size limits,
     * kiln's own fields) is an error, not a warning or nothing. */
    bool cloudbuild_strict;
};
typedef struct kiln_diag kiln__diag;

void kiln__diag_init(kiln__diag *d);
void kiln__diag_release(kiln__diag *d);

/* One line at node's position (node may be NULL: FILE only). */
void kiln__diag_at(kiln__diag *d, kiln__diag_level level, const char *file, const kiln__ynode *node,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void kiln__diag_vat(kiln__diag *d, kiln__diag_level level, const char *file,
                    const kiln__ynode *node, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
/* Add lines already formatted by another layer (e.g. the YAML parser). */
void kiln__diag_add_raw(kiln__diag *d, const char *lines, int errors);

/* The SDK's kiln_api->diag(). */
void kiln__diag_option(kiln_diag *d, const char *option, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Closest candidate to word among a NULL-terminated list, or NULL when none
 * is close enough to suggest. */
const char *kiln__did_you_mean(const char *word, const char *const *candidates);

#endif /* KILN_DIAG_H */
