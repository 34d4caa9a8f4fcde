/*
 * cpu_backend.h - what the CPU kernel tests share: a CPU backend with a
 * thread count, a mode and a kernel path (test_kernels_order.c,
 * test_maxpool.c, test_conv_pooled.c).
 */
#ifndef DETRUN_TEST_CPU_BACKEND_H
#define DETRUN_TEST_CPU_BACKEND_H

#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "cpu/cpu.h"

/* The backend, its path set to simd (the best the CPU has below it); the
 * test ends, saying why, when it cannot be made. */
static inline detrun_backend *cpu_backend(int threads, detrun_mode mode, int simd)
{
    detrun_backend *b = NULL;
    char err[256];
    if (detrun_cpu_backend_new(&b, threads, mode, err, sizeof err) != DETRUN_OK) {
        fprintf(stderr, "cpu backend: %s\n", err);
        exit(1);
    }
    detrun_cpu_set_simd(b, simd);
    return b;
}

#endif
