/* SPDX-License-Identifier: MIT */
/* kiln run and kiln validate: one build of one pipeline file, on the console
 * and the sinks named on the command line. */
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
#include "ship.h"
#include "report.h"
#include "trigger_run.h"
#include "sinkloss.h"

int kiln__cli_load_checked(kiln__engine *eng, const kiln__cli_opts *o, kiln__pipeline *p,
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
int kiln__cli_add_sink(kiln__engine *eng, kiln__ydoc *doc, const char *spec, kiln__buf *err)
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
                if (!kiln__one_of(eq + 1, "true|false")) {
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

int kiln__cmd_run(const kiln__cli_opts *o, bool validate_only)
{
    if (!o->file)
        return kiln__usage_error("%s: which pipeline file?", o->cmd);
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
    /* Remote sinks (the shipping core): their grace, and their spool under
     * --log-dir (else kiln__ship_default_spool_root()). */
    if (o->sink_grace_set)
        kiln__ship_set_grace_ms(o->sink_grace_ms);
    {
        /* Without --log-dir, a per-user default: a receiver that is down
         * must not hold the steps at the memory bound for good. */
        char *spool = o->log_dir ? kiln__xasprintf("%s/.spool", o->log_dir) : kiln__ship_default_spool_root();
        kiln__ship_set_spool_root(spool);
        free(spool);
    }

    char build_id[40];
    kiln__new_build_id(build_id, sizeof build_id);
    kiln__pipeline p;
    kiln__subst *subst = NULL;
    kiln__secrets secrets;
    int rc = kiln__cli_load_checked(&eng, o, &p, &subst, &secrets, build_id, workspace);
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

    /* The executor, before anything runs: a container engine that does not
     * answer stops kiln here (exit 2). */
    kiln__buf xerr = KILN__BUF_INIT;
    eng.open_workspace = workspace;
    rc = kiln__executor_select(&eng, o->executor, build_id, &xerr);
    eng.open_workspace = NULL;
    if (rc) {
        if (xerr.len)
            fprintf(stderr, "kiln: %s\n", xerr.buf);
        kiln__buf_release(&xerr);
        kiln__engine_release(&eng);
        if (subst)
            kiln__subst_destroy(subst);
        kiln__secrets_release(&secrets);
        kiln__pipeline_free(&p);
        return EXIT_USAGE;
    }
    kiln__buf_release(&xerr);

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
        rc = kiln__cli_add_sink(&eng, &sinkdoc, o->sinks[i], &err);
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
    kiln__executor_close(&eng); /* its containers, volumes, network */

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

