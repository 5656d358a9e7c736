/* SPDX-License-Identifier: MIT */
/* Local secret providers for availableSecrets; see secrets.h. */
#include "secrets.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

struct used {
    const char **names;
    size_t n;
};

const char *kiln__secrets_get(const kiln__secrets *sec, const char *env)
{
    for (size_t i = 0; sec && i < sec->n; i++)
        if (strcmp(sec->env[i], env) == 0)
            return sec->value[i];
    return NULL;
}

void kiln__secrets_release(kiln__secrets *sec)
{
    for (size_t i = 0; i < sec->n; i++) {
        free(sec->env[i]);
        if (sec->value[i]) {
            memset(sec->value[i], 0, strlen(sec->value[i]));
            free(sec->value[i]);
        }
    }
    free(sec->env);
    free(sec->value);
    memset(sec, 0, sizeof *sec);
}

/* dotenv: KEY=value, optional quotes, # comments. Returns a malloc'd value. */
static char *from_file(const char *path, const char *const *keys, size_t n_keys, int *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = errno;
        return NULL;
    }
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    ssize_t len;
    while (!found && (len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        if (!strncmp(p, "export ", 7))
            p += 7;
        char *eq = strchr(p, '=');
        if (!eq)
            continue;
        char *k_end = eq;
        while (k_end > p && isspace((unsigned char)k_end[-1]))
            k_end--;
        *k_end = '\0';
        char *v = eq + 1;
        size_t vl = strlen(v);
        if (vl >= 2 && ((v[0] == '"' && v[vl - 1] == '"') || (v[0] == '\'' && v[vl - 1] == '\''))) {
            v[vl - 1] = '\0';
            v++;
        }
        for (size_t i = 0; i < n_keys; i++)
            if (keys[i] && strcmp(p, keys[i]) == 0) {
                found = kiln__xstrdup(v);
                break;
            }
    }
    free(line);
    fclose(f);
    return found;
}

static char *from_command(const char *command, const char *version, char **why)
{
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char *script = kiln__xasprintf("%s \"$1\"", command);
        execl("/bin/sh", "sh", "-c", script, "kiln-secret", version, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    kiln__buf b = KILN__BUF_INIT;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            kiln__buf_add(&b, chunk, (size_t)n);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        *why = kiln__xasprintf("--secrets-command exited with status %d",
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        kiln__buf_release(&b);
        return NULL;
    }
    if (b.len && b.buf[b.len - 1] == '\n')
        b.buf[--b.len] = '\0';
    return kiln__buf_detach(&b);
}

static void add_secret(kiln__secrets *out, const char *env, char *value)
{
    out->env = kiln__xrealloc(out->env, (out->n + 1) * sizeof *out->env);
    out->value = kiln__xrealloc(out->value, (out->n + 1) * sizeof *out->value);
    out->env[out->n] = kiln__xstrdup(env);
    out->value[out->n] = value;
    out->n++;
}


static void mark_used(struct used *u, const kiln__strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        u->names = kiln__xrealloc(u->names, (u->n + 1) * sizeof *u->names);
        u->names[u->n++] = l->v[i];
    }
}

static bool declared(const struct used *decl, const char *name)
{
    for (size_t k = 0; k < decl->n; k++)
        if (strcmp(decl->names[k], name) == 0)
            return true;
    return false;
}

static void check_step_secret_env(const kiln__pipeline *p, const kiln__step *st,
                                  const struct used *decl, kiln__diag *d)
{
    for (size_t i = 0; i < st->secret_env.n; i++) {
        const char *name = st->secret_env.v[i];
        if (!declared(decl, name))
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, st->secret_env.node->items[i],
                          "%s: secretEnv \"%s\" is not defined in availableSecrets", st->label, name);
        for (size_t e = 0; e < st->env.n; e++) {
            size_t kl = strcspn(st->env.v[e], "=");
            if (strlen(name) == kl && !strncmp(st->env.v[e], name, kl))
                kiln__diag_at(d, KILN__DIAG_ERROR, p->file, st->secret_env.node->items[i],
                              "%s: \"%s\" is both in env and in secretEnv", st->label, name);
        }
    }
}

void kiln__secrets_resolve(const kiln__pipeline *p, kiln__subst *s, const kiln__secret_opts *o,
                           kiln__diag *d, kiln__masker *masker, kiln__secrets *out)
{
    memset(out, 0, sizeof *out);
    const kiln__ynode *av = p->available_secrets;
    if (av && av->kind != KILN__Y_MAP) {
        kiln__diag_at(d, KILN__DIAG_ERROR, p->file, av,
                      "availableSecrets: expected a mapping with secretManager: [...], got %s",
                      kiln__ykind_name(av));
        av = NULL;
    }
    const kiln__ynode *sm = NULL;
    struct used decl = {NULL, 0}; /* env names declared, resolved or not */
    for (size_t i = 0; av && i < av->n; i++) {
        const kiln__ynode *k = av->items[2 * i], *v = av->items[2 * i + 1];
        if (!strcmp(k->value, "secretManager") || !strcmp(k->value, "secret_manager"))
            sm = v;
        else if (!strcmp(k->value, "inline"))
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, k,
                          "availableSecrets.inline: KMS-encrypted secrets cannot be decrypted "
                          "locally; use secretManager entries, which kiln resolves from "
                          "--secrets-file, KILN_SECRET_<NAME> or --secrets-command");
        else
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, k,
                          "unknown field \"%s\" in availableSecrets (expected secretManager)", k->value);
    }
    if (sm && sm->kind != KILN__Y_SEQ) {
        kiln__diag_at(d, KILN__DIAG_ERROR, p->file, sm,
                      "availableSecrets.secretManager: expected a list of {versionName, env}");
        sm = NULL;
    }
    for (size_t i = 0; sm && i < sm->n; i++) {
        const kiln__ynode *e = sm->items[i];
        const kiln__ynode *vn = kiln__ymap_get(e, "versionName");
        if (!vn)
            vn = kiln__ymap_get(e, "version_name");
        const kiln__ynode *en = kiln__ymap_get(e, "env");
        if (!vn || !en || vn->kind != KILN__Y_SCALAR || en->kind != KILN__Y_SCALAR) {
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, e,
                          "availableSecrets.secretManager[%zu]: needs versionName and env strings", i);
            continue;
        }

        for (size_t k = 0; k < e->n; k++) {
            const char *key = e->items[2 * k]->value;
            if (strcmp(key, "versionName") && strcmp(key, "version_name") && strcmp(key, "env"))
                kiln__diag_at(d, KILN__DIAG_ERROR, p->file, e->items[2 * k],
                              "unknown field \"%s\" in availableSecrets.secretManager[%zu]", key, i);
        }
        if (declared(&decl, en->value)) {
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, en,
                          "secret environment variable \"%s\" is defined twice in availableSecrets",
                          en->value);
            continue;
        }
        decl.names = kiln__xrealloc(decl.names, (decl.n + 1) * sizeof *decl.names);
        decl.names[decl.n++] = en->value;
        kiln__buf version = KILN__BUF_INIT;
        kiln__subst_expand(s, vn->value, &version, NULL, NULL);
        /* projects/P/secrets/NAME/versions/V */
        char name[256] = "";
        const char *sp = strstr(version.buf, "/secrets/");
        if (sp) {
            sp += 9;
            size_t nl = strcspn(sp, "/");
            snprintf(name, sizeof name, "%.*s", (int)nl, sp);
        }
        if (!sp || !strstr(version.buf, "/versions/") || strncmp(version.buf, "projects/", 9) != 0) {
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, vn,
                          "versionName \"%s\" is not of the form "
                          "projects/PROJECT/secrets/NAME/versions/VERSION",
                          version.buf);
            kiln__buf_release(&version);
            continue;
        }
        const char *keys[] = {version.buf, name, en->value};
        char *value = NULL, *why = NULL;
        int ferr = 0;
        if (o && o->file)
            value = from_file(o->file, keys, 3, &ferr);
        if (ferr) {
            kiln__diag_at(d, KILN__DIAG_ERROR, "--secrets-file", NULL, "cannot read '%s': %s", o->file,
                          strerror(ferr));
        }
        char envname[300] = "KILN_SECRET_";
        size_t k = strlen(envname);
        for (const char *c = name; *c && k + 1 < sizeof envname; c++)
            envname[k++] = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
        envname[k] = '\0';
        if (!value && getenv(envname))
            value = kiln__xstrdup(getenv(envname));
        if (!value && o && o->command)
            value = from_command(o->command, version.buf, &why);
        if (!value) {
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, vn,
                          "secret \"%s\" (%s) has no value here%s%s: put %s=... in a --secrets-file, "
                          "set %s, or give a --secrets-command",
                          name, version.buf, why ? ": " : "", why ? why : "", name, envname);
            free(why);
            kiln__buf_release(&version);
            continue;
        }
        free(why);
        kiln__masker_add(masker, value);
        add_secret(out, en->value, value);
        kiln__buf_release(&version);
    }
    /* Every secretEnv must be defined; every secret must be used. */
    struct used u = {NULL, 0};
    mark_used(&u, &p->options.secret_env);
    for (size_t i = 0; i < p->options.secret_env.n; i++)
        if (!declared(&decl, p->options.secret_env.v[i]))
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, p->options.secret_env.node->items[i],
                          "options.secretEnv \"%s\" is not defined in availableSecrets",
                          p->options.secret_env.v[i]);
    for (size_t list = 0; list < 2; list++) {
        const kiln__step *steps = list ? p->finally : p->steps;
        size_t n = list ? p->n_finally : p->n_steps;
        for (size_t i = 0; i < n; i++) {
            mark_used(&u, &steps[i].secret_env);
            check_step_secret_env(p, &steps[i], &decl, d);
        }
    }
    for (size_t i = 0; i < out->n; i++) {
        bool used = false;
        for (size_t k = 0; k < u.n && !used; k++)
            used = strcmp(u.names[k], out->env[i]) == 0;
        if (!used)
            kiln__diag_at(d, KILN__DIAG_ERROR, p->file, p->available_secrets,
                          "secret environment variable \"%s\" is not used by any build step "
                          "(Cloud Build requires every secret to be used)",
                          out->env[i]);
    }
    free(u.names);
    free(decl.names);
}
