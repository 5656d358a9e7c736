/* SPDX-License-Identifier: MIT */
/*
 * Log records the sinks lost (kiln_api->sink_lost(), a write() that failed,
 * a sink that could not be opened), added up per sink and step. A loss
 * leaves the build's result alone unless the sink is required; either way
 * it is warned about once per sink, listed in the report (logLoss) and in
 * the end-of-run summary.
 */
#ifndef KILN_SINKLOSS_H
#define KILN_SINKLOSS_H

#include <stdio.h>

#include "engine.h"

struct cJSON;

typedef struct kiln__loss {
    int sink;              /* kiln_sink.index */
    char *sink_name;       /* the plugin's name */
    bool required;
    char *build_id;
    char *step_id;         /* NULL: the build's own messages */
    uint64_t bytes, lines;
    char *reason;          /* the first reason given, or NULL */
} kiln__loss;

/* kiln_api->sink_lost(); see kiln/host.h. A loss by a required sink sets
 * eng->loss_fail_reason and wakes the top build, which then fails. */
void kiln__sink_lost(kiln_sink *s, const char *build_id, const char *step_id, uint64_t bytes,
                     uint64_t lines, const char *reason);
/* The losses as a JSON array: of one step (step_id) of build build_id, or
 * every loss when build_id is NULL. */
struct cJSON *kiln__losses_json(const kiln__engine *eng, const char *build_id, const char *step_id);
/* One summary line per loss, "kiln: warning: log sink ..." ("error" when the
 * sink is required), secrets masked. */
void kiln__losses_print(const kiln__engine *eng, FILE *out);
void kiln__losses_release(kiln__engine *eng);

#endif /* KILN_SINKLOSS_H */
