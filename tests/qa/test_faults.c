/* Faults and misuse through the C API: a data set changed from a fit's own
 * callback, cancellation (from the callback, from another thread, with a
 * checkpoint to resume from), a diverged loss, the arguments every call must
 * check with a message, the results folder's lock and result sets, and a
 * trace whose value bytes were flipped. */
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "detrun.h"
#include "detrun_script.h"

#include "../common.h"

static detrun_runtime *rt;

static void expect(detrun_status got, detrun_status want, const char *needle, const char *what)
{
    CHECK(got == want, "%s: status %d (%s), not %d", what, (int)got, detrun_errmsg(rt), (int)want);
    if (needle != NULL)
        CHECK(strstr(detrun_errmsg(rt), needle) != NULL, "%s: message '%s' lacks '%s'", what,
              detrun_errmsg(rt), needle);
}

static detrun_dataset *make_data(size_t rows, uint8_t salt)
{
    uint8_t *img = malloc(rows * 64), *lab = malloc(rows);
    for (size_t i = 0; i < rows * 64; i++)
        img[i] = (uint8_t)(i * 37u + salt);
    for (size_t i = 0; i < rows; i++)
        lab[i] = (uint8_t)((i * 7 + salt) % 3);
    detrun_dataset *ds = NULL;
    if (detrun_dataset_from_memory(rt, img, lab, rows, 1, 8, 8, 3, &ds) != DETRUN_OK)
        printf("FAIL dataset_from_memory: %s\n", detrun_errmsg(rt));
    free(img);
    free(lab);
    return ds;
}

static detrun_model *small_model(float lr, detrun_optimizer_kind kind)
{
    detrun_model *m = NULL;
    detrun_optimizer o = DETRUN_ADAM_INIT;
    if (kind == DETRUN_OPT_SGD) {
        detrun_optimizer sgd = DETRUN_SGD_INIT;
        o = sgd;
    }
    o.lr = lr;
    detrun_model_new(rt, 1, 8, 8, &m);
    detrun_model_add_flatten(m);
    if (kind == DETRUN_OPT_ADAM)
        detrun_model_add_dense(m, 6, DETRUN_ACT_RELU);
    detrun_model_add_dense(m, 3, DETRUN_ACT_SOFTMAX);
    if (detrun_model_compile(m, &o, 5, 0) != DETRUN_OK)
        printf("FAIL compile: %s\n", detrun_errmsg(rt));
    return m;
}

/* What the epoch callback does. */
typedef struct hostile_cb {
    detrun_model *m;
    detrun_dataset *ds;
    int cancel_at;          /* epoch whose callback cancels, -1 never */
    int limit_status;       /* of detrun_dataset_limit from the callback */
    char limit_msg[512];
    int eval_status;
    int calls;
} hostile_cb;

static int on_epoch(void *ud, const detrun_epoch_stats *st)
{
    hostile_cb *h = ud;
    h->calls++;
    if (h->ds != NULL) {
        /* The defect: the limited data set rebound the model's device copy,
         * and the next epoch gathered the fit's rows from 10. */
        h->limit_status = detrun_dataset_limit(h->ds, 10);
        snprintf(h->limit_msg, sizeof h->limit_msg, "%s", detrun_errmsg(rt));
        uint32_t rows[5] = { 0, 1, 2, 3, 4 };
        double loss, acc;
        h->eval_status = detrun_model_evaluate(h->m, h->ds, rows, 5, 2, &loss, &acc);
    }
    if (st->epoch == h->cancel_at)
        detrun_cancel(rt);
    return 0;
}

static void fit_fp(detrun_model *m, detrun_dataset *ds, const detrun_fit_options *fo,
                   hostile_cb *h, char fp[33])
{
    detrun_status st = detrun_model_fit(m, ds, NULL, 0, fo, h ? on_epoch : NULL, h);
    CHECK(st == DETRUN_OK, "fit: %s", detrun_errmsg(rt));
    detrun_model_fingerprint(m, fp);
}

/* 1. A data set in use by a fit cannot change under it; evaluating inside
 *    the callback does not disturb the fit's bits. */
static void data_in_use(void)
{
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch = 16;
    char want[33], got[33];
    detrun_dataset *ds = make_data(200, 1);
    detrun_model *m = small_model(1e-2f, DETRUN_OPT_ADAM);
    fit_fp(m, ds, &fo, NULL, want);
    detrun_model_free(m);

    m = small_model(1e-2f, DETRUN_OPT_ADAM);
    hostile_cb h = { m, ds, -1, -1, "", -1, 0 };
    fit_fp(m, ds, &fo, &h, got);
    CHECK(h.calls == 3, "callback ran %d times", h.calls);
    CHECK(h.limit_status == DETRUN_ERR_BUSY && strstr(h.limit_msg, "in use by a running fit"),
          "limit inside the fit: status %d, '%s'", h.limit_status, h.limit_msg);
    CHECK(h.eval_status == DETRUN_OK, "evaluate inside the fit: %d", h.eval_status);
    CHECK(detrun_dataset_count(ds) == 200, "the data set changed under the fit: %zu rows",
          detrun_dataset_count(ds));
    CHECK(strcmp(want, got) == 0, "evaluating in the callback changed the fit: %s vs %s", want,
          got);
    CHECK(detrun_dataset_limit(ds, 10) == DETRUN_OK && detrun_dataset_count(ds) == 10,
          "limit after the fit");
    detrun_model_free(m);
    detrun_dataset_free(ds);
}

static void *cancel_thread(void *arg)
{
    detrun_cancel(arg);
    return NULL;
}

/* Faults: detrun_cancel stops a fit at a step boundary with its own status;
 *    a checkpointed fit resumes to the uninterrupted bits. */
static void cancel(const char *dir)
{
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch = 16;
    char want[33], got[33], ckpt[512];
    detrun_dataset *ds = make_data(120, 2);
    detrun_model *m = small_model(1e-2f, DETRUN_OPT_ADAM);
    fit_fp(m, ds, &fo, NULL, want);
    detrun_model_free(m);

    snprintf(ckpt, sizeof ckpt, "%s/cancel.ckpt", dir);
    fo.checkpoint = ckpt;
    fo.resume = 1;
    m = small_model(1e-2f, DETRUN_OPT_ADAM);
    hostile_cb h = { m, NULL, 1, 0, "", 0, 0 };
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, &h), DETRUN_ERR_CANCELLED,
           "cancelled before step 16", "a fit cancelled from its callback at epoch 1");
    CHECK(h.calls == 2, "the callback ran %d times after the cancel at epoch 1", h.calls);
    CHECK(detrun_cancel_requested(rt), "the request is not kept");
    detrun_model_free(m);
    m = small_model(1e-2f, DETRUN_OPT_ADAM);
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_CANCELLED, "cancelled",
           "a fit while the request stands");
    detrun_cancel_reset(rt);
    CHECK(!detrun_cancel_requested(rt), "reset");
    fit_fp(m, ds, &fo, NULL, got);
    CHECK(strcmp(want, got) == 0, "the resumed fit differs from the uninterrupted one: %s vs %s",
          want, got);
    detrun_model_free(m);

    /* From another thread (as a host's UI would). */
    pthread_t t;
    pthread_create(&t, NULL, cancel_thread, rt);
    pthread_join(t, NULL);
    m = small_model(1e-2f, DETRUN_OPT_ADAM);
    fo.checkpoint = NULL;
    double loss, acc;
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_CANCELLED,
           "fit: cancelled before step 0", "a fit cancelled from another thread");
    expect(detrun_model_evaluate(m, ds, NULL, 0, 8, &loss, &acc), DETRUN_ERR_CANCELLED,
           "evaluate: cancelled", "an evaluate cancelled");
    detrun_cancel_reset(rt);
    detrun_cancel(NULL);
    CHECK(!detrun_cancel_requested(NULL), "cancel_requested(NULL)");
    CHECK(strcmp(detrun_status_string(DETRUN_ERR_CANCELLED), "cancelled") == 0, "status string");
    detrun_model_free(m);
    detrun_dataset_free(ds);
}

/* 10. A diverged loss is a numeric error naming the layer, not a success. */
static void diverged(void)
{
    detrun_dataset *ds = make_data(64, 3);
    detrun_model *m = small_model(1e30f, DETRUN_OPT_SGD);
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch = 8;
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_NUMERIC, "dense_1",
           "a linear model with lr 1e30");
    const char *name = NULL;
    CHECK(detrun_error_layer(rt, &name) == 1 && name != NULL && strcmp(name, "dense_1") == 0,
          "error_layer after a diverged loss: %s", name ? name : "(null)");
    CHECK(strstr(detrun_errmsg(rt), "DETRUN_MAX_LOSS") != NULL, "the message says how to raise "
          "the limit: %s", detrun_errmsg(rt));
    detrun_model_free(m);
    detrun_dataset_free(ds);
}

/* 7. Declared model sizes are capped, with the way to raise the cap. */
static void caps(void)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 28, 28, &m);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 300000, DETRUN_ACT_NONE);
    detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX);
    expect(detrun_model_compile(m, NULL, 0, 0), DETRUN_ERR_SHAPE, "DETRUN_MAX_PARAMS",
           "dense with 300000 units");
    CHECK(strstr(detrun_errmsg(rt), "dense_1") != NULL, "the largest layer is named: %s",
          detrun_errmsg(rt));
    detrun_model_free(m);
    m = NULL;
    detrun_model_new(rt, 1, 28, 28, &m);
    detrun_model_add_conv2d(m, 20000, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX);
    expect(detrun_model_compile(m, NULL, 0, 0), DETRUN_ERR_SHAPE, "DETRUN_MAX_ACTIVATIONS",
           "conv2d with 20000 filters");
    CHECK(strstr(detrun_errmsg(rt), "conv2d_1") != NULL, "the layer is named: %s",
          detrun_errmsg(rt));
    detrun_model_free(m);
    /* Raised, a model over the default is accepted. */
    setenv("DETRUN_MAX_ACTIVATIONS", "8", 1);
    m = NULL;
    detrun_model_new(rt, 1, 8, 8, &m);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 3, DETRUN_ACT_SOFTMAX);
    expect(detrun_model_compile(m, NULL, 0, 0), DETRUN_ERR_SHAPE, "above the limit of 8",
           "a lowered activation cap");
    unsetenv("DETRUN_MAX_ACTIVATIONS");
    CHECK(detrun_model_compile(m, NULL, 0, 0) == DETRUN_OK, "compile after a refused one: %s",
          detrun_errmsg(rt));
    detrun_model_free(m);
}

/* 9. Every failure sets the message; arguments are checked first. */
static void contract(void)
{
    detrun_model *m = small_model(1e-3f, DETRUN_OPT_ADAM);
    detrun_dataset *ds = make_data(40, 4);
    detrun_model_input_shape(m, NULL, NULL, NULL);
    /* An earlier message must not survive a later failure. */
    detrun_model_param_set(m, 99, (float[1]){ 0 }, 1);
    expect(detrun_model_param_set(m, 0, NULL, 1), DETRUN_ERR_ARG, "src is NULL",
           "param_set with NULL src");
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.checkpoint = "";
    expect(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG,
           "checkpoint is an empty path", "checkpoint = \"\"");
    CHECK(detrun_model_step(m) == 0, "a fit refused for its checkpoint trained %llu steps",
          (unsigned long long)detrun_model_step(m));

    detrun_script *sc = NULL;
    detrun_script_open(&sc, rt);
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.argc = 2;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG &&
          strstr(detrun_script_errmsg(sc), "argv is NULL"), "argc 2, argv NULL: %s",
          detrun_script_errmsg(sc));
    so.argc = 0;
    so.shard = 7;
    so.shards = -3;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG &&
          strstr(detrun_script_errmsg(sc), "shard 7 of -3"), "shard 7 of -3: %s",
          detrun_script_errmsg(sc));
    so.shard = 3;
    so.shards = 3;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG, "shard 3 of 3");
    so.shard = so.shards = 0;
    so.out_dir = "";
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG &&
          strstr(detrun_script_errmsg(sc), "empty path"), "out_dir \"\": %s",
          detrun_script_errmsg(sc));
    so.out_dir = NULL;
    so.resume = so.no_checkpoint = 1;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG, "resume with no_checkpoint");
    detrun_script_close(sc);
    detrun_model_free(m);
    detrun_dataset_free(ds);
}

/* results_fold with bad indices says so on the results. */
static void results_contract(const char *dir)
{
    const char *data = getenv("DETRUN_TEST_DATA");
    char code[1024];
    snprintf(code, sizeof code,
             "local dr = require 'detrun'\n"
             "return dr.experiment { name = 'tiny', data = dr.data.mnist { dir = '%s' }.train,\n"
             "  limit = 60, folds = 2, out = '%s/tiny',\n"
             "  model = function() return dr.nn.sequential { dr.nn.flatten(),\n"
             "    dr.nn.dense { units = 10, activation = 'softmax' } } end,\n"
             "  fit = { epochs = 1, batch = 20 } }\n",
             data != NULL ? data : "/usr/share/datasets/fashion-mnist", dir);
    detrun_script *sc = NULL;
    detrun_results *res = NULL;
    detrun_script_open(&sc, rt);
    CHECK(detrun_script_run_string(sc, "=tiny", code, &res) == DETRUN_OK && res != NULL,
          "tiny experiment: %s", detrun_script_errmsg(sc));
    if (res != NULL) {
        double l, a;
        const char *fp;
        CHECK(detrun_results_fold(res, "deterministic", 0, 1, &l, &a, &fp) == DETRUN_OK, "fold 1");
        CHECK(detrun_results_fold(res, "deterministic", 0, 5, &l, &a, &fp) == DETRUN_ERR_ARG &&
              strstr(detrun_results_errmsg(res), "no fold 5"), "fold 5: %s",
              detrun_results_errmsg(res));
        CHECK(detrun_results_fold(res, "fast", 9, 0, &l, &a, &fp) == DETRUN_ERR_ARG &&
              strstr(detrun_results_errmsg(res), "no repeat 9 of mode fast"), "repeat 9: %s",
              detrun_results_errmsg(res));
    }
    char pattern[600];
    glob_t g;
    snprintf(pattern, sizeof pattern, "%s/tiny/*.tmp", dir);
    CHECK(glob(pattern, 0, NULL, &g) == GLOB_NOMATCH, "temporaries left beside the results");
    globfree(&g);
    detrun_results_free(res);
    detrun_script_close(sc);
}

/* 8. The folder lock names its holder; 4. a result set is all or none. */
static void folder(const char *dir)
{
    char sub[512], path[600];
    snprintf(sub, sizeof sub, "%s/locked/deeper", dir);
    detrun_folder_lock *a = NULL, *b = NULL;
    CHECK(detrun_folder_lock_acquire(rt, sub, &a) == DETRUN_OK && a != NULL, "lock: %s",
          detrun_errmsg(rt));
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    expect(detrun_folder_lock_acquire(rt, sub, &b), DETRUN_ERR_BUSY, pid, "a second lock");
    CHECK(b == NULL, "a refused lock is NULL");
    expect(detrun_folder_lock_acquire(rt, "", &b), DETRUN_ERR_ARG, "empty path", "lock \"\"");
    detrun_folder_unlock(a);
    CHECK(detrun_folder_lock_acquire(rt, sub, &b) == DETRUN_OK, "lock after unlock: %s",
          detrun_errmsg(rt));
    detrun_folder_unlock(b);
    detrun_folder_unlock(NULL);

    /* A set whose last file cannot be written leaves the old set whole. */
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/r.json", sub);
    snprintf(p2, sizeof p2, "%s/r.csv", sub);
    const char *paths[2] = { p1, p2 };
    const void *old[2] = { "old json", "old csv" };
    size_t lens[2] = { 8, 7 };
    CHECK(detrun_write_set(rt, 2, paths, old, lens) == DETRUN_OK, "write_set: %s",
          detrun_errmsg(rt));
    snprintf(path, sizeof path, "%s/missing-folder/r.csv", sub);
    const char *bad_paths[2] = { p1, path };
    const void *new[2] = { "new json", "new csv" };
    expect(detrun_write_set(rt, 2, bad_paths, new, lens), DETRUN_ERR_IO, "missing-folder",
           "a set with an unwritable file");
    char buf[32] = "";
    FILE *f = fopen(p1, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strcmp(buf, "old json") == 0, "the old JSON was replaced by a failed set: '%s'", buf);
    glob_t g;
    snprintf(path, sizeof path, "%s/*.tmp", sub);
    CHECK(glob(path, 0, NULL, &g) == GLOB_NOMATCH, "a failed set left temporaries");
    globfree(&g);
}

/* 11. A trace whose value bytes were flipped is damaged, not "agreeing". */
static void trace_checksum(const char *dir)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a.trace", dir);
    snprintf(b, sizeof b, "%s/b.trace", dir);
    detrun_dataset *ds = make_data(48, 5);
    detrun_model *m = small_model(1e-2f, DETRUN_OPT_ADAM);
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.batch = 16;
    CHECK(detrun_trace_start(rt, a, 1, 1) == DETRUN_OK, "trace: %s", detrun_errmsg(rt));
    CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL) == DETRUN_OK, "fit");
    CHECK(detrun_trace_stop(rt) == DETRUN_OK, "trace stop: %s", detrun_errmsg(rt));
    /* b: a copy of a with one byte flipped inside the last tensor's values
     * (before the 9-byte end record). */
    FILE *f = fopen(a, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *bytes = malloc((size_t)size);
    CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size, "read the trace");
    fclose(f);
    int differ = -1;
    CHECK(detrun_trace_compare(rt, a, a, NULL, NULL, &differ) == DETRUN_OK && differ == 0,
          "a trace agrees with itself: %s", detrun_errmsg(rt));
    bytes[size - 9 - 3] ^= 0x10;
    f = fopen(b, "wb");
    fwrite(bytes, 1, (size_t)size, f);
    fclose(f);
    free(bytes);
    expect(detrun_trace_compare(rt, a, b, NULL, NULL, &differ), DETRUN_ERR_FORMAT,
           "do not match the record's fingerprint", "a flipped value byte");
    CHECK(strstr(detrun_errmsg(rt), "b.trace") != NULL, "the damaged file is named: %s",
          detrun_errmsg(rt));
    detrun_model_free(m);
    detrun_dataset_free(ds);
}

int main(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 2;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    char dir[] = "/tmp/detrun-faults-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    data_in_use();
    cancel(dir);
    diverged();
    caps();
    contract();
    results_contract(dir);
    folder(dir);
    trace_checksum(dir);
    detrun_close(rt);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (failures == 0 && system(cmd) != 0)
        printf("could not remove %s\n", dir);
    return test_report("test_faults");
}
