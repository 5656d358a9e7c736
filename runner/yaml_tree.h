/* SPDX-License-Identifier: MIT */
/*
 * A YAML document as a tree of nodes that remember where they came from.
 *
 * libyaml's event stream is folded into scalars, sequences and mappings, each
 * with its 1-based line and column, so that every later error can name
 * FILE:LINE:COL. Anchors and aliases are resolved (an alias shares the node).
 * All nodes live in the document's arena and die with kiln__ydoc_free().
 */
#ifndef KILN_YAML_TREE_H
#define KILN_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum kiln__ykind { KILN__Y_SCALAR = 1, KILN__Y_SEQ, KILN__Y_MAP } kiln__ykind;

typedef struct kiln__ynode kiln__ynode;
struct kiln__ynode {
    kiln__ykind kind;
    int line, col;      /* 1-based */
    bool quoted;        /* scalar written in quotes or as a block: never null, never bool */
    const char *value;  /* scalar text, NUL-terminated */
    size_t len;
    size_t n;           /* SEQ: items; MAP: pairs */
    kiln__ynode **items; /* SEQ: n items; MAP: 2n (key, value, key, value...) */
};

typedef struct kiln__ydoc {
    const char *file;    /* as given to the loader (copied) */
    kiln__ynode *root;   /* NULL for an empty document */
    struct kiln__yarena *arena;
} kiln__ydoc;

/*
 * Parse text. Returns 0 and fills doc, or a negative KILN_E* and appends one
 * "FILE:LINE:COL: error: ..." line to *err (a kiln__buf). file is used only
 * for messages.
 */
struct kiln__buf;
int kiln__ydoc_parse(kiln__ydoc *doc, const char *file, const char *text, size_t len,
                     struct kiln__buf *err);
/* Read file and parse it. */
int kiln__ydoc_load(kiln__ydoc *doc, const char *file, struct kiln__buf *err);
void kiln__ydoc_free(kiln__ydoc *doc);
/* Memory that lives as long as the document (zeroed). */
void *kiln__ydoc_alloc(kiln__ydoc *doc, size_t n);
/* A copy of s that lives as long as the document. */
char *kiln__ydoc_strdup(kiln__ydoc *doc, const char *s);

/* MAP lookup by key text; NULL when absent. */
kiln__ynode *kiln__ymap_get(const kiln__ynode *map, const char *key);
/* A plain scalar "", "~", "null" or "Null"/"NULL", or an absent node (NULL). */
bool kiln__ynode_is_null(const kiln__ynode *n);
/* Kind as a word for messages: "a string", "a list", "a mapping". */
const char *kiln__ykind_name(const kiln__ynode *n);

#endif /* KILN_YAML_TREE_H */
