/* SPDX-License-Identifier: MIT */
/* Option schemas: validate and fill plugin config structs; see config_map.h. */
#include "config_map.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json_string.h"
#include "pipeline.h"

const char *kiln__opt_type_name(kiln_opt_type t)
{
    switch (t) {
    case KILN_OPT_STRING:
        return "string";
    case KILN_OPT_INT:
        return "integer";
    case KILN_OPT_BOOL:
        return "boolean";
    case KILN_OPT_DURATION:
        return "duration";
    case KILN_OPT_ENUM:
        return "enum";
    case KILN_OPT_STRING_LIST:
        return "list of strings";
    case KILN_OPT_STRING_MAP:
        return "map of strings";
    case KILN_OPT_JSON:
        return "any";
    }
    return "?";
}

static void *keep(kiln__config *c, void *p)
{
    c->allocs = kiln__xrealloc(c->allocs, (c->n_allocs + 1) * sizeof *c->allocs);
    c->allocs[c->n_allocs++] = p;
    return p;
}

void kiln__config_free(kiln__config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_allocs; i++)
        free(c->allocs[i]);
    free(c->allocs);
    free(c->data);
    free(c);
}

struct fill {
    const kiln_plugin *desc;
    kiln__diag *d;
    const char *file;
    const char *prefix;
    kiln__expand_fn expand;
    void *ctx;
    kiln__config *c;
    int errors;
};

static void bad(struct fill *f, const kiln__ynode *at, const kiln_option *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(struct fill *f, const kiln__ynode *at, const kiln_option *o, const char *fmt, ...)
{
    kiln__buf m = KILN__BUF_INIT;
    kiln__buf_addf(&m, "%soption '%s' of plugin '%s': ", f->prefix, o->name, f->desc->name);
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(&m, fmt, ap);
    va_end(ap);
    kiln__diag_at(f->d, KILN__DIAG_ERROR, f->file, at, "%s", m.buf);
    kiln__buf_release(&m);
    f->errors++;
}

/* Expanded copy of a scalar, owned by the config. NULL after an error. */
static char *scalar_text(struct fill *f, const kiln_option *o, const kiln__ynode *n)
{
    if (!f->expand || (o->flags & KILN_OPT_NO_SUBST))
        return keep(f->c, kiln__xstrdup(n->value));
    kiln__buf out = KILN__BUF_INIT;
    if (f->expand(f->ctx, n, n->value, &out) != 0) {
        kiln__buf_release(&out);
        f->errors++;
        return NULL;
    }
    return keep(f->c, kiln__buf_detach(&out));
}

static void *slot(struct fill *f, const kiln_option *o)
{
    if (o->offset == KILN_OPT_NO_OFFSET || o->offset >= f->desc->config_size)
        return NULL;
    return (char *)f->c->data + o->offset;
}

static int set_option(struct fill *f, const kiln_option *o, const kiln__ynode *n)
{
    void *dst = slot(f, o);
    bool scalar = n->kind == KILN__Y_SCALAR;
    switch (o->type) {
    case KILN_OPT_STRING: {
        if (!scalar) {
            bad(f, n, o, "expected a string, got %s", kiln__ykind_name(n));
            return -1;
        }
        char *s = scalar_text(f, o, n);
        if (!s)
            return -1;
        if (dst)
            *(const char **)dst = s;
        return 0;
    }
    case KILN_OPT_INT: {
        char *end;
        errno = 0;
        long long v = scalar ? strtoll(n->value, &end, 10) : 0;
        if (!scalar || !*n->value || *end || errno) {
            bad(f, n, o, "expected an integer, got %s%s%s", scalar ? "'" : kiln__ykind_name(n),
                scalar ? n->value : "", scalar ? "'" : "");
            return -1;
        }
        if (o->min <= o->max && (v < o->min || v > o->max)) {
            bad(f, n, o, "expected %lld to %lld, got %lld", (long long)o->min, (long long)o->max, v);
            return -1;
        }
        if (dst)
            *(int64_t *)dst = v;
        return 0;
    }
    case KILN_OPT_BOOL: {
        const char *v = scalar ? n->value : "";
        bool b;
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes"))
            b = true;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no"))
            b = false;
        else {
            bad(f, n, o, "expected true or false, got %s%s%s", scalar ? "'" : kiln__ykind_name(n),
                scalar ? v : "", scalar ? "'" : "");
            return -1;
        }
        if (dst)
            *(bool *)dst = b;
        return 0;
    }
    case KILN_OPT_DURATION: {
        char *s = scalar ? scalar_text(f, o, n) : NULL;
        int64_t ms;
        if (!scalar || !s || kiln__parse_duration(s, false, &ms) != 0) {
            if (scalar && !s)
                return -1;
            bad(f, n, o, "expected a duration such as \"90s\", \"1.5s\", \"10m\" or \"250ms\", got %s%s%s",
                scalar ? "'" : kiln__ykind_name(n), scalar ? n->value : "", scalar ? "'" : "");
            return -1;
        }
        if (o->min <= o->max && (ms < o->min || ms > o->max)) {
            bad(f, n, o, "expected between %lldms and %lldms, got %lldms", (long long)o->min,
                (long long)o->max, (long long)ms);
            return -1;
        }
        if (dst)
            *(int64_t *)dst = ms;
        return 0;
    }
    case KILN_OPT_ENUM: {
        char *s = scalar ? scalar_text(f, o, n) : NULL;
        if (s)
            for (int i = 0; o->choices && o->choices[i]; i++)
                if (strcmp(o->choices[i], s) == 0) {
                    if (dst)
                        *(int *)dst = i;
                    return 0;
                }
        if (scalar && !s)
            return -1;
        kiln__buf ch = KILN__BUF_INIT;
        for (int i = 0; o->choices && o->choices[i]; i++)
            kiln__buf_addf(&ch, "%s'%s'", i ? ", " : "", o->choices[i]);
        bad(f, n, o, "expected one of %s, got %s%s%s", ch.buf, scalar ? "'" : kiln__ykind_name(n),
            scalar ? n->value : "", scalar ? "'" : "");
        kiln__buf_release(&ch);
        return -1;
    }
    case KILN_OPT_STRING_LIST: {
        /* A single string is a list of one (plugin options; Cloud Build's
         * own fields keep Cloud Build's stricter rule). */
        bool one = n->kind == KILN__Y_SCALAR;
        if (n->kind != KILN__Y_SEQ && !one) {
            bad(f, n, o, "expected a list of strings such as ['a', 'b'], got %s", kiln__ykind_name(n));
            return -1;
        }
        size_t count = one ? 1 : n->n;
        const char **v = keep(f->c, kiln__xcalloc(count + 1, sizeof *v));
        int rc = 0;
        for (size_t i = 0; i < count; i++) {
            const kiln__ynode *it = one ? n : n->items[i];
            if (it->kind != KILN__Y_SCALAR) {
                bad(f, it, o, "expected a string in the list, got %s", kiln__ykind_name(it));
                rc = -1;
                continue;
            }
            v[i] = scalar_text(f, o, it);
            if (!v[i])
                rc = -1;
        }
        kiln_strv *sv = keep(f->c, kiln__xcalloc(1, sizeof *sv));
        sv->n = count;
        sv->v = v;
        if (dst)
            *(const kiln_strv **)dst = sv;
        return rc;
    }
    case KILN_OPT_STRING_MAP: {
        if (n->kind != KILN__Y_MAP) {
            bad(f, n, o, "expected a mapping of strings such as {KEY: value}, got %s",
                kiln__ykind_name(n));
            return -1;
        }
        const char **k = keep(f->c, kiln__xcalloc(n->n + 1, sizeof *k));
        const char **v = keep(f->c, kiln__xcalloc(n->n + 1, sizeof *v));
        int rc = 0;
        for (size_t i = 0; i < n->n; i++) {
            const kiln__ynode *val = n->items[2 * i + 1];
            k[i] = n->items[2 * i]->value;
            if (val->kind != KILN__Y_SCALAR) {
                bad(f, val, o, "'%s': expected a string, got %s", k[i], kiln__ykind_name(val));
                rc = -1;
                continue;
            }
            v[i] = scalar_text(f, o, val);
            if (!v[i])
                rc = -1;
        }
        kiln_kvv *kv = keep(f->c, kiln__xcalloc(1, sizeof *kv));
        kv->n = n->n;
        kv->keys = k;
        kv->values = v;
        if (dst)
            *(const kiln_kvv **)dst = kv;
        return rc;
    }
    case KILN_OPT_JSON: {
        char *json = keep(f->c, kiln__ynode_to_json(n));
        if (dst)
            *(const char **)dst = json;
        return 0;
    }
    }
    return -1;
}

static const kiln_strv empty_strv = {0, NULL};
static const kiln_kvv empty_kvv = {0, NULL, NULL};

int kiln__config_fill(const kiln_plugin *desc, const kiln__ynode *with, kiln__diag *d,
                      const char *file, const kiln__ynode *step_node, const char *prefix,
                      kiln__expand_fn expand, void *ctx, void *plugin_data,
                      kiln__config **out)
{
    kiln__config *c = kiln__xcalloc(1, sizeof *c);
    c->size = desc->config_size;
    c->data = kiln__xcalloc(1, desc->config_size ? desc->config_size : 1);
    struct fill f = {desc, d, file, prefix ? prefix : "", expand, ctx, c, 0};
    const kiln_option *opts = desc->options;
    size_t n_opts = 0;
    while (opts && opts[n_opts].name)
        n_opts++;

    /* Unknown keys first, with a suggestion. */
    for (size_t i = 0; with && i < with->n; i++) {
        const kiln__ynode *k = with->items[2 * i];
        bool known = false;
        for (size_t j = 0; j < n_opts && !known; j++)
            known = strcmp(opts[j].name, k->value) == 0;
        if (known)
            continue;
        const char **names = kiln__xcalloc(n_opts + 1, sizeof *names);
        for (size_t j = 0; j < n_opts; j++)
            names[j] = opts[j].name;
        const char *hint = kiln__did_you_mean(k->value, names);
        kiln__buf all = KILN__BUF_INIT;
        for (size_t j = 0; j < n_opts; j++)
            kiln__buf_addf(&all, "%s%s", j ? ", " : "", opts[j].name);
        if (hint)
            kiln__diag_at(d, KILN__DIAG_ERROR, file, k,
                          "%splugin '%s' has no option '%s' (did you mean '%s'?)", f.prefix,
                          desc->name, k->value, hint);
        else
            kiln__diag_at(d, KILN__DIAG_ERROR, file, k, "%splugin '%s' has no option '%s' (it takes: %s)",
                          f.prefix, desc->name, k->value, n_opts ? all.buf : "no options");
        kiln__buf_release(&all);
        free(names);
        f.errors++;
    }

    for (size_t j = 0; j < n_opts; j++) {
        const kiln_option *o = &opts[j];
        void *dst = slot(&f, o);
        if (dst && o->type == KILN_OPT_STRING_LIST)
            *(const kiln_strv **)dst = &empty_strv;
        if (dst && o->type == KILN_OPT_STRING_MAP)
            *(const kiln_kvv **)dst = &empty_kvv;
        const kiln__ynode *v = kiln__ymap_get(with, o->name);
        if (v && kiln__ynode_is_null(v) && o->type != KILN_OPT_STRING)
            v = NULL;
        if (v) {
            if (o->flags & KILN_OPT_DEPRECATED)
                kiln__diag_at(d, KILN__DIAG_WARNING, file, v, "%soption '%s' of plugin '%s' is deprecated",
                              f.prefix, o->name, desc->name);
            set_option(&f, o, v);
        } else if (o->default_value) {
            kiln__ynode def = {0};
            def.kind = KILN__Y_SCALAR;
            def.value = o->default_value;
            def.len = strlen(o->default_value);
            def.line = with ? with->line : step_node ? step_node->line : 0;
            def.col = with ? with->col : step_node ? step_node->col : 0;
            kiln_option plain = *o;
            plain.flags |= KILN_OPT_NO_SUBST;
            set_option(&f, &plain, &def);
        } else if (o->flags & KILN_OPT_REQUIRED) {
            kiln__diag_at(d, KILN__DIAG_ERROR, file, with ? with : step_node,
                          "%splugin '%s' needs option '%s' (%s): %s", f.prefix, desc->name, o->name,
                          kiln__opt_type_name(o->type), o->description ? o->description : "");
            f.errors++;
        }
    }
    if (!f.errors && desc->validate) {
        const kiln__ynode *saved_with = d->with, *saved_step = d->step;
        const char *saved_file = d->file, *saved_prefix = d->prefix;
        d->with = with;
        d->step = step_node;
        d->file = file;
        d->prefix = f.prefix;
        int before = d->errors;
        int rc = desc->validate(plugin_data, c->data, d);
        if (rc && d->errors == before)
            kiln__diag_at(d, KILN__DIAG_ERROR, file, with ? with : step_node,
                          "%splugin '%s' rejected its options: %s", f.prefix, desc->name,
                          kiln__strerror(rc));
        f.errors += d->errors - before + (rc && d->errors == before);
        d->with = saved_with;
        d->step = saved_step;
        d->file = saved_file;
        d->prefix = saved_prefix;
    }
    if (f.errors) {
        kiln__config_free(c);
        return KILN_ECONFIG;
    }
    *out = c;
    return 0;
}

static bool looks_number(const char *s)
{
    if (!*s)
        return false;
    char *end;
    strtod(s, &end);
    return *end == '\0' && strspn(s, "+-0123456789.eE") == strlen(s);
}

static cJSON *node_json(const kiln__ynode *n)
{
    if (!n)
        return cJSON_CreateNull();
    switch (n->kind) {
    case KILN__Y_SCALAR:
        if (!n->quoted) {
            if (kiln__ynode_is_null(n))
                return cJSON_CreateNull();
            if (!strcmp(n->value, "true"))
                return cJSON_CreateTrue();
            if (!strcmp(n->value, "false"))
                return cJSON_CreateFalse();
            if (looks_number(n->value))
                return cJSON_CreateRaw(n->value);
        }
        return cJSON_CreateString(n->value);
    case KILN__Y_SEQ: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n->n; i++)
            cJSON_AddItemToArray(a, node_json(n->items[i]));
        return a;
    }
    case KILN__Y_MAP: {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < n->n; i++)
            cJSON_AddItemToObject(o, n->items[2 * i]->value, node_json(n->items[2 * i + 1]));
        return o;
    }
    }
    return cJSON_CreateNull();
}

char *kiln__ynode_to_json(const kiln__ynode *n)
{
    cJSON *j = node_json(n);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return kiln__json_take(s);
}

char *kiln__json_take(char *printed)
{
    char *text = kp_utf8_sanitize(printed ? printed : "null", printed ? strlen(printed) : 4, NULL);
    cJSON_free(printed);
    if (!text)
        abort();
    return text;
}

char *kiln__config_to_json(const kiln_plugin *desc, const kiln__config *c)
{
    cJSON *o = cJSON_CreateObject();
    for (const kiln_option *opt = desc->options; opt && opt->name; opt++) {
        if (opt->offset == KILN_OPT_NO_OFFSET || opt->offset >= c->size)
            continue;
        const void *p = (const char *)c->data + opt->offset;
        bool secret = opt->flags & KILN_OPT_SECRET;
        cJSON *v = NULL;
        switch (opt->type) {
        case KILN_OPT_STRING: {
            const char *s = *(const char *const *)p;
            v = s ? cJSON_CreateString(secret ? "********" : s) : cJSON_CreateNull();
            break;
        }
        case KILN_OPT_JSON: {
            const char *s = *(const char *const *)p;
            v = s ? (secret ? cJSON_CreateString("********") : cJSON_Parse(s)) : cJSON_CreateNull();
            break;
        }
        case KILN_OPT_INT:
        case KILN_OPT_DURATION:
            v = cJSON_CreateNumber((double)*(const int64_t *)p);
            break;
        case KILN_OPT_BOOL:
            v = cJSON_CreateBool(*(const bool *)p);
            break;
        case KILN_OPT_ENUM: {
            int i = *(const int *)p;
            v = cJSON_CreateString(opt->choices ? opt->choices[i] : "");
            break;
        }
        case KILN_OPT_STRING_LIST: {
            const kiln_strv *sv = *(const kiln_strv *const *)p;
            v = cJSON_CreateArray();
            for (size_t i = 0; sv && i < sv->n; i++)
                cJSON_AddItemToArray(v, cJSON_CreateString(secret ? "********" : sv->v[i] ? sv->v[i] : ""));
            break;
        }
        case KILN_OPT_STRING_MAP: {
            const kiln_kvv *kv = *(const kiln_kvv *const *)p;
            v = cJSON_CreateObject();
            for (size_t i = 0; kv && i < kv->n; i++)
                cJSON_AddItemToObject(v, kv->keys[i],
                                      cJSON_CreateString(secret ? "********" : kv->values[i] ? kv->values[i] : ""));
            break;
        }
        }
        cJSON_AddItemToObject(o, opt->name, v ? v : cJSON_CreateNull());
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return kiln__json_take(s);
}
