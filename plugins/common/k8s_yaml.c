/* SPDX-License-Identifier: MIT */
#include "k8s_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *k8_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *k8_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    int e = !buf ? ENOMEM : ferror(f) ? EIO : 0;
    fclose(f);
    if (e) {
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static bool is_one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (!strcmp(s, *words))
            return true;
    return false;
}

/* go-yaml v2's resolution of a plain scalar. */
static cJSON *plain_scalar(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON",
                                        "y", "Y", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off",
                                         "OFF", "n", "N", NULL};
    if (is_one_of(s, nulls))
        return cJSON_CreateNull();
    if (is_one_of(s, trues))
        return cJSON_CreateTrue();
    if (is_one_of(s, falses))
        return cJSON_CreateFalse();
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p >= '0' && *p <= '9') {
        char *end;
        errno = 0;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
            long long v = strtoll(s, &end, 16);
            if (!*end && !errno)
                return cJSON_CreateNumber((double)v);
        } else if (p[0] == '0' && p[1] && strspn(p + 1, "01234567") == strlen(p + 1)) {
            long long v = strtoll(s, &end, 8); /* YAML 1.1: 0755 is octal */
            if (!*end && !errno)
                return cJSON_CreateNumber((double)v);
        } else {
            bool num = strspn(p, "0123456789") == strlen(p);
            if (num) {
                long long v = strtoll(s, &end, 10);
                if (!*end && !errno)
                    return cJSON_CreateNumber((double)v);
            }
            double d = strtod(s, &end);
            if (!*end && isfinite(d) && strpbrk(p, ".eE") && strspn(p, "0123456789.eE+-") == strlen(p))
                return cJSON_CreateNumber(d);
        }
    }
    if (!strcmp(s, ".inf") || !strcmp(s, ".nan"))
        return cJSON_CreateString(s); /* JSON has no such numbers */
    return cJSON_CreateString(s);
}

static cJSON *convert(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 64)
        return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)n->data.scalar.value;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            return plain_scalar(v);
        return cJSON_CreateString(v);
    }
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            cJSON *c = convert(doc, yaml_document_get_node(doc, *it), depth + 1);
            if (!c) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, c);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = yaml_document_get_node(doc, pr->key);
            cJSON *v = convert(doc, yaml_document_get_node(doc, pr->value), depth + 1);
            if (!k || k->type != YAML_SCALAR_NODE || !v) {
                cJSON_Delete(v);
                cJSON_Delete(o);
                return NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            cJSON_DeleteItemFromObjectCaseSensitive(o, key); /* the last one wins */
            cJSON_AddItemToObject(o, key, v);
        }
        return o;
    }
    default:
        return NULL;
    }
}

cJSON *k8_yaml_docs(const char *text, size_t len, int *lines, size_t cap, char *err, size_t errcap)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    cJSON *docs = cJSON_CreateArray();
    size_t n = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(err, errcap, "%zu:%zu: %s%s%s", parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "invalid YAML",
                     parser.context ? " " : "", parser.context ? parser.context : "");
            cJSON_Delete(docs);
            docs = NULL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break; /* end of the stream */
        }
        int line = (int)root->start_mark.line + 1; /* its first content line */
        cJSON *j = convert(&doc, root, 0);
        yaml_document_delete(&doc);
        if (!j) {
            snprintf(err, errcap, "%d:1: a mapping key that is not a string, or nesting deeper than 64",
                     line);
            cJSON_Delete(docs);
            docs = NULL;
            break;
        }
        if (cJSON_IsNull(j)) {
            cJSON_Delete(j); /* an empty document between two --- */
            continue;
        }
        if (lines && n < cap)
            lines[n] = line;
        n++;
        cJSON_AddItemToArray(docs, j);
    }
    yaml_parser_delete(&parser);
    return docs;
}
