/*
 * test_kernels_order.c - the deterministic orders, bit for bit.
 *
 * Each kernel is compared with a plain implementation of the text of
 * docs/determinism.md written here from that text alone (sequential fma
 * chains, the 16 lanes and their tree), at 1, 2, 3 and 4 threads, with the
 * vector paths on and off: all must give the same bits (the conv weight
 * gradients also with non-finite inputs in columns that a vector load holds
 * in lanes past a row's end). Also: a sample's result does not depend on its
 * batch (R7), and fast mode at two or more threads really does change the
 * bits of weight gradients.
 * (Over 600 lines: one file holds the whole text's transcription.)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_backend.h"
#include "mathf.h"

#include "../common.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float frand1(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * 0x1p-52 - 1.0);
}

static float *frand(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x + 64);
    for (size_t i = 0; i < n; i++)
        x[i] = frand1() * scale;
    return x;
}

/* Some exact zeros and negative zeros, as ReLU outputs give. */
static void sprinkle_zeros(float *x, size_t n)
{
    for (size_t i = 0; i < n; i += 5)
        x[i] = (i / 5) % 2 ? 0.0f : -0.0f;
}

/* The path a level runs here (a level the CPU lacks runs the best below it;
 * it is then checked twice). */
static const char *path_name(int simd)
{
    int best = detrun_cpu_simd_best();
    return detrun_cpu_simd_name(simd < best ? simd : best);
}

static int same_bits(const void *a, const void *b, size_t floats)
{
    return memcmp(a, b, floats * 4) == 0;
}

/* ---- the text of docs/determinism.md, written out ------------------------------ */

static float doc_in(const float *in, const detrun_conv_dims *d, int n, int c, int iy, int ix)
{
    if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
        return 0.0f;    /* "inputs outside the image read as +0 and the fma is still performed" */
    return in[(((size_t)n * d->c + c) * d->h + iy) * d->w + ix];
}

static void doc_conv_forward(float *out, const float *in, const float *w, const float *bias,
                             const detrun_conv_dims *d, int relu)
{
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->o; o++)
            for (int y = 0; y < d->oh; y++)
                for (int x = 0; x < d->ow; x++) {
                    float acc = bias[o];
                    for (int c = 0; c < d->c; c++)
                        for (int ky = 0; ky < d->kh; ky++)
                            for (int kx = 0; kx < d->kw; kx++)
                                acc = fmaf(doc_in(in, d, n, c, y * d->stride + ky - d->pad_top,
                                                  x * d->stride + kx - d->pad_left),
                                           w[(((size_t)o * d->c + c) * d->kh + ky) * d->kw + kx],
                                           acc);
                    if (relu)
                        acc = acc > 0 ? acc : 0.0f;
                    out[(((size_t)n * d->o + o) * d->oh + y) * d->ow + x] = acc;
                }
}

static void doc_conv_din(float *din, const float *dout, const float *w, const detrun_conv_dims *d)
{
    int s = d->stride;
    for (int n = 0; n < d->n; n++)
        for (int c = 0; c < d->c; c++)
            for (int iy = 0; iy < d->h; iy++)
                for (int ix = 0; ix < d->w; ix++) {
                    float acc = 0.0f;
                    for (int o = 0; o < d->o; o++)
                        for (int ky = 0; ky < d->kh; ky++)
                            for (int kx = 0; kx < d->kw; kx++) {
                                /* the (y, x) with y*s + ky - pad_top == iy, if any */
                                int ty = iy + d->pad_top - ky, tx = ix + d->pad_left - kx;
                                if (ty % s || tx % s)
                                    continue;
                                int y = ty / s, x = tx / s;
                                float g = y >= 0 && y < d->oh && x >= 0 && x < d->ow
                                              ? dout[(((size_t)n * d->o + o) * d->oh + y) * d->ow + x]
                                              : 0.0f;
                                acc = fmaf(g, w[(((size_t)o * d->c + c) * d->kh + ky) * d->kw + kx],
                                           acc);
                            }
                    din[(((size_t)n * d->c + c) * d->h + iy) * d->w + ix] = acc;
                }
}

static float doc_tree(float L[16])
{
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            L[l] = L[l] + L[l + h];
    return L[0];
}

static void doc_conv_dw(float *dw, float *db, const float *dout, const float *in,
                        const detrun_conv_dims *d)
{
    for (int o = 0; o < d->o; o++) {
        for (int c = 0; c < d->c; c++)
            for (int ky = 0; ky < d->kh; ky++)
                for (int kx = 0; kx < d->kw; kx++) {
                    float L[16] = { 0 };
                    for (int n = 0; n < d->n; n++)
                        for (int y = 0; y < d->oh; y++)
                            for (int x = 0; x < d->ow; x++)
                                L[x % 16] = fmaf(
                                    dout[(((size_t)n * d->o + o) * d->oh + y) * d->ow + x],
                                    doc_in(in, d, n, c, y * d->stride + ky - d->pad_top,
                                           x * d->stride + kx - d->pad_left),
                                    L[x % 16]);
                    dw[(((size_t)o * d->c + c) * d->kh + ky) * d->kw + kx] = doc_tree(L);
                }
        float L[16] = { 0 };
        for (int n = 0; n < d->n; n++)
            for (int y = 0; y < d->oh; y++)
                for (int x = 0; x < d->ow; x++)
                    L[x % 16] = L[x % 16] + dout[(((size_t)n * d->o + o) * d->oh + y) * d->ow + x];
        db[o] = doc_tree(L);
    }
}

static void doc_dense_forward(float *out, const float *in, const float *w, const float *b, int n,
                              int k, int u, int relu)
{
    for (int s = 0; s < n; s++)
        for (int j = 0; j < u; j++) {
            float acc = b[j];
            for (int i = 0; i < k; i++)
                acc = fmaf(in[(size_t)s * k + i], w[(size_t)i * u + j], acc);
            out[(size_t)s * u + j] = relu ? (acc > 0 ? acc : 0.0f) : acc;
        }
}

static void doc_dense_backward(float *din, float *dw, float *db, const float *dout,
                               const float *in, const float *w, int n, int k, int u)
{
    for (int s = 0; s < n; s++)
        for (int i = 0; i < k; i++) {
            float acc = 0.0f;
            for (int j = 0; j < u; j++)
                acc = fmaf(dout[(size_t)s * u + j], w[(size_t)i * u + j], acc);
            din[(size_t)s * k + i] = acc;
        }
    for (int i = 0; i < k; i++)
        for (int j = 0; j < u; j++) {
            float acc = 0.0f;
            for (int s = 0; s < n; s++)
                acc = fmaf(in[(size_t)s * k + i], dout[(size_t)s * u + j], acc);
            dw[(size_t)i * u + j] = acc;
        }
    for (int j = 0; j < u; j++) {
        float acc = 0.0f;
        for (int s = 0; s < n; s++)
            acc = acc + dout[(size_t)s * u + j];
        db[j] = acc;
    }
}

static void doc_softmax(float *dl, float *loss, float *corr, const float *x, const int32_t *lab,
                        int n, int classes)
{
    for (int s = 0; s < n; s++) {
        const float *r = x + (size_t)s * classes;
        int am = 0;
        for (int j = 1; j < classes; j++)
            if (r[j] > r[am])
                am = j;
        float m = r[am], sum = 0.0f;
        for (int j = 0; j < classes; j++)
            sum = sum + detrun_expf(r[j] - m);
        loss[s] = detrun_logf(sum) - (r[lab[s]] - m);
        corr[s] = am == lab[s] ? 1.0f : 0.0f;
        for (int j = 0; j < classes; j++)
            dl[(size_t)s * classes + j] =
                (detrun_expf(r[j] - m) / sum - (j == lab[s] ? 1.0f : 0.0f)) / (float)n;
    }
}

static void doc_maxpool(float *out, int32_t *am, const float *in, const detrun_pool_dims *d)
{
    for (int p = 0; p < d->n * d->c; p++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                const float *pl = in + (size_t)p * d->h * d->w;
                int bi = (oy * d->stride) * d->w + ox * d->stride;
                for (int ky = 0; ky < d->size; ky++)
                    for (int kx = 0; kx < d->size; kx++) {
                        int i = (oy * d->stride + ky) * d->w + ox * d->stride + kx;
                        if (pl[i] > pl[bi])   /* "the first maximum wins (v > best)" */
                            bi = i;
                    }
                out[(size_t)p * d->oh * d->ow + oy * d->ow + ox] = pl[bi];
                am[(size_t)p * d->oh * d->ow + oy * d->ow + ox] = bi;
            }
}

static void doc_adam(float *p, const float *g, float *m, float *v, size_t count,
                     const detrun_adam_params *a)
{
    float lr_t = (a->lr * sqrtf(1.0f - a->beta2_t)) / (1.0f - a->beta1_t);
    for (size_t i = 0; i < count; i++) {
        m[i] = a->beta1 * m[i] + (1.0f - a->beta1) * g[i];
        v[i] = a->beta2 * v[i] + (1.0f - a->beta2) * (g[i] * g[i]);
        p[i] = p[i] - (lr_t * m[i]) / (sqrtf(v[i]) + a->eps);
    }
}

/* ---- conv: every path and thread count against the text ------------------------- */

static void check_conv(const char *label, detrun_conv_dims d)
{
    size_t ni = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.o * d.c * d.kh * d.kw;
    size_t no = (size_t)d.n * d.o * d.oh * d.ow;
    float *in = frand(ni, 1.0f), *w = frand(nw, 0.5f), *bias = frand((size_t)d.o, 0.1f);
    float *dout = frand(no, 0.1f);
    sprinkle_zeros(in, ni);
    sprinkle_zeros(dout, no);
    float *ref_out = malloc(no * 4), *ref_outr = malloc(no * 4), *ref_din = malloc(ni * 4);
    float *ref_dw = malloc(nw * 4), *ref_db = malloc((size_t)d.o * 4);
    doc_conv_forward(ref_out, in, w, bias, &d, 0);
    doc_conv_forward(ref_outr, in, w, bias, &d, 1);
    doc_conv_din(ref_din, dout, w, &d);
    doc_conv_dw(ref_dw, ref_db, dout, in, &d);
    float *out = malloc(no * 4), *din = malloc(ni * 4), *dw = malloc(nw * 4);
    float *db = malloc((size_t)d.o * 4);
    for (int simd = 0; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        for (int threads = 1; threads <= 4; threads++) {
            detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, simd);
            b->ops->conv2d_forward(b, out, in, w, bias, &d, 0);
            CHECK(same_bits(out, ref_out, no), "conv %s forward: bits differ from the text "
                  "(%d threads, %s)", label, threads, path_name(simd));
            b->ops->conv2d_forward(b, out, in, w, bias, &d, 1);
            CHECK(same_bits(out, ref_outr, no), "conv %s forward+relu: bits differ (%d threads, %s)",
                  label, threads, path_name(simd));
            b->ops->conv2d_backward(b, din, dw, db, dout, in, w, &d);
            CHECK(same_bits(din, ref_din, ni), "conv %s din: bits differ (%d threads, %s)",
                  label, threads, path_name(simd));
            CHECK(same_bits(dw, ref_dw, nw), "conv %s dw: bits differ (%d threads, %s)",
                  label, threads, path_name(simd));
            CHECK(same_bits(db, ref_db, (size_t)d.o), "conv %s db: bits differ (%d threads, %s)",
                  label, threads, path_name(simd));
            b->ops->destroy(b);
        }
    }
    /* R7: a sample's output is the same at batch 1. */
    if (d.n > 1) {
        detrun_backend *b = cpu_backend(2, DETRUN_DETERMINISTIC, 1);
        detrun_conv_dims one = d;
        one.n = 1;
        size_t last = (size_t)(d.n - 1);
        b->ops->conv2d_forward(b, out, in + last * d.c * d.h * d.w, w, bias, &one, 0);
        CHECK(same_bits(out, ref_out + last * d.o * d.oh * d.ow, (size_t)d.o * d.oh * d.ow),
              "conv %s: the last sample's output depends on the batch", label);
        b->ops->destroy(b);
    }
    free(in); free(w); free(bias); free(dout); free(ref_out); free(ref_outr); free(ref_din);
    free(ref_dw); free(ref_db); free(out); free(din); free(dw); free(db);
}

/* Weight and bias gradients with non-finite values where a path must not
 * let them in: +inf at the last column of every input row of one sample
 * (a term of the kx = kw - 1 weights only; the other taps' vector loads
 * reach it in lanes past the row's end, which must leave their sums as they
 * are) and NaN in the floats after the input and dout tensors (read by no
 * term). The text's results are then finite except for the last kernel
 * column. */
static void check_conv_dw_nonfinite(const char *label, detrun_conv_dims d)
{
    size_t ni = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.o * d.c * d.kh * d.kw;
    size_t no = (size_t)d.n * d.o * d.oh * d.ow;
    float *in = frand(ni, 1.0f), *w = frand(nw, 0.5f), *dout = frand(no, 0.1f);
    sprinkle_zeros(dout, no);
    int s = d.n > 1 ? 1 : 0;
    for (int c = 0; c < d.c; c++)
        for (int y = 0; y < d.h; y++)
            in[(((size_t)s * d.c + c) * d.h + y) * d.w + d.w - 1] = INFINITY;
    for (int i = 0; i < 16; i++) {
        in[ni + (size_t)i] = NAN;
        dout[no + (size_t)i] = NAN;
    }
    float *ref_dw = malloc(nw * 4), *ref_db = malloc((size_t)d.o * 4);
    doc_conv_dw(ref_dw, ref_db, dout, in, &d);
    int finite = 1;
    for (size_t i = 0; i < nw; i++)
        if ((int)(i % (size_t)d.kw) != d.kw - 1)
            finite &= isfinite(ref_dw[i]) != 0;
    CHECK(finite, "conv %s: the text's dw should be finite away from the last kernel column",
          label);
    float *din = malloc(ni * 4), *dw = malloc(nw * 4), *db = malloc((size_t)d.o * 4);
    for (int simd = 0; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        for (int threads = 1; threads <= 4; threads++) {
            detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, simd);
            b->ops->conv2d_backward(b, din, dw, db, dout, in, w, &d);
            CHECK(same_bits(dw, ref_dw, nw), "conv %s dw with inf and NaN: bits differ "
                  "(%d threads, %s)", label, threads, path_name(simd));
            CHECK(same_bits(db, ref_db, (size_t)d.o), "conv %s db with inf and NaN: bits "
                  "differ (%d threads, %s)", label, threads, path_name(simd));
            b->ops->destroy(b);
        }
    }
    free(in); free(w); free(dout); free(ref_dw); free(ref_db); free(din); free(dw); free(db);
}

static void check_dense(int n, int k, int u)
{
    size_t ni = (size_t)n * k, nw = (size_t)k * u, no = (size_t)n * u;
    float *in = frand(ni, 1.0f), *w = frand(nw, 0.3f), *bias = frand((size_t)u, 0.1f);
    float *dout = frand(no, 0.1f);
    sprinkle_zeros(in, ni);
    float *ro = malloc(no * 4), *rr = malloc(no * 4), *rdin = malloc(ni * 4);
    float *rdw = malloc(nw * 4), *rdb = malloc((size_t)u * 4);
    doc_dense_forward(ro, in, w, bias, n, k, u, 0);
    doc_dense_forward(rr, in, w, bias, n, k, u, 1);
    doc_dense_backward(rdin, rdw, rdb, dout, in, w, n, k, u);
    float *o = malloc(no * 4), *din = malloc(ni * 4), *dw = malloc(nw * 4), *db = malloc((size_t)u * 4);
    for (int simd = 0; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        for (int threads = 1; threads <= 4; threads++) {
            detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, simd);
            const char *path = path_name(simd);
            b->ops->dense_forward(b, o, in, w, bias, n, k, u, 0);
            CHECK(same_bits(o, ro, no), "dense %dx%d->%d forward (%d threads, %s)", n, k, u, threads, path);
            b->ops->dense_forward(b, o, in, w, bias, n, k, u, 1);
            CHECK(same_bits(o, rr, no), "dense forward+relu (%d threads, %s)", threads, path);
            b->ops->dense_backward(b, din, dw, db, dout, in, w, n, k, u);
            CHECK(same_bits(din, rdin, ni), "dense %dx%d->%d din (%d threads, %s)", n, k, u, threads, path);
            CHECK(same_bits(dw, rdw, nw), "dense %dx%d->%d dw (%d threads, %s)", n, k, u, threads, path);
            CHECK(same_bits(db, rdb, (size_t)u), "dense db (%d threads, %s)", threads, path);
            b->ops->dense_backward(b, NULL, dw, db, dout, in, w, n, k, u);
            CHECK(same_bits(dw, rdw, nw), "dense dw with din NULL (%d threads, %s)", threads, path);
            b->ops->destroy(b);
        }
    }
    if (n > 1) {
        detrun_backend *b = cpu_backend(3, DETRUN_DETERMINISTIC, 1);
        b->ops->dense_forward(b, o, in + (size_t)(n - 1) * k, w, bias, 1, k, u, 0);
        CHECK(same_bits(o, ro + (size_t)(n - 1) * u, (size_t)u),
              "dense: the last sample's output depends on the batch");
        b->ops->destroy(b);
    }
    free(in); free(w); free(bias); free(dout); free(ro); free(rr); free(rdin); free(rdw);
    free(rdb); free(o); free(din); free(dw); free(db);
}

/* Softmax against the text and dropout against the plain path, on every
 * path (the dropout from an offset that is not a multiple of 4: a plain head,
 * the vector body, a plain tail). */
static void check_paths(const float *x, size_t count, const float *logits, const int32_t *lab,
                        const float *rdl, const float *rloss, const float *rcorr)
{
    enum { N = 100, C = 10 };
    detrun_rng_addr addr = { 7, 2, 5, 99 };
    float *plain_drop = malloc(count * 4), *plain_mask = malloc(count * 4);
    float *drop = malloc(count * 4), *mask = malloc(count * 4);
    for (int simd = 0; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        detrun_backend *b = cpu_backend(2, DETRUN_DETERMINISTIC, simd);
        b->ops->dropout_forward(b, simd ? drop : plain_drop, simd ? mask : plain_mask, x + 1,
                                count - 1, 0.2f, &addr);
        if (simd)
            CHECK(same_bits(drop, plain_drop, count - 1) && same_bits(mask, plain_mask, count - 1),
                  "dropout: the %s path differs from the plain one", path_name(simd));
        float dl[N * C], loss[N], corr[N];
        b->ops->softmax_xent(b, dl, loss, corr, logits, lab, N, C);
        CHECK(same_bits(dl, rdl, N * C) && same_bits(loss, rloss, N) && same_bits(corr, rcorr, N),
              "softmax_xent: bits differ from the text (%s)", path_name(simd));
        b->ops->destroy(b);
    }
    free(plain_drop); free(plain_mask); free(drop); free(mask);
}

/* The other kernels: the same bits at 1..4 threads and equal to the text. */
static void check_elementwise(void)
{
    enum { N = 100, C = 10 };
    /* More than one block of every elementwise kernel, and an odd tail. */
    size_t count = 100037;
    float *x = frand(count, 2.0f), *logits = frand(N * C, 8.0f);
    int32_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = (int32_t)((i * 7) % C);
    float rdl[N * C], rloss[N], rcorr[N];
    doc_softmax(rdl, rloss, rcorr, logits, lab, N, C);
    size_t np = 27738;
    float *p0 = frand(np, 0.2f), *g = frand(np, 0.01f);
    float *rp = malloc(np * 4), *rm = calloc(np, 4), *rv = calloc(np, 4);
    memcpy(rp, p0, np * 4);
    detrun_adam_params a = { 1e-3f, 0.9f, 0.999f, 1e-7f, 1.0f, 1.0f };
    for (int t = 0; t < 3; t++) {
        a.beta1_t *= a.beta1;
        a.beta2_t *= a.beta2;
        doc_adam(rp, g, rm, rv, np, &a);
    }
    detrun_pool_dims pd = { 7, 8, 11, 26, 5, 13, 2, 2 };
    size_t pin = (size_t)7 * 8 * 11 * 26, pout = (size_t)7 * 8 * 5 * 13;
    float *pi = frand(pin, 1.0f);
    for (size_t i = 0; i < pin; i += 3)
        pi[i] = pi[i + 1 < pin ? i + 1 : i];    /* ties */
    float *pg = frand(pout, 1.0f);
    float *doc_po = malloc(pout * 4), *doc_pdin = calloc(pin, 4);
    int32_t *doc_am = malloc(pout * 4);
    doc_maxpool(doc_po, doc_am, pi, &pd);
    for (size_t o = 0; o < pout; o++) {   /* "din is cleared to +0, then din[argmax] += dout" */
        float *pl = doc_pdin + o / (size_t)(pd.oh * pd.ow) * (size_t)(pd.h * pd.w);
        pl[doc_am[o]] = pl[doc_am[o]] + pg[o];
    }
    for (int simd = 0; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        detrun_backend *b = cpu_backend(2, DETRUN_DETERMINISTIC, simd);
        float *po = malloc(pout * 4), *pdin = malloc(pin * 4);
        int32_t *am = malloc(pout * 4);   /* the backend's own form of the choices */
        b->ops->maxpool_forward(b, po, am, pi, &pd);
        b->ops->maxpool_backward(b, pdin, pg, am, &pd);
        CHECK(same_bits(po, doc_po, pout) && same_bits(pdin, doc_pdin, pin),
              "maxpool: differs from the text (%s)", path_name(simd));
        free(po);
        free(pdin);
        free(am);
        b->ops->destroy(b);
    }
    free(doc_po);
    free(doc_pdin);
    free(doc_am);
    check_paths(x, count, logits, lab, rdl, rloss, rcorr);
    float *ref_relu = NULL, *ref_mask = NULL, *ref_drop = NULL, *ref_pool = NULL, *ref_pdin = NULL;
    int32_t *ref_am = NULL;
    detrun_rng_addr addr = { 42, 3, 6, 1234 };
    for (int threads = 1; threads <= 4; threads++) {
        detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, 1);
        float *y = malloc(count * 4), *mask = malloc(count * 4), *dr = malloc(count * 4);
        b->ops->relu_forward(b, y, x, count);
        b->ops->dropout_forward(b, dr, mask, x, count, 0.2f, &addr);
        float dl[N * C], loss[N], corr[N];
        b->ops->softmax_xent(b, dl, loss, corr, logits, lab, N, C);
        CHECK(same_bits(dl, rdl, N * C) && same_bits(loss, rloss, N) && same_bits(corr, rcorr, N),
              "softmax_xent: bits differ from the text (%d threads)", threads);
        float *p = malloc(np * 4), *m = calloc(np, 4), *v = calloc(np, 4);
        memcpy(p, p0, np * 4);
        detrun_adam_params s = { 1e-3f, 0.9f, 0.999f, 1e-7f, 1.0f, 1.0f };
        for (int t = 0; t < 3; t++) {
            s.beta1_t *= s.beta1;
            s.beta2_t *= s.beta2;
            b->ops->adam_step(b, p, g, m, v, np, &s);
        }
        CHECK(same_bits(p, rp, np) && same_bits(m, rm, np) && same_bits(v, rv, np),
              "adam: bits differ from the text (%d threads)", threads);
        float *po = malloc(pout * 4), *pdin = malloc(pin * 4);
        int32_t *am = malloc(pout * 4);
        b->ops->maxpool_forward(b, po, am, pi, &pd);
        b->ops->maxpool_backward(b, pdin, pg, am, &pd);
        if (threads == 1) {
            ref_relu = y;
            ref_mask = mask;
            ref_drop = dr;
            ref_pool = po;
            ref_pdin = pdin;
            ref_am = am;
        } else {
            CHECK(same_bits(y, ref_relu, count), "relu: %d threads differ from 1", threads);
            CHECK(same_bits(mask, ref_mask, count) && same_bits(dr, ref_drop, count),
                  "dropout: %d threads differ from 1", threads);
            CHECK(same_bits(po, ref_pool, pout) && same_bits(pdin, ref_pdin, pin),
                  "maxpool: %d threads differ from 1", threads);
            free(y); free(mask); free(dr); free(po); free(pdin); free(am);
        }
        free(p); free(m); free(v);
        b->ops->destroy(b);
    }
    free(x); free(logits); free(p0); free(g); free(rp); free(rm); free(rv); free(pi); free(pg);
    free(ref_relu); free(ref_mask); free(ref_drop); free(ref_pool); free(ref_pdin); free(ref_am);
}

/* Largest |a - b| relative to the largest |b| of the tensor: reordered sums
 * with cancellation differ by rounding of the big terms, not of the result. */
static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double big = 0, diff = 0;
    for (size_t i = 0; i < n; i++) {
        big = fmax(big, fabs((double)b[i]));
        diff = fmax(diff, fabs((double)a[i] - b[i]));
    }
    return diff / big;
}

/* The gather's scaling, every byte value, on every path: b / 255.0f. */
static void check_gather(void)
{
    uint8_t img[2 * 256 + 3];
    for (int i = 0; i < (int)sizeof img; i++)
        img[i] = (uint8_t)(i * 7 + 3);
    uint8_t lab[3] = { 4, 9, 1 };
    uint32_t rows[3] = { 2, 0, 1 };
    size_t px = 171;   /* odd: the vector loop and the plain tail both run */
    float x[3 * 171];
    int32_t y[3];
    for (int simd = 0; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        for (int threads = 1; threads <= 2; threads++) {
            detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, simd);
            b->ops->gather(b, x, y, img, lab, px, rows, 3);
            int bad = 0;
            for (int r = 0; r < 3; r++) {
                for (size_t p = 0; p < px; p++) {
                    float want = (float)img[rows[r] * px + p] / 255.0f;
                    bad += !same_bits(&x[r * px + p], &want, 1);
                }
                bad += y[r] != lab[rows[r]];
            }
            CHECK(!bad, "gather: %d values differ from b / 255.0f (%d threads, %s)", bad, threads,
                  path_name(simd));
            b->ops->destroy(b);
        }
    }
    /* All 256 byte values through the vector loop. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    float xa[256];
    uint32_t row0 = 0;
    detrun_backend *b = cpu_backend(1, DETRUN_DETERMINISTIC, DETRUN_CPU_SIMD_AVX512);
    b->ops->gather(b, xa, NULL, all, NULL, 256, &row0, 1);
    int bad = 0;
    for (int i = 0; i < 256; i++) {
        float want = (float)i / 255.0f;
        bad += !same_bits(&xa[i], &want, 1);
    }
    CHECK(!bad, "gather: %d of the 256 byte values differ from b / 255.0f", bad);
    b->ops->destroy(b);
}

/* Fast mode: chunks added in finishing order must, at 2+ threads, give other
 * bits than the written order at least once in a bounded number of tries,
 * while staying numerically the same gradient. Where the CPU has the vector
 * conv weight gradients, fast mode takes those (faster than its chunks):
 * there its conv dw is the written order's, and the dense one must differ. */
static void check_fast_mode(void)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        printf("test_kernels_order: fast-mode check skipped: this machine has 1 core\n");
        return;
    }
    detrun_conv_dims d = { 100, 8, 13, 13, 8, 11, 11, 3, 3, 1, 0, 0 };
    size_t ni = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.o * d.c * 9, no = (size_t)d.n * d.o * 121;
    float *in = frand(ni, 1.0f), *w = frand(nw, 0.3f), *dout = frand(no, 0.1f);
    float *rdw = malloc(nw * 4), *rdb = malloc(8 * 4), *dw = malloc(nw * 4), *db = malloc(8 * 4);
    doc_conv_dw(rdw, rdb, dout, in, &d);
    int n = 100, k = 200, u = 128;
    float *x = frand((size_t)n * k, 1.0f), *g = frand((size_t)n * u, 0.1f), *wd = frand((size_t)k * u, 0.1f);
    float *rw = malloc((size_t)k * u * 4), *rb = malloc((size_t)u * 4), *rdin = malloc((size_t)n * k * 4);
    float *fw = malloc((size_t)k * u * 4), *fb = malloc((size_t)u * 4);
    doc_dense_backward(rdin, rw, rb, g, x, wd, n, k, u);
    for (int threads = 2; threads <= 4; threads += 2) {
        detrun_backend *b = cpu_backend(threads, DETRUN_FAST, 1);
        int vec = detrun_cpu_has_avx2();
        int conv_differs = 0, dense_differs = 0, tries = 0;
        double worst = 0;
        for (; tries < 400 && !((vec || conv_differs) && dense_differs); tries++) {
            b->ops->conv2d_backward(b, NULL, dw, db, dout, in, w, &d);
            conv_differs |= !same_bits(dw, rdw, nw);
            worst = fmax(worst, max_rel_diff(dw, rdw, nw));
            b->ops->dense_backward(b, NULL, fw, fb, g, x, wd, n, k, u);
            dense_differs |= !same_bits(fw, rw, (size_t)k * u);
            worst = fmax(worst, max_rel_diff(fw, rw, (size_t)k * u));
        }
        if (vec)
            CHECK(!conv_differs, "fast mode, %d threads: the vector conv dw should be the "
                  "written order's", threads);
        else
            CHECK(conv_differs, "fast mode, %d threads: conv dw never differed from the "
                  "written order in %d tries", threads, tries);
        CHECK(dense_differs, "fast mode, %d threads: dense dw never differed in %d tries",
              threads, tries);
        CHECK(worst < 1e-5, "fast mode, %d threads: gradients differ by %g (relative)", threads, worst);
        printf("test_kernels_order: fast mode at %d threads differed after %d tries\n", threads, tries);
        b->ops->destroy(b);
    }
    /* Repeats differ from each other, not only from the written order: the
     * quarters of a block meet in the order they finish. */
    for (int threads = 2; threads <= 4; threads += 2) {
        detrun_backend *b = cpu_backend(threads, DETRUN_FAST, 1);
        b->ops->dense_backward(b, NULL, rw, rb, g, x, wd, n, k, u);
        int tries = 0, differs = 0;
        for (; tries < 2000 && !differs; tries++) {
            b->ops->dense_backward(b, NULL, fw, fb, g, x, wd, n, k, u);
            differs = !same_bits(fw, rw, (size_t)k * u);
        }
        CHECK(differs, "fast mode, %d threads: dense dw repeated the same bits %d times", threads,
              tries);
        printf("test_kernels_order: fast-mode repeats at %d threads differed after %d tries\n",
               threads, tries);
        b->ops->destroy(b);
    }
    /* At one thread fast mode has nothing to reorder: it is the written order. */
    detrun_backend *b = cpu_backend(1, DETRUN_FAST, 1);
    b->ops->conv2d_backward(b, NULL, dw, db, dout, in, w, &d);
    CHECK(same_bits(dw, rdw, nw), "fast mode at 1 thread should follow the written order");
    b->ops->destroy(b);
    free(in); free(w); free(dout); free(rdw); free(rdb); free(dw); free(db); free(x); free(g);
    free(wd); free(rw); free(rb); free(rdin); free(fw); free(fb);
}

int main(void)
{
    if (!detrun_cpu_has_avx2())
        printf("test_kernels_order: this CPU has no AVX2+FMA; only the plain path is checked\n");
    else if (!detrun_cpu_has_avx512())
        printf("test_kernels_order: this CPU has no AVX-512F; its paths are not checked\n");
    /* The reference network's layers (batch 23), then odd shapes. */
    check_conv("28x28x1->8", (detrun_conv_dims){ 23, 1, 28, 28, 8, 26, 26, 3, 3, 1, 0, 0 });
    check_conv("13x13x8->8", (detrun_conv_dims){ 23, 8, 13, 13, 8, 11, 11, 3, 3, 1, 0, 0 });
    check_conv("2x3 kernel, 3 outputs", (detrun_conv_dims){ 3, 3, 5, 40, 3, 4, 38, 2, 3, 1, 0, 0 });
    check_conv("5 wide", (detrun_conv_dims){ 2, 2, 6, 5, 5, 4, 3, 3, 3, 1, 0, 0 });
    check_conv("same", (detrun_conv_dims){ 3, 2, 9, 20, 3, 9, 20, 3, 3, 1, 1, 1 });
    check_conv("stride 2", (detrun_conv_dims){ 2, 2, 9, 11, 3, 5, 6, 3, 3, 2, 1, 1 });
    /* Rows of exactly one chunk of 16 columns, of one chunk and one column,
     * and of two full chunks and a part (with blocks of 1, 2 and 3 output
     * channels); as many rows as a block of rows, and fewer. */
    check_conv("16 wide", (detrun_conv_dims){ 3, 3, 10, 18, 4, 8, 16, 3, 3, 1, 0, 0 });
    check_conv("17 wide", (detrun_conv_dims){ 2, 1, 4, 19, 3, 2, 17, 3, 3, 1, 0, 0 });
    check_conv("3 rows", (detrun_conv_dims){ 2, 2, 5, 9, 4, 3, 7, 3, 3, 1, 0, 0 });
    check_conv("2 rows", (detrun_conv_dims){ 2, 3, 4, 7, 5, 2, 5, 3, 3, 1, 0, 0 });
    check_conv("40 wide, 7 outputs", (detrun_conv_dims){ 2, 2, 5, 42, 7, 3, 40, 3, 3, 1, 0, 0 });
    check_conv_dw_nonfinite("28x28x1->8",
                            (detrun_conv_dims){ 5, 1, 28, 28, 8, 26, 26, 3, 3, 1, 0, 0 });
    check_conv_dw_nonfinite("13x13x8->8",
                            (detrun_conv_dims){ 5, 8, 13, 13, 8, 11, 11, 3, 3, 1, 0, 0 });
    check_conv_dw_nonfinite("16 wide", (detrun_conv_dims){ 3, 3, 10, 18, 4, 8, 16, 3, 3, 1, 0, 0 });
    /* The packed correlation's blocks (8 or 4 channels by 48 or 24 pixels)
     * and their ends: output widths and pixel counts on and off multiples of
     * 8, 16 and 48, channel counts past a block, wider and 1-wide kernels. */
    check_conv("16 wide, 9 outputs", (detrun_conv_dims){ 3, 3, 18, 18, 9, 16, 16, 3, 3, 1, 0, 0 });
    check_conv("48 wide, 12 outputs", (detrun_conv_dims){ 2, 1, 4, 50, 12, 2, 48, 3, 3, 1, 0, 0 });
    check_conv("17 wide, 1 output", (detrun_conv_dims){ 3, 4, 7, 19, 1, 5, 17, 3, 3, 1, 0, 0 });
    check_conv("1 pixel", (detrun_conv_dims){ 5, 2, 3, 3, 6, 1, 1, 3, 3, 1, 0, 0 });
    check_conv("5x5 same", (detrun_conv_dims){ 3, 3, 11, 13, 10, 11, 13, 5, 5, 1, 2, 2 });
    check_conv("1x1", (detrun_conv_dims){ 4, 5, 6, 7, 7, 6, 7, 1, 1, 1, 0, 0 });
    check_conv("1x4 kernel, 33 wide", (detrun_conv_dims){ 2, 2, 3, 36, 5, 3, 33, 1, 4, 1, 0, 0 });
    check_conv("padded rows only", (detrun_conv_dims){ 2, 2, 8, 9, 3, 8, 7, 3, 3, 1, 1, 0 });
    check_dense(23, 200, 128);
    check_dense(23, 128, 10);
    check_dense(5, 13, 37);
    /* Every remainder of the 8-row AVX-512 tile and of the 8x8 transposition. */
    check_dense(100, 200, 128);
    check_dense(17, 31, 47);
    check_dense(15, 9, 33);
    check_dense(1, 1, 1);
    check_elementwise();
    check_gather();
    check_fast_mode();
    return test_report("test_kernels_order");
}
