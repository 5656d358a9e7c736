/* SPDX-License-Identifier: MIT */
/*
 * Substitutions with Cloud Build's rules; contracts in subst.h.
 *
 * Three parts:
 *  - the store (insertion-ordered entries plus a hash index) and key checks,
 *    with the texts of cloud-build-local's validate.go;
 *  - the template pass ($KEY, ${KEY}, $$), cloud-build-local's subst.go;
 *  - dynamic substitutions: the bash-like parameter expansion of
 *    drone/envsubst as Cloud Build vendored it (2020: every syntax error is
 *    "bad substitution", a default takes exactly one word), driven the way
 *    cloud-build-local's bash_utils.go (commit 90365b6f) drives it.
 *
 * Where the Go code is non-deterministic (it walks Go maps, whose order is
 * random, and re-evaluates values it already evaluated) kiln picks the one
 * reading that the Go code produces whenever it is deterministic: each value
 * is evaluated once, after the values it refers to, and errors are listed in
 * insertion order.
 */
#include "subst.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* validate.go: maxSubstKeyLength, maxSubstValueLength. */
#define MAX_KEY_LEN 100
#define MAX_VALUE_LEN 4000
/* bash_utils.go caps evaluated values one byte above the limit, so that the
 * later length check rejects the build instead of silently truncating. */
#define MAX_EVAL_LEN (MAX_VALUE_LEN + 1)
/* Deeper ${...} nesting than this is refused (Go has no limit; a value of
 * 4000 bytes cannot nest deeper than ~700, so only absurd input sees it). */
#define MAX_NESTING 2000

#define USER_KEY_FORMAT "^_[A-Z0-9_]+$"

/* ------------------------------------------------------------------------ */
/* Key classes                                                              */

static const char *const builtin_fixed[] = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER",
                                            "LOCATION"};
static const char *const builtin_overridable[] = {
    "TRIGGER_NAME", "COMMIT_SHA",  "REVISION_ID", "SHORT_SHA", "REPO_NAME",
    "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REF_NAME",  "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"};

static bool in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

bool kiln__subst_is_user_key(const char *key)
{
    if (key[0] != '_' || key[1] == '\0')
        return false;
    for (const char *p = key + 1; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

bool kiln__subst_is_overridable_builtin(const char *key)
{
    return in_list(key, builtin_overridable,
                   sizeof builtin_overridable / sizeof builtin_overridable[0]);
}

bool kiln__subst_is_builtin(const char *key)
{
    return in_list(key, builtin_fixed, sizeof builtin_fixed / sizeof builtin_fixed[0]) ||
           kiln__subst_is_overridable_builtin(key);
}

/* ------------------------------------------------------------------------ */
/* UTF-8 as Go decodes it                                                   */

#define RUNE_ERROR 0xFFFD

/* utf8.DecodeRune: the rune at p and its width; an invalid or truncated
 * sequence is (RUNE_ERROR, 1). n > 0. */
static int32_t decode_rune(const unsigned char *p, size_t n, size_t *width)
{
    unsigned char b0 = p[0];
    *width = 1;
    if (b0 < 0x80)
        return b0;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    int32_t r;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        r = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        r = b0 & 0x0F;
        if (b0 == 0xE0)
            lo = 0xA0;
        else if (b0 == 0xED)
            hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        r = b0 & 0x07;
        if (b0 == 0xF0)
            lo = 0x90;
        else if (b0 == 0xF4)
            hi = 0x8F;
    } else {
        return RUNE_ERROR;
    }
    if (n < need || p[1] < lo || p[1] > hi)
        return RUNE_ERROR;
    for (size_t i = 1; i < need; i++) {
        if (i > 1 && (p[i] < 0x80 || p[i] > 0xBF))
            return RUNE_ERROR;
        r = (r << 6) | (p[i] & 0x3F);
    }
    *width = need;
    return r;
}

static void add_rune(kiln__buf *b, int32_t r)
{
    if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        r = RUNE_ERROR;
    if (r < 0x80) {
        kiln__buf_addch(b, (char)r);
    } else if (r < 0x800) {
        kiln__buf_addch(b, (char)(0xC0 | (r >> 6)));
        kiln__buf_addch(b, (char)(0x80 | (r & 0x3F)));
    } else if (r < 0x10000) {
        kiln__buf_addch(b, (char)(0xE0 | (r >> 12)));
        kiln__buf_addch(b, (char)(0x80 | ((r >> 6) & 0x3F)));
        kiln__buf_addch(b, (char)(0x80 | (r & 0x3F)));
    } else {
        kiln__buf_addch(b, (char)(0xF0 | (r >> 18)));
        kiln__buf_addch(b, (char)(0x80 | ((r >> 12) & 0x3F)));
        kiln__buf_addch(b, (char)(0x80 | ((r >> 6) & 0x3F)));
        kiln__buf_addch(b, (char)(0x80 | (r & 0x3F)));
    }
}

/* Go's strconv.Quote, which is what %q prints; printable non-ASCII is kept
 * as is (Go would escape the few non-printable code points). */
static void add_quoted(kiln__buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    kiln__buf_addch(b, '"');
    for (size_t i = 0; i < n;) {
        size_t w;
        int32_t r = decode_rune(p + i, n - i, &w);
        if (r == RUNE_ERROR && w == 1) {
            kiln__buf_addf(b, "\\x%02x", p[i]);
        } else if (w > 1) {
            kiln__buf_add(b, p + i, w);
        } else if (r == '"' || r == '\\') {
            kiln__buf_addch(b, '\\');
            kiln__buf_addch(b, (char)r);
        } else if (r >= 0x20 && r < 0x7F) {
            kiln__buf_addch(b, (char)r);
        } else {
            static const char esc[] = "\aa\bb\ff\nn\rr\tt\vv";
            const char *e = r ? strchr(esc, (int)r) : NULL;
            if (e && (e - esc) % 2 == 0)
                kiln__buf_addf(b, "\\%c", e[1]);
            else
                kiln__buf_addf(b, "\\x%02x", (unsigned)r);
        }
        i += w;
    }
    kiln__buf_addch(b, '"');
}

/* ------------------------------------------------------------------------ */
/* The store                                                                */

struct entry {
    char *key;
    char *value;
    bool used;
};

struct kiln__subst {
    struct entry *v;
    size_t n, cap;
    /* Open addressing, linear probing: slot holds entry index + 1, 0 = free. */
    size_t *slots;
    size_t nslots;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static long find(const kiln__subst *s, const char *key)
{
    if (!s->nslots)
        return -1;
    size_t mask = s->nslots - 1;
    for (size_t i = hash_str(key) & mask;; i = (i + 1) & mask) {
        size_t slot = s->slots[i];
        if (!slot)
            return -1;
        if (strcmp(s->v[slot - 1].key, key) == 0)
            return (long)(slot - 1);
    }
}

static void rehash(kiln__subst *s, size_t nslots)
{
    free(s->slots);
    s->slots = kiln__xcalloc(nslots, sizeof *s->slots);
    s->nslots = nslots;
    for (size_t e = 0; e < s->n; e++) {
        size_t i = hash_str(s->v[e].key) & (nslots - 1);
        while (s->slots[i])
            i = (i + 1) & (nslots - 1);
        s->slots[i] = e + 1;
    }
}

kiln__subst *kiln__subst_create(void)
{
    return kiln__xcalloc(1, sizeof(kiln__subst));
}

void kiln__subst_destroy(kiln__subst *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].value);
    }
    free(s->v);
    free(s->slots);
    free(s);
}

void kiln__subst_set(kiln__subst *s, const char *key, const char *value)
{
    long i = find(s, key);
    if (i >= 0) {
        char *old = s->v[i].value;
        s->v[i].value = kiln__xstrdup(value);
        free(old);
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = kiln__xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n].key = kiln__xstrdup(key);
    s->v[s->n].value = kiln__xstrdup(value);
    s->v[s->n].used = false;
    s->n++;
    if (2 * s->n > s->nslots) {
        rehash(s, s->nslots ? s->nslots * 2 : 32);
        return;
    }
    size_t slot = hash_str(key) & (s->nslots - 1);
    while (s->slots[slot])
        slot = (slot + 1) & (s->nslots - 1);
    s->slots[slot] = s->n;
}

const char *kiln__subst_get(const kiln__subst *s, const char *key)
{
    long i = find(s, key);
    return i < 0 ? NULL : s->v[i].value;
}

void kiln__subst_foreach(const kiln__subst *s, kiln__subst_each_cb cb, void *data)
{
    for (size_t i = 0; i < s->n; i++)
        cb(data, s->v[i].key, s->v[i].value);
}

size_t kiln__subst_count(const kiln__subst *s)
{
    return s->n;
}

/* validate.go CheckSubstitutionsLoose, then (file only) CheckSubstitutions;
 * the loose check runs first, so a file key such as TEST_DATA gets the loose
 * text, as the hosted service reports it. */
char *kiln__subst_check_key(const char *key, bool from_outside)
{
    kiln__buf b = KILN__BUF_INIT;
    if (strlen(key) > MAX_KEY_LEN) {
        kiln__buf_adds(&b, "substitution key ");
        add_quoted(&b, key);
        kiln__buf_addf(&b, " too long (max: %d)", MAX_KEY_LEN);
    } else if (!kiln__subst_is_user_key(key) && !kiln__subst_is_overridable_builtin(key)) {
        kiln__buf_adds(&b, "substitution key ");
        add_quoted(&b, key);
        kiln__buf_adds(&b, " does not respect format \"" USER_KEY_FORMAT
                           "\" and is not an overridable built-in substitutions");
    } else if (!from_outside && !kiln__subst_is_user_key(key)) {
        kiln__buf_adds(&b, "substitution key ");
        add_quoted(&b, key);
        kiln__buf_adds(&b, " does not respect format \"" USER_KEY_FORMAT "\"");
    } else {
        return NULL;
    }
    return kiln__buf_detach(&b);
}

/* ------------------------------------------------------------------------ */
/* The template pass                                                        */

static bool is_key_start(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9');
}

static int cmp_entry_key(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    return strcmp(x->key, y->key);
}

/* What Go's %+v prints for the build's substitutions map: map[K:V K2:V2],
 * keys sorted. Only user keys: the built-ins kiln stores beside them are not
 * part of the build's substitutions map in Cloud Build. */
static void add_go_map(kiln__buf *b, const kiln__subst *s)
{
    const struct entry **v = kiln__xmalloc((s->n ? s->n : 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (kiln__subst_is_user_key(s->v[i].key))
            v[n++] = &s->v[i];
    qsort(v, n, sizeof *v, cmp_entry_key);
    kiln__buf_adds(b, "map[");
    for (size_t i = 0; i < n; i++)
        kiln__buf_addf(b, "%s%s:%s", i ? " " : "", v[i]->key, v[i]->value);
    kiln__buf_addch(b, ']');
    free(v);
}

/*
 * One left-to-right pass: `$$` pairs first, then `${KEY}` or greedy `$KEY`,
 * anything else verbatim. A key that is read is looked up once in the hash
 * index, so the pass is linear in the template plus the output.
 *
 * Messages follow CheckSubstitutionTemplate, with one difference: Go stops at
 * the first invalid built-in; kiln reports every one (errors are collected).
 * A key is a user key when it matches ^_[A-Z0-9_]+$, so `$_` alone is an
 * invalid built-in, as in Go.
 */
int kiln__subst_expand(kiln__subst *s, const char *tmpl, kiln__buf *out, kiln__buf *errors,
                       kiln__buf *warnings)
{
    int nerr = 0;
    kiln__buf key = KILN__BUF_INIT;
    kiln__buf map = KILN__BUF_INIT;
    bool have_map = false;
    const char *p = tmpl;
    const char *lit = p; /* start of the pending literal run */

    while (*p) {
        if (*p != '$') {
            p++;
            continue;
        }
        if (p[1] == '$') {
            kiln__buf_add(out, lit, (size_t)(p - lit) + 1);
            p += 2;
            lit = p;
            continue;
        }
        const char *k = NULL, *end = NULL;
        size_t klen = 0;
        if (p[1] == '{' && is_key_start(p[2])) {
            const char *q = p + 3;
            while (is_key_char(*q))
                q++;
            if (*q == '}') {
                k = p + 2;
                klen = (size_t)(q - k);
                end = q + 1;
            }
        } else if (is_key_start(p[1])) {
            const char *q = p + 2;
            while (is_key_char(*q))
                q++;
            k = p + 1;
            klen = (size_t)(q - k);
            end = q;
        }
        if (!k) {
            p++;
            continue;
        }
        kiln__buf_add(out, lit, (size_t)(p - lit));
        kiln__buf_reset(&key);
        kiln__buf_add(&key, k, klen);
        long i = find(s, key.buf);
        if (i >= 0) {
            s->v[i].used = true;
            kiln__buf_adds(out, s->v[i].value);
        } else if (kiln__subst_is_user_key(key.buf)) {
            if (warnings) {
                if (!have_map) {
                    add_go_map(&map, s);
                    have_map = true;
                }
                kiln__buf_adds(warnings, "key in the template ");
                add_quoted(warnings, key.buf);
                kiln__buf_addf(warnings,
                               " is not matched in the substitution data; substitutions = %s\n",
                               map.buf);
            }
        } else if (!kiln__subst_is_builtin(key.buf)) {
            nerr++;
            if (errors) {
                kiln__buf_adds(errors, "key in the template ");
                add_quoted(errors, key.buf);
                kiln__buf_adds(errors, " is not a valid built-in substitution\n");
            }
        }
        p = end;
        lit = p;
    }
    kiln__buf_add(out, lit, (size_t)(p - lit));
    kiln__buf_release(&key);
    kiln__buf_release(&map);
    return nerr;
}

int kiln__subst_unused(const kiln__subst *s, kiln__buf *warnings)
{
    int n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].used || !kiln__subst_is_user_key(s->v[i].key))
            continue;
        n++;
        if (warnings) {
            kiln__buf_adds(warnings, "key ");
            add_quoted(warnings, s->v[i].key);
            kiln__buf_adds(warnings, " in the substitution data is not matched in the template\n");
        }
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Dynamic substitutions: the parser                                        */

/*
 * The parser mirrors drone/envsubst's scanner: a cursor over runes whose
 * behaviour (which runes a token accepts, which tokens are recognised, and
 * the in-place deletion of escape characters) changes from call to call.
 * Mirroring it rather than writing a cleaner grammar is what makes corner
 * cases agree: `${X//-//+}` is "replace - by +" (the delimiter swallows every
 * slash), `${X-d}` and `${X+d}` are "bad substitution", `${X:?d}` and
 * `${X:+d}` behave like `${X:-d}`, and `$$` (and `\\`, `\/`) collapse.
 *
 * The buffer is a gap buffer so that deleting an escape character at the
 * cursor is O(1); deletions only ever happen just behind the cursor.
 */

enum {
    SCAN_IDENT = 1,
    SCAN_LBRACK = 2,
    SCAN_RBRACK = 4,
    SCAN_ESCAPE = 8,
};

enum token { TOK_ILLEGAL, TOK_EOF, TOK_IDENT, TOK_LBRACK, TOK_RBRACK };

enum accept {
    ACC_RUNE,
    ACC_IDENT,
    ACC_COLON,
    ACC_ONE_HASH,
    ACC_NOT_CLOSING,
    ACC_HASH_FUNC,
    ACC_PERCENT_FUNC,
    ACC_DEFAULT_FUNC,
    ACC_REPLACE_FUNC,
    ACC_ONE_EQUAL,
    ACC_ONE_COLON,
    ACC_REJECT_COLON_CLOSE,
    ACC_SLASH,
    ACC_NOT_SLASH,
    ACC_CASING_FUNC,
};

struct scanner {
    unsigned char *data; /* gap buffer: [0, gap) and [gend, cap) */
    size_t gap, gend, cap;
    size_t pos, start, width; /* logical positions */
    int mode;
    enum accept accept;
};

enum node_kind { N_TEXT, N_FUNC, N_LIST };

struct node {
    enum node_kind kind;
    size_t off, len;    /* N_TEXT: text in the pool; N_FUNC: param name */
    char name[4];       /* N_FUNC: operator, "" for plain ${X} */
    size_t nargs;
    size_t args[2];     /* N_FUNC: node indices */
    size_t first, count; /* N_LIST: children in tree.kids */
};

struct tree {
    struct node *v;
    size_t n, cap;
    size_t *kids;
    size_t nkids, kcap;
    kiln__buf pool;
    size_t root;
    int depth;
};

static size_t sc_len(const struct scanner *s)
{
    return s->gap + (s->cap - s->gend);
}

static unsigned char sc_at(const struct scanner *s, size_t i)
{
    return i < s->gap ? s->data[i] : s->data[s->gend + (i - s->gap)];
}

static void sc_move_gap(struct scanner *s, size_t to)
{
    while (s->gap < to)
        s->data[s->gap++] = s->data[s->gend++];
    while (s->gap > to)
        s->data[--s->gend] = s->data[--s->gap];
}

/* eof is rune 0, as in Go; a C string has no NUL inside. */
static int32_t sc_read(struct scanner *s)
{
    size_t n = sc_len(s);
    if (s->pos >= n) {
        s->width = 0;
        return 0;
    }
    unsigned char tmp[4];
    size_t k = n - s->pos < 4 ? n - s->pos : 4;
    for (size_t i = 0; i < k; i++)
        tmp[i] = sc_at(s, s->pos + i);
    int32_t r = decode_rune(tmp, k, &s->width);
    s->pos += s->width;
    return r;
}

static void sc_unread(struct scanner *s)
{
    s->pos -= s->width;
}

static int32_t sc_peek(struct scanner *s)
{
    int32_t r = sc_read(s);
    sc_unread(s);
    return r;
}

/* Drop the byte just behind the cursor (Go: buf[:pos-1] + buf[pos:]). */
static void sc_skip(struct scanner *s)
{
    sc_move_gap(s, s->pos);
    s->gap--;
}

static locale_t utf8_locale(void)
{
    static locale_t loc;
    static bool tried;
    if (!tried) {
        tried = true;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

/* unicode.IsLetter || unicode.IsDigit || '_', through the C.UTF-8 tables
 * for non-ASCII (ASCII only when that locale is missing). */
static bool is_ident_rune(int32_t r)
{
    if (r < 0x80)
        return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') ||
               r == '_';
    locale_t loc = utf8_locale();
    return loc && r != RUNE_ERROR && iswalnum_l((wint_t)r, loc);
}

static bool sc_accepts(const struct scanner *s, int32_t r, size_t i)
{
    switch (s->accept) {
    case ACC_RUNE:
        return true;
    case ACC_IDENT:
        return is_ident_rune(r);
    case ACC_COLON:
        return r == ':';
    case ACC_ONE_HASH:
        return r == '#' && i == 1;
    case ACC_NOT_CLOSING:
        return r != '}';
    case ACC_HASH_FUNC:
        return r == '#' && i < 3;
    case ACC_PERCENT_FUNC:
        return r == '%' && i < 3;
    case ACC_DEFAULT_FUNC:
        return (i == 1 && r == ':') || (i == 2 && (r == '=' || r == '-' || r == '?' || r == '+'));
    case ACC_REPLACE_FUNC:
        return (i == 1 && r == '/') || (i == 2 && (r == '/' || r == '#' || r == '%'));
    case ACC_ONE_EQUAL:
        return i == 1 && r == '=';
    case ACC_ONE_COLON:
        return i == 1 && r == ':';
    case ACC_REJECT_COLON_CLOSE:
        return r != ':' && r != '}';
    case ACC_SLASH:
        return r == '/';
    case ACC_NOT_SLASH:
        return r != '/';
    case ACC_CASING_FUNC:
        return (r == ',' || r == '^') && i < 3;
    }
    return false;
}

static bool sc_lbrack(struct scanner *s, int32_t r)
{
    if (!(s->mode & SCAN_LBRACK) || r != '$')
        return false;
    if (sc_read(s) == '{')
        return true;
    sc_unread(s);
    return false;
}

static bool sc_escaped(struct scanner *s, int32_t r)
{
    if (!(s->mode & SCAN_ESCAPE))
        return false;
    if (r == '$')
        return sc_peek(s) == '$';
    if (r == '\\') {
        int32_t next = sc_peek(s);
        return next == '/' || next == '\\';
    }
    return false;
}

static bool sc_ident(struct scanner *s, int32_t r)
{
    if (!(s->mode & SCAN_IDENT))
        return false;
    if (sc_escaped(s, r))
        sc_skip(s);
    else if (!sc_accepts(s, r, s->pos - s->start))
        return false;
    for (;;) {
        r = sc_read(s);
        if (r == 0) {
            sc_unread(s);
            break;
        }
        if (sc_lbrack(s, r)) {
            sc_unread(s);
            sc_unread(s);
            break;
        }
        if (sc_escaped(s, r)) {
            sc_skip(s);
            continue;
        }
        if (!sc_accepts(s, r, s->pos - s->start)) {
            sc_unread(s);
            break;
        }
    }
    return true;
}

static enum token sc_scan(struct scanner *s)
{
    s->start = s->pos;
    int32_t r = sc_read(s);
    if (r == 0)
        return TOK_EOF;
    if (sc_lbrack(s, r))
        return TOK_LBRACK;
    if ((s->mode & SCAN_RBRACK) && r == '}')
        return TOK_RBRACK;
    if (sc_ident(s, r))
        return TOK_IDENT;
    return TOK_ILLEGAL;
}

/* The text of the last token, copied into the pool. */
static void sc_token(struct scanner *s, struct tree *t, size_t *off, size_t *len)
{
    sc_move_gap(s, s->pos);
    *off = t->pool.len;
    *len = s->pos - s->start;
    kiln__buf_add(&t->pool, s->data + s->start, *len);
}

static size_t new_node(struct tree *t, enum node_kind kind)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->v = kiln__xrealloc(t->v, t->cap * sizeof *t->v);
    }
    memset(&t->v[t->n], 0, sizeof t->v[t->n]);
    t->v[t->n].kind = kind;
    return t->n++;
}

static size_t new_text(struct scanner *s, struct tree *t)
{
    size_t i = new_node(t, N_TEXT);
    sc_token(s, t, &t->v[i].off, &t->v[i].len);
    return i;
}

static void set_name(struct scanner *s, struct tree *t, size_t node)
{
    size_t off, len;
    sc_token(s, t, &off, &len);
    /* Accept functions cap operators at two runes. */
    memcpy(t->v[node].name, t->pool.buf + off, len < 3 ? len : 3);
    t->pool.len = off;
}

static int parse_func(struct scanner *s, struct tree *t, size_t *out);

static int parse_param(struct scanner *s, struct tree *t, enum accept accept, int mode,
                       size_t *out)
{
    s->accept = accept;
    s->mode = mode | SCAN_LBRACK;
    switch (sc_scan(s)) {
    case TOK_LBRACK:
        return parse_func(s, t, out);
    case TOK_IDENT:
        *out = new_text(s, t);
        return 0;
    default:
        return -1;
    }
}

static int consume_rbrack(struct scanner *s)
{
    s->mode = SCAN_RBRACK;
    return sc_scan(s) == TOK_RBRACK ? 0 : -1;
}

/* The operator token of a function node, scanned with accept. */
static int scan_operator(struct scanner *s, struct tree *t, size_t node, enum accept accept)
{
    s->accept = accept;
    s->mode = SCAN_IDENT;
    if (sc_scan(s) != TOK_IDENT)
        return -1;
    set_name(s, t, node);
    return 0;
}

static int add_arg(struct tree *t, size_t node, size_t arg)
{
    t->v[node].args[t->v[node].nargs++] = arg;
    return 0;
}

static int parse_op(struct scanner *s, struct tree *t, size_t node, int32_t op)
{
    size_t arg;
    switch (op) {
    case ':': {
        /* ${X:=d} ${X:-d} ${X:?d} ${X:+d} or ${X:off} ${X:off:len}; Go
         * peeks past the colon and steps back by the width of the rune it
         * peeked, which we mirror. */
        sc_read(s);
        int32_t r = sc_peek(s);
        sc_unread(s);
        if (r == '=' || r == '-' || r == '?' || r == '+')
            return parse_op(s, t, node, '=');
        if (scan_operator(s, t, node, ACC_ONE_COLON) ||
            parse_param(s, t, ACC_REJECT_COLON_CLOSE, SCAN_IDENT, &arg))
            return -1;
        add_arg(t, node, arg);
        s->accept = ACC_COLON;
        s->mode = SCAN_IDENT | SCAN_RBRACK;
        switch (sc_scan(s)) {
        case TOK_RBRACK:
            return 0;
        case TOK_IDENT:
            break;
        default:
            return -1;
        }
        if (parse_param(s, t, ACC_NOT_CLOSING, SCAN_IDENT, &arg))
            return -1;
        add_arg(t, node, arg);
        return consume_rbrack(s);
    }
    case '=':
        /* One word: in 2020 drone/envsubst a default is a single text or a
         * single ${...}, so `${X:-a${Y}}` is a bad substitution. */
        if (scan_operator(s, t, node, sc_peek(s) == '=' ? ACC_ONE_EQUAL : ACC_DEFAULT_FUNC) ||
            parse_param(s, t, ACC_NOT_CLOSING, SCAN_IDENT, &arg))
            return -1;
        add_arg(t, node, arg);
        return consume_rbrack(s);
    case ',':
    case '^':
        if (scan_operator(s, t, node, ACC_CASING_FUNC))
            return -1;
        return consume_rbrack(s);
    case '/':
        if (scan_operator(s, t, node, ACC_REPLACE_FUNC) ||
            parse_param(s, t, ACC_NOT_SLASH, SCAN_IDENT | SCAN_ESCAPE, &arg))
            return -1;
        add_arg(t, node, arg);
        s->accept = ACC_SLASH;
        s->mode = SCAN_IDENT;
        if (sc_scan(s) != TOK_IDENT)
            return -1;
        if (sc_peek(s) == '}')
            return consume_rbrack(s);
        if (parse_param(s, t, ACC_NOT_CLOSING, SCAN_IDENT | SCAN_ESCAPE, &arg))
            return -1;
        add_arg(t, node, arg);
        return consume_rbrack(s);
    case '#':
    case '%':
        if (scan_operator(s, t, node, op == '#' ? ACC_HASH_FUNC : ACC_PERCENT_FUNC) ||
            parse_param(s, t, ACC_NOT_CLOSING, SCAN_IDENT, &arg))
            return -1;
        add_arg(t, node, arg);
        return consume_rbrack(s);
    }
    return -1;
}

/* After `${`. */
static int parse_func(struct scanner *s, struct tree *t, size_t *out)
{
    if (++t->depth > MAX_NESTING)
        return -1;
    size_t node = new_node(t, N_FUNC);
    *out = node;
    int rc;
    if (sc_peek(s) == '#') {
        /* ${#X} */
        if (scan_operator(s, t, node, ACC_ONE_HASH))
            return -1;
        s->accept = ACC_IDENT;
        s->mode = SCAN_IDENT;
        if (sc_scan(s) != TOK_IDENT)
            return -1;
        sc_token(s, t, &t->v[node].off, &t->v[node].len);
        rc = consume_rbrack(s);
    } else {
        s->accept = ACC_IDENT;
        s->mode = SCAN_IDENT;
        if (sc_scan(s) != TOK_IDENT)
            return -1;
        sc_token(s, t, &t->v[node].off, &t->v[node].len);
        int32_t op = sc_peek(s);
        switch (op) {
        case ':':
        case '=':
        case ',':
        case '^':
        case '/':
        case '#':
        case '%':
            rc = parse_op(s, t, node, op);
            break;
        default:
            /* Plain ${X}; anything else here, `-` and `+` included, is a bad
             * substitution. */
            s->accept = ACC_IDENT;
            rc = consume_rbrack(s);
        }
    }
    t->depth--;
    return rc;
}

/* Top level: text and ${...} alternate until the end. A list of one child
 * is collapsed so that the caller can tell "just text" apart. */
static int parse_any(struct scanner *s, struct tree *t)
{
    size_t *local = NULL, n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        s->accept = ACC_RUNE;
        s->mode = SCAN_IDENT | SCAN_LBRACK | SCAN_ESCAPE;
        enum token tok = sc_scan(s);
        size_t child;
        if (tok == TOK_EOF)
            break;
        if (tok == TOK_IDENT) {
            child = new_text(s, t);
        } else if (tok == TOK_LBRACK) {
            if (parse_func(s, t, &child)) {
                rc = -1;
                break;
            }
        } else {
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            local = kiln__xrealloc(local, cap * sizeof *local);
        }
        local[n++] = child;
    }
    if (rc == 0) {
        if (n == 0) {
            t->root = new_node(t, N_TEXT);
        } else if (n == 1) {
            t->root = local[0];
        } else {
            if (t->nkids + n > t->kcap) {
                t->kcap = t->nkids + n;
                t->kids = kiln__xrealloc(t->kids, t->kcap * sizeof *t->kids);
            }
            t->root = new_node(t, N_LIST);
            t->v[t->root].first = t->nkids;
            t->v[t->root].count = n;
            memcpy(t->kids + t->nkids, local, n * sizeof *local);
            t->nkids += n;
        }
    }
    free(local);
    return rc;
}

static void tree_release(struct tree *t)
{
    free(t->v);
    free(t->kids);
    kiln__buf_release(&t->pool);
    memset(t, 0, sizeof *t);
}

static int tree_parse(struct tree *t, const char *src)
{
    struct scanner s = {0};
    size_t n = strlen(src);
    s.data = kiln__xmalloc(n + 1);
    memcpy(s.data, src, n);
    s.gap = n;
    s.gend = n;
    s.cap = n;
    memset(t, 0, sizeof *t);
    kiln__buf_init(&t->pool);
    int rc = parse_any(&s, t);
    free(s.data);
    if (rc)
        tree_release(t);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Dynamic substitutions: glob patterns for # ## % %%                       */

/*
 * drone/envsubst's path.Match: Go's path.Match with `*` and `?` also
 * matching '/'. A malformed pattern is reported lazily (only when the
 * matcher reaches the bad part), and the trim functions then return the
 * value unchanged; mirror_match keeps that behaviour exactly. For the common
 * case (a well-formed pattern, ASCII text) nfa_prefixes answers every
 * prefix length in one pass instead of one match per prefix.
 */

struct str {
    const unsigned char *p;
    size_t n;
};

/* getEsc: one possibly escaped rune of a class; -1 on a malformed class. */
static int get_esc(struct str *chunk, int32_t *r)
{
    if (!chunk->n || chunk->p[0] == '-' || chunk->p[0] == ']')
        return -1;
    if (chunk->p[0] == '\\') {
        chunk->p++;
        chunk->n--;
        if (!chunk->n)
            return -1;
    }
    size_t w;
    *r = decode_rune(chunk->p, chunk->n, &w);
    int rc = (*r == RUNE_ERROR && w == 1) ? -1 : 0;
    chunk->p += w;
    chunk->n -= w;
    if (!chunk->n)
        rc = -1;
    return rc;
}

/* One lo or lo-hi range of a class; -1 on a malformed class. */
static int get_range(struct str *chunk, int32_t *lo, int32_t *hi)
{
    if (get_esc(chunk, lo))
        return -1;
    *hi = *lo;
    if (chunk->p[0] == '-') {
        chunk->p++;
        chunk->n--;
        if (get_esc(chunk, hi))
            return -1;
    }
    return 0;
}

/* matchChunk: 1 and *rest on a match at the start of s, 0 on none, -1 on a
 * malformed pattern. */
static int match_chunk(struct str chunk, struct str s, struct str *rest)
{
    while (chunk.n) {
        if (!s.n)
            return 0;
        unsigned char c = chunk.p[0];
        if (c == '[') {
            size_t w;
            int32_t r = decode_rune(s.p, s.n, &w);
            s.p += w;
            s.n -= w;
            chunk.p++;
            chunk.n--;
            bool negated = false;
            if (chunk.n && chunk.p[0] == '^') {
                negated = true;
                chunk.p++;
                chunk.n--;
            }
            bool match = false;
            int nrange = 0;
            for (;;) {
                if (chunk.n && chunk.p[0] == ']' && nrange > 0) {
                    chunk.p++;
                    chunk.n--;
                    break;
                }
                int32_t lo, hi;
                if (get_range(&chunk, &lo, &hi))
                    return -1;
                if (lo <= r && r <= hi)
                    match = true;
                nrange++;
            }
            if (match == negated)
                return 0;
        } else if (c == '?') {
            size_t w;
            decode_rune(s.p, s.n, &w);
            s.p += w;
            s.n -= w;
            chunk.p++;
            chunk.n--;
        } else {
            if (c == '\\') {
                chunk.p++;
                chunk.n--;
                if (!chunk.n)
                    return -1;
            }
            if (chunk.p[0] != s.p[0])
                return 0;
            s.p++;
            s.n--;
            chunk.p++;
            chunk.n--;
        }
    }
    *rest = s;
    return 1;
}

static void scan_chunk(struct str *pat, bool *star, struct str *chunk)
{
    *star = false;
    while (pat->n && pat->p[0] == '*') {
        pat->p++;
        pat->n--;
        *star = true;
    }
    bool inrange = false;
    size_t i;
    for (i = 0; i < pat->n; i++) {
        unsigned char c = pat->p[i];
        if (c == '\\') {
            if (i + 1 < pat->n)
                i++;
        } else if (c == '[') {
            inrange = true;
        } else if (c == ']') {
            inrange = false;
        } else if (c == '*' && !inrange) {
            break;
        }
    }
    chunk->p = pat->p;
    chunk->n = i;
    pat->p += i;
    pat->n -= i;
}

static int mirror_match(struct str pat, struct str name)
{
    while (pat.n) {
        bool star;
        struct str chunk, t;
        scan_chunk(&pat, &star, &chunk);
        if (star && !chunk.n)
            return 1;
        int ok = match_chunk(chunk, name, &t);
        if (ok == 1 && (!t.n || pat.n)) {
            name = t;
            continue;
        }
        if (ok < 0)
            return -1;
        if (star) {
            bool found = false;
            for (size_t i = 0; i < name.n; i++) {
                struct str sub = {name.p + i + 1, name.n - i - 1};
                ok = match_chunk(chunk, sub, &t);
                if (ok == 1) {
                    if (!pat.n && t.n)
                        continue;
                    name = t;
                    found = true;
                    break;
                }
                if (ok < 0)
                    return -1;
            }
            if (found)
                continue;
        }
        return 0;
    }
    return name.n == 0;
}

enum term_kind { T_STAR, T_LIT, T_ANY, T_CLASS };

struct term {
    enum term_kind kind;
    unsigned char c;       /* T_LIT */
    bool negated;          /* T_CLASS */
    size_t first, nranges; /* T_CLASS: into ranges */
};

struct glob {
    struct term *t;
    size_t n;
    int32_t (*ranges)[2];
    size_t nranges;
};

/* Compile a pattern that can never make the matcher fail; -1 otherwise.
 * The walk is the one match_chunk does, on every term. */
static int glob_compile(struct str pat, struct glob *g)
{
    g->t = kiln__xmalloc((pat.n + 1) * sizeof *g->t);
    g->ranges = kiln__xmalloc((pat.n + 1) * sizeof *g->ranges);
    g->n = g->nranges = 0;
    while (pat.n) {
        bool star;
        struct str chunk;
        scan_chunk(&pat, &star, &chunk);
        if (star)
            g->t[g->n++] = (struct term){.kind = T_STAR};
        while (chunk.n) {
            unsigned char c = chunk.p[0];
            struct term *term = &g->t[g->n++];
            if (c == '[') {
                chunk.p++;
                chunk.n--;
                *term = (struct term){.kind = T_CLASS, .first = g->nranges};
                if (chunk.n && chunk.p[0] == '^') {
                    term->negated = true;
                    chunk.p++;
                    chunk.n--;
                }
                for (;;) {
                    if (chunk.n && chunk.p[0] == ']' && term->nranges > 0) {
                        chunk.p++;
                        chunk.n--;
                        break;
                    }
                    int32_t lo, hi;
                    if (get_range(&chunk, &lo, &hi))
                        return -1;
                    g->ranges[g->nranges][0] = lo;
                    g->ranges[g->nranges][1] = hi;
                    g->nranges++;
                    term->nranges++;
                }
            } else if (c == '?') {
                *term = (struct term){.kind = T_ANY};
                chunk.p++;
                chunk.n--;
            } else {
                if (c == '\\') {
                    chunk.p++;
                    chunk.n--;
                    if (!chunk.n)
                        return -1;
                }
                *term = (struct term){.kind = T_LIT, .c = chunk.p[0]};
                chunk.p++;
                chunk.n--;
            }
        }
    }
    return 0;
}

static bool term_matches(const struct glob *g, const struct term *t, unsigned char c)
{
    switch (t->kind) {
    case T_LIT:
        return t->c == c;
    case T_ANY:
        return true;
    case T_CLASS: {
        bool match = false;
        for (size_t i = 0; i < t->nranges; i++)
            if (g->ranges[t->first + i][0] <= c && c <= g->ranges[t->first + i][1])
                match = true;
        return match != t->negated;
    }
    case T_STAR:
        break;
    }
    return false;
}

/* ok[k] = the first k bytes of s match, for k in [0, n]; s is ASCII, so
 * every term but `*` eats exactly one byte. O(n * terms). */
static void nfa_prefixes(const struct glob *g, struct str s, bool *ok)
{
    bool *cur = kiln__xcalloc(g->n + 1, 1), *next = kiln__xcalloc(g->n + 1, 1);
    cur[0] = true;
    for (size_t k = 0;; k++) {
        for (size_t j = 0; j < g->n; j++) /* `*` may match nothing */
            if (cur[j] && g->t[j].kind == T_STAR)
                cur[j + 1] = true;
        ok[k] = cur[g->n];
        if (k == s.n)
            break;
        memset(next, 0, g->n + 1);
        for (size_t j = 0; j < g->n; j++) {
            if (!cur[j])
                continue;
            if (g->t[j].kind == T_STAR)
                next[j] = true;
            else if (term_matches(g, &g->t[j], s.p[k]))
                next[j + 1] = true;
        }
        bool *tmp = cur;
        cur = next;
        next = tmp;
    }
    free(cur);
    free(next);
}

static bool is_ascii(struct str s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] >= 0x80)
            return false;
    return true;
}

/*
 * trimShortest / trimLongest: the length of the prefix of s to drop. Go
 * tries prefixes from the whole string down to one byte (never the empty
 * one) and gives up, dropping nothing, at the first malformed-pattern error.
 */
static size_t trim_prefix_len(struct str s, struct str pat, bool longest)
{
    struct glob g = {0};
    size_t drop = 0;
    if (is_ascii(s) && glob_compile(pat, &g) == 0) {
        bool *ok = kiln__xmalloc(s.n + 1);
        nfa_prefixes(&g, s, ok);
        for (size_t k = 1; k <= s.n; k++)
            if (ok[k] && (longest || !drop))
                drop = k;
        free(ok);
    } else {
        for (size_t i = 0; i < s.n; i++) {
            struct str prefix = {s.p, s.n - i};
            int m = mirror_match(pat, prefix);
            if (m < 0) {
                drop = 0;
                break;
            }
            if (m) {
                drop = prefix.n;
                if (longest)
                    break;
            }
        }
    }
    free(g.t);
    free(g.ranges);
    return drop;
}

/* Go's reverse: by runes, with invalid bytes turned into U+FFFD. */
static void add_reversed(kiln__buf *b, struct str s)
{
    size_t *starts = kiln__xmalloc((s.n + 1) * sizeof *starts);
    size_t n = 0;
    for (size_t i = 0; i < s.n;) {
        size_t w;
        decode_rune(s.p + i, s.n - i, &w);
        starts[n++] = i;
        i += w;
    }
    for (size_t k = n; k-- > 0;) {
        size_t end = k + 1 < n ? starts[k + 1] : s.n;
        size_t w;
        int32_t r = decode_rune(s.p + starts[k], s.n - starts[k], &w);
        if (r == RUNE_ERROR && w == 1)
            add_rune(b, RUNE_ERROR);
        else
            kiln__buf_add(b, s.p + starts[k], end - starts[k]);
    }
    free(starts);
}

/* ------------------------------------------------------------------------ */
/* Dynamic substitutions: evaluation                                        */

struct dyn_entry {
    char *work;       /* the value, with a leading $NAME read as ${...} */
    struct tree tree; /* valid when parsed */
    bool parsed, is_text;
    char *result;     /* evaluated value, or NULL until evaluated */
    char *err;
    size_t *deps, ndeps;
    /* Tarjan */
    long index, low;
    bool on_stack;
};

struct dyn {
    kiln__subst *s;
    struct dyn_entry *e;
    long counter;
    size_t *stack, nstack;
    char *panic; /* a Go runtime panic during the current evaluation */
};

static void add_capped(kiln__buf *b, const void *p, size_t n)
{
    if (b->len >= MAX_EVAL_LEN)
        return;
    if (n > MAX_EVAL_LEN - b->len)
        n = MAX_EVAL_LEN - b->len;
    kiln__buf_add(b, p, n);
}

static const char *dyn_value(const struct dyn *d, const char *key)
{
    long i = find(d->s, key);
    if (i < 0)
        return "";
    return d->e[i].result ? d->e[i].result : d->e[i].work;
}

/* strconv.Atoi: optional sign, decimal digits, int64 range. */
static bool go_atoi(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return false;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned dgt = (unsigned)(*s - '0');
        if (v > (limit - dgt) / 10)
            return false;
        v = v * 10 + dgt;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* toSubstr. Go slices s[pos:pos+length] even when length is negative and
 * panics; cloud-build-local recovers and reports it, "+v" included (a
 * format-string slip in bash_utils.go). */
static void fn_substr(struct dyn *d, kiln__buf *out, struct str v, const kiln__buf *args,
                      size_t nargs)
{
    int64_t pos, len;
    int64_t n = (int64_t)v.n;
    if (!go_atoi(args[0].buf, &pos)) {
        add_capped(out, v.p, v.n);
        return;
    }
    if (pos < 0) {
        pos = n + pos;
        if (pos < 0)
            pos = 0;
    }
    if (nargs == 1) {
        if (pos < n)
            add_capped(out, v.p + pos, v.n - (size_t)pos);
        return;
    }
    if (!go_atoi(args[1].buf, &len)) {
        add_capped(out, v.p, v.n);
        return;
    }
    int64_t end = (int64_t)((uint64_t)pos + (uint64_t)len);
    if (end >= n) {
        if (pos < n)
            add_capped(out, v.p + pos, v.n - (size_t)pos);
        return;
    }
    if (end < 0 || end < pos) {
        if (!d->panic) {
            if (end < 0)
                d->panic = kiln__xasprintf("unexpected error in processing substitution: "
                                           "runtime error: slice bounds out of range "
                                           "[:%lld]+v",
                                           (long long)end);
            else
                d->panic = kiln__xasprintf("unexpected error in processing substitution: "
                                           "runtime error: slice bounds out of range "
                                           "[%lld:%lld]+v",
                                           (long long)pos, (long long)end);
        }
        return;
    }
    add_capped(out, v.p + pos, (size_t)(end - pos));
}

/* strings.Replace(s, old, new, n) with n = 1 or all. An empty old inserts
 * new before every rune and at the end. */
static void fn_replace(kiln__buf *out, struct str s, struct str old, struct str rep, bool all)
{
    size_t i = 0;
    bool done = false;
    while (i <= s.n && out->len < MAX_EVAL_LEN) {
        const unsigned char *hit;
        if (done) {
            hit = NULL;
        } else if (!old.n) {
            hit = s.p + i;
        } else {
            hit = memmem(s.p + i, s.n - i, old.p, old.n);
        }
        if (!hit) {
            add_capped(out, s.p + i, s.n - i);
            return;
        }
        add_capped(out, s.p + i, (size_t)(hit - (s.p + i)));
        add_capped(out, rep.p, rep.n);
        i = (size_t)(hit - s.p) + old.n;
        if (!all)
            done = true;
        if (!old.n) {
            if (i == s.n)
                return;
            size_t w;
            decode_rune(s.p + i, s.n - i, &w);
            add_capped(out, s.p + i, w);
            i += w;
        }
    }
}

static int32_t case_rune(int32_t r, bool upper)
{
    if (r < 0x80) {
        if (upper && r >= 'a' && r <= 'z')
            return r - 32;
        if (!upper && r >= 'A' && r <= 'Z')
            return r + 32;
        return r;
    }
    locale_t loc = utf8_locale();
    if (!loc || r == RUNE_ERROR)
        return r;
    return (int32_t)(upper ? towupper_l((wint_t)r, loc) : towlower_l((wint_t)r, loc));
}

/* strings.ToUpper/ToLower (whole) or the first rune only (^ and ,). Invalid
 * UTF-8 becomes U+FFFD, as Go's strings.Map makes it. */
static void fn_case(kiln__buf *out, struct str s, bool upper, bool first_only)
{
    kiln__buf tmp = KILN__BUF_INIT;
    if (first_only) {
        if (s.n) {
            size_t w;
            add_rune(&tmp, case_rune(decode_rune(s.p, s.n, &w), upper));
            kiln__buf_add(&tmp, s.p + w, s.n - w);
        }
    } else if (is_ascii(s)) {
        for (size_t i = 0; i < s.n; i++)
            kiln__buf_addch(&tmp, (char)case_rune(s.p[i], upper));
    } else {
        for (size_t i = 0; i < s.n;) {
            size_t w;
            add_rune(&tmp, case_rune(decode_rune(s.p + i, s.n - i, &w), upper));
            i += w;
        }
    }
    add_capped(out, tmp.buf, tmp.len);
    kiln__buf_release(&tmp);
}

static void fn_trim(kiln__buf *out, struct str s, struct str pat, bool longest, bool suffix)
{
    if (!suffix) {
        size_t drop = trim_prefix_len(s, pat, longest);
        add_capped(out, s.p + drop, s.n - drop);
        return;
    }
    kiln__buf rs = KILN__BUF_INIT, rp = KILN__BUF_INIT, res = KILN__BUF_INIT;
    add_reversed(&rs, s);
    add_reversed(&rp, pat);
    size_t drop = trim_prefix_len((struct str){(unsigned char *)rs.buf, rs.len},
                                  (struct str){(unsigned char *)rp.buf, rp.len}, longest);
    add_reversed(&res, (struct str){(unsigned char *)rs.buf + drop, rs.len - drop});
    add_capped(out, res.buf, res.len);
    kiln__buf_release(&rs);
    kiln__buf_release(&rp);
    kiln__buf_release(&res);
}

static void eval_node(struct dyn *d, const struct tree *t, size_t idx, kiln__buf *out);

/* lookupFunc and the function it names. */
static void eval_func(struct dyn *d, const struct tree *t, const struct node *nd, kiln__buf *out)
{
    kiln__buf args[2] = {KILN__BUF_INIT, KILN__BUF_INIT};
    kiln__buf key = KILN__BUF_INIT;
    for (size_t i = 0; i < nd->nargs; i++)
        eval_node(d, t, nd->args[i], &args[i]);
    kiln__buf_add(&key, t->pool.buf + nd->off, nd->len);
    const char *val = dyn_value(d, key.buf);
    struct str v = {(const unsigned char *)val, strlen(val)};
    struct str a0 = {(unsigned char *)args[0].buf, args[0].len};
    struct str a1 = {(unsigned char *)args[1].buf, args[1].len};
    const char *name = nd->name;

    if (!strcmp(name, ",") || !strcmp(name, "^")) {
        fn_case(out, v, name[0] == '^', true);
    } else if (!strcmp(name, ",,") || !strcmp(name, "^^")) {
        fn_case(out, v, name[0] == '^', false);
    } else if (!strcmp(name, "#") && nd->nargs == 0) {
        char num[32];
        snprintf(num, sizeof num, "%zu", v.n);
        add_capped(out, num, strlen(num));
    } else if (!strcmp(name, "#") || !strcmp(name, "##") || !strcmp(name, "%") ||
               !strcmp(name, "%%")) {
        if (nd->nargs)
            fn_trim(out, v, a0, name[1] != '\0', name[0] == '%');
        else
            add_capped(out, v.p, v.n);
    } else if (!strcmp(name, ":")) {
        if (nd->nargs)
            fn_substr(d, out, v, args, nd->nargs);
        else
            add_capped(out, v.p, v.n);
    } else if (!strcmp(name, "/#") || !strcmp(name, "/%")) {
        /* replacePrefix / replaceSuffix want both words. */
        bool hit = false;
        if (nd->nargs == 2 && a0.n <= v.n)
            hit = name[1] == '#' ? !memcmp(v.p, a0.p, a0.n)
                                 : !memcmp(v.p + v.n - a0.n, a0.p, a0.n);
        if (!hit) {
            add_capped(out, v.p, v.n);
        } else if (name[1] == '#') {
            add_capped(out, a1.p, a1.n);
            add_capped(out, v.p + a0.n, v.n - a0.n);
        } else {
            add_capped(out, v.p, v.n - a0.n);
            add_capped(out, a1.p, a1.n);
        }
    } else if (!strcmp(name, "/") || !strcmp(name, "//")) {
        if (nd->nargs == 0)
            add_capped(out, v.p, v.n);
        else
            fn_replace(out, v, a0, nd->nargs == 2 ? a1 : (struct str){(const unsigned char *)"", 0},
                       name[1] == '/');
    } else {
        /* toDefault: "", "=", ":=", ":-", ":?", ":+" and any other name
         * (such as ",^"): the value, or the one default word when empty. */
        if (!v.n && nd->nargs == 1)
            add_capped(out, a0.p, a0.n);
        else
            add_capped(out, v.p, v.n);
    }
    kiln__buf_release(&args[0]);
    kiln__buf_release(&args[1]);
    kiln__buf_release(&key);
}

static void eval_node(struct dyn *d, const struct tree *t, size_t idx, kiln__buf *out)
{
    const struct node *nd = &t->v[idx];
    switch (nd->kind) {
    case N_TEXT:
        add_capped(out, t->pool.buf + nd->off, nd->len);
        break;
    case N_FUNC:
        eval_func(d, t, nd, out);
        break;
    case N_LIST:
        for (size_t i = 0; i < nd->count; i++)
            eval_node(d, t, t->kids[nd->first + i], out);
        break;
    }
}

/* Every ${NAME} anywhere in the tree that names a set key. */
static void collect_deps(struct dyn *d, struct dyn_entry *e, size_t idx, kiln__buf *key)
{
    const struct node *nd = &e->tree.v[idx];
    if (nd->kind == N_LIST) {
        for (size_t i = 0; i < nd->count; i++)
            collect_deps(d, e, e->tree.kids[nd->first + i], key);
    } else if (nd->kind == N_FUNC) {
        kiln__buf_reset(key);
        kiln__buf_add(key, e->tree.pool.buf + nd->off, nd->len);
        long i = find(d->s, key->buf);
        if (i >= 0)
            e->deps[e->ndeps++] = (size_t)i;
        for (size_t a = 0; a < nd->nargs; a++)
            collect_deps(d, e, nd->args[a], key);
    }
}

static void evaluate(struct dyn *d, size_t i)
{
    struct dyn_entry *e = &d->e[i];
    if (e->err || !e->parsed || e->is_text)
        return;
    kiln__buf out = KILN__BUF_INIT;
    eval_node(d, &e->tree, e->tree.root, &out);
    if (d->panic) {
        e->err = d->panic;
        d->panic = NULL;
        kiln__buf_release(&out);
        return;
    }
    e->result = kiln__buf_detach(&out);
}

/* Tarjan's strongly connected components: they come out dependencies
 * first, which is the evaluation order; a key in a component of more than
 * one key, or that refers to itself, is on a cycle. Each top-level call in
 * bash_utils.go starts afresh, so every key on a cycle ends up with the
 * cycle error, and keys that merely depend on a cycle do not. */
static void strongconnect(struct dyn *d, size_t v)
{
    struct dyn_entry *e = &d->e[v];
    e->index = e->low = d->counter++;
    d->stack[d->nstack++] = v;
    e->on_stack = true;
    bool self = false;
    for (size_t k = 0; k < e->ndeps; k++) {
        size_t w = e->deps[k];
        if (w == v)
            self = true;
        if (d->e[w].index < 0) {
            strongconnect(d, w);
            if (d->e[w].low < e->low)
                e->low = d->e[w].low;
        } else if (d->e[w].on_stack && d->e[w].index < e->low) {
            e->low = d->e[w].index;
        }
    }
    if (e->low != e->index)
        return;
    size_t top = d->nstack;
    while (d->stack[--d->nstack] != v)
        ;
    bool cyclic = self || top - d->nstack > 1;
    for (size_t k = d->nstack; k < top; k++) {
        size_t w = d->stack[k];
        d->e[w].on_stack = false;
        if (cyclic && !d->e[w].err)
            d->e[w].err = kiln__xstrdup("cycle in evaluating substitutions");
        else
            evaluate(d, w);
    }
}

/* bash_utils.go noBracesRE, ^\$[A-Z0-9_]+: the whole value is then wrapped,
 * so `$FOO-bar` is read as `${FOO-bar}` (a bad substitution in Cloud Build
 * too) and `$FOO` as `${FOO}`. */
static char *wrap_leading_name(const char *v)
{
    const char *p = v + 1;
    if (v[0] != '$' || !((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
        return kiln__xstrdup(v);
    return kiln__xasprintf("${%s}", v + 1);
}

/*
 * Unsupported operators: `${X-d}` and `${X+d}` are bad substitutions, and
 * `${X:?d}` and `${X:+d}` mean `${X:-d}`, exactly as drone/envsubst (and so
 * Cloud Build) parses them; kiln accepts what Cloud Build accepts. A value
 * with no ${ in it is left exactly as it is (escapes included), because
 * bash_utils.go only re-renders values whose parse is more than text.
 * Evaluated values are cut at 4001 bytes, every intermediate result too, so
 * nested replacements stay bounded; the length check that follows rejects
 * them.
 */
int kiln__subst_dynamic(kiln__subst *s, char **err)
{
    struct dyn d = {.s = s};
    size_t n = s->n;
    kiln__buf key = KILN__BUF_INIT;
    *err = NULL;
    d.e = kiln__xcalloc(n ? n : 1, sizeof *d.e);
    d.stack = kiln__xmalloc((n ? n : 1) * sizeof *d.stack);
    for (size_t i = 0; i < n; i++) {
        struct dyn_entry *e = &d.e[i];
        e->index = -1;
        e->work = wrap_leading_name(s->v[i].value);
        if (tree_parse(&e->tree, e->work)) {
            e->err = kiln__xstrdup("bad substitution");
            continue;
        }
        e->parsed = true;
        e->is_text = e->tree.v[e->tree.root].kind == N_TEXT;
        if (!e->is_text) {
            size_t nfunc = 0;
            for (size_t k = 0; k < e->tree.n; k++)
                nfunc += e->tree.v[k].kind == N_FUNC;
            e->deps = kiln__xmalloc((nfunc ? nfunc : 1) * sizeof *e->deps);
            collect_deps(&d, e, e->tree.root, &key);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (d.e[i].index < 0)
            strongconnect(&d, i);

    kiln__buf msg = KILN__BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (!d.e[i].err)
            continue;
        kiln__buf_addf(&msg, "%s[%s -> %s]: %s", msg.len ? ", " : "", s->v[i].key,
                       s->v[i].value, d.e[i].err);
    }
    int rc = 0;
    if (msg.len) {
        *err = kiln__buf_detach(&msg);
        rc = -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct dyn_entry *e = &d.e[i];
        if (rc == 0 && e->result) {
            free(s->v[i].value);
            s->v[i].value = e->result;
            e->result = NULL;
        }
        free(e->result);
        free(e->work);
        free(e->err);
        free(e->deps);
        if (e->parsed)
            tree_release(&e->tree);
    }
    free(d.e);
    free(d.stack);
    free(d.panic);
    kiln__buf_release(&msg);
    kiln__buf_release(&key);
    return rc;
}
