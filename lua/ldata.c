/*
 * ldata.c - datasets, row lists and k-fold splits for Lua.
 *
 * Row lists and splits live inside their userdata (no separate allocation),
 * so nothing leaks when a Lua error unwinds. Fold numbers are 1-based in Lua
 * like every Lua index; the rows they hold are 0-based row indices into the
 * dataset, as in C.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ldetrun.h"
#include "lsandbox.h"

/* ---- datasets -------------------------------------------------------------- */

detrun_dataset *detrun_lua_checkdataset(lua_State *L, int idx)
{
    detrun_dataset **p = luaL_checkudata(L, idx, DETRUN_LUA_DATASET);
    if (*p == NULL)
        luaL_error(L, "dataset is closed");
    return *p;
}

static detrun_dataset **newdataset(lua_State *L)
{
    detrun_dataset **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    luaL_setmetatable(L, DETRUN_LUA_DATASET);
    return p;
}

static int load_result(lua_State *L, detrun_runtime *rt, detrun_status st)
{
    if (st != DETRUN_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, detrun_errmsg(rt));
        return 2;
    }
    return 1;
}

/* data._load_mnist(dir or nil, "train" | "t10k") -> dataset | nil, message */
static int l_load_mnist(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    const char *dir = luaL_optstring(L, 1, NULL);
    const char *set = luaL_checkstring(L, 2);
    /* The folder, and the files in it, none of which may be a link out. */
    const char *folder = dir != NULL ? dir : detrun_default_data_dir();
    detrun_lua_checkpath(L, folder, DETRUN_LUA_READ, "dr.data.mnist");
    if (detrun_lua_sandboxed(L))
        for (int i = 0; i < 4; i++) {
            lua_pushfstring(L, "%s/%s-%s%s", folder, set, i / 2 ? "labels-idx1-ubyte"
                            : "images-idx3-ubyte", i % 2 ? ".gz" : "");
            detrun_lua_checkpath(L, lua_tostring(L, -1), DETRUN_LUA_READ, "dr.data.mnist");
            lua_pop(L, 1);
        }
    detrun_dataset **p = newdataset(L);
    return load_result(L, rt, detrun_dataset_load_mnist(rt, dir, set, p));
}

/* data.idx(images_path, labels_path) -> dataset | nil, message */
static int l_load_idx(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    const char *images = luaL_checkstring(L, 1);
    const char *labels = luaL_checkstring(L, 2);
    detrun_lua_checkpath(L, images, DETRUN_LUA_READ, "dr.data.idx");
    detrun_lua_checkpath(L, labels, DETRUN_LUA_READ, "dr.data.idx");
    detrun_dataset **p = newdataset(L);
    return load_result(L, rt, detrun_dataset_load_idx(rt, images, labels, p));
}

/* data.tensors(images, labels, { pixels = "unit" | "bytes" }) -> dataset
 * | nil, message: images (n, c, h, w), (n, h, w) or (n, features). */
static int l_from_tensors(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_tensor *images = detrun_lua_checktensor(L, 1);
    detrun_tensor *labels = detrun_lua_checktensor(L, 2);
    detrun_pixels pixels = DETRUN_PIXELS_UNIT;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        static const char *const names[] = { "unit", "bytes", NULL };
        lua_getfield(L, 3, "pixels");
        pixels = luaL_checkoption(L, -1, "unit", names) ? DETRUN_PIXELS_BYTES : DETRUN_PIXELS_UNIT;
        lua_pop(L, 1);
    }
    detrun_dataset **p = newdataset(L);
    return load_result(L, rt, detrun_dataset_from_tensors(rt, images, labels, pixels, p));
}

/* data.npy(images_path, labels_path) -> dataset | nil, message. uint8
 * images are bytes; float32 images are pixels from 0 to 1. */
static int l_load_npy(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    const char *paths[2] = { luaL_checkstring(L, 1), luaL_checkstring(L, 2) };
    detrun_lua_checkpath(L, paths[0], DETRUN_LUA_READ, "dr.data.npy");
    detrun_lua_checkpath(L, paths[1], DETRUN_LUA_READ, "dr.data.npy");
    detrun_tensor **t[2];
    detrun_npy_type type[2];
    for (int i = 0; i < 2; i++) {
        t[i] = detrun_lua_pushtensor(L);
        if (detrun_tensor_load_npy(rt, paths[i], t[i], &type[i]) != DETRUN_OK)
            return load_result(L, rt, DETRUN_ERR_IO);
    }
    detrun_pixels pixels = type[0] == DETRUN_NPY_U8 ? DETRUN_PIXELS_BYTES : DETRUN_PIXELS_UNIT;
    detrun_dataset **p = newdataset(L);
    detrun_status st = detrun_dataset_from_tensors(rt, *t[0], *t[1], pixels, p);
    if (st != DETRUN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s, %s: %s", paths[0], paths[1], detrun_errmsg(rt));
        luaL_pushfail(L);
        lua_pushstring(L, msg);
        return 2;
    }
    return 1;
}

static int l_default_dir(lua_State *L)
{
    lua_pushstring(L, detrun_default_data_dir());
    return 1;
}

static int ds_close(lua_State *L)
{
    detrun_dataset **p = luaL_checkudata(L, 1, DETRUN_LUA_DATASET);
    detrun_dataset_free(*p);
    *p = NULL;
    return 0;
}

static int ds_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)detrun_dataset_count(detrun_lua_checkdataset(L, 1)));
    return 1;
}

static int ds_shape(lua_State *L)
{
    int c, h, w;
    detrun_dataset_shape(detrun_lua_checkdataset(L, 1), &c, &h, &w);
    lua_pushinteger(L, c);
    lua_pushinteger(L, h);
    lua_pushinteger(L, w);
    return 3;
}

static int ds_classes(lua_State *L)
{
    lua_pushinteger(L, detrun_dataset_classes(detrun_lua_checkdataset(L, 1)));
    return 1;
}

/* ds:label(i) -> label of row i (from 1, as Lua counts; the C API's row i - 1). */
static int ds_label(lua_State *L)
{
    detrun_dataset *ds = detrun_lua_checkdataset(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && (size_t)i <= detrun_dataset_count(ds), 2, "row out of range");
    lua_pushinteger(L, detrun_dataset_labels(ds)[i - 1]);
    return 1;
}

static int ds_limit(lua_State *L)
{
    detrun_dataset *ds = detrun_lua_checkdataset(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "row count must not be negative");
    if (detrun_dataset_limit(ds, (size_t)n) != DETRUN_OK)
        return luaL_error(L, "%s", detrun_errmsg(detrun_lua_runtime(L)));
    lua_settop(L, 1);
    return 1;
}

static int ds_tostring(lua_State *L)
{
    detrun_dataset **p = luaL_checkudata(L, 1, DETRUN_LUA_DATASET);
    if (*p == NULL) {
        lua_pushliteral(L, "detrun.dataset(closed)");
        return 1;
    }
    int c, h, w;
    detrun_dataset_shape(*p, &c, &h, &w);
    lua_pushfstring(L, "detrun.dataset(%I rows of %dx%dx%d, %d classes)",
                    (lua_Integer)detrun_dataset_count(*p), c, h, w, detrun_dataset_classes(*p));
    return 1;
}

static const luaL_Reg ds_methods[] = {
    { "shape", ds_shape },
    { "classes", ds_classes },
    { "label", ds_label },
    { "limit", ds_limit },
    { "close", ds_close },
    { NULL, NULL }
};

/* ---- row lists ------------------------------------------------------------- */

detrun_lua_rows *detrun_lua_newrows(lua_State *L, size_t n)
{
    if (n > (SIZE_MAX - sizeof(detrun_lua_rows)) / sizeof(uint32_t))
        luaL_error(L, "too many rows");
    detrun_lua_rows *r = lua_newuserdatauv(L, sizeof *r + n * sizeof(uint32_t), 0);
    r->n = n;
    r->rows = (uint32_t *)(r + 1);
    luaL_setmetatable(L, DETRUN_LUA_ROWS);
    return r;
}

/* data.rows{ 1, 6, 8 } or data.rows(n) (1..n) -> rows. Lua counts rows from
 * 1; the list holds the C API's 0-based indices (row r is index r - 1). */
static int l_rows(lua_State *L)
{
    if (lua_istable(L, 1)) {
        lua_Integer n = luaL_len(L, 1);
        detrun_lua_rows *r = detrun_lua_newrows(L, (size_t)n);
        for (lua_Integer i = 0; i < n; i++) {
            lua_geti(L, 1, i + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok || v < 1 || v - 1 > (lua_Integer)UINT32_MAX)
                return luaL_error(L, "rows: item %I is not a row number (rows count from 1)",
                                  i + 1);
            r->rows[i] = (uint32_t)(v - 1);
            lua_pop(L, 1);
        }
        return 1;
    }
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= (lua_Integer)UINT32_MAX, 1, "bad row count");
    detrun_lua_rows *r = detrun_lua_newrows(L, (size_t)n);
    for (lua_Integer i = 0; i < n; i++)
        r->rows[i] = (uint32_t)i;
    return 1;
}

static int rows_len(lua_State *L)
{
    detrun_lua_rows *r = luaL_checkudata(L, 1, DETRUN_LUA_ROWS);
    lua_pushinteger(L, (lua_Integer)r->n);
    return 1;
}

static int rows_index(lua_State *L)
{
    detrun_lua_rows *r = luaL_checkudata(L, 1, DETRUN_LUA_ROWS);
    int ok;
    lua_Integer i = lua_tointegerx(L, 2, &ok);
    if (ok && i >= 1 && (size_t)i <= r->n)
        lua_pushinteger(L, (lua_Integer)r->rows[i - 1] + 1);   /* a row number, from 1 */
    else
        lua_pushnil(L);
    return 1;
}

static int rows_tostring(lua_State *L)
{
    detrun_lua_rows *r = luaL_checkudata(L, 1, DETRUN_LUA_ROWS);
    lua_pushfstring(L, "detrun.rows(%I)", (lua_Integer)r->n);
    return 1;
}

/* ---- k-fold splits ---------------------------------------------------------- */

typedef struct split {
    int k;
    size_t n;
    size_t *bounds;   /* k + 1 */
    uint32_t *perm;   /* n */
} split;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* data.kfold(n, k, seed) -> split */
static int l_kfold(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    lua_Integer n = luaL_checkinteger(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    lua_Integer seed = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n >= 1 && n <= (lua_Integer)UINT32_MAX, 1, "row count must be positive");
    luaL_argcheck(L, k >= 2 && k <= n, 2, "folds must be from 2 to the number of rows");
    size_t bytes = sizeof(split) + (size_t)(k + 1) * sizeof(size_t) + (size_t)n * sizeof(uint32_t);
    split *s = lua_newuserdatauv(L, bytes, 0);
    s->k = (int)k;
    s->n = (size_t)n;
    s->bounds = (size_t *)(s + 1);
    s->perm = (uint32_t *)(s->bounds + k + 1);
    luaL_setmetatable(L, DETRUN_LUA_SPLIT);
    if (detrun_kfold(rt, s->n, s->k, (uint64_t)seed, s->perm, s->bounds) != DETRUN_OK)
        return luaL_error(L, "kfold: %s", detrun_errmsg(rt));
    return 1;
}

static int checkfold(lua_State *L, split *s)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    luaL_argcheck(L, f >= 1 && f <= s->k, 2, "fold out of range");
    return (int)f - 1;
}

/* split:test(f) -> the rows of fold f, ascending (as scikit-learn's KFold). */
static int split_test(lua_State *L)
{
    split *s = luaL_checkudata(L, 1, DETRUN_LUA_SPLIT);
    int f = checkfold(L, s);
    size_t lo = s->bounds[f], hi = s->bounds[f + 1];
    detrun_lua_rows *r = detrun_lua_newrows(L, hi - lo);
    memcpy(r->rows, s->perm + lo, (hi - lo) * sizeof(uint32_t));
    qsort(r->rows, r->n, sizeof(uint32_t), cmp_u32);
    return 1;
}

/* split:train(f) -> every other row, ascending, so that validation_split
 * takes the last rows in index order as Keras does on such a split. */
static int split_train(lua_State *L)
{
    split *s = luaL_checkudata(L, 1, DETRUN_LUA_SPLIT);
    int f = checkfold(L, s);
    size_t lo = s->bounds[f], hi = s->bounds[f + 1];
    detrun_lua_rows *r = detrun_lua_newrows(L, s->n - (hi - lo));
    memcpy(r->rows, s->perm, lo * sizeof(uint32_t));
    memcpy(r->rows + lo, s->perm + hi, (s->n - hi) * sizeof(uint32_t));
    qsort(r->rows, r->n, sizeof(uint32_t), cmp_u32);
    return 1;
}

static int split_len(lua_State *L)
{
    split *s = luaL_checkudata(L, 1, DETRUN_LUA_SPLIT);
    lua_pushinteger(L, s->k);
    return 1;
}

static int split_tostring(lua_State *L)
{
    split *s = luaL_checkudata(L, 1, DETRUN_LUA_SPLIT);
    lua_pushfstring(L, "detrun.split(%I rows, %d folds)", (lua_Integer)s->n, s->k);
    return 1;
}

static const luaL_Reg split_methods[] = {
    { "test", split_test },
    { "train", split_train },
    { NULL, NULL }
};

static const luaL_Reg data_funcs[] = {
    { "_load_mnist", l_load_mnist },
    { "idx", l_load_idx },
    { "tensors", l_from_tensors },
    { "npy", l_load_npy },
    { "default_dir", l_default_dir },
    { "rows", l_rows },
    { "kfold", l_kfold },
    { NULL, NULL }
};

static void newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                     const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    if (methods != NULL) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

void detrun_lua_open_data(lua_State *L)
{
    static const luaL_Reg ds_meta[] = {
        { "__gc", ds_close }, { "__close", ds_close }, { "__len", ds_len },
        { "__tostring", ds_tostring }, { NULL, NULL }
    };
    static const luaL_Reg rows_meta[] = {
        { "__len", rows_len }, { "__index", rows_index }, { "__tostring", rows_tostring },
        { NULL, NULL }
    };
    static const luaL_Reg split_meta[] = {
        { "__len", split_len }, { "__tostring", split_tostring }, { NULL, NULL }
    };
    newclass(L, DETRUN_LUA_DATASET, ds_methods, ds_meta);
    newclass(L, DETRUN_LUA_ROWS, NULL, rows_meta);
    newclass(L, DETRUN_LUA_SPLIT, split_methods, split_meta);
    luaL_newlib(L, data_funcs);
    lua_setfield(L, -2, "data");
}
