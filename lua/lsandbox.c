/*
 * lsandbox.c - the sandbox for untrusted scripts.
 *
 * A sandboxed script runs with an _ENV of its own: base (load of text
 * chunks only, no dofile or loadfile), copies of string, table, math, utf8
 * and coroutine, os.time/clock/date, and require limited to the detrun
 * modules. The detrun modules keep the real globals, stripped down as well:
 * no way to run a command, end the process or load native code, and their
 * files (io.open, io.lines, os.remove, os.rename) checked against the two
 * folders, as every path the binding's C functions open is. Paths resolve
 * with realpath, so neither ".." nor a link leads out of a folder; what
 * another process changes between the check and the open is not covered.
 */
#define _XOPEN_SOURCE 700   /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ldetrun.h"
#include "lsandbox.h"

#define SANDBOX "detrun.sandbox"         /* metatable of the folders */
#define ROOTS "detrun.sandbox.roots"     /* registry: the folders */

enum { DATA, OUT };

typedef struct roots {
    int has[2];
    char dir[2][PATH_MAX];
} roots;

/* ---- paths ------------------------------------------------------------------- */

/* Appends the components of tail to out, none of them "..": they do not
 * exist, so "." and empty ones are all that may be skipped. */
static int append_tail(char *out, const char *tail)
{
    size_t n = strlen(out);
    while (*tail != '\0') {
        while (*tail == '/')
            tail++;
        size_t len = strcspn(tail, "/");
        if (len == 0)
            break;
        if (len == 2 && tail[0] == '.' && tail[1] == '.')
            return -1;
        if (!(len == 1 && tail[0] == '.')) {
            if (n + len + 2 > PATH_MAX)
                return -1;
            if (n > 1)
                out[n++] = '/';
            memcpy(out + n, tail, len);
            n += len;
            out[n] = '\0';
        }
        tail += len;
    }
    return 0;
}

/* path made absolute and resolved: realpath of its longest existing head,
 * then the components that do not exist yet. 0 on success; -1 when it cannot
 * be resolved (a dangling link, ".." past what exists, too long). */
static int resolve(const char *path, char out[PATH_MAX])
{
    char buf[PATH_MAX], head[PATH_MAX], cwd[PATH_MAX];
    int n;
    if (path[0] == '\0')
        return -1;
    if (path[0] == '/')
        n = snprintf(buf, sizeof buf, "%s", path);
    else if (getcwd(cwd, sizeof cwd) != NULL)
        n = snprintf(buf, sizeof buf, "%s/%s", cwd, path);
    else
        return -1;
    if (n < 0 || n >= (int)sizeof buf)
        return -1;
    size_t cut = (size_t)n;   /* buf[0, cut) exists; buf + cut is the tail */
    for (;;) {
        memcpy(head, buf, cut);
        head[cut] = '\0';
        if (cut == 0)
            strcpy(head, "/");
        if (realpath(head, out) != NULL)
            break;
        struct stat sb;
        if (errno != ENOENT || lstat(head, &sb) == 0)
            return -1;   /* an entry that does not resolve: a dangling link */
        while (cut > 0 && buf[--cut] != '/')
            ;
    }
    return append_tail(out, buf + cut);
}

static int inside(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 &&
           (path[n] == '\0' || path[n] == '/' || (n == 1 && root[0] == '/'));
}

static roots *get_roots(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, ROOTS);
    roots *r = luaL_testudata(L, -1, SANDBOX);
    lua_pop(L, 1);   /* the registry keeps it */
    return r;
}

int detrun_lua_sandboxed(lua_State *L)
{
    return get_roots(L) != NULL;
}

void detrun_lua_checkpath(lua_State *L, const char *path, detrun_lua_access how,
                          const char *what)
{
    roots *r = get_roots(L);
    if (r == NULL)
        return;
    char real[PATH_MAX];
    if (resolve(path, real) != 0)
        luaL_error(L, "%s: %s: refused by the sandbox: the path does not resolve (a dangling "
                      "link, \"..\" past the existing folders, or too long)", what, path);
    if ((how == DETRUN_LUA_READ && r->has[DATA] && inside(real, r->dir[DATA])) ||
        (r->has[OUT] && inside(real, r->dir[OUT])))
        return;
    const char *out = r->has[OUT] ? r->dir[OUT] : "none";
    if (how == DETRUN_LUA_WRITE)
        luaL_error(L, "%s: %s: refused by the sandbox: a script writes only inside the output "
                      "folder (%s)", what, path, out);
    luaL_error(L, "%s: %s: refused by the sandbox: a script reads only inside the data folder "
                  "(%s) and the output folder (%s)", what, path,
               r->has[DATA] ? r->dir[DATA] : "none", out);
}

/* ---- the modules' globals, stripped ---------------------------------------------- */

/* io.open(path, mode) with path checked (a write unless mode is "r"/"rb"). */
static int checked_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    int read = mode[0] == 'r' && strchr(mode, '+') == NULL;
    detrun_lua_checkpath(L, path, read ? DETRUN_LUA_READ : DETRUN_LUA_WRITE, "io.open");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* io.lines(path, ...) with path checked; without one, standard input. */
static int checked_lines(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        detrun_lua_checkpath(L, luaL_checkstring(L, 1), DETRUN_LUA_READ, "io.lines");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* os.remove(path) and os.rename(from, to), each path a write. */
static int checked_remove(lua_State *L)
{
    const char *what = lua_isnoneornil(L, 2) ? "os.remove" : "os.rename";
    detrun_lua_checkpath(L, luaL_checkstring(L, 1), DETRUN_LUA_WRITE, what);
    if (!lua_isnoneornil(L, 2))
        detrun_lua_checkpath(L, luaL_checkstring(L, 2), DETRUN_LUA_WRITE, what);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* debug.getinfo without the options that hand out functions ('f') and
 * tables ('L'); a level counts from the caller, as the original's does. */
static int filtered_getinfo(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTHREAD)
        return luaL_error(L, "debug.getinfo: no thread argument in the sandbox");
    const char *what = luaL_optstring(L, 2, "Slnrtu");
    char keep[16];
    size_t k = 0;
    for (; *what != '\0' && k + 1 < sizeof keep; what++)
        if (strchr("Slnrtu", *what) != NULL)
            keep[k++] = *what;
    keep[k] = '\0';
    lua_pushvalue(L, lua_upvalueindex(1));
    if (lua_isinteger(L, 1))
        lua_pushinteger(L, lua_tointeger(L, 1) + 1);   /* this function is a level too */
    else
        lua_pushvalue(L, 1);
    lua_pushstring(L, keep);
    lua_call(L, 2, 1);
    return 1;
}

/* Replaces t[name] (t at idx) by fn with the old value as its upvalue. */
static void wrap_field(lua_State *L, int idx, const char *name, lua_CFunction fn)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, name);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, idx, name);
}

static void clear_fields(lua_State *L, int idx, const char *const *names)
{
    idx = lua_absindex(L, idx);
    for (; *names != NULL; names++) {
        lua_pushnil(L);
        lua_setfield(L, idx, *names);
    }
}

static int text_load(lua_State *L);

/* The library tables are those of package.loaded too: changed in place. */
static void strip_module_globals(lua_State *L)
{
    static const char *const g_out[] = { "dofile", "loadfile", NULL };
    static const char *const os_out[] = { "execute", "exit", "tmpname", "setlocale", NULL };
    static const char *const io_out[] = { "popen", "tmpfile", "input", "output", NULL };
    static const char *const dbg_out[] = {
        "debug", "gethook", "getlocal", "getmetatable", "getregistry", "getupvalue",
        "getuservalue", "sethook", "setlocal", "setmetatable", "setupvalue", "setuservalue",
        "upvalueid", "upvaluejoin", "setcstacklimit", NULL
    };
    lua_pushglobaltable(L);
    clear_fields(L, -1, g_out);
    lua_getfield(L, -1, "load");
    lua_pushglobaltable(L);
    lua_pushcclosure(L, text_load, 2);
    lua_setfield(L, -2, "load");
    if (lua_getfield(L, -1, "os") == LUA_TTABLE) {
        clear_fields(L, -1, os_out);
        wrap_field(L, -1, "remove", checked_remove);
        wrap_field(L, -1, "rename", checked_remove);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
        clear_fields(L, -1, io_out);
        wrap_field(L, -1, "open", checked_open);
        wrap_field(L, -1, "lines", checked_lines);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "debug") == LUA_TTABLE) {
        clear_fields(L, -1, dbg_out);
        wrap_field(L, -1, "getinfo", filtered_getinfo);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "package") == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, "loadlib");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "path");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "cpath");
        lua_createtable(L, 1, 0);   /* searchers: package.preload only */
        if (lua_getfield(L, -3, "searchers") == LUA_TTABLE)
            lua_geti(L, -1, 1);
        else
            lua_pushnil(L);
        lua_seti(L, -3, 1);
        lua_pop(L, 1);
        lua_setfield(L, -2, "searchers");
    }
    lua_pop(L, 2);
}

/* ---- the script's globals ------------------------------------------------------------- */

/* load(chunk, name, mode, env): text chunks only; without env, the globals
 * of whoever's load this is (upvalue 2). */
static int text_load(lua_State *L)
{
    int has_env = lua_gettop(L) >= 4;
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (has_env)
        lua_pushvalue(L, 4);
    else
        lua_pushvalue(L, lua_upvalueindex(2));
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* require(name): only the detrun modules, never a file. */
static int detrun_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int ours = 0;
    if (strcmp(name, "detrun") == 0 || strncmp(name, "detrun.", 7) == 0) {
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        ours = lua_istable(L, -1) && lua_getfield(L, -1, name) != LUA_TNIL;
        lua_settop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        ours = ours || (lua_istable(L, -1) && lua_getfield(L, -1, name) != LUA_TNIL);
        lua_settop(L, 1);
    }
    if (!ours)
        return luaL_error(L, "require \"%s\": refused by the sandbox, which offers only the "
                             "detrun modules", name);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* getmetatable(v): a table's metatable (or its __metatable); of any other
 * value only a __metatable, never the table that its type shares. */
static int guarded_getmetatable(lua_State *L)
{
    luaL_checkany(L, 1);
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL || lua_istable(L, 1))
        return 1;
    lua_pushnil(L);
    return 1;
}

/* setmetatable(t, mt) without __gc: a finalizer would run outside the
 * instruction budget. */
static int guarded_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc is refused by the sandbox (a finalizer "
                                 "would run outside the instruction budget)");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* __index of the script's globals and of its os: a clear error for what the
 * sandbox leaves out (upvalue: the names), nil for any other name. */
static int refused(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL)
        return 0;
    return luaL_error(L, "%s%s: not available in the sandbox (it offers base, string, table, "
                         "math, utf8, coroutine, os.time/clock/date and the detrun modules)",
                      lua_tostring(L, lua_upvalueindex(2)), lua_tostring(L, 2));
}

/* Gives the table at -1 a metatable whose __index raises for names. */
static void refuse_names(lua_State *L, const char *prefix, const char *const *names)
{
    lua_createtable(L, 0, 2);
    lua_newtable(L);
    for (; *names != NULL; names++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, *names);
    }
    lua_pushstring(L, prefix);
    lua_pushcclosure(L, refused, 2);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "sandbox");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* A copy of the library table at idx of the globals, into env at -1. */
static void copy_library(lua_State *L, int globals, const char *name)
{
    lua_newtable(L);
    if (lua_getfield(L, globals, name) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, name);
}

/* Pushes the script's _ENV, made from the real globals at `globals`. */
static void push_script_env(lua_State *L, int globals)
{
    static const char *const base[] = {
        "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
        "rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall",
        "collectgarbage", "warn", "_VERSION", NULL
    };
    static const char *const libs[] = { "string", "table", "math", "utf8", "coroutine", NULL };
    static const char *const os_in[] = { "time", "clock", "date", NULL };
    static const char *const os_out[] = { "execute", "exit", "remove", "rename", "getenv",
                                          "tmpname", "setlocale", "difftime", NULL };
    static const char *const g_out[] = { "io", "debug", "package", "dofile", "loadfile",
                                         "loadstring", "module", NULL };
    lua_newtable(L);
    for (int i = 0; base[i] != NULL; i++) {
        lua_getfield(L, globals, base[i]);
        lua_setfield(L, -2, base[i]);
    }
    for (int i = 0; libs[i] != NULL; i++)
        copy_library(L, globals, libs[i]);
    lua_newtable(L);
    lua_getfield(L, globals, "os");
    for (int i = 0; os_in[i] != NULL; i++) {
        lua_getfield(L, -1, os_in[i]);
        lua_setfield(L, -3, os_in[i]);
    }
    lua_pop(L, 1);
    refuse_names(L, "os.", os_out);
    lua_setfield(L, -2, "os");
    lua_getfield(L, globals, "load");
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, text_load, 2);
    lua_setfield(L, -2, "load");
    lua_getfield(L, globals, "require");
    lua_pushcclosure(L, detrun_require, 1);
    lua_setfield(L, -2, "require");
    lua_getfield(L, globals, "setmetatable");
    lua_pushcclosure(L, guarded_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
    lua_pushcfunction(L, guarded_getmetatable);
    lua_setfield(L, -2, "getmetatable");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    refuse_names(L, "", g_out);
}

/* ---- opening ---------------------------------------------------------------------- */

static void set_root(roots *r, int which, const char *dir)
{
    r->has[which] = dir != NULL && resolve(dir, r->dir[which]) == 0;
}

void detrun_lua_sandbox_open(lua_State *L, const char *data_dir, const char *out_dir)
{
    lua_pushglobaltable(L);
    int globals = lua_gettop(L);
    push_script_env(L, globals);   /* before the stripping: load, require as they were */
    roots *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    set_root(r, DATA, data_dir != NULL ? data_dir : detrun_default_data_dir());
    set_root(r, OUT, out_dir);
    luaL_newmetatable(L, SANDBOX);
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ROOTS);
    strip_module_globals(L);
    detrun_lua_protect_metatables(L);
    lua_remove(L, globals);
}

void detrun_lua_protect_metatables(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, LUA_REGISTRYINDEX)) {
        /* luaL_newmetatable's tables: registry[name].__name == name */
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            if (lua_getfield(L, -1, "__name") == LUA_TSTRING && lua_rawequal(L, -1, -3))
                lua_setfield(L, -2, "__metatable");
            else
                lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}
