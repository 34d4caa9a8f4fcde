/*
 * conv2d.c - 2-D convolution (cross-correlation, NCHW), the plain reference:
 * forward, input gradient, and weight and bias gradients of one (o, c) pair
 * (docs/determinism.md, "conv2d forward", "conv2d backward, input gradient",
 * "conv2d backward, weight and bias gradients", R1, R2).
 *
 * Each function is the written order, top to bottom, for any stride and
 * padding: an output pixel is one sequential fma chain over (channel, ky,
 * kx); a weight keeps 16 partial sums, lane = output column mod 16, combined
 * by a fixed tree. The vector paths (conv2d_avx2.c, conv2d_wgrad_avx2.c)
 * give these bits; conv2d_dispatch.c chooses among them.
 */
#include <math.h>

#include "conv2d.h"

static void forward_plain(float *out, const float *in, const float *w, const float *bias,
                          const detrun_conv_dims *d, int relu, int n, int o)
{
    const float *wo = w + (size_t)o * d->c * d->kh * d->kw;
    float *po = out + ((size_t)n * d->o + o) * d->oh * d->ow;
    for (int y = 0; y < d->oh; y++) {
        for (int x = 0; x < d->ow; x++) {
            float acc = bias ? bias[o] : 0.0f;
            for (int c = 0; c < d->c; c++) {
                const float *pi = in + ((size_t)n * d->c + c) * d->h * d->w;
                const float *wc = wo + (size_t)c * d->kh * d->kw;
                for (int ky = 0; ky < d->kh; ky++) {
                    int iy = y * d->stride + ky - d->pad_top;
                    for (int kx = 0; kx < d->kw; kx++) {
                        int ix = x * d->stride + kx - d->pad_left;
                        float v = conv_in_range(iy, d->h) && conv_in_range(ix, d->w)
                                      ? pi[(size_t)iy * d->w + ix] : 0.0f;
                        acc = fmaf(v, wc[ky * d->kw + kx], acc);
                    }
                }
            }
            po[y * d->ow + x] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
        }
    }
}

static void din_plain(float *din, const float *dout, const float *w, const detrun_conv_dims *d,
                      int n, int c)
{
    float *pd = din + ((size_t)n * d->c + c) * d->h * d->w;
    int s = d->stride;
    for (int iy = 0; iy < d->h; iy++) {
        for (int ix = 0; ix < d->w; ix++) {
            float acc = 0.0f;
            for (int o = 0; o < d->o; o++) {
                const float *po = dout + ((size_t)n * d->o + o) * d->oh * d->ow;
                const float *wc = w + ((size_t)o * d->c + c) * d->kh * d->kw;
                for (int ky = 0; ky < d->kh; ky++) {
                    int ty = iy + d->pad_top - ky;
                    if (ty % s != 0)
                        continue;   /* no output row reads this input row with this ky */
                    int y = ty / s;
                    for (int kx = 0; kx < d->kw; kx++) {
                        int tx = ix + d->pad_left - kx;
                        if (tx % s != 0)
                            continue;
                        int x = tx / s;
                        float g = conv_in_range(y, d->oh) && conv_in_range(x, d->ow)
                                      ? po[(size_t)y * d->ow + x] : 0.0f;
                        acc = fmaf(g, wc[ky * d->kw + kx], acc);
                    }
                }
            }
            pd[(size_t)iy * d->w + ix] = acc;
        }
    }
}

/* Lanes of one (o, c) pair over samples [n0, n1): dw[t] for each tap, and
 * the bias lanes into *db when db is not NULL. */
void detrun_cpu_conv2d_dw_pair_plain(float *dw, float *db, const float *dout, const float *in,
                                     const detrun_conv_dims *d, int o, int c, int n0, int n1)
{
    int taps = d->kh * d->kw;
    for (int t = 0; t <= taps; t++) {
        if (t == taps && !db)
            break;
        int ky = t < taps ? t / d->kw : 0, kx = t < taps ? t % d->kw : 0;
        float L[LANES] = { 0 };
        for (int n = n0; n < n1; n++) {
            const float *po = dout + ((size_t)n * d->o + o) * d->oh * d->ow;
            const float *pi = in + ((size_t)n * d->c + c) * d->h * d->w;
            for (int y = 0; y < d->oh; y++) {
                int iy = y * d->stride + ky - d->pad_top;
                for (int x = 0; x < d->ow; x++) {
                    float g = po[(size_t)y * d->ow + x];
                    if (t == taps) {
                        L[x % LANES] = L[x % LANES] + g;
                        continue;
                    }
                    int ix = x * d->stride + kx - d->pad_left;
                    float v = conv_in_range(iy, d->h) && conv_in_range(ix, d->w)
                                  ? pi[(size_t)iy * d->w + ix] : 0.0f;
                    L[x % LANES] = fmaf(g, v, L[x % LANES]);
                }
            }
        }
        if (t < taps)
            dw[t] = conv_lanes_tree(L);
        else
            *db = conv_lanes_tree(L);
    }
}

/* Forward: task (sample, pair of output channels). */
void detrun_cpu_conv2d_forward_plain_task(void *arg, int task, int thread)
{
    (void)thread;
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int n = task / j->ocs_tiles, pair = task % j->ocs_tiles;
    for (int o = 2 * pair; o < 2 * pair + 2 && o < d->o; o++)
        forward_plain(j->out, j->in, j->w, j->bias, d, j->relu, n, o);
}

/* Input gradient: task (sample). */
void detrun_cpu_conv2d_din_plain_task(void *arg, int n, int thread)
{
    (void)thread;
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    if (j->per_sample)
        j->per_sample(j, n);
    for (int c = 0; c < d->c; c++)
        din_plain(j->din, j->dout, j->w, d, n, c);
}
