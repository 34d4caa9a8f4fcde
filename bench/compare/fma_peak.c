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
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        a[k] = _mm256_set1_ps((float)k);
    long iters = 0, chunk = 1000000;
    double t0 = now(), t;
    do {
        for (long i = 0; i < chunk; i++)
            for (int k = 0; k < 12; k++)
                a[k] = _mm256_fmadd_ps(a[k], m, c);
        iters += chunk;
        t = now() - t0;
    } while (t < want);
    float sink = 0;
    for (int k = 0; k < 12; k++)
        sink += _mm256_cvtss_f32(a[k]);
    printf("%.1f GFLOP/s (sink %g)\n", (double)iters * 12 * 8 * 2 / t / 1e9, sink);
    return 0;
}
