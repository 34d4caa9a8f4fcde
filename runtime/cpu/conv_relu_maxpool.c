/*
 * conv_relu_maxpool.c - conv2d forward with ReLU, then max-pool, fused
 * (docs/determinism.md, "CPU (runtime/cpu/)"): each sample's conv output is
 * pooled by the thread that just wrote it, while it is still in its cache.
 * The conv output is still written whole (backward passes and traces read
 * it); every value is computed by the same code, in the same order, as by
 * the two separate kernels.
 */
#include "cpu.h"

typedef struct fused_job {
    detrun_backend *b;
    float *pool_out;
    int32_t *argmax;
    const float *conv_out;
    const detrun_pool_dims *pd;
} fused_job;

static void pool_sample(void *arg, int n, int thread)
{
    (void)thread;
    const fused_job *j = arg;
    detrun_cpu_maxpool_forward_sample(j->b, j->pool_out, j->argmax, j->conv_out, j->pd, n);
}

void detrun_cpu_conv2d_relu_maxpool_forward(detrun_backend *b, float *conv_out, float *pool_out,
                                            int32_t *argmax, const float *in, const float *w,
                                            const float *bias, const detrun_conv_dims *cd,
                                            const detrun_pool_dims *pd)
{
    if (pd->n != cd->n || pd->c != cd->o || pd->h != cd->oh || pd->w != cd->ow) {
        /* Not one after the other: the two kernels as they are. */
        detrun_cpu_conv2d_forward(b, conv_out, in, w, bias, cd, 1);
        detrun_cpu_maxpool_forward(b, pool_out, argmax, conv_out, pd);
        return;
    }
    fused_job j = { b, pool_out, argmax, conv_out, pd };
    detrun_cpu_conv2d_forward_then(b, conv_out, in, w, bias, cd, 1, pool_sample, &j);
}
