/*
 * conv2d.c - 2-D convolution (cross-correlation, NCHW), forward and backward
 * (docs/determinism.md, "conv2d forward", "conv2d backward, input gradient",
 * "conv2d backward, weight and bias gradients", R1, R2).
 *
 * Forward and input gradient are both a valid correlation: an output pixel is
 * one sequential fma chain over (channel, ky, kx). Threads take (sample,
 * channel pair) tiles, vector lanes take neighbouring pixels of a row, so the
 * chain of every pixel is the written one whatever runs it. The input
 * gradient correlates a zero-padded copy of dout with the flipped kernel,
 * which performs the fmas on +0 that the text asks for.
 *
 * Weight and bias gradients keep 16 partial sums per weight, lane = output
 * column mod 16, combined by a fixed tree; an AVX2 register pair holds the 16
 * lanes, a scalar array emulates them. Threads take (o, c) pairs.
 *
 * The vector paths cover stride 1 (and no input padding for the forward);
 * other shapes take the plain path, which follows the same text.
 */
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu.h"

#define LANES 16
#define MAX_TAPS 1024

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

/* A valid correlation, out[oc][y][x] = chain over ic, then tap t, of
 * fma(in[ic][y * iw + x + off[t]], w[oc * w_oc + ic * w_ic + t], acc). */
typedef struct corr_args {
    float *out;               /* one sample: (ocs, oh, ow) */
    const float *in;          /* one sample: (ics, ...), planes ips apart */
    size_t ips;
    int iw, ics, oh, ow;
    const float *w;
    size_t w_oc, w_ic;
    const int *off;
    int taps;
    const float *init;        /* per oc, or NULL for +0 */
    int relu;
    const float *in_end;      /* no read may reach this */
} corr_args;

#define SLOTS 4

/* Output channels oc0 and oc1 (equal when only one is left) at SLOTS row
 * pieces of 8 pixels. MASKED loads only active lanes, for the pieces at the
 * end of the input buffer. */
AVX2 INLINE void corr_group(const corr_args *a, int oc0, int oc1, const int *ibase,
                            const int *obase, const int *act, const int MASKED)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask[SLOTS];
    for (int s = 0; s < SLOTS; s++)
        mask[s] = _mm256_cmpgt_epi32(_mm256_set1_epi32(act[s]), lane);
    __m256 i0 = _mm256_set1_ps(a->init ? a->init[oc0] : 0.0f);
    __m256 i1 = _mm256_set1_ps(a->init ? a->init[oc1] : 0.0f);
    __m256 acc0[SLOTS], acc1[SLOTS];
    for (int s = 0; s < SLOTS; s++) {
        acc0[s] = i0;
        acc1[s] = i1;
    }
    for (int ic = 0; ic < a->ics; ic++) {
        const float *ip = a->in + (size_t)ic * a->ips;
        const float *w0 = a->w + (size_t)oc0 * a->w_oc + (size_t)ic * a->w_ic;
        const float *w1 = a->w + (size_t)oc1 * a->w_oc + (size_t)ic * a->w_ic;
        for (int t = 0; t < a->taps; t++) {
            const float *p = ip + a->off[t];
            __m256 b0 = _mm256_broadcast_ss(w0 + t);
            __m256 b1 = _mm256_broadcast_ss(w1 + t);
            for (int s = 0; s < SLOTS; s++) {
                __m256 x = MASKED ? _mm256_maskload_ps(p + ibase[s], mask[s])
                                  : _mm256_loadu_ps(p + ibase[s]);
                acc0[s] = _mm256_fmadd_ps(x, b0, acc0[s]);
                acc1[s] = _mm256_fmadd_ps(x, b1, acc1[s]);
            }
        }
    }
    size_t plane = (size_t)a->oh * a->ow;
    for (int s = 0; s < SLOTS; s++) {
        if (act[s] == 0)
            continue;
        for (int k = 0; k < 2; k++) {
            if (k == 1 && oc1 == oc0)
                break;
            __m256 v = k ? acc1[s] : acc0[s];
            if (a->relu)
                v = _mm256_max_ps(v, _mm256_setzero_ps());   /* +0 for NaN and -0 too */
            float *dst = a->out + (size_t)(k ? oc1 : oc0) * plane + obase[s];
            if (act[s] == 8)
                _mm256_storeu_ps(dst, v);
            else
                _mm256_maskstore_ps(dst, mask[s], v);
        }
    }
}

AVX2 static void corr_channels(const corr_args *a, int oc0, int oc1)
{
    int maxoff = 0;
    for (int t = 0; t < a->taps; t++)
        if (a->off[t] > maxoff)
            maxoff = a->off[t];
    int per_row = (a->ow + 7) / 8;
    int pieces = a->oh * per_row;
    for (int p0 = 0; p0 < pieces; p0 += SLOTS) {
        int ibase[SLOTS], obase[SLOTS], act[SLOTS];
        int masked = 0;
        for (int s = 0; s < SLOTS; s++) {
            int p = p0 + s < pieces ? p0 + s : pieces - 1;
            int y = p / per_row, xv = (p % per_row) * 8;
            ibase[s] = y * a->iw + xv;
            obase[s] = y * a->ow + xv;
            act[s] = p0 + s < pieces ? (a->ow - xv < 8 ? a->ow - xv : 8) : 0;
            /* Reads of the last channel plane past its end would leave the
             * buffer; those pieces load active lanes only. */
            const float *last = a->in + (size_t)(a->ics - 1) * a->ips + ibase[s] + maxoff + 8;
            if (last > a->in_end)
                masked = 1;
        }
        if (masked)
            corr_group(a, oc0, oc1, ibase, obase, act, 1);
        else
            corr_group(a, oc0, oc1, ibase, obase, act, 0);
    }
}

AVX2 INLINE void dw_group(float *dw, float *db, const float *dout, const float *in,
                          const detrun_conv_dims *d, int o, int c, int n0, int n1, int t0,
                          const int NT, const int BIAS)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 negzero = _mm256_set1_ps(-0.0f);
    size_t oplane = (size_t)d->oh * d->ow, iplane = (size_t)d->h * d->w;
    const float *dout_end = dout + (size_t)d->n * d->o * oplane;
    const float *in_end = in + (size_t)d->n * d->c * iplane;
    int maxoff = (d->kh - 1) * d->w + d->kw - 1;
    int off[4] = { 0, 0, 0, 0 };
    for (int t = 0; t < NT; t++)
        off[t] = ((t0 + t) / d->kw) * d->w + (t0 + t) % d->kw;
    __m256 LA[4], LB[4], BA = _mm256_setzero_ps(), BB = _mm256_setzero_ps();
    for (int t = 0; t < NT; t++)
        LA[t] = LB[t] = _mm256_setzero_ps();
    for (int n = n0; n < n1; n++) {
        const float *po = dout + ((size_t)n * d->o + o) * oplane;
        const float *pi = in + ((size_t)n * d->c + c) * iplane;
        for (int y = 0; y < d->oh; y++) {
            const float *gr = po + (size_t)y * d->ow;
            const float *ir = pi + (size_t)y * d->w;
            for (int x0 = 0; x0 < d->ow; x0 += LANES) {
                int aa = d->ow - x0 < 8 ? d->ow - x0 : 8;
                int ab = d->ow - x0 - 8 < 8 ? d->ow - x0 - 8 : 8;
                __m256 ma = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(aa), lane));
                __m256 mb = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(ab), lane));
                /* Whole-vector loads past the row stay inside the buffers
                 * except at their very ends. */
                int safe = gr + x0 + LANES <= dout_end && ir + x0 + maxoff + LANES <= in_end;
                __m256 ga, gb, va[4], vb[4];
                if (safe) {
                    ga = _mm256_and_ps(_mm256_loadu_ps(gr + x0), ma);
                    gb = _mm256_and_ps(_mm256_loadu_ps(gr + x0 + 8), mb);
                    for (int t = 0; t < NT; t++) {
                        va[t] = _mm256_and_ps(_mm256_loadu_ps(ir + x0 + off[t]), ma);
                        vb[t] = _mm256_and_ps(_mm256_loadu_ps(ir + x0 + off[t] + 8), mb);
                    }
                } else {
                    ga = _mm256_maskload_ps(gr + x0, _mm256_castps_si256(ma));
                    gb = _mm256_maskload_ps(gr + x0 + 8, _mm256_castps_si256(mb));
                    for (int t = 0; t < NT; t++) {
                        va[t] = _mm256_maskload_ps(ir + x0 + off[t], _mm256_castps_si256(ma));
                        vb[t] = _mm256_maskload_ps(ir + x0 + off[t] + 8, _mm256_castps_si256(mb));
                    }
                }
                ga = _mm256_or_ps(ga, _mm256_andnot_ps(ma, negzero));
                gb = _mm256_or_ps(gb, _mm256_andnot_ps(mb, negzero));
                if (BIAS) {
                    BA = _mm256_add_ps(BA, ga);
                    BB = _mm256_add_ps(BB, gb);
                }
                for (int t = 0; t < NT; t++) {
                    LA[t] = _mm256_fmadd_ps(ga, va[t], LA[t]);
                    LB[t] = _mm256_fmadd_ps(gb, vb[t], LB[t]);
                }
            }
        }
    }
    float L[LANES];
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
 * padding, every tap (four at a time); bias lanes too when db is not NULL.
 *
 * Columns past the row's end must leave their lanes exactly as they are:
 * there dout is made -0 and the input +0, and fma(-0, +0, L) = L + (-0) = L
 * for every L, -0 included (a plain zero would turn -0 into +0). */
AVX2 static void dw_pair_avx2(float *dw, float *db, const float *dout, const float *in,
                              const detrun_conv_dims *d, int o, int c, int n0, int n1)
{
    int taps = d->kh * d->kw;
    for (int t0 = 0; t0 < taps; t0 += 4) {
        int nt = taps - t0 < 4 ? taps - t0 : 4;
        if (t0 == 0 && db) {
            switch (nt) {
            case 1: dw_group(dw, db, dout, in, d, o, c, n0, n1, t0, 1, 1); break;
            case 2: dw_group(dw, db, dout, in, d, o, c, n0, n1, t0, 2, 1); break;
            case 3: dw_group(dw, db, dout, in, d, o, c, n0, n1, t0, 3, 1); break;
            default: dw_group(dw, db, dout, in, d, o, c, n0, n1, t0, 4, 1); break;
            }
            continue;
        }
        switch (nt) {
        case 1: dw_group(dw, NULL, dout, in, d, o, c, n0, n1, t0, 1, 0); break;
        case 2: dw_group(dw, NULL, dout, in, d, o, c, n0, n1, t0, 2, 0); break;
        case 3: dw_group(dw, NULL, dout, in, d, o, c, n0, n1, t0, 3, 0); break;
        default: dw_group(dw, NULL, dout, in, d, o, c, n0, n1, t0, 4, 0); break;
        }
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
    int ocs_tiles;            /* channel pairs */
    const int *off;
    float *scratch;
    size_t scratch_per_thread;
} conv_job;

static int vector_forward_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return c->simd && d->stride == 1 && d->pad_top == 0 && d->pad_left == 0 &&
           d->kh * d->kw <= MAX_TAPS && d->oh == d->h - d->kh + 1 && d->ow == d->w - d->kw + 1;
}

static void forward_task(void *arg, int task, int thread)
{
    (void)thread;
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int n = task / j->ocs_tiles, pair = task % j->ocs_tiles;
#if defined(__x86_64__)
    if (j->vec) {
        corr_args a;
        a.out = j->out + (size_t)n * d->o * d->oh * d->ow;
        a.in = j->in + (size_t)n * d->c * d->h * d->w;
        a.ips = (size_t)d->h * d->w;
        a.iw = d->w;
        a.ics = d->c;
        a.oh = d->oh;
        a.ow = d->ow;
        a.w = j->w;
        a.w_oc = (size_t)d->c * d->kh * d->kw;
        a.w_ic = (size_t)d->kh * d->kw;
        a.off = j->off;
        a.taps = d->kh * d->kw;
        a.init = j->bias;
        a.relu = j->relu;
        a.in_end = j->in + (size_t)d->n * d->c * d->h * d->w;
        int oc0 = 2 * pair, oc1 = oc0 + 1 < d->o ? oc0 + 1 : oc0;
        corr_channels(&a, oc0, oc1);
        return;
    }
#endif
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
    j.vec = vector_forward_ok(c, d);
    if (j.vec)
        for (int t = 0; t < d->kh * d->kw; t++)
            off[t] = (t / d->kw) * d->w + t % d->kw;
    j.off = off;
    j.ocs_tiles = (d->o + 1) / 2;
    detrun_pool_run(c->pool, d->n * j.ocs_tiles, forward_task, &j);
}

/* Input gradient: one task per sample. */
static void din_task(void *arg, int n, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
#if defined(__x86_64__)
    if (j->vec) {
        /* dout of sample n, zero-padded so that din is a valid correlation
         * with the flipped kernel: P[o][r][q] = dout[o][r - ay][q - ax]. */
        int ph = d->h + d->kh - 1, pw = d->w + d->kw - 1;
        int ay = d->kh - 1 - d->pad_top, ax = d->kw - 1 - d->pad_left;
        float *P = j->scratch + (size_t)thread * j->scratch_per_thread;
        memset(P, 0, j->scratch_per_thread * sizeof *P);
        for (int o = 0; o < d->o; o++) {
            const float *src = j->dout + ((size_t)n * d->o + o) * d->oh * d->ow;
            float *dst = P + (size_t)o * ph * pw;
            for (int y = 0; y < d->oh; y++)
                memcpy(dst + (size_t)(y + ay) * pw + ax, src + (size_t)y * d->ow,
                       (size_t)d->ow * sizeof *dst);
        }
        corr_args a;
        a.out = j->din + (size_t)n * d->c * d->h * d->w;
        a.in = P;
        a.ips = (size_t)ph * pw;
        a.iw = pw;
        a.ics = d->o;
        a.oh = d->h;
        a.ow = d->w;
        a.w = j->w;
        a.w_oc = (size_t)d->kh * d->kw;
        a.w_ic = (size_t)d->c * d->kh * d->kw;
        a.off = j->off;
        a.taps = d->kh * d->kw;
        a.init = NULL;
        a.relu = 0;
        a.in_end = P + j->scratch_per_thread;
        for (int c0 = 0; c0 < d->c; c0 += 2)
            corr_channels(&a, c0, c0 + 1 < d->c ? c0 + 1 : c0);
        return;
    }
#endif
    (void)thread;
    for (int c = 0; c < d->c; c++)
        din_plain(j->din, j->dout, j->w, d, n, c);
}

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
    if (din) {
        int ph = d->h + d->kh - 1, pw = d->w + d->kw - 1;
        j.scratch_per_thread = (size_t)d->o * ph * pw + 8;
        j.scratch = stride1 ? detrun_cpu_scratch(c, j.scratch_per_thread * c->threads) : NULL;
        j.vec = j.scratch != NULL;
        if (j.vec)
            for (int t = 0; t < d->kh * d->kw; t++)
                off[t] = (d->kh - 1 - t / d->kw) * pw + (d->kw - 1 - t % d->kw);
        detrun_pool_run(c->pool, d->n, din_task, &j);
    }
    j.vec = vector_forward_ok(c, d);
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
