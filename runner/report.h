/* SPDX-License-Identifier: MIT */
/*
 * The JSON report of a build (--report FILE), shaped like Cloud Build's
 * Build resource: id, status, times, and per step status, timing, exit code,
 * outputs and progress. Finally steps are listed under "finally".
 * "logLoss" lists what log sinks lost (sinkloss.h): at the top level every
 * loss as {sink, [build,] step, bytes, lines, reason, required}, and per
 * step that step's as {sink, bytes, lines, reason, required}; both are []
 * when nothing was lost.
 */
#ifndef KILN_REPORT_H
#define KILN_REPORT_H

#include "engine.h"

/* Returns 0, or a negative KILN_E* when the file cannot be written. */
int kiln__report_write(const kiln__build *b, const char *path);
/* The report as JSON text; caller frees. */
char *kiln__report_json(const kiln__build *b);

#endif /* KILN_REPORT_H */
