# SPDX-License-Identifier: MIT
# First-party plugins: kiln_add_plugin() plus the build-tree output directory
# and installation. A plugin's CMakeLists.txt is one line:
#   kiln_plugin(step exec SOURCES exec.c)
include(${PROJECT_SOURCE_DIR}/sdk/cmake/KilnPlugin.cmake)
function(kiln_plugin kind name)
  kiln_add_plugin(${kind} ${name} OUTPUT_DIR ${KILN_PLUGIN_BUILD_DIR} ${ARGN})
  install(TARGETS kiln-${kind}-${name} LIBRARY DESTINATION ${KILN_PLUGIN_INSTALL_DIR})
endfunction()
