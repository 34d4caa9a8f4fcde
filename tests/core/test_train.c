/* fit / evaluate / predict on the first rows of Fashion-MNIST: the reference
 * network learns; validation takes the last rows; per-sample results do not
 * depend on the batch; a NaN stops training with the epoch and step named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "detrun.h"
#include "../common.h"


static detrun_runtime *rt;

static detrun_model *reference(uint64_t seed)
{
    detrun_model *m = test_reference_network(rt, 128);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (detrun_model_compile(m, &adam, seed, 0) != DETRUN_OK)
        printf("compile: %s\n", detrun_errmsg(rt));
    return m;
}

typedef struct history { int n; detrun_epoch_stats st[8]; int stop_after; } history;

static int record(void *ud, const detrun_epoch_stats *st)
{
    history *h = ud;
    if (h->n < 8)
        h->st[h->n] = *st;
    h->n++;
    return h->stop_after > 0 && h->n >= h->stop_after;
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_dataset *ds = NULL;
    const char *dir = getenv("DETRUN_TEST_DATA");
    if (detrun_dataset_load_mnist(rt, dir, "train", &ds) != DETRUN_OK) {
        printf("FAIL loading Fashion-MNIST: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_dataset_limit(ds, 3500);

    /* Rows 0..2499 for fit (the last 500 of them validation), 2500..3499 held out. */
    uint32_t rows[2500], test[1000];
    for (int i = 0; i < 2500; i++)
        rows[i] = (uint32_t)i;
    for (int i = 0; i < 1000; i++)
        test[i] = 2500u + (uint32_t)i;

    detrun_model *m = reference(1);
    double l0, a0, l1, a1;
    CHECK(detrun_model_evaluate(m, ds, test, 1000, 100, &l0, &a0) == DETRUN_OK, "evaluate: %s",
          detrun_errmsg(rt));
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch = 50;
    fo.validation_split = 0.2;
    fo.seed = 5;
    history h = { 0 };
    detrun_status st = detrun_model_fit(m, ds, rows, 2500, &fo, record, &h);
    CHECK(st == DETRUN_OK, "fit: %s", detrun_errmsg(rt));
    CHECK(detrun_model_evaluate(m, ds, test, 1000, 100, &l1, &a1) == DETRUN_OK, "evaluate");
    printf("held-out loss %.4f -> %.4f, accuracy %.3f -> %.3f\n", l0, l1, a0, a1);
    for (int e = 0; e < h.n && e < 8; e++)
        printf("epoch %d: loss %.4f acc %.3f val_loss %.4f val_acc %.3f %s\n", h.st[e].epoch,
               h.st[e].loss, h.st[e].accuracy, h.st[e].val_loss, h.st[e].val_accuracy,
               h.st[e].fingerprint);
    /* Untrained: about log(10) = 2.30 and chance; three epochs of 2000 rows
     * bring a small CNN well below 1.0 and above 65%. */
    CHECK(l0 > 2.0 && a0 < 0.25, "untrained loss %.3f accuracy %.3f", l0, a0);
    CHECK(l1 < l0 - 1.2 && l1 < 1.0, "held-out loss fell only from %.3f to %.3f", l0, l1);
    CHECK(a1 > 0.65, "held-out accuracy %.3f", a1);
    CHECK(h.n == 3, "%d epoch callbacks", h.n);
    CHECK(detrun_model_step(m) == 3 * 40, "optimiser steps %llu, want 120",
          (unsigned long long)detrun_model_step(m));
    if (h.n == 3) {
        CHECK(h.st[2].loss < h.st[0].loss, "training loss %.4f -> %.4f", h.st[0].loss,
              h.st[2].loss);
        /* Validation = the last 500 rows, evaluated after the epoch. */
        double vl, va;
        detrun_model_evaluate(m, ds, rows + 2000, 500, 50, &vl, &va);
        CHECK(vl == h.st[2].val_loss && va == h.st[2].val_accuracy,
              "val_loss %.9g/%.9g is not the loss of the last 500 rows %.9g/%.9g",
              h.st[2].val_loss, h.st[2].val_accuracy, vl, va);
        char fp[33];
        detrun_model_fingerprint(m, fp);
        CHECK(strcmp(fp, h.st[2].fingerprint) == 0, "last epoch fingerprint %s, model %s",
              h.st[2].fingerprint, fp);
        CHECK(strcmp(h.st[0].fingerprint, h.st[1].fingerprint) != 0, "weights did not change");
    }

    /* Per-sample results do not depend on the batch (R7). */
    {
        double lb[3], ab[3];
        int batches[3] = { 1, 37, 1000 };
        for (int i = 0; i < 3; i++)
            detrun_model_evaluate(m, ds, test, 1000, batches[i], &lb[i], &ab[i]);
        CHECK(lb[0] == l1 && lb[1] == l1 && lb[2] == l1 && ab[0] == a1 && ab[1] == a1 &&
              ab[2] == a1, "evaluate by batch 1/37/1000/100: %.12g %.12g %.12g %.12g", lb[0],
              lb[1], lb[2], l1);
        static float x[20 * 784], one[10], all[20 * 10];
        const uint8_t *img = detrun_dataset_images(ds);
        for (int i = 0; i < 20 * 784; i++)
            x[i] = (float)img[2500 * 784 + i] / 255.0f;
        CHECK(detrun_model_predict(m, x, 20, all) == DETRUN_OK, "predict: %s", detrun_errmsg(rt));
        int same = 1;
        for (int i = 0; i < 20; i++) {
            detrun_model_predict(m, x + i * 784, 1, one);
            same &= memcmp(one, all + i * 10, sizeof one) == 0;
        }
        CHECK(same, "predict one by one differs from predict of 20");
    }

    /* The same fit again from the same seed: the same bits; stopping early
     * from the callback is not an error. */
    {
        detrun_model *m2 = reference(1);
        history h2 = { 0 };
        h2.stop_after = 2;
        st = detrun_model_fit(m2, ds, rows, 2500, &fo, record, &h2);
        CHECK(st == DETRUN_OK && h2.n == 2, "stopped fit: status %d, %d callbacks", st, h2.n);
        CHECK(h.n >= 2 && strcmp(h2.st[1].fingerprint, h.st[1].fingerprint) == 0,
              "repeat: epoch 1 fingerprint %s vs %s", h2.st[1].fingerprint, h.st[1].fingerprint);
        CHECK(h2.st[1].loss == h.st[1].loss, "repeat: epoch 1 loss differs");
        detrun_model_free(m2);
    }
    /* Another shuffle seed: other bits. */
    {
        detrun_model *m3 = reference(1);
        detrun_fit_options f3 = fo;
        f3.epochs = 1;
        f3.seed = 6;
        history h3 = { 0 };
        detrun_model_fit(m3, ds, rows, 2500, &f3, record, &h3);
        CHECK(h3.n == 1 && strcmp(h3.st[0].fingerprint, h.st[0].fingerprint) != 0,
              "fit seed 6 gave the fit seed 5 weights");
        detrun_model_free(m3);
    }

    /* A NaN weight: the loss is NaN in the first step, and the error says so. */
    {
        detrun_model *m4 = reference(1);
        float b[10] = { 0 };
        b[3] = NAN;
        detrun_model_param_set(m4, 7, b, 10);
        detrun_fit_options f4 = fo;
        f4.epochs = 1;
        history h4 = { 0 };
        st = detrun_model_fit(m4, ds, rows, 2500, &f4, record, &h4);
        CHECK(st == DETRUN_ERR_NUMERIC, "NaN fit: status %d", st);
        CHECK(strstr(detrun_errmsg(rt), "NaN at epoch 0, step 0") != NULL, "NaN message: %s",
              detrun_errmsg(rt));
        CHECK(h4.n == 0, "the callback ran after a NaN epoch");
        const char *lname = NULL;
        int layer = detrun_error_layer(rt, &lname);
        CHECK(layer == 7 && lname != NULL && strcmp(lname, "dense_2") == 0,
              "NaN layer as data: %d %s", layer, lname ? lname : "(null)");
        /* The next error clears it. */
        detrun_fit_options fz = f4;
        fz.batch = 0;
        detrun_model_fit(m4, ds, rows, 2500, &fz, NULL, NULL);
        CHECK(detrun_error_layer(rt, &lname) == -1 && lname == NULL, "layer kept after an error");
        detrun_model_free(m4);
    }

    /* Bad input names what is wrong. */
    {
        uint32_t bad[3] = { 0, 1, 99999 };
        st = detrun_model_fit(m, ds, bad, 3, &fo, NULL, NULL);
        CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "rows[2] = 99999") != NULL,
              "row out of range: %s", detrun_errmsg(rt));
        /* Philox keys purpose << 24 | stream: stream 1 << 24 would be stream 0. */
        detrun_fit_options fs = fo;
        fs.stream = 1u << 24;
        st = detrun_model_fit(m, ds, rows, 10, &fs, NULL, NULL);
        CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "stream 16777216") != NULL,
              "stream 1 << 24: %d %s", st, detrun_errmsg(rt));
        fs.stream = (1u << 24) - 1;
        fs.epochs = 0;
        st = detrun_model_fit(m, ds, rows, 10, &fs, NULL, NULL);
        CHECK(st == DETRUN_OK, "stream 2^24 - 1: %s", detrun_errmsg(rt));
        fs = fo;
        fs.validation_split = 1.0;
        st = detrun_model_fit(m, ds, rows, 10, &fs, NULL, NULL);
        CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "validation_split 1"),
              "validation_split 1: %s", detrun_errmsg(rt));
        fs = fo;
        fs.epochs = -1;
        st = detrun_model_fit(m, ds, rows, 10, &fs, NULL, NULL);
        CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "epochs -1"), "epochs -1: %s",
              detrun_errmsg(rt));
        detrun_fit_options fb = fo;
        fb.batch = 0;
        st = detrun_model_fit(m, ds, rows, 10, &fb, NULL, NULL);
        CHECK(st == DETRUN_ERR_ARG && strstr(detrun_errmsg(rt), "batch 0") != NULL, "batch 0: %s",
              detrun_errmsg(rt));
        uint8_t img[4 * 25] = { 0 }, lab[4] = { 0, 1, 2, 3 };
        detrun_dataset *small = NULL;
        if (detrun_dataset_from_memory(rt, img, lab, 4, 1, 5, 5, 4, &small) == DETRUN_OK) {
            st = detrun_model_fit(m, small, NULL, 0, &fo, NULL, NULL);
            CHECK(st == DETRUN_ERR_SHAPE &&
                  strstr(detrun_errmsg(rt), "images are 1x5x5 but the model takes 1x28x28"),
                  "shape: %s", detrun_errmsg(rt));
            detrun_dataset_free(small);
        } else {
            CHECK(0, "dataset_from_memory: %s", detrun_errmsg(rt));
        }
    }

    detrun_model_free(m);
    detrun_dataset_free(ds);
    detrun_close(rt);
    return test_report("test_train");
}
