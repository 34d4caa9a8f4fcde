/*
 * ldetrun.h - what the Lua front end's files share; never installed.
 *
 * The binding is a client of include/ like any host program: it implements
 * detrun_script.h on top of detrun.h, and the build shows it nothing else of
 * the core. Metatable names and registry keys are spelled here once.
 */
#ifndef DETRUN_LDETRUN_H
#define DETRUN_LDETRUN_H

#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

#include <cjson/cJSON.h>

#include "detrun_script.h"

#define DETRUN_LUA_RUNTIME "detrun.runtime"   /* registry: the runtime (light or owning) */
#define DETRUN_LUA_OPTIONS "detrun.options"   /* registry: table of command-line overrides */
#define DETRUN_LUA_RUN "detrun.run"           /* metatables */
#define DETRUN_LUA_MODEL "detrun.model"
#define DETRUN_LUA_DATASET "detrun.dataset"
#define DETRUN_LUA_ROWS "detrun.rows"
#define DETRUN_LUA_SPLIT "detrun.split"
#define DETRUN_LUA_RESULTS "detrun.results"

DETRUN_API int luaopen_detrun(lua_State *L);

/* The runtime this Lua state works with (raises an error if there is none). */
detrun_runtime *detrun_lua_runtime(lua_State *L);
/* Lua values to JSON and back (ljson.c). to_json appends the value at idx to
 * parent (under key when parent is an object), raising "<what>: ..." on values
 * JSON cannot hold; numbers are written raw, so read a tree back with
 * cJSON_Parse before looking numbers up in it. */
#define DETRUN_JSON_NONFINITE_STRINGS 1   /* NaN, +-inf as strings, not null */
void detrun_lua_to_json(lua_State *L, int idx, cJSON *parent, const char *key,
                        const char *what, int flags, int depth);
void detrun_lua_push_json(lua_State *L, const cJSON *v, int flags, int depth);
/* push_json refuses trees nested deeper than this; readers of files check
 * detrun_lua_json_depth first, to name the file (a scalar or an empty array
 * is 0, [1] is 1, the depth push_json reaches). cJSON's own nesting limit
 * bounds the recursion. */
#define DETRUN_JSON_MAX_DEPTH 64
int detrun_lua_json_depth(const cJSON *v);
/* mkdir -p; on failure returns -1 with the message in err. */
int detrun_lua_mkdirs(const char *dir, char *err, size_t errlen);

/* core.term_width() (lterm.c). */
int detrun_lua_term_width(lua_State *L);

/* Run settings: mode, threads and seed, applied to the runtime before each
 * fit or evaluate. */
typedef struct detrun_lua_run {
    detrun_mode mode;
    int threads;
    lua_Integer seed;
} detrun_lua_run;
detrun_lua_run *detrun_lua_checkrun(lua_State *L, int idx);
/* Applies run settings to the runtime; returns the status of the runtime. */
detrun_status detrun_lua_apply_run(detrun_runtime *rt, const detrun_lua_run *run);

/* Row lists: arrays of 0-based row indices into a dataset. */
typedef struct detrun_lua_rows {
    size_t n;
    uint32_t *rows;
} detrun_lua_rows;
detrun_lua_rows *detrun_lua_newrows(lua_State *L, size_t n);   /* pushes it */
detrun_dataset *detrun_lua_checkdataset(lua_State *L, int idx);

/* Tensors (ltensor.c): a userdata box holding a detrun_tensor. pushtensor
 * pushes an empty box (freed by __gc once filled). */
#define DETRUN_LUA_TENSOR "detrun.tensor"
detrun_tensor *detrun_lua_checktensor(lua_State *L, int idx);
detrun_tensor **detrun_lua_pushtensor(lua_State *L);
void detrun_lua_open_tensor(lua_State *L);

/* Results: a cJSON tree and its text. */
detrun_results *detrun_lua_takeresults(lua_State *L, int idx);  /* NULL if not results */

/* Each opener fills the module table at the top of the stack. */
void detrun_lua_open_run(lua_State *L);
void detrun_lua_open_data(lua_State *L);
void detrun_lua_open_model(lua_State *L);
void detrun_lua_open_results(lua_State *L);
void detrun_lua_open_regress(lua_State *L);   /* lregress.c: cell records, trace labels */
void detrun_lua_open_guard(lua_State *L);     /* lguard.c: folder lock, result sets, hashes */
void detrun_lua_open_worker(lua_State *L);    /* lworker.c: an experiment's worker processes */

#endif
