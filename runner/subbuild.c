/* SPDX-License-Identifier: MIT */
/*
 * Sub-builds: kiln_api->build_submit(). A step (submit-sub-build) starts
 * another pipeline as a child build on the same engine: same loop, same
 * sinks, its records tagged with its own build id and depth. The child is
 * loaded, resolved and checked exactly as `kiln run` does, but as a manual
 * build in Cloud Build's sense (triggered = false: MUST_MATCH unless the file
 * says ALLOW_LOOSE, no dynamic substitutions unless the file enables them).
 *
 * Ownership: the child belongs to the step that started it (rstep.children)
 * and is destroyed with the parent build, after the report was written. It
 * owns its pipeline and substitutions.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "resolve.h"

void kiln__new_build_id(char *out, size_t cap)
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

/* Each diagnostic line becomes a SYSTEM record of the submitting step. */
static void log_diag(kiln__rstep *s, const kiln__buf *text)
{
    char *copy = kiln__xstrdup(text->buf), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        kiln_log_level lvl = strstr(line, ": error: ")     ? KILN_LOG_ERROR
                             : strstr(line, ": warning: ") ? KILN_LOG_WARN
                                                           : KILN_LOG_INFO;
        kiln__sys_log(s->b, s, lvl, "%s", line);
    }
    free(copy);
}

static void on_child_end(kiln__build *child, void *data)
{
    kiln__rstep *s = child->parent_step;
    if (!child->waited || !child->cb)
        return;
    /* Contract rule 4: no callback once the step has ended. */
    if (s->status != KILN_STATUS_WORKING || s->done_called)
        return;
    kiln_build_result res = {child->id, child->status, child->fail_reason};
    kiln_build_cb cb = child->cb;
    child->cb = NULL;
    cb(s, child->cb_data, &res);
}

/* "a -> b -> c": the pipelines from the top build down to b. */
static void chain(const kiln__build *b, kiln__buf *out)
{
    if (b->parent) {
        chain(b->parent, out);
        kiln__buf_adds(out, " -> ");
    }
    kiln__buf_adds(out, b->p->file);
}

int kiln__build_submit(kiln__rstep *s, const kiln_build_req *req, kiln_build_cb cb, void *data,
                       const char **build_id)
{
    if (!req || !req->config || !req->workspace || s->status != KILN_STATUS_WORKING || s->done_called)
        return KILN_EINVAL;
    if (req->wait && !cb)
        return KILN_EINVAL;
    kiln__build *pb = s->b;
    kiln__engine *eng = pb->eng;
    char *file = req->config[0] == '/' ? kiln__xstrdup(req->config)
                                       : kiln__xasprintf("%s/%s", req->workspace, req->config);
    if (pb->depth + 1 > KILN__MAX_BUILD_DEPTH) {
        kiln__buf c = KILN__BUF_INIT;
        chain(pb, &c);
        kiln__sys_log(pb, s, KILN_LOG_ERROR,
                      "sub-build of %s refused: sub-builds nest at most %d deep (does a pipeline "
                      "submit itself?); chain: %s -> %s",
                      file, KILN__MAX_BUILD_DEPTH, c.buf, file);
        kiln__buf_release(&c);
        free(file);
        return KILN_ELIMIT;
    }

    char id[40];
    kiln__new_build_id(id, sizeof id);
    kiln__pipeline *p = kiln__xcalloc(1, sizeof *p);
    kiln__subst *subst = NULL;
    kiln__diag d;
    kiln__diag_init(&d);
    int rc = kiln__pipeline_load(p, file, &d);
    if (rc == 0) {
        size_t n = 0;
        while (req->substitutions && req->substitutions[n])
            n++;
        const char *project = kiln__subst_get(pb->subst, "PROJECT_ID");
        kiln__resolve_opts ro = {req->substitutions, n, req->workspace, id, project, false};
        kiln__resolve_subst(p, &ro, &d, &subst);
        if (!d.errors || p->n_steps)
            kiln__resolve_check(p, subst, &eng->reg, &d);
    }
    if (d.text.len)
        log_diag(s, &d.text);
    int errors = d.errors;
    kiln__diag_release(&d);
    if (rc || errors) {
        kiln__sys_log(pb, s, KILN_LOG_ERROR, "sub-build %s: %d error%s; it was not started", file,
                      errors ? errors : 1, errors == 1 ? "" : "s");
        if (subst)
            kiln__subst_destroy(subst);
        kiln__pipeline_free(p);
        free(p);
        free(file);
        return KILN_ECONFIG;
    }

    kiln__build *child = NULL;
    kiln__buf err = KILN__BUF_INIT;
    rc = kiln__build_create(eng, p, subst, req->workspace, NULL, &err, &child);
    if (rc) {
        kiln__sys_log(pb, s, KILN_LOG_ERROR, "sub-build %s: %s", file, err.buf);
        kiln__buf_release(&err);
        kiln__subst_destroy(subst);
        kiln__pipeline_free(p);
        free(p);
        free(file);
        return rc;
    }
    kiln__buf_release(&err);
    free(file);
    child->parent = pb;
    child->depth = pb->depth + 1;
    child->parent_step = s;
    child->owns_pipeline = true;
    child->waited = req->wait;
    child->cb = req->wait ? cb : NULL;
    child->cb_data = data;
    child->on_end = on_child_end;
    s->children = kiln__xrealloc(s->children, (s->n_children + 1) * sizeof *s->children);
    s->children[s->n_children++] = child;
    kiln__sys_log(pb, s, KILN_LOG_INFO, "sub-build %s: %s (%zu step%s)%s", child->id, p->file,
                  p->n_steps, p->n_steps == 1 ? "" : "s", req->wait ? "" : ", not waited for");
    kiln__build_start(child);
    if (build_id)
        *build_id = child->id;
    return 0;
}
