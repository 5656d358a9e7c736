/* SPDX-License-Identifier: MIT */
/* Globs with **, RE2-to-POSIX regexes, cron checks and trigger matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "glob.h"
#include "triggers.h"

static void test_glob(void **state)
{
    assert_true(kiln__glob_match("*.md", "README.md"));
    assert_false(kiln__glob_match("*.md", "docs/README.md"));
    assert_true(kiln__glob_match("**/*.md", "README.md"));
    assert_true(kiln__glob_match("**/*.md", "a/b/c.md"));
    assert_true(kiln__glob_match("docs/**", "docs/a/b.txt"));
    assert_false(kiln__glob_match("docs/**", "src/docs.txt"));
    assert_true(kiln__glob_match("src/**/test_*.py", "src/test_a.py"));
    assert_true(kiln__glob_match("src/**/test_*.py", "src/x/y/test_a.py"));
    assert_false(kiln__glob_match("src/**/test_*.py", "src/x/y/a.py"));
    assert_true(kiln__glob_match("k8s/?.yaml", "k8s/a.yaml"));
    assert_false(kiln__glob_match("k8s/?.yaml", "k8s/ab.yaml"));
    assert_true(kiln__glob_match("[a-c]*.txt", "b1.txt"));
    assert_false(kiln__glob_match("[!a-c]*.txt", "b1.txt"));
    assert_false(kiln__glob_match("a[/]b", "a/b"));
    assert_true(kiln__glob_match("\\*.txt", "*.txt"));
    assert_false(kiln__glob_match("\\*.txt", "a.txt"));
    assert_true(kiln__glob_match("**", "any/thing"));
}

static bool re_hit(const char *re2, const char *s)
{
    regex_t re;
    char why[256];
    assert_int_equal(kiln__regex_compile(&re, re2, why, sizeof why), 0);
    bool m = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

static void test_regex(void **state)
{
    assert_true(re_hit("^staging$", "staging"));
    assert_false(re_hit("^staging$", "feature-staging-x"));
    assert_true(re_hit("staging", "feature-staging-x")); /* unanchored, as RE2 */
    assert_true(re_hit("^release/v\\d+\\.\\d+$", "release/v1.20"));
    assert_false(re_hit("^release/v\\d+$", "release/vx"));
    assert_true(re_hit("^[\\w-]+$", "feat-1_x"));
    assert_true(re_hit("^(master|main)$", "main"));
    regex_t re;
    char why[256];
    assert_int_equal(kiln__regex_compile(&re, "(?i)^main$", why, sizeof why), -1);
    assert_non_null(strstr(why, "RE2 syntax"));
    assert_int_equal(kiln__regex_compile(&re, "^a.*?b$", why, sizeof why), -1);
    assert_non_null(strstr(why, "non-greedy"));
}

static void test_cron(void **state)
{
    char why[256];
    assert_int_equal(kiln__cron_check("0 3 * * MON", why, sizeof why), 0);
    assert_int_equal(kiln__cron_check("*/15 0-23/2 1,15 JAN-JUN 1-5", why, sizeof why), 0);
    assert_int_equal(kiln__cron_check("@daily", why, sizeof why), 0);
    assert_int_equal(kiln__cron_check("60 * * * *", why, sizeof why), -1);
    assert_non_null(strstr(why, "field 1 (minute)"));
    assert_int_equal(kiln__cron_check("0 3 * *", why, sizeof why), -1);
    assert_non_null(strstr(why, "five"));
    assert_int_equal(kiln__cron_check("@sometimes", why, sizeof why), -1);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/kiln-trig-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char triggers_yaml[] =
    "triggers:\n"
    "- name: app-staging\n"
    "  repo: purchase_predict\n"
    "  branch: ^staging$\n"
    "  ignoredFiles: ['**/*.md', 'docs/**']\n"
    "- name: app-src\n"
    "  repo: purchase_predict\n"
    "  branch: ^staging$\n"
    "  includedFiles: ['src/**']\n"
    "- name: not-main\n"
    "  branch: ^main$\n"
    "  invertRegex: true\n"
    "- name: releases\n"
    "  tag: ^v\\d+\n"
    "  schedule: '0 3 * * 1'\n";

static void test_match(void **state)
{
    char *file = write_tmp(triggers_yaml);
    kiln__triggers ts;
    kiln__diag d;
    kiln__diag_init(&d);
    assert_int_equal(kiln__triggers_load(&ts, file, &d), 0);
    assert_int_equal(d.errors, 0);
    assert_int_equal(ts.n, 4);
    char why[512];
    const char *docs[] = {"README.md", "docs/guide.txt"};
    const char *code[] = {"README.md", "src/a.py"};
    const char *other[] = {"conf/base/x.yml"};
    kiln__push p = {"/srv/purchase_predict.git", "refs/heads/staging", docs, 2, true};
    assert_false(kiln__trigger_match(&ts, &ts.v[0], &p, why, sizeof why));
    assert_non_null(strstr(why, "matches ignoredFiles"));
    p.files = code;
    assert_true(kiln__trigger_match(&ts, &ts.v[0], &p, why, sizeof why));
    assert_true(kiln__trigger_match(&ts, &ts.v[1], &p, why, sizeof why));
    p.files = other;
    p.n_files = 1;
    assert_false(kiln__trigger_match(&ts, &ts.v[1], &p, why, sizeof why));
    assert_non_null(strstr(why, "includedFiles"));
    p.repo = "/srv/purchase_predict_api.git";
    assert_false(kiln__trigger_match(&ts, &ts.v[0], &p, why, sizeof why));
    assert_non_null(strstr(why, "watches repository"));
    p.ref = "refs/heads/main";
    assert_false(kiln__trigger_match(&ts, &ts.v[2], &p, why, sizeof why)); /* inverted */
    p.ref = "feature";
    assert_true(kiln__trigger_match(&ts, &ts.v[2], &p, why, sizeof why));
    p.ref = "refs/tags/v2.0";
    assert_true(kiln__trigger_match(&ts, &ts.v[3], &p, why, sizeof why));
    assert_false(kiln__trigger_match(&ts, &ts.v[2], &p, why, sizeof why));
    assert_non_null(strstr(why, "is a tag"));
    kiln__triggers_free(&ts);
    kiln__diag_release(&d);
    unlink(file);
    free(file);
}

static void test_load_errors(void **state)
{
    char *file = write_tmp("triggers:\n"
                           "- name: -bad-\n"
                           "  branch: (?i)main\n"
                           "  ignored_file: [x]\n"
                           "  schedule: '99 * * * *'\n"
                           "- name: x\n"
                           "  branch: a\n"
                           "  tag: b\n");
    kiln__triggers ts;
    kiln__diag d;
    kiln__diag_init(&d);
    assert_int_equal(kiln__triggers_load(&ts, file, &d), 0);
    assert_int_equal(d.errors, 5);
    assert_non_null(strstr(d.text.buf, ":2:9: error: name '-bad-'"));
    assert_non_null(strstr(d.text.buf, ":3:11: error: branch regex '(?i)main'"));
    assert_non_null(strstr(d.text.buf, ":4:3: error: unknown trigger field 'ignored_file'; did you mean"));
    assert_non_null(strstr(d.text.buf, "schedule: field 1 (minute)"));
    assert_non_null(strstr(d.text.buf, "give branch or tag, not both"));
    kiln__triggers_free(&ts);
    kiln__diag_release(&d);
    unlink(file);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),  cmocka_unit_test(test_regex),
        cmocka_unit_test(test_cron),  cmocka_unit_test(test_match),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
