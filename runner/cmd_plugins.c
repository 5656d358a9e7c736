/* SPDX-License-Identifier: MIT */
/* kiln plugins: the plugins found, or one plugin's options. */
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

int kiln__cmd_plugins(const kiln__cli_opts *o)
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
