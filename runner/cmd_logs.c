/* SPDX-License-Identifier: MIT */
/*
 * kiln logs flush DIR: send what remote log sinks left in their spool (a
 * receiver that was down past --sink-grace, a kiln that was killed); see
 * spool.h. DIR is --log-dir's .spool directory (or one sink's directory in
 * it; without --log-dir, ~/.local/state/kiln/spool). --sink-grace bounds
 * the retries (default 30 s). Credentials are not in the spool: --sink
 * NAME:token=T or NAME:headers=A=b;C=d give them again (spool.h).
 * Exit: 0 all sent, 1 some left or refused, 2 usage, 3 a running kiln
 * holds a sink directory's lock.
 */
#include "cli.h"
#include "ship.h"
#include "spool.h"

int kiln__cmd_logs(const kiln__cli_opts *o)
{
    if (!o->file)
        return kiln__usage_error("logs flush: expected the spool directory (--log-dir's .spool)");
    return kiln__spool_flush(o->file, o->sink_grace_set ? o->sink_grace_ms : kiln__ship_grace_ms(), o->sinks,
                             o->n_sinks);
}
