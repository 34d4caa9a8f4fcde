/*
 * maxpool_avx512.c - max pooling's AVX-512F paths for 2x2 windows at stride 2
 * (docs/determinism.md, "maxpool forward and backward" and "CPU", R5).
 *
 * Forward: 16 outputs of a row at a time (rows of at most 8 outputs: two
 * rows). The window's two input rows are loaded as 32 columns each (masked,
 * so a row's end reads nothing beyond it) and split into even and odd
 * columns by one two-source permute each: the four window elements in
 * row-major order, compared in that order with `v > best` (an ordered
 * compare: a NaN never replaces best, a NaN best is never replaced), exactly
 * as the plain loop in maxpool.c; the choice is kept as its window position,
 * one byte (maxpool.h). No branch depends on the data.
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

/* 16 floats by two 256-bit stores: where a store may cross a cache line,
 * measurably faster than one 512-bit store streaming to memory. */
AVX512 static inline void store16(float *d, __m512 x)
{
    _mm256_storeu_ps(d, _mm512_castps512_ps256(x));
    _mm256_storeu_ps(d + 8, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
}

/* Load and store masks of a run of 16 outputs (act of them real): the
 * input columns of its window rows (lo: the first 16, hi: the next 16), its
 * outputs, and in the backward the input columns it writes (cols: 2 * act,
 * or up to the row's end for a row's last run, at most 32). The same for
 * every row, so made once per call. */
typedef struct run_masks {
    __mmask16 lo, hi, out, slo, shi;
} run_masks;

static run_masks masks_of(int act, int cols)
{
    run_masks m = { lanes(2 * act), lanes(2 * act - 16), lanes(act), lanes(cols),
                    lanes(cols - 16) };
    return m;
}

/* The even columns of two sources (0, 2, ..., 30 of their 32): with odd =
 * even + 1, one two-source permute each splits a window row pair. */
AVX512 static inline __m512i even_lanes(void)
{
    return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}

/* The windows' maximum, each lane one window whose elements in row-major
 * order are a, b, c, d: `v > best` in that order (ordered compares, as the
 * plain loop); code gets the chosen position, 0 to 3. */
AVX512 static inline __m512 window_max(__m512 a, __m512 b, __m512 c, __m512 d, __m512i *code)
{
    __m512 best = a;
    __m512i k = _mm512_setzero_si512();
    __mmask16 gt = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, b);
    k = _mm512_mask_mov_epi32(k, gt, _mm512_set1_epi32(1));
    gt = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, c);
    k = _mm512_mask_mov_epi32(k, gt, _mm512_set1_epi32(2));
    gt = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, d);
    *code = _mm512_mask_mov_epi32(k, gt, _mm512_set1_epi32(3));
    return best;
}

/* 16 outputs of row oy from column ox; their 16 code bytes (0 past the
 * outputs). */
AVX512 static inline void win_2x2(float *out, uint8_t *codes, const float *in, int w, int oy,
                                  int ox, const run_masks *k)
{
    const __m512i even = even_lanes(), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const float *r0 = in + (size_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
    __m512 l0 = _mm512_maskz_loadu_ps(k->lo, r0), l1 = _mm512_maskz_loadu_ps(k->lo, r1);
    __m512 h0 = _mm512_setzero_ps(), h1 = h0;
    if (k->hi) {   /* the same for every row: predicted */
        h0 = _mm512_maskz_loadu_ps(k->hi, r0 + 16);
        h1 = _mm512_maskz_loadu_ps(k->hi, r1 + 16);
    }
    __m512 a = _mm512_permutex2var_ps(l0, even, h0), b = _mm512_permutex2var_ps(l0, odd, h0);
    __m512 c = _mm512_permutex2var_ps(l1, even, h1), d = _mm512_permutex2var_ps(l1, odd, h1);
    __m512i code;
    __m512 best = window_max(a, b, c, d, &code);
    _mm512_mask_storeu_ps(out, k->out, best);
    _mm_storeu_si128((__m128i *)codes, _mm512_cvtepi32_epi8(code));
}

/* Narrow rows (ow <= 8, w <= 16): two output rows oy, oy + 1 in one
 * register, lanes 0-7 and 8-15, from the four input rows under them (the
 * same permutes, the second source being the row two below). pack puts
 * the two rows' outputs side by side; k: how many floats of them to store. */
AVX512 static inline void win_2x2_pair(float *out, uint8_t *codes, int code_row, const float *in,
                                       int w, int oy, __mmask16 kin, __m512i pack, __mmask16 k)
{
    const __m512i even = even_lanes(), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const float *r0 = in + (size_t)(2 * oy) * w;
    __m512 l0 = _mm512_maskz_loadu_ps(kin, r0), l1 = _mm512_maskz_loadu_ps(kin, r0 + w);
    __m512 l2 = _mm512_maskz_loadu_ps(kin, r0 + 2 * w), l3 = _mm512_maskz_loadu_ps(kin, r0 + 3 * w);
    __m512 a = _mm512_permutex2var_ps(l0, even, l2), b = _mm512_permutex2var_ps(l0, odd, l2);
    __m512 c = _mm512_permutex2var_ps(l1, even, l3), d = _mm512_permutex2var_ps(l1, odd, l3);
    __m512i code;
    __m512 best = window_max(a, b, c, d, &code);
    _mm512_mask_storeu_ps(out, k, _mm512_permutexvar_ps(pack, best));
    __m128i c8 = _mm512_cvtepi32_epi8(code);
    _mm_storel_epi64((__m128i *)codes, c8);
    _mm_storel_epi64((__m128i *)(codes + code_row), _mm_unpackhi_epi64(c8, c8));
}

AVX512 void detrun_cpu_maxpool_2x2_avx512(float *out, uint8_t *codes, const float *in,
                                          int planes, int h, int w, int oh, int ow)
{
    int full = ow / 16 * 16;   /* outputs in whole runs of 16 */
    int row = DETRUN_MAXPOOL_CODE_ROW(ow);
    run_masks kf = masks_of(16, 32), kr = masks_of(ow - full, 0), ks = kr;
    /* One run a row: its store may run on over the next rows' start, which
     * is stored later (whole stores are cheaper than split masked ones),
     * but not past the planes' end, where another task's outputs begin. */
    if (full == 0)
        ks.out = 0xffff;
    size_t end = (size_t)planes * oh * ow;
    int pairs = ow <= 8 && w <= 16;
    int packi[16];
    for (int i = 0; i < 16; i++)
        packi[i] = i < ow ? i : i < 2 * ow ? 8 + i - ow : 0;
    __m512i pack = _mm512_loadu_si512(packi);
    for (int p = 0; p < planes; p++) {
        const float *pin = in + (size_t)p * h * w;
        int oy = 0;
        for (; pairs && oy + 1 < oh; oy += 2) {
            size_t o = ((size_t)p * oh + oy) * ow;
            win_2x2_pair(out + o, codes + ((size_t)p * oh + oy) * row, row, pin, w, oy, kr.lo,
                         pack, o + 16 <= end ? 0xffff : lanes(2 * ow));
        }
        for (; oy < oh; oy++) {
            size_t o = ((size_t)p * oh + oy) * ow;
            uint8_t *cr = codes + ((size_t)p * oh + oy) * row;
            for (int ox = 0; ox < full; ox += 16)
                win_2x2(out + o + ox, cr + ox, pin, w, oy, ox, &kf);
            if (full < ow)
                win_2x2(out + o + full, cr + full, pin, w, oy, full, o + 16 <= end ? &ks : &kr);
        }
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

/* The two input rows under 16 outputs of row oy from column ox: k->slo and
 * k->shi say which of their next 32 columns to write, those past the run's
 * windows as +0. */
AVX512 static inline void back_2x2(float *din, const float *dout, const uint8_t *codes,
                                   const float *pooled, int w, int oy, int ox,
                                   const run_masks *km)
{
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_add_epi32(ilo, _mm512_set1_epi32(8));
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 k = km->out;
    if (pooled != NULL)
        k = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, pooled), zero, _CMP_GT_OQ);
    __m512 g = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(k, dout));
    __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)codes));
    __m512 v00 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(k, a, _mm512_setzero_si512()), g);
    __m512 v01 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(k, a, _mm512_set1_epi32(1)), g);
    __m512 v10 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(k, a, _mm512_set1_epi32(2)), g);
    __m512 v11 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(k, a, _mm512_set1_epi32(3)), g);
    float *d0 = din + (size_t)(2 * oy) * w + 2 * ox, *d1 = d0 + w;
    /* In column order, the first row before the second (see the caller). */
    if (km->slo == 0xffff && km->shi == 0xffff) {
        store16(d0, _mm512_permutex2var_ps(v00, ilo, v01));
        store16(d0 + 16, _mm512_permutex2var_ps(v00, ihi, v01));
        store16(d1, _mm512_permutex2var_ps(v10, ilo, v11));
        store16(d1 + 16, _mm512_permutex2var_ps(v10, ihi, v11));
        return;
    }
    _mm512_mask_storeu_ps(d0, km->slo, _mm512_permutex2var_ps(v00, ilo, v01));
    if (km->shi)   /* the same for every row: predicted */
        _mm512_mask_storeu_ps(d0 + 16, km->shi, _mm512_permutex2var_ps(v00, ihi, v01));
    _mm512_mask_storeu_ps(d1, km->slo, _mm512_permutex2var_ps(v10, ilo, v11));
    if (km->shi)
        _mm512_mask_storeu_ps(d1 + 16, km->shi, _mm512_permutex2var_ps(v10, ihi, v11));
}

/* Narrow rows (ow <= 8, w <= 16): output rows oy, oy + 1 in one register,
 * lanes 0-7 and 8-15 (expanded from their 2 * ow side by side floats by
 * kin2), giving the four input rows under them, written in order; k: how
 * many columns of each to store. */
AVX512 static inline void back_2x2_pair(float *din, const float *dout, const uint8_t *codes,
                                        int code_row, const float *pooled, int w, int oy,
                                        __mmask16 kin2, __mmask16 k)
{
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_add_epi32(ilo, _mm512_set1_epi32(8));
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 m = kin2;
    if (pooled != NULL)
        m = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_expandloadu_ps(kin2, pooled), zero,
                                    _CMP_GT_OQ);
    __m512 g = _mm512_maskz_add_ps(m, zero, _mm512_maskz_expandloadu_ps(kin2, dout));
    __m128i c8 = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)codes),
                                    _mm_loadl_epi64((const __m128i *)(codes + code_row)));
    __m512i a = _mm512_cvtepu8_epi32(c8);
    __m512 v00 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(m, a, _mm512_setzero_si512()), g);
    __m512 v01 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(m, a, _mm512_set1_epi32(1)), g);
    __m512 v10 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(m, a, _mm512_set1_epi32(2)), g);
    __m512 v11 = _mm512_maskz_mov_ps(_mm512_mask_cmpeq_epi32_mask(m, a, _mm512_set1_epi32(3)), g);
    float *d0 = din + (size_t)(2 * oy) * w;
    _mm512_mask_storeu_ps(d0, k, _mm512_permutex2var_ps(v00, ilo, v01));
    _mm512_mask_storeu_ps(d0 + w, k, _mm512_permutex2var_ps(v10, ilo, v11));
    _mm512_mask_storeu_ps(d0 + 2 * w, k, _mm512_permutex2var_ps(v00, ihi, v01));
    _mm512_mask_storeu_ps(d0 + 3 * w, k, _mm512_permutex2var_ps(v10, ihi, v11));
}

AVX512 void detrun_cpu_maxpool_back_2x2_avx512(float *din, const float *dout, const uint8_t *codes,
                                               const float *pooled, int planes, int h, int w,
                                               int oh, int ow)
{
    /* Whole runs of 16, then the rest; the last run also writes the
     * columns after the last window (up to 32 columns, a wider rest below). */
    int full = ow % 16 == 0 ? ow - 16 : ow / 16 * 16;
    int cols = w - 2 * full;
    run_masks kf = masks_of(16, 32), kr = masks_of(ow - full, cols < 32 ? cols : 32), ks = kr;
    /* One run a row: its stores may run on over the next input rows' start
     * (w >= 8: into the next row at most), which is stored later (whole
     * stores are cheaper than split masked ones), but not past the planes'
     * end, where another task's inputs begin. */
    if (full == 0) {
        ks.slo = 0xffff;
        ks.shi = kr.shi ? 0xffff : 0;
    }
    size_t end = (size_t)planes * h * w;
    int reach = kr.shi ? 32 : 16;
    int row = DETRUN_MAXPOOL_CODE_ROW(ow), pairs = ow <= 8 && w <= 16;
    __mmask16 kin2 = (__mmask16)(lanes(ow) | lanes(ow) << 8);
    for (int p = 0; p < planes; p++) {
        float *pdin = din + (size_t)p * h * w;
        int oy = 0;
        for (; pairs && oy + 1 < oh; oy += 2) {
            size_t o = ((size_t)p * oh + oy) * ow;
            size_t last = (size_t)p * h * w + (size_t)(2 * oy + 3) * w + 16;
            back_2x2_pair(pdin, dout + o, codes + ((size_t)p * oh + oy) * row, row,
                          pooled != NULL ? pooled + o : NULL, w, oy, kin2,
                          last <= end ? 0xffff : kr.slo);
        }
        for (; oy < oh; oy++) {
            size_t o = ((size_t)p * oh + oy) * ow;
            const float *po = pooled != NULL ? pooled + o : NULL;
            const uint8_t *cr = codes + ((size_t)p * oh + oy) * row;
            for (int ox = 0; ox < full; ox += 16)
                back_2x2(pdin, dout + o + ox, cr + ox, po != NULL ? po + ox : NULL, w, oy, ox,
                         &kf);
            size_t last = (size_t)p * h * w + (size_t)(2 * oy + 1) * w + reach;
            back_2x2(pdin, dout + o + full, cr + full, po != NULL ? po + full : NULL, w, oy, full,
                     last <= end ? &ks : &kr);
            if (cols > 32) {
                zero_run(pdin + (size_t)(2 * oy) * w + 2 * full + 32, (size_t)(cols - 32));
                zero_run(pdin + (size_t)(2 * oy + 1) * w + 2 * full + 32, (size_t)(cols - 32));
            }
        }
        zero_run(pdin + (size_t)(2 * oh) * w, (size_t)(h - 2 * oh) * w);
    }
}

#endif
