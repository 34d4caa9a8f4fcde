/*
 * dense_avx2.c - the dense layer's AVX2+FMA path (docs/determinism.md,
 * "dense forward", "dense backward" and "CPU", R1, R2): one or two rows by up
 * to four vectors of 8 neighbouring columns stay in registers over the whole
 * chain, every lane running its own column's sequential fma chain.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "dense.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* R rows by NV vectors of columns from j0; the last vector has `tail`
 * active lanes (masked when partial). wjs must be 1. */
AVX2 INLINE void seq_tile_avx2_rn(const seq_args *a, int r, const int R, int j0, const int NV,
                                  int partial, __m256i mask)
{
    __m256 acc[2][4];
    #pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        __m256 init = _mm256_setzero_ps();
        if (a->init)
            init = partial && v == NV - 1 ? _mm256_maskload_ps(a->init + j0 + 8 * v, mask)
                                          : _mm256_loadu_ps(a->init + j0 + 8 * v);
        #pragma GCC unroll 4
        for (int rr = 0; rr < R; rr++)
            acc[rr][v] = init;
    }
    const float *x0 = a->x + (size_t)r * a->xrs;
    const float *x1 = x0 + a->xrs;
    const float *w = a->wt + j0;
    for (int i = 0; i < a->inner; i++, w += a->wis) {
        __m256 wv[4];
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            wv[v] = partial && v == NV - 1 ? _mm256_maskload_ps(w + 8 * v, mask)
                                           : _mm256_loadu_ps(w + 8 * v);
        __m256 b0 = _mm256_broadcast_ss(x0 + (size_t)i * a->xis);
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[0][v] = _mm256_fmadd_ps(b0, wv[v], acc[0][v]);
        if (R == 2) {
            __m256 b1 = _mm256_broadcast_ss(x1 + (size_t)i * a->xis);
            #pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[1][v] = _mm256_fmadd_ps(b1, wv[v], acc[1][v]);
        }
    }
    #pragma GCC unroll 4
    for (int rr = 0; rr < R; rr++) {
        float *out = a->out + (size_t)(r + rr) * a->units + j0;
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m256 o = acc[rr][v];
            /* max(o, +0) returns +0 for NaN and for -0, as `o > 0 ? o : +0`. */
            if (a->relu)
                o = _mm256_max_ps(o, _mm256_setzero_ps());
            if (partial && v == NV - 1)
                _mm256_maskstore_ps(out + 8 * v, mask, o);
            else
                _mm256_storeu_ps(out + 8 * v, o);
        }
    }
}

AVX2 void detrun_cpu_dense_tile_avx2(const seq_args *a, int r0, int r1, int j0, int j1)
{
    int cols = j1 - j0;
    int nv = (cols + 7) / 8;
    int tail = cols - 8 * (nv - 1);
    int partial = tail < 8;
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    int r = r0;
    for (; r + 2 <= r1; r += 2) {
        switch (nv) {
        case 1: seq_tile_avx2_rn(a, r, 2, j0, 1, partial, mask); break;
        case 2: seq_tile_avx2_rn(a, r, 2, j0, 2, partial, mask); break;
        case 3: seq_tile_avx2_rn(a, r, 2, j0, 3, partial, mask); break;
        default: seq_tile_avx2_rn(a, r, 2, j0, 4, partial, mask); break;
        }
    }
    if (r < r1) {
        switch (nv) {
        case 1: seq_tile_avx2_rn(a, r, 1, j0, 1, partial, mask); break;
        case 2: seq_tile_avx2_rn(a, r, 1, j0, 2, partial, mask); break;
        case 3: seq_tile_avx2_rn(a, r, 1, j0, 3, partial, mask); break;
        default: seq_tile_avx2_rn(a, r, 1, j0, 4, partial, mask); break;
        }
    }
}

#endif
