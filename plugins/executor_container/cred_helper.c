/* SPDX-License-Identifier: MIT */
/* Docker credential helpers; see cred_helper.h. */
#include "cred_helper.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/xalloc.h"

extern char **environ;

int cx_cred_helper_get(const char *name, const char *server, char **user, char **secret, char **err)
{
    *user = *secret = *err = NULL;
    char prog[300];
    snprintf(prog, sizeof prog, "docker-credential-%s", name);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
        *err = kp_xasprintf("credential helper %s: cannot make pipes: %s", prog, strerror(errno));
        goto fail;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    char *argv[] = {prog, "get", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    if (rc) {
        *err = rc == ENOENT ? kp_xasprintf("credential helper %s is not on PATH", prog)
                            : kp_xasprintf("credential helper %s cannot run: %s", prog, strerror(rc));
        goto fail;
    }
    /* The registry is a line: well under a pipe's buffer. */
    ssize_t w = write(in[1], server, strlen(server));
    (void)w;
    close(in[1]);
    in[1] = -1;
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    ssize_t r;
    while ((r = read(out[0], buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 2 && !(buf = realloc(buf, cap *= 2)))
            abort();
    }
    buf[n] = '\0';
    close(out[0]);
    out[0] = -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        /* docker's own rule: this text means "nothing stored", not a failure */
        if (strstr(buf, "credentials not found")) {
            free(buf);
            return 1;
        }
        *err = kp_xasprintf("credential helper %s failed (%s %d): %.300s", prog, WIFEXITED(st) ? "exit status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), n ? buf : "no output");
        free(buf);
        return -1;
    }
    cJSON *j = cJSON_Parse(buf);
    const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Username"));
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Secret"));
    if (!u || !s) {
        *err = kp_xasprintf("credential helper %s: expected {\"Username\": ..., \"Secret\": ...}, got: %.200s", prog,
                    n ? buf : "no output");
        cJSON_Delete(j);
        free(buf);
        return -1;
    }
    *user = strdup(u);
    *secret = strdup(s);
    cJSON_Delete(j);
    free(buf);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    return -1;
}
