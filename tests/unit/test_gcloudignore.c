/* SPDX-License-Identifier: MIT */
/*
 * fill=upload's ignore rules (plugins/common/gcloudignore.c): gitignore's
 * tricky cases as git's own documentation (gitignore(5)) states them, the
 * `#!include:` line and gcloud's choice of file, the errors a user sees,
 * and the walk that gives tar its list. tests/integration/
 * test_k8s_fill_ignore.sh compares the walk with `git ls-files` on a real
 * checkout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcloudignore.h"

static gi_rules rules(const char *text)
{
    gi_rules g = {0};
    char err[512] = "";
    int rc = gi_parse(&g, NULL, "t", text, strlen(text), err, sizeof err);
    if (rc)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    return g;
}

#define EX(g, path) assert_true(gi_path_excluded(&(g), path, false))
#define KEPT(g, path) assert_false(gi_path_excluded(&(g), path, false))
#define EXD(g, path) assert_true(gi_path_excluded(&(g), path, true))
#define KEPTD(g, path) assert_false(gi_path_excluded(&(g), path, true))

static void negation_last_match_wins(void **state)
{
    gi_rules g = rules("*.log\n!keep.log\n");
    EX(g, "a.log");
    EX(g, "sub/b.log");
    KEPT(g, "keep.log");
    KEPT(g, "sub/keep.log");
    KEPT(g, "a.txt");
    gi_free(&g);
    g = rules("!keep.log\n*.log\n"); /* the order matters */
    EX(g, "keep.log");
    gi_free(&g);
}

static void excluded_directory_cannot_be_reentered(void **state)
{
    /* gitignore(5): "It is not possible to re-include a file if a parent
     * directory of that file is excluded." */
    gi_rules g = rules("build/\n!build/keep.txt\n");
    EX(g, "build/keep.txt");
    EX(g, "build/other");
    gi_free(&g);
    /* ... but a pattern for the children of build/ leaves the directory itself */
    g = rules("build/*\n!build/keep.txt\n");
    KEPT(g, "build/keep.txt");
    EX(g, "build/other");
    KEPTD(g, "build");
    gi_free(&g);
    /* the documented example: everything but foo/bar */
    g = rules("/*\n!/foo\n/foo/*\n!/foo/bar\n");
    KEPT(g, "foo/bar");
    KEPT(g, "foo/bar/deep.txt");
    EX(g, "foo/baz");
    EX(g, "top.txt");
    gi_free(&g);
}

static void anchored(void **state)
{
    gi_rules g = rules("/build\ndoc/frotz\n");
    EXD(g, "build");
    KEPTD(g, "src/build");
    EX(g, "doc/frotz");
    KEPT(g, "a/doc/frotz"); /* a middle '/' anchors too */
    gi_free(&g);
    g = rules("frotz\n"); /* no '/': any depth */
    EX(g, "frotz");
    EX(g, "a/b/frotz");
    EX(g, "frotz/inside");
    gi_free(&g);
}

static void directory_only(void **state)
{
    gi_rules g = rules("data/\n");
    EXD(g, "data");
    KEPT(g, "data"); /* a file named data */
    EXD(g, "sub/data");
    EX(g, "data/x.csv");
    EX(g, "sub/data/y/z.csv");
    gi_free(&g);
    g = rules("a/data/\n");
    EXD(g, "a/data");
    KEPTD(g, "b/a/data");
    gi_free(&g);
}

static void stars(void **state)
{
    gi_rules g = rules("a/*.c\n");
    EX(g, "a/x.c");
    KEPT(g, "a/b/x.c"); /* '*' does not cross '/' */
    gi_free(&g);
    g = rules("**/foo\n");
    EX(g, "foo");
    EX(g, "a/foo");
    EX(g, "a/b/foo");
    KEPT(g, "a/xfoo");
    gi_free(&g);
    g = rules("**/foo/bar\n");
    EX(g, "foo/bar");
    EX(g, "x/y/foo/bar");
    KEPT(g, "x/foo/baz");
    gi_free(&g);
    g = rules("abc/**\n");
    EX(g, "abc/x");
    EX(g, "abc/x/y");
    KEPT(g, "abc");
    KEPT(g, "x/abc/y");
    gi_free(&g);
    g = rules("a/**/b\n");
    EX(g, "a/b");
    EX(g, "a/x/b");
    EX(g, "a/x/y/b");
    KEPT(g, "a/xb");
    KEPT(g, "b");
    gi_free(&g);
    g = rules("x**y\n"); /* not a whole element: as '*' */
    EX(g, "xay");
    KEPT(g, "xa/y");
    gi_free(&g);
    g = rules("?.txt\n");
    EX(g, "a.txt");
    KEPT(g, "ab.txt");
    gi_free(&g);
    g = rules("*a*b*c*d*e*f*g*h*\n"); /* many stars: no blow-up */
    KEPT(g, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    EX(g, "xaxbxcxdxexfxgxhx");
    gi_free(&g);
}

static void sets(void **state)
{
    gi_rules g = rules("[a-c].txt\n[!x]y\n[]]z\n[[:digit:]]n\n[^q]w\n");
    EX(g, "b.txt");
    KEPT(g, "d.txt");
    EX(g, "ay");
    KEPT(g, "xy");
    EX(g, "]z");
    EX(g, "7n");
    KEPT(g, "kn");
    EX(g, "rw");
    KEPT(g, "qw");
    gi_free(&g);
    g = rules("a[/]b\n"); /* a set never matches '/' */
    KEPT(g, "a/b");
    gi_free(&g);
}

static void escapes_and_comments(void **state)
{
    gi_rules g = rules("# a comment\n\\#hash\n\\!bang\n  \n\n");
    assert_int_equal(g.n, 2);
    EX(g, "#hash");
    EX(g, "!bang");
    KEPT(g, "# a comment");
    KEPT(g, "hash");
    gi_free(&g);
    g = rules("we\\*rd\n");
    EX(g, "we*rd");
    KEPT(g, "weird");
    gi_free(&g);
}

static void trailing_spaces(void **state)
{
    gi_rules g = rules("foo   \nbar\\ \r\n");
    EX(g, "foo");
    KEPT(g, "foo ");
    EX(g, "bar ");
    KEPT(g, "bar");
    gi_free(&g);
    g = rules(" lead\n"); /* leading spaces are part of the pattern */
    EX(g, " lead");
    KEPT(g, "lead");
    gi_free(&g);
}

static void expect_error(const char *text, const char *want)
{
    gi_rules g = {0};
    char err[512] = "";
    assert_int_equal(gi_parse(&g, NULL, "ci.ignore", text, strlen(text), err, sizeof err), -1);
    if (strstr(err, want) != err)
        print_error("got: %s\nwant: %s...\n", err, want);
    assert_ptr_equal(strstr(err, want), err);
    gi_free(&g);
}

static void malformed_patterns(void **state)
{
    expect_error("ok\nfoo[ab\n", "ci.ignore:2:4: expected ']' to close this '['");
    expect_error("!x[\n", "ci.ignore:1:3: expected ']'");
    expect_error("x\\", "ci.ignore:1:2: expected a character after '\\'");
    expect_error("a[[:nope:]]\n", "ci.ignore:1:3: expected a character class");
    expect_error("#!include:x\n", "ci.ignore:1:11: #!include:x is not allowed here");
    expect_error("#!include:\n", "ci.ignore:1:11: expected a file name after '#!include:'");
    /* "[:" without ":]" is an ordinary member, as in git */
    gi_rules g = rules("[[:x]y\n");
    EX(g, "[y");
    EX(g, ":y");
    gi_free(&g);
}

/* A scratch directory with files: "name=content" or "dir/" entries. */
static char *scratch(const char *const *entries)
{
    char tmpl[] = "/tmp/kiln-gi-XXXXXX";
    char *dir = strdup(mkdtemp(tmpl));
    for (size_t i = 0; entries[i]; i++) {
        char path[1024];
        const char *eq = strchr(entries[i], '=');
        size_t n = eq ? (size_t)(eq - entries[i]) : strlen(entries[i]);
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)n, entries[i]);
        for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
            *s = '\0';
            mkdir(path, 0755);
            *s = '/';
        }
        if (!eq)
            continue;
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(eq + 1, f);
        fclose(f);
    }
    return dir;
}

static void rm_rf(char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

static void include_lines(void **state)
{
    const char *const files[] = {".gitignore=data/\n*.pyc\n", "more.ignore=#!include:.gitignore\nlogs\n",
                                 "self.ignore=#!include:self.ignore\n", NULL};
    char *dir = scratch(files);
    gi_rules g = {0};
    char err[512] = "";
    const char *text = "x\n#!include:more.ignore\n!keep.pyc\n";
    assert_int_equal(gi_parse(&g, dir, "top", text, strlen(text), err, sizeof err), 0);
    EX(g, "x");
    EX(g, "data/a.csv");
    EX(g, "m/a.pyc");
    EX(g, "logs");
    KEPT(g, "keep.pyc"); /* after the include: it wins */
    KEPT(g, "a.py");
    gi_free(&g);
    text = "a\n#!include:nope\n";
    assert_int_equal(gi_parse(&g, dir, "top", text, strlen(text), err, sizeof err), -1);
    assert_string_equal(err, "top:2:11: cannot include nope: no such file");
    gi_free(&g);
    /* an error in an included file names that file */
    FILE *f = fopen(strcat(strcpy(err, dir), "/bad.ignore"), "w");
    fputs("\n\n[oops\n", f);
    fclose(f);
    text = "#!include:bad.ignore\n";
    assert_int_equal(gi_parse(&g, dir, "top", text, strlen(text), err, sizeof err), -1);
    assert_ptr_equal(strstr(err, "bad.ignore:3:1: expected ']'"), err);
    gi_free(&g);
    text = "#!include:self.ignore\n";
    assert_int_equal(gi_parse(&g, dir, "top", text, strlen(text), err, sizeof err), -1);
    assert_non_null(strstr(err, "includes nested too deep"));
    gi_free(&g);
    rm_rf(dir);
}

static void gcloud_choice(void **state)
{
    char err[512];
    gi_rules g = {0};
    /* a .gcloudignore wins */
    const char *const a[] = {".gcloudignore=*.bin\n", ".gitignore=*.txt\n", "x.bin=1", NULL};
    char *dir = scratch(a);
    assert_int_equal(gi_choose(&g, dir, NULL, err, sizeof err), 0);
    assert_string_equal(g.source, ".gcloudignore");
    EX(g, "x.bin");
    KEPT(g, "x.txt");
    KEPT(g, ".gitignore");
    gi_free(&g);
    /* none */
    assert_int_equal(gi_choose(&g, dir, "none", err, sizeof err), 0);
    assert_null(g.source);
    assert_int_equal(g.n, 0);
    gi_free(&g);
    /* a named file */
    assert_int_equal(gi_choose(&g, dir, ".gitignore", err, sizeof err), 0);
    assert_string_equal(g.source, ".gitignore");
    EX(g, "x.txt");
    KEPT(g, "x.bin");
    gi_free(&g);
    assert_int_equal(gi_choose(&g, dir, "nope.ignore", err, sizeof err), -1);
    assert_non_null(strstr(err, "nope.ignore: no such file in /tmp/kiln-gi-"));
    gi_free(&g);
    rm_rf(dir);
    /* a .gitignore and no .gcloudignore: gcloud's default */
    const char *const b[] = {".gitignore=*.txt\n", "y.txt=1", NULL};
    dir = scratch(b);
    assert_int_equal(gi_choose(&g, dir, NULL, err, sizeof err), 0);
    assert_non_null(g.source);
    EX(g, "y.txt");
    EX(g, ".gitignore");
    EXD(g, ".git");
    EX(g, ".git/config");
    EX(g, ".gcloudignore");
    KEPT(g, "y.py");
    gi_free(&g);
    rm_rf(dir);
    /* a .git only: the default without the include */
    const char *const c[] = {".git/HEAD=ref\n", "z.txt=1", NULL};
    dir = scratch(c);
    assert_int_equal(gi_choose(&g, dir, NULL, err, sizeof err), 0);
    assert_non_null(g.source);
    EX(g, ".git/HEAD");
    KEPT(g, "z.txt");
    gi_free(&g);
    rm_rf(dir);
    /* neither: nothing left out */
    const char *const d[] = {"w.txt=1", NULL};
    dir = scratch(d);
    assert_int_equal(gi_choose(&g, dir, NULL, err, sizeof err), 0);
    assert_null(g.source);
    assert_int_equal(g.n, 0);
    gi_free(&g);
    rm_rf(dir);
}

static bool listed(const gi_walk *w, const char *path)
{
    for (size_t i = 0; i < w->len; i += strlen(w->list + i) + 1)
        if (strcmp(w->list + i, path) == 0)
            return true;
    return false;
}

static void walk(void **state)
{
    const char *const files[] = {"src/a.py=print(1)\n", "src/a.pyc=xxxxxxxxxx", "data/big.csv=0123456789",
                                 "data/sub/more.csv=01234", "keep/x.pyc=12", "empty/", "top.txt=hello", NULL};
    char *dir = scratch(files);
    gi_rules g = rules("data/\n*.pyc\n!keep/x.pyc\n");
    gi_walk w;
    char err[512];
    assert_int_equal(gi_walk_tree(&g, dir, &w, err, sizeof err), 0);
    assert_string_equal(w.list, "."); /* first */
    assert_true(listed(&w, "src"));
    assert_true(listed(&w, "src/a.py"));
    assert_false(listed(&w, "src/a.pyc"));
    assert_false(listed(&w, "data"));
    assert_false(listed(&w, "data/big.csv"));
    assert_true(listed(&w, "keep/x.pyc"));
    assert_true(listed(&w, "empty"));
    assert_true(listed(&w, "top.txt"));
    assert_int_equal(w.kept_files, 3);
    assert_int_equal(w.kept_bytes, 9 + 2 + 5);
    assert_int_equal(w.left_files, 3); /* a.pyc and the two under data/ */
    assert_int_equal(w.left_bytes, 10 + 10 + 5);
    /* a directory comes before what it holds */
    size_t at_src = 0, at_py = 0;
    for (size_t i = 0; i < w.len; i += strlen(w.list + i) + 1) {
        if (strcmp(w.list + i, "src") == 0)
            at_src = i;
        if (strcmp(w.list + i, "src/a.py") == 0)
            at_py = i;
    }
    assert_true(at_src < at_py);
    gi_walk_free(&w);
    gi_free(&g);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(negation_last_match_wins),
        cmocka_unit_test(excluded_directory_cannot_be_reentered),
        cmocka_unit_test(anchored),
        cmocka_unit_test(directory_only),
        cmocka_unit_test(stars),
        cmocka_unit_test(sets),
        cmocka_unit_test(escapes_and_comments),
        cmocka_unit_test(trailing_spaces),
        cmocka_unit_test(malformed_patterns),
        cmocka_unit_test(include_lines),
        cmocka_unit_test(gcloud_choice),
        cmocka_unit_test(walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
