/* SPDX-License-Identifier: MIT */
/*
 * kiln serve's history in SQLite (WAL): one row per build, from QUEUED to
 * its end, with the report of a finished build; one row per webhook
 * delivery, so that a redelivery starts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "serve.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS builds ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  trigger TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  repo TEXT NOT NULL,"
    "  ref TEXT NOT NULL,"
    "  branch TEXT,"
    "  tag TEXT,"
    "  commit_sha TEXT,"
    "  substitutions TEXT NOT NULL,"   /* JSON array of K=V asked for */
    "  status TEXT NOT NULL,"
    "  status_detail TEXT,"
    "  create_us INTEGER NOT NULL,"
    "  start_us INTEGER,"
    "  finish_us INTEGER,"
    "  report TEXT"                    /* the JSON report, once finished */
    ");"
    "CREATE INDEX IF NOT EXISTS builds_status ON builds(status);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  id TEXT PRIMARY KEY,"
    "  event TEXT,"
    "  received_us INTEGER NOT NULL"
    ");"
    /* A scheduled trigger's last run (UTC seconds), for the run missed
     * while the server was down. */
    "CREATE TABLE IF NOT EXISTS schedules ("
    "  trigger TEXT PRIMARY KEY,"
    "  last_run INTEGER NOT NULL"
    ");";

int kiln__db_open(kiln__server *srv, const char *path, kiln__buf *err)
{
    if (sqlite3_open_v2(path, &srv->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        kiln__buf_addf(err, "cannot open '%s': %s", path, srv->db ? sqlite3_errmsg(srv->db) : "no memory");
        sqlite3_close(srv->db);
        srv->db = NULL;
        return KILN_EIO;
    }
    sqlite3_busy_timeout(srv->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(srv->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) !=
            SQLITE_OK ||
        sqlite3_exec(srv->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        kiln__buf_addf(err, "'%s': %s", path, msg ? msg : sqlite3_errmsg(srv->db));
        sqlite3_free(msg);
        sqlite3_close(srv->db);
        srv->db = NULL;
        return KILN_EIO;
    }
    return 0;
}

void kiln__db_close(kiln__server *srv)
{
    if (srv->db)
        sqlite3_close(srv->db);
    srv->db = NULL;
}

static sqlite3_stmt *prep(kiln__server *srv, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(srv->db, sql, -1, &st, NULL) != SQLITE_OK) {
        kiln__serve_log("error: sqlite: %s (%s)", sqlite3_errmsg(srv->db), sql);
        return NULL;
    }
    return st;
}

static int step_done(kiln__server *srv, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        kiln__serve_log("error: sqlite: %s", sqlite3_errmsg(srv->db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : KILN_EIO;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

int kiln__db_add(kiln__server *srv, kiln__job *j, const char *source)
{
    sqlite3_stmt *st = prep(srv, "INSERT INTO builds (id, trigger, source, repo, ref, branch, tag, "
                                 "commit_sha, substitutions, status, create_us) "
                                 "VALUES (?,?,?,?,?,?,?,?,?,'QUEUED',?)");
    if (!st)
        return KILN_EIO;
    cJSON *subs = cJSON_CreateArray();
    for (size_t i = 0; i < j->n_substs; i++)
        cJSON_AddItemToArray(subs, cJSON_CreateString(j->substs[i]));
    char *subs_text = cJSON_PrintUnformatted(subs);
    cJSON_Delete(subs);
    bool tag = !strncmp(j->ref, "refs/tags/", 10);
    const char *name = tag ? j->ref + 10 : !strncmp(j->ref, "refs/heads/", 11) ? j->ref + 11 : NULL;
    bind_text(st, 1, j->id);
    bind_text(st, 2, j->trigger);
    bind_text(st, 3, source);
    bind_text(st, 4, j->repo);
    bind_text(st, 5, j->ref);
    bind_text(st, 6, tag ? NULL : name);
    bind_text(st, 7, tag ? name : NULL);
    bind_text(st, 8, j->commit);
    bind_text(st, 9, subs_text);
    sqlite3_bind_int64(st, 10, kiln__now_us());
    cJSON_free(subs_text);
    int rc = step_done(srv, st);
    if (!rc)
        j->seq = sqlite3_last_insert_rowid(srv->db);
    return rc;
}

void kiln__db_started(kiln__server *srv, const kiln__job *j)
{
    sqlite3_stmt *st = prep(srv, "UPDATE builds SET status='WORKING', start_us=? WHERE id=?");
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, kiln__now_us());
    bind_text(st, 2, j->id);
    step_done(srv, st);
}

void kiln__db_commit(kiln__server *srv, const kiln__job *j, const char *commit)
{
    sqlite3_stmt *st = prep(srv, "UPDATE builds SET commit_sha=? WHERE id=?");
    if (!st)
        return;
    bind_text(st, 1, commit);
    bind_text(st, 2, j->id);
    step_done(srv, st);
}

void kiln__db_finished(kiln__server *srv, const char *id, const char *status, const char *reason,
                       const char *report_json)
{
    sqlite3_stmt *st = prep(srv, "UPDATE builds SET status=?, status_detail=?, finish_us=?, report=? "
                                 "WHERE id=?");
    if (!st)
        return;
    bind_text(st, 1, status);
    bind_text(st, 2, reason);
    sqlite3_bind_int64(st, 3, kiln__now_us());
    bind_text(st, 4, report_json);
    bind_text(st, 5, id);
    step_done(srv, st);
}

int kiln__db_cut_off(kiln__server *srv)
{
    sqlite3_stmt *st = prep(srv, "UPDATE builds SET status='INTERNAL_ERROR', finish_us=?, "
                                 "status_detail='cut off: kiln serve stopped while the build ran' "
                                 "WHERE status='WORKING'");
    if (!st)
        return 0;
    sqlite3_bind_int64(st, 1, kiln__now_us());
    step_done(srv, st);
    return sqlite3_changes(srv->db);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? kiln__xstrdup((const char *)t) : NULL;
}

/* Rows as jobs: the QUEUED ones (id NULL), or the build id. */
static kiln__job *db_jobs(kiln__server *srv, const char *id)
{
    sqlite3_stmt *st = prep(srv, id ? "SELECT seq, id, trigger, repo, ref, commit_sha, substitutions "
                                      "FROM builds WHERE id = ?"
                                    : "SELECT seq, id, trigger, repo, ref, commit_sha, substitutions "
                                      "FROM builds WHERE status='QUEUED' ORDER BY seq");
    if (st && id)
        bind_text(st, 1, id);
    kiln__job *head = NULL, **tail = &head;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        kiln__job *j = kiln__xcalloc(1, sizeof *j);
        j->srv = srv;
        j->seq = sqlite3_column_int64(st, 0);
        snprintf(j->id, sizeof j->id, "%s", (const char *)sqlite3_column_text(st, 1));
        j->trigger = col_dup(st, 2);
        j->repo = col_dup(st, 3);
        j->ref = col_dup(st, 4);
        j->commit = col_dup(st, 5);
        cJSON *subs = cJSON_Parse((const char *)sqlite3_column_text(st, 6));
        cJSON *it;
        cJSON_ArrayForEach(it, subs)
        {
            if (!cJSON_IsString(it))
                continue;
            j->substs = kiln__xrealloc(j->substs, (j->n_substs + 1) * sizeof *j->substs);
            j->substs[j->n_substs++] = kiln__xstrdup(it->valuestring);
        }
        cJSON_Delete(subs);
        *tail = j;
        tail = &j->next;
    }
    sqlite3_finalize(st);
    return head;
}

kiln__job *kiln__db_queued(kiln__server *srv)
{
    return db_jobs(srv, NULL);
}

kiln__job *kiln__db_job(kiln__server *srv, const char *id)
{
    return db_jobs(srv, id);
}

int kiln__db_expired(kiln__server *srv, long keep, int64_t before_us, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    /* Finished builds past the newest `keep` (keep 0: none kept by count),
     * or finished before before_us (0: no age limit). */
    sqlite3_stmt *st = prep(srv, "SELECT id FROM builds WHERE status NOT IN ('QUEUED','WORKING') AND ("
                                 "(?1 > 0 AND seq NOT IN (SELECT seq FROM builds WHERE status NOT IN "
                                 "('QUEUED','WORKING') ORDER BY seq DESC LIMIT ?1)) OR "
                                 "(?2 > 0 AND COALESCE(finish_us, create_us) < ?2))");
    if (!st)
        return KILN_EIO;
    sqlite3_bind_int64(st, 1, keep);
    sqlite3_bind_int64(st, 2, before_us);
    while (sqlite3_step(st) == SQLITE_ROW) {
        *ids = kiln__xrealloc(*ids, (*n + 1) * sizeof **ids);
        (*ids)[(*n)++] = col_dup(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_exec(srv->db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < *n; i++) {
        sqlite3_stmt *d = prep(srv, "DELETE FROM builds WHERE id = ?");
        if (!d)
            break;
        bind_text(d, 1, (*ids)[i]);
        step_done(srv, d);
    }
    sqlite3_exec(srv->db, "COMMIT", NULL, NULL, NULL);
    return 0;
}

const char *kiln__db_status(kiln__server *srv, const char *id, char *buf, size_t cap)
{
    sqlite3_stmt *st = prep(srv, "SELECT status FROM builds WHERE id=?");
    const char *out = NULL;
    bind_text(st, 1, id);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        out = buf;
    }
    sqlite3_finalize(st);
    return out;
}

#define BUILD_COLUMNS                                                                              \
    "seq, id, trigger, source, repo, ref, branch, tag, commit_sha, substitutions, status, "        \
    "status_detail, create_us, start_us, finish_us"

static void add_time(cJSON *o, const char *key, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char t[64];
    kiln__format_time(sqlite3_column_int64(st, i), t, sizeof t);
    cJSON_AddStringToObject(o, key, t);
}

static void add_text(cJSON *o, const char *key, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (t)
        cJSON_AddStringToObject(o, key, (const char *)t);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *row_json(kiln__server *srv, sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();
    const char *id = (const char *)sqlite3_column_text(st, 1);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "seq", (double)sqlite3_column_int64(st, 0));
    add_text(o, "status", st, 10);
    add_text(o, "statusDetail", st, 11);
    add_text(o, "trigger", st, 2);
    add_text(o, "source", st, 3);
    add_text(o, "repo", st, 4);
    add_text(o, "ref", st, 5);
    add_text(o, "branch", st, 6);
    add_text(o, "tag", st, 7);
    add_text(o, "commit", st, 8);
    cJSON *subs = cJSON_AddObjectToObject(o, "substitutions");
    cJSON *arr = cJSON_Parse((const char *)sqlite3_column_text(st, 9));
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *kv = cJSON_IsString(it) ? it->valuestring : NULL;
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (!eq)
            continue;
        char *k = kiln__xstrndup(kv, (size_t)(eq - kv));
        cJSON_AddStringToObject(subs, k, eq + 1);
        free(k);
    }
    cJSON_Delete(arr);
    add_time(o, "createTime", st, 12);
    add_time(o, "startTime", st, 13);
    add_time(o, "finishTime", st, 14);
    char *dir = kiln__xasprintf("%s/builds/%s", srv->data_dir, id);
    cJSON_AddStringToObject(o, "dir", dir);
    free(dir);
    return o;
}

cJSON *kiln__db_list(kiln__server *srv, const char *status, const char *trigger,
                     const char *branch, int64_t cursor, int limit)
{
    sqlite3_stmt *st = prep(srv, "SELECT " BUILD_COLUMNS " FROM builds WHERE "
                                 "(?1 IS NULL OR status=?1) AND (?2 IS NULL OR trigger=?2) AND "
                                 "(?3 IS NULL OR branch=?3) AND (?4 = 0 OR seq < ?4) "
                                 "ORDER BY seq DESC LIMIT ?5");
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "builds");
    if (!st)
        return out;
    bind_text(st, 1, status);
    bind_text(st, 2, trigger);
    bind_text(st, 3, branch);
    sqlite3_bind_int64(st, 4, cursor);
    sqlite3_bind_int(st, 5, limit + 1);
    int n = 0;
    int64_t last = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == limit) {
            char c[32];
            snprintf(c, sizeof c, "%lld", (long long)last);
            cJSON_AddStringToObject(out, "nextCursor", c);
            break;
        }
        cJSON_AddItemToArray(arr, row_json(srv, st));
        last = sqlite3_column_int64(st, 0);
        n++;
    }
    sqlite3_finalize(st);
    return out;
}

cJSON *kiln__db_get(kiln__server *srv, const char *id)
{
    sqlite3_stmt *st = prep(srv, "SELECT " BUILD_COLUMNS ", report FROM builds WHERE id=?");
    if (!st)
        return NULL;
    bind_text(st, 1, id);
    cJSON *o = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        o = row_json(srv, st);
        const unsigned char *rep = sqlite3_column_text(st, 15);
        cJSON *r = rep ? cJSON_Parse((const char *)rep) : NULL;
        cJSON *steps = r ? cJSON_DetachItemFromObject(r, "steps") : NULL;
        cJSON *fin = r ? cJSON_DetachItemFromObject(r, "finally") : NULL;
        cJSON_AddItemToObject(o, "steps", steps ? steps : cJSON_CreateArray());
        if (fin)
            cJSON_AddItemToObject(o, "finally", fin);
        cJSON_Delete(r);
    }
    sqlite3_finalize(st);
    return o;
}

int kiln__db_forget_deliveries(kiln__server *srv, int64_t before_us)
{
    sqlite3_stmt *st = prep(srv, "DELETE FROM deliveries WHERE received_us < ?");
    if (!st)
        return KILN_EIO;
    sqlite3_bind_int64(st, 1, before_us);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(srv->db) : KILN_EIO;
}

int kiln__db_delivery_seen(kiln__server *srv, const char *delivery, const char *event)
{
    sqlite3_stmt *st = prep(srv, "INSERT OR IGNORE INTO deliveries (id, event, received_us) VALUES (?,?,?)");
    if (!st)
        return 0;
    bind_text(st, 1, delivery);
    bind_text(st, 2, event);
    sqlite3_bind_int64(st, 3, kiln__now_us());
    step_done(srv, st);
    return sqlite3_changes(srv->db) == 0 ? 1 : 0;
}

void kiln__db_metrics(kiln__server *srv, kiln__buf *out)
{
    sqlite3_stmt *st = prep(srv, "SELECT status, COUNT(*) FROM builds GROUP BY status ORDER BY status");
    kiln__buf_adds(out, "# HELP kiln_builds Builds in the history, by status.\n"
                        "# TYPE kiln_builds gauge\n");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        kiln__buf_addf(out, "kiln_builds{status=\"%s\"} %lld\n", (const char *)sqlite3_column_text(st, 0),
                       (long long)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    st = prep(srv, "SELECT COUNT(*) FROM deliveries");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        kiln__buf_addf(out, "# HELP kiln_webhook_deliveries Webhook deliveries remembered.\n"
                            "# TYPE kiln_webhook_deliveries gauge\n"
                            "kiln_webhook_deliveries %lld\n", (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    /* How long finished builds took, as a Prometheus histogram (cumulative
     * buckets, seconds), from the history at scrape time. */
    static const int bounds[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
    enum { NB = sizeof bounds / sizeof bounds[0] };
    st = prep(srv, "SELECT (finish_us - start_us) / 1e6 FROM builds "
                   "WHERE start_us IS NOT NULL AND finish_us IS NOT NULL AND finish_us >= start_us");
    long long le[NB] = {0}, count = 0;
    double sum = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        double secs = sqlite3_column_double(st, 0);
        sum += secs;
        count++;
        for (int i = 0; i < NB; i++)
            le[i] += secs <= bounds[i];
    }
    sqlite3_finalize(st);
    kiln__buf_adds(out, "# HELP kiln_build_duration_seconds How long finished builds ran.\n"
                        "# TYPE kiln_build_duration_seconds histogram\n");
    for (int i = 0; i < NB; i++)
        kiln__buf_addf(out, "kiln_build_duration_seconds_bucket{le=\"%d\"} %lld\n", bounds[i], le[i]);
    kiln__buf_addf(out, "kiln_build_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
                        "kiln_build_duration_seconds_sum %.3f\n"
                        "kiln_build_duration_seconds_count %lld\n", count, sum, count);
    /* SQLite's own heap (its page cache, up to 2 MiB by default, fills as
     * the history grows): what bench/serve.sh tells apart from a leak. */
    kiln__buf_addf(out, "# HELP kiln_sqlite_memory_bytes Memory SQLite holds (page cache included).\n"
                        "# TYPE kiln_sqlite_memory_bytes gauge\n"
                        "kiln_sqlite_memory_bytes %lld\n", (long long)sqlite3_memory_used());
}

int64_t kiln__db_sched_last(kiln__server *srv, const char *trigger)
{
    sqlite3_stmt *st = prep(srv, "SELECT last_run FROM schedules WHERE trigger = ?");
    if (!st)
        return -1;
    bind_text(st, 1, trigger);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

void kiln__db_sched_set(kiln__server *srv, const char *trigger, int64_t last_run)
{
    sqlite3_stmt *st = prep(srv, "INSERT INTO schedules (trigger, last_run) VALUES (?, ?) "
                                 "ON CONFLICT(trigger) DO UPDATE SET last_run = excluded.last_run");
    if (!st)
        return;
    bind_text(st, 1, trigger);
    sqlite3_bind_int64(st, 2, last_run);
    step_done(srv, st);
}
