/*
 * A model keeps one device copy of the data set it was last given. That copy
 * must follow the data set, not its address: a data set freed and replaced by
 * another with other contents (often at the same address) is evaluated on its
 * own contents, and one data set used again is not copied again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "detrun.h"

#include "../common.h"

#define N 64
#define H 8

static void fill(uint8_t *img, uint8_t *lab, unsigned salt)
{
    for (int i = 0; i < N * H * H; i++)
        img[i] = (uint8_t)((i * 37u + salt * 101u) >> 2);
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)((i + salt) % 3);
}

static detrun_model *net(detrun_runtime *rt)
{
    detrun_model *m = NULL;
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (detrun_model_new(rt, 1, H, H, &m) != DETRUN_OK ||
        detrun_model_add_conv2d(m, 2, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU) != DETRUN_OK ||
        detrun_model_add_flatten(m) != DETRUN_OK ||
        detrun_model_add_dense(m, 3, DETRUN_ACT_SOFTMAX) != DETRUN_OK ||
        detrun_model_compile(m, &adam, 5, 0) != DETRUN_OK) {
        printf("FAIL: building the model: %s\n", detrun_errmsg(rt));
        exit(1);
    }
    return m;
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL: open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    static uint8_t img[N * H * H], lab[N];
    detrun_model *m = net(rt), *fresh = net(rt);   /* same seed: same weights */
    double la, aa, lb, ab, lref, aref;

    /* A, then B created after A is freed; B is evaluated by m (which saw A)
     * and by a model that never saw A. */
    for (int round = 0; round < 8; round++) {
        detrun_dataset *a = NULL, *b = NULL;
        fill(img, lab, 2u * round);
        if (detrun_dataset_from_memory(rt, img, lab, N, 1, H, H, 3, &a) != DETRUN_OK)
            return printf("FAIL: %s\n", detrun_errmsg(rt)), 1;
        CHECK(detrun_model_evaluate(m, a, NULL, 0, 16, &la, &aa) == DETRUN_OK, "%s", detrun_errmsg(rt));
        detrun_dataset_free(a);
        fill(img, lab, 2u * round + 1);
        if (detrun_dataset_from_memory(rt, img, lab, N, 1, H, H, 3, &b) != DETRUN_OK)
            return printf("FAIL: %s\n", detrun_errmsg(rt)), 1;
        CHECK(detrun_model_evaluate(m, b, NULL, 0, 16, &lb, &ab) == DETRUN_OK, "%s", detrun_errmsg(rt));
        CHECK(detrun_model_evaluate(fresh, b, NULL, 0, 16, &lref, &aref) == DETRUN_OK, "%s",
              detrun_errmsg(rt));
        CHECK(lb == lref && ab == aref, "round %d: the second data set (%s address) was "
              "evaluated as %.9g / %.6f, its own contents give %.9g / %.6f", round,
              (void *)a == (void *)b ? "same" : "another", lb, ab, lref, aref);
        CHECK(la != lb, "round %d: the two data sets should give different losses", round);
        /* Evaluating the same data set again gives the same numbers. */
        double l2, a2;
        CHECK(detrun_model_evaluate(m, b, NULL, 0, 16, &l2, &a2) == DETRUN_OK && l2 == lb && a2 == ab,
              "round %d: evaluating the same data set again differs", round);
        detrun_dataset_free(b);
    }
    detrun_model_free(m);
    detrun_model_free(fresh);
    detrun_close(rt);
    return test_report("test_dataset_bind");
}
