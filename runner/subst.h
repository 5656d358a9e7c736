/* SPDX-License-Identifier: MIT */
/*
 * Substitutions, with Cloud Build's rules (shared/reference/cloudbuild.md
 * §1.7 and §1.8).
 *
 * A kiln__subst holds the substitution values of one build: built-ins
 * (PROJECT_ID, BUILD_ID, COMMIT_SHA, ...), user keys (_FOO) from the file, and
 * overrides from the command line or a trigger. It also remembers which keys
 * any template read, so that "defined but never used" can be reported.
 *
 * Template grammar: `$$` is a literal `$` (scanned pairwise, left to right);
 * `$KEY` and `${KEY}` with KEY = [A-Z_][A-Z0-9_]* are parameters (the unbraced
 * form is greedy); anything else after `$` is left as it is. A parameter whose
 * key is neither defined nor a known built-in and does not start with `_` is
 * always an error ("key in the template %q is not a valid built-in
 * substitution"). An undefined user key expands to "" and is a warning, which
 * MUST_MATCH turns into an error.
 *
 * Messages are Cloud Build's texts, without file positions: the caller knows
 * where the template came from and prefixes FILE:LINE:COL.
 */
#ifndef KILN_SUBST_H
#define KILN_SUBST_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

typedef struct kiln__subst kiln__subst;

typedef void (*kiln__subst_each_cb)(void *data, const char *key, const char *value);

/* ^_[A-Z0-9_]+$ */
bool kiln__subst_is_user_key(const char *key);
/* PROJECT_ID, BUILD_ID, PROJECT_NUMBER, LOCATION, and the overridable ones. */
bool kiln__subst_is_builtin(const char *key);
/* TRIGGER_NAME, COMMIT_SHA, REVISION_ID, SHORT_SHA, REPO_NAME, REPO_FULL_NAME,
 * BRANCH_NAME, TAG_NAME, REF_NAME, TRIGGER_BUILD_CONFIG_PATH,
 * SERVICE_ACCOUNT_EMAIL, SERVICE_ACCOUNT. */
bool kiln__subst_is_overridable_builtin(const char *key);

kiln__subst *kiln__subst_create(void);
void kiln__subst_destroy(kiln__subst *s);

/* Set key to value (both copied), replacing an earlier value. */
void kiln__subst_set(kiln__subst *s, const char *key, const char *value);
/* NULL when unset. Does not mark the key as used. */
const char *kiln__subst_get(const kiln__subst *s, const char *key);
/* In insertion order. */
void kiln__subst_foreach(const kiln__subst *s, kiln__subst_each_cb cb, void *data);
size_t kiln__subst_count(const kiln__subst *s);

/*
 * Check a key given in the file's `substitutions:` (user keys only) or from
 * outside (--substitutions, a trigger: user keys or overridable built-ins).
 * Returns NULL when the key is fine, else a message the caller frees, such as
 * `substitution key "TEST_DATA" does not respect format "^_[A-Z0-9_]+$" and is
 * not an overridable built-in substitutions`.
 */
char *kiln__subst_check_key(const char *key, bool from_outside);

/*
 * Expand tmpl (Cloud Build template rules above) and append the result to
 * out. Marks every key read as used. Appends one message per problem to
 * errors (hard: invalid built-in) and warnings (soft: undefined user key);
 * either may be NULL to ignore. Each message is one line ending in '\n'.
 * Returns the number of hard errors.
 */
int kiln__subst_expand(kiln__subst *s, const char *tmpl, kiln__buf *out, kiln__buf *errors,
                       kiln__buf *warnings);

/* Keys that are set, are user keys (_FOO) and that no template read: one
 * `key %q in the substitution data is not matched in the template` line per
 * key, appended to warnings. Returns the count. */
int kiln__subst_unused(const kiln__subst *s, kiln__buf *warnings);

/*
 * Dynamic substitutions (options.dynamicSubstitutions): evaluate every value
 * with bash-style parameter expansion (§1.8: ${var}, ${#var}, ${var^},
 * ${var^^}, ${var,}, ${var,,}, ${var:n}, ${var:n:len}, ${var#p}, ${var##p},
 * ${var%p}, ${var%%p}, ${var:-d}, ${var=d}, ${var:=d}, ${var/p/r},
 * ${var//p/r}, ${var/#p/r}, ${var/%p/r}), recursively and in dependency order,
 * replacing the values in place. As in the drone/envsubst Cloud Build used,
 * ${var-d} and ${var+d} are bad substitutions and ${var:?d}, ${var:+d} act as
 * ${var:-d}; a value starting with $NAME is read with the rest of the value
 * inside braces (so $NAME alone is ${NAME}). Undefined variables are "".
 * Values are left untouched on failure. On failure returns -1 and sets
 * *err (caller frees) to Cloud Build's text, e.g.
 * `[_FOO -> ${${_BAR}}]: bad substitution` or `cycle in evaluating
 * substitutions`; returns 0 on success.
 */
int kiln__subst_dynamic(kiln__subst *s, char **err);

#endif /* KILN_SUBST_H */
