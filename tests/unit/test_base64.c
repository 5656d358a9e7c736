/* SPDX-License-Identifier: MIT */
/*
 * plugins/common/base64.c: the one base64 of the plugins (Secrets and
 * ConfigMaps, kubeconfig *-data, X-Registry-Auth, docker config "auth").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/common/base64.c"

/* RFC 4648 section 10 */
static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void rfc_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        char *b = kp_base64(plain[i], strlen(plain[i]), 0);
        assert_string_equal(b, coded[i]);
        free(b);
        size_t n = 99;
        char *d = kp_base64_decode(coded[i], &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(plain[i]));
        assert_string_equal(d, plain[i]);
        free(d);
    }
}

/* The two alphabets differ in 62 and 63 only. */
static void url_alphabet(void **state)
{
    (void)state;
    char *s = kp_base64("\xfb\xff", 2, 0), *u = kp_base64("\xfb\xff", 2, KP_BASE64_URL);
    assert_string_equal(s, "+/8=");
    assert_string_equal(u, "-_8=");
    free(s);
    free(u);
    u = kp_base64("{}", 2, KP_BASE64_URL);
    assert_string_equal(u, "e30=");
    free(u);
}

/* A JWT's parts: base64url, no '='. */
static void unpadded(void **state)
{
    (void)state;
    const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char *b = kp_base64(plain[i], strlen(plain[i]), KP_BASE64_URL | KP_BASE64_NOPAD);
        assert_string_equal(b, want[i]);
        free(b);
        /* and the decoder takes it without its padding */
        char *d = kp_base64_decode(want[i], NULL);
        assert_string_equal(d, plain[i]);
        free(d);
    }
}

/* Binary data with NULs comes back whole; the length says where it ends. */
static void binary_round_trip(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof all; n += 37) {
        char *b = kp_base64(all, n, 0);
        size_t m = 0;
        char *d = kp_base64_decode(b, &m);
        assert_non_null(d);
        assert_int_equal(m, n);
        assert_memory_equal(d, all, n);
        free(b);
        free(d);
    }
}

/* A kubeconfig's certificate-authority-data may be wrapped; PEM is. */
static void whitespace_skipped(void **state)
{
    (void)state;
    char *d = kp_base64_decode("Zm9v\nYmFy\r\n", NULL);
    assert_string_equal(d, "foobar");
    free(d);
    d = kp_base64_decode(" Zm9v YmE= ", NULL);
    assert_string_equal(d, "fooba");
    free(d);
}

/* Not base64: NULL, so the caller names the field (kubeconfig) or ignores
 * the entry (docker config). base64url's '-' and '_' are not standard. */
static void invalid_refused(void **state)
{
    (void)state;
    assert_null(kp_base64_decode("Zm9v!", NULL));
    assert_null(kp_base64_decode("-_8=", NULL));
    assert_null(kp_base64_decode("Zm9v\x80", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_vectors),      cmocka_unit_test(url_alphabet), cmocka_unit_test(unpadded),   cmocka_unit_test(binary_round_trip),
        cmocka_unit_test(whitespace_skipped), cmocka_unit_test(invalid_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
