/*
 * dropout.h - what dropout's files share: the forward job (dropout.c) and its
 * AVX2 path (dropout_avx2.c).
 */
#ifndef DETRUN_CPU_DROPOUT_H
#define DETRUN_CPU_DROPOUT_H

#include <stddef.h>

#include "cpu.h"

typedef struct dropout_job {
    float *out, *mask;
    const float *in;
    float rate, scale;
    const detrun_rng_addr *addr;
    int simd;
} dropout_job;

#if defined(__x86_64__)
/* Elements [e, e + 32k) for the largest k that stays within end (e a
 * multiple of 4), eight Philox blocks at a time; returns where it stopped. */
size_t detrun_cpu_dropout_avx2(const dropout_job *j, size_t e, size_t end);
/* The same sixteen blocks at a time (64 elements). */
size_t detrun_cpu_dropout_avx512(const dropout_job *j, size_t e, size_t end);
#endif

#endif
