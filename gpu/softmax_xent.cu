/* Softmax + sparse categorical cross-entropy (docs/determinism.md, R1, R3,
 * R7): one thread per sample, so a sample's result never depends on its batch. */
#include "cuda_backend.h"
#include "mathf.h"

__global__ static void softmax_xent_kernel(float *dlogits, float *loss, float *correct,
                                           const float *logits, const int32_t *labels, int n,
                                           int classes)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float *x = logits + (size_t)i * classes;
        int label = labels[i];
        float m = x[0];
        int arg = 0;
        for (int j = 1; j < classes; j++)
            if (x[j] > m) {
                m = x[j];
                arg = j;
            }
        float s = 0.0f;
        for (int j = 0; j < classes; j++)
            s = __fadd_rn(s, detrun_expf(__fsub_rn(x[j], m)));
        /* A label out of range gives the CPU backend's NaN, which the
         * caller's finiteness check reports. */
        int valid = label >= 0 && label < classes;
        loss[i] = valid ? __fsub_rn(detrun_logf(s), __fsub_rn(x[label], m))
                        : __uint_as_float(0x7fc00000u);
        correct[i] = arg == label ? 1.0f : 0.0f;
        if (dlogits) {
            float fn = (float)n;
            for (int j = 0; j < classes; j++) {
                float p = __fdiv_rn(detrun_expf(__fsub_rn(x[j], m)), s);
                dlogits[(size_t)i * classes + j] = __fdiv_rn(__fsub_rn(p, j == label ? 1.0f : 0.0f), fn);
            }
        }
    }
}

void detrun_cuda_softmax_xent(detrun_backend *b, float *dlogits, float *loss, float *correct,
                              const float *logits, const int32_t *labels, int n, int classes)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || n <= 0 || classes <= 0)
        return;
    /* Small blocks: n is a batch (often 100), spread it over several SMs. */
    /* loss and correct point into the epoch's results: they vary. */
    const uint64_t fixed[] = { DETRUN_CUDA_W(dlogits), DETRUN_CUDA_W(logits), DETRUN_CUDA_W(labels),
                               (uint64_t)n, (uint64_t)classes };
    detrun_cuda_note(g, DETRUN_OP_SOFTMAX, fixed, sizeof fixed / sizeof fixed[0]);
    void *args[] = { &dlogits, &loss, &correct, &logits, &labels, &n, &classes };
    detrun_cuda_launch_var(g, (const void *)softmax_xent_kernel, dim3((n + 31) / 32), dim3(32), 0,
                           args, "softmax_xent kernel");
}
