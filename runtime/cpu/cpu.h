/*
 * cpu.h - what the CPU backend's files share: its state and its kernels.
 *
 * Every kernel has a plain C path and, where it pays, an AVX2+FMA path that
 * computes the same bits (docs/determinism.md): both follow the written
 * order, the vector path only runs independent outputs side by side.
 */
#ifndef DETRUN_CPU_H
#define DETRUN_CPU_H

#include <pthread.h>
#include <stddef.h>

#include "backend.h"
#include "pool.h"

/* Fast mode: the batch is cut into chunks of this many samples, claimed
 * dynamically; their partial gradients are added in the order they finish. */
#define DETRUN_CPU_FAST_CHUNK 10

typedef struct detrun_cpu {
    detrun_pool *pool;
    int threads;
    detrun_mode mode;
    int simd;                 /* 1: AVX2+FMA paths */
    pthread_mutex_t reduce;   /* fast mode: adds into a shared gradient */
    float *scratch;           /* grown by the calling thread, never inside a job */
    size_t scratch_floats;
} detrun_cpu;

#define DETRUN_CPU(b) ((detrun_cpu *)(b)->ctx)

/* At least floats of 64-byte aligned scratch, or NULL when it cannot grow
 * (callers then take a path that needs none). Contents are undefined. */
float *detrun_cpu_scratch(detrun_cpu *c, size_t floats);

/* 1 when this CPU runs AVX2 and FMA. */
int detrun_cpu_has_avx2(void);
/* Turns the vector paths on or off (tests compare the two); returns whether
 * they are on afterwards (off when the CPU lacks them). */
int detrun_cpu_set_simd(detrun_backend *b, int on);

/* The kernels (signatures as in backend.h). */
void detrun_cpu_gather(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                       const uint8_t *labels, size_t pixels, const uint32_t *rows, int n);
void detrun_cpu_conv2d_forward(detrun_backend *b, float *out, const float *in, const float *w,
                               const float *bias, const detrun_conv_dims *d, int relu);
void detrun_cpu_conv2d_backward(detrun_backend *b, float *din, float *dw, float *db,
                                const float *dout, const float *in, const float *w,
                                const detrun_conv_dims *d);
void detrun_cpu_maxpool_forward(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                                const detrun_pool_dims *d);
void detrun_cpu_maxpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const int32_t *argmax, const detrun_pool_dims *d);
void detrun_cpu_avgpool_forward(detrun_backend *b, float *out, const float *in,
                                const detrun_pool_dims *d);
void detrun_cpu_avgpool_backward(detrun_backend *b, float *din, const float *dout,
                                 const detrun_pool_dims *d);
void detrun_cpu_dense_forward(detrun_backend *b, float *out, const float *in, const float *w,
                              const float *bias, int n, int k, int units, int relu);
void detrun_cpu_dense_backward(detrun_backend *b, float *din, float *dw, float *db,
                               const float *dout, const float *in, const float *w, int n, int k,
                               int units);
void detrun_cpu_relu_forward(detrun_backend *b, float *out, const float *in, size_t count);
void detrun_cpu_relu_backward(detrun_backend *b, float *din, const float *dout, const float *out,
                              size_t count);
void detrun_cpu_dropout_forward(detrun_backend *b, float *out, float *mask, const float *in,
                                size_t count, float rate, const detrun_rng_addr *addr);
void detrun_cpu_dropout_backward(detrun_backend *b, float *din, const float *dout,
                                 const float *mask, size_t count);
void detrun_cpu_softmax_xent(detrun_backend *b, float *dlogits, float *loss, float *correct,
                             const float *logits, const int32_t *labels, int n, int classes);
void detrun_cpu_adam_step(detrun_backend *b, float *p, const float *g, float *m, float *v,
                          size_t count, const detrun_adam_params *a);
void detrun_cpu_sgd_step(detrun_backend *b, float *p, const float *g, float *v, size_t count,
                         float lr, float momentum);
void detrun_cpu_check_finite(detrun_backend *b, const float *x, size_t count, int *bad);

/* Elementwise helper: runs fn over [begin, end) slices of count elements,
 * cut into fixed blocks (independent elements: any split gives the same bits). */
typedef void (*detrun_cpu_range_fn)(void *arg, size_t begin, size_t end);
void detrun_cpu_parallel_range(detrun_cpu *c, size_t count, detrun_cpu_range_fn fn, void *arg);

#endif
