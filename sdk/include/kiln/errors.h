/* SPDX-License-Identifier: MIT */
/*
 * kiln error codes: one table, frozen numbers.
 *
 * Every fallible function of the SDK and the runner returns 0 or one of these
 * negative codes. Codes with an errno meaning are -errno; kiln's own codes live
 * at -4000 and below. A value never changes and is never reused. Each code is
 * documented in docs/errors.md; a test checks that the two agree.
 */
#ifndef KILN_ERRORS_H
#define KILN_ERRORS_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XX(NAME, value, message) */
#define KILN_ERRNO_MAP(XX)                                                                        \
    XX(EPERM, -EPERM, "operation not permitted")                                                \
    XX(ENOENT, -ENOENT, "no such file or directory")                                            \
    XX(EIO, -EIO, "i/o error")                                                                  \
    XX(E2BIG, -E2BIG, "argument list too long")                                                 \
    XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")                                     \
    XX(ENOMEM, -ENOMEM, "out of memory")                                                        \
    XX(EACCES, -EACCES, "permission denied")                                                    \
    XX(EEXIST, -EEXIST, "file exists")                                                          \
    XX(EINVAL, -EINVAL, "invalid argument")                                                     \
    XX(EPIPE, -EPIPE, "broken pipe")                                                            \
    XX(ENOSYS, -ENOSYS, "function not implemented")                                             \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                                      \
    XX(ECANCELED, -ECANCELED, "operation canceled")                                             \
    XX(ECONFIG, -4000, "invalid configuration")                                                 \
    XX(EABI, -4001, "plugin ABI mismatch")                                                      \
    XX(EPLUGIN, -4002, "plugin error")                                                          \
    XX(ESTEPFAILED, -4003, "step failed")                                                       \
    XX(EDEPFAILED, -4004, "a dependency failed")                                                \
    XX(EHTTP, -4005, "http request failed")                                                     \
    XX(ESKIPPED, -4006, "skipped")                                                              \
    XX(ESPAWN, -4007, "cannot start process")                                                   \
    XX(EEXIT, -4008, "process exited with a non-zero status")                                   \
    XX(ENOTFOUND, -4009, "not found")                                                           \
    XX(ELIMIT, -4010, "limit exceeded")

typedef enum kiln_errno {
#define KILN__ERRNO_ENUM(name, val, msg) KILN_##name = (val),
    KILN_ERRNO_MAP(KILN__ERRNO_ENUM)
#undef KILN__ERRNO_ENUM
    KILN_OK = 0
} kiln_errno;

#ifdef __cplusplus
}
#endif
#endif /* KILN_ERRORS_H */
