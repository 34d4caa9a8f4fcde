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
 * A record is JSON. Numbers are written with 17 significant digits (or as
 * integers), which strtod reads back to the same double; NaN and the
 * infinities, which JSON lacks, are the strings "NaN", "Infinity" and
 * "-Infinity".
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "ldetrun.h"

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the Lua value at idx to parent; nodes are attached at once so that
 * an error leaves nothing unowned but the root, which the caller frees. */
static const char *to_json(lua_State *L, int idx, cJSON *parent, const char *key, int depth)
{
    idx = lua_absindex(L, idx);
    cJSON *node = NULL;
    char num[64];
    if (depth > 32)
        return "nested too deeply";
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: node = cJSON_CreateBool(lua_toboolean(L, idx)); break;
    case LUA_TSTRING: node = cJSON_CreateString(lua_tostring(L, idx)); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
            node = cJSON_CreateRaw(num);
        } else {
            double d = lua_tonumber(L, idx);
            if (isnan(d))
                node = cJSON_CreateString("NaN");
            else if (isinf(d))
                node = cJSON_CreateString(d > 0 ? "Infinity" : "-Infinity");
            else {
                snprintf(num, sizeof num, "%.17g", d);
                node = cJSON_CreateRaw(num);
            }
        }
        break;
    case LUA_TTABLE: {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        node = count == len && len > 0 ? cJSON_CreateArray() : cJSON_CreateObject();
        break;
    }
    default:
        return "a record holds only booleans, numbers, strings and tables";
    }
    if (node == NULL)
        return "out of memory";
    if (cJSON_IsArray(parent))
        cJSON_AddItemToArray(parent, node);
    else
        cJSON_AddItemToObject(parent, key, node);
    if (cJSON_IsArray(node)) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, idx, i);
            const char *err = to_json(L, -1, node, NULL, depth + 1);
            lua_pop(L, 1);
            if (err != NULL)
                return err;
        }
    } else if (cJSON_IsObject(node)) {
        /* Keys sorted: the same record gives the same bytes. */
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            n++;
            lua_pop(L, 1);
        }
        const char **keys = lua_newuserdatauv(L, n * sizeof *keys + 1, 0);
        size_t k = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                lua_pop(L, 3);
                return "a table mixes array items and named fields";
            }
            keys[k++] = lua_tostring(L, -2);
            lua_pop(L, 1);
        }
        qsort(keys, n, sizeof *keys, key_cmp);
        for (size_t i = 0; i < n; i++) {
            lua_getfield(L, idx, keys[i]);
            const char *err = to_json(L, -1, node, keys[i], depth + 1);
            lua_pop(L, 1);
            if (err != NULL) {
                lua_pop(L, 1);
                return err;
            }
        }
        lua_pop(L, 1);
    }
    return NULL;
}

static void push_json(lua_State *L, const cJSON *j)
{
    luaL_checkstack(L, 4, "record");
    if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(j)) {
        const char *s = j->valuestring;
        if (strcmp(s, "NaN") == 0)
            lua_pushnumber(L, NAN);
        else if (strcmp(s, "Infinity") == 0)
            lua_pushnumber(L, INFINITY);
        else if (strcmp(s, "-Infinity") == 0)
            lua_pushnumber(L, -INFINITY);
        else
            lua_pushstring(L, s);
    } else if (cJSON_IsArray(j)) {
        lua_newtable(L);
        lua_Integer i = 1;
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            push_json(L, c);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsObject(j)) {
        lua_newtable(L);
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            push_json(L, c);
            lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushnil(L);
    }
}

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
    json_box *b = new_box(L);
    b->root = cJSON_CreateArray();
    if (b->root == NULL)
        return luaL_error(L, "%s: out of memory", path);
    const char *err = to_json(L, 2, b->root, NULL, 0);
    if (err != NULL)
        return luaL_error(L, "%s: cannot write the record: %s", path, err);
    make_parent(L, path);
    char *text = cJSON_Print(cJSON_GetArrayItem(b->root, 0));
    if (text == NULL)
        return luaL_error(L, "%s: out of memory", path);
    size_t len = strlen(text);
    const void *parts[2] = { text, "\n" };
    size_t lens[2] = { len, 1 };
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_status st = detrun_write_file_atomic(rt, path, parts, lens, 2);
    cJSON_free(text);
    if (st != DETRUN_OK)
        return luaL_error(L, "%s", detrun_errmsg(rt));
    return 0;
}

static int l_record_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
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
    push_json(L, b->root);
    return 1;
}

static int l_mkdirs(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
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
