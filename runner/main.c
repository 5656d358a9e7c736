/* SPDX-License-Identifier: MIT */
/*
 * kiln's command line: run, validate, graph, plugins, version.
 *
 * Exit codes: 0 success; 1 the build failed; 2 invalid usage or an invalid
 * pipeline (nothing ran); 130 interrupted (SIGINT), 143 terminated (SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "builders.h"
#include "config_map.h"
#include "dag.h"
#include "engine.h"
#include "report.h"
#include "sinkloss.h"
#include "resolve.h"
#include "serve.h"
#include "triggers.h"
#include "trigger_run.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: kiln <command> [options]\n"
    "\n"
    "commands:\n"
    "  run PIPELINE.yaml       run the pipeline's steps as a DAG\n"
    "  validate PIPELINE.yaml  check everything, run nothing\n"
    "  graph PIPELINE.yaml     print the step graph (--format text|dot|mermaid)\n"
    "  plugins [NAME]          list plugins, or show one plugin's options (--json)\n"
    "  version                 print kiln's version and plugin ABI\n"
    "  trigger --triggers FILE --repo PATH --ref REF [--before SHA --after SHA]\n"
    "                          evaluate a push, run every build whose trigger fires\n"
    "  trigger --triggers FILE --list   list the triggers (with schedules)\n"
    "  hook install --triggers FILE REPO.git\n"
    "                          a post-receive hook: every push runs `kiln trigger`\n"
    "  serve --triggers FILE [--listen HOST:PORT] [--data DIR] [--max-builds N]\n"
    "        [--token-file FILE] [--webhook-secret-file FILE]\n"
    "                          the build server: HTTP API, GitHub webhooks, queue,\n"
    "                          history (kiln serve --help)\n"
    "  builds list|show ID|cancel ID|log ID [STEP] [--server URL]\n"
    "                          ask a kiln serve (token of writes: $KILN_TOKEN)\n"
    "  trigger --server URL NAME [--branch B|--tag T] [--commit SHA] [--wait]\n"
    "                          run a trigger on a kiln serve\n"
    "\n"
    "options of run and validate:\n"
    "  --substitutions K=V[,K=V...]  substitution values (repeatable)\n"
    "  --max-parallel N              steps running at once (default: 32)\n"
    "  --report FILE                 write a JSON report of the build\n"
    "  --log-dir DIR                 one log file per step under DIR\n"
    "  --log-dir-required            a step log --log-dir cannot keep (a full disk)\n"
    "                                fails the build (default: it is only reported)\n"
    "  --log-format kiln|cloudbuild  console line format\n"
    "  --quiet                       no step output on the console\n"
    "  --color auto|always|never     colour on the console\n"
    "  --only ID                     run step ID and the steps it waits for\n"
    "  --workspace DIR               the steps' working directory (default: .)\n"
    "  --project ID                  PROJECT_ID (default: $GOOGLE_CLOUD_PROJECT or 'local')\n"
    "  --kill-grace DURATION         SIGTERM-to-SIGKILL grace period (default 10s)\n"
    "  --dry-run                     deploy steps only record what they would do\n"
    "                                (mock-deploy; a plan file per build)\n"
    "  --plan-dir DIR                where dry-run plans go (default: --log-dir, else .)\n"
    "  --sink NAME[:K=V,...]         send logs to another sink plugin too (repeatable);\n"
    "                                required=true: a record it loses fails the build\n"
    "  --builders FILE               more builder-image-to-plugin rules (also KILN_BUILDERS)\n"
    "  --cloudbuild-strict           what Cloud Build would reject is an error: its size\n"
    "                                limits, and kiln's fields (uses, with, retry, finally,\n"
    "                                maxParallel)\n"
    "  --secrets-file FILE           secret values, dotenv lines NAME=value (never commit it)\n"
    "  --secrets-command CMD         run CMD VERSION_NAME to print a secret's value\n"
    "  --plugin-path DIR             where to look for plugins (repeatable; also\n"
    "                                KILN_PLUGIN_PATH)\n"
    "\n"
    "options of trigger and hook install:\n"
    "  --triggers FILE   the triggers file (triggers: [...], Cloud Build's field names)\n"
    "  --repo PATH       the repository pushed to (a bare repository or a clone)\n"
    "  --ref REF         refs/heads/BRANCH, refs/tags/TAG, or a branch name\n"
    "  --before SHA      the ref's old commit (changed files: before..after)\n"
    "  --after SHA       the ref's new commit (default: what REF points at)\n"
    "  --out DIR         where each build's checkout, logs, report and plan go\n"
    "                    (default: a new directory under $TMPDIR)\n"
    "  --dry-run         as for run; hook install: the hook runs dry runs\n";

struct opts {
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
    const char **sinks; /* --sink NAME[:key=value,...] */
    size_t n_sinks;
    bool quiet, dry_run, json, cloudbuild_strict, log_dir_required;
    int max_parallel;
    int64_t kill_grace_ms;
    char **substs;
    size_t n_substs;
    const char **plugin_paths;
    size_t n_plugin_paths;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kiln: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'kiln help'.\n", stderr);
    return EXIT_USAGE;
}

/* Is word one of the '|'-separated choices? */
static bool one_of(const char *word, const char *choices)
{
    size_t n = strlen(word);
    for (const char *p = choices; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
        if (strncmp(p, word, n) == 0 && (p[n] == '|' || p[n] == '\0'))
            return true;
    return false;
}

/* --substitutions A=1,B=2: gcloud's form; a value may not contain ','. */
static void add_substs(struct opts *o, const char *arg)
{
    char *copy = kiln__xstrdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        o->substs = kiln__xrealloc(o->substs, (o->n_substs + 1) * sizeof *o->substs);
        o->substs[o->n_substs++] = kiln__xstrdup(tok);
    }
    free(copy);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_SUBST = 256, O_MAXPAR, O_REPORT, O_LOGDIR, O_LOGFMT, O_QUIET, O_COLOR, O_ONLY, O_WS,
        O_PROJECT, O_GRACE, O_DRY, O_PPATH, O_FORMAT, O_JSON, O_HELP, O_SECFILE, O_SECCMD, O_BUILDERS, O_SINK,
        O_PLANDIR, O_TRIGGERS, O_REPO, O_REF, O_BEFORE, O_AFTER, O_OUT, O_LIST, O_STRICT,
        O_LOGDIR_REQ
    };
    static const struct option longopts[] = {
        {"substitutions", required_argument, NULL, O_SUBST},
        {"max-parallel", required_argument, NULL, O_MAXPAR},
        {"report", required_argument, NULL, O_REPORT},
        {"log-dir", required_argument, NULL, O_LOGDIR},
        {"log-dir-required", no_argument, NULL, O_LOGDIR_REQ},
        {"log-format", required_argument, NULL, O_LOGFMT},
        {"quiet", no_argument, NULL, O_QUIET},
        {"color", required_argument, NULL, O_COLOR},
        {"only", required_argument, NULL, O_ONLY},
        {"workspace", required_argument, NULL, O_WS},
        {"project", required_argument, NULL, O_PROJECT},
        {"kill-grace", required_argument, NULL, O_GRACE},
        {"dry-run", no_argument, NULL, O_DRY},
        {"plugin-path", required_argument, NULL, O_PPATH},
        {"format", required_argument, NULL, O_FORMAT},
        {"json", no_argument, NULL, O_JSON},
        {"secrets-file", required_argument, NULL, O_SECFILE},
        {"secrets-command", required_argument, NULL, O_SECCMD},
        {"builders", required_argument, NULL, O_BUILDERS},
        {"cloudbuild-strict", no_argument, NULL, O_STRICT},
        {"sink", required_argument, NULL, O_SINK},
        {"help", no_argument, NULL, O_HELP},
        {"plan-dir", required_argument, NULL, O_PLANDIR},
        {"triggers", required_argument, NULL, O_TRIGGERS},
        {"repo", required_argument, NULL, O_REPO},
        {"ref", required_argument, NULL, O_REF},
        {"before", required_argument, NULL, O_BEFORE},
        {"after", required_argument, NULL, O_AFTER},
        {"out", required_argument, NULL, O_OUT},
        {"list", no_argument, NULL, O_LIST},
        {NULL, 0, NULL, 0},
    };
    o->cmd = argv[1];
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "q", longopts, NULL)) != -1) {
        switch (c) {
        case O_SUBST:
            add_substs(o, optarg);
            break;
        case O_MAXPAR: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 4096)
                return usage_error("--max-parallel: expected a number from 1 to 4096, got '%s'", optarg);
            o->max_parallel = (int)v;
            break;
        }
        case O_REPORT:
            o->report = optarg;
            break;
        case O_LOGDIR:
            o->log_dir = optarg;
            break;
        case O_LOGDIR_REQ:
            o->log_dir_required = true;
            break;
        case O_LOGFMT:
            if (!one_of(optarg, "kiln|cloudbuild"))
                return usage_error("--log-format: expected kiln or cloudbuild, got '%s'", optarg);
            o->log_format = optarg;
            break;
        case 'q':
        case O_QUIET:
            o->quiet = true;
            break;
        case O_COLOR:
            if (!one_of(optarg, "auto|always|never"))
                return usage_error("--color: expected auto, always or never, got '%s'", optarg);
            o->color = optarg;
            break;
        case O_ONLY:
            o->only = optarg;
            break;
        case O_WS:
            o->workspace = optarg;
            break;
        case O_PROJECT:
            o->project = optarg;
            break;
        case O_GRACE:
            if (kiln__parse_duration(optarg, false, &o->kill_grace_ms) != 0)
                return usage_error("--kill-grace: expected a duration such as 10s or 500ms, got '%s'",
                                   optarg);
            break;
        case O_DRY:
            o->dry_run = true;
            break;
        case O_STRICT:
            o->cloudbuild_strict = true;
            break;
        case O_PPATH:
            o->plugin_paths = kiln__xrealloc(o->plugin_paths,
                                             (o->n_plugin_paths + 1) * sizeof *o->plugin_paths);
            o->plugin_paths[o->n_plugin_paths++] = optarg;
            break;
        case O_FORMAT:
            if (!one_of(optarg, "text|dot|mermaid"))
                return usage_error("--format: expected text, dot or mermaid, got '%s'", optarg);
            o->format = optarg;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_PLANDIR:
            o->plan_dir = optarg;
            break;
        case O_TRIGGERS:
            o->triggers = optarg;
            break;
        case O_REPO:
            o->repo = optarg;
            break;
        case O_REF:
            o->ref = optarg;
            break;
        case O_BEFORE:
            o->before = optarg;
            break;
        case O_AFTER:
            o->after = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_LIST:
            o->list = true;
            break;
        case O_SECFILE:
            o->secrets_file = optarg;
            break;
        case O_SECCMD:
            o->secrets_command = optarg;
            break;
        case O_BUILDERS:
            o->builders = optarg;
            break;
        case O_SINK:
            o->sinks = kiln__xrealloc(o->sinks, (o->n_sinks + 1) * sizeof *o->sinks);
            o->sinks[o->n_sinks++] = optarg;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            exit(0);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        o->file = argv[optind++];
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->log_dir_required && !o->log_dir)
        return usage_error("--log-dir-required: which directory? (give --log-dir DIR too)");
    return 0;
}

static void new_build_id(char *out, size_t cap)
{
    kiln__new_build_id(out, cap);
}

/* Load, resolve and check. Returns 0 (valid), or EXIT_USAGE after printing
 * every problem. Notes and warnings are printed either way. */
static int load_checked(kiln__engine *eng, const struct opts *o, kiln__pipeline *p,
                        kiln__subst **subst, kiln__secrets *secrets, char *build_id,
                        const char *workspace)
{
    kiln__load_opts lo = {o->file, (const char *const *)o->substs, o->n_substs, o->project,
                          o->triggered, o->cloudbuild_strict, o->builders, o->secrets_file,
                          o->secrets_command};
    kiln__buf text = KILN__BUF_INIT;
    int errors = kiln__load_checked(eng, &lo, p, subst, secrets, build_id, workspace, &text);
    if (text.len)
        fputs(text.buf, stderr);
    kiln__buf_release(&text);
    if (errors) {
        fprintf(stderr, "kiln: %s: %d error%s; nothing was run\n", o->file, errors,
                errors == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    return 0;
}

static kiln__ynode *scalar_node(kiln__ydoc *doc, const char *v)
{
    kiln__ynode *n = kiln__ydoc_alloc(doc, sizeof *n);
    n->kind = KILN__Y_SCALAR;
    n->quoted = true;
    n->value = v;
    n->len = strlen(v);
    return n;
}

/* A mapping node of string options, for sinks configured from the CLI. */
static kiln__ynode *map_node(kiln__ydoc *doc, const char *const *kv, size_t n_pairs)
{
    kiln__ynode *m = kiln__ydoc_alloc(doc, sizeof *m);
    m->kind = KILN__Y_MAP;
    m->items = kiln__ydoc_alloc(doc, (2 * n_pairs + 1) * sizeof *m->items);
    for (size_t i = 0; i < n_pairs; i++) {
        m->items[2 * i] = scalar_node(doc, kv[2 * i]);
        m->items[2 * i + 1] = scalar_node(doc, kv[2 * i + 1]);
    }
    m->n = n_pairs;
    return m;
}

/* --sink NAME[:key=value,...]: a sink plugin with options from the command
 * line (values may not contain ','). required=true|false is kiln's own
 * option of every sink, not the plugin's. */
static int add_cli_sink(kiln__engine *eng, kiln__ydoc *doc, const char *spec, kiln__buf *err)
{
    char *copy = kiln__ydoc_alloc(doc, strlen(spec) + 1);
    memcpy(copy, spec, strlen(spec) + 1);
    char *colon = strchr(copy, ':');
    const char *kv[64];
    size_t n = 0;
    bool required = false;
    if (colon) {
        *colon = '\0';
        char *save = NULL;
        for (char *tok = strtok_r(colon + 1, ",", &save); tok && n < 62; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq) {
                kiln__buf_addf(err, "--sink %s: '%s' is not key=value", spec, tok);
                return KILN_EINVAL;
            }
            *eq = '\0';
            if (strcmp(tok, "required") == 0) {
                if (!one_of(eq + 1, "true|false")) {
                    kiln__buf_addf(err, "--sink %s: required: expected true or false, got '%s'", spec,
                                   eq + 1);
                    return KILN_EINVAL;
                }
                required = strcmp(eq + 1, "true") == 0;
                continue;
            }
            kv[n++] = tok;
            kv[n++] = eq + 1;
        }
    }
    return kiln__sink_add(eng, copy, map_node(doc, kv, n / 2), "--sink", required, err);
}

static void on_build_end(kiln__build *b, void *data)
{
    kiln__engine *eng = b->eng;
    kiln__engine_watch_signals(eng, false);
}

static int cmd_run(const struct opts *o, bool validate_only)
{
    if (!o->file)
        return usage_error("%s: which pipeline file?", o->cmd);
    char workspace[PATH_MAX];
    if (!realpath(o->workspace ? o->workspace : ".", workspace)) {
        fprintf(stderr, "kiln: --workspace '%s': %s\n", o->workspace ? o->workspace : ".",
                strerror(errno));
        return EXIT_USAGE;
    }
    kiln__engine eng;
    if (kiln__engine_init(&eng) != 0) {
        fprintf(stderr, "kiln: cannot start the event loop\n");
        return EXIT_FAILED;
    }
    kiln__registry_init(&eng.reg, o->plugin_paths, o->n_plugin_paths);
    eng.reg.api = &kiln__host_api;
    eng.dry_run = o->dry_run;
    eng.reg.mock_deploys = o->dry_run;
    if (o->dry_run) {
        const char *pd = o->plan_dir ? o->plan_dir : o->log_dir ? o->log_dir : ".";
        char cwd[PATH_MAX];
        if (pd[0] != '/' && getcwd(cwd, sizeof cwd))
            eng.plan_dir = strcmp(pd, ".") ? kiln__xasprintf("%s/%s", cwd, pd) : kiln__xstrdup(cwd);
        else
            eng.plan_dir = kiln__xstrdup(pd);
    }
    if (o->max_parallel) {
        eng.max_parallel = o->max_parallel;
        eng.max_parallel_forced = true;
    }
    if (o->kill_grace_ms)
        eng.kill_grace_ms = o->kill_grace_ms;

    char build_id[40];
    new_build_id(build_id, sizeof build_id);
    kiln__pipeline p;
    kiln__subst *subst = NULL;
    kiln__secrets secrets;
    int rc = load_checked(&eng, o, &p, &subst, &secrets, build_id, workspace);
    if (rc || validate_only) {
        if (!rc) {
            size_t pushes = p.images_added ? p.images.n : 0, n = p.n_steps - pushes;
            printf("%s: valid (%zu step%s%s%s)\n", o->file, n, n == 1 ? "" : "s",
                   pushes ? ", then images pushed" : "", p.n_finally ? ", with finally steps" : "");
        }
        kiln__engine_release(&eng);
        if (subst)
            kiln__subst_destroy(subst);
        kiln__secrets_release(&secrets);
        kiln__pipeline_free(&p);
        return rc;
    }

    /* Sinks: the console, and one file per step with --log-dir. */
    kiln__ydoc sinkdoc;
    memset(&sinkdoc, 0, sizeof sinkdoc);
    const char *console_kv[] = {"format", o->log_format ? o->log_format : "kiln",
                                "color", o->color ? o->color : "auto",
                                "quiet", o->quiet ? "true" : "false"};
    kiln__buf err = KILN__BUF_INIT;
    rc = kiln__sink_add(&eng, "console", map_node(&sinkdoc, console_kv, 3), "--log-format", false,
                        &err);
    if (!rc && o->log_dir) {
        const char *file_kv[] = {"dir", o->log_dir};
        rc = kiln__sink_add(&eng, "file", map_node(&sinkdoc, file_kv, 1), "--log-dir",
                            o->log_dir_required, &err);
    }
    for (size_t i = 0; !rc && i < o->n_sinks; i++)
        rc = add_cli_sink(&eng, &sinkdoc, o->sinks[i], &err);
    kiln__build *b = NULL;
    if (!rc)
        rc = kiln__build_create(&eng, &p, subst, workspace, o->only, &err, &b);
    if (rc == KILN_ECONFIG) /* FILE:LINE:COL lines, as for any invalid file */
        fprintf(stderr, "%s\nkiln: %s: nothing was run\n", err.buf, o->file);
    else if (rc)
        fprintf(stderr, "kiln: %s\n", err.buf);
    if (rc) {
        kiln__buf_release(&err);
        kiln__engine_release(&eng);
        kiln__ydoc_free(&sinkdoc);
        kiln__subst_destroy(subst);
        kiln__secrets_release(&secrets);
        kiln__pipeline_free(&p);
        return rc == KILN_ENOTFOUND || rc == KILN_ECONFIG ? EXIT_USAGE : EXIT_FAILED;
    }
    kiln__buf_release(&err);
    eng.top = b;
    b->secrets = &secrets;
    b->on_end = on_build_end;
    kiln__engine_watch_signals(&eng, true);
    kiln__build_start(b);
    uv_run(eng.loop, UV_RUN_DEFAULT);

    /* Every sink writes out or counts as lost what it still holds before
     * the report and the summary say what was lost. Signals stay watched
     * meanwhile (on_signal: a second one ends kiln), unreferenced so that
     * they keep no loop turning. */
    kiln__engine_watch_signals(&eng, true);
    uv_unref((uv_handle_t *)&eng.sig_int);
    uv_unref((uv_handle_t *)&eng.sig_term);
    kiln__sinks_close(&eng);
    if (eng.loss_fail_reason && b->status == KILN_STATUS_SUCCESS) {
        /* A required sink lost records only while closing. */
        b->status = KILN_STATUS_FAILURE;
        free(b->fail_reason);
        b->fail_reason = kiln__xstrdup(eng.loss_fail_reason);
        fprintf(stderr, "kiln: the build is a FAILURE: %s\n", b->fail_reason);
    }
    kiln__losses_print(&eng, stderr);
    kiln_status status = b->status;
    if (o->report) {
        int wrc = kiln__report_write(b, o->report);
        if (wrc)
            fprintf(stderr, "kiln: cannot write the report '%s': %s\n", o->report, kiln__strerror(wrc));
    }
    if (o->log_dir)
        fprintf(stderr, "kiln: step logs are in %s/\n", o->log_dir);
    for (size_t i = 0; i < eng.n_plan_files; i++)
        fprintf(stderr, "kiln: dry-run plan (what would have been deployed): %s\n", eng.plan_files[i]);
    if (o->report)
        fprintf(stderr, "kiln: report: %s\n", o->report);
    kiln__engine_watch_signals(&eng, false);
    int sig = eng.last_signal;
    eng.top = NULL;
    kiln__build_destroy(b);
    kiln__engine_release(&eng);
    kiln__ydoc_free(&sinkdoc);
    kiln__subst_destroy(subst);
    kiln__secrets_release(&secrets);
    kiln__pipeline_free(&p);
    if (status == KILN_STATUS_SUCCESS)
        return 0;
    if (status == KILN_STATUS_CANCELLED && sig)
        return 128 + sig;
    return EXIT_FAILED;
}

/* ---- graph ------------------------------------------------------------- */

static void graph_print(const kiln__pipeline *p, const char *fmt)
{
    kiln__dag g;
    kiln__dag_build(&g, p->steps, p->n_steps);
    bool dot = fmt && !strcmp(fmt, "dot"), mermaid = fmt && !strcmp(fmt, "mermaid");
    if (dot)
        printf("digraph pipeline {\n  rankdir=LR;\n");
    if (mermaid)
        printf("graph LR\n");
    for (size_t i = 0; i < p->n_steps; i++) {
        const kiln__step *s = &p->steps[i];
        const char *plugin = kiln__step_plugin_name(s);
        if (dot) {
            printf("  s%zu [label=\"%s\\n(%s)\"];\n", i, s->key, plugin);
            for (size_t k = 0; k < g.n_deps[i]; k++)
                printf("  s%d -> s%zu;\n", g.deps[i][k], i);
        } else if (mermaid) {
            printf("  s%zu[\"%s (%s)\"]\n", i, s->key, plugin);
            for (size_t k = 0; k < g.n_deps[i]; k++)
                printf("  s%d --> s%zu\n", g.deps[i][k], i);
        } else {
            printf("#%zu %s (%s)", i, s->key, plugin);
            if (g.n_deps[i]) {
                printf(" <- ");
                for (size_t k = 0; k < g.n_deps[i]; k++)
                    printf("%s%s", k ? ", " : "", p->steps[g.deps[i][k]].key);
            } else {
                printf(" <- start");
            }
            putchar('\n');
        }
    }
    for (size_t i = 0; i < p->n_finally; i++) {
        const kiln__step *s = &p->finally[i];
        if (dot)
            printf("  f%zu [label=\"finally: %s\", shape=box];\n", i, s->key);
        else if (mermaid)
            printf("  f%zu[/\"finally: %s\"/]\n", i, s->key);
        else
            printf("finally #%zu %s (%s)\n", i, s->key, kiln__step_plugin_name(s));
    }
    if (dot)
        printf("}\n");
    kiln__dag_release(&g);
}

static int cmd_graph(const struct opts *o)
{
    if (!o->file)
        return usage_error("graph: which pipeline file?");
    kiln__engine eng;
    kiln__engine_init(&eng);
    kiln__registry_init(&eng.reg, o->plugin_paths, o->n_plugin_paths);
    eng.reg.api = &kiln__host_api;
    char workspace[PATH_MAX];
    if (!realpath(o->workspace ? o->workspace : ".", workspace))
        snprintf(workspace, sizeof workspace, ".");
    kiln__pipeline p;
    kiln__subst *subst = NULL;
    char build_id[40];
    new_build_id(build_id, sizeof build_id);
    kiln__secrets secrets;
    int rc = load_checked(&eng, o, &p, &subst, &secrets, build_id, workspace);
    if (!rc)
        graph_print(&p, o->format);
    kiln__engine_release(&eng);
    if (subst)
        kiln__subst_destroy(subst);
    kiln__secrets_release(&secrets);
    kiln__pipeline_free(&p);
    return rc;
}

/* ---- plugins ----------------------------------------------------------- */

/* J on standard output as UTF-8: plugin paths and descriptions are bytes. */
static void put_json(const cJSON *j)
{
    char *text = kiln__json_take(cJSON_Print(j));
    puts(text);
    free(text);
}

struct listing {
    kiln__registry *reg;
    bool json;
    cJSON *arr;
    int count;
};

static void list_one(void *data, const char *path, kiln_plugin_kind kind, const char *name)
{
    struct listing *l = data;
    kiln__plugin *pl = NULL;
    kiln__buf err = KILN__BUF_INIT;
    int rc = kiln__registry_get(l->reg, kind, name, &pl, &err);
    l->count++;
    if (l->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "kind", kiln__kind_word(kind));
        cJSON_AddStringToObject(o, "path", path);
        if (rc) {
            cJSON_AddStringToObject(o, "error", err.buf);
        } else {
            cJSON_AddStringToObject(o, "version", pl->desc->version ? pl->desc->version : "");
            cJSON_AddStringToObject(o, "summary", pl->desc->summary ? pl->desc->summary : "");
            cJSON_AddBoolToObject(o, "deploys", (pl->desc->flags & KILN_PLUGIN_DEPLOYS) != 0);
        }
        cJSON_AddItemToArray(l->arr, o);
    } else if (rc) {
        printf("%-18s %-5s %-8s %s\n", name, kiln__kind_word(kind), "-", err.buf);
    } else {
        printf("%-18s %-5s %-8s %s%s\n", name, kiln__kind_word(kind),
               pl->desc->version ? pl->desc->version : "", pl->desc->summary ? pl->desc->summary : "",
               pl->desc->flags & KILN_PLUGIN_DEPLOYS ? " [deploys]" : "");
    }
    kiln__buf_release(&err);
}

static const char sink_required_help[] =
    "A record the sink cannot keep (a full disk) fails the build; without it the loss is only "
    "reported (--sink NAME:required=true; for --log-dir: --log-dir-required).";

static int cmd_plugins(const struct opts *o)
{
    kiln__engine eng;
    kiln__engine_init(&eng);
    kiln__registry_init(&eng.reg, o->plugin_paths, o->n_plugin_paths);
    eng.reg.api = &kiln__host_api;
    int rc = 0;
    if (!o->file) {
        struct listing l = {&eng.reg, o->json, cJSON_CreateArray(), 0};
        if (!o->json)
            printf("%-18s %-5s %-8s %s\n", "NAME", "KIND", "VERSION", "SUMMARY");
        kiln__registry_scan(&eng.reg, list_one, &l);
        if (o->json) {
            put_json(l.arr);
        } else if (!l.count) {
            printf("(no plugins found; set KILN_PLUGIN_PATH or --plugin-path)\n");
        }
        cJSON_Delete(l.arr);
    } else {
        kiln__plugin *pl = NULL;
        kiln__buf err = KILN__BUF_INIT;
        rc = kiln__registry_get(&eng.reg, KILN_PLUGIN_STEP, o->file, &pl, &err);
        if (rc == KILN_ENOTFOUND) {
            kiln__buf_reset(&err);
            rc = kiln__registry_get(&eng.reg, KILN_PLUGIN_LOG_SINK, o->file, &pl, &err);
        }
        if (rc == KILN_ENOTFOUND) {
            /* Both kinds were looked for: saying "no sink plugin" alone
             * would hide that no step plugin has the name either. */
            kiln__buf_reset(&err);
            kiln__buf_addf(&err, "no plugin named '%s' (looked for kiln-step-%s.so and kiln-sink-%s.so in",
                           o->file, o->file, o->file);
            for (size_t i = 0; i < eng.reg.n_dirs; i++)
                kiln__buf_addf(&err, "%s %s", i ? "," : "", eng.reg.dirs[i]);
            kiln__buf_adds(&err, "; see 'kiln plugins')");
        }
        if (rc) {
            fprintf(stderr, "kiln: %s\n", err.buf);
            kiln__buf_release(&err);
            kiln__engine_release(&eng);
            return EXIT_USAGE;
        }
        kiln__buf_release(&err);
        const kiln_plugin *d = pl->desc;
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "name", d->name);
            cJSON_AddStringToObject(j, "kind", kiln__kind_word(d->kind));
            cJSON_AddStringToObject(j, "version", d->version ? d->version : "");
            cJSON_AddStringToObject(j, "summary", d->summary ? d->summary : "");
            cJSON_AddStringToObject(j, "path", pl->path);
            cJSON_AddBoolToObject(j, "deploys", (d->flags & KILN_PLUGIN_DEPLOYS) != 0);
            cJSON *opts = cJSON_AddArrayToObject(j, "options");
            for (const kiln_option *op = d->options; op && op->name; op++) {
                cJSON *oj = cJSON_CreateObject();
                cJSON_AddStringToObject(oj, "name", op->name);
                cJSON_AddStringToObject(oj, "type", kiln__opt_type_name(op->type));
                if (op->default_value)
                    cJSON_AddStringToObject(oj, "default", op->default_value);
                else
                    cJSON_AddNullToObject(oj, "default");
                cJSON_AddBoolToObject(oj, "required", (op->flags & KILN_OPT_REQUIRED) != 0);
                if (op->choices) {
                    cJSON *ch = cJSON_AddArrayToObject(oj, "choices");
                    for (int i = 0; op->choices[i]; i++)
                        cJSON_AddItemToArray(ch, cJSON_CreateString(op->choices[i]));
                }
                cJSON_AddStringToObject(oj, "help", op->description ? op->description : "");
                cJSON_AddItemToArray(opts, oj);
            }
            if (d->kind == KILN_PLUGIN_LOG_SINK) {
                cJSON *oj = cJSON_CreateObject();
                cJSON_AddStringToObject(oj, "name", "required");
                cJSON_AddStringToObject(oj, "type", kiln__opt_type_name(KILN_OPT_BOOL));
                cJSON_AddStringToObject(oj, "default", "false");
                cJSON_AddBoolToObject(oj, "required", false);
                cJSON_AddStringToObject(oj, "help", sink_required_help);
                cJSON_AddBoolToObject(oj, "kiln", true);
                cJSON_AddItemToArray(opts, oj);
            }
            put_json(j);
            cJSON_Delete(j);
        } else {
            printf("%s %s (%s plugin%s)\n%s\nfile: %s\n\noptions:\n", d->name, d->version ? d->version : "",
                   kiln__kind_word(d->kind), d->flags & KILN_PLUGIN_DEPLOYS ? ", deploys" : "",
                   d->summary ? d->summary : "", pl->path);
            if ((!d->options || !d->options->name) && d->kind != KILN_PLUGIN_LOG_SINK)
                printf("  (none)\n");
            for (const kiln_option *op = d->options; op && op->name; op++) {
                /* Padded columns, without the padding left at the end of a
                 * line when an option has no flags or default. */
                kiln__buf line = KILN__BUF_INIT;
                kiln__buf_addf(&line, "  %-16s %-16s %s%s%s%s", op->name, kiln__opt_type_name(op->type),
                               op->flags & KILN_OPT_REQUIRED ? "required. " : "",
                               op->default_value ? "default: " : "",
                               op->default_value ? op->default_value : "",
                               op->default_value ? "." : "");
                while (line.len && line.buf[line.len - 1] == ' ')
                    line.buf[--line.len] = '\0';
                puts(line.buf);
                kiln__buf_release(&line);
                if (op->choices) {
                    printf("  %-16s %-16s one of:", "", "");
                    for (int i = 0; op->choices[i]; i++)
                        printf(" %s", op->choices[i]);
                    putchar('\n');
                }
                if (op->description)
                    printf("  %-16s %-16s %s\n", "", "", op->description);
            }
            if (d->kind == KILN_PLUGIN_LOG_SINK)
                printf("  %-16s %-16s default: false. (kiln's, for every sink)\n  %-16s %-16s %s\n",
                       "required", kiln__opt_type_name(KILN_OPT_BOOL), "", "", sink_required_help);
        }
    }
    kiln__engine_release(&eng);
    return rc;
}

/* ---- trigger, hook install ----------------------------------------------------- */

/* Run argv (no shell), collect stdout into out. Returns the exit status, or
 * -1 when it could not run. stderr goes to ours. */
static int capture(const char *const *argv, kiln__buf *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out)
            kiln__buf_add(out, chunk, (size_t)n);
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void chomp(kiln__buf *b)
{
    while (b->len && (b->buf[b->len - 1] == '\n' || b->buf[b->len - 1] == '\r'))
        b->buf[--b->len] = '\0';
}

static bool all_zeros(const char *sha)
{
    if (!sha || !*sha)
        return false;
    for (const char *p = sha; *p; p++)
        if (*p != '0')
            return false;
    return true;
}

static int load_triggers(const char *file, kiln__triggers *ts)
{
    kiln__diag d;
    kiln__diag_init(&d);
    int rc = kiln__triggers_load(ts, file, &d);
    if (d.text.len)
        fputs(d.text.buf, stderr);
    int errors = d.errors + (rc ? 1 : 0);
    kiln__diag_release(&d);
    if (errors) {
        fprintf(stderr, "kiln: %s: %d error%s\n", file, errors, errors == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    return 0;
}

static int run_triggered(const struct opts *o, const kiln__triggers *ts, const kiln__trigger *t,
                         const char *repo, const char *ref, const char *after, const char *base)
{
    bool is_tag = !strncmp(ref, "refs/tags/", 10);
    const char *name = is_tag ? ref + 10 : !strncmp(ref, "refs/heads/", 11) ? ref + 11 : ref;
    char short_sha[8];
    snprintf(short_sha, sizeof short_sha, "%.7s", after);
    char *dir = kiln__xasprintf("%s/%s-%s", base, t->name, short_sha);
    char *src = kiln__xasprintf("%s/src", dir);
    mkdir(dir, 0777);
    printf("\n== trigger %s: %s at %s (%s %s)\n", t->name, t->filename, short_sha,
           is_tag ? "tag" : "branch", name);
    fflush(stdout);
    kiln__buf gerr = KILN__BUF_INIT;
    int rc = kiln__checkout(repo, ref, after, src, false, &gerr);
    if (rc != 0) {
        fputs(gerr.buf ? gerr.buf : "", stderr);
        fprintf(stderr, "kiln: trigger %s: cannot check out %s at %s (git exit status %d)\n", t->name,
                repo, after, rc);
        kiln__buf_release(&gerr);
        free(dir);
        free(src);
        return EXIT_FAILED;
    }
    kiln__buf_release(&gerr);
    char *file = kiln__xasprintf("%s/%s", src, t->filename);
    if (access(file, R_OK) != 0) {
        fprintf(stderr, "kiln: trigger %s: the commit has no %s (filename:)\n", t->name, t->filename);
        free(file);
        free(dir);
        free(src);
        return EXIT_FAILED;
    }
    /* --substitutions, then the trigger's, then what Cloud Build sets for a push. */
    char **substs = NULL;
    size_t n = 0;
    for (size_t i = 0; i < o->n_substs; i++) {
        substs = kiln__xrealloc(substs, (n + 1) * sizeof *substs);
        substs[n++] = kiln__xstrdup(o->substs[i]);
    }
    kiln__triggered_substs(t, repo, ref, after, &substs, &n);
    char *logs = kiln__xasprintf("%s/logs", dir);
    char *report = kiln__xasprintf("%s/report.json", dir);
    struct opts r = *o;
    r.file = file;
    r.workspace = src;
    r.log_dir = logs;
    r.report = report;
    r.plan_dir = dir;
    r.substs = substs;
    r.n_substs = n;
    r.triggered = true;
    r.only = NULL;
    rc = cmd_run(&r, false);
    printf("== trigger %s: %s; logs: %s/ report: %s\n", t->name,
           rc == 0 ? "SUCCESS" : rc == EXIT_USAGE ? "INVALID PIPELINE" : "FAILURE", logs, report);
    fflush(stdout);
    for (size_t i = 0; i < n; i++)
        free(substs[i]);
    free(substs);
    free(logs);
    free(report);
    free(file);
    free(dir);
    free(src);
    return rc;
}

static int cmd_trigger(const struct opts *o)
{
    if (!o->triggers)
        return usage_error("trigger: which triggers file? (--triggers FILE)");
    kiln__triggers ts;
    int rc = load_triggers(o->triggers, &ts);
    if (rc) {
        kiln__triggers_free(&ts);
        return rc;
    }
    if (o->list) {
        printf("%-32s %-24s %-8s %-16s %-20s %s\n", "NAME", "REPO", "EVENT", "REGEX", "FILENAME",
               "SCHEDULE");
        for (size_t i = 0; i < ts.n; i++) {
            const kiln__trigger *t = &ts.v[i];
            printf("%-32s %-24s %-8s %s%-16s %-20s %s%s\n", t->name, t->repo ? t->repo : "(any)",
                   t->branch ? "branch" : t->tag ? "tag" : "-", t->invert ? "!" : "",
                   t->branch ? t->branch : t->tag ? t->tag : "-", t->filename,
                   t->schedule ? t->schedule : "-",
                   t->schedule ? " (accepted; schedules are not run yet)" : "");
        }
        kiln__triggers_free(&ts);
        return 0;
    }
    if (!o->repo || !o->ref) {
        kiln__triggers_free(&ts);
        return usage_error("trigger: give --repo PATH and --ref REF (or --list)");
    }
    char *ref = strncmp(o->ref, "refs/", 5) ? kiln__xasprintf("refs/heads/%s", o->ref)
                                            : kiln__xstrdup(o->ref);
    if (all_zeros(o->after)) {
        printf("kiln: %s was deleted: nothing to build\n", ref);
        free(ref);
        kiln__triggers_free(&ts);
        return 0;
    }
    kiln__buf after = KILN__BUF_INIT;
    if (o->after) {
        kiln__buf_adds(&after, o->after);
    } else {
        char spec[1100];
        snprintf(spec, sizeof spec, "%s^{commit}", ref);
        const char *a[] = {"git", "-C", o->repo, "rev-parse", "--verify", "-q", spec, NULL};
        if (capture(a, &after) != 0) {
            fprintf(stderr, "kiln: trigger: %s has no ref %s\n", o->repo, ref);
            kiln__buf_release(&after);
            free(ref);
            kiln__triggers_free(&ts);
            return EXIT_USAGE;
        }
        chomp(&after);
    }
    /* Changed files: before..after, or the pushed commit's own changes. */
    kiln__buf files = KILN__BUF_INIT;
    int frc;
    if (o->before && !all_zeros(o->before)) {
        const char *a[] = {"git", "-C", o->repo, "diff", "--name-only", "--no-renames", o->before,
                           after.buf, NULL};
        frc = capture(a, &files);
    } else {
        const char *a[] = {"git", "-C", o->repo, "diff-tree", "--no-commit-id", "--name-only", "-r",
                           "--root", after.buf, NULL};
        frc = capture(a, &files);
    }
    const char **fv = NULL;
    size_t nf = 0;
    char *save = NULL;
    for (char *line = strtok_r(files.buf, "\n", &save); frc == 0 && line;
         line = strtok_r(NULL, "\n", &save)) {
        fv = kiln__xrealloc(fv, (nf + 1) * sizeof *fv);
        fv[nf++] = line;
    }
    kiln__push push = {o->repo, ref, fv, nf, frc == 0};
    printf("kiln: push to %s %s (%.7s), %zu changed file%s\n", o->repo, ref, after.buf, nf,
           nf == 1 ? "" : "s");
    bool *fired = kiln__xcalloc(ts.n ? ts.n : 1, sizeof *fired);
    size_t n_fired = 0;
    for (size_t i = 0; i < ts.n; i++) {
        char why[512];
        fired[i] = kiln__trigger_match(&ts, &ts.v[i], &push, why, sizeof why);
        n_fired += fired[i];
        printf("  %-9s %s: %s\n", fired[i] ? "fired" : "not fired", ts.v[i].name, why);
    }
    int result = 0;
    if (!n_fired) {
        printf("kiln: no trigger fired; nothing to build\n");
    } else {
        char base[PATH_MAX];
        if (o->out) {
            mkdir(o->out, 0777);
            if (!realpath(o->out, base))
                snprintf(base, sizeof base, "%s", o->out);
        } else {
            const char *tmp = getenv("TMPDIR");
            snprintf(base, sizeof base, "%s/kiln-trigger-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(base)) {
                fprintf(stderr, "kiln: cannot create a directory for the builds: %s\n", strerror(errno));
                result = EXIT_FAILED;
                n_fired = 0;
            }
        }
        char repo_abs[PATH_MAX];
        if (!realpath(o->repo, repo_abs))
            snprintf(repo_abs, sizeof repo_abs, "%s", o->repo);
        for (size_t i = 0; i < ts.n && n_fired; i++) {
            if (!fired[i])
                continue;
            int rc2 = run_triggered(o, &ts, &ts.v[i], repo_abs, ref, after.buf, base);
            if (rc2 && !result)
                result = EXIT_FAILED;
        }
    }
    free(fired);
    free(fv);
    kiln__buf_release(&files);
    kiln__buf_release(&after);
    free(ref);
    kiln__triggers_free(&ts);
    return result;
}

/* 'it'\''s' */
static void shell_quote(kiln__buf *b, const char *s)
{
    kiln__buf_addch(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            kiln__buf_adds(b, "'\\''");
        else
            kiln__buf_addch(b, *s);
    }
    kiln__buf_addch(b, '\'');
}

#define HOOK_MARK "# installed by kiln hook install"

static int cmd_hook_install(const struct opts *o)
{
    if (!o->file || !o->triggers)
        return usage_error("hook install: expected --triggers FILE REPO.git");
    kiln__buf gd = KILN__BUF_INIT;
    const char *a[] = {"git", "-C", o->file, "rev-parse", "--absolute-git-dir", NULL};
    if (capture(a, &gd) != 0) {
        fprintf(stderr, "kiln: hook install: '%s' is not a git repository\n", o->file);
        kiln__buf_release(&gd);
        return EXIT_USAGE;
    }
    chomp(&gd);
    kiln__triggers ts;
    int rc = load_triggers(o->triggers, &ts);
    kiln__triggers_free(&ts);
    char trig[PATH_MAX], exe[PATH_MAX];
    if (rc || !realpath(o->triggers, trig)) {
        kiln__buf_release(&gd);
        return rc ? rc : EXIT_USAGE;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "kiln: hook install: cannot find kiln's own path\n");
        kiln__buf_release(&gd);
        return EXIT_FAILED;
    }
    exe[n] = '\0';
    char *hook = kiln__xasprintf("%s/hooks/post-receive", gd.buf);
    FILE *f = fopen(hook, "r");
    if (f) {
        char head[256] = "";
        size_t got = fread(head, 1, sizeof head - 1, f);
        head[got] = '\0';
        fclose(f);
        if (!strstr(head, HOOK_MARK)) {
            fprintf(stderr, "kiln: hook install: %s exists and was not installed by kiln; move it "
                    "away first\n", hook);
            free(hook);
            kiln__buf_release(&gd);
            return EXIT_FAILED;
        }
    }
    kiln__buf s = KILN__BUF_INIT;
    kiln__buf_adds(&s, "#!/bin/sh\n" HOOK_MARK "\n"
                       "# Each pushed ref runs `kiln trigger`; the builds' output shows in the push.\n"
                       "# git sets these for the hook; the builds' own git commands must not see them.\n"
                       "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY \\\n"
                       "      GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_PUSH_OPTION_COUNT GIT_PREFIX\n");
    const char *path = getenv("PATH");
    kiln__buf_adds(&s, "PATH=");
    shell_quote(&s, path ? path : "/usr/bin:/bin");
    kiln__buf_adds(&s, "; export PATH\n");
    kiln__buf pp = KILN__BUF_INIT;
    for (size_t i = 0; i < o->n_plugin_paths; i++) {
        char rp[PATH_MAX];
        kiln__buf_addf(&pp, "%s%s", pp.len ? ":" : "",
                       realpath(o->plugin_paths[i], rp) ? rp : o->plugin_paths[i]);
    }
    const char *env_pp = getenv("KILN_PLUGIN_PATH");
    if (env_pp && *env_pp)
        kiln__buf_addf(&pp, "%s%s", pp.len ? ":" : "", env_pp);
    if (pp.len) {
        kiln__buf_adds(&s, "KILN_PLUGIN_PATH=");
        shell_quote(&s, pp.buf);
        kiln__buf_adds(&s, "; export KILN_PLUGIN_PATH\n");
    }
    kiln__buf_release(&pp);
    kiln__buf_adds(&s, "repo=");
    shell_quote(&s, gd.buf);
    kiln__buf_adds(&s, "\nstatus=0\nwhile read -r old new ref; do\n  ");
    shell_quote(&s, exe);
    kiln__buf_adds(&s, " trigger --triggers ");
    shell_quote(&s, trig);
    kiln__buf_adds(&s, " --repo \"$repo\" --ref \"$ref\" --before \"$old\" --after \"$new\"");
    if (o->dry_run)
        kiln__buf_adds(&s, " --dry-run");
    if (o->out) {
        char rp[PATH_MAX];
        mkdir(o->out, 0777);
        kiln__buf_adds(&s, " --out ");
        shell_quote(&s, realpath(o->out, rp) ? rp : o->out);
    }
    if (o->log_format) {
        kiln__buf_adds(&s, " --log-format ");
        shell_quote(&s, o->log_format);
    }
    kiln__buf_adds(&s, " --color never || status=1\ndone\nexit $status\n");
    f = fopen(hook, "w");
    bool ok = f && fwrite(s.buf, 1, s.len, f) == s.len;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok)
        ok = chmod(hook, 0755) == 0;
    if (!ok)
        fprintf(stderr, "kiln: hook install: cannot write %s: %s\n", hook, strerror(errno));
    else
        printf("kiln: installed %s: every push runs the builds whose trigger in %s fires%s\n", hook,
               trig, o->dry_run ? " (as dry runs)" : "");
    kiln__buf_release(&s);
    kiln__buf_release(&gd);
    free(hook);
    return ok ? 0 : EXIT_FAILED;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("kiln %s (plugin ABI %d.%d)\n", KILN_VERSION_STRING, KILN_ABI_MAJOR, KILN_ABI_MINOR);
        return 0;
    }
    /* A child that died must not take kiln with it through SIGPIPE on a log pipe. */
    signal(SIGPIPE, SIG_IGN);
    /* kiln serve and its clients (serve.h) have options of their own. */
    if (!strcmp(argv[1], "serve"))
        return kiln__serve_main(argc, argv);
    if (!strcmp(argv[1], "builds"))
        return kiln__builds_main(argc, argv);
    if (!strcmp(argv[1], "trigger"))
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9))
                return kiln__trigger_remote_main(argc, argv);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    struct opts o;
    memset(&o, 0, sizeof o);
    if (!strcmp(argv[1], "hook")) {
        /* kiln hook install ...: parsed as the command "install" */
        if (argc < 3 || strcmp(argv[2], "install"))
            return usage_error("hook: expected 'kiln hook install --triggers FILE REPO.git'");
        argc--;
        argv++;
    }
    int rc = parse_args(argc, argv, &o);
    if (!rc) {
        if (!strcmp(o.cmd, "run"))
            rc = cmd_run(&o, false);
        else if (!strcmp(o.cmd, "validate"))
            rc = cmd_run(&o, true);
        else if (!strcmp(o.cmd, "graph"))
            rc = cmd_graph(&o);
        else if (!strcmp(o.cmd, "plugins"))
            rc = cmd_plugins(&o);
        else if (!strcmp(o.cmd, "trigger"))
            rc = cmd_trigger(&o);
        else if (!strcmp(o.cmd, "install"))
            rc = cmd_hook_install(&o);
        else
            rc = usage_error("unknown command '%s'", o.cmd);
    }
    for (size_t i = 0; i < o.n_substs; i++)
        free(o.substs[i]);
    free(o.substs);
    free(o.plugin_paths);
    free(o.sinks);
    fflush(stdout);
    return rc;
}
