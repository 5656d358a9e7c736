/* SPDX-License-Identifier: MIT */
/* kiln serve: its options (the server is serve.c). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const char serve_usage[] =
    "usage: kiln serve --triggers FILE [options]\n"
    "\n"
    "  --triggers FILE              the triggers file (as for kiln trigger)\n"
    "  --listen HOST:PORT           where the HTTP API listens (default 127.0.0.1:8080)\n"
    "  --data DIR                   history (kiln.db), mirrors, builds (default ./kiln-data)\n"
    "  --max-builds N               builds running at once (default 2); the rest wait QUEUED\n"
    "  --token-file FILE            the bearer token every write of the API needs\n"
    "  --webhook-secret-file FILE   the webhooks' secret (GitHub, Gitea, git: HMAC; GitLab: token)\n"
    "  --grace DURATION             on SIGTERM, how long running builds may go on (default 60s)\n"
    "  --kill-grace DURATION        SIGTERM-to-SIGKILL grace of a cancelled step (default 10s)\n"
    "  --max-parallel N             steps running at once, per build (default 32)\n"
    "  --plugin-path DIR            where to look for plugins (repeatable)\n"
    "  --sink NAME[:K=V,...]        every build's logs to this sink plugin too (repeatable);\n"
    "                               remote sinks spool in DATA/spool while their receiver is down\n"
    "  --sink-grace DURATION        on stop, how long remote sinks may still deliver (default 30s)\n"
    "  --repos DIR                  where the repositories a trigger names by name are\n"
    "                               (DIR/NAME.git or DIR/NAME): for schedules and the API\n"
    "  --keep-builds N              keep the newest N finished builds (history and files)\n"
    "  --keep-days D                remove finished builds older than D days\n"
    "  --dry-run                    deploys recorded, not done (as kiln run --dry-run)\n"
    "  --executor NAME[:K=V,...]    how steps with an image run, as for kiln run (also\n"
    "                               KILN_EXECUTOR): one instance per build; checked once\n"
    "                               at startup (options, and that its engine answers)\n"
    "  --base-path /PREFIX          the pages' path behind a reverse proxy (default: none)\n"
    "  --verbose                    step output on the console too\n"
    "\n"
    "Triggers start builds from webhooks (POST /hooks/github), the API\n"
    "(POST /api/triggers/NAME:run) and their schedule: (five-field cron, in\n"
    "timeZone:, default UTC; a run missed while kiln serve was down starts once\n"
    "at startup). Tests may set KILN_TEST_CLOCK to a file holding the time\n"
    "(epoch seconds or 2026-12-07T03:00:00Z) that the schedules then follow.\n";


char *kiln__read_secret_file(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "kiln: serve: %s '%s': %s\n", what, path, strerror(errno));
        return NULL;
    }
    kiln__buf b = KILN__BUF_INIT;
    char chunk[1024];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        kiln__buf_add(&b, chunk, n);
    fclose(f);
    while (b.len && strchr(" \t\r\n", b.buf[b.len - 1]))
        b.buf[--b.len] = '\0';
    if (!b.len) {
        fprintf(stderr, "kiln: serve: %s '%s' is empty\n", what, path);
        kiln__buf_release(&b);
        return NULL;
    }
    return kiln__buf_detach(&b);
}

static int serve_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int serve_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kiln: serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'kiln serve --help'.\n", stderr);
    return 2;
}

int kiln__serve_main(int argc, char **argv)
{
    kiln__serve_opts o;
    memset(&o, 0, sizeof o);
    enum { O_TRIG = 256, O_LISTEN, O_DATA, O_MAXB, O_TOKEN, O_SECRET, O_GRACE, O_KGRACE, O_PPATH,
           O_MAXPAR, O_VERBOSE, O_HELP, O_REPOS, O_DRY, O_KEEPB, O_KEEPD, O_BASE, O_SINK, O_SGRACE,
           O_EXEC };
    static const struct option longopts[] = {
        {"triggers", required_argument, NULL, O_TRIG},
        {"listen", required_argument, NULL, O_LISTEN},
        {"data", required_argument, NULL, O_DATA},
        {"max-builds", required_argument, NULL, O_MAXB},
        {"token-file", required_argument, NULL, O_TOKEN},
        {"webhook-secret-file", required_argument, NULL, O_SECRET},
        {"grace", required_argument, NULL, O_GRACE},
        {"kill-grace", required_argument, NULL, O_KGRACE},
        {"plugin-path", required_argument, NULL, O_PPATH},
        {"max-parallel", required_argument, NULL, O_MAXPAR},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {"repos", required_argument, NULL, O_REPOS},
        {"dry-run", no_argument, NULL, O_DRY},
        {"keep-builds", required_argument, NULL, O_KEEPB},
        {"keep-days", required_argument, NULL, O_KEEPD},
        {"base-path", required_argument, NULL, O_BASE},
        {"sink", required_argument, NULL, O_SINK},
        {"sink-grace", required_argument, NULL, O_SGRACE},
        {"executor", required_argument, NULL, O_EXEC},
        {NULL, 0, NULL, 0},
    };
    const char *triggers = NULL, *listen = "127.0.0.1:8080", *data = "kiln-data";
    const char *token_file = NULL, *secret_file = NULL;
    const char **ppaths = NULL, **sinks = NULL;
    size_t n_ppaths = 0, n_sinks = 0;
    o.sink_grace_ms = -1;
    int max_builds = 2, max_parallel = 0;
    int64_t grace_ms = 60000, kill_grace_ms = 0;
    bool verbose = false;
    optind = 2;
    opterr = 0;
    int c, rc = 0;
    while (!rc && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end;
        long v;
        switch (c) {
        case O_TRIG: triggers = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_DATA: data = optarg; break;
        case O_TOKEN: token_file = optarg; break;
        case O_SECRET: secret_file = optarg; break;
        case O_VERBOSE: verbose = true; break;
        case O_REPOS: o.repos = optarg; break;
        case O_DRY: o.dry_run = true; break;
        case O_EXEC: o.executor = optarg; break;
        case O_BASE:
            /* Pasted into the pages as is: only path characters. */
            if (optarg[0] != '/' || strstr(optarg, "//") ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-._~") != strlen(optarg))
                rc = serve_usage_error("--base-path: expected a path such as /kiln "
                                       "(letters, digits, '/-._~'), got '%s'",
                                       optarg);
            o.base_path = optarg;
            break;
        case O_KEEPB:
        case O_KEEPD:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000000)
                rc = serve_usage_error("--%s: expected a positive number, got '%s'",
                                       c == O_KEEPB ? "keep-builds" : "keep-days", optarg);
            else if (c == O_KEEPB)
                o.keep_builds = v;
            else
                o.keep_days = v;
            break;
        case O_SINK:
            sinks = kiln__xrealloc(sinks, (n_sinks + 1) * sizeof *sinks);
            sinks[n_sinks++] = optarg;
            break;
        case O_SGRACE:
            if (kiln__parse_duration(optarg, false, &o.sink_grace_ms) != 0)
                rc = serve_usage_error("--sink-grace: expected a duration such as 30s, got '%s'", optarg);
            break;
        case O_PPATH:
            ppaths = kiln__xrealloc(ppaths, (n_ppaths + 1) * sizeof *ppaths);
            ppaths[n_ppaths++] = optarg;
            break;
        case O_MAXB:
        case O_MAXPAR:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 4096)
                rc = serve_usage_error("--%s: expected a number from 1 to 4096, got '%s'",
                                       c == O_MAXB ? "max-builds" : "max-parallel", optarg);
            else if (c == O_MAXB)
                max_builds = (int)v;
            else
                max_parallel = (int)v;
            break;
        case O_GRACE:
        case O_KGRACE:
            if (kiln__parse_duration(optarg, false, c == O_GRACE ? &grace_ms : &kill_grace_ms) != 0)
                rc = serve_usage_error("--%s: expected a duration such as 10s, got '%s'",
                                       c == O_GRACE ? "grace" : "kill-grace", optarg);
            break;
        case O_HELP:
            fputs(serve_usage, stdout);
            free(ppaths);
            free(sinks);
            return 0;
        default:
            rc = serve_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!rc && optind < argc)
        rc = serve_usage_error("unexpected argument '%s'", argv[optind]);
    if (!rc && !triggers)
        rc = serve_usage_error("which triggers file? (--triggers FILE)");
    if (rc) {
        free(ppaths);
        free(sinks);
        return rc;
    }

    if (!o.executor && getenv("KILN_EXECUTOR") && *getenv("KILN_EXECUTOR"))
        o.executor = getenv("KILN_EXECUTOR");
    o.triggers = triggers;
    o.listen = listen;
    o.data = data;
    o.token_file = token_file;
    o.secret_file = secret_file;
    o.plugin_paths = ppaths;
    o.n_plugin_paths = n_ppaths;
    o.max_builds = max_builds;
    o.max_parallel = max_parallel;
    o.grace_ms = grace_ms;
    o.kill_grace_ms = kill_grace_ms;
    o.verbose = verbose;
    o.sinks = sinks;
    o.n_sinks = n_sinks;
    rc = kiln__serve_run(&o);
    free(ppaths);
    free(sinks);
    return rc;
}
