/* Inverted dropout (docs/determinism.md "dropout", R6): the mask of element e
 * is draw e of the layer's Philox stream, whichever thread computes it. */
#include "cuda_backend.h"
#include "philox.h"

__global__ static void dropout_forward_kernel(float *out, float *mask, const float *in,
                                              size_t count, float rate, detrun_rng_addr a)
{
    float scale = __fdiv_rn(1.0f, __fsub_rn(1.0f, rate));
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t word = detrun_philox_word(a.seed, DETRUN_RNG_DROPOUT, a.stream, a.layer, a.step,
                                           (uint64_t)i);
        float m = detrun_u01(word) >= rate ? scale : 0.0f;
        mask[i] = m;
        out[i] = __fmul_rn(in[i], m);
    }
}

__global__ static void dropout_backward_kernel(float *din, const float *dout, const float *mask,
                                               size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        din[i] = __fmul_rn(dout[i], mask[i]);
}

void detrun_cuda_dropout_forward(detrun_backend *b, float *out, float *mask, const float *in,
                                 size_t count, float rate, const detrun_rng_addr *addr)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || count == 0)
        return;
    dropout_forward_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        out, mask, in, count, rate, *addr);
    DETRUN_CUDA_LAUNCHED(g, "dropout_forward kernel");
}

void detrun_cuda_dropout_backward(detrun_backend *b, float *din, const float *dout,
                                  const float *mask, size_t count)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || count == 0)
        return;
    dropout_backward_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        din, dout, mask, count);
    DETRUN_CUDA_LAUNCHED(g, "dropout_backward kernel");
}
