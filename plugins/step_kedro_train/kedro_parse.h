/* SPDX-License-Identifier: MIT */
/*
 * kedro-train: reading kedro's log lines.
 *
 * kedro-train runs kedro with a logging configuration of its own (plain
 * StreamHandler, no wrapping), so each log record starts on its own line and
 * multi-line messages continue on the lines after it. The parser looks for
 * Kedro's message texts anywhere in a line, so it also copes with other plain
 * formats:
 *   kedro.pipeline.node        "Running node: %s"   (str(node))
 *                              "Node %s failed with error: \n%s"
 *   kedro.runner.*_runner      "Completed node: %s" (node.name)
 *                              "Completed %d out of %d tasks"
 *                              "There are %d nodes that have not run.\n...
 *                                 --from-nodes \"a,b\""
 *                              "No nodes ran. Repeat the previous command ..."
 *                              "Pipeline execution completed successfully in %.1f sec."
 *   click (usage errors)       "Error: ..." on stderr
 */
#ifndef KEDRO_PARSE_H
#define KEDRO_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kt_progress {
    int64_t done, total;  /* total is 0 until kedro printed the first "Completed N out of M" */
    char *running;        /* short name of the node last started */
    char *last_completed; /* name of the node last completed */
    char *failed_node;    /* short name of the node that failed */
    char *error_text;     /* the failing node's exception text (first line) */
    char *resume_from;    /* the names in kedro's `--from-nodes "..."` hint */
    int64_t not_run;      /* "There are %d nodes that have not run." */
    char *usage_error;    /* click's "Error: ..." line */
    char *last_stderr;    /* last non-empty stderr line (e.g. the exception) */
    bool no_nodes_ran;
    bool completed;       /* "Pipeline execution completed successfully" */
    bool no_module_kedro; /* python -m kedro without kedro installed */
    bool project_not_found;
    int expect;           /* internal: what the next line continues */
    int expect_stream;
} kt_progress;

typedef enum kt_event {
    KT_EV_NONE = 0,
    KT_EV_RUNNING,  /* a node started: running is set */
    KT_EV_TASKS,    /* done/total changed */
    KT_EV_FAILED,   /* failed_node is set */
    KT_EV_ERROR,    /* error_text is set */
    KT_EV_RESUME    /* resume_from is set */
} kt_event;

/* stream: 1 stdout, 2 stderr (kiln_stream). line has no newline. */
kt_event kt_parse_line(kt_progress *p, int stream, const char *line, size_t len);
void kt_progress_free(kt_progress *p);

/* "train: train_model([a;b]) -> [c]" -> "train"; "f([a]) -> [b]" -> "f". */
char *kt_node_short_name(const char *node_str, size_t len);

#endif /* KEDRO_PARSE_H */
