/*
 * conv2d_avx512.c - the pixel-grid correlation of conv2d_avx2.c (forward and
 * input gradient, stride 1) with 16 pixels to a register (docs/determinism.md,
 * "CPU", R1, R2).
 *
 * Each grid pixel still runs its own chain over (channel, tap) in the written
 * order from its initial value; only the number of pixels side by side and
 * of output channels sharing one input load (up to 8 by 48 pixels: 24
 * accumulators of the 32 registers) differ from the AVX2 blocks, so the bits
 * are the same. A block's finished pixels go straight into the output rows
 * (ReLU'd when asked): no grid-sized buffer and no pass over it.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "conv2d.h"

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

#define W_NV 3                 /* registers of 16 pixels per block */
#define W_BLOCK (16 * W_NV)
#define W_OCB 8                /* output channels per block */

/* Lanes i of [0, 16) with lo <= i < hi. */
static inline __mmask16 lanes16(int lo, int hi)
{
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
    hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* NOC output channels from oc0 at NV registers of grid pixels from p (row
 * y of the grid). Each register's pixels are stored one output row at a
 * time: grid pixel g of row r is output r * ow + (g - r * gw), so the
 * register is stored at g0 - r * (gw - ow) through the mask of that row's
 * kept columns. */
AVX512 INLINE void block16(const grid_args *a, int oc0, const int NOC, int p, int y,
                           const int NV)
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
            for (int v = 0; v < NV; v++)
                x[v] = _mm512_loadu_ps(q + 16 * v);
#pragma GCC unroll 8
            for (int k = 0; k < NOC; k++) {
                __m512 b = _mm512_set1_ps(wp[(size_t)k * a->w_oc + t]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[k][v] = _mm512_fmadd_ps(x[v], b, acc[k][v]);
            }
        }
    }
    if (a->relu) {
        /* max with +0 gives +0 for NaN and -0, as `v > 0 ? v : +0`. */
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int k = 0; k < NOC; k++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[k][v] = _mm512_max_ps(acc[k][v], zero);
    }
    /* Locals: the vector stores may alias *a as far as the compiler knows. */
    const size_t ops = a->ops;
    const int gw = a->gw, oh = a->oh, ow = a->ow;
    float *base = a->out + (size_t)oc0 * ops;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        int g0 = p + 16 * v;
        while ((y + 1) * gw <= g0)
            y++;
        for (int r = y; r < oh && r * gw < g0 + 16; r++) {
            __mmask16 m = lanes16(r * gw - g0, r * gw + ow - g0);
            if (!m)
                continue;
            /* Lanes outside the row are masked off: lane 0's address may
             * lie outside the plane. */
            float *dst = base + (g0 - (ptrdiff_t)r * (gw - ow));
#pragma GCC unroll 8
            for (int k = 0; k < NOC; k++)
                _mm512_mask_storeu_ps(dst + (size_t)k * ops, m, acc[k][v]);
        }
    }
}

/* All pixels of NOC channels from oc0: blocks of 48, then the 1 to 3
 * registers left (their lanes past np are computed and dropped). */
AVX512 INLINE void channels16(const grid_args *a, int oc0, const int NOC)
{
    int p = 0, y = 0;
    for (; p + W_BLOCK <= a->np; p += W_BLOCK) {
        while ((y + 1) * a->gw <= p)
            y++;
        block16(a, oc0, NOC, p, y, W_NV);
    }
    while ((y + 1) * a->gw <= p)
        y++;
    switch ((a->np - p + 15) / 16) {
    case 0: break;
    case 1: block16(a, oc0, NOC, p, y, 1); break;
    case 2: block16(a, oc0, NOC, p, y, 2); break;
    default: block16(a, oc0, NOC, p, y, 3); break;
    }
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

/* Rows of 16, then the row's rest through a mask. */
AVX512 void detrun_cpu_conv2d_copy_rows_avx512(float *dst, size_t dpitch, const float *src,
                                               size_t spitch, int rows, int cols)
{
    __mmask16 rest = lanes16(0, cols % 16);
    for (int r = 0; r < rows; r++, dst += dpitch, src += spitch) {
        int x = 0;
        for (; x + 16 <= cols; x += 16)
            _mm512_storeu_ps(dst + x, _mm512_loadu_ps(src + x));
        if (x < cols)
            _mm512_mask_storeu_ps(dst + x, rest, _mm512_maskz_loadu_ps(rest, src + x));
    }
}

#endif
