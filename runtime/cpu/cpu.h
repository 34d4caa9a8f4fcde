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
#include <stdatomic.h>
#include <stddef.h>

#include "backend.h"
#include "pool.h"

/* Fast mode's chunked conv weight gradient: the batch is cut into chunks of
 * this many samples, claimed dynamically; their partial gradients are added
 * in the order they finish (the dense one has its own, dense.h). */
#define DETRUN_CPU_FAST_CHUNK 10

/* Fast mode: a block of a shared gradient that partial sums are added into,
 * one at a time, in the order they finish. */
typedef struct detrun_cpu_block {
    atomic_int held;          /* 1 while a thread adds into the block */
    int arrived;              /* partials added so far (read and written under held) */
} detrun_cpu_block;

typedef struct detrun_cpu {
    detrun_pool *pool;
    int threads;
    detrun_mode mode;
    int simd;                 /* a DETRUN_CPU_SIMD_* level: 0 plain C */
    pthread_mutex_t reduce;   /* fast mode: adds into a shared gradient */
    float *scratch;           /* grown by the calling thread, never inside a job */
    size_t scratch_floats;
    detrun_cpu_block *blocks; /* fast mode's blocks, grown by the calling thread */
    size_t nblocks;
    detrun_alloc_fn alloc;    /* the runtime's allocator: buffers, scratch, this struct */
    void *alloc_ud;
} detrun_cpu;

#define DETRUN_CPU(b) ((detrun_cpu *)(b)->ctx)

/* At least floats of 64-byte aligned scratch, or NULL when it cannot grow
 * (callers then take a path that needs none). Contents are undefined. */
float *detrun_cpu_scratch(detrun_cpu *c, size_t floats);

/* The kernel paths, each giving the same bits (docs/determinism.md, "CPU"):
 * plain C, AVX2+FMA, and AVX-512F where a kernel has a 16-wide path (the
 * others then take their AVX2 path). */
enum { DETRUN_CPU_SIMD_SCALAR = 0, DETRUN_CPU_SIMD_AVX2 = 1, DETRUN_CPU_SIMD_AVX512 = 2 };

/* 1 when this CPU runs AVX2 and FMA. */
int detrun_cpu_has_avx2(void);
/* 1 when this CPU (and its OS) runs AVX-512F as well as AVX2 and FMA. */
int detrun_cpu_has_avx512(void);
/* The best level this CPU runs. */
int detrun_cpu_simd_best(void);
/* Sets the kernel path (tests compare them): level is a DETRUN_CPU_SIMD_*
 * (any nonzero level below 0 or above AVX512 counts as the best); a level the
 * CPU lacks gives the best one below it. Returns the level set. */
int detrun_cpu_set_simd(detrun_backend *b, int level);
/* DETRUN_SIMD's value (NULL: unset) to a level: "scalar", "avx2", "avx512"
 * or "" / "auto" (the best); -1 for anything else. Capped at what the CPU
 * runs. */
int detrun_cpu_simd_parse(const char *value);
/* The level's name: "scalar", "avx2+fma", "avx512f". */
const char *detrun_cpu_simd_name(int level);

/* The kernels (their signatures are backend.h's). */
detrun_gather_fn detrun_cpu_gather;
detrun_conv2d_forward_fn detrun_cpu_conv2d_forward;
detrun_conv2d_backward_fn detrun_cpu_conv2d_backward;
detrun_maxpool_forward_fn detrun_cpu_maxpool_forward;
detrun_maxpool_backward_fn detrun_cpu_maxpool_backward;
detrun_maxpool_relu_backward_fn detrun_cpu_maxpool_relu_backward;
detrun_conv2d_pooled_wgrad_fn detrun_cpu_conv2d_pooled_wgrad;
detrun_conv2d_pooled_forward_fn detrun_cpu_conv2d_pooled_forward;
detrun_dense_forward_fn detrun_cpu_dense_forward;
detrun_dense_backward_fn detrun_cpu_dense_backward;
detrun_relu_forward_fn detrun_cpu_relu_forward;
detrun_relu_backward_fn detrun_cpu_relu_backward;
detrun_dropout_forward_fn detrun_cpu_dropout_forward;
detrun_dropout_backward_fn detrun_cpu_dropout_backward;
detrun_softmax_xent_fn detrun_cpu_softmax_xent;
detrun_adam_step_fn detrun_cpu_adam_step;
detrun_sgd_step_fn detrun_cpu_sgd_step;
detrun_check_finite_fn detrun_cpu_check_finite;
detrun_avgpool_forward_fn detrun_cpu_avgpool_forward;
detrun_avgpool_backward_fn detrun_cpu_avgpool_backward;

/* The CPU backend's registration (listed in the build's backends.c). */
const detrun_backend_reg *detrun_cpu_backend_reg(void);

/* Elementwise helper: runs fn over [begin, end) slices of count elements,
 * cut into blocks of `block` elements (rounded up to a multiple of 64) that
 * threads claim; a job of one block runs on the calling thread, with no
 * handover. Elements are independent, so any split gives the same bits: the
 * block size is chosen by cost, so that a block's work outweighs a handover
 * (DETRUN_CPU_BLOCK_* below). */
typedef void (*detrun_cpu_range_fn)(void *arg, size_t begin, size_t end);
void detrun_cpu_parallel_range(detrun_cpu *c, size_t count, size_t block, detrun_cpu_range_fn fn,
                               void *arg);

/* Block sizes: a few loads and a store per element (ReLU, dropout's
 * backward, SGD, the finiteness check), and a few microseconds of work per
 * block for the costly ones (dropout's Philox, Adam's square root and
 * division). */
#define DETRUN_CPU_BLOCK_CHEAP 32768
#define DETRUN_CPU_BLOCK_COSTLY 4096

#endif
