/*
 * conv2d_avx2.c - the convolution's AVX2+FMA paths for stride 1: forward and
 * input gradient as a valid correlation on a pixel grid, and the 16-lane
 * weight and bias gradients of one (o, c) pair (docs/determinism.md, "CPU",
 * R1, R2).
 *
 * The grid: 8 neighbouring grid pixels share one load, 4 output channels by
 * 24 pixels stay in registers over the whole (channel, ky, kx) chain, and
 * threads take samples, so the chain of every pixel is the written one
 * whatever runs it. The input gradient correlates a zero-padded copy of dout
 * with the flipped kernel, which performs the fmas on +0 that the text asks
 * for. The pair weight gradient holds the 16 lanes of each tap in two
 * registers, lane = output column mod 16.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "conv2d.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

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
    if (a->wide) {
        detrun_cpu_conv2d_grid_corr_avx512(a);
        return;
    }
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
                            int gw, int relu, int wide)
{
    if (wide) {
        detrun_cpu_conv2d_grid_store_avx512(out, og, ogs, ocs, oh, ow, gw, relu);
        return;
    }
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
 * find the next sample; the last sample is read from a copy followed by
 * zeros. */
void detrun_cpu_conv2d_forward_grid_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
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
    a.wide = j->cpu->simd >= DETRUN_CPU_SIMD_AVX512;
    grid_corr(&a);
    grid_store(j->out + (size_t)n * d->o * d->oh * d->ow, G, (size_t)j->np, d->o, d->oh,
               d->ow, d->w, j->relu, a.wide);
}

/* Input gradient: task (sample), after the sample's layout for the weight
 * gradient when that wants one. */
void detrun_cpu_conv2d_din_grid_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    if (j->per_sample)
        j->per_sample(j, n);
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
    a.wide = j->cpu->simd >= DETRUN_CPU_SIMD_AVX512;
    grid_corr(&a);
    grid_store(j->din + (size_t)n * d->c * d->h * d->w, G, (size_t)j->np, d->c, d->h, d->w,
               pw, 0, a.wide);
}

#endif
