-- LuaRocks: `luarocks make rockspecs/detrun-0.1.0-1.rockspec` in the source
-- folder builds detrun with CMake and installs the module detrun.so (for
-- `require "detrun"`) and the detrun command into the rocks tree. The
-- Debian packages of the README must be installed (CMake finds them with
-- pkg-config); the CUDA backend is left out of a rock.
rockspec_format = "3.0"
package = "detrun"
version = "0.1.0-1"
source = {
  url = "detrun-0.1.0.tar.gz",   -- the release archive; `luarocks make` builds the folder it runs in
  dir = "detrun-0.1.0",
}
description = {
  summary = "Deep-learning runtime with bit-for-bit reproducible training",
  detailed = [[
detrun is a deep-learning runtime in C11 with a Lua 5.4 front end: the same
experiment script, data and seed give bit-identical weights at any thread
count. require "detrun" gives the model builder, experiments and their
fingerprints.]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    DETRUN_LUA_MODULE_DIR = "$(LIBDIR)",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    DETRUN_ROCK = "ON",
    DETRUN_TESTS = "OFF",
    DETRUN_CUDA = "OFF",
  },
}
