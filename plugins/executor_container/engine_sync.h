/* SPDX-License-Identifier: MIT */
/*
 * The container executor's blocking Engine API calls. Only open() (finding
 * the engine, removing leftovers, making the build's network and home
 * volume) and close() (removing them) use these: both run outside any
 * step, before the build starts and after it ended. Steps' calls go through
 * the host's HTTP service on the loop.
 */
#ifndef KILN_CX_ENGINE_SYNC_H
#define KILN_CX_ENGINE_SYNC_H

typedef struct cx_addr {
    char *spec;  /* as given: unix:///path, tcp://host:port */
    char *sock;  /* unix socket path, or NULL */
    char *base;  /* http://d/v1.41 */
} cx_addr;

int cx_addr_parse(const char *spec, cx_addr *a);
void cx_addr_free(cx_addr *a);

/* METHOD base+PATH with an optional JSON body. 0 when a response came
 * (*status its code; *body, if asked, malloc'd NUL-terminated or NULL). */
int cx_sync(const cx_addr *a, const char *method, const char *path, const char *json, long timeout_ms,
            long *status, char **body);

#endif
