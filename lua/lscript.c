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
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lualib.h>

#include "ldetrun.h"
#include "lsandbox.h"

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

/* The options that name things (arguments, shards, folders), checked before
 * anything is copied. */
static detrun_status check_options(detrun_script *sc, const detrun_script_options *opt)
{
    if (opt->argc > 0 && opt->argv == NULL)
        return seterr(sc, DETRUN_ERR_ARG, "script options: argc is %d but argv is NULL",
                      opt->argc);
    for (int i = 0; i < opt->argc; i++)
        if (opt->argv[i] == NULL)
            return seterr(sc, DETRUN_ERR_ARG, "script options: argv[%d] is NULL", i);
    if (opt->shards < 0 || (opt->shards > 0 && (opt->shard < -1 || opt->shard >= opt->shards)) ||
        (opt->shards == 0 && opt->shard != 0))
        return seterr(sc, DETRUN_ERR_ARG,
                      "script options: shard %d of %d shards (shards > 0 and shard from 0 to "
                      "shards - 1, or -1 for the plan only; both 0 for no sharding)",
                      opt->shard, opt->shards);
    if (opt->out_dir != NULL && opt->out_dir[0] == '\0')
        return seterr(sc, DETRUN_ERR_ARG,
                      "script options: out_dir is an empty path (NULL for no results files)");
    if (opt->resume && opt->no_checkpoint)
        return seterr(sc, DETRUN_ERR_ARG,
                      "script options: resume needs the checkpoints that no_checkpoint gives up");
    return DETRUN_OK;
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
    detrun_status bad_opt = check_options(sc, opt);
    if (bad_opt != DETRUN_OK)
        return bad_opt;
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

/* Where the script's main chunk is: its name as messages spell it, and the
 * last line it ran. A script that ends with `return dr.experiment{...}`
 * makes a tail call, which leaves no frame of the script on the stack when
 * the experiment raises; the line hook keeps the line of that call. */
typedef struct script_where {
    const char *source;   /* the chunk's source as Lua records it ("@path") */
    const char *name;     /* as error messages spell it */
    int line;
} script_where;

/* The instruction budget, counted every STEP instructions. */
#define STEP 1000
typedef struct budget {
    uint64_t used, limit;
    int spent;
} budget;

/* What the hooks of a run's Lua state read, pointed to from every thread's
 * extra space (Lua copies the main thread's into each new coroutine, as it
 * copies the hook): one hook function serves the line and count events. */
typedef struct hooks {
    script_where *where;   /* NULL: no script lines to follow */
    budget *budget;        /* limit 0: none */
} hooks;

static hooks *hooks_of(lua_State *L)
{
    return *(hooks **)lua_getextraspace(L);
}

static script_where *where_of(lua_State *L)
{
    hooks *k = hooks_of(L);
    return k != NULL ? k->where : NULL;
}

static void line_event(lua_State *L, lua_Debug *ar)
{
    script_where *w = where_of(L);
    if (w != NULL && lua_getinfo(L, "S", ar) && strcmp(ar->what, "main") == 0 &&
        strcmp(ar->source, w->source) == 0)
        w->line = ar->currentline;
}

/* Whether a chunk name is one of detrun's own modules: "[detrun]" (the
 * module table) or "[detrun.nn]". */
static int is_detrun_src(const char *src)
{
    return strncmp(src, "[detrun", 7) == 0 && (src[7] == ']' || src[7] == '.');
}

/* Whether msg starts with "CHUNK:LINE: "; *internal is set when the chunk is
 * one of detrun's own modules ("[detrun.nn]:12: "). */
static int has_location(const char *msg, int *internal)
{
    const char *colon = strstr(msg, ": ");
    *internal = is_detrun_src(msg);
    if (colon == NULL)
        return 0;
    const char *d = colon;
    while (d > msg && d[-1] >= '0' && d[-1] <= '9')
        d--;
    return d < colon && d > msg + 1 && d[-1] == ':';
}

/* Adds the script's own frames to b, as a traceback, when there are two or
 * more (a call chain of the script's worth showing); detrun's frames and C
 * functions are left out. */
static void script_frames(lua_State *L, luaL_Buffer *b)
{
    lua_Debug ar;
    int n = 0;
    for (int level = 1; lua_getstack(L, level, &ar) && n < 2; level++)
        if (lua_getinfo(L, "S", &ar) && strcmp(ar.what, "C") != 0 && !is_detrun_src(ar.short_src))
            n++;
    if (n < 2)
        return;
    luaL_addstring(b, "\nstack traceback (the script's frames):");
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sln", &ar) || strcmp(ar.what, "C") == 0 || is_detrun_src(ar.short_src))
            continue;
        if (strcmp(ar.what, "main") == 0)
            lua_pushfstring(L, "\n\t%s:%d: in main chunk", ar.short_src, ar.currentline);
        else if (ar.name != NULL)
            lua_pushfstring(L, "\n\t%s:%d: in %s '%s'", ar.short_src, ar.currentline,
                            ar.namewhat[0] ? ar.namewhat : "function", ar.name);
        else
            lua_pushfstring(L, "\n\t%s:%d: in function <%s:%d>", ar.short_src, ar.currentline,
                            ar.short_src, ar.linedefined);
        luaL_addvalue(b);
    }
}

/* The message handler. An error that names a line of the script, or that a
 * detrun module raised on purpose without a location (error(msg, 0): a bad
 * option, a numeric error in a cell), is the script's: its message alone,
 * with the script's line when it has none. An error located inside detrun's
 * own modules is unexpected and keeps its traceback, as every error does
 * when the upvalue (the traceback option) is true. */
static int on_error(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    int internal;
    int located = has_location(msg, &internal);
    if (lua_toboolean(L, lua_upvalueindex(1)) || internal || lua_type(L, 1) != LUA_TSTRING) {
        luaL_traceback(L, L, msg, 1);
        return 1;
    }
    script_where *w = where_of(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (!located && w != NULL && w->line > 0)
        lua_pushfstring(L, "%s:%d: ", w->name, w->line), luaL_addvalue(&b);
    luaL_addstring(&b, msg);
    script_frames(L, &b);
    luaL_pushresult(&b);
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
 * registered functions and arg; returns the script's globals. */
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
        set_opt_int(L, "no_report", o->no_report);
        set_opt_int(L, "no_checkpoint", o->no_checkpoint);
        if (o->jobs > 0)
            set_opt_int(L, "jobs", o->jobs);
        else if (o->jobs == DETRUN_SCRIPT_JOBS_AUTO)
            set_opt_str(L, "jobs_default", "auto");
    }
    lua_setfield(L, LUA_REGISTRYINDEX, DETRUN_LUA_OPTIONS);

    luaL_requiref(L, "detrun", luaopen_detrun, 0);
    lua_pop(L, 1);
    /* The script's globals: the real ones, or the sandbox's own table. */
    if (s->opt.sandbox)
        detrun_lua_sandbox_open(L, s->opt.data_dir, s->opt.out_dir);
    else
        lua_pushglobaltable(L);
    for (int i = 0; i < s->nreg; i++) {
        lua_pushcfunction(L, s->reg[i].fn);
        lua_setfield(L, -2, s->reg[i].name);
    }
    lua_newtable(L);
    for (int i = 0; i < s->opt.argc; i++) {
        lua_pushstring(L, s->opt.argv[i]);
        lua_seti(L, -2, i);
    }
    lua_setfield(L, -2, "arg");
    return 1;
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

/* ---- limits: the Lua heap and the instruction budget ------------------------------- */

/* The allocator of a run's Lua state: the runtime's, refusing to grow the
 * heap past the limit (0: none), which Lua reports as "not enough memory". */
typedef struct heap {
    detrun_alloc_fn alloc;
    void *ud;
    size_t used, limit;
    int refused;
} heap;

static void *heap_alloc(void *ud, void *p, size_t osize, size_t nsize)
{
    heap *h = ud;
    size_t old = p != NULL ? osize : 0;   /* without p, osize is a type tag */
    if (nsize > old && h->limit != 0 && nsize - old > h->limit - h->used) {
        h->refused = 1;
        return NULL;
    }
    void *q = h->alloc(h->ud, p, osize, nsize);
    if (nsize == 0)
        h->used -= old;
    else if (q != NULL)
        h->used = h->used - old + nsize;
    return q;
}

static void hook(lua_State *L, lua_Debug *ar);

static void count_event(lua_State *L)
{
    budget *b = hooks_of(L)->budget;
    b->used += STEP;
    if (b->used <= b->limit)
        return;
    /* Spent for good: from now on every instruction of this thread fails,
     * so that no pcall in a loop can catch its way past the end. */
    b->spent = 1;
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "the script ran past its instruction budget (%llu Lua instructions)",
               (unsigned long long)b->limit);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    if (ar->event == LUA_HOOKLINE)
        line_event(L, ar);
    else if (ar->event == LUA_HOOKCOUNT)
        count_event(L);
}

/* A Lua state whose every block goes through the runtime's allocator. */
static lua_State *new_state(heap *h, hooks *k)
{
    lua_State *L = lua_newstate(heap_alloc, h);
    if (L != NULL) {
        *(hooks **)lua_getextraspace(L) = k;   /* lua_newstate leaves it unset */
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

static const char *chunk_name(const chunk *c)
{
    const char *name = c->path != NULL ? c->path : c->name;
    return name[0] == '=' || name[0] == '@' ? name + 1 : name;
}

/* Loads the chunk and gives it the script's globals (at env); under the
 * sandbox, source text only: bytecode is not checked by Lua. */
static detrun_status load(detrun_script *sc, lua_State *L, const chunk *c, int env)
{
    const char *mode = sc->opt.sandbox ? "t" : NULL;
    int loaded = c->path != NULL ? luaL_loadfilex(L, c->path, mode)
                                 : luaL_loadbufferx(L, c->code, strlen(c->code), c->name, mode);
    if (loaded != LUA_OK) {
        /* Syntax errors already say file:line; an unreadable file says why. */
        const char *msg = lua_tostring(L, -1), *name = chunk_name(c);
        int named = strstr(msg, name) != NULL;
        return seterr(sc, loaded == LUA_ERRFILE ? DETRUN_ERR_IO : DETRUN_ERR_SCRIPT, "%s%s%s%s",
                      named ? "" : name, named ? "" : ": ", msg,
                      sc->opt.sandbox && strstr(msg, "binary") ? " (the sandbox runs source "
                                                                  "text only)" : "");
    }
    lua_pushvalue(L, env);
    if (lua_setupvalue(L, -2, 1) == NULL)   /* a main chunk's one upvalue is _ENV */
        lua_pop(L, 1);
    return DETRUN_OK;
}

/* The message of a failed run, naming the limit that ended it if one did. */
static detrun_status run_error(detrun_script *sc, const chunk *c, const char *msg,
                               const heap *h, const budget *b)
{
    const char *name = chunk_name(c);
    if (b->spent)
        return seterr(sc, DETRUN_ERR_SCRIPT, "%s: the script ran past its instruction budget of "
                      "%llu Lua instructions (raise instruction_limit in detrun_script_options, "
                      "or --sandbox=instructions=N)", name, (unsigned long long)b->limit);
    if (h->refused && msg != NULL && strstr(msg, "not enough memory") != NULL)
        return seterr(sc, DETRUN_ERR_MEMORY, "%s: not enough memory: the script's Lua heap "
                      "reached its limit of %zu bytes (raise memory_limit in "
                      "detrun_script_options, or --sandbox=memory=BYTES)", name, h->limit);
    if (msg == NULL)
        msg = "(no message)";
    /* A script that ends with `return dr.experiment{...}` makes a tail call,
     * which leaves no line of the script on the stack: the message then says
     * at least which script it was. */
    int named = strstr(msg, name) != NULL;
    /* A fit stopped by detrun_cancel raised its error through the script. */
    return seterr(sc, detrun_cancel_requested(sc->rt) ? DETRUN_ERR_CANCELLED : DETRUN_ERR_SCRIPT,
                  "%s%s%s", named ? "" : name, named ? "" : ": ", msg);
}

static detrun_status run(detrun_script *sc, const chunk *c, detrun_results **res)
{
    if (res != NULL)
        *res = NULL;
    if (sc == NULL)
        return DETRUN_ERR_ARG;
    const detrun_script_options *o = &sc->opt;
    heap h = { sc->alloc, sc->ud, 0, o->memory_limit, 0 };
    budget b = { 0, o->instruction_limit, 0 };
    if (o->sandbox && h.limit == 0)
        h.limit = DETRUN_SCRIPT_SANDBOX_MEMORY;
    if (o->sandbox && b.limit == 0)
        b.limit = DETRUN_SCRIPT_SANDBOX_INSTRUCTIONS;
    script_where where = { NULL, chunk_name(c), 0 };
    hooks k = { NULL, &b };
    lua_State *L = new_state(&h, &k);
    if (L == NULL)
        return h.refused ? seterr(sc, DETRUN_ERR_MEMORY, "%s: not enough memory: a Lua state "
                                  "does not fit in the script's limit of %zu bytes (raise "
                                  "memory_limit)", chunk_name(c), h.limit)
                         : seterr(sc, DETRUN_ERR_MEMORY, "out of memory (a new Lua state)");
    detrun_status st = DETRUN_OK;
    lua_pushboolean(L, sc->opt.traceback);
    lua_pushcclosure(L, on_error, 1);
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, sc);
    if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
        st = run_error(sc, c, lua_tostring(L, -1), &h, &b);
        goto out;
    }
    if ((st = load(sc, L, c, 2)) != DETRUN_OK)
        goto out;
    lua_Debug ar;
    lua_pushvalue(L, -1);
    if (lua_getinfo(L, ">S", &ar))
        where.source = ar.source;   /* the function on the stack keeps it alive */
    /* Only a script in a file has lines worth naming; a host's "=name"
     * chunk (detrun merge's) is one line of glue. */
    if (where.source != NULL && where.source[0] == '@')
        k.where = &where;
    /* The script gets its arguments as ..., like lua5.4's. */
    lua_getfield(L, 2, "arg");
    int nargs = 0;
    for (lua_Integer i = 1; lua_geti(L, -1 - nargs, i) != LUA_TNIL; i++)
        nargs++;
    lua_pop(L, 1);
    lua_remove(L, -1 - nargs);
    int mask = (k.where != NULL ? LUA_MASKLINE : 0) | (b.limit != 0 ? LUA_MASKCOUNT : 0);
    if (mask != 0)
        lua_sethook(L, hook, mask, b.limit != 0 && b.limit < STEP ? (int)b.limit : STEP);
    int ran = lua_pcall(L, nargs, 1, 1);
    if (ran != LUA_OK || b.spent) {
        st = run_error(sc, c, ran != LUA_OK ? lua_tostring(L, -1) : NULL, &h, &b);
        goto out;
    }
    detrun_results *r = detrun_lua_takeresults(L, -1);
    if (r == NULL && !lua_isnil(L, -1)) {
        st = seterr(sc, DETRUN_ERR_SCRIPT,
                    "%s: the script returned a %s, not the results of dr.experiment{...} "
                    "(return nothing, or what dr.experiment returns)",
                    chunk_name(c), luaL_typename(L, -1));
        goto out;
    }
    if (res != NULL)
        *res = r;
    else
        detrun_results_free(r);
out:
    /* Finalizers run in lua_close: where is about to go. */
    lua_sethook(L, NULL, 0, 0);
    *(hooks **)lua_getextraspace(L) = NULL;
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
