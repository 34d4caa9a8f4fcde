/*
 * Every kernel of the CUDA backend against the CPU backend, both reached
 * through the backend table, on random inputs (Philox, so every run draws the
 * same ones). Portable kernels in deterministic mode must give the CPU's bits
 * exactly; cuDNN's convolutions and fast mode's atomic gradients must agree
 * within a stated relative error. Outputs are poisoned with NaN before every
 * run, so an element a kernel forgets to write fails the comparison.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "philox.h"
#include "../common.h"

/* Relative error (2-norm) allowed where the order of sums differs from the
 * CPU's: float32 sums of at most a few thousand terms of mixed sign. */
#define TOL 1e-5


typedef struct flavour {
    const char *kernels;
    detrun_mode mode;
    double conv;          /* tolerance of convolution outputs (0: bitwise) */
    double grad;          /* of weight and bias gradients (conv and dense) */
} flavour;

static detrun_backend *cpu, *gpu;
static const flavour *fl;
static uint32_t draw_tag;

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        printf("FAIL: out of host memory\n");
        exit(1);
    }
    return p;
}

/* Uniform floats in [-scale, scale), a new stream for every call. */
static float *randf(size_t n, float scale)
{
    float *x = xmalloc(n * sizeof *x);
    draw_tag++;
    for (size_t i = 0; i < n; i++)
        x[i] = (2.0f * detrun_u01(detrun_philox_word(2024, 9, draw_tag, 0, 0, i)) - 1.0f) * scale;
    return x;
}

static uint32_t randu(uint32_t below, size_t i)
{
    return detrun_below(detrun_philox_word(2024, 9, 0xfffff, 1, 0, i), below);
}

/* Device (or CPU backend) copies of host arrays, and back. */
static void *put(detrun_backend *b, const void *src, size_t bytes)
{
    void *p = b->ops->alloc(b, bytes);
    if (!p || b->ops->upload(b, p, src, bytes) != DETRUN_OK) {
        printf("FAIL: %s: allocation or upload of %zu bytes failed\n", b->name, bytes);
        exit(1);
    }
    return p;
}

static float *poisoned(detrun_backend *b, size_t n)
{
    float *h = xmalloc(n * sizeof *h);
    uint32_t nan = 0x7fc0dead;
    for (size_t i = 0; i < n; i++)
        memcpy(&h[i], &nan, sizeof nan);
    float *p = put(b, h, n * sizeof *h);
    free(h);
    return p;
}

static void get(detrun_backend *b, void *dst, const void *src, size_t bytes)
{
    detrun_status st = b->ops->download(b, dst, src, bytes);
    CHECK(st == DETRUN_OK, "%s: download failed (status %d): %s", b->name, (int)st,
          b->ops->errmsg && b->ops->errmsg(b) ? b->ops->errmsg(b) : "no message");
    if (st != DETRUN_OK)
        exit(1);   /* a failed backend stays failed: nothing more to learn */
}

static void compare(const char *what, const float *want, const float *got, size_t n, double tol)
{
    if (tol == 0.0) {
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (memcmp(&want[i], &got[i], sizeof *got) != 0 && bad++ == 0)
                first = i;
        CHECK(bad == 0, "%s %s: %zu of %zu differ in bits, first [%zu] cpu %a gpu %a",
              fl->kernels, what, bad, n, first, want[first], got[first]);
        return;
    }
    double num = 0.0, den = 0.0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * want[i];
        nan |= got[i] != got[i];
    }
    double rel = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
    CHECK(!nan && rel <= tol, "%s %s: relative error %.3g > %.3g%s", fl->kernels, what, rel, tol,
          nan ? " (NaN)" : "");
}

/* ---- convolution ------------------------------------------------------------ */

typedef struct conv_io {
    float *y, *dx, *dw, *db;   /* host results */
} conv_io;

static void conv_run(detrun_backend *b, const detrun_conv_dims *d, int relu, const float *x,
                     const float *w, const float *bias, const float *dy, conv_io *r)
{
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->o * d->oh * d->ow;
    size_t nw = (size_t)d->o * d->c * d->kh * d->kw;
    float *bx = put(b, x, nx * 4), *bw = put(b, w, nw * 4), *bb = put(b, bias, (size_t)d->o * 4);
    float *bdy = put(b, dy, ny * 4);
    float *by = poisoned(b, ny), *bdx = poisoned(b, nx), *bdw = poisoned(b, nw);
    float *bdb = poisoned(b, (size_t)d->o);
    b->ops->conv2d_forward(b, by, bx, bw, bb, d, relu);
    b->ops->conv2d_backward(b, bdx, bdw, bdb, bdy, bx, bw, d);
    get(b, r->y, by, ny * 4);
    get(b, r->dx, bdx, nx * 4);
    get(b, r->dw, bdw, nw * 4);
    get(b, r->db, bdb, (size_t)d->o * 4);
    float *all[] = { bx, bw, bb, bdy, by, bdx, bdw, bdb };
    for (int i = 0; i < 8; i++)
        b->ops->free(b, all[i]);
}

static void conv_alloc(conv_io *r, const detrun_conv_dims *d)
{
    r->y = xmalloc((size_t)d->n * d->o * d->oh * d->ow * 4);
    r->dx = xmalloc((size_t)d->n * d->c * d->h * d->w * 4);
    r->dw = xmalloc((size_t)d->o * d->c * d->kh * d->kw * 4);
    r->db = xmalloc((size_t)d->o * 4);
}

static void conv_release(conv_io *r)
{
    free(r->y); free(r->dx); free(r->dw); free(r->db);
}

static void test_conv(int n, int c, int h, int w, int o, int kh, int kw, int stride, int pt,
                      int pl, int oh, int ow, int relu)
{
    detrun_conv_dims d = { n, c, h, w, o, oh, ow, kh, kw, stride, pt, pl };
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * o * oh * ow, nw = (size_t)o * c * kh * kw;
    float *x = randf(nx, 1.0f), *wt = randf(nw, 0.5f), *bias = randf((size_t)o, 0.1f);
    float *dy = randf(ny, 0.01f);
    conv_io a, g, g2;
    conv_alloc(&a, &d);
    conv_alloc(&g, &d);
    conv_alloc(&g2, &d);
    conv_run(cpu, &d, relu, x, wt, bias, dy, &a);
    conv_run(gpu, &d, relu, x, wt, bias, dy, &g);
    char what[160];
    snprintf(what, sizeof what, "conv2d n%d c%d %dx%d o%d k%dx%d s%d pad %d,%d%s", n, c, h, w, o,
             kh, kw, stride, pt, pl, relu ? " relu" : "");
    char part[200];
    snprintf(part, sizeof part, "%s forward", what);
    compare(part, a.y, g.y, ny, fl->conv);
    snprintf(part, sizeof part, "%s input gradient", what);
    compare(part, a.dx, g.dx, nx, fl->conv);
    snprintf(part, sizeof part, "%s weight gradient", what);
    compare(part, a.dw, g.dw, nw, fl->grad);
    snprintf(part, sizeof part, "%s bias gradient", what);
    compare(part, a.db, g.db, (size_t)o, fl->grad);
    /* Deterministic mode: a second run on the device gives the same bits. */
    if (fl->mode == DETRUN_DETERMINISTIC) {
        conv_run(gpu, &d, relu, x, wt, bias, dy, &g2);
        const flavour *keep = fl;
        flavour self = *fl;
        self.conv = self.grad = 0.0;
        fl = &self;
        snprintf(part, sizeof part, "%s repeated (forward)", what);
        compare(part, g.y, g2.y, ny, 0.0);
        snprintf(part, sizeof part, "%s repeated (input gradient)", what);
        compare(part, g.dx, g2.dx, nx, 0.0);
        snprintf(part, sizeof part, "%s repeated (weight gradient)", what);
        compare(part, g.dw, g2.dw, nw, 0.0);
        snprintf(part, sizeof part, "%s repeated (bias gradient)", what);
        compare(part, g.db, g2.db, (size_t)o, 0.0);
        fl = keep;
    }
    conv_release(&a);
    conv_release(&g);
    conv_release(&g2);
    free(x); free(wt); free(bias); free(dy);
}

/* ---- max-pooling -------------------------------------------------------------- */

static void pool_run(detrun_backend *b, const detrun_pool_dims *d, const float *x, const float *dy,
                     float *y, int32_t *am, float *dx)
{
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->oh * d->ow;
    float *bx = put(b, x, nx * 4), *bdy = put(b, dy, ny * 4);
    float *by = poisoned(b, ny), *bdx = poisoned(b, nx);
    int32_t *bam = (int32_t *)poisoned(b, ny);
    b->ops->maxpool_forward(b, by, bam, bx, d);
    b->ops->maxpool_backward(b, bdx, bdy, bam, d);
    get(b, y, by, ny * 4);
    get(b, am, bam, ny * 4);
    get(b, dx, bdx, nx * 4);
    b->ops->free(b, bx); b->ops->free(b, bdy); b->ops->free(b, by); b->ops->free(b, bdx); b->ops->free(b, bam);
}

static void test_pool(int n, int c, int h, int w, int size, int stride)
{
    detrun_pool_dims d = { n, c, h, w, (h - size) / stride + 1, (w - size) / stride + 1, size, stride };
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * d.oh * d.ow;
    /* Few distinct values, and both zeros, so that ties are common. */
    float *x = randf(nx, 1.0f), *dy = randf(ny, 1.0f);
    for (size_t i = 0; i < nx; i++)
        x[i] = i % 7 == 0 ? (i % 2 ? -0.0f : 0.0f) : floorf(x[i] * 2.0f) * 0.5f;
    float *y[2], *dx[2];
    int32_t *am[2];
    for (int k = 0; k < 2; k++) {
        y[k] = xmalloc(ny * 4);
        am[k] = xmalloc(ny * 4);
        dx[k] = xmalloc(nx * 4);
        pool_run(k ? gpu : cpu, &d, x, dy, y[k], am[k], dx[k]);
    }
    char what[120];
    snprintf(what, sizeof what, "maxpool n%d c%d %dx%d size %d stride %d", n, c, h, w, size, stride);
    /* The argmax is each backend's own form (the CPU's is a byte per output
     * for 2x2 windows): the choices show in the backward's bits. */
    compare(what, y[0], y[1], ny, 0.0);
    strcat(what, " backward");
    compare(what, dx[0], dx[1], nx, 0.0);
    for (int k = 0; k < 2; k++) {
        free(y[k]); free(am[k]); free(dx[k]);
    }
    free(x); free(dy);
}

/* ---- dense ---------------------------------------------------------------------- */

static void dense_run(detrun_backend *b, int n, int k, int u, int relu, const float *x,
                      const float *w, const float *bias, const float *dy, float *y, float *dx,
                      float *dw, float *db)
{
    float *bx = put(b, x, (size_t)n * k * 4), *bw = put(b, w, (size_t)k * u * 4);
    float *bb = put(b, bias, (size_t)u * 4), *bdy = put(b, dy, (size_t)n * u * 4);
    float *by = poisoned(b, (size_t)n * u), *bdx = poisoned(b, (size_t)n * k);
    float *bdw = poisoned(b, (size_t)k * u), *bdb = poisoned(b, (size_t)u);
    b->ops->dense_forward(b, by, bx, bw, bb, n, k, u, relu);
    b->ops->dense_backward(b, bdx, bdw, bdb, bdy, bx, bw, n, k, u);
    get(b, y, by, (size_t)n * u * 4);
    get(b, dx, bdx, (size_t)n * k * 4);
    get(b, dw, bdw, (size_t)k * u * 4);
    get(b, db, bdb, (size_t)u * 4);
    float *all[] = { bx, bw, bb, bdy, by, bdx, bdw, bdb };
    for (int i = 0; i < 8; i++)
        b->ops->free(b, all[i]);
}

static void test_dense(int n, int k, int u, int relu)
{
    float *x = randf((size_t)n * k, 1.0f), *w = randf((size_t)k * u, 0.2f);
    float *bias = randf((size_t)u, 0.1f), *dy = randf((size_t)n * u, 0.01f);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int s = 0; s < 2; s++) {
        y[s] = xmalloc((size_t)n * u * 4);
        dx[s] = xmalloc((size_t)n * k * 4);
        dw[s] = xmalloc((size_t)k * u * 4);
        db[s] = xmalloc((size_t)u * 4);
        dense_run(s ? gpu : cpu, n, k, u, relu, x, w, bias, dy, y[s], dx[s], dw[s], db[s]);
    }
    char what[120], part[160];
    snprintf(what, sizeof what, "dense n%d k%d units %d%s", n, k, u, relu ? " relu" : "");
    snprintf(part, sizeof part, "%s forward", what);
    compare(part, y[0], y[1], (size_t)n * u, 0.0);
    snprintf(part, sizeof part, "%s input gradient", what);
    compare(part, dx[0], dx[1], (size_t)n * k, 0.0);
    snprintf(part, sizeof part, "%s weight gradient", what);
    compare(part, dw[0], dw[1], (size_t)k * u, fl->grad);
    snprintf(part, sizeof part, "%s bias gradient", what);
    compare(part, db[0], db[1], (size_t)u, fl->grad);
    for (int s = 0; s < 2; s++) {
        free(y[s]); free(dx[s]); free(dw[s]); free(db[s]);
    }
    free(x); free(w); free(bias); free(dy);
}

/* ---- elementwise kernels, loss, optimisers, data ---------------------------- */

static void test_relu_dropout(size_t count, float rate)
{
    float *x = randf(count, 1.0f), *dy = randf(count, 1.0f);
    for (size_t i = 0; i < count; i += 5)
        x[i] = i % 10 ? -0.0f : 0.0f;   /* the derivative at 0 is 0 */
    detrun_rng_addr addr = { 0x5eed0000beefull, 3, 5, (uint32_t)count };
    float *h[2][5];
    for (int s = 0; s < 2; s++) {
        detrun_backend *b = s ? gpu : cpu;
        float *bx = put(b, x, count * 4), *bdy = put(b, dy, count * 4);
        float *r = poisoned(b, count), *rd = poisoned(b, count), *o = poisoned(b, count);
        float *m = poisoned(b, count), *dd = poisoned(b, count);
        b->ops->relu_forward(b, r, bx, count);
        b->ops->relu_backward(b, rd, bdy, r, count);
        b->ops->dropout_forward(b, o, m, r, count, rate, &addr);
        b->ops->dropout_backward(b, dd, bdy, m, count);
        float *dev[5] = { r, rd, o, m, dd };
        for (int k = 0; k < 5; k++) {
            h[s][k] = xmalloc(count * 4);
            get(b, h[s][k], dev[k], count * 4);
            b->ops->free(b, dev[k]);
        }
        b->ops->free(b, bx);
        b->ops->free(b, bdy);
    }
    const char *names[5] = { "relu forward", "relu backward", "dropout forward", "dropout mask",
                             "dropout backward" };
    for (int k = 0; k < 5; k++) {
        char what[96];
        snprintf(what, sizeof what, "%s (%zu, rate %g)", names[k], count, rate);
        compare(what, h[0][k], h[1][k], count, 0.0);
        free(h[0][k]);
        free(h[1][k]);
    }
    free(x); free(dy);
}

static void test_softmax(int n, int classes, int with_grad)
{
    float *x = randf((size_t)n * classes, 8.0f);
    for (int i = 0; i < n; i += 4)
        x[(size_t)i * classes + classes - 1] = x[(size_t)i * classes];   /* tied maxima */
    int32_t *lab = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++)
        lab[i] = (int32_t)randu((uint32_t)classes, (size_t)i);
    float *h[2][3];
    for (int s = 0; s < 2; s++) {
        detrun_backend *b = s ? gpu : cpu;
        float *bx = put(b, x, (size_t)n * classes * 4);
        int32_t *bl = put(b, lab, (size_t)n * 4);
        float *dl = with_grad ? poisoned(b, (size_t)n * classes) : NULL;
        float *loss = poisoned(b, (size_t)n), *cor = poisoned(b, (size_t)n);
        b->ops->softmax_xent(b, dl, loss, cor, bx, bl, n, classes);
        for (int k = 0; k < 3; k++)
            h[s][k] = xmalloc((size_t)n * classes * 4);
        if (dl)
            get(b, h[s][0], dl, (size_t)n * classes * 4);
        get(b, h[s][1], loss, (size_t)n * 4);
        get(b, h[s][2], cor, (size_t)n * 4);
        b->ops->free(b, bx); b->ops->free(b, bl); b->ops->free(b, loss); b->ops->free(b, cor);
        if (dl)
            b->ops->free(b, dl);
    }
    char what[96];
    snprintf(what, sizeof what, "softmax_xent n%d classes %d", n, classes);
    if (with_grad)
        compare(what, h[0][0], h[1][0], (size_t)n * classes, 0.0);
    compare(what, h[0][1], h[1][1], (size_t)n, 0.0);
    compare(what, h[0][2], h[1][2], (size_t)n, 0.0);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 3; k++)
            free(h[s][k]);
    free(x); free(lab);
}

static void test_optimizers(size_t count, int steps)
{
    float *p0 = randf(count, 0.3f), *g = randf(count, 0.05f);
    float *h[2][5];
    detrun_adam_params a = { 1e-3f, 0.9f, 0.999f, 1e-7f, 1.0f, 1.0f };
    for (int s = 0; s < 2; s++) {
        detrun_backend *b = s ? gpu : cpu;
        float *p = put(b, p0, count * 4), *bg = put(b, g, count * 4);
        float *m = b->ops->alloc(b, count * 4), *v = b->ops->alloc(b, count * 4);
        float *q = put(b, p0, count * 4), *mv = b->ops->alloc(b, count * 4);
        float *r = put(b, p0, count * 4);
        a.beta1_t = a.beta2_t = 1.0f;
        for (int t = 1; t <= steps; t++) {
            a.beta1_t = a.beta1_t * a.beta1;
            a.beta2_t = a.beta2_t * a.beta2;
            b->ops->adam_step(b, p, bg, m, v, count, &a);
            b->ops->sgd_step(b, q, bg, mv, count, 0.01f, 0.9f);
            b->ops->sgd_step(b, r, bg, NULL, count, 0.01f, 0.0f);
        }
        float *dev[5] = { p, m, v, q, r };
        for (int k = 0; k < 5; k++) {
            h[s][k] = xmalloc(count * 4);
            get(b, h[s][k], dev[k], count * 4);
            b->ops->free(b, dev[k]);
        }
        b->ops->free(b, bg);
        b->ops->free(b, mv);
    }
    const char *names[5] = { "adam p", "adam m", "adam v", "sgd momentum p", "sgd p" };
    for (int k = 0; k < 5; k++) {
        compare(names[k], h[0][k], h[1][k], count, 0.0);
        free(h[0][k]);
        free(h[1][k]);
    }
    free(p0); free(g);
}

static void test_check_finite(void)
{
    size_t count = 100003;
    float *x = randf(count, 1e30f);
    float *bx = put(gpu, x, count * 4);
    int bad = 0;
    gpu->ops->check_finite(gpu, bx, count, &bad);
    CHECK(bad == 0, "%s check_finite: finite data reported bad", fl->kernels);
    uint32_t specials[3] = { 0x7fc00000u, 0x7f800000u, 0xff800000u };
    for (int k = 0; k < 3; k++) {
        size_t at = (size_t)randu((uint32_t)count, (size_t)k + 100);
        float keep = x[at];
        memcpy(&x[at], &specials[k], 4);
        gpu->ops->upload(gpu, bx, x, count * 4);
        bad = 0;
        gpu->ops->check_finite(gpu, bx, count, &bad);
        CHECK(bad == 1, "%s check_finite: %08x at %zu not found", fl->kernels, specials[k], at);
        x[at] = keep;
        gpu->ops->upload(gpu, bx, x, count * 4);
        bad = 0;
        gpu->ops->check_finite(gpu, bx, count, &bad);
        CHECK(bad == 0, "%s check_finite: a flag outlived its call", fl->kernels);
    }
    gpu->ops->free(gpu, bx);
    free(x);
}

/* n up to 960 rows travels as a kernel parameter, more through a copy. */
static void test_gather(int n)
{
    const size_t pixels = 784, rows_in_set = 57;
    uint8_t *img = xmalloc(pixels * rows_in_set), lab[57];
    for (size_t i = 0; i < pixels * rows_in_set; i++)
        img[i] = (uint8_t)randu(256, i);
    img[56 * pixels + 3] = 255;
    img[56 * pixels + 4] = 0;
    for (size_t i = 0; i < rows_in_set; i++)
        lab[i] = (uint8_t)(i % 10);
    uint32_t *rows = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++)
        rows[i] = randu((uint32_t)rows_in_set, (size_t)i + 7);
    rows[0] = 56;
    float *x[2];
    int32_t *y[2];
    for (int s = 0; s < 2; s++) {
        detrun_backend *b = s ? gpu : cpu;
        uint8_t *bi = put(b, img, pixels * rows_in_set), *bl = put(b, lab, rows_in_set);
        float *bx = poisoned(b, pixels * n);
        int32_t *by = (int32_t *)poisoned(b, (size_t)n);
        b->ops->gather(b, bx, by, bi, bl, pixels, rows, n);
        x[s] = xmalloc(pixels * n * 4);
        y[s] = xmalloc((size_t)n * 4);
        get(b, x[s], bx, pixels * n * 4);
        get(b, y[s], by, (size_t)n * 4);
        b->ops->free(b, bi); b->ops->free(b, bl); b->ops->free(b, bx); b->ops->free(b, by);
    }
    char what[64];
    snprintf(what, sizeof what, "gather %d rows", n);
    compare(what, x[0], x[1], pixels * n, 0.0);
    CHECK(memcmp(y[0], y[1], (size_t)n * 4) == 0, "%s %s: labels differ", fl->kernels, what);
    CHECK(x[1][3] == 1.0f && x[1][4] == 0.0f && y[1][0] == 6, "%s: row 56 misread", what);
    for (int s = 0; s < 2; s++) {
        free(x[s]);
        free(y[s]);
    }
    free(rows);
    free(img);
}

int main(void)
{
    char err[512];
    detrun_status st = detrun_cpu_backend_new(&cpu, 2, DETRUN_DETERMINISTIC, err, sizeof err);
    if (st != DETRUN_OK) {
        printf("FAIL: CPU backend: %s\n", err);
        return 1;
    }
    static const flavour flavours[] = {
        { "portable", DETRUN_DETERMINISTIC, 0.0, 0.0 },
        { "cudnn", DETRUN_DETERMINISTIC, TOL, TOL },
        { "portable", DETRUN_FAST, 0.0, TOL },
        { "cudnn", DETRUN_FAST, TOL, TOL },
    };
    for (size_t f = 0; f < sizeof flavours / sizeof flavours[0]; f++) {
        fl = &flavours[f];
        char options[64];
        snprintf(options, sizeof options, "kernels=%s", fl->kernels);
        detrun_backend_params p = { 0, options, fl->mode, 1, NULL, NULL };
        st = detrun_backend_open("cuda:0", &p, &gpu, err, sizeof err);
        if (st == DETRUN_ERR_DEVICE || st == DETRUN_ERR_UNSUPPORTED) {
            printf("SKIP: %s\n", err);
            cpu->ops->destroy(cpu);
            return 77;
        }
        if (st != DETRUN_OK) {
            printf("FAIL: cuda backend (%s): %s\n", fl->kernels, err);
            return 1;
        }
        int before = failures;
        /* The reference network's shapes, then odd ones: wide rows (lanes
         * wrap), stride 2 with padding, more taps than a block's slots,
         * asymmetric "same" padding (cuDNN cannot: the project's kernel), many
         * samples (staged in shared memory several at a time), large planes. */
        test_conv(7, 1, 28, 28, 8, 3, 3, 1, 0, 0, 26, 26, 1);
        test_conv(7, 8, 13, 13, 8, 3, 3, 1, 0, 0, 11, 11, 1);
        test_conv(3, 3, 20, 37, 4, 3, 3, 1, 1, 1, 20, 37, 0);
        test_conv(2, 2, 15, 16, 3, 5, 5, 2, 2, 2, 8, 8, 1);
        test_conv(2, 2, 12, 12, 2, 6, 6, 1, 0, 0, 7, 7, 0);
        test_conv(2, 3, 9, 9, 2, 2, 2, 1, 0, 0, 9, 9, 1);
        test_conv(100, 1, 28, 28, 8, 3, 3, 1, 0, 0, 26, 26, 1);
        test_conv(3, 1, 90, 90, 2, 3, 3, 1, 0, 0, 88, 88, 0);   /* planes too big to stage */
        test_pool(4, 8, 26, 26, 2, 2);
        test_pool(4, 8, 11, 11, 2, 2);
        test_pool(2, 3, 9, 9, 3, 2);
        test_dense(7, 200, 128, 1);
        test_dense(100, 128, 10, 0);
        test_dense(3, 5, 300, 1);
        test_relu_dropout(12800, 0.2f);
        test_relu_dropout(1001, 0.5f);
        test_softmax(100, 10, 1);
        test_softmax(37, 3, 0);
        test_optimizers(5003, 37);
        test_check_finite();
        test_gather(9);
        test_gather(1500);
        st = gpu->ops->sync(gpu);
        CHECK(st == DETRUN_OK, "%s: backend reports status %d: %s", fl->kernels, (int)st,
              gpu->ops->errmsg && gpu->ops->errmsg(gpu) ? gpu->ops->errmsg(gpu) : "no message");
        printf("%s %s: %s\n", fl->kernels, fl->mode == DETRUN_FAST ? "fast" : "deterministic",
               failures == before ? "ok" : "FAILED");
        gpu->ops->destroy(gpu);
        gpu = NULL;
    }
    cpu->ops->destroy(cpu);
    return test_report("test_gpu_kernels");
}
