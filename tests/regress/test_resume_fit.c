/* Bit-exact resume and traces of real fits (docs/regression.md), on the seed
 * network and the first rows of the default data:
 * - a fit stopped after any epoch and resumed from its checkpoint ends with
 *   the same weights, and shows its callback the same epochs, bit for bit,
 *   as an uninterrupted fit;
 * - a damaged checkpoint, or one of another fit, is refused and leaves the
 *   model untouched;
 * - two deterministic traces agree; fast-mode traces at two threads part,
 *   and the first divergence is named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regress_util.h"
#include "trace.h"

#define ROWS 400
#define EPOCHS 3

static detrun_runtime *rt;
static detrun_dataset *ds;

static detrun_model *network(uint32_t stream)
{
    detrun_model *m = test_reference_network(rt, 32);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (detrun_model_compile(m, &adam, 3, stream) != DETRUN_OK) {
        printf("FAIL compile: %s\n", detrun_errmsg(rt));
        exit(1);
    }
    return m;
}

typedef struct history {
    int n;
    detrun_epoch_stats st[EPOCHS];
    int stop_after;            /* epoch after which to stop; -1: never */
} history;

static int on_epoch(void *ud, const detrun_epoch_stats *st)
{
    history *h = ud;
    if (h->n < EPOCHS)
        h->st[h->n++] = *st;
    return st->epoch == h->stop_after;
}

static detrun_fit_options fit_options(const char *ckpt, int resume)
{
    detrun_fit_options o = DETRUN_FIT_OPTIONS_INIT;
    o.epochs = EPOCHS;
    o.batch = 50;
    o.validation_split = 0.25;
    o.seed = 11;
    o.stream = 2;
    o.checkpoint = ckpt;
    o.resume = resume;
    return o;
}

static void same_history(const history *a, const history *b, const char *why)
{
    CHECK(a->n == b->n, "%s: %d epochs seen, want %d", why, b->n, a->n);
    for (int i = 0; i < a->n && i < b->n; i++) {
        const detrun_epoch_stats *x = &a->st[i], *y = &b->st[i];
        CHECK(x->epoch == y->epoch && strcmp(x->fingerprint, y->fingerprint) == 0 &&
              memcmp(&x->loss, &y->loss, 8) == 0 && memcmp(&x->accuracy, &y->accuracy, 8) == 0 &&
              memcmp(&x->val_loss, &y->val_loss, 8) == 0 &&
              memcmp(&x->val_accuracy, &y->val_accuracy, 8) == 0,
              "%s: epoch %d differs (%s vs %s)", why, i, x->fingerprint, y->fingerprint);
    }
}

static void fingerprint(detrun_model *m, char out[33])
{
    if (detrun_model_fingerprint(m, out) != DETRUN_OK)
        snprintf(out, 33, "error");
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    if (detrun_dataset_load_mnist(rt, getenv("DETRUN_TEST_DATA"), "train", &ds) != DETRUN_OK) {
        printf("FAIL data: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_dataset_limit(ds, ROWS);
    char dir[] = "/tmp/detrun-resume-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char ckpt[256], other[256];
    snprintf(ckpt, sizeof ckpt, "%s/fit.ckpt", dir);
    snprintf(other, sizeof other, "%s/other.ckpt", dir);

    /* The uninterrupted fit, writing checkpoints as it goes. */
    history full = { 0, { { 0 } }, -1 };
    detrun_model *m = network(2);
    detrun_fit_options fo = fit_options(ckpt, 0);
    CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, &full) == DETRUN_OK, "fit: %s",
          detrun_errmsg(rt));
    char want[33], got[33];
    fingerprint(m, want);
    detrun_model_free(m);
    CHECK(full.n == EPOCHS, "epochs seen %d", full.n);

    /* Stopped after each epoch, then resumed in a fresh model. */
    for (int stop = 0; stop < EPOCHS; stop++) {
        unlink(ckpt);
        history first = { 0, { { 0 } }, stop };
        m = network(2);
        fo = fit_options(ckpt, 0);
        CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, &first) == DETRUN_OK, "fit: %s",
              detrun_errmsg(rt));
        detrun_model_free(m);
        CHECK(first.n == stop + 1, "stopped after %d epochs, want %d", first.n, stop + 1);

        history rest = { 0, { { 0 } }, -1 };
        m = network(2);
        fo = fit_options(ckpt, 1);
        CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, &rest) == DETRUN_OK, "resume: %s",
              detrun_errmsg(rt));
        fingerprint(m, got);
        CHECK(strcmp(got, want) == 0, "resumed after epoch %d: %s, want %s", stop, got, want);
        CHECK(detrun_model_step(m) == (uint64_t)EPOCHS * 6, "optimiser steps %llu",
              (unsigned long long)detrun_model_step(m));
        char why[64];
        snprintf(why, sizeof why, "resumed after epoch %d", stop);
        same_history(&full, &rest, why);
        detrun_model_free(m);
    }

    /* Keep a good checkpoint (of the finished fit) aside for the tests below. */
    size_t len;
    unsigned char *good = slurp(ckpt, &len);
    CHECK(good != NULL && len > 1000, "checkpoint %s", ckpt);

    /* A damaged checkpoint is refused, and the model keeps its own state. */
    good[len / 2] ^= 1;
    spit(other, good, len);
    good[len / 2] ^= 1;
    m = network(2);
    char fresh[33];
    fingerprint(m, fresh);
    history h = { 0, { { 0 } }, -1 };
    fo = fit_options(other, 1);
    CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, &h) == DETRUN_ERR_FORMAT,
          "damaged checkpoint accepted");
    CHECK(strstr(detrun_errmsg(rt), "other.ckpt") != NULL &&
          strstr(detrun_errmsg(rt), "checksum") != NULL, "message: %s", detrun_errmsg(rt));
    fingerprint(m, got);
    CHECK(strcmp(got, fresh) == 0 && detrun_model_step(m) == 0 && h.n == 0,
          "a refused checkpoint changed the model");
    detrun_model_free(m);

    /* A checkpoint of another fit (another stream: another fold) is refused. */
    spit(other, good, len);
    m = network(2);
    fo = fit_options(other, 1);
    fo.stream = 3;
    CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, &h) == DETRUN_ERR_ARG,
          "another fit's checkpoint accepted");
    CHECK(strstr(detrun_errmsg(rt), "another fit") != NULL, "message: %s", detrun_errmsg(rt));
    fingerprint(m, got);
    CHECK(strcmp(got, fresh) == 0 && h.n == 0, "a refused checkpoint changed the model");
    detrun_model_free(m);

    /* Other rows, same everything else. */
    uint32_t rows[ROWS - 1];
    for (uint32_t i = 0; i < ROWS - 1; i++)
        rows[i] = i + 1;
    m = network(2);
    fo = fit_options(other, 1);
    CHECK(detrun_model_fit(m, ds, rows, ROWS - 1, &fo, on_epoch, &h) == DETRUN_ERR_ARG,
          "a checkpoint of other rows accepted: %s", detrun_errmsg(rt));
    detrun_model_free(m);
    free(good);

    /* Traces: deterministic twice agree; fast at two threads part. */
    char ta[256], tb[256];
    snprintf(ta, sizeof ta, "%s/a.trace", dir);
    snprintf(tb, sizeof tb, "%s/b.trace", dir);
    for (int mode = 0; mode < 2; mode++) {
        CHECK(detrun_set_mode(rt, mode ? DETRUN_FAST : DETRUN_DETERMINISTIC) == DETRUN_OK,
              "set_mode");
        int differ = 0;
        detrun_trace_divergence d;
        memset(&d, 0, sizeof d);
        /* Fast mode's order comes from thread timing: a few tries give it
         * every chance to show. */
        for (int attempt = 0; attempt < (mode ? 6 : 1) && !differ; attempt++) {
            for (int run = 0; run < 2; run++) {
                CHECK(detrun_trace_start(rt, run ? tb : ta, 1, 1) == DETRUN_OK, "trace: %s",
                      detrun_errmsg(rt));
                detrun_trace_label(rt, "fold 2");
                m = network(2);
                fo = fit_options(NULL, 0);
                fo.epochs = 1;
                CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL) == DETRUN_OK, "fit: %s",
                      detrun_errmsg(rt));
                detrun_model_free(m);
                CHECK(detrun_trace_stop(rt) == DETRUN_OK, "stop: %s", detrun_errmsg(rt));
            }
            CHECK(detrun_trace_diff(rt, ta, tb, NULL, &d) == DETRUN_OK, "diff: %s",
                  detrun_errmsg(rt));
            differ = d.differ;
        }
        if (mode == 0) {
            CHECK(!d.differ, "deterministic traces differ at step %llu, %s",
                  (unsigned long long)d.step, d.name);
            /* 6 steps x (step + 8 outputs + 8 gradients and parameters...) */
            CHECK(d.records > 6 * 20, "only %llu records", (unsigned long long)d.records);
        } else {
            CHECK(d.differ && !d.structural, "fast traces never differed");
            CHECK(d.have_values && d.differing > 0 && d.max_abs > 0, "no values at the divergence");
            CHECK(strcmp(d.label, "fold 2") == 0 && d.mode == DETRUN_FAST, "where: '%s' %d",
                  d.label, (int)d.mode);
            if (getenv("DETRUN_TEST_VERBOSE") != NULL)
                detrun_trace_divergence_print(stdout, ta, tb, &d);
        }
    }

    unlink(ta);
    unlink(tb);
    unlink(ckpt);
    unlink(other);
    rmdir(dir);
    detrun_dataset_free(ds);
    detrun_close(rt);
    return test_report("test_resume_fit");
}
