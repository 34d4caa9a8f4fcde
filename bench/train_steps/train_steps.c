/*
 * train_steps - optimiser steps per second of the reference network
 * (DESIGN.md) at batch 100 on Fashion-MNIST, deterministic and fast mode, at
 * 1 and 2 threads. Each measurement is one fit of `steps` batches (no
 * validation, one fingerprint at the end); the median of `runs` after one
 * warm-up run is reported.
 *
 *   train_steps [steps (20)] [runs (5)] [data dir]
 *
 * TRAIN_STEPS_CPU=1 times the process's CPU time instead of wall time: at one
 * thread that is far steadier than wall time on a shared machine (at two it
 * also counts the workers' spinning).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detrun.h"

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int one_fit(detrun_runtime *rt, const detrun_dataset *ds, double *secs)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 28, 28, &m);
    detrun_model_add_conv2d(m, 8, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU);
    detrun_model_add_maxpool(m, 2, 2);
    detrun_model_add_conv2d(m, 8, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU);
    detrun_model_add_maxpool(m, 2, 2);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 128, DETRUN_ACT_RELU);
    detrun_model_add_dropout(m, 0.2f);
    detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.batch = 100;
    fo.epochs = 1;
    detrun_status st = detrun_model_compile(m, &adam, 0, 0);
    /* Compile and the data set's upload stay outside the timing. */
    double l, a;
    uint32_t row0 = 0;
    if (st == DETRUN_OK)
        st = detrun_model_evaluate(m, ds, &row0, 1, 1, &l, &a);
    double t0 = now();
    if (st == DETRUN_OK)
        st = detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL);
    *secs = now() - t0;
    if (st != DETRUN_OK)
        fprintf(stderr, "train_steps: %s\n", detrun_errmsg(rt));
    detrun_model_free(m);
    return st == DETRUN_OK;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    const char *dir = argc > 3 ? argv[3] : NULL;
    if (steps < 1 || runs < 1 || runs > 100) {
        fprintf(stderr, "usage: train_steps [steps >= 1] [runs 1..100] [data dir]\n");
        return 2;
    }
    if (getenv("TRAIN_STEPS_CPU") && strcmp(getenv("TRAIN_STEPS_CPU"), "1") == 0)
        clock_id = CLOCK_PROCESS_CPUTIME_ID;
    detrun_runtime *rt = NULL;
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 1;
    detrun_dataset *ds = NULL;
    if (detrun_open(&rt, &o) != DETRUN_OK ||
        detrun_dataset_load_mnist(rt, dir, "train", &ds) != DETRUN_OK) {
        fprintf(stderr, "train_steps: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    detrun_dataset_limit(ds, (size_t)steps * 100);
    double med[2][2] = { { 0 } };
    printf("reference network, batch 100, %d steps per fit, median of %d fits (%s time)\n", steps,
           runs, clock_id == CLOCK_MONOTONIC ? "wall" : "CPU");
    for (int mode = 0; mode < 2; mode++)
        for (int t = 1; t <= 2; t++) {
            detrun_set_mode(rt, mode ? DETRUN_FAST : DETRUN_DETERMINISTIC);
            detrun_set_threads(rt, t);
            double secs[101];
            for (int r = 0; r <= runs; r++)   /* run 0 warms up */
                if (!one_fit(rt, ds, &secs[r]))
                    return 1;
            qsort(secs + 1, (size_t)runs, sizeof *secs, cmp);
            double s = secs[1 + runs / 2];
            med[mode][t - 1] = steps / s;
            printf("%-13s %d thread%s: %7.1f steps/s  (median %.3f s, min %.3f s, max %.3f s)\n",
                   mode ? "fast" : "deterministic", t, t > 1 ? "s" : " ", steps / s, s,
                   secs[1], secs[runs]);
        }
    for (int t = 0; t < 2; t++)
        printf("det/fast at %d thread%s: %.3f\n", t + 1, t ? "s" : "", med[0][t] / med[1][t]);
    detrun_dataset_free(ds);
    detrun_close(rt);
    return 0;
}
