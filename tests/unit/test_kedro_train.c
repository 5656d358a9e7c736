/* SPDX-License-Identifier: MIT */
/* Unit tests for the kedro-train plugin's pure parts: the log-line parser,
 * the pyproject.toml reader, command splitting and the project check. The
 * plugin's sources are compiled in directly (they do not use kiln_api). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/step_kedro_train/kedro_check.c"
#include "../../plugins/step_kedro_train/kedro_parse.c"
#include "../../plugins/step_kedro_train/kedro_util.c"

static kt_event feed(kt_progress *p, int stream, const char *line)
{
    return kt_parse_line(p, stream, line, strlen(line));
}

static void test_progress_good_run(void **state)
{
    kt_progress p = {0};
    assert_int_equal(feed(&p, 1, "INFO kedro.framework.session.session: Kedro project purchase_predict"), KT_EV_NONE);
    assert_int_equal(feed(&p, 1, "INFO kedro.pipeline.node: Running node: prepare_data: prepare_data([purchases_raw]) -> [purchases]"),
                     KT_EV_RUNNING);
    assert_string_equal(p.running, "prepare_data");
    assert_int_equal(p.total, 0);
    assert_int_equal(feed(&p, 1, "INFO kedro.runner.sequential_runner: Completed node: prepare_data"), KT_EV_NONE);
    assert_string_equal(p.last_completed, "prepare_data");
    assert_int_equal(feed(&p, 1, "INFO kedro.runner.sequential_runner: Completed 1 out of 4 tasks"), KT_EV_TASKS);
    assert_int_equal(p.done, 1);
    assert_int_equal(p.total, 4);
    /* Unnamed node: the function name. */
    feed(&p, 1, "2026-01-01 - kedro.pipeline.node - INFO - Running node: split_data([a;params:data]) -> [b;c]");
    assert_string_equal(p.running, "split_data");
    feed(&p, 1, "[08/20/26 14:16:45] INFO     Completed 4 out of 4 tasks      runner.py:245");
    assert_int_equal(p.done, 4);
    feed(&p, 1, "INFO kedro.runner.sequential_runner: Pipeline execution completed successfully in 0.3 sec.");
    assert_true(p.completed);
    assert_null(p.failed_node);
    kt_progress_free(&p);
}

static void test_progress_failure(void **state)
{
    kt_progress p = {0};
    feed(&p, 1, "INFO kedro.runner.sequential_runner: Completed 2 out of 4 tasks");
    assert_int_equal(
        feed(&p, 1, "ERROR kedro.pipeline.node: Node train_model: train_model([train_set;params:model]) -> [model] failed with error: "),
        KT_EV_FAILED);
    assert_string_equal(p.failed_node, "train_model");
    feed(&p, 2, "some stderr noise");
    assert_int_equal(feed(&p, 1, "model.learning_rate must be positive, got -1.0"), KT_EV_ERROR);
    assert_string_equal(p.error_text, "model.learning_rate must be positive, got -1.0");
    feed(&p, 1, "WARNING kedro.runner.sequential_runner: There are 2 nodes that have not run.");
    assert_int_equal(p.not_run, 2);
    feed(&p, 1, "You can resume the pipeline run from the nearest nodes with persisted inputs by adding the following argument to your previous command:");
    assert_int_equal(feed(&p, 1, "  --from-nodes \"split_data,train_model\""), KT_EV_RESUME);
    assert_string_equal(p.resume_from, "split_data,train_model");
    feed(&p, 2, "ValueError: model.learning_rate must be positive, got -1.0");
    assert_string_equal(p.last_stderr, "ValueError: model.learning_rate must be positive, got -1.0");
    kt_progress_free(&p);
}

static void test_usage_and_missing_module(void **state)
{
    kt_progress p = {0};
    feed(&p, 2, "Usage: kedro run [OPTIONS]");
    feed(&p, 2, "Error: No such option: --bogus");
    assert_string_equal(p.usage_error, "Error: No such option: --bogus");
    feed(&p, 2, "/usr/bin/python3: No module named kedro");
    assert_true(p.no_module_kedro);
    feed(&p, 1, "WARNING kedro.runner.sequential_runner: No nodes ran. Repeat the previous command to attempt a new run.");
    assert_true(p.no_nodes_ran);
    kt_progress_free(&p);
}

static void test_pyproject(void **state)
{
    kt_pyproject m;
    kt_pyproject_parse("[project]\nname = \"x\"\n\n[ tool.kedro ]\npackage_name = \"purchase_predict\"  # c\n"
                       "project_name='purchase-predict'\nkedro_init_version = \"1.3.1\"\ntools = [\n  \"a=b\",\n]\n"
                       "[tool.kedro.extra]\nsource_dir = \"nope\"\n",
                       &m);
    assert_true(m.has_section);
    assert_string_equal(m.package_name, "purchase_predict");
    assert_string_equal(m.project_name, "purchase-predict");
    assert_string_equal(m.kedro_init_version, "1.3.1");
    assert_null(m.source_dir);
    kt_pyproject_free(&m);
    kt_pyproject_parse("[tool.black]\nline-length = 100\n", &m);
    assert_false(m.has_section);
    kt_pyproject_free(&m);
}

static void test_split_command(void **state)
{
    kt_strv w = {0};
    assert_int_equal(kt_split_command("  python3 -m  kedro ", &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.v[1], "-m");
    kt_strv_free(&w);
    assert_int_equal(kt_split_command("\"/opt/my venv/bin/kedro\"", &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.v[0], "/opt/my venv/bin/kedro");
    kt_strv_free(&w);
    assert_int_equal(kt_split_command("kedro 'oops", &w), -1);
    kt_strv_free(&w);
    assert_int_equal(kt_split_command("   ", &w), -1);
    kt_strv_free(&w);
}

static void test_check_project(void **state)
{
    const char *src = getenv("KILN_SOURCE_DIR");
    if (!src)
        skip();
    char *proj = kt_asprintf("%s/tests/data/kedro_project", src);
    kt_check_in in = {.project_dir = proj, .project_label = "./kedro_project", .env = "staging", .env_origin = "from env:"};
    kt_check_out out;
    kt_check_project(&in, &out);
    for (size_t i = 0; i < out.problems.n; i++)
        fprintf(stderr, "unexpected: %s\n", out.problems.v[i]);
    assert_int_equal(out.problems.n, 0);
    assert_string_equal(out.package_name, "purchase_predict");
    kt_check_out_free(&out);

    in.env = "feature-x";
    in.env_origin = "from BRANCH_NAME=feature-x";
    kt_check_project(&in, &out);
    assert_int_equal(out.problems.n, 1);
    assert_string_equal(out.problems.v[0], "./kedro_project/conf/feature-x/ is missing: no configuration for "
                                           "environment \"feature-x\" (from BRANCH_NAME=feature-x)");
    kt_check_out_free(&out);

    in.conf_source = "settings";
    in.env = "staging";
    kt_check_project(&in, &out);
    assert_int_equal(out.problems.n, 1);
    assert_non_null(strstr(out.problems.v[0], "./kedro_project/settings/ is missing"));
    kt_check_out_free(&out);

    char *nowhere = kt_asprintf("%s/does-not-exist", proj);
    in.project_dir = nowhere;
    in.project_label = "nowhere";
    kt_check_project(&in, &out);
    assert_int_equal(out.problems.n, 1);
    assert_non_null(strstr(out.problems.v[0], "project directory nowhere does not exist"));
    kt_check_out_free(&out);
    free(nowhere);
    free(proj);
}

static void test_find_executable(void **state)
{
    char *p = kt_find_executable("sh", "/", "/nonexistent:/bin:/usr/bin");
    assert_non_null(p);
    free(p);
    assert_null(kt_find_executable("kedro-surely-not-installed", "/", "/bin:/usr/bin"));
    p = kt_find_executable("bin/sh", "/", NULL);
    assert_non_null(p);
    assert_string_equal(p, "/bin/sh");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_good_run), cmocka_unit_test(test_progress_failure),
        cmocka_unit_test(test_usage_and_missing_module), cmocka_unit_test(test_pyproject),
        cmocka_unit_test(test_split_command), cmocka_unit_test(test_check_project),
        cmocka_unit_test(test_find_executable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
