/*
 * conv2d.c - 2-D convolution (cross-correlation, NCHW), forward and backward
 * (docs/determinism.md, "conv2d forward", "conv2d backward, input gradient",
 * "conv2d backward, weight and bias gradients", R1, R2).
 *
 * Forward and input gradient are both a valid correlation: an output pixel is
 * one sequential fma chain over (channel, ky, kx). The vector path runs it on
 * the input's pixel grid (8 neighbouring grid pixels share one load, 4 output
 * channels by 24 pixels stay in registers); threads take samples, so the
 * chain of every pixel is the written one whatever runs it. The input
 * gradient correlates a zero-padded copy of dout with the flipped kernel,
 * which performs the fmas on +0 that the text asks for.
 *
 * Weight and bias gradients keep 16 partial sums per weight, lane = output
 * column mod 16, combined by a fixed tree. Every register element runs one
 * lane chain: eight channels of one lane (channels-last copies, tasks by
 * lane), or the 16 lanes of one (o, c) pair in two registers (tasks by pair);
 * a scalar array emulates them.
 *
 * The vector paths cover stride 1 (and no input padding for the forward and
 * weight gradient); other shapes take the plain path, which follows the same
 * text.
 */
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu.h"

#define LANES 16
#define MAX_TAPS 1024
#define DWC_KW 3              /* the kernel width the channel-vector weight gradient takes */
#define GRID_NV 3             /* vectors of 8 pixels per register block */
#define GRID_BLOCK (8 * GRID_NV)
#define GRID_OCB 4            /* output channels per register block */
/* Floats of the row copies that the last rows of a batch are read through. */
#define DW_ROW_MAX 2048

static int in_range(int v, int n)
{
    return v >= 0 && v < n;
}

/* The fixed combining tree of the 16 lanes. */
static float lanes_tree(float *L)
{
    for (int h = LANES / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            L[l] = L[l] + L[l + h];
    return L[0];
}

/* ---- plain paths (any stride and padding) ---------------------------------- */

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
                        float v = in_range(iy, d->h) && in_range(ix, d->w)
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
                        float g = in_range(y, d->oh) && in_range(x, d->ow)
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
static void dw_pair_plain(float *dw, float *db, const float *dout, const float *in,
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
                    float v = in_range(iy, d->h) && in_range(ix, d->w)
                                  ? pi[(size_t)iy * d->w + ix] : 0.0f;
                    L[x % LANES] = fmaf(g, v, L[x % LANES]);
                }
            }
        }
        if (t < taps)
            dw[t] = lanes_tree(L);
        else
            *db = lanes_tree(L);
    }
}

/* ---- vector paths ------------------------------------------------------------ */

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* A valid correlation on a pixel grid: og[oc][p] for p in [0, np) is the
 * chain over ic, then tap t, of fma(in[ic * ips + p + off[t]],
 * w[oc * w_oc + ic * w_ic + t], acc) from init[oc] (or +0). For an image of
 * width W and off[t] = ky * W + kx, grid pixel p = y * W + x is output (y, x)
 * for x < ow; the pixels x >= ow of each row are computed and thrown away, so
 * that eight neighbouring grid pixels always share one contiguous load. */
typedef struct grid_args {
    float *og;                /* (ocs, ogs) */
    size_t ogs;
    const float *in;          /* (ics, ips), readable up to np + max(off) past the last plane's start */
    size_t ips;
    int ics, ocs, np;
    const float *w;
    size_t w_oc, w_ic;
    const int *off;
    int taps;
    const float *init;        /* per oc, or NULL for +0 */
} grid_args;


/* NOC output channels from oc0 at GRID_BLOCK pixels from p: 12 accumulators
 * stay in registers over the whole (ic, t) chain. */
AVX2 INLINE void grid_block(const grid_args *a, int oc0, const int NOC, int p)
{
    __m256 acc[GRID_OCB][GRID_NV];
#pragma GCC unroll 4
    for (int k = 0; k < NOC; k++) {
        __m256 v0 = _mm256_set1_ps(a->init ? a->init[oc0 + k] : 0.0f);
#pragma GCC unroll 4
        for (int v = 0; v < GRID_NV; v++)
            acc[k][v] = v0;
    }
    const float *wb = a->w + (size_t)oc0 * a->w_oc;
    for (int ic = 0; ic < a->ics; ic++) {
        const float *ip = a->in + (size_t)ic * a->ips + p;
        const float *wp = wb + (size_t)ic * a->w_ic;
        for (int t = 0; t < a->taps; t++) {
            const float *q = ip + a->off[t];
            __m256 x[GRID_NV];
#pragma GCC unroll 4
            for (int v = 0; v < GRID_NV; v++)
                x[v] = _mm256_loadu_ps(q + 8 * v);
#pragma GCC unroll 4
            for (int k = 0; k < NOC; k++) {
                __m256 b = _mm256_broadcast_ss(wp + (size_t)k * a->w_oc + t);
#pragma GCC unroll 4
                for (int v = 0; v < GRID_NV; v++)
                    acc[k][v] = _mm256_fmadd_ps(x[v], b, acc[k][v]);
            }
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < NOC; k++) {
        float *dst = a->og + (size_t)(oc0 + k) * a->ogs + p;
#pragma GCC unroll 4
        for (int v = 0; v < GRID_NV; v++)
            _mm256_storeu_ps(dst + 8 * v, acc[k][v]);
    }
}

AVX2 static void grid_corr(const grid_args *a)
{
    for (int oc0 = 0; oc0 < a->ocs; oc0 += GRID_OCB) {
        int noc = a->ocs - oc0 < GRID_OCB ? a->ocs - oc0 : GRID_OCB;
        for (int p = 0; p < a->np; p += GRID_BLOCK) {
            switch (noc) {
            case 1: grid_block(a, oc0, 1, p); break;
            case 2: grid_block(a, oc0, 2, p); break;
            case 3: grid_block(a, oc0, 3, p); break;
            default: grid_block(a, oc0, 4, p); break;
            }
        }
    }
}

/* out[oc][y][x] = og[oc][y * gw + x] for x < ow, ReLU'd when relu (max with
 * +0 gives +0 for NaN and -0, as `v > 0 ? v : +0`). A row's last vector may
 * overlap the one before it: both store the same values. */
AVX2 static void grid_store(float *out, const float *og, size_t ogs, int ocs, int oh, int ow,
                            int gw, int relu)
{
    const __m256 zero = _mm256_setzero_ps();
    for (int oc = 0; oc < ocs; oc++) {
        for (int y = 0; y < oh; y++) {
            const float *src = og + (size_t)oc * ogs + (size_t)y * gw;
            float *dst = out + ((size_t)oc * oh + y) * ow;
            if (ow < 8) {
                for (int x = 0; x < ow; x++) {
                    float v = src[x];
                    dst[x] = relu ? (v > 0.0f ? v : 0.0f) : v;
                }
                continue;
            }
            for (int x = 0;; x += 8) {
                if (x > ow - 8)
                    x = ow - 8;
                __m256 v = _mm256_loadu_ps(src + x);
                if (relu)
                    v = _mm256_max_ps(v, zero);
                _mm256_storeu_ps(dst + x, v);
                if (x == ow - 8)
                    break;
            }
        }
    }
}


/* 16 lanes (two registers A and B, lane = column mod 16) for NT taps from t0
 * of one (o, c) pair over samples [n0, n1), and the bias lanes when BIAS.
 *
 * Columns past the row's end must leave their lanes exactly as they are:
 * there dout is made -0 and the input +0, and fma(-0, +0, L) = L + (-0) = L
 * for every L, -0 included (a plain zero would turn -0 into +0). One code
 * path for every chunk keeps all lanes in registers; rows whose whole-vector
 * reads would leave the buffers (the batch's last) are read from copies. */
AVX2 INLINE void dw_group(float *dw, float *db, const float *dout, const float *in,
                          const detrun_conv_dims *d, int o, int c, int n0, int n1, int t0,
                          const int NT, const int BIAS, const int FA)
{
    size_t oplane = (size_t)d->oh * d->ow, iplane = (size_t)d->h * d->w;
    const float *dout_end = dout + (size_t)d->n * d->o * oplane;
    const float *in_end = in + (size_t)d->n * d->c * iplane;
    int maxoff = (d->kh - 1) * d->w + d->kw - 1;
    int off[8] = { 0 };
    for (int t = 0; t < NT; t++)
        off[t] = ((t0 + t) / d->kw) * d->w + (t0 + t) % d->kw;
    const __m256 negzero = _mm256_set1_ps(-0.0f);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 LA[8], LB[8], BA = _mm256_setzero_ps(), BB = _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++)
        LA[t] = LB[t] = _mm256_setzero_ps();
    int span = (d->ow + LANES - 1) / LANES * LANES;
    float gbuf[DW_ROW_MAX] __attribute__((aligned(32)));
    float ibuf[DW_ROW_MAX] __attribute__((aligned(32)));
#define DW_ROW(GR, IR)                                                                      \
    for (int x0 = 0; x0 < d->ow; x0 += LANES) {                                             \
        __m256 ma = _mm256_castsi256_ps(                                                    \
            _mm256_cmpgt_epi32(_mm256_set1_epi32(d->ow - x0), lane));                        \
        __m256 mb = _mm256_castsi256_ps(                                                    \
            _mm256_cmpgt_epi32(_mm256_set1_epi32(d->ow - x0 - 8), lane));                    \
        __m256 ga = FA ? _mm256_loadu_ps((GR) + x0)                                         \
                       : _mm256_blendv_ps(negzero, _mm256_loadu_ps((GR) + x0), ma);         \
        __m256 gb = _mm256_blendv_ps(negzero, _mm256_loadu_ps((GR) + x0 + 8), mb);          \
        if (BIAS) {                                                                         \
            BA = _mm256_add_ps(BA, ga);                                                     \
            BB = _mm256_add_ps(BB, gb);                                                     \
        }                                                                                   \
        const float *x = (IR) + x0;                                                         \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)                                \
        {                                                                                   \
            __m256 xa = _mm256_loadu_ps(x + off[t]);                                        \
            if (!FA)                                                                        \
                xa = _mm256_and_ps(xa, ma);                                                 \
            __m256 xb = _mm256_and_ps(_mm256_loadu_ps(x + off[t] + 8), mb);                 \
            LA[t] = _mm256_fmadd_ps(ga, xa, LA[t]);                                         \
            LB[t] = _mm256_fmadd_ps(gb, xb, LB[t]);                                         \
        }                                                                                   \
    }
    /* Rows in order; whole-vector reads stay inside the buffers up to the
     * batch's last rows, which follow (in the same order) from copies. */
    int n = n0, y = 0;
    for (; n < n1; n++) {
        const float *po = dout + ((size_t)n * d->o + o) * oplane;
        const float *pi = in + ((size_t)n * d->c + c) * iplane;
        for (y = 0; y < d->oh; y++) {
            const float *gr = po + (size_t)y * d->ow;
            const float *ir = pi + (size_t)y * d->w;
            if (gr + span > dout_end || ir + span + maxoff > in_end)
                goto tail;
            DW_ROW(gr, ir)
        }
    }
    y = 0;
tail:
    for (; n < n1; n++, y = 0) {
        const float *po = dout + ((size_t)n * d->o + o) * oplane;
        const float *pi = in + ((size_t)n * d->c + c) * iplane;
        for (; y < d->oh; y++) {
            const float *gr = po + (size_t)y * d->ow;
            const float *ir = pi + (size_t)y * d->w;
            size_t gl = (size_t)(dout_end - gr), il = (size_t)(in_end - ir);
            size_t gn = gl < (size_t)span ? gl : (size_t)span;
            size_t in_ = il < (size_t)(span + maxoff) ? il : (size_t)(span + maxoff);
            memcpy(gbuf, gr, gn * sizeof *gbuf);
            memset(gbuf + gn, 0, ((size_t)span - gn) * sizeof *gbuf);
            memcpy(ibuf, ir, in_ * sizeof *ibuf);
            memset(ibuf + in_, 0, ((size_t)(span + maxoff) - in_) * sizeof *ibuf);
            DW_ROW(gbuf, ibuf)
        }
    }
#undef DW_ROW
    float L[LANES];
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) {
        _mm256_storeu_ps(L, LA[t]);
        _mm256_storeu_ps(L + 8, LB[t]);
        dw[t0 + t] = lanes_tree(L);
    }
    if (BIAS) {
        _mm256_storeu_ps(L, BA);
        _mm256_storeu_ps(L + 8, BB);
        *db = lanes_tree(L);
    }
}

/* 16 lanes of one (o, c) pair over samples [n0, n1), stride 1 and no
 * padding, every tap (in groups of at most five, 10 registers of lanes); the
 * bias lanes ride with the last group when db is not NULL. */
AVX2 static void dw_pair_avx2(float *dw, float *db, const float *dout, const float *in,
                              const detrun_conv_dims *d, int o, int c, int n0, int n1)
{
    int taps = d->kh * d->kw;
    /* Every chunk fills its first register: no mask there. */
    int fa = d->ow % LANES == 0 || d->ow % LANES >= 8;
    int groups = (taps + 4) / 5, per = (taps + groups - 1) / groups;
    for (int t0 = 0; t0 < taps; t0 += per) {
        int nt = taps - t0 < per ? taps - t0 : per;
        int bias = db && t0 + nt >= taps && nt <= 4;
#define DW_GROUP(NT, B) \
    (fa ? dw_group(dw, (B) ? db : NULL, dout, in, d, o, c, n0, n1, t0, NT, B, 1) \
        : dw_group(dw, (B) ? db : NULL, dout, in, d, o, c, n0, n1, t0, NT, B, 0))
        if (bias) {
            switch (nt) {
            case 1: DW_GROUP(1, 1); break;
            case 2: DW_GROUP(2, 1); break;
            case 3: DW_GROUP(3, 1); break;
            default: DW_GROUP(4, 1); break;
            }
            continue;
        }
        switch (nt) {
        case 1: DW_GROUP(1, 0); break;
        case 2: DW_GROUP(2, 0); break;
        case 3: DW_GROUP(3, 0); break;
        case 4: DW_GROUP(4, 0); break;
        default: DW_GROUP(5, 0); break;
        }
        if (db && t0 + nt >= taps)
            DW_GROUP(0, 1);
#undef DW_GROUP
    }
}
#endif

/* ---- jobs ---------------------------------------------------------------------- */

typedef struct conv_job {
    detrun_cpu *cpu;
    float *out, *din, *dw, *db;
    const float *in, *dout, *w, *bias;
    const detrun_conv_dims *d;
    int relu;
    int vec;                  /* the vector path applies */
    int ocs_tiles;            /* channel pairs (plain forward) */
    const int *off;
    int np;                   /* grid pixels, a multiple of GRID_BLOCK */
    size_t in_floats;         /* per thread: the sample's (padded) input */
    float *scratch;
    size_t scratch_per_thread;
    float *in_t;              /* channel-vector weight gradient: input as (c/8, n, h, w, 8) */
    float *dout_t;            /* and dout as (ceil(o/8), n, oh, ow, 8); o-vector: (thread, oh, ow, 8) */
    float *lanes;             /* its lanes, (o, tap, lane, c), and bias lanes (o, lane) */
    int lane_group;           /* o-vector weight gradient: lanes per task */
} conv_job;

static int vector_forward_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return c->simd && d->stride == 1 && d->pad_top == 0 && d->pad_left == 0 &&
           d->kh * d->kw <= MAX_TAPS && d->oh == d->h - d->kh + 1 && d->ow == d->w - d->kw + 1;
}

/* The weight gradient's vector path also reads a batch's last rows through
 * row copies of bounded size. */
static int vector_dw_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return vector_forward_ok(c, d) &&
           (d->ow + LANES - 1) / LANES * LANES + (d->kh - 1) * d->w + d->kw - 1 <= DW_ROW_MAX;
}

/* Grid pixels for an output of oh x ow on a grid of width gw. */
static int grid_pixels(int oh, int ow, int gw)
{
    int p = (oh - 1) * gw + ow;
    return (p + GRID_BLOCK - 1) / GRID_BLOCK * GRID_BLOCK;
}

static void forward_task(void *arg, int task, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
#if defined(__x86_64__)
    if (j->vec) {
        int n = task;
        /* Reads past the sample's end (dropped pixels only) find the next
         * sample; the last sample is read from a copy followed by zeros. */
        float *X = j->scratch + (size_t)thread * j->scratch_per_thread;
        float *G = X + j->in_floats;
        size_t in_n = (size_t)d->c * d->h * d->w;
        const float *src = j->in + (size_t)n * in_n;
        if ((size_t)(d->n - n) * in_n < j->in_floats) {
            memcpy(X, src, in_n * sizeof *X);
            memset(X + in_n, 0, (j->in_floats - in_n) * sizeof *X);
            src = X;
        }
        grid_args a;
        a.og = G;
        a.ogs = (size_t)j->np;
        a.in = src;
        a.ips = (size_t)d->h * d->w;
        a.ics = d->c;
        a.ocs = d->o;
        a.np = j->np;
        a.w = j->w;
        a.w_oc = (size_t)d->c * d->kh * d->kw;
        a.w_ic = (size_t)d->kh * d->kw;
        a.off = j->off;
        a.taps = d->kh * d->kw;
        a.init = j->bias;
        grid_corr(&a);
        grid_store(j->out + (size_t)n * d->o * d->oh * d->ow, G, (size_t)j->np, d->o, d->oh,
                   d->ow, d->w, j->relu);
        return;
    }
#endif
    (void)thread;
    int n = task / j->ocs_tiles, pair = task % j->ocs_tiles;
    for (int o = 2 * pair; o < 2 * pair + 2 && o < d->o; o++)
        forward_plain(j->out, j->in, j->w, j->bias, d, j->relu, n, o);
}

void detrun_cpu_conv2d_forward(detrun_backend *b, float *out, const float *in, const float *w,
                               const float *bias, const detrun_conv_dims *d, int relu)
{
    detrun_cpu *c = DETRUN_CPU(b);
    int off[MAX_TAPS];
    conv_job j;
    memset(&j, 0, sizeof j);
    j.cpu = c;
    j.out = out;
    j.in = in;
    j.w = w;
    j.bias = bias;
    j.d = d;
    j.relu = relu;
    j.off = off;
    j.vec = vector_forward_ok(c, d);
    if (j.vec) {
        for (int t = 0; t < d->kh * d->kw; t++)
            off[t] = (t / d->kw) * d->w + t % d->kw;
        j.np = grid_pixels(d->oh, d->ow, d->w);
        size_t maxoff = (size_t)(d->kh - 1) * d->w + d->kw - 1;
        j.in_floats = ((size_t)d->c * d->h * d->w + j.np + maxoff + 15) & ~(size_t)15;
        j.scratch_per_thread = j.in_floats + (size_t)d->o * j.np;
        j.scratch = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads);
        j.vec = j.scratch != NULL;
    }
    if (j.vec) {
        detrun_pool_run(c->pool, d->n, forward_task, &j);
        return;
    }
    j.ocs_tiles = (d->o + 1) / 2;
    detrun_pool_run(c->pool, d->n * j.ocs_tiles, forward_task, &j);
}

#if defined(__x86_64__)
/* 8 planes of hw floats (src + k * hw) to hw vectors of 8 (dst + 8 * p). */
AVX2 static void planes_to_vectors(float *dst, const float *src, size_t hw)
{
    size_t p = 0;
    for (; p + 8 <= hw; p += 8) {
        __m256 r[8], t[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            r[k] = _mm256_loadu_ps(src + (size_t)k * hw + p);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k += 2) {
            t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
            t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k += 4) {
            r[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
            r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
            r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
            r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        /* r[0..3]: pixels (0,4), (1,5), (2,6), (3,7) of channels 0-3 | 0-3 in
         * the halves; r[4..7] the same for channels 4-7. */
#pragma GCC unroll 8
        for (int q = 0; q < 4; q++) {
            _mm256_storeu_ps(dst + (p + q) * 8, _mm256_permute2f128_ps(r[q], r[q + 4], 0x20));
            _mm256_storeu_ps(dst + (p + q + 4) * 8, _mm256_permute2f128_ps(r[q], r[q + 4], 0x31));
        }
    }
    for (; p < hw; p++)
        for (int k = 0; k < 8; k++)
            dst[p * 8 + k] = src[(size_t)k * hw + p];
}
#endif

/* Sample n of a (n, C, hw) tensor to (ceil(C / 8), n, hw, 8): channels last
 * in blocks of eight, for the channel-vector weight gradient (a copy: no
 * arithmetic). Lanes of a partial last block are left as they are. */
static void to_blocks(float *dst, const float *src, int N, int C, size_t hw, int n)
{
    const float *s = src + (size_t)n * C * hw;
    for (int c0 = 0; c0 < C; c0 += 8) {
        float *dd = dst + ((size_t)(c0 / 8) * N + n) * hw * 8;
#if defined(__x86_64__)
        if (C - c0 >= 8) {
            planes_to_vectors(dd, s + (size_t)c0 * hw, hw);
            continue;
        }
#endif
        for (size_t p = 0; p < hw; p++)
            for (int k = 0; k < 8 && c0 + k < C; k++)
                dd[p * 8 + k] = s[(size_t)(c0 + k) * hw + p];
    }
}

static void transpose_sample(const conv_job *j, int n)
{
    const detrun_conv_dims *d = j->d;
    if (j->in_t)
        to_blocks(j->in_t, j->in, d->n, d->c, (size_t)d->h * d->w, n);
    to_blocks(j->dout_t, j->dout, d->n, d->o, (size_t)d->oh * d->ow, n);
}

static void transpose_task(void *arg, int n, int thread)
{
    (void)thread;
    transpose_sample(arg, n);
}

/* Input gradient: one task per sample (which also lays out the sample's
 * input for the weight gradient when that wants it). */
static void din_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    if (j->dout_t)
        transpose_sample(j, n);
#if defined(__x86_64__)
    if (j->vec) {
        /* dout of sample n, zero-padded so that din is a valid correlation
         * with the flipped kernel: P[o][r][q] = dout[o][r - ay][q - ax]. */
        int ph = d->h + d->kh - 1, pw = d->w + d->kw - 1;
        int ay = d->kh - 1 - d->pad_top, ax = d->kw - 1 - d->pad_left;
        float *P = j->scratch + (size_t)thread * j->scratch_per_thread;
        float *G = P + j->in_floats;
        memset(P, 0, j->in_floats * sizeof *P);
        for (int o = 0; o < d->o; o++) {
            const float *src = j->dout + ((size_t)n * d->o + o) * d->oh * d->ow;
            float *dst = P + (size_t)o * ph * pw;
            for (int y = 0; y < d->oh; y++) {
                float *r = dst + (size_t)(y + ay) * pw + ax;
                const float *q = src + (size_t)y * d->ow;
                for (int x = 0; x < d->ow; x++)
                    r[x] = q[x];
            }
        }
        grid_args a;
        a.og = G;
        a.ogs = (size_t)j->np;
        a.in = P;
        a.ips = (size_t)ph * pw;
        a.ics = d->o;
        a.ocs = d->c;
        a.np = j->np;
        a.w = j->w;
        a.w_oc = (size_t)d->kh * d->kw;
        a.w_ic = (size_t)d->c * d->kh * d->kw;
        a.off = j->off;
        a.taps = d->kh * d->kw;
        a.init = NULL;
        grid_corr(&a);
        grid_store(j->din + (size_t)n * d->c * d->h * d->w, G, (size_t)j->np, d->c, d->h, d->w,
                   pw, 0);
        return;
    }
#endif
    (void)thread;
    for (int c = 0; c < d->c; c++)
        din_plain(j->din, j->dout, j->w, d, n, c);
}

/* ---- weight gradient with 8 channels to a register ------------------------------- */

#if defined(__x86_64__)

/* Lane l of (o0..o0+NO-1, c0..c0+7) for kernel row ky (all DWC_KW columns):
 * the terms of lane l are the columns x = l, l + 16, ... of every row of every
 * sample, visited in that order, so each register element runs one written
 * lane chain; eight channels share a broadcast dout, NO output channels share
 * each input load. No column past a row's end is visited (those lanes keep
 * their +0 start or their sum, as the text says). */
AVX2 INLINE void dwc_group(const conv_job *j, int o0, const int NO, int l, int c0, int ky,
                           const int BIAS, const int ONE)
{
    const detrun_conv_dims *d = j->d;
    int C = d->c, taps = d->kh * DWC_KW;
    __m256 acc[4][DWC_KW];
#pragma GCC unroll 4
    for (int q = 0; q < NO; q++)
#pragma GCC unroll 4
        for (int k = 0; k < DWC_KW; k++)
            acc[q][k] = _mm256_setzero_ps();
    float bl[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    size_t oplane = (size_t)d->oh * d->ow, iplane = (size_t)d->h * d->w;
    size_t row = (size_t)d->w * 8;        /* floats from one input row to the next */
    const float *in_b = j->in_t + (size_t)(c0 / 8) * d->n * iplane * 8;
#define DWC_TERM(G, P)                                                                    \
    do {                                                                                  \
        __m256 x[DWC_KW];                                                                 \
        _Pragma("GCC unroll 4") for (int k = 0; k < DWC_KW; k++)                          \
            x[k] = _mm256_load_ps((P) + (size_t)k * 8);                                   \
        _Pragma("GCC unroll 4") for (int q = 0; q < NO; q++)                              \
        {                                                                                 \
            __m256 gs = _mm256_broadcast_ss((G) + q);                                     \
            _Pragma("GCC unroll 4") for (int k = 0; k < DWC_KW; k++)                      \
                acc[q][k] = _mm256_fmadd_ps(gs, x[k], acc[q][k]);                         \
            if (BIAS)                                                                     \
                bl[q] = bl[q] + (G)[q];                                                   \
        }                                                                                 \
    } while (0)
    for (int n = 0; n < d->n; n++) {
        const float *g = j->dout_t + (((size_t)(o0 / 8) * d->n + n) * oplane + l) * 8 + o0 % 8;
        const float *p = in_b + ((size_t)n * iplane + (size_t)ky * d->w + l) * 8;
        if (ONE) {
            /* One column of the lane per row. */
            for (int y = 0; y < d->oh; y++, g += (size_t)d->ow * 8, p += row)
                DWC_TERM(g, p);
        } else {
            for (int y = 0; y < d->oh; y++, g += (size_t)d->ow * 8, p += row)
                for (int x0 = 0; x0 < d->ow - l; x0 += LANES)
                    DWC_TERM(g + (size_t)x0 * 8, p + (size_t)x0 * 8);
        }
    }
#undef DWC_TERM
#pragma GCC unroll 4
    for (int q = 0; q < NO; q++) {
#pragma GCC unroll 4
        for (int k = 0; k < DWC_KW; k++)
            _mm256_storeu_ps(j->lanes + (((size_t)(o0 + q) * taps + (size_t)ky * DWC_KW + k) *
                                             LANES + l) * C + c0,
                             acc[q][k]);
        if (BIAS)
            j->lanes[(size_t)d->o * taps * LANES * C + (size_t)(o0 + q) * LANES + l] = bl[q];
    }
}

#define DWC_NO 4              /* output channels per task */

/* Task (lane, group of DWC_NO output channels, channel block): lane-major,
 * so that the threads work on one lane's columns at a time. */
AVX2 static void dwc_task(void *arg, int task, int thread)
{
    (void)thread;
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int cbs = d->c / 8, ogs = (d->o + DWC_NO - 1) / DWC_NO;
    int l = task / (ogs * cbs), rest = task % (ogs * cbs);
    int o0 = (rest / cbs) * DWC_NO, c0 = (rest % cbs) * 8;
    int no = d->o - o0 < DWC_NO ? d->o - o0 : DWC_NO;
    int one = d->ow <= LANES;
    if (l >= d->ow) {
        /* No column falls in this lane: its sums stay +0. */
        for (int o = o0; o < o0 + no; o++) {
            for (int t = 0; t < d->kh * DWC_KW; t++)
                memset(j->lanes + (((size_t)o * d->kh * DWC_KW + t) * LANES + l) * d->c + c0, 0,
                       8 * sizeof(float));
            if (c0 == 0)
                j->lanes[(size_t)d->o * d->kh * DWC_KW * LANES * d->c + (size_t)o * LANES + l] =
                    0.0f;
        }
        return;
    }
    for (int ky = 0; ky < d->kh; ky++) {
        int bias = ky == 0 && c0 == 0;
#define DWC(NO)                                                                          \
    (one ? (bias ? dwc_group(j, o0, NO, l, c0, ky, 1, 1) : dwc_group(j, o0, NO, l, c0, ky, 0, 1)) \
         : (bias ? dwc_group(j, o0, NO, l, c0, ky, 1, 0) : dwc_group(j, o0, NO, l, c0, ky, 0, 0)))
        switch (no) {
        case 1: DWC(1); break;
        case 2: DWC(2); break;
        case 3: DWC(3); break;
        default: DWC(4); break;
        }
#undef DWC
    }
}

/* Lane l of (o0..o0+7, c) for a 3x3 kernel over samples [n0, n1): as above
 * with the roles of the channels swapped, eight output channels to a register
 * (dout channels last) and each input value broadcast; the bias lanes of the
 * eight are a register of plain sums. The sums start at +0 for n0 = 0 and
 * otherwise from where the previous samples left them in the lanes array
 * (a store and a load change no bit). */
AVX2 INLINE void dwo_group(const conv_job *j, const float *gs, int o0, int c, int l, int n0,
                           int n1, const int BIAS, const int ONE)
{
    const detrun_conv_dims *d = j->d;
    /* lanes_o: (c, tap, lane, o) */
    float *dst = j->lanes + (size_t)c * 9 * LANES * d->o + (size_t)l * d->o + o0;
    float *bdst = j->lanes + (size_t)d->c * 9 * LANES * d->o + (size_t)l * d->o + o0;
    __m256 acc[3][3], bacc = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < 3; r++)
#pragma GCC unroll 4
        for (int k = 0; k < 3; k++)
            acc[r][k] = n0 ? _mm256_loadu_ps(dst + (size_t)(r * 3 + k) * LANES * d->o)
                           : _mm256_setzero_ps();
    if (BIAS && n0)
        bacc = _mm256_loadu_ps(bdst);
    size_t oplane = (size_t)d->oh * d->ow, iplane = (size_t)d->h * d->w;
    size_t w = (size_t)d->w;
#define DWO_TERM(G, P)                                                                    \
    do {                                                                                  \
        __m256 gv = _mm256_load_ps(G);                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < 3; r++)                               \
            _Pragma("GCC unroll 4") for (int k = 0; k < 3; k++)                           \
                acc[r][k] = _mm256_fmadd_ps(gv, _mm256_broadcast_ss((P) + r * w + k),     \
                                            acc[r][k]);                                   \
        if (BIAS)                                                                         \
            bacc = _mm256_add_ps(bacc, gv);                                               \
    } while (0)
    for (int n = n0; n < n1; n++) {
        const float *g = gs + ((size_t)(n - n0) * oplane + l) * 8;
        const float *p = j->in + ((size_t)n * d->c + c) * iplane + l;
        if (ONE) {
            for (int y = 0; y < d->oh; y++, g += (size_t)d->ow * 8, p += w)
                DWO_TERM(g, p);
        } else {
            for (int y = 0; y < d->oh; y++, g += (size_t)d->ow * 8, p += w)
                for (int x0 = 0; x0 < d->ow - l; x0 += LANES)
                    DWO_TERM(g + (size_t)x0 * 8, p + x0);
        }
    }
#undef DWO_TERM
#pragma GCC unroll 4
    for (int r = 0; r < 3; r++)
#pragma GCC unroll 4
        for (int k = 0; k < 3; k++)
            _mm256_storeu_ps(dst + (size_t)(r * 3 + k) * LANES * d->o, acc[r][k]);
    if (BIAS)
        _mm256_storeu_ps(bdst, bacc);
}

/* Task (group of j->lane_group lanes, c, block of eight output channels):
 * a sample at a time, its dout block goes channels last into the thread's
 * buffer (a copy) and the lanes of the group take turns on it, so that
 * the sample's data is read from near caches; each lane's terms are still
 * visited in the written order. */
AVX2 static void dwo_task(void *arg, int task, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int obs = d->o / 8, lg = j->lane_group;
    size_t oplane = (size_t)d->oh * d->ow;
    float *gs = j->dout_t + (size_t)thread * oplane * 8;
    int l0 = task / (d->c * obs) * lg, rest = task % (d->c * obs);
    int c = rest / obs, o0 = (rest % obs) * 8;
    int bias = c == 0, one = d->ow <= LANES;
    int l1 = l0 + lg < d->ow ? l0 + lg : d->ow;
    for (int l = l1 > l0 ? l1 : l0; l < l0 + lg; l++) {
        /* No column falls in this lane: its sums stay +0. */
        for (int t = 0; t < 9; t++)
            memset(j->lanes + (((size_t)c * 9 + t) * LANES + l) * d->o + o0, 0, 8 * sizeof(float));
        if (bias)
            memset(j->lanes + (size_t)d->c * 9 * LANES * d->o + (size_t)l * d->o + o0, 0,
                   8 * sizeof(float));
    }
    for (int n = 0; n < d->n && l1 > l0; n++) {
        planes_to_vectors(gs, j->dout + ((size_t)n * d->o + o0) * oplane, oplane);
        for (int l = l0; l < l1; l++) {
            if (one)
                bias ? dwo_group(j, gs, o0, c, l, n, n + 1, 1, 1)
                     : dwo_group(j, gs, o0, c, l, n, n + 1, 0, 1);
            else
                bias ? dwo_group(j, gs, o0, c, l, n, n + 1, 1, 0)
                     : dwo_group(j, gs, o0, c, l, n, n + 1, 0, 0);
        }
    }
}

/* The fixed trees of the o-vector lanes, eight output channels at a time. */
AVX2 static void dwo_trees(const conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    int O = d->o;
    for (int c = 0; c <= d->c; c++) {
        int ntaps = c < d->c ? 9 : 1;   /* c == d->c: the bias lanes */
        for (int t = 0; t < ntaps; t++) {
            for (int o0 = 0; o0 < O; o0 += 8) {
                const float *src = j->lanes + ((size_t)c * 9 + t) * LANES * O + o0;
                __m256 V[LANES];
                for (int l = 0; l < LANES; l++)
                    V[l] = _mm256_loadu_ps(src + (size_t)l * O);
                for (int h = LANES / 2; h >= 1; h /= 2)
                    for (int l = 0; l < h; l++)
                        V[l] = _mm256_add_ps(V[l], V[l + h]);
                float r[8];
                _mm256_storeu_ps(r, V[0]);
                for (int k = 0; k < 8; k++) {
                    if (c < d->c)
                        j->dw[((size_t)(o0 + k) * d->c + c) * 9 + t] = r[k];
                    else
                        j->db[o0 + k] = r[k];
                }
            }
        }
    }
}

/* The fixed tree over the 16 lanes of every (o, c, tap), eight channels at a
 * time, and of every bias. */
AVX2 static void dwc_trees(const conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    int C = d->c, taps = d->kh * d->kw;
    for (int o = 0; o < d->o; o++) {
        for (int t = 0; t < taps; t++) {
            for (int c0 = 0; c0 < C; c0 += 8) {
                const float *src = j->lanes + ((size_t)o * taps + t) * LANES * C + c0;
                __m256 V[LANES];
                for (int l = 0; l < LANES; l++)
                    V[l] = _mm256_loadu_ps(src + (size_t)l * C);
                for (int h = LANES / 2; h >= 1; h /= 2)
                    for (int l = 0; l < h; l++)
                        V[l] = _mm256_add_ps(V[l], V[l + h]);
                float r[8];
                _mm256_storeu_ps(r, V[0]);
                for (int k = 0; k < 8; k++)
                    j->dw[((size_t)o * C + c0 + k) * taps + t] = r[k];
            }
        }
        float L[LANES];
        memcpy(L, j->lanes + (size_t)d->o * taps * LANES * C + (size_t)o * LANES, sizeof L);
        j->db[o] = lanes_tree(L);
    }
}
#endif

/* Weight and bias gradients of one (o, c) pair over the whole batch. */
static void dw_task(void *arg, int pair, int thread)
{
    (void)thread;
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int o = pair / d->c, c = pair % d->c;
    float *dw = j->dw + (size_t)pair * d->kh * d->kw;
    float *db = c == 0 ? j->db + o : NULL;
#if defined(__x86_64__)
    if (j->vec) {
        dw_pair_avx2(dw, db, j->dout, j->in, d, o, c, 0, d->n);
        return;
    }
#endif
    dw_pair_plain(dw, db, j->dout, j->in, d, o, c, 0, d->n);
}

/* Fast mode: every pair over one chunk of samples, added in finishing order. */
static void dw_chunk_task(void *arg, int chunk, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int n0 = chunk * DETRUN_CPU_FAST_CHUNK;
    int n1 = n0 + DETRUN_CPU_FAST_CHUNK < d->n ? n0 + DETRUN_CPU_FAST_CHUNK : d->n;
    size_t taps = (size_t)d->kh * d->kw, wn = (size_t)d->o * d->c * taps;
    float *pw = j->scratch + (size_t)thread * j->scratch_per_thread;
    float *pb = pw + wn;
    for (int o = 0; o < d->o; o++) {
        for (int c = 0; c < d->c; c++) {
            float *dw = pw + ((size_t)o * d->c + c) * taps;
            float *db = c == 0 ? pb + o : NULL;
#if defined(__x86_64__)
            if (j->vec) {
                dw_pair_avx2(dw, db, j->dout, j->in, d, o, c, n0, n1);
                continue;
            }
#endif
            dw_pair_plain(dw, db, j->dout, j->in, d, o, c, n0, n1);
        }
    }
    pthread_mutex_lock(&j->cpu->reduce);
    for (size_t i = 0; i < wn; i++)
        j->dw[i] = j->dw[i] + pw[i];
    for (int o = 0; o < d->o; o++)
        j->db[o] = j->db[o] + pb[o];
    pthread_mutex_unlock(&j->cpu->reduce);
}

void detrun_cpu_conv2d_backward(detrun_backend *b, float *din, float *dw, float *db,
                                const float *dout, const float *in, const float *w,
                                const detrun_conv_dims *d)
{
    detrun_cpu *c = DETRUN_CPU(b);
    int off[MAX_TAPS];
    conv_job j;
    memset(&j, 0, sizeof j);
    j.cpu = c;
    j.din = din;
    j.dw = dw;
    j.db = db;
    j.dout = dout;
    j.in = in;
    j.w = w;
    j.d = d;
    j.off = off;
    int stride1 = c->simd && d->stride == 1 && d->kh * d->kw <= MAX_TAPS &&
                  d->pad_top <= d->kh - 1 && d->pad_left <= d->kw - 1 &&
                  d->oh == d->h + 2 * d->pad_top - d->kh + 1 &&
                  d->ow == d->w + 2 * d->pad_left - d->kw + 1;
    /* Deterministic weight gradient with eight channels to a register: the
     * input channels last (written by the input gradient's tasks), lanes,
     * then the trees. */
    int cvec = vector_forward_ok(c, d) && d->c % 8 == 0 && d->kw == DWC_KW &&
               !(c->mode == DETRUN_FAST && c->threads > 1 && d->n > DETRUN_CPU_FAST_CHUNK);
    /* Or eight output channels to a register (the first layer's one input
     * channel): dout channels last, the input as it is. */
    int ovec = !cvec && vector_forward_ok(c, d) && d->o % 8 == 0 && d->kh == 3 && d->kw == 3 &&
               !(c->mode == DETRUN_FAST && c->threads > 1 && d->n > DETRUN_CPU_FAST_CHUNK);
#if !defined(__x86_64__)
    cvec = 0;
    ovec = 0;
#endif
    size_t in_t_floats = (size_t)d->n * d->c * d->h * d->w;
    size_t dout_t_floats = (size_t)d->n * ((d->o + 7) / 8 * 8) * d->oh * d->ow;
    size_t lane_floats = (size_t)d->o * d->kh * d->kw * LANES * d->c + (size_t)d->o * LANES;
    size_t lane_o_floats = ((size_t)d->c * 9 + 1) * LANES * d->o;
    /* o-vector: one sample's dout block, channels last, per thread */
    size_t dout_s_floats = (size_t)c->threads * d->oh * d->ow * 8;
    size_t extra = cvec   ? ((in_t_floats + dout_t_floats + lane_floats + 15) & ~(size_t)15)
                   : ovec ? ((dout_s_floats + lane_o_floats + 15) & ~(size_t)15)
                          : 0;
    int ph = d->h + d->kh - 1, pw = d->w + d->kw - 1;
    if (din && stride1) {
        j.np = grid_pixels(d->h, d->w, pw);
        size_t maxoff = (size_t)(d->kh - 1) * pw + d->kw - 1;
        j.in_floats = ((size_t)d->o * ph * pw + j.np + maxoff + 15) & ~(size_t)15;
        j.scratch_per_thread = j.in_floats + (size_t)d->c * j.np;
    }
    float *sc = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads + extra);
    if (!sc) {
        cvec = ovec = 0;
        j.scratch_per_thread = 0;
    } else {
        j.scratch = j.scratch_per_thread ? sc : NULL;
        if (cvec) {
            j.in_t = sc + j.scratch_per_thread * c->threads;
            j.dout_t = j.in_t + in_t_floats;
            j.lanes = j.dout_t + dout_t_floats;
        } else if (ovec) {
            j.dout_t = sc + j.scratch_per_thread * c->threads;
            j.lanes = j.dout_t + dout_s_floats;
        }
    }
    /* The o-vector path lays out dout itself (the din tasks must not). */
    const float *dout_t_own = ovec ? j.dout_t : NULL;
    if (ovec)
        j.dout_t = NULL;
    if (din) {
        j.vec = j.scratch != NULL;
        if (j.vec)
            for (int t = 0; t < d->kh * d->kw; t++)
                off[t] = (d->kh - 1 - t / d->kw) * pw + (d->kw - 1 - t % d->kw);
        detrun_pool_run(c->pool, d->n, din_task, &j);
    } else if (cvec) {
        detrun_pool_run(c->pool, d->n, transpose_task, &j);
    }
#if defined(__x86_64__)
    if (cvec) {
        detrun_pool_run(c->pool, LANES * ((d->o + DWC_NO - 1) / DWC_NO) * (d->c / 8), dwc_task,
                        &j);
        dwc_trees(&j);
        return;
    }
    if (ovec) {
        /* Enough tasks for the threads, as few as that allows (each task
         * lays out the samples' dout once); the grouping changes no order. */
        int tasks = d->c * (d->o / 8);
        j.dout_t = (float *)dout_t_own;
        j.lane_group = LANES;
        while (j.lane_group > 1 && tasks * (LANES / j.lane_group) < c->threads)
            j.lane_group /= 2;
        detrun_pool_run(c->pool, LANES / j.lane_group * tasks, dwo_task, &j);
        dwo_trees(&j);
        return;
    }
#endif
    j.vec = vector_dw_ok(c, d);
    if (c->mode == DETRUN_FAST && c->threads > 1 && d->n > DETRUN_CPU_FAST_CHUNK) {
        size_t wn = (size_t)d->o * d->c * d->kh * d->kw;
        j.scratch_per_thread = wn + (size_t)d->o;
        j.scratch = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads);
        if (j.scratch) {
            memset(dw, 0, wn * sizeof *dw);
            memset(db, 0, (size_t)d->o * sizeof *db);
            detrun_pool_run(c->pool, (d->n + DETRUN_CPU_FAST_CHUNK - 1) / DETRUN_CPU_FAST_CHUNK,
                            dw_chunk_task, &j);
            return;
        }
    }
    detrun_pool_run(c->pool, d->o * d->c, dw_task, &j);
}
