/*
 * softmax_xent.c - softmax with sparse categorical cross-entropy
 * (docs/determinism.md, "softmax + sparse categorical cross-entropy", R1,
 * R3, R7): per sample, exp and log are detrun's own, the sum runs over the
 * classes in order, so a sample's loss does not depend on its batch.
 */
#include "cpu.h"
#include "mathf.h"

typedef struct xent_job {
    float *dlogits, *loss, *correct;
    const float *logits;
    const int32_t *labels;
    int n, classes, simd;
} xent_job;

/* Samples per task: a few microseconds of work, more than a handover. */
#define XENT_BLOCK 16

/* One sample. Inlined twice: as is, and into a function built for FMA, where
 * mathf.h's fmaf calls become single instructions instead of library calls
 * (the same correctly rounded fma, so the same bits). */
static inline __attribute__((always_inline)) void xent_sample(const xent_job *j, int i)
{
    const float *x = j->logits + (size_t)i * j->classes;
    int label = j->labels[i];
    int am = 0;
    float m = x[0];
    for (int c = 1; c < j->classes; c++) {
        if (x[c] > m) {
            m = x[c];
            am = c;
        }
    }
    /* e_j kept for the gradient (the same values recomputed would be the
     * same bits) when the classes fit. */
    float e[64];
    int keep = j->classes <= 64;
    float s = 0.0f;
    for (int c = 0; c < j->classes; c++) {
        float v = detrun_expf(x[c] - m);
        if (keep)
            e[c] = v;
        s = s + v;
    }
    int valid = label >= 0 && label < j->classes;
    /* A label out of range cannot be reported from here: it yields a NaN
     * loss, which the caller's finiteness check turns into an error. */
    j->loss[i] = valid ? detrun_logf(s) - (x[label] - m) : detrun_u2f(0x7fc00000u);
    j->correct[i] = valid && am == label ? 1.0f : 0.0f;
    if (j->dlogits) {
        float *g = j->dlogits + (size_t)i * j->classes;
        float fn = (float)j->n;
        for (int c = 0; c < j->classes; c++) {
            float ec = keep ? e[c] : detrun_expf(x[c] - m);
            float t = c == label ? 1.0f : 0.0f;
            g[c] = (ec / s - t) / fn;
        }
    }
}

static void xent_block(const xent_job *j, int begin, int end)
{
    for (int i = begin; i < end; i++)
        xent_sample(j, i);
}

#if defined(__x86_64__)
__attribute__((target("fma"))) static void xent_block_fma(const xent_job *j, int begin, int end)
{
    for (int i = begin; i < end; i++)
        xent_sample(j, i);
}
#endif

static void xent_task(void *arg, int task, int thread)
{
    (void)thread;
    const xent_job *j = arg;
    int begin = task * XENT_BLOCK;
    int end = begin + XENT_BLOCK < j->n ? begin + XENT_BLOCK : j->n;
#if defined(__x86_64__)
    if (j->simd) {
        xent_block_fma(j, begin, end);
        return;
    }
#endif
    xent_block(j, begin, end);
}

void detrun_cpu_softmax_xent(detrun_backend *b, float *dlogits, float *loss, float *correct,
                             const float *logits, const int32_t *labels, int n, int classes)
{
    if (n <= 0 || classes <= 0)
        return;
    xent_job j = { dlogits, loss, correct, logits, labels, n, classes, DETRUN_CPU(b)->simd };
    detrun_pool_run(DETRUN_CPU(b)->pool, (n + XENT_BLOCK - 1) / XENT_BLOCK, xent_task, &j);
}
