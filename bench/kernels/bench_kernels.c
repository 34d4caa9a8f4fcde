/*
 * bench_kernels.c - times each CPU kernel of the reference network at batch
 * 100 (conv 3x3x8 + ReLU, maxpool 2, conv 3x3x8 + ReLU, maxpool 2, dense 128
 * + ReLU, dropout 0.2, dense 10, softmax cross-entropy, Adam).
 *
 *   bench_kernels [threads] [det|fast] [runs] [scalar]
 *
 * BENCH_ITERS in the environment changes the calls per run (say 2 under
 * callgrind, whose instruction counts do not depend on the machine's load);
 * BENCH_ONLY=text times only the kernels whose name contains text;
 * BENCH_CPU=1 measures the process's CPU time instead of wall time (at one
 * thread, less sensitive to other work on the machine).
 *
 * Each kernel is run for ITERS calls per run; the median over runs of the
 * time per call is printed, and their sum estimates a training step's kernel
 * time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cpu/cpu.h"

#define ITERS_DEFAULT 200
#define MAXRUNS 64

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *buf(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x + 64);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) * 0x1p-24f - 0.5f) * scale;
    }
    return x;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { N = 100 };
static detrun_conv_dims c1 = { N, 1, 28, 28, 8, 26, 26, 3, 3, 1, 0, 0 };
static detrun_conv_dims c2 = { N, 8, 13, 13, 8, 11, 11, 3, 3, 1, 0, 0 };
static detrun_pool_dims p1 = { N, 8, 26, 26, 13, 13, 2, 2 };
static detrun_pool_dims p2 = { N, 8, 11, 11, 5, 5, 2, 2 };

static struct {
    float *x, *w1, *b1, *a1, *g1, *dw1, *db1;
    float *q1, *gq1;
    int32_t *am1, *am2, *lab;
    float *w2, *b2, *a2, *g2, *dw2, *db2, *gx2;
    float *q2, *gq2;
    float *w3, *b3, *a3, *g3, *dw3, *db3;
    float *mask, *d3, *gd3;
    float *w4, *b4, *a4, *g4, *dw4, *db4;
    float *loss, *corr;
    float *p, *grad, *m, *v;
    size_t np;
} s;

static void setup(void)
{
    s.x = buf((size_t)N * 784, 1.0f);
    s.w1 = buf(72, 0.5f); s.b1 = buf(8, 0.1f);
    s.a1 = buf((size_t)N * 8 * 676, 1.0f); s.g1 = buf((size_t)N * 8 * 676, 0.1f);
    s.dw1 = buf(72, 1); s.db1 = buf(8, 1);
    s.q1 = buf((size_t)N * 8 * 169, 1.0f); s.gq1 = buf((size_t)N * 8 * 169, 0.1f);
    s.am1 = malloc(sizeof(int32_t) * N * 8 * 169);
    s.am2 = malloc(sizeof(int32_t) * N * 8 * 25);
    s.w2 = buf(576, 0.3f); s.b2 = buf(8, 0.1f);
    s.a2 = buf((size_t)N * 8 * 121, 1.0f); s.g2 = buf((size_t)N * 8 * 121, 0.1f);
    s.dw2 = buf(576, 1); s.db2 = buf(8, 1); s.gx2 = buf((size_t)N * 8 * 169, 1);
    s.q2 = buf((size_t)N * 200, 1.0f); s.gq2 = buf((size_t)N * 200, 0.1f);
    s.w3 = buf(200 * 128, 0.2f); s.b3 = buf(128, 0.1f);
    s.a3 = buf((size_t)N * 128, 1); s.g3 = buf((size_t)N * 128, 0.1f);
    s.dw3 = buf(200 * 128, 1); s.db3 = buf(128, 1);
    s.mask = buf((size_t)N * 128, 1); s.d3 = buf((size_t)N * 128, 1); s.gd3 = buf((size_t)N * 128, 1);
    s.w4 = buf(128 * 10, 0.2f); s.b4 = buf(10, 0.1f);
    s.a4 = buf((size_t)N * 10, 3); s.g4 = buf((size_t)N * 10, 0.1f);
    s.dw4 = buf(1280, 1); s.db4 = buf(10, 1);
    s.loss = buf(N, 1); s.corr = buf(N, 1);
    s.lab = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++)
        s.lab[i] = i % 10;
    s.np = 72 + 8 + 576 + 8 + 200 * 128 + 128 + 1280 + 10;
    s.p = buf(s.np, 0.1f); s.grad = buf(s.np, 0.01f);
    s.m = calloc(s.np, 4); s.v = calloc(s.np, 4);
}

static void k_conv1_f(detrun_backend *b) { b->ops->conv2d_forward(b, s.a1, s.x, s.w1, s.b1, &c1, 1); }
static void k_conv1_b(detrun_backend *b) { b->ops->conv2d_backward(b, NULL, s.dw1, s.db1, s.g1, s.x, s.w1, &c1); }
static void k_relu1_b(detrun_backend *b) { b->ops->relu_backward(b, s.g1, s.g1, s.a1, (size_t)N * 8 * 676); }
static void k_pool1_f(detrun_backend *b) { b->ops->maxpool_forward(b, s.q1, s.am1, s.a1, &p1); }
static void k_pool1_b(detrun_backend *b) { b->ops->maxpool_backward(b, s.g1, s.gq1, s.am1, &p1); }
static void k_conv2_f(detrun_backend *b) { b->ops->conv2d_forward(b, s.a2, s.q1, s.w2, s.b2, &c2, 1); }
static void k_conv2_b(detrun_backend *b) { b->ops->conv2d_backward(b, s.gq1, s.dw2, s.db2, s.g2, s.q1, s.w2, &c2); }
static void k_relu2_b(detrun_backend *b) { b->ops->relu_backward(b, s.g2, s.g2, s.a2, (size_t)N * 8 * 121); }
static void k_pool2_f(detrun_backend *b) { b->ops->maxpool_forward(b, s.q2, s.am2, s.a2, &p2); }
static void k_pool2_b(detrun_backend *b) { b->ops->maxpool_backward(b, s.g2, s.gq2, s.am2, &p2); }
static void k_dense1_f(detrun_backend *b) { b->ops->dense_forward(b, s.a3, s.q2, s.w3, s.b3, N, 200, 128, 1); }
static void k_dense1_b(detrun_backend *b) { b->ops->dense_backward(b, s.gq2, s.dw3, s.db3, s.g3, s.q2, s.w3, N, 200, 128); }
static void k_relu3_b(detrun_backend *b) { b->ops->relu_backward(b, s.g3, s.g3, s.a3, (size_t)N * 128); }
static void k_drop_f(detrun_backend *b)
{
    detrun_rng_addr a = { 1, 0, 5, 7 };
    b->ops->dropout_forward(b, s.d3, s.mask, s.a3, (size_t)N * 128, 0.2f, &a);
}
static void k_drop_b(detrun_backend *b) { b->ops->dropout_backward(b, s.g3, s.gd3, s.mask, (size_t)N * 128); }
static void k_dense2_f(detrun_backend *b) { b->ops->dense_forward(b, s.a4, s.d3, s.w4, s.b4, N, 128, 10, 0); }
static void k_dense2_b(detrun_backend *b) { b->ops->dense_backward(b, s.gd3, s.dw4, s.db4, s.g4, s.d3, s.w4, N, 128, 10); }
static void k_xent(detrun_backend *b) { b->ops->softmax_xent(b, s.g4, s.loss, s.corr, s.a4, s.lab, N, 10); }
static void k_adam(detrun_backend *b)
{
    detrun_adam_params a = { 1e-3f, 0.9f, 0.999f, 1e-7f, 0.9f, 0.999f };
    b->ops->adam_step(b, s.p, s.grad, s.m, s.v, s.np, &a);
}

/* The one-pass pairs a training step runs where the backend has them. */
static void k_conv1_pool1_f(detrun_backend *b)
{
    b->ops->conv2d_pooled_forward(b, NULL, s.q1, s.am1, s.x, s.w1, s.b1, &c1, 1, &p1);
}
static void k_conv2_pool2_f(detrun_backend *b)
{
    b->ops->conv2d_pooled_forward(b, NULL, s.q2, s.am2, s.q1, s.w2, s.b2, &c2, 1, &p2);
}
static void k_pool1_relu_b(detrun_backend *b) { b->ops->maxpool_relu_backward(b, s.g1, s.gq1, s.q1, s.am1, &p1); }
static void k_pool2_relu_b(detrun_backend *b) { b->ops->maxpool_relu_backward(b, s.g2, s.gq2, s.q2, s.am2, &p2); }
static void k_conv1_pool1_b(detrun_backend *b)
{
    b->ops->conv2d_pooled_wgrad(b, s.dw1, s.db1, s.gq1, s.q1, s.am1, s.x, &c1, &p1);
}

typedef struct kernel {
    const char *name;
    void (*fn)(detrun_backend *);
} kernel;

static const kernel pairs[] = {
    { "conv1+pool1 forward", k_conv1_pool1_f }, { "conv2+pool2 forward", k_conv2_pool2_f },
    { "pool2+relu2 backward", k_pool2_relu_b }, { "pool1+relu1 backward", k_pool1_relu_b },
    { "conv1 dW from pool1", k_conv1_pool1_b },
};

static const kernel kernels[] = {
    { "conv1 forward+relu", k_conv1_f }, { "maxpool1 forward", k_pool1_f },
    { "conv2 forward+relu", k_conv2_f }, { "maxpool2 forward", k_pool2_f },
    { "dense1 forward+relu", k_dense1_f }, { "dropout forward", k_drop_f },
    { "dense2 forward", k_dense2_f }, { "softmax_xent", k_xent },
    { "dense2 backward", k_dense2_b }, { "dropout backward", k_drop_b },
    { "relu3 backward", k_relu3_b }, { "dense1 backward", k_dense1_b },
    { "maxpool2 backward", k_pool2_b }, { "relu2 backward", k_relu2_b },
    { "conv2 backward", k_conv2_b }, { "maxpool1 backward", k_pool1_b },
    { "relu1 backward", k_relu1_b }, { "conv1 backward", k_conv1_b },
    { "adam", k_adam },
};

/* Times each kernel (runs of iters calls, the median per call) and prints
 * it; returns the sum of the medians. */
static double time_all(detrun_backend *b, const kernel *ks, size_t nk, const char *only, int runs,
                       int iters)
{
    double total = 0;
    for (size_t k = 0; k < nk; k++) {
        if (only && !strstr(ks[k].name, only))
            continue;
        double t[MAXRUNS];
        ks[k].fn(b);   /* warm up */
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            for (int i = 0; i < iters; i++)
                ks[k].fn(b);
            t[r] = (now() - t0) / iters;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp);
        double med = t[runs / 2];
        total += med;
        printf("  %-22s %9.1f us\n", ks[k].name, med * 1e6);
    }
    return total;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    detrun_mode mode = argc > 2 && strcmp(argv[2], "fast") == 0 ? DETRUN_FAST : DETRUN_DETERMINISTIC;
    int runs = argc > 3 ? atoi(argv[3]) : 7;
    int scalar = argc > 4 && strcmp(argv[4], "scalar") == 0;
    const char *iters_env = getenv("BENCH_ITERS");
    int ITERS = iters_env ? atoi(iters_env) : ITERS_DEFAULT;
    if (ITERS < 1)
        ITERS = 1;
    if (runs < 1 || runs > MAXRUNS || threads < 1) {
        fprintf(stderr, "usage: bench_kernels [threads >= 1] [det|fast] [runs 1..%d] [scalar]\n",
                MAXRUNS);
        return 2;
    }
    detrun_backend *b = NULL;
    char err[256];
    if (detrun_cpu_backend_new(&b, threads, mode, err, sizeof err) != DETRUN_OK) {
        fprintf(stderr, "bench_kernels: %s\n", err);
        return 1;
    }
    if (scalar)
        detrun_cpu_set_simd(b, 0);
    setup();
    size_t nk = sizeof kernels / sizeof *kernels;
    printf("cpu kernels, batch %d, %d threads, %s mode, %s path, median of %d runs of %d calls\n",
           N, threads, mode == DETRUN_FAST ? "fast" : "deterministic",
           detrun_cpu_simd_name(DETRUN_CPU(b)->simd), runs, ITERS);
    const char *only = getenv("BENCH_ONLY");
    if (getenv("BENCH_CPU"))
        clock_id = CLOCK_PROCESS_CPUTIME_ID;
    double total = time_all(b, kernels, nk, only, runs, ITERS);
    printf("  %-22s %9.1f us  (%.0f steps/s if kernels were all)\n", "sum", total * 1e6, 1.0 / total);
    /* The pairs in one pass, where this path has them: a step runs these
     * instead of the separate kernels (no gradient of conv1's output, the
     * ReLU masks inside the pools' backward). */
    if (b->ops->conv2d_pooled_forward(b, NULL, s.q1, s.am1, s.x, s.w1, s.b1, &c1, 1, &p1)) {
        printf("one-pass pairs (not in the sum):\n");
        time_all(b, pairs, sizeof pairs / sizeof *pairs, only, runs, ITERS);
    }
    b->ops->destroy(b);
    return 0;
}
