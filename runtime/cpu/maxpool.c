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
/* 2x2 windows, stride 2, 8 outputs at a time: even and odd columns of the
 * two input rows are the four window elements in row-major order, compared
 * in that order with `v > best` exactly as the plain loop does. Returns the
 * first output column left for the plain loop. */
__attribute__((target("avx2"))) static int row_2x2_avx2(float *out, int32_t *am, const float *in,
                                                        int w, int iy, int ow, const float *end)
{
    const float *r0 = in + (size_t)iy * w, *r1 = r0 + w;
    int ox = 0;
    for (; ox + 8 <= ow && r1 + 2 * ox + 16 <= end; ox += 8) {
        __m256 l0 = _mm256_loadu_ps(r0 + 2 * ox), h0 = _mm256_loadu_ps(r0 + 2 * ox + 8);
        __m256 l1 = _mm256_loadu_ps(r1 + 2 * ox), h1 = _mm256_loadu_ps(r1 + 2 * ox + 8);
        __m256 a = _mm256_castpd_ps(_mm256_permute4x64_pd(
            _mm256_castps_pd(_mm256_shuffle_ps(l0, h0, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8));
        __m256 b = _mm256_castpd_ps(_mm256_permute4x64_pd(
            _mm256_castps_pd(_mm256_shuffle_ps(l0, h0, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8));
        __m256 c = _mm256_castpd_ps(_mm256_permute4x64_pd(
            _mm256_castps_pd(_mm256_shuffle_ps(l1, h1, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8));
        __m256 d = _mm256_castpd_ps(_mm256_permute4x64_pd(
            _mm256_castps_pd(_mm256_shuffle_ps(l1, h1, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8));
        __m256i ia = _mm256_add_epi32(_mm256_set1_epi32(iy * w + 2 * ox),
                                      _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
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
        _mm256_storeu_ps(out + ox, best);
        _mm256_storeu_si256((__m256i *)(am + ox), _mm256_castps_si256(idx));
    }
    return ox;
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
    const float *in_end;
} pool_job;

/* One task per (n, c) plane: planes are independent. */
static void forward_task(void *arg, int plane, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const detrun_pool_dims *d = j->d;
    const float *in = j->in + (size_t)plane * d->h * d->w;
    float *out = j->out + (size_t)plane * d->oh * d->ow;
    int32_t *am = j->argmax + (size_t)plane * d->oh * d->ow;
    if (d->size == 2 && d->stride == 2 && 2 * d->oh <= d->h && 2 * d->ow <= d->w) {
        /* The common case, unrolled and without branches on the data (a
         * branch on random comparisons mispredicts half the time). */
        for (int oy = 0; oy < d->oh; oy++) {
            int ox = 0;
#if defined(__x86_64__)
            if (j->simd)
                ox = row_2x2_avx2(out + oy * d->ow, am + oy * d->ow, in, d->w, 2 * oy, d->ow,
                                  j->in_end);
#endif
            for (; ox < d->ow; ox++) {
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

static void backward_task(void *arg, int plane, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const detrun_pool_dims *d = j->d;
    float *din = j->din + (size_t)plane * d->h * d->w;
    const float *dout = j->dout + (size_t)plane * d->oh * d->ow;
    const int32_t *am = j->cargmax + (size_t)plane * d->oh * d->ow;
    int hw = d->h * d->w;
    for (int i = 0; i < hw; i++)
        din[i] = 0.0f;
    for (int o = 0; o < d->oh * d->ow; o++) {
        /* A corrupt index is dropped rather than written out of bounds. */
        if (am[o] >= 0 && am[o] < hw)
            din[am[o]] = din[am[o]] + dout[o];
    }
}

void detrun_cpu_maxpool_forward(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                                const detrun_pool_dims *d)
{
    pool_job j = { out, argmax, in, NULL, NULL, NULL, d, DETRUN_CPU(b)->simd,
                   in + (size_t)d->n * d->c * d->h * d->w };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n * d->c, forward_task, &j);
}

void detrun_cpu_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const int32_t *argmax, const detrun_pool_dims *d)
{
    pool_job j = { NULL, NULL, NULL, din, dout, argmax, d, 0, NULL };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n * d->c, backward_task, &j);
}
