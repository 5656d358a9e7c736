/* SPDX-License-Identifier: MIT */
/*
 * Pipeline loading: YAML tree -> kiln__pipeline, with Cloud Build's field
 * names (camelCase or snake_case), types and waitFor rules, and kiln's
 * additions (uses/with, retry, finally, options.maxParallel).
 */
#include "pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/errors.h>

#include "buf.h"
#include "volumes.h"

/* The arena of the document owns every string we keep. */
static char *doc_strdup(kiln__pipeline *p, const char *s)
{
    return kiln__ydoc_strdup(&p->doc, s);
}

/* snake_case -> camelCase, so that both spellings meet one table. */
static void canon_key(const char *key, char *out, size_t cap)
{
    size_t j = 0;
    bool up = false;
    for (size_t i = 0; key[i] && j + 1 < cap; i++) {
        if (key[i] == '_' && i > 0) {
            up = true;
            continue;
        }
        out[j++] = up ? (char)toupper((unsigned char)key[i]) : key[i];
        up = false;
    }
    out[j] = '\0';
}

enum ftype {
    F_STRING,
    F_STRLIST,
    F_BOOL,
    F_DURATION,   /* Cloud Build: "30s", "1.5s" */
    F_INTLIST,
    F_INT,
    F_NODE,       /* kept as a node for a later stage */
    F_NOTE        /* accepted; has no meaning on a local machine: say so */
};

struct field {
    const char *name; /* canonical camelCase */
    enum ftype type;
    int slot;         /* what to fill, interpreted per table */
    const char *note;
};

struct ctx {
    kiln__pipeline *p;
    kiln__diag *d;
};

static void err(struct ctx *c, const kiln__ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err(struct ctx *c, const kiln__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__diag_vat(c->d, KILN__DIAG_ERROR, c->p->file, at, fmt, ap);
    va_end(ap);
}

static void note(struct ctx *c, const kiln__ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct ctx *c, const kiln__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__diag_vat(c->d, KILN__DIAG_NOTE, c->p->file, at, fmt, ap);
    va_end(ap);
}

static const char *get_string(struct ctx *c, const kiln__ynode *n, const char *what)
{
    if (kiln__ynode_is_null(n))
        return NULL;
    if (n->kind != KILN__Y_SCALAR) {
        err(c, n, "%s: expected a string, got %s", what, kiln__ykind_name(n));
        return NULL;
    }
    return n->value;
}

static void get_strlist(struct ctx *c, const kiln__ynode *n, const char *what, kiln__strlist *out)
{
    memset(out, 0, sizeof *out);
    if (kiln__ynode_is_null(n))
        return;
    if (n->kind != KILN__Y_SEQ) {
        if (n->kind == KILN__Y_SCALAR)
            err(c, n,
                "%s: expected a list; repeated string fields containing one element must be "
                "specified like ['foo'], not 'foo'",
                what);
        else
            err(c, n, "%s: expected a list of strings, got %s", what, kiln__ykind_name(n));
        return;
    }
    out->node = n;
    out->n = n->n;
    out->v = kiln__ydoc_alloc(&c->p->doc, (n->n ? n->n : 1) * sizeof *out->v);
    for (size_t i = 0; i < n->n; i++) {
        const kiln__ynode *it = n->items[i];
        if (it->kind != KILN__Y_SCALAR) {
            err(c, it, "%s: expected a string in the list, got %s", what, kiln__ykind_name(it));
            out->v[i] = "";
        } else {
            out->v[i] = it->value;
        }
    }
}

static bool get_bool(struct ctx *c, const kiln__ynode *n, const char *what)
{
    if (n->kind == KILN__Y_SCALAR && !n->quoted) {
        const char *v = n->value;
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
            return true;
        if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
            return false;
    }
    err(c, n, "%s: expected true or false, got %s%s%s", what,
        n->kind == KILN__Y_SCALAR ? "'" : kiln__ykind_name(n),
        n->kind == KILN__Y_SCALAR ? n->value : "", n->kind == KILN__Y_SCALAR ? "'" : "");
    return false;
}

static bool parse_int(const char *s, long long *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static int get_int(struct ctx *c, const kiln__ynode *n, const char *what, long long *out)
{
    if (n->kind == KILN__Y_SCALAR && parse_int(n->value, out))
        return 0;
    err(c, n, "%s: expected an integer, got %s%s%s", what,
        n->kind == KILN__Y_SCALAR ? "'" : kiln__ykind_name(n),
        n->kind == KILN__Y_SCALAR ? n->value : "", n->kind == KILN__Y_SCALAR ? "'" : "");
    return -1;
}

static int *get_intlist(struct ctx *c, const kiln__ynode *n, const char *what, size_t *count)
{
    *count = 0;
    if (kiln__ynode_is_null(n))
        return NULL;
    if (n->kind != KILN__Y_SEQ) {
        err(c, n, "%s: expected a list of integers such as [1, 2], got %s", what,
            kiln__ykind_name(n));
        return NULL;
    }
    int *v = kiln__ydoc_alloc(&c->p->doc, (n->n ? n->n : 1) * sizeof *v);
    for (size_t i = 0; i < n->n; i++) {
        long long x = 0;
        if (get_int(c, n->items[i], what, &x) == 0)
            v[i] = (int)x;
    }
    *count = n->n;
    return v;
}

int kiln__parse_duration(const char *s, bool strict, int64_t *ms)
{
    size_t len = strlen(s);
    if (len < 2)
        return -1;
    double mult;
    size_t unit_len = 1;
    if (len > 2 && strcmp(s + len - 2, "ms") == 0) {
        mult = 1, unit_len = 2;
    } else if (s[len - 1] == 's') {
        mult = 1000;
    } else if (s[len - 1] == 'm') {
        mult = 60000;
    } else if (s[len - 1] == 'h') {
        mult = 3600000;
    } else {
        return -1;
    }
    if (strict && (unit_len != 1 || mult != 1000))
        return -1;
    char num[64];
    if (len - unit_len >= sizeof num)
        return -1;
    memcpy(num, s, len - unit_len);
    num[len - unit_len] = '\0';
    for (const char *q = num; *q; q++)
        if (!isdigit((unsigned char)*q) && *q != '.')
            return -1;
    char *end;
    double v = strtod(num, &end);
    if (*end || !isfinite(v) || v < 0 || v * mult > 9.0e15)
        return -1;
    *ms = (int64_t)llround(v * mult);
    return 0;
}

static int64_t get_duration(struct ctx *c, const kiln__ynode *n, const char *what, bool strict)
{
    int64_t ms = 0;
    if (n->kind != KILN__Y_SCALAR || kiln__parse_duration(n->value, strict, &ms) != 0) {
        err(c, n, "%s: expected a duration in seconds with an 's' suffix, such as \"30s\" or \"1.5s\"%s, got %s%s%s",
            what, strict ? "" : " (or ms, m, h)",
            n->kind == KILN__Y_SCALAR ? "'" : kiln__ykind_name(n),
            n->kind == KILN__Y_SCALAR ? n->value : "", n->kind == KILN__Y_SCALAR ? "'" : "");
        return 0;
    }
    return ms;
}

/* Look a key up in a field table; report unknown keys with a suggestion. */
static const struct field *find_field(struct ctx *c, const struct field *table,
                                      const kiln__ynode *key, const char *where)
{
    char canon[128];
    canon_key(key->value, canon, sizeof canon);
    for (const struct field *f = table; f->name; f++)
        if (strcmp(f->name, canon) == 0)
            return f;
    const char *names[80];
    size_t k = 0;
    for (const struct field *f = table; f->name && k + 1 < 80; f++)
        names[k++] = f->name;
    names[k] = NULL;
    const char *hint = kiln__did_you_mean(canon, names);
    if (hint)
        err(c, key, "unknown field \"%s\" in %s (did you mean \"%s\"?)", key->value, where, hint);
    else
        err(c, key, "unknown field \"%s\" in %s", key->value, where);
    return NULL;
}

/* ---- steps ---------------------------------------------------------- */

enum step_slot {
    S_NAME, S_ARGS, S_ENV, S_ALLOW_FAILURE, S_ALLOW_CODES, S_DIR, S_ID, S_WAIT_FOR,
    S_ENTRYPOINT, S_SECRET_ENV, S_VOLUMES, S_TIMEOUT, S_SCRIPT, S_AUTOMAP, S_USES, S_WITH,
    S_RETRY, S_RESULTS
};

static const struct field step_fields[] = {
    {"name", F_STRING, S_NAME, NULL},
    {"args", F_STRLIST, S_ARGS, NULL},
    {"env", F_STRLIST, S_ENV, NULL},
    {"allowFailure", F_BOOL, S_ALLOW_FAILURE, NULL},
    {"allowExitCodes", F_INTLIST, S_ALLOW_CODES, NULL},
    {"dir", F_STRING, S_DIR, NULL},
    {"id", F_STRING, S_ID, NULL},
    {"waitFor", F_STRLIST, S_WAIT_FOR, NULL},
    {"entrypoint", F_STRING, S_ENTRYPOINT, NULL},
    {"secretEnv", F_STRLIST, S_SECRET_ENV, NULL},
    {"volumes", F_NODE, S_VOLUMES, NULL},
    {"timeout", F_DURATION, S_TIMEOUT, NULL},
    {"script", F_STRING, S_SCRIPT, NULL},
    {"automapSubstitutions", F_BOOL, S_AUTOMAP, NULL},
    {"uses", F_STRING, S_USES, NULL},
    {"with", F_NODE, S_WITH, NULL},
    {"retry", F_NODE, S_RETRY, NULL},
    {"results", F_NOTE, S_RESULTS, "step results are a Cloud Build preview field; kiln ignores it"},
    {NULL, 0, 0, NULL},
};

static void parse_retry(struct ctx *c, kiln__step *s, const kiln__ynode *n)
{
    kiln__retry *r = &s->retry;
    r->backoff_ms = 1000;
    r->factor = 2.0;
    if (kiln__ynode_is_null(n))
        return;
    if (n->kind != KILN__Y_MAP) {
        err(c, n, "%s: retry: expected a mapping such as {limit: 3, backoff: 2s}, got %s",
            s->label, kiln__ykind_name(n));
        return;
    }
    static const char *const known[] = {"limit", "backoff", "factor", "onExitCodes", NULL};
    for (size_t i = 0; i < n->n; i++) {
        const kiln__ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        char canon[64];
        canon_key(k->value, canon, sizeof canon);
        long long x;
        if (!strcmp(canon, "limit")) {
            if (get_int(c, v, "retry.limit", &x) == 0) {
                if (x < 0 || x > 100)
                    err(c, v, "retry.limit: expected 0 to 100, got %lld", x);
                else
                    r->limit = (int)x;
            }
        } else if (!strcmp(canon, "backoff")) {
            r->backoff_ms = get_duration(c, v, "retry.backoff", false);
        } else if (!strcmp(canon, "factor")) {
            char *end;
            double f = v->kind == KILN__Y_SCALAR ? strtod(v->value, &end) : 0;
            if (v->kind != KILN__Y_SCALAR || *end || !(f >= 1.0 && f <= 100.0))
                err(c, v, "retry.factor: expected a number from 1 to 100");
            else
                r->factor = f;
        } else if (!strcmp(canon, "onExitCodes")) {
            r->on_exit_codes = get_intlist(c, v, "retry.on_exit_codes", &r->n_codes);
        } else {
            const char *hint = kiln__did_you_mean(canon, known);
            err(c, k, "unknown field \"%s\" in retry%s%s%s", k->value, hint ? " (did you mean \"" : "",
                hint ? hint : "", hint ? "\"?)" : "");
        }
    }
}

/* A field of kiln's own: fine, unless the file must stay Cloud Build's. */
static void kiln_only(struct ctx *c, const kiln__ynode *key, const char *what)
{
    if (c->d->cloudbuild_strict)
        err(c, key, "%s: a field of kiln's own, which Cloud Build would reject (--cloudbuild-strict)",
            what);
}

static const struct field volume_fields[] = {
    {"name", F_STRING, 0, NULL},
    {"path", F_STRING, 1, NULL},
    {NULL, 0, 0, NULL},
};

/* [{name, path}, ...]; Cloud Build's rules are checked once the whole file
 * is read (kiln__volumes_check). */
static void parse_volumes(struct ctx *c, const kiln__ynode *n, const char *what, kiln__vollist *out)
{
    memset(out, 0, sizeof *out);
    if (kiln__ynode_is_null(n))
        return;
    if (n->kind != KILN__Y_SEQ) {
        err(c, n, "%s: expected a list of volumes such as [{name: cache, path: /cache}], got %s",
            what, kiln__ykind_name(n));
        return;
    }
    out->node = n;
    out->v = kiln__ydoc_alloc(&c->p->doc, (n->n ? n->n : 1) * sizeof *out->v);
    for (size_t i = 0; i < n->n; i++) {
        const kiln__ynode *it = n->items[i];
        if (it->kind != KILN__Y_MAP) {
            err(c, it, "%s: expected a volume such as {name: cache, path: /cache}, got %s", what,
                kiln__ykind_name(it));
            continue;
        }
        kiln__volume *v = &out->v[out->n++];
        v->node = it;
        v->name = v->path = "";
        for (size_t j = 0; j < it->n; j++) {
            const kiln__ynode *k = it->items[2 * j], *val = it->items[2 * j + 1];
            const struct field *f = find_field(c, volume_fields, k, "a volume");
            if (!f)
                continue;
            char vwhat[200];
            snprintf(vwhat, sizeof vwhat, "%s: %s", what, f->name);
            const char *str = get_string(c, val, vwhat);
            if (f->slot == 0) {
                v->name = str ? str : "";
                v->name_node = val;
            } else {
                v->path = str ? str : "";
                v->path_node = val;
            }
        }
    }
}

static void parse_step(struct ctx *c, kiln__step *s, const kiln__ynode *n, int index, bool fin)
{
    memset(s, 0, sizeof *s);
    s->index = index;
    s->is_finally = fin;
    s->node = n;
    s->automap = -1;
    s->retry.backoff_ms = 1000;
    s->retry.factor = 2.0;
    const char *list = fin ? "finally step" : "build step";
    char label[256];
    snprintf(label, sizeof label, "%s #%d", list, index);
    s->label = doc_strdup(c->p, label);
    if (n->kind != KILN__Y_MAP) {
        err(c, n, "%s: expected a mapping with name/args or uses/with, got %s", s->label,
            kiln__ykind_name(n));
        return;
    }
    /* The id first, so that every message names the step. */
    const kiln__ynode *idn = NULL;
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->items[2 * i]->value, "id") == 0)
            idn = n->items[2 * i + 1];
    }
    if (idn) {
        s->id = get_string(c, idn, "id");
        if (s->id) {
            snprintf(label, sizeof label, "%s #%d - \"%s\"", list, index, s->id);
            s->label = doc_strdup(c->p, label);
        }
    }
    const kiln__ynode *retry = NULL;
    bool runs_something = false; /* a field saying what to run, even a malformed one */
    for (size_t i = 0; i < n->n; i++) {
        const kiln__ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        const struct field *f = find_field(c, step_fields, k, s->label);
        if (!f)
            continue;
        bool what_to_run = f->slot == S_NAME || f->slot == S_ARGS || f->slot == S_SCRIPT ||
                           f->slot == S_ENTRYPOINT || f->slot == S_USES || f->slot == S_WITH;
        runs_something = runs_something || (what_to_run && f->slot != S_WITH);
        int errors_before = c->d->errors;
        char what[300];
        snprintf(what, sizeof what, "%s: %s", s->label, k->value);
        switch ((enum step_slot)f->slot) {
        case S_NAME:
            s->name = get_string(c, v, what);
            s->name_node = v;
            break;
        case S_ARGS:
            get_strlist(c, v, what, &s->args);
            break;
        case S_ENV:
            get_strlist(c, v, what, &s->env);
            for (size_t j = 0; j < s->env.n; j++)
                if (!strchr(s->env.v[j], '='))
                    err(c, s->env.node->items[j], "%s: env entry \"%s\" must be KEY=VALUE", s->label,
                        s->env.v[j]);
            break;
        case S_ALLOW_FAILURE:
            s->allow_failure = get_bool(c, v, what);
            break;
        case S_ALLOW_CODES:
            s->allow_exit_codes = get_intlist(c, v, what, &s->n_allow_codes);
            break;
        case S_DIR:
            s->dir = get_string(c, v, what);
            s->dir_node = v;
            break;
        case S_ID:
            break;
        case S_WAIT_FOR:
            get_strlist(c, v, what, &s->wait_for);
            break;
        case S_ENTRYPOINT:
            s->entrypoint = get_string(c, v, what);
            s->entrypoint_node = v;
            break;
        case S_SECRET_ENV:
            get_strlist(c, v, what, &s->secret_env);
            break;
        case S_VOLUMES:
            parse_volumes(c, v, what, &s->volumes);
            break;
        case S_TIMEOUT:
            s->timeout_ms = get_duration(c, v, what, true);
            break;
        case S_SCRIPT:
            s->script = get_string(c, v, what);
            break;
        case S_AUTOMAP:
            s->automap = get_bool(c, v, what);
            break;
        case S_USES:
            kiln_only(c, k, what);
            s->uses = get_string(c, v, what);
            break;
        case S_WITH:
            kiln_only(c, k, what);
            if (!kiln__ynode_is_null(v) && v->kind != KILN__Y_MAP)
                err(c, v, "%s: with: expected a mapping of the plugin's options, got %s", s->label,
                    kiln__ykind_name(v));
            else if (!kiln__ynode_is_null(v))
                s->with = v;
            break;
        case S_RETRY:
            kiln_only(c, k, what);
            retry = v;
            break;
        case S_RESULTS:
            note(c, k, "%s: %s", s->label, f->note);
            break;
        }
        if (what_to_run && c->d->errors > errors_before)
            s->invalid = true;
    }
    if (retry)
        parse_retry(c, s, retry);
    if (s->script && (s->args.n || s->entrypoint) && !s->uses) {
        err(c, n, "%s: script cannot be used together with args or entrypoint", s->label);
        s->invalid = true;
    }
    if (s->with && !s->uses)
        err(c, s->with, "%s: with: needs uses: to name the plugin that takes these options",
            s->label);
    if (!runs_something) {
        err(c, n, "%s: nothing to run: give name and args (Cloud Build), script, or uses (a plugin)",
            s->label);
        s->invalid = true;
    }
    char keybuf[64];
    if (!s->id)
        snprintf(keybuf, sizeof keybuf, "%s-%d", fin ? "finally" : "step", index);
    s->key = s->id ? s->id : doc_strdup(c->p, keybuf);
}

/* Cloud Build's waitFor and id rules: ids unique, "-" reserved, only
 * earlier steps may be named (so a valid file has no cycle). */
static void check_ids(struct ctx *c, kiln__step *steps, size_t n, kiln__step *earlier,
                      size_t n_earlier)
{
    for (size_t i = 0; i < n; i++) {
        kiln__step *s = &steps[i];
        if (s->id && strcmp(s->id, "-") == 0)
            err(c, kiln__ymap_get(s->node, "id"),
                "%s: the ID cannot be \"-\" which is reserved as a dependency for build steps "
                "that should run first",
                s->label);
        if (s->id) {
            for (size_t j = 0; j < n_earlier; j++)
                if (earlier[j].id && strcmp(earlier[j].id, s->id) == 0)
                    err(c, kiln__ymap_get(s->node, "id"), "%s: the ID is not unique", s->label);
            for (size_t j = 0; j < i; j++)
                if (steps[j].id && strcmp(steps[j].id, s->id) == 0)
                    err(c, kiln__ymap_get(s->node, "id"), "%s: the ID is not unique", s->label);
        }
        for (size_t w = 0; w < s->wait_for.n; w++) {
            const char *dep = s->wait_for.v[w];
            if (strcmp(dep, "-") == 0)
                continue;
            bool found = false;
            for (size_t j = 0; j < i && !found; j++)
                found = steps[j].id && strcmp(steps[j].id, dep) == 0;
            if (found)
                continue;
            bool later = false;
            for (size_t j = i; j < n && !later; j++)
                later = steps[j].id && strcmp(steps[j].id, dep) == 0;
            const kiln__ynode *at = s->wait_for.node->items[w];
            if (s->id)
                err(c, at, "build step #%d - \"%s\" depends on \"%s\", which has not been defined%s",
                    s->index, s->id, dep,
                    later ? " (only earlier steps can be named in waitFor)" : "");
            else
                err(c, at, "build step #%d depends on \"%s\", which has not been defined%s", s->index,
                    dep, later ? " (only earlier steps can be named in waitFor)" : "");
        }
    }
}

/* ---- options and top level ----------------------------------------- */

enum opt_slot {
    O_ENV, O_SECRET_ENV, O_VOLUMES, O_SUBST_OPTION, O_DYNAMIC, O_AUTOMAP, O_MAX_PARALLEL, O_NOTE
};

static const struct field option_fields[] = {
    {"env", F_STRLIST, O_ENV, NULL},
    {"secretEnv", F_STRLIST, O_SECRET_ENV, NULL},
    {"volumes", F_NODE, O_VOLUMES, NULL},
    {"substitutionOption", F_STRING, O_SUBST_OPTION, NULL},
    {"dynamicSubstitutions", F_BOOL, O_DYNAMIC, NULL},
    {"automapSubstitutions", F_BOOL, O_AUTOMAP, NULL},
    {"maxParallel", F_INT, O_MAX_PARALLEL, NULL},
    {"sourceProvenanceHash", F_NOTE, O_NOTE, "kiln does not compute source provenance hashes"},
    {"machineType", F_NOTE, O_NOTE, "steps run on this machine; machineType is ignored"},
    {"diskSizeGb", F_NOTE, O_NOTE, "steps use this machine's disk; diskSizeGb is ignored"},
    {"logStreamingOption", F_NOTE, O_NOTE, "logs stream to kiln's log sinks; logStreamingOption is ignored"},
    {"logging", F_NOTE, O_NOTE, "logs go to kiln's log sinks (--log-dir and others); logging is ignored"},
    {"defaultLogsBucketBehavior", F_NOTE, O_NOTE, "no logs bucket is used locally"},
    {"pool", F_NOTE, O_NOTE, "steps run on this machine, not in a worker pool"},
    {"workerPool", F_NOTE, O_NOTE, "steps run on this machine, not in a worker pool"},
    {"pubsubTopic", F_NOTE, O_NOTE, "kiln publishes no build notifications to Pub/Sub"},
    {"requestedVerifyOption", F_NOTE, O_NOTE, "kiln does not produce provenance attestations"},
    {"enableStructuredLogging", F_NOTE, O_NOTE, "kiln's JSON sinks are structured already"},
    {NULL, 0, 0, NULL},
};

static void parse_options(struct ctx *c, const kiln__ynode *n)
{
    kiln__options *o = &c->p->options;
    if (kiln__ynode_is_null(n))
        return;
    if (n->kind != KILN__Y_MAP) {
        err(c, n, "options: expected a mapping, got %s", kiln__ykind_name(n));
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        const kiln__ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        const struct field *f = find_field(c, option_fields, k, "options");
        if (!f)
            continue;
        char what[160];
        snprintf(what, sizeof what, "options.%s", k->value);
        long long x;
        switch ((enum opt_slot)f->slot) {
        case O_ENV:
            get_strlist(c, v, what, &o->env);
            for (size_t j = 0; j < o->env.n; j++)
                if (!strchr(o->env.v[j], '='))
                    err(c, o->env.node->items[j], "options.env entry \"%s\" must be KEY=VALUE",
                        o->env.v[j]);
            break;
        case O_SECRET_ENV:
            get_strlist(c, v, what, &o->secret_env);
            break;
        case O_VOLUMES:
            parse_volumes(c, v, what, &o->volumes);
            break;
        case O_SUBST_OPTION: {
            const char *s = get_string(c, v, what);
            if (!s)
                break;
            o->subst_mode_set = true;
            if (!strcmp(s, "MUST_MATCH"))
                o->subst_mode = KILN__MUST_MATCH;
            else if (!strcmp(s, "ALLOW_LOOSE"))
                o->subst_mode = KILN__ALLOW_LOOSE;
            else
                err(c, v, "%s: expected MUST_MATCH or ALLOW_LOOSE, got '%s'", what, s);
            break;
        }
        case O_DYNAMIC:
            o->dynamic_substitutions = get_bool(c, v, what);
            break;
        case O_AUTOMAP:
            o->automap_substitutions = get_bool(c, v, what);
            break;
        case O_MAX_PARALLEL:
            kiln_only(c, k, what);
            if (get_int(c, v, what, &x) == 0) {
                if (x < 1 || x > 4096)
                    err(c, v, "%s: expected 1 to 4096, got %lld", what, x);
                else
                    o->max_parallel = (int)x;
            }
            break;
        case O_NOTE:
            note(c, k, "options.%s: %s", k->value, f->note);
            break;
        }
    }
}

enum top_slot {
    T_STEPS, T_TIMEOUT, T_OPTIONS, T_SUBST, T_TAGS, T_IMAGES, T_FINALLY, T_AVAILABLE_SECRETS,
    T_NOTE
};

static const struct field top_fields[] = {
    {"steps", F_NODE, T_STEPS, NULL},
    {"timeout", F_DURATION, T_TIMEOUT, NULL},
    {"options", F_NODE, T_OPTIONS, NULL},
    {"substitutions", F_NODE, T_SUBST, NULL},
    {"tags", F_STRLIST, T_TAGS, NULL},
    {"images", F_STRLIST, T_IMAGES, NULL},
    {"finally", F_NODE, T_FINALLY, NULL},
    {"availableSecrets", F_NODE, T_AVAILABLE_SECRETS, NULL},
    {"secrets", F_NOTE, T_NOTE, "KMS-encrypted secrets cannot be decrypted locally; use availableSecrets"},
    {"queueTtl", F_NOTE, T_NOTE, "builds start at once locally; queueTtl is ignored"},
    {"logsBucket", F_NOTE, T_NOTE, "logs go to kiln's log sinks; logsBucket is ignored"},
    {"serviceAccount", F_NOTE, T_NOTE, "steps run with this machine's credentials; serviceAccount is ignored"},
    {"artifacts", F_NOTE, T_NOTE, "artifacts are not uploaded by kiln"},
    {NULL, 0, 0, NULL},
};

static void warn(struct ctx *c, const kiln__ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct ctx *c, const kiln__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln__diag_vat(c->d, c->d->cloudbuild_strict ? KILN__DIAG_ERROR : KILN__DIAG_WARNING,
                   c->p->file, at, fmt, ap);
    va_end(ap);
}

/* Cloud Build's size limits (cloud-build-local's validator). kiln runs
 * bigger builds, so these are warnings: the file would fail on Cloud Build. */
static void check_limits(struct ctx *c, const kiln__ynode *steps_node)
{
    kiln__pipeline *p = c->p;
    if (p->n_steps > 100)
        warn(c, steps_node, "Cloud Build would reject this build: %zu steps, at most 100 are allowed",
             p->n_steps);
    for (size_t i = 0; i < p->n_steps; i++) {
        const kiln__step *s = &p->steps[i];
        if (s->name && strlen(s->name) > 1000)
            warn(c, s->name_node, "Cloud Build would reject %s: the name is longer than 1000 characters",
                 s->label);
        if (s->args.n > 100)
            warn(c, s->args.node, "Cloud Build would reject %s: %zu args, at most 100 are allowed",
                 s->label, s->args.n);
        for (size_t k = 0; k < s->args.n; k++)
            if (strlen(s->args.v[k]) > 4000)
                warn(c, s->args.node->items[k],
                     "Cloud Build would reject %s: an arg is longer than 4000 characters", s->label);
        if (s->env.n > 100)
            warn(c, s->env.node, "Cloud Build would reject %s: %zu env entries, at most 100 are allowed",
                 s->label, s->env.n);
        if (s->dir && strlen(s->dir) > 1000)
            warn(c, s->dir_node, "Cloud Build would reject %s: dir is longer than 1000 characters",
                 s->label);
    }
    if (p->tags.n > 64)
        warn(c, p->tags.node, "Cloud Build would reject this build: %zu tags, at most 64 are allowed",
             p->tags.n);
    if (p->substitutions && p->substitutions->n > 100)
        warn(c, p->substitutions,
             "Cloud Build would reject this build: %zu substitutions, at most 100 are allowed",
             p->substitutions->n);
    for (size_t i = 0; p->substitutions && i < p->substitutions->n; i++) {
        const kiln__ynode *k = p->substitutions->items[2 * i], *v = p->substitutions->items[2 * i + 1];
        if (k->len > 100)
            warn(c, k, "Cloud Build would reject this substitution: the key is longer than 100 bytes");
        if (v->kind == KILN__Y_SCALAR && v->len > 4000)
            warn(c, v, "Cloud Build would reject this substitution: the value is longer than 4000 bytes");
    }
}

static kiln__step *parse_step_list(struct ctx *c, const kiln__ynode *n, const char *what,
                                   bool fin, size_t *count)
{
    *count = 0;
    if (kiln__ynode_is_null(n))
        return NULL;
    if (n->kind != KILN__Y_SEQ) {
        err(c, n, "%s: expected a list of steps, got %s", what, kiln__ykind_name(n));
        return NULL;
    }
    kiln__step *steps = kiln__xcalloc(n->n ? n->n : 1, sizeof *steps);
    for (size_t i = 0; i < n->n; i++)
        parse_step(c, &steps[i], n->items[i], (int)i, fin);
    *count = n->n;
    return steps;
}

static void parse_top(struct ctx *c, const kiln__ynode *root)
{
    kiln__pipeline *p = c->p;
    if (!root) {
        kiln__diag_at(c->d, KILN__DIAG_ERROR, p->file, NULL,
                      "the file is empty; a pipeline needs at least 'steps:'");
        return;
    }
    if (root->kind != KILN__Y_MAP) {
        err(c, root, "expected a mapping with 'steps:' at the top of the file, got %s",
            kiln__ykind_name(root));
        return;
    }
    const kiln__ynode *steps = NULL, *fin = NULL;
    for (size_t i = 0; i < root->n; i++) {
        const kiln__ynode *k = root->items[2 * i], *v = root->items[2 * i + 1];
        const struct field *f = find_field(c, top_fields, k, "the build");
        if (!f)
            continue;
        switch ((enum top_slot)f->slot) {
        case T_STEPS:
            steps = v;
            break;
        case T_TIMEOUT:
            p->timeout_ms = get_duration(c, v, "timeout", true);
            break;
        case T_OPTIONS:
            parse_options(c, v);
            break;
        case T_SUBST:
            if (!kiln__ynode_is_null(v) && v->kind != KILN__Y_MAP)
                err(c, v, "substitutions: expected a mapping of _KEY: value, got %s",
                    kiln__ykind_name(v));
            else if (!kiln__ynode_is_null(v))
                p->substitutions = v;
            if (p->substitutions)
                for (size_t j = 0; j < v->n; j++) {
                    const kiln__ynode *val = v->items[2 * j + 1];
                    if (val->kind != KILN__Y_SCALAR)
                        err(c, val, "substitutions.%s: expected a string, got %s",
                            v->items[2 * j]->value, kiln__ykind_name(val));
                }
            break;
        case T_TAGS:
            get_strlist(c, v, "tags", &p->tags);
            break;
        case T_IMAGES:
            get_strlist(c, v, "images", &p->images);
            break;
        case T_FINALLY:
            kiln_only(c, k, k->value);
            fin = v;
            break;
        case T_AVAILABLE_SECRETS:
            p->available_secrets = v;
            break;
        case T_NOTE:
            note(c, k, "%s: %s", k->value, f->note);
            break;
        }
    }
    if (!steps) {
        err(c, root, "the build has no 'steps:' (at least one step is required)");
        return;
    }
    p->steps = parse_step_list(c, steps, "steps", false, &p->n_steps);
    if (steps->kind == KILN__Y_SEQ && p->n_steps == 0)
        err(c, steps, "steps: the list is empty (at least one step is required)");
    p->finally = parse_step_list(c, fin, "finally", true, &p->n_finally);
    check_ids(c, p->steps, p->n_steps, NULL, 0);
    check_ids(c, p->finally, p->n_finally, p->steps, p->n_steps);
    kiln__volumes_check(c->d, p);
    check_limits(c, steps);
}

int kiln__pipeline_parse(kiln__pipeline *p, const char *file, const char *text, size_t len,
                         kiln__diag *d)
{
    memset(p, 0, sizeof *p);
    kiln__buf e = KILN__BUF_INIT;
    int rc = kiln__ydoc_parse(&p->doc, file, text, len, &e);
    p->file = p->doc.file;
    if (rc) {
        kiln__diag_add_raw(d, e.buf, 1);
        kiln__buf_release(&e);
        return rc;
    }
    kiln__buf_release(&e);
    struct ctx c = {p, d};
    parse_top(&c, p->doc.root);
    return 0;
}

int kiln__pipeline_load(kiln__pipeline *p, const char *file, kiln__diag *d)
{
    memset(p, 0, sizeof *p);
    kiln__buf e = KILN__BUF_INIT;
    int rc = kiln__ydoc_load(&p->doc, file, &e);
    p->file = p->doc.file ? p->doc.file : file;
    if (rc) {
        kiln__diag_add_raw(d, e.buf, 1);
        kiln__buf_release(&e);
        return rc;
    }
    kiln__buf_release(&e);
    struct ctx c = {p, d};
    parse_top(&c, p->doc.root);
    return 0;
}

void kiln__pipeline_free(kiln__pipeline *p)
{
    free(p->steps);
    free(p->finally);
    kiln__ydoc_free(&p->doc);
    memset(p, 0, sizeof *p);
}

kiln__step *kiln__pipeline_find(const kiln__pipeline *p, const char *id)
{
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].id && strcmp(p->steps[i].id, id) == 0)
            return &p->steps[i];
    return NULL;
}
