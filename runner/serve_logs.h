/* SPDX-License-Identifier: MIT */
/*
 * kiln serve's log records (serve_logs.c) and its web page (serve_web.c).
 *
 * Every line a build prints is a record: its step's sequence number (from
 * 1, stdout, stderr and kiln's own notes counted together, as the engine
 * numbers them), the stream ("stdout", "stderr", "kiln"), the time and the
 * text. The store is an engine tap: it sees each batch on the loop thread
 * before the sinks and appends it to
 *
 *   DATA/builds/BUILD/records/STEP.jsonl   one JSON object per record
 *   DATA/builds/BUILD/records/STEP.idx     the byte offset of each, 8 bytes
 *
 * (STEP percent-encoded; a build's own messages are "@build"), so a range
 * of records is two preads whatever the log's length. Followers of a step
 * (server-sent events) are woken by that same call, so a record reaches a
 * browser without any polling, and every one is read back from the store,
 * so a follower that resumes from a sequence number sees each record once.
 *
 *   GET /api/builds/ID/log?step=STEP&from=SEQ&limit=N
 *     JSON {"records": [...], "from", "next", "total", "complete"}
 *   ... with Accept: text/event-stream: every record from SEQ (or from
 *     Last-Event-ID + 1), then each new one as it is printed, one event
 *     per record with id: SEQ; "event: end" once the step has ended and
 *     everything was sent.
 *
 * The writes are plain write(2)s on the loop thread (to the page cache);
 * a disk that stalls stalls the loop, unlike the file sink's worker.
 */
#ifndef KILN_SERVE_LOGS_H
#define KILN_SERVE_LOGS_H

#include "serve.h"

struct st_h2o_req_t;

/* serve_logs.c */
/* Install the tap on srv->eng and start the keep-alive timer. */
void kiln__logs_init(kiln__server *srv);
/* The build has ended (or will never start): its followers finish. */
void kiln__logs_build_over(kiln__server *srv, const char *id);
/* Close the timer and every follower (before h2o's context goes). */
void kiln__logs_dispose(kiln__server *srv);
void kiln__logs_free(kiln__server *srv);
/* GET /api/builds/ID/log: answers req. */
int kiln__logs_handle(kiln__server *srv, struct st_h2o_req_t *req, const char *id, const char *step,
                      const char *from, const char *limit);

/* serve_web.c: GET / and /builds/ID and /static/... (or -1: not a page). */
int kiln__web_handle(kiln__server *srv, struct st_h2o_req_t *req, const char *path);
/* GET /api/builds/ID's extras: a WORKING build's live steps, resolved
 * substitutions, and "waits" (the graph) on the build and its sub-builds. */
void kiln__web_build_json(kiln__server *srv, const char *id, cJSON *o);
/* A top build has ended: keep its graph (DATA/builds/ID/graph.json). */
void kiln__web_build_end(kiln__server *srv, const char *id);

#endif /* KILN_SERVE_LOGS_H */
