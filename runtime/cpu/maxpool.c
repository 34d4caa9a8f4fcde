/*
 * maxpool.c - max pooling, forward and backward (docs/determinism.md,
 * "maxpool forward and backward", R5: the first maximum in row-major window
 * order wins, so a tie always picks the same input on every target).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu.h"

#if defined(__x86_64__)
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
AVX2 static void plane_2x2_avx2(float *out, int32_t *am, const float *in, int w, int oh, int ow)
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
AVX2 static void back_2x2_avx2(float *din, const float *dout, const int32_t *am, int h, int w,
                               int oh, int ow)
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

typedef struct pool_job {
    float *out;
    int32_t *argmax;
    const float *in;
    float *din;
    const float *dout;
    const int32_t *cargmax;
    const detrun_pool_dims *d;
    int simd;
} pool_job;

/* One (n, c) plane: planes are independent. */
static void forward_plane(const pool_job *j, int plane)
{
    const detrun_pool_dims *d = j->d;
    const float *in = j->in + (size_t)plane * d->h * d->w;
    float *out = j->out + (size_t)plane * d->oh * d->ow;
    int32_t *am = j->argmax + (size_t)plane * d->oh * d->ow;
    if (d->size == 2 && d->stride == 2 && 2 * d->oh <= d->h && 2 * d->ow <= d->w) {
        /* The common case, unrolled and without branches on the data (a
         * branch on random comparisons mispredicts half the time). */
#if defined(__x86_64__)
        if (j->simd) {
            plane_2x2_avx2(out, am, in, d->w, d->oh, d->ow);
            return;
        }
#endif
        for (int oy = 0; oy < d->oh; oy++) {
            for (int ox = 0; ox < d->ow; ox++) {
                int i0 = 2 * oy * d->w + 2 * ox, i2 = i0 + d->w;
                float best = in[i0];
                int bi = i0;
                float v = in[i0 + 1];
                bi = v > best ? i0 + 1 : bi;
                best = v > best ? v : best;
                v = in[i2];
                bi = v > best ? i2 : bi;
                best = v > best ? v : best;
                v = in[i2 + 1];
                bi = v > best ? i2 + 1 : bi;
                best = v > best ? v : best;
                out[oy * d->ow + ox] = best;
                am[oy * d->ow + ox] = bi;
            }
        }
        return;
    }
    for (int oy = 0; oy < d->oh; oy++) {
        for (int ox = 0; ox < d->ow; ox++) {
            int best_i = -1;
            float best = 0.0f;
            for (int ky = 0; ky < d->size; ky++) {
                int iy = oy * d->stride + ky;
                if (iy >= d->h)
                    break;
                for (int kx = 0; kx < d->size; kx++) {
                    int ix = ox * d->stride + kx;
                    if (ix >= d->w)
                        break;
                    int i = iy * d->w + ix;
                    if (best_i < 0 || in[i] > best) {
                        best = in[i];
                        best_i = i;
                    }
                }
            }
            out[oy * d->ow + ox] = best;
            am[oy * d->ow + ox] = best_i;
        }
    }
}

/* One task per sample: its planes. */
static void forward_task(void *arg, int n, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    for (int c = 0; c < j->d->c; c++)
        forward_plane(j, n * j->d->c + c);
}

static void backward_plane(const pool_job *j, int plane)
{
    const detrun_pool_dims *d = j->d;
    float *din = j->din + (size_t)plane * d->h * d->w;
    const float *dout = j->dout + (size_t)plane * d->oh * d->ow;
    const int32_t *am = j->cargmax + (size_t)plane * d->oh * d->ow;
    int hw = d->h * d->w;
#if defined(__x86_64__)
    if (j->simd && d->size == 2 && d->stride == 2 && 2 * d->oh <= d->h && 2 * d->ow <= d->w &&
        d->ow >= 8) {
        back_2x2_avx2(din, dout, am, d->h, d->w, d->oh, d->ow);
        return;
    }
#endif
    for (int i = 0; i < hw; i++)
        din[i] = 0.0f;
    for (int o = 0; o < d->oh * d->ow; o++) {
        /* A corrupt index is dropped rather than written out of bounds. */
        if (am[o] >= 0 && am[o] < hw)
            din[am[o]] = din[am[o]] + dout[o];
    }
}

static void backward_task(void *arg, int n, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    for (int c = 0; c < j->d->c; c++)
        backward_plane(j, n * j->d->c + c);
}

void detrun_cpu_maxpool_forward(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                                const detrun_pool_dims *d)
{
    pool_job j = { out, argmax, in, NULL, NULL, NULL, d, DETRUN_CPU(b)->simd };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, forward_task, &j);
}

void detrun_cpu_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const int32_t *argmax, const detrun_pool_dims *d)
{
    pool_job j = { NULL, NULL, NULL, din, dout, argmax, d, DETRUN_CPU(b)->simd };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, backward_task, &j);
}
