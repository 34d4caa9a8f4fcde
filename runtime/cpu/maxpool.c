/*
 * maxpool.c - max pooling, forward and backward (docs/determinism.md,
 * "maxpool forward and backward", R5: the first maximum in row-major window
 * order wins, so a tie always picks the same input on every target).
 */
#include "cpu.h"

typedef struct pool_job {
    float *out;
    int32_t *argmax;
    const float *in;
    float *din;
    const float *dout;
    const int32_t *cargmax;
    const detrun_pool_dims *d;
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
    pool_job j = { out, argmax, in, NULL, NULL, NULL, d };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n * d->c, forward_task, &j);
}

void detrun_cpu_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const int32_t *argmax, const detrun_pool_dims *d)
{
    pool_job j = { NULL, NULL, NULL, din, dout, argmax, d };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n * d->c, backward_task, &j);
}
