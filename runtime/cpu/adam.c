/*
 * adam.c - Keras' Adam, elementwise (docs/determinism.md, "Adam", R2, R3):
 * products and sums rounded one by one as written, beta^t as running
 * products kept by the caller, only sqrtf from libm.
 */
#include <math.h>

#include "cpu.h"

typedef struct adam_job {
    float *p, *m, *v;
    const float *g;
    float beta1, beta2, one_m_b1, one_m_b2, lr_t, eps;
} adam_job;

static void adam_range(void *arg, size_t begin, size_t end)
{
    const adam_job *j = arg;
    for (size_t i = begin; i < end; i++) {
        float g = j->g[i];
        float m = j->beta1 * j->m[i] + j->one_m_b1 * g;
        float v = j->beta2 * j->v[i] + j->one_m_b2 * (g * g);
        j->m[i] = m;
        j->v[i] = v;
        j->p[i] = j->p[i] - (j->lr_t * m) / (sqrtf(v) + j->eps);
    }
}

void detrun_cpu_adam_step(detrun_backend *b, float *p, const float *g, float *m, float *v,
                          size_t count, const detrun_adam_params *a)
{
    adam_job j;
    j.p = p;
    j.m = m;
    j.v = v;
    j.g = g;
    j.beta1 = a->beta1;
    j.beta2 = a->beta2;
    j.one_m_b1 = 1.0f - a->beta1;
    j.one_m_b2 = 1.0f - a->beta2;
    j.lr_t = (a->lr * sqrtf(1.0f - a->beta2_t)) / (1.0f - a->beta1_t);
    j.eps = a->eps;
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, adam_range, &j);
}
