/*
 * ldetrun.c - luaopen_detrun: the module table, the runtime it works with,
 * and the small utilities the Lua-side modules need from C.
 *
 * Run by `detrun` (or detrun_run_file) the state borrows the host's runtime;
 * required from the stock lua5.4 it opens one of its own, owned by a userdata
 * in the registry so that lua_close releases it after every model.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ldetrun.h"
#include "lmodules.h"
#include "lsandbox.h"

#define OWNER "detrun.runtime.owner"

detrun_runtime *detrun_lua_runtime(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_RUNTIME);
    detrun_runtime *rt = NULL;
    detrun_runtime **owned = luaL_testudata(L, -1, OWNER);   /* never another userdata */
    if (lua_islightuserdata(L, -1))
        rt = lua_touserdata(L, -1);
    else if (owned != NULL)
        rt = *owned;
    lua_pop(L, 1);
    if (rt == NULL)
        luaL_error(L, "detrun: no runtime (the module was not opened)");
    return rt;
}

static int owner_gc(lua_State *L)
{
    detrun_runtime **p = luaL_checkudata(L, 1, OWNER);
    detrun_close(*p);
    *p = NULL;
    return 0;
}

/* Opens a runtime for a state that has none (the stock interpreter). */
static void ensure_runtime(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_RUNTIME);
    int have = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (have)
        return;
    detrun_runtime **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    if (luaL_newmetatable(L, OWNER)) {
        lua_pushcfunction(L, owner_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    detrun_options opt = DETRUN_OPTIONS_INIT;
    detrun_status st = detrun_open(p, &opt);
    if (st != DETRUN_OK) {
        lua_pushfstring(L, "detrun: cannot open a runtime: %s", detrun_errmsg(*p));
        detrun_close(*p);
        *p = NULL;
        lua_error(L);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_RUNTIME);
    /* Outside the command: progress and report on, results written only
     * where the experiment names a folder. */
    lua_newtable(L);
    lua_pushinteger(L, 2);
    lua_setfield(L, -2, "verbosity");
    lua_setfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_OPTIONS);
}

/* dr.options() -> a copy of the command-line overrides. */
static int l_options(lua_State *L)
{
    lua_newtable(L);
    lua_getfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_OPTIONS);
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {   /* a copy: order does not matter */
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }
    }
    lua_pop(L, 1);
    return 1;
}

/* dr.set_options{...}: the overrides the command would impose (mode, seed,
 * repeats, folds, epochs, limit, data, out, verbosity, resume, no_report, jobs), for hosts such
 * as the stock interpreter. Merged into the current ones: a key not given
 * keeps its value. An unknown key is an error naming it (sorted first, so the
 * message does not depend on the table's order). */
static int l_set_options(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const keys[] = { "mode", "seed", "repeats", "folds", "epochs", "limit",
                                        "data", "out", "verbosity", "resume", "no_report", "jobs",
                                        NULL };
    const char *bad = NULL;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
        int known = 0;
        for (int i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known && (bad == NULL || strcmp(k, bad) < 0))
            bad = k;   /* stays alive: the key is in the table at index 1 */
    }
    if (bad != NULL)
        return luaL_error(L, "dr.set_options: unknown option '%s' (known: mode, seed, repeats, "
                             "folds, epochs, limit, data, out, verbosity, resume, no_report, jobs)", bad);
    if (lua_getfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_OPTIONS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_newtable(L);   /* a new table: dr.options() copies handed out stay as they were */
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    for (int i = 0; keys[i] != NULL; i++)
        if (lua_getfield(L, 1, keys[i]) != LUA_TNIL)
            lua_setfield(L, -2, keys[i]);
        else
            lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_OPTIONS);
    return 0;
}

/* dr.clock() -> monotonic seconds, for timings only (never for results). */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

/* dr.isatty() -> whether stderr is a terminal (progress bar or lines). */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty(STDERR_FILENO));
    return 1;
}

/* dr.randomseed(seed, stream): seeds math.random from Philox (purpose
 * SCRIPT), so that scripts draw the same numbers in every process. */
static int l_randomseed(lua_State *L)
{
    uint64_t seed = (uint64_t)luaL_checkinteger(L, 1);
    uint32_t stream = (uint32_t)luaL_optinteger(L, 2, 0);
    uint64_t w[2];
    detrun_script_seed(seed, stream, w);
    lua_Integer a = (lua_Integer)w[0];
    lua_Integer b = (lua_Integer)w[1];
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "math");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "randomseed");
        lua_pushinteger(L, a);
        lua_pushinteger(L, b);
        lua_call(L, 2, 0);
    }
    lua_pop(L, 2);
    return 0;
}

/* dr.fingerprint_strings{s1, s2, ...} -> XXH3-128 of the strings, each
 * preceded by its length (uint32 little-endian): a repeat's fingerprint from
 * its folds'. */
static int l_fingerprint_strings(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 0 && n < 1000000, 1, "too many strings");
    const char **strs = lua_newuserdatauv(L, (size_t)n * sizeof *strs + 1, 0);
    size_t *lens = lua_newuserdatauv(L, (size_t)n * sizeof *lens + 1, 0);
    /* The strings stay on the stack while hashed: a number converted by
     * lua_tolstring lives only there. */
    luaL_checkstack(L, (int)(n < 1000000 ? n : 1000000), "too many strings");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        strs[i - 1] = lua_tolstring(L, -1, &lens[i - 1]);
        if (strs[i - 1] == NULL)
            return luaL_error(L, "fingerprint_strings: item %d is not a string", (int)i);
    }
    char hex[33];
    if (detrun_repeat_fingerprint(strs, lens, (size_t)n, hex) != DETRUN_OK)
        return luaL_error(L, "out of memory");
    lua_pushlstring(L, hex, 32);
    return 1;
}

/* dr.device() -> "cpu", "cuda:0 (portable)", ... */
static int l_device(lua_State *L)
{
    lua_pushstring(L, detrun_device_name(detrun_lua_runtime(L)));
    return 1;
}

/* dr.threads() -> the runtime's thread count (the command's -t). */
static int l_threads(lua_State *L)
{
    lua_pushinteger(L, detrun_get_threads(detrun_lua_runtime(L)));
    return 1;
}

/* dr._machine() -> the line describing the machine (CPU model, ISA, threads,
 * device), for the report's header. */
static int l_machine(lua_State *L)
{
    char buf[400];
    detrun_machine(detrun_lua_runtime(L), buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg funcs[] = {
    { "options", l_options },
    { "set_options", l_set_options },
    { "clock", l_clock },
    { "isatty", l_isatty },
    { "term_width", detrun_lua_term_width },
    { "randomseed", l_randomseed },
    { "fingerprint_strings", l_fingerprint_strings },
    { "device", l_device },
    { "threads", l_threads },
    { "_machine", l_machine },
    { NULL, NULL }
};

int luaopen_detrun(lua_State *L)
{
    luaL_checkversion(L);
    ensure_runtime(L);
    luaL_newlib(L, funcs);
    lua_pushstring(L, detrun_version());
    lua_setfield(L, -2, "version");
    detrun_lua_open_run(L);
    detrun_lua_open_data(L);
    detrun_lua_open_model(L);
    detrun_lua_open_tensor(L);
    detrun_lua_open_results(L);
    detrun_lua_open_regress(L);
    detrun_lua_open_guard(L);
    detrun_lua_open_worker(L);
    detrun_lua_open_modules(L);   /* the table above is detrun.core; pushes the public one */
    /* math.random from the runtime's seed until an experiment reseeds it. */
    lua_pushcfunction(L, l_randomseed);
    lua_pushinteger(L, (lua_Integer)detrun_get_seed(detrun_lua_runtime(L)));
    lua_call(L, 1, 0);
    detrun_lua_protect_metatables(L);   /* getmetatable on an object gives its name */
    return 1;
}
