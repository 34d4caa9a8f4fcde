/* Adam, Keras' form (docs/determinism.md "Adam", R2, R3): every product and
 * sum rounded on its own, in the written order. */
#include "cuda_backend.h"

__global__ static void adam_kernel(float *p, const float *g, float *m, float *v, size_t count,
                                   detrun_adam_params a)
{
    float c1 = __fsub_rn(1.0f, a.beta1);
    float c2 = __fsub_rn(1.0f, a.beta2);
    float lr_t = __fdiv_rn(__fmul_rn(a.lr, __fsqrt_rn(__fsub_rn(1.0f, a.beta2_t))),
                           __fsub_rn(1.0f, a.beta1_t));
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(a.beta1, m[i]), __fmul_rn(c1, gi));
        float vi = __fadd_rn(__fmul_rn(a.beta2, v[i]), __fmul_rn(c2, __fmul_rn(gi, gi)));
        m[i] = mi;
        v[i] = vi;
        p[i] = __fsub_rn(p[i], __fdiv_rn(__fmul_rn(lr_t, mi), __fadd_rn(__fsqrt_rn(vi), a.eps)));
    }
}

void detrun_cuda_adam_step(detrun_backend *b, float *p, const float *g, float *m, float *v,
                           size_t count, const detrun_adam_params *a)
{
    detrun_cuda *c = DETRUN_CUDA(b);
    if (c->status != DETRUN_OK || count == 0)
        return;
    /* The beta powers vary from step to step. */
    const uint64_t fixed[] = { DETRUN_CUDA_W(p), DETRUN_CUDA_W(g), DETRUN_CUDA_W(m), DETRUN_CUDA_W(v),
                               (uint64_t)count };
    detrun_cuda_note(c, DETRUN_OP_ADAM, fixed, sizeof fixed / sizeof fixed[0]);
    detrun_adam_params params = *a;
    void *args[] = { &p, &g, &m, &v, &count, &params };
    detrun_cuda_launch_var(c, (const void *)adam_kernel, dim3(detrun_cuda_blocks(count)),
                           dim3(DETRUN_CUDA_THREADS), 0, args, "adam kernel");
}
