/*
 * maxpool.c - max pooling, forward and backward (docs/determinism.md,
 * "maxpool forward and backward", R5: the first maximum in row-major window
 * order wins, so a tie always picks the same input on every target). The
 * vector paths for 2x2 windows at stride 2 are in maxpool_avx2.c and
 * maxpool_avx512.c; threads split the batch by sample, so every thread
 * count gives the same bits.
 */
#include "maxpool.h"

typedef struct pool_job {
    float *out;
    int32_t *argmax;
    const float *in;
    float *din;
    const float *dout;
    const int32_t *cargmax;
    const float *pooled;   /* backward: the ReLU before's mask, or NULL */
    const detrun_pool_dims *d;
    int simd;
} pool_job;

int detrun_cpu_maxpool_codes(const detrun_pool_dims *d)
{
    return d->size == 2 && d->stride == 2 && d->oh >= 1 && d->ow >= 4 && 2 * d->oh <= d->h &&
           2 * d->ow <= d->w;
}

/* One plane of 2x2 windows into codes, unrolled and without branches on
 * the data (a branch on random comparisons mispredicts half the time). */
static void forward_2x2_plane(float *out, uint8_t *codes, const float *in,
                              const detrun_pool_dims *d)
{
    int row = DETRUN_MAXPOOL_CODE_ROW(d->ow);
    for (int oy = 0; oy < d->oh; oy++) {
        uint8_t *cr = codes + (size_t)oy * row;
        for (int ox = 0; ox < d->ow; ox++) {
            const float *r0 = in + (size_t)(2 * oy) * d->w + 2 * ox, *r1 = r0 + d->w;
            float best = r0[0];
            int bi = 0;
            float v = r0[1];
            bi = v > best ? 1 : bi;
            best = v > best ? v : best;
            v = r1[0];
            bi = v > best ? 2 : bi;
            best = v > best ? v : best;
            v = r1[1];
            bi = v > best ? 3 : bi;
            best = v > best ? v : best;
            out[oy * d->ow + ox] = best;
            cr[ox] = (uint8_t)bi;
        }
        for (int ox = d->ow; ox < row; ox++)
            cr[ox] = 0;
    }
}

/* One plane, any window and stride: the text as written. */
static void forward_plane(float *out, int32_t *am, const float *in, const detrun_pool_dims *d)
{
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
    const detrun_pool_dims *d = j->d;
    size_t ip = (size_t)d->h * d->w, op = (size_t)d->oh * d->ow;
    const float *in = j->in + (size_t)n * d->c * ip;
    float *out = j->out + (size_t)n * d->c * op;
    int32_t *am = j->argmax + (size_t)n * d->c * op;
    if (detrun_cpu_maxpool_codes(d)) {
        size_t cp = (size_t)d->oh * DETRUN_MAXPOOL_CODE_ROW(d->ow);
        uint8_t *codes = (uint8_t *)j->argmax + (size_t)n * d->c * cp;
#if defined(__x86_64__)
        if (j->simd >= DETRUN_CPU_SIMD_AVX512) {
            detrun_cpu_maxpool_2x2_avx512(out, codes, in, d->c, d->h, d->w, d->oh, d->ow);
            return;
        }
        if (j->simd) {
            detrun_cpu_maxpool_2x2_avx2(out, codes, in, d->c, d->h, d->w, d->oh, d->ow);
            return;
        }
#endif
        for (int c = 0; c < d->c; c++)
            forward_2x2_plane(out + c * op, codes + c * cp, in + c * ip, d);
        return;
    }
    for (int c = 0; c < d->c; c++)
        forward_plane(out + c * op, am + c * op, in + c * ip, d);
}

/* The ReLU before's mask on one output's gradient, as relu_backward has it. */
static float masked(const float *dout, const float *pooled, size_t o)
{
    return pooled == NULL || pooled[o] > 0.0f ? dout[o] : 0.0f;
}

/* One plane of flat indices: cleared to +0, then each output's term added
 * at its argmax. */
static void backward_plane(float *din, const float *dout, const int32_t *am,
                           const float *pooled, const detrun_pool_dims *d)
{
    int hw = d->h * d->w;
    for (int i = 0; i < hw; i++)
        din[i] = 0.0f;
    for (int o = 0; o < d->oh * d->ow; o++) {
        /* A corrupt index is dropped rather than written out of bounds. */
        if (am[o] >= 0 && am[o] < hw)
            din[am[o]] = din[am[o]] + masked(dout, pooled, (size_t)o);
    }
}

/* One plane of codes: the same clearing and additions. */
static void backward_2x2_plane(float *din, const float *dout, const uint8_t *codes,
                               const float *pooled, const detrun_pool_dims *d)
{
    int row = DETRUN_MAXPOOL_CODE_ROW(d->ow);
    for (int i = 0; i < d->h * d->w; i++)
        din[i] = 0.0f;
    for (int oy = 0; oy < d->oh; oy++)
        for (int ox = 0; ox < d->ow; ox++) {
            int code = codes[(size_t)oy * row + ox] & 3;
            size_t i = (size_t)(2 * oy + (code >> 1)) * d->w + 2 * ox + (code & 1);
            din[i] = din[i] + masked(dout, pooled, (size_t)oy * d->ow + ox);
        }
}

static void backward_task(void *arg, int n, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const detrun_pool_dims *d = j->d;
    size_t ip = (size_t)d->h * d->w, op = (size_t)d->oh * d->ow;
    float *din = j->din + (size_t)n * d->c * ip;
    const float *dout = j->dout + (size_t)n * d->c * op;
    const float *pooled = j->pooled != NULL ? j->pooled + (size_t)n * d->c * op : NULL;
    if (detrun_cpu_maxpool_codes(d)) {
        size_t cp = (size_t)d->oh * DETRUN_MAXPOOL_CODE_ROW(d->ow);
        const uint8_t *codes = (const uint8_t *)j->cargmax + (size_t)n * d->c * cp;
#if defined(__x86_64__)
        if (j->simd >= DETRUN_CPU_SIMD_AVX512) {
            detrun_cpu_maxpool_back_2x2_avx512(din, dout, codes, pooled, d->c, d->h, d->w, d->oh,
                                               d->ow);
            return;
        }
        if (j->simd) {
            detrun_cpu_maxpool_back_2x2_avx2(din, dout, codes, pooled, d->c, d->h, d->w, d->oh,
                                             d->ow);
            return;
        }
#endif
        for (int c = 0; c < d->c; c++)
            backward_2x2_plane(din + c * ip, dout + c * op, codes + c * cp,
                               pooled != NULL ? pooled + c * op : NULL, d);
        return;
    }
    const int32_t *am = j->cargmax + (size_t)n * d->c * op;
    for (int c = 0; c < d->c; c++)
        backward_plane(din + c * ip, dout + c * op, am + c * op,
                       pooled != NULL ? pooled + c * op : NULL, d);
}

void detrun_cpu_maxpool_forward(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                                const detrun_pool_dims *d)
{
    pool_job j = { out, argmax, in, NULL, NULL, NULL, NULL, d, DETRUN_CPU(b)->simd };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, forward_task, &j);
}

void detrun_cpu_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const int32_t *argmax, const detrun_pool_dims *d)
{
    pool_job j = { NULL, NULL, NULL, din, dout, argmax, NULL, d, DETRUN_CPU(b)->simd };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, backward_task, &j);
}

void detrun_cpu_maxpool_relu_backward(detrun_backend *b, float *din, const float *dout,
                                      const float *pooled, const int32_t *argmax,
                                      const detrun_pool_dims *d)
{
    pool_job j = { NULL, NULL, NULL, din, dout, argmax, pooled, d, DETRUN_CPU(b)->simd };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, backward_task, &j);
}
