/*
 * test_alloc.c - the allocator promise of detrun.h, shown: a counting
 * allocator given in detrun_options.alloc sees the blocks of the runtime, of
 * the script handle and of the Lua state a script runs in, and gets every one
 * of them back by the end.
 *
 * Built twice. test_alloc_hook checks the hook. test_alloc_wrap is linked
 * against the static libraries with the linker wrapping malloc and its kin:
 * a call that reaches them from the libraries' objects bypassed the hook.
 * It lists those callers, and any such call fails the test.
 */
#define _GNU_SOURCE   /* dladdr */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "detrun.h"
#include "detrun_script.h"
#include "../common.h"

#ifdef DETRUN_TEST_WRAP
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
#define REALLOC __real_realloc
#define FREE __real_free
#else
#define REALLOC realloc
#define FREE free
#endif


/* ---- the counting allocator ---------------------------------------------------- */

typedef struct counter {
    pthread_mutex_t lock;
    long calls, blocks;
    long long bytes;
    struct { char *p; size_t n; } states[64];   /* live blocks Lua made for a thread */
    int nstates;
} counter;

static void forget_state(counter *c, void *p)
{
    for (int i = 0; i < c->nstates; i++)
        if (c->states[i].p == p) {
            c->states[i] = c->states[--c->nstates];
            return;
        }
}

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    pthread_mutex_lock(&c->lock);
    c->calls++;
    void *q = NULL;
    if (nsize == 0) {
        if (ptr != NULL) {
            c->blocks--;
            c->bytes -= (long long)osize;
            forget_state(c, ptr);
            FREE(ptr);
        }
    } else if ((q = REALLOC(ptr, nsize)) != NULL) {
        /* For a new block osize is 0, or the type of Lua object it is for. */
        size_t old = ptr != NULL ? osize : 0;
        c->blocks += ptr == NULL;
        c->bytes += (long long)nsize - (long long)old;
        if (ptr != NULL)
            forget_state(c, ptr);
        if (ptr == NULL && osize == LUA_TTHREAD && c->nstates < 64) {
            c->states[c->nstates].p = q;
            c->states[c->nstates++].n = nsize;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return q;
}

static counter count = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, { { NULL, 0 } }, 0 };
static int state_in_hook = -1;

/* alloc_probe(): whether the Lua state running the script lies in a block of
 * the counting allocator. */
static int alloc_probe(lua_State *L)
{
    pthread_mutex_lock(&count.lock);
    state_in_hook = 0;
    for (int i = 0; i < count.nstates; i++)
        if ((char *)L >= count.states[i].p && (char *)L < count.states[i].p + count.states[i].n)
            state_in_hook = 1;
    pthread_mutex_unlock(&count.lock);
    return 0;
}

/* A model and a short fit on a few rows. */
static const char script[] =
    "alloc_probe()\n"
    "local dr = require 'detrun'\n"
    "local data = dr.data.mnist()\n"
    "return dr.experiment {\n"
    "  name = 'alloc', seed = 3, folds = 2, repeats = 1, modes = { 'deterministic' },\n"
    "  data = data.test, limit = 200,\n"
    "  model = function()\n"
    "    return dr.nn.sequential {\n"
    "      dr.nn.conv2d { filters = 4, kernel = 3, activation = 'relu' },\n"
    "      dr.nn.maxpool { size = 2 },\n"
    "      dr.nn.flatten(),\n"
    "      dr.nn.dense { units = 10, activation = 'softmax' },\n"
    "    }\n"
    "  end,\n"
    "  compile = { optimizer = dr.optim.adam {}, loss = 'sparse_categorical_crossentropy' },\n"
    "  fit = { epochs = 1, batch = 50 },\n"
    "}\n";

/* ---- direct calls (the wrapped build) ---------------------------------------- */

#ifdef DETRUN_TEST_WRAP
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);

static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;
typedef struct caller {
    void *where;
    const char *fn;
    long n;
} caller;
static caller callers[256];
static int ncallers;
static long direct;

static void note(const char *fn, void *where)
{
    pthread_mutex_lock(&direct_lock);
    direct++;
    int i = 0;
    while (i < ncallers && (callers[i].where != where || callers[i].fn != fn))
        i++;
    if (i == ncallers && ncallers < 256)
        callers[ncallers++] = (caller){ where, fn, 0 };
    if (i < ncallers)
        callers[i].n++;
    pthread_mutex_unlock(&direct_lock);
}

#define CALLER __builtin_return_address(0)
void *__wrap_malloc(size_t n) { note("malloc", CALLER); return __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { note("calloc", CALLER); return __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { note("realloc", CALLER); return __real_realloc(p, n); }
void __wrap_free(void *p)
{
    if (p != NULL)
        note("free", CALLER);
    __real_free(p);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
    note("aligned_alloc", CALLER);
    return __real_aligned_alloc(a, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    note("posix_memalign", CALLER);
    return __real_posix_memalign(p, a, n);
}

/* Names the function and line of each caller (addr2line, when present) and
 * returns how many calls came from detrun's own code: the CUDA runtime,
 * linked statically into a CUDA build, keeps its own host blocks (outside the
 * promise, as docs/c-api.md says). */
static long list_callers(void)
{
    long own = 0;
    for (int i = 0; i < ncallers; i++) {
        Dl_info info;
        char where[512] = "?";
        if (dladdr(callers[i].where, &info) != 0 && info.dli_fname != NULL) {
            uintptr_t off = (uintptr_t)callers[i].where - (uintptr_t)info.dli_fbase - 1;
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "addr2line -s -f -e '%s' 0x%lx 2>/dev/null",
                     info.dli_fname, (unsigned long)off);
            FILE *p = popen(cmd, "r");
            char fn[256] = "", line[256] = "";
            if (p != NULL) {
                if (fgets(fn, sizeof fn, p) == NULL || fgets(line, sizeof line, p) == NULL)
                    fn[0] = line[0] = '\0';
                pclose(p);
            }
            fn[strcspn(fn, "\n")] = line[strcspn(line, "\n")] = '\0';
            snprintf(where, sizeof where, "%s (%s) +0x%lx", fn[0] ? fn : "?", line[0] ? line : "?",
                     (unsigned long)off);
        }
        int foreign = strncmp(where, "libcudart_static", 16) == 0;
        if (!foreign)
            own += callers[i].n;
        printf("  %6ld x %-14s from %s%s\n", callers[i].n, callers[i].fn, where,
               foreign ? " (the CUDA runtime)" : "");
    }
    return own;
}
#endif

int main(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 2;
    opt.alloc = counting_alloc;
    opt.alloc_ud = &count;
    detrun_runtime *rt = NULL;
    detrun_script *sc = NULL;
    detrun_results *res = NULL;
    CHECK(detrun_open(&rt, &opt) == DETRUN_OK, "open: %s", detrun_errmsg(rt));
    CHECK(detrun_script_open(&sc, rt) == DETRUN_OK, "script_open");
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.data_dir = getenv("DETRUN_TEST_DATA");
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_OK &&
          detrun_script_register(sc, "alloc_probe", alloc_probe) == DETRUN_OK,
          "options: %s", detrun_script_errmsg(sc));
    long before = count.calls;
    detrun_status st = detrun_script_run_string(sc, "=alloc", script, &res);
    CHECK(st == DETRUN_OK, "the script: %s", detrun_script_errmsg(sc));
    const char *fp = detrun_results_fingerprint(res, "deterministic", 0);
    CHECK(fp != NULL && strlen(fp) == 32, "a fingerprint: %s", fp ? fp : "(none)");
    printf("the run: %ld allocator calls (%ld before it)\n", count.calls - before, before);
    CHECK(count.calls - before > 1000, "the run made only %ld allocator calls",
          count.calls - before);
    CHECK(state_in_hook == 1, "the Lua state is %s the allocator's blocks",
          state_in_hook < 0 ? "unknown (the probe did not run), not in" : "not in");
    long long bytes_with_results = count.bytes;
    detrun_results_free(res);
    CHECK(count.bytes < bytes_with_results, "freeing the results gave back no block");
    detrun_script_close(sc);
    detrun_close(rt);
    CHECK(count.blocks == 0 && count.bytes == 0, "after close: %ld blocks, %lld bytes outstanding",
          count.blocks, count.bytes);
#ifdef DETRUN_TEST_WRAP
    printf("direct malloc/calloc/realloc/free/aligned_alloc/posix_memalign calls from the "
           "libraries: %ld\n", direct);
    long own = list_callers();
    CHECK(own == 0, "%ld allocations bypassed the allocator hook", own);
#endif
    return test_report("test_alloc");
}
