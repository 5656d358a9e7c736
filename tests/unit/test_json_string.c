/* SPDX-License-Identifier: MIT */
/*
 * The JSON string escaper (plugins/common/json_string.c): what a reader of
 * kiln's JSON decodes for any bytes. The U+FFFD vectors are Unicode's own
 * (The Unicode Standard 15.0, section 3.9, "U+FFFD Substitution of Maximal
 * Subparts", Tables 3-8 to 3-11, and the worked example of Unicode 6's
 * Table 3-8, "Use of U+FFFD in UTF-8 Conversion").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_string.h"

#define FFFD "\xEF\xBF\xBD"

/* kp_json_escape of N bytes, as a NUL-terminated string. */
static char *escaped(const char *s, size_t n)
{
    char *out = malloc(KP_JSON_ESCAPE_MAX(n) + 1);
    size_t w = kp_json_escape(out, s, n);
    assert_true(w <= KP_JSON_ESCAPE_MAX(n));
    out[w] = '\0';
    return out;
}

static void expect_escape(const char *in, size_t n, const char *want)
{
    char *got = escaped(in, n);
    assert_string_equal(got, want);
    free(got);
    /* Without characters to escape, the sanitized copy is the same text. */
    size_t len;
    char *s = kp_utf8_sanitize(in, n, &len);
    assert_non_null(s);
    if (!memchr(in, 0, n))
        assert_int_equal(len, strlen(s));
    if (!strpbrk(want, "\\"))
        assert_string_equal(s, want);
    free(s);
}
#define EXPECT(lit, want) expect_escape(lit, sizeof(lit) - 1, want)

static void unicode_6_table_3_8_example(void **state)
{
    /* a, F1 80 80 (truncated), E1 80 (truncated), C2 (truncated), b, 80, c,
     * 80, BF, d */
    EXPECT("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
           "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
}

static void non_shortest_forms(void **state) /* Table 3-8 */
{
    EXPECT("\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41", FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD "A");
}

static void surrogates(void **state) /* Table 3-9 */
{
    EXPECT("\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41", FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD "A");
}

static void other_ill_formed(void **state) /* Table 3-10 */
{
    EXPECT("\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42", FFFD FFFD FFFD FFFD FFFD "A" FFFD FFFD "B");
}

static void truncated(void **state) /* Table 3-11 */
{
    EXPECT("\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", FFFD FFFD FFFD FFFD "A");
    /* at the end of the input, too */
    EXPECT("x\xE6\x97", "x" FFFD);
    EXPECT("\xF0\x9F\x98", FFFD);
}

static void what_a_step_prints(void **state)
{
    EXPECT("\xFF\xFE", FFFD FFFD);                   /* a UTF-16 byte order mark */
    EXPECT("\x80\xBF\x80", FFFD FFFD FFFD);          /* lone continuation bytes */
    EXPECT("\xC0\xAF", FFFD FFFD);                   /* overlong '/' */
    EXPECT("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* above U+10FFFF */
    EXPECT("\xF5\x80", FFFD FFFD);
}

static void well_formed_is_kept(void **state)
{
    EXPECT("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
           "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
    /* the edges of Table 3-7 */
    EXPECT("\xC2\x80\xDF\xBF", "\xC2\x80\xDF\xBF");
    EXPECT("\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF",
           "\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF");
    EXPECT("\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF");
    EXPECT(FFFD, FFFD);
    EXPECT("", "");
}

static void escapes(void **state)
{
    EXPECT("say \"hi\" \\ bye", "say \\\"hi\\\" \\\\ bye");
    EXPECT("\n\t\r\b\f", "\\n\\t\\r\\b\\f");
    EXPECT("\x1b[31mred\x1b[0m", "\\u001b[31mred\\u001b[0m");
    EXPECT("a\0b", "a\\u0000b");
    EXPECT("\x01\x1f\x7f/", "\\u0001\\u001f\\u007f/");
    /* the worst case fits KP_JSON_ESCAPE_MAX */
    char all[32];
    for (int i = 0; i < 32; i++)
        all[i] = (char)i;
    char *got = escaped(all, sizeof all);
    assert_true(strlen(got) <= KP_JSON_ESCAPE_MAX(sizeof all));
    free(got);
}

static void sanitize_only_replaces(void **state)
{
    size_t len;
    static const char text[] = "{\"k\":\"\xFF\\n\"}";
    char *s = kp_utf8_sanitize(text, sizeof text - 1, &len);
    assert_string_equal(s, "{\"k\":\"" FFFD "\\n\"}");
    assert_int_equal(len, sizeof text - 1 + 2);
    free(s);
}

static void next_reports_lengths(void **state)
{
    int ok;
    assert_int_equal(kp_utf8_next((const unsigned char *)"\xF0\x9F\x98\x80", 4, &ok), 4);
    assert_int_equal(ok, 1);
    assert_int_equal(kp_utf8_next((const unsigned char *)"\xF0\x9F\x98", 3, &ok), 3);
    assert_int_equal(ok, 0);
    assert_int_equal(kp_utf8_next((const unsigned char *)"\xE0\x80", 2, &ok), 1);
    assert_int_equal(ok, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unicode_6_table_3_8_example),
        cmocka_unit_test(non_shortest_forms),
        cmocka_unit_test(surrogates),
        cmocka_unit_test(other_ill_formed),
        cmocka_unit_test(truncated),
        cmocka_unit_test(what_a_step_prints),
        cmocka_unit_test(well_formed_is_kept),
        cmocka_unit_test(escapes),
        cmocka_unit_test(sanitize_only_replaces),
        cmocka_unit_test(next_reports_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
