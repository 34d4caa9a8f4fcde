/* The C API used wrongly: NULL where the header allows it, calls out of
 * order, bad sizes; each gives a status and a message naming what was wrong,
 * never a crash. And a per-epoch callback that evaluates the model on another
 * data set: training goes on with its own data, bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "detrun.h"
#include "detrun_script.h"

#include "../common.h"

static detrun_runtime *rt;

/* The status is `want` and the message holds `needle`. */
static void expect(detrun_status got, detrun_status want, const char *needle, const char *what)
{
    CHECK(got == want, "%s: status %d (%s), not %d", what, (int)got, detrun_errmsg(rt), (int)want);
    if (needle != NULL)
        CHECK(strstr(detrun_errmsg(rt), needle) != NULL, "%s: message '%s' lacks '%s'", what,
              detrun_errmsg(rt), needle);
}

static detrun_dataset *make_data(size_t rows, int side, uint8_t salt)
{
    uint8_t *img = malloc(rows * (size_t)side * (size_t)side), *lab = malloc(rows);
    for (size_t i = 0; i < rows * (size_t)side * (size_t)side; i++)
        img[i] = (uint8_t)(i * 31u + salt);
    for (size_t i = 0; i < rows; i++)
        lab[i] = (uint8_t)((i + salt) % 3);
    detrun_dataset *ds = NULL;
    if (detrun_dataset_from_memory(rt, img, lab, rows, 1, side, side, 3, &ds) != DETRUN_OK)
        printf("FAIL dataset_from_memory: %s\n", detrun_errmsg(rt));
    free(img);
    free(lab);
    return ds;
}

static detrun_model *small_model(int compile)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 8, 8, &m);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 6, DETRUN_ACT_RELU);
    detrun_model_add_dense(m, 3, DETRUN_ACT_SOFTMAX);
    if (compile)
        detrun_model_compile(m, NULL, 3, 0);
    return m;
}

typedef struct other_eval {
    detrun_model *m;
    const detrun_dataset *other;
    int calls, failed;
} other_eval;

static int eval_other(void *ud, const detrun_epoch_stats *st)
{
    (void)st;
    other_eval *e = ud;
    double loss, acc;
    e->calls++;
    if (e->other != NULL && detrun_model_evaluate(e->m, e->other, NULL, 0, 7, &loss, &acc) != DETRUN_OK)
        e->failed++;
    return 0;
}

int main(void)
{
    /* NULL where the header allows it. */
    detrun_close(NULL);
    CHECK(detrun_errmsg(NULL) != NULL && detrun_errmsg(NULL)[0] != '\0', "errmsg(NULL) is empty");
    detrun_dataset_free(NULL);
    detrun_model_free(NULL);
    detrun_results_free(NULL);
    CHECK(detrun_open(NULL, NULL) == DETRUN_ERR_ARG, "open(NULL) is not an argument error");
    CHECK(detrun_status_string((detrun_status)999) != NULL, "status_string of a bad status");

    detrun_options bad = DETRUN_OPTIONS_INIT;
    bad.threads = -1;
    detrun_status st = detrun_open(&rt, &bad);
    expect(st, DETRUN_ERR_ARG, "threads", "open with -1 threads");
    detrun_close(rt);
    bad.threads = 1;
    bad.device = "tpu";
    st = detrun_open(&rt, &bad);
    expect(st, DETRUN_ERR_DEVICE, "tpu", "open on an unknown device");
    detrun_close(rt);

    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    expect(detrun_set_threads(rt, -3), DETRUN_ERR_ARG, "-3", "set_threads(-3)");
    expect(detrun_set_mode(rt, (detrun_mode)7), DETRUN_ERR_ARG, "mode", "set_mode(7)");
    CHECK(detrun_set_threads(NULL, 1) == DETRUN_ERR_ARG, "set_threads(NULL)");

    /* Model calls with NULL handles and out of order. */
    CHECK(detrun_model_new(rt, 1, 8, 8, NULL) == DETRUN_ERR_ARG, "model_new with out NULL");
    CHECK(detrun_model_add_dense(NULL, 3, DETRUN_ACT_NONE) == DETRUN_ERR_ARG, "add_dense(NULL)");
    CHECK(detrun_model_compile(NULL, NULL, 0, 0) == DETRUN_ERR_ARG, "compile(NULL)");
    CHECK(detrun_model_fit(NULL, NULL, NULL, 0, NULL, NULL, NULL) == DETRUN_ERR_ARG, "fit(NULL)");
    CHECK(detrun_model_param_count(NULL) == 0 && detrun_model_layer_name(NULL, 0) == NULL,
          "param_count / layer_name of NULL");
    detrun_model *m = NULL;
    expect(detrun_model_new(rt, 0, 8, 8, &m), DETRUN_ERR_SHAPE, "0x8x8", "model of 0 channels");
    CHECK(m == NULL, "a failed model_new leaves a model");

    detrun_dataset *ds = make_data(60, 8, 0), *other = make_data(11, 8, 5);
    m = small_model(0);
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    double loss, acc;
    float fbuf[4];
    char fp[33];
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG, "not compiled",
           "fit before compile");
    expect(detrun_model_evaluate(m, ds, NULL, 0, 10, &loss, &acc), DETRUN_ERR_ARG, "not compiled",
           "evaluate before compile");
    expect(detrun_model_predict(m, fbuf, 1, fbuf), DETRUN_ERR_ARG, "not compiled",
           "predict before compile");
    expect(detrun_model_param_get(m, 0, fbuf, 4), DETRUN_ERR_ARG, "not compiled",
           "param_get before compile");
    st = detrun_model_fingerprint(m, fp);
    CHECK(st != DETRUN_OK, "fingerprint before compile succeeds");
    expect(detrun_model_compile(m, NULL, 3, 0), DETRUN_OK, NULL, "compile");
    expect(detrun_model_add_dense(m, 3, DETRUN_ACT_NONE), DETRUN_ERR_ARG, "already compiled",
           "add a layer after compile");
    expect(detrun_model_compile(m, NULL, 3, 0), DETRUN_ERR_ARG, "already compiled",
           "compile twice");

    /* Bad values. */
    fo.batch = 0;
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG, "batch", "batch 0");
    fo.batch = 8;
    fo.epochs = -1;
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG, "epochs", "epochs -1");
    fo.epochs = 1;
    fo.validation_split = 1.0;
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG, "validation_split",
           "validation_split 1");
    fo.validation_split = NAN;
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG, "validation_split",
           "validation_split NaN");
    fo.validation_split = 0.0;
    uint32_t past[2] = { 3, 60 };
    expect(detrun_model_fit(m, ds, past, 2, &fo, NULL, NULL), DETRUN_ERR_ARG, "rows[1] = 60",
           "a row past the end");
    expect(detrun_model_fit(m, ds, past, 0, &fo, NULL, NULL), DETRUN_ERR_ARG, "no training rows",
           "no rows");
    expect(detrun_model_evaluate(m, ds, past, 0, 10, &loss, &acc), DETRUN_ERR_ARG, "no rows",
           "evaluate on no rows");
    expect(detrun_model_evaluate(m, ds, NULL, 0, 0, &loss, &acc), DETRUN_ERR_ARG, "batch",
           "evaluate with batch 0");
    expect(detrun_model_param_get(m, 7, fbuf, 4), DETRUN_ERR_ARG, "no parameter 7",
           "param_get of a parameter that is not there");
    expect(detrun_model_param_get(m, 1, fbuf, 4), DETRUN_ERR_SHAPE, "dense_1.bias",
           "param_get with the wrong count");
    detrun_dataset *wide = make_data(5, 9, 0);
    expect(detrun_model_fit(m, wide, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_SHAPE, "9x9",
           "fit on images of another shape");
    detrun_dataset_free(wide);
    uint32_t perm[4];
    size_t bounds[6];
    expect(detrun_kfold(rt, 4, 5, 0, perm, bounds), DETRUN_ERR_ARG, "5 folds", "kfold k > n");
    expect(detrun_kfold(rt, 4, 1, 0, perm, bounds), DETRUN_ERR_ARG, "k is 1", "kfold k = 1");
    detrun_model_free(m);

    /* Layers that do not fit, named. */
    m = NULL;
    detrun_model_new(rt, 1, 8, 8, &m);
    expect(detrun_model_add_conv2d(m, 2, 9, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_NONE),
           DETRUN_ERR_SHAPE, "conv2d_1: kernel 9x3", "a kernel larger than its input");
    expect(detrun_model_add_dropout(m, NAN), DETRUN_ERR_ARG, "dropout_1", "dropout NaN");
    expect(detrun_model_add_dropout(m, 1.0f), DETRUN_ERR_ARG, "dropout_1", "dropout 1");
    expect(detrun_model_add_maxpool(m, 9, 0), DETRUN_ERR_SHAPE, "maxpool_1", "pool larger than input");
    expect(detrun_model_add_dense(m, 4, DETRUN_ACT_RELU), DETRUN_ERR_SHAPE, "flatten",
           "dense on an image");
    expect(detrun_model_add_conv2d(m, 2, 3, 3, 1, DETRUN_PAD_SAME, (detrun_activation)9),
           DETRUN_ERR_ARG, "activation", "an unknown activation");
    /* Strides and kernels near INT_MAX: no overflow, a clear answer. */
    st = detrun_model_add_conv2d(m, 2, 3, 3, 0x7fffffff, DETRUN_PAD_SAME, DETRUN_ACT_NONE);
    CHECK(st == DETRUN_OK, "conv2d with stride INT_MAX (same): %s", detrun_errmsg(rt));
    expect(detrun_model_add_conv2d(m, 2, 3, 0x7fffffff, 1, DETRUN_PAD_SAME, DETRUN_ACT_NONE),
           DETRUN_ERR_SHAPE, "conv2d_2", "a kernel of INT_MAX columns");
    expect(detrun_model_add_conv2d(m, 0x40000000, 3, 3, 1, DETRUN_PAD_SAME, DETRUN_ACT_NONE),
           DETRUN_ERR_SHAPE, "conv2d_2", "2^30 filters");
    detrun_model_free(m);
    m = NULL;
    detrun_model_new(rt, 1, 8, 8, &m);
    detrun_model_add_flatten(m);
    expect(detrun_model_add_dense(m, 0x7fffffff, DETRUN_ACT_NONE), DETRUN_ERR_SHAPE, "dense_1",
           "a dense layer of INT_MAX units");
    detrun_model_free(m);

    /* A callback that evaluates on another (smaller) data set: the fit goes
     * on with its own rows and ends with the same bits as without it. */
    char want[33] = "", got[33] = "";
    fo = (detrun_fit_options)DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch = 8;
    fo.validation_split = 0.2;
    for (int pass = 0; pass < 2; pass++) {
        m = small_model(1);
        other_eval e = { m, pass ? other : NULL, 0, 0 };
        st = detrun_model_fit(m, ds, NULL, 0, &fo, eval_other, &e);
        CHECK(st == DETRUN_OK, "fit with a callback (pass %d): %s", pass, detrun_errmsg(rt));
        CHECK(e.calls == 3 && e.failed == 0, "pass %d: %d callbacks, %d failed evaluations", pass,
              e.calls, e.failed);
        detrun_model_fingerprint(m, pass ? got : want);
        detrun_model_free(m);
    }
    CHECK(strcmp(want, got) == 0, "evaluating another data set from the callback changed the fit: "
          "%s, not %s", got, want);

    /* Scripts: a value that is not an experiment's results is an error. The
     * messages are the script handle's. */
    detrun_script *sc = NULL;
    CHECK(detrun_script_open(NULL, rt) == DETRUN_ERR_ARG, "script_open(NULL, rt)");
    CHECK(detrun_script_open(&sc, NULL) == DETRUN_ERR_ARG && sc == NULL, "script_open(&sc, NULL)");
    CHECK(detrun_script_errmsg(NULL) != NULL && detrun_script_errmsg(NULL)[0] != '\0',
          "script_errmsg(NULL) is empty");
    detrun_script_close(NULL);
    CHECK(detrun_script_open(&sc, rt) == DETRUN_OK && detrun_script_runtime(sc) == rt,
          "script_open");
    CHECK(detrun_script_run_file(NULL, "x.lua", NULL) == DETRUN_ERR_ARG, "run_file(NULL)");
    CHECK(detrun_script_register(sc, "", NULL) == DETRUN_ERR_ARG, "register an empty name");
    CHECK(detrun_script_run_string(sc, "=x", NULL, NULL) == DETRUN_ERR_ARG, "run_string(NULL)");
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.mode = "sloppy";
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG &&
          strstr(detrun_script_errmsg(sc), "sloppy") != NULL, "set_options mode sloppy: %s",
          detrun_script_errmsg(sc));
    const struct { const char *name, *code, *needle, *what; detrun_status want; } runs[] = {
        { "=num", "return 42", "num", "a script returning a number", DETRUN_ERR_SCRIPT },
        { "=empty", "", NULL, "an empty script", DETRUN_OK },
        { "=nothing", "local x = 1", NULL, "a script returning nothing", DETRUN_OK },
        { "=tbl", "return {}", "table", "a script returning a table", DETRUN_ERR_SCRIPT },
        { "/nonexistent/x.lua", NULL, "/nonexistent/x.lua", "a missing script", DETRUN_ERR_IO },
        { "/tmp", NULL, "/tmp", "a folder as script", DETRUN_ERR_IO },
        { "=err", "error('boom')", "boom", "a script that raises", DETRUN_ERR_SCRIPT },
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        detrun_results *res = NULL;
        detrun_status st = runs[i].code != NULL
                               ? detrun_script_run_string(sc, runs[i].name, runs[i].code, &res)
                               : detrun_script_run_file(sc, runs[i].name, &res);
        CHECK(st == runs[i].want, "%s: status %d (%s), not %d", runs[i].what, (int)st,
              detrun_script_errmsg(sc), (int)runs[i].want);
        if (runs[i].needle != NULL)
            CHECK(strstr(detrun_script_errmsg(sc), runs[i].needle) != NULL,
                  "%s: message '%s' lacks '%s'", runs[i].what, detrun_script_errmsg(sc),
                  runs[i].needle);
        CHECK(res == NULL, "%s: results", runs[i].what);
    }
    detrun_script_close(sc);
    CHECK(detrun_results_json(NULL) == NULL && detrun_results_folds(NULL) == 0 &&
          detrun_results_repeats(NULL, "fast") == 0 &&
          detrun_results_fingerprint(NULL, NULL, 0) == NULL, "results accessors on NULL");

    detrun_dataset_free(ds);
    detrun_dataset_free(other);
    detrun_close(rt);
    return test_report("test_api_misuse");
}
