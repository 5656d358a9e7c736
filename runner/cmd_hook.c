/* SPDX-License-Identifier: MIT */
/*
 * kiln hook install --server URL [--secret-file F] REPO.git
 *   a post-receive hook that tells kiln serve about each pushed ref, instead
 *   of running the builds itself (kiln hook install --triggers: cmd_trigger.c)
 * kiln hook post --server URL [--secret-file F] --repo R --ref REF --before OLD --after NEW
 *   what that hook runs: POST URL/hooks/git, a JSON body {ref, before, after,
 *   repository, files} signed as GitHub signs (X-Kiln-Signature-256:
 *   sha256=HMAC-SHA256 of the body), a fresh X-Kiln-Delivery, X-Kiln-Event: push.
 * Exit status: 0 (the server answered 2xx), 1 (it did not, or was not
 * reached), 2 (usage).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cli.h"
#include "serve.h"
#include "trigger_run.h"

#define HOOK_MARK "# installed by kiln hook install"

static void chomp(kiln__buf *b)
{
    while (b->len && (b->buf[b->len - 1] == '\n' || b->buf[b->len - 1] == '\r'))
        b->buf[--b->len] = '\0';
}

static void shell_quote(kiln__buf *b, const char *s)
{
    kiln__buf_addch(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            kiln__buf_adds(b, "'\\''");
        else
            kiln__buf_addch(b, *s);
    }
    kiln__buf_addch(b, '\'');
}

/* The post-receive hook of repo: its git directory into gd, kiln's own path
 * into exe, the hook's path into *hook. Returns 0, or an exit code after
 * saying why (2: not a repository; 1: a hook kiln did not install is there,
 * or kiln cannot find itself). */
static int hook_target(const char *repo, kiln__buf *gd, char exe[PATH_MAX], char **hook)
{
    const char *a[] = {"git", "-C", repo, "rev-parse", "--absolute-git-dir", NULL};
    if (kiln__run_capture(a, gd, NULL) != 0) {
        fprintf(stderr, "kiln: hook install: '%s' is not a git repository\n", repo);
        return 2;
    }
    chomp(gd);
    ssize_t n = readlink("/proc/self/exe", exe, PATH_MAX - 1);
    if (n <= 0) {
        fprintf(stderr, "kiln: hook install: cannot find kiln's own path\n");
        return 1;
    }
    exe[n] = '\0';
    *hook = kiln__xasprintf("%s/hooks/post-receive", gd->buf);
    FILE *f = fopen(*hook, "r");
    if (f) {
        char head[256] = "";
        size_t got = fread(head, 1, sizeof head - 1, f);
        head[got] = '\0';
        fclose(f);
        if (!strstr(head, HOOK_MARK)) {
            fprintf(stderr, "kiln: hook install: %s exists and was not installed by kiln; move it "
                            "away first\n", *hook);
            return 1;
        }
    }
    return 0;
}

/* Writes the hook's script, executable. False after saying why. */
static bool hook_write(const char *hook, const kiln__buf *script)
{
    FILE *f = fopen(hook, "w");
    bool ok = f && fwrite(script->buf, 1, script->len, f) == script->len;
    if (f && fclose(f) != 0)
        ok = false;
    ok = ok && chmod(hook, 0755) == 0;
    if (!ok)
        fprintf(stderr, "kiln: hook install: cannot write %s: %s\n", hook, strerror(errno));
    return ok;
}

static int usage(const char *msg)
{
    fprintf(stderr, "kiln: hook: %s\n"
                    "usage: kiln hook install --server URL [--secret-file FILE] REPO.git\n"
                    "       kiln hook post --server URL [--secret-file FILE] --repo R --ref REF "
                    "--before OLD --after NEW\n", msg);
    return 2;
}

static bool zeros(const char *s)
{
    return !*s || strspn(s, "0") == strlen(s);
}

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    kiln__buf_add(data, p, size * n);
    return size * n;
}

static int hook_post(const char *server, const char *secret_file, const char *repo, const char *ref,
                     const char *before, const char *after)
{
    char *secret = secret_file ? kiln__read_secret_file(secret_file, "--secret-file") : NULL;
    if (secret_file && !secret)
        return 1;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "ref", ref);
    cJSON_AddStringToObject(body, "before", before);
    cJSON_AddStringToObject(body, "after", after);
    cJSON_AddStringToObject(body, "repository", repo);
    /* The changed files, when git can tell (not for a new branch or a
     * deletion): the triggers' includedFiles/ignoredFiles then apply. */
    if (!zeros(before) && !zeros(after)) {
        kiln__buf out = KILN__BUF_INIT;
        const char *diff[] = {"git", "-C", repo, "diff", "--name-only", "-z", before, after, NULL};
        if (kiln__run_capture(diff, &out, NULL) == 0) {
            cJSON *files = cJSON_AddArrayToObject(body, "files");
            for (size_t i = 0; i < out.len; i += strlen(out.buf + i) + 1)
                if (out.buf[i])
                    cJSON_AddItemToArray(files, cJSON_CreateString(out.buf + i));
        }
        kiln__buf_release(&out);
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    char delivery[40];
    kiln__new_build_id(delivery, sizeof delivery);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "X-Kiln-Event: push");
    char line[256];
    snprintf(line, sizeof line, "X-Kiln-Delivery: %s", delivery);
    h = curl_slist_append(h, line);
    if (secret) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)text, strlen(text), mac, &n);
        int off = snprintf(line, sizeof line, "X-Kiln-Signature-256: sha256=");
        for (unsigned i = 0; i < n; i++)
            off += snprintf(line + off, sizeof line - (size_t)off, "%02x", mac[i]);
        h = curl_slist_append(h, line);
    }
    size_t sl = strlen(server);
    while (sl && server[sl - 1] == '/')
        sl--;
    char *url = kiln__xasprintf("%.*s/hooks/git", (int)sl, server);
    kiln__buf resp = KILN__BUF_INIT;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc != CURLE_OK) {
        fprintf(stderr, "kiln: hook: %s: %s\n", url, curl_easy_strerror(cc));
        rc = 1;
    } else {
        /* What the server started, in the pusher's terminal. */
        cJSON *o = cJSON_ParseWithLength(resp.buf ? resp.buf : "", resp.len);
        cJSON *builds = cJSON_GetObjectItemCaseSensitive(o, "builds");
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error"));
        if (status >= 200 && status < 300) {
            int n = cJSON_GetArraySize(builds);
            printf("kiln: %s %.12s: %s: %d build%s queued", ref, after, server, n, n == 1 ? "" : "s");
            cJSON *it;
            cJSON_ArrayForEach(it, builds)
                printf(" %s", cJSON_GetStringValue(it) ? cJSON_GetStringValue(it) : "?");
            putchar('\n');
        } else {
            fprintf(stderr, "kiln: hook: %s answered %ld%s%s\n", url, status, err ? ": " : "", err ? err : "");
            rc = 1;
        }
        cJSON_Delete(o);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    kiln__buf_release(&resp);
    free(url);
    free(text);
    free(secret);
    return rc;
}

static int hook_install(const char *server, const char *secret_file, const char *repo)
{
    kiln__buf gd = KILN__BUF_INIT;
    char exe[PATH_MAX], sf[PATH_MAX];
    char *hook = NULL;
    int rc = hook_target(repo, &gd, exe, &hook);
    if (!rc && secret_file && !realpath(secret_file, sf)) {
        fprintf(stderr, "kiln: hook install: --secret-file '%s': %s\n", secret_file, strerror(errno));
        rc = 2;
    }
    if (rc) {
        free(hook);
        kiln__buf_release(&gd);
        return rc;
    }
    kiln__buf s = KILN__BUF_INIT;
    kiln__buf_adds(&s, "#!/bin/sh\n" HOOK_MARK " --server\n"
                       "# Each pushed ref is posted to kiln serve (POST /hooks/git), which builds it.\n"
                       "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY \\\n"
                       "      GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_PUSH_OPTION_COUNT GIT_PREFIX\n"
                       "repo=");
    shell_quote(&s, gd.buf);
    kiln__buf_adds(&s, "\nstatus=0\nwhile read -r old new ref; do\n  ");
    shell_quote(&s, exe);
    kiln__buf_adds(&s, " hook post --server ");
    shell_quote(&s, server);
    if (secret_file) {
        kiln__buf_adds(&s, " --secret-file ");
        shell_quote(&s, sf);
    }
    kiln__buf_adds(&s, " --repo \"$repo\" --ref \"$ref\" --before \"$old\" --after \"$new\" || status=1\n"
                       "done\nexit $status\n");
    bool ok = hook_write(hook, &s);
    if (ok)
        printf("kiln: installed %s: every push is posted to %s/hooks/git%s\n", hook, server,
               secret_file ? " (signed)" : "");
    kiln__buf_release(&s);
    kiln__buf_release(&gd);
    free(hook);
    return ok ? 0 : 1;
}

int kiln__hook_remote_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'}, {"secret-file", required_argument, NULL, 'k'},
        {"repo", required_argument, NULL, 'r'},   {"ref", required_argument, NULL, 'f'},
        {"before", required_argument, NULL, 'b'}, {"after", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *secret = NULL, *repo = NULL, *ref = NULL, *before = NULL, *after = NULL;
    bool post = argc > 2 && !strcmp(argv[2], "post");
    optind = 3;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'k': secret = optarg; break;
        case 'r': repo = optarg; break;
        case 'f': ref = optarg; break;
        case 'b': before = optarg; break;
        case 'a': after = optarg; break;
        default: return usage("unknown option");
        }
    }
    if (!server)
        return usage("which server? (--server URL)");
    if (post) {
        if (optind < argc || !repo || !ref || !before || !after)
            return usage("post: give --repo, --ref, --before and --after");
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = hook_post(server, secret, repo, ref, before, after);
        curl_global_cleanup();
        return rc;
    }
    if (optind != argc - 1 || repo || ref || before || after)
        return usage("install --server: give one repository");
    return hook_install(server, secret, argv[optind]);
}

/* kiln hook install --triggers FILE REPO.git: every push runs kiln trigger. */
int kiln__cmd_hook_install(const kiln__cli_opts *o)
{
    if (!o->file || !o->triggers)
        return kiln__usage_error("hook install: expected --triggers FILE REPO.git");
    kiln__buf gd = KILN__BUF_INIT;
    char exe[PATH_MAX], trig[PATH_MAX];
    char *hook = NULL;
    int rc = hook_target(o->file, &gd, exe, &hook);
    if (!rc) {
        kiln__triggers ts;
        rc = kiln__cli_load_triggers(o->triggers, &ts);
        kiln__triggers_free(&ts);
        if (!rc && !realpath(o->triggers, trig))
            rc = EXIT_USAGE;
    }
    if (rc) {
        free(hook);
        kiln__buf_release(&gd);
        return rc;
    }
    kiln__buf s = KILN__BUF_INIT;
    kiln__buf_adds(&s, "#!/bin/sh\n" HOOK_MARK "\n"
                       "# Each pushed ref runs `kiln trigger`; the builds' output shows in the push.\n"
                       "# git sets these for the hook; the builds' own git commands must not see them.\n"
                       "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY \\\n"
                       "      GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_PUSH_OPTION_COUNT GIT_PREFIX\n");
    const char *path = getenv("PATH");
    kiln__buf_adds(&s, "PATH=");
    shell_quote(&s, path ? path : "/usr/bin:/bin");
    kiln__buf_adds(&s, "; export PATH\n");
    kiln__buf pp = KILN__BUF_INIT;
    for (size_t i = 0; i < o->n_plugin_paths; i++) {
        char rp[PATH_MAX];
        kiln__buf_addf(&pp, "%s%s", pp.len ? ":" : "",
                       realpath(o->plugin_paths[i], rp) ? rp : o->plugin_paths[i]);
    }
    const char *env_pp = getenv("KILN_PLUGIN_PATH");
    if (env_pp && *env_pp)
        kiln__buf_addf(&pp, "%s%s", pp.len ? ":" : "", env_pp);
    if (pp.len) {
        kiln__buf_adds(&s, "KILN_PLUGIN_PATH=");
        shell_quote(&s, pp.buf);
        kiln__buf_adds(&s, "; export KILN_PLUGIN_PATH\n");
    }
    kiln__buf_release(&pp);
    kiln__buf_adds(&s, "repo=");
    shell_quote(&s, gd.buf);
    kiln__buf_adds(&s, "\nstatus=0\nwhile read -r old new ref; do\n  ");
    shell_quote(&s, exe);
    kiln__buf_adds(&s, " trigger --triggers ");
    shell_quote(&s, trig);
    kiln__buf_adds(&s, " --repo \"$repo\" --ref \"$ref\" --before \"$old\" --after \"$new\"");
    if (o->dry_run)
        kiln__buf_adds(&s, " --dry-run");
    if (o->out) {
        char rp[PATH_MAX];
        mkdir(o->out, 0777);
        kiln__buf_adds(&s, " --out ");
        shell_quote(&s, realpath(o->out, rp) ? rp : o->out);
    }
    if (o->log_format) {
        kiln__buf_adds(&s, " --log-format ");
        shell_quote(&s, o->log_format);
    }
    /* --executor (or KILN_EXECUTOR when installing) is written into the
     * hook, like PATH: a push over ssh runs the hook in the server's
     * environment, not the installer's. Without one, the pushing
     * environment's KILN_EXECUTOR applies (a local push inherits it). */
    if (o->executor) {
        kiln__buf_adds(&s, " --executor ");
        shell_quote(&s, o->executor);
    }
    kiln__buf_adds(&s, " --color never || status=1\ndone\nexit $status\n");
    bool ok = hook_write(hook, &s);
    if (ok)
        printf("kiln: installed %s: every push runs the builds whose trigger in %s fires%s%s%s\n", hook,
               trig, o->dry_run ? " (as dry runs)" : "", o->executor ? ", steps with an image through executor " : "",
               o->executor ? o->executor : "");
    kiln__buf_release(&s);
    kiln__buf_release(&gd);
    free(hook);
    return ok ? 0 : EXIT_FAILED;
}

