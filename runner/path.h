/* SPDX-License-Identifier: MIT */
/*
 * Lexical path handling shared by kiln and kiln-mount-exec (which links
 * nothing else of kiln's): no file system access.
 */
#ifndef KILN_PATH_H
#define KILN_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Go's path.Clean for an absolute PATH: "//a/./b/../c/" -> "/a/c", ".." at
 * the root stays at the root. Returns -1 when the result does not fit. */
int kiln__path_clean(const char *path, char *out, size_t cap);
/* PATH is DIR or lies under it (both clean and absolute). */
bool kiln__path_under(const char *path, const char *dir);
/* The number of components: "/" 0, "/a" 1, "/a/b" 2. */
int kiln__path_depth(const char *path);
/* mkdir -p PATH (mode 0777 before the umask): 0, or -errno. */
int kiln__mkdir_p(const char *path);

#endif /* KILN_PATH_H */
