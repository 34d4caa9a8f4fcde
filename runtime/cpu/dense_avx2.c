/*
 * dense_avx2.c - the dense layer's AVX2+FMA path (docs/determinism.md,
 * "dense forward", "dense backward" and "CPU", R1, R2): up to six rows by
 * two vectors of 8 neighbouring columns stay in registers over the whole
 * chain, every lane running its own column's sequential fma chain.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "dense.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* R rows (up to 6) by NV vectors (up to 2) of columns from j0: 12 chains in
 * flight, enough to cover the fma latency with 16 registers; the last vector
 * has `tail` active lanes (masked when partial). wjs must be 1. */
AVX2 INLINE void seq_tile_avx2_rn(const seq_args *a, int r, const int R, int j0, const int NV,
                                  int partial, __m256i mask)
{
    __m256 acc[6][2];
    #pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
        __m256 init = _mm256_setzero_ps();
        if (a->init)
            init = partial && v == NV - 1 ? _mm256_maskload_ps(a->init + j0 + 8 * v, mask)
                                          : _mm256_loadu_ps(a->init + j0 + 8 * v);
        #pragma GCC unroll 6
        for (int rr = 0; rr < R; rr++)
            acc[rr][v] = init;
    }
    const float *x = a->x + (size_t)r * a->xrs;
    const size_t xrs = a->xrs, xis = a->xis, wis = a->wis;
    const float *w = a->wt + j0;
    for (int i = 0; i < a->inner; i++, w += wis, x += xis) {
        __m256 wv[2];
        #pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            wv[v] = partial && v == NV - 1 ? _mm256_maskload_ps(w + 8 * v, mask)
                                           : _mm256_loadu_ps(w + 8 * v);
        #pragma GCC unroll 6
        for (int rr = 0; rr < R; rr++) {
            __m256 b = _mm256_broadcast_ss(x + (size_t)rr * xrs);
            #pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                acc[rr][v] = _mm256_fmadd_ps(b, wv[v], acc[rr][v]);
        }
    }
    #pragma GCC unroll 6
    for (int rr = 0; rr < R; rr++) {
        float *out = a->out + (size_t)(r + rr) * a->units + j0;
        #pragma GCC unroll 2
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

/* R rows of a 16-column half, as many vectors as its columns need. */
AVX2 INLINE void rows8(const seq_args *a, int r, const int R, int j0, int nv, int partial,
                       __m256i mask)
{
    if (nv == 1)
        seq_tile_avx2_rn(a, r, R, j0, 1, partial, mask);
    else
        seq_tile_avx2_rn(a, r, R, j0, 2, partial, mask);
}

AVX2 void detrun_cpu_dense_tile_avx2(const seq_args *a, int r0, int r1, int j0, int j1)
{
    for (int h = j0; h < j1; h += 16) {
        int cols = j1 - h < 16 ? j1 - h : 16;
        int nv = (cols + 7) / 8;
        int tail = cols - 8 * (nv - 1);
        int partial = tail < 8;
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        int r = r0;
        for (; r + 6 <= r1; r += 6)
            rows8(a, r, 6, h, nv, partial, mask);
        switch (r1 - r) {
        case 5: rows8(a, r, 5, h, nv, partial, mask); break;
        case 4: rows8(a, r, 4, h, nv, partial, mask); break;
        case 3: rows8(a, r, 3, h, nv, partial, mask); break;
        case 2: rows8(a, r, 2, h, nv, partial, mask); break;
        case 1: rows8(a, r, 1, h, nv, partial, mask); break;
        default: break;
        }
    }
}

/* w (k, units) to wt (units, k): 8x8 blocks through registers, the edges
 * one by one (only moves: no arithmetic, so no bits to change). */
AVX2 void detrun_cpu_dense_transpose_avx2(float *wt, const float *w, int k, int units)
{
    int k8 = k & ~7, u8 = units & ~7;
    /* Column blocks outside, so that each row of wt is written in order. */
    for (int j0 = 0; j0 < u8; j0 += 8) {
        for (int k0 = 0; k0 < k8; k0 += 8) {
            /* r[q]: columns j0..j0+3 of row q, then the same of row q + 4
             * (loads and inserts, which keep the shuffle port free). */
            __m256 r[8], t[8];
            for (int q = 0; q < 4; q++) {
                const float *lo = w + (size_t)(k0 + q) * units + j0, *hi = lo + 4 * (size_t)units;
                r[q] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)),
                                            _mm_loadu_ps(hi), 1);
                r[q + 4] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo + 4)),
                                                _mm_loadu_ps(hi + 4), 1);
            }
            for (int q = 0; q < 8; q += 2) {
                t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
                t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
            }
            for (int q = 0; q < 8; q += 4) {
                r[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
                r[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xee);
                r[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
                r[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xee);
            }
            /* r[q] is now column j0 + q of rows k0..k0+7. */
            for (int q = 0; q < 8; q++)
                _mm256_storeu_ps(wt + (size_t)(j0 + q) * k + k0, r[q]);
        }
        for (int j = j0; j < j0 + 8; j++)
            for (int kk = k8; kk < k; kk++)
                wt[(size_t)j * k + kk] = w[(size_t)kk * units + j];
    }
    for (int j = u8; j < units; j++)
        for (int kk = 0; kk < k; kk++)
            wt[(size_t)j * k + kk] = w[(size_t)kk * units + j];
}

/* db[j0..j0+8): a running sum per lane over the samples in order, as the
 * plain loop in dense.c; the columns past units are masked off. */
AVX2 void detrun_cpu_dense_bias_grad_avx2(float *db, const float *dout, int n, int units)
{
    for (int j0 = 0; j0 < units; j0 += 32) {
        int nv = units - j0 >= 32 ? 4 : (units - j0 + 7) / 8;
        int tail = units - j0 - 8 * (nv - 1);
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail < 8 ? tail : 8),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                          _mm256_setzero_ps() };
        const float *g = dout + j0;
        for (int s = 0; s < n; s++, g += units) {
            for (int v = 0; v < nv - 1; v++)
                acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(g + 8 * v));
            acc[nv - 1] = _mm256_add_ps(acc[nv - 1], _mm256_maskload_ps(g + 8 * (nv - 1), mask));
        }
        for (int v = 0; v < nv - 1; v++)
            _mm256_storeu_ps(db + j0 + 8 * v, acc[v]);
        _mm256_maskstore_ps(db + j0 + 8 * (nv - 1), mask, acc[nv - 1]);
    }
}

/* dst[i] = dst[i] + src[i], 8 at a time (the same rounded additions). */
AVX2 void detrun_cpu_dense_add_avx2(float *dst, const float *src, size_t count)
{
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
    for (; i < count; i++)
        dst[i] = dst[i] + src[i];
}

#endif
