/* SPDX-License-Identifier: MIT */
/*
 * kedro-train: run a Kedro pipeline (`kedro run`) as a first-class step.
 *
 *  start()      resolve the project and the environment, build the argv, then
 *               check the project on a worker thread (kedro_check.c): every
 *               problem is one error line and the step ends with KILN_ECONFIG;
 *               a missing kedro executable is one line saying how to install it.
 *  running      kedro runs in the project directory through kiln_api->spawn
 *               with KEDRO_LOGGING_CONFIG pointing at a plain logging
 *               configuration written by the plugin; on_line feeds
 *               kedro_parse.c, which turns node lines into step_progress().
 *  exit         0: the declared outputs are checked (worker thread) and
 *               become step outputs; 1: a node failed (failing node, error,
 *               --from-nodes hint); 2: usage error; signals: as reported.
 *  cancel       the host stops the process group (TERM, grace, KILL); the
 *               plugin also sends TERM and escalates to KILL itself after a
 *               grace period, then ends the step with KILN_ECANCELED.
 */
#include <kiln/kiln.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kedro_check.h"
#include "kedro_parse.h"
#include "kedro_util.h"

KILN_API_DEFINE;

#define KT_KILL_GRACE_MS 10000

/* ---- options ----------------------------------------------------------- */

typedef struct kt_config {
    const char *project;
    const char *command;
    const char *env;
    const char *pipeline;
    const kiln_strv *pipelines;
    const kiln_kvv *params;
    const char *runner;
    const kiln_kvv *runner_params;
    const kiln_strv *tags;
    const kiln_strv *nodes;
    const kiln_strv *from_nodes;
    const kiln_strv *to_nodes;
    const kiln_strv *from_inputs;
    const kiln_strv *to_outputs;
    const kiln_strv *namespaces;
    const char *conf_source;
    bool only_missing_outputs;
    const kiln_kvv *env_vars;
    const kiln_kvv *outputs;
    const kiln_strv *args;
    bool check_project;
} kt_config;

#define OPT(type, name, def, flags, field, desc)                                                   \
    {(type), (name), (def), (flags), offsetof(kt_config, field), 1, 0, NULL, (desc)}

static const kiln_option kt_options[] = {
    OPT(KILN_OPT_STRING, "project", ".", 0, project,
        "Kedro project directory (holds pyproject.toml), relative to the step's directory."),
    OPT(KILN_OPT_STRING, "command", "kedro", 0, command,
        "How to call kedro: \"kedro\", \"python -m kedro\", \"uv run kedro\" or a virtualenv's bin/kedro."),
    OPT(KILN_OPT_STRING, "env", NULL, 0, env,
        "Kedro configuration environment (--env); default: $BRANCH_NAME, else KEDRO_ENV, else local."),
    OPT(KILN_OPT_STRING, "pipeline", NULL, 0, pipeline,
        "One registered pipeline to run (--pipeline, understood by every Kedro version)."),
    OPT(KILN_OPT_STRING_LIST, "pipelines", NULL, 0, pipelines,
        "Registered pipelines to run (--pipelines, Kedro >= 1.2); default: __default__."),
    OPT(KILN_OPT_STRING_MAP, "params", NULL, 0, params,
        "Runtime parameters (--params key=value); dotted keys set nested parameters."),
    OPT(KILN_OPT_STRING, "runner", NULL, 0, runner,
        "Kedro runner: SequentialRunner (Kedro's default), ParallelRunner, ThreadRunner or a class path."),
    OPT(KILN_OPT_STRING_MAP, "runner-params", NULL, 0, runner_params,
        "Keyword arguments for the runner (--runner-params), e.g. max_workers: 4."),
    OPT(KILN_OPT_STRING_LIST, "tags", NULL, 0, tags, "Run only nodes having any of these tags (--tags)."),
    OPT(KILN_OPT_STRING_LIST, "nodes", NULL, 0, nodes, "Run only these nodes (--nodes)."),
    OPT(KILN_OPT_STRING_LIST, "from-nodes", NULL, 0, from_nodes,
        "Run from these nodes on (--from-nodes), e.g. to resume a failed run."),
    OPT(KILN_OPT_STRING_LIST, "to-nodes", NULL, 0, to_nodes, "Run up to these nodes (--to-nodes)."),
    OPT(KILN_OPT_STRING_LIST, "from-inputs", NULL, 0, from_inputs,
        "Run from the nodes that use these datasets (--from-inputs)."),
    OPT(KILN_OPT_STRING_LIST, "to-outputs", NULL, 0, to_outputs,
        "Run up to the nodes that produce these datasets (--to-outputs)."),
    OPT(KILN_OPT_STRING_LIST, "namespaces", NULL, 0, namespaces, "Run only these node namespaces (--namespaces)."),
    OPT(KILN_OPT_STRING, "conf-source", NULL, 0, conf_source,
        "Configuration directory (--conf-source), relative to the project; default conf."),
    OPT(KILN_OPT_BOOL, "only-missing-outputs", "false", 0, only_missing_outputs,
        "Run only the nodes whose outputs are missing (--only-missing-outputs)."),
    OPT(KILN_OPT_STRING_MAP, "env-vars", NULL, 0, env_vars,
        "Extra environment variables for kedro, e.g. MLFLOW_TRACKING_URI."),
    OPT(KILN_OPT_STRING_MAP, "outputs", NULL, 0, outputs,
        "Files the run must produce, KEY: path relative to the project; each becomes step output KEY."),
    OPT(KILN_OPT_STRING_LIST, "args", NULL, 0, args, "Further arguments appended to kedro run as they are."),
    OPT(KILN_OPT_BOOL, "check-project", "true", 0, check_project,
        "Check the project layout as Kedro does before running."),
    KILN_OPTIONS_END,
};

/* Step outputs the plugin sets itself. */
static const char *const kt_builtin_outputs[] = {"env", "nodes_done", "nodes_total", "failed_node",
                                                 "resume_from", NULL};

static bool valid_output_key(const char *k)
{
    if (!k[0])
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

static int check_kv_items(const kiln_kvv *kv, const char *opt, kiln_diag *diag)
{
    int bad = 0;
    for (size_t i = 0; kv && i < kv->n; i++) {
        const char *k = kv->keys[i], *v = kv->values[i] ? kv->values[i] : "";
        if (!k[0] || strpbrk(k, "=, \t")) {
            kiln_api->diag(diag, opt, "key \"%s\" cannot be passed to kedro: keys must be non-empty, without '=', ',' or blanks", k);
            bad++;
        }
        if (strchr(v, ',')) {
            kiln_api->diag(diag, opt,
                           "value of \"%s\" contains a comma, which kedro run cannot carry (it splits items on commas)", k);
            bad++;
        }
    }
    return bad;
}

static int check_list_items(const kiln_strv *sv, const char *opt, kiln_diag *diag)
{
    int bad = 0;
    for (size_t i = 0; sv && i < sv->n; i++) {
        if (!sv->v[i][0] || strchr(sv->v[i], ',')) {
            kiln_api->diag(diag, opt, "item \"%s\" cannot be passed to kedro: items must be non-empty and without ','",
                           sv->v[i]);
            bad++;
        }
    }
    return bad;
}

static int kt_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const kt_config *c = config;
    int bad = 0;
    if (c->pipeline && c->pipelines && c->pipelines->n) {
        kiln_api->diag(diag, "pipelines", "cannot be combined with pipeline: kedro run refuses --pipeline with --pipelines");
        bad++;
    }
    if (c->command) {
        kt_strv words = {0};
        if (kt_split_command(c->command, &words) != 0) {
            kiln_api->diag(diag, "command", "\"%s\" is not a command (empty, or a quote is not closed)", c->command);
            bad++;
        }
        kt_strv_free(&words);
    }
    if (c->project && !c->project[0]) {
        kiln_api->diag(diag, "project", "is empty; use \".\" for the step's directory");
        bad++;
    }
    if (c->runner && !c->runner[0]) {
        kiln_api->diag(diag, "runner", "is empty");
        bad++;
    }
    bad += check_kv_items(c->params, "params", diag);
    bad += check_kv_items(c->runner_params, "runner-params", diag);
    bad += check_list_items(c->pipelines, "pipelines", diag);
    bad += check_list_items(c->tags, "tags", diag);
    bad += check_list_items(c->from_inputs, "from-inputs", diag);
    bad += check_list_items(c->to_outputs, "to-outputs", diag);
    for (size_t i = 0; c->outputs && i < c->outputs->n; i++) {
        const char *k = c->outputs->keys[i], *v = c->outputs->values[i];
        if (!valid_output_key(k)) {
            kiln_api->diag(diag, "outputs", "output name \"%s\" must use only letters, digits, '_' and '-'", k);
            bad++;
        }
        for (const char *const *b = kt_builtin_outputs; *b; b++)
            if (strcmp(*b, k) == 0) {
                kiln_api->diag(diag, "outputs", "output name \"%s\" is set by kedro-train itself; choose another", k);
                bad++;
            }
        if (!v || !v[0]) {
            kiln_api->diag(diag, "outputs", "output \"%s\" has no path", k);
            bad++;
        }
    }
    for (size_t i = 0; c->env_vars && i < c->env_vars->n; i++) {
        const char *k = c->env_vars->keys[i];
        if (!k[0] || strchr(k, '=')) {
            kiln_api->diag(diag, "env-vars", "\"%s\" is not an environment variable name", k);
            bad++;
        }
    }
    return bad ? KILN_ECONFIG : 0;
}

/* ---- step state -------------------------------------------------------- */

typedef enum kt_phase { KT_CHECKING, KT_RUNNING, KT_OUTPUTS } kt_phase;

typedef struct kt_step {
    kiln_step *step;
    const kt_config *cfg;
    kt_phase phase;
    bool canceled;
    bool in_image;      /* ABI 1.6: kedro runs in the step's image, not here */

    char *project_dir;   /* absolute */
    char *env;           /* resolved environment, or NULL for none */
    char *env_origin;    /* for messages */
    bool pass_env;       /* --env is on the command line */
    char *path_env;      /* PATH used to find the executable */
    char *tmpdir;        /* parent for the logging configuration */
    kt_strv cmd;         /* the command words */
    kt_strv run_args;    /* "run" and its options */
    kt_strv extra_env;   /* K=V for spawn */

    /* Worker results. */
    kt_check_out check;
    char *exe;           /* resolved argv[0], NULL when not found */
    char *log_dir;       /* mkdtemp'd */
    char *log_conf;      /* log_dir/logging.yml */
    char *log_error;     /* why it could not be written */

    /* Run. */
    kiln_proc *proc;
    kiln_timer *kill_timer;
    kt_progress prog;
    bool working;        /* a queue_work() has not had its after() yet */
    bool abandoned;      /* the host ended the step: after() only frees */
    time_t started;

    /* Output check. */
    kt_strv out_abs;     /* absolute path per declared output, same order */
    kt_strv out_missing; /* one line each */
    kt_strv out_stale;   /* one line each */
} kt_step;

static void kt_free(kt_step *s)
{
    if (s->log_conf)
        unlink(s->log_conf);
    if (s->log_dir)
        rmdir(s->log_dir);
    free(s->project_dir);
    free(s->env);
    free(s->env_origin);
    free(s->path_env);
    free(s->tmpdir);
    kt_strv_free(&s->cmd);
    kt_strv_free(&s->run_args);
    kt_strv_free(&s->extra_env);
    kt_check_out_free(&s->check);
    free(s->exe);
    free(s->log_dir);
    free(s->log_conf);
    free(s->log_error);
    kt_progress_free(&s->prog);
    kt_strv_free(&s->out_abs);
    kt_strv_free(&s->out_missing);
    kt_strv_free(&s->out_stale);
    free(s);
}

/* Free everything, then end the step: rule 4 of the async contract. */
static void kt_finish(kt_step *s, int status, const char *reason)
{
    kiln_step *step = s->step;
    char *r = reason ? kt_strdup(reason) : NULL;
    kiln_api->step_set_data(step, NULL);
    kt_free(s);
    kiln_api->step_done(step, status, r);
    free(r);
}

static char *join_list(const kiln_strv *sv)
{
    size_t n = 1;
    for (size_t i = 0; i < sv->n; i++)
        n += strlen(sv->v[i]) + 1;
    char *s = kt_xmalloc(n);
    s[0] = '\0';
    for (size_t i = 0; i < sv->n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, sv->v[i]);
    }
    return s;
}

static char *join_kv(const kiln_kvv *kv)
{
    size_t n = 1;
    for (size_t i = 0; i < kv->n; i++)
        n += strlen(kv->keys[i]) + strlen(kv->values[i] ? kv->values[i] : "") + 2;
    char *s = kt_xmalloc(n);
    s[0] = '\0';
    for (size_t i = 0; i < kv->n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, kv->keys[i]);
        strcat(s, "=");
        strcat(s, kv->values[i] ? kv->values[i] : "");
    }
    return s;
}

static void add_list_opt(kt_strv *a, const char *flag, const kiln_strv *sv)
{
    if (sv && sv->n) {
        char *j = join_list(sv);
        kt_strv_pushf(a, "%s=%s", flag, j);
        free(j);
    }
}

static void add_kv_opt(kt_strv *a, const char *flag, const kiln_kvv *kv)
{
    if (kv && kv->n) {
        char *j = join_kv(kv);
        kt_strv_pushf(a, "%s=%s", flag, j);
        free(j);
    }
}

static const char *kv_get(const kiln_kvv *kv, const char *key)
{
    for (size_t i = 0; kv && i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0)
            return kv->values[i] ? kv->values[i] : "";
    return NULL;
}

static void build_run_args(kt_step *s)
{
    const kt_config *c = s->cfg;
    kt_strv *a = &s->run_args;
    kt_strv_push(a, kt_strdup("run"));
    if (c->pipeline && c->pipeline[0])
        kt_strv_pushf(a, "--pipeline=%s", c->pipeline);
    add_list_opt(a, "--pipelines", c->pipelines);
    if (s->pass_env)
        kt_strv_pushf(a, "--env=%s", s->env);
    if (c->conf_source && c->conf_source[0])
        kt_strv_pushf(a, "--conf-source=%s", c->conf_source);
    add_kv_opt(a, "--params", c->params);
    if (c->runner && c->runner[0])
        kt_strv_pushf(a, "--runner=%s", c->runner);
    add_kv_opt(a, "--runner-params", c->runner_params);
    add_list_opt(a, "--tags", c->tags);
    add_list_opt(a, "--nodes", c->nodes);
    add_list_opt(a, "--from-nodes", c->from_nodes);
    add_list_opt(a, "--to-nodes", c->to_nodes);
    add_list_opt(a, "--from-inputs", c->from_inputs);
    add_list_opt(a, "--to-outputs", c->to_outputs);
    add_list_opt(a, "--namespaces", c->namespaces);
    if (c->only_missing_outputs)
        kt_strv_push(a, kt_strdup("--only-missing-outputs"));
    for (size_t i = 0; c->args && i < c->args->n; i++)
        kt_strv_push(a, kt_strdup(c->args->v[i]));
}

/* Quote a word for the log line when it needs it. */
static void append_shell_word(char **line, const char *w)
{
    bool plain = w[0] != '\0';
    for (const char *p = w; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-_=.,/:@+%", *p)))
            plain = false;
    char *n;
    if (plain) {
        n = kt_asprintf("%s%s%s", *line, **line ? " " : "", w);
    } else {
        /* single quotes, ' as '\'' */
        size_t q = 0;
        for (const char *p = w; *p; p++)
            q += *p == '\'' ? 4 : 1;
        char *qw = kt_xmalloc(q + 3), *o = qw;
        *o++ = '\'';
        for (const char *p = w; *p; p++) {
            if (*p == '\'') {
                memcpy(o, "'\\''", 4);
                o += 4;
            } else {
                *o++ = *p;
            }
        }
        *o++ = '\'';
        *o = '\0';
        n = kt_asprintf("%s%s%s", *line, **line ? " " : "", qw);
        free(qw);
    }
    free(*line);
    *line = n;
}

/* ---- the logging configuration ------------------------------------------ */

/* Plain records, one per line, to stdout: nothing wraps, and the parser sees
 * Kedro's messages verbatim. Replaces conf/logging.yml (rich, info.log). */
static char *logging_yaml(const char *package)
{
    return kt_asprintf("# Written by kiln's kedro-train step: plain, unwrapped log lines.\n"
                       "version: 1\n"
                       "disable_existing_loggers: False\n"
                       "formatters:\n"
                       "  kiln:\n"
                       "    format: \"%%(levelname)s %%(name)s: %%(message)s\"\n"
                       "handlers:\n"
                       "  console:\n"
                       "    class: logging.StreamHandler\n"
                       "    level: INFO\n"
                       "    formatter: kiln\n"
                       "    stream: ext://sys.stdout\n"
                       "loggers:\n"
                       "  kedro:\n"
                       "    level: INFO\n"
                       "%s%s%s"
                       "root:\n"
                       "  handlers: [console]\n",
                       package ? "  " : "", package ? package : "", package ? ":\n    level: INFO\n" : "");
}

/* ---- phase 1: checks (worker thread) --------------------------------------- */

static bool is_identifier(const char *s)
{
    if (!s || !s[0] || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static void kt_check_work(void *data)
{
    kt_step *s = data;
    if (s->cfg->check_project) {
        kt_check_in in = {
            .project_dir = s->project_dir,
            .project_label = s->cfg->project,
            .conf_source = s->cfg->conf_source,
            .env = s->env,
            .env_origin = s->env_origin,
        };
        kt_check_project(&in, &s->check);
    } else {
        struct stat st;
        if (stat(s->project_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            kt_strv_pushf(&s->check.problems, "project directory %s does not exist", s->cfg->project);
    }
    if (s->check.problems.n)
        return;

    /* In the step's image, the image's PATH finds it. */
    s->exe = s->in_image ? kt_strdup(s->cmd.v[0]) : kt_find_executable(s->cmd.v[0], s->project_dir, s->path_env);
    if (!s->exe)
        return;

    char *tmpl = kt_asprintf("%s/kiln-kedro-XXXXXX", s->tmpdir);
    if (!mkdtemp(tmpl)) {
        s->log_error = kt_asprintf("cannot create a directory in %s: %s", s->tmpdir, strerror(errno));
        free(tmpl);
        return;
    }
    s->log_dir = tmpl;
    s->log_conf = kt_asprintf("%s/logging.yml", s->log_dir);
    const char *pkg = is_identifier(s->check.package_name) ? s->check.package_name : NULL;
    char *yaml = logging_yaml(pkg);
    FILE *f = fopen(s->log_conf, "w");
    if (!f || fputs(yaml, f) == EOF || fclose(f) != 0) {
        s->log_error = kt_asprintf("cannot write %s: %s", s->log_conf, strerror(errno));
        if (f)
            fclose(f);
        free(s->log_conf);
        s->log_conf = NULL;
    }
    free(yaml);
}

static void kt_on_line(void *data, kiln_stream stream, const char *line, size_t len);
static void kt_on_exit(kiln_proc *proc, void *data, int status);

static char *missing_exe_message(const kt_step *s)
{
    const char *w0 = s->cmd.v[0];
    const char *where = strchr(w0, '/') ? "" : " in PATH";
    if (strcmp(w0, "kedro") == 0)
        return kt_asprintf("kedro executable \"kedro\" not found%s: install Kedro in the build environment "
                           "(pip install kedro, or uv add kedro and command: \"uv run kedro\"), or set command: to "
                           "\"python -m kedro\" or a virtualenv's kedro (.venv/bin/kedro)",
                           where);
    return kt_asprintf("\"%s\" (from command: \"%s\") not found%s: install it, or install Kedro with pip install "
                       "kedro and set command: to \"kedro\" or \"python -m kedro\"",
                       w0, s->cfg->command, where);
}

static void kt_check_after(void *data, int err)
{
    kt_step *s = data;
    s->working = false;
    if (s->abandoned) {
        kt_free(s);
        return;
    }
    if (s->canceled) {
        kt_finish(s, KILN_ECANCELED, "canceled before kedro started");
        return;
    }
    if (err < 0) {
        kt_finish(s, err, "kedro-train could not check the project");
        return;
    }
    size_t np = s->check.problems.n;
    if (np) {
        for (size_t i = 0; i < np; i++)
            kiln_error(s->step, "kedro project check: %s", s->check.problems.v[i]);
        char *reason = kt_asprintf("kedro project check failed: %s%s", s->check.problems.v[0],
                                   np > 1 ? " (and more, see the log)" : "");
        kt_finish(s, KILN_ECONFIG, reason);
        free(reason);
        return;
    }
    if (!s->exe) {
        char *msg = missing_exe_message(s);
        kiln_error(s->step, "%s", msg);
        kt_finish(s, KILN_ENOTFOUND, msg);
        free(msg);
        return;
    }
    if (s->log_error) {
        char *msg = kt_asprintf("kedro-train: %s", s->log_error);
        kt_finish(s, KILN_EIO, msg);
        free(msg);
        return;
    }

    /* argv: the resolved executable, the rest of the command, run and its options. */
    kt_strv argv = {0};
    kt_strv_push(&argv, kt_strdup(s->exe));
    for (size_t i = 1; i < s->cmd.n; i++)
        kt_strv_push(&argv, kt_strdup(s->cmd.v[i]));
    for (size_t i = 0; i < s->run_args.n; i++)
        kt_strv_push(&argv, kt_strdup(s->run_args.v[i]));

    /* Environment: ours first, then the user's env-vars override. */
    kt_strv *e = &s->extra_env;
    kt_strv_pushf(e, "KEDRO_LOGGING_CONFIG=%s", s->log_conf);
    kt_strv_push(e, kt_strdup("PYTHONUNBUFFERED=1"));
    /* kedro-telemetry asks for consent on a terminal; stdin is /dev/null here. */
    kt_strv_push(e, kt_strdup("DO_NOT_TRACK=1"));
    kt_strv_push(e, kt_strdup("KEDRO_DISABLE_TELEMETRY=true"));
    const kiln_kvv *ev = s->cfg->env_vars;
    for (size_t i = 0; ev && i < ev->n; i++)
        kt_strv_pushf(e, "%s=%s", ev->keys[i], ev->values[i] ? ev->values[i] : "");

    char *shown = NULL;
    shown = kt_strdup("");
    for (size_t i = 0; i < s->cmd.n; i++)
        append_shell_word(&shown, s->cmd.v[i]);
    for (size_t i = 0; i < s->run_args.n; i++)
        append_shell_word(&shown, s->run_args.v[i]);
    kiln_info(s->step, "running %s (in %s, environment %s%s%s)", shown, s->cfg->project,
              s->env ? s->env : "local", s->env_origin ? ", " : "", s->env_origin ? s->env_origin : "");
    free(shown);

    kiln_spawn_opts o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.argv = (const char *const *)argv.v;
    o.cwd = s->project_dir;
    o.extra_env = (const char *const *)e->v;
    o.on_line = kt_on_line;
    o.line_data = s;
    s->phase = KT_RUNNING;
    s->started = time(NULL);
    kiln_api->step_progress(s->step, 0, 0, "starting kedro");
    int rc = kiln_api->spawn(s->step, &o, kt_on_exit, s, &s->proc);
    kt_strv_free(&argv);
    if (rc < 0) {
        char *msg = kt_asprintf("cannot start %s: %s", s->exe, kiln_api->strerror(rc));
        s->proc = NULL;
        kt_finish(s, rc, msg);
        free(msg);
    }
}

/* ---- phase 2: the run ----------------------------------------------------- */

static void kt_on_line(void *data, kiln_stream stream, const char *line, size_t len)
{
    kt_step *s = data;
    kt_progress *p = &s->prog;
    switch (kt_parse_line(p, (int)stream, line, len)) {
    case KT_EV_RUNNING: {
        char *what = kt_asprintf("running %s", p->running);
        kiln_api->step_progress(s->step, p->done, p->total, what);
        free(what);
        break;
    }
    case KT_EV_TASKS: {
        char *what = kt_asprintf("completed %s", p->last_completed ? p->last_completed : "a node");
        kiln_api->step_progress(s->step, p->done, p->total, what);
        free(what);
        break;
    }
    case KT_EV_FAILED: {
        char *what = kt_asprintf("failed at %s", p->failed_node);
        kiln_api->step_progress(s->step, p->done, p->total, what);
        free(what);
        break;
    }
    default:
        break;
    }
}

static void kt_outputs_work(void *data);
static void kt_outputs_after(void *data, int err);

static char *signal_text(int sig)
{
    const char *n = sigabbrev_np(sig);
    return n ? kt_asprintf("signal %d (SIG%s)", sig, n) : kt_asprintf("signal %d", sig);
}

static void kt_on_exit(kiln_proc *proc, void *data, int status)
{
    kt_step *s = data;
    kt_progress *p = &s->prog;
    s->proc = NULL;
    if (s->kill_timer) {
        kiln_api->timer_stop(s->kill_timer);
        s->kill_timer = NULL;
    }
    if (s->canceled) {
        kt_finish(s, KILN_ECANCELED, "canceled: kedro was stopped");
        return;
    }
    if (status == 0) {
        if (p->total)
            kiln_api->step_progress(s->step, p->done, p->total, "pipeline completed");
        s->phase = KT_OUTPUTS;
        int rc = kiln_api->queue_work(KILN_OBJ(s->step), kt_outputs_work, kt_outputs_after, s);
        if (rc < 0)
            kt_finish(s, rc, "kedro-train could not check the declared outputs");
        else
            s->working = true;
        return;
    }

    char *reason = NULL;
    if (status < 0) {
        reason = kt_asprintf("kedro could not be run to the end: %s", kiln_api->strerror(status));
    } else if (status == 1 && p->failed_node) {
        char *counts = p->total ? kt_asprintf(" after %lld of %lld nodes", (long long)p->done, (long long)p->total)
                                : kt_strdup("");
        char *hint = p->resume_from ? kt_asprintf("; resume with --from-nodes \"%s\"", p->resume_from)
                                    : p->no_nodes_ran ? kt_strdup("; no nodes ran") : kt_strdup("");
        reason = kt_asprintf("node %s failed%s: %s%s", p->failed_node, counts,
                             p->error_text ? p->error_text : "(no error text)", hint);
        kiln_error(s->step, "kedro node %s failed%s: %s", p->failed_node, counts,
                   p->error_text ? p->error_text : "(no error text)");
        if (p->resume_from)
            kiln_info(s->step, "resume from the nearest persisted inputs with: from-nodes: [%s]  (kedro run --from-nodes \"%s\")",
                      p->resume_from, p->resume_from);
        kiln_api->step_set_output(s->step, "failed_node", p->failed_node);
        if (p->resume_from)
            kiln_api->step_set_output(s->step, "resume_from", p->resume_from);
        free(counts);
        free(hint);
    } else if (p->no_module_kedro) {
        reason = kt_asprintf("kedro is not installed for \"%s\" (No module named kedro): pip install kedro in that "
                             "environment, or set command: to an installed kedro",
                             s->cmd.v[0]);
    } else if (status == 2) {
        reason = kt_asprintf("kedro run usage error (exit 2): %s",
                             p->usage_error ? p->usage_error : p->last_stderr ? p->last_stderr : "see the log");
    } else if (status > 128 && status < 128 + 65) {
        char *sig = signal_text(status - 128);
        reason = kt_asprintf("kedro was killed by %s", sig);
        free(sig);
    } else {
        reason = kt_asprintf("kedro run failed (exit %d): %s", status,
                             p->last_stderr ? p->last_stderr : "see the log");
    }
    if (p->total || p->done) {
        char *d = kt_asprintf("%lld", (long long)p->done), *t = kt_asprintf("%lld", (long long)p->total);
        kiln_api->step_set_output(s->step, "nodes_done", d);
        kiln_api->step_set_output(s->step, "nodes_total", t);
        free(d);
        free(t);
    }
    kt_finish(s, status, reason);
    free(reason);
}

/* ---- phase 3: declared outputs (worker thread) ------------------------------- */

static void kt_outputs_work(void *data)
{
    kt_step *s = data;
    const kiln_kvv *o = s->cfg->outputs;
    for (size_t i = 0; o && i < o->n; i++) {
        char *abs = kt_path_join(s->project_dir, o->values[i]);
        struct stat st;
        if (stat(abs, &st) != 0)
            kt_strv_pushf(&s->out_missing, "declared output %s was not produced: %s/%s does not exist (%s)",
                          o->keys[i], s->cfg->project, o->values[i], strerror(errno));
        else if (st.st_mtime + 1 < s->started)
            kt_strv_pushf(&s->out_stale, "declared output %s (%s) was not rewritten by this run", o->keys[i],
                          o->values[i]);
        kt_strv_push(&s->out_abs, abs);
    }
}

static void kt_outputs_after(void *data, int err)
{
    kt_step *s = data;
    kt_progress *p = &s->prog;
    s->working = false;
    if (s->abandoned) {
        kt_free(s);
        return;
    }
    if (s->canceled) {
        kt_finish(s, KILN_ECANCELED, "canceled");
        return;
    }
    const kiln_kvv *o = s->cfg->outputs;
    for (size_t i = 0; i < s->out_stale.n; i++)
        kiln_warn(s->step, "%s", s->out_stale.v[i]);
    for (size_t i = 0; i < s->out_missing.n; i++)
        kiln_error(s->step, "%s", s->out_missing.v[i]);
    for (size_t i = 0; o && i < o->n && i < s->out_abs.n; i++)
        kiln_api->step_set_output(s->step, o->keys[i], s->out_abs.v[i]);
    kiln_api->step_set_output(s->step, "env", s->env ? s->env : "local");
    char *d = kt_asprintf("%lld", (long long)p->done), *t = kt_asprintf("%lld", (long long)p->total);
    kiln_api->step_set_output(s->step, "nodes_done", d);
    kiln_api->step_set_output(s->step, "nodes_total", t);
    free(d);
    free(t);
    if (s->out_missing.n) {
        char *reason = kt_asprintf("%s%s", s->out_missing.v[0], s->out_missing.n > 1 ? " (and more, see the log)" : "");
        kt_finish(s, KILN_ESTEPFAILED, reason);
        free(reason);
        return;
    }
    kiln_info(s->step, "kedro run completed: %lld of %lld nodes, environment %s", (long long)p->done,
              (long long)p->total, s->env ? s->env : "local");
    kt_finish(s, 0, NULL);
}

/* ---- start / cancel ----------------------------------------------------- */

static int kt_start(kiln_step *step, const void *config, void *plugin_data)
{
    const kt_config *c = config;
    kt_step *s = kt_xmalloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->step = step;
    s->cfg = c;
    s->phase = KT_CHECKING;

    const char *project = c->project && c->project[0] ? c->project : ".";
    s->project_dir = kt_path_join(kiln_api->step_dir(step), project);

    if (kt_split_command(c->command ? c->command : "kedro", &s->cmd) != 0) {
        kiln_error(step, "command: \"%s\" is not a command", c->command ? c->command : "");
        kt_free(s);
        return KILN_ECONFIG;
    }

    /* The environment: env:, else the branch (as the seed's ENV=$BRANCH_NAME),
     * else what Kedro itself would use (KEDRO_ENV, then local). */
    const char *branch = kiln_api->subst_get(KILN_OBJ(step), "BRANCH_NAME");
    const char *kedro_env = kv_get(c->env_vars, "KEDRO_ENV");
    if (!kedro_env)
        kedro_env = getenv("KEDRO_ENV");
    if (c->env && c->env[0]) {
        s->env = kt_strdup(c->env);
        s->env_origin = kt_strdup("from env:");
        s->pass_env = true;
    } else if (branch && branch[0]) {
        s->env = kt_strdup(branch);
        s->env_origin = kt_asprintf("from BRANCH_NAME=%s; set env: to choose another", branch);
        s->pass_env = true;
    } else if (kedro_env && kedro_env[0]) {
        s->env = kt_strdup(kedro_env);
        s->env_origin = kt_strdup("from KEDRO_ENV");
    } else {
        s->env = kt_strdup("local");
        s->env_origin = kt_strdup("Kedro's default environment; set env: or BRANCH_NAME to choose another");
    }

    const char *path = kv_get(c->env_vars, "PATH");
    s->path_env = kt_strdup(path ? path : getenv("PATH"));
    const char *tmp = getenv("TMPDIR");
    s->tmpdir = kt_strdup(tmp && tmp[0] ? tmp : "/tmp");
    build_run_args(s);

    kiln_api->step_set_data(step, s);
    s->in_image = kiln_api->abi_minor >= 6 && KILN_API_HAS(kiln_api, step_image) && kiln_api->step_image &&
                  kiln_api->step_image(step);
    if (s->in_image) {
        /* In the step's image the host's TMPDIR does not exist: the logging
         * configuration goes under the workspace, which the executor binds
         * into the container at its own path (and at /workspace). */
        free(s->tmpdir);
        s->tmpdir = kt_strdup(kiln_api->workspace(KILN_OBJ(step)));
    }
    int rc = kiln_api->queue_work(KILN_OBJ(step), kt_check_work, kt_check_after, s);
    if (rc < 0) {
        kiln_api->step_set_data(step, NULL);
        kt_free(s);
        return rc;
    }
    s->working = true;
    return 0;
}

static void kt_kill_timer(kiln_timer *timer, void *data)
{
    kt_step *s = data;
    s->kill_timer = NULL;
    if (s->proc) {
        kiln_warn(s->step, "kedro did not stop within %d s of SIGTERM; sending SIGKILL", KT_KILL_GRACE_MS / 1000);
        kiln_api->proc_signal(s->proc, SIGKILL);
    }
}

static void kt_cancel(kiln_step *step, void *plugin_data)
{
    kt_step *s = kiln_api->step_get_data(step);
    if (!s || s->canceled)
        return;
    s->canceled = true;
    if (s->proc) {
        kiln_api->proc_signal(s->proc, SIGTERM);
        kiln_api->timer_start(step, KT_KILL_GRACE_MS, kt_kill_timer, s, &s->kill_timer);
    }
    /* Checking or output phase: the worker's after-callback ends the step. */
}

/* ABI 1.10: the host ended the step itself (kedro, or a process it left,
 * outlived the kill grace): its process and timer are gone without their
 * callbacks. Free now, or in the pending worker's after(), which still
 * comes; the logging configuration goes with it. */
static void kt_abandon(kiln_step *step, void *plugin_data)
{
    kt_step *s = kiln_api->step_get_data(step);
    if (!s)
        return;
    kiln_api->step_set_data(step, NULL);
    s->proc = NULL;
    s->kill_timer = NULL;
    if (s->working)
        s->abandoned = true;
    else
        kt_free(s);
}

static int kt_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    *plugin_data = NULL;
    return 0;
}

static const kiln_step_ops kt_step_ops = {
    .struct_size = sizeof(kiln_step_ops),
    .start = kt_start,
    .cancel = kt_cancel,
    .describe = NULL,
    .abandon = kt_abandon,
};

static const kiln_plugin kt_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "kedro-train",
    .version = "0.1.0",
    .summary = "Run a Kedro pipeline (kedro run) with project checks, node progress and declared outputs",
    .options = kt_options,
    .config_size = sizeof(kt_config),
    .flags = 0,
    .init = kt_init,
    .validate = kt_validate,
    .step = &kt_step_ops,
    .sink = NULL,
    .destroy = NULL,
};

KILN_PLUGIN_DEFINE(kt_plugin)
