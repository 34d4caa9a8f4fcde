/*
 * tensor.h - what the runtime's tensor files share beyond detrun.h.
 */
#ifndef DETRUN_TENSOR_H
#define DETRUN_TENSOR_H

#include <stddef.h>

#include "detrun.h"

struct detrun_tensor {
    int ndims;
    int dims[DETRUN_TENSOR_MAX_DIMS];
    size_t count;
    float *data;              /* count floats, in the same block as the struct */
    detrun_alloc_fn alloc;    /* the allocator the block came from */
    void *alloc_ud;
};

/* Checks a shape (1 to 4 dims, each >= 1, at most 2^32 - 1 elements);
 * what names the caller in the message. */
detrun_status detrun_tensor_check_shape(detrun_runtime *rt, const char *what, int ndims,
                                        const int *dims, size_t *count);

/* "2x3x4" into buf. */
void detrun_tensor_shape_string(int ndims, const int *dims, char *buf, size_t len);

#endif
