/* SPDX-License-Identifier: MIT */
#include "kedro_parse.h"

#include <stdlib.h>
#include <string.h>

#include "kedro_util.h"

enum { EXPECT_NONE, EXPECT_ERROR_TEXT, EXPECT_RESUME };

static const char *find(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle));
}

static void set(char **slot, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    free(*slot);
    *slot = kt_strndup(s, n);
}

char *kt_node_short_name(const char *s, size_t len)
{
    const char *paren = memchr(s, '(', len);
    size_t upto = paren ? (size_t)(paren - s) : len;
    const char *colon = find(s, upto, ": ");
    if (colon)
        return kt_strndup(s, (size_t)(colon - s));
    return kt_strndup(s, upto);
}

static bool parse_i64(const char **pp, const char *end, int64_t *out)
{
    const char *p = *pp;
    int64_t v = 0;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p++ - '0');
    }
    *pp = p;
    *out = v;
    return true;
}

static bool eat(const char **pp, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
        return false;
    *pp += n;
    return true;
}

/* "Completed %d out of %d tasks" anywhere in the line. */
static bool parse_tasks(const char *line, size_t len, int64_t *done, int64_t *total)
{
    const char *end = line + len, *s = line;
    while ((s = find(s, (size_t)(end - s), "Completed ")) != NULL) {
        const char *p = s + strlen("Completed ");
        if (parse_i64(&p, end, done) && eat(&p, end, " out of ") && parse_i64(&p, end, total) &&
            eat(&p, end, " tasks"))
            return true;
        s += 1;
    }
    return false;
}

kt_event kt_parse_line(kt_progress *p, int stream, const char *line, size_t len)
{
    const char *end = line + len, *m;
    size_t blank = 0;
    while (blank < len && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r'))
        blank++;
    bool empty = blank == len;

    if (stream == 2 && !empty)
        set(&p->last_stderr, line, len);
    if (find(line, len, "No module named kedro") || find(line, len, "No module named 'kedro'"))
        p->no_module_kedro = true;
    if (find(line, len, "Kedro project not found in this directory"))
        p->project_not_found = true;

    /* Continuations of a multi-line message. */
    if (p->expect == EXPECT_ERROR_TEXT && stream == p->expect_stream) {
        if (empty)
            return KT_EV_NONE;
        p->expect = EXPECT_NONE;
        set(&p->error_text, line, len);
        return KT_EV_ERROR;
    }
    if ((m = find(line, len, "--from-nodes \"")) != NULL) {
        const char *v = m + strlen("--from-nodes \"");
        const char *q = memchr(v, '"', (size_t)(end - v));
        set(&p->resume_from, v, (size_t)((q ? q : end) - v));
        p->expect = EXPECT_NONE;
        return KT_EV_RESUME;
    }

    if ((m = find(line, len, "Running node: ")) != NULL) {
        const char *v = m + strlen("Running node: ");
        free(p->running);
        p->running = kt_node_short_name(v, (size_t)(end - v));
        return KT_EV_RUNNING;
    }
    if ((m = find(line, len, "Completed node: ")) != NULL) {
        const char *v = m + strlen("Completed node: ");
        set(&p->last_completed, v, (size_t)(end - v));
        return KT_EV_NONE;
    }
    int64_t d, t;
    if (parse_tasks(line, len, &d, &t)) {
        p->done = d;
        p->total = t;
        return KT_EV_TASKS;
    }
    if ((m = find(line, len, " failed with error:")) != NULL) {
        const char *n = find(line, (size_t)(m - line), "Node ");
        if (n) {
            const char *v = n + strlen("Node ");
            free(p->failed_node);
            p->failed_node = kt_node_short_name(v, (size_t)(m - v));
            const char *rest = m + strlen(" failed with error:");
            size_t rl = (size_t)(end - rest);
            while (rl && (*rest == ' ' || *rest == '\t')) {
                rest++;
                rl--;
            }
            if (rl) {
                set(&p->error_text, rest, rl);
            } else {
                p->expect = EXPECT_ERROR_TEXT;
                p->expect_stream = stream;
            }
            return KT_EV_FAILED;
        }
    }
    if ((m = find(line, len, "There are ")) != NULL) {
        const char *v = m + strlen("There are ");
        int64_t n;
        if (parse_i64(&v, end, &n) && eat(&v, end, " nodes that have not run")) {
            p->not_run = n;
            p->expect = EXPECT_RESUME;
            return KT_EV_NONE;
        }
    }
    if (find(line, len, "No nodes ran."))
        p->no_nodes_ran = true;
    if (find(line, len, "Pipeline execution completed successfully"))
        p->completed = true;
    if (stream == 2 && len - blank >= 7 && memcmp(line + blank, "Error: ", 7) == 0)
        set(&p->usage_error, line + blank, len - blank);
    return KT_EV_NONE;
}

void kt_progress_free(kt_progress *p)
{
    free(p->running);
    free(p->last_completed);
    free(p->failed_node);
    free(p->error_text);
    free(p->resume_from);
    free(p->usage_error);
    free(p->last_stderr);
    memset(p, 0, sizeof(*p));
}
