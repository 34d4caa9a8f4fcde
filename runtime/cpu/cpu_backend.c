/*
 * cpu_backend.c - the CPU backend's table, memory and settings.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "internal.h"


int detrun_cpu_has_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int detrun_cpu_has_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();   /* libgcc also checks that the OS saves the zmm state */
    return detrun_cpu_has_avx2() && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

int detrun_cpu_simd_best(void)
{
    if (detrun_cpu_has_avx512())
        return DETRUN_CPU_SIMD_AVX512;
    return detrun_cpu_has_avx2() ? DETRUN_CPU_SIMD_AVX2 : DETRUN_CPU_SIMD_SCALAR;
}

static int simd_cap(int level)
{
    int best = detrun_cpu_simd_best();
    return level < best ? level : best;
}

int detrun_cpu_set_simd(detrun_backend *b, int level)
{
    detrun_cpu *c = DETRUN_CPU(b);
    if (level < 0 || level > DETRUN_CPU_SIMD_AVX512)
        level = DETRUN_CPU_SIMD_AVX512;
    c->simd = simd_cap(level);
    return c->simd;
}

int detrun_cpu_simd_parse(const char *value)
{
    if (value == NULL || value[0] == '\0' || strcmp(value, "auto") == 0)
        return detrun_cpu_simd_best();
    if (strcmp(value, "scalar") == 0)
        return DETRUN_CPU_SIMD_SCALAR;
    if (strcmp(value, "avx2") == 0)
        return simd_cap(DETRUN_CPU_SIMD_AVX2);
    if (strcmp(value, "avx512") == 0)
        return simd_cap(DETRUN_CPU_SIMD_AVX512);
    return -1;
}

const char *detrun_cpu_simd_name(int level)
{
    switch (level) {
    case DETRUN_CPU_SIMD_AVX2: return "avx2+fma";
    case DETRUN_CPU_SIMD_AVX512: return "avx512f";
    default: return "scalar";
    }
}

float *detrun_cpu_scratch(detrun_cpu *c, size_t floats)
{
    if (floats <= c->scratch_floats)
        return c->scratch;
    if (floats > (SIZE_MAX - 64) / sizeof(float))
        return NULL;
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    float *p = detrun_aligned_alloc(c->alloc, c->alloc_ud, bytes);
    if (!p)
        return NULL;
    detrun_aligned_free(c->alloc, c->alloc_ud, c->scratch);
    c->scratch = p;
    c->scratch_floats = bytes / sizeof(float);
    return p;
}

typedef struct range_job {
    detrun_cpu_range_fn fn;
    void *arg;
    size_t count, block;
} range_job;

static void range_task(void *arg, int task, int thread)
{
    (void)thread;
    range_job *j = arg;
    size_t begin = (size_t)task * j->block;
    size_t end = begin + j->block < j->count ? begin + j->block : j->count;
    j->fn(j->arg, begin, end);
}

void detrun_cpu_parallel_range(detrun_cpu *c, size_t count, size_t block, detrun_cpu_range_fn fn,
                               void *arg)
{
    if (count == 0)
        return;
    if (block == 0)
        block = count;
    /* Blocks of 4 cache lines' worth of floats or more, so that two threads
     * never share a line they write. */
    block = (block + 63) & ~(size_t)63;
    size_t blocks = (count + block - 1) / block;
    if (blocks == 1 || c->threads == 1 || blocks > (size_t)0x7fffffff) {
        fn(arg, 0, count);
        return;
    }
    range_job j = { fn, arg, count, block };
    detrun_pool_run(c->pool, (int)blocks, range_task, &j);
}

/* ---- lifetime and settings ------------------------------------------------ */

static void cpu_destroy(detrun_backend *b)
{
    if (!b)
        return;
    detrun_cpu *c = DETRUN_CPU(b);
    detrun_alloc_fn alloc = c->alloc;
    void *ud = c->alloc_ud;
    detrun_pool_free(c->pool);
    pthread_mutex_destroy(&c->reduce);
    detrun_aligned_free(alloc, ud, c->scratch);
    if (c->blocks)
        alloc(ud, c->blocks, c->nblocks * sizeof *c->blocks, 0);
    alloc(ud, c, sizeof *c, 0);
    alloc(ud, b, sizeof *b, 0);
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
    detrun_pool *p = detrun_pool_new(threads, c->alloc, c->alloc_ud);
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

static void cpu_describe(detrun_backend *b, detrun_backend_info what, char *buf, size_t len)
{
    if (!buf || !len)
        return;
    if (what == DETRUN_INFO_ISA)
        snprintf(buf, len, "%s", detrun_cpu_simd_name(DETRUN_CPU(b)->simd));
    else
        snprintf(buf, len, "cpu");
}

static const char *cpu_errmsg(detrun_backend *b)
{
    (void)b;
    return NULL;   /* every failure is a status with nothing more to say */
}

/* Nothing to record: the step's calls run as they come. */
static detrun_status cpu_run_step(detrun_backend *b, const detrun_step *step)
{
    (void)b;
    return step->issue(step->ctx);
}

/* ---- memory ----------------------------------------------------------------- */

static void *cpu_alloc(detrun_backend *b, size_t bytes)
{
    detrun_cpu *c = DETRUN_CPU(b);
    if (bytes > SIZE_MAX - 64)
        return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    void *p = detrun_aligned_alloc(c->alloc, c->alloc_ud, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

static void cpu_free(detrun_backend *b, void *p)
{
    detrun_cpu *c = DETRUN_CPU(b);
    detrun_aligned_free(c->alloc, c->alloc_ud, p);
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

static const detrun_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .set_mode = cpu_set_mode,
    .set_threads = cpu_set_threads,
    .sync = cpu_sync,
    .describe = cpu_describe,
    .errmsg = cpu_errmsg,
    .run_step = cpu_run_step,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .gather = detrun_cpu_gather,
    .conv2d_forward = detrun_cpu_conv2d_forward,
    .conv2d_backward = detrun_cpu_conv2d_backward,
    .maxpool_forward = detrun_cpu_maxpool_forward,
    .maxpool_backward = detrun_cpu_maxpool_backward,
    .dense_forward = detrun_cpu_dense_forward,
    .dense_backward = detrun_cpu_dense_backward,
    .relu_forward = detrun_cpu_relu_forward,
    .relu_backward = detrun_cpu_relu_backward,
    .dropout_forward = detrun_cpu_dropout_forward,
    .dropout_backward = detrun_cpu_dropout_backward,
    .softmax_xent = detrun_cpu_softmax_xent,
    .adam_step = detrun_cpu_adam_step,
    .sgd_step = detrun_cpu_sgd_step,
    .check_finite = detrun_cpu_check_finite,
    .avgpool_forward = detrun_cpu_avgpool_forward,
    .avgpool_backward = detrun_cpu_avgpool_backward,
    .maxpool_relu_backward = detrun_cpu_maxpool_relu_backward,
    .conv2d_pooled_wgrad = detrun_cpu_conv2d_pooled_wgrad,
    .conv2d_pooled_forward = detrun_cpu_conv2d_pooled_forward,
};

/* ---- construction ------------------------------------------------------------ */

static detrun_status refuse(detrun_status st, char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static detrun_status refuse(detrun_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* The CPU backend takes no options (they are other backends' settings). */
static detrun_status cpu_open(detrun_backend **out, const detrun_backend_params *p, char *err,
                              size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !p || !p->alloc)
        return refuse(DETRUN_ERR_ARG, err, errlen,
                      "cpu backend: no place for the backend (out is NULL) or no allocator");
    *out = NULL;
    if (p->device != 0)
        return refuse(DETRUN_ERR_DEVICE, err, errlen,
                      "no CPU device cpu:%d (the host is the one CPU device: cpu)", p->device);
    if (p->threads < 1)
        return refuse(DETRUN_ERR_ARG, err, errlen,
                      "cpu backend: threads must be at least 1 (got %d)", p->threads);
    if (p->mode != DETRUN_DETERMINISTIC && p->mode != DETRUN_FAST)
        return refuse(DETRUN_ERR_ARG, err, errlen, "cpu backend: unknown mode %d", (int)p->mode);
    detrun_backend *b = p->alloc(p->alloc_ud, NULL, 0, sizeof *b);
    detrun_cpu *c = p->alloc(p->alloc_ud, NULL, 0, sizeof *c);
    if (c)
        memset(c, 0, sizeof *c);
    if (!b || !c || pthread_mutex_init(&c->reduce, NULL) != 0) {
        if (b)
            p->alloc(p->alloc_ud, b, sizeof *b, 0);
        if (c)
            p->alloc(p->alloc_ud, c, sizeof *c, 0);
        return refuse(DETRUN_ERR_MEMORY, err, errlen, "cpu backend: out of memory");
    }
    memset(b, 0, sizeof *b);
    b->name = "cpu";
    b->ops = &cpu_ops;
    b->ctx = c;
    c->alloc = p->alloc;
    c->alloc_ud = p->alloc_ud;
    /* Read once here so that a run never switches paths midway; every path
     * gives the same bits, the variable only exists to check that. */
    const char *simd = getenv("DETRUN_SIMD");
    c->simd = detrun_cpu_simd_parse(simd);
    if (c->simd < 0) {
        cpu_destroy(b);
        return refuse(DETRUN_ERR_ARG, err, errlen,
                      "DETRUN_SIMD=%s: unknown kernel path (scalar, avx2, avx512 or auto)", simd);
    }
    c->pool = detrun_pool_new(p->threads, p->alloc, p->alloc_ud);
    if (!c->pool) {
        cpu_destroy(b);
        return refuse(DETRUN_ERR_MEMORY, err, errlen, "cpu backend: cannot start %d threads",
                      p->threads);
    }
    c->threads = p->threads;
    c->mode = p->mode;
    *out = b;
    return DETRUN_OK;
}

detrun_status detrun_cpu_backend_new(detrun_backend **out, int threads, detrun_mode mode,
                                     char *err, size_t errlen)
{
    detrun_backend_params p = { 0, NULL, mode, threads, detrun_default_alloc, NULL };
    return cpu_open(out, &p, err, errlen);
}

const detrun_backend_reg *detrun_cpu_backend_reg(void)
{
    static const detrun_backend_reg reg = { "cpu", cpu_open, NULL };
    return &reg;
}
