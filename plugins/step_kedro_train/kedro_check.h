/* SPDX-License-Identifier: MIT */
/*
 * kedro-train: the checks made before kedro runs. Pure functions over the
 * file system (they block: the plugin calls them from queue_work()).
 *
 * The project check mirrors what Kedro itself verifies when a run starts
 * (kedro/framework/startup.py and the OmegaConfigLoader): pyproject.toml with
 * a [tool.kedro] table and its mandatory keys, the source directory and the
 * package in it, conf/base and conf/<env>. Each problem becomes one line that
 * names the missing piece.
 */
#ifndef KEDRO_CHECK_H
#define KEDRO_CHECK_H

#include <stdbool.h>

#include "kedro_util.h"

/* What kedro-train reads from pyproject.toml. */
typedef struct kt_pyproject {
    bool has_section; /* [tool.kedro] */
    char *package_name, *project_name, *kedro_init_version, *source_dir;
} kt_pyproject;

/* Read the [tool.kedro] table out of TOML text. Only what Kedro needs is
 * understood: table headers and `key = "string"` lines. */
void kt_pyproject_parse(const char *text, kt_pyproject *out);
void kt_pyproject_free(kt_pyproject *p);

/* Split a command line into words: blanks separate words, '...' and "..."
 * group, a backslash escapes the next character outside single quotes.
 * Returns 0, or -1 for an unbalanced quote or an empty command. */
int kt_split_command(const char *cmd, kt_strv *out);

/* Resolve an executable: a name containing '/' is taken relative to base_dir
 * when not absolute; other names are searched in path_env (a PATH value).
 * Returns a malloc'd path, or NULL when nothing executable is found. */
char *kt_find_executable(const char *name, const char *base_dir, const char *path_env);

typedef struct kt_check_in {
    const char *project_dir;   /* absolute */
    const char *project_label; /* the project as the user wrote it, for messages */
    const char *conf_source;   /* NULL: "conf"; else relative to the project or absolute */
    const char *env;           /* the environment kedro will use */
    const char *env_origin;    /* where env came from, for messages */
} kt_check_in;

typedef struct kt_check_out {
    kt_strv problems;   /* one line each */
    char *package_name; /* when pyproject.toml names one */
} kt_check_out;

void kt_check_project(const kt_check_in *in, kt_check_out *out);
void kt_check_out_free(kt_check_out *out);

/* "dir/rel", or rel when it is absolute. */
char *kt_path_join(const char *dir, const char *rel);

#endif /* KEDRO_CHECK_H */
