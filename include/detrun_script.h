/*
 * detrun_script.h - the scripting layer of detrun: experiment scripts in Lua
 * 5.4 and their results, on top of the core API of detrun.h.
 *
 * A host that runs scripts includes this header and links libdetrun-lua
 * (pkg-config detrun-lua, CMake detrun::lua) besides libdetrun. The script
 * handle borrows a runtime: its scripts train on that runtime's device, mode
 * and threads, and every block the handle and its Lua states allocate goes
 * through the runtime's allocator. The handle keeps its own error message.
 *
 *     #include <stdio.h>
 *     #include <detrun_script.h>
 *
 *     int main(void)
 *     {
 *         detrun_options opt = DETRUN_OPTIONS_INIT;
 *         detrun_runtime *rt = NULL;
 *         detrun_script *sc = NULL;
 *         detrun_results *res = NULL;
 *         int status = 1;
 *         if (detrun_open(&rt, &opt) != DETRUN_OK)
 *             fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
 *         else if (detrun_script_open(&sc, rt) != DETRUN_OK ||
 *                  detrun_script_run_file(sc, "experiments/quick.lua", &res) != DETRUN_OK)
 *             fprintf(stderr, "detrun: %s\n", detrun_script_errmsg(sc));
 *         else {
 *             printf("%s\n", detrun_results_fingerprint(res, "deterministic", 0));
 *             status = 0;
 *         }
 *         detrun_results_free(res);
 *         detrun_script_close(sc);
 *         detrun_close(rt);
 *         return status;
 *     }
 */
#ifndef DETRUN_SCRIPT_H
#define DETRUN_SCRIPT_H

#include "detrun.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lua_State lua_State;
typedef struct detrun_script detrun_script;
typedef struct detrun_results detrun_results;

/* ===================================================================== */
/* The script handle                                                     */
/* ===================================================================== */

/* Opens a script handle on rt, which must outlive it. On failure *out is
 * NULL (the status says why: DETRUN_ERR_ARG, DETRUN_ERR_MEMORY). */
DETRUN_API detrun_status detrun_script_open(detrun_script **out, detrun_runtime *rt);
/* Frees the handle (NULL is accepted); the runtime stays open. */
DETRUN_API void detrun_script_close(detrun_script *sc);
/* The message of the handle's last failing call. */
DETRUN_API const char *detrun_script_errmsg(const detrun_script *sc);
/* The runtime the handle's scripts work with. */
DETRUN_API detrun_runtime *detrun_script_runtime(const detrun_script *sc);

/* What the `detrun` command imposes on the experiments that this handle's
 * scripts run; zero and NULL fields leave the script's own. Copied. */
typedef struct detrun_script_options {
    const char *mode;         /* "deterministic" or "fast": run only this mode */
    int seed_set;             /* non-zero: seed replaces the experiment's seed */
    uint64_t seed;
    int repeats, folds, epochs;
    size_t limit;             /* use only the first limit training rows */
    const char *data_dir;     /* default folder of dr.data.mnist() */
    const char *out_dir;      /* results folder; NULL: no results files */
    int verbosity;            /* 0 silent, 1 the report on stdout, 2 also progress on stderr */
    int argc;                 /* the script's arguments: Lua's arg[0..argc-1] */
    char *const *argv;
    int resume;               /* non-zero: continue the run found in out_dir (docs/regression.md) */
    int shard, shards;        /* shards > 0: run only shard `shard` of the grid's cells, recording
                                 them in out_dir/shards (docs/cluster.md); shard -1: plan only */
    int traceback;            /* non-zero: every script error carries a Lua traceback; otherwise
                                 only unexpected ones (an error inside detrun's own Lua code) */
    int no_report;            /* non-zero: no OUT/NAME.html and OUT/NAME.epochs.csv */
    /* Untrusted scripts (docs/c-api.md, "Trust and the sandbox"). */
    int sandbox;              /* non-zero: the script gets only the safe libraries and the
                                 detrun modules, and detrun opens for it only paths inside
                                 data_dir and out_dir */
    size_t memory_limit;      /* cap on the Lua heap in bytes; 0: none, or under the sandbox
                                 DETRUN_SCRIPT_SANDBOX_MEMORY */
    uint64_t instruction_limit; /* Lua instructions the script may run; 0: no limit, or under
                                 the sandbox DETRUN_SCRIPT_SANDBOX_INSTRUCTIONS */
    int no_checkpoint;        /* non-zero: no per-cell checkpoints (gives up resume) */
    int jobs;                 /* > 0: grid cells in flight at once, each in its own worker
                                 process (a fork of this one) with threads / jobs threads;
                                 0: the experiment's own `jobs`, else one cell at a time in
                                 this process; DETRUN_SCRIPT_JOBS_AUTO: the experiment's own,
                                 else one per core (docs/lua.md, "Jobs"). A runtime being traced needs
                                 one cell at a time: 1 */
} detrun_script_options;

#define DETRUN_SCRIPT_JOBS_AUTO (-1)

#define DETRUN_SCRIPT_OPTIONS_INIT { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0, NULL, 0, 0, 0, \
                                     0, 0, 0, 0, 0, 0, 0 }
/* The sandbox's limits when the options leave them 0. */
#define DETRUN_SCRIPT_SANDBOX_MEMORY ((size_t)1 << 30)
#define DETRUN_SCRIPT_SANDBOX_INSTRUCTIONS ((uint64_t)1000000000)

DETRUN_API detrun_status detrun_script_set_options(detrun_script *sc,
                                                   const detrun_script_options *opt);
/* Adds a global Lua function visible to the scripts this handle runs. */
DETRUN_API detrun_status detrun_script_register(detrun_script *sc, const char *name,
                                                int (*fn)(lua_State *L));

/* Runs an experiment script in a fresh Lua state; the results are those of
 * the dr.experiment{} the script returns (NULL results if it returns none;
 * any other value is a DETRUN_ERR_SCRIPT). Script errors carry the script's
 * file:line in the handle's errmsg; an error raised inside detrun's own Lua
 * code (a fault of detrun's, not of the script) and every error under the
 * traceback option also carry a Lua traceback. */
DETRUN_API detrun_status detrun_script_run_file(detrun_script *sc, const char *path,
                                                detrun_results **res);
DETRUN_API detrun_status detrun_script_run_string(detrun_script *sc, const char *chunkname,
                                                  const char *code, detrun_results **res);

/* ===================================================================== */
/* Results                                                               */
/* ===================================================================== */

DETRUN_API void detrun_results_free(detrun_results *res);
DETRUN_API const char *detrun_results_json(const detrun_results *res);
DETRUN_API int detrun_results_repeats(const detrun_results *res, const char *mode);
DETRUN_API int detrun_results_folds(const detrun_results *res);
/* Final fingerprint of a repeat (NULL when absent). */
DETRUN_API const char *detrun_results_fingerprint(const detrun_results *res, const char *mode,
                                                  int repeat);
DETRUN_API detrun_status detrun_results_fold(const detrun_results *res, const char *mode,
                                             int repeat, int fold, double *loss,
                                             double *accuracy, const char **fingerprint);
/* The message of the last failing detrun_results_* call on res (results
 * have no runtime): "results: no repeat 9 of mode fast". */
DETRUN_API const char *detrun_results_errmsg(const detrun_results *res);

#ifdef __cplusplus
}
#endif
#endif
