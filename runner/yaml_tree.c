/* SPDX-License-Identifier: MIT */
/* libyaml events folded into a kiln__ynode tree; contracts in yaml_tree.h. */
#include "yaml_tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <kiln/errors.h>

#include "buf.h"

/* A bump allocator: nodes and strings of one document, freed together. */
struct kiln__yarena {
    struct kiln__yarena *next;
    size_t used, cap;
    char mem[];
};

static void *arena_alloc(kiln__ydoc *doc, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct kiln__yarena *a = doc->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        struct kiln__yarena *b = kiln__xmalloc(sizeof *b + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a;
        doc->arena = a = b;
    }
    void *p = a->mem + a->used;
    a->used += n;
    return p;
}

static char *arena_strndup(kiln__ydoc *doc, const char *s, size_t n)
{
    char *p = arena_alloc(doc, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct anchor {
    char *name;
    kiln__ynode *node;
};

struct builder {
    kiln__ydoc *doc;
    yaml_parser_t parser;
    struct anchor *anchors;
    size_t n_anchors, cap_anchors;
    kiln__buf *err;
    int depth;
};

#define MAX_DEPTH 200

static void add_anchor(struct builder *b, const char *name, kiln__ynode *node)
{
    if (!name)
        return;
    if (b->n_anchors == b->cap_anchors) {
        b->cap_anchors = b->cap_anchors ? b->cap_anchors * 2 : 8;
        b->anchors = kiln__xrealloc(b->anchors, b->cap_anchors * sizeof *b->anchors);
    }
    b->anchors[b->n_anchors].name = kiln__xstrdup(name);
    b->anchors[b->n_anchors].node = node;
    b->n_anchors++;
}

static kiln__ynode *find_anchor(struct builder *b, const char *name)
{
    for (size_t i = b->n_anchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0)
            return b->anchors[i].node;
    return NULL;
}

static int fail_at(struct builder *b, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct builder *b, int line, int col, const char *fmt, ...)
{
    kiln__buf_addf(b->err, "%s:%d:%d: error: ", b->doc->file, line, col);
    va_list ap;
    va_start(ap, fmt);
    kiln__buf_vaddf(b->err, fmt, ap);
    va_end(ap);
    kiln__buf_addch(b->err, '\n');
    return KILN_ECONFIG;
}

static int parse_error(struct builder *b)
{
    yaml_parser_t *p = &b->parser;
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->context)
        return fail_at(b, line, col, "invalid YAML: %s %s (line %d)", p->problem ? p->problem : "",
                       p->context, (int)p->context_mark.line + 1);
    return fail_at(b, line, col, "invalid YAML: %s", p->problem ? p->problem : "parse error");
}

static kiln__ynode *new_node(struct builder *b, kiln__ykind kind, const yaml_mark_t *m)
{
    kiln__ynode *n = arena_alloc(b->doc, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static int parse_node(struct builder *b, yaml_event_t *ev, kiln__ynode **out);

/* Collect children until the matching end event. */
static int parse_children(struct builder *b, kiln__ynode *n, yaml_event_type_t end)
{
    size_t cap = 0;
    kiln__ynode **tmp = NULL;
    size_t count = 0;
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&b->parser, &ev)) {
            rc = parse_error(b);
            break;
        }
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        kiln__ynode *child = NULL;
        rc = parse_node(b, &ev, &child);
        yaml_event_delete(&ev);
        if (rc)
            break;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            tmp = kiln__xrealloc(tmp, cap * sizeof *tmp);
        }
        tmp[count++] = child;
    }
    if (!rc) {
        n->items = arena_alloc(b->doc, (count ? count : 1) * sizeof *tmp);
        if (count)
            memcpy(n->items, tmp, count * sizeof *tmp);
        n->n = n->kind == KILN__Y_MAP ? count / 2 : count;
    }
    free(tmp);
    if (rc || n->kind != KILN__Y_MAP)
        return rc;
    /* Keys must be scalars and unique. */
    for (size_t i = 0; i < n->n; i++) {
        kiln__ynode *k = n->items[2 * i];
        if (k->kind != KILN__Y_SCALAR)
            return fail_at(b, k->line, k->col, "a mapping key must be a string, not %s",
                           kiln__ykind_name(k));
        for (size_t j = 0; j < i; j++)
            if (strcmp(n->items[2 * j]->value, k->value) == 0)
                return fail_at(b, k->line, k->col, "duplicate key '%s' (first at line %d)",
                               k->value, n->items[2 * j]->line);
    }
    return 0;
}

static int parse_node(struct builder *b, yaml_event_t *ev, kiln__ynode **out)
{
    const yaml_mark_t *m = &ev->start_mark;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        kiln__ynode *n = find_anchor(b, (const char *)ev->data.alias.anchor);
        if (!n)
            return fail_at(b, (int)m->line + 1, (int)m->column + 1, "unknown alias '*%s'",
                           (const char *)ev->data.alias.anchor);
        *out = n;
        return 0;
    }
    case YAML_SCALAR_EVENT: {
        kiln__ynode *n = new_node(b, KILN__Y_SCALAR, m);
        n->value = arena_strndup(b->doc, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->len = ev->data.scalar.length;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        add_anchor(b, (const char *)ev->data.scalar.anchor, n);
        *out = n;
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (++b->depth > MAX_DEPTH)
            return fail_at(b, (int)m->line + 1, (int)m->column + 1,
                           "nesting deeper than %d levels", MAX_DEPTH);
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        kiln__ynode *n = new_node(b, seq ? KILN__Y_SEQ : KILN__Y_MAP, m);
        const char *anchor = (const char *)(seq ? ev->data.sequence_start.anchor
                                                : ev->data.mapping_start.anchor);
        add_anchor(b, anchor, n);
        int rc = parse_children(b, n, seq ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT);
        b->depth--;
        *out = n;
        return rc;
    }
    default:
        return fail_at(b, (int)m->line + 1, (int)m->column + 1, "unexpected YAML event");
    }
}

int kiln__ydoc_parse(kiln__ydoc *doc, const char *file, const char *text, size_t len,
                     kiln__buf *err)
{
    memset(doc, 0, sizeof *doc);
    doc->file = arena_strndup(doc, file, strlen(file));
    struct builder b = {.doc = doc, .err = err};
    if (!yaml_parser_initialize(&b.parser))
        return KILN_ENOMEM;
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    int rc = 0;
    bool in_doc = false, done = false;
    while (!done && !rc) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&b.parser, &ev)) {
            rc = parse_error(&b);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (doc->root || in_doc)
                rc = fail_at(&b, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                             "more than one YAML document; a pipeline file holds one");
            in_doc = true;
            break;
        case YAML_DOCUMENT_END_EVENT:
            in_doc = false;
            break;
        default:
            rc = parse_node(&b, &ev, &doc->root);
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&b.parser);
    for (size_t i = 0; i < b.n_anchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    return rc;
}

int kiln__ydoc_load(kiln__ydoc *doc, const char *file, kiln__buf *err)
{
    memset(doc, 0, sizeof *doc);
    FILE *f = fopen(file, "rb");
    if (!f) {
        int e = errno;
        kiln__buf_addf(err, "%s: error: cannot open pipeline file: %s\n", file, strerror(e));
        return -e;
    }
    kiln__buf text = KILN__BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kiln__buf_add(&text, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        kiln__buf_release(&text);
        kiln__buf_addf(err, "%s: error: cannot read pipeline file\n", file);
        return KILN_EIO;
    }
    int rc = kiln__ydoc_parse(doc, file, text.buf, text.len, err);
    kiln__buf_release(&text);
    return rc;
}

void *kiln__ydoc_alloc(kiln__ydoc *doc, size_t n)
{
    void *p = arena_alloc(doc, n);
    memset(p, 0, n);
    return p;
}

char *kiln__ydoc_strdup(kiln__ydoc *doc, const char *s)
{
    return arena_strndup(doc, s, strlen(s));
}

void kiln__ydoc_free(kiln__ydoc *doc)
{
    struct kiln__yarena *a = doc->arena;
    while (a) {
        struct kiln__yarena *next = a->next;
        free(a);
        a = next;
    }
    memset(doc, 0, sizeof *doc);
}

kiln__ynode *kiln__ymap_get(const kiln__ynode *map, const char *key)
{
    if (!map || map->kind != KILN__Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->value, key) == 0)
            return map->items[2 * i + 1];
    return NULL;
}

bool kiln__ynode_is_null(const kiln__ynode *n)
{
    if (!n)
        return true; /* absent */
    if (n->kind != KILN__Y_SCALAR || n->quoted)
        return false;
    return n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
           strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

const char *kiln__ykind_name(const kiln__ynode *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case KILN__Y_SCALAR:
        return "a string";
    case KILN__Y_SEQ:
        return "a list";
    case KILN__Y_MAP:
        return "a mapping";
    }
    return "?";
}
