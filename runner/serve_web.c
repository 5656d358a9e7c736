/* SPDX-License-Identifier: MIT */
/*
 * kiln serve's pages (serve_logs.h): GET / (the builds), /builds/ID (one
 * build: its DAG, log, substitutions) and /static/NAME, from the files of
 * web/ compiled into the binary (cmake/EmbedWeb.cmake). The pages are
 * plain HTML with a little JavaScript that reads the JSON API; {{BASE}}
 * (--base-path) and {{ID}} are filled in here.
 *
 * The build API gets what the page draws and the history lacks while a
 * build runs: the live report of a WORKING build (step states, sub-builds,
 * resolved substitutions) and every build's graph, "waits": {step: [the
 * steps it waits for]}, for the top build and each sub-build. The graph of
 * an ended build is kept in DATA/builds/ID/graph.json, written when it ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "report.h"
#include "serve_logs.h"
#include "serve_web_assets.h"

/* ---- the graph -------------------------------------------------------- */

static cJSON *waits_json(const kiln__build *b)
{
    cJSON *w = cJSON_CreateObject();
    for (size_t o = 0; o < b->n_total; o++) {
        const kiln__rstep *s = &b->steps[o];
        cJSON *a = cJSON_AddArrayToObject(w, s->def->key);
        for (size_t i = 0; i < s->n_deps; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(b->steps[s->deps[i]].def->key));
    }
    return w;
}

/* {BUILD_ID: waits} for b and every sub-build under it. */
static void graph_all(const kiln__build *b, cJSON *out)
{
    cJSON_AddItemToObject(out, b->id, waits_json(b));
    for (size_t o = 0; o < b->n_total; o++)
        for (size_t i = 0; i < b->steps[o].n_children; i++)
            graph_all(b->steps[o].children[i], out);
}

/* Put "waits" on the build object o (id) and on each sub-build in its steps. */
static void annotate(cJSON *o, cJSON *graph)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
    cJSON *w = id ? cJSON_GetObjectItemCaseSensitive(graph, id) : NULL;
    if (w && !cJSON_GetObjectItemCaseSensitive(o, "waits"))
        cJSON_AddItemToObject(o, "waits", cJSON_Duplicate(w, 1));
    const char *lists[] = {"steps", "finally"};
    for (int l = 0; l < 2; l++) {
        cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(o, lists[l]))
        {
            cJSON *sub;
            cJSON_ArrayForEach(sub, cJSON_GetObjectItemCaseSensitive(s, "builds"))
                annotate(sub, graph);
        }
    }
}

static const kiln__job *running_job(const kiln__server *srv, const char *id)
{
    for (const kiln__job *j = srv->running; j; j = j->next)
        if (!strcmp(j->id, id))
            return j;
    return NULL;
}

static cJSON *read_json_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    kiln__buf b = KILN__BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kiln__buf_add(&b, chunk, n);
    fclose(f);
    cJSON *j = cJSON_ParseWithLength(b.buf, b.len);
    kiln__buf_release(&b);
    return j;
}

void kiln__web_build_end(kiln__server *srv, const char *id)
{
    const kiln__job *j = running_job(srv, id);
    if (!j || !j->b || !j->dir)
        return;
    cJSON *g = cJSON_CreateObject();
    graph_all(j->b, g);
    char *text = cJSON_PrintUnformatted(g);
    cJSON_Delete(g);
    char *path = kiln__xasprintf("%s/graph.json", j->dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        kiln__serve_log("error: cannot write %s", path);
    free(path);
    cJSON_free(text);
}

void kiln__web_build_json(kiln__server *srv, const char *id, cJSON *o)
{
    const kiln__job *j = running_job(srv, id);
    cJSON *report = NULL, *graph = NULL;
    if (j && j->b) {
        char *text = kiln__report_json(j->b);
        report = cJSON_Parse(text);
        free(text);
        graph = cJSON_CreateObject();
        graph_all(j->b, graph);
    } else {
        char *p = kiln__xasprintf("%s/builds/%s/report.json", srv->data_dir, id);
        report = read_json_file(p);
        free(p);
        p = kiln__xasprintf("%s/builds/%s/graph.json", srv->data_dir, id);
        graph = read_json_file(p);
        free(p);
    }
    if (report) {
        const char *moved[] = {"steps", "finally"};
        for (int i = 0; i < 2; i++) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(report, moved[i]);
            if (v && cJSON_GetObjectItemCaseSensitive(o, moved[i]))
                cJSON_ReplaceItemInObjectCaseSensitive(o, moved[i], v);
            else if (v)
                cJSON_AddItemToObject(o, moved[i], v);
        }
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(report, "substitutions");
        if (v)
            cJSON_AddItemToObject(o, "resolvedSubstitutions", v);
        if ((v = cJSON_DetachItemFromObjectCaseSensitive(report, "pipeline")))
            cJSON_AddItemToObject(o, "pipeline", v);
        if ((v = cJSON_DetachItemFromObjectCaseSensitive(report, "plan")))
            cJSON_AddItemToObject(o, "plan", v);
        cJSON_Delete(report);
    }
    if (graph) {
        annotate(o, graph);
        cJSON_Delete(graph);
    }
}

/* ---- pages ------------------------------------------------------------ */

static const struct kiln__web_asset *asset(const char *name)
{
    for (const struct kiln__web_asset *a = kiln__web_assets; a->name; a++)
        if (!strcmp(a->name, name))
            return a;
    return NULL;
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (dot && !strcmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    return "text/html; charset=utf-8";
}

static int send_bytes(h2o_req_t *req, int status, const char *reason, const char *type,
                      const char *data, size_t len)
{
    char *copy = h2o_mem_alloc_pool(&req->pool, len ? len : 1);
    memcpy(copy, data, len);
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    /* Pages come with the binary: a new kiln must not meet an old script. */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0,
                          NULL, H2O_STRLIT("nosniff"));
    h2o_send_inline(req, copy, len);
    return 0;
}

/* A page with {{BASE}} and {{ID}} filled in (both checked to need no escaping). */
static int send_page(kiln__server *srv, h2o_req_t *req, int status, const char *reason,
                     const char *name, const char *id)
{
    const struct kiln__web_asset *a = asset(name);
    const char *base = srv->base_path ? srv->base_path : "";
    kiln__buf out = KILN__BUF_INIT;
    const char *p = (const char *)a->data, *end = p + a->len;
    while (p < end) {
        const char *m = strstr(p, "{{");
        if (!m) {
            kiln__buf_add(&out, p, (size_t)(end - p));
            break;
        }
        kiln__buf_add(&out, p, (size_t)(m - p));
        if (!strncmp(m, "{{BASE}}", 8)) {
            kiln__buf_adds(&out, base);
            p = m + 8;
        } else if (!strncmp(m, "{{ID}}", 6)) {
            kiln__buf_adds(&out, id ? id : "");
            p = m + 6;
        } else {
            kiln__buf_add(&out, m, 2);
            p = m + 2;
        }
    }
    int rc = send_bytes(req, status, reason, "text/html; charset=utf-8", out.buf, out.len);
    kiln__buf_release(&out);
    return rc;
}

static bool id_chars_ok(const char *id)
{
    if (!*id || strlen(id) > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

int kiln__web_handle(kiln__server *srv, h2o_req_t *req, const char *path)
{
    if (!strcmp(path, "/") || !strcmp(path, "/index.html"))
        return send_page(srv, req, 200, "OK", "index.html", NULL);
    if (!strncmp(path, "/builds/", 8)) {
        /* Whether the build exists is the API's to say (it checks who
         * asks); the page only needs an id it can paste. */
        const char *id = path + 8;
        if (!id_chars_ok(id)) {
            static const char msg[] =
                "<!doctype html><title>kiln: no such build</title><p>No such build.";
            return send_bytes(req, 404, "Not Found", "text/html; charset=utf-8", msg,
                              sizeof msg - 1);
        }
        return send_page(srv, req, 200, "OK", "build.html", id);
    }
    if (!strncmp(path, "/static/", 8)) {
        const struct kiln__web_asset *a = asset(path + 8);
        if (!a || strstr(a->name, ".html"))
            return send_bytes(req, 404, "Not Found", "text/plain; charset=utf-8", "not found\n",
                              10);
        return send_bytes(req, 200, "OK", content_type(a->name), (const char *)a->data, a->len);
    }
    return -1;
}
