/*
 * conv2d through cuDNN (kernels "cudnn"), with the legacy convolution API.
 *
 * Deterministic mode: algorithms from cuDNN's heuristics (no timing, so the
 * choice is stable for a shape, GPU and cuDNN version), keeping only those
 * whose result says CUDNN_DETERMINISTIC. Fast mode: cudnnFind* times every
 * algorithm and the fastest wins, atomics and all. Both keep CUDNN_FMA_MATH:
 * TF32 would change the maths, not only the order of additions.
 * Results depend on the GPU model and the cuDNN version (docs/determinism.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"

struct detrun_cuda_plan {
    detrun_conv_dims d;
    int usable;               /* 0: cuDNN cannot take the shape; use the project's kernels */
    cudnnTensorDescriptor_t x, y, bias;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int have_fwd, have_bwd;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
    detrun_cuda_plan *next;
};

static void plan_free(detrun_cuda_plan *p)
{
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->bias) cudnnDestroyTensorDescriptor(p->bias);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

void detrun_cuda_plans_free(detrun_cuda *g)
{
    while (g->plans) {
        detrun_cuda_plan *next = g->plans->next;
        plan_free(g->plans);
        g->plans = next;
    }
}

static detrun_cuda_plan *plan_get(detrun_cuda *g, const detrun_conv_dims *d)
{
    for (detrun_cuda_plan *p = g->plans; p; p = p->next)
        if (memcmp(&p->d, d, sizeof *d) == 0)
            return p;
    detrun_cuda_plan *p = (detrun_cuda_plan *)calloc(1, sizeof *p);
    if (!p) {
        detrun_cuda_fail(g, DETRUN_ERR_MEMORY, "cuda:%d: out of host memory (cuDNN plan)", g->device);
        return NULL;
    }
    p->d = *d;
    /* cuDNN pads both sides alike: the shape must be the one that implies. */
    int oh = (d->h + 2 * d->pad_top - d->kh) / d->stride + 1;
    int ow = (d->w + 2 * d->pad_left - d->kw) / d->stride + 1;
    int ok = oh == d->oh && ow == d->ow && d->pad_top >= 0 && d->pad_left >= 0;
    if (ok &&
        detrun_cudnn_ok(g, cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor") &&
        detrun_cudnn_ok(g, cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor") &&
        detrun_cudnn_ok(g, cudnnCreateTensorDescriptor(&p->bias), "cudnnCreateTensorDescriptor") &&
        detrun_cudnn_ok(g, cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor") &&
        detrun_cudnn_ok(g, cudnnCreateConvolutionDescriptor(&p->conv),
                        "cudnnCreateConvolutionDescriptor") &&
        detrun_cudnn_ok(g, cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                      d->n, d->c, d->h, d->w),
                        "cudnnSetTensor4dDescriptor (input)") &&
        detrun_cudnn_ok(g, cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                      d->n, d->o, d->oh, d->ow),
                        "cudnnSetTensor4dDescriptor (output)") &&
        detrun_cudnn_ok(g, cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                      1, d->o, 1, 1),
                        "cudnnSetTensor4dDescriptor (bias)") &&
        detrun_cudnn_ok(g, cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                      d->o, d->c, d->kh, d->kw),
                        "cudnnSetFilter4dDescriptor") &&
        detrun_cudnn_ok(g, cudnnSetConvolution2dDescriptor(p->conv, d->pad_top, d->pad_left,
                                                           d->stride, d->stride, 1, 1,
                                                           CUDNN_CROSS_CORRELATION,
                                                           CUDNN_DATA_FLOAT),
                        "cudnnSetConvolution2dDescriptor") &&
        detrun_cudnn_ok(g, cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH),
                        "cudnnSetConvolutionMathType")) {
        int n, c, h, w;
        ok = detrun_cudnn_ok(g, cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c,
                                                                      &h, &w),
                             "cudnnGetConvolution2dForwardOutputDim") &&
             n == d->n && c == d->o && h == d->oh && w == d->ow;
    }
    if (g->status != DETRUN_OK) {
        plan_free(p);
        return NULL;
    }
    p->usable = ok;
    p->next = g->plans;
    g->plans = p;
    return p;
}

/* A perf result the mode accepts: it ran, with FMA (not tensor-op) maths,
 * and, in deterministic mode, cuDNN calls it deterministic. */
static int acceptable(const detrun_cuda *g, cudnnStatus_t st, cudnnDeterminism_t det,
                      cudnnMathType_t math)
{
    return st == CUDNN_STATUS_SUCCESS &&
           (math == CUDNN_FMA_MATH || math == CUDNN_DEFAULT_MATH) &&
           (g->mode == DETRUN_FAST || det == CUDNN_DETERMINISTIC);
}

static void describe(char *buf, size_t len, const detrun_conv_dims *d)
{
    snprintf(buf, len, "n=%d c=%d h=%d w=%d o=%d k=%dx%d stride %d", d->n, d->c, d->h, d->w, d->o,
             d->kh, d->kw, d->stride);
}

static int choose_forward(detrun_cuda *g, detrun_cuda_plan *p)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    cudnnStatus_t s = g->mode == DETRUN_FAST
        ? cudnnFindConvolutionForwardAlgorithm(g->cudnn, p->x, p->w, p->conv, p->y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf)
        : cudnnGetConvolutionForwardAlgorithm_v7(g->cudnn, p->x, p->w, p->conv, p->y,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf);
    if (!detrun_cudnn_ok(g, s, "choosing the forward convolution algorithm"))
        return 0;
    for (int i = 0; i < count; i++) {
        if (!acceptable(g, perf[i].status, perf[i].determinism, perf[i].mathType))
            continue;
        size_t ws = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(g->cudnn, p->x, p->w, p->conv, p->y,
                                                    perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS)
            continue;
        p->fwd = perf[i].algo;
        p->fwd_ws = ws;
        p->have_fwd = 1;
        return 1;
    }
    char shape[128];
    describe(shape, sizeof shape, &p->d);
    detrun_cuda_fail(g, DETRUN_ERR_UNSUPPORTED,
                     "cuda:%d: cuDNN offers no %s forward convolution algorithm for %s", g->device,
                     g->mode == DETRUN_FAST ? "usable" : "deterministic", shape);
    return 0;
}

static int choose_backward(detrun_cuda *g, detrun_cuda_plan *p)
{
    char shape[128];
    describe(shape, sizeof shape, &p->d);
    int found = 0, count = 0;
    {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        cudnnStatus_t s = g->mode == DETRUN_FAST
            ? cudnnFindConvolutionBackwardDataAlgorithm(g->cudnn, p->w, p->y, p->conv, p->x,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                        &count, perf)
            : cudnnGetConvolutionBackwardDataAlgorithm_v7(g->cudnn, p->w, p->y, p->conv, p->x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          &count, perf);
        if (!detrun_cudnn_ok(g, s, "choosing the backward-data convolution algorithm"))
            return 0;
        for (int i = 0; i < count && !found; i++) {
            size_t ws = 0;
            if (!acceptable(g, perf[i].status, perf[i].determinism, perf[i].mathType) ||
                cudnnGetConvolutionBackwardDataWorkspaceSize(g->cudnn, p->w, p->y, p->conv, p->x,
                                                             perf[i].algo, &ws) !=
                    CUDNN_STATUS_SUCCESS)
                continue;
            p->bwd_data = perf[i].algo;
            p->bwd_data_ws = ws;
            found = 1;
        }
        if (!found) {
            detrun_cuda_fail(g, DETRUN_ERR_UNSUPPORTED,
                             "cuda:%d: cuDNN offers no %s backward-data algorithm for %s",
                             g->device, g->mode == DETRUN_FAST ? "usable" : "deterministic", shape);
            return 0;
        }
    }
    found = 0;
    {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        cudnnStatus_t s = g->mode == DETRUN_FAST
            ? cudnnFindConvolutionBackwardFilterAlgorithm(g->cudnn, p->x, p->y, p->conv, p->w,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                          &count, perf)
            : cudnnGetConvolutionBackwardFilterAlgorithm_v7(g->cudnn, p->x, p->y, p->conv, p->w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                            &count, perf);
        if (!detrun_cudnn_ok(g, s, "choosing the backward-filter convolution algorithm"))
            return 0;
        for (int i = 0; i < count && !found; i++) {
            size_t ws = 0;
            if (!acceptable(g, perf[i].status, perf[i].determinism, perf[i].mathType) ||
                cudnnGetConvolutionBackwardFilterWorkspaceSize(g->cudnn, p->x, p->y, p->conv, p->w,
                                                               perf[i].algo, &ws) !=
                    CUDNN_STATUS_SUCCESS)
                continue;
            p->bwd_filter = perf[i].algo;
            p->bwd_filter_ws = ws;
            found = 1;
        }
        if (!found) {
            detrun_cuda_fail(g, DETRUN_ERR_UNSUPPORTED,
                             "cuda:%d: cuDNN offers no %s backward-filter algorithm for %s",
                             g->device, g->mode == DETRUN_FAST ? "usable" : "deterministic", shape);
            return 0;
        }
    }
    p->have_bwd = 1;
    return 1;
}

/* cuDNN's forward has no fused bias + ReLU for every algorithm: one pass. */
__global__ static void bias_relu_kernel(float *out, const float *bias, size_t total, int plane,
                                        int channels, int relu)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = out[i];
        if (bias)
            v = __fadd_rn(v, bias[i / plane % channels]);
        out[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

int detrun_cudnn_conv2d_forward(detrun_cuda *g, float *out, const float *in, const float *w,
                                const float *bias, const detrun_conv_dims *d, int relu)
{
    detrun_cuda_plan *p = plan_get(g, d);
    if (!p)
        return 1;   /* failed: the error is kept */
    if (!p->usable)
        return 0;
    if (!p->have_fwd && !choose_forward(g, p))
        return 1;
    void *ws = detrun_cuda_workspace(g, p->fwd_ws);
    if (p->fwd_ws && !ws)
        return 1;
    const float one = 1.0f, zero = 0.0f;
    if (!detrun_cudnn_ok(g, cudnnConvolutionForward(g->cudnn, &one, p->x, in, p->w, w, p->conv,
                                                    p->fwd, ws, p->fwd_ws, &zero, p->y, out),
                         "cudnnConvolutionForward"))
        return 1;
    if (bias || relu) {
        size_t total = (size_t)d->n * d->o * d->oh * d->ow;
        bias_relu_kernel<<<detrun_cuda_blocks(total), DETRUN_CUDA_THREADS, 0, g->stream>>>(
            out, bias, total, d->oh * d->ow, d->o, relu);
        DETRUN_CUDA_LAUNCHED(g, "conv2d bias/relu kernel");
    }
    return 1;
}

int detrun_cudnn_conv2d_backward(detrun_cuda *g, float *din, float *dw, float *db,
                                 const float *dout, const float *in, const float *w,
                                 const detrun_conv_dims *d)
{
    detrun_cuda_plan *p = plan_get(g, d);
    if (!p)
        return 1;
    if (!p->usable)
        return 0;
    if (!p->have_bwd && !choose_backward(g, p))
        return 1;
    size_t need = p->bwd_filter_ws > p->bwd_data_ws ? p->bwd_filter_ws : p->bwd_data_ws;
    void *ws = detrun_cuda_workspace(g, need);
    if (need && !ws)
        return 1;
    const float one = 1.0f, zero = 0.0f;
    if (din && !detrun_cudnn_ok(g, cudnnConvolutionBackwardData(g->cudnn, &one, p->w, w, p->y, dout,
                                                                p->conv, p->bwd_data, ws,
                                                                p->bwd_data_ws, &zero, p->x, din),
                                "cudnnConvolutionBackwardData"))
        return 1;
    if (!detrun_cudnn_ok(g, cudnnConvolutionBackwardFilter(g->cudnn, &one, p->x, in, p->y, dout,
                                                           p->conv, p->bwd_filter, ws,
                                                           p->bwd_filter_ws, &zero, p->w, dw),
                         "cudnnConvolutionBackwardFilter"))
        return 1;
    detrun_cudnn_ok(g, cudnnConvolutionBackwardBias(g->cudnn, &one, p->y, dout, &zero, p->bias, db),
                    "cudnnConvolutionBackwardBias");
    return 1;
}
