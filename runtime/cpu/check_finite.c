/*
 * check_finite.c - finds a NaN or an infinity (training stops with the
 * step and tensor named by the caller). By bits, so no compiler setting can
 * fold the test away.
 */
#include <stdatomic.h>
#include <string.h>

#include "cpu.h"

typedef struct finite_job {
    const float *x;
    atomic_int bad;
} finite_job;

static void finite_range(void *arg, size_t begin, size_t end)
{
    finite_job *j = arg;
    uint32_t any = 0;
    for (size_t i = begin; i < end; i++) {
        uint32_t u;
        memcpy(&u, &j->x[i], sizeof u);
        any |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    if (any)
        atomic_store(&j->bad, 1);
}

void detrun_cpu_check_finite(detrun_backend *b, const float *x, size_t count, int *bad)
{
    finite_job j;
    j.x = x;
    atomic_init(&j.bad, 0);
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_CHEAP, finite_range, &j);
    if (atomic_load(&j.bad))
        *bad = 1;
}
