/* SPDX-License-Identifier: MIT */
/* Triggers: loading, matching a push, cron checks; see triggers.h. */
#include "triggers.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "glob.h"
#include "subst.h"

/* ---- regexes ------------------------------------------------------------- */

int kiln__regex_compile(regex_t *re, const char *re2, char *why, size_t cap)
{
    kiln__buf b = KILN__BUF_INIT;
    bool in_class = false;
    for (const char *p = re2; *p; p++) {
        if (*p == '\\' && p[1]) {
            const char *rep = NULL;
            switch (p[1]) {
            case 'd': rep = in_class ? "0-9" : "[0-9]"; break;
            case 'D': rep = in_class ? NULL : "[^0-9]"; break;
            case 'w': rep = in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]"; break;
            case 'W': rep = in_class ? NULL : "[^A-Za-z0-9_]"; break;
            case 's': rep = in_class ? "[:space:]" : "[[:space:]]"; break;
            case 'S': rep = in_class ? NULL : "[^[:space:]]"; break;
            default: break;
            }
            if (rep) {
                kiln__buf_adds(&b, rep);
                p++;
                continue;
            }
            if (strchr("DWS", p[1])) {
                snprintf(why, cap, "\\%c inside [...] at offset %zu has no POSIX equivalent", p[1],
                         (size_t)(p - re2));
                kiln__buf_release(&b);
                return -1;
            }
            if (strchr("bBAzpPQE", p[1])) {
                snprintf(why, cap, "\\%c (offset %zu) is RE2 syntax that POSIX regexes lack", p[1],
                         (size_t)(p - re2));
                kiln__buf_release(&b);
                return -1;
            }
            kiln__buf_add(&b, p, 2);
            p++;
            continue;
        }
        if (!in_class && *p == '(' && p[1] == '?') {
            snprintf(why, cap, "'(?' at offset %zu (flags, non-capturing or named groups) is RE2 "
                     "syntax that POSIX regexes lack", (size_t)(p - re2));
            kiln__buf_release(&b);
            return -1;
        }
        if (!in_class && (*p == '*' || *p == '+' || *p == '?' || *p == '}') && p[1] == '?') {
            snprintf(why, cap, "non-greedy '%c?' at offset %zu is RE2 syntax that POSIX regexes "
                     "lack", *p, (size_t)(p - re2));
            kiln__buf_release(&b);
            return -1;
        }
        if (*p == '[' && !in_class) {
            in_class = true;
            kiln__buf_addch(&b, *p);
            if (p[1] == '^')
                kiln__buf_addch(&b, *++p);
            if (p[1] == ']')
                kiln__buf_addch(&b, *++p);
            continue;
        }
        if (*p == ']' && in_class)
            in_class = false;
        kiln__buf_addch(&b, *p);
    }
    int rc = regcomp(re, b.buf, REG_EXTENDED | REG_NOSUB);
    kiln__buf_release(&b);
    if (rc) {
        char msg[256];
        regerror(rc, re, msg, sizeof msg);
        snprintf(why, cap, "%s", msg);
        return -1;
    }
    return 0;
}

/* ---- cron ------------------------------------------------------------- */

int kiln__cron_check(const char *expr, char *why, size_t cap)
{
    kiln__cron c;
    return kiln__cron_parse(expr, &c, why, cap);
}

/* ---- loading ------------------------------------------------------------- */

enum tf { F_NAME, F_REPO, F_BRANCH, F_TAG, F_INVERT, F_INCLUDED, F_IGNORED, F_FILENAME, F_SUBST,
          F_SCHEDULE, F_DESCRIPTION, F_DISABLED, F_TIMEZONE, F_CANCELPREV };
static const struct {
    const char *camel, *snake;
    enum tf f;
} tfields[] = {
    {"name", "name", F_NAME},
    {"repo", "repo", F_REPO},
    {"branch", "branch", F_BRANCH},
    {"tag", "tag", F_TAG},
    {"invertRegex", "invert_regex", F_INVERT},
    {"includedFiles", "included_files", F_INCLUDED},
    {"ignoredFiles", "ignored_files", F_IGNORED},
    {"filename", "filename", F_FILENAME},
    {"substitutions", "substitutions", F_SUBST},
    {"schedule", "schedule", F_SCHEDULE},
    {"description", "description", F_DESCRIPTION},
    {"disabled", "disabled", F_DISABLED},
    {"timeZone", "time_zone", F_TIMEZONE},
    {"cancelPrevious", "cancel_previous", F_CANCELPREV},
};
#define N_TFIELDS (sizeof tfields / sizeof tfields[0])

static const char *scalar(kiln__triggers *t, kiln__diag *d, const kiln__ynode *v, const char *what)
{
    if (!v || v->kind != KILN__Y_SCALAR) {
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v, "%s: expected a string, got %s", what,
                      kiln__ykind_name(v));
        return NULL;
    }
    return v->value;
}

static bool boolean(kiln__triggers *t, kiln__diag *d, const kiln__ynode *v, const char *what)
{
    const char *s = scalar(t, d, v, what);
    if (!s)
        return false;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return true;
    if (strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE"))
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v, "%s: expected true or false, got '%s'", what, s);
    return false;
}

static const char **strlist(kiln__triggers *t, kiln__diag *d, const kiln__ynode *v, const char *what,
                            size_t *n)
{
    *n = 0;
    if (v->kind != KILN__Y_SEQ) {
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v, "%s: expected a list of globs, got %s", what,
                      kiln__ykind_name(v));
        return NULL;
    }
    const char **out = kiln__ydoc_alloc(&t->doc, (v->n + 1) * sizeof *out);
    for (size_t i = 0; i < v->n; i++) {
        const char *s = scalar(t, d, v->items[i], what);
        if (s)
            out[(*n)++] = s;
    }
    return out;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

static void load_one(kiln__triggers *t, kiln__diag *d, const kiln__ynode *m, kiln__trigger *tr)
{
    memset(tr, 0, sizeof *tr);
    tr->node = m;
    tr->filename = "cloudbuild.yaml";
    const kiln__ynode *re_node = NULL;
    static const char *names[N_TFIELDS * 2 + 1];
    for (size_t i = 0; i < N_TFIELDS; i++) {
        names[2 * i] = tfields[i].camel;
        names[2 * i + 1] = tfields[i].snake;
    }
    for (size_t i = 0; i < m->n; i++) {
        const kiln__ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        size_t f = 0;
        while (f < N_TFIELDS && strcmp(k->value, tfields[f].camel) && strcmp(k->value, tfields[f].snake))
            f++;
        if (f == N_TFIELDS) {
            const char *hint = kiln__did_you_mean(k->value, names);
            kiln__diag_at(d, KILN__DIAG_ERROR, t->file, k, "unknown trigger field '%s'%s%s%s", k->value,
                          hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "%s", tfields[f].camel);
        switch (tfields[f].f) {
        case F_NAME:
            tr->name = scalar(t, d, v, what);
            if (tr->name && !valid_name(tr->name))
                kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v,
                              "name '%s': 1 to 64 letters, digits and dashes, starting and ending "
                              "with a letter or digit", tr->name);
            break;
        case F_REPO:
            tr->repo = scalar(t, d, v, what);
            break;
        case F_BRANCH:
            tr->branch = scalar(t, d, v, what);
            re_node = v;
            break;
        case F_TAG:
            tr->tag = scalar(t, d, v, what);
            re_node = v;
            break;
        case F_INVERT:
            tr->invert = boolean(t, d, v, what);
            break;
        case F_INCLUDED:
            tr->included = strlist(t, d, v, what, &tr->n_included);
            break;
        case F_IGNORED:
            tr->ignored = strlist(t, d, v, what, &tr->n_ignored);
            break;
        case F_FILENAME:
            tr->filename = scalar(t, d, v, what);
            break;
        case F_SCHEDULE: {
            tr->schedule = scalar(t, d, v, what);
            char why[256];
            if (tr->schedule && kiln__cron_parse(tr->schedule, &tr->cron, why, sizeof why) != 0)
                kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v, "schedule: %s", why);
            break;
        }
        case F_DESCRIPTION:
            scalar(t, d, v, what);
            break;
        case F_DISABLED:
            tr->disabled = boolean(t, d, v, what);
            break;
        case F_CANCELPREV:
            tr->cancel_previous = boolean(t, d, v, what);
            break;
        case F_TIMEZONE: {
            tr->time_zone = scalar(t, d, v, what);
            kiln__tz tz;
            char why[320];
            if (tr->time_zone && kiln__tz_load(&tz, tr->time_zone, why, sizeof why) != 0)
                kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v, "timeZone: %s", why);
            kiln__tz_free(&tz);
            break;
        }
        case F_SUBST:
            if (v->kind != KILN__Y_MAP) {
                kiln__diag_at(d, KILN__DIAG_ERROR, t->file, v, "substitutions: expected a mapping");
                break;
            }
            tr->subst = kiln__ydoc_alloc(&t->doc, (v->n + 1) * sizeof *tr->subst);
            for (size_t j = 0; j < v->n; j++) {
                const kiln__ynode *sk = v->items[2 * j], *sv = v->items[2 * j + 1];
                char *msg = kiln__subst_check_key(sk->value, false);
                if (msg) {
                    kiln__diag_at(d, KILN__DIAG_ERROR, t->file, sk, "substitutions: %s", msg);
                    free(msg);
                    continue;
                }
                const char *val = sv->kind == KILN__Y_SCALAR && !kiln__ynode_is_null(sv) ? sv->value : "";
                size_t n = strlen(sk->value) + strlen(val) + 2;
                char *kv = kiln__ydoc_alloc(&t->doc, n);
                snprintf(kv, n, "%s=%s", sk->value, val);
                tr->subst[tr->n_subst++] = kv;
            }
            break;
        }
    }
    if (!tr->name)
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, m, "a trigger needs a name");
    if (tr->branch && tr->tag)
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, re_node, "trigger '%s': give branch or tag, not both",
                      tr->name ? tr->name : "?");
    else if (!tr->branch && !tr->tag && !tr->schedule)
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, m,
                      "trigger '%s': give branch or tag (a regex), or a schedule",
                      tr->name ? tr->name : "?");
    if (re_node && (tr->branch || tr->tag)) {
        char why[256];
        if (kiln__regex_compile(&tr->re, tr->branch ? tr->branch : tr->tag, why, sizeof why) != 0)
            kiln__diag_at(d, KILN__DIAG_ERROR, t->file, re_node, "%s regex '%s': %s",
                          tr->branch ? "branch" : "tag", tr->branch ? tr->branch : tr->tag, why);
        else
            tr->has_re = true;
    }
}

int kiln__triggers_load(kiln__triggers *t, const char *file, kiln__diag *d)
{
    memset(t, 0, sizeof *t);
    kiln__buf err = KILN__BUF_INIT;
    int rc = kiln__ydoc_load(&t->doc, file, &err);
    t->file = t->doc.file ? t->doc.file : file;
    char *slash = strrchr(file, '/');
    t->dir = slash ? kiln__xstrndup(file, (size_t)(slash - file)) : kiln__xstrdup(".");
    if (rc) {
        kiln__diag_add_raw(d, err.buf, 1);
        kiln__buf_release(&err);
        return rc;
    }
    kiln__buf_release(&err);
    const kiln__ynode *root = t->doc.root;
    const kiln__ynode *list = root && root->kind == KILN__Y_MAP ? kiln__ymap_get(root, "triggers") : NULL;
    if (!list || list->kind != KILN__Y_SEQ) {
        kiln__diag_at(d, KILN__DIAG_ERROR, t->file, root, "expected 'triggers:' with a list of triggers");
        return 0;
    }
    for (size_t i = 0; root && i < root->n; i++)
        if (strcmp(root->items[2 * i]->value, "triggers"))
            kiln__diag_at(d, KILN__DIAG_ERROR, t->file, root->items[2 * i],
                          "unknown top-level field '%s' (expected triggers)", root->items[2 * i]->value);
    t->v = kiln__xcalloc(list->n ? list->n : 1, sizeof *t->v);
    for (size_t i = 0; i < list->n; i++) {
        const kiln__ynode *m = list->items[i];
        if (m->kind != KILN__Y_MAP) {
            kiln__diag_at(d, KILN__DIAG_ERROR, t->file, m, "a trigger is a mapping, got %s",
                          kiln__ykind_name(m));
            continue;
        }
        load_one(t, d, m, &t->v[t->n]);
        for (size_t j = 0; j < t->n; j++)
            if (t->v[t->n].name && t->v[j].name && !strcmp(t->v[j].name, t->v[t->n].name))
                kiln__diag_at(d, KILN__DIAG_ERROR, t->file, m, "trigger name '%s' is used twice",
                              t->v[j].name);
        t->n++;
    }
    return 0;
}

void kiln__triggers_free(kiln__triggers *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].has_re)
            regfree(&t->v[i].re);
    free(t->v);
    free(t->dir);
    kiln__ydoc_free(&t->doc);
    memset(t, 0, sizeof *t);
}

/* ---- matching ------------------------------------------------------------- */

/* "/srv/x/app.git/" -> "app" */
static void repo_name(const char *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s", s);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    if (n > 4 && !strcmp(out + n - 4, ".git"))
        out[n -= 4] = '\0';
    const char *b = strrchr(out, '/');
    const char *c = strrchr(b ? b : out, ':');
    b = c ? c : b;
    if (b)
        memmove(out, b + 1, strlen(b + 1) + 1);
}

/* A trigger's repo names the pushed repository when both are the same path
 * (after realpath) or URL, or, when the trigger gives a bare name, when the
 * names (last component, without .git) are equal. */
static bool repo_matches(const kiln__triggers *ts, const char *want, const char *got)
{
    if (!strchr(want, '/') && !strchr(want, ':')) {
        char a[PATH_MAX], b[PATH_MAX];
        repo_name(want, a, sizeof a);
        repo_name(got, b, sizeof b);
        return !strcmp(a, b);
    }
    if (!strcmp(want, got))
        return true;
    char path[PATH_MAX * 2], ra[PATH_MAX], rb[PATH_MAX];
    if (want[0] != '/' && !strstr(want, "://"))
        snprintf(path, sizeof path, "%s/%s", ts->dir, want);
    else
        snprintf(path, sizeof path, "%s", want);
    if (realpath(path, ra) && realpath(got, rb))
        return !strcmp(ra, rb);
    return false;
}

bool kiln__trigger_match(const kiln__triggers *ts, const kiln__trigger *t, const kiln__push *p,
                         char *why, size_t cap)
{
    if (t->disabled) {
        snprintf(why, cap, "disabled");
        return false;
    }
    if (t->repo && !repo_matches(ts, t->repo, p->repo)) {
        snprintf(why, cap, "watches repository '%s', not this one", t->repo);
        return false;
    }
    const char *ref = p->ref;
    bool is_tag = strncmp(ref, "refs/tags/", 10) == 0;
    const char *name = is_tag ? ref + 10 : strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref;
    if (!t->has_re) {
        snprintf(why, cap, "has no branch or tag (schedule only)");
        return false;
    }
    if (is_tag && !t->tag) {
        snprintf(why, cap, "watches branches; '%s' is a tag", name);
        return false;
    }
    if (!is_tag && !t->branch) {
        snprintf(why, cap, "watches tags; '%s' is a branch", name);
        return false;
    }
    const char *re = t->branch ? t->branch : t->tag;
    bool m = regexec(&t->re, name, 0, NULL, 0) == 0;
    if (m == t->invert) {
        snprintf(why, cap, "%s '%s' %s %s%s", is_tag ? "tag" : "branch", name,
                 m ? "matches" : "does not match", re, t->invert ? " (invertRegex)" : "");
        return false;
    }
    int off = snprintf(why, cap, "%s '%s' %s %s%s", is_tag ? "tag" : "branch", name,
                       m ? "matches" : "does not match", re, t->invert ? " (invertRegex)" : "");
    if (off < 0 || (size_t)off >= cap)
        off = (int)cap - 1;
    if (!p->files_known || p->n_files == 0 || (!t->n_ignored && !t->n_included))
        return true;
    /* Cloud Build: files outside ignoredFiles; at least one must remain, and
     * with includedFiles at least one of those must match. */
    size_t kept = 0, included = 0;
    const char *first_kept = NULL;
    for (size_t i = 0; i < p->n_files; i++) {
        const char *f = p->files[i];
        bool ign = false;
        for (size_t g = 0; g < t->n_ignored && !ign; g++)
            ign = kiln__glob_match(t->ignored[g], f);
        if (ign)
            continue;
        kept++;
        if (!first_kept)
            first_kept = f;
        for (size_t g = 0; g < t->n_included; g++)
            if (kiln__glob_match(t->included[g], f)) {
                included++;
                break;
            }
    }
    if (kept == 0) {
        snprintf(why, cap, "every changed file (%zu) matches ignoredFiles", p->n_files);
        return false;
    }
    if (t->n_included && !included) {
        snprintf(why, cap, "no changed file matches includedFiles (%zu changed, e.g. %s)", kept,
                 first_kept);
        return false;
    }
    snprintf(why + off, cap - (size_t)off, "; %zu of %zu changed files pass the file filters",
             t->n_included ? included : kept, p->n_files);
    return true;
}
