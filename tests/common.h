/*
 * common.h - what the C tests share: a failure counter with its CHECK macro,
 * the closing report, and the reference network of the seed protocol
 * (DESIGN.md) built through the C API. Included as "../common.h" from the
 * test folders.
 */
#ifndef DETRUN_TEST_COMMON_H
#define DETRUN_TEST_COMMON_H

#include <stdio.h>

#include "detrun.h"

static int failures;

/* Counts a failure and says where, what failed and why (printf-style). */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            printf("FAIL %s:%d (%s): ", __FILE__, __LINE__, #cond);            \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

/* The test's last line; its exit status: 0 when nothing failed. */
static inline int test_report(const char *name)
{
    if (failures == 0)
        printf("%s: ok\n", name);
    else
        printf("%s: %d failures\n", name, failures);
    return failures == 0 ? 0 : 1;
}

/* The seed protocol's network on 1x28x28 images, not yet compiled: conv 3x3
 * 8 filters + ReLU, maxpool 2x2, conv 3x3 8 + ReLU, maxpool 2x2, flatten,
 * dense `hidden` + ReLU (128 in the protocol), dropout 0.2, dense 10 softmax.
 * NULL when a step fails (the message is on rt). */
static inline detrun_model *test_reference_network(detrun_runtime *rt, int hidden)
{
    detrun_model *m = NULL;
    if (detrun_model_new(rt, 1, 28, 28, &m) != DETRUN_OK ||
        detrun_model_add_conv2d(m, 8, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU) != DETRUN_OK ||
        detrun_model_add_maxpool(m, 2, 2) != DETRUN_OK ||
        detrun_model_add_conv2d(m, 8, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU) != DETRUN_OK ||
        detrun_model_add_maxpool(m, 2, 2) != DETRUN_OK ||
        detrun_model_add_flatten(m) != DETRUN_OK ||
        detrun_model_add_dense(m, hidden, DETRUN_ACT_RELU) != DETRUN_OK ||
        detrun_model_add_dropout(m, 0.2f) != DETRUN_OK ||
        detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX) != DETRUN_OK) {
        detrun_model_free(m);
        return NULL;
    }
    return m;
}

#endif
