/*
 * dropout.c - inverted dropout (docs/determinism.md, "dropout"): in a
 * training step the mask is drawn from Philox at the step's address with
 * the layer's index; outside training, and at rate 0, the output is the
 * input.
 */
#include <stddef.h>

#include "layer.h"

static const detrun_layer_opt opts[] = {
    { "rate", DETRUN_LOPT_RATE, offsetof(detrun_layer, rate), DETRUN_LOPT_REQUIRED, 0, 1, NULL },
    { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL }
};

static size_t aux_bytes(const detrun_layer *l)
{
    return detrun_layer_out_size(l) * sizeof(float);   /* the mask */
}

static const float *forward(const detrun_pass *p, detrun_layer *l, const float *in)
{
    if (!p->train || !(l->rate > 0.0f))
        return in;
    detrun_backend *be = p->be;
    detrun_rng_addr a = *p->addr;
    a.layer = (uint32_t)p->index;
    be->ops->dropout_forward(be, l->out, l->aux, in, (size_t)p->n * detrun_layer_out_size(l), l->rate,
                        &a);
    return l->out;
}

static float *backward(const detrun_pass *p, detrun_layer *l, float *dout, float *din,
                       const float *in)
{
    (void)in;
    if (!(l->rate > 0.0f))
        return dout;
    detrun_backend *be = p->be;
    be->ops->dropout_backward(be, din, dout, l->aux, (size_t)p->n * detrun_layer_out_size(l));
    return din;
}

const detrun_layer_kind detrun_layer_dropout = {
    .name = "dropout",
    .doc = "docs/determinism.md#dropout-r6",
    .opts = opts,
    .aux_bytes = aux_bytes,
    .forward = forward,
    .backward = backward,
};
