/*
 * Dense layer forward and backward (docs/determinism.md "dense", R1, R2).
 * Owner-computes: one thread per output, each a sequential fma chain in the
 * written order. In fast mode the weight and bias gradients are cut into
 * chunks of samples whose partial sums meet by float atomicAdd.
 */
#include "cuda_backend.h"

#define FAST_CHUNK 10   /* samples per partial gradient in fast mode */

__global__ static void dense_forward_kernel(float *out, const float *in, const float *w,
                                            const float *bias, int n, int k, int units, int relu)
{
    size_t total = (size_t)n * units;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % units);
        const float *x = in + i / units * k;
        float acc = bias ? bias[j] : 0.0f;
        for (int q = 0; q < k; q++)
            acc = __fmaf_rn(x[q], w[(size_t)q * units + j], acc);
        out[i] = relu && !(acc > 0.0f) ? 0.0f : acc;
    }
}

/* din[n][k] = sum over j ascending of dout[n][j] * w[k][j], from +0. */
__global__ static void dense_din_kernel(float *din, const float *dout, const float *w, int n,
                                        int k, int units)
{
    size_t total = (size_t)n * k;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        const float *dy = dout + i / k * units;
        const float *wr = w + (i % k) * units;
        float acc = 0.0f;
        for (int j = 0; j < units; j++)
            acc = __fmaf_rn(dy[j], wr[j], acc);
        din[i] = acc;
    }
}

/* Row q < k of the grid is dw[q][*], row k is db. Samples [n0, n1) only;
 * atomic != 0 adds the partial sum into the (cleared) gradient. */
__global__ static void dense_dw_kernel(float *dw, float *db, const float *dout, const float *in,
                                       int n, int k, int units, int atomic)
{
    int n0 = blockIdx.y * FAST_CHUNK, n1 = atomic ? min(n, n0 + FAST_CHUNK) : n;
    if (!atomic)
        n0 = 0;
    size_t total = (size_t)(k + 1) * units;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % units);
        int q = (int)(i / units);
        float acc = 0.0f;
        if (q < k) {
            for (int s = n0; s < n1; s++)
                acc = __fmaf_rn(in[(size_t)s * k + q], dout[(size_t)s * units + j], acc);
            if (atomic)
                atomicAdd(&dw[i], acc);
            else
                dw[i] = acc;
        } else {
            for (int s = n0; s < n1; s++)
                acc = __fadd_rn(acc, dout[(size_t)s * units + j]);
            if (atomic)
                atomicAdd(&db[j], acc);
            else
                db[j] = acc;
        }
    }
}

void detrun_cuda_dense_forward(detrun_backend *b, float *out, const float *in, const float *w,
                               const float *bias, int n, int k, int units, int relu)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    size_t total = (size_t)n * units;
    if (g->status != DETRUN_OK || n <= 0 || units <= 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(out), DETRUN_CUDA_W(in), DETRUN_CUDA_W(w),
                               DETRUN_CUDA_W(bias), (uint64_t)n, (uint64_t)k, (uint64_t)units,
                               (uint64_t)relu };
    if (detrun_cuda_note(g, DETRUN_OP_DENSE_FWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    dense_forward_kernel<<<detrun_cuda_blocks(total), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        out, in, w, bias, n, k, units, relu);
    DETRUN_CUDA_LAUNCHED(g, "dense_forward kernel");
}

void detrun_cuda_dense_backward(detrun_backend *b, float *din, float *dw, float *db,
                                const float *dout, const float *in, const float *w, int n, int k,
                                int units)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || n <= 0 || units <= 0 || k <= 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(din), DETRUN_CUDA_W(dw), DETRUN_CUDA_W(db),
                               DETRUN_CUDA_W(dout), DETRUN_CUDA_W(in), DETRUN_CUDA_W(w),
                               (uint64_t)n, (uint64_t)k, (uint64_t)units };
    if (detrun_cuda_note(g, DETRUN_OP_DENSE_BWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    if (din) {
        dense_din_kernel<<<detrun_cuda_blocks((size_t)n * k), DETRUN_CUDA_THREADS, 0, g->stream>>>(
            din, dout, w, n, k, units);
        if (!DETRUN_CUDA_LAUNCHED(g, "dense_backward (input gradient) kernel"))
            return;
    }
    int atomic = g->mode == DETRUN_FAST;
    dim3 grid(detrun_cuda_blocks((size_t)(k + 1) * units), atomic ? (n + FAST_CHUNK - 1) / FAST_CHUNK : 1);
    if (atomic && (!detrun_cuda_ok(g, cudaMemsetAsync(dw, 0, (size_t)k * units * sizeof *dw, g->stream),
                                   "cudaMemsetAsync (dense dw)") ||
                   !detrun_cuda_ok(g, cudaMemsetAsync(db, 0, (size_t)units * sizeof *db, g->stream),
                                   "cudaMemsetAsync (dense db)")))
        return;
    dense_dw_kernel<<<grid, DETRUN_CUDA_THREADS, 0, g->stream>>>(dw, db, dout, in, n, k, units,
                                                                 atomic);
    DETRUN_CUDA_LAUNCHED(g, "dense_backward (weight gradient) kernel");
}
