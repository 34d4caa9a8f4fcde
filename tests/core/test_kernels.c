/*
 * test_kernels.c - every CPU kernel against an independent double-precision
 * reference written here: forward values, backward by central finite
 * differences of the double forward, and the written tie and edge rules
 * (docs/determinism.md). Bit-for-bit orders are checked by
 * test_kernels_order.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "philox.h"

#include "../common.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(void)   /* [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-52 - 1.0;
}

static float *frand(size_t n, double scale)
{
    float *x = malloc(n * sizeof *x + 64);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(urand() * scale);
    return x;
}

static double *todouble(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d + 8);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static detrun_backend *make_backend(int threads)
{
    detrun_backend *b = NULL;
    char err[256];
    detrun_status s = detrun_cpu_backend_new(&b, threads, DETRUN_DETERMINISTIC, err, sizeof err);
    if (s != DETRUN_OK) {
        fprintf(stderr, "cpu backend: %s\n", err);
        exit(1);
    }
    return b;
}

/* |got - want| <= tol * (1 + |want|) for all; reports the first miss. */
static void close_all(const char *what, const float *got, const double *want, size_t n,
                      double tol)
{
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])))) {
            CHECK(0, "%s[%zu]: got %.9g, want %.9g", what, i, got[i], want[i]);
            return;
        }
    }
}

/* ---- convolution ---------------------------------------------------------- */

static void conv_ref(double *out, const double *in, const double *w, const double *b,
                     const detrun_conv_dims *d)
{
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->o; o++)
            for (int y = 0; y < d->oh; y++)
                for (int x = 0; x < d->ow; x++) {
                    double acc = b[o];
                    for (int c = 0; c < d->c; c++)
                        for (int ky = 0; ky < d->kh; ky++)
                            for (int kx = 0; kx < d->kw; kx++) {
                                int iy = y * d->stride + ky - d->pad_top;
                                int ix = x * d->stride + kx - d->pad_left;
                                if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                    continue;
                                acc += in[((size_t)(n * d->c + c) * d->h + iy) * d->w + ix] *
                                       w[((size_t)(o * d->c + c) * d->kh + ky) * d->kw + kx];
                            }
                    out[((size_t)(n * d->o + o) * d->oh + y) * d->ow + x] = acc;
                }
}

/* f = sum G * conv(in, w, b): the loss whose gradients the kernel returns. */
static double conv_loss(const double *G, const double *in, const double *w, const double *b,
                        const detrun_conv_dims *d, double *tmp)
{
    conv_ref(tmp, in, w, b, d);
    size_t no = (size_t)d->n * d->o * d->oh * d->ow;
    double f = 0;
    for (size_t i = 0; i < no; i++)
        f += G[i] * tmp[i];
    return f;
}

static void fd_grad(double *grad, double *x, size_t n, const double *G, double *in, double *w,
                    double *b, const detrun_conv_dims *d, double *tmp)
{
    const double h = 1e-3;
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double fp = conv_loss(G, in, w, b, d, tmp);
        x[i] = keep - h;
        double fm = conv_loss(G, in, w, b, d, tmp);
        x[i] = keep;
        grad[i] = (fp - fm) / (2 * h);
    }
}

static void test_conv(int threads, detrun_conv_dims d, const char *label)
{
    detrun_backend *b = make_backend(threads);
    size_t ni = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.o * d.c * d.kh * d.kw;
    size_t no = (size_t)d.n * d.o * d.oh * d.ow;
    float *in = frand(ni, 1.0), *w = frand(nw, 0.5), *bias = frand((size_t)d.o, 0.5);
    float *out = malloc(no * sizeof *out), *outr = malloc(no * sizeof *outr);
    double *din_ = todouble(in, ni), *dw_ = todouble(w, nw), *db_ = todouble(bias, (size_t)d.o);
    double *ref = malloc(no * sizeof *ref), *tmp = malloc(no * sizeof *tmp);
    char what[128];

    conv_ref(ref, din_, dw_, db_, &d);
    b->ops->conv2d_forward(b, out, in, w, bias, &d, 0);
    snprintf(what, sizeof what, "conv %s forward (%d threads)", label, threads);
    close_all(what, out, ref, no, 1e-5);
    b->ops->conv2d_forward(b, outr, in, w, bias, &d, 1);
    for (size_t i = 0; i < no; i++)
        ref[i] = ref[i] > 0 ? ref[i] : 0;
    snprintf(what, sizeof what, "conv %s forward+relu (%d threads)", label, threads);
    close_all(what, outr, ref, no, 1e-5);

    float *G = frand(no, 1.0);
    double *Gd = todouble(G, no);
    float *gin = malloc(ni * sizeof *gin), *gw = malloc(nw * sizeof *gw);
    float *gb = malloc((size_t)d.o * sizeof *gb);
    b->ops->conv2d_backward(b, gin, gw, gb, G, in, w, &d);
    double *fd = malloc((ni > nw ? ni : nw) * sizeof *fd + 64);
    fd_grad(fd, din_, ni, Gd, din_, dw_, db_, &d, tmp);
    snprintf(what, sizeof what, "conv %s din (%d threads)", label, threads);
    close_all(what, gin, fd, ni, 1e-4);
    fd_grad(fd, dw_, nw, Gd, din_, dw_, db_, &d, tmp);
    snprintf(what, sizeof what, "conv %s dw (%d threads)", label, threads);
    close_all(what, gw, fd, nw, 1e-4);
    fd_grad(fd, db_, (size_t)d.o, Gd, din_, dw_, db_, &d, tmp);
    snprintf(what, sizeof what, "conv %s db (%d threads)", label, threads);
    close_all(what, gb, fd, (size_t)d.o, 1e-4);

    /* din may be NULL (first layer): the weight gradient is unchanged. */
    float *gw2 = malloc(nw * sizeof *gw2), *gb2 = malloc((size_t)d.o * sizeof *gb2);
    b->ops->conv2d_backward(b, NULL, gw2, gb2, G, in, w, &d);
    CHECK(memcmp(gw, gw2, nw * sizeof *gw) == 0 && memcmp(gb, gb2, (size_t)d.o * 4) == 0,
          "conv %s: dw with din == NULL differs", label);

    free(in); free(w); free(bias); free(out); free(outr); free(din_); free(dw_); free(db_);
    free(ref); free(tmp); free(G); free(Gd); free(gin); free(gw); free(gb); free(fd);
    free(gw2); free(gb2);
    b->ops->destroy(b);
}

/* ---- dense ------------------------------------------------------------------- */

static void dense_ref(double *out, const double *in, const double *w, const double *b, int n,
                      int k, int u)
{
    for (int s = 0; s < n; s++)
        for (int j = 0; j < u; j++) {
            double acc = b[j];
            for (int i = 0; i < k; i++)
                acc += in[(size_t)s * k + i] * w[(size_t)i * u + j];
            out[(size_t)s * u + j] = acc;
        }
}

static double dense_loss(const double *G, const double *in, const double *w, const double *b,
                         int n, int k, int u, double *tmp)
{
    dense_ref(tmp, in, w, b, n, k, u);
    double f = 0;
    for (size_t i = 0; i < (size_t)n * u; i++)
        f += G[i] * tmp[i];
    return f;
}

static void test_dense(int threads, int n, int k, int u)
{
    detrun_backend *b = make_backend(threads);
    size_t ni = (size_t)n * k, nw = (size_t)k * u, no = (size_t)n * u;
    float *in = frand(ni, 1.0), *w = frand(nw, 0.5), *bias = frand((size_t)u, 0.5);
    float *out = malloc(no * 4), *G = frand(no, 1.0);
    double *ind = todouble(in, ni), *wd = todouble(w, nw), *bd = todouble(bias, (size_t)u);
    double *Gd = todouble(G, no), *ref = malloc(no * 8), *tmp = malloc(no * 8);
    dense_ref(ref, ind, wd, bd, n, k, u);
    b->ops->dense_forward(b, out, in, w, bias, n, k, u, 0);
    close_all("dense forward", out, ref, no, 1e-5);
    b->ops->dense_forward(b, out, in, w, bias, n, k, u, 1);
    for (size_t i = 0; i < no; i++)
        ref[i] = ref[i] > 0 ? ref[i] : 0;
    close_all("dense forward+relu", out, ref, no, 1e-5);

    float *gin = malloc(ni * 4), *gw = malloc(nw * 4), *gb = malloc((size_t)u * 4);
    b->ops->dense_backward(b, gin, gw, gb, G, in, w, n, k, u);
    const double h = 1e-3;
    struct { double *x; size_t len; const float *got; const char *name; } parts[] = {
        { ind, ni, gin, "dense din" }, { wd, nw, gw, "dense dw" }, { bd, (size_t)u, gb, "dense db" }
    };
    for (int p = 0; p < 3; p++) {
        double *fd = malloc(parts[p].len * 8);
        for (size_t i = 0; i < parts[p].len; i++) {
            double keep = parts[p].x[i];
            parts[p].x[i] = keep + h;
            double fp = dense_loss(Gd, ind, wd, bd, n, k, u, tmp);
            parts[p].x[i] = keep - h;
            double fm = dense_loss(Gd, ind, wd, bd, n, k, u, tmp);
            parts[p].x[i] = keep;
            fd[i] = (fp - fm) / (2 * h);
        }
        char what[96];
        snprintf(what, sizeof what, "%s (%d threads, n %d, k %d, units %d)", parts[p].name,
                 threads, n, k, u);
        close_all(what, parts[p].got, fd, parts[p].len, 1e-4);
        free(fd);
    }
    free(in); free(w); free(bias); free(out); free(G); free(ind); free(wd); free(bd);
    free(Gd); free(ref); free(tmp); free(gin); free(gw); free(gb);
    b->ops->destroy(b);
}

/* ---- maxpool ------------------------------------------------------------------ */

static void pool_ref(double *out, const double *in, const detrun_pool_dims *d)
{
    for (int p = 0; p < d->n * d->c; p++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                double m = -INFINITY;
                for (int ky = 0; ky < d->size; ky++)
                    for (int kx = 0; kx < d->size; kx++) {
                        double v = in[((size_t)p * d->h + oy * d->stride + ky) * d->w +
                                      ox * d->stride + kx];
                        if (v > m)
                            m = v;
                    }
                out[((size_t)p * d->oh + oy) * d->ow + ox] = m;
            }
}

static void test_maxpool(int threads)
{
    detrun_backend *b = make_backend(threads);
    detrun_pool_dims d = { 2, 3, 7, 6, 3, 3, 2, 2 };
    size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.c * d.oh * d.ow;
    float *in = frand(ni, 1.0), *out = malloc(no * 4), *G = frand(no, 1.0);
    float *din = malloc(ni * 4);
    int32_t *am = malloc(no * 4);
    double *ind = todouble(in, ni), *ref = malloc(no * 8), *tmp = malloc(no * 8);
    pool_ref(ref, ind, &d);
    b->ops->maxpool_forward(b, out, am, in, &d);
    close_all("maxpool forward", out, ref, no, 0);
    b->ops->maxpool_backward(b, din, G, am, &d);
    const double h = 1e-4;
    double *fd = malloc(ni * 8);
    for (size_t i = 0; i < ni; i++) {
        double keep = ind[i], fp = 0, fm = 0;
        ind[i] = keep + h;
        pool_ref(tmp, ind, &d);
        for (size_t o = 0; o < no; o++)
            fp += G[o] * tmp[o];
        ind[i] = keep - h;
        pool_ref(tmp, ind, &d);
        for (size_t o = 0; o < no; o++)
            fm += G[o] * tmp[o];
        ind[i] = keep;
        fd[i] = (fp - fm) / (2 * h);
    }
    close_all("maxpool backward", din, fd, ni, 1e-6);

    /* Ties (R5): the first maximum in row-major window order wins, forward
     * and backward; -0 and +0 tie too. */
    detrun_pool_dims t = { 1, 1, 2, 6, 1, 3, 2, 2 };
    float tin[12] = { 1, 3, 5, 5, -0.0f, 0.0f,
                      3, 2, 5, 5, 0.0f, -0.0f };
    float tout[3], tg[3] = { 10, 20, 30 }, tdin[12];
    int32_t tam[3];
    b->ops->maxpool_forward(b, tout, tam, tin, &t);
    CHECK(tam[0] == 1 && tam[1] == 2 && tam[2] == 4,
          "maxpool ties: argmax %d %d %d, want 1 2 4", tam[0], tam[1], tam[2]);
    CHECK(tout[0] == 3 && tout[1] == 5 && tout[2] == 0 && signbit(tout[2]),
          "maxpool ties: values %g %g %g (the first maximum, -0 kept)", tout[0], tout[1], tout[2]);
    b->ops->maxpool_backward(b, tdin, tg, tam, &t);
    float want[12] = { 0, 10, 20, 0, 30, 0, 0, 0, 0, 0, 0, 0 };
    CHECK(memcmp(tdin, want, sizeof want) == 0, "maxpool ties: gradient not on the first maximum");

    free(in); free(out); free(G); free(din); free(am); free(ind); free(ref); free(tmp); free(fd);
    b->ops->destroy(b);
}

/* ---- elementwise --------------------------------------------------------------- */

static void test_relu(int threads)
{
    detrun_backend *b = make_backend(threads);
    size_t n = 40000;
    float *x = frand(n, 1.0), *y = malloc(n * 4), *g = frand(n, 1.0), *dx = malloc(n * 4);
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = NAN;
    x[3] = 1e-45f;
    b->ops->relu_forward(b, y, x, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = x[i] > 0 ? x[i] : 0.0f;
        if (memcmp(&want, &y[i], 4) != 0)
            bad++;
    }
    CHECK(bad == 0, "relu forward: %d wrong", bad);
    CHECK(y[1] == 0 && !signbit(y[1]) && y[2] == 0 && y[3] == 1e-45f, "relu forward at -0, NaN, denormal");
    b->ops->relu_backward(b, dx, g, y, n);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        if (dx[i] != (y[i] > 0 ? g[i] : 0.0f))
            bad++;
    CHECK(bad == 0, "relu backward: %d wrong", bad);
    CHECK(dx[0] == 0 && dx[1] == 0 && dx[3] == g[3], "relu derivative at 0 must be 0");
    /* In place. */
    memcpy(dx, x, n * 4);
    b->ops->relu_forward(b, dx, dx, n);
    CHECK(memcmp(dx, y, n * 4) == 0, "relu forward in place");
    free(x); free(y); free(g); free(dx);
    b->ops->destroy(b);
}

static void test_dropout(int threads)
{
    detrun_backend *b = make_backend(threads);
    size_t n = 1000003;
    float rate = 0.2f;
    float *x = frand(n, 1.0), *y = malloc(n * 4), *mask = malloc(n * 4);
    float *y2 = malloc(n * 4), *mask2 = malloc(n * 4);
    detrun_rng_addr a = { 0x123456789abcdefull, 3, 5, 77 };
    b->ops->dropout_forward(b, y, mask, x, n, rate, &a);
    float scale = 1.0f / (1.0f - rate);
    size_t kept = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        /* The mask, addressed independently of the kernel's blocking. */
        uint32_t word = detrun_philox_word(a.seed, DETRUN_RNG_DROPOUT, a.stream, a.layer, a.step, i);
        int keep = (float)(word >> 8) * 0x1p-24f >= rate;
        kept += (size_t)keep;
        float m = keep ? scale : 0.0f;
        if (mask[i] != m || y[i] != x[i] * m)
            bad++;
    }
    CHECK(bad == 0, "dropout: %d elements differ from the addressed Philox draws", bad);
    double p = (double)kept / (double)n;
    /* 1 - rate within 5 standard deviations (sd = 0.0004). */
    CHECK(fabs(p - 0.8) < 0.002, "dropout keep rate %.5f, want 0.8", p);
    b->ops->dropout_forward(b, y2, mask2, x, n, rate, &a);
    CHECK(memcmp(mask, mask2, n * 4) == 0 && memcmp(y, y2, n * 4) == 0,
          "dropout mask not reproducible");
    a.step++;
    b->ops->dropout_forward(b, y2, mask2, x, n, rate, &a);
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += mask[i] == mask2[i];
    CHECK(same < n * 3 / 4, "dropout: the next step draws a different mask (%zu of %zu equal)",
          same, n);
    float *g = frand(n, 1.0), *dx = malloc(n * 4);
    b->ops->dropout_backward(b, dx, g, mask, n);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        if (dx[i] != g[i] * mask[i])
            bad++;
    CHECK(bad == 0, "dropout backward: %d wrong", bad);
    free(x); free(y); free(mask); free(y2); free(mask2); free(g); free(dx);
    b->ops->destroy(b);
}

static void test_softmax(int threads)
{
    detrun_backend *b = make_backend(threads);
    enum { N = 6, C = 10 };
    float x[N * C];
    int32_t lab[N] = { 3, 0, 9, 2, 5, 7 };
    for (int i = 0; i < N * C; i++)
        x[i] = (float)(urand() * 6.0);
    /* Large logits (stability), equal logits (argmax tie), a tiny gap. */
    for (int j = 0; j < C; j++) {
        x[1 * C + j] = j == 0 ? 1000.0f : (j == 4 ? -1000.0f : 990.0f + j);
        x[2 * C + j] = -80.0f;
        x[3 * C + j] = j == 2 ? 88.0f : -88.0f;
    }
    float loss[N], corr[N], dl[N * C];
    b->ops->softmax_xent(b, dl, loss, corr, x, lab, N, C);
    for (int i = 0; i < N; i++) {
        double m = -INFINITY;
        int am = 0;
        for (int j = 0; j < C; j++)
            if (x[i * C + j] > m) {
                m = x[i * C + j];
                am = j;
            }
        double s = 0;
        for (int j = 0; j < C; j++)
            s += exp((double)x[i * C + j] - m);
        double want = log(s) + m - x[i * C + lab[i]];
        CHECK(fabs(loss[i] - want) <= 2e-6 * (1 + fabs(want)), "softmax loss[%d] = %.9g, want %.9g",
              i, loss[i], want);
        CHECK(corr[i] == (am == lab[i] ? 1.0f : 0.0f), "softmax correct[%d]", i);
        for (int j = 0; j < C; j++) {
            double g = (exp((double)x[i * C + j] - m) / s - (j == lab[i])) / N;
            CHECK(fabs(dl[i * C + j] - g) <= 1e-6, "softmax dlogits[%d][%d] = %.9g, want %.9g", i,
                  j, dl[i * C + j], g);
        }
    }
    CHECK(corr[2] == 0.0f, "all-equal logits: the first maximum (0) is not label 9");
    /* Gradient check of the batch-mean loss by central differences. */
    const double h = 1e-4;
    double xd[N * C];
    for (int i = 0; i < N * C; i++)
        xd[i] = x[i];
    for (int i = 0; i < N * C; i += 7) {
        if (i / C == 1)
            continue;    /* logits of 1000 leave no room for a double step */
        double f[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            double keep = xd[i];
            xd[i] = keep + (sgn ? -h : h);
            double tot = 0;
            for (int r = 0; r < N; r++) {
                double m = -INFINITY, s = 0;
                for (int j = 0; j < C; j++)
                    m = xd[r * C + j] > m ? xd[r * C + j] : m;
                for (int j = 0; j < C; j++)
                    s += exp(xd[r * C + j] - m);
                tot += log(s) + m - xd[r * C + lab[r]];
            }
            f[sgn] = tot / N;
            xd[i] = keep;
        }
        double fd = (f[0] - f[1]) / (2 * h);
        CHECK(fabs(dl[i] - fd) <= 1e-5, "softmax gradient check [%d]: %.9g vs %.9g", i, dl[i], fd);
    }
    /* Evaluation: no dlogits. */
    float loss2[N], corr2[N];
    b->ops->softmax_xent(b, NULL, loss2, corr2, x, lab, N, C);
    CHECK(memcmp(loss, loss2, sizeof loss) == 0, "softmax loss without dlogits differs");
    b->ops->destroy(b);
}

static void test_optimisers(int threads)
{
    detrun_backend *b = make_backend(threads);
    size_t n = 20011;
    float *p = frand(n, 1.0), *m = calloc(n, 4), *v = calloc(n, 4);
    double *pd = todouble(p, n), *md = calloc(n, 8), *vd = calloc(n, 8);
    detrun_adam_params a = { 1e-3f, 0.9f, 0.999f, 1e-7f, 1.0f, 1.0f };
    for (int t = 1; t <= 5; t++) {
        float *g = frand(n, t == 3 ? 1e-3 : 1.0);
        a.beta1_t = a.beta1_t * a.beta1;
        a.beta2_t = a.beta2_t * a.beta2;
        b->ops->adam_step(b, p, g, m, v, n, &a);
        /* Keras: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps). */
        double lr_t = 1e-3 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t));
        for (size_t i = 0; i < n; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.999 * vd[i] + 0.001 * (double)g[i] * g[i];
            pd[i] -= lr_t * md[i] / (sqrt(vd[i]) + 1e-7);
        }
        char what[64];
        snprintf(what, sizeof what, "adam step %d", t);
        close_all(what, p, pd, n, 2e-6);
        free(g);
    }
    /* SGD with momentum, then without. */
    float *g = frand(n, 1.0);
    memset(v, 0, n * 4);
    memset(vd, 0, n * 8);
    for (size_t i = 0; i < n; i++)
        pd[i] = p[i];
    for (int t = 0; t < 3; t++) {
        b->ops->sgd_step(b, p, g, v, n, 0.01f, 0.9f);
        for (size_t i = 0; i < n; i++) {
            vd[i] = 0.9 * vd[i] - 0.01 * g[i];
            pd[i] += vd[i];
        }
    }
    close_all("sgd momentum", p, pd, n, 1e-6);
    b->ops->sgd_step(b, p, g, NULL, n, 0.01f, 0.0f);
    for (size_t i = 0; i < n; i++)
        pd[i] -= 0.01 * g[i];
    close_all("sgd", p, pd, n, 1e-6);
    free(g); free(p); free(m); free(v); free(pd); free(md); free(vd);
    b->ops->destroy(b);
}

static void test_check_finite_and_gather(int threads)
{
    detrun_backend *b = make_backend(threads);
    size_t n = 50000;
    float *x = frand(n, 1e30);
    int bad = 0;
    b->ops->check_finite(b, x, n, &bad);
    CHECK(bad == 0, "finite values flagged");
    float specials[3] = { NAN, INFINITY, -INFINITY };
    for (int s = 0; s < 3; s++) {
        float keep = x[n - 17];
        x[n - 17] = specials[s];
        bad = 0;
        b->ops->check_finite(b, x, n, &bad);
        CHECK(bad == 1, "non-finite value %d not flagged", s);
        x[n - 17] = keep;
    }

    /* gather: every byte / 255 correctly rounded, rows in the given order. */
    enum { ROWS = 300, PIX = 20 };
    uint8_t *img = malloc(ROWS * PIX), lab[ROWS];
    for (int i = 0; i < ROWS * PIX; i++)
        img[i] = (uint8_t)(i * 7 + i / 13);
    for (int i = 0; i < ROWS; i++)
        lab[i] = (uint8_t)(i % 10);
    uint32_t rows[ROWS];
    for (int i = 0; i < ROWS; i++)
        rows[i] = (uint32_t)((i * 37 + 11) % ROWS);
    float *gx = malloc(sizeof(float) * ROWS * PIX);
    int32_t gy[ROWS];
    b->ops->gather(b, gx, gy, img, lab, PIX, rows, ROWS);
    int wrong = 0;
    for (int i = 0; i < ROWS; i++) {
        if (gy[i] != lab[rows[i]])
            wrong++;
        for (int p = 0; p < PIX; p++) {
            float f = gx[i * PIX + p];
            int byte = img[rows[i] * PIX + p];
            /* Correct rounding: |f * 255 - byte| <= 255 * ulp(f) / 2, all exact in double. */
            double ulp = (double)nextafterf(f, INFINITY) - f;
            if (!(fabs((double)f * 255.0 - byte) <= 255.0 * ulp / 2))
                wrong++;
        }
    }
    CHECK(wrong == 0, "gather: %d values or labels wrong", wrong);
    free(x); free(img); free(gx);
    b->ops->destroy(b);
}

static void test_backend_api(void)
{
    detrun_backend *b = NULL;
    char err[256];
    CHECK(detrun_cpu_backend_new(&b, 0, DETRUN_DETERMINISTIC, err, sizeof err) == DETRUN_ERR_ARG,
          "0 threads must be refused");
    CHECK(strstr(err, "threads") != NULL, "error names the threads: '%s'", err);
    CHECK(detrun_cpu_backend_new(&b, 1, (detrun_mode)7, err, sizeof err) == DETRUN_ERR_ARG,
          "a bad mode must be refused");
    CHECK(detrun_cpu_backend_new(&b, 2, DETRUN_FAST, err, sizeof err) == DETRUN_OK, "create");
    CHECK(strcmp(b->name, "cpu") == 0, "name");
    void *const *entries = (void *const *)&b->ops->destroy;
    /* Every entry of the table, destroy .. check_finite. */
    size_t count = (offsetof(detrun_backend_ops, check_finite) -
                    offsetof(detrun_backend_ops, destroy)) / sizeof(void *) + 1;
    for (size_t i = 0; i < count; i++)
        CHECK(entries[i] != NULL, "table entry %zu is empty", i);
    unsigned char *mem = b->ops->alloc(b, 1000);
    CHECK(mem && ((uintptr_t)mem & 63) == 0, "alloc: 64-byte aligned");
    int zero = 1;
    for (int i = 0; i < 1000; i++)
        zero &= mem[i] == 0;
    CHECK(zero, "alloc: zero-filled");
    unsigned char host[1000];
    for (int i = 0; i < 1000; i++)
        host[i] = (unsigned char)i;
    CHECK(b->ops->upload(b, mem, host, 1000) == DETRUN_OK, "upload");
    memset(host, 0, sizeof host);
    CHECK(b->ops->download(b, host, mem, 1000) == DETRUN_OK && host[999] == (unsigned char)999,
          "download");
    b->ops->zero(b, mem, 1000);
    CHECK(mem[500] == 0, "zero");
    b->ops->free(b, mem);
    CHECK(b->ops->set_threads(b, 3) == DETRUN_OK && b->ops->set_threads(b, 0) == DETRUN_ERR_ARG, "set_threads");
    CHECK(b->ops->set_mode(b, DETRUN_DETERMINISTIC) == DETRUN_OK, "set_mode");
    CHECK(b->ops->sync(b) == DETRUN_OK, "sync");
    b->ops->destroy(b);
}

int main(void)
{
    test_backend_api();
    for (int threads = 1; threads <= 3; threads += 2) {
        /* valid, stride 1, 19 columns out (lanes wrap past 16) */
        test_conv(threads, (detrun_conv_dims){ 2, 2, 6, 21, 3, 4, 19, 3, 3, 1, 0, 0 }, "valid");
        /* a kernel of 2x3, odd channel count */
        test_conv(threads, (detrun_conv_dims){ 3, 3, 5, 9, 3, 4, 7, 2, 3, 1, 0, 0 }, "2x3");
        /* same padding */
        test_conv(threads, (detrun_conv_dims){ 2, 2, 6, 7, 3, 6, 7, 3, 3, 1, 1, 1 }, "same");
        /* stride 2, padding 1 */
        test_conv(threads, (detrun_conv_dims){ 2, 2, 7, 9, 3, 4, 5, 3, 3, 2, 1, 1 }, "stride 2");
        test_dense(threads, 5, 7, 19);
        test_dense(threads, 3, 33, 10);
        test_dense(threads, 1, 4, 40);
        test_maxpool(threads);
        test_relu(threads);
        test_dropout(threads);
        test_softmax(threads);
        test_optimisers(threads);
        test_check_finite_and_gather(threads);
    }
    return test_report("test_kernels");
}
