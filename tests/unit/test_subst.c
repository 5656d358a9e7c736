/* SPDX-License-Identifier: MIT */
/*
 * Substitutions: the template pass and its messages (cloudbuild.md §1.7),
 * key checks, and dynamic substitutions with every test vector of §1.8 plus
 * the rest of cloud-build-local's bash_utils_test.go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "subst.h"

/* A store from "K=V" strings, in order. */
static kiln__subst *make(const char *first, ...)
{
    kiln__subst *s = kiln__subst_create();
    va_list ap;
    va_start(ap, first);
    for (const char *kv = first; kv; kv = va_arg(ap, const char *)) {
        const char *eq = strchr(kv, '=');
        char *key = strndup(kv, (size_t)(eq - kv));
        kiln__subst_set(s, key, eq + 1);
        free(key);
    }
    va_end(ap);
    return s;
}

struct expansion {
    kiln__buf out, errors, warnings;
    int nerr;
};

static void expand(kiln__subst *s, const char *tmpl, struct expansion *x)
{
    kiln__buf_init(&x->out);
    kiln__buf_init(&x->errors);
    kiln__buf_init(&x->warnings);
    x->nerr = kiln__subst_expand(s, tmpl, &x->out, &x->errors, &x->warnings);
}

static void expansion_release(struct expansion *x)
{
    kiln__buf_release(&x->out);
    kiln__buf_release(&x->errors);
    kiln__buf_release(&x->warnings);
}

/* Expand and check output, with no error and no warning. */
static void assert_expands(kiln__subst *s, const char *tmpl, const char *want)
{
    struct expansion x;
    expand(s, tmpl, &x);
    assert_string_equal(x.out.buf, want);
    assert_int_equal(x.nerr, 0);
    assert_string_equal(x.errors.buf, "");
    assert_string_equal(x.warnings.buf, "");
    expansion_release(&x);
}

/* ---- template grammar (§1.7.3, cloud-build-local subst_test.go) ---- */

static void test_dollar_escapes(void **state)
{
    kiln__subst *s = make("_VAR=World", "_FOO=foo", NULL);
    assert_expands(s, "$$", "$");
    assert_expands(s, "$$_FOO", "$_FOO");
    assert_expands(s, "$$$_FOO", "$foo");
    assert_expands(s, "$$$_VAR", "$World");
    assert_expands(s, "Hello $${_VAR}_FOO, $_VAR", "Hello ${_VAR}_FOO, World");
    assert_expands(s, "Hello $$$$_VAR $$$_VAR, $_VAR, $$_VAR", "Hello $$_VAR $World, World, $_VAR");
    assert_expands(s, "cost: 5$", "cost: 5$");
    kiln__subst_destroy(s);
}

static void test_keys_braced_and_greedy(void **state)
{
    kiln__subst *s = make("_VAR=World", "_FOO=foo", NULL);
    assert_expands(s, "Hello $_VAR", "Hello World");
    assert_expands(s, "Hello $_VARfoo", "Hello Worldfoo");
    assert_expands(s, "Hello ${_VAR}_FOO", "Hello World_FOO");
    assert_expands(s, "Hello $_VAR$_VAR", "Hello WorldWorld");
    assert_expands(s, "Hello, 世界  FOO$_VAR", "Hello, 世界  FOOWorld");
    assert_expands(s, "${_FOO}BAR", "fooBAR");

    /* Greedy: $_FOOBAR is the key _FOOBAR, not _FOO followed by BAR. */
    struct expansion x;
    expand(s, "$_FOOBAR", &x);
    assert_string_equal(x.out.buf, "");
    assert_int_equal(x.nerr, 0);
    assert_string_equal(x.warnings.buf,
                        "key in the template \"_FOOBAR\" is not matched in the substitution "
                        "data; substitutions = map[_FOO:foo _VAR:World]\n");
    expansion_release(&x);
    kiln__subst_destroy(s);
}

static void test_not_parameters_left_alone(void **state)
{
    kiln__subst *s = make("_FOO=foo", NULL);
    assert_expands(s, "$(checksum file)", "$(checksum file)");
    assert_expands(s, "echo $home ${home} $1 ${1} $", "echo $home ${home} $1 ${1} $");
    assert_expands(s, "${_FOO", "${_FOO");
    assert_expands(s, "${}", "${}");
    assert_expands(s, "\\$_FOO", "\\foo");
    assert_expands(s, "", "");
    kiln__subst_destroy(s);
}

static void test_builtins(void **state)
{
    kiln__subst *s = make("PROJECT_ID=my-project", "COMMIT_SHA=my-sha", NULL);
    assert_expands(s, "gcr.io/$PROJECT_ID/app:${COMMIT_SHA}", "gcr.io/my-project/app:my-sha");
    /* Known built-ins without a value are "" and silent. */
    assert_expands(s, "[$BRANCH_NAME][$TAG_NAME][${LOCATION}][$SERVICE_ACCOUNT]", "[][][][]");
    kiln__subst_destroy(s);
}

static void test_invalid_builtin_is_an_error(void **state)
{
    kiln__subst *s = make("_FOO=foo", NULL);
    struct expansion x;
    expand(s, "bash -c 'echo $HOME and ${ENTRIES_DIR} and $_FOO'", &x);
    assert_int_equal(x.nerr, 2);
    assert_string_equal(x.errors.buf,
                        "key in the template \"HOME\" is not a valid built-in substitution\n"
                        "key in the template \"ENTRIES_DIR\" is not a valid built-in "
                        "substitution\n");
    assert_string_equal(x.out.buf, "bash -c 'echo  and  and foo'");
    assert_string_equal(x.warnings.buf, "");
    expansion_release(&x);

    /* `_` alone does not match ^_[A-Z0-9_]+$, so it is no user key. */
    expand(s, "$_", &x);
    assert_int_equal(x.nerr, 1);
    assert_string_equal(x.errors.buf,
                        "key in the template \"_\" is not a valid built-in substitution\n");
    expansion_release(&x);

    /* Escaped, it is not a parameter at all. */
    assert_expands(s, "echo $$HOME $${FOO}", "echo $HOME ${FOO}");
    /* NULL message buffers still count. */
    kiln__buf out = KILN__BUF_INIT;
    assert_int_equal(kiln__subst_expand(s, "$HOME$PATH", &out, NULL, NULL), 2);
    kiln__buf_release(&out);
    kiln__subst_destroy(s);
}

static void test_undefined_user_key_warning(void **state)
{
    /* %+v of a Go map: keys sorted, K:V separated by spaces; built-ins kiln
     * keeps in the same store are not part of the build's map. */
    kiln__subst *s = make("_ZED=z", "PROJECT_ID=p", "_ALPHA=a b", NULL);
    struct expansion x;
    expand(s, "a${_X}b$_Y", &x);
    assert_string_equal(x.out.buf, "ab");
    assert_int_equal(x.nerr, 0);
    assert_string_equal(x.warnings.buf,
                        "key in the template \"_X\" is not matched in the substitution data; "
                        "substitutions = map[_ALPHA:a b _ZED:z]\n"
                        "key in the template \"_Y\" is not matched in the substitution data; "
                        "substitutions = map[_ALPHA:a b _ZED:z]\n");
    expansion_release(&x);
    kiln__subst_destroy(s);

    s = kiln__subst_create();
    expand(s, "$_X", &x);
    assert_string_equal(x.warnings.buf,
                        "key in the template \"_X\" is not matched in the substitution data; "
                        "substitutions = map[]\n");
    expansion_release(&x);
    kiln__subst_destroy(s);
}

static void test_unused(void **state)
{
    kiln__subst *s = make("_X=1", "_Y=2", "SHORT_SHA=abc", "_Z=3", NULL);
    kiln__buf w = KILN__BUF_INIT;
    assert_int_equal(kiln__subst_unused(s, &w), 3);
    kiln__buf_release(&w);

    kiln__buf out = KILN__BUF_INIT;
    kiln__subst_expand(s, "$_X ${_Z} $SHORT_SHA", &out, NULL, NULL);
    assert_string_equal(out.buf, "1 3 abc");
    assert_int_equal(kiln__subst_unused(s, &w), 1);
    assert_string_equal(w.buf, "key \"_Y\" in the substitution data is not matched in the template\n");
    /* An escaped reference does not count as a use. */
    kiln__subst_expand(s, "$$_Y", &out, NULL, NULL);
    assert_int_equal(kiln__subst_unused(s, NULL), 1);
    kiln__subst_expand(s, "$_Y", &out, NULL, NULL);
    assert_int_equal(kiln__subst_unused(s, NULL), 0);
    kiln__buf_release(&w);
    kiln__buf_release(&out);
    kiln__subst_destroy(s);
}

static void test_linear_expansion(void **state)
{
    /* 200 000 references; a quadratic pass would not finish in time. */
    kiln__subst *s = make("_A=x", NULL);
    kiln__buf t = KILN__BUF_INIT, out = KILN__BUF_INIT;
    for (int i = 0; i < 200000; i++)
        kiln__buf_adds(&t, i % 2 ? "$_A" : "$$");
    assert_int_equal(kiln__subst_expand(s, t.buf, &out, NULL, NULL), 0);
    assert_int_equal(out.len, 200000);
    kiln__buf_release(&t);
    kiln__buf_release(&out);
    kiln__subst_destroy(s);
}

/* ---- key checks and the store ---- */

static void assert_check(const char *key, bool outside, const char *want)
{
    char *msg = kiln__subst_check_key(key, outside);
    if (!want) {
        assert_null(msg);
        return;
    }
    assert_non_null(msg);
    assert_string_equal(msg, want);
    free(msg);
}

static void test_check_key(void **state)
{
    assert_check("_OK", false, NULL);
    assert_check("_OK", true, NULL);
    assert_check("TEST_DATA", false,
                 "substitution key \"TEST_DATA\" does not respect format \"^_[A-Z0-9_]+$\" and is "
                 "not an overridable built-in substitutions");
    assert_check("TEST_DATA", true,
                 "substitution key \"TEST_DATA\" does not respect format \"^_[A-Z0-9_]+$\" and is "
                 "not an overridable built-in substitutions");
    assert_check("SHORT_SHA", true, NULL);
    assert_check("SHORT_SHA", false,
                 "substitution key \"SHORT_SHA\" does not respect format \"^_[A-Z0-9_]+$\"");
    assert_check("PROJECT_ID", true,
                 "substitution key \"PROJECT_ID\" does not respect format \"^_[A-Z0-9_]+$\" and "
                 "is not an overridable built-in substitutions");
    assert_check("_lower", true,
                 "substitution key \"_lower\" does not respect format \"^_[A-Z0-9_]+$\" and is "
                 "not an overridable built-in substitutions");
    assert_check("_", false,
                 "substitution key \"_\" does not respect format \"^_[A-Z0-9_]+$\" and is not an "
                 "overridable built-in substitutions");
    assert_check("a\"b\n", true,
                 "substitution key \"a\\\"b\\n\" does not respect format \"^_[A-Z0-9_]+$\" and "
                 "is not an overridable built-in substitutions");
    char key[102];
    memset(key, 'A', sizeof key - 1);
    key[0] = '_';
    key[101] = '\0';
    char *msg = kiln__subst_check_key(key, true);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "\" too long (max: 100)"));
    assert_int_equal(strncmp(msg, "substitution key \"_AAA", 21), 0);
    free(msg);
    key[100] = '\0';
    assert_check(key, false, NULL);
}

static void test_key_classes(void **state)
{
    assert_true(kiln__subst_is_user_key("_A"));
    assert_true(kiln__subst_is_user_key("_0_"));
    assert_false(kiln__subst_is_user_key("_"));
    assert_false(kiln__subst_is_user_key("_a"));
    assert_false(kiln__subst_is_user_key("A_"));
    assert_true(kiln__subst_is_builtin("PROJECT_ID"));
    assert_true(kiln__subst_is_builtin("LOCATION"));
    assert_true(kiln__subst_is_builtin("REF_NAME"));
    assert_false(kiln__subst_is_builtin("HOME"));
    assert_false(kiln__subst_is_overridable_builtin("BUILD_ID"));
    assert_true(kiln__subst_is_overridable_builtin("TRIGGER_BUILD_CONFIG_PATH"));
    assert_true(kiln__subst_is_overridable_builtin("SERVICE_ACCOUNT"));
}

static void collect(void *data, const char *key, const char *value)
{
    kiln__buf_addf(data, "%s=%s;", key, value);
}

static void test_store(void **state)
{
    kiln__subst *s = kiln__subst_create();
    assert_int_equal(kiln__subst_count(s), 0);
    assert_null(kiln__subst_get(s, "_A"));
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "_K%d", i);
        kiln__subst_set(s, key, key + 1);
    }
    kiln__subst_set(s, "_K7", "seven");
    kiln__subst_set(s, "_EMPTY", "");
    assert_int_equal(kiln__subst_count(s), 301);
    assert_string_equal(kiln__subst_get(s, "_K7"), "seven");
    assert_string_equal(kiln__subst_get(s, "_K299"), "K299");
    assert_string_equal(kiln__subst_get(s, "_EMPTY"), "");
    kiln__subst_destroy(s);

    s = make("_B=2", "_A=1", "_C=3", NULL);
    kiln__subst_set(s, "_A", "one");
    kiln__buf b = KILN__BUF_INIT;
    kiln__subst_foreach(s, collect, &b);
    assert_string_equal(b.buf, "_B=2;_A=one;_C=3;");
    kiln__buf_release(&b);
    kiln__subst_destroy(s);
    kiln__subst_destroy(NULL);
}

/* ---- dynamic substitutions (§1.8) ---- */

static void assert_value(kiln__subst *s, const char *key, const char *want)
{
    const char *v = kiln__subst_get(s, key);
    assert_non_null(v);
    assert_string_equal(v, want);
}

static kiln__subst *dyn_ok(kiln__subst *s)
{
    char *err = (char *)"unset";
    int rc = kiln__subst_dynamic(s, &err);
    if (rc)
        fail_msg("dynamic failed: %s", err);
    assert_null(err);
    return s;
}

/* Fails, returns the message (caller frees) and checks values untouched. */
static char *dyn_err(kiln__subst *s)
{
    kiln__buf before = KILN__BUF_INIT, after = KILN__BUF_INIT;
    kiln__subst_foreach(s, collect, &before);
    char *err = NULL;
    assert_int_equal(kiln__subst_dynamic(s, &err), -1);
    assert_non_null(err);
    kiln__subst_foreach(s, collect, &after);
    assert_string_equal(before.buf, after.buf);
    kiln__buf_release(&before);
    kiln__buf_release(&after);
    return err;
}

static void test_vector_substring_and_replace(void **state)
{
    kiln__subst *s = dyn_ok(make("TAG_NAME=v0-1-1", "DROP_VERSION=${TAG_NAME:1}",
                                 "UNDERSCORES=${DROP_VERSION//-/_}", "UNEFFECTED=ok here", NULL));
    assert_value(s, "TAG_NAME", "v0-1-1");
    assert_value(s, "DROP_VERSION", "0-1-1");
    assert_value(s, "UNDERSCORES", "0_1_1");
    assert_value(s, "UNEFFECTED", "ok here");
    kiln__subst_destroy(s);
}

static void test_vector_default_values_and_case(void **state)
{
    kiln__subst *s =
        dyn_ok(make("_MOON=${UNDEFINED_VALUE:-${_EARTH}}", "_EARTH=${_VENUS,}",
                    "_VENUS=${BRANCH_NAME^^}", "BRANCH_NAME=feature/xtpo", NULL));
    assert_value(s, "_VENUS", "FEATURE/XTPO");
    assert_value(s, "_EARTH", "fEATURE/XTPO");
    assert_value(s, "_MOON", "fEATURE/XTPO");
    assert_value(s, "BRANCH_NAME", "feature/xtpo");
    kiln__subst_destroy(s);
}

static void test_vector_middle_needs_braces(void **state)
{
    kiln__subst *s = dyn_ok(make("TAG_NAME=v0-1-1", "REPO_NAME=DEMO_REPO",
                                 "MIDDLE=my-app-${TAG_NAME:1}-prod",
                                 "MULTIPLE=some-prefix-${REPO_NAME,,}-tag-${TAG_NAME}-staging",
                                 "NEED_CURLY_BRACES=my-app-$TAG_NAME-prod", NULL));
    assert_value(s, "MIDDLE", "my-app-0-1-1-prod");
    assert_value(s, "MULTIPLE", "some-prefix-demo_repo-tag-v0-1-1-staging");
    assert_value(s, "NEED_CURLY_BRACES", "my-app-$TAG_NAME-prod");
    kiln__subst_destroy(s);
}

static void test_vector_assign_default(void **state)
{
    kiln__subst *s = dyn_ok(make("NOT_BAR=some value", "FOO=${BAR:=default}", NULL));
    assert_value(s, "FOO", "default");
    assert_value(s, "NOT_BAR", "some value");
    /* Nothing is assigned: BAR stays unset. */
    assert_null(kiln__subst_get(s, "BAR"));
    kiln__subst_destroy(s);
}

static void test_vector_undefined_is_empty(void **state)
{
    kiln__subst *s = dyn_ok(make("NOT_BAR=some value", "FOO=${BAR:1}", NULL));
    assert_value(s, "FOO", "");
    kiln__subst_destroy(s);
}

static void test_vector_self_cycle(void **state)
{
    kiln__subst *s = make("FOO=${FOO^^}", "UNEFFECTED=ok here", NULL);
    char *err = dyn_err(s);
    assert_string_equal(err, "[FOO -> ${FOO^^}]: cycle in evaluating substitutions");
    free(err);
    kiln__subst_destroy(s);
}

static void test_vector_chain_cycle(void **state)
{
    /* Every key on the cycle is reported; UNEFFECTED, which only reads a
     * plain value, is not. */
    kiln__subst *s = make("FOO=$BAR", "BAR=$BAZ", "BAZ=$FOO", "RAW_VALUE=ok here",
                          "UNEFFECTED=$RAW_VALUE", "AFTER=${FOO}x", NULL);
    char *err = dyn_err(s);
    assert_string_equal(err, "[FOO -> $BAR]: cycle in evaluating substitutions, "
                             "[BAR -> $BAZ]: cycle in evaluating substitutions, "
                             "[BAZ -> $FOO]: cycle in evaluating substitutions");
    free(err);
    kiln__subst_destroy(s);
}

static void test_vector_bad_substitution(void **state)
{
    kiln__subst *s = make("_FOO=${${_BAR}}", NULL);
    char *err = dyn_err(s);
    assert_string_equal(err, "[_FOO -> ${${_BAR}}]: bad substitution");
    free(err);
    kiln__subst_destroy(s);

    s = make("_FOO=${${_BAR}}", "_BAZ=${${_FOO}/sdfg/xcvb}", NULL);
    err = dyn_err(s);
    assert_string_equal(err, "[_FOO -> ${${_BAR}}]: bad substitution, "
                             "[_BAZ -> ${${_FOO}/sdfg/xcvb}]: bad substitution");
    free(err);
    kiln__subst_destroy(s);

    /* A key that reads a broken key is not itself in error. */
    s = make("_FOO=${${_BAR}}", "_BAZ=${_FOO}-prod", "_OK=hello", "_OK_TRUNCATED=${_OK:0:2}",
             NULL);
    err = dyn_err(s);
    assert_string_equal(err, "[_FOO -> ${${_BAR}}]: bad substitution");
    free(err);
    kiln__subst_destroy(s);
}

static void test_vector_list_nodes_at_depth(void **state)
{
    kiln__subst *s = dyn_ok(make("BRANCH_NAME=car409-patch-1",
                                 "_HEAD_REPO_URL=https://github.com/navierula/cloud-builders",
                                 "_BRANCH_FOR_IMAGE_NAME=${_BRANCH_NO_PREFIX//-//+}",
                                 "_BRANCH_NO_PREFIX=${BRANCH_NAME#*_}",
                                 "_IMAGE_NAME=my-app-${_BRANCH_FOR_IMAGE_NAME}-prod",
                                 "_NEW_IMAGE_NAME=my-app-${_BRANCH_FOR_IMAGE_NAME//+//-}-prod",
                                 NULL));
    assert_value(s, "_BRANCH_NO_PREFIX", "car409-patch-1");
    assert_value(s, "_BRANCH_FOR_IMAGE_NAME", "car409+patch+1");
    assert_value(s, "_IMAGE_NAME", "my-app-car409+patch+1-prod");
    assert_value(s, "_NEW_IMAGE_NAME", "my-app-car409-patch-1-prod");
    assert_value(s, "_HEAD_REPO_URL", "https://github.com/navierula/cloud-builders");
    kiln__subst_destroy(s);
}

static void test_dynamic_basic_and_lists(void **state)
{
    kiln__subst *s = dyn_ok(make("NO_BRACES=basic replacement no braces", "_FOO=$NO_BRACES",
                                 "_BAR=${HAS_BRACES}", "HAS_BRACES=basic replacement with braces",
                                 "FOO=hello", "BAR=to", "BAZ=you", "COMBINED=${FOO} ${BAR} ${BAZ}",
                                 "COMBINED_REPEATED=${FOO}+++${FOO}***${FOO} ${FOO}",
                                 "APPENDED=${FOO}navie", "WITH_FUNC=${FOO^^} navie ${BAZ}",
                                 "tagName=v0-1-1", "_DROP_VERSION=${tagName:1}", NULL));
    assert_value(s, "_FOO", "basic replacement no braces");
    assert_value(s, "_BAR", "basic replacement with braces");
    assert_value(s, "COMBINED", "hello to you");
    assert_value(s, "COMBINED_REPEATED", "hello+++hello***hello hello");
    assert_value(s, "APPENDED", "hellonavie");
    assert_value(s, "WITH_FUNC", "HELLO navie you");
    assert_value(s, "_DROP_VERSION", "0-1-1");
    kiln__subst_destroy(s);
}

static void test_dynamic_issue_118(void **state)
{
    /* cloud-build-local issue #118 */
    kiln__subst *s = dyn_ok(make("TAG_NAME=v1.2.3", "SHORT_SHA=abc1234",
                                 "_IMAGE_TAG=${TAG_NAME:-latest}",
                                 "_REVISION_SUFFIX_TAG=${TAG_NAME//./-}",
                                 "_REVISION_SUFFIX=${_REVISION_SUFFIX_TAG:-${SHORT_SHA}}", NULL));
    assert_value(s, "_IMAGE_TAG", "v1.2.3");
    assert_value(s, "_REVISION_SUFFIX_TAG", "v1-2-3");
    assert_value(s, "_REVISION_SUFFIX", "v1-2-3");
    kiln__subst_set(s, "TAG_NAME", "");
    kiln__subst_set(s, "_IMAGE_TAG", "${TAG_NAME:-latest}");
    kiln__subst_set(s, "_REVISION_SUFFIX_TAG", "${TAG_NAME//./-}");
    kiln__subst_set(s, "_REVISION_SUFFIX", "${_REVISION_SUFFIX_TAG:-${SHORT_SHA}}");
    dyn_ok(s);
    assert_value(s, "_IMAGE_TAG", "latest");
    assert_value(s, "_REVISION_SUFFIX", "abc1234");
    kiln__subst_destroy(s);
}

static void test_dynamic_operators(void **state)
{
    kiln__subst *s = dyn_ok(make(
        "V=path/to/file.tar.gz", "E=", "N=-3", "_LEN=${#V}", "_S1=${V:5}", "_S2=${V:5:2}",
        "_S3=${V:${N}}", "_S4=${V:100}", "_S5=${V:x}", "_P1=${V#*/}", "_P2=${V##*/}",
        "_P3=${V%.*}", "_P4=${V%%.*}", "_P5=${V#[a-p]?t}", "_R1=${V/t/T}", "_R2=${V//t/T}",
        "_R3=${V/#path/PATH}", "_R4=${V/%gz/xz}", "_R5=${V/#nope/x}", "_R7=${V/t/}", "_C1=${V^}", "_C2=${V^^}", "_D1=${E:-d}", "_D2=${E=d}", "_D3=${V:=d}",
        "_D4=${E:?d}", "_D5=${E:+d}", "_D6=${V:+d}", "_X1=a\\\\b$$c", "_X2=a\\\\b$$c${E}",
        "_X3=$N", "_X4=${V/\\//|}", NULL));
    assert_value(s, "_LEN", "19");
    assert_value(s, "_S1", "to/file.tar.gz");
    assert_value(s, "_S2", "to");
    assert_value(s, "_S3", ".gz");
    assert_value(s, "_S4", "");
    assert_value(s, "_S5", "path/to/file.tar.gz");
    assert_value(s, "_P1", "to/file.tar.gz");
    assert_value(s, "_P2", "file.tar.gz");
    assert_value(s, "_P3", "path/to/file.tar");
    assert_value(s, "_P4", "path/to/file");
    assert_value(s, "_P5", "h/to/file.tar.gz");
    assert_value(s, "_R1", "paTh/to/file.tar.gz");
    assert_value(s, "_R2", "paTh/To/file.Tar.gz");
    assert_value(s, "_R3", "PATH/to/file.tar.gz");
    assert_value(s, "_R4", "path/to/file.tar.xz");
    assert_value(s, "_R5", "path/to/file.tar.gz");
    assert_value(s, "_R7", "pah/to/file.tar.gz");
    assert_value(s, "_C1", "Path/to/file.tar.gz");
    assert_value(s, "_C2", "PATH/TO/FILE.TAR.GZ");
    assert_value(s, "_D1", "d");
    assert_value(s, "_D2", "d");
    assert_value(s, "_D3", "path/to/file.tar.gz");
    /* :? and :+ are parsed as defaults, as drone/envsubst does. */
    assert_value(s, "_D4", "d");
    assert_value(s, "_D5", "d");
    assert_value(s, "_D6", "path/to/file.tar.gz");
    /* No ${ at all: left exactly as written. */
    assert_value(s, "_X1", "a\\\\b$$c");
    /* With one, drone/envsubst's escapes apply: \\ -> \, $$ -> $. */
    assert_value(s, "_X2", "a\\b$c");
    assert_value(s, "_X3", "-3");
    assert_value(s, "_X4", "path|to/file.tar.gz");
    kiln__subst_destroy(s);
}

static void test_dynamic_quirks(void **state)
{
    /* `${X//t}` has no second slash: drone/envsubst wants the delimiter. */
    kiln__subst *s = make("V=x", "_R=${V//t}", NULL);
    char *err = dyn_err(s);
    assert_string_equal(err, "[_R -> ${V//t}]: bad substitution");
    free(err);
    kiln__subst_destroy(s);

    /* Unsupported operators - and + are bad substitutions. */
    s = make("_A=${V-d}", "_B=${V+d}", NULL);
    err = dyn_err(s);
    assert_string_equal(err, "[_A -> ${V-d}]: bad substitution, [_B -> ${V+d}]: bad substitution");
    free(err);
    kiln__subst_destroy(s);

    /* A leading $NAME wraps the whole value: $TAG-prod is ${TAG-prod}. */
    s = make("TAG=v1", "_A=$TAG-prod", NULL);
    err = dyn_err(s);
    assert_string_equal(err, "[_A -> $TAG-prod]: bad substitution");
    free(err);
    kiln__subst_destroy(s);

    /* A default is one word in the drone/envsubst Cloud Build used. */
    s = make("_A=${V:-a${W}}", NULL);
    err = dyn_err(s);
    assert_string_equal(err, "[_A -> ${V:-a${W}}]: bad substitution");
    free(err);
    kiln__subst_destroy(s);

    /* A negative length makes Go slice out of range; Cloud Build reports
     * the recovered panic with its format slip ("+v"). */
    s = make("V=abcdef", "_A=${V:3:-2}", "_B=${V:1:-4}", NULL);
    err = dyn_err(s);
    assert_string_equal(err, "[_A -> ${V:3:-2}]: unexpected error in processing substitution: "
                             "runtime error: slice bounds out of range [3:1]+v, "
                             "[_B -> ${V:1:-4}]: unexpected error in processing substitution: "
                             "runtime error: slice bounds out of range [:-3]+v");
    free(err);
    kiln__subst_destroy(s);

    s = make("_E=", "_A=x${_E}y", NULL);
    dyn_ok(s);
    assert_value(s, "_A", "xy");
    kiln__subst_destroy(s);
}

static size_t len_of(kiln__subst *s, const char *key)
{
    return strlen(kiln__subst_get(s, key));
}

static void test_dynamic_size_cap(void **state)
{
    /* bash_utils_test.go TestLargeSubstitutionsGetTruncated: 4000 + 1. */
    kiln__subst *s = dyn_ok(make("A=xxxxx", "B=${A//x/${A}}", "C=${B//x/${B}}",
                                 "D=${C//x/${C}}", "E=${D//x/${D}}", "F=${E//x/${E}}",
                                 "G=${F//x/${F}}", NULL));
    assert_int_equal(len_of(s, "A"), 5);
    assert_int_equal(len_of(s, "B"), 25);
    assert_int_equal(len_of(s, "C"), 625);
    assert_int_equal(len_of(s, "D"), 4001);
    assert_int_equal(len_of(s, "E"), 4001);
    assert_int_equal(len_of(s, "G"), 4001);
    kiln__subst_destroy(s);

    s = dyn_ok(make("A=xxxxxxxxxx", "B=${A//x/${A//x/${A//x/${A//x/${A}}}}}", NULL));
    assert_int_equal(len_of(s, "A"), 10);
    assert_int_equal(len_of(s, "B"), 4001);
    kiln__subst_destroy(s);
}

static void test_dynamic_many_keys(void **state)
{
    /* A chain of 3000 keys, declared last-first, evaluates in order. */
    kiln__subst *s = kiln__subst_create();
    char key[32], val[64];
    for (int i = 2999; i > 0; i--) {
        snprintf(key, sizeof key, "_K%d", i);
        snprintf(val, sizeof val, "${_K%d}", i - 1);
        kiln__subst_set(s, key, val);
    }
    kiln__subst_set(s, "_K0", "base");
    dyn_ok(s);
    assert_value(s, "_K2999", "base");
    kiln__subst_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dollar_escapes),
        cmocka_unit_test(test_keys_braced_and_greedy),
        cmocka_unit_test(test_not_parameters_left_alone),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_invalid_builtin_is_an_error),
        cmocka_unit_test(test_undefined_user_key_warning),
        cmocka_unit_test(test_unused),
        cmocka_unit_test(test_linear_expansion),
        cmocka_unit_test(test_check_key),
        cmocka_unit_test(test_key_classes),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_vector_substring_and_replace),
        cmocka_unit_test(test_vector_default_values_and_case),
        cmocka_unit_test(test_vector_middle_needs_braces),
        cmocka_unit_test(test_vector_assign_default),
        cmocka_unit_test(test_vector_undefined_is_empty),
        cmocka_unit_test(test_vector_self_cycle),
        cmocka_unit_test(test_vector_chain_cycle),
        cmocka_unit_test(test_vector_bad_substitution),
        cmocka_unit_test(test_vector_list_nodes_at_depth),
        cmocka_unit_test(test_dynamic_basic_and_lists),
        cmocka_unit_test(test_dynamic_issue_118),
        cmocka_unit_test(test_dynamic_operators),
        cmocka_unit_test(test_dynamic_quirks),
        cmocka_unit_test(test_dynamic_size_cap),
        cmocka_unit_test(test_dynamic_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
