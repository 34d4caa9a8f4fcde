/*
 * lrun.c - run settings (dr.run{seed, mode, threads}): what a fit or an
 * evaluate runs with. Settings travel with the call, not with the process,
 * so that two runs in one script can differ in mode or thread count.
 */
#include <string.h>

#include "ldetrun.h"

static const char *const mode_names[] = { "deterministic", "fast", NULL };

detrun_lua_run *detrun_lua_checkrun(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, DETRUN_LUA_RUN);
}

detrun_status detrun_lua_apply_run(detrun_runtime *rt, const detrun_lua_run *run)
{
    detrun_status st = detrun_set_mode(rt, run->mode);
    if (st == DETRUN_OK)
        st = detrun_set_threads(rt, run->threads);
    if (st == DETRUN_OK)
        detrun_set_seed(rt, (uint64_t)run->seed);
    return st;
}

/* dr.run{ seed = 0, mode = "deterministic", threads = N }: unset fields take
 * the runtime's (the command's -s, -t). */
static int l_run(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    else {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    detrun_lua_run *run = lua_newuserdatauv(L, sizeof *run, 0);
    run->mode = detrun_get_mode(rt);
    run->threads = detrun_get_threads(rt);
    run->seed = (lua_Integer)detrun_get_seed(rt);
    luaL_setmetatable(L, DETRUN_LUA_RUN);

    if (lua_getfield(L, 1, "mode") != LUA_TNIL) {
        const char *m = lua_tostring(L, -1);
        int i = 0;
        while (mode_names[i] != NULL && (m == NULL || strcmp(m, mode_names[i]) != 0))
            i++;
        if (mode_names[i] == NULL)
            return luaL_error(L, "dr.run: mode must be \"deterministic\" or \"fast\", not %s",
                              luaL_tolstring(L, -1, NULL));
        run->mode = i == 0 ? DETRUN_DETERMINISTIC : DETRUN_FAST;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "threads") != LUA_TNIL) {
        int ok;
        lua_Integer t = lua_tointegerx(L, -1, &ok);
        if (!ok || t < 0 || t > 4096)
            return luaL_error(L, "dr.run: threads must be an integer from 0 (all cores) to 4096");
        run->threads = (int)t;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "seed") != LUA_TNIL) {
        int ok;
        run->seed = lua_tointegerx(L, -1, &ok);
        if (!ok)
            return luaL_error(L, "dr.run: seed must be an integer");
    }
    lua_pop(L, 1);
    return 1;
}

static int run_index(lua_State *L)
{
    detrun_lua_run *run = detrun_lua_checkrun(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "mode") == 0)
        lua_pushstring(L, mode_names[run->mode == DETRUN_FAST]);
    else if (strcmp(k, "threads") == 0)
        lua_pushinteger(L, run->threads);
    else if (strcmp(k, "seed") == 0)
        lua_pushinteger(L, run->seed);
    else
        lua_pushnil(L);
    return 1;
}

static int run_tostring(lua_State *L)
{
    detrun_lua_run *run = detrun_lua_checkrun(L, 1);
    lua_pushfstring(L, "detrun.run(%s, seed %I, threads %d)", mode_names[run->mode == DETRUN_FAST],
                    run->seed, run->threads);
    return 1;
}

void detrun_lua_open_run(lua_State *L)
{
    if (luaL_newmetatable(L, DETRUN_LUA_RUN)) {
        lua_pushcfunction(L, run_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, run_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_run);
    lua_setfield(L, -2, "run");
}
