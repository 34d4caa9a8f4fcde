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
    /* The address (its step above all) varies from step to step. */
    const uint64_t fixed[] = { DETRUN_CUDA_W(out), DETRUN_CUDA_W(mask), DETRUN_CUDA_W(in),
                               (uint64_t)count, DETRUN_CUDA_F(rate) };
    detrun_cuda_note(g, DETRUN_OP_DROPOUT_FWD, fixed, sizeof fixed / sizeof fixed[0]);
    detrun_rng_addr a = *addr;
    void *args[] = { &out, &mask, &in, &count, &rate, &a };
    detrun_cuda_launch_var(g, (const void *)dropout_forward_kernel, dim3(detrun_cuda_blocks(count)),
                           dim3(DETRUN_CUDA_THREADS), 0, args, "dropout_forward kernel");
}

void detrun_cuda_dropout_backward(detrun_backend *b, float *din, const float *dout,
                                  const float *mask, size_t count)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || count == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(din), DETRUN_CUDA_W(dout), DETRUN_CUDA_W(mask),
                               (uint64_t)count };
    if (detrun_cuda_note(g, DETRUN_OP_DROPOUT_BWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    dropout_backward_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        din, dout, mask, count);
    DETRUN_CUDA_LAUNCHED(g, "dropout_backward kernel");
}
