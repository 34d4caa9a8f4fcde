/*
 * cuda_backend.h - what the CUDA backend's files share: its state, error
 * recording and the kernels' entry points (signatures as in backend.h).
 *
 * Kernels in the table return nothing, so the first failure of a CUDA or
 * cuDNN call is kept here (sticky) and returned by the next sync, upload or
 * download (its message through the table's errmsg); once one is kept,
 * later kernels are skipped.
 */
#ifndef DETRUN_CUDA_BACKEND_H
#define DETRUN_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>
#include <cudnn.h>

#include "backend.h"

typedef struct detrun_cuda_plan detrun_cuda_plan;   /* cuDNN descriptors for one conv shape */

typedef struct detrun_cuda {
    int device;
    int portable;             /* 1: the project's kernels only; 0: cuDNN for convolutions */
    detrun_mode mode;
    cudaStream_t stream;
    cudnnHandle_t cudnn;      /* NULL for portable kernels */
    detrun_status status;     /* the first failure; the backend stays failed */
    char err[512];
    uint32_t *rows;           /* device copy of gather's row indices */
    size_t rows_cap;
    int *flag;                /* check_finite's answer */
    void *workspace;          /* cuDNN's scratch, grown on demand */
    size_t workspace_bytes;
    detrun_cuda_plan *plans;  /* cuDNN plans, one per convolution shape */
} detrun_cuda;

#define DETRUN_CUDA(b) ((detrun_cuda *)(b)->ctx)

/* Record a failure (the first one wins); return 1 when e was a success. */
int detrun_cuda_ok(detrun_cuda *g, cudaError_t e, const char *what);
int detrun_cudnn_ok(detrun_cuda *g, cudnnStatus_t s, const char *what);
void detrun_cuda_fail(detrun_cuda *g, detrun_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Checks the launch that just happened. */
#define DETRUN_CUDA_LAUNCHED(g, what) detrun_cuda_ok((g), cudaGetLastError(), (what))

/* Threads per block of the elementwise kernels, and a grid that covers n
 * items with grid-stride loops. */
#define DETRUN_CUDA_THREADS 256
unsigned detrun_cuda_blocks(size_t n);

/* Device scratch of at least bytes for cuDNN, NULL after a failure. */
void *detrun_cuda_workspace(detrun_cuda *g, size_t bytes);
void detrun_cuda_plans_free(detrun_cuda *g);

/* The kernels: the project's own (every flavour) ... */
void detrun_cuda_gather(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                        const uint8_t *labels, size_t pixels, const uint32_t *rows, int n);
void detrun_cuda_conv2d_forward(detrun_backend *b, float *out, const float *in, const float *w,
                                const float *bias, const detrun_conv_dims *d, int relu);
void detrun_cuda_conv2d_backward(detrun_backend *b, float *din, float *dw, float *db,
                                 const float *dout, const float *in, const float *w,
                                 const detrun_conv_dims *d);
void detrun_cuda_maxpool_forward(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                                 const detrun_pool_dims *d);
void detrun_cuda_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                  const int32_t *argmax, const detrun_pool_dims *d);
void detrun_cuda_dense_forward(detrun_backend *b, float *out, const float *in, const float *w,
                               const float *bias, int n, int k, int units, int relu);
void detrun_cuda_dense_backward(detrun_backend *b, float *din, float *dw, float *db,
                                const float *dout, const float *in, const float *w, int n, int k,
                                int units);
void detrun_cuda_relu_forward(detrun_backend *b, float *out, const float *in, size_t count);
void detrun_cuda_relu_backward(detrun_backend *b, float *din, const float *dout, const float *out,
                               size_t count);
void detrun_cuda_dropout_forward(detrun_backend *b, float *out, float *mask, const float *in,
                                 size_t count, float rate, const detrun_rng_addr *addr);
void detrun_cuda_dropout_backward(detrun_backend *b, float *din, const float *dout,
                                  const float *mask, size_t count);
void detrun_cuda_softmax_xent(detrun_backend *b, float *dlogits, float *loss, float *correct,
                              const float *logits, const int32_t *labels, int n, int classes);
void detrun_cuda_adam_step(detrun_backend *b, float *p, const float *g, float *m, float *v,
                           size_t count, const detrun_adam_params *a);
void detrun_cuda_sgd_step(detrun_backend *b, float *p, const float *g, float *v, size_t count,
                          float lr, float momentum);
void detrun_cuda_check_finite(detrun_backend *b, const float *x, size_t count, int *bad);

/* ... and cuDNN's convolutions; each returns 0 without doing anything when
 * cuDNN cannot take the shape (asymmetric padding), so the caller runs the
 * project's kernel instead. */
int detrun_cudnn_conv2d_forward(detrun_cuda *g, float *out, const float *in, const float *w,
                                const float *bias, const detrun_conv_dims *d, int relu);
int detrun_cudnn_conv2d_backward(detrun_cuda *g, float *din, float *dw, float *db,
                                 const float *dout, const float *in, const float *w,
                                 const detrun_conv_dims *d);

#endif
