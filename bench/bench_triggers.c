/* SPDX-License-Identifier: MIT */
/*
 * Evaluating a push against N triggers (default 1,000): each trigger has a
 * branch regex, half of them ignoredFiles and a third includedFiles globs
 * with **; the push changes 40 files. Prints the time to load (parse and
 * compile) the file and the median time of one evaluation of every trigger,
 * beside the same loop with regexec alone as the floor.
 * Usage: bench_triggers [N] [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "triggers.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    char path[] = "/tmp/kiln-bench-triggers-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "triggers:\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "- name: t%d\n  repo: repo%d\n  branch: ^(release|hotfix)/v%d\\.[0-9]+$\n", i, i % 7, i);
        if (i % 2)
            fprintf(f, "  ignoredFiles: ['**/*.md', 'docs/**', 'build/**/tmp_*']\n");
        if (i % 3 == 0)
            fprintf(f, "  includedFiles: ['src/module%d/**', '**/*.py']\n", i % 50);
        fprintf(f, "  substitutions: {_N: '%d'}\n", i);
    }
    fclose(f);
    kiln__triggers ts;
    kiln__diag d;
    kiln__diag_init(&d);
    double t0 = now_ms();
    kiln__triggers_load(&ts, path, &d);
    double load_ms = now_ms() - t0;
    if (d.errors) {
        fputs(d.text.buf, stderr);
        return 1;
    }
    const char *files[40];
    char bufs[40][64];
    for (int i = 0; i < 40; i++) {
        snprintf(bufs[i], sizeof bufs[i], i % 4 ? "src/module%d/sub/file_%d.c" : "docs/page_%d/%d.md",
                 i, i);
        files[i] = bufs[i];
    }
    kiln__push p = {"/srv/repo3.git", "refs/heads/release/v500.2", files, 40, true};
    double *eval = calloc((size_t)rounds, sizeof *eval), *floor_ms = calloc((size_t)rounds, sizeof *floor_ms);
    int fired = 0;
    char why[512];
    for (int r = 0; r < rounds; r++) {
        t0 = now_ms();
        fired = 0;
        for (size_t i = 0; i < ts.n; i++)
            fired += kiln__trigger_match(&ts, &ts.v[i], &p, why, sizeof why);
        eval[r] = now_ms() - t0;
        t0 = now_ms();
        int hits = 0;
        for (size_t i = 0; i < ts.n; i++)
            hits += regexec(&ts.v[i].re, "release/v500.2", 0, NULL, 0) == 0;
        floor_ms[r] = now_ms() - t0;
        if (hits < 0)
            return 1;
    }
    qsort(eval, (size_t)rounds, sizeof *eval, cmp);
    qsort(floor_ms, (size_t)rounds, sizeof *floor_ms, cmp);
    printf("triggers: %d, changed files: 40, rounds: %d, fired: %d\n", n, rounds, fired);
    printf("load (parse YAML, compile regexes): %.2f ms\n", load_ms);
    printf("evaluate one push, median: %.3f ms (p90 %.3f ms); regexec alone: %.3f ms; ratio %.1fx\n",
           eval[rounds / 2], eval[rounds * 9 / 10], floor_ms[rounds / 2],
           floor_ms[rounds / 2] > 0 ? eval[rounds / 2] / floor_ms[rounds / 2] : 0.0);
    printf("budget: 10 ms -> %s\n", eval[rounds / 2] < 10.0 ? "OK" : "OVER");
    kiln__triggers_free(&ts);
    kiln__diag_release(&d);
    unlink(path);
    int rc = eval[rounds / 2] < 10.0 ? 0 : 1;
    free(eval);
    free(floor_ms);
    return rc;
}
