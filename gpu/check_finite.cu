/* check_finite: is any value NaN or infinite? (a training step's guard) */
#include "cuda_backend.h"

__global__ static void check_finite_kernel(const float *x, size_t count, int *flag)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        if ((__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u)
            *flag = 1;   /* every writer stores the same value */
}

void detrun_cuda_check_finite(detrun_backend *b, const float *x, size_t count, int *bad)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || count == 0)
        return;
    if (g->rec != DETRUN_REC_PLAIN) {
        detrun_cuda_not_recordable(g);   /* it waits for its answer */
        return;
    }
    int found = 0;
    check_finite_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, g->stream>>>(x, count,
                                                                                        g->flag);
    if (!DETRUN_CUDA_LAUNCHED(g, "check_finite kernel") ||
        !detrun_cuda_ok(g, cudaMemcpyAsync(&found, g->flag, sizeof found, cudaMemcpyDeviceToHost,
                                           g->stream), "check_finite (download)") ||
        !detrun_cuda_ok(g, cudaMemsetAsync(g->flag, 0, sizeof(int), g->stream),
                        "check_finite (reset)") ||
        !detrun_cuda_ok(g, cudaStreamSynchronize(g->stream), "check_finite (sync)"))
        return;
    if (found)
        *bad = 1;
}
