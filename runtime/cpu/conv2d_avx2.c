/*
 * conv2d_avx2.c - the convolution's AVX2+FMA paths for stride 1: forward and
 * input gradient as a valid correlation on a pixel grid, and the 16-lane
 * weight and bias gradients of one (o, c) pair (docs/determinism.md, "CPU",
 * R1, R2).
 *
 * The grid: 8 neighbouring grid pixels share one load, 4 output channels by
 * 24 pixels stay in registers over the whole (channel, ky, kx) chain, go
 * whole into a grid buffer and from there by rows into the output (vector
 * stores only: masked stores are slow on some CPUs); threads take samples,
 * so the chain of every pixel is the written one whatever runs it. The
 * input gradient correlates a zero-padded copy of dout with the flipped
 * kernel, which performs the fmas on +0 that the text asks for. The pair
 * weight gradient holds the 16 lanes of each tap in two registers, lane =
 * output column mod 16.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "conv2d.h"
#include "maxpool.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

#define A_NV 3                 /* registers of 8 pixels per block */
#define A_BLOCK (8 * A_NV)
#define A_OCB 4                /* output channels per block */

/* NOC output channels from oc0 at NV registers of 8 grid pixels from p: up
 * to 12 accumulators stay in registers over the whole (ic, t) chain, then
 * go whole (ReLU'd when asked) into the grid buffer. */
AVX2 INLINE void grid_block(const grid_args *a, int oc0, const int NOC, int p, const int NV)
{
    __m256 acc[A_OCB][A_NV];
#pragma GCC unroll 4
    for (int k = 0; k < NOC; k++) {
        __m256 v0 = _mm256_set1_ps(a->init ? a->init[oc0 + k] : 0.0f);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[k][v] = v0;
    }
    const float *wb = a->w + (size_t)oc0 * a->w_oc;
    for (int ic = 0; ic < a->ics; ic++) {
        const float *ip = a->in + (size_t)ic * a->ips + p;
        const float *wp = wb + (size_t)ic * a->w_ic;
        for (int t = 0; t < a->taps; t++) {
            const float *q = ip + a->off[t];
            __m256 x[A_NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                x[v] = _mm256_loadu_ps(q + 8 * v);
#pragma GCC unroll 4
            for (int k = 0; k < NOC; k++) {
                __m256 b = _mm256_broadcast_ss(wp + (size_t)k * a->w_oc + t);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[k][v] = _mm256_fmadd_ps(x[v], b, acc[k][v]);
            }
        }
    }
    /* max with +0 gives +0 for NaN and -0, as `v > 0 ? v : +0`. */
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < NOC; k++) {
        float *dst = a->og + (size_t)(oc0 + k) * a->ogs + p;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            _mm256_storeu_ps(dst + 8 * v, a->relu ? _mm256_max_ps(acc[k][v], zero) : acc[k][v]);
    }
}

/* All pixels of NOC channels from oc0: blocks of 24, then the 1 to 3
 * registers left (their lanes past np are computed and dropped). */
AVX2 INLINE void grid_channels(const grid_args *a, int oc0, const int NOC)
{
    int p = 0;
    for (; p + A_BLOCK <= a->np; p += A_BLOCK)
        grid_block(a, oc0, NOC, p, A_NV);
    switch ((a->np - p + 7) / 8) {
    case 0: break;
    case 1: grid_block(a, oc0, NOC, p, 1); break;
    case 2: grid_block(a, oc0, NOC, p, 2); break;
    default: grid_block(a, oc0, NOC, p, 3); break;
    }
}

/* dst[r * dpitch + x] = src[r * spitch + x] for r < rows, x < cols: whole
 * vectors, a row's last one overlapping the one before it (both store the
 * same values). */
AVX2 static void copy_rows8(float *dst, size_t dpitch, const float *src, size_t spitch,
                            int rows, int cols)
{
    for (int r = 0; r < rows; r++, dst += dpitch, src += spitch) {
        if (cols < 8) {
            for (int x = 0; x < cols; x++)
                dst[x] = src[x];
            continue;
        }
        for (int x = 0;; x += 8) {
            if (x > cols - 8)
                x = cols - 8;
            _mm256_storeu_ps(dst + x, _mm256_loadu_ps(src + x));
            if (x == cols - 8)
                break;
        }
    }
}

AVX2 static void grid_corr(const grid_args *a, int wide)
{
    if (wide) {
        detrun_cpu_conv2d_grid_corr_avx512(a);
        return;
    }
    for (int oc0 = 0; oc0 < a->ocs; oc0 += A_OCB) {
        int noc = a->ocs - oc0 < A_OCB ? a->ocs - oc0 : A_OCB;
        switch (noc) {
        case 1: grid_channels(a, oc0, 1); break;
        case 2: grid_channels(a, oc0, 2); break;
        case 3: grid_channels(a, oc0, 3); break;
        default: grid_channels(a, oc0, 4); break;
        }
    }
    for (int oc = 0; oc < a->ocs; oc++)
        copy_rows8(a->out + (size_t)oc * a->ops, (size_t)a->ow, a->og + (size_t)oc * a->ogs,
                   (size_t)a->gw, a->oh, a->ow);
}

static void copy_rows(float *dst, size_t dpitch, const float *src, size_t spitch, int rows,
                      int cols, int wide)
{
    if (wide)
        detrun_cpu_conv2d_copy_rows_avx512(dst, dpitch, src, spitch, rows, cols);
    else
        copy_rows8(dst, dpitch, src, spitch, rows, cols);
}

/* 16 lanes (two registers A and B, lane = column mod 16) for NT taps from t0
 * of one (o, c) pair over samples [n0, n1), and the bias lanes when BIAS.
 *
 * Columns past the row's end must leave their lanes exactly as they are:
 * there dout is made -0 and the input +0, and fma(-0, +0, L) = L + (-0) = L
 * for every L, -0 included (a plain zero would turn -0 into +0). One code
 * path for every chunk keeps all lanes in registers; rows whose whole-vector
 * reads would leave the buffers (the batch's last) are read from copies.
 * Longer than a screen: the lanes live in registers across both row loops. */
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
        dw[t0 + t] = conv_lanes_tree(L);
    }
    if (BIAS) {
        _mm256_storeu_ps(L, BA);
        _mm256_storeu_ps(L + 8, BB);
        *db = conv_lanes_tree(L);
    }
}

/* 16 lanes of one (o, c) pair over samples [n0, n1), stride 1 and no
 * padding, every tap (in groups of at most five, 10 registers of lanes); the
 * bias lanes ride with the last group when db is not NULL. */
AVX2 void detrun_cpu_conv2d_dw_pair_avx2(float *dw, float *db, const float *dout,
                                         const float *in, const detrun_conv_dims *d, int o,
                                         int c, int n0, int n1)
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

/* Forward: task (sample). Reads past the sample's end (dropped pixels only)
 * find the next sample; the last samples are read from a copy followed by
 * zeros. */
/* Sample n's output into out (its o planes). */
static void forward_sample(const conv_job *j, int n, int thread, float *out)
{
    const detrun_conv_dims *d = j->d;
    float *X = j->scratch + (size_t)thread * j->scratch_per_thread;
    size_t in_n = (size_t)d->c * d->h * d->w;
    const float *src = j->in + (size_t)n * in_n;
    if ((size_t)(d->n - n) * in_n < j->in_floats) {
        memcpy(X, src, in_n * sizeof *X);
        memset(X + in_n, 0, (j->in_floats - in_n) * sizeof *X);
        src = X;
    }
    grid_args a;
    a.out = out;
    a.ops = (size_t)d->oh * d->ow;
    a.gw = d->w;
    a.oh = d->oh;
    a.ow = d->ow;
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
    a.relu = j->relu;
    a.og = X + j->in_floats;
    a.ogs = grid_plane(j->np);
    grid_corr(&a, j->cpu->simd >= DETRUN_CPU_SIMD_AVX512);
}

void detrun_cpu_conv2d_forward_grid_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    forward_sample(j, n, thread, j->out + (size_t)n * j->d->o * j->d->oh * j->d->ow);
}

/* Forward and max-pool of sample n: the output into j->out, or when that
 * is NULL into the thread's scratch after the padded input, and pooled from
 * there while it is in the near caches (AVX-512 only). */
void detrun_cpu_conv2d_forward_pooled_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    const detrun_pool_dims *pd = j->pd;
    size_t plane = (size_t)d->oh * d->ow, pplane = (size_t)pd->oh * pd->ow;
    float *out = j->out != NULL ? j->out + (size_t)n * d->o * plane
                                : j->scratch + (size_t)thread * j->scratch_per_thread + j->in_floats;
    forward_sample(j, n, thread, out);
    detrun_cpu_maxpool_2x2_avx512(j->pooled_out + (size_t)n * d->o * pplane,
                                  j->codes_out + (size_t)n * d->o * pd->oh *
                                                     DETRUN_MAXPOOL_CODE_ROW(pd->ow),
                                  out, d->o, pd->h, pd->w, pd->oh, pd->ow);
}

/* Input gradient: task (sample), after the sample's layout for the weight
 * gradient when that wants one. dout of sample n is copied into a
 * zero-padded buffer so that din is a valid correlation with the flipped
 * kernel: P[o][r][q] = dout[o][r - ay][q - ax]. Only the copied rows change
 * from sample to sample: the zeros around them were written once per call
 * (conv2d_dispatch.c). */
void detrun_cpu_conv2d_din_grid_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    if (j->per_sample)
        j->per_sample(j, n);
    int ph = d->h + d->kh - 1, pw = d->w + d->kw - 1;
    int ay = d->kh - 1 - d->pad_top, ax = d->kw - 1 - d->pad_left;
    int wide = j->cpu->simd >= DETRUN_CPU_SIMD_AVX512;
    float *P = j->scratch + (size_t)thread * j->scratch_per_thread;
    for (int o = 0; o < d->o; o++)
        copy_rows(P + (size_t)o * ph * pw + (size_t)ay * pw + ax, (size_t)pw,
                  j->dout + ((size_t)n * d->o + o) * d->oh * d->ow, (size_t)d->ow, d->oh, d->ow,
                  wide);
    grid_args a;
    a.out = j->din + (size_t)n * d->c * d->h * d->w;
    a.ops = (size_t)d->h * d->w;
    a.gw = pw;
    a.oh = d->h;
    a.ow = d->w;
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
    a.relu = 0;
    a.og = P + j->in_floats;
    a.ogs = grid_plane(j->np);
    grid_corr(&a, wide);
}

#endif
