/* SPDX-License-Identifier: MIT */
/*
 * The shipping core: the runner side of kiln_api->ship_* (kiln/host.h).
 * A sink that sends its records to a remote receiver hands them here; the
 * core batches them, sends one batch at a time in order over the engine's
 * HTTP client, retries what may succeed later and reports what cannot with
 * kiln__sink_lost().
 */
#ifndef KILN_SHIP_H
#define KILN_SHIP_H

#include <stdint.h>

#include "kiln/host.h"

int kiln__ship_open(kiln_sink *sink, const kiln_ship_opts *opts, kiln_ship **out);
int kiln__ship_write(kiln_ship *ship, const kiln_log_batch *batch);
int kiln__ship_set_header(kiln_ship *ship, const char *header);
void kiln__ship_close(kiln_ship *ship);
void kiln__ship_hold(kiln_ship *ship, bool hold);

/* How long a closing ship keeps trying to deliver what it holds
 * (--sink-grace); 30 s unless set. */
void kiln__ship_set_grace_ms(int64_t ms);
int64_t kiln__ship_grace_ms(void);
/* Where ships spool batches a failing receiver has not taken (each sink in
 * DIR/NAME-HASH, HASH from its endpoint; see spool.h); NULL: nowhere (the
 * steps wait instead). */
void kiln__ship_set_spool_root(const char *dir);
/* The spool root when no --log-dir says one: $XDG_STATE_HOME/kiln/spool,
 * else $HOME/.local/state/kiln/spool (malloc'ed), or NULL (neither set). */
char *kiln__ship_default_spool_root(void);

#endif /* KILN_SHIP_H */
