/* SGD with momentum (docs/determinism.md "SGD", R2). */
#include "cuda_backend.h"

__global__ static void sgd_kernel(float *p, const float *g, float *v, size_t count, float lr,
                                  float momentum)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        if (momentum == 0.0f || !v) {
            p[i] = __fsub_rn(p[i], __fmul_rn(lr, g[i]));
        } else {
            float vi = __fsub_rn(__fmul_rn(momentum, v[i]), __fmul_rn(lr, g[i]));
            v[i] = vi;
            p[i] = __fadd_rn(p[i], vi);
        }
    }
}

void detrun_cuda_sgd_step(detrun_backend *b, float *p, const float *g, float *v, size_t count,
                          float lr, float momentum)
{
    detrun_cuda *c = DETRUN_CUDA(b);
    if (c->status != DETRUN_OK || count == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(p), DETRUN_CUDA_W(g), DETRUN_CUDA_W(v), (uint64_t)count,
                               DETRUN_CUDA_F(lr), DETRUN_CUDA_F(momentum) };
    if (detrun_cuda_note(c, DETRUN_OP_SGD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    sgd_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, c->stream>>>(p, g, v, count,
                                                                                lr, momentum);
    DETRUN_CUDA_LAUNCHED(c, "sgd kernel");
}
