/*
 * fma_peak - the FP32 FMA rate one thread sustains: 12 independent chains of
 * fmas (enough to cover the latency on current x86 cores), run for a fixed
 * time, on the widest registers the CPU has (16 lanes with AVX-512F, else 8
 * with AVX2 + FMA: where 512-bit fmas run at full width, the peak is twice
 * the 8-lane one); prints GFLOP/s (2 flops per lane per fma) and the width.
 * Built by bench/cpu_compare.sh with -mavx2 -mfma; a benchmark, not a kernel.
 *
 *   fma_peak [seconds (1)] [8|16: force the width]
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

/* One width: V the vector type, SET/FMA/ADD/LOW its intrinsics. Twelve
 * named accumulators: an array would live in memory. */
#define PEAK_LOOP(V, SET, FMA, ADD, LOW, LANES)                                          \
    const V m = SET(0.999999f), c = SET(1e-7f);                                          \
    V a0 = SET(0), a1 = SET(1), a2 = SET(2), a3 = SET(3), a4 = SET(4), a5 = SET(5);      \
    V a6 = SET(6), a7 = SET(7), a8 = SET(8), a9 = SET(9), a10 = SET(10), a11 = SET(11);  \
    long iters = 0, chunk = 1000000;                                                     \
    double t0 = now(), t;                                                                \
    do {                                                                                 \
        for (long i = 0; i < chunk; i++) {                                               \
            a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c);                  \
            a3 = FMA(a3, m, c); a4 = FMA(a4, m, c); a5 = FMA(a5, m, c);                  \
            a6 = FMA(a6, m, c); a7 = FMA(a7, m, c); a8 = FMA(a8, m, c);                  \
            a9 = FMA(a9, m, c); a10 = FMA(a10, m, c); a11 = FMA(a11, m, c);              \
        }                                                                                \
        iters += chunk;                                                                  \
        t = now() - t0;                                                                  \
    } while (t < want);                                                                  \
    V s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));             \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                         \
    *sink = LOW(s);                                                                      \
    return (double)iters * 12 * (LANES) * 2 / t / 1e9

static double peak8(double want, float *sink)
{
    PEAK_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32, 8);
}

__attribute__((target("avx512f"))) static double peak16(double want, float *sink)
{
    PEAK_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_cvtss_f32, 16);
}

int main(int argc, char **argv)
{
    double want = argc > 1 ? atof(argv[1]) : 1.0;
    int lanes = argc > 2 ? atoi(argv[2]) : (__builtin_cpu_supports("avx512f") ? 16 : 8);
    if (lanes == 16 && !__builtin_cpu_supports("avx512f"))
        lanes = 8;
    float sink;
    double g = lanes == 16 ? peak16(want, &sink) : peak8(want, &sink);
    printf("%.1f GFLOP/s (%d lanes, sink %g)\n", g, lanes, sink);
    return 0;
}
