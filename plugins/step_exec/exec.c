/* SPDX-License-Identifier: MIT */
/*
 * exec: run a program on this machine. Every step without `uses:` runs
 * through it, its Cloud Build fields becoming these options:
 *   script      run with /bin/sh -c, or written to a file and executed when
 *               it starts with a shebang (#!)
 *   entrypoint  the program, args its arguments
 *   args        else args[0] is the program; for a builder image
 *               gcr.io/cloud-builders/TOOL the program is TOOL
 *   image       Cloud Build's `name:`; no container runs, and the step says so
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>

KILN_API_DEFINE;

struct exec_config {
    const char *image;
    const char *entrypoint;
    const kiln_strv *args;
    const char *script;
};

static const kiln_option exec_options[] = {
    {KILN_OPT_STRING, "image", NULL, 0, offsetof(struct exec_config, image), 0, -1, NULL,
     "Cloud Build builder image (name:); recorded, not run: the program runs on this machine."},
    {KILN_OPT_STRING, "entrypoint", NULL, 0, offsetof(struct exec_config, entrypoint), 0, -1, NULL,
     "Program to run; args are its arguments."},
    {KILN_OPT_STRING_LIST, "args", NULL, 0, offsetof(struct exec_config, args), 0, -1, NULL,
     "Arguments; without entrypoint, args[0] is the program."},
    {KILN_OPT_STRING, "script", NULL, KILN_OPT_NO_SUBST, offsetof(struct exec_config, script), 0, -1,
     NULL, "Shell script run with /bin/sh, or by its own #! interpreter."},
    KILN_OPTIONS_END,
};

struct exec_run {
    char *script_file;
};

/* gcr.io/cloud-builders/docker:latest -> "docker" */
static const char *builder_entrypoint(const char *image, char *buf, size_t cap)
{
    if (!image)
        return NULL;
    const char *p = strstr(image, "/cloud-builders/");
    if (!p)
        return NULL;
    p += strlen("/cloud-builders/");
    size_t n = strcspn(p, ":@/");
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* What the step keeps: the script file goes with it. */
static void release_run(kiln_step *step)
{
    struct exec_run *run = kiln_api->step_get_data(step);
    if (!run)
        return;
    if (run->script_file)
        unlink(run->script_file);
    free(run->script_file);
    free(run);
    kiln_api->step_set_data(step, NULL);
}

static void exec_exited(kiln_proc *proc, void *data, int status)
{
    kiln_step *step = data;
    release_run(step);
    kiln_api->step_done(step, status, NULL);
}

/* ABI 1.10: the host ended the step while its process never reported its
 * end (output held open outside its group): no exit callback will come. */
static void exec_abandon(kiln_step *step, void *plugin_data)
{
    release_run(step);
}

static int exec_validate(void *plugin_data, const void *config, kiln_diag *diag)
{
    const struct exec_config *c = config;
    if (c->script && (c->entrypoint || c->args->n)) {
        kiln_api->diag(diag, "script", "script cannot be combined with entrypoint or args");
        return KILN_ECONFIG;
    }
    char tool[64];
    if (!c->script && !c->entrypoint && !c->args->n) {
        if (builder_entrypoint(c->image, tool, sizeof tool))
            return 0; /* the builder's tool without arguments */
        kiln_api->diag(diag, NULL, "nothing to run: give script, entrypoint or args");
        return KILN_ECONFIG;
    }
    return 0;
}

static int write_script(kiln_step *step, const char *script, char **path_out)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/kiln-script-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    size_t len = strlen(script), off = 0;
    while (off < len) {
        ssize_t n = write(fd, script + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(path);
            return -e;
        }
        off += (size_t)n;
    }
    fchmod(fd, 0700);
    close(fd);
    *path_out = strdup(path);
    return *path_out ? 0 : KILN_ENOMEM;
}

/* A script with a shebang is written inside the container, into the
 * build's home volume, and run from there; any other runs with sh. */
static const char in_image_script[] =
    "f=/builder/home/.kiln-script-$KILN_STEP_ID-$$; printf '%s' \"$KILN_SCRIPT\" >\"$f\" && chmod +x \"$f\" "
    "&& unset KILN_SCRIPT && \"$f\"; s=$?; rm -f \"$f\"; exit $s";

static int start_in_image(kiln_step *step, const struct exec_config *c, struct exec_run *run)
{
    size_t n = c->args->n;
    const char **argv = calloc(n + 4, sizeof *argv);
    if (!argv) {
        free(run);
        return KILN_ENOMEM;
    }
    size_t k = 0;
    bool image_entrypoint = false;
    const char *extra[2] = {NULL, NULL};
    char *script_env = NULL;
    if (c->script) {
        argv[k++] = "sh";
        argv[k++] = "-c";
        if (strncmp(c->script, "#!", 2) == 0) {
            size_t len = strlen(c->script) + sizeof "KILN_SCRIPT=";
            script_env = malloc(len);
            if (!script_env) {
                free(argv);
                free(run);
                return KILN_ENOMEM;
            }
            snprintf(script_env, len, "KILN_SCRIPT=%s", c->script);
            extra[0] = script_env;
            argv[k++] = in_image_script;
        } else {
            argv[k++] = c->script;
        }
    } else {
        if (c->entrypoint)
            argv[k++] = c->entrypoint;
        else
            image_entrypoint = true;
        for (size_t i = 0; i < n; i++)
            argv[k++] = c->args->v[i];
    }
    argv[k] = NULL;
    kiln_spawn_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    opts.argv = argv;
    opts.extra_env = extra[0] ? extra : NULL;
    opts.image_entrypoint = image_entrypoint;
    kiln_api->step_set_data(step, run);
    int rc = kiln_api->spawn(step, &opts, exec_exited, step, NULL);
    if (rc) {
        kiln_error(step, "cannot run the step in image '%s': %s", c->image ? c->image : "?",
                   kiln_api->strerror(rc));
        free(run);
        kiln_api->step_set_data(step, NULL);
    }
    free(script_env);
    free(argv);
    return rc;
}

static int exec_start(kiln_step *step, const void *config, void *plugin_data)
{
    const struct exec_config *c = config;
    struct exec_run *run = calloc(1, sizeof *run);
    if (!run)
        return KILN_ENOMEM;
    /* ABI 1.6: under an executor that runs the step in its image, Cloud
     * Build's meaning holds as is: entrypoint replaces the image's, args
     * alone go to the image's own entrypoint. */
    const char *in_image = kiln_api->abi_minor >= 6 && KILN_API_HAS(kiln_api, step_image) && kiln_api->step_image
                               ? kiln_api->step_image(step)
                               : NULL;
    if (in_image)
        return start_in_image(step, c, run);
    char tool[64];
    const char *entry = c->entrypoint;
    if (!entry && !c->script)
        entry = builder_entrypoint(c->image, tool, sizeof tool);
    if (c->image)
        kiln_info(step, "image '%s' is not used: running %s on this machine", c->image,
                  c->script ? "the script" : entry ? entry : c->args->n ? c->args->v[0] : "?");

    size_t n = c->args->n;
    const char **argv = calloc(n + 4, sizeof *argv);
    if (!argv) {
        free(run);
        return KILN_ENOMEM;
    }
    size_t k = 0;
    int rc = 0;
    if (c->script) {
        if (strncmp(c->script, "#!", 2) == 0) {
            rc = write_script(step, c->script, &run->script_file);
            if (rc) {
                kiln_error(step, "cannot write the script to a temporary file: %s",
                           kiln_api->strerror(rc));
                free(argv);
                free(run);
                return rc;
            }
            argv[k++] = run->script_file;
        } else {
            argv[k++] = "/bin/sh";
            argv[k++] = "-c";
            argv[k++] = c->script;
        }
    } else {
        if (entry)
            argv[k++] = entry;
        for (size_t i = 0; i < n; i++)
            argv[k++] = c->args->v[i];
    }
    argv[k] = NULL;
    kiln_spawn_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    opts.argv = argv;
    kiln_api->step_set_data(step, run);
    rc = kiln_api->spawn(step, &opts, exec_exited, step, NULL);
    if (rc) {
        if (rc == KILN_ENOENT)
            kiln_error(step, "cannot run '%s': not found (is it installed and on PATH?)", argv[0]);
        else
            kiln_error(step, "cannot run '%s': %s", argv[0], kiln_api->strerror(rc));
        release_run(step);
    }
    free(argv);
    return rc;
}

static int exec_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_step_ops exec_ops = {sizeof(kiln_step_ops), exec_start, NULL, NULL, exec_abandon};

static const kiln_plugin exec_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_STEP,
    .name = "exec",
    .version = KILN_VERSION_STRING,
    .summary = "Run a program or script on this machine (Cloud Build steps without uses:)",
    .options = exec_options,
    .config_size = sizeof(struct exec_config),
    .init = exec_init,
    .validate = exec_validate,
    .step = &exec_ops,
};

KILN_PLUGIN_DEFINE(exec_plugin)
