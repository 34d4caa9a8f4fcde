/*
 * adam.c - Keras' Adam, elementwise (docs/determinism.md, "Adam", R2, R3):
 * products and sums rounded one by one as written, beta^t as running
 * products kept by the caller, only sqrtf from libm.
 */
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu.h"

typedef struct adam_job {
    float *p, *m, *v;
    const float *g;
    float beta1, beta2, one_m_b1, one_m_b2, lr_t, eps;
    int simd;
} adam_job;

#if defined(__x86_64__)
/* Eight elements at a time, each with the same operations in the same order
 * as the loop below: products and sums rounded one by one (no fma),
 * correctly rounded square roots and divisions. */
__attribute__((target("avx2"))) static size_t adam_avx2(const adam_job *j, size_t i, size_t end)
{
    const __m256 b1 = _mm256_set1_ps(j->beta1), b2 = _mm256_set1_ps(j->beta2);
    const __m256 c1 = _mm256_set1_ps(j->one_m_b1), c2 = _mm256_set1_ps(j->one_m_b2);
    const __m256 lr = _mm256_set1_ps(j->lr_t), eps = _mm256_set1_ps(j->eps);
    for (; i + 8 <= end; i += 8) {
        __m256 g = _mm256_loadu_ps(j->g + i);
        __m256 m = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(j->m + i)), _mm256_mul_ps(c1, g));
        __m256 v = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(j->v + i)),
                                 _mm256_mul_ps(c2, _mm256_mul_ps(g, g)));
        _mm256_storeu_ps(j->m + i, m);
        _mm256_storeu_ps(j->v + i, v);
        __m256 step = _mm256_div_ps(_mm256_mul_ps(lr, m), _mm256_add_ps(_mm256_sqrt_ps(v), eps));
        _mm256_storeu_ps(j->p + i, _mm256_sub_ps(_mm256_loadu_ps(j->p + i), step));
    }
    return i;
}
#endif

static void adam_range(void *arg, size_t begin, size_t end)
{
    const adam_job *j = arg;
#if defined(__x86_64__)
    if (j->simd)
        begin = adam_avx2(j, begin, end);
#endif
    for (size_t i = begin; i < end; i++) {
        float g = j->g[i];
        float m = j->beta1 * j->m[i] + j->one_m_b1 * g;
        float v = j->beta2 * j->v[i] + j->one_m_b2 * (g * g);
        j->m[i] = m;
        j->v[i] = v;
        j->p[i] = j->p[i] - (j->lr_t * m) / (sqrtf(v) + j->eps);
    }
}

void detrun_cpu_adam_step(detrun_backend *b, float *p, const float *g, float *m, float *v,
                          size_t count, const detrun_adam_params *a)
{
    adam_job j;
    j.p = p;
    j.m = m;
    j.v = v;
    j.g = g;
    j.beta1 = a->beta1;
    j.beta2 = a->beta2;
    j.one_m_b1 = 1.0f - a->beta1;
    j.one_m_b2 = 1.0f - a->beta2;
    j.lr_t = (a->lr * sqrtf(1.0f - a->beta2_t)) / (1.0f - a->beta1_t);
    j.eps = a->eps;
    j.simd = DETRUN_CPU(b)->simd;
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_COSTLY, adam_range, &j);
}
