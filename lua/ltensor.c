/*
 * ltensor.c - dr.tensor: the core's detrun_tensor as a Lua userdata.
 *
 * The userdata holds a pointer to the core's tensor, so the same object is
 * what a host gets from the C API and the maths stays in C. Indices are
 * 1-based like every Lua index; t[i] addresses elements in storage order
 * whatever the shape, t[{i, j, ...}] by position. Errors in arguments and
 * shapes are raised with the core's message; only file functions return
 * nil and a message, as Lua's io library does.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ldetrun.h"
#include "lsandbox.h"

#define MAXD DETRUN_TENSOR_MAX_DIMS

detrun_tensor **detrun_lua_pushtensor(lua_State *L)
{
    detrun_tensor **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    luaL_setmetatable(L, DETRUN_LUA_TENSOR);
    return p;
}

detrun_tensor *detrun_lua_checktensor(lua_State *L, int idx)
{
    detrun_tensor **p = luaL_checkudata(L, idx, DETRUN_LUA_TENSOR);
    if (*p == NULL)
        luaL_error(L, "tensor is empty");
    return *p;
}

static detrun_tensor *totensor(lua_State *L, int idx)
{
    detrun_tensor **p = luaL_testudata(L, idx, DETRUN_LUA_TENSOR);
    return p != NULL ? *p : NULL;
}

/* Raises the runtime's message unless st is DETRUN_OK. */
static void check(lua_State *L, detrun_status st)
{
    if (st != DETRUN_OK)
        luaL_error(L, "%s", detrun_errmsg(detrun_lua_runtime(L)));
}

/* A shape from a table of integers at idx; returns the number of dims. */
static int getshape(lua_State *L, int idx, int dims[MAXD], const char *what)
{
    if (!lua_istable(L, idx))
        return luaL_error(L, "%s: the shape must be a table of dimensions, such as {2, 3}", what);
    lua_Integer n = luaL_len(L, idx);
    if (n < 1 || n > MAXD)
        return luaL_error(L, "%s: a shape has 1 to %d dimensions, not %d", what, MAXD, (int)n);
    for (lua_Integer d = 0; d < n; d++) {
        lua_geti(L, idx, d + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 1 || v > 0x7fffffff)
            return luaL_error(L, "%s: dimension %d must be a positive integer, not %s", what,
                              (int)d + 1, luaL_tolstring(L, -1, NULL));
        dims[d] = (int)v;
        lua_pop(L, 1);
    }
    return (int)n;
}

static detrun_tensor *newtensor(lua_State *L, int nd, const int *dims)
{
    detrun_tensor **p = detrun_lua_pushtensor(L);
    check(L, detrun_tensor_new(detrun_lua_runtime(L), nd, dims, p));
    return *p;
}

static float checkfloat(lua_State *L, int idx, const char *what)
{
    int ok;
    lua_Number v = lua_tonumberx(L, idx, &ok);
    if (!ok)
        luaL_error(L, "%s must be a number, not %s", what, luaL_typename(L, idx));
    return (float)v;
}

/* ---- constructors ---------------------------------------------------------- */

static int filled(lua_State *L, const char *what, float v)
{
    int dims[MAXD];
    int nd = getshape(L, 1, dims, what);
    detrun_tensor_fill(newtensor(L, nd, dims), v);
    return 1;
}

static int l_zeros(lua_State *L) { return filled(L, "zeros", 0.0f); }
static int l_ones(lua_State *L) { return filled(L, "ones", 1.0f); }
static int l_full(lua_State *L) { return filled(L, "full", checkfloat(L, 2, "full: the value")); }

/* arange(n): 0, 1, ..., n-1 */
static int l_arange(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 0x7fffffff, 1, "arange: n must be a positive integer");
    int dims[1] = { (int)n };
    float *d = detrun_tensor_data(newtensor(L, 1, dims));
    for (lua_Integer i = 0; i < n; i++)
        d[i] = (float)i;
    return 1;
}

/* The shape of nested tables: follow the first elements down. */
static int nested_shape(lua_State *L, int idx, int dims[MAXD])
{
    int nd = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (nd == MAXD)
            return luaL_error(L, "from: more than %d levels of nesting", MAXD);
        lua_Integer n = luaL_len(L, -1);
        if (n < 1 || n > 0x7fffffff)
            return luaL_error(L, "from: an empty table at depth %d", nd + 1);
        dims[nd++] = (int)n;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    if (nd == 0)
        return luaL_error(L, "from: expects nested tables of numbers, such as {{1, 2}, {3, 4}}");
    return nd;
}

/* Copies the table at the top (depth d) into data from *at, checking sizes. */
static void nested_fill(lua_State *L, int d, int nd, const int *dims, float *data, size_t *at)
{
    if (!lua_istable(L, -1) || luaL_len(L, -1) != dims[d])
        luaL_error(L, "from: ragged tables: expected a table of %d at depth %d, near element "
                      "%d", dims[d], d + 1, (int)*at + 1);
    for (int i = 1; i <= dims[d]; i++) {
        lua_geti(L, -1, i);
        if (d + 1 < nd) {
            nested_fill(L, d + 1, nd, dims, data, at);
        } else {
            int ok;
            lua_Number v = lua_tonumberx(L, -1, &ok);
            if (!ok)
                luaL_error(L, "from: element %d is a %s, not a number", (int)*at + 1,
                           luaL_typename(L, -1));
            data[(*at)++] = (float)v;
        }
        lua_pop(L, 1);
    }
}

static int l_from(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int dims[MAXD];
    int nd = nested_shape(L, 1, dims);
    float *data = detrun_tensor_data(newtensor(L, nd, dims));
    size_t at = 0;
    luaL_checkstack(L, 2 * MAXD + 4, "from");
    lua_pushvalue(L, 1);
    nested_fill(L, 0, nd, dims, data, &at);
    lua_pop(L, 1);
    return 1;
}

/* ---- seeded draws -------------------------------------------------------- */

/* Options of a draw: t[1] the shape, the named keys as allowed. */
static void check_keys(lua_State *L, const char *what, const char *const *allowed)
{
    const char *first = NULL;
    lua_pushnil(L);
    while (lua_next(L, 1)) {   /* remembers the smallest unknown key: no pairs() order */
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TNUMBER && lua_tointeger(L, -1) == 1)
            continue;
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        int ok = 0;
        for (int i = 0; allowed[i] != NULL; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok && (first == NULL || strcmp(k, first) < 0))
            first = k;   /* strings stay alive as keys of the table */
    }
    if (first != NULL)
        luaL_error(L, "%s: unknown option '%s'", what, first);
}

static lua_Number numopt(lua_State *L, const char *k, lua_Number dflt, const char *what)
{
    lua_Number v = dflt;
    if (lua_getfield(L, 1, k) != LUA_TNIL) {
        int ok;
        v = lua_tonumberx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "%s: %s must be a number", what, k);
    }
    lua_pop(L, 1);
    return v;
}

static lua_Integer intopt(lua_State *L, const char *k, lua_Integer dflt, const char *what)
{
    lua_Integer v = dflt;
    if (lua_getfield(L, 1, k) != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "%s: %s must be an integer", what, k);
    }
    lua_pop(L, 1);
    return v;
}

/* Pushes a tensor of the shape in opts[1]; seed and stream from opts. */
static detrun_tensor *draw_target(lua_State *L, const char *what, const char *const *allowed,
                                  uint64_t *seed, uint32_t *stream)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, what, allowed);
    *seed = (uint64_t)intopt(L, "seed", 0, what);
    lua_Integer s = intopt(L, "stream", 0, what);
    if (s < 0 || s > 0xffffff)
        luaL_error(L, "%s: stream must be from 0 to 16777215, not %I", what, s);
    *stream = (uint32_t)s;
    lua_geti(L, 1, 1);
    int dims[MAXD];
    int nd = getshape(L, lua_gettop(L), dims, what);
    lua_pop(L, 1);
    return newtensor(L, nd, dims);
}

static int l_uniform(lua_State *L)
{
    static const char *const keys[] = { "seed", "stream", "low", "high", NULL };
    uint64_t seed;
    uint32_t stream;
    detrun_tensor *t = draw_target(L, "uniform", keys, &seed, &stream);
    float low = (float)numopt(L, "low", 0.0, "uniform");
    float high = (float)numopt(L, "high", 1.0, "uniform");
    check(L, detrun_tensor_uniform(detrun_lua_runtime(L), t, seed, stream, low, high));
    return 1;
}

static int l_normal(lua_State *L)
{
    static const char *const keys[] = { "seed", "stream", "mean", "std", NULL };
    uint64_t seed;
    uint32_t stream;
    detrun_tensor *t = draw_target(L, "normal", keys, &seed, &stream);
    float mean = (float)numopt(L, "mean", 0.0, "normal");
    float sd = (float)numopt(L, "std", 1.0, "normal");
    check(L, detrun_tensor_normal(detrun_lua_runtime(L), t, seed, stream, mean, sd));
    return 1;
}

/* Fans default as the runtime's: dense (k, units): k and units; conv
 * (o, c, kh, kw): c*kh*kw and o*kh*kw. */
static int l_glorot(lua_State *L)
{
    static const char *const keys[] = { "seed", "stream", "fan_in", "fan_out", NULL };
    uint64_t seed;
    uint32_t stream;
    detrun_tensor *t = draw_target(L, "glorot", keys, &seed, &stream);
    int d[MAXD];
    int nd = detrun_tensor_shape(t, d);
    lua_Integer fin = nd == 4 ? (lua_Integer)d[1] * d[2] * d[3] : d[0];
    lua_Integer fout = nd == 4 ? (lua_Integer)d[0] * d[2] * d[3] : nd >= 2 ? d[1] : d[0];
    fin = intopt(L, "fan_in", fin, "glorot");
    fout = intopt(L, "fan_out", fout, "glorot");
    if (fin < 1 || fin > 0x3fffffff || fout < 1 || fout > 0x3fffffff)
        return luaL_error(L, "glorot: fan_in and fan_out must be positive, not %I and %I", fin,
                          fout);
    check(L, detrun_tensor_glorot(detrun_lua_runtime(L), t, seed, stream, (int)fin, (int)fout));
    return 1;
}

/* ---- files ----------------------------------------------------------------- */

static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    detrun_lua_checkpath(L, path, DETRUN_LUA_READ, "dr.tensor.load");
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_tensor **p = detrun_lua_pushtensor(L);
    detrun_npy_type type;
    if (detrun_tensor_load_npy(rt, path, p, &type) != DETRUN_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, detrun_errmsg(rt));
        return 2;
    }
    lua_pushstring(L, type == DETRUN_NPY_U8 ? "uint8" : "float32");
    return 2;
}

static int t_save(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    static const char *const types[] = { "float32", "uint8", NULL };
    int type = luaL_checkoption(L, 3, "float32", types);
    detrun_lua_checkpath(L, path, DETRUN_LUA_WRITE, "tensor:save");
    detrun_runtime *rt = detrun_lua_runtime(L);
    if (detrun_tensor_save_npy(rt, t, path, type ? DETRUN_NPY_U8 : DETRUN_NPY_F32) != DETRUN_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, detrun_errmsg(rt));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- access ---------------------------------------------------------------- */

/* The storage offset of the index at idx: an integer (storage order) or a
 * table of one integer per dimension. */
static size_t offset(lua_State *L, detrun_tensor *t, int idx)
{
    int d[MAXD];
    int nd = detrun_tensor_shape(t, d);
    size_t count = detrun_tensor_count(t);
    int ok;
    if (!lua_istable(L, idx)) {
        lua_Integer i = lua_tointegerx(L, idx, &ok);
        if (!ok || i < 1 || (size_t)i > count)
            luaL_error(L, "tensor index %s is out of range 1..%I", luaL_tolstring(L, idx, NULL),
                       (lua_Integer)count);
        return (size_t)i - 1;
    }
    if (luaL_len(L, idx) != nd)
        luaL_error(L, "tensor index: the tensor has %d dimensions, the index %I", nd,
                   luaL_len(L, idx));
    size_t off = 0;
    for (int k = 0; k < nd; k++) {
        lua_geti(L, idx, k + 1);
        lua_Integer i = lua_tointegerx(L, -1, &ok);
        if (!ok || i < 1 || i > d[k])
            luaL_error(L, "tensor index: position %s in dimension %d is out of range 1..%d",
                       luaL_tolstring(L, -1, NULL), k + 1, d[k]);
        lua_pop(L, 1);
        off = off * (size_t)d[k] + (size_t)(i - 1);
    }
    return off;
}

static int t_index(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        luaL_getmetafield(L, 1, "methods");
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    lua_pushnumber(L, detrun_tensor_data(t)[offset(L, t, 2)]);
    return 1;
}

static int t_newindex(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    size_t off = offset(L, t, 2);
    detrun_tensor_data(t)[off] = checkfloat(L, 3, "a tensor element");
    return 0;
}

static int t_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)detrun_tensor_count(detrun_lua_checktensor(L, 1)));
    return 1;
}

static int t_shape(lua_State *L)
{
    int d[MAXD];
    int nd = detrun_tensor_shape(detrun_lua_checktensor(L, 1), d);
    lua_createtable(L, nd, 0);
    for (int k = 0; k < nd; k++) {
        lua_pushinteger(L, d[k]);
        lua_seti(L, -2, k + 1);
    }
    return 1;
}

/* t:reshape{...} -> a new tensor with t's elements in the new shape */
static int t_reshape(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    int dims[MAXD];
    int nd = getshape(L, 2, dims, "reshape");
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_tensor **p = detrun_lua_pushtensor(L);
    check(L, detrun_tensor_clone(rt, t, p));
    check(L, detrun_tensor_reshape(rt, *p, nd, dims));
    return 1;
}

static int t_clone(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    detrun_runtime *rt = detrun_lua_runtime(L);
    check(L, detrun_tensor_clone(rt, t, detrun_lua_pushtensor(L)));
    return 1;
}

static void push_nested(lua_State *L, const float *data, const int *d, int nd, size_t *at)
{
    lua_createtable(L, d[0], 0);
    for (int i = 1; i <= d[0]; i++) {
        if (nd > 1)
            push_nested(L, data, d + 1, nd - 1, at);
        else
            lua_pushnumber(L, data[(*at)++]);
        lua_seti(L, -2, i);
    }
}

static int t_totable(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    int d[MAXD];
    int nd = detrun_tensor_shape(t, d);
    size_t at = 0;
    luaL_checkstack(L, nd + 4, "totable");
    push_nested(L, detrun_tensor_data(t), d, nd, &at);
    return 1;
}

static int t_tostring(lua_State *L)
{
    detrun_tensor **p = luaL_checkudata(L, 1, DETRUN_LUA_TENSOR);
    if (*p == NULL) {
        lua_pushliteral(L, "detrun.tensor(empty)");
        return 1;
    }
    int d[MAXD];
    int nd = detrun_tensor_shape(*p, d);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "detrun.tensor(");
    for (int k = 0; k < nd; k++)
        lua_pushfstring(L, k ? "x%d" : "%d", d[k]), luaL_addvalue(&b);
    luaL_addstring(&b, ":");
    size_t n = detrun_tensor_count(*p), show = n < 6 ? n : 6;
    for (size_t i = 0; i < show; i++) {
        char num[32];
        snprintf(num, sizeof num, " %.9g", (double)detrun_tensor_data(*p)[i]);
        luaL_addstring(&b, num);
    }
    luaL_addstring(&b, n > show ? " ...)" : ")");
    luaL_pushresult(&b);
    return 1;
}

/* ---- arithmetic -------------------------------------------------------------- */

static int arith(lua_State *L, detrun_tensor_op op)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_tensor *a = totensor(L, 1), *b = totensor(L, 2);
    detrun_tensor **p = detrun_lua_pushtensor(L);
    if (a != NULL && b != NULL)
        check(L, detrun_tensor_binary(rt, op, a, b, p));
    else if (a != NULL)
        check(L, detrun_tensor_scalar(rt, op, a, checkfloat(L, 2, "the operand"), 0, p));
    else if (b != NULL)
        check(L, detrun_tensor_scalar(rt, op, b, checkfloat(L, 1, "the operand"), 1, p));
    else
        return luaL_error(L, "tensor arithmetic: needs a tensor");
    return 1;
}

static int t_add(lua_State *L) { return arith(L, DETRUN_TENSOR_ADD); }
static int t_sub(lua_State *L) { return arith(L, DETRUN_TENSOR_SUB); }
static int t_mul(lua_State *L) { return arith(L, DETRUN_TENSOR_MUL); }

static int t_unm(lua_State *L)
{
    detrun_tensor *a = detrun_lua_checktensor(L, 1);
    detrun_runtime *rt = detrun_lua_runtime(L);
    check(L, detrun_tensor_scalar(rt, DETRUN_TENSOR_MUL, a, -1.0f, 0, detrun_lua_pushtensor(L)));
    return 1;
}

static int t_sum(lua_State *L)
{
    lua_pushnumber(L, detrun_tensor_sum(detrun_lua_checktensor(L, 1)));
    return 1;
}

static int t_mean(lua_State *L)
{
    lua_pushnumber(L, detrun_tensor_mean(detrun_lua_checktensor(L, 1)));
    return 1;
}

static int t_matmul(lua_State *L)
{
    detrun_tensor *a = detrun_lua_checktensor(L, 1), *b = detrun_lua_checktensor(L, 2);
    detrun_runtime *rt = detrun_lua_runtime(L);
    check(L, detrun_tensor_matmul(rt, a, b, detrun_lua_pushtensor(L)));
    return 1;
}

/* t:clamp(lo, hi) -> a new tensor with each element limited to [lo, hi] */
static int t_clamp(lua_State *L)
{
    detrun_tensor *a = detrun_lua_checktensor(L, 1);
    float lo = checkfloat(L, 2, "clamp: lo"), hi = checkfloat(L, 3, "clamp: hi");
    if (!(lo <= hi))
        return luaL_error(L, "clamp: needs lo <= hi");
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_tensor **p = detrun_lua_pushtensor(L);
    check(L, detrun_tensor_clone(rt, a, p));
    float *d = detrun_tensor_data(*p);
    for (size_t i = 0; i < detrun_tensor_count(*p); i++)
        d[i] = d[i] < lo ? lo : d[i] > hi ? hi : d[i];
    return 1;
}

static int t_fingerprint(lua_State *L)
{
    detrun_tensor *t = detrun_lua_checktensor(L, 1);
    char fp[33];
    detrun_tensor_fingerprint(t, luaL_optstring(L, 2, ""), fp);
    lua_pushstring(L, fp);
    return 1;
}

static int t_gc(lua_State *L)
{
    detrun_tensor **p = luaL_checkudata(L, 1, DETRUN_LUA_TENSOR);
    detrun_tensor_free(*p);
    *p = NULL;
    return 0;
}

static const luaL_Reg methods[] = {
    { "shape", t_shape }, { "reshape", t_reshape }, { "clone", t_clone },
    { "totable", t_totable }, { "sum", t_sum }, { "mean", t_mean }, { "matmul", t_matmul },
    { "clamp", t_clamp }, { "fingerprint", t_fingerprint }, { "save", t_save },
    { NULL, NULL }
};

static const luaL_Reg meta[] = {
    { "__index", t_index }, { "__newindex", t_newindex }, { "__len", t_len },
    { "__tostring", t_tostring }, { "__add", t_add }, { "__sub", t_sub }, { "__mul", t_mul },
    { "__unm", t_unm }, { "__gc", t_gc }, { NULL, NULL }
};

static const luaL_Reg funcs[] = {
    { "zeros", l_zeros }, { "ones", l_ones }, { "full", l_full }, { "from", l_from },
    { "arange", l_arange }, { "uniform", l_uniform }, { "normal", l_normal },
    { "glorot", l_glorot }, { "load", l_load }, { NULL, NULL }
};

void detrun_lua_open_tensor(lua_State *L)
{
    luaL_newmetatable(L, DETRUN_LUA_TENSOR);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "tensor");
}
