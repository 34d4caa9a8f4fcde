/*
 * sgd.c - SGD with optional momentum (docs/determinism.md, "SGD", R2).
 */
#include "cpu.h"

typedef struct sgd_job {
    float *p, *v;
    const float *g;
    float lr, momentum;
} sgd_job;

static void sgd_range(void *arg, size_t begin, size_t end)
{
    const sgd_job *j = arg;
    if (j->momentum == 0.0f || !j->v) {
        for (size_t i = begin; i < end; i++)
            j->p[i] = j->p[i] - j->lr * j->g[i];
        return;
    }
    for (size_t i = begin; i < end; i++) {
        float v = j->momentum * j->v[i] - j->lr * j->g[i];
        j->v[i] = v;
        j->p[i] = j->p[i] + v;
    }
}

void detrun_cpu_sgd_step(detrun_backend *b, float *p, const float *g, float *v, size_t count,
                         float lr, float momentum)
{
    sgd_job j = { p, v, g, lr, momentum };
    detrun_cpu_parallel_range(DETRUN_CPU(b), count, DETRUN_CPU_BLOCK_CHEAP, sgd_range, &j);
}
