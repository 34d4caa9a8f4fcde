/* gather: a batch of images from the data set already on the device. */
#include "cuda_backend.h"

/* docs/determinism.md "Data": (float)byte / 255.0f, one correctly rounded division. */
__global__ static void gather_kernel(float *x, int32_t *y, const uint8_t *images,
                                     const uint8_t *labels, size_t pixels, const uint32_t *rows,
                                     int n)
{
    size_t total = (size_t)n * pixels;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / pixels, p = i - r * pixels;
        size_t row = rows[r];
        x[i] = __fdiv_rn((float)images[row * pixels + p], 255.0f);
        if (p == 0 && y && labels)
            y[r] = labels[row];
    }
}

void detrun_cuda_gather(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                        const uint8_t *labels, size_t pixels, const uint32_t *rows, int n)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || n <= 0)
        return;
    if ((size_t)n > g->rows_cap) {
        if (g->rows && !detrun_cuda_ok(g, cudaFree(g->rows), "cudaFree (rows)"))
            return;
        g->rows = NULL;
        g->rows_cap = 0;
        if (!detrun_cuda_ok(g, cudaMalloc(&g->rows, (size_t)n * sizeof *rows), "cudaMalloc (rows)"))
            return;
        g->rows_cap = (size_t)n;
    }
    /* The rows are pageable host memory: staged before the call returns. */
    if (!detrun_cuda_ok(g, cudaMemcpyAsync(g->rows, rows, (size_t)n * sizeof *rows,
                                           cudaMemcpyHostToDevice, g->stream),
                        "gather (rows upload)"))
        return;
    gather_kernel<<<detrun_cuda_blocks((size_t)n * pixels), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        x, y, images, labels, pixels, g->rows, n);
    DETRUN_CUDA_LAUNCHED(g, "gather kernel");
}
