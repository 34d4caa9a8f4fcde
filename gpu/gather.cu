/* gather: a batch of images from the data set already on the device. */
#include <string.h>

#include "cuda_backend.h"

/* A training batch's row indices travel as a kernel parameter: no copy from
 * pageable host memory, which could make the host wait for the stream at
 * every step. Larger requests (evaluation) copy the rows first. */
#define PARAM_ROWS 960

typedef struct rows_param { uint32_t r[PARAM_ROWS]; } rows_param;

/* docs/determinism.md "Data": (float)byte / 255.0f, one correctly rounded division. */
__device__ static void gather_one(float *x, int32_t *y, const uint8_t *images,
                                  const uint8_t *labels, size_t pixels, size_t i, size_t r,
                                  size_t row)
{
    size_t p = i - r * pixels;
    x[i] = __fdiv_rn((float)images[row * pixels + p], 255.0f);
    if (p == 0 && y && labels)
        y[r] = labels[row];
}

__global__ static void gather_param_kernel(float *x, int32_t *y, const uint8_t *images,
                                           const uint8_t *labels, size_t pixels, rows_param rows,
                                           int n)
{
    size_t total = (size_t)n * pixels;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / pixels;
        gather_one(x, y, images, labels, pixels, i, r, rows.r[r]);
    }
}

__global__ static void gather_kernel(float *x, int32_t *y, const uint8_t *images,
                                     const uint8_t *labels, size_t pixels, const uint32_t *rows,
                                     int n)
{
    size_t total = (size_t)n * pixels;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / pixels;
        gather_one(x, y, images, labels, pixels, i, r, rows[r]);
    }
}

void detrun_cuda_gather(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                        const uint8_t *labels, size_t pixels, const uint32_t *rows, int n)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || n <= 0 || pixels == 0)
        return;
    unsigned blocks = detrun_cuda_blocks((size_t)n * pixels);
    /* The rows vary from step to step: a recorded step gets them through its
     * gather node's arguments. */
    const uint64_t fixed[] = { DETRUN_CUDA_W(x), DETRUN_CUDA_W(y), DETRUN_CUDA_W(images),
                               DETRUN_CUDA_W(labels), (uint64_t)pixels, (uint64_t)n };
    detrun_cuda_note(g, DETRUN_OP_GATHER, fixed, sizeof fixed / sizeof fixed[0]);
    if (n <= PARAM_ROWS) {
        rows_param p;
        memcpy(p.r, rows, (size_t)n * sizeof *rows);
        void *args[] = { &x, &y, &images, &labels, &pixels, &p, &n };
        detrun_cuda_launch_var(g, (const void *)gather_param_kernel, dim3(blocks),
                               dim3(DETRUN_CUDA_THREADS), 0, args, "gather kernel");
        return;
    }
    if (g->rec != DETRUN_REC_PLAIN) {
        detrun_cuda_not_recordable(g);   /* the rows would be copied from pageable memory */
        return;
    }
    if ((size_t)n > g->rows_cap) {
        if (g->rows && !detrun_cuda_ok(g, cudaFree(g->rows), "cudaFree (rows)"))
            return;
        g->rows = NULL;
        g->rows_cap = 0;
        if (!detrun_cuda_ok(g, cudaMalloc(&g->rows, (size_t)n * sizeof *rows), "cudaMalloc (rows)"))
            return;
        g->rows_cap = (size_t)n;
    }
    /* Pageable host memory: staged before the call returns. */
    if (!detrun_cuda_ok(g, cudaMemcpyAsync(g->rows, rows, (size_t)n * sizeof *rows,
                                           cudaMemcpyHostToDevice, g->stream),
                        "gather (rows upload)"))
        return;
    gather_kernel<<<blocks, DETRUN_CUDA_THREADS, 0, g->stream>>>(x, y, images, labels, pixels,
                                                                 g->rows, n);
    DETRUN_CUDA_LAUNCHED(g, "gather kernel");
}
