/*
 * avgpool.c - average pooling, forward and backward (docs/determinism.md,
 * "avgpool forward and backward"). Plain C: each output is one short sum,
 * and threads split the batch, so every value is computed by the same
 * operations in the same order whatever the thread count.
 */
#include "cpu.h"

typedef struct avg_job {
    float *out;
    const float *in;
    float *din;
    const float *dout;
    const detrun_pool_dims *d;
} avg_job;

/* 1/(size*size), rounded once to float: the factor of every output and of
 * every gradient. */
static float inv_area(const detrun_pool_dims *d)
{
    return 1.0f / (float)(d->size * d->size);
}

/* One (n, c) plane. Windows lie inside the input (oh, ow are floored), so
 * each sums size*size values: from 0, in row-major window order, then
 * times inv. */
static void forward_plane(const avg_job *j, int plane)
{
    const detrun_pool_dims *d = j->d;
    const float *in = j->in + (size_t)plane * d->h * d->w;
    float *out = j->out + (size_t)plane * d->oh * d->ow;
    float inv = inv_area(d);
    for (int oy = 0; oy < d->oh; oy++) {
        for (int ox = 0; ox < d->ow; ox++) {
            const float *win = in + (size_t)oy * d->stride * d->w + (size_t)ox * d->stride;
            float s = 0.0f;
            for (int ky = 0; ky < d->size; ky++)
                for (int kx = 0; kx < d->size; kx++)
                    s = s + win[(size_t)ky * d->w + kx];
            out[(size_t)oy * d->ow + ox] = s * inv;
        }
    }
}

/* din is cleared, then each output's share g = dout * inv is added to its
 * window's inputs, outputs in row-major order: an input under several
 * windows (stride < size) sums its shares in that order, from 0. */
static void backward_plane(const avg_job *j, int plane)
{
    const detrun_pool_dims *d = j->d;
    float *din = j->din + (size_t)plane * d->h * d->w;
    const float *dout = j->dout + (size_t)plane * d->oh * d->ow;
    float inv = inv_area(d);
    for (size_t i = 0; i < (size_t)d->h * d->w; i++)
        din[i] = 0.0f;
    for (int oy = 0; oy < d->oh; oy++) {
        for (int ox = 0; ox < d->ow; ox++) {
            float g = dout[(size_t)oy * d->ow + ox] * inv;
            float *win = din + (size_t)oy * d->stride * d->w + (size_t)ox * d->stride;
            for (int ky = 0; ky < d->size; ky++)
                for (int kx = 0; kx < d->size; kx++)
                    win[(size_t)ky * d->w + kx] = win[(size_t)ky * d->w + kx] + g;
        }
    }
}

/* One task per sample: its planes. */
static void forward_task(void *arg, int n, int thread)
{
    (void)thread;
    const avg_job *j = arg;
    for (int c = 0; c < j->d->c; c++)
        forward_plane(j, n * j->d->c + c);
}

static void backward_task(void *arg, int n, int thread)
{
    (void)thread;
    const avg_job *j = arg;
    for (int c = 0; c < j->d->c; c++)
        backward_plane(j, n * j->d->c + c);
}

void detrun_cpu_avgpool_forward(detrun_backend *b, float *out, const float *in,
                                const detrun_pool_dims *d)
{
    avg_job j = { out, in, NULL, NULL, d };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, forward_task, &j);
}

void detrun_cpu_avgpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const detrun_pool_dims *d)
{
    avg_job j = { NULL, NULL, din, dout, d };
    detrun_pool_run(DETRUN_CPU(b)->pool, d->n, backward_task, &j);
}
