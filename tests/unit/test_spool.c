/* SPDX-License-Identifier: MIT */
/* The spool file parser: a whole file, an old one without 'length', and
 * corrupt or truncated ones refused with "FILE: offset N: expected ...". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/errors.h"
#include "spool.h"

static char *refusal(const char *text, size_t len)
{
    kiln__spooled s;
    char *err = NULL;
    assert_int_equal(kiln__spool_parse("x.req", text, len, &s, &err), KILN_EINVAL);
    assert_null(s.url);
    assert_null(s.body);
    assert_non_null(err);
    return err;
}

static void parses_a_whole_file(void **state)
{
    const char f[] = "KILNSPOOL 1\nurl http://h/v1/logs\nheader Content-Type: application/json\n"
                     "header Authorization: Bearer t\nlength 7\n\n{\"a\":1}";
    kiln__spooled s;
    char *err = NULL;
    assert_int_equal(kiln__spool_parse("x.req", f, sizeof f - 1, &s, &err), 0);
    assert_null(err);
    assert_string_equal(s.url, "http://h/v1/logs");
    assert_int_equal(s.n_headers, 2);
    assert_string_equal(s.headers[1], "Authorization: Bearer t");
    assert_int_equal(s.body_len, 7);
    assert_memory_equal(s.body, "{\"a\":1}", 7);
    kiln__spooled_release(&s);
}

static void parses_an_old_file_without_length(void **state)
{
    const char f[] = "KILNSPOOL 1\nurl http://h/\n\nBODY";
    kiln__spooled s;
    assert_int_equal(kiln__spool_parse("x.req", f, sizeof f - 1, &s, NULL), 0);
    assert_int_equal(s.body_len, 4);
    kiln__spooled_release(&s);
}

static void refuses_with_file_and_offset(void **state)
{
    char *e = refusal("", 0);
    assert_string_equal(e, "x.req: offset 0: expected 'KILNSPOOL 1' (not a kiln spool file)");
    free(e);
    const char trunc_body[] = "KILNSPOOL 1\nurl http://h/\nlength 10\n\n12345";
    e = refusal(trunc_body, sizeof trunc_body - 1);
    assert_string_equal(e, "x.req: offset 37: expected a body of 10 bytes ('length'), found 5 (truncated)");
    free(e);
    const char trunc_head[] = "KILNSPOOL 1\nurl http://h/\nhea";
    e = refusal(trunc_head, sizeof trunc_head - 1);
    assert_string_equal(e, "x.req: offset 26: truncated: expected a header line or the blank line before the body");
    free(e);
    const char junk[] = "KILNSPOOL 1\nurl http://h/\nbogus\n\n{}";
    e = refusal(junk, sizeof junk - 1);
    assert_string_equal(e, "x.req: offset 26: expected 'url URL', 'sink NAME', 'header NAME: VALUE', 'needs NAME', 'length N' or a blank line");
    free(e);
    const char cr[] = "KILNSPOOL 1\nurl http://h/\nheader X: a\rY: b\n\n{}";
    e = refusal(cr, sizeof cr - 1);
    assert_string_equal(e, "x.req: offset 26: expected 'header NAME: VALUE' (no NUL or CR)");
    free(e);
    const char nourl[] = "KILNSPOOL 1\n\n{}";
    e = refusal(nourl, sizeof nourl - 1);
    assert_string_equal(e, "x.req: offset 12: expected a 'url' line before the body");
    free(e);
}

static void reads_a_written_file_back(void **state)
{
    char dir[] = "/tmp/kiln-spool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *h[] = {"Content-Type: application/json", "Authorization: Bearer s3cret",
                       "X-Scope-OrgID: tenant-key", "Content-Encoding: gzip"};
    char *path = NULL;
    assert_int_equal(kiln__spool_write(dir, "b1", "otlp", "http://h/", h, 4, "{}", 2, &path), 0);
    kiln__spooled s;
    char *err = NULL;
    assert_int_equal(kiln__spool_read(path, &s, &err), 0);
    assert_string_equal(s.url, "http://h/");
    assert_string_equal(s.sink, "otlp");
    assert_int_equal(s.body_len, 2);
    /* Only the content headers are kept; the others are named, not written. */
    assert_int_equal(s.n_headers, 2);
    assert_string_equal(s.headers[0], "Content-Type: application/json");
    assert_string_equal(s.headers[1], "Content-Encoding: gzip");
    assert_int_equal(s.n_needs, 2);
    assert_string_equal(s.needs[0], "Authorization");
    assert_string_equal(s.needs[1], "X-Scope-OrgID");
    kiln__spooled_release(&s);
    FILE *f = fopen(path, "rb");
    char raw[512];
    size_t got = fread(raw, 1, sizeof raw - 1, f);
    fclose(f);
    raw[got] = '\0';
    assert_null(strstr(raw, "s3cret"));
    assert_null(strstr(raw, "tenant-key"));
    /* Truncated on disk: refused, naming the file. */
    assert_int_equal(truncate(path, 60), 0);
    assert_int_equal(kiln__spool_read(path, &s, &err), KILN_EINVAL);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ": offset "));
    free(err);
    unlink(path);
    free(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_a_whole_file),
        cmocka_unit_test(parses_an_old_file_without_length),
        cmocka_unit_test(refuses_with_file_and_offset),
        cmocka_unit_test(reads_a_written_file_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
