/* SPDX-License-Identifier: MIT */
/*
 * kiln's entry point: picks the command. Each command lives in a file of
 * its own (cmd_*.c; kiln serve and its clients in serve.c, builds_client.c);
 * their shared options are parsed in cli.c.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(kiln__usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("kiln %s (plugin ABI %d.%d)\n", KILN_VERSION_STRING, KILN_ABI_MAJOR, KILN_ABI_MINOR);
        return 0;
    }
    /* A child that died must not take kiln with it through SIGPIPE on a log pipe. */
    signal(SIGPIPE, SIG_IGN);
    /* kiln serve and its clients (serve.h) have options of their own. */
    if (!strcmp(argv[1], "serve"))
        return kiln__serve_main(argc, argv);
    if (!strcmp(argv[1], "builds"))
        return kiln__builds_main(argc, argv);
    if (!strcmp(argv[1], "trigger"))
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9))
                return kiln__trigger_remote_main(argc, argv);
    if (!strcmp(argv[1], "hook") && argc > 2 && !strcmp(argv[2], "post"))
        return kiln__hook_remote_main(argc, argv);
    if (!strcmp(argv[1], "hook"))
        for (int i = 3; i < argc; i++)
            if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9))
                return kiln__hook_remote_main(argc, argv);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    kiln__cli_opts o;
    memset(&o, 0, sizeof o);
    if (!strcmp(argv[1], "logs")) {
        /* kiln logs flush DIR: parsed as the command "flush" */
        if (argc < 3 || strcmp(argv[2], "flush"))
            return kiln__usage_error("logs: expected 'kiln logs flush DIR'");
        argc--;
        argv++;
    }
    if (!strcmp(argv[1], "hook")) {
        /* kiln hook install ...: parsed as the command "install" */
        if (argc < 3 || strcmp(argv[2], "install"))
            return kiln__usage_error("hook: expected 'kiln hook install --triggers FILE REPO.git'");
        argc--;
        argv++;
    }
    int rc = kiln__cli_parse(argc, argv, &o);
    if (!rc) {
        if (!strcmp(o.cmd, "run"))
            rc = kiln__cmd_run(&o, false);
        else if (!strcmp(o.cmd, "validate"))
            rc = kiln__cmd_run(&o, true);
        else if (!strcmp(o.cmd, "graph"))
            rc = kiln__cmd_graph(&o);
        else if (!strcmp(o.cmd, "plugins"))
            rc = kiln__cmd_plugins(&o);
        else if (!strcmp(o.cmd, "trigger"))
            rc = kiln__cmd_trigger(&o);
        else if (!strcmp(o.cmd, "flush"))
            rc = kiln__cmd_logs(&o);
        else if (!strcmp(o.cmd, "install"))
            rc = kiln__cmd_hook_install(&o);
        else
            rc = kiln__usage_error("unknown command '%s'", o.cmd);
    }
    kiln__cli_release(&o);
    fflush(stdout);
    return rc;
}

