/*
 * maxpool.c - max pooling, forward and backward (docs/determinism.md,
 * "maxpool forward and backward", R5: the first maximum in row-major window
 * order wins, so a tie always picks the same input on every target). The
 * AVX2 paths for 2x2 windows at stride 2 are in maxpool_avx2.c.
 */
#include "maxpool.h"

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
            detrun_cpu_maxpool_2x2_avx2(out, am, in, d->w, d->oh, d->ow);
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
        detrun_cpu_maxpool_back_2x2_avx2(din, dout, am, d->h, d->w, d->oh, d->ow);
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
