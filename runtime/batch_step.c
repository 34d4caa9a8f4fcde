/*
 * batch_step.c - one optimiser step of fit over one batch.
 *
 * The step is handed to the backend as issue + rewind: the backend decides
 * whether it runs the calls as they come (the CPU) or records and replays
 * them (a GPU). rewind exists because a replay can be refused after issue()
 * ran on the host side: the optimiser's counters moved, the device did not.
 */
#include "batch_step.h"

typedef struct batch_step {
    detrun_model *m;
    const uint32_t *rows;
    int nb;
    detrun_rng_addr addr;
    float *loss, *correct;
    /* The optimiser's host state before the step. */
    float beta1_t, beta2_t;
    uint64_t step;
} batch_step;

static detrun_status issue(void *ctx)
{
    batch_step *s = ctx;
    detrun_model *m = s->m;
    detrun_backend *be = m->rt->backend;
    be->ops->gather(be, m->x, m->y, m->ds_images, m->ds_labels, m->ds_pixels, s->rows, s->nb);
    const float *logits = detrun_model_forward(m, s->nb, 1, &s->addr);
    be->ops->softmax_xent(be, m->grad[0], s->loss, s->correct, logits, m->y, s->nb,
                          detrun_model_classes(m));
    detrun_model_backward(m, s->nb, m->grad[0]);
    return detrun_model_optimizer_step(m);
}

static void rewind_step(void *ctx)
{
    batch_step *s = ctx;
    s->m->beta1_t = s->beta1_t;
    s->m->beta2_t = s->beta2_t;
    s->m->step = s->step;
}

detrun_status detrun_batch_step(detrun_model *m, const uint32_t *rows, int nb,
                                const detrun_rng_addr *addr, float *loss, float *correct)
{
    batch_step s = { m, rows, nb, *addr, loss, correct, m->beta1_t, m->beta2_t, m->step };
    /* A traced fit reads every step's tensors after it: its calls are issued plainly. */
    if (m->rt->trace != NULL)
        return issue(&s);
    detrun_step step = { issue, rewind_step, &s, (uint64_t)nb };
    detrun_backend *be = m->rt->backend;
    return be->ops->run_step(be, &step);
}
