/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the substitution engine. The input is lines: every line
 * but the last is a substitution, KEY=VALUE (a line without '=' becomes the
 * value of _K<n>); the last line is a template. The template is expanded,
 * the values are evaluated as dynamic substitutions, and the template is
 * expanded again with the results, as a build does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* A C string: cut at the first NUL, as YAML values cannot hold one. */
    char *text = kiln__xstrndup((const char *)data, size);
    kiln__subst *s = kiln__subst_create();
    char *lines[MAX_LINES];
    size_t n = 0;
    char *p = text;
    while (n < MAX_LINES - 1) {
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    const char *tmpl = p;

    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(lines[i], '=');
        char key[32];
        const char *k = key, *v = lines[i];
        if (eq) {
            *eq = '\0';
            k = lines[i];
            v = eq + 1;
        } else {
            snprintf(key, sizeof key, "_K%zu", i);
        }
        free(kiln__subst_check_key(k, i % 2 == 0));
        kiln__subst_set(s, k, v);
    }

    kiln__buf out = KILN__BUF_INIT, errors = KILN__BUF_INIT, warnings = KILN__BUF_INIT;
    kiln__subst_expand(s, tmpl, &out, &errors, &warnings);
    char *err = NULL;
    if (kiln__subst_dynamic(s, &err) == 0) {
        if (err)
            abort();
        kiln__buf_reset(&out);
        kiln__subst_expand(s, tmpl, &out, &errors, &warnings);
    } else if (!err) {
        abort();
    }
    kiln__subst_unused(s, &warnings);
    free(err);
    kiln__buf_release(&out);
    kiln__buf_release(&errors);
    kiln__buf_release(&warnings);
    kiln__subst_destroy(s);
    free(text);
    return 0;
}
