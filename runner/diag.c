/* SPDX-License-Identifier: MIT */
/* Diagnostics collection and "did you mean"; contracts in diag.h. */
#include "diag.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *level_word(kiln__diag_level l)
{
    return l == KILN__DIAG_ERROR ? "error" : l == KILN__DIAG_WARNING ? "warning" : "note";
}

void kiln__diag_init(kiln__diag *d)
{
    memset(d, 0, sizeof *d);
    kiln__buf_init(&d->text);
}

void kiln__diag_release(kiln__diag *d)
{
    kiln__buf_release(&d->text);
}

void kiln__diag_vat(kiln__diag *d, kiln__diag_level level, const char *file,
                    const kiln__ynode *node, const char *fmt, va_list ap)
{
    kiln__buf line = KILN__BUF_INIT;
    if (node && node->line > 0) /* nodes made up by kiln have no position */
        kiln__buf_addf(&line, "%s:%d:%d: %s: ", file, node->line, node->col, level_word(level));
    else
        kiln__buf_addf(&line, "%s: %s: ", file, level_word(level));
    kiln__buf_vaddf(&line, fmt, ap);
    kiln__buf_addch(&line, '\n');
    /* The same problem at the same place (a key used twice in one template)
     * is said once. */
    const char *dup = strstr(d->text.buf, line.buf);
    bool seen = dup && (dup == d->text.buf || dup[-1] == '\n');
    if (!seen)
        kiln__buf_add(&d->text, line.buf, line.len);
    kiln__buf_release(&line);
    if (seen)
        return;
    if (level == KILN__DIAG_ERROR)
        d->errors++;
    else if (level == KILN__DIAG_WARNING)
        d->warnings++;
    else
        d->notes++;
}

void kiln__diag_at(kiln__diag *d, kiln__diag_level level, const char *file, const kiln__ynode *node,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__diag_vat(d, level, file, node, fmt, ap);
    va_end(ap);
}

void kiln__diag_add_raw(kiln__diag *d, const char *lines, int errors)
{
    kiln__buf_adds(&d->text, lines);
    d->errors += errors;
}

void kiln__diag_option(kiln_diag *d, const char *option, const char *fmt, ...)
{
    const kiln__ynode *at = option ? kiln__ymap_get(d->with, option) : NULL;
    if (!at)
        at = d->with ? d->with : d->step;
    kiln__buf msg = KILN__BUF_INIT;
    if (d->prefix)
        kiln__buf_adds(&msg, d->prefix);
    if (option)
        kiln__buf_addf(&msg, "option '%s': ", option);
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(&msg, fmt, ap);
    va_end(ap);
    kiln__diag_at(d, KILN__DIAG_ERROR, d->file ? d->file : "pipeline", at, "%s", msg.buf);
    kiln__buf_release(&msg);
}

/* Damerau-free Levenshtein distance, case-insensitive, for short words. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = prev + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *kiln__did_you_mean(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; candidates && candidates[i]; i++) {
        size_t dd = distance(word, candidates[i]);
        if (dd < best_d) {
            best_d = dd;
            best = candidates[i];
        }
    }
    size_t len = strlen(word);
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return best_d <= limit ? best : NULL;
}
