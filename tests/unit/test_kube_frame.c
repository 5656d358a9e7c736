/* SPDX-License-Identifier: MIT */
/*
 * kiln-pod-helper's records (plugins/executor_kubernetes/kube_frame.c) and
 * the Pod it runs in (kube_helper.c): records parsed, bad ones refused with
 * a reason, what the real helper program writes read back to the bytes and
 * status of its command, and the init container, emptyDir and command a
 * framed Pod gets. The log stream side is tests/integration/test_k8s_logs.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/executor_kubernetes/kube_frame.c"
#include "../../plugins/executor_kubernetes/kube_helper.c"
#include "../../plugins/executor_kubernetes/kube_pod.c"

static int parse(const char *line, kube_frame *f, char *out, const char **why)
{
    return kube_frame_parse(line, strlen(line), f, out, why);
}

static void records(void **state)
{
    kube_frame f;
    char out[256];
    const char *why = NULL;
    assert_int_equal(parse("@kf1 1 o 3 hi\\n", &f, out, &why), 1);
    assert_int_equal(f.seq, 1);
    assert_int_equal(f.type, 'o');
    assert_int_equal(f.len, 3);
    assert_memory_equal(out, "hi\n", 3);
    assert_int_equal(parse("@kf1 18446744073 e 8 a\\tb\\\\c\\x00\\x7f\\r", &f, out, &why), 1);
    assert_int_equal(f.seq, 18446744073ULL);
    assert_int_equal(f.type, 'e');
    assert_memory_equal(out, "a\tb\\c\0\x7f\r", 8);
    assert_int_equal(parse("@kf1 2 o 0 ", &f, out, &why), 1); /* empty payload */
    assert_int_equal(f.len, 0);
    assert_int_equal(parse("@kf1 7 x 3 137", &f, out, &why), 1);
    assert_int_equal(f.status, 137);
    assert_int_equal(parse("@kf1 8 f 4 k=v\\n", &f, out, &why), 1);
    assert_int_equal(f.type, 'f');
    /* UTF-8 and other bytes >= 0x80 go as they are */
    assert_int_equal(parse("@kf1 9 o 2 \xc3\xa9", &f, out, &why), 1);
    assert_memory_equal(out, "\xc3\xa9", 2);
}

static void not_records(void **state)
{
    kube_frame f;
    char out[256];
    const char *why = NULL;
    assert_int_equal(parse("hello", &f, out, &why), 0);
    assert_int_equal(parse("", &f, out, &why), 0);
    assert_int_equal(parse("@kf2 1 o 1 a", &f, out, &why), 0);
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"@kf1 ", "no sequence number"},
        {"@kf1 0 o 1 a", "no sequence number"},
        {"@kf1 01 o 1 a", "no sequence number"},
        {"@kf1 1 q 1 a", "no record type (o, e, f or x)"},
        {"@kf1 1 o", "no record type (o, e, f or x)"},
        {"@kf1 1 o x a", "no payload length"},
        {"@kf1 1 o 1", "no payload length"},
        {"@kf1 1 o 99 a", "no payload length"},
        {"@kf1 1 o 5 ab", "payload shorter than its length (cut short)"},
        {"@kf1 1 o 1 ab", "payload longer than its length"},
        {"@kf1 1 o 1 \\", "payload cut inside an escape"},
        {"@kf1 1 o 1 \\q", "a bad escape in the payload"},
        {"@kf1 1 o 1 \\x4", "a bad escape in the payload"},
        {"@kf1 1 o 1 \\xzz", "a bad escape in the payload"},
        {"@kf1 1 x 0 ", "an exit record without a status"},
        {"@kf1 1 x 2 1a", "an exit record without a status"},
        {"@kf1 1 x 3 256", "an exit status above 255"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        int r = parse(bad[i].line, &f, out, &why);
        if (r != -1 || !why || strcmp(why, bad[i].why))
            fail_msg("%s: got %d (%s), want -1 (%s)", bad[i].line, r, why ? why : "-", bad[i].why);
    }
}

/* The real helper: run a command under it and read its records back. */
static void helper_round_trip(void **state)
{
    const char *bd = getenv("KILN_BUILD_DIR");
    char helper[1024];
    snprintf(helper, sizeof helper, "%s/tools/kiln-pod-helper/kiln-pod-helper", bd ? bd : "build");
    if (access(helper, X_OK))
        skip();
    char outfile[] = "/tmp/kiln-kf-outXXXXXX";
    int ofd = mkstemp(outfile);
    assert_true(ofd >= 0);
    assert_int_equal(write(ofd, "name=value\n", 11), 11);
    close(ofd);
    char cmd[4096];
    /* 5000 bytes on stdout (several records), a tab, a backslash, bytes 1
     * and 255, stderr apart, then signal 9 on itself: status 137. */
    snprintf(cmd, sizeof cmd,
             "%s --output %s -- sh -c 'head -c 5000 /dev/zero | tr \"\\\\0\" a; printf \"\\\\t\\\\\\\\\\\\001\\\\377\\\\n\";"
             " echo oops >&2; kill -9 $$'",
             helper, outfile);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[20000], out[20000], so[8000], se[100], of[100];
    size_t nso = 0, nse = 0, nof = 0;
    uint64_t last = 0;
    int status = -1;
    while (fgets(line, sizeof line, p)) {
        size_t n = strlen(line);
        assert_true(n > 0 && line[n - 1] == '\n'); /* one record, one whole line */
        kube_frame f;
        const char *why = NULL;
        assert_int_equal(kube_frame_parse(line, n - 1, &f, out, &why), 1);
        assert_int_equal(f.seq, last + 1);
        last = f.seq;
        assert_int_equal(status, -1); /* nothing after the exit record */
        if (f.type == 'o') {
            assert_true(nso + f.len <= sizeof so);
            memcpy(so + nso, out, f.len);
            nso += f.len;
        } else if (f.type == 'e') {
            memcpy(se + nse, out, f.len);
            nse += f.len;
        } else if (f.type == 'f') {
            memcpy(of + nof, out, f.len);
            nof += f.len;
        } else {
            status = f.status;
        }
    }
    int rc = pclose(p);
    unlink(outfile);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 137);
    assert_int_equal(status, 137);
    assert_true(last >= 4); /* 5000 bytes do not fit one record */
    assert_int_equal(nso, 5005);
    for (size_t i = 0; i < 5000; i++)
        assert_int_equal(so[i], 'a');
    assert_memory_equal(so + 5000, "\t\\\001\377\n", 5);
    assert_int_equal(nse, 5);
    assert_memory_equal(se, "oops\n", 5);
    assert_int_equal(nof, 11);
    assert_memory_equal(of, "name=value\n", 11);
}

#include "json_path.h"

static void framed_pod(void **state)
{
    const char *argv[] = {"sh", "-c", "echo hi", NULL};
    const char *env[] = {"KILN_OUTPUT=/host/out-1", NULL};
    kiln_exec_spec s = {.struct_size = sizeof s, .build_id = "b1", .step_id = "s", .image = "busybox",
                        .argv = argv, .env = env, .cwd = "/ws", .workspace = "/ws",
                        .output_file = "/host/out-1", .kill_grace_ms = 1000};
    kube_build b = {.build_id = "b1", .owner = "h.1.2", .ns = "n", .workspace_mode = KW_PVC,
                    .claim = "c", .helper_image = "reg/kiln-pod-helper:1"};
    char *body = kube_pod_body(&b, &s, "pod");
    cJSON *p = cJSON_Parse(body);
    free(body);
    assert_non_null(p);
    assert_string_equal(str(p, "spec initContainers 0 name"), "kiln-helper");
    assert_string_equal(str(p, "spec initContainers 0 image"), "reg/kiln-pod-helper:1");
    assert_string_equal(str(p, "spec initContainers 0 command 1"), "--install");
    assert_string_equal(str(p, "spec initContainers 0 command 2"), "/kiln/kiln-pod-helper");
    assert_string_equal(str(p, "spec initContainers 0 volumeMounts 0 mountPath"), "/kiln");
    const cJSON *ctr = get(p, "spec containers 0");
    assert_string_equal(str(ctr, "command 0"), "/kiln/kiln-pod-helper");
    assert_string_equal(str(ctr, "command 1"), "--output"); /* pvc: outputs come in the log */
    assert_string_equal(str(ctr, "command 2"), "/kiln/output");
    assert_string_equal(str(ctr, "command 3"), "--");
    assert_int_equal(cJSON_GetArraySize(get(ctr, "args")), 3);
    assert_string_equal(str(ctr, "args 0"), "sh");
    assert_string_equal(str(ctr, "args 2"), "echo hi");
    assert_string_equal(str(ctr, "env 0 name"), "KILN_OUTPUT");
    assert_string_equal(str(ctr, "env 0 value"), "/kiln/output");
    const cJSON *v, *found = NULL;
    cJSON_ArrayForEach(v, get(p, "spec volumes")) if (!strcmp(str(v, "name"), "kiln-helper")) found = v;
    assert_non_null(cJSON_GetObjectItem(found, "emptyDir"));
    cJSON_Delete(p);

    /* hostpath: kiln reads $KILN_OUTPUT itself; no --output */
    b.workspace_mode = KW_HOSTPATH;
    b.host_dir = "/tmp/x";
    body = kube_pod_body(&b, &s, "pod");
    p = cJSON_Parse(body);
    free(body);
    assert_string_equal(str(p, "spec containers 0 command 1"), "--");
    assert_string_equal(str(p, "spec containers 0 env 0 value"), "/host/out-1");
    cJSON_Delete(p);

    /* the image's own entrypoint: not framed (kiln does not know it) */
    s.image_entrypoint = true;
    const char *args[] = {"--flag", NULL};
    s.argv = args;
    body = kube_pod_body(&b, &s, "pod");
    p = cJSON_Parse(body);
    free(body);
    assert_null(get(p, "spec initContainers"));
    assert_null(get(p, "spec containers 0 command"));
    cJSON_Delete(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records),
        cmocka_unit_test(not_records),
        cmocka_unit_test(helper_round_trip),
        cmocka_unit_test(framed_pod),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
