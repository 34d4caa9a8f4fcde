/*
 * lscript.c - the "Scripts and results" group of detrun.h: runs experiment
 * scripts in a Lua state kept on the runtime.
 *
 * Every run gets a fresh lua_State (no globals, models or random state carry
 * over from one script to the next); what persists between runs lives in the
 * script record on the runtime: the registered functions and the options the
 * command imposes. runtime/ reaches that record only through rt->script and
 * rt->script_close, so it stays free of lua.h.
 */
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "internal.h"
#include "ldetrun.h"

typedef struct registered {
    char *name;
    lua_CFunction fn;
} registered;

typedef struct script {
    registered *reg;
    int nreg;
    detrun_script_options opt;   /* strings and argv are owned copies */
    char *strings[3];            /* mode, data_dir, out_dir */
    char **argv;
} script;

static void free_options(script *s)
{
    for (int i = 0; i < 3; i++) {
        free(s->strings[i]);
        s->strings[i] = NULL;
    }
    for (int i = 0; s->argv != NULL && i < s->opt.argc; i++)
        free(s->argv[i]);
    free(s->argv);
    s->argv = NULL;
    detrun_script_options none = DETRUN_SCRIPT_OPTIONS_INIT;
    s->opt = none;
}

static void script_close(void *p)
{
    script *s = p;
    for (int i = 0; i < s->nreg; i++)
        free(s->reg[i].name);
    free(s->reg);
    free_options(s);
    free(s);
}

static script *get_script(detrun_runtime *rt)
{
    if (rt->script == NULL) {
        script *s = calloc(1, sizeof *s);
        if (s == NULL)
            return NULL;
        detrun_script_options none = DETRUN_SCRIPT_OPTIONS_INIT;
        s->opt = none;
        rt->script = s;
        rt->script_close = script_close;
    }
    return rt->script;
}

static char *dup(const char *s, int *bad)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *bad = 1;
    return d;
}

detrun_status detrun_set_script_options(detrun_runtime *rt, const detrun_script_options *opt)
{
    if (rt == NULL || opt == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_set_script_options: NULL argument");
    if (opt->mode != NULL && strcmp(opt->mode, "deterministic") != 0 &&
        strcmp(opt->mode, "fast") != 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "mode must be deterministic or fast, not \"%s\"",
                             opt->mode);
    if (opt->repeats < 0 || opt->folds < 0 || opt->epochs < 0 || opt->argc < 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "script options: negative count");
    script *s = get_script(rt);
    if (s == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory");
    free_options(s);
    int bad = 0;
    s->opt = *opt;
    s->opt.mode = s->strings[0] = dup(opt->mode, &bad);
    s->opt.data_dir = s->strings[1] = dup(opt->data_dir, &bad);
    s->opt.out_dir = s->strings[2] = dup(opt->out_dir, &bad);
    s->opt.argv = NULL;
    if (opt->argc > 0) {
        s->argv = calloc((size_t)opt->argc, sizeof *s->argv);
        if (s->argv == NULL) {
            s->opt.argc = 0;
            bad = 1;
        }
        for (int i = 0; s->argv != NULL && i < opt->argc; i++)
            s->argv[i] = dup(opt->argv[i], &bad);
        s->opt.argv = s->argv;
    }
    if (bad) {
        free_options(s);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory");
    }
    return DETRUN_OK;
}

detrun_status detrun_register(detrun_runtime *rt, const char *name, int (*fn)(lua_State *L))
{
    if (rt == NULL || name == NULL || fn == NULL || name[0] == '\0')
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_register: NULL or empty argument");
    script *s = get_script(rt);
    if (s == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory");
    for (int i = 0; i < s->nreg; i++)
        if (strcmp(s->reg[i].name, name) == 0) {
            s->reg[i].fn = fn;
            return DETRUN_OK;
        }
    registered *r = realloc(s->reg, (size_t)(s->nreg + 1) * sizeof *r);
    if (r == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory");
    s->reg = r;
    if ((r[s->nreg].name = strdup(name)) == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory");
    r[s->nreg].fn = fn;
    s->nreg++;
    return DETRUN_OK;
}

/* ---- running ------------------------------------------------------------------ */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void set_opt_int(lua_State *L, const char *k, lua_Integer v)
{
    if (v != 0) {
        lua_pushinteger(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_opt_str(lua_State *L, const char *k, const char *v)
{
    if (v != NULL) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

/* Under pcall: the libraries, the runtime, the options, the module, the
 * registered functions and arg. */
static int setup(lua_State *L)
{
    detrun_runtime *rt = lua_touserdata(L, 1);
    const script *s = rt->script;
    luaL_openlibs(L);
    lua_pushlightuserdata(L, rt);
    lua_setfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_RUNTIME);

    lua_newtable(L);
    if (s != NULL) {
        const detrun_script_options *o = &s->opt;
        set_opt_str(L, "mode", o->mode);
        if (o->seed_set) {
            lua_pushinteger(L, (lua_Integer)o->seed);
            lua_setfield(L, -2, "seed");
        }
        set_opt_int(L, "repeats", o->repeats);
        set_opt_int(L, "folds", o->folds);
        set_opt_int(L, "epochs", o->epochs);
        set_opt_int(L, "limit", (lua_Integer)o->limit);
        set_opt_str(L, "data", o->data_dir);
        set_opt_str(L, "out", o->out_dir);
        set_opt_int(L, "verbosity", o->verbosity);
        set_opt_int(L, "resume", o->resume);
        set_opt_int(L, "shard", o->shard);
        set_opt_int(L, "shards", o->shards);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_OPTIONS);

    luaL_requiref(L, "detrun", luaopen_detrun, 0);
    lua_pop(L, 1);
    for (int i = 0; s != NULL && i < s->nreg; i++) {
        lua_pushcfunction(L, s->reg[i].fn);
        lua_setglobal(L, s->reg[i].name);
    }
    lua_newtable(L);
    for (int i = 0; s != NULL && i < s->opt.argc; i++) {
        lua_pushstring(L, s->opt.argv[i]);
        lua_seti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    return 0;
}

typedef struct chunk {
    const char *path;       /* a file, or */
    const char *name;       /* a chunk name and */
    const char *code;       /* its code */
} chunk;

static detrun_status run(detrun_runtime *rt, const chunk *c, detrun_results **res)
{
    if (res != NULL)
        *res = NULL;
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (get_script(rt) == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory");
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "out of memory (a new Lua state)");
    detrun_status st = DETRUN_OK;
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, rt);
    if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
        st = detrun_seterr(rt, DETRUN_ERR_SCRIPT, "%s", lua_tostring(L, -1));
        goto out;
    }
    int loaded = c->path != NULL ? luaL_loadfile(L, c->path)
                                 : luaL_loadbuffer(L, c->code, strlen(c->code), c->name);
    if (loaded != LUA_OK) {
        /* Syntax errors already say file:line; an unreadable file says why. */
        st = detrun_seterr(rt, loaded == LUA_ERRFILE ? DETRUN_ERR_IO : DETRUN_ERR_SCRIPT, "%s",
                           lua_tostring(L, -1));
        goto out;
    }
    /* The script gets its arguments as ..., like lua5.4's. */
    lua_getglobal(L, "arg");
    int nargs = 0;
    for (lua_Integer i = 1; lua_geti(L, -1 - nargs, i) != LUA_TNIL; i++)
        nargs++;
    lua_pop(L, 1);
    lua_remove(L, -1 - nargs);
    if (lua_pcall(L, nargs, 1, 1) != LUA_OK) {
        /* A script that ends with `return dr.experiment{...}` makes a tail
         * call, which leaves no line of the script on the stack: the
         * message then says at least which script it was. */
        const char *msg = lua_tostring(L, -1);
        const char *name = c->path != NULL ? c->path : c->name;
        if (name[0] == '=' || name[0] == '@')
            name++;
        st = detrun_seterr(rt, DETRUN_ERR_SCRIPT, "%s%s%s", strstr(msg, name) ? "" : name,
                           strstr(msg, name) ? "" : ": ", msg);
        goto out;
    }
    detrun_results *r = detrun_lua_takeresults(L, -1);
    if (r == NULL && !lua_isnil(L, -1)) {
        const char *name = c->path != NULL ? c->path : c->name;
        if (name[0] == '=' || name[0] == '@')
            name++;
        st = detrun_seterr(rt, DETRUN_ERR_SCRIPT,
                           "%s: the script returned a %s, not the results of dr.experiment{...} "
                           "(return nothing, or what dr.experiment returns)",
                           name, luaL_typename(L, -1));
        goto out;
    }
    if (res != NULL)
        *res = r;
    else
        detrun_results_free(r);
out:
    lua_close(L);
    return st;
}

detrun_status detrun_run_file(detrun_runtime *rt, const char *path, detrun_results **res)
{
    if (path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_run_file: no path");
    chunk c = { path, NULL, NULL };
    return run(rt, &c, res);
}

detrun_status detrun_run_string(detrun_runtime *rt, const char *chunkname, const char *code,
                                detrun_results **res)
{
    if (code == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_run_string: no code");
    chunk c = { NULL, chunkname != NULL ? chunkname : "=(string)", code };
    return run(rt, &c, res);
}
