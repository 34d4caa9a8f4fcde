/*
 * Max-pooling forward and backward (docs/determinism.md "maxpool", R5).
 * Both flavours use these: the backend table needs the argmax, which cuDNN's
 * pooling does not give, and a maximum involves no rounding, so nothing is
 * lost. The backward pass is owner-computes per input pixel, adding the
 * outputs that chose it in (oy, ox) order, which is the written order
 * without atomics.
 */
#include "cuda_backend.h"

__global__ static void maxpool_forward_kernel(float *out, int32_t *argmax, const float *in,
                                              detrun_pool_dims d)
{
    size_t total = (size_t)d.n * d.c * d.oh * d.ow;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % d.ow);
        int oy = (int)(i / d.ow % d.oh);
        size_t plane = i / ((size_t)d.oh * d.ow);   /* n * c + c */
        const float *src = in + plane * d.h * d.w;
        int y0 = oy * d.stride, x0 = ox * d.stride;
        int best_i = y0 * d.w + x0;
        float best = src[best_i];
        for (int ky = 0; ky < d.size; ky++) {
            int iy = y0 + ky;
            if (iy >= d.h)
                break;
            for (int kx = 0; kx < d.size; kx++) {
                int ix = x0 + kx;
                if (ix >= d.w)
                    break;
                float v = src[iy * d.w + ix];
                if (v > best) {
                    best = v;
                    best_i = iy * d.w + ix;
                }
            }
        }
        out[i] = best;
        argmax[i] = best_i;
    }
}

__global__ static void maxpool_backward_kernel(float *din, const float *dout, const int32_t *argmax,
                                               detrun_pool_dims d)
{
    size_t total = (size_t)d.n * d.c * d.h * d.w;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ix = (int)(i % d.w);
        int iy = (int)(i / d.w % d.h);
        size_t plane = i / ((size_t)d.h * d.w);
        int here = iy * d.w + ix;
        /* Outputs whose window holds (iy, ix): oy*stride <= iy < oy*stride + size. */
        int oy0 = iy - d.size + 1 > 0 ? (iy - d.size + d.stride) / d.stride : 0;
        int oy1 = iy / d.stride < d.oh - 1 ? iy / d.stride : d.oh - 1;
        int ox0 = ix - d.size + 1 > 0 ? (ix - d.size + d.stride) / d.stride : 0;
        int ox1 = ix / d.stride < d.ow - 1 ? ix / d.stride : d.ow - 1;
        float acc = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                size_t o = (plane * d.oh + oy) * d.ow + ox;
                if (argmax[o] == here)
                    acc = __fadd_rn(acc, dout[o]);
            }
        din[i] = acc;
    }
}

void detrun_cuda_maxpool_forward(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                                 const detrun_pool_dims *d)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    size_t total = (size_t)d->n * d->c * d->oh * d->ow;
    if (g->status != DETRUN_OK || total == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(out), DETRUN_CUDA_W(argmax), DETRUN_CUDA_W(in),
                               (uint64_t)d->n, (uint64_t)d->c, (uint64_t)d->h, (uint64_t)d->w,
                               (uint64_t)d->oh, (uint64_t)d->ow, (uint64_t)d->size,
                               (uint64_t)d->stride };
    if (detrun_cuda_note(g, DETRUN_OP_POOL_FWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    maxpool_forward_kernel<<<detrun_cuda_blocks(total), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        out, argmax, in, *d);
    DETRUN_CUDA_LAUNCHED(g, "maxpool_forward kernel");
}

void detrun_cuda_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                  const int32_t *argmax, const detrun_pool_dims *d)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    size_t total = (size_t)d->n * d->c * d->h * d->w;
    if (g->status != DETRUN_OK || total == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(din), DETRUN_CUDA_W(dout), DETRUN_CUDA_W(argmax),
                               (uint64_t)d->n, (uint64_t)d->c, (uint64_t)d->h, (uint64_t)d->w,
                               (uint64_t)d->oh, (uint64_t)d->ow, (uint64_t)d->size,
                               (uint64_t)d->stride };
    if (detrun_cuda_note(g, DETRUN_OP_POOL_BWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    maxpool_backward_kernel<<<detrun_cuda_blocks(total), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        din, dout, argmax, *d);
    DETRUN_CUDA_LAUNCHED(g, "maxpool_backward kernel");
}
