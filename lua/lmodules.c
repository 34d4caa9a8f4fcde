/*
 * lmodules.c - the Lua-side modules in Lua 5.4's form.
 *
 * Each embedded file is a module that returns its table and requires what it
 * uses. They go to package.preload under their names, so that require finds
 * them before any file on package.path and in no fixed order; the binding's C
 * functions are the module "detrun.core" (as socket.core is to LuaSocket).
 * The module "detrun" (lua/init.lua) assembles the public table from them.
 */
#include <string.h>

#include <lauxlib.h>

#include "lmodules.h"

/* Pushes the compiled chunk c, named "[detrun.nn]" in error messages. */
static void load_chunk(lua_State *L, const detrun_lua_chunk *c)
{
    lua_pushfstring(L, "=[%s]", c->name);
    if (luaL_loadbuffer(L, c->code, c->len, lua_tostring(L, -1)) != LUA_OK)
        lua_error(L);
    lua_remove(L, -2);
}

int detrun_lua_open_modules(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "detrun.core");
    lua_pop(L, 1);

    const detrun_lua_chunk *assembly = NULL;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const detrun_lua_chunk *c = detrun_lua_chunks; c->name != NULL; c++) {
        if (strcmp(c->name, "detrun") == 0) {
            assembly = c;
            continue;
        }
        load_chunk(L, c);
        lua_setfield(L, -2, c->name);
    }
    lua_pop(L, 1);
    if (assembly == NULL)
        return luaL_error(L, "detrun: the module \"detrun\" is not embedded");
    /* Run as require would, without taking the name that luaL_requiref or
     * the C searcher is filling in. */
    load_chunk(L, assembly);
    lua_pushstring(L, "detrun");
    lua_pushstring(L, ":embedded:");
    lua_call(L, 2, 1);
    return 1;
}
