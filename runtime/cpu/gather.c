/*
 * gather.c - a batch of rows from the uploaded data set, pixels scaled to
 * [0, 1] by one correctly rounded division (docs/determinism.md, "Data").
 */
#include "cpu.h"

typedef struct gather_job {
    float *x;
    int32_t *y;
    const uint8_t *images, *labels;
    size_t pixels;
    const uint32_t *rows;
} gather_job;

static void gather_task(void *arg, int i, int thread)
{
    (void)thread;
    const gather_job *j = arg;
    const uint8_t *src = j->images + (size_t)j->rows[i] * j->pixels;
    float *dst = j->x + (size_t)i * j->pixels;
    for (size_t p = 0; p < j->pixels; p++)
        dst[p] = (float)src[p] / 255.0f;
    if (j->y)
        j->y[i] = j->labels[j->rows[i]];
}

void detrun_cpu_gather(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                       const uint8_t *labels, size_t pixels, const uint32_t *rows, int n)
{
    gather_job j = { x, labels ? y : NULL, images, labels, pixels, rows };
    detrun_pool_run(DETRUN_CPU(b)->pool, n, gather_task, &j);
}
