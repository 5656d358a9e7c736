/* SPDX-License-Identifier: MIT */
/*
 * kiln's command line, shared by the commands (cmd_*.c, as git's builtin/):
 * the options of run, validate, graph, plugins, trigger and hook install,
 * parsed once into kiln__cli_opts. kiln serve and the API clients (serve.h)
 * parse their own.
 *
 * Exit codes: 0 success; 1 the build failed; 2 invalid usage or an invalid
 * pipeline (nothing ran); 130 interrupted (SIGINT), 143 terminated (SIGTERM).
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "resolve.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

extern const char kiln__usage_text[];

typedef struct kiln__cli_opts kiln__cli_opts;

struct kiln__cli_opts {
    const char *cmd;
    const char *file;
    const char *report;
    const char *log_dir;
    const char *log_format;
    const char *color;
    const char *only;
    const char *workspace;
    const char *project;
    const char *format;
    const char *plan_dir;
    const char *triggers, *repo, *ref, *before, *after, *out;
    bool list, triggered;
    const char *secrets_file, *secrets_command;
    const char *builders;
    const char *executor; /* --executor NAME[:key=value,...], else $KILN_EXECUTOR */
    const char **sinks; /* --sink NAME[:key=value,...] */
    size_t n_sinks;
    bool quiet, dry_run, json, cloudbuild_strict, log_dir_required;
    int max_parallel;
    int64_t kill_grace_ms;
    int64_t sink_grace_ms;  /* --sink-grace (sink_grace_set) */
    bool sink_grace_set;
    char **substs;
    size_t n_substs;
    const char **plugin_paths;
    size_t n_plugin_paths;
};

/* Parses argv[1] (the command) and its options into o. Returns 0, or
 * EXIT_USAGE after printing what was wrong. */
int kiln__cli_parse(int argc, char **argv, kiln__cli_opts *o);
void kiln__cli_release(kiln__cli_opts *o);
/* "kiln: MESSAGE" and a hint on stderr; returns EXIT_USAGE. */
int kiln__usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Is word one of the '|'-separated choices? */
bool kiln__one_of(const char *word, const char *choices);

/* Load, resolve and check o->file. Returns 0 (valid), or EXIT_USAGE after
 * printing every problem. Notes and warnings are printed either way. */
int kiln__cli_load_checked(kiln__engine *eng, const kiln__cli_opts *o, kiln__pipeline *p,
                           kiln__subst **subst, kiln__secrets *secrets, char *build_id,
                           const char *workspace);

int kiln__cmd_run(const kiln__cli_opts *o, bool validate_only); /* cmd_run.c */
int kiln__cmd_graph(const kiln__cli_opts *o);                   /* cmd_graph.c */
int kiln__cmd_plugins(const kiln__cli_opts *o);                 /* cmd_plugins.c */
int kiln__cmd_trigger(const kiln__cli_opts *o);                 /* cmd_trigger.c */
int kiln__cmd_hook_install(const kiln__cli_opts *o);            /* cmd_hook.c */
int kiln__cmd_logs(const kiln__cli_opts *o);                    /* cmd_logs.c */

/* Loads a triggers file, printing its problems. 0, or EXIT_USAGE. */
struct kiln__triggers;
int kiln__cli_load_triggers(const char *file, struct kiln__triggers *ts);

/* --sink NAME[:key=value,...] (kiln run, kiln serve): a sink plugin with
 * options from the command line, added to ENG; its strings live in DOC.
 * 0, or < 0 with ERR saying why. */
int kiln__cli_add_sink(kiln__engine *eng, kiln__ydoc *doc, const char *spec, kiln__buf *err);

#endif /* KILN_CLI_H */
