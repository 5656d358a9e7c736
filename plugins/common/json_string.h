/* SPDX-License-Identifier: MIT */
/*
 * JSON strings from arbitrary bytes: the one escaper every JSON writer of
 * kiln uses (the jsonl sink, the report, plan files, `kiln plugins --json`,
 * the deploying plugins' request bodies). No libraries, no allocation but in
 * kp_utf8_sanitize(); compiled into the runner (kiln_core) and into each
 * plugin that lists it, so nothing crosses the plugin boundary.
 *
 * RFC 8259 wants JSON text in UTF-8; step output, file names, environment
 * values and substitutions are bytes. The policy, the same everywhere:
 *
 *  - well-formed UTF-8 (Unicode's Table 3-7) is kept byte for byte;
 *  - every other byte sequence becomes U+FFFD, one per "maximal subpart of
 *    an ill-formed subsequence" (Unicode 15, section 3.9, "U+FFFD
 *    Substitution of Maximal Subparts", the W3C/WHATWG practice): so
 *    overlong forms (C0 AF), surrogates (ED A0 80) and code points above
 *    U+10FFFF (F4 90 80 80) are ill-formed, a lone continuation byte is one
 *    U+FFFD, and a truncated sequence (E6 97 then ASCII) is one U+FFFD;
 *  - escaped (kp_json_escape only): '"' and '\\'; \b \f \n \r \t; every other
 *    byte below 0x20, and DEL, as \u00XX. NUL is data like any other byte
 *    and comes out as \u0000.
 */
#ifndef KILN_PLUGINS_JSON_STRING_H
#define KILN_PLUGINS_JSON_STRING_H

#include <stddef.h>

/* The most bytes kp_json_escape() writes for N input bytes: 6 per byte
 * ("\u001b"); a replaced byte takes 3 (EF BF BD), kept bytes 1. */
#define KP_JSON_ESCAPE_MAX(n) (6 * (size_t)(n))

/*
 * Write the JSON string contents (no quotes) for the N bytes at SRC to DST,
 * which must have room for KP_JSON_ESCAPE_MAX(n) bytes. Returns the number
 * of bytes written; DST is not NUL-terminated. SRC may contain NUL.
 */
size_t kp_json_escape(char *dst, const char *src, size_t n);

/*
 * Length of the UTF-8 sequence at S (N > 0 bytes available): *ok is set to 1
 * and 1..4 returned for a well-formed character, or *ok is set to 0 and the
 * length of the maximal subpart (1..3) returned, which the caller replaces
 * with one U+FFFD.
 */
size_t kp_utf8_next(const unsigned char *s, size_t n, int *ok);

/*
 * A copy of the N bytes at S with every ill-formed subsequence replaced by
 * U+FFFD as above, and nothing else changed (no escaping): for JSON texts
 * that cJSON printed, because cJSON escapes only ASCII and copies bytes
 * >= 0x80 unchanged, so sanitizing its output equals sanitizing every key
 * and string of the tree. NUL-terminated; *out_len (if not NULL) gets its
 * length. The caller frees it with free(); NULL when memory ran out.
 */
char *kp_utf8_sanitize(const char *s, size_t n, size_t *out_len);

#endif /* KILN_PLUGINS_JSON_STRING_H */
