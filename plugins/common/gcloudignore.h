/* SPDX-License-Identifier: MIT */
/*
 * .gcloudignore as `gcloud builds submit` reads it (`gcloud topic
 * gcloudignore`), for the kubernetes executor's fill=upload: .gitignore's
 * syntax, git being the reference for what a pattern means, plus the
 * `#!include:FILE` line that inserts another file's patterns there.
 *
 *  - one pattern a line; blank lines and lines starting with '#' are
 *    skipped (write "\#" for a leading '#'); trailing spaces are dropped
 *    unless escaped ("\ "); a trailing '\r' is dropped;
 *  - a leading '!' re-includes what an earlier pattern excluded ("\!" for
 *    a leading '!'); a trailing '/' matches directories only;
 *  - a pattern with a '/' before its end is matched against the whole path
 *    from the root (a leading '/' only anchors); one without is matched
 *    against the last element of the path at any depth;
 *  - '*' and '?' do not match '/', [...] is a set ('!' or '^' negates,
 *    ranges, [:class:]), '\' escapes; "**" between slashes (or at either
 *    end) matches any number of directories;
 *  - the last pattern that matches a path decides; a path under an
 *    excluded directory is excluded whatever follows (git does not look
 *    inside an excluded directory, so nothing can re-include it).
 *
 * Unlike git, which quietly never matches a malformed pattern, a pattern
 * with an unterminated '[', an unknown [:class:] or a trailing '\' is an
 * error naming FILE:LINE:COL: the user meant something and should know.
 * Only the root's ignore file is read (as gcloud: no .gitignore of a
 * subdirectory, no global excludes).
 */
#ifndef KP_GCLOUDIGNORE_H
#define KP_GCLOUDIGNORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gi_rule {
    char *pat;     /* without '!', trailing '/' or leading '/' */
    bool negate;   /* a '!' pattern */
    bool dir_only; /* ended in '/' */
    bool anchored; /* had a '/' before its end: matched against the whole path */
} gi_rule;

typedef struct gi_rules {
    gi_rule *r;
    size_t n, cap;
    char *source; /* what the rules came from, for messages; NULL: none applies */
} gi_rules;

/* Add the patterns of TEXT (LEN bytes; the file NAME, for messages) to G.
 * `#!include:FILE` reads FILE relative to ROOT (NULL: includes are an
 * error). 0, or -1 with "NAME:LINE:COL: what was expected" in err. */
int gi_parse(gi_rules *g, const char *root, const char *name, const char *text, size_t len, char *err,
             size_t errcap);

/* Add the patterns of the file NAME, relative to ROOT. 0; -1 with err
 * saying why (a missing file: "NAME: no such file in ROOT"). */
int gi_load(gi_rules *g, const char *root, const char *name, char *err, size_t errcap);

/* The rules gcloud would apply when uploading ROOT: WHICH NULL: ROOT's
 * .gcloudignore when there is one, else gcloud's generated default when
 * ROOT has a .git or a .gitignore (.gcloudignore, .git, .gitignore and
 * #!include:.gitignore when it exists), else none; "none": none; else the
 * file WHICH (relative to ROOT), which must exist. g->source names what
 * applies. 0, or -1 with err. */
int gi_choose(gi_rules *g, const char *root, const char *which, char *err, size_t errcap);

/* Does the last matching rule exclude REL (relative to the root, '/'-
 * separated, no "./")? Its parents are not looked at: for a walk that does
 * not enter an excluded directory. */
bool gi_excluded(const gi_rules *g, const char *rel, bool is_dir);

/* REL or one of its parent directories excluded: what git check-ignore
 * says of a path. */
bool gi_path_excluded(const gi_rules *g, const char *rel, bool is_dir);

void gi_free(gi_rules *g);

/* The files to pack: ROOT walked without following symlinks, excluded
 * directories not entered. list holds "." then each kept path (directories
 * before what they hold), each ended by a NUL: tar's `--null -T -`. */
typedef struct gi_walk {
    char *list;
    size_t len, cap;
    uint64_t kept_files, kept_bytes; /* files: anything but a directory */
    uint64_t left_files, left_bytes; /* excluded, and all under excluded directories */
} gi_walk;

/* 0, or -1 with err (a directory that cannot be read). */
int gi_walk_tree(const gi_rules *g, const char *root, gi_walk *w, char *err, size_t errcap);
void gi_walk_free(gi_walk *w);

#endif
