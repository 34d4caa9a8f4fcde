/* ReLU forward and backward (docs/determinism.md "ReLU", R5: derivative 0 at 0). */
#include "cuda_backend.h"

__global__ static void relu_forward_kernel(float *out, const float *in, size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = in[i];
        out[i] = v > 0.0f ? v : 0.0f;
    }
}

__global__ static void relu_backward_kernel(float *din, const float *dout, const float *out,
                                            size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void detrun_cuda_relu_forward(detrun_backend *b, float *out, const float *in, size_t count)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || count == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(out), DETRUN_CUDA_W(in), (uint64_t)count };
    if (detrun_cuda_note(g, DETRUN_OP_RELU_FWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    relu_forward_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, g->stream>>>(out, in,
                                                                                        count);
    DETRUN_CUDA_LAUNCHED(g, "relu_forward kernel");
}

void detrun_cuda_relu_backward(detrun_backend *b, float *din, const float *dout, const float *out,
                               size_t count)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || count == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(din), DETRUN_CUDA_W(dout), DETRUN_CUDA_W(out),
                               (uint64_t)count };
    if (detrun_cuda_note(g, DETRUN_OP_RELU_BWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    relu_backward_kernel<<<detrun_cuda_blocks(count), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        din, dout, out, count);
    DETRUN_CUDA_LAUNCHED(g, "relu_backward kernel");
}
