/*
 * relu.c - ReLU forward and backward (docs/determinism.md, "ReLU", R5: the
 * derivative at exactly 0 is 0). A NaN maps to +0 both ways, as `x > 0`
 * is false for it on every target.
 */
#include "cpu.h"

typedef struct relu_job {
    float *dst;
    const float *a, *b;
} relu_job;

static void forward_range(void *arg, size_t begin, size_t end)
{
    const relu_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->dst[i] = j->a[i] > 0.0f ? j->a[i] : 0.0f;
}

static void backward_range(void *arg, size_t begin, size_t end)
{
    const relu_job *j = arg;   /* a = dout, b = out */
    for (size_t i = begin; i < end; i++)
        j->dst[i] = j->b[i] > 0.0f ? j->a[i] : 0.0f;
}

void detrun_cpu_relu_forward(detrun_backend *b, float *out, const float *in, size_t count)
{
    relu_job j = { out, in, NULL };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, forward_range, &j);
}

void detrun_cpu_relu_backward(detrun_backend *b, float *din, const float *dout, const float *out,
                              size_t count)
{
    relu_job j = { din, dout, out };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, backward_range, &j);
}
