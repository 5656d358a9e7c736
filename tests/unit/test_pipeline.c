/* SPDX-License-Identifier: MIT */
/*
 * Pipeline loading (runner/pipeline.c): the exact FILE:LINE:COL and text of
 * parse errors, every error collected, both spellings of field names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "path.h"
#include "pipeline.h"

/* Parse YAML; return the diagnostics text (malloc'd) and the error count. */
static char *parse(const char *yaml, int *errors, kiln__pipeline *keep)
{
    kiln__pipeline p;
    kiln__diag d;
    kiln__diag_init(&d);
    kiln__pipeline_parse(&p, "p.yaml", yaml, strlen(yaml), &d);
    *errors = d.errors;
    char *text = strdup(d.text.buf ? d.text.buf : "");
    kiln__diag_release(&d);
    if (keep)
        *keep = p;
    else
        kiln__pipeline_free(&p);
    return text;
}

static void assert_has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("expected\n  %s\nin\n%s", want, text);
}

static void test_unknown_field_position_and_hint(void **state)
{
    int n;
    char *t = parse("steps:\n- id: a\n  script: echo\n  wait_fr: [x]\n", &n, NULL);
    assert_int_equal(n, 1);
    assert_has(t, "p.yaml:4:3: error: unknown field \"wait_fr\" in build step #0 - \"a\" "
                  "(did you mean \"waitFor\"?)\n");
    free(t);
}

static void test_types_and_durations(void **state)
{
    int n;
    char *t = parse("timeout: 10m\n"
                    "steps:\n"
                    "- id: a\n"
                    "  args: echo\n"
                    "- id: b\n"
                    "  script: echo\n"
                    "  timeout: 1.5s\n"
                    "  allowFailure: yes\n"
                    "  allowExitCodes: 3\n",
                    &n, NULL);
    assert_int_equal(n, 4);
    assert_has(t, "p.yaml:1:10: error: timeout: expected a duration in seconds with an 's' suffix");
    assert_has(t, "p.yaml:4:9: error: build step #0 - \"a\": args: expected a list; repeated string "
                  "fields containing one element must be specified like ['foo'], not 'foo'\n");
    assert_has(t, "p.yaml:8:17: error: build step #1 - \"b\": allowFailure: expected true or false, got 'yes'");
    assert_has(t, "p.yaml:9:19: error: build step #1 - \"b\": allowExitCodes: expected a list of integers");
    /* "1.5s" is fine, and a malformed args is not also "nothing to run". */
    assert_null(strstr(t, "timeout: expected a duration in seconds with an 's' suffix, such as \"30s\" or \"1.5s\", got '1.5s'"));
    assert_null(strstr(t, "nothing to run"));
    free(t);
}

static void test_ids_and_wait_for(void **state)
{
    int n;
    char *t = parse("steps:\n"
                    "- id: a\n  script: x\n"
                    "- id: b\n  waitFor: [x, c]\n  script: x\n"
                    "- id: c\n  script: x\n"
                    "- id: a\n  script: x\n"
                    "- id: '-'\n  script: x\n",
                    &n, NULL);
    assert_int_equal(n, 4);
    assert_has(t, "p.yaml:5:13: error: build step #1 - \"b\" depends on \"x\", which has not been defined\n");
    assert_has(t, "p.yaml:5:16: error: build step #1 - \"b\" depends on \"c\", which has not been "
                  "defined (only earlier steps can be named in waitFor)\n");
    assert_has(t, "p.yaml:9:7: error: build step #3 - \"a\": the ID is not unique\n");
    assert_has(t, "p.yaml:11:7: error: build step #4 - \"-\": the ID cannot be \"-\"");
    free(t);
}

static void test_snake_and_camel_case(void **state)
{
    int n;
    kiln__pipeline p;
    char *t = parse("options:\n  substitution_option: ALLOW_LOOSE\n  maxParallel: 3\n"
                    "steps:\n- id: a\n  script: x\n  allow_failure: true\n  allowExitCodes: [2, 3]\n"
                    "  retry: {limit: 2, backoff: 250ms, on_exit_codes: [75]}\n"
                    "finally:\n- id: f\n  script: x\n",
                    &n, &p);
    assert_int_equal(n, 0);
    assert_int_equal(p.options.subst_mode, KILN__ALLOW_LOOSE);
    assert_int_equal(p.options.max_parallel, 3);
    assert_int_equal(p.n_steps, 1);
    assert_true(p.steps[0].allow_failure);
    assert_int_equal(p.steps[0].n_allow_codes, 2);
    assert_int_equal(p.steps[0].allow_exit_codes[1], 3);
    assert_int_equal(p.steps[0].retry.limit, 2);
    assert_int_equal(p.steps[0].retry.backoff_ms, 250);
    assert_int_equal(p.steps[0].retry.n_codes, 1);
    assert_int_equal(p.n_finally, 1);
    assert_string_equal(p.finally[0].key, "f");
    kiln__pipeline_free(&p);
    free(t);
}

static void test_yaml_error_and_empty(void **state)
{
    int n;
    char *t = parse("steps:\n- id: a\n  args: [echo, \"hi\"\n- id: b\n", &n, NULL);
    assert_int_equal(n, 1);
    assert_has(t, "error: invalid YAML: ");
    assert_true(strncmp(t, "p.yaml:", 7) == 0);
    free(t);
    t = parse("", &n, NULL);
    assert_int_equal(n, 1);
    assert_has(t, "the file is empty");
    free(t);
    t = parse("steps: []\n", &n, NULL);
    assert_int_equal(n, 1);
    assert_has(t, "p.yaml:1:8: error: steps: the list is empty");
    free(t);
}

static void test_durations(void **state)
{
    int64_t ms;
    assert_int_equal(kiln__parse_duration("30s", true, &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(kiln__parse_duration("1.5s", true, &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(kiln__parse_duration("250ms", true, &ms), -1); /* Cloud Build: seconds only */
    assert_int_equal(kiln__parse_duration("250ms", false, &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(kiln__parse_duration("2h", false, &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(kiln__parse_duration("30", false, &ms), -1);
    assert_int_equal(kiln__parse_duration("-1s", false, &ms), -1);
    assert_int_equal(kiln__parse_duration("s", false, &ms), -1);
}

/* Go's path.Clean vectors (absolute ones), which cloud-build-local applies to
 * volume paths before comparing them. */
static void test_path_clean(void **state)
{
    static const char *const cases[][2] = {
        {"/", "/"},           {"//", "/"},          {"/abc", "/abc"},   {"/abc/", "/abc"},
        {"/abc/def", "/abc/def"}, {"//abc//def//", "/abc/def"}, {"/abc/./def", "/abc/def"},
        {"/./", "/"},         {"/..", "/"},         {"/../abc", "/abc"}, {"/abc/..", "/"},
        {"/abc/def/../ghi", "/abc/ghi"}, {"/abc/def/../../..", "/"}, {"/a/b/c/./../../g", "/a/g"},
        {"/abc/...", "/abc/..."}, {"/a..b/.c", "/a..b/.c"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(kiln__path_clean(cases[i][0], out, sizeof out), 0);
        if (strcmp(out, cases[i][1]) != 0)
            fail_msg("clean(%s) = %s, want %s", cases[i][0], out, cases[i][1]);
    }
    assert_int_equal(kiln__path_clean("/0123456789/0123456789", out, 12), -1);
    assert_true(kiln__path_under("/a/b", "/a"));
    assert_true(kiln__path_under("/a", "/a"));
    assert_false(kiln__path_under("/ab", "/a"));
    assert_true(kiln__path_under("/x", "/"));
    assert_int_equal(kiln__path_depth("/"), 0);
    assert_int_equal(kiln__path_depth("/a/b"), 2);
}

/* Volumes: parsed in either spelling; Cloud Build's rules with its texts. */
static void test_volumes(void **state)
{
    int n;
    kiln__pipeline p;
    char *t = parse("steps:\n"
                    "- args: [a]\n  volumes: [{name: cache, path: /c}]\n"
                    "- args: [b]\n  volumes:\n  - name: cache\n    path: /d/../c/\n",
                    &n, &p);
    assert_int_equal(n, 0);
    assert_int_equal(p.steps[1].volumes.n, 1);
    assert_string_equal(p.steps[1].volumes.v[0].path, "/d/../c/");
    assert_int_equal(p.steps[1].volumes.v[0].path_node->line, 7);
    kiln__pipeline_free(&p);
    free(t);
    t = parse("steps:\n- args: [a]\n  volumes: [{name: cache, path: /c}, {name: cache2, path: /c/}]\n"
              "- args: [b]\n  volumes: [{name: cache, path: /e}, {name: cache2, path: /f}, "
              "{name: b@d, path: /g}, {naem: x}]\n",
              &n, NULL);
    assert_has(t, "p.yaml:3:59: error: build step #0: volume path \"/c\" is defined in more than one volume entry");
    assert_has(t, "p.yaml:5:71: error: build step #1: volume name \"b@d\" does not match");
    assert_has(t, "p.yaml:5:88: error: unknown field \"naem\" in a volume\n");
    assert_has(t, "p.yaml:5:87: error: build step #1: a volume needs both a name and a path");
    assert_has(t, "error: Volume \"b@d\" is only used by one step");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_field_position_and_hint),
        cmocka_unit_test(test_types_and_durations),
        cmocka_unit_test(test_ids_and_wait_for),
        cmocka_unit_test(test_snake_and_camel_case),
        cmocka_unit_test(test_yaml_error_and_empty),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_path_clean),
        cmocka_unit_test(test_volumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
