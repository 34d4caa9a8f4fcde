/*
 * lresults.c - experiment results: the Lua table that dr.experiment builds,
 * turned into a cJSON tree whose object keys come in one canonical order (so
 * the JSON text never depends on pairs() order), the detrun_results_* API of
 * detrun.h over that tree, and the JSON and CSV files, each written whole or
 * not at all (temp file + rename).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ldetrun.h"
#include "lsandbox.h"

/* The struct comes from the runtime's allocator, which it remembers: results
 * may be freed after the runtime is closed. The tree and text are cJSON's. */
struct detrun_results {
    cJSON *root;
    char *json;
    char err[160];    /* the last failing call's message (detrun_results_errmsg) */
    detrun_alloc_fn alloc;
    void *ud;
};

static detrun_results *new_results(lua_State *L)
{
    void *ud = NULL;
    detrun_alloc_fn alloc = detrun_get_allocator(detrun_lua_runtime(L), &ud);
    detrun_results *res = alloc(ud, NULL, 0, sizeof *res);
    if (res != NULL) {
        memset(res, 0, sizeof *res);
        res->alloc = alloc;
        res->ud = ud;
    }
    return res;
}

void detrun_results_free(detrun_results *res)
{
    if (res == NULL)
        return;
    cJSON_Delete(res->root);
    cJSON_free(res->json);
    res->alloc(res->ud, res, sizeof *res, 0);
}

const char *detrun_results_errmsg(const detrun_results *res)
{
    return res == NULL ? "results: NULL handle" : res->err;
}

const char *detrun_results_json(const detrun_results *res)
{
    return res != NULL ? res->json : NULL;
}

typedef struct lresults {
    detrun_results *res;
} lresults;

static lresults *checkresults(lua_State *L, int idx)
{
    lresults *p = luaL_checkudata(L, idx, DETRUN_LUA_RESULTS);
    if (p->res == NULL)
        luaL_error(L, "results were handed over or closed");
    return p;
}

/* _results(table) -> results; the table stays reachable as r.<field>. */
static int l_results(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lresults *p = lua_newuserdatauv(L, sizeof *p, 1);
    p->res = NULL;
    luaL_setmetatable(L, DETRUN_LUA_RESULTS);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    p->res = new_results(L);
    if (p->res == NULL || (p->res->root = cJSON_CreateObject()) == NULL)
        return luaL_error(L, "results: out of memory");
    cJSON *holder = p->res->root;
    /* Convert into a holder array, then keep its only item as the root. */
    cJSON *tmp = cJSON_CreateArray();
    if (tmp == NULL)
        return luaL_error(L, "results: out of memory");
    cJSON_AddItemToObject(holder, "_", tmp);
    detrun_lua_to_json(L, 1, tmp, "results", "results", 0, 0);
    p->res->json = cJSON_Print(cJSON_GetArrayItem(tmp, 0));
    if (p->res->json == NULL)
        return luaL_error(L, "results: out of memory");
    /* Numbers were written raw: the tree the API reads is the file's own. */
    p->res->root = cJSON_Parse(p->res->json);
    cJSON_Delete(holder);
    if (p->res->root == NULL)
        return luaL_error(L, "results: out of memory");
    return 1;
}

detrun_results *detrun_lua_takeresults(lua_State *L, int idx)
{
    lresults *p = luaL_testudata(L, idx, DETRUN_LUA_RESULTS);
    if (p == NULL)
        return NULL;
    detrun_results *res = p->res;
    p->res = NULL;
    return res;
}

static int r_gc(lua_State *L)
{
    lresults *p = luaL_checkudata(L, 1, DETRUN_LUA_RESULTS);
    detrun_results_free(p->res);
    p->res = NULL;
    return 0;
}

static int r_json(lua_State *L)
{
    lua_pushstring(L, checkresults(L, 1)->res->json);
    return 1;
}

/* ---- lookups ------------------------------------------------------------------- */

static const cJSON *find_by(const cJSON *array, const char *field, const char *s, int n)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, array) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, field);
        if (s != NULL ? (cJSON_IsString(v) && strcmp(v->valuestring, s) == 0)
                      : (cJSON_IsNumber(v) && v->valuedouble == (double)n))
            return it;
    }
    return NULL;
}

static const cJSON *find_mode(const detrun_results *res, const char *mode)
{
    if (res == NULL || mode == NULL)
        return NULL;
    return find_by(cJSON_GetObjectItemCaseSensitive(res->root, "modes"), "mode", mode, 0);
}

static const cJSON *find_repeat(const detrun_results *res, const char *mode, int repeat)
{
    const cJSON *m = find_mode(res, mode);
    return m ? find_by(cJSON_GetObjectItemCaseSensitive(m, "repeats"), "repeat", NULL, repeat)
             : NULL;
}

int detrun_results_repeats(const detrun_results *res, const char *mode)
{
    const cJSON *m = find_mode(res, mode);
    return m ? cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "repeats")) : 0;
}

int detrun_results_folds(const detrun_results *res)
{
    if (res == NULL)
        return 0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(res->root, "settings");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "folds");
    return cJSON_IsNumber(f) ? f->valueint : 0;
}

const char *detrun_results_fingerprint(const detrun_results *res, const char *mode, int repeat)
{
    const cJSON *r = find_repeat(res, mode, repeat);
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(r, "fingerprint");
    return cJSON_IsString(fp) ? fp->valuestring : NULL;
}

detrun_status detrun_results_fold(const detrun_results *res, const char *mode, int repeat,
                                  int fold, double *loss, double *accuracy,
                                  const char **fingerprint)
{
    if (res == NULL)
        return DETRUN_ERR_ARG;
    const cJSON *r = find_repeat(res, mode, repeat);
    const cJSON *f = r ? find_by(cJSON_GetObjectItemCaseSensitive(r, "folds"), "fold", NULL, fold)
                       : NULL;
    if (f == NULL) {
        if (r == NULL)
            snprintf(((detrun_results *)res)->err, sizeof res->err,
                     "results: no repeat %d of mode %s", repeat, mode != NULL ? mode : "(null)");
        else
            snprintf(((detrun_results *)res)->err, sizeof res->err,
                     "results: no fold %d in repeat %d of mode %s", fold, repeat, mode);
        return DETRUN_ERR_ARG;
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(f, "loss");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(f, "accuracy");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(f, "fingerprint");
    if (loss)
        *loss = cJSON_IsNumber(l) ? l->valuedouble : 0.0 / 0.0;
    if (accuracy)
        *accuracy = cJSON_IsNumber(a) ? a->valuedouble : 0.0 / 0.0;
    if (fingerprint)
        *fingerprint = cJSON_IsString(fp) ? fp->valuestring : NULL;
    return DETRUN_OK;
}

/* r:fingerprint(mode, repeat): repeat counts from 1, as everything in Lua
 * (the results' JSON and the C API count repeats from 0). */
static int r_fingerprint(lua_State *L)
{
    lresults *p = checkresults(L, 1);
    lua_Integer rep = luaL_checkinteger(L, 3);
    luaL_argcheck(L, rep >= 1 && rep <= INT_MAX, 3, "repeats count from 1");
    const char *fp = detrun_results_fingerprint(p->res, luaL_checkstring(L, 2), (int)(rep - 1));
    if (fp)
        lua_pushstring(L, fp);
    else
        lua_pushnil(L);
    return 1;
}

/* ---- files ----------------------------------------------------------------------- */

/* mkdir -p: shared by everything the front end writes into a results folder. */
int detrun_lua_mkdirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "%s: cannot create folder: %s", path, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == '\0')
                return 0;
        }
    }
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0 / 0.0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* One row per (mode, repeat, fold). Built in a luaL_Buffer, so a memory
 * error cannot leak it. */
static void push_csv(lua_State *L, const cJSON *root)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    /* set: the results set's id, on every row (docs/regression.md, "Results files"). */
    luaL_addstring(&b, "mode,repeat,fold,loss,accuracy,fingerprint,seconds,set\n");
    const char *set = str(root, "set");
    const cJSON *m, *r, *f;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(root, "modes")) {
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(m, "repeats")) {
            cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r, "folds")) {
                char line[512];
                snprintf(line, sizeof line, "%s,%.0f,%.0f,%.17g,%.17g,%s,%.3f,%.80s\n",
                         str(m, "mode"), num(r, "repeat"), num(f, "fold"), num(f, "loss"),
                         num(f, "accuracy"), str(f, "fingerprint"), num(f, "seconds"), set);
                luaL_addstring(&b, line);
            }
        }
    }
    luaL_pushresult(&b);
}

/* r:write(dir, name [, extras]) -> json_path, csv_path | nil, message.
 * extras: more files of the same set, {{file name, text}, ...} (the
 * report). The set goes to dir/sets/<id>/ and becomes current in one
 * rename (detrun_write_results_set), so that a reader never sees files of
 * two runs and a failure leaves the previous set whole; id is the results'
 * "set" (a new one when they have none). The paths returned are the
 * familiar dir/NAME.json and dir/NAME.csv, links through dir/current/
 * (docs/regression.md, "Results files"). */
static int r_write(lua_State *L)
{
    lresults *p = checkresults(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    for (const char *c = name; *c; c++)
        if (!(( *c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.'))
            return luaL_error(L, "experiment name \"%s\" is not a file name "
                                 "(letters, digits, '_', '-', '.')", name);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    lua_settop(L, 4);
    lua_Integer nx = lua_isnil(L, 4) ? 0 : luaL_len(L, 4);
    luaL_argcheck(L, nx >= 0 && nx <= 16, 4, "at most 16 extra files");
    lua_newtable(L);                                 /* 5: the set, {name, text} */
    push_csv(L, p->res->root);                       /* 6 */
    lua_pushfstring(L, "%s/%s.json", dir, name);   /* 7 */
    lua_pushfstring(L, "%s/%s.csv", dir, name);    /* 8 */
    lua_Integer k = 0;
    lua_createtable(L, 2, 0);
    lua_pushfstring(L, "%s.csv", name);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 6);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, 5, ++k);
    for (lua_Integer i = 1; i <= nx; i++) {
        lua_geti(L, 4, i);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        const char *file = lua_tostring(L, -2);
        if (file == NULL || lua_tostring(L, -1) == NULL || strchr(file, '/') != NULL)
            return luaL_error(L, "write: extra file %d is not {name in the folder, text}", (int)i);
        lua_createtable(L, 2, 0);
        lua_pushvalue(L, -3);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, 5, ++k);
        lua_pop(L, 3);
    }
    lua_createtable(L, 2, 0);                        /* the JSON last */
    lua_pushfstring(L, "%s.json", name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, p->res->json);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, 5, ++k);
    /* Under the sandbox: only in the output folder. */
    detrun_lua_checkpath(L, dir, DETRUN_LUA_WRITE, "results:write");
    for (lua_Integer i = 1; i <= k; i++) {
        lua_geti(L, 5, i);
        lua_geti(L, -1, 1);
        lua_pushfstring(L, "%s/%s", dir, lua_tostring(L, -1));
        detrun_lua_checkpath(L, lua_tostring(L, -1), DETRUN_LUA_WRITE, "results:write");
        lua_pop(L, 3);
    }
    char err[8704];
    if (detrun_lua_mkdirs(dir, err, sizeof err) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    detrun_runtime *rt = detrun_lua_runtime(L);
    const char *names[18];
    const void *texts[18];
    size_t lens[18];
    for (lua_Integer i = 1; i <= k; i++) {
        lua_geti(L, 5, i);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        names[i - 1] = lua_tostring(L, -2);   /* kept alive by the set table */
        texts[i - 1] = lua_tolstring(L, -1, &lens[i - 1]);
        lua_pop(L, 3);
    }
    char id[96];
    const char *set = str(p->res->root, "set");
    if (set[0] != '\0')
        snprintf(id, sizeof id, "%s", set);
    else
        detrun_results_set_id(id, sizeof id);
    if (detrun_write_results_set(rt, dir, id, (int)k, names, texts, lens) != DETRUN_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, detrun_errmsg(rt));
        return 2;
    }
    lua_pushvalue(L, 7);
    lua_pushvalue(L, 8);
    return 2;
}


/* load_results(path) -> results read from a JSON file | nil, message */
static int l_load_results(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    detrun_lua_checkpath(L, path, DETRUN_LUA_READ, "dr.load_results");
    lresults *p = lua_newuserdatauv(L, sizeof *p, 1);
    p->res = NULL;
    luaL_setmetatable(L, DETRUN_LUA_RESULTS);
    luaL_Buffer b;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: cannot open: %s", path, strerror(errno));
        return 2;
    }
    luaL_buffinit(L, &b);
    size_t n;
    do {
        char *dst = luaL_prepbuffer(&b);
        n = fread(dst, 1, LUAL_BUFFERSIZE, f);
        luaL_addsize(&b, n);
    } while (n == LUAL_BUFFERSIZE);
    int bad = ferror(f);
    fclose(f);
    luaL_pushresult(&b);
    if (bad) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: cannot read", path);
        return 2;
    }
    p->res = new_results(L);
    if (p->res == NULL)
        return luaL_error(L, "results: out of memory");
    p->res->root = cJSON_Parse(lua_tostring(L, -1));
    if (p->res->root == NULL || !cJSON_IsObject(p->res->root)) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: not a JSON results object", path);
        return 2;
    }
    if (detrun_lua_json_depth(p->res->root) > DETRUN_JSON_MAX_DEPTH) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: not detrun results (nested deeper than %d levels)", path,
                        DETRUN_JSON_MAX_DEPTH);
        return 2;
    }
    p->res->json = cJSON_Print(p->res->root);
    if (p->res->json == NULL)
        return luaL_error(L, "results: out of memory");
    lua_pop(L, 1);
    detrun_lua_push_json(L, p->res->root, 0, 0);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* r.field reads the results table; r:method() the methods. */
static int r_index(lua_State *L)
{
    luaL_checkudata(L, 1, DETRUN_LUA_RESULTS);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
        return 0;
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
}

static int r_tostring(lua_State *L)
{
    lresults *p = luaL_checkudata(L, 1, DETRUN_LUA_RESULTS);
    const char *name = p->res ? str(p->res->root, "experiment") : "";
    lua_pushfstring(L, "detrun.results(%s)", name);
    return 1;
}

void detrun_lua_open_results(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "json", r_json }, { "write", r_write }, { "fingerprint", r_fingerprint },
        { "close", r_gc }, { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", r_gc }, { "__close", r_gc }, { "__index", r_index },
        { "__tostring", r_tostring }, { NULL, NULL }
    };
    luaL_newmetatable(L, DETRUN_LUA_RESULTS);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_results);
    lua_setfield(L, -2, "_results");
    lua_pushcfunction(L, l_load_results);
    lua_setfield(L, -2, "load_results");
}
