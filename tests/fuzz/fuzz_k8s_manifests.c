/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for k8s-deploy's readers: the input is written to a file and
 * read both as manifests (YAML documents -> objects, with the image,
 * env-vars, order and REST path changes a step makes) and as a kubeconfig
 * (context, cluster, user, base64 CA data, token file). Nothing may crash or
 * leak, whatever the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../plugins/common/container_env.c"
#include "../../plugins/common/base64.c"
#include "../../plugins/common/k8s_conn.c"
#include "../../plugins/common/k8s_exec_cred.c"
#include "../../plugins/common/run_capture.c"
#include "../../plugins/step_k8s_deploy/k8s_objects.c"
#include "../../plugins/common/k8s_yaml.c"
#include "../../plugins/common/xalloc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/kiln-fuzz-k8s-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 (int)getpid());
        mkdir(dir, 0700);
    }
    char path[400];
    snprintf(path, sizeof path, "%s/input.yaml", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);

    const char *paths[] = {"input.yaml"};
    kiln_strv pv = {1, paths};
    k8_set s;
    char err[1200];
    if (k8_load(dir, &pv, &s, err, sizeof err) == 0) {
        k8_set_image(&s, "registry.example:5000/app:2");
        const char *keys[] = {"ENV"}, *values[] = {"x"};
        k8_set_env(&s, keys, values, 1);
        k8_order(&s);
        for (size_t i = 0; i < s.n; i++) {
            const char *plural = "things";
            bool namespaced = true;
            k8_builtin_kind(s.v[i].api_version, s.v[i].kind, &plural, &namespaced);
            k8_place(&s.v[i], plural, namespaced, "default", i % 2 == 0, err, sizeof err);
            char *text = cJSON_PrintUnformatted(s.v[i].json);
            free(text);
        }
        k8_set_free(&s);
    }
    k8_conn c;
    k8_conn_opts o = {.kubeconfig = path, .cluster = size % 2 ? "api" : NULL, .location = "l", .project = "p"};
    if (k8_conn_resolve(&o, &c, err, sizeof err) == 0)
        k8_conn_free(&c);
    unlink(path);
    return 0;
}
