# SPDX-License-Identifier: MIT
# kiln_add_plugin(KIND NAME SOURCES ... [LIBS ...])
#   KIND is step, sink or executor (ABI 1.6); NAME is the plugin's name (dashes allowed).
#   Builds kiln-KIND-NAME.so, a module that links nothing of kiln's.
function(kiln_add_plugin kind name)
  cmake_parse_arguments(P "" "OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  set(tgt kiln-${kind}-${name})
  add_library(${tgt} MODULE ${P_SOURCES})
  set_target_properties(${tgt} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
  if(P_OUTPUT_DIR)
    set_target_properties(${tgt} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
  endif()
  target_link_libraries(${tgt} PRIVATE kiln::sdk ${P_LIBS})
  if(NOT CMAKE_C_FLAGS MATCHES "sanitize" AND NOT KILN_SANITIZE)
    target_link_options(${tgt} PRIVATE "LINKER:--no-undefined")
  endif()
endfunction()
