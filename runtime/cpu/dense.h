/*
 * dense.h - what the dense layer's files share: the one product shape all
 * three of its products take (dense.c) and its AVX2 and AVX-512 paths.
 */
#ifndef DETRUN_CPU_DENSE_H
#define DETRUN_CPU_DENSE_H

#include <stddef.h>

#include "cpu.h"

#define ROW_TILE 4       /* rows per task */
#define COL_TILE 32      /* columns per task: 4 AVX2 vectors */

typedef struct seq_args {
    float *out;          /* (rows, units), row stride units */
    const float *x;      /* x(r, i) = x[r * xrs + i * xis] */
    size_t xrs, xis;
    const float *wt;     /* wt(i, j) = wt[i * wis + j * wjs] */
    size_t wis, wjs;
    const float *init;   /* (units) or NULL for +0 */
    int rows, inner, units, relu;
} seq_args;

#if defined(__x86_64__)
/* Rows [r0, r1) by columns [j0, j1) (at most COL_TILE), wjs == 1: 8
 * neighbouring columns to a register, each lane its column's written chain. */
void detrun_cpu_dense_tile_avx2(const seq_args *a, int r0, int r1, int j0, int j1);
/* The same with 16 columns to a register (dense_avx512.c). */
void detrun_cpu_dense_tile_avx512(const seq_args *a, int r0, int r1, int j0, int j1);
#endif

#endif
