/* SPDX-License-Identifier: MIT */
/*
 * The name a log level is written under by the sinks that write a severity
 * (jsonl's "severity", Cloud Logging's LogSeverity): ERROR, WARNING, INFO,
 * DEBUG. One table, so that both sinks say the same of a record. Compiled
 * into each plugin that lists plugins/common/log_severity.c.
 */
#ifndef KILN_PLUGINS_LOG_SEVERITY_H
#define KILN_PLUGINS_LOG_SEVERITY_H

#include <kiln/log.h>

/* "ERROR", "WARNING", "DEBUG" (debug and trace), else "INFO". */
const char *kp_severity_name(kiln_log_level level);

#endif
