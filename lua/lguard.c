/*
 * lguard.c - what guards a run's results folder against faults and mix-ups:
 *
 *   dr._lock(dir [, part])   -> a lock (closed by <close>, :release() or the GC)
 *                               of the folder, or of one part of it (a shard);
 *                               error naming the holder when another run has it
 *   dr._write_set{{path, text}, ...}  -> true | nil, message: all or none
 *                               (detrun_write_set)
 *   dr._set_id()             -> a new results set id (detrun_results_set_id)
 *   dr._data_hash(ds)        -> 32 hex digits of the data set's bytes
 *   dr._file_hash(path)      -> 32 hex digits of the file's bytes | nil
 *   dr._remove_temps(dir)    removes dir's "*.tmp" files: what writes cut
 *                               short by a kill left (the caller holds the lock)
 *   dr._limit(env, default)  -> the positive integer in $env, else default:
 *                               the caps on declared sizes a user can raise
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "ldetrun.h"
#include "lsandbox.h"

#define LOCK_META "detrun.folder_lock"

typedef struct lock_box { detrun_folder_lock *lock; } lock_box;

static int lock_release(lua_State *L)
{
    lock_box *b = luaL_checkudata(L, 1, LOCK_META);
    detrun_folder_unlock(b->lock);
    b->lock = NULL;
    return 0;
}

static int l_lock(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *part = luaL_optstring(L, 2, NULL);
    detrun_runtime *rt = detrun_lua_runtime(L);
    lock_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->lock = NULL;
    luaL_setmetatable(L, LOCK_META);
    if ((part != NULL ? detrun_folder_lock_part(rt, dir, part, &b->lock)
                      : detrun_folder_lock_acquire(rt, dir, &b->lock)) != DETRUN_OK)
        return luaL_error(L, "%s", detrun_errmsg(rt));
    return 1;
}

static int l_write_set(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 64, 1, "1 to 64 files");
    const char **paths = lua_newuserdatauv(L, (size_t)n * sizeof *paths + 1, 0);
    const void **texts = lua_newuserdatauv(L, (size_t)n * sizeof *texts + 1, 0);
    size_t *lens = lua_newuserdatauv(L, (size_t)n * sizeof *lens + 1, 0);
    luaL_checkstack(L, 2 * (int)n + 2, "_write_set");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 1, i) != LUA_TTABLE)
            return luaL_error(L, "_write_set: item %d is not {path, text}", (int)i);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        paths[i - 1] = lua_tostring(L, -2);
        texts[i - 1] = lua_tolstring(L, -1, &lens[i - 1]);
        if (paths[i - 1] == NULL || texts[i - 1] == NULL)
            return luaL_error(L, "_write_set: item %d is not {path, text}", (int)i);
        detrun_lua_checkpath(L, paths[i - 1], DETRUN_LUA_WRITE, "write");   /* the sandbox's */
    }
    detrun_runtime *rt = detrun_lua_runtime(L);
    if (detrun_write_set(rt, (int)n, paths, texts, lens) != DETRUN_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, detrun_errmsg(rt));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_set_id(lua_State *L)
{
    char id[96];
    detrun_results_set_id(id, sizeof id);
    lua_pushstring(L, id);
    return 1;
}

static int l_data_hash(lua_State *L)
{
    char hex[33];
    detrun_dataset_hash(detrun_lua_checkdataset(L, 1), hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_file_hash(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        luaL_addlstring(&b, chunk, got);
    int bad = ferror(f);
    fclose(f);
    luaL_pushresult(&b);
    if (bad)
        return 0;
    const char *s[1];
    size_t len[1];
    s[0] = lua_tolstring(L, -1, &len[0]);
    char hex[33];
    if (detrun_repeat_fingerprint(s, len, 1, hex) != DETRUN_OK)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, hex);
    return 1;
}

static int l_remove_temps(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
            lua_pushfstring(L, "%s/%s", dir, e->d_name);
            unlink(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    closedir(d);
    return 0;
}

static int l_limit(lua_State *L)
{
    const char *env = getenv(luaL_checkstring(L, 1));
    lua_Integer dflt = luaL_checkinteger(L, 2);
    char *end;
    errno = 0;
    long long v = env != NULL ? strtoll(env, &end, 10) : 0;
    if (env != NULL && errno == 0 && end != env && *end == '\0' && v > 0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushinteger(L, dflt);
    return 1;
}

void detrun_lua_open_guard(lua_State *L)
{
    if (luaL_newmetatable(L, LOCK_META)) {
        lua_pushcfunction(L, lock_release);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, lock_release);
        lua_setfield(L, -2, "__gc");
        lua_newtable(L);
        lua_pushcfunction(L, lock_release);
        lua_setfield(L, -2, "release");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {
        { "_lock", l_lock },
        { "_write_set", l_write_set },
        { "_set_id", l_set_id },
        { "_data_hash", l_data_hash },
        { "_file_hash", l_file_hash },
        { "_limit", l_limit },
        { "_remove_temps", l_remove_temps },
        { NULL, NULL }
    };
    luaL_setfuncs(L, funcs, 0);
}
