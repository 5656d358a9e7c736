/* SPDX-License-Identifier: MIT */
/*
 * The one header a kiln plugin includes. It pulls in the rest of the SDK:
 * versions, error codes, log records, the plugin descriptor and the host
 * services table. No libuv, curl, libyaml or cJSON type appears in any of them.
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include "kiln/version.h"
#include "kiln/errors.h"
#include "kiln/log.h"
#include "kiln/plugin.h"
#include "kiln/host.h"

#endif /* KILN_KILN_H */
