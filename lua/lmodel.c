/*
 * lmodel.c - the model userdata: a thin layer over detrun_model_*.
 *
 * Methods that can fail in the core return nil and the core's message (as
 * Lua's io library does), so that the Lua-side builder can say which layer of
 * the user's script was wrong; only argument errors are raised here. The
 * per-epoch callback runs under lua_pcall, so a Lua error never unwinds
 * through detrun_model_fit: it stops training and is raised after fit
 * returns.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ldetrun.h"
#include "lsandbox.h"

typedef struct lmodel {
    detrun_model *m;
    int training;   /* inside m:fit: its callback may not close or refit the model */
} lmodel;

static detrun_model *checkmodel(lua_State *L, int idx)
{
    lmodel *p = luaL_checkudata(L, idx, DETRUN_LUA_MODEL);
    if (p->m == NULL)
        luaL_error(L, "model is closed");
    return p->m;
}

/* nil, message of the runtime's last error, and the name of the layer it
 * is about when it is about one (detrun_error_layer) */
static int fail(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    const char *layer = NULL;
    luaL_pushfail(L);
    lua_pushstring(L, detrun_errmsg(rt));
    if (detrun_error_layer(rt, &layer) < 0 || layer == NULL)
        return 2;
    lua_pushstring(L, layer);
    return 3;
}

static int done(lua_State *L, detrun_status st)
{
    if (st != DETRUN_OK)
        return fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int checkint(lua_State *L, int idx, const char *what)
{
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok || v < -0x7fffffff || v > 0x7fffffff)
        return luaL_error(L, "%s must be an integer, not %s", what, luaL_tolstring(L, idx, NULL));
    return (int)v;
}

static detrun_activation checkact(lua_State *L, int idx)
{
    static const char *const names[] = { "none", "linear", "relu", "softmax", NULL };
    static const detrun_activation acts[] = { DETRUN_ACT_NONE, DETRUN_ACT_NONE, DETRUN_ACT_RELU,
                                              DETRUN_ACT_SOFTMAX };
    return acts[luaL_checkoption(L, idx, "none", names)];
}

/* _model_new(c, h, w) -> model | nil, message */
static int l_model_new(lua_State *L)
{
    detrun_runtime *rt = detrun_lua_runtime(L);
    int c = checkint(L, 1, "channels"), h = checkint(L, 2, "height"), w = checkint(L, 3, "width");
    lmodel *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->m = NULL;
    p->training = 0;
    luaL_setmetatable(L, DETRUN_LUA_MODEL);
    if (detrun_model_new(rt, c, h, w, &p->m) != DETRUN_OK)
        return fail(L);
    return 1;
}

static int m_close(lua_State *L)
{
    lmodel *p = luaL_checkudata(L, 1, DETRUN_LUA_MODEL);
    if (p->training)
        return luaL_error(L, "model: cannot close a model while it is training "
                             "(from its own on_epoch callback)");
    detrun_model_free(p->m);
    p->m = NULL;
    return 0;
}

/* m:add_conv2d(filters, kh, kw, stride, "valid" | "same", activation) */
static int m_add_conv2d(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    static const char *const pads[] = { "valid", "same", NULL };
    int filters = checkint(L, 2, "filters"), kh = checkint(L, 3, "kernel height");
    int kw = checkint(L, 4, "kernel width"), stride = checkint(L, 5, "strides");
    detrun_padding pad = luaL_checkoption(L, 6, "valid", pads) ? DETRUN_PAD_SAME : DETRUN_PAD_VALID;
    detrun_activation act = checkact(L, 7);
    return done(L, detrun_model_add_conv2d(m, filters, kh, kw, stride, pad, act));
}

static int m_add_maxpool(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    int size = checkint(L, 2, "size"), stride = checkint(L, 3, "strides");
    return done(L, detrun_model_add_maxpool(m, size, stride));
}

static int m_add_flatten(lua_State *L)
{
    return done(L, detrun_model_add_flatten(checkmodel(L, 1)));
}

static int m_add_dense(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    int units = checkint(L, 2, "units");
    return done(L, detrun_model_add_dense(m, units, checkact(L, 3)));
}

static int m_add_relu(lua_State *L)
{
    return done(L, detrun_model_add_relu(checkmodel(L, 1)));
}

static int m_add_dropout(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    return done(L, detrun_model_add_dropout(m, (float)luaL_checknumber(L, 2)));
}

/* m:add_layer(kind, {key = number | string, ...}): any kind the core knows,
 * its options checked there (detrun_model_add_layer). */
static int m_add_layer(lua_State *L)
{
    enum { MAX_ARGS = 16 };
    detrun_model *m = checkmodel(L, 1);
    const char *kind = luaL_checkstring(L, 2);
    detrun_layer_arg args[MAX_ARGS];
    int n = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "%s: option names must be strings", kind);
            if (n == MAX_ARGS)
                return luaL_error(L, "%s: more than %d options", kind, MAX_ARGS);
            const char *key = lua_tostring(L, -2);
            args[n].key = key;
            args[n].number = 0;
            args[n].string = NULL;
            if (lua_type(L, -1) == LUA_TNUMBER)
                args[n].number = lua_tonumber(L, -1);
            else if (lua_type(L, -1) == LUA_TSTRING)
                args[n].string = lua_tostring(L, -1);   /* kept alive by the table */
            else
                return luaL_error(L, "%s: %s must be a number or a string, not %s", kind, key,
                                  luaL_typename(L, -1));
            n++;
            lua_pop(L, 1);
        }
    }
    return done(L, detrun_model_add_layer(m, kind, args, n));
}

static float optfield(lua_State *L, int t, const char *k, float dflt)
{
    float v = dflt;
    if (lua_getfield(L, t, k) != LUA_TNIL) {
        int ok;
        v = (float)lua_tonumberx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "optimizer: %s must be a number", k);
    }
    lua_pop(L, 1);
    return v;
}

/* m:compile({ kind = "adam" | "sgd", lr, beta1, beta2, eps, momentum }, seed, stream) */
static int m_compile(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer seed = luaL_checkinteger(L, 3);
    lua_Integer stream = luaL_optinteger(L, 4, 0);
    /* Only what a uint32 holds: the core checks the stream's range. */
    luaL_argcheck(L, stream >= 0 && stream <= (lua_Integer)UINT32_MAX, 4,
                  "stream must be a non-negative 32-bit integer");
    static const char *const kinds[] = { "adam", "sgd", NULL };
    lua_getfield(L, 2, "kind");
    int kind = luaL_checkoption(L, -1, "adam", kinds);
    lua_pop(L, 1);
    detrun_optimizer adam = DETRUN_ADAM_INIT, sgd = DETRUN_SGD_INIT;
    detrun_optimizer o = kind == 0 ? adam : sgd;
    o.lr = optfield(L, 2, "lr", o.lr);
    o.beta1 = optfield(L, 2, "beta1", o.beta1);
    o.beta2 = optfield(L, 2, "beta2", o.beta2);
    o.eps = optfield(L, 2, "eps", o.eps);
    o.momentum = optfield(L, 2, "momentum", o.momentum);
    return done(L, detrun_model_compile(m, &o, (uint64_t)seed, (uint32_t)stream));
}

/* ---- fit -------------------------------------------------------------------- */

typedef struct fit_ctx {
    lua_State *L;
    int history;   /* stack index of the history table in m_fit's frame */
    int callback;  /* stack index of the callback, 0 if none */
    int failed;    /* the error object is left on the stack */
    int on_batch;  /* stack index of the per-step callback, 0 if none */
} fit_ctx;

static void setnum(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* Under pcall: (history, callback or nil, stats) -> stop? */
static int record_epoch(lua_State *L)
{
    const detrun_epoch_stats *st = lua_touserdata(L, 3);
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, st->epoch);
    lua_setfield(L, -2, "epoch");
    setnum(L, "loss", st->loss);
    setnum(L, "accuracy", st->accuracy);
    setnum(L, "val_loss", st->val_loss);
    setnum(L, "val_accuracy", st->val_accuracy);
    setnum(L, "seconds", st->seconds);
    lua_pushstring(L, st->fingerprint);
    lua_setfield(L, -2, "fingerprint");
    lua_pushvalue(L, -1);
    lua_seti(L, 1, luaL_len(L, 1) + 1);
    if (lua_isnil(L, 2)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    return 1;
}

static int on_epoch(void *ud, const detrun_epoch_stats *st)
{
    fit_ctx *c = ud;
    lua_State *L = c->L;
    /* None of these pushes allocates: the stack was grown before fit. */
    lua_pushcfunction(L, record_epoch);
    lua_pushvalue(L, c->history);
    if (c->callback)
        lua_pushvalue(L, c->callback);
    else
        lua_pushnil(L);
    lua_pushlightuserdata(L, (void *)st);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        c->failed = 1;
        return 1;
    }
    int stop = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

/* The per-step callback: on_batch(k, n, loss, epoch), k and epoch from 1,
 * so that "batch k/n" reads as on screen; a true result stops. */
static int on_batch(void *ud, int epoch, int batch, int batches, double loss)
{
    fit_ctx *c = ud;
    lua_State *L = c->L;
    lua_pushvalue(L, c->on_batch);
    lua_pushinteger(L, (lua_Integer)batch + 1);
    lua_pushinteger(L, batches);
    lua_pushnumber(L, loss);
    lua_pushinteger(L, (lua_Integer)epoch + 1);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        c->failed = 1;
        return 1;
    }
    int stop = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

static int intfield(lua_State *L, int t, const char *k, int dflt)
{
    int v = dflt;
    if (lua_getfield(L, t, k) != LUA_TNIL)
        v = checkint(L, -1, k);
    lua_pop(L, 1);
    return v;
}

/* Rows at idx (rows userdata or nil = all of ds). */
static detrun_lua_rows *checkrows(lua_State *L, int idx, const detrun_dataset *ds)
{
    if (!lua_isnoneornil(L, idx))
        return luaL_checkudata(L, idx, DETRUN_LUA_ROWS);
    size_t n = detrun_dataset_count(ds);
    detrun_lua_rows *r = detrun_lua_newrows(L, n);
    for (size_t i = 0; i < n; i++)
        r->rows[i] = (uint32_t)i;
    lua_replace(L, idx);
    return r;
}

/* m:fit(run, ds, rows or nil, { epochs, batch, validation_split, shuffle,
 * stream, seed, checkpoint, resume, on_batch }, callback or nil)
 * -> history | nil, message */
static int m_fit(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    lmodel *p = lua_touserdata(L, 1);
    if (p->training)
        return luaL_error(L, "fit: the model is already training (fit called from its own "
                             "on_epoch callback)");
    detrun_lua_run *run = detrun_lua_checkrun(L, 2);
    detrun_dataset *ds = detrun_lua_checkdataset(L, 3);
    luaL_checktype(L, 5, LUA_TTABLE);
    if (!lua_isnoneornil(L, 6))
        luaL_checktype(L, 6, LUA_TFUNCTION);
    lua_settop(L, 6);
    detrun_lua_rows *rows = checkrows(L, 4, ds);

    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = intfield(L, 5, "epochs", fo.epochs);
    fo.batch = intfield(L, 5, "batch", fo.batch);
    if (lua_getfield(L, 5, "validation_split") != LUA_TNIL)
        fo.validation_split = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 5, "shuffle") != LUA_TNIL)
        fo.shuffle = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int stream = intfield(L, 5, "stream", 0);
    luaL_argcheck(L, stream >= 0, 5, "stream must not be negative");   /* the core checks the rest */
    fo.stream = (uint32_t)stream;
    fo.seed = (uint64_t)run->seed;
    if (lua_getfield(L, 5, "seed") != LUA_TNIL)
        fo.seed = (uint64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    char checkpoint[4096];   /* a copy: the fit outlives the option's place on the stack */
    if (lua_getfield(L, 5, "checkpoint") != LUA_TNIL) {
        const char *path = luaL_checkstring(L, -1);
        luaL_argcheck(L, strlen(path) < sizeof checkpoint, 5, "checkpoint path too long");
        detrun_lua_checkpath(L, path, DETRUN_LUA_WRITE, "fit: checkpoint");
        fo.checkpoint = strcpy(checkpoint, path);
    }
    lua_pop(L, 1);
    lua_getfield(L, 5, "resume");
    fo.resume = lua_toboolean(L, -1);
    lua_pop(L, 1);

    lua_newtable(L);   /* history, index 7 */
    lua_getfield(L, 5, "on_batch");   /* index 8 */
    if (!lua_isnil(L, 8))
        luaL_argcheck(L, lua_isfunction(L, 8), 5, "on_batch must be a function");
    luaL_checkstack(L, 8, "fit");
    fit_ctx c = { L, 7, lua_isnil(L, 6) ? 0 : 6, 0, lua_isnil(L, 8) ? 0 : 8 };
    if (c.on_batch) {
        fo.on_batch = on_batch;
        fo.batch_ud = &c;
    }
    detrun_runtime *rt = detrun_lua_runtime(L);
    detrun_status st = detrun_lua_apply_run(rt, run);
    if (st == DETRUN_OK) {
        p->training = 1;
        st = detrun_model_fit(m, ds, rows->rows, rows->n, &fo, on_epoch, &c);
        p->training = 0;
    }
    if (c.failed)
        return lua_error(L);   /* the callback's error, now that fit has returned */
    if (st != DETRUN_OK)
        return fail(L);
    lua_settop(L, 7);
    return 1;
}

/* m:evaluate(run, ds, rows or nil, batch) -> loss, accuracy | nil, message */
static int m_evaluate(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    detrun_lua_run *run = detrun_lua_checkrun(L, 2);
    detrun_dataset *ds = detrun_lua_checkdataset(L, 3);
    lua_Integer batch = luaL_optinteger(L, 5, 100);
    luaL_argcheck(L, batch >= 1 && batch <= 0x7fffffff, 5, "batch must be positive");
    lua_settop(L, 4);
    const uint32_t *rows = NULL;
    size_t n = 0;
    if (!lua_isnil(L, 4)) {
        detrun_lua_rows *r = luaL_checkudata(L, 4, DETRUN_LUA_ROWS);
        rows = r->rows;
        n = r->n;
    }
    detrun_runtime *rt = detrun_lua_runtime(L);
    double loss = 0, acc = 0;
    detrun_status st = detrun_lua_apply_run(rt, run);
    if (st == DETRUN_OK)
        st = detrun_model_evaluate(m, ds, rows, n, (int)batch, &loss, &acc);
    if (st != DETRUN_OK)
        return fail(L);
    lua_pushnumber(L, loss);
    lua_pushnumber(L, acc);
    return 2;
}

/* m:predict(x) with x an (n, c, h, w) tensor -> (n, classes) tensor of
 * probabilities | nil, message */
static int m_predict_tensor(lua_State *L, detrun_model *m)
{
    detrun_tensor *x = detrun_lua_checktensor(L, 2);
    detrun_tensor **probs = detrun_lua_pushtensor(L);
    if (detrun_model_predict_tensor(m, x, probs) != DETRUN_OK)
        return fail(L);
    return 1;
}

/* m:predict(x, n) with x a Lua array of n*c*h*w numbers -> array of logits */
static int m_predict(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    if (luaL_testudata(L, 2, DETRUN_LUA_TENSOR) != NULL)
        return m_predict_tensor(L, m);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_checkinteger(L, 3);
    lua_Integer classes = luaL_checkinteger(L, 4);
    lua_Integer len = luaL_len(L, 2);
    int c, h, w;
    detrun_model_input_shape(m, &c, &h, &w);
    lua_Integer per = (lua_Integer)c * h * w;
    luaL_argcheck(L, n >= 1 && n <= 0x7fffffff && len == n * per, 3,
                  lua_pushfstring(L, "predict: %I values are not n = %I images of %dx%dx%d", len,
                                  n, c, h, w));
    int out = detrun_model_output_size(m);
    luaL_argcheck(L, classes >= 1 && (!detrun_model_is_compiled(m) || classes == out), 4,
                  lua_pushfstring(L, "predict: the model gives %d logits per image", out));
    float *x = lua_newuserdatauv(L, (size_t)len * sizeof(float), 0);
    float *y = lua_newuserdatauv(L, (size_t)(n * classes) * sizeof(float), 0);
    for (lua_Integer i = 0; i < len; i++) {
        lua_geti(L, 2, i + 1);
        x[i] = (float)luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    if (detrun_model_predict(m, x, (size_t)n, y) != DETRUN_OK)
        return fail(L);
    lua_createtable(L, (int)(n * classes), 0);
    for (lua_Integer i = 0; i < n * classes; i++) {
        lua_pushnumber(L, y[i]);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int m_fingerprint(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    char fp[33];
    detrun_status st = lua_isnoneornil(L, 2)
        ? detrun_model_fingerprint(m, fp)
        : detrun_model_param_fingerprint(m, checkint(L, 2, "parameter") - 1, fp);
    if (st != DETRUN_OK)
        return fail(L);
    lua_pushstring(L, fp);
    return 1;
}

/* m:params() -> { { name, shape = {...}, fingerprint }, ... } in model order */
static int m_params(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    int n = detrun_model_param_count(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, detrun_model_param_name(m, i));
        lua_setfield(L, -2, "name");
        int dims[4];
        int nd = detrun_model_param_shape(m, i, dims);
        lua_createtable(L, nd, 0);
        for (int d = 0; d < nd && d < 4; d++) {
            lua_pushinteger(L, dims[d]);
            lua_seti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        char fp[33];
        if (detrun_model_param_fingerprint(m, i, fp) == DETRUN_OK) {
            lua_pushstring(L, fp);
            lua_setfield(L, -2, "fingerprint");
        }
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

/* m:param(i) -> a tensor holding parameter i (1-based), in its shape */
static int m_param(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    int i = checkint(L, 2, "parameter") - 1;
    luaL_argcheck(L, i >= 0 && i < detrun_model_param_count(m), 2, "no such parameter");
    detrun_tensor **t = detrun_lua_pushtensor(L);
    if (detrun_model_param_tensor(m, i, t) != DETRUN_OK)
        return fail(L);
    return 1;
}

/* m:set_param(i, tensor) -> true | nil, message (the shape must match) */
static int m_set_param(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    int i = checkint(L, 2, "parameter") - 1;
    luaL_argcheck(L, i >= 0 && i < detrun_model_param_count(m), 2, "no such parameter");
    return done(L, detrun_model_set_param_tensor(m, i, detrun_lua_checktensor(L, 3)));
}

static int m_layers(lua_State *L)
{
    detrun_model *m = checkmodel(L, 1);
    lua_newtable(L);
    const char *name;
    for (int i = 0; (name = detrun_model_layer_name(m, i)) != NULL; i++) {
        lua_pushstring(L, name);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int m_step(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)detrun_model_step(checkmodel(L, 1)));
    return 1;
}

static int m_tostring(lua_State *L)
{
    lmodel *p = luaL_checkudata(L, 1, DETRUN_LUA_MODEL);
    if (p->m == NULL)
        lua_pushliteral(L, "detrun.model(closed)");
    else
        lua_pushfstring(L, "detrun.model(%d parameter tensors, step %I)",
                        detrun_model_param_count(p->m), (lua_Integer)detrun_model_step(p->m));
    return 1;
}

static const luaL_Reg methods[] = {
    { "add_conv2d", m_add_conv2d },
    { "add_maxpool", m_add_maxpool },
    { "add_flatten", m_add_flatten },
    { "add_dense", m_add_dense },
    { "add_relu", m_add_relu },
    { "add_dropout", m_add_dropout },
    { "add_layer", m_add_layer },
    { "compile", m_compile },
    { "fit", m_fit },
    { "evaluate", m_evaluate },
    { "predict", m_predict },
    { "fingerprint", m_fingerprint },
    { "params", m_params },
    { "param", m_param },
    { "set_param", m_set_param },
    { "layers", m_layers },
    { "step", m_step },
    { "close", m_close },
    { NULL, NULL }
};

static const luaL_Reg meta[] = {
    { "__gc", m_close },
    { "__close", m_close },
    { "__tostring", m_tostring },
    { NULL, NULL }
};

void detrun_lua_open_model(lua_State *L)
{
    luaL_newmetatable(L, DETRUN_LUA_MODEL);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_model_new);
    lua_setfield(L, -2, "_model_new");
}
