/* SPDX-License-Identifier: MIT */
/* docker-build's pure helpers: .dockerignore matching, engine addresses,
 * image references, push digests and error explanations, line splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/step_docker_build/docker_ignore.c"
#include "../../plugins/common/base64.c"
#include "../../plugins/step_docker_build/docker_util.c"
#include "../../plugins/common/xalloc.c"

static bool excl(const char *patterns, const char *path)
{
    dk_ignore ig = {0};
    dk_ignore_parse(&ig, patterns, strlen(patterns));
    bool r = dk_ignore_excluded(&ig, path);
    dk_ignore_free(&ig);
    return r;
}

static void test_ignore_basic(void **state)
{
    assert_true(excl("secret.txt\n", "secret.txt"));
    assert_false(excl("secret.txt\n", "a/secret.txt"));
    assert_true(excl("*.log\n", "x.log"));
    assert_false(excl("*.log\n", "dir/x.log")); /* '*' does not cross '/' */
    assert_true(excl("**/*.log\n", "dir/sub/x.log"));
    assert_true(excl("**/*.log\n", "x.log"));
    assert_true(excl("logs\n", "logs/a/b.txt")); /* a parent directory matches */
    assert_true(excl("/logs/\n", "logs/a"));
    assert_true(excl("  # not a comment?\n#comment\n", "#comment") == false);
    assert_true(excl("./a/../b\n", "b"));
    assert_true(excl("a?c\n", "abc"));
    assert_false(excl("a?c\n", "a/c"));
    assert_true(excl("[a-c]x\n", "bx"));
    assert_true(excl("\xEF\xBB\xBF" "bom\n", "bom"));
    assert_true(excl("*\n", ".hidden"));
    assert_true(excl("docs/**\n", "docs/a/b"));
}

static void test_ignore_exceptions(void **state)
{
    const char *p = "logs\n!logs/keep.txt\n";
    assert_true(excl(p, "logs/big.log"));
    assert_false(excl(p, "logs/keep.txt"));
    assert_true(excl(p, "logs")); /* the directory itself stays excluded */
    assert_false(excl("*.md\n!README.md\n", "README.md"));
    assert_true(excl("*.md\n!README.md\nREADME.md\n", "README.md")); /* last match wins */
    dk_ignore ig = {0};
    dk_ignore_parse(&ig, p, strlen(p));
    assert_true(ig.has_exclusions);
    dk_ignore_free(&ig);
}

static void test_clean_path(void **state)
{
    const char *cases[][2] = {{"a/./b/../c//", "a/c"}, {"", "."}, {"/x/y", "x/y"}, {"../a", "../a"},
                              {"a/..", "."},           {"./", "."}, {"a/b/../../..", ".."}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = dk_clean_path(cases[i][0]);
        assert_string_equal(c, cases[i][1]);
        free(c);
    }
}

static void test_addr(void **state)
{
    dk_addr a;
    char err[256];
    assert_int_equal(dk_addr_parse("unix:///var/run/docker.sock", &a, err, sizeof err), 0);
    assert_string_equal(a.socket, "/var/run/docker.sock");
    assert_string_equal(a.base, "http://docker");
    assert_string_equal(a.display, "unix:///var/run/docker.sock");
    dk_addr_free(&a);
    assert_int_equal(dk_addr_parse("tcp://10.0.0.1:2375", &a, err, sizeof err), 0);
    assert_null(a.socket);
    assert_string_equal(a.base, "http://10.0.0.1:2375");
    dk_addr_free(&a);
    assert_int_equal(dk_addr_parse("tcp://engine", &a, err, sizeof err), 0);
    assert_string_equal(a.base, "http://engine:2375");
    assert_string_equal(a.display, "tcp://engine:2375");
    dk_addr_free(&a);
    assert_int_equal(dk_addr_parse("/run/podman/podman.sock", &a, err, sizeof err), 0);
    assert_string_equal(a.display, "unix:///run/podman/podman.sock");
    dk_addr_free(&a);
    assert_int_equal(dk_addr_parse("ssh://me@host", &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "unsupported engine address scheme \"ssh\""));
    dk_addr_free(&a);
    assert_int_equal(dk_addr_parse("unix://relative.sock", &a, err, sizeof err), -1);
    dk_addr_free(&a);
}

static void test_ref(void **state)
{
    dk_ref r;
    char err[256];
    assert_int_equal(dk_ref_parse("127.0.0.1:5000/team/app:1.2", &r, err, sizeof err), 0);
    assert_string_equal(r.repo, "127.0.0.1:5000/team/app");
    assert_string_equal(r.tag, "1.2");
    assert_string_equal(r.registry, "127.0.0.1:5000");
    dk_ref_free(&r);
    assert_int_equal(dk_ref_parse("localhost:5000/app", &r, err, sizeof err), 0);
    assert_string_equal(r.tag, "latest");
    assert_string_equal(r.registry, "localhost:5000");
    dk_ref_free(&r);
    assert_int_equal(dk_ref_parse("gcr.io/proj/app:v1", &r, err, sizeof err), 0);
    assert_string_equal(r.registry, "gcr.io");
    dk_ref_free(&r);
    assert_int_equal(dk_ref_parse("team/app", &r, err, sizeof err), 0);
    assert_string_equal(r.registry, "docker.io");
    dk_ref_free(&r);
    assert_int_equal(dk_ref_parse("Team/app:1", &r, err, sizeof err), -1);
    assert_int_equal(dk_ref_parse("app@sha256:abcd", &r, err, sizeof err), -1);
    assert_int_equal(dk_ref_parse("app:", &r, err, sizeof err), -1);
    assert_int_equal(dk_ref_parse("a b", &r, err, sizeof err), -1);
    assert_int_equal(dk_ref_parse("", &r, err, sizeof err), -1);
}

static void test_digest(void **state)
{
    char d[72];
    const char *hex = "d356aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char line[200];
    snprintf(line, sizeof line, "1: digest: sha256:%s size: 737", hex);
    assert_true(dk_find_digest(line, d));
    assert_string_equal(d + 7, hex);
    snprintf(line, sizeof line, "sha256:%s", hex);
    assert_true(dk_find_digest(line, d));
    assert_false(dk_find_digest("The push refers to repository [x]", d));
    assert_false(dk_find_digest("digest: sha256:abc size: 1", d));
}

static void test_explain(void **state)
{
    dk_ref r;
    char err[64];
    dk_ref_parse("127.0.0.1:5001/k/app:1", &r, err, sizeof err);
    dk_buf b = {0};
    dk_explain_push_error(&b, "checking blob: unauthorized: authentication required", &r, NULL);
    assert_non_null(strstr(b.s, "refused by registry 127.0.0.1:5001: it needs credentials"));
    dk_buf_reset(&b);
    dk_explain_push_error(&b, "unauthorized: authentication required\n", &r, "auth_env X");
    assert_non_null(strstr(b.s, "the credentials from auth_env X were rejected"));
    assert_null(strchr(b.s, '\n'));
    dk_buf_reset(&b);
    dk_explain_push_error(&b, "Get \"https://x/v2/\": http: server gave HTTP response to HTTPS client", &r, NULL);
    assert_non_null(strstr(b.s, "answers plain HTTP"));
    dk_buf_reset(&b);
    dk_explain_push_error(&b, "dial tcp: lookup nope on 1.1.1.1:53: no such host", &r, NULL);
    assert_non_null(strstr(b.s, "cannot reach registry 127.0.0.1:5001"));
    dk_buf_free(&b);
    dk_ref_free(&r);
}

static int collect(void *data, const char *line, size_t len)
{
    dk_buf *b = data;
    dk_buf_add(b, line, len);
    dk_buf_adds(b, "|");
    return 0;
}

static void test_lines(void **state)
{
    dk_lines l = {0};
    dk_buf out = {0};
    const char *in = "{\"a\":1}\n{\"b\"";
    dk_lines_feed(&l, in, strlen(in), 1024, collect, &out);
    dk_lines_feed(&l, ":2}\n\n{\"c\":3}", 12, 1024, collect, &out);
    dk_lines_flush(&l, collect, &out);
    assert_string_equal(out.s, "{\"a\":1}|{\"b\":2}||{\"c\":3}|");
    dk_buf_free(&out);
}

static void test_b64url_urlenc(void **state)
{
    dk_buf b = {0};
    dk_buf_add_b64url(&b, "{}", 2);
    assert_string_equal(b.s, "e30=");
    dk_buf_reset(&b);
    dk_buf_add_b64url(&b, "\xfb\xff", 2);
    assert_string_equal(b.s, "-_8=");
    dk_buf_reset(&b);
    dk_buf_add_urlenc(&b, "{\"A\":\"b c&d\"}");
    assert_string_equal(b.s, "%7B%22A%22%3A%22b%20c%26d%22%7D");
    dk_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ignore_basic), cmocka_unit_test(test_ignore_exceptions),
        cmocka_unit_test(test_clean_path),   cmocka_unit_test(test_addr),
        cmocka_unit_test(test_ref),          cmocka_unit_test(test_digest),
        cmocka_unit_test(test_explain),      cmocka_unit_test(test_lines),
        cmocka_unit_test(test_b64url_urlenc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
