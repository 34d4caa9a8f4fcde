/*
 * dense_avx512.c - the dense layer's product with 16 neighbouring columns to
 * a register (docs/determinism.md, "dense forward", "dense backward" and
 * "CPU", R1, R2): up to eight rows by two registers (a whole COL_TILE) stay
 * in registers over the chain, sixteen independent chains in flight, enough
 * to keep both fma units busy through their latency; every lane runs its own
 * column's sequential fma chain, as on the AVX2 and plain paths, so the bits
 * are theirs.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "dense.h"

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* R rows from r by NV registers of columns from j0; the last register holds
 * the columns of `last` (a lane mask). wjs must be 1. */
AVX512 INLINE void tile16(const seq_args *a, int r, const int R, int j0, const int NV,
                          __mmask16 last)
{
    __m512 acc[8][2];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
        __mmask16 m = v == NV - 1 ? last : (__mmask16)0xffff;
        __m512 init = a->init ? _mm512_maskz_loadu_ps(m, a->init + j0 + 16 * v)
                              : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int rr = 0; rr < R; rr++)
            acc[rr][v] = init;
    }
    const float *x = a->x + (size_t)r * a->xrs;
    const size_t xrs = a->xrs, xis = a->xis, wis = a->wis;
    const float *w = a->wt + j0;
    for (int i = 0; i < a->inner; i++, w += wis, x += xis) {
        __m512 wv[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            wv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, w + 16 * v)
                                : _mm512_loadu_ps(w + 16 * v);
#pragma GCC unroll 8
        for (int rr = 0; rr < R; rr++) {
            __m512 b = _mm512_set1_ps(x[(size_t)rr * xrs]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                acc[rr][v] = _mm512_fmadd_ps(b, wv[v], acc[rr][v]);
        }
    }
#pragma GCC unroll 8
    for (int rr = 0; rr < R; rr++) {
        float *out = a->out + (size_t)(r + rr) * a->units + j0;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            __m512 o = acc[rr][v];
            /* max(o, +0) returns +0 for NaN and for -0, as `o > 0 ? o : +0`. */
            if (a->relu)
                o = _mm512_max_ps(o, _mm512_setzero_ps());
            _mm512_mask_storeu_ps(out + 16 * v, v == NV - 1 ? last : (__mmask16)0xffff, o);
        }
    }
}

/* R rows of the tile, as many registers as its columns need. */
AVX512 INLINE void rows16(const seq_args *a, int r, const int R, int j0, int nv, __mmask16 last)
{
    if (nv == 1)
        tile16(a, r, R, j0, 1, last);
    else
        tile16(a, r, R, j0, 2, last);
}

AVX512 void detrun_cpu_dense_tile_avx512(const seq_args *a, int r0, int r1, int j0, int j1)
{
    int cols = j1 - j0;                 /* 1..COL_TILE (32) */
    int nv = (cols + 15) / 16;
    int tail = cols - 16 * (nv - 1);
    __mmask16 last = (__mmask16)(tail >= 16 ? 0xffff : (1u << tail) - 1);
    int r = r0;
    for (; r + 8 <= r1; r += 8)
        rows16(a, r, 8, j0, nv, last);
    switch (r1 - r) {
    case 7: rows16(a, r, 7, j0, nv, last); break;
    case 6: rows16(a, r, 6, j0, nv, last); break;
    case 5: rows16(a, r, 5, j0, nv, last); break;
    case 4: rows16(a, r, 4, j0, nv, last); break;
    case 3: rows16(a, r, 3, j0, nv, last); break;
    case 2: rows16(a, r, 2, j0, nv, last); break;
    case 1: rows16(a, r, 1, j0, nv, last); break;
    default: break;
    }
}

#endif
