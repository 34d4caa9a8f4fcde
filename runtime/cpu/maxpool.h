/*
 * maxpool.h - max pooling's vector paths for 2x2 windows at stride 2
 * (maxpool_avx2.c, maxpool_avx512.c), for maxpool.c.
 *
 * Each runs `planes` consecutive (h, w) planes into (oh, ow) ones, with
 * 2 * oh <= h, 2 * ow <= w, oh, ow >= 1. The backward overwrites every input
 * of its planes (+0 outside every window); pooled, when not NULL, is the
 * forward's output, the mask of the ReLU before (`pooled > 0`).
 */
#ifndef DETRUN_CPU_MAXPOOL_H
#define DETRUN_CPU_MAXPOOL_H

#include <stdint.h>

#include "cpu.h"

#if defined(__x86_64__)
void detrun_cpu_maxpool_2x2_avx2(float *out, int32_t *am, const float *in, int planes, int h,
                                 int w, int oh, int ow);
void detrun_cpu_maxpool_back_2x2_avx2(float *din, const float *dout, const int32_t *am,
                                      const float *pooled, int planes, int h, int w, int oh,
                                      int ow);
void detrun_cpu_maxpool_2x2_avx512(float *out, int32_t *am, const float *in, int planes, int h,
                                   int w, int oh, int ow);
void detrun_cpu_maxpool_back_2x2_avx512(float *din, const float *dout, const int32_t *am,
                                        const float *pooled, int planes, int h, int w, int oh,
                                        int ow);
#endif

#endif
