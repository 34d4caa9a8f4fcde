/*
 * conv2d_avx512.c - the pixel-grid correlation of conv2d_avx2.c (forward and
 * input gradient, stride 1) with 16 pixels to a register (docs/determinism.md,
 * "CPU", R1, R2).
 *
 * Each grid pixel still runs its own chain over (channel, tap) in the written
 * order from its initial value; only the number of pixels side by side and
 * of output channels sharing one input load (up to 8 by 48 pixels: 24
 * accumulators of the 32 registers) differ from the AVX2 blocks, so the bits
 * are the same. The grid's pixel count is a multiple of 24: the last 24 of an
 * odd count take one full and one half-masked register.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "conv2d.h"

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

#define W_NV 3                 /* registers of 16 pixels per block */
#define W_BLOCK (16 * W_NV)
#define W_OCB 8                /* output channels per block */

/* NOC output channels from oc0 at NV registers of pixels from p; the last
 * register holds only the pixels of `last` (a lane mask). */
AVX512 INLINE void block16(const grid_args *a, int oc0, const int NOC, int p, const int NV,
                           __mmask16 last)
{
    __m512 acc[W_OCB][W_NV];
#pragma GCC unroll 8
    for (int k = 0; k < NOC; k++) {
        __m512 v0 = _mm512_set1_ps(a->init ? a->init[oc0 + k] : 0.0f);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[k][v] = v0;
    }
    const float *wb = a->w + (size_t)oc0 * a->w_oc;
    for (int ic = 0; ic < a->ics; ic++) {
        const float *ip = a->in + (size_t)ic * a->ips + p;
        const float *wp = wb + (size_t)ic * a->w_ic;
        for (int t = 0; t < a->taps; t++) {
            const float *q = ip + a->off[t];
            __m512 x[W_NV];
            /* Each (unaligned) input vector loaded once into a register and
             * shared by the NOC channels. */
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                x[v] = _mm512_loadu_ps(q + 16 * v);
            x[NV - 1] = _mm512_maskz_loadu_ps(last, q + 16 * (NV - 1));
#pragma GCC unroll 8
            for (int k = 0; k < NOC; k++) {
                __m512 b = _mm512_set1_ps(wp[(size_t)k * a->w_oc + t]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[k][v] = _mm512_fmadd_ps(x[v], b, acc[k][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < NOC; k++) {
        float *dst = a->og + (size_t)(oc0 + k) * a->ogs + p;
#pragma GCC unroll 4
        for (int v = 0; v < NV - 1; v++)
            _mm512_storeu_ps(dst + 16 * v, acc[k][v]);
        _mm512_mask_storeu_ps(dst + 16 * (NV - 1), last, acc[k][NV - 1]);
    }
}

/* All pixels of NOC channels from oc0: blocks of 48, then 24 when left. */
AVX512 INLINE void channels16(const grid_args *a, int oc0, const int NOC)
{
    int p = 0;
    for (; p + W_BLOCK <= a->np; p += W_BLOCK)
        block16(a, oc0, NOC, p, W_NV, (__mmask16)0xffff);
    if (p < a->np)   /* np is a multiple of GRID_BLOCK (24) */
        block16(a, oc0, NOC, p, 2, (__mmask16)0x00ff);
}

AVX512 void detrun_cpu_conv2d_grid_corr_avx512(const grid_args *a)
{
    for (int oc0 = 0; oc0 < a->ocs; oc0 += W_OCB) {
        int noc = a->ocs - oc0 < W_OCB ? a->ocs - oc0 : W_OCB;
        switch (noc) {
        case 1: channels16(a, oc0, 1); break;
        case 2: channels16(a, oc0, 2); break;
        case 3: channels16(a, oc0, 3); break;
        case 4: channels16(a, oc0, 4); break;
        case 5: channels16(a, oc0, 5); break;
        case 6: channels16(a, oc0, 6); break;
        case 7: channels16(a, oc0, 7); break;
        default: channels16(a, oc0, 8); break;
        }
    }
}

/* A copy (ReLU'd: max with +0 gives +0 for NaN and -0, as `v > 0 ? v : +0`):
 * rows of 16, then the row's rest through a mask. */
AVX512 void detrun_cpu_conv2d_grid_store_avx512(float *out, const float *og, size_t ogs, int ocs,
                                                int oh, int ow, int gw, int relu)
{
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 rest = (__mmask16)((1u << (ow % 16)) - 1);
    for (int oc = 0; oc < ocs; oc++) {
        for (int y = 0; y < oh; y++) {
            const float *src = og + (size_t)oc * ogs + (size_t)y * gw;
            float *dst = out + ((size_t)oc * oh + y) * ow;
            int x = 0;
            for (; x + 16 <= ow; x += 16) {
                __m512 v = _mm512_loadu_ps(src + x);
                _mm512_storeu_ps(dst + x, relu ? _mm512_max_ps(v, zero) : v);
            }
            if (x < ow) {
                __m512 v = _mm512_maskz_loadu_ps(rest, src + x);
                _mm512_mask_storeu_ps(dst + x, rest, relu ? _mm512_max_ps(v, zero) : v);
            }
        }
    }
}

#endif
