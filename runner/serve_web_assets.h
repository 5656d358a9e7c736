/* SPDX-License-Identifier: MIT */
/* The files of web/, embedded by cmake/EmbedWeb.cmake (build dir's web_assets.c). */
#ifndef KILN_SERVE_WEB_ASSETS_H
#define KILN_SERVE_WEB_ASSETS_H
#include <stddef.h>
struct kiln__web_asset {
    const char *name;          /* "index.html", "app.css", ... */
    const unsigned char *data; /* len bytes, then a NUL */
    size_t len;
};
/* Ends with {NULL, NULL, 0}. */
extern const struct kiln__web_asset kiln__web_assets[];
#endif
