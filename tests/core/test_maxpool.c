/*
 * test_maxpool.c - max pooling against the text of docs/determinism.md, bit
 * for bit, on every kernel path (plain C, AVX2, AVX-512) at 1 to 4 threads.
 *
 * The reference here is the text written out: each window scanned in
 * row-major order, a later element replacing the best only if `v > best`
 * (so a NaN first element stays, a later NaN never wins, +0 and -0 tie),
 * then the backward clearing din to +0 and adding each output's gradient at
 * its choice, after the ReLU mask of the layer before when the pooled value
 * is given (`pooled > 0 ? dout : +0`). Shapes cover the reference network's
 * pools (26 -> 13, 11 -> 5 with the last row and column dropped), rows of
 * several vector runs, widths just above and below the vector paths' limits,
 * and other window sizes and strides. Inputs have many ties, both zeros,
 * NaNs (also first in a window) and infinities; din starts as garbage, so
 * every input must be written.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"

#include "../common.h"

enum { GUARD = 64 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Few distinct values (ties), both zeros, NaNs and infinities. */
static float draw(int special)
{
    uint32_t r = next_u32() % 64;
    if (special && r == 0)
        return NAN;
    if (special && r == 1)
        return -NAN;
    if (special && r == 2)
        return INFINITY;
    if (special && r == 3)
        return -INFINITY;
    if (r < 10)
        return r % 2 ? 0.0f : -0.0f;
    return (float)((int)(r % 7) - 3) * 0.5f;
}

static int same_bits(const void *a, const void *b, size_t floats)
{
    return memcmp(a, b, floats * 4) == 0;
}

/* The forward as the text writes it; am: flat index iy*w + ix. */
static void ref_forward(float *out, int32_t *am, const float *in, const detrun_pool_dims *d)
{
    for (int p = 0; p < d->n * d->c; p++) {
        const float *pl = in + (size_t)p * d->h * d->w;
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                int bi = -1;
                for (int ky = 0; ky < d->size; ky++)
                    for (int kx = 0; kx < d->size; kx++) {
                        int iy = oy * d->stride + ky, ix = ox * d->stride + kx;
                        if (iy >= d->h || ix >= d->w)
                            continue;
                        int i = iy * d->w + ix;
                        if (bi < 0 || pl[i] > pl[bi])
                            bi = i;
                    }
                size_t o = (size_t)p * d->oh * d->ow + (size_t)oy * d->ow + ox;
                out[o] = pl[bi];
                am[o] = bi;
            }
    }
}

/* The backward as the text writes it, with the ReLU before's mask when
 * pooled is given. */
static void ref_backward(float *din, const float *dout, const int32_t *am, const float *pooled,
                         const detrun_pool_dims *d)
{
    size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    for (size_t i = 0; i < (size_t)d->n * d->c * hw; i++)
        din[i] = 0.0f;
    for (size_t o = 0; o < (size_t)d->n * d->c * ohw; o++) {
        float g = pooled == NULL || pooled[o] > 0.0f ? dout[o] : 0.0f;
        float *pl = din + o / ohw * hw;
        pl[am[o]] = pl[am[o]] + g;
    }
}

/* One shape on every path and thread count. */
static void check_shape(detrun_pool_dims d)
{
    size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.c * d.oh * d.ow;
    float *in = malloc(ni * 4), *dout = malloc(no * 4);
    for (size_t i = 0; i < ni; i++)
        in[i] = draw(1);
    for (size_t o = 0; o < no; o++)
        dout[o] = o % 11 == 0 ? -0.0f : draw(o % 97 == 5);
    /* A NaN first in some windows, and a window of NaNs. */
    in[0] = NAN;
    if (ni > 2)
        in[2] = -NAN;
    float *rout = malloc(no * 4), *rdin = malloc(ni * 4), *rdinr = malloc(ni * 4);
    int32_t *ram = malloc(no * 4);
    ref_forward(rout, ram, in, &d);
    ref_backward(rdin, dout, ram, NULL, &d);
    ref_backward(rdinr, dout, ram, rout, &d);
    /* Outputs are followed by GUARD floats that must stay untouched. */
    float *out = malloc((no + GUARD) * 4), *din = malloc((ni + GUARD) * 4), *g = malloc(no * 4);
    int32_t *am = malloc((no + GUARD) * 4);
    float guard[GUARD];
    memset(guard, 0x5a, sizeof guard);
    memcpy(out + no, guard, sizeof guard);
    memcpy(din + ni, guard, sizeof guard);
    memcpy(am + no, guard, sizeof guard);
    for (int simd = DETRUN_CPU_SIMD_SCALAR; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        for (int threads = 1; threads <= 4; threads++) {
            detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, simd);
            const char *path = detrun_cpu_simd_name(DETRUN_CPU(b)->simd);
            memset(am, 0xa5, no * 4);
            memset(out, 0xff, no * 4);
            b->ops->maxpool_forward(b, out, am, in, &d);
            CHECK(same_bits(out, rout, no),
                  "forward n%d c%d %dx%d size %d stride %d -> %dx%d: %s, %d threads", d.n, d.c,
                  d.h, d.w, d.size, d.stride, d.oh, d.ow, path, threads);
            memset(din, 0xff, ni * 4);
            b->ops->maxpool_backward(b, din, dout, am, &d);
            CHECK(same_bits(din, rdin, ni),
                  "backward n%d c%d %dx%d size %d stride %d: %s, %d threads", d.n, d.c, d.h, d.w,
                  d.size, d.stride, path, threads);
            memset(din, 0xff, ni * 4);
            b->ops->maxpool_relu_backward(b, din, dout, out, am, &d);
            CHECK(same_bits(din, rdinr, ni),
                  "backward with the ReLU mask n%d c%d %dx%d size %d stride %d: %s, %d threads",
                  d.n, d.c, d.h, d.w, d.size, d.stride, path, threads);
            /* The two kernels the layer falls back to give the same bits. */
            memset(din, 0xff, ni * 4);
            b->ops->relu_backward(b, g, dout, out, no);
            b->ops->maxpool_backward(b, din, g, am, &d);
            CHECK(same_bits(din, rdinr, ni),
                  "relu_backward then backward n%d c%d %dx%d: %s, %d threads", d.n, d.c, d.h,
                  d.w, path, threads);
            CHECK(memcmp(out + no, guard, sizeof guard) == 0 &&
                      memcmp(din + ni, guard, sizeof guard) == 0 &&
                      memcmp(am + no, guard, sizeof guard) == 0,
                  "n%d c%d %dx%d: written past the end (%s, %d threads)", d.n, d.c, d.h, d.w, path,
                  threads);
            b->ops->destroy(b);
        }
    }
    free(in); free(dout); free(rout); free(rdin); free(rdinr); free(ram);
    free(out); free(din); free(g); free(am);
}

/* The written cases by hand: ties, both zeros, NaN first and later. */
static void check_cases(void)
{
    /* Rows of 8 windows (ow = 8 reaches the vector paths): window k's four
     * elements are case[k]. */
    static const float cases[8][4] = {
        { NAN, 5, 6, 7 },        /* a NaN first stays: nothing is > NaN */
        { 1, NAN, 2, NAN },      /* a later NaN never wins */
        { -0.0f, 0.0f, 0, 0 },   /* -0 first: +0 is not > -0 */
        { 0.0f, -0.0f, 0, 0 },
        { 3, 3, 3, 3 },          /* the first of equals */
        { 1, 2, 2, 1 },          /* top right, not bottom left */
        { -INFINITY, -INFINITY, -1, -INFINITY },
        { -2, -3, -4, -1 },      /* the last one */
    };
    static const int want[8] = { 0, 2, 0, 0, 0, 1, 2, 3 };   /* window position */
    detrun_pool_dims d = { 1, 1, 2, 16, 1, 8, 2, 2 };
    float in[32], dout[8], out[8], din[32];
    int32_t am[8];
    for (int k = 0; k < 8; k++) {
        in[2 * k] = cases[k][0];
        in[2 * k + 1] = cases[k][1];
        in[16 + 2 * k] = cases[k][2];
        in[16 + 2 * k + 1] = cases[k][3];
        dout[k] = (float)(k + 1);
    }
    dout[4] = -0.0f;   /* +0 + -0 is +0 */
    for (int simd = DETRUN_CPU_SIMD_SCALAR; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        detrun_backend *b = cpu_backend(1, DETRUN_DETERMINISTIC, simd);
        const char *path = detrun_cpu_simd_name(DETRUN_CPU(b)->simd);
        b->ops->maxpool_forward(b, out, am, in, &d);
        b->ops->maxpool_backward(b, din, dout, am, &d);
        for (int k = 0; k < 8; k++) {
            int pos = want[k], i = (pos >> 1) * 16 + 2 * k + (pos & 1);
            CHECK(memcmp(&out[k], &in[i], 4) == 0, "case %d: pooled %g, want %g (%s)", k, out[k],
                  in[i], path);
            for (int q = 0; q < 4; q++) {
                int j = (q >> 1) * 16 + 2 * k + (q & 1);
                float w = q == pos ? 0.0f + dout[k] : 0.0f;
                CHECK(memcmp(&din[j], &w, 4) == 0, "case %d: din at window position %d is %g "
                      "(sign %d), want %g (%s)", k, q, din[j], signbit(din[j]) != 0, w, path);
            }
        }
        b->ops->destroy(b);
    }
}

int main(void)
{
    check_cases();
    static const detrun_pool_dims shapes[] = {
        { 7, 8, 26, 26, 13, 13, 2, 2 },   /* the reference network's first pool */
        { 9, 8, 11, 11, 5, 5, 2, 2 },     /* its second: the last row and column dropped */
        { 3, 2, 9, 8, 4, 4, 2, 2 },       /* the narrowest packed rows */
        { 3, 2, 7, 7, 3, 3, 2, 2 },       /* one narrower: flat indices */
        { 2, 3, 11, 17, 5, 8, 2, 2 },
        { 3, 2, 6, 40, 3, 20, 2, 2 },     /* a run of 16 and a rest */
        { 2, 2, 5, 64, 2, 32, 2, 2 },     /* two whole runs */
        { 2, 1, 4, 71, 2, 35, 2, 2 },
        { 2, 2, 8, 40, 3, 6, 2, 2 },      /* columns after the windows */
        { 1, 1, 2, 2, 1, 1, 2, 2 },
        { 2, 3, 10, 9, 4, 4, 3, 2 },      /* overlapping windows */
        { 2, 2, 9, 9, 3, 3, 3, 3 },
        { 2, 2, 7, 10, 3, 4, 2, 2 },
        { 1, 2, 12, 12, 4, 4, 3, 3 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        check_shape(shapes[s]);
    return test_report("test_maxpool");
}
