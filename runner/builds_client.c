/* SPDX-License-Identifier: MIT */
/*
 * The command-line client of kiln serve's API (libcurl):
 *
 *   kiln builds list [--status S] [--trigger T] [--branch B] [--limit N] [--json]
 *   kiln builds show ID [--json]
 *   kiln builds cancel ID
 *   kiln builds retry ID           (a new build of the same commit)
 *   kiln builds logs ID [--step S] (the steps that have logs; one step's log;
 *                                   `log ID [STEP]` is the older spelling)
 *   kiln trigger --server URL NAME [--branch B | --tag T] [--commit SHA]
 *                [--substitutions K=V[,K=V...]] [--wait]
 *
 * --server defaults to $KILN_SERVER, else http://127.0.0.1:8080; the token
 * of writes comes from $KILN_TOKEN. Exit status: 0, 1 (the server said no,
 * or a waited-for build did not succeed), 2 (usage).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "serve.h"

struct client {
    const char *server;
    const char *token;
    bool json;
};

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    kiln__buf_add(data, p, size * n);
    return size * n;
}

/* One request; the parsed JSON answer in *out. Returns the HTTP status, or
 * -1 (printed) when the server could not be reached or did not answer JSON. */
static long request(const struct client *c, const char *method, const char *path, const char *body,
                    cJSON **out)
{
    *out = NULL;
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    char *url = kiln__xasprintf("%s%s", c->server, path);
    kiln__buf resp = KILN__BUF_INIT;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    char *auth = NULL;
    if (c->token && *c->token) {
        auth = kiln__xasprintf("Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    if (body || !strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "{}");
    }
    long status = -1;
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "kiln: %s: %s\n", url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        *out = resp.len ? cJSON_ParseWithLength(resp.buf, resp.len) : NULL;
        if (!*out) {
            fprintf(stderr, "kiln: %s: HTTP %ld, and the answer is not JSON\n", url, status);
            status = -1;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    kiln__buf_release(&resp);
    free(auth);
    free(url);
    return status;
}

/* Print the server's error and return 1. */
static int server_said_no(long status, cJSON *o)
{
    if (status < 0)
        return 1;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    fprintf(stderr, "kiln: the server answered %ld: %s\n", status, m ? m : "(no message)");
    return 1;
}

static const char *str(const cJSON *o, const char *k)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return v ? v : "-";
}

static void print_json(cJSON *o)
{
    char *s = cJSON_Print(o);
    puts(s);
    cJSON_free(s);
}

static int url_escape_into(kiln__buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.~", ch))
            kiln__buf_addch(b, (char)ch);
        else
            kiln__buf_addf(b, "%%%02X", ch);
    }
    return 0;
}

static void show_build(const cJSON *b)
{
    printf("build    %s\nstatus   %s", str(b, "id"), str(b, "status"));
    const char *detail = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "statusDetail"));
    printf("%s%s\n", detail ? ": " : "", detail ? detail : "");
    const char *branch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "branch"));
    const char *tag = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "tag"));
    printf("trigger  %s (%s)\nsource   %s %s%s%s\ncommit   %s\n", str(b, "trigger"), str(b, "source"),
           str(b, "repo"), branch ? "branch " : tag ? "tag " : "", branch ? branch : tag ? tag : "",
           "", str(b, "commit"));
    printf("created  %s\nstarted  %s\nfinished %s\ndir      %s\n", str(b, "createTime"), str(b, "startTime"),
           str(b, "finishTime"), str(b, "dir"));
    cJSON *steps = cJSON_GetObjectItemCaseSensitive(b, "steps");
    if (cJSON_GetArraySize(steps)) {
        printf("\n%-24s %-10s %s\n", "STEP", "STATUS", "EXIT");
        cJSON *s;
        cJSON_ArrayForEach(s, steps)
        {
            cJSON *ec = cJSON_GetObjectItemCaseSensitive(s, "exit_code");
            char code[16] = "-";
            if (cJSON_IsNumber(ec))
                snprintf(code, sizeof code, "%d", ec->valueint);
            printf("%-24s %-10s %s\n", str(s, "key"), str(s, "status"), code);
        }
    }
}

static int builds_list(const struct client *c, const char *status, const char *trigger,
                       const char *branch, const char *limit)
{
    kiln__buf path = KILN__BUF_INIT;
    kiln__buf_adds(&path, "/api/builds?");
    const char *names[] = {"status", "trigger", "branch", "pageSize"};
    const char *vals[] = {status, trigger, branch, limit};
    for (int i = 0; i < 4; i++) {
        if (!vals[i])
            continue;
        kiln__buf_addf(&path, "%s=", names[i]);
        url_escape_into(&path, vals[i]);
        kiln__buf_addch(&path, '&');
    }
    cJSON *o;
    long st = request(c, "GET", path.buf, NULL, &o);
    kiln__buf_release(&path);
    int rc = 0;
    if (st != 200) {
        rc = server_said_no(st, o);
    } else if (c->json) {
        print_json(o);
    } else {
        printf("%-36s %-14s %-28s %-16s %-8s %s\n", "ID", "STATUS", "TRIGGER", "BRANCH", "COMMIT", "CREATED");
        cJSON *b;
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(o, "builds"))
        {
            printf("%-36s %-14s %-28s %-16s %-8.7s %s\n", str(b, "id"), str(b, "status"), str(b, "trigger"),
                   strcmp(str(b, "branch"), "-") ? str(b, "branch") : str(b, "tag"), str(b, "commit"),
                   str(b, "createTime"));
        }
        const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "nextCursor"));
        if (next)
            printf("(more: --cursor %s)\n", next);
    }
    cJSON_Delete(o);
    return rc;
}

static int builds_one(const struct client *c, const char *verb, const char *id)
{
    kiln__buf path = KILN__BUF_INIT;
    kiln__buf_adds(&path, "/api/builds/");
    url_escape_into(&path, id);
    bool cancel = !strcmp(verb, "cancel"), retry = !strcmp(verb, "retry");
    if (cancel || retry)
        kiln__buf_addf(&path, ":%s", verb);
    cJSON *o;
    long st = request(c, cancel || retry ? "POST" : "GET", path.buf, NULL, &o);
    kiln__buf_release(&path);
    int rc = 0;
    if (st != (retry ? 201 : 200))
        rc = server_said_no(st, o);
    else if (c->json)
        print_json(o);
    else if (cancel)
        printf("kiln: build %s: cancelling (status %s)\n", str(o, "id"), str(o, "status"));
    else if (retry)
        printf("kiln: build %s: a retry of %s (%s)\n", str(o, "id"), id, str(o, "status"));
    else
        show_build(o);
    cJSON_Delete(o);
    return rc;
}

/* GET a text body to stdout. Returns 0, or 1 (printed). */
static size_t on_text(char *p, size_t size, size_t n, void *data)
{
    (void)data;
    return fwrite(p, size, n, stdout);
}

static int builds_log(const struct client *c, const char *id, const char *step)
{
    kiln__buf path = KILN__BUF_INIT;
    kiln__buf_adds(&path, "/api/builds/");
    url_escape_into(&path, id);
    kiln__buf_adds(&path, "/logs");
    int rc = 0;
    if (!step) {
        cJSON *o;
        long st = request(c, "GET", path.buf, NULL, &o);
        if (st != 200) {
            rc = server_said_no(st, o);
        } else {
            cJSON *it;
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "logs"))
                puts(cJSON_GetStringValue(it) ? cJSON_GetStringValue(it) : "");
        }
        cJSON_Delete(o);
    } else {
        kiln__buf_addch(&path, '/');
        url_escape_into(&path, step);
        char *url = kiln__xasprintf("%s%s", c->server, path.buf);
        CURL *h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_text);
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        struct curl_slist *hdrs = NULL;
        char *auth = NULL;
        if (c->token && *c->token) {
            auth = kiln__xasprintf("Authorization: Bearer %s", c->token);
            hdrs = curl_slist_append(hdrs, auth);
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        }
        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            fprintf(stderr, "kiln: %s: %s\n", url, curl_easy_strerror(cc));
            rc = 1;
        }
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        free(auth);
        free(url);
    }
    kiln__buf_release(&path);
    return rc;
}

static const char *default_server(void)
{
    const char *s = getenv("KILN_SERVER");
    return s && *s ? s : "http://127.0.0.1:8080";
}

int kiln__builds_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'}, {"status", required_argument, NULL, 'S'},
        {"trigger", required_argument, NULL, 't'}, {"branch", required_argument, NULL, 'b'},
        {"limit", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"step", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0},
    };
    struct client c = {default_server(), getenv("KILN_TOKEN"), false};
    const char *status = NULL, *trigger = NULL, *branch = NULL, *limit = NULL, *step = NULL;
    optind = 2;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': c.server = optarg; break;
        case 'S': status = optarg; break;
        case 't': trigger = optarg; break;
        case 'b': branch = optarg; break;
        case 'n': limit = optarg; break;
        case 'j': c.json = true; break;
        case 'p': step = optarg; break;
        default:
            fprintf(stderr, "kiln: builds: unknown option '%s'\n", argv[optind - 1]);
            return 2;
        }
    }
    const char *verb = optind < argc ? argv[optind++] : NULL;
    const char *id = optind < argc ? argv[optind++] : NULL;
    bool logs = verb && (!strcmp(verb, "logs") || !strcmp(verb, "log"));
    if (logs && !step && optind < argc)
        step = argv[optind++]; /* kiln builds log ID STEP, the older spelling */
    static const char *const verbs[] = {"list", "show", "cancel", "retry", "logs", "log", NULL};
    bool known = false;
    for (size_t i = 0; verb && verbs[i]; i++)
        known = known || !strcmp(verb, verbs[i]);
    if (!verb || !known || optind < argc || (strcmp(verb, "list") && !id) || (!strcmp(verb, "list") && id) ||
        (step && !logs)) {
        fprintf(stderr, "usage: kiln builds list|show ID|cancel ID|retry ID|logs ID [--step S]"
                        " [--server URL] [--json]\n"
                        "       (list: --status S --trigger T --branch B --limit N)\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = !strcmp(verb, "list") ? builds_list(&c, status, trigger, branch, limit)
             : logs ? builds_log(&c, id, step)
                                    : builds_one(&c, verb, id);
    curl_global_cleanup();
    return rc;
}

int kiln__trigger_remote_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'}, {"branch", required_argument, NULL, 'b'},
        {"tag", required_argument, NULL, 'T'}, {"commit", required_argument, NULL, 'c'},
        {"substitutions", required_argument, NULL, 'S'}, {"wait", no_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0},
    };
    struct client c = {default_server(), getenv("KILN_TOKEN"), false};
    const char *branch = NULL, *tag = NULL, *commit = NULL;
    bool wait = false;
    cJSON *body = cJSON_CreateObject();
    cJSON *subs = cJSON_AddObjectToObject(body, "substitutions");
    optind = 2;
    opterr = 0;
    int ch, rc = 0;
    while (!rc && (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': c.server = optarg; break;
        case 'b': branch = optarg; break;
        case 'T': tag = optarg; break;
        case 'c': commit = optarg; break;
        case 'w': wait = true; break;
        case 'j': c.json = true; break;
        case 'S': {
            char *copy = kiln__xstrdup(optarg), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(tok, '=');
                if (!eq) {
                    fprintf(stderr, "kiln: trigger: --substitutions: '%s' is not K=V\n", tok);
                    rc = 2;
                    break;
                }
                *eq = '\0';
                cJSON_DeleteItemFromObjectCaseSensitive(subs, tok);
                cJSON_AddStringToObject(subs, tok, eq + 1);
            }
            free(copy);
            break;
        }
        default:
            fprintf(stderr, "kiln: trigger --server: unknown option '%s'\n", argv[optind - 1]);
            rc = 2;
        }
    }
    const char *name = optind < argc ? argv[optind++] : NULL;
    if (!rc && (!name || optind < argc)) {
        fprintf(stderr, "usage: kiln trigger --server URL NAME [--branch B | --tag T] [--commit SHA] "
                        "[--substitutions K=V,...] [--wait]\n");
        rc = 2;
    }
    if (rc) {
        cJSON_Delete(body);
        return rc;
    }
    if (branch)
        cJSON_AddStringToObject(body, "branch", branch);
    if (tag)
        cJSON_AddStringToObject(body, "tag", tag);
    if (commit)
        cJSON_AddStringToObject(body, "commit", commit);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    kiln__buf path = KILN__BUF_INIT;
    kiln__buf_adds(&path, "/api/triggers/");
    url_escape_into(&path, name);
    kiln__buf_adds(&path, ":run");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cJSON *o;
    long st = request(&c, "POST", path.buf, text, &o);
    cJSON_free(text);
    kiln__buf_release(&path);
    if (st != 201 && st != 200) {
        rc = server_said_no(st, o);
    } else {
        char *id = kiln__xstrdup(str(o, "id"));
        if (c.json && !wait)
            print_json(o);
        else
            printf("kiln: trigger %s: build %s %s\n", name, id, str(o, "status"));
        fflush(stdout);
        /* --wait: poll until the build has ended. */
        while (wait) {
            cJSON_Delete(o);
            char *p = kiln__xasprintf("/api/builds/%s", id);
            st = request(&c, "GET", p, NULL, &o);
            free(p);
            if (st != 200) {
                rc = server_said_no(st, o);
                break;
            }
            const char *s = str(o, "status");
            if (strcmp(s, "QUEUED") && strcmp(s, "WORKING")) {
                if (c.json)
                    print_json(o);
                else
                    show_build(o);
                rc = strcmp(s, "SUCCESS") ? 1 : 0;
                break;
            }
            usleep(200 * 1000);
        }
        free(id);
    }
    cJSON_Delete(o);
    curl_global_cleanup();
    return rc;
}
