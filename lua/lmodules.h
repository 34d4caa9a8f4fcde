/*
 * lmodules.h - the Lua-side modules compiled into the binary; never installed.
 */
#ifndef DETRUN_LMODULES_H
#define DETRUN_LMODULES_H

#include <stddef.h>

#include <lua.h>

/* An embedded Lua module: its name for require ("detrun.nn") and its source.
 * lua/embed.cmake writes the table, NULL-terminated. */
typedef struct detrun_lua_chunk {
    const char *name;
    const char *code;
    size_t len;
} detrun_lua_chunk;
extern const detrun_lua_chunk detrun_lua_chunks[];

/* With the table of the binding's C functions on top of the stack: makes it
 * the module "detrun.core", puts every embedded module in package.preload,
 * and pushes the public table that the "detrun" module assembles. */
int detrun_lua_open_modules(lua_State *L);

#endif
