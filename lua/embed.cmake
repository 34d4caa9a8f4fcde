# Writes OUT, a C file holding each Lua module of MODULES ("name=path|...", name
# as require spells it) as bytes, so that neither the command nor the Lua
# module needs files at run time; lua/lmodules.c loads them. HEADER is
# lmodules.h by its full path, the output being outside the source folder.
# Run as: cmake -DOUT=... -DMODULES=... -DHEADER=... -P embed.cmake
set(body "/* Generated from the Lua modules by lua/embed.cmake; do not edit. */\n#include \"${HEADER}\"\n\n")
set(table "")
set(i 0)
string(REPLACE "|" ";" modules "${MODULES}")
foreach(entry ${modules})
  string(REPLACE "=" ";" pair "${entry}")
  list(GET pair 0 name)
  list(GET pair 1 path)
  file(READ "${path}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR nbytes "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
  string(APPEND body "static const char chunk_${i}[${nbytes} + 1] = {\n${bytes}0 };\n\n")
  string(APPEND table "    { \"${name}\", chunk_${i}, ${nbytes} },\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "const detrun_lua_chunk detrun_lua_chunks[] = {\n${table}    { NULL, NULL, 0 }\n};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(RENAME "${OUT}.tmp" "${OUT}")
