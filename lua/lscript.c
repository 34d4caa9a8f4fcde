/*
 * lscript.c - the script handle of detrun_script.h: runs experiment scripts
 * in Lua states made through the runtime's allocator.
 *
 * Every run gets a fresh lua_State (no globals, models or random state carry
 * over from one script to the next); what persists between runs lives on the
 * handle: the registered functions, the options the command imposes and the
 * message of the last error. The handle borrows its runtime and allocates
 * through the runtime's allocator, as its Lua states do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lualib.h>

#include "ldetrun.h"

#define ERRMSG_MAX 2048

typedef struct registered {
    char *name;
    lua_CFunction fn;
} registered;

struct detrun_script {
    detrun_runtime *rt;
    detrun_alloc_fn alloc;
    void *ud;
    registered *reg;
    int nreg;
    detrun_script_options opt;   /* strings and argv are owned copies */
    char *strings[3];            /* mode, data_dir, out_dir */
    char **argv;
    char errmsg[ERRMSG_MAX];
};

static const char no_handle_msg[] = "no script handle (detrun_script_open failed)";

static detrun_status seterr(detrun_script *sc, detrun_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static detrun_status seterr(detrun_script *sc, detrun_status st, const char *fmt, ...)
{
    if (sc == NULL)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->errmsg, sizeof sc->errmsg, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- memory, through the runtime's allocator ---------------------------------- */

static void *s_alloc(const detrun_script *sc, size_t n)
{
    return sc->alloc(sc->ud, NULL, 0, n);
}

static void s_free(const detrun_script *sc, void *p, size_t n)
{
    if (p != NULL)
        sc->alloc(sc->ud, p, n, 0);
}

static char *s_strdup(const detrun_script *sc, const char *s, int *bad)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = s_alloc(sc, n);
    if (d == NULL)
        *bad = 1;
    else
        memcpy(d, s, n);
    return d;
}

static void s_strfree(const detrun_script *sc, char *s)
{
    if (s != NULL)
        s_free(sc, s, strlen(s) + 1);
}

/* ---- the handle ----------------------------------------------------------------- */

static void free_options(detrun_script *sc)
{
    for (int i = 0; i < 3; i++) {
        s_strfree(sc, sc->strings[i]);
        sc->strings[i] = NULL;
    }
    for (int i = 0; sc->argv != NULL && i < sc->opt.argc; i++)
        s_strfree(sc, sc->argv[i]);
    if (sc->argv != NULL)
        s_free(sc, sc->argv, (size_t)sc->opt.argc * sizeof *sc->argv);
    sc->argv = NULL;
    detrun_script_options none = DETRUN_SCRIPT_OPTIONS_INIT;
    sc->opt = none;
}

detrun_status detrun_script_open(detrun_script **out, detrun_runtime *rt)
{
    if (out == NULL)
        return DETRUN_ERR_ARG;
    *out = NULL;
    void *ud = NULL;
    detrun_alloc_fn alloc = detrun_get_allocator(rt, &ud);
    if (rt == NULL || alloc == NULL)
        return DETRUN_ERR_ARG;
    detrun_script *sc = alloc(ud, NULL, 0, sizeof *sc);
    if (sc == NULL)
        return DETRUN_ERR_MEMORY;
    memset(sc, 0, sizeof *sc);
    sc->rt = rt;
    sc->alloc = alloc;
    sc->ud = ud;
    detrun_script_options none = DETRUN_SCRIPT_OPTIONS_INIT;
    sc->opt = none;
    *out = sc;
    return DETRUN_OK;
}

void detrun_script_close(detrun_script *sc)
{
    if (sc == NULL)
        return;
    for (int i = 0; i < sc->nreg; i++)
        s_strfree(sc, sc->reg[i].name);
    s_free(sc, sc->reg, (size_t)sc->nreg * sizeof *sc->reg);
    free_options(sc);
    s_free(sc, sc, sizeof *sc);
}

const char *detrun_script_errmsg(const detrun_script *sc)
{
    return sc != NULL ? sc->errmsg : no_handle_msg;
}

detrun_runtime *detrun_script_runtime(const detrun_script *sc)
{
    return sc != NULL ? sc->rt : NULL;
}

detrun_status detrun_script_set_options(detrun_script *sc, const detrun_script_options *opt)
{
    if (sc == NULL || opt == NULL)
        return seterr(sc, DETRUN_ERR_ARG, "detrun_script_set_options: NULL argument");
    if (opt->mode != NULL && strcmp(opt->mode, "deterministic") != 0 &&
        strcmp(opt->mode, "fast") != 0)
        return seterr(sc, DETRUN_ERR_ARG, "mode must be deterministic or fast, not \"%s\"",
                      opt->mode);
    if (opt->repeats < 0 || opt->folds < 0 || opt->epochs < 0 || opt->argc < 0 ||
        opt->jobs < DETRUN_SCRIPT_JOBS_AUTO)
        return seterr(sc, DETRUN_ERR_ARG, "script options: negative count");
    free_options(sc);
    int bad = 0;
    sc->opt = *opt;
    sc->opt.mode = sc->strings[0] = s_strdup(sc, opt->mode, &bad);
    sc->opt.data_dir = sc->strings[1] = s_strdup(sc, opt->data_dir, &bad);
    sc->opt.out_dir = sc->strings[2] = s_strdup(sc, opt->out_dir, &bad);
    sc->opt.argv = NULL;
    if (opt->argc > 0) {
        sc->argv = s_alloc(sc, (size_t)opt->argc * sizeof *sc->argv);
        if (sc->argv == NULL) {
            sc->opt.argc = 0;
            bad = 1;
        } else {
            memset(sc->argv, 0, (size_t)opt->argc * sizeof *sc->argv);
        }
        for (int i = 0; sc->argv != NULL && i < opt->argc; i++)
            sc->argv[i] = s_strdup(sc, opt->argv[i], &bad);
        sc->opt.argv = sc->argv;
    }
    if (bad) {
        free_options(sc);
        return seterr(sc, DETRUN_ERR_MEMORY, "out of memory");
    }
    return DETRUN_OK;
}

detrun_status detrun_script_register(detrun_script *sc, const char *name, int (*fn)(lua_State *L))
{
    if (sc == NULL || name == NULL || fn == NULL || name[0] == '\0')
        return seterr(sc, DETRUN_ERR_ARG, "detrun_script_register: NULL or empty argument");
    for (int i = 0; i < sc->nreg; i++)
        if (strcmp(sc->reg[i].name, name) == 0) {
            sc->reg[i].fn = fn;
            return DETRUN_OK;
        }
    int bad = 0;
    char *copy = s_strdup(sc, name, &bad);
    size_t osize = (size_t)sc->nreg * sizeof *sc->reg;
    registered *r = copy != NULL ? sc->alloc(sc->ud, sc->reg, sc->reg != NULL ? osize : 0,
                                             osize + sizeof *r)
                                 : NULL;
    if (r == NULL) {
        s_strfree(sc, copy);
        return seterr(sc, DETRUN_ERR_MEMORY, "out of memory");
    }
    sc->reg = r;
    r[sc->nreg].name = copy;
    r[sc->nreg].fn = fn;
    sc->nreg++;
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
    const detrun_script *s = lua_touserdata(L, 1);
    luaL_openlibs(L);
    lua_pushlightuserdata(L, s->rt);
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
        if (o->jobs > 0)
            set_opt_int(L, "jobs", o->jobs);
        else if (o->jobs == DETRUN_SCRIPT_JOBS_AUTO)
            set_opt_str(L, "jobs_default", "auto");
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

/* As lauxlib's for luaL_newstate: a message on stderr, then Lua aborts. Only
 * an error outside every pcall gets here, which this file never makes. */
static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    lua_writestringerror("PANIC: unprotected error in call to Lua API (%s)\n",
                         msg != NULL ? msg : "error object is not a string");
    return 0;
}

/* warn() as lauxlib's for luaL_newstate: off until "@on", pieces joined. */
static void warn_off(void *ud, const char *msg, int tocont);
static void warn_cont(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont)
{
    if (tocont || *(msg++) != '@')
        return 0;
    if (strcmp(msg, "off") == 0)
        lua_setwarnf(L, warn_off, L);
    else if (strcmp(msg, "on") == 0)
        lua_setwarnf(L, warn_on, L);
    return 1;
}

static void warn_off(void *ud, const char *msg, int tocont)
{
    warn_control((lua_State *)ud, msg, tocont);
}

static void warn_cont(void *ud, const char *msg, int tocont)
{
    lua_State *L = ud;
    lua_writestringerror("%s", msg);
    if (tocont)
        lua_setwarnf(L, warn_cont, L);
    else {
        lua_writestringerror("%s", "\n");
        lua_setwarnf(L, warn_on, L);
    }
}

static void warn_on(void *ud, const char *msg, int tocont)
{
    if (warn_control((lua_State *)ud, msg, tocont))
        return;
    lua_writestringerror("%s", "Lua warning: ");
    warn_cont(ud, msg, tocont);
}

/* A Lua state whose every block goes through the runtime's allocator. */
static lua_State *new_state(const detrun_script *sc)
{
    lua_State *L = lua_newstate(sc->alloc, sc->ud);
    if (L != NULL) {
        lua_atpanic(L, panic);
        lua_setwarnf(L, warn_off, L);
    }
    return L;
}

typedef struct chunk {
    const char *path;       /* a file, or */
    const char *name;       /* a chunk name and */
    const char *code;       /* its code */
} chunk;

static detrun_status run(detrun_script *sc, const chunk *c, detrun_results **res)
{
    if (res != NULL)
        *res = NULL;
    if (sc == NULL)
        return DETRUN_ERR_ARG;
    lua_State *L = new_state(sc);
    if (L == NULL)
        return seterr(sc, DETRUN_ERR_MEMORY, "out of memory (a new Lua state)");
    detrun_status st = DETRUN_OK;
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, sc);
    if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
        st = seterr(sc, DETRUN_ERR_SCRIPT, "%s", lua_tostring(L, -1));
        goto out;
    }
    int loaded = c->path != NULL ? luaL_loadfile(L, c->path)
                                 : luaL_loadbuffer(L, c->code, strlen(c->code), c->name);
    if (loaded != LUA_OK) {
        /* Syntax errors already say file:line; an unreadable file says why. */
        st = seterr(sc, loaded == LUA_ERRFILE ? DETRUN_ERR_IO : DETRUN_ERR_SCRIPT, "%s",
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
        st = seterr(sc, DETRUN_ERR_SCRIPT, "%s%s%s", strstr(msg, name) ? "" : name,
                           strstr(msg, name) ? "" : ": ", msg);
        goto out;
    }
    detrun_results *r = detrun_lua_takeresults(L, -1);
    if (r == NULL && !lua_isnil(L, -1)) {
        const char *name = c->path != NULL ? c->path : c->name;
        if (name[0] == '=' || name[0] == '@')
            name++;
        st = seterr(sc, DETRUN_ERR_SCRIPT,
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

detrun_status detrun_script_run_file(detrun_script *sc, const char *path, detrun_results **res)
{
    if (path == NULL)
        return seterr(sc, DETRUN_ERR_ARG, "detrun_script_run_file: no path");
    chunk c = { path, NULL, NULL };
    return run(sc, &c, res);
}

detrun_status detrun_script_run_string(detrun_script *sc, const char *chunkname,
                                       const char *code, detrun_results **res)
{
    if (code == NULL)
        return seterr(sc, DETRUN_ERR_ARG, "detrun_script_run_string: no code");
    chunk c = { NULL, chunkname != NULL ? chunkname : "=(string)", code };
    return run(sc, &c, res);
}
