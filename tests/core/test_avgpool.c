/*
 * test_avgpool.c - the average-pooling layer: its CPU kernels against a
 * double-precision reference (forward by hand, backward by central finite
 * differences of the double forward), bit for bit against the order
 * docs/determinism.md writes, the same bits at 1, 2, 3 and 4 threads (the
 * kernels and a whole fit), and the layer's options, shapes and refusal on
 * a backend without the kernels.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detrun.h"
#include "internal.h"
#include "../common.h"


static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static double urand(void)   /* [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-52 - 1.0;
}

typedef struct shape { int n, c, h, w, size, stride; } shape;

static detrun_pool_dims dims_of(shape s)
{
    detrun_pool_dims d = { s.n, s.c, s.h, s.w, (s.h - s.size) / s.stride + 1,
                           (s.w - s.size) / s.stride + 1, s.size, s.stride };
    return d;
}

/* The double forward: window means. */
static void ref_forward(double *out, const double *in, const detrun_pool_dims *d)
{
    for (int p = 0; p < d->n * d->c; p++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                double s = 0;
                for (int ky = 0; ky < d->size; ky++)
                    for (int kx = 0; kx < d->size; kx++)
                        s += in[((size_t)p * d->h + oy * d->stride + ky) * d->w + ox * d->stride + kx];
                out[((size_t)p * d->oh + oy) * d->ow + ox] = s / (d->size * d->size);
            }
}

/* The written order in float: the bits the kernels must give. */
static void order_forward(float *out, const float *in, const detrun_pool_dims *d)
{
    float inv = 1.0f / (float)(d->size * d->size);
    for (int p = 0; p < d->n * d->c; p++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                float s = 0.0f;
                for (int ky = 0; ky < d->size; ky++)
                    for (int kx = 0; kx < d->size; kx++)
                        s = s + in[((size_t)p * d->h + oy * d->stride + ky) * d->w +
                                   ox * d->stride + kx];
                out[((size_t)p * d->oh + oy) * d->ow + ox] = s * inv;
            }
}

static void order_backward(float *din, const float *dout, const detrun_pool_dims *d)
{
    float inv = 1.0f / (float)(d->size * d->size);
    memset(din, 0, (size_t)d->n * d->c * d->h * d->w * sizeof *din);
    for (int p = 0; p < d->n * d->c; p++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                float g = dout[((size_t)p * d->oh + oy) * d->ow + ox] * inv;
                for (int ky = 0; ky < d->size; ky++)
                    for (int kx = 0; kx < d->size; kx++) {
                        float *v = &din[((size_t)p * d->h + oy * d->stride + ky) * d->w +
                                        ox * d->stride + kx];
                        *v = *v + g;
                    }
            }
}

static detrun_backend *make_backend(int threads)
{
    detrun_backend *b = NULL;
    char err[256];
    if (detrun_cpu_backend_new(&b, threads, DETRUN_DETERMINISTIC, err, sizeof err) != DETRUN_OK)
        printf("FAIL backend: %s\n", err);
    return b;
}

/* L = sum(out * r): dL/din by central differences of the double forward. */
static void check_gradient(shape s, const float *in, const float *r, const float *din)
{
    detrun_pool_dims d = dims_of(s);
    size_t nin = (size_t)s.n * s.c * s.h * s.w, nout = (size_t)s.n * s.c * d.oh * d.ow;
    double *x = malloc(nin * sizeof *x), *y = malloc(nout * sizeof *y);
    for (size_t i = 0; i < nin; i++)
        x[i] = in[i];
    const double eps = 1e-3;
    for (size_t i = 0; i < nin; i += 1 + nin / 97) {   /* about 100 inputs of each shape */
        double keep = x[i], lp = 0, lm = 0;
        x[i] = keep + eps;
        ref_forward(y, x, &d);
        for (size_t o = 0; o < nout; o++)
            lp += y[o] * r[o];
        x[i] = keep - eps;
        ref_forward(y, x, &d);
        for (size_t o = 0; o < nout; o++)
            lm += y[o] * r[o];
        x[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        CHECK(fabs(fd - din[i]) <= 1e-5 + 1e-5 * fabs(fd), "%dx%d/%d: din[%zu] %.9g, fd %.9g",
              s.size, s.size, s.stride, i, (double)din[i], fd);
    }
    free(x);
    free(y);
}

static void kernels(void)
{
    const shape shapes[] = {
        { 3, 2, 8, 8, 2, 2 },     /* the 2x2 pool */
        { 2, 3, 7, 9, 2, 2 },     /* odd sizes: the last row and column are left out */
        { 2, 2, 6, 7, 3, 1 },     /* overlapping windows: inputs sum several shares */
        { 1, 1, 5, 5, 2, 3 },     /* gaps between windows */
        { 5, 1, 4, 4, 4, 0 },     /* one window (stride unused) */
    };
    detrun_backend *b[5] = { NULL, make_backend(1), make_backend(2), make_backend(3),
                             make_backend(4) };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        shape s = shapes[k];
        if (s.stride == 0)
            s.stride = s.size;
        detrun_pool_dims d = dims_of(s);
        size_t nin = (size_t)s.n * s.c * s.h * s.w, nout = (size_t)s.n * s.c * d.oh * d.ow;
        float *in = malloc(nin * 4), *r = malloc(nout * 4), *want = malloc(nout * 4);
        float *wantd = malloc(nin * 4), *out = malloc(nout * 4), *din = malloc(nin * 4);
        double *x = malloc(nin * 8), *y = malloc(nout * 8);
        for (size_t i = 0; i < nin; i++)
            x[i] = in[i] = (float)urand();
        for (size_t o = 0; o < nout; o++)
            r[o] = (float)urand();
        ref_forward(y, x, &d);
        order_forward(want, in, &d);
        order_backward(wantd, r, &d);
        for (int t = 1; t <= 4; t++) {
            memset(out, 0xff, nout * 4);   /* NaN: every output must be written */
            memset(din, 0xff, nin * 4);
            b[t]->ops->avgpool_forward(b[t], out, in, &d);
            b[t]->ops->avgpool_backward(b[t], din, r, &d);
            CHECK(memcmp(out, want, nout * 4) == 0, "shape %zu, %d threads: forward bits differ "
                  "from the written order", k, t);
            CHECK(memcmp(din, wantd, nin * 4) == 0, "shape %zu, %d threads: backward bits differ "
                  "from the written order", k, t);
        }
        for (size_t o = 0; o < nout; o++)
            CHECK(fabs(out[o] - y[o]) <= 1e-6 * (1 + fabs(y[o])), "shape %zu: out[%zu] %.9g, "
                  "double %.9g", k, o, (double)out[o], y[o]);
        check_gradient(s, in, r, din);
        free(in); free(r); free(want); free(wantd); free(out); free(din); free(x); free(y);
    }
    for (int t = 1; t <= 4; t++)
        b[t]->ops->destroy(b[t]);
}

static detrun_model *pooled_model(detrun_runtime *rt)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 28, 28, &m);
    const detrun_layer_arg pool[] = { { "size", 2, NULL } };
    detrun_model_add_conv2d(m, 4, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU);
    CHECK(detrun_model_add_layer(m, "avgpool", pool, 1) == DETRUN_OK, "%s", detrun_errmsg(rt));
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    CHECK(detrun_model_compile(m, &adam, 5, 0) == DETRUN_OK, "%s", detrun_errmsg(rt));
    return m;
}

/* A whole fit through the layer: one fingerprint at 1, 2, 3 and 4 threads. */
static void fit_threads(void)
{
    char first[33] = "";
    for (int t = 1; t <= 4; t++) {
        detrun_runtime *rt = NULL;
        detrun_options o = DETRUN_OPTIONS_INIT;
        o.threads = t;
        if (detrun_open(&rt, &o) != DETRUN_OK) {
            printf("FAIL open: %s\n", detrun_errmsg(rt));
            failures++;
            return;
        }
        detrun_dataset *ds = NULL;
        if (detrun_dataset_load_mnist(rt, getenv("DETRUN_TEST_DATA"), "t10k", &ds) != DETRUN_OK) {
            printf("FAIL loading Fashion-MNIST: %s\n", detrun_errmsg(rt));
            failures++;
            detrun_close(rt);
            return;
        }
        detrun_dataset_limit(ds, 300);
        detrun_model *m = pooled_model(rt);
        CHECK(strcmp(detrun_model_layer_name(m, 1), "avgpool_1") == 0, "named avgpool_1");
        int dims[4];
        detrun_model_param_shape(m, 2, dims);
        CHECK(dims[0] == 4 * 13 * 13, "26x26 pooled to 13x13: dense takes %d inputs", dims[0]);
        detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
        fo.epochs = 2;
        fo.batch = 32;
        char fp[33] = "";
        CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL) == DETRUN_OK, "%s",
              detrun_errmsg(rt));
        detrun_model_fingerprint(m, fp);
        if (t == 1)
            memcpy(first, fp, sizeof fp);
        CHECK(strcmp(fp, first) == 0, "%d threads: %s, 1 thread: %s", t, fp, first);
        double loss = NAN, acc = NAN;
        CHECK(detrun_model_evaluate(m, ds, NULL, 0, 100, &loss, &acc) == DETRUN_OK &&
              isfinite(loss) && acc > 0.3, "trained through avgpool: loss %g accuracy %g", loss,
              acc);
        detrun_model_free(m);
        detrun_dataset_free(ds);
        detrun_close(rt);
    }
}

static void options(void)
{
    detrun_runtime *rt = NULL;
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 1;
    detrun_open(&rt, &o);
    detrun_model *m = NULL;
    detrun_model_new(rt, 2, 5, 7, &m);
    const detrun_layer_arg big[] = { { "size", 6, NULL } };
    CHECK(detrun_model_add_layer(m, "avgpool", big, 1) == DETRUN_ERR_SHAPE &&
          strstr(detrun_errmsg(rt), "avgpool_1: window 6x6 is larger than its 5x7 input"),
          "%s", detrun_errmsg(rt));
    const detrun_layer_arg zero[] = { { "size", 0, NULL } };
    CHECK(detrun_model_add_layer(m, "avgpool", zero, 1) == DETRUN_ERR_ARG &&
          strstr(detrun_errmsg(rt), "avgpool_1: size must be positive"), "%s", detrun_errmsg(rt));
    /* A backend without the kernels (as the CUDA one today) refuses the layer. */
    detrun_backend *be = rt->backend;
    const detrun_backend_ops *keep = be->ops;
    detrun_backend_ops without = *keep;
    without.avgpool_forward = NULL;
    be->ops = &without;
    CHECK(detrun_model_add_layer(m, "avgpool", NULL, 0) == DETRUN_ERR_UNSUPPORTED &&
          strstr(detrun_errmsg(rt), "avgpool_1: avgpool is not supported by backend cpu"), "%s",
          detrun_errmsg(rt));
    be->ops = keep;
    /* Defaults: size 2, stride the size: 5x7 -> 2x3; stride 1: 4x6 -> 3x5. */
    const detrun_layer_arg one[] = { { "stride", 1, NULL } };
    CHECK(detrun_model_add_layer(m, "avgpool", NULL, 0) == DETRUN_OK, "%s", detrun_errmsg(rt));
    CHECK(detrun_model_add_layer(m, "avgpool", one, 1) == DETRUN_OK, "%s", detrun_errmsg(rt));
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 3, DETRUN_ACT_NONE);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    CHECK(detrun_model_compile(m, &adam, 1, 0) == DETRUN_OK, "%s", detrun_errmsg(rt));
    int dims[4];
    detrun_model_param_shape(m, 0, dims);
    CHECK(dims[0] == 2 * 1 * 2, "2x3 then 1x2 pooled: dense takes %d inputs, want 4", dims[0]);
    detrun_model_free(m);
    detrun_close(rt);
}

int main(void)
{
    kernels();
    options();
    fit_threads();
    return test_report("test_avgpool");
}
