/* Deterministic mode: a few dozen training steps of the reference network
 * (dropout included) give the same fingerprint at 1, 2, 3 and 4 threads.
 * Fast mode at 2 threads: repeats are allowed to, and on a multi-core
 * machine do, differ. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detrun.h"
#include "internal.h"

#include "../common.h"

static int train(detrun_runtime *rt, const detrun_dataset *ds, char fp[33])
{
    detrun_model *m = test_reference_network(rt, 128);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    detrun_status st = detrun_model_compile(m, &adam, 3, 0);
    /* 2 epochs of 2400 training rows (the last 600 of 3000 validate) in
     * batches of 100: 48 optimiser steps. */
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 2;
    fo.batch = 100;
    fo.validation_split = 0.2;
    fo.seed = 9;
    fo.stream = 4;
    if (st == DETRUN_OK)
        st = detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL);
    if (st == DETRUN_OK)
        st = detrun_model_fingerprint(m, fp);
    if (st != DETRUN_OK)
        printf("FAIL training: %s\n", detrun_errmsg(rt));
    detrun_model_free(m);
    return st == DETRUN_OK;
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 1;
    detrun_runtime *rt = NULL;
    detrun_dataset *ds = NULL;
    if (detrun_open(&rt, &o) != DETRUN_OK ||
        detrun_dataset_load_mnist(rt, getenv("DETRUN_TEST_DATA"), "train", &ds) != DETRUN_OK) {
        printf("FAIL setup: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_dataset_limit(ds, 3000);

    char ref[33], fp[33];
    if (!train(rt, ds, ref))
        return 1;
    printf("deterministic, 1 thread: %s\n", ref);
    for (int t = 2; t <= 4; t++) {
        CHECK(detrun_set_threads(rt, t) == DETRUN_OK, "set_threads %d", t);
        if (!train(rt, ds, fp))
            return 1;
        printf("deterministic, %d threads: %s\n", t, fp);
        CHECK(strcmp(fp, ref) == 0, "%d threads: %s, 1 thread: %s", t, fp, ref);
    }

    if (detrun_cpu_count() < 2) {
        printf("fast mode check skipped: this machine has 1 core, so two threads never race\n");
    } else {
        detrun_set_threads(rt, 2);
        detrun_set_mode(rt, DETRUN_FAST);
        char first[33];
        int differ = 0, tries = 0;
        if (!train(rt, ds, first))
            return 1;
        printf("fast, 2 threads, run 1: %s\n", first);
        /* Different additions orders are likely but not certain in a given
         * run: allow a bounded number of repeats. */
        for (tries = 1; tries < 8 && !differ; tries++) {
            if (!train(rt, ds, fp))
                return 1;
            printf("fast, 2 threads, run %d: %s\n", tries + 1, fp);
            differ = strcmp(fp, first) != 0;
        }
        CHECK(differ, "fast mode at 2 threads gave one fingerprint in %d runs", tries);
        detrun_set_mode(rt, DETRUN_DETERMINISTIC);
        if (!train(rt, ds, fp))
            return 1;
        CHECK(strcmp(fp, ref) == 0, "back in deterministic mode: %s, want %s", fp, ref);
    }

    detrun_dataset_free(ds);
    detrun_close(rt);
    return test_report("test_threads");
}
