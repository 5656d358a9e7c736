/* SPDX-License-Identifier: MIT */
/* The secret masker: whole lines, split pieces, multi-line secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mask.h"

static char *masked(kiln__masker *m, const char *text)
{
    kiln__buf out = KILN__BUF_INIT;
    kiln__mask(m, text, strlen(text), &out);
    return kiln__buf_detach(&out);
}

static void masks_every_occurrence(void **state)
{
    kiln__masker *m = kiln__masker_create();
    kiln__masker_add(m, "hunter2");
    char *s = masked(m, "pw=hunter2 again hunter2!");
    assert_string_equal(s, "pw=******** again ********!");
    free(s);
    kiln__masker_destroy(m);
}

static void nothing_to_mask_is_identity(void **state)
{
    kiln__masker *m = kiln__masker_create();
    char *s = masked(m, "plain text");
    assert_string_equal(s, "plain text");
    free(s);
    kiln__masker_add(m, "ab"); /* too short to mask */
    s = masked(m, "abc ab");
    assert_string_equal(s, "abc ab");
    free(s);
    kiln__masker_destroy(m);
}

static void multi_line_secret_masked_per_line(void **state)
{
    kiln__masker *m = kiln__masker_create();
    kiln__masker_add(m, "-----BEGIN KEY-----\nMIIEsecretbody\n-----END KEY-----\n");
    char *s = masked(m, "key: MIIEsecretbody.");
    assert_string_equal(s, "key: ********.");
    free(s);
    kiln__masker_destroy(m);
}

/* Feed text in every possible two-piece split: no piece boundary may let a
 * secret through, and the result equals the one-shot masking. */
static void split_across_pieces(void **state)
{
    kiln__masker *m = kiln__masker_create();
    kiln__masker_add(m, "s3cr3t-token");
    kiln__masker_add(m, "s3cr3t");
    const char *text = "a s3cr3t-token b s3cr3 s3cr3t c";
    char *want = masked(m, text);
    size_t len = strlen(text);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b2 = a; b2 <= len; b2++) {
            kiln__mask_stream st;
            kiln__mask_stream_init(&st);
            kiln__buf out = KILN__BUF_INIT;
            kiln__mask_feed(m, &st, text, a, false, &out);
            kiln__mask_feed(m, &st, text + a, b2 - a, false, &out);
            kiln__mask_feed(m, &st, text + b2, len - b2, true, &out);
            assert_null(strstr(out.buf, "s3cr3t"));
            assert_string_equal(out.buf, want);
            kiln__buf_release(&out);
            kiln__mask_stream_release(&st);
        }
    }
    free(want);
    kiln__masker_destroy(m);
}

static void held_tail_released_when_not_a_secret(void **state)
{
    kiln__masker *m = kiln__masker_create();
    kiln__masker_add(m, "password");
    kiln__mask_stream st;
    kiln__mask_stream_init(&st);
    kiln__buf out = KILN__BUF_INIT;
    kiln__mask_feed(m, &st, "progress 10% pass", 17, false, &out);
    assert_string_equal(out.buf, "progress 10% "); /* "pass" may be a secret's start */
    kiln__mask_feed(m, &st, "ed\n", 3, true, &out);
    assert_string_equal(out.buf, "progress 10% passed\n");
    kiln__buf_release(&out);
    kiln__mask_stream_release(&st);
    kiln__masker_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(masks_every_occurrence),
        cmocka_unit_test(nothing_to_mask_is_identity),
        cmocka_unit_test(multi_line_secret_masked_per_line),
        cmocka_unit_test(split_across_pieces),
        cmocka_unit_test(held_tail_released_when_not_a_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
