/*
 * maxpool_avx2.c - max pooling's AVX2 paths for 2x2 windows at stride 2
 * (docs/determinism.md, "maxpool forward and backward" and "CPU", R5): eight
 * outputs at a time compare the four window elements in row-major order with
 * `v > best`, as the plain loop in maxpool.c does.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "maxpool.h"

#define AVX2 __attribute__((target("avx2")))

/* 2x2 windows, stride 2, 8 outputs from column ox of output row oy: even and
 * odd columns of the two input rows are the four window elements in
 * row-major order, compared in that order with `v > best` exactly as the
 * plain loop does. act < 8 loads and stores only the first act outputs. */
AVX2 static inline void win_2x2_avx2(float *out, int32_t *am, const float *in, int w, int oy,
                                     int ox, int act)
{
    const float *r0 = in + (size_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 l0, h0, l1, h1;
    __m256i mo = _mm256_cmpgt_epi32(_mm256_set1_epi32(act), lane);
    if (act == 8) {
        l0 = _mm256_loadu_ps(r0);
        h0 = _mm256_loadu_ps(r0 + 8);
        l1 = _mm256_loadu_ps(r1);
        h1 = _mm256_loadu_ps(r1 + 8);
    } else {
        __m256i ml = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * act), lane);
        __m256i mh = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * act - 8), lane);
        l0 = _mm256_maskload_ps(r0, ml);
        h0 = _mm256_maskload_ps(r0 + 8, mh);
        l1 = _mm256_maskload_ps(r1, ml);
        h1 = _mm256_maskload_ps(r1 + 8, mh);
    }
    __m256 a = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(l0, h0, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8));
    __m256 b = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(l0, h0, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8));
    __m256 c = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(l1, h1, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8));
    __m256 d = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(l1, h1, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8));
    __m256i ia = _mm256_add_epi32(_mm256_set1_epi32(2 * oy * w + 2 * ox),
                                  _mm256_add_epi32(lane, lane));
    __m256 best = a, idx = _mm256_castsi256_ps(ia), gt;
    gt = _mm256_cmp_ps(b, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, b, gt);
    idx = _mm256_blendv_ps(idx, _mm256_castsi256_ps(_mm256_add_epi32(ia, _mm256_set1_epi32(1))), gt);
    gt = _mm256_cmp_ps(c, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, c, gt);
    idx = _mm256_blendv_ps(idx, _mm256_castsi256_ps(_mm256_add_epi32(ia, _mm256_set1_epi32(w))), gt);
    gt = _mm256_cmp_ps(d, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, d, gt);
    idx = _mm256_blendv_ps(idx, _mm256_castsi256_ps(_mm256_add_epi32(ia, _mm256_set1_epi32(w + 1))), gt);
    if (act == 8) {
        _mm256_storeu_ps(out, best);
        _mm256_storeu_si256((__m256i *)am, _mm256_castps_si256(idx));
    } else {
        _mm256_maskstore_ps(out, mo, best);
        _mm256_maskstore_epi32(am, mo, _mm256_castps_si256(idx));
    }
}


/* One plane, 2x2 windows at stride 2 (2 * oh <= h, 2 * ow <= w). A row's
 * last 8 outputs may overlap the ones before: both store the same values. */
AVX2 void detrun_cpu_maxpool_2x2_avx2(float *out, int32_t *am, const float *in, int w, int oh,
                                      int ow)
{
    for (int oy = 0; oy < oh; oy++) {
        float *o = out + (size_t)oy * ow;
        int32_t *a = am + (size_t)oy * ow;
        if (ow < 8) {
            win_2x2_avx2(o, a, in, w, oy, 0, ow);
            continue;
        }
        for (int ox = 0;; ox += 8) {
            if (ox > ow - 8)
                ox = ow - 8;
            win_2x2_avx2(o + ox, a + ox, in, w, oy, ox, 8);
            if (ox == ow - 8)
                break;
        }
    }
}

/* Backward of one plane, 2x2 windows at stride 2, ow >= 8: each input gets
 * at most one term, so din = (argmax is here) ? +0 + dout : +0, written
 * whole rows at a time; inputs outside every window are +0. */
AVX2 void detrun_cpu_maxpool_back_2x2_avx2(float *din, const float *dout, const int32_t *am,
                                           int h, int w, int oh, int ow)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (int oy = 0; oy < oh; oy++) {
        float *d0 = din + (size_t)(2 * oy) * w, *d1 = d0 + w;
        for (int ox = 0;; ox += 8) {
            if (ox > ow - 8)
                ox = ow - 8;
            __m256 g = _mm256_add_ps(zero, _mm256_loadu_ps(dout + (size_t)oy * ow + ox));
            __m256i a = _mm256_loadu_si256((const __m256i *)(am + (size_t)oy * ow + ox));
            __m256i ia = _mm256_add_epi32(_mm256_set1_epi32(2 * oy * w + 2 * ox), lane2);
            __m256 v00 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, ia)));
            __m256 v01 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                                               a, _mm256_add_epi32(ia, _mm256_set1_epi32(1)))));
            __m256 v10 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                                               a, _mm256_add_epi32(ia, _mm256_set1_epi32(w)))));
            __m256 v11 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                                               a, _mm256_add_epi32(ia, _mm256_set1_epi32(w + 1)))));
            __m256 lo0 = _mm256_unpacklo_ps(v00, v01), hi0 = _mm256_unpackhi_ps(v00, v01);
            __m256 lo1 = _mm256_unpacklo_ps(v10, v11), hi1 = _mm256_unpackhi_ps(v10, v11);
            _mm256_storeu_ps(d0 + 2 * ox, _mm256_permute2f128_ps(lo0, hi0, 0x20));
            _mm256_storeu_ps(d0 + 2 * ox + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
            _mm256_storeu_ps(d1 + 2 * ox, _mm256_permute2f128_ps(lo1, hi1, 0x20));
            _mm256_storeu_ps(d1 + 2 * ox + 8, _mm256_permute2f128_ps(lo1, hi1, 0x31));
            if (ox == ow - 8)
                break;
        }
        for (int x = 2 * ow; x < w; x++)
            d0[x] = d1[x] = 0.0f;
    }
    for (int y = 2 * oh; y < h; y++)
        for (int x = 0; x < w; x++)
            din[(size_t)y * w + x] = 0.0f;
}

#endif
