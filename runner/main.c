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
#include <unistd.h>

#include <cJSON.h>

#include "builders.h"
#include "config_map.h"
#include "dag.h"
#include "engine.h"
#include "report.h"
#include "resolve.h"

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
    "\n"
    "options of run and validate:\n"
    "  --substitutions K=V[,K=V...]  substitution values (repeatable)\n"
    "  --max-parallel N              steps running at once (default: CPUs)\n"
    "  --report FILE                 write a JSON report of the build\n"
    "  --log-dir DIR                 one log file per step under DIR\n"
    "  --log-format kiln|cloudbuild  console line format\n"
    "  --quiet                       no step output on the console\n"
    "  --color auto|always|never     colour on the console\n"
    "  --only ID                     run step ID and the steps it waits for\n"
    "  --workspace DIR               the steps' working directory (default: .)\n"
    "  --project ID                  PROJECT_ID (default: $GOOGLE_CLOUD_PROJECT or 'local')\n"
    "  --kill-grace DURATION         SIGTERM-to-SIGKILL grace period (default 10s)\n"
    "  --dry-run                     deploy steps only record what they would do\n"
    "  --sink NAME[:K=V,...]         send logs to another sink plugin too (repeatable)\n"
    "  --builders FILE               more builder-image-to-plugin rules (also KILN_BUILDERS)\n"
    "  --secrets-file FILE           secret values, dotenv lines NAME=value (never commit it)\n"
    "  --secrets-command CMD         run CMD VERSION_NAME to print a secret's value\n"
    "  --plugin-path DIR             where to look for plugins (repeatable; also\n"
    "                                KILN_PLUGIN_PATH)\n";

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
    const char *secrets_file, *secrets_command;
    const char *builders;
    const char **sinks; /* --sink NAME[:key=value,...] */
    size_t n_sinks;
    bool quiet, dry_run, json;
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
        O_PROJECT, O_GRACE, O_DRY, O_PPATH, O_FORMAT, O_JSON, O_HELP, O_SECFILE, O_SECCMD, O_BUILDERS, O_SINK
    };
    static const struct option longopts[] = {
        {"substitutions", required_argument, NULL, O_SUBST},
        {"max-parallel", required_argument, NULL, O_MAXPAR},
        {"report", required_argument, NULL, O_REPORT},
        {"log-dir", required_argument, NULL, O_LOGDIR},
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
        {"sink", required_argument, NULL, O_SINK},
        {"help", no_argument, NULL, O_HELP},
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
    return 0;
}

static void new_build_id(char *out, size_t cap)
{
    unsigned char r[16] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, r, sizeof r) != (ssize_t)sizeof r)
            memset(r, 0, sizeof r);
        close(fd);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

/* Load, resolve and check. Returns 0 (valid), or EXIT_USAGE after printing
 * every problem. Notes and warnings are printed either way. */
static int load_checked(kiln__engine *eng, const struct opts *o, kiln__pipeline *p,
                        kiln__subst **subst, kiln__secrets *secrets, char *build_id,
                        const char *workspace)
{
    memset(secrets, 0, sizeof *secrets);
    kiln__diag d;
    kiln__diag_init(&d);
    static kiln__builders builders;
    kiln__builders_release(&builders);
    const char *bfile = o->builders ? o->builders : getenv("KILN_BUILDERS");
    kiln__builders_load(&builders, bfile && *bfile ? bfile : NULL, &d);
    kiln__resolve_set_builders(&builders);
    int rc = kiln__pipeline_load(p, o->file, &d);
    if (rc == 0) {
        const char *project = o->project ? o->project : getenv("GOOGLE_CLOUD_PROJECT");
        kiln__resolve_opts ro = {(const char *const *)o->substs, o->n_substs, workspace, build_id,
                                 project ? project : "local", false};
        kiln__resolve_subst(p, &ro, &d, subst);
        kiln__secret_opts so = {o->secrets_file, o->secrets_command};
        kiln__secrets_resolve(p, *subst, &so, &d, eng->masker, secrets);
        if (!d.errors || p->n_steps)
            kiln__resolve_check(p, *subst, &eng->reg, &d);
    }
    if (d.text.len)
        fputs(d.text.buf, stderr);
    int errors = d.errors;
    kiln__diag_release(&d);
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
 * line (values may not contain ','). */
static int add_cli_sink(kiln__engine *eng, kiln__ydoc *doc, const char *spec, kiln__buf *err)
{
    char *copy = kiln__ydoc_alloc(doc, strlen(spec) + 1);
    memcpy(copy, spec, strlen(spec) + 1);
    char *colon = strchr(copy, ':');
    const char *kv[64];
    size_t n = 0;
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
            kv[n++] = tok;
            kv[n++] = eq + 1;
        }
    }
    return kiln__sink_add(eng, copy, map_node(doc, kv, n / 2), "--sink", err);
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
        if (!rc)
            printf("%s: valid (%zu step%s%s)\n", o->file, p.n_steps, p.n_steps == 1 ? "" : "s",
                   p.n_finally ? ", with finally steps" : "");
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
    rc = kiln__sink_add(&eng, "console", map_node(&sinkdoc, console_kv, 3), "--log-format", &err);
    if (!rc && o->log_dir) {
        const char *file_kv[] = {"dir", o->log_dir};
        rc = kiln__sink_add(&eng, "file", map_node(&sinkdoc, file_kv, 1), "--log-dir", &err);
    }
    for (size_t i = 0; !rc && i < o->n_sinks; i++)
        rc = add_cli_sink(&eng, &sinkdoc, o->sinks[i], &err);
    kiln__build *b = NULL;
    if (!rc)
        rc = kiln__build_create(&eng, &p, subst, workspace, o->only, &err, &b);
    if (rc) {
        fprintf(stderr, "kiln: %s\n", err.buf);
        kiln__buf_release(&err);
        kiln__engine_release(&eng);
        kiln__ydoc_free(&sinkdoc);
        kiln__subst_destroy(subst);
        kiln__secrets_release(&secrets);
        kiln__pipeline_free(&p);
        return rc == KILN_ENOTFOUND ? EXIT_USAGE : EXIT_FAILED;
    }
    kiln__buf_release(&err);
    eng.top = b;
    b->secrets = &secrets;
    b->on_end = on_build_end;
    kiln__engine_watch_signals(&eng, true);
    kiln__build_start(b);
    uv_run(eng.loop, UV_RUN_DEFAULT);

    kiln_status status = b->status;
    if (o->report) {
        int wrc = kiln__report_write(b, o->report);
        if (wrc)
            fprintf(stderr, "kiln: cannot write the report '%s': %s\n", o->report, kiln__strerror(wrc));
    }
    if (o->log_dir)
        fprintf(stderr, "kiln: step logs are in %s/\n", o->log_dir);
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
            char *s = cJSON_Print(l.arr);
            puts(s);
            cJSON_free(s);
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
            char *s = cJSON_Print(j);
            puts(s);
            cJSON_free(s);
            cJSON_Delete(j);
        } else {
            printf("%s %s (%s plugin%s)\n%s\nfile: %s\n\noptions:\n", d->name, d->version ? d->version : "",
                   kiln__kind_word(d->kind), d->flags & KILN_PLUGIN_DEPLOYS ? ", deploys" : "",
                   d->summary ? d->summary : "", pl->path);
            if (!d->options || !d->options->name)
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
        }
    }
    kiln__engine_release(&eng);
    return rc;
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
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    struct opts o;
    memset(&o, 0, sizeof o);
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
