/*
 * relu.c - ReLU as a layer of its own (docs/determinism.md, "ReLU"): the
 * pass undoes it on the gradient (l->relu), so its backward is the identity.
 */
#include "layer.h"

static const detrun_layer_opt opts[] = { { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL } };

static detrun_status shape(detrun_model *m, detrun_layer *l)
{
    (void)m;
    l->out_c = l->in_c;
    l->out_h = l->in_h;
    l->out_w = l->in_w;
    l->relu = 1;
    return DETRUN_OK;
}

static const float *forward(const detrun_pass *p, detrun_layer *l, const float *in)
{
    detrun_backend *be = p->be;
    be->ops->relu_forward(be, l->out, in, (size_t)p->n * detrun_layer_out_size(l));
    return l->out;
}

const detrun_layer_kind detrun_layer_relu = {
    .name = "relu",
    .doc = "docs/determinism.md#relu-r5",
    .opts = opts,
    .shape = shape,
    .forward = forward,
};
