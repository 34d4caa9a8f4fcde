/*
 * maxpool_avx2.c - max pooling's AVX2 paths for 2x2 windows at stride 2
 * (docs/determinism.md, "maxpool forward and backward" and "CPU", R5).
 *
 * Forward: 8 outputs of a row at a time compare the four window elements in
 * row-major order with `v > best` (an ordered compare: a NaN never replaces
 * best, a NaN best is never replaced), as the plain loop in maxpool.c does.
 * The even and odd columns are split within 128-bit halves only, which
 * leaves the outputs in the order 0 1 4 5 2 3 6 7; the comparisons run in
 * that order (each lane is one output's chain) and one cross-half permute
 * puts the best values and their indices back.
 *
 * Backward: each input gets at most one term, so din = (argmax here) ?
 * +0 + dout : +0, written whole rows at a time, the inputs outside every
 * window as +0 in the same pass; with the pooled output given, the ReLU
 * mask of the layer before first (`pooled > 0 ? +0 + dout : +0`).
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "maxpool.h"

#define AVX2 __attribute__((target("avx2")))

/* The first n of 8 lanes, as a load/store mask (n <= 0: none). */
AVX2 static inline __m256i lanes8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 8 outputs of row oy from column ox and their 8 code bytes; act < 8 loads
 * and stores only the first act outputs (the other codes are 0). */
AVX2 static inline void win_2x2(float *out, uint8_t *codes, const float *in, int w, int oy,
                                int ox, int act)
{
    const float *r0 = in + (size_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
    __m256 l0, h0, l1, h1;
    if (act == 8) {
        l0 = _mm256_loadu_ps(r0);
        h0 = _mm256_loadu_ps(r0 + 8);
        l1 = _mm256_loadu_ps(r1);
        h1 = _mm256_loadu_ps(r1 + 8);
    } else {
        __m256i ml = lanes8(2 * act), mh = lanes8(2 * act - 8);
        l0 = _mm256_maskload_ps(r0, ml);
        h0 = _mm256_maskload_ps(r0 + 8, mh);
        l1 = _mm256_maskload_ps(r1, ml);
        h1 = _mm256_maskload_ps(r1 + 8, mh);
    }
    /* Outputs 0 1 4 5 | 2 3 6 7. max(v, best) is `v > best ? v : best`: the
     * instruction returns its second operand when either is NaN or both are
     * zeros. */
    __m256 a = _mm256_shuffle_ps(l0, h0, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 b = _mm256_shuffle_ps(l0, h0, _MM_SHUFFLE(3, 1, 3, 1));
    __m256 c = _mm256_shuffle_ps(l1, h1, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 d = _mm256_shuffle_ps(l1, h1, _MM_SHUFFLE(3, 1, 3, 1));
    __m256 best = a, code = _mm256_setzero_ps(), gt;
    gt = _mm256_cmp_ps(b, best, _CMP_GT_OQ);
    best = _mm256_max_ps(b, best);
    code = _mm256_blendv_ps(code, _mm256_castsi256_ps(_mm256_set1_epi32(1)), gt);
    gt = _mm256_cmp_ps(c, best, _CMP_GT_OQ);
    best = _mm256_max_ps(c, best);
    code = _mm256_blendv_ps(code, _mm256_castsi256_ps(_mm256_set1_epi32(2)), gt);
    gt = _mm256_cmp_ps(d, best, _CMP_GT_OQ);
    best = _mm256_max_ps(d, best);
    code = _mm256_blendv_ps(code, _mm256_castsi256_ps(_mm256_set1_epi32(3)), gt);
    best = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(best), 0xd8));
    /* Codes to bytes: each half packs to 0 1 4 5 | 2 3 6 7, and interleaving
     * the halves' byte pairs gives 0 .. 7. */
    __m256i c16 = _mm256_packs_epi32(_mm256_castps_si256(code), _mm256_castps_si256(code));
    __m256i c8 = _mm256_packus_epi16(c16, c16);
    __m128i bytes = _mm_unpacklo_epi16(_mm256_castsi256_si128(c8), _mm256_extracti128_si256(c8, 1));
    _mm_storel_epi64((__m128i *)codes, bytes);
    if (act == 8)
        _mm256_storeu_ps(out, best);
    else
        _mm256_maskstore_ps(out, lanes8(act), best);
}

/* A row's last 8 outputs may overlap the ones before: both store the same
 * values. */
AVX2 void detrun_cpu_maxpool_2x2_avx2(float *out, uint8_t *codes, const float *in, int planes,
                                      int h, int w, int oh, int ow)
{
    for (int p = 0; p < planes; p++) {
        const float *pin = in + (size_t)p * h * w;
        for (int oy = 0; oy < oh; oy++) {
            size_t o = ((size_t)p * oh + oy) * ow;
            uint8_t *cr = codes + ((size_t)p * oh + oy) * DETRUN_MAXPOOL_CODE_ROW(ow);
            if (ow < 8) {
                win_2x2(out + o, cr, pin, w, oy, 0, ow);
                continue;
            }
            for (int ox = 0;; ox += 8) {
                if (ox > ow - 8)
                    ox = ow - 8;
                win_2x2(out + o + ox, cr + ox, pin, w, oy, ox, 8);
                if (ox == ow - 8)
                    break;
            }
        }
    }
}

/* The two input rows under 8 outputs of row oy from column ox (act < 8:
 * only the first act of them, their 2 * act columns, or with spill all 16
 * columns from 2 * ox, those past the windows +0: whole stores, cheaper than
 * masked ones, that run on over the next input row, which is written after). */
AVX2 static inline void back_2x2(float *din, const float *dout, const uint8_t *codes,
                                 const float *pooled, int w, int oy, int ox, int act, int spill)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 g, m;
    __m256i mo = lanes8(act);
    __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)codes));
    if (act == 8) {
        g = _mm256_loadu_ps(dout);
        m = pooled != NULL ? _mm256_loadu_ps(pooled) : zero;
    } else {
        g = _mm256_maskload_ps(dout, mo);
        m = pooled != NULL ? _mm256_maskload_ps(pooled, mo) : zero;
    }
    g = _mm256_add_ps(zero, g);
    if (pooled != NULL)
        g = _mm256_and_ps(g, _mm256_cmp_ps(m, zero, _CMP_GT_OQ));
    else if (act < 8)
        g = _mm256_and_ps(g, _mm256_castsi256_ps(mo));
    __m256 v00 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_setzero_si256())));
    __m256 v01 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(1))));
    __m256 v10 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(2))));
    __m256 v11 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(3))));
    __m256 lo0 = _mm256_unpacklo_ps(v00, v01), hi0 = _mm256_unpackhi_ps(v00, v01);
    __m256 lo1 = _mm256_unpacklo_ps(v10, v11), hi1 = _mm256_unpackhi_ps(v10, v11);
    float *d0 = din + (size_t)(2 * oy) * w + 2 * ox, *d1 = d0 + w;
    if (act == 8 || spill) {
        _mm256_storeu_ps(d0, _mm256_permute2f128_ps(lo0, hi0, 0x20));
        _mm256_storeu_ps(d0 + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
        _mm256_storeu_ps(d1, _mm256_permute2f128_ps(lo1, hi1, 0x20));
        _mm256_storeu_ps(d1 + 8, _mm256_permute2f128_ps(lo1, hi1, 0x31));
    } else {
        __m256i ml = lanes8(2 * act), mh = lanes8(2 * act - 8);
        _mm256_maskstore_ps(d0, ml, _mm256_permute2f128_ps(lo0, hi0, 0x20));
        _mm256_maskstore_ps(d0 + 8, mh, _mm256_permute2f128_ps(lo0, hi0, 0x31));
        _mm256_maskstore_ps(d1, ml, _mm256_permute2f128_ps(lo1, hi1, 0x20));
        _mm256_maskstore_ps(d1 + 8, mh, _mm256_permute2f128_ps(lo1, hi1, 0x31));
    }
}

/* A row's last 8 outputs may overlap the ones before: both write the same
 * values. */
AVX2 void detrun_cpu_maxpool_back_2x2_avx2(float *din, const float *dout, const uint8_t *codes,
                                           const float *pooled, int planes, int h, int w, int oh,
                                           int ow)
{
    for (int p = 0; p < planes; p++) {
        float *pdin = din + (size_t)p * h * w;
        for (int oy = 0; oy < oh; oy++) {
            size_t o = ((size_t)p * oh + oy) * ow;
            const float *po = pooled != NULL ? pooled + o : NULL;
            const uint8_t *cr = codes + ((size_t)p * oh + oy) * DETRUN_MAXPOOL_CODE_ROW(ow);
            int done = 2 * ow;   /* columns written */
            if (ow < 8) {
                /* w >= 8 here: 16 columns reach the next row at most. */
                size_t last = (size_t)p * h * w + (size_t)(2 * oy + 1) * w + 16;
                int spill = last <= (size_t)planes * h * w;
                back_2x2(pdin, dout + o, cr, po, w, oy, 0, ow, spill);
                done = spill ? 16 : done;
            } else {
                for (int ox = 0;; ox += 8) {
                    if (ox > ow - 8)
                        ox = ow - 8;
                    back_2x2(pdin, dout + o + ox, cr + ox, po != NULL ? po + ox : NULL, w, oy,
                             ox, 8, 0);
                    if (ox == ow - 8)
                        break;
                }
            }
            float *d0 = pdin + (size_t)(2 * oy) * w, *d1 = d0 + w;
            for (int x = done; x < w; x++)
                d0[x] = d1[x] = 0.0f;
        }
        size_t i = (size_t)(2 * oh) * w;   /* the rows after the last windows */
        for (; i + 8 <= (size_t)h * w; i += 8)
            _mm256_storeu_ps(pdin + i, _mm256_setzero_ps());
        for (; i < (size_t)h * w; i++)
            pdin[i] = 0.0f;
    }
}

#endif
