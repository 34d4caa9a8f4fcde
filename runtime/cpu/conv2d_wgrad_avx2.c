/*
 * conv2d_wgrad_avx2.c - the convolution's weight and bias gradients with
 * eight channels to a register (docs/determinism.md, "conv2d backward, weight
 * and bias gradients" and "CPU", R1, R2).
 *
 * Every register element runs one lane chain L[x mod 16] over samples, rows
 * and columns in the written order, then the fixed tree is applied per weight
 * (elementwise over a register: the same additions in the same order). Two
 * layouts:
 * - channel-vector (input channels a multiple of 8, a 3-wide kernel): input
 *   and dout copied channels last in blocks of 8, a task owns (lane, 4 output
 *   channels, 8 input channels); lanes as (o, tap, lane, c), bias lanes as
 *   (o, lane) after them;
 * - o-vector (output channels a multiple of 8, a 3x3 kernel): dout copied
 *   channels last a sample at a time, a task owns (lanes, c, 8 output
 *   channels); lanes as (c, tap, lane, o), bias lanes as (lane, o) after them.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "conv2d.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

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

/* Sample n of a (n, C, hw) tensor to (ceil(C / 8), n, hw, 8): channels last
 * in blocks of eight, for the channel-vector weight gradient (a copy: no
 * arithmetic). Lanes of a partial last block are left as they are. */
static void to_blocks(float *dst, const float *src, int N, int C, size_t hw, int n)
{
    const float *s = src + (size_t)n * C * hw;
    for (int c0 = 0; c0 < C; c0 += 8) {
        float *dd = dst + ((size_t)(c0 / 8) * N + n) * hw * 8;
        if (C - c0 >= 8) {
            planes_to_vectors(dd, s + (size_t)c0 * hw, hw);
            continue;
        }
        for (size_t p = 0; p < hw; p++)
            for (int k = 0; k < 8 && c0 + k < C; k++)
                dd[p * 8 + k] = s[(size_t)(c0 + k) * hw + p];
    }
}

void detrun_cpu_conv2d_to_channels_last(const conv_job *j, int n)
{
    const detrun_conv_dims *d = j->d;
    if (j->in_t)
        to_blocks(j->in_t, j->in, d->n, d->c, (size_t)d->h * d->w, n);
    to_blocks(j->dout_t, j->dout, d->n, d->o, (size_t)d->oh * d->ow, n);
}

static void transpose_task(void *arg, int n, int thread)
{
    (void)thread;
    detrun_cpu_conv2d_to_channels_last(arg, n);
}

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
    float *gs = j->dout_s + (size_t)thread * oplane * 8;
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
        j->db[o] = conv_lanes_tree(L);
    }
}

int detrun_cpu_conv2d_dw_cvec_run(conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    if (!j->lanes)
        return -1;
    /* Without an input gradient no task has laid out the samples yet. */
    if (!j->din)
        detrun_pool_run(j->cpu->pool, d->n, transpose_task, j);
    detrun_pool_run(j->cpu->pool, LANES * ((d->o + DWC_NO - 1) / DWC_NO) * (d->c / 8), dwc_task,
                    j);
    dwc_trees(j);
    return 0;
}

int detrun_cpu_conv2d_dw_ovec_run(conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    if (!j->lanes)
        return -1;
    /* Enough tasks for the threads, as few as that allows (each task lays
     * out the samples' dout once); the grouping changes no order. */
    int tasks = d->c * (d->o / 8), threads = j->cpu->threads;
    j->lane_group = LANES;
    while (j->lane_group > 1 && tasks * (LANES / j->lane_group) < threads)
        j->lane_group /= 2;
    detrun_pool_run(j->cpu->pool, LANES / j->lane_group * tasks, dwo_task, j);
    dwo_trees(j);
    return 0;
}

#endif
