/*
 * maxpool.h - max pooling's AVX2 paths (maxpool_avx2.c), for maxpool.c.
 */
#ifndef DETRUN_CPU_MAXPOOL_H
#define DETRUN_CPU_MAXPOOL_H

#include <stdint.h>

#include "cpu.h"

#if defined(__x86_64__)
/* One plane, 2x2 windows at stride 2 (2 * oh <= h, 2 * ow <= w). */
void detrun_cpu_maxpool_2x2_avx2(float *out, int32_t *am, const float *in, int w, int oh,
                                 int ow);
/* Backward of one plane, 2x2 windows at stride 2, ow >= 8. */
void detrun_cpu_maxpool_back_2x2_avx2(float *din, const float *dout, const int32_t *am,
                                      int h, int w, int oh, int ow);
#endif

#endif
