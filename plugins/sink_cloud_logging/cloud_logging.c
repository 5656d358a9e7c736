/* SPDX-License-Identifier: MIT */
/*
 * cloud-logging: every log record to Google Cloud Logging's entries:write
 * (../shared/reference/cloudbuild.md §5.3), as Cloud Build writes its own:
 * logName projects/P/logs/cloudbuild, resource type "build" with build_id
 * and project_id, labels step_id and stream, textPayload, severity (stdout
 * INFO, stderr WARNING unless stderr_severity says otherwise), timestamp
 * with nanoseconds, insertId "BATCH-INDEX" (Cloud Logging drops an entry
 * whose insertId and timestamp it has already seen: a retried batch is not
 * shown twice). A line over 256 KiB (Cloud Logging's entry limit) becomes
 * several entries linked by `split` {uid, index, totalSplits}.
 *
 * Batching, retries and backpressure are the host's shipping core (ABI
 * 1.7); this file is the encoder and the credentials. Access token, first
 * that applies: `token` (a secret), $GOOGLE_OAUTH_ACCESS_TOKEN, a
 * service-account key file (`key_file` or $GOOGLE_APPLICATION_CREDENTIALS;
 * a JWT signed with its key, exchanged, refreshed 5 minutes before it
 * expires), the metadata server. Until the first token is there the core
 * holds the batches (ship_hold); a token that cannot be had is said once,
 * and the receiver's 401 then fails the batches with its message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kiln/kiln.h>

#include "../common/log_severity.h"
#include "../common/ship_json.h"
#include "gauth.h"

KILN_API_DEFINE;

#define ENTRY_MAX 256000 /* bytes of textPayload per entry, under the 256 KiB limit */
#define SCOPE "https://www.googleapis.com/auth/logging.write"

static const char *const severities[] = {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING",
                                         "ERROR", "CRITICAL", NULL};

struct cl_config {
    kiln_ship_conf ship;
    const char *project;
    const char *log_id;
    const char *resource_type;
    int stderr_severity;
    const char *token;
    const char *key_file;
    bool gzip;
};

static const kiln_option cl_options[] = {
    KILN_SHIP_OPTIONS(struct cl_config, ship, "https://logging.googleapis.com/v2/entries:write", 1000,
                      1000, 8388608, 9437184),
    {KILN_OPT_STRING, "project", NULL, 0, offsetof(struct cl_config, project), 0, -1, NULL,
     "Project to write to; default the build's PROJECT_ID, else $GOOGLE_CLOUD_PROJECT."},
    {KILN_OPT_STRING, "log_id", "cloudbuild", 0, offsetof(struct cl_config, log_id), 0, -1, NULL,
     "The log: projects/PROJECT/logs/LOG_ID."},
    {KILN_OPT_STRING, "resource_type", "build", 0, offsetof(struct cl_config, resource_type), 0, -1,
     NULL, "Monitored resource type (labels build_id, project_id); 'global' also works."},
    {KILN_OPT_ENUM, "stderr_severity", "WARNING", 0, offsetof(struct cl_config, stderr_severity), 0,
     -1, severities, "Severity of the lines steps print on stderr."},
    {KILN_OPT_STRING, "token", NULL, KILN_OPT_SECRET, offsetof(struct cl_config, token), 0, -1, NULL,
     "OAuth access token; default $GOOGLE_OAUTH_ACCESS_TOKEN, a key file, the metadata server."},
    {KILN_OPT_STRING, "key_file", NULL, 0, offsetof(struct cl_config, key_file), 0, -1, NULL,
     "Service-account key file; default $GOOGLE_APPLICATION_CREDENTIALS."},
    {KILN_OPT_BOOL, "gzip", "false", 0, offsetof(struct cl_config, gzip), 0, -1, NULL,
     "Compress request bodies (Content-Encoding: gzip)."},
    KILN_OPTIONS_END,
};

struct cl {
    kiln_sink *sink;
    kiln_ship *ship;
    char *project, *log_name, *resource_type, *key_file;
    const char *stderr_sev;
    /* credentials fetched on a worker */
    bool fetching, refreshable, closed;
    time_t expires;
    gauth_result job;
    time_t tsec;
    char tbase[32];
};

/* ---- encoding ------------------------------------------------------------ */

static void add_time(struct cl *c, sj_buf *b, int64_t us)
{
    time_t sec = (time_t)(us / 1000000);
    if (sec != c->tsec || !c->tbase[0]) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(c->tbase, sizeof c->tbase, "%Y-%m-%dT%H:%M:%S", &tm);
        c->tsec = sec;
    }
    char t[12];
    unsigned frac = (unsigned)(us % 1000000);
    for (int k = 5; k >= 0; k--, frac /= 10)
        t[k] = (char)('0' + frac % 10);
    memcpy(t + 6, "000Z\"", 5);
    sj_add(b, "\"", 1);
    sj_adds(b, c->tbase);
    sj_add(b, ".", 1);
    sj_add(b, t, 11);
}

static const char *severity_of(struct cl *c, const kiln_ship_rec *r)
{
    if (r->stream == KILN_STREAM_STDERR)
        return c->stderr_sev;
    return kp_severity_name(r->severity);
}

/* Where a piece of at most ENTRY_MAX bytes may end: not inside a UTF-8
 * sequence. */
static size_t piece_end(const char *s, size_t start, size_t len)
{
    size_t end = start + ENTRY_MAX;
    if (end >= len)
        return len;
    size_t e = end;
    while (e > start + ENTRY_MAX - 4 && ((unsigned char)s[e] & 0xC0) == 0x80)
        e--;
    return e > start ? e : end;
}

static void add_resource(struct cl *c, sj_buf *b, const char *build_id)
{
    sj_adds(b, "\"resource\":{\"type\":");
    sj_strz(b, c->resource_type);
    sj_adds(b, ",\"labels\":{\"build_id\":");
    sj_strz(b, build_id);
    sj_adds(b, ",\"project_id\":");
    sj_strz(b, c->project);
    sj_adds(b, "}}");
}

/* An entry; its resource only when its build is not the request's (a
 * sub-build's line): entries:write gives the others the request's. */
static void add_entry(struct cl *c, sj_buf *b, const kiln_ship_rec *r, const char *id,
                      const char *text, size_t len, size_t split_index, size_t splits,
                      const char *req_build)
{
    sj_adds(b, "{\"timestamp\":");
    add_time(c, b, r->time_us);
    sj_adds(b, ",\"severity\":\"");
    sj_adds(b, severity_of(c, r));
    sj_adds(b, "\",\"textPayload\":");
    sj_string(b, text, len);
    if (strcmp(r->build_id, req_build)) {
        sj_adds(b, ",");
        add_resource(c, b, r->build_id);
    }
    sj_adds(b, ",\"labels\":{");
    if (r->step_id) {
        sj_adds(b, "\"step_id\":");
        sj_strz(b, r->step_id);
        sj_adds(b, ",");
    }
    sj_adds(b, "\"stream\":\"");
    sj_adds(b, r->stream == KILN_STREAM_STDOUT ? "stdout" : r->stream == KILN_STREAM_STDERR ? "stderr" : "system");
    sj_adds(b, "\",\"seq\":\"");
    sj_u64(b, r->seq);
    sj_adds(b, "\"");
    if (r->partial)
        sj_adds(b, ",\"partial\":\"true\"");
    sj_adds(b, "},\"insertId\":");
    if (splits > 1) {
        char sid[128];
        snprintf(sid, sizeof sid, "%s-%zu", id, split_index);
        sj_strz(b, sid);
        sj_adds(b, ",\"split\":{\"uid\":");
        sj_strz(b, id);
        snprintf(sid, sizeof sid, ",\"index\":%zu,\"totalSplits\":%zu}", split_index, splits);
        sj_adds(b, sid);
    } else {
        sj_strz(b, id);
    }
    sj_adds(b, "}");
}

static void start_refresh(struct cl *c);

static int cl_encode(void *data, const kiln_ship_batch *kb, char **body, size_t *len)
{
    struct cl *c = data;
    if (c->refreshable && !c->fetching && time(NULL) > c->expires - 300)
        start_refresh(c); /* this batch still goes with the current token */
    sj_buf b = {0};
    /* About 300 bytes of JSON an entry besides its text: one allocation
     * for most batches (bench/ship.sh). */
    sj_reserve(&b, kb->bytes + kb->n * 320 + 1024);
    /* The request's resource: the first record's build (most batches hold
     * one build's lines); a third of each entry's bytes otherwise. */
    const char *req_build = kb->n ? kb->recs[0].build_id : "";
    sj_adds(&b, "{\"logName\":");
    sj_strz(&b, c->log_name);
    if (kb->n) {
        sj_adds(&b, ",");
        add_resource(c, &b, req_build);
    }
    sj_adds(&b, ",\"entries\":[");
    for (size_t i = 0; i < kb->n; i++) {
        const kiln_ship_rec *r = &kb->recs[i];
        char id[80];
        snprintf(id, sizeof id, "%s-%zu", kb->id, i);
        size_t splits = 0;
        for (size_t p = 0;;) {
            p = piece_end(r->text, p, r->len);
            splits++;
            if (p >= r->len)
                break;
        }
        size_t p = 0;
        for (size_t k = 0; k < splits; k++) {
            size_t e = piece_end(r->text, p, r->len);
            if (i || k)
                sj_adds(&b, ",");
            add_entry(c, &b, r, id, r->text + p, e - p, k, splits, req_build);
            p = e;
        }
    }
    sj_adds(&b, "]}");
    *body = b.data;
    *len = b.len;
    return 0;
}

/* ---- credentials ------------------------------------------------------------ */

static void fetch_work(void *data)
{
    struct cl *c = data;
    gauth_fetch(c->key_file, SCOPE, &c->job);
}

static void set_token(struct cl *c, const char *token)
{
    size_t n = strlen(token) + 32;
    char *h = malloc(n);
    if (!h)
        return;
    snprintf(h, n, "Authorization: Bearer %s", token);
    kiln_api->ship_set_header(c->ship, h);
    free(h);
}

static void free_cl(struct cl *c)
{
    free(c->project);
    free(c->log_name);
    free(c->resource_type);
    free(c->key_file);
    free(c->job.token);
    free(c->job.error);
    free(c);
}

static void fetch_done(void *data, int err)
{
    struct cl *c = data;
    c->fetching = false;
    if (c->closed) { /* the ship closed meanwhile: nothing to give it to */
        free_cl(c);
        return;
    }
    if (c->job.token) {
        set_token(c, c->job.token);
        c->expires = time(NULL) + (time_t)c->job.expires_in;
    } else {
        kiln_error(c->sink, "cloud-logging: no access token: %s",
                   c->job.error ? c->job.error : "unknown error");
        c->refreshable = false; /* said once; the receiver's 401 tells the rest */
    }
    free(c->job.token);
    free(c->job.error);
    memset(&c->job, 0, sizeof c->job);
    kiln_api->ship_hold(c->ship, false);
}

static void start_refresh(struct cl *c)
{
    c->fetching = true;
    if (kiln_api->queue_work(KILN_OBJ(c->sink), fetch_work, fetch_done, c) != 0) {
        c->fetching = false;
        kiln_api->ship_hold(c->ship, false);
    }
}

/* ---- the sink ------------------------------------------------------------------ */

static void cl_closed(void *data)
{
    struct cl *c = data;
    if (c->fetching)
        c->closed = true; /* fetch_done frees it */
    else
        free_cl(c);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int cl_open(kiln_sink *sink, const void *config, void *plugin_data)
{
    const struct cl_config *cf = config;
    if (!KILN_API_HAS(kiln_api, ship_hold)) {
        kiln_error(sink, "cloud-logging: this kiln has no shipping core (needs ABI 1.7)");
        return KILN_EABI;
    }
    const char *project = cf->project;
    if (!project || !*project)
        project = kiln_api->subst_get(NULL, "PROJECT_ID");
    if (!project || !*project)
        project = getenv("GOOGLE_CLOUD_PROJECT");
    if (!project || !*project) {
        kiln_error(sink, "cloud-logging: no project: give project=P, or set PROJECT_ID or GOOGLE_CLOUD_PROJECT");
        return KILN_ECONFIG;
    }
    struct cl *c = calloc(1, sizeof *c);
    if (!c)
        return KILN_ENOMEM;
    c->sink = sink;
    c->project = strdup(project);
    c->resource_type = strdup(cf->resource_type);
    c->stderr_sev = severities[cf->stderr_severity];
    /* The log id is URL-encoded in logName ("runner/build" -> runner%2Fbuild). */
    sj_buf ln = {0};
    sj_adds(&ln, "projects/");
    sj_adds(&ln, project);
    sj_adds(&ln, "/logs/");
    for (const char *p = cf->log_id; *p; p++) {
        char e[4];
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.", *p)) {
            sj_add(&ln, p, 1);
        } else {
            snprintf(e, sizeof e, "%%%02X", (unsigned char)*p);
            sj_adds(&ln, e);
        }
    }
    c->log_name = ln.data;
    const char *token = cf->token && *cf->token ? cf->token : getenv("GOOGLE_OAUTH_ACCESS_TOKEN");
    c->key_file = dup_or_null(cf->key_file ? cf->key_file : getenv("GOOGLE_APPLICATION_CREDENTIALS"));
    if (!c->project || !c->resource_type || !c->log_name) {
        free_cl(c);
        return KILN_ENOMEM;
    }
    kiln_ship_opts so = {
        .struct_size = sizeof so,
        .url = cf->ship.endpoint,
        .gzip = cf->gzip,
        .batch_records = cf->ship.batch_records,
        .batch_bytes = cf->ship.batch_bytes,
        .batch_delay_ms = cf->ship.batch_delay_ms,
        .memory = cf->ship.memory,
        .timeout_ms = cf->ship.timeout_ms,
        .encode = cl_encode,
        .data = c,
        .on_closed = cl_closed,
    };
    int rc = kiln_api->ship_open(sink, &so, &c->ship);
    if (rc) {
        free_cl(c);
        return rc;
    }
    kiln_api->sink_set_data(sink, c);
    if (token && *token) {
        set_token(c, token);
    } else {
        /* A key file or the metadata server: nothing is sent before the
         * first token (or the news that there is none). */
        c->refreshable = true;
        kiln_api->ship_hold(c->ship, true);
        start_refresh(c);
    }
    return 0;
}

static int cl_write(kiln_sink *sink, const kiln_log_batch *b)
{
    struct cl *c = kiln_api->sink_get_data(sink);
    return kiln_api->ship_write(c->ship, b);
}

static void cl_close(kiln_sink *sink)
{
    struct cl *c = kiln_api->sink_get_data(sink);
    kiln_api->ship_close(c->ship);
}

static int cl_init(const kiln_host_api *api, kiln_plugin_handle *self, void **plugin_data)
{
    KILN_API_BIND(api);
    return 0;
}

static const kiln_sink_ops cl_ops = {sizeof(kiln_sink_ops), cl_open, cl_write, NULL, cl_close};

static const kiln_plugin cl_plugin = {
    KILN_PLUGIN_HEADER,
    .kind = KILN_PLUGIN_LOG_SINK,
    .name = "cloud-logging",
    .version = KILN_VERSION_STRING,
    .summary = "Log records to Google Cloud Logging (entries:write), as Cloud Build writes them",
    .options = cl_options,
    .config_size = sizeof(struct cl_config),
    .init = cl_init,
    .sink = &cl_ops,
};

KILN_PLUGIN_DEFINE(cl_plugin)
