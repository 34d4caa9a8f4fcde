/*
 * host.c - a program that embeds detrun the way a user's would: built against
 * the installed package (pkg-config or find_package), it runs an experiment
 * script from a string through the scripting layer (detrun_script.h) and
 * trains a model through the core API alone (detrun.h).
 *
 * It prints one line per fingerprint ("script <fp>", "c-api <fp>"); the test
 * driver compares them between processes and builds. Every check failure is
 * reported and makes the exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include <detrun.h>
#include <detrun_script.h>

/* Tiny: a few hundred rows of Fashion-MNIST, 2 folds, 1 epoch. The row count
 * comes from host_rows, a function this program registers. */
static const char experiment[] =
    "local dr = require 'detrun'\n"
    "local data = dr.data.mnist()\n"
    "return dr.experiment {\n"
    "  name = 'embed', seed = 7, folds = 2, repeats = 1,\n"
    "  modes = { 'deterministic' },\n"
    "  data = data.test, limit = host_rows(),\n"
    "  model = function()\n"
    "    return dr.nn.sequential {\n"
    "      dr.nn.conv2d { filters = 4, kernel = 3, activation = 'relu' },\n"
    "      dr.nn.maxpool { size = 2 },\n"
    "      dr.nn.flatten(),\n"
    "      dr.nn.dense { units = 10, activation = 'softmax' },\n"
    "    }\n"
    "  end,\n"
    "  compile = { optimizer = dr.optim.adam {}, loss = 'sparse_categorical_crossentropy' },\n"
    "  fit = { epochs = 1, batch = 50, validation_split = 0.2 },\n"
    "}\n";

enum { ROWS = 300 };

static int failures;

#define CHECK(cond, ...)                                          \
    do {                                                          \
        if (!(cond)) {                                            \
            fprintf(stderr, "host.c:%d: check failed: ", __LINE__); \
            fprintf(stderr, __VA_ARGS__);                         \
            fputc('\n', stderr);                                  \
            failures++;                                           \
        }                                                         \
    } while (0)

/* Counts live blocks, so that a block the runtime forgets to free shows. */
typedef struct counter {
    long live;
    long calls;
} counter;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    (void)osize;
    c->calls++;
    if (nsize == 0) {
        if (ptr != NULL)
            c->live--;
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL && ptr == NULL)
        c->live++;
    return p;
}

static int host_rows(lua_State *L)
{
    lua_pushinteger(L, ROWS);
    return 1;
}

static int is_fingerprint(const char *s)
{
    if (s == NULL || strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Runs the experiment; copies the fingerprint of its only repeat to fp. */
static int run_experiment(detrun_script *sc, char fp[33])
{
    detrun_results *res = NULL;
    detrun_status st = detrun_script_run_string(sc, "=embedded", experiment, &res);
    CHECK(st == DETRUN_OK, "detrun_script_run_string: %s", detrun_script_errmsg(sc));
    if (st != DETRUN_OK)
        return 0;
    CHECK(res != NULL, "the experiment returned no results");
    if (res == NULL)
        return 0;
    CHECK(detrun_results_folds(res) == 2, "folds: %d", detrun_results_folds(res));
    CHECK(detrun_results_repeats(res, "deterministic") == 1, "repeats: %d",
          detrun_results_repeats(res, "deterministic"));
    const char *json = detrun_results_json(res);
    CHECK(json != NULL && json[0] == '{', "results JSON: %.40s", json ? json : "(null)");
    const char *f = detrun_results_fingerprint(res, "deterministic", 0);
    CHECK(is_fingerprint(f), "script fingerprint: %s", f ? f : "(null)");
    double loss = 0, acc = -1;
    const char *ffp = NULL;
    st = detrun_results_fold(res, "deterministic", 0, 1, &loss, &acc, &ffp);
    CHECK(st == DETRUN_OK && acc >= 0 && acc <= 1 && loss > 0 && is_fingerprint(ffp),
          "fold 1: status %d, loss %g, accuracy %g", (int)st, loss, acc);
    int ok = is_fingerprint(f);
    if (ok)
        memcpy(fp, f, 33);
    detrun_results_free(res);
    return ok;
}

static int count_epochs(void *ud, const detrun_epoch_stats *st)
{
    (void)st;
    ++*(int *)ud;
    return 0;
}

/* Trains a small model with the C API only; fp receives its fingerprint. */
static int train_in_c(detrun_runtime *rt, const detrun_dataset *ds, char fp[33])
{
    detrun_model *m = NULL;
    detrun_status st = detrun_model_new(rt, 1, 28, 28, &m);
    if (st == DETRUN_OK)
        st = detrun_model_add_conv2d(m, 4, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU);
    if (st == DETRUN_OK)
        st = detrun_model_add_maxpool(m, 2, 2);
    if (st == DETRUN_OK)
        st = detrun_model_add_flatten(m);
    if (st == DETRUN_OK)
        st = detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (st == DETRUN_OK)
        st = detrun_model_compile(m, &adam, 7, 0);
    CHECK(st == DETRUN_OK, "building the model: %s", detrun_errmsg(rt));
    if (st != DETRUN_OK) {
        detrun_model_free(m);
        return 0;
    }
    char before[33];
    st = detrun_model_fingerprint(m, before);
    CHECK(st == DETRUN_OK && is_fingerprint(before), "fingerprint before training");

    uint32_t rows[ROWS];
    for (uint32_t i = 0; i < ROWS; i++)
        rows[i] = i;
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 1;
    fo.batch = 50;
    fo.seed = 7;
    int epochs = 0;
    st = detrun_model_fit(m, ds, rows, ROWS, &fo, count_epochs, &epochs);
    CHECK(st == DETRUN_OK, "detrun_model_fit: %s", detrun_errmsg(rt));
    CHECK(epochs == 1, "epoch callbacks: %d", epochs);
    CHECK(detrun_model_step(m) == ROWS / 50, "optimiser steps: %llu",
          (unsigned long long)detrun_model_step(m));

    double loss = 0, acc = -1;
    st = detrun_model_evaluate(m, ds, rows, ROWS, 100, &loss, &acc);
    CHECK(st == DETRUN_OK && loss > 0 && acc >= 0 && acc <= 1,
          "evaluate: %s (loss %g, accuracy %g)", detrun_errmsg(rt), loss, acc);

    st = detrun_model_fingerprint(m, fp);
    int ok = st == DETRUN_OK && is_fingerprint(fp);
    CHECK(ok, "fingerprint after training");
    CHECK(strcmp(before, fp) != 0, "training left the weights unchanged");
    detrun_model_free(m);
    return ok;
}

int main(void)
{
    counter count = { 0, 0 };
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 2;
    opt.alloc = counting_alloc;
    opt.alloc_ud = &count;

    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "host: detrun_open: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    CHECK(strcmp(detrun_version(), DETRUN_VERSION) == 0, "library %s, header %s",
          detrun_version(), DETRUN_VERSION);
    detrun_script *sc = NULL;
    if (detrun_script_open(&sc, rt) != DETRUN_OK) {
        fprintf(stderr, "host: detrun_script_open failed\n");
        detrun_close(rt);
        return 1;
    }
    CHECK(detrun_script_register(sc, "host_rows", host_rows) == DETRUN_OK,
          "detrun_script_register: %s", detrun_script_errmsg(sc));

    /* A script error is a status and a message naming the chunk, not an exit. */
    detrun_results *res = NULL;
    detrun_status st = detrun_script_run_string(sc, "=broken", "return (", &res);
    CHECK(st == DETRUN_ERR_SCRIPT, "a syntax error gave status %d", (int)st);
    CHECK(strstr(detrun_script_errmsg(sc), "broken") != NULL, "errmsg: %s",
          detrun_script_errmsg(sc));
    CHECK(res == NULL, "results from a broken script");

    char s1[33], s2[33];
    if (run_experiment(sc, s1) && run_experiment(sc, s2)) {
        CHECK(strcmp(s1, s2) == 0, "two runs in one process differ: %s %s", s1, s2);
        printf("script %s\n", s1);
    }
    detrun_script_close(sc);

    detrun_dataset *ds = NULL;
    st = detrun_dataset_load_mnist(rt, NULL, "t10k", &ds);
    CHECK(st == DETRUN_OK, "loading Fashion-MNIST: %s", detrun_errmsg(rt));
    if (st == DETRUN_OK) {
        detrun_dataset_limit(ds, ROWS);
        CHECK(detrun_dataset_count(ds) == ROWS, "rows: %zu", detrun_dataset_count(ds));
        char c1[33], c2[33];
        if (train_in_c(rt, ds, c1) && train_in_c(rt, ds, c2)) {
            CHECK(strcmp(c1, c2) == 0, "two trainings in one process differ: %s %s", c1, c2);
            printf("c-api %s\n", c1);
        }
        detrun_dataset_free(ds);
    }

    detrun_close(rt);
    CHECK(count.calls > 0, "the allocator hook was never called");
    CHECK(count.live == 0, "%ld blocks from the allocator hook not freed", count.live);
    return failures == 0 ? 0 : 1;
}
