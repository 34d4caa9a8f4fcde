/*
 * fuzz_lua.c - fuzz targets of the JSON files the Lua front end reads (cell
 * records, plans, results): one Lua state with the detrun module, made once,
 * and per input the harness FUZZ_HARNESS (a .lua file beside this one),
 * which calls the same reading and validation functions detrun calls on a
 * file's contents and raises "INVARIANT: ..." when they break a promise.
 *
 * The harness returns function(path, text): path holds the input, text is
 * the same bytes. Any error it raises is a finding.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_detrun(lua_State *L);

#if !defined(FUZZ_HARNESS) || !defined(FUZZ_DIR)
#error "FUZZ_HARNESS: the harness file; FUZZ_DIR: the folder of the harnesses"
#endif

/* A file the harness sends values to (core._send, the worker's line) and
 * reads back: a round trip through the JSON writer without the fsyncs of
 * the record writer, which would make every input take milliseconds. */
static int line_fd = -1;

/* fuzz_line_reset() -> the fd, emptied */
static int line_reset(lua_State *L)
{
    if (ftruncate(line_fd, 0) != 0 || lseek(line_fd, 0, SEEK_SET) != 0)
        return luaL_error(L, "fuzz: cannot empty the line file");
    lua_pushinteger(L, line_fd);
    return 1;
}

/* fuzz_line_read() -> what was sent since the reset */
static int line_read(lua_State *L)
{
    off_t n = lseek(line_fd, 0, SEEK_END);
    if (n < 0 || lseek(line_fd, 0, SEEK_SET) != 0)
        return luaL_error(L, "fuzz: cannot read the line file");
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)n);
    if (read(line_fd, p, (size_t)n) != (ssize_t)n)
        return luaL_error(L, "fuzz: cannot read the line file");
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

static lua_State *state(void)
{
    static lua_State *L;
    if (L != NULL)
        return L;
    /* Grids larger than this are refused before their cells are listed:
     * a plan asking for a million cells would make one input take seconds. */
    setenv("DETRUN_MAX_CELLS", "1000", 1);
    setenv("DETRUN_MAX_REPEATS", "1000", 1);
    L = luaL_newstate();
    if (L == NULL)
        fuzz_fail(FUZZ_HARNESS, "cannot make a Lua state", NULL);
    luaL_openlibs(L);
    luaL_requiref(L, "detrun", luaopen_detrun, 1);
    lua_pop(L, 1);
    line_fd = open(fuzz_path("line"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (line_fd < 0)
        fuzz_fail(FUZZ_HARNESS, "cannot open the line file", fuzz_path("line"));
    lua_register(L, "fuzz_line_reset", line_reset);
    lua_register(L, "fuzz_line_read", line_read);
    lua_pushstring(L, FUZZ_DIR);
    lua_setglobal(L, "FUZZ_DIR");   /* where the harnesses' shared code is */
    if (luaL_dofile(L, FUZZ_HARNESS) != LUA_OK || !lua_isfunction(L, -1))
        fuzz_fail(FUZZ_HARNESS, "cannot load the harness", lua_tostring(L, -1));
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.harness");
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = state();
    const char *path = fuzz_input_file(data, size);
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.harness");
    lua_pushstring(L, path);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK)
        fuzz_fail(FUZZ_HARNESS, "the harness raised", lua_tostring(L, -1));
    /* What the input made is freed before the next one: libFuzzer looks for
     * leaks whenever an input's mallocs and frees do not balance. */
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
