# SPDX-License-Identifier: MIT
# cmake -DOUT=file.c -DDIR=web -DFILES=a,b -P EmbedWeb.cmake
# Writes kiln serve's page files into one C file (kiln__web_assets[]), so
# the binary serves them with nothing installed beside it.
set(body "/* Generated from web/ by cmake/EmbedWeb.cmake: do not edit. */\n#include <stddef.h>\n#include \"serve_web_assets.h\"\n")
set(table "")
string(REPLACE "," ";" FILES "${FILES}")
set(i 0)
foreach(f IN LISTS FILES)
  file(READ "${DIR}/${f}" hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR n "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "((0x..,){32})" "\\1\n" hex "${hex}")
  string(APPEND body "static const unsigned char a${i}[] = {\n${hex}0};\n")
  string(APPEND table "    {\"${f}\", a${i}, ${n}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "const struct kiln__web_asset kiln__web_assets[] = {\n${table}    {NULL, NULL, 0},\n};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
