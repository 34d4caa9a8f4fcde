/*
 * lsandbox.h - the sandbox for untrusted scripts (lsandbox.c); never installed.
 */
#ifndef DETRUN_LSANDBOX_H
#define DETRUN_LSANDBOX_H

#include <lua.h>

typedef enum detrun_lua_access { DETRUN_LUA_READ, DETRUN_LUA_WRITE } detrun_lua_access;

/* Whether the state runs a sandboxed script. */
int detrun_lua_sandboxed(lua_State *L);

/* In a sandboxed state, raises an error naming path unless it resolves inside
 * the data folder or the output folder (a write: the output folder only);
 * elsewhere does nothing. `what` says who asks ("dr.data.idx"). */
void detrun_lua_checkpath(lua_State *L, const char *path, detrun_lua_access how,
                          const char *what);

/* Makes the state a sandbox: with the standard libraries and the detrun
 * module already open, records the two folders (NULL: none), strips the
 * modules' own globals down to path-checked files, and pushes the table that
 * is to be the script's _ENV. */
void detrun_lua_sandbox_open(lua_State *L, const char *data_dir, const char *out_dir);

/* Sets __metatable (to the metatable's name) on every named metatable in the
 * registry, so that getmetatable on the binding's objects gives a name, never
 * the table. */
void detrun_lua_protect_metatables(lua_State *L);

#endif
