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

/* 2x2 windows at stride 2 inside the input: the vector paths' case. */
static int is_2x2(const detrun_pool_dims *d)
{
    return d->size == 2 && d->stride == 2 && d->oh >= 1 && d->ow >= 1 && 2 * d->oh <= d->h &&
           2 * d->ow <= d->w;
}

/* One plane of 2x2 windows, unrolled and without branches on the data (a
 * branch on random comparisons mispredicts half the time). */
static void forward_2x2_plane(float *out, int32_t *am, const float *in, const detrun_pool_dims *d)
{
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
    if (is_2x2(d)) {
#if defined(__x86_64__)
        if (j->simd >= DETRUN_CPU_SIMD_AVX512) {
            detrun_cpu_maxpool_2x2_avx512(out, am, in, d->c, d->h, d->w, d->oh, d->ow);
            return;
        }
        if (j->simd) {
            detrun_cpu_maxpool_2x2_avx2(out, am, in, d->c, d->h, d->w, d->oh, d->ow);
            return;
        }
#endif
        for (int c = 0; c < d->c; c++)
            forward_2x2_plane(out + c * op, am + c * op, in + c * ip, d);
        return;
    }
    for (int c = 0; c < d->c; c++)
        forward_plane(out + c * op, am + c * op, in + c * ip, d);
}

/* One plane: cleared to +0, then each output's term added at its argmax,
 * after the ReLU before's mask when there is one. */
static void backward_plane(float *din, const float *dout, const int32_t *am,
                           const float *pooled, const detrun_pool_dims *d)
{
    int hw = d->h * d->w;
    for (int i = 0; i < hw; i++)
        din[i] = 0.0f;
    for (int o = 0; o < d->oh * d->ow; o++) {
        float g = pooled == NULL || pooled[o] > 0.0f ? dout[o] : 0.0f;
        /* A corrupt index is dropped rather than written out of bounds. */
        if (am[o] >= 0 && am[o] < hw)
            din[am[o]] = din[am[o]] + g;
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
    const int32_t *am = j->cargmax + (size_t)n * d->c * op;
    const float *pooled = j->pooled != NULL ? j->pooled + (size_t)n * d->c * op : NULL;
#if defined(__x86_64__)
    if (is_2x2(d) && j->simd >= DETRUN_CPU_SIMD_AVX512) {
        detrun_cpu_maxpool_back_2x2_avx512(din, dout, am, pooled, d->c, d->h, d->w, d->oh, d->ow);
        return;
    }
    if (is_2x2(d) && j->simd) {
        detrun_cpu_maxpool_back_2x2_avx2(din, dout, am, pooled, d->c, d->h, d->w, d->oh, d->ow);
        return;
    }
#endif
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
