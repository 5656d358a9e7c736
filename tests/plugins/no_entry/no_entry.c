/* SPDX-License-Identifier: MIT */
/* A shared object named like a plugin that exports no entry point (as if the
 * author forgot KILN_PLUGIN_DEFINE). kiln must refuse it. */
__attribute__((visibility("default"))) int not_a_kiln_plugin(void);
__attribute__((visibility("default"))) int not_a_kiln_plugin(void)
{
    return 42;
}
