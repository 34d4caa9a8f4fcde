/*
 * cpu_backend.c - the CPU backend's table, memory and settings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* Elementwise jobs below this size run on the calling thread: waking the
 * pool costs more than the work. */
#define RANGE_BLOCK 8192

int detrun_cpu_has_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int detrun_cpu_set_simd(detrun_backend *b, int on)
{
    detrun_cpu *c = DETRUN_CPU(b);
    c->simd = on && detrun_cpu_has_avx2();
    return c->simd;
}

float *detrun_cpu_scratch(detrun_cpu *c, size_t floats)
{
    if (floats <= c->scratch_floats)
        return c->scratch;
    if (floats > (SIZE_MAX - 64) / sizeof(float))
        return NULL;
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p)
        return NULL;
    free(c->scratch);
    c->scratch = p;
    c->scratch_floats = bytes / sizeof(float);
    return p;
}

typedef struct range_job {
    detrun_cpu_range_fn fn;
    void *arg;
    size_t count;
} range_job;

static void range_task(void *arg, int task, int thread)
{
    (void)thread;
    range_job *j = arg;
    size_t begin = (size_t)task * RANGE_BLOCK;
    size_t end = begin + RANGE_BLOCK < j->count ? begin + RANGE_BLOCK : j->count;
    j->fn(j->arg, begin, end);
}

void detrun_cpu_parallel_range(detrun_cpu *c, size_t count, detrun_cpu_range_fn fn, void *arg)
{
    if (count == 0)
        return;
    size_t blocks = (count + RANGE_BLOCK - 1) / RANGE_BLOCK;
    if (blocks == 1 || c->threads == 1 || blocks > (size_t)0x7fffffff) {
        fn(arg, 0, count);
        return;
    }
    range_job j = { fn, arg, count };
    detrun_pool_run(c->pool, (int)blocks, range_task, &j);
}

/* ---- lifetime and settings ------------------------------------------------ */

static void cpu_destroy(detrun_backend *b)
{
    if (!b)
        return;
    detrun_cpu *c = DETRUN_CPU(b);
    if (c) {
        detrun_pool_free(c->pool);
        pthread_mutex_destroy(&c->reduce);
        free(c->scratch);
        free(c);
    }
    free(b);
}

static detrun_status cpu_set_mode(detrun_backend *b, detrun_mode mode)
{
    if (mode != DETRUN_DETERMINISTIC && mode != DETRUN_FAST)
        return DETRUN_ERR_ARG;
    DETRUN_CPU(b)->mode = mode;
    return DETRUN_OK;
}

static detrun_status cpu_set_threads(detrun_backend *b, int threads)
{
    detrun_cpu *c = DETRUN_CPU(b);
    if (threads < 1)
        return DETRUN_ERR_ARG;
    if (threads == c->threads)
        return DETRUN_OK;
    detrun_pool *p = detrun_pool_new(threads);
    if (!p)
        return DETRUN_ERR_MEMORY;
    detrun_pool_free(c->pool);
    c->pool = p;
    c->threads = threads;
    return DETRUN_OK;
}

static detrun_status cpu_sync(detrun_backend *b)
{
    (void)b;
    return DETRUN_OK;
}

/* ---- memory ----------------------------------------------------------------- */

static void *cpu_alloc(detrun_backend *b, size_t bytes)
{
    (void)b;
    if (bytes > SIZE_MAX - 64)
        return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

static void cpu_free(detrun_backend *b, void *p)
{
    (void)b;
    free(p);
}

static detrun_status cpu_copy(detrun_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes && (!dst || !src))
        return DETRUN_ERR_ARG;
    if (bytes)
        memmove(dst, src, bytes);
    return DETRUN_OK;
}

static void cpu_zero(detrun_backend *b, void *p, size_t bytes)
{
    (void)b;
    if (p && bytes)
        memset(p, 0, bytes);
}

detrun_status detrun_cpu_backend_new(detrun_backend **out, int threads, detrun_mode mode,
                                     char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out) {
        if (err && errlen)
            snprintf(err, errlen, "cpu backend: no place to return the backend (out is NULL)");
        return DETRUN_ERR_ARG;
    }
    *out = NULL;
    if (threads < 1) {
        if (err && errlen)
            snprintf(err, errlen, "cpu backend: threads must be at least 1 (got %d)", threads);
        return DETRUN_ERR_ARG;
    }
    if (mode != DETRUN_DETERMINISTIC && mode != DETRUN_FAST) {
        if (err && errlen)
            snprintf(err, errlen, "cpu backend: unknown mode %d", (int)mode);
        return DETRUN_ERR_ARG;
    }
    detrun_backend *b = calloc(1, sizeof *b);
    detrun_cpu *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        if (err && errlen)
            snprintf(err, errlen, "cpu backend: out of memory");
        return DETRUN_ERR_MEMORY;
    }
    if (pthread_mutex_init(&c->reduce, NULL) != 0) {
        free(b);
        free(c);
        if (err && errlen)
            snprintf(err, errlen, "cpu backend: cannot create a mutex");
        return DETRUN_ERR_MEMORY;
    }
    b->ctx = c;
    c->pool = detrun_pool_new(threads);
    if (!c->pool) {
        cpu_destroy(b);
        if (err && errlen)
            snprintf(err, errlen, "cpu backend: cannot start %d threads", threads);
        return DETRUN_ERR_MEMORY;
    }
    c->threads = threads;
    c->mode = mode;
    /* Read once here so that a run never switches paths midway; both paths
     * give the same bits, the variable only exists to check that. */
    const char *simd = getenv("DETRUN_SIMD");
    c->simd = detrun_cpu_has_avx2() && !(simd && strcmp(simd, "scalar") == 0);

    b->name = "cpu";
    b->destroy = cpu_destroy;
    b->set_mode = cpu_set_mode;
    b->set_threads = cpu_set_threads;
    b->sync = cpu_sync;
    b->alloc = cpu_alloc;
    b->free = cpu_free;
    b->upload = cpu_copy;
    b->download = cpu_copy;
    b->zero = cpu_zero;
    b->gather = detrun_cpu_gather;
    b->conv2d_forward = detrun_cpu_conv2d_forward;
    b->conv2d_backward = detrun_cpu_conv2d_backward;
    b->maxpool_forward = detrun_cpu_maxpool_forward;
    b->maxpool_backward = detrun_cpu_maxpool_backward;
    b->dense_forward = detrun_cpu_dense_forward;
    b->dense_backward = detrun_cpu_dense_backward;
    b->relu_forward = detrun_cpu_relu_forward;
    b->relu_backward = detrun_cpu_relu_backward;
    b->dropout_forward = detrun_cpu_dropout_forward;
    b->dropout_backward = detrun_cpu_dropout_backward;
    b->softmax_xent = detrun_cpu_softmax_xent;
    b->adam_step = detrun_cpu_adam_step;
    b->sgd_step = detrun_cpu_sgd_step;
    b->check_finite = detrun_cpu_check_finite;
    b->avgpool_forward = detrun_cpu_avgpool_forward;
    b->avgpool_backward = detrun_cpu_avgpool_backward;
    *out = b;
    return DETRUN_OK;
}
