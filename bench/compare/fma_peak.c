/*
 * fma_peak - the FP32 FMA rate one thread sustains: 12 independent chains of
 * 8-wide fmas (enough to cover the latency on current x86 cores), run for a
 * fixed count; prints GFLOP/s (2 flops per lane per fma). Built by
 * bench/cpu_compare.sh with -mavx2 -mfma; a benchmark, not a kernel.
 *
 *   fma_peak [seconds (1)]
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    double want = argc > 1 ? atof(argv[1]) : 1.0;
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    /* Twelve named accumulators: an array would live in memory. */
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2);
    __m256 a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5);
    __m256 a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8);
    __m256 a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    long iters = 0, chunk = 1000000;
    double t0 = now(), t;
    do {
        for (long i = 0; i < chunk; i++) {
#define F(x) x = _mm256_fmadd_ps(x, m, c)
            F(a0); F(a1); F(a2); F(a3); F(a4); F(a5);
            F(a6); F(a7); F(a8); F(a9); F(a10); F(a11);
#undef F
        }
        iters += chunk;
        t = now() - t0;
    } while (t < want);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float sink = _mm256_cvtss_f32(s);
    printf("%.1f GFLOP/s (sink %g)\n", (double)iters * 12 * 8 * 2 / t / 1e9, sink);
    return 0;
}
