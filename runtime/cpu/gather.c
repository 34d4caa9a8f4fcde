/*
 * gather.c - a batch of rows from the uploaded data set, pixels scaled to
 * [0, 1] by one correctly rounded division (docs/determinism.md, "Data").
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu.h"

typedef struct gather_job {
    float *x;
    int32_t *y;
    const uint8_t *images, *labels;
    size_t pixels;
    const uint32_t *rows;
    int simd, n;
} gather_job;

#if defined(__x86_64__)
/* Eight pixels at a time, without a division: for each of the 256 byte
 * values b, (float)(b * (1.0 / 255.0)) in double (the product rounded to
 * double, then to float) is the correctly rounded b / 255.0f of the loop
 * below; tests/core/test_kernels_order.c checks all 256. */
__attribute__((target("avx2"))) static size_t scale_avx2(float *dst, const uint8_t *src, size_t n)
{
    const __m256d r = _mm256_set1_pd(1.0 / 255.0);
    size_t p = 0;
    for (; p + 8 <= n; p += 8) {
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(src + p)));
        __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(v)), r));
        __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(v, 1)), r));
        _mm256_storeu_ps(dst + p, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
    }
    return p;
}
#endif

/* Rows per task: a few microseconds of work, more than a handover. */
#define GATHER_BLOCK 16

static void gather_row(const gather_job *j, int i)
{
    const uint8_t *src = j->images + (size_t)j->rows[i] * j->pixels;
    float *dst = j->x + (size_t)i * j->pixels;
    size_t p = 0;
#if defined(__x86_64__)
    if (j->simd)
        p = scale_avx2(dst, src, j->pixels);
#endif
    for (; p < j->pixels; p++)
        dst[p] = (float)src[p] / 255.0f;
    if (j->y)
        j->y[i] = j->labels[j->rows[i]];
}

static void gather_task(void *arg, int task, int thread)
{
    (void)thread;
    const gather_job *j = arg;
    int end = (task + 1) * GATHER_BLOCK < j->n ? (task + 1) * GATHER_BLOCK : j->n;
    for (int i = task * GATHER_BLOCK; i < end; i++)
        gather_row(j, i);
}

void detrun_cpu_gather(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                       const uint8_t *labels, size_t pixels, const uint32_t *rows, int n)
{
    if (n <= 0)
        return;
    gather_job j = { x, labels ? y : NULL, images, labels, pixels, rows, DETRUN_CPU(b)->simd, n };
    detrun_pool_run(DETRUN_CPU(b)->pool, (n + GATHER_BLOCK - 1) / GATHER_BLOCK, gather_task, &j);
}
