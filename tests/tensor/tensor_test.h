/* What the tensor tests share beyond tests/common.h: the bits of a float, a
 * runtime, a vector. */
#ifndef DETRUN_TENSOR_TEST_H
#define DETRUN_TENSOR_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common.h"

static inline uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline detrun_runtime *open_rt(int threads)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = threads;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        printf("FAIL cannot open a runtime: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return NULL;
    }
    return rt;
}

static inline detrun_tensor *vec(detrun_runtime *rt, int n)
{
    detrun_tensor *t = NULL;
    int dims[1] = { n };
    if (detrun_tensor_new(rt, 1, dims, &t) != DETRUN_OK)
        printf("FAIL tensor_new(%d): %s\n", n, detrun_errmsg(rt));
    return t;
}

#endif
