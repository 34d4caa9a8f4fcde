/*
 * maxpool_avx512.c - max pooling's AVX-512F paths for 2x2 windows at stride 2
 * (docs/determinism.md, "maxpool forward and backward" and "CPU", R5).
 *
 * Forward: 16 outputs of a row at a time. The window's two input rows are
 * loaded as 32 columns each (masked, so a row's end reads nothing beyond it)
 * and split into even and odd columns by one two-source permute each: the
 * four window elements in row-major order, compared in that order with
 * `v > best` (an ordered compare: a NaN never replaces best, a NaN best is
 * never replaced), exactly as the plain loop in maxpool.c. No branch depends
 * on the data.
 *
 * Backward: each input of a 2x2 stride-2 window gets at most one term, so
 * din = (argmax here) ? +0 + dout : +0; the four candidates' gradients are
 * interleaved back into the two input rows by permutes and written once,
 * the columns and rows outside every window as +0 in the same pass (no
 * separate clearing). With the pooled output given, the ReLU mask of the
 * layer before (pass.c) is applied first: `pooled > 0 ? +0 + dout : +0`.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "maxpool.h"

#define AVX512 __attribute__((target("avx512f,avx2,fma")))

/* The first n of 16 lanes (n <= 0: none). */
static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* 16 outputs of row oy from column ox (act <= 16 of them real). */
AVX512 static inline void win_2x2(float *out, int32_t *am, const float *in, int w, int oy,
                                  int ox, int act)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const float *r0 = in + (size_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
    __mmask16 klo = lanes(2 * act), khi = lanes(2 * act - 16);
    __m512 l0 = _mm512_maskz_loadu_ps(klo, r0), h0 = _mm512_maskz_loadu_ps(khi, r0 + 16);
    __m512 l1 = _mm512_maskz_loadu_ps(klo, r1), h1 = _mm512_maskz_loadu_ps(khi, r1 + 16);
    __m512 a = _mm512_permutex2var_ps(l0, even, h0), b = _mm512_permutex2var_ps(l0, odd, h0);
    __m512 c = _mm512_permutex2var_ps(l1, even, h1), d = _mm512_permutex2var_ps(l1, odd, h1);
    __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), even);
    __m512 best = a;
    __m512i idx = ia;
    __mmask16 gt = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, b);
    idx = _mm512_mask_add_epi32(idx, gt, ia, _mm512_set1_epi32(1));
    gt = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, c);
    idx = _mm512_mask_add_epi32(idx, gt, ia, _mm512_set1_epi32(w));
    gt = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, d);
    idx = _mm512_mask_add_epi32(idx, gt, ia, _mm512_set1_epi32(w + 1));
    __mmask16 ko = lanes(act);
    _mm512_mask_storeu_ps(out, ko, best);
    _mm512_mask_storeu_epi32(am, ko, idx);
}

AVX512 void detrun_cpu_maxpool_2x2_avx512(float *out, int32_t *am, const float *in, int planes,
                                          int h, int w, int oh, int ow)
{
    for (int p = 0; p < planes; p++) {
        const float *pin = in + (size_t)p * h * w;
        float *pout = out + (size_t)p * oh * ow;
        int32_t *pam = am + (size_t)p * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox += 16)
                win_2x2(pout + (size_t)oy * ow + ox, pam + (size_t)oy * ow + ox, pin, w, oy, ox,
                        ow - ox < 16 ? ow - ox : 16);
    }
}

/* +0 over n floats. */
AVX512 static inline void zero_run(float *d, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_setzero_ps());
    _mm512_mask_storeu_ps(d + i, lanes((int)(n - i)), _mm512_setzero_ps());
}

/* The two input rows under 16 outputs of row oy from column ox (act real).
 * cols: how many input columns from 2 * ox to write (2 * act, or up to the
 * row's end for the last outputs; at most 32): the ones past 2 * act are +0. */
AVX512 static inline void back_2x2(float *din, const float *dout, const int32_t *am,
                                   const float *pooled, int w, int oy, int ox, int act, int cols)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_add_epi32(ilo, _mm512_set1_epi32(8));
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 k = lanes(act);
    if (pooled != NULL)
        k = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, pooled), zero, _CMP_GT_OQ);
    __m512 g = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(k, dout));
    __m512i a = _mm512_maskz_loadu_epi32(k, am);
    __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), even);
    __m512 v00 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(k, a, ia), g);
    __m512 v01 = _mm512_maskz_mov_ps(
        _mm512_mask_cmpeq_epi32_mask(k, a, _mm512_add_epi32(ia, _mm512_set1_epi32(1))), g);
    __m512 v10 = _mm512_maskz_mov_ps(
        _mm512_mask_cmpeq_epi32_mask(k, a, _mm512_add_epi32(ia, _mm512_set1_epi32(w))), g);
    __m512 v11 = _mm512_maskz_mov_ps(
        _mm512_mask_cmpeq_epi32_mask(k, a, _mm512_add_epi32(ia, _mm512_set1_epi32(w + 1))), g);
    float *d0 = din + (size_t)(2 * oy) * w + 2 * ox, *d1 = d0 + w;
    __mmask16 klo = lanes(cols), khi = lanes(cols - 16);
    _mm512_mask_storeu_ps(d0, klo, _mm512_permutex2var_ps(v00, ilo, v01));
    _mm512_mask_storeu_ps(d0 + 16, khi, _mm512_permutex2var_ps(v00, ihi, v01));
    _mm512_mask_storeu_ps(d1, klo, _mm512_permutex2var_ps(v10, ilo, v11));
    _mm512_mask_storeu_ps(d1 + 16, khi, _mm512_permutex2var_ps(v10, ihi, v11));
}

AVX512 void detrun_cpu_maxpool_back_2x2_avx512(float *din, const float *dout, const int32_t *am,
                                               const float *pooled, int planes, int h, int w,
                                               int oh, int ow)
{
    for (int p = 0; p < planes; p++) {
        float *pdin = din + (size_t)p * h * w;
        size_t po = (size_t)p * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            size_t o = po + (size_t)oy * ow;
            for (int ox = 0; ox < ow; ox += 16) {
                int act = ow - ox < 16 ? ow - ox : 16;
                int cols = ox + act == ow ? w - 2 * ox : 2 * act;
                back_2x2(pdin, dout + o + ox, am + o + ox, pooled ? pooled + o + ox : NULL, w,
                         oy, ox, act, cols < 32 ? cols : 32);
                if (cols > 32) {   /* a wide rest after the last window */
                    zero_run(pdin + (size_t)(2 * oy) * w + 2 * ox + 32, (size_t)(cols - 32));
                    zero_run(pdin + (size_t)(2 * oy + 1) * w + 2 * ox + 32, (size_t)(cols - 32));
                }
            }
        }
        zero_run(pdin + (size_t)(2 * oh) * w, (size_t)(h - 2 * oh) * w);
    }
}

#endif
