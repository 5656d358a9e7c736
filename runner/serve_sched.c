/* SPDX-License-Identifier: MIT */
/*
 * kiln serve: the triggers' schedules (cron.h).
 *
 * A timer looks at the clock every second (every 50 ms on the test clock)
 * and queues the build of each scheduled trigger whose next minute has
 * come, once, however many minutes were skipped (the clock jumped, the
 * machine slept). Its last run is kept in the history (schedules table):
 * at startup, a run that fell while kiln serve was down starts once, now.
 *
 * What a scheduled build builds: the branch (or tag) its trigger names,
 * which must then be a literal (^master$; kiln__sched_check() makes a
 * pattern an error of the triggers file, as Cloud Build runs a scheduled
 * trigger on one branch), in the repository its repo: names by path or URL
 * (or by name under --repos DIR).
 *
 * The test clock: when $KILN_TEST_CLOCK names a file, "now" is what it
 * holds (seconds since the epoch, or 2026-12-07T03:00:00Z), read at each
 * look; tests move time by rewriting the file.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

#define TICK_MS 1000
#define TEST_TICK_MS 50

typedef struct sched_entry {
    const kiln__trigger *t;
    kiln__tz tz;
    char *repo;                 /* where to fetch from */
    char *ref;                  /* refs/heads/B or refs/tags/T */
    int64_t next;               /* UTC seconds, -1: never */
} sched_entry;

typedef struct sched {
    uv_timer_t timer;
    sched_entry *v;
    size_t n;
    bool test_clock;
    bool clock_warned;
    int64_t retention_hour;     /* the serve clock's hour retention last ran in */
} sched;

static bool read_clock(const char *path, int64_t *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[64] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    char *end;
    long long v = strtoll(line, &end, 10);
    if (end != line && (*end == '\0' || isspace((unsigned char)*end)) && !strchr(line, '-')) {
        *out = v;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = sscanf(line, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    if (n < 5)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return true;
}

int64_t kiln__serve_clock(void)
{
    const char *path = getenv("KILN_TEST_CLOCK");
    int64_t t;
    if (path && *path && read_clock(path, &t))
        return t;
    return (int64_t)time(NULL);
}

/* "2026-12-07 03:00 Europe/Paris" */
static void local_time(const kiln__tz *tz, int64_t t, char *out, size_t cap)
{
    time_t lt = (time_t)(t + kiln__tz_offset(tz, t));
    struct tm tm;
    if (t < 0 || !gmtime_r(&lt, &tm)) {
        snprintf(out, cap, "never");
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02d %02d:%02d %s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tz->name);
}

/* The literal name in ^name$ (or name), or NULL when the regex matches
 * more than one. */
static char *literal(const char *re)
{
    if (!re)
        return NULL;
    size_t n = strlen(re);
    const char *b = re, *e = re + n;
    if (*b == '^')
        b++;
    if (e > b && e[-1] == '$')
        e--;
    char *out = kiln__xcalloc(1, (size_t)(e - b) + 1);
    size_t k = 0;
    for (const char *p = b; p < e; p++) {
        if (*p == '\\' && p + 1 < e && strchr(".-/+", p[1])) {
            out[k++] = *++p;
        } else if (isalnum((unsigned char)*p) || strchr("_-/", *p)) {
            out[k++] = *p;
        } else {
            free(out);
            return NULL;
        }
    }
    if (!k) {
        free(out);
        return NULL;
    }
    return out;
}

int kiln__sched_check(const kiln__triggers *ts, kiln__diag *d)
{
    int bad = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const kiln__trigger *t = &ts->v[i];
        if (!t->schedule || t->disabled)
            continue;
        const char *re = t->branch ? t->branch : t->tag;
        char *name = literal(re);
        if (!name) {
            const kiln__ynode *at = kiln__ymap_get(t->node, t->branch ? "branch" : t->tag ? "tag" : "schedule");
            if (re)
                kiln__diag_at(d, KILN__DIAG_ERROR, ts->file, at ? at : t->node,
                              "trigger '%s': a schedule builds one %s, but '%s' is a pattern; give it "
                              "literally, such as ^main$ (one trigger per %s to build)",
                              t->name, t->branch ? "branch" : "tag", re, t->branch ? "branch" : "tag");
            else
                kiln__diag_at(d, KILN__DIAG_ERROR, ts->file, at ? at : t->node,
                              "trigger '%s': a schedule needs the branch (or tag) to build: add "
                              "branch: ^main$ (or the branch to build)",
                              t->name);
            bad++;
        }
        free(name);
    }
    return bad;
}

static void run_one(kiln__server *srv, sched_entry *e, int64_t due, const char *how)
{
    char when[160];
    local_time(&e->tz, due, when, sizeof when);
    kiln__buf why = KILN__BUF_INIT;
    kiln__job *j = kiln__serve_submit(srv, e->t, e->repo, e->ref, NULL, NULL, 0, "schedule", &why);
    if (j)
        kiln__serve_log("schedule: trigger %s, %s run of %s: build %s", e->t->name, how, when, j->id);
    else
        kiln__serve_log("schedule: trigger %s, %s run of %s: not started: %s", e->t->name, how, when,
                        why.buf ? why.buf : "?");
    kiln__buf_release(&why);
}

static void on_tick(uv_timer_t *timer)
{
    kiln__server *srv = timer->data;
    sched *s = srv->sched;
    if (srv->stopping)
        return;
    const char *path = getenv("KILN_TEST_CLOCK");
    int64_t now;
    if (s->test_clock && !read_clock(path, &now)) {
        if (!s->clock_warned)
            kiln__serve_log("warning: KILN_TEST_CLOCK '%s' holds no time: the schedules wait", path);
        s->clock_warned = true;
        return;
    }
    if (!s->test_clock)
        now = (int64_t)time(NULL);
    if (now / 3600 != s->retention_hour) {
        /* --keep-days and the deliveries age while the server idles. */
        s->retention_hour = now / 3600;
        kiln__serve_retention(srv);
    }
    for (size_t i = 0; i < s->n; i++) {
        sched_entry *e = &s->v[i];
        if (e->next < 0 || now < e->next)
            continue;
        run_one(srv, e, e->next, "scheduled");
        kiln__db_sched_set(srv, e->t->name, now);
        e->next = kiln__cron_next(&e->t->cron, &e->tz, now);
        char when[160];
        local_time(&e->tz, e->next, when, sizeof when);
        kiln__serve_log("schedule: trigger %s: next run %s", e->t->name, when);
    }
}

int kiln__sched_start(kiln__server *srv)
{
    sched *s = kiln__xcalloc(1, sizeof *s);
    srv->sched = s;
    const char *path = getenv("KILN_TEST_CLOCK");
    s->test_clock = path && *path;
    int64_t now = kiln__serve_clock();
    s->retention_hour = now / 3600; /* retention ran at startup */
    s->v = kiln__xcalloc(srv->triggers.n ? srv->triggers.n : 1, sizeof *s->v);
    for (size_t i = 0; i < srv->triggers.n; i++) {
        const kiln__trigger *t = &srv->triggers.v[i];
        if (!t->schedule || t->disabled)
            continue;
        sched_entry *e = &s->v[s->n];
        char why[320];
        if (kiln__tz_load(&e->tz, t->time_zone, why, sizeof why) != 0) {
            kiln__serve_log("error: schedule: trigger %s: %s", t->name, why);
            continue;
        }
        char *name = literal(t->branch ? t->branch : t->tag);
        e->repo = kiln__serve_trigger_source(srv, t);
        if (!name || !e->repo) {
            kiln__serve_log("error: schedule: trigger %s is not scheduled: %s", t->name,
                            !name ? "a scheduled build needs the branch (or tag) to build: give a "
                                    "literal branch such as ^main$"
                                  : "its repo names no repository kiln serve can fetch from (give "
                                    "a path or URL, or --repos DIR)");
            free(name);
            free(e->repo);
            kiln__tz_free(&e->tz);
            continue;
        }
        e->ref = kiln__xasprintf("refs/%s/%s", t->branch ? "heads" : "tags", name);
        free(name);
        e->t = t;
        s->n++;
        int64_t last = kiln__db_sched_last(srv, t->name);
        if (last < 0) {
            kiln__db_sched_set(srv, t->name, now); /* first start: nothing was missed */
        } else {
            int64_t missed = kiln__cron_next(&t->cron, &e->tz, last);
            if (missed >= 0 && missed <= now) {
                run_one(srv, e, missed, "missed (kiln serve was down)");
                kiln__db_sched_set(srv, t->name, now);
            }
        }
        e->next = kiln__cron_next(&t->cron, &e->tz, now);
        char when[160];
        local_time(&e->tz, e->next, when, sizeof when);
        kiln__serve_log("schedule: trigger %s (%s): next run %s", t->name, t->schedule, when);
    }
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = srv;
    uint64_t every = s->test_clock ? TEST_TICK_MS : TICK_MS;
    uv_timer_start(&s->timer, on_tick, every, every);
    return 0;
}

int64_t kiln__sched_next(const kiln__server *srv, const char *name)
{
    const sched *s = srv->sched;
    for (size_t i = 0; s && i < s->n; i++)
        if (!strcmp(s->v[i].t->name, name))
            return s->v[i].next;
    return -1;
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

void kiln__sched_stop(kiln__server *srv)
{
    sched *s = srv->sched;
    if (s && !uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

void kiln__sched_free(kiln__server *srv)
{
    sched *s = srv->sched;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        kiln__tz_free(&s->v[i].tz);
        free(s->v[i].repo);
        free(s->v[i].ref);
    }
    free(s->v);
    free(s);
    srv->sched = NULL;
}
