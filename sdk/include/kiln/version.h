/* SPDX-License-Identifier: MIT */
/*
 * kiln versions. The ABI major changes only when a plugin built for the old
 * major cannot work; the minor grows when entries are appended to the host
 * table or descriptor. A plugin loads when its major equals the host's and its
 * minor is not newer than the host's.
 */
#ifndef KILN_VERSION_H
#define KILN_VERSION_H

#define KILN_ABI_MAJOR 1
/* 1.6: executor plugins, exec_* and http_request_obj/http_pause_recv/
 * step_image host entries, kiln_http_req.on_headers.
 * 1.7: the shipping core for remote sinks (ship_* host entries).
 * 1.8: kiln_exec_spec.secret_env (which env entries are secrets).
 * 1.9: kiln_http_req.cert_pem, key_pem (a client certificate). */
#define KILN_ABI_MINOR 9

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0
#define KILN_VERSION_STRING "0.1.0"

#endif /* KILN_VERSION_H */
