/* SPDX-License-Identifier: MIT */
#include "log_severity.h"

const char *kp_severity_name(kiln_log_level level)
{
    switch (level) {
    case KILN_LOG_ERROR:
        return "ERROR";
    case KILN_LOG_WARN:
        return "WARNING";
    case KILN_LOG_DEBUG:
    case KILN_LOG_TRACE:
        return "DEBUG";
    default:
        return "INFO";
    }
}
