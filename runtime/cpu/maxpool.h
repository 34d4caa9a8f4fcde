/*
 * maxpool.h - max pooling's vector paths for 2x2 windows at stride 2
 * (maxpool_avx2.c, maxpool_avx512.c), for maxpool.c.
 *
 * For these windows (2 * oh <= h, 2 * ow <= w, ow >= 4) the argmax buffer
 * holds one byte per output, its window position in row-major order (0 top
 * left, 1 top right, 2 bottom left, 3 bottom right): a quarter of the flat
 * indices' traffic. Output row oy of plane p has its bytes from
 * (p * oh + oy) * DETRUN_MAXPOOL_CODE_ROW(ow), whole runs of 16 (the bytes
 * past ow are the vector paths' own), which fits the int32 per output the
 * buffer has room for when ow >= 4.
 *
 * Each path runs `planes` consecutive (h, w) planes into (oh, ow) ones. The
 * backward overwrites every input of its planes (+0 outside every window);
 * pooled, when not NULL, is the forward's output, the mask of the ReLU
 * before (`pooled > 0`).
 */
#ifndef DETRUN_CPU_MAXPOOL_H
#define DETRUN_CPU_MAXPOOL_H

#include <stdint.h>

#include "cpu.h"

#define DETRUN_MAXPOOL_CODE_ROW(ow) (((ow) + 15) / 16 * 16)

/* 1 when d's argmax buffer holds the codes above (2x2 windows at stride 2
 * inside the input, ow >= 4; the vector paths' case), 0 when flat indices. */
int detrun_cpu_maxpool_codes(const detrun_pool_dims *d);

#if defined(__x86_64__)
void detrun_cpu_maxpool_2x2_avx2(float *out, uint8_t *codes, const float *in, int planes, int h,
                                 int w, int oh, int ow);
void detrun_cpu_maxpool_back_2x2_avx2(float *din, const float *dout, const uint8_t *codes,
                                      const float *pooled, int planes, int h, int w, int oh,
                                      int ow);
void detrun_cpu_maxpool_2x2_avx512(float *out, uint8_t *codes, const float *in, int planes, int h,
                                   int w, int oh, int ow);
void detrun_cpu_maxpool_back_2x2_avx512(float *din, const float *dout, const uint8_t *codes,
                                        const float *pooled, int planes, int h, int w, int oh,
                                        int ow);
#endif

#endif
