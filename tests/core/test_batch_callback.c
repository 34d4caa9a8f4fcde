/* fit's per-step callback (detrun_fit_options.on_batch): called once per
 * optimiser step with the epoch, the batch and the steps per epoch; its
 * running loss at an epoch's last step is the epoch's loss; a non-zero return
 * stops training after that step; and the trained bits do not depend on
 * whether a callback is set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"

#define ROWS 1000
#define BATCH 64
#define EPOCHS 2
/* 800 training rows (validation_split 0.2) in batches of 64: 12 full, 1 of 32. */
#define STEPS 13

typedef struct calls {
    int n, bad_order, bad_batches, bad_loss;
    int stop_epoch, stop_batch;           /* stop after this step (-1: never) */
    double last_loss[EPOCHS];             /* the running loss at each epoch's last step */
    int epochs_seen;                      /* epoch callbacks */
    double epoch_loss[EPOCHS];
} calls;

static int on_batch(void *ud, int epoch, int batch, int batches, double loss)
{
    calls *c = ud;
    /* The n-th call (from 0) is step n: epoch n / STEPS, batch n % STEPS. */
    if (epoch != c->n / STEPS || batch != c->n % STEPS)
        c->bad_order++;
    if (batches != STEPS)
        c->bad_batches++;
    if (!(loss > 0.0 && loss < 10.0))
        c->bad_loss++;
    if (batch == batches - 1 && epoch >= 0 && epoch < EPOCHS)
        c->last_loss[epoch] = loss;
    c->n++;
    return epoch == c->stop_epoch && batch == c->stop_batch;
}

static int on_epoch(void *ud, const detrun_epoch_stats *st)
{
    calls *c = ud;
    if (st->epoch >= 0 && st->epoch < EPOCHS)
        c->epoch_loss[st->epoch] = st->loss;
    c->epochs_seen++;
    return 0;
}

/* A fresh reference network fitted for EPOCHS epochs; the callback only when
 * c is given. Fills fp with the final weights' fingerprint; returns the
 * optimiser steps taken (-1 on an error). */
static long fit_once(detrun_runtime *rt, detrun_dataset *ds, calls *c, char fp[33])
{
    detrun_model *m = test_reference_network(rt, 16);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (m == NULL || detrun_model_compile(m, &adam, 3, 0) != DETRUN_OK) {
        printf("model: %s\n", detrun_errmsg(rt));
        detrun_model_free(m);
        return -1;
    }
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = EPOCHS;
    fo.batch = BATCH;
    fo.validation_split = 0.2;
    fo.seed = 3;
    if (c != NULL) {
        fo.on_batch = on_batch;
        fo.batch_ud = c;
    }
    calls none = { .stop_epoch = -1 };
    detrun_status st = detrun_model_fit(m, ds, NULL, 0, &fo, on_epoch, c != NULL ? c : &none);
    long steps = -1;
    if (st == DETRUN_OK && detrun_model_fingerprint(m, fp) == DETRUN_OK)
        steps = (long)detrun_model_step(m);
    else
        printf("fit: %s\n", detrun_errmsg(rt));
    detrun_model_free(m);
    return steps;
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 1;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_dataset *ds = NULL;
    if (detrun_dataset_load_mnist(rt, getenv("DETRUN_TEST_DATA"), "train", &ds) != DETRUN_OK) {
        printf("FAIL loading Fashion-MNIST: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_dataset_limit(ds, ROWS);

    char plain[33] = "", called[33] = "", fp[33];
    CHECK(fit_once(rt, ds, NULL, plain) == EPOCHS * STEPS, "steps without a callback");

    calls c = { .stop_epoch = -1, .stop_batch = -1 };
    CHECK(fit_once(rt, ds, &c, called) == EPOCHS * STEPS, "steps with a callback");
    CHECK(c.n == EPOCHS * STEPS, "%d calls, want %d", c.n, EPOCHS * STEPS);
    CHECK(c.bad_order == 0, "%d calls out of (epoch, batch) order", c.bad_order);
    CHECK(c.bad_batches == 0, "%d calls with batches != %d", c.bad_batches, STEPS);
    CHECK(c.bad_loss == 0, "%d calls with a loss outside (0, 10)", c.bad_loss);
    CHECK(c.epochs_seen == EPOCHS, "%d epoch callbacks", c.epochs_seen);
    for (int e = 0; e < EPOCHS; e++)
        CHECK(c.last_loss[e] == c.epoch_loss[e],
              "epoch %d: running loss %.17g at the last step, epoch loss %.17g", e,
              c.last_loss[e], c.epoch_loss[e]);
    CHECK(strcmp(plain, called) == 0, "fingerprint %s with the callback, %s without", called,
          plain);

    /* Stopping in the second epoch, after its 5th step: one epoch callback. */
    calls s = { .stop_epoch = 1, .stop_batch = 4 };
    CHECK(fit_once(rt, ds, &s, fp) == STEPS + 5, "steps when stopped at epoch 1 batch 4");
    CHECK(s.n == STEPS + 5, "%d calls when stopped at epoch 1 batch 4", s.n);
    CHECK(s.epochs_seen == 1, "%d epoch callbacks when stopped in epoch 1", s.epochs_seen);
    CHECK(strcmp(fp, plain) != 0, "a stopped fit has the full fit's weights");

    /* Stopping after the very first step. */
    calls first = { .stop_epoch = 0, .stop_batch = 0 };
    CHECK(fit_once(rt, ds, &first, fp) == 1, "steps when stopped at the first step");
    CHECK(first.n == 1 && first.epochs_seen == 0, "%d calls, %d epoch callbacks", first.n,
          first.epochs_seen);

    detrun_dataset_free(ds);
    detrun_close(rt);
    return test_report("test_batch_callback");
}
