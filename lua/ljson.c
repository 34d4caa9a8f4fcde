/*
 * ljson.c - Lua values to cJSON trees and back, for everything the front end
 * writes as JSON (results, cell records).
 *
 * Writing: object keys come in one canonical order (the results' own fields
 * first, the rest in byte order), so the text never depends on pairs() order.
 * Numbers keep every bit: integers as integers, other finite numbers with 15
 * significant digits when that reads back to the same double, else 17. NaN
 * and the infinities, which JSON lacks, are null, or with
 * DETRUN_JSON_NONFINITE_STRINGS the strings "NaN", "Infinity", "-Infinity".
 * Every node is attached to its parent as soon as it exists, so a Lua error
 * unwinding from here leaves nothing unowned but the root, which the caller
 * keeps in a userdata that frees it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ldetrun.h"

/* Keys in this order first, the others after them in byte order. */
static const char *const key_order[] = {
    "experiment", "detrun_version", "lua_version", "device", "seed", "threads", "settings",
    "overhead", "mode", "repeat", "fold", "epoch", "loss", "accuracy", "val_loss",
    "val_accuracy", "fingerprint", "seconds", "run_seconds", "variance",
    "distinct_fingerprints", "modes", "repeats", "folds", "epochs", NULL
};

static int key_rank(const char *k)
{
    int i = 0;
    while (key_order[i] != NULL && strcmp(key_order[i], k) != 0)
        i++;
    return i;
}

static int key_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int rx = key_rank(x), ry = key_rank(y);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return strcmp(x, y);
}

static cJSON *number(lua_State *L, int idx, int flags)
{
    char text[64];
    if (lua_isinteger(L, idx)) {
        snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, idx));
        return cJSON_CreateRaw(text);
    }
    double d = lua_tonumber(L, idx);
    if (!isfinite(d)) {
        if (!(flags & DETRUN_JSON_NONFINITE_STRINGS))
            return cJSON_CreateNull();
        return cJSON_CreateString(isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    }
    snprintf(text, sizeof text, "%.15g", d);
    if (strtod(text, NULL) != d)
        snprintf(text, sizeof text, "%.17g", d);
    return cJSON_CreateRaw(text);
}

void detrun_lua_to_json(lua_State *L, int idx, cJSON *parent, const char *key,
                        const char *what, int flags, int depth)
{
    idx = lua_absindex(L, idx);
    cJSON *node = NULL;
    if (depth > 32)
        luaL_error(L, "%s: nested too deeply (at \"%s\")", what, key ? key : "?");
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: node = cJSON_CreateBool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER: node = number(L, idx, flags); break;
    case LUA_TSTRING: node = cJSON_CreateString(lua_tostring(L, idx)); break;
    case LUA_TTABLE: {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0;
        int all_strings = 1;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            if (lua_type(L, -2) != LUA_TSTRING)
                all_strings = 0;
            lua_pop(L, 1);
        }
        int array = count == len;
        if (!array && !all_strings)
            luaL_error(L, "%s: \"%s\" mixes array items and named fields", what, key ? key : "?");
        node = array ? cJSON_CreateArray() : cJSON_CreateObject();
        break;
    }
    default:
        luaL_error(L, "%s: cannot store a %s (at \"%s\")", what, luaL_typename(L, idx),
                   key ? key : "?");
    }
    if (node == NULL)
        luaL_error(L, "%s: out of memory", what);
    if (cJSON_IsArray(parent))
        cJSON_AddItemToArray(parent, node);
    else
        cJSON_AddItemToObject(parent, key, node);
    if (cJSON_IsArray(node)) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, idx, i);
            detrun_lua_to_json(L, -1, node, key, what, flags, depth + 1);
            lua_pop(L, 1);
        }
    } else if (cJSON_IsObject(node)) {
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            n++;
            lua_pop(L, 1);
        }
        /* Keys are anchored by the table while the array is in use. */
        const char **keys = lua_newuserdatauv(L, n * sizeof *keys + 1, 0);
        size_t k = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            keys[k++] = lua_tostring(L, -2);
            lua_pop(L, 1);
        }
        qsort(keys, n, sizeof *keys, key_cmp);
        for (size_t i = 0; i < n; i++) {
            lua_getfield(L, idx, keys[i]);
            detrun_lua_to_json(L, -1, node, keys[i], what, flags, depth + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

int detrun_lua_json_depth(const cJSON *v)
{
    int deepest = -1;
    const cJSON *it;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        cJSON_ArrayForEach(it, v) {
            int d = detrun_lua_json_depth(it);
            if (d > deepest)
                deepest = d;
        }
    }
    return deepest + 1;
}

void detrun_lua_push_json(lua_State *L, const cJSON *v, int flags, int depth)
{
    luaL_checkstack(L, 4, "JSON nested too deeply");
    if (depth > DETRUN_JSON_MAX_DEPTH)
        luaL_error(L, "JSON nested too deeply");
    if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* The range first: converting a double outside it is undefined. */
        if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(lua_Integer)d)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if ((flags & DETRUN_JSON_NONFINITE_STRINGS) && strcmp(s, "NaN") == 0)
            lua_pushnumber(L, NAN);
        else if ((flags & DETRUN_JSON_NONFINITE_STRINGS) && strcmp(s, "Infinity") == 0)
            lua_pushnumber(L, INFINITY);
        else if ((flags & DETRUN_JSON_NONFINITE_STRINGS) && strcmp(s, "-Infinity") == 0)
            lua_pushnumber(L, -INFINITY);
        else
            lua_pushstring(L, s);
    } else if (cJSON_IsArray(v)) {
        lua_createtable(L, cJSON_GetArraySize(v), 0);
        const cJSON *it;
        lua_Integer i = 1;
        cJSON_ArrayForEach(it, v) {
            detrun_lua_push_json(L, it, flags, depth + 1);
            lua_seti(L, -2, i++);
        }
    } else if (cJSON_IsObject(v)) {
        lua_newtable(L);
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            detrun_lua_push_json(L, it, flags, depth + 1);
            lua_setfield(L, -2, it->string);
        }
    } else {
        lua_pushnumber(L, NAN);   /* null: how non-finite numbers are written */
    }
}
