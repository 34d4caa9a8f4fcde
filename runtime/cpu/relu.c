/*
 * relu.c - ReLU forward and backward (docs/determinism.md, "ReLU", R5: the
 * derivative at exactly 0 is 0). A NaN maps to +0 both ways, as `x > 0`
 * is false for it on every target.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu.h"

typedef struct relu_job {
    float *dst;
    const float *a, *b;
    int simd;
} relu_job;

#if defined(__x86_64__)
/* max(x, +0) is `x > 0 ? x : +0` (NaN and -0 give +0); the compare is
 * ordered, so a NaN output passes no gradient. Same bits as the loops below. */
__attribute__((target("avx2"))) static size_t forward_avx2(const relu_job *j, size_t b, size_t e)
{
    for (; b + 8 <= e; b += 8)
        _mm256_storeu_ps(j->dst + b, _mm256_max_ps(_mm256_loadu_ps(j->a + b), _mm256_setzero_ps()));
    return b;
}

__attribute__((target("avx2"))) static size_t backward_avx2(const relu_job *j, size_t b, size_t e)
{
    for (; b + 8 <= e; b += 8) {
        __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(j->b + b), _mm256_setzero_ps(), _CMP_GT_OQ);
        _mm256_storeu_ps(j->dst + b, _mm256_and_ps(m, _mm256_loadu_ps(j->a + b)));
    }
    return b;
}
#endif

static void forward_range(void *arg, size_t begin, size_t end)
{
    const relu_job *j = arg;
#if defined(__x86_64__)
    if (j->simd)
        begin = forward_avx2(j, begin, end);
#endif
    for (size_t i = begin; i < end; i++)
        j->dst[i] = j->a[i] > 0.0f ? j->a[i] : 0.0f;
}

static void backward_range(void *arg, size_t begin, size_t end)
{
    const relu_job *j = arg;   /* a = dout, b = out */
#if defined(__x86_64__)
    if (j->simd)
        begin = backward_avx2(j, begin, end);
#endif
    for (size_t i = begin; i < end; i++)
        j->dst[i] = j->b[i] > 0.0f ? j->a[i] : 0.0f;
}

void detrun_cpu_relu_forward(detrun_backend *b, float *out, const float *in, size_t count)
{
    relu_job j = { out, in, NULL, DETRUN_CPU(b)->simd };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_CHEAP, forward_range, &j);
}

void detrun_cpu_relu_backward(detrun_backend *b, float *din, const float *dout, const float *out,
                              size_t count)
{
    relu_job j = { din, dout, out, DETRUN_CPU(b)->simd };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_CHEAP, backward_range, &j);
}
