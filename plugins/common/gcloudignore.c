/* SPDX-License-Identifier: MIT */
#include "gcloudignore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

#define INCLUDE_DEPTH 8 /* files including files: deeper is a cycle */
#define MAX_IGNORE_FILE (16u << 20)

/* The match's outcome, as git's wildmatch has it: besides yes and no, "no,
 * and no later start of a '*' can match either" (the text ran out, or a
 * '*' met a '/'), which keeps many stars from trying every split. */
enum { WM_MATCH, WM_NOMATCH, WM_ABORT_ALL, WM_ABORT_TO_STARSTAR };

static bool class_has(const char *name, size_t n, int c)
{
#define CLS(s, f)                                                                                                  \
    if (n == sizeof s - 1 && memcmp(name, s, n) == 0)                                                              \
        return f(c) != 0;
    CLS("alnum", isalnum)
    CLS("alpha", isalpha)
    CLS("blank", isblank)
    CLS("cntrl", iscntrl)
    CLS("digit", isdigit)
    CLS("graph", isgraph)
    CLS("lower", islower)
    CLS("print", isprint)
    CLS("punct", ispunct)
    CLS("space", isspace)
    CLS("upper", isupper)
    CLS("xdigit", isxdigit)
#undef CLS
    return false;
}

static bool class_known(const char *name, size_t n)
{
    static const char *const names[] = {"alnum", "alpha", "blank", "cntrl", "digit",  "graph",
                                        "lower", "print", "punct", "space", "upper", "xdigit"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return true;
    return false;
}

/* The set starting at P ('[') against the character TC (-1: only scan).
 * Returns the set's closing ']', or NULL with *bad at what is wrong (the
 * end of the pattern: unterminated; else an unknown class's '['). */
static const char *bracket(const char *p, int tc, bool *matched, const char **bad)
{
    const char *q = p + 1;
    bool negate = *q == '!' || *q == '^', hit = false, first = true;
    if (negate)
        q++;
    int prev = -1;
    for (; first || *q != ']'; first = false) {
        int c;
        if (!*q) {
            *bad = q;
            return NULL;
        }
        if (*q == '\\') {
            if (!*++q) {
                *bad = q;
                return NULL;
            }
            c = (unsigned char)*q++;
        } else if (*q == '-' && prev >= 0 && q[1] && q[1] != ']') {
            q++;
            if (*q == '\\' && !*++q) {
                *bad = q;
                return NULL;
            }
            int hi = (unsigned char)*q++;
            if (tc >= prev && tc <= hi)
                hit = true;
            prev = -1;
            continue;
        } else if (*q == '[' && q[1] == ':') {
            /* as git: "[:name:]" up to the next ']'; without the ':' before
             * it, the '[' is an ordinary member */
            const char *e = strchr(q + 2, ']');
            if (!e) {
                *bad = q + strlen(q);
                return NULL;
            }
            if (e > q + 2 && e[-1] == ':') {
                if (!class_known(q + 2, (size_t)(e - 1 - (q + 2)))) {
                    *bad = q;
                    return NULL;
                }
                if (tc >= 0 && class_has(q + 2, (size_t)(e - 1 - (q + 2)), tc))
                    hit = true;
                q = e + 1;
                prev = -1;
                continue;
            }
            c = '[';
            q++;
        } else {
            c = (unsigned char)*q++;
        }
        if (c == tc)
            hit = true;
        prev = c;
    }
    if (matched)
        *matched = hit != negate;
    return q;
}

/* git's wildmatch with WM_PATHNAME, from P against T; START is the
 * pattern's beginning (a "**" counts as such only after it or a '/'). */
static int wm(const char *start, const char *p, const char *t)
{
    for (; *p; p++, t++) {
        int tc = (unsigned char)*t;
        if (!tc && *p != '*')
            return WM_ABORT_ALL;
        switch (*p) {
        case '\\':
            p++;
            if ((unsigned char)*p != tc)
                return WM_NOMATCH;
            break;
        case '?':
            if (tc == '/')
                return WM_NOMATCH;
            break;
        case '[': {
            bool m = false;
            const char *bad;
            if (tc == '/')
                return WM_NOMATCH;
            const char *e = bracket(p, tc, &m, &bad);
            if (!e)
                return WM_ABORT_ALL; /* refused by the parser: not reached */
            if (!m)
                return WM_NOMATCH;
            p = e;
            break;
        }
        case '*': {
            const char *before = p;
            bool slash = false;
            if (*++p == '*') {
                while (*++p == '*')
                    ;
                /* "**" as a whole element: any number of directories */
                if ((before == start || before[-1] == '/') && (!*p || *p == '/')) {
                    if (*p == '/' && wm(start, p + 1, t) == WM_MATCH)
                        return WM_MATCH; /* "**" as no directory at all */
                    slash = true;
                }
            }
            if (!*p)
                return slash || !strchr(t, '/') ? WM_MATCH : WM_NOMATCH;
            for (;; t++) {
                int r = wm(start, p, t);
                if (r != WM_NOMATCH) {
                    if (!slash || r != WM_ABORT_TO_STARSTAR)
                        return r;
                } else if (!slash && *t == '/') {
                    return WM_ABORT_TO_STARSTAR;
                }
                if (!*t)
                    return WM_ABORT_ALL;
            }
        }
        default:
            if (*p != tc)
                return WM_NOMATCH;
        }
    }
    return *t ? WM_NOMATCH : WM_MATCH;
}

static bool rule_matches(const gi_rule *r, const char *rel, bool is_dir)
{
    if (r->dir_only && !is_dir)
        return false;
    const char *s = rel;
    if (!r->anchored) {
        const char *sl = strrchr(rel, '/');
        s = sl ? sl + 1 : rel;
    }
    return wm(r->pat, r->pat, s) == WM_MATCH;
}

bool gi_excluded(const gi_rules *g, const char *rel, bool is_dir)
{
    for (size_t i = g->n; i-- > 0;)
        if (rule_matches(&g->r[i], rel, is_dir))
            return !g->r[i].negate;
    return false;
}

bool gi_path_excluded(const gi_rules *g, const char *rel, bool is_dir)
{
    char *copy = kp_xstrndup(rel, strlen(rel));
    bool out = false;
    for (char *s = strchr(copy, '/'); s && !out; s = strchr(s + 1, '/')) {
        *s = '\0';
        out = gi_excluded(g, copy, true);
        *s = '/';
    }
    if (!out)
        out = gi_excluded(g, copy, is_dir);
    free(copy);
    return out;
}

/* ---- the file -------------------------------------------------------------- */

static int fail(char *err, size_t cap, const char *name, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int fail(char *err, size_t cap, const char *name, size_t line, size_t col, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (err && cap)
        snprintf(err, cap, "%s:%zu:%zu: %s", name, line, col, what);
    return -1;
}

/* The file NAME under ROOT, whole and NUL-terminated; -1 with *e an errno
 * value when it cannot be read (not a regular file, over MAX_IGNORE_FILE). */
static int read_under(const char *root, const char *name, char **out, size_t *len, int *e)
{
    char *path = kp_xrealloc(NULL, strlen(root) + strlen(name) + 2);
    sprintf(path, "%s/%s", root, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) {
        *e = errno;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        *e = errno;
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_IGNORE_FILE) {
        *e = S_ISDIR(st.st_mode) ? EISDIR : EFBIG;
        close(fd);
        return -1;
    }
    char *buf = kp_xrealloc(NULL, (size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t r;
    while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *e = errno;
            free(buf);
            close(fd);
            return -1;
        }
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int parse(gi_rules *g, const char *root, const char *name, const char *text, size_t len, char *err,
                 size_t cap, int depth);

static int include(gi_rules *g, const char *root, const char *name, size_t lineno, size_t col, const char *file,
                   char *err, size_t cap, int depth)
{
    if (!*file)
        return fail(err, cap, name, lineno, col, "expected a file name after '#!include:'");
    if (!root)
        return fail(err, cap, name, lineno, col, "#!include:%s is not allowed here", file);
    if (depth >= INCLUDE_DEPTH)
        return fail(err, cap, name, lineno, col,
                    "#!include:%s: includes nested too deep (a file that includes itself?)", file);
    char *text;
    size_t n;
    int e = 0;
    int rc = read_under(root, file, &text, &n, &e);
    if (rc) {
        char what[300];
        snprintf(what, sizeof what, "%.200s: %s", file, e == ENOENT ? "no such file" : strerror(e));
        return fail(err, cap, name, lineno, col, "cannot include %s", what);
    }
    rc = parse(g, root, file, text, n, err, cap, depth + 1);
    free(text);
    return rc;
}

/* P: a pattern git would take; else the offset of the fault. */
static int check_pattern(const char *p, size_t *bad_at, const char **why)
{
    for (size_t i = 0; p[i]; i++) {
        if (p[i] == '\\') {
            if (!p[++i]) {
                *bad_at = i - 1;
                *why = "expected a character after '\\' (write '\\\\' for a backslash)";
                return -1;
            }
        } else if (p[i] == '[') {
            const char *bad = NULL;
            const char *e = bracket(p + i, -1, NULL, &bad);
            if (!e) {
                *bad_at = !*bad ? i : (size_t)(bad - p);
                *why = !*bad ? "expected ']' to close this '[' (write '\\[' for a literal '[')"
                             : "expected a character class: alnum alpha blank cntrl digit graph lower print "
                               "punct space upper xdigit";
                return -1;
            }
            i = (size_t)(e - p);
        }
    }
    return 0;
}

static void add_rule(gi_rules *g, const char *p, size_t n, bool negate)
{
    bool dir_only = false;
    if (n && p[n - 1] == '/')
        dir_only = true, n--;
    bool anchored = memchr(p, '/', n) != NULL;
    if (n && p[0] == '/')
        p++, n--;
    if (!n)
        return; /* "/" or "!/": git matches nothing with it */
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->r = kp_xrealloc(g->r, g->cap * sizeof *g->r);
    }
    g->r[g->n++] = (gi_rule){.pat = kp_xstrndup(p, n), .negate = negate, .dir_only = dir_only, .anchored = anchored};
}

static int parse(gi_rules *g, const char *root, const char *name, const char *text, size_t len, char *err,
                 size_t cap, int depth)
{
    size_t i = 0, lineno = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        i += n + 1;
        lineno++;
        if (n && line[n - 1] == '\r')
            n--;
        if (n >= 10 && memcmp(line, "#!include:", 10) == 0) {
            size_t k = n;
            while (k > 10 && (line[k - 1] == ' ' || line[k - 1] == '\t'))
                k--;
            char *file = kp_xstrndup(line + 10, k - 10);
            int rc = memchr(file, '\0', k - 10)
                         ? fail(err, cap, name, lineno, 11, "expected a file name after '#!include:'")
                         : include(g, root, name, lineno, 11, file, err, cap, depth);
            free(file);
            if (rc)
                return rc;
            continue;
        }
        if (!n || line[0] == '#')
            continue;
        /* trailing spaces go, unless the last is escaped */
        size_t keep = 0;
        for (size_t k = 0; k < n; k++) {
            if (line[k] == '\\' && k + 1 < n)
                keep = ++k + 1;
            else if (line[k] != ' ')
                keep = k + 1;
        }
        n = keep;
        if (!n)
            continue;
        if (memchr(line, '\0', n))
            return fail(err, cap, name, lineno, (size_t)((const char *)memchr(line, '\0', n) - line) + 1,
                        "expected text, not a NUL byte");
        bool negate = line[0] == '!';
        size_t off = negate ? 1 : 0;
        size_t at;
        const char *why;
        char *pat = kp_xstrndup(line + off, n - off);
        if (check_pattern(pat, &at, &why)) {
            free(pat);
            return fail(err, cap, name, lineno, off + at + 1, "%s", why);
        }
        add_rule(g, pat, n - off, negate);
        free(pat);
    }
    return 0;
}

int gi_parse(gi_rules *g, const char *root, const char *name, const char *text, size_t len, char *err,
             size_t errcap)
{
    return parse(g, root, name, text, len, err, errcap, 0);
}

int gi_load(gi_rules *g, const char *root, const char *name, char *err, size_t errcap)
{
    char *text;
    size_t n;
    int e = 0;
    int rc = read_under(root, name, &text, &n, &e);
    if (rc) {
        if (err && errcap)
            snprintf(err, errcap, "%s: %s in %s", name, e == ENOENT ? "no such file" : strerror(e), root);
        return -1;
    }
    rc = parse(g, root, name, text, n, err, errcap, 0);
    free(text);
    return rc;
}

static bool exists(const char *root, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", root, name);
    return lstat(path, &st) == 0;
}

int gi_choose(gi_rules *g, const char *root, const char *which, char *err, size_t errcap)
{
    if (which && strcmp(which, "none") == 0)
        return 0;
    if (which && *which) {
        g->source = kp_xstrndup(which, strlen(which));
        return gi_load(g, root, which, err, errcap);
    }
    if (exists(root, ".gcloudignore")) {
        g->source = kp_xstrndup(".gcloudignore", 13);
        return gi_load(g, root, ".gcloudignore", err, errcap);
    }
    bool gitignore = exists(root, ".gitignore");
    if (!gitignore && !exists(root, ".git"))
        return 0;
    static const char dflt[] = ".gcloudignore\n.git\n.gitignore\n";
    static const char dflt_inc[] = ".gcloudignore\n.git\n.gitignore\n#!include:.gitignore\n";
    g->source = kp_xstrndup(gitignore ? "gcloud's default (.git, .gitignore and what .gitignore lists)"
                                   : "gcloud's default (.git)",
                         strlen(gitignore ? "gcloud's default (.git, .gitignore and what .gitignore lists)"
                                          : "gcloud's default (.git)"));
    return gitignore ? parse(g, root, "the default .gcloudignore", dflt_inc, sizeof dflt_inc - 1, err, errcap, 0)
                     : parse(g, root, "the default .gcloudignore", dflt, sizeof dflt - 1, err, errcap, 0);
}

void gi_free(gi_rules *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->r[i].pat);
    free(g->r);
    free(g->source);
    memset(g, 0, sizeof *g);
}

/* ---- the walk ------------------------------------------------------------------ */

static void list_add(gi_walk *w, const char *rel, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1 << 16;
        while (w->cap < w->len + n + 1)
            w->cap *= 2;
        w->list = kp_xrealloc(w->list, w->cap);
    }
    memcpy(w->list + w->len, rel, n);
    w->list[w->len + n] = '\0';
    w->len += n + 1;
}

/* PATH is ROOT/REL in one buffer (REL at path + rootlen + 1, or "" for the
 * root itself); KEEP: listed, else only counted. */
static int walk(const gi_rules *g, char **path, size_t *pcap, size_t rootlen, size_t len, bool keep, gi_walk *w,
                char *err, size_t cap)
{
    DIR *d = opendir(*path);
    if (!d) {
        if (err && cap)
            snprintf(err, cap, "cannot read the directory %s: %s", *path, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
            continue;
        size_t nl = strlen(nm), sub = len + 1 + nl;
        if (sub + 1 > *pcap) {
            *pcap = 2 * (sub + 1);
            *path = kp_xrealloc(*path, *pcap);
        }
        (*path)[len] = '/';
        memcpy(*path + len + 1, nm, nl + 1);
        struct stat st;
        if (lstat(*path, &st)) {
            (*path)[len] = '\0';
            continue; /* gone meanwhile */
        }
        bool dir = S_ISDIR(st.st_mode);
        const char *rel = *path + rootlen + 1;
        bool kept = keep && !gi_excluded(g, rel, dir);
        if (kept)
            list_add(w, rel, sub - rootlen - 1);
        if (dir) {
            rc = walk(g, path, pcap, rootlen, sub, kept, w, err, cap);
        } else if (kept) {
            w->kept_files++;
            w->kept_bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        } else {
            w->left_files++;
            w->left_bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        }
        (*path)[len] = '\0';
    }
    closedir(d);
    return rc;
}

int gi_walk_tree(const gi_rules *g, const char *root, gi_walk *w, char *err, size_t errcap)
{
    memset(w, 0, sizeof *w);
    list_add(w, ".", 1);
    size_t rootlen = strlen(root);
    while (rootlen > 1 && root[rootlen - 1] == '/')
        rootlen--;
    size_t pcap = rootlen + 256;
    char *path = kp_xrealloc(NULL, pcap);
    memcpy(path, root, rootlen);
    path[rootlen] = '\0';
    int rc = walk(g, &path, &pcap, rootlen, rootlen, true, w, err, errcap);
    free(path);
    return rc;
}

void gi_walk_free(gi_walk *w)
{
    free(w->list);
    memset(w, 0, sizeof *w);
}
