/*
 * dense.h - what the dense layer's files share: the one product shape all
 * three of its products take (dense.c) and its AVX2 and AVX-512 paths.
 */
#ifndef DETRUN_CPU_DENSE_H
#define DETRUN_CPU_DENSE_H

#include <stddef.h>

#include "cpu.h"

#define COL_TILE 32      /* columns per task: 4 AVX2 vectors, 2 AVX-512 registers */
#define FAST_ROWS 8      /* fast mode: rows of the weight gradient per block, at least */
#define FAST_WORK 16384  /* fast mode: fmas per task, at least (more than a handover) */
#define FAST_CHUNKS 4    /* fast mode: the batch in this many chunks (at least 3: an order to vary) */

typedef struct seq_args {
    float *out;          /* (rows, units), row stride units */
    const float *x;      /* x(r, i) = x[r * xrs + i * xis] */
    size_t xrs, xis;
    const float *wt;     /* wt(i, j) = wt[i * wis + j * wjs] */
    size_t wis, wjs;
    const float *init;   /* (units) or NULL for +0 */
    int rows, inner, units, relu;
} seq_args;

/* One product cut into tasks of row_tile rows by COL_TILE columns. */
typedef struct dense_plan {
    seq_args a;
    int simd, row_tile, row_tiles, col_tiles, ntasks;
} dense_plan;

/* The backward's one job (dense.c), fast mode's fields set by dense_fast.c. */
typedef struct dense_bwd_job {
    dense_plan din, dw;
    float *dwp, *db;
    const float *dout, *in;
    int n, k, units, simd;
    int fast;                  /* 1: the weight gradient by fast mode's blocks */
    int ndw;                   /* the weight gradient's tasks */
    float *partials;           /* fast: per thread rows * units */
    detrun_cpu_block *blocks;  /* fast: per block of rows */
    int rows;                  /* fast: rows per block, a multiple of FAST_ROWS */
    int chunk;                 /* fast: samples per chunk */
} dense_bwd_job;

void detrun_cpu_dense_plan(dense_plan *p, const seq_args *a, int simd);
void detrun_cpu_dense_plan_task(const dense_plan *p, int task);
/* Rows [r0, r1), columns [j0, j1) (at most COL_TILE) on the path simd. */
void detrun_cpu_dense_tile(const seq_args *a, int simd, int r0, int r1, int j0, int j1);
/* db[j] from +0 over the samples in order. */
void detrun_cpu_dense_bias_grad(float *db, const float *dout, int n, int units, int simd);

/* Fast mode's scratch floats for this backward (0: the written order). */
size_t detrun_cpu_dense_fast_floats(const detrun_cpu *c, int n, int k, int units);
/* Sets j's fast fields (partials: the scratch above); 0 when it cannot. */
int detrun_cpu_dense_fast_prepare(detrun_cpu *c, dense_bwd_job *j, float *partials);
/* Weight gradient block task (of j->ndw) on thread. */
void detrun_cpu_dense_fast_task(const dense_bwd_job *j, int task, int thread);

#if defined(__x86_64__)
/* Rows [r0, r1) by columns [j0, j1) (at most COL_TILE), wjs == 1: 8
 * neighbouring columns to a register, each lane its column's written chain. */
void detrun_cpu_dense_tile_avx2(const seq_args *a, int r0, int r1, int j0, int j1);
/* w (k, units) to wt (units, k). */
void detrun_cpu_dense_transpose_avx2(float *wt, const float *w, int k, int units);
/* db[j]: from +0 over the samples in order, 8 columns to a register. */
void detrun_cpu_dense_bias_grad_avx2(float *db, const float *dout, int n, int units);
/* dst[i] = dst[i] + src[i]. */
void detrun_cpu_dense_add_avx2(float *dst, const float *src, size_t count);
/* The same with 16 columns to a register (dense_avx512.c). */
void detrun_cpu_dense_tile_avx512(const seq_args *a, int r0, int r1, int j0, int j1);
#endif

#endif
