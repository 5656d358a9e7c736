/* SPDX-License-Identifier: MIT */
#include "kedro_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- pyproject.toml --------------------------------------------------- */

static const char *skip_blank(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *trim_end(const char *s, const char *end)
{
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    return end;
}

/* A TOML key: bare, or "quoted" / 'quoted'. */
static char *toml_key(const char *s, const char *end)
{
    s = skip_blank(s, end);
    end = trim_end(s, end);
    if (end - s >= 2 && (*s == '"' || *s == '\'') && end[-1] == *s)
        return kt_strndup(s + 1, (size_t)(end - s - 2));
    return kt_strndup(s, (size_t)(end - s));
}

/* A TOML value as a string: "basic" (with \" and \\), 'literal', or a bare
 * word up to a comment. */
static char *toml_value(const char *s, const char *end)
{
    s = skip_blank(s, end);
    if (s < end && *s == '"') {
        char *buf = kt_xmalloc((size_t)(end - s) + 1);
        size_t n = 0;
        for (s++; s < end && *s != '"'; s++) {
            if (*s == '\\' && s + 1 < end)
                s++;
            buf[n++] = *s;
        }
        buf[n] = '\0';
        return buf;
    }
    if (s < end && *s == '\'') {
        const char *q = memchr(s + 1, '\'', (size_t)(end - s - 1));
        return kt_strndup(s + 1, (size_t)((q ? q : end) - s - 1));
    }
    const char *hash = memchr(s, '#', (size_t)(end - s));
    if (hash)
        end = hash;
    end = trim_end(s, end);
    return kt_strndup(s, (size_t)(end - s));
}

/* Table header name without blanks and quotes: [ "tool" . kedro ] -> tool.kedro */
static char *toml_header(const char *s, const char *end)
{
    char *name = kt_xmalloc((size_t)(end - s) + 1);
    size_t n = 0;
    for (; s < end && *s != ']'; s++)
        if (*s != ' ' && *s != '\t' && *s != '"' && *s != '\'')
            name[n++] = *s;
    name[n] = '\0';
    return name;
}

void kt_pyproject_parse(const char *text, kt_pyproject *out)
{
    memset(out, 0, sizeof(*out));
    bool in_kedro = false;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *s = skip_blank(p, end);
        const char *e = trim_end(s, end);
        if (s < e && *s == '[') {
            if (e - s >= 2 && s[1] == '[') {
                in_kedro = false; /* array of tables */
            } else {
                char *name = toml_header(s + 1, e);
                in_kedro = strcmp(name, "tool.kedro") == 0;
                out->has_section = out->has_section || in_kedro;
                free(name);
            }
        } else if (in_kedro && s < e && *s != '#') {
            const char *eq = memchr(s, '=', (size_t)(e - s));
            if (eq) {
                char *key = toml_key(s, eq);
                char **slot = NULL;
                if (strcmp(key, "package_name") == 0)
                    slot = &out->package_name;
                else if (strcmp(key, "project_name") == 0)
                    slot = &out->project_name;
                else if (strcmp(key, "kedro_init_version") == 0)
                    slot = &out->kedro_init_version;
                else if (strcmp(key, "source_dir") == 0)
                    slot = &out->source_dir;
                if (slot) {
                    free(*slot);
                    *slot = toml_value(eq + 1, e);
                }
                free(key);
            }
        }
        p = eol ? eol + 1 : end;
    }
}

void kt_pyproject_free(kt_pyproject *p)
{
    free(p->package_name);
    free(p->project_name);
    free(p->kedro_init_version);
    free(p->source_dir);
    memset(p, 0, sizeof(*p));
}

/* ---- commands --------------------------------------------------------- */

int kt_split_command(const char *cmd, kt_strv *out)
{
    size_t len = strlen(cmd);
    char *word = kt_xmalloc(len + 1);
    const char *s = cmd;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        size_t n = 0;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n') {
            if (*s == '\'' || *s == '"') {
                char q = *s++;
                while (*s && *s != q) {
                    if (q == '"' && *s == '\\' && s[1])
                        s++;
                    word[n++] = *s++;
                }
                if (*s != q) {
                    free(word);
                    return -1;
                }
                s++;
            } else {
                if (*s == '\\' && s[1])
                    s++;
                word[n++] = *s++;
            }
        }
        kt_strv_push(out, kt_strndup(word, n));
    }
    free(word);
    return out->n ? 0 : -1;
}

char *kt_path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return kt_strdup(rel);
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (strcmp(rel, ".") == 0 || rel[0] == '\0')
        return kt_strdup(dir);
    size_t dl = strlen(dir);
    return kt_asprintf("%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", rel);
}

static bool is_exec_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *kt_find_executable(const char *name, const char *base_dir, const char *path_env)
{
    if (strchr(name, '/')) {
        char *p = kt_path_join(base_dir, name);
        if (is_exec_file(p))
            return p;
        free(p);
        return NULL;
    }
    if (!path_env)
        path_env = "/usr/local/bin:/usr/bin:/bin";
    const char *s = path_env;
    for (;;) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        char *p = n ? kt_asprintf("%.*s/%s", (int)n, s, name) : kt_asprintf("./%s", name);
        if (is_exec_file(p))
            return p;
        free(p);
        if (!colon)
            return NULL;
        s = colon + 1;
    }
}

/* ---- the project check ------------------------------------------------ */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *read_small_file(const char *path, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = kt_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= (4u << 20)) /* pyproject.toml is never this big */
                break;
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    *err = ferror(f) ? EIO : 0;
    fclose(f);
    buf[n] = '\0';
    if (*err) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* label/rel for messages ("./pyproject.toml" when the project is "."). */
static char *shown(const kt_check_in *in, const char *rel)
{
    const char *l = in->project_label && in->project_label[0] ? in->project_label : ".";
    size_t ll = strlen(l);
    while (ll > 1 && l[ll - 1] == '/')
        ll--;
    if (rel[0] == '/')
        return kt_strdup(rel);
    return kt_asprintf("%.*s/%s", (int)ll, l, rel);
}

void kt_check_project(const kt_check_in *in, kt_check_out *out)
{
    memset(out, 0, sizeof(*out));
    kt_strv *pr = &out->problems;
    if (!is_dir(in->project_dir)) {
        kt_strv_pushf(pr, "project directory %s does not exist (set project: to the folder that holds pyproject.toml)",
                      in->project_label && in->project_label[0] ? in->project_label : in->project_dir);
        return;
    }

    /* 1-3. pyproject.toml, [tool.kedro] and its mandatory keys. */
    char *pp_path = kt_path_join(in->project_dir, "pyproject.toml");
    char *pp_shown = shown(in, "pyproject.toml");
    kt_pyproject meta = {0};
    bool have_meta = false;
    int err = 0;
    char *text = is_file(pp_path) ? read_small_file(pp_path, &err) : NULL;
    if (!is_file(pp_path)) {
        kt_strv_pushf(pr, "%s is missing: a Kedro project has a pyproject.toml with a [tool.kedro] table at its root", pp_shown);
    } else if (!text) {
        kt_strv_pushf(pr, "%s cannot be read: %s", pp_shown, strerror(err));
    } else {
        kt_pyproject_parse(text, &meta);
        if (!meta.has_section) {
            kt_strv_pushf(pr, "%s has no [tool.kedro] table (with package_name, project_name and kedro_init_version)", pp_shown);
        } else {
            have_meta = true;
            static const char *const keys[] = {"package_name", "project_name", "kedro_init_version"};
            char *vals[] = {meta.package_name, meta.project_name, meta.kedro_init_version};
            for (size_t i = 0; i < 3; i++)
                if (!vals[i] || !vals[i][0])
                    kt_strv_pushf(pr, "%s: [tool.kedro] has no %s", pp_shown, keys[i]);
        }
    }
    free(text);

    /* 5. source_dir (default src), the package, settings.py, pipeline_registry.py. */
    if (have_meta) {
        const char *src = meta.source_dir && meta.source_dir[0] ? meta.source_dir : "src";
        char *src_path = kt_path_join(in->project_dir, src);
        char *src_shown = shown(in, src);
        if (!is_dir(src_path)) {
            kt_strv_pushf(pr, "%s/ is missing: the source directory ([tool.kedro] source_dir, default \"src\") must exist",
                          src_shown);
        } else if (meta.package_name && meta.package_name[0]) {
            char *pkg = kt_asprintf("%s/%s", src_path, meta.package_name);
            if (!is_dir(pkg)) {
                kt_strv_pushf(pr, "%s/%s/ is missing: package_name \"%s\" has no package in %s/", src_shown,
                              meta.package_name, meta.package_name, src_shown);
            } else {
                static const char *const files[] = {"__init__.py", "settings.py", "pipeline_registry.py"};
                for (size_t i = 0; i < 3; i++) {
                    char *f = kt_asprintf("%s/%s", pkg, files[i]);
                    if (!is_file(f))
                        kt_strv_pushf(pr, "%s/%s/%s is missing", src_shown, meta.package_name, files[i]);
                    free(f);
                }
            }
            free(pkg);
        }
        free(src_path);
        free(src_shown);
        if (meta.package_name && meta.package_name[0])
            out->package_name = kt_strdup(meta.package_name);
    }

    /* 6. conf/base and conf/<env>. */
    const char *conf = in->conf_source && in->conf_source[0] ? in->conf_source : "conf";
    char *conf_path = kt_path_join(in->project_dir, conf);
    char *conf_shown = shown(in, conf);
    size_t cl = strlen(conf_shown);
    while (cl > 1 && conf_shown[cl - 1] == '/')
        conf_shown[--cl] = '\0';
    if (!is_dir(conf_path)) {
        kt_strv_pushf(pr, "%s/ is missing: Kedro reads its configuration from %s/base and %s/<env>", conf_shown,
                      conf_shown, conf_shown);
    } else {
        char *base = kt_asprintf("%s/base", conf_path);
        if (!is_dir(base))
            kt_strv_pushf(pr, "%s/base/ is missing: Kedro always loads the base configuration", conf_shown);
        free(base);
        if (in->env && in->env[0] && strcmp(in->env, "base") != 0) {
            char *envp = kt_asprintf("%s/%s", conf_path, in->env);
            if (!is_dir(envp))
                kt_strv_pushf(pr, "%s/%s/ is missing: no configuration for environment \"%s\" (%s)", conf_shown,
                              in->env, in->env, in->env_origin ? in->env_origin : "env:");
            free(envp);
        }
    }
    free(conf_path);
    free(conf_shown);
    free(pp_path);
    free(pp_shown);
    kt_pyproject_free(&meta);
}

void kt_check_out_free(kt_check_out *out)
{
    kt_strv_free(&out->problems);
    free(out->package_name);
    out->package_name = NULL;
}
