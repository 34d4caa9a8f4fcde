/*
 * dropout.c - inverted dropout with counter-based masks (docs/determinism.md,
 * "dropout", R6): element e draws word e of the stream addressed by
 * (seed, DROPOUT, stream, layer, step), so the mask does not depend on which
 * thread makes it. The AVX2 and AVX-512 paths are in dropout_avx2.c and
 * dropout_avx512.c.
 */
#include "dropout.h"
#include "philox.h"

static void forward_range(void *arg, size_t begin, size_t end)
{
    const dropout_job *j = arg;
    const detrun_rng_addr *a = j->addr;
    uint32_t key[2] = { (uint32_t)a->seed, (uint32_t)(a->seed >> 32) };
    uint32_t ctr[4] = { 0, a->step, a->layer,
                        ((uint32_t)DETRUN_RNG_DROPOUT << 24) | (a->stream & 0xffffffu) };
    size_t e = begin;
#if defined(__x86_64__)
    if (j->simd >= DETRUN_CPU_SIMD_AVX512 && (e & 3) == 0)
        e = detrun_cpu_dropout_avx512(j, e, end);
    if (j->simd && (e & 3) == 0)
        e = detrun_cpu_dropout_avx2(j, e, end);
#endif
    while (e < end) {
        ctr[0] = (uint32_t)(e >> 2);
        detrun_philox_out r = detrun_philox4x32_10(ctr, key);
        for (size_t w = e & 3; w < 4 && e < end; w++, e++) {
            float u = detrun_u01(r.v[w]);
            float m = u >= j->rate ? j->scale : 0.0f;
            j->mask[e] = m;
            j->out[e] = j->in[e] * m;
        }
    }
}

typedef struct dropout_bwd_job {
    float *din;
    const float *dout, *mask;
} dropout_bwd_job;

static void backward_range(void *arg, size_t begin, size_t end)
{
    const dropout_bwd_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->din[i] = j->dout[i] * j->mask[i];
}

void detrun_cpu_dropout_forward(detrun_backend *b, float *out, float *mask, const float *in,
                                size_t count, float rate, const detrun_rng_addr *addr)
{
    dropout_job j = { out, mask, in, rate, 1.0f / (1.0f - rate), addr, DETRUN_CPU(b)->simd };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_COSTLY, forward_range, &j);
}

void detrun_cpu_dropout_backward(detrun_backend *b, float *din, const float *dout,
                                 const float *mask, size_t count)
{
    dropout_bwd_job j = { din, dout, mask };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_CHEAP, backward_range, &j);
}
