/* SPDX-License-Identifier: MIT */
/*
 * kiln serve's API requests, parsed without HTTP around them (so that
 * tests/fuzz/fuzz_serve_req.c calls them as they are): percent-decoding,
 * query parameters, the list's cursor and page size, the body of
 * POST /api/triggers/NAME:run.
 */
#ifndef KILN_SERVE_REQ_H
#define KILN_SERVE_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN__API_DEFAULT_PAGE 50
#define KILN__API_MAX_PAGE 1000

/* s[0..n) percent-decoded ('+' is a space in a query, not in a path), as a
 * new string. A '%' not followed by two hex digits stays as it is. */
char *kiln__url_decode(const char *s, size_t n, bool in_query);

/* The decoded value of the parameter name in the query string q[0..n)
 * (without '?'), or NULL. The first one wins. */
char *kiln__query_get(const char *q, size_t n, const char *name);

/* ?cursor= and ?pageSize= (either NULL or empty: the default). Returns 0,
 * or -1 with why. */
int kiln__list_params(const char *cursor, const char *page_size, int64_t *cur, int *limit, char *why,
                      size_t cap);

/* The body of POST /api/triggers/NAME:run. */
typedef struct kiln__run_req {
    char *branch, *tag, *commit;    /* at most one of branch and tag */
    char **substs;                  /* "K=V" */
    size_t n_substs;
} kiln__run_req;

/* Parse body[0..len) (empty: {}). Returns 0, or -1 with why (a 400). Free
 * with kiln__run_req_free either way. */
int kiln__run_req_parse(const char *body, size_t len, kiln__run_req *r, char *why, size_t cap);
void kiln__run_req_free(kiln__run_req *r);

#endif /* KILN_SERVE_REQ_H */
