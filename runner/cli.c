/* SPDX-License-Identifier: MIT */
/* Parsing kiln's command line (cli.h). */
#include <getopt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"

const char kiln__usage_text[] =
    "usage: kiln <command> [options]\n"
    "\n"
    "commands:\n"
    "  run PIPELINE.yaml       run the pipeline's steps as a DAG\n"
    "  validate PIPELINE.yaml  check everything, run nothing\n"
    "  graph PIPELINE.yaml     print the step graph (--format text|dot|mermaid)\n"
    "  plugins [NAME]          list plugins, or show one plugin's options (--json)\n"
    "  version                 print kiln's version and plugin ABI\n"
    "  logs flush DIR [--sink-grace D] [--sink NAME:token=T|headers=A=b;...]\n"
    "                          send the batches a remote log sink left in its spool\n"
    "                          (DIR: --log-dir's .spool)\n"
    "  trigger --triggers FILE --repo PATH --ref REF [--before SHA --after SHA]\n"
    "                          evaluate a push, run every build whose trigger fires\n"
    "  trigger --triggers FILE --list   list the triggers (with schedules)\n"
    "  hook install --triggers FILE REPO.git\n"
    "                          a post-receive hook: every push runs `kiln trigger`\n"
    "  hook install --server URL [--secret-file FILE] REPO.git\n"
    "                          a post-receive hook: every push is posted to kiln serve\n"
    "  serve --triggers FILE [--listen HOST:PORT] [--data DIR] [--max-builds N]\n"
    "        [--token-file FILE] [--webhook-secret-file FILE]\n"
    "                          the build server: HTTP API, webhooks, schedules, queue,\n"
    "                          history (kiln serve --help)\n"
    "  builds list|show ID|cancel ID|retry ID|logs ID [--step S] [--server URL]\n"
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
    "  --sink-grace DURATION         how long remote log sinks may still deliver after\n"
    "                                the build (default 30s); the rest stays in the\n"
    "                                spool (--log-dir's .spool, else ~/.local/state/kiln/spool)\n"
    "                                for `kiln logs flush`\n"
    "  --dry-run                     deploy steps only record what they would do\n"
    "                                (mock-deploy; a plan file per build)\n"
    "  --plan-dir DIR                where dry-run plans go (default: --log-dir, else .)\n"
    "  --sink NAME[:K=V,...]         send logs to another sink plugin too (repeatable);\n"
    "                                required=true: a record it loses fails the build\n"
    "  --executor NAME[:K=V,...]     how steps run: local (default, on this machine) or an\n"
    "                                executor plugin, e.g. container (each step in its\n"
    "                                image); also KILN_EXECUTOR; see 'kiln plugins NAME'\n"
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
    "  --dry-run         as for run; hook install: the hook runs dry runs\n"
    "  --executor SPEC   as for run; hook install: written into the hook (without it,\n"
    "                    the pushing environment's KILN_EXECUTOR applies)\n";
int kiln__usage_error(const char *fmt, ...)
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
bool kiln__one_of(const char *word, const char *choices)
{
    size_t n = strlen(word);
    for (const char *p = choices; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
        if (strncmp(p, word, n) == 0 && (p[n] == '|' || p[n] == '\0'))
            return true;
    return false;
}

/* --substitutions A=1,B=2: gcloud's form; a value may not contain ','. */
static void add_substs(kiln__cli_opts *o, const char *arg)
{
    char *copy = kiln__xstrdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        o->substs = kiln__xrealloc(o->substs, (o->n_substs + 1) * sizeof *o->substs);
        o->substs[o->n_substs++] = kiln__xstrdup(tok);
    }
    free(copy);
}

int kiln__cli_parse(int argc, char **argv, kiln__cli_opts *o)
{
    enum {
        O_SUBST = 256, O_MAXPAR, O_REPORT, O_LOGDIR, O_LOGFMT, O_QUIET, O_COLOR, O_ONLY, O_WS,
        O_PROJECT, O_GRACE, O_SINK_GRACE, O_DRY, O_PPATH, O_FORMAT, O_JSON, O_HELP, O_SECFILE, O_SECCMD, O_BUILDERS, O_SINK,
        O_PLANDIR, O_TRIGGERS, O_REPO, O_REF, O_BEFORE, O_AFTER, O_OUT, O_LIST, O_STRICT,
        O_LOGDIR_REQ, O_EXECUTOR
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
        {"sink-grace", required_argument, NULL, O_SINK_GRACE},
        {"dry-run", no_argument, NULL, O_DRY},
        {"plugin-path", required_argument, NULL, O_PPATH},
        {"format", required_argument, NULL, O_FORMAT},
        {"json", no_argument, NULL, O_JSON},
        {"secrets-file", required_argument, NULL, O_SECFILE},
        {"secrets-command", required_argument, NULL, O_SECCMD},
        {"builders", required_argument, NULL, O_BUILDERS},
        {"cloudbuild-strict", no_argument, NULL, O_STRICT},
        {"sink", required_argument, NULL, O_SINK},
        {"executor", required_argument, NULL, O_EXECUTOR},
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
                return kiln__usage_error("--max-parallel: expected a number from 1 to 4096, got '%s'", optarg);
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
            if (!kiln__one_of(optarg, "kiln|cloudbuild"))
                return kiln__usage_error("--log-format: expected kiln or cloudbuild, got '%s'", optarg);
            o->log_format = optarg;
            break;
        case 'q':
        case O_QUIET:
            o->quiet = true;
            break;
        case O_COLOR:
            if (!kiln__one_of(optarg, "auto|always|never"))
                return kiln__usage_error("--color: expected auto, always or never, got '%s'", optarg);
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
                return kiln__usage_error("--kill-grace: expected a duration such as 10s or 500ms, got '%s'",
                                   optarg);
            break;
        case O_SINK_GRACE:
            if (kiln__parse_duration(optarg, false, &o->sink_grace_ms) != 0)
                return kiln__usage_error("--sink-grace: expected a duration such as 30s or 0s, got '%s'",
                                         optarg);
            o->sink_grace_set = true;
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
            if (!kiln__one_of(optarg, "text|dot|mermaid"))
                return kiln__usage_error("--format: expected text, dot or mermaid, got '%s'", optarg);
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
        case O_EXECUTOR:
            o->executor = optarg;
            break;
        case O_HELP:
            fputs(kiln__usage_text, stdout);
            exit(0);
        default:
            return kiln__usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        o->file = argv[optind++];
    if (optind < argc)
        return kiln__usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->executor && getenv("KILN_EXECUTOR") && *getenv("KILN_EXECUTOR"))
        o->executor = getenv("KILN_EXECUTOR");
    if (o->log_dir_required && !o->log_dir)
        return kiln__usage_error("--log-dir-required: which directory? (give --log-dir DIR too)");
    return 0;
}

void kiln__cli_release(kiln__cli_opts *o)
{
    for (size_t i = 0; i < o->n_substs; i++)
        free(o->substs[i]);
    free(o->substs);
    free(o->plugin_paths);
    free(o->sinks);
}
