/* SPDX-License-Identifier: MIT */
/* Every error code has a text, and docs/errors.md lists each with its number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "internal.h"

static char *read_doc(void)
{
    const char *src = getenv("KILN_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/errors.md", src ? src : ".");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    kiln__buf b = KILN__BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kiln__buf_add(&b, chunk, n);
    fclose(f);
    return kiln__buf_detach(&b);
}

static void every_code_is_documented(void **state)
{
    char *doc = read_doc();
    int count = 0;
#define XX(name, val, msg)                                                                         \
    do {                                                                                           \
        char row[128];                                                                             \
        snprintf(row, sizeof row, "| `KILN_" #name "` | %d |", (int)(val));                       \
        if (!strstr(doc, row))                                                                     \
            fail_msg("docs/errors.md lacks the row '%s'", row);                                    \
        assert_string_not_equal(kiln__strerror(val), "unknown error");                            \
        assert_string_equal(kiln__err_name(val), "KILN_" #name);                                  \
        count++;                                                                                   \
    } while (0);
    KILN_ERRNO_MAP(XX)
#undef XX
    assert_true(count >= 20);
    free(doc);
}

static void unknown_codes_say_so(void **state)
{
    assert_string_equal(kiln__strerror(-99999), "unknown error");
    assert_string_equal(kiln__strerror(0), "success");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_is_documented),
        cmocka_unit_test(unknown_codes_say_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
