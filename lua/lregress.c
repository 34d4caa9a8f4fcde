/*
 * lregress.c - what the experiment runner needs to resume a run
 * (docs/regression.md, "Resume"): cell records written and read back with
 * every bit of every number, and the trace label of the cell being run.
 *
 *   dr._record_write(path, record)   atomically, creating the folder
 *   dr._record_read(path)            -> record | nil when there is none
 *   dr._trace_label(label)
 *   dr._mkdirs(dir)                  mkdir -p
 *
 * A record is JSON written by ljson.c: every number reads back to the same
 * double; NaN and the infinities, which JSON lacks, are the strings "NaN",
 * "Infinity" and "-Infinity".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ldetrun.h"
#include "lsandbox.h"


/* mkdir -p of the folder that holds path. */
static void make_parent(lua_State *L, const char *path)
{
    char dir[4096], err[4200];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        luaL_error(L, "%s: path too long", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return;
    *slash = '\0';
    if (detrun_lua_mkdirs(dir, err, sizeof err) != 0)
        luaL_error(L, "%s", err);
}

typedef struct json_box { cJSON *root; } json_box;

static int box_gc(lua_State *L)
{
    json_box *b = lua_touserdata(L, 1);
    cJSON_Delete(b->root);
    b->root = NULL;
    return 0;
}

static json_box *new_box(lua_State *L)
{
    json_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->root = NULL;
    if (luaL_newmetatable(L, "detrun.json_box")) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

static int l_record_write(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    detrun_lua_checkpath(L, path, DETRUN_LUA_WRITE, "record");
    json_box *b = new_box(L);
    b->root = cJSON_CreateArray();
    if (b->root == NULL)
        return luaL_error(L, "%s: out of memory", path);
    detrun_lua_to_json(L, 2, b->root, NULL, path, DETRUN_JSON_NONFINITE_STRINGS, 0);
    make_parent(L, path);
    char *text = cJSON_Print(cJSON_GetArrayItem(b->root, 0));
    if (text == NULL)
        return luaL_error(L, "%s: out of memory", path);
    size_t len = strlen(text);
    const void *parts[2] = { text, "\n" };
    size_t lens[2] = { len, 1 };
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_status st = detrun_write_atomic(rt, path, parts, lens, 2);
    cJSON_free(text);
    if (st != DETRUN_OK)
        return luaL_error(L, "%s", detrun_errmsg(rt));
    return 0;
}

static int l_record_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    detrun_lua_checkpath(L, path, DETRUN_LUA_READ, "record");
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        return luaL_error(L, "%s: cannot open: %s", path, strerror(errno));
    }
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        luaL_addlstring(&buf, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return luaL_error(L, "%s: cannot read", path);
    luaL_pushresult(&buf);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    json_box *b = new_box(L);
    b->root = cJSON_ParseWithLength(text, len);
    if (b->root == NULL || !cJSON_IsObject(b->root))
        return luaL_error(L, "%s: not a cell record (not a JSON object); remove it to run the "
                          "cell again", path);
    if (detrun_lua_json_depth(b->root) > DETRUN_JSON_MAX_DEPTH)
        return luaL_error(L, "%s: not a cell record (nested deeper than %d levels); remove it "
                          "to run the cell again", path, DETRUN_JSON_MAX_DEPTH);
    detrun_lua_push_json(L, b->root, DETRUN_JSON_NONFINITE_STRINGS, 0);
    return 1;
}

static int l_mkdirs(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    detrun_lua_checkpath(L, dir, DETRUN_LUA_WRITE, "mkdir");
    lua_pushfstring(L, "%s/.", dir);
    make_parent(L, lua_tostring(L, -1));
    return 0;
}

static int l_trace_label(lua_State *L)
{
    detrun_trace_label(detrun_lua_runtime(L), luaL_optstring(L, 1, NULL));
    return 0;
}

void detrun_lua_open_regress(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "_record_write", l_record_write },
        { "_record_read", l_record_read },
        { "_trace_label", l_trace_label },
        { "_mkdirs", l_mkdirs },
        { NULL, NULL }
    };
    luaL_setfuncs(L, funcs, 0);
}
